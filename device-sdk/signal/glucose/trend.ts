/**
 * Rate of change and trend arrows of a CGM trace, on irregular sampling. The rate is the slope of a
 * least-squares line through the readings of the last `windowMin` minutes (at least two readings,
 * no gap longer than `maxGapMin` inside the window), in mg/dL/min.
 *
 * Arrow bands as CGM receivers show them (Dexcom G6/G7 user guides; FreeStyle Libre uses the same
 * 1 and 2 mg/dL/min cut points with five arrows):
 *   > 3 rising rapidly (double up), 2..3 rising (up), 1..2 rising slowly (45 degrees up),
 *   -1..1 steady (flat), -2..-1 falling slowly, -3..-2 falling, < -3 falling rapidly.
 */
import { type GlucosePoint, MS_PER_MIN } from './types.js';

export interface TrendOptions {
  windowMin: number;
  maxGapMin: number;
}

export const DEFAULT_TREND_OPTIONS: Readonly<TrendOptions> = Object.freeze({ windowMin: 15, maxGapMin: 15 });

export const TREND_LABELS = ['falling-rapidly', 'falling', 'falling-slowly', 'steady', 'rising-slowly', 'rising', 'rising-rapidly'] as const;
export type TrendLabel = (typeof TREND_LABELS)[number];

export const TREND_ARROWS: Readonly<Record<TrendLabel, string>> = Object.freeze({
  'falling-rapidly': '⇊',
  falling: '↓',
  'falling-slowly': '↘',
  steady: '→',
  'rising-slowly': '↗',
  rising: '↑',
  'rising-rapidly': '⇈',
});

/** The trend band of a rate (mg/dL/min). Band edges belong to the slower band (exactly 2 is rising slowly). */
export function trendLabel(rate: number): TrendLabel {
  if (rate > 3) return 'rising-rapidly';
  if (rate > 2) return 'rising';
  if (rate > 1) return 'rising-slowly';
  if (rate >= -1) return 'steady';
  if (rate >= -2) return 'falling-slowly';
  if (rate >= -3) return 'falling';
  return 'falling-rapidly';
}

/** Least-squares slope (mg/dL/min) of `points` (at least two distinct times), or undefined. */
export function slope(points: readonly GlucosePoint[]): number | undefined {
  if (points.length < 2) return undefined;
  const t0 = (points[0] as GlucosePoint).t;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += (p.t - t0) / MS_PER_MIN;
    sy += p.gl;
  }
  const mx = sx / points.length;
  const my = sy / points.length;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    const x = (p.t - t0) / MS_PER_MIN - mx;
    sxx += x * x;
    sxy += x * (p.gl - my);
  }
  return sxx > 0 ? sxy / sxx : undefined;
}

/**
 * Rate of change at the last reading of `trace` (sorted by time) from the readings of the last
 * `windowMin` minutes, or undefined when there are not two of them without a gap.
 */
export function rateOfChange(trace: readonly GlucosePoint[], options: Partial<TrendOptions> = {}): number | undefined {
  const o = { ...DEFAULT_TREND_OPTIONS, ...options };
  const last = trace[trace.length - 1];
  if (last === undefined) return undefined;
  const window: GlucosePoint[] = [last];
  for (let i = trace.length - 2; i >= 0; i--) {
    const p = trace[i] as GlucosePoint;
    if (last.t - p.t > o.windowMin * MS_PER_MIN) break;
    if ((window[0] as GlucosePoint).t - p.t > o.maxGapMin * MS_PER_MIN) break;
    window.unshift(p);
  }
  return slope(window);
}

export interface Trend {
  rate: number;
  label: TrendLabel;
  arrow: string;
}

/** Rate, band and arrow at the last reading, or undefined when the rate is unknown. */
export function trendOf(trace: readonly GlucosePoint[], options: Partial<TrendOptions> = {}): Trend | undefined {
  const rate = rateOfChange(trace, options);
  if (rate === undefined) return undefined;
  const label = trendLabel(rate);
  return { rate, label, arrow: TREND_ARROWS[label] };
}
