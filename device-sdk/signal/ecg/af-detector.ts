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
 * Global parameters only: nothing is tuned per record.
 */
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
}

export const DEFAULT_AF_OPTIONS: Readonly<Omit<AfDetectorOptions, 'fs'>> = Object.freeze({
  windowIntervals: 40,
  windowSeconds: 60,
  minPairs: 16,
  onThreshold: 0.09,
  offThreshold: 0.06,
  confirmIntervals: 4,
  frequentSShare: 0.3,
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
}

interface Interval {
  start: number;
  end: number;
  /** Index of the beat that ends it (adjacency of successive intervals). */
  beat: number;
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
    this.window.push({ start: prev.sample, end: beat.sample, beat: this.beats });
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
    const rr = this.window.map((i) => i.end - i.start);
    const diffs: number[] = [];
    for (let k = 1; k < this.window.length; k++) {
      if ((this.window[k] as Interval).beat === (this.window[k - 1] as Interval).beat + 1) diffs.push(Math.abs((rr[k] as number) - (rr[k - 1] as number)));
    }
    if (diffs.length < minPairs) return this.stale();
    this.current = median(diffs) / median(rr);
    const crossing = this.af ? this.current < offThreshold : this.current > onThreshold;
    this.streak = crossing ? this.streak + 1 : 0;
    if (this.streak < confirmIntervals) return [];
    this.streak = 0;
    this.af = !this.af;
    const middle = (this.window[this.window.length >> 1] as Interval).start;
    return [{ type: this.af ? 'onset' : 'end', sample: middle, at, irregularity: this.current }];
  }

  /** End of the record: an open episode ends at `sample`. */
  finish(sample: number): AfEvent[] {
    if (!this.af) return [];
    this.af = false;
    return [{ type: 'end', sample, at: sample, irregularity: this.current }];
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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
