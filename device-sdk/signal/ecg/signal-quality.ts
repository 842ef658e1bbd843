/**
 * ECG signal quality index (pure: no I/O, no timers), attached to every ECG finding. Per window of
 * `windowMs` it flags:
 * - `lead-off`: peak-to-peak below `flatMv` (a flat line: electrode off or amplifier saturated at a rail);
 * - `saturation`: at least `saturationShare` of the samples sit exactly at the window's extreme values
 *   (plateaus of a clipped signal; a QRS peak lasts one or two samples);
 * - `noise`: the median over 250 ms sub-windows of the summed absolute sample-to-sample change, relative
 *   to the largest peak-to-peak of a sub-window (the QRS amplitude), above `noiseIndex` (muscle and
 *   electrode noise keep every sub-window busy; a clean ECG is quiet outside its QRS complexes);
 * - `baseline-wander`: the sub-window means move by more than `wanderRatio` of that QRS amplitude.
 * The quality is 0 with a lead off, else 1 minus a penalty per flag (saturation 0.5, noise 0.4,
 * wander 0.2), floored at 0.1. `current()` is the worst window of the last `memoryWindows`.
 */
import { upperMedian } from '../stats.js';

export interface SignalQualityOptions {
  fs: number;
  windowMs: number;
  memoryWindows: number;
  flatMv: number;
  saturationShare: number;
  noiseIndex: number;
  wanderRatio: number;
}

export const DEFAULT_SIGNAL_QUALITY_OPTIONS: Readonly<Omit<SignalQualityOptions, 'fs'>> = Object.freeze({
  windowMs: 2000,
  memoryWindows: 3,
  flatMv: 0.05,
  saturationShare: 0.05,
  noiseIndex: 1,
  wanderRatio: 1,
});

export type QualityFlag = 'lead-off' | 'saturation' | 'noise' | 'baseline-wander';

/** What each flag takes off the quality of a window (a lead off makes it 0). */
export const QUALITY_PENALTIES: Readonly<Record<Exclude<QualityFlag, 'lead-off'>, number>> = Object.freeze({ saturation: 0.5, noise: 0.4, 'baseline-wander': 0.2 });
const MIN_QUALITY = 0.1;

/**
 * `w` with `flag` added from another source than the samples (the front end's saturation report), its
 * penalty taken off the quality as `assessWindow` would; `w` itself when it already has the flag.
 */
export function withQualityFlag(w: SignalQualityWindow, flag: Exclude<QualityFlag, 'lead-off'>): SignalQualityWindow {
  if (w.flags.includes(flag)) return w;
  return { ...w, flags: [...w.flags, flag], quality: Math.max(MIN_QUALITY, Math.round((w.quality - QUALITY_PENALTIES[flag]) * 100) / 100) };
}

export interface SignalQualityWindow {
  quality: number;
  flags: QualityFlag[];
  noise: number;
  wander: number;
}

export class SignalQuality {
  readonly options: SignalQualityOptions;
  private readonly buffer: Float64Array;
  private filled = 0;
  private readonly windows: SignalQualityWindow[] = [];

  constructor(options: Partial<SignalQualityOptions> & { fs: number }) {
    this.options = { ...DEFAULT_SIGNAL_QUALITY_OPTIONS, ...options };
    this.buffer = new Float64Array(Math.max(8, Math.round((this.options.windowMs * this.options.fs) / 1000)));
  }

  /** Samples in ADC units with `gain` ADC units per mV. Returns the windows completed by this chunk. */
  push(samples: ArrayLike<number>, gain: number): SignalQualityWindow[] {
    const done: SignalQualityWindow[] = [];
    for (let i = 0; i < samples.length; i++) {
      this.buffer[this.filled++] = (samples[i] as number) / (gain || 1);
      if (this.filled === this.buffer.length) {
        const w = assessWindow(this.buffer, this.options);
        this.windows.push(w);
        if (this.windows.length > this.options.memoryWindows) this.windows.shift();
        done.push(w);
        this.filled = 0;
      }
    }
    return done;
  }

  /** The worst of the recent windows (quality 1 with no flags before the first window). */
  current(): SignalQualityWindow {
    let worst: SignalQualityWindow = { quality: 1, flags: [], noise: 0, wander: 0 };
    for (const w of this.windows) if (w.quality < worst.quality) worst = w;
    const flags = [...new Set(this.windows.flatMap((w) => w.flags))];
    return { ...worst, flags };
  }
}

/** Quality of one window of samples in mV. */
export function assessWindow(x: ArrayLike<number>, options: Omit<SignalQualityOptions, 'fs' | 'windowMs' | 'memoryWindows'> & { fs: number }): SignalQualityWindow {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const p2p = hi - lo;
  if (!(p2p >= options.flatMv)) return { quality: 0, flags: ['lead-off'], noise: 0, wander: 0 };
  // Clipping: plateaus at an extreme that lies far from the bulk of the signal (a flat baseline is not one).
  const mid = upperMedian(x);
  let atRail = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if ((v === hi && hi - mid > 0.3 * p2p) || (v === lo && mid - lo > 0.3 * p2p)) atRail++;
  }
  const sub = Math.max(2, Math.round(0.25 * options.fs));
  // Activity is measured on a moving average of ~14 ms (first null near 70 Hz): white amplifier noise
  // of a few tens of microvolts does not count, muscle noise in the ECG band does.
  const smoothN = Math.max(1, Math.round(options.fs / 72));
  const smooth = new Float64Array(x.length);
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    acc += (x[i] as number) - (i >= smoothN ? (x[i - smoothN] as number) : 0);
    smooth[i] = acc / Math.min(i + 1, smoothN);
  }
  const activity: number[] = [];
  const means: number[] = [];
  let local = 0;
  for (let s = 0; s + sub <= x.length; s += sub) {
    let a = 0;
    let m = 0;
    let slo = Number.POSITIVE_INFINITY;
    let shi = Number.NEGATIVE_INFINITY;
    for (let k = s; k < s + sub; k++) {
      const v = x[k] as number;
      m += v;
      slo = Math.min(slo, v);
      shi = Math.max(shi, v);
      if (k > s) a += Math.abs((smooth[k] as number) - (smooth[k - 1] as number));
    }
    activity.push(a);
    means.push(m / sub);
    local = Math.max(local, shi - slo);
  }
  // Both indices relative to the largest local excursion (the QRS amplitude, wander not included).
  const noise = local > 0 && activity.length > 0 ? upperMedian(activity) / local : 0;
  const wander = means.length > 0 && local > 0 ? (Math.max(...means) - Math.min(...means)) / local : 0;
  const flags: QualityFlag[] = [];
  let quality = 1;
  if (atRail / x.length >= options.saturationShare) {
    flags.push('saturation');
    quality -= QUALITY_PENALTIES.saturation;
  }
  if (noise > options.noiseIndex) {
    flags.push('noise');
    quality -= QUALITY_PENALTIES.noise;
  }
  if (wander > options.wanderRatio) {
    flags.push('baseline-wander');
    quality -= QUALITY_PENALTIES['baseline-wander'];
  }
  return { quality: Math.max(MIN_QUALITY, Math.round(quality * 100) / 100), flags, noise: Math.round(noise * 1000) / 1000, wander: Math.round(wander * 1000) / 1000 };
}
