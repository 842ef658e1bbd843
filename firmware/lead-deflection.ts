import { DEFAULT_QRS_CREDIBILITY_OPTIONS } from './qrs-credibility.js';

export interface LeadDeflectionOptions {
  fs: number;
  /** Width of the windows whose peak-to-peak is measured (ms): about a QRS complex. */
  windowMs: number;
  /**
   * Mains frequencies (Hz) whose hum is taken out before measuring: one moving average a period of each long,
   * one after the other. Each nulls its frequency and its harmonics (the nearest whole number of samples: within
   * 5 % of the hum left at 250 Hz and up, 20 % at 128 Hz); white noise shrinks, and a QRS complex keeps most of
   * its size (MIT-BIH: every 4 s stretch of the 26 records still measures 0.18 mV at least at 360 and 250 Hz,
   * 0.17 at 128 Hz).
   */
  mainsHz: readonly number[];
  /** Per-chunk maxima are kept this long (ms). */
  keepMs: number;
}

export const DEFAULT_LEAD_DEFLECTION_OPTIONS: Readonly<Omit<LeadDeflectionOptions, 'fs'>> = Object.freeze({
  windowMs: 2 * DEFAULT_QRS_CREDIBILITY_OPTIONS.qrsHalfMs,
  mainsHz: Object.freeze([50, 60]),
  keepMs: 30_000,
});

/**
 * The largest QRS-sized deflection of a lead over time (pure: no I/O, no timers): the peak-to-peak (mV) of
 * `windowMs` windows of the lead with mains hum taken out (`mainsHz`), the largest per chunk, kept with the
 * chunk's end time.
 * The ECG monitor asks it whether a stretch of lead showed anything as large as the smallest QRS complex
 * it believes (`QrsCredibilityOptions.minQrsMv`, 0.15 mV) when its QRS detector could not tell (still
 * learning a lead that was put back on, or contact lost too often for it to learn). 0.03 mV SD of white
 * baseline noise measures about 0.05 mV at 360 Hz (0.08 at 128 Hz), 50 or 60 Hz hum of 0.5 mV amplitude
 * 0.06-0.12 mV (QA: with a lightly smoothed lead, 8 ms, hum of 0.1 mV measured 0.2 mV and more, so a stopped
 * heart under hum was never quiet, and 128 Hz white noise of 0.03 mV measured 0.18); MIT-BIH QRS complexes
 * 0.3-3 mV. Baseline wander is not taken out: 0.5 mV at 0.3 Hz measures 0.14-0.16 mV. Windows do not span a
 * `break` (contact lost: what comes back may sit at another level).
 */
export class LeadDeflection {
  readonly options: LeadDeflectionOptions;
  private readonly window: number;
  /** Lengths (samples) of the moving averages, one per mains frequency. */
  private readonly averages: readonly number[];
  /** The last inputs (mV) of each moving average, and the last smoothed samples (less than a window). */
  private inputs: number[][];
  private tail: number[] = [];
  private readonly maxima: { endMs: number; mv: number }[] = [];

  constructor(options: Partial<LeadDeflectionOptions> & { fs: number }) {
    this.options = { ...DEFAULT_LEAD_DEFLECTION_OPTIONS, ...options };
    this.window = Math.max(2, Math.round((this.options.windowMs * this.options.fs) / 1000));
    this.averages = this.options.mainsHz.map((hz) => Math.max(1, Math.round(this.options.fs / hz)));
    this.inputs = this.averages.map(() => []);
  }

  /** A chunk of the lead in ADC units (`gain` per mV) ending at device time `endMs`. */
  push(samples: ArrayLike<number>, gain: number, endMs: number): void {
    const smoothed = this.tail;
    const start = smoothed.length;
    for (let i = 0; i < samples.length; i++) {
      let v: number | undefined = (samples[i] as number) / (gain || 1);
      for (let s = 0; s < this.averages.length && v !== undefined; s++) {
        const n = this.averages[s] as number;
        const input = this.inputs[s] as number[];
        input.push(v);
        if (input.length > n) input.shift();
        v = input.length === n ? input.reduce((a, b) => a + b, 0) / n : undefined;
      }
      if (v !== undefined) smoothed.push(v);
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
    this.inputs = this.averages.map(() => []);
    this.tail = [];
  }

  /** The largest deflection (mV) of the chunks that ended after `fromMs`; 0 when none did. */
  largestSince(fromMs: number): number {
    let largest = 0;
    for (const m of this.maxima) if (m.endMs > fromMs && m.mv > largest) largest = m.mv;
    return largest;
  }
}
