import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';
import { DEFAULT_QRS_OPTIONS, QrsDetector } from '../device-sdk/signal/ecg/qrs-detector.js';
import type { Alert, Finding, Reading, StreamChunk } from '../device-sdk/records.js';

export interface EcgMonitorOptions {
  /** A heart-rate reading is stored this often (ms of signal). */
  readingIntervalMs: number;
  /** No beat for this long on a connected lead: asystole alert (severity 3). */
  asystoleMs: number;
  /** Peak-to-peak below this (mV) for `leadOffMs`: lead-off alert (severity 2). */
  flatMv: number;
  leadOffMs: number;
}

export const DEFAULT_ECG_MONITOR_OPTIONS: Readonly<EcgMonitorOptions> = Object.freeze({ readingIntervalMs: 5_000, asystoleMs: 4_000, flatMv: 0.05, leadOffMs: 2_000 });

export const QRS_MODEL_ID = 'algo:qrs-detector@1';
/** Provenance of findings: the hash of the detector's parameters. */
export const QRS_MODEL_SHA256 = sha256Hex(canonicalJson(DEFAULT_QRS_OPTIONS));

export interface EcgMonitorOutput {
  readings: Reading[];
  findings: Finding[];
  alerts: Alert[];
}

/**
 * The live ECG path of the runtime for one sensor: stream chunks in (channel 0), QRS detection, and
 * out: heart-rate readings, a rate finding with its input quality, and local alerts for asystole and
 * lead-off. Driven by the chunks' own sample clock, so it runs the same on a board, in replay and in
 * tests. Alerts fire once per episode and re-arm when the condition clears. Wording is decision support.
 */
export class EcgMonitor {
  readonly sensor: string;
  private readonly options: EcgMonitorOptions;
  private detector: QrsDetector | undefined;
  private rateHz = 0;
  private t0 = 0;
  private firstSample = 0;
  private samplesSeen = 0;
  private lastBeatSample: number | undefined;
  private readonly rrMs: number[] = [];
  private nextReadingMs = 0;
  private flatSinceMs: number | undefined;
  private leadOff = false;
  private asystole = false;

  constructor(sensor: string, options: Partial<EcgMonitorOptions> = {}) {
    this.sensor = sensor;
    this.options = { ...DEFAULT_ECG_MONITOR_OPTIONS, ...options };
  }

  /** Device time (ms) of a sample index of the current stream. */
  private timeOf(sample: number): number {
    return this.t0 + ((sample - this.firstSample) * 1000) / this.rateHz;
  }

  push(chunk: StreamChunk): EcgMonitorOutput {
    const out: EcgMonitorOutput = { readings: [], findings: [], alerts: [] };
    if (chunk.channel !== 0 || chunk.samples.length === 0) return out;
    // A new stream (restart, rate change, or a jump in the sample counter) starts a fresh detector.
    if (!this.detector || chunk.rateHz !== this.rateHz || chunk.firstSample !== this.firstSample + this.samplesSeen) {
      this.detector = new QrsDetector({ fs: chunk.rateHz });
      this.rateHz = chunk.rateHz;
      this.t0 = chunk.t0;
      this.firstSample = chunk.firstSample;
      this.samplesSeen = 0;
      this.lastBeatSample = undefined;
      this.rrMs.length = 0;
      this.nextReadingMs = chunk.t0 + this.options.readingIntervalMs;
    }
    const endMs = this.timeOf(chunk.firstSample + chunk.samples.length);
    this.checkLeadOff(chunk, endMs, out);
    for (const beat of this.detector.push([chunk.samples])) {
      const sample = this.firstSample + beat.sample;
      if (this.lastBeatSample !== undefined) {
        this.rrMs.push(((sample - this.lastBeatSample) * 1000) / this.rateHz);
        if (this.rrMs.length > 16) this.rrMs.shift();
      }
      this.lastBeatSample = sample;
      this.asystole = false;
    }
    this.samplesSeen += chunk.samples.length;
    this.checkAsystole(endMs, out);
    if (endMs >= this.nextReadingMs) {
      this.nextReadingMs = endMs + this.options.readingIntervalMs;
      this.report(endMs, out);
    }
    return out;
  }

  private checkLeadOff(chunk: StreamChunk, endMs: number, out: EcgMonitorOutput): void {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of chunk.samples) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const flat = (max - min) / (chunk.gain || 1) < this.options.flatMv;
    if (!flat) {
      this.flatSinceMs = undefined;
      this.leadOff = false;
      return;
    }
    this.flatSinceMs ??= chunk.t0;
    if (!this.leadOff && endMs - this.flatSinceMs >= this.options.leadOffMs) {
      this.leadOff = true;
      out.alerts.push({ kind: 'ecg-lead-off', severity: 2, t: endMs, sensor: this.sensor, message: 'ECG signal is flat: check the electrodes (lead off?).' });
    }
  }

  private checkAsystole(endMs: number, out: EcgMonitorOutput): void {
    if (this.leadOff || this.asystole || this.lastBeatSample === undefined) return;
    if (endMs - this.timeOf(this.lastBeatSample) >= this.options.asystoleMs) {
      this.asystole = true;
      out.alerts.push({
        kind: 'ecg-no-beats',
        severity: 3,
        t: endMs,
        sensor: this.sensor,
        message: `No QRS complex detected for ${Math.round(this.options.asystoleMs / 1000)} s on a connected lead; check the patient now (decision support, review by a clinician).`,
      });
    }
  }

  private report(tMs: number, out: EcgMonitorOutput): void {
    if (this.leadOff || this.rrMs.length < 4) return;
    const sorted = [...this.rrMs].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] as number;
    const bpm = Math.round(60_000 / median);
    out.readings.push({ sensor: this.sensor, type: 'heart-rate', value: bpm, unit: '/min', tDevice: tMs, context: { method: 'ecg-qrs' } });
    // Input quality: share of RR intervals within 20 % of the median (1 = steady detection).
    const steady = this.rrMs.filter((rr) => Math.abs(rr - median) <= 0.2 * median).length / this.rrMs.length;
    out.findings.push({
      kind: 'ecg-rate',
      label: bpm < 50 ? 'slow' : bpm > 100 ? 'fast' : 'normal-range',
      value: bpm,
      probability: 1,
      t: tMs,
      intervalStart: Math.round(tMs - this.rrMs.reduce((a, b) => a + b, 0)),
      intervalEnd: Math.round(tMs),
      evidence: `median of ${this.rrMs.length} RR intervals`,
      modelId: QRS_MODEL_ID,
      modelSha256: QRS_MODEL_SHA256,
      inputQuality: Math.round(steady * 100) / 100,
    });
  }
}
