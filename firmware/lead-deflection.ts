import { DEFAULT_QRS_CREDIBILITY_OPTIONS } from './qrs-credibility.js';

export interface LeadDeflectionOptions {
  fs: number;
  /** Width of the windows whose peak-to-peak is measured (ms): about a QRS complex. */
  windowMs: number;
  /** Moving average taken before measuring (ms): white noise shrinks, a QRS complex keeps its size. */
  smoothMs: number;
  /** Per-chunk maxima are kept this long (ms). */
  keepMs: number;
}

export const DEFAULT_LEAD_DEFLECTION_OPTIONS: Readonly<Omit<LeadDeflectionOptions, 'fs'>> = Object.freeze({
  windowMs: 2 * DEFAULT_QRS_CREDIBILITY_OPTIONS.qrsHalfMs,
  smoothMs: 8,
  keepMs: 30_000,
});

/**
 * The largest QRS-sized deflection of a lead over time (pure: no I/O, no timers): the peak-to-peak (mV) of
 * `windowMs` windows of the lightly smoothed lead, the largest per chunk, kept with the chunk's end time.
 * The ECG monitor asks it whether a stretch of lead showed anything as large as the smallest QRS complex
 * it believes (`QrsCredibilityOptions.minQrsMv`, 0.15 mV) when its QRS detector could not tell (still
 * learning a lead that was put back on, or contact lost too often for it to learn). 0.03 mV SD of white
 * baseline noise measures about 0.1 mV; MIT-BIH QRS complexes 0.3-3 mV. Windows do not span a `break`
 * (contact lost: what comes back may sit at another level).
 */
export class LeadDeflection {
  readonly options: LeadDeflectionOptions;
  private readonly window: number;
  private readonly smooth: number;
  /** The last raw samples (mV) for the moving average, and the last smoothed ones (less than a window). */
  private raw: number[] = [];
  private tail: number[] = [];
  private readonly maxima: { endMs: number; mv: number }[] = [];

  constructor(options: Partial<LeadDeflectionOptions> & { fs: number }) {
    this.options = { ...DEFAULT_LEAD_DEFLECTION_OPTIONS, ...options };
    this.window = Math.max(2, Math.round((this.options.windowMs * this.options.fs) / 1000));
    this.smooth = Math.max(1, Math.round((this.options.smoothMs * this.options.fs) / 1000));
  }

  /** A chunk of the lead in ADC units (`gain` per mV) ending at device time `endMs`. */
  push(samples: ArrayLike<number>, gain: number, endMs: number): void {
    const smoothed = this.tail;
    const start = smoothed.length;
    for (let i = 0; i < samples.length; i++) {
      this.raw.push((samples[i] as number) / (gain || 1));
      if (this.raw.length > this.smooth) this.raw.shift();
      if (this.raw.length === this.smooth) smoothed.push(this.raw.reduce((a, b) => a + b, 0) / this.smooth);
    }
    // Windows ending in this chunk, a quarter of a window apart, the last at its last sample (a lead with less
    // than a window since the last break: all of it).
    const step = Math.max(1, this.window >> 2);
    const ends: number[] = [];
    for (let end = Math.max(this.window, start + 1); end < smoothed.length; end += step) ends.push(end);
    if (smoothed.length > start) ends.push(smoothed.length);
    let largest = 0;
    for (const end of ends) {
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let k = Math.max(0, end - this.window); k < end; k++) {
        const v = smoothed[k] as number;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      largest = Math.max(largest, hi - lo);
    }
    this.tail = smoothed.slice(Math.max(0, smoothed.length - this.window + 1));
    this.maxima.push({ endMs, mv: largest });
    while ((this.maxima[0]?.endMs ?? endMs) < endMs - this.options.keepMs) this.maxima.shift();
  }

  /** Contact lost (or a new stream): the next chunk starts afresh. */
  break(): void {
    this.raw = [];
    this.tail = [];
  }

  /** The largest deflection (mV) of the chunks that ended after `fromMs`; 0 when none did. */
  largestSince(fromMs: number): number {
    let largest = 0;
    for (const m of this.maxima) if (m.endMs > fromMs && m.mv > largest) largest = m.mv;
    return largest;
  }
}
