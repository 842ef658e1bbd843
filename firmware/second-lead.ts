import type { StreamChunk } from '../device-sdk/records.js';
import { QrsDetector } from '../device-sdk/signal/ecg/qrs-detector.js';
import { DEFAULT_PACE_PULSE_OPTIONS, type PacePulseOptions } from './pace-pulses.js';
import { QrsCredibility } from './qrs-credibility.js';

export interface SecondLeadOptions {
  /** Credible QRS complexes of one shape the second lead must show within the asystole window to hold `ecg-no-beats` back. */
  minBeats: number;
  /** ... the newest of them no older than this (ms). */
  maxAgeMs: number;
  /** A jump in the lead's sample counter up to this (s) is bridged holding the value (the monitor's bridge on lead 1); longer ones start afresh. */
  bridgeS: number;
  /** Pacemaker pulses without a QRS are not heartbeats on this lead either (`QrsCredibility.pacePulseOnly`): they repeat one shape. */
  pacePulse: PacePulseOptions;
}

export const DEFAULT_SECOND_LEAD_OPTIONS: Readonly<SecondLeadOptions> = Object.freeze({
  minBeats: 3,
  maxAgeMs: 3_000,
  bridgeS: 1,
  pacePulse: DEFAULT_PACE_PULSE_OPTIONS,
});

/**
 * The heartbeats a second ECG lead shows (pure: no I/O, no timers): the ECG monitor analyses lead 1
 * (channel 0) and asks this one, before raising `ecg-no-beats`, whether lead 2 (channel 1) shows the heart
 * beating. A QRS can vanish from one lead while the heart beats on (MIT-BIH 116 at 1355-1361 s and 1391-1396
 * s, 208 at 1384-1387 s: MLII shows 0-0.34 mV against 1.8-3.6 mV just before, V1 shows the beats 4-13 times
 * larger, `bench/ecg-qrs-visibility.js`); a bedside monitor does not call asystole while another lead
 * shows QRS complexes.
 *
 * Its own QRS detector runs on the lead, and a detection counts only when it is credible as the monitor
 * judges a lead's first beats (`QrsCredibility`: it stands out of the lead around it, prominence >= 2, and is
 * at least 0.15 mV) and has the shape of one of the 3 detections before it (muscle artefact stands out but
 * does not repeat a shape), and is not a pacemaker pulse without a QRS (`pacePulse`). `beating(endMs, fromMs)` asks for `minBeats` of them since `fromMs`, the newest
 * within `maxAgeMs`. Contact lost on the lead (`leadOff`), a jump in its sample counter or a new rate starts
 * it afresh; nothing from before counts.
 */
export class SecondLeadBeats {
  readonly options: SecondLeadOptions;
  private detector: QrsDetector | undefined;
  private credibility: QrsCredibility | undefined;
  private rateHz = 0;
  private t0 = 0;
  private firstSample = 0;
  private seen = 0;
  /** The last 3 detections (samples of the stream), for the shape check. */
  private recent: number[] = [];
  /** Device times (ms) of the credible detections, newest last (a few seconds' worth). */
  private beatsMs: number[] = [];
  /** Device time (ms) up to which the lead has been seen with contact. */
  private endMs = Number.NEGATIVE_INFINITY;

  constructor(options: Partial<SecondLeadOptions> = {}) {
    this.options = { ...DEFAULT_SECOND_LEAD_OPTIONS, ...options };
  }

  push(chunk: StreamChunk): void {
    if (chunk.samples.length === 0) {
      if (chunk.leadOff) this.reset();
      return;
    }
    if (chunk.leadOff) {
      this.reset();
      return;
    }
    const gap = chunk.firstSample - (this.firstSample + this.seen);
    if (!this.detector || chunk.rateHz !== this.rateHz || gap < 0 || gap > Math.round(chunk.rateHz * this.options.bridgeS)) this.start(chunk);
    else if (gap > 0) this.feed(new Int16Array(gap).fill(chunk.samples[0] as number), chunk.gain);
    this.feed(chunk.samples, chunk.gain);
    this.endMs = this.timeOf(this.firstSample + this.seen);
  }

  /**
   * Whether the lead shows the heart beating at `endMs`: `minBeats` credible detections of one shape since
   * `fromMs`, the newest within `maxAgeMs`, and the lead seen with contact up to `endMs` (less a chunk).
   */
  beating(endMs: number, fromMs: number): boolean {
    if (this.endMs < endMs - this.options.maxAgeMs) return false;
    const since = this.beatsMs.filter((t) => t >= fromMs);
    const newest = since.at(-1);
    return since.length >= this.options.minBeats && newest !== undefined && endMs - newest <= this.options.maxAgeMs;
  }

  private start(chunk: StreamChunk): void {
    this.rateHz = chunk.rateHz;
    this.t0 = chunk.t0;
    this.firstSample = chunk.firstSample;
    this.seen = 0;
    this.detector = new QrsDetector({ fs: chunk.rateHz });
    this.credibility = new QrsCredibility({ fs: chunk.rateHz });
    this.recent = [];
    this.beatsMs = [];
  }

  private reset(): void {
    this.detector = undefined;
    this.credibility = undefined;
    this.recent = [];
    this.beatsMs = [];
    this.endMs = Number.NEGATIVE_INFINITY;
  }

  private feed(samples: ArrayLike<number>, gain: number): void {
    const detector = this.detector as QrsDetector;
    const credibility = this.credibility as QrsCredibility;
    credibility.pushSamples(samples, gain);
    this.seen += samples.length;
    for (const beat of detector.push([samples])) {
      const d = beat.sample;
      const repeats = credibility.repeats(d, this.recent);
      this.recent.push(d);
      if (this.recent.length > 3) this.recent.shift();
      if (!repeats || !credibility.credible(d) || credibility.pacePulseOnly(d, this.options.pacePulse)) continue;
      const t = this.timeOf(this.firstSample + d);
      this.beatsMs.push(t);
      while ((this.beatsMs[0] as number) < t - 30_000) this.beatsMs.shift();
    }
  }

  private timeOf(sample: number): number {
    return this.t0 + ((sample - this.firstSample) * 1000) / this.rateHz;
  }
}
