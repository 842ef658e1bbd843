import { DEFAULT_MAINS_HUM_FILTER_OPTIONS, MainsHumFilter } from './mains-hum-filter.js';
import { DEFAULT_QRS_CREDIBILITY_OPTIONS, span } from './qrs-credibility.js';

export interface LeadDeflectionOptions {
  fs: number;
  /** Width of the windows whose peak-to-peak is measured (ms): about a QRS complex. */
  windowMs: number;
  /**
   * Mains frequencies (Hz) whose hum is taken out before measuring, by `MainsHumFilter` (moving averages a period
   * of each long, and a notch where the rate holds no whole period, as 128 Hz); white noise shrinks, and a QRS
   * complex keeps most of its size. MIT-BIH (26 records, 4 s stretches every 1 s, 46,852 at 360 Hz): every
   * stretch measures 0.15 mV or more but 3 at 360 and 250 Hz, 4 at 128 Hz with 20 ADC units per mV, all in
   * 116 at 1335-1371 s, where the QRS leaves MLII (before the windows' line was taken off: 1 stretch).
   */
  mainsHz: readonly number[];
  /** Per-chunk maxima are kept this long (ms). */
  keepMs: number;
}

export const DEFAULT_LEAD_DEFLECTION_OPTIONS: Readonly<Omit<LeadDeflectionOptions, 'fs'>> = Object.freeze({
  windowMs: 2 * DEFAULT_QRS_CREDIBILITY_OPTIONS.qrsHalfMs,
  mainsHz: DEFAULT_MAINS_HUM_FILTER_OPTIONS.mainsHz,
  keepMs: 30_000,
});

/**
 * The largest QRS-sized deflection of a lead over time (pure: no I/O, no timers): the peak-to-peak (mV) of
 * `windowMs` windows of the lead with mains hum taken out (`mainsHz`), the largest per chunk, kept with the
 * chunk's end time.
 * The ECG monitor asks it whether a stretch of lead showed anything as large as the smallest QRS complex
 * it believes (`QrsCredibilityOptions.minQrsMv`, 0.15 mV) when its QRS detector could not tell (still
 * learning a lead that was put back on, or contact lost too often for it to learn). QA: with a lightly smoothed
 * lead, 8 ms, hum of 0.1 mV measured 0.2 mV and more, so a stopped heart under hum was never quiet; MIT-BIH QRS
 * complexes measure 0.3-3 mV. Worst of 10 seeds x 20 s with 0.03 mV SD of noise, at 360 / 250 / 128 Hz (128 Hz:
 * 20 ADC units per mV): the noise alone 0.063 / 0.075 / 0.083 mV; 0.5 mV of 50 Hz hum added 0.064 / 0.076 / 0.076
 * (without the notch at 128 Hz: 0.150). Baseline wander is not taken out: 0.5 mV at 0.3 Hz measures 0.156 / 0.164 /
 * 0.183 mV, so a stopped heart under that much wander is not quiet. Taking each window's least-squares line off
 * fixed that but was reverted the same day: it also shrank low-voltage QRS complexes (MIT-BIH 114 x0.3: 0.150 ->
 * 0.105 mV) and gave living patients with QRS of 0.15-0.35 mV false ecg-no-beats after lead-backs and during
 * flapping contact (QA re-check: 88 -> 293 over a sweep at 128 Hz). A line fitted over 500 ms centred on each window
 * (tried next, not adopted) alarmed that arrest in 10-12.1 s in 39 of 40 seeds (0.03 mV of noise) but doubled the false
 * alarms over QA's flapping sweep at 128 Hz (45 -> 92): those QRS complexes (MIT-BIH 114 x0.3) measure 0.08-0.12 mV
 * without wander (the sweep's rows without wander: 36 false alarms on this code), so a peak-to-peak measure with the
 * wander taken off finds them quiet. Windows do not span a `break` (contact lost,
 * or a value held over a bridged report: what comes back may sit at another level).
 */
export class LeadDeflection {
  readonly options: LeadDeflectionOptions;
  private readonly window: number;
  /** The mains hum filter (`MainsHumFilter`), and the last hum-free samples (less than a window). */
  private readonly hum: MainsHumFilter;
  private tail: number[] = [];
  private readonly maxima: { endMs: number; mv: number }[] = [];

  constructor(options: Partial<LeadDeflectionOptions> & { fs: number }) {
    this.options = { ...DEFAULT_LEAD_DEFLECTION_OPTIONS, ...options };
    this.window = Math.max(2, Math.round((this.options.windowMs * this.options.fs) / 1000));
    this.hum = new MainsHumFilter({ fs: this.options.fs, mainsHz: this.options.mainsHz });
  }

  /** A chunk of the lead in ADC units (`gain` per mV) ending at device time `endMs`. */
  push(samples: ArrayLike<number>, gain: number, endMs: number): void {
    const smoothed = this.tail;
    const start = smoothed.length;
    for (let i = 0; i < samples.length; i++) {
      const v = this.hum.push((samples[i] as number) / (gain || 1));
      if (v !== undefined) smoothed.push(v);
    }
    // Windows ending in this chunk, a quarter of a window apart, the last at its last sample (a lead with less
    // than a window since the last break: all of it).
    const step = Math.max(1, this.window >> 2);
    const ends: number[] = [];
    for (let end = Math.max(this.window, start + 1); end < smoothed.length; end += step) ends.push(end);
    if (smoothed.length > start) ends.push(smoothed.length);
    let largest = 0;
    for (const end of ends) largest = Math.max(largest, span(smoothed, Math.max(0, end - this.window), end));
    this.tail = smoothed.slice(Math.max(0, smoothed.length - this.window + 1));
    this.maxima.push({ endMs, mv: largest });
    while ((this.maxima[0]?.endMs ?? endMs) < endMs - this.options.keepMs) this.maxima.shift();
  }

  /** Contact lost (or a new stream): the next chunk starts afresh. */
  break(): void {
    this.hum.reset();
    this.tail = [];
  }

  /** The largest deflection (mV) of the chunks that ended after `fromMs`; 0 when none did. */
  largestSince(fromMs: number): number {
    let largest = 0;
    for (const m of this.maxima) if (m.endMs > fromMs && m.mv > largest) largest = m.mv;
    return largest;
  }
}
