/**
 * Features, targets and decisions of the 30-minute glucose forecast (models/glucose-forecast). Pure.
 *
 * At a reading i of a sorted trace, using only readings 0..i (no look-ahead), the history is
 * resampled on a 5-minute grid ending at the reading's time t (linear interpolation between
 * neighbouring readings no more than `maxGapMin` apart). The model needs the last 30 minutes on the
 * grid without a gap; older grid points (up to 60 minutes) that fall in a gap repeat the newer value
 * and count in the missing share. Features (20):
 *   0       (g(t) - 120) / 50
 *   1..11   (g(t - 5k) - g(t)) / 20, k = 1..11
 *   12, 13  least-squares slope over the last 15 and 30 minutes of the grid, (mg/dL/min) / 2
 *   14      slope over t-15..t minus slope over t-30..t-15, / 2 (acceleration)
 *   15      share of the 11 older grid points that were missing
 *   16..19  the last 24 hours of readings (the person's recent pattern): (mean - 120) / 50, share
 *           below 70, share below 80, hours of data in the window / 24
 * The model outputs two numbers: the change to t + horizon in units of 20 mg/dL, and the logit of
 * "a hypoglycaemic event (< 70 mg/dL for >= 15 min) starts within the next 60 minutes".
 */
import { type GlucosePoint, MS_PER_MIN } from './types.js';

export const FORECAST_SPEC = Object.freeze({
  features: 20,
  patternHours: 24,
  stepMin: 5,
  historySteps: 11,
  requiredSteps: 6,
  maxGapMin: 15,
  center: 120,
  scale: 50,
  deltaScale: 20,
  slopeScale: 2,
  horizonMin: 30,
});

/** Value at time `tq` from readings 0..`last` of `trace` (sorted), interpolated; undefined in a gap or outside. */
export function valueAt(trace: readonly GlucosePoint[], last: number, tq: number, maxGapMin: number = FORECAST_SPEC.maxGapMin): number | undefined {
  let j = last;
  while (j >= 0 && (trace[j] as GlucosePoint).t > tq) j--;
  if (j < 0) return undefined;
  const a = trace[j] as GlucosePoint;
  if (a.t === tq) return a.gl;
  const b = trace[j + 1];
  if (b === undefined || j + 1 > last) return undefined;
  if (b.t - a.t > maxGapMin * MS_PER_MIN) return undefined;
  return a.gl + ((b.gl - a.gl) * (tq - a.t)) / (b.t - a.t);
}

/** Least-squares slope (mg/dL per min) through the 5-minute grid points `from..to` steps back. */
export function gridSlope(v: readonly number[], from: number, to: number): number {
  // Grid points from..to (steps back in time); x in minutes increasing towards the present.
  const n = to - from + 1;
  let mx = 0;
  let my = 0;
  for (let k = from; k <= to; k++) {
    mx += -k * FORECAST_SPEC.stepMin;
    my += v[k] as number;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (let k = from; k <= to; k++) {
    const x = -k * FORECAST_SPEC.stepMin - mx;
    sxx += x * x;
    sxy += x * ((v[k] as number) - my);
  }
  return sxy / sxx;
}

/**
 * The 20 features at reading `i` of `trace` (sorted by time, only readings 0..i are read), or
 * undefined when the last 30 minutes are not covered without a gap.
 */
export function forecastFeatures(trace: readonly GlucosePoint[], i: number): Float32Array | undefined {
  const s = FORECAST_SPEC;
  const p = trace[i];
  if (p === undefined) return undefined;
  const v: number[] = [p.gl];
  let missing = 0;
  // Walk back once: the interpolation index only moves backwards.
  for (let k = 1; k <= s.historySteps; k++) {
    const value = valueAt(trace, i, p.t - k * s.stepMin * MS_PER_MIN);
    if (value === undefined) {
      if (k <= s.requiredSteps) return undefined;
      missing++;
      v.push(v[k - 1] as number);
    } else {
      v.push(value);
    }
  }
  const f = new Float32Array(s.features);
  f[0] = (p.gl - s.center) / s.scale;
  for (let k = 1; k <= s.historySteps; k++) f[k] = ((v[k] as number) - p.gl) / s.deltaScale;
  const s15 = gridSlope(v, 0, 3);
  const s30 = gridSlope(v, 0, 6);
  f[12] = s15 / s.slopeScale;
  f[13] = s30 / s.slopeScale;
  f[14] = (s15 - gridSlope(v, 3, 6)) / s.slopeScale;
  f[15] = missing / s.historySteps;
  let n = 0;
  let sum = 0;
  let below70 = 0;
  let below80 = 0;
  let first = p.t;
  for (let k = i; k >= 0 && p.t - (trace[k] as GlucosePoint).t < s.patternHours * 3_600_000; k--) {
    const g = (trace[k] as GlucosePoint).gl;
    n++;
    sum += g;
    if (g < 70) below70++;
    if (g < 80) below80++;
    first = (trace[k] as GlucosePoint).t;
  }
  f[16] = (sum / n - s.center) / s.scale;
  f[17] = below70 / n;
  f[18] = below80 / n;
  f[19] = (p.t - first) / (s.patternHours * 3_600_000);
  return f;
}

export interface GlucoseForecast {
  /** Forecast glucose (mg/dL) at t + horizon. */
  predGl: number;
  /** Probability that a hypoglycaemic event starts within 60 minutes. */
  hypoProbability: number;
}

/** Turns the model's two outputs at a reading of `gl` into a forecast. */
export function decodeForecast(gl: number, out: ArrayLike<number>): GlucoseForecast {
  const delta = (out[0] as number) * FORECAST_SPEC.deltaScale;
  const logit = out[1] as number;
  return { predGl: gl + delta, hypoProbability: 1 / (1 + Math.exp(-logit)) };
}
