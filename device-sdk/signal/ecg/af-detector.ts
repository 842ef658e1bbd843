/**
 * Atrial fibrillation from RR irregularity (pure: no I/O, no timers). Classified beats in, episode
 * onsets and ends out.
 *
 * Only N-N intervals count (both beats classified N): premature S and V beats and their pauses are the
 * irregularity of ectopy, not of AF, and are what made a plain RR detector call AF in ectopy-rich
 * records. Except when S beats are frequent (at least `frequentSShare` of the last `windowIntervals`
 * beats): a fast irregular rhythm makes many beats look premature, so S beats then count like N (V
 * beats never do). Over the last `windowIntervals` such intervals (within `windowSeconds`), the irregularity is
 * the median absolute difference of successive N-N intervals divided by their median (robust to the
 * odd misclassified beat); AF starts when it exceeds `onThreshold` and ends when it falls below
 * `offThreshold` (hysteresis), each for `confirmIntervals` successive intervals. Onsets and ends are
 * dated at the middle of the window that decided them (the irregularity crosses its threshold when
 * about half the window is in the new rhythm); the decision itself is known at `at`. When the evidence
 * runs out (fewer than `minPairs` pairs in the window, e.g. long runs of ectopy), an episode ends at
 * the last usable interval: AF is never reported on stale evidence.
 * Optionally (`ventricularRunBeats` > 0; off by default) a run of that many consecutive V beats (ventricular tachycardia, which the EC57
 * reference annotates as a rhythm of its own that ends AF) suspends an open episode: it ends at the
 * first V beat of the run, and if the irregularity measured before the run said AF (at least
 * `offThreshold`) it resumes at the first beat after the run, without re-confirmation (the detector
 * goes on deciding from there as usual, so it ends again if the rhythm after the run is regular). Onsets are
 * never back-dated over such a run.
 * Atrial activity: when beats carry `atrial` (the correlation of the segment before the QRS with the
 * previous beat's, from `AtrialActivity`), the median over the window's N-N intervals is the
 * organisation of atrial activity. Sinus rhythm repeats its P wave beat after beat (median near 0.9 on
 * MIT-BIH), fibrillatory waves do not (below 0.4): irregular RR with organised atrial activity
 * (at least `organizedAtrial`; sinus arrhythmia, ectopy taken for N beats) is not called AF, and an
 * episode ends when it appears. Without `atrial` values the rule is off.
 * Global parameters only: nothing is tuned per record.
 */
import { medianInPlace } from '../stats.js';
import { classInRhythm } from './beat-classes.js';
import type { AamiClass } from './beat-features.js';
import { DEFAULT_MAINS_HZ, MainsFilter } from './qrs-detector.js';

export interface AfDetectorOptions {
  fs: number;
  windowIntervals: number;
  windowSeconds: number;
  /** Fewer successive-difference pairs than this in the window: no decision (rhythm unknown). */
  minPairs: number;
  onThreshold: number;
  offThreshold: number;
  confirmIntervals: number;
  frequentSShare: number;
  /** Consecutive V beats that suspend an open episode (0: never). */
  ventricularRunBeats: number;
  /** Median pre-QRS correlation at or above which atrial activity is organised (not AF); NaN: rule off. */
  organizedAtrial: number;
  /** Fewest `atrial` values in the window for the rule to apply. */
  minAtrialValues: number;
}

export const DEFAULT_AF_OPTIONS: Readonly<Omit<AfDetectorOptions, 'fs'>> = Object.freeze({
  windowIntervals: 40,
  windowSeconds: 60,
  minPairs: 16,
  onThreshold: 0.09,
  offThreshold: 0.06,
  confirmIntervals: 4,
  frequentSShare: 0.3,
  // Off: on the CV beat classes a run of 5 V beats trades Se 98.09 -> 97.47 for +P 95.99 -> 96.77
  // (classifier V runs inside AF that the reference does not mark as VT); kept as an option.
  ventricularRunBeats: 0,
  organizedAtrial: 0.5,
  minAtrialValues: 10,
});

export interface AfEvent {
  type: 'onset' | 'end';
  /** Sample the episode starts or ends at. */
  sample: number;
  /** Sample at which the detector decided (the beat that completed the evidence). */
  at: number;
  irregularity: number;
}

export interface ClassifiedBeatInput {
  sample: number;
  /** AAMI class: only `N` beats make N-N intervals. */
  cls: string;
  /** Correlation of the segment before this QRS with the previous beat's (`AtrialActivity`); absent or NaN: unknown. */
  atrial?: number;
}

interface Interval {
  start: number;
  end: number;
  /** Index of the beat that ends it (adjacency of successive intervals). */
  beat: number;
  /** Atrial correlation of the beat that ends it (NaN: unknown). */
  atrial: number;
}

export class AfDetector {
  readonly options: AfDetectorOptions;
  private last: ClassifiedBeatInput | undefined;
  private beats = 0;
  private readonly window: Interval[] = [];
  private af = false;
  private streak = 0;
  private current = 0;
  private readonly recent: string[] = [];
  /** Scratch for the intervals and their differences (no allocation per beat). */
  private rr = new Float64Array(64);
  private diffs = new Float64Array(64);
  private atrial = new Float64Array(64);
  /** Consecutive V beats so far and the sample of the first of them. */
  private vRun = 0;
  private vRunStart = 0;
  /** An episode suspended by a ventricular run (resumes after it if the evidence still says AF). */
  private suspended = false;
  private suspendedIrregularity = Number.NaN;
  /** Onsets and ends are not dated before this sample (the last run that suspended an episode). */
  private floor = 0;

  constructor(options: Partial<AfDetectorOptions> & { fs: number }) {
    this.options = { ...DEFAULT_AF_OPTIONS, ...options };
  }

  get inAf(): boolean {
    return this.af;
  }

  /** The last irregularity measured (NaN before enough N-N intervals). */
  get irregularity(): number {
    return this.current;
  }

  push(beat: ClassifiedBeatInput): AfEvent[] {
    const run = this.ventricularRun(beat);
    const rest = this.pushBeat(beat);
    return run.length === 0 ? rest : [...run, ...rest];
  }

  /** Suspends an open episode when a ventricular run reaches `ventricularRunBeats`; resumes it after the run. */
  private ventricularRun(beat: ClassifiedBeatInput): AfEvent[] {
    const { ventricularRunBeats, offThreshold } = this.options;
    if (ventricularRunBeats <= 0) return [];
    if (beat.cls === 'V') {
      if (this.vRun === 0) this.vRunStart = beat.sample;
      this.vRun += 1;
      if (this.vRun === ventricularRunBeats && this.af) {
        this.af = false;
        this.suspended = true;
        this.suspendedIrregularity = this.current;
        this.streak = 0;
        this.floor = this.vRunStart;
        return [{ type: 'end', sample: this.vRunStart, at: beat.sample, irregularity: this.current }];
      }
      return [];
    }
    this.vRun = 0;
    if (!this.suspended) return [];
    this.suspended = false;
    this.floor = beat.sample;
    if (!(this.suspendedIrregularity >= offThreshold)) return [];
    this.af = true;
    return [{ type: 'onset', sample: beat.sample, at: beat.sample, irregularity: this.suspendedIrregularity }];
  }

  private pushBeat(beat: ClassifiedBeatInput): AfEvent[] {
    const { fs, windowIntervals, windowSeconds } = this.options;
    const prev = this.last;
    this.last = beat;
    this.beats += 1;
    this.recent.push(beat.cls);
    if (this.recent.length > windowIntervals) this.recent.shift();
    const frequentS = this.recent.filter((c) => c === 'S').length >= this.options.frequentSShare * this.recent.length;
    const usable = (cls: string) => cls === 'N' || (frequentS && cls === 'S');
    while (this.window.length > 0 && (this.window.length > windowIntervals || beat.sample - (this.window[0] as Interval).start > windowSeconds * fs)) this.window.shift();
    if (!prev || !usable(prev.cls) || !usable(beat.cls)) return this.stale();
    this.window.push({ start: prev.sample, end: beat.sample, beat: this.beats, atrial: beat.atrial ?? Number.NaN });
    if (this.window.length > windowIntervals) this.window.shift();
    return this.decide(beat.sample);
  }

  /** Too few usable intervals left in the window: an open episode ends at the last usable one. */
  private stale(): AfEvent[] {
    if (this.pairs() >= this.options.minPairs) return [];
    this.current = Number.NaN;
    this.streak = 0;
    if (!this.af || !this.last) return [];
    this.af = false;
    const lastEnd = this.window.length > 0 ? (this.window[this.window.length - 1] as Interval).end : this.last.sample;
    return [{ type: 'end', sample: lastEnd, at: this.last.sample, irregularity: Number.NaN }];
  }

  private pairs(): number {
    let n = 0;
    for (let k = 1; k < this.window.length; k++) if ((this.window[k] as Interval).beat === (this.window[k - 1] as Interval).beat + 1) n++;
    return n;
  }

  private decide(at: number): AfEvent[] {
    const { minPairs, onThreshold, offThreshold, confirmIntervals } = this.options;
    const w = this.window;
    if (this.rr.length < w.length) {
      this.rr = new Float64Array(2 * w.length);
      this.diffs = new Float64Array(2 * w.length);
    }
    const rr = this.rr;
    const diffs = this.diffs;
    let nd = 0;
    for (let k = 0; k < w.length; k++) {
      const i = w[k] as Interval;
      rr[k] = i.end - i.start;
      if (k > 0 && i.beat === (w[k - 1] as Interval).beat + 1) diffs[nd++] = Math.abs((rr[k] as number) - (rr[k - 1] as number));
    }
    if (nd < minPairs) return this.stale();
    this.current = medianInPlace(diffs, nd) / medianInPlace(rr, w.length);
    const organized = this.atrialOrganization >= this.options.organizedAtrial;
    const crossing = this.af ? this.current < offThreshold || organized : this.current > onThreshold && !organized;
    this.streak = crossing ? this.streak + 1 : 0;
    if (this.streak < confirmIntervals) return [];
    this.streak = 0;
    this.af = !this.af;
    const middle = Math.max(this.floor, (this.window[this.window.length >> 1] as Interval).start);
    return [{ type: this.af ? 'onset' : 'end', sample: middle, at, irregularity: this.current }];
  }

  /** Median atrial correlation over the window (NaN when fewer than `minAtrialValues` are known). */
  get atrialOrganization(): number {
    if (this.atrial.length < this.window.length) this.atrial = new Float64Array(2 * this.window.length);
    let n = 0;
    for (const i of this.window) if (Number.isFinite(i.atrial)) this.atrial[n++] = i.atrial;
    return n >= this.options.minAtrialValues ? medianInPlace(this.atrial, n) : Number.NaN;
  }

  /** End of the record: an open episode ends at `sample`. */
  finish(sample: number): AfEvent[] {
    if (!this.af) return [];
    this.af = false;
    return [{ type: 'end', sample, at: sample, irregularity: this.current }];
  }
}

/**
 * The AF detector over a record's classified beats, as the pipeline runs it: the detector takes the
 * classifier's classes, and each beat is reported in its rhythm (`classInRhythm`: called S while an
 * episode is open -> N). `atrial`: each beat's `AtrialActivity` value (NaN: unknown).
 */
export function afOverBeats(samples: readonly number[], classes: readonly AamiClass[], atrial: readonly number[], options: Partial<AfDetectorOptions> & { fs: number }, length: number): { events: AfEvent[]; reported: AamiClass[] } {
  const det = new AfDetector(options);
  const events: AfEvent[] = [];
  const reported: AamiClass[] = [];
  samples.forEach((sample, i) => {
    const cls = classes[i] as AamiClass;
    events.push(...det.push({ sample, cls, atrial: atrial[i] }));
    reported.push(classInRhythm(cls, det.inAf));
  });
  events.push(...det.finish(length));
  return { events, reported };
}

/**
 * Episodes `[start, end)` from a sequence of events (onsets and ends in order). Onsets and ends are
 * back-dated, so an onset may fall before the end of the previous episode: such episodes are merged.
 */
export function afEpisodes(events: readonly AfEvent[]): [number, number][] {
  const out: [number, number][] = [];
  let open: number | undefined;
  for (const e of events) {
    if (e.type === 'onset' && open === undefined) open = e.sample;
    else if (e.type === 'end' && open !== undefined) {
      const last = out[out.length - 1];
      if (last && open <= last[1]) last[1] = Math.max(last[1], e.sample);
      else if (e.sample > open) out.push([open, e.sample]);
      open = undefined;
    }
  }
  return out;
}

export interface AtrialActivityOptions {
  fs: number;
  /** Segment before the R peak compared beat to beat, as [start, end] ms before R (the P wave of sinus rhythm lies in it). */
  segmentMs: [number, number];
  /** Raw samples kept for beats reported late (s). */
  historySeconds: number;
  /** Mains frequencies notched out first (hum repeats beat to beat no more than fibrillation does, but swamps a P wave). */
  mainsHz: readonly number[];
}

export const DEFAULT_ATRIAL_OPTIONS: Readonly<Omit<AtrialActivityOptions, 'fs'>> = Object.freeze({ segmentMs: [250, 80] as [number, number], historySeconds: 10, mainsHz: DEFAULT_MAINS_HZ });

/**
 * Beat-to-beat repetition of atrial activity (pure, bounded memory, no allocation per beat): raw samples
 * in (the first lead, as the QRS detector gets them; 50 and 60 Hz are notched out here), and for each beat the Pearson correlation of its
 * pre-QRS segment (`segmentMs` before the R peak, linear trend removed) with the previous beat's. A P
 * wave before every QRS gives values near 1; fibrillatory waves give values near 0.
 */
export class AtrialActivity {
  readonly options: AtrialActivityOptions;
  private readonly ring: Float32Array;
  private readonly mask: number;
  private n = 0;
  private readonly from: number;
  private readonly length: number;
  private current: Float64Array;
  private previous: Float64Array;
  private havePrevious = false;
  private lastBeat = -1;
  private readonly mains: MainsFilter;

  constructor(options: Partial<AtrialActivityOptions> & { fs: number }) {
    this.options = { ...DEFAULT_ATRIAL_OPTIONS, ...options };
    const { fs, segmentMs, historySeconds } = this.options;
    let size = 1;
    while (size < historySeconds * fs) size <<= 1;
    this.ring = new Float32Array(size);
    this.mask = size - 1;
    this.from = Math.round((segmentMs[0] * fs) / 1000);
    this.length = Math.max(3, this.from - Math.round((segmentMs[1] * fs) / 1000));
    this.current = new Float64Array(this.length);
    this.previous = new Float64Array(this.length);
    this.mains = new MainsFilter(fs, this.options.mainsHz);
  }

  pushSamples(samples: ArrayLike<number>): void {
    for (let i = 0; i < samples.length; i++) this.ring[(this.n + i) & this.mask] = this.mains.step(samples[i] as number);
    this.n += samples.length;
  }

  /** The correlation for the beat at `sample` (beats in order); NaN when its segment or the previous one is unavailable. */
  beat(sample: number): number {
    const start = sample - this.from;
    if (sample <= this.lastBeat || start < 0 || start < this.n - this.ring.length || start + this.length > this.n) {
      this.havePrevious = false;
      return Number.NaN;
    }
    this.lastBeat = sample;
    const seg = this.current;
    const n = this.length;
    const first = this.ring[start & this.mask] as number;
    const last = this.ring[(start + n - 1) & this.mask] as number;
    const step = (last - first) / (n - 1);
    for (let k = 0; k < n; k++) seg[k] = (this.ring[(start + k) & this.mask] as number) - first - step * k;
    let r = Number.NaN;
    if (this.havePrevious) {
      const p = this.previous;
      let xy = 0;
      let xx = 0;
      let yy = 0;
      for (let k = 0; k < n; k++) {
        const x = seg[k] as number;
        const y = p[k] as number;
        xy += x * y;
        xx += x * x;
        yy += y * y;
      }
      r = xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : Number.NaN;
    }
    this.current = this.previous;
    this.previous = seg;
    this.havePrevious = true;
    return r;
  }
}
