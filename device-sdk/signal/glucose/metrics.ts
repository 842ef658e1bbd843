/**
 * The international consensus CGM metrics (Battelino et al., Diabetes Care 42(8):1593-1603, 2019)
 * over irregularly sampled traces with gaps. Pure: no I/O, no clock.
 *
 * Time weighting: every reading stands for the time until the next reading, capped at `maxGapMin`
 * (a longer interval is a gap: the reading stands for one nominal interval and the rest is missing
 * data). On a regular 5-minute trace this is exactly "percent of readings", as the consensus counts.
 *
 * Hypoglycaemic events (consensus section "CGM-based definition of hypoglycaemic events"): an event
 * starts with >= 15 consecutive minutes below the threshold (< 70 mg/dL level 1, < 54 mg/dL level 2)
 * and ends with >= 15 consecutive minutes at or above it. A run of readings lasts from its first
 * reading to the end of its last reading's interval, so three 5-minute readings are 15 minutes. A
 * gap breaks a run (the data to prove it lasted is missing). Level 2 events are counted on their own
 * threshold; a level 2 event is also inside a level 1 event.
 */
import type { GlucosePoint } from './types.js';

export interface CgmMetricsOptions {
  /** Nominal sampling interval (min), used for the last reading and for data sufficiency. */
  intervalMin: number;
  /** An interval longer than this (min) is a gap. */
  maxGapMin: number;
  /** Minimum duration (min) below (start) and at or above (end) the threshold for an event. */
  eventMinutes: number;
}

export const DEFAULT_CGM_METRICS_OPTIONS: Readonly<CgmMetricsOptions> = Object.freeze({ intervalMin: 5, maxGapMin: 15, eventMinutes: 15 });

export interface HypoEvent {
  level: 1 | 2;
  /** Time (ms) of the first reading below the threshold. */
  start: number;
  /** End (ms) of the last reading below the threshold in the event. */
  end: number;
  /** Lowest reading in the event (mg/dL). */
  nadir: number;
}

export interface CgmMetrics {
  readings: number;
  /** First and last reading (ms). */
  start: number;
  end: number;
  /** Days from the first reading to the end of the last one. */
  days: number;
  /** Share (%) of the period covered by readings (consensus: >= 70 % of 14 days). */
  dataSufficiency: number;
  /** Time-weighted mean and standard deviation (mg/dL). */
  mean: number;
  sd: number;
  /** Coefficient of variation, % (target <= 36 %). */
  cv: number;
  /** Glucose management indicator, % (3.31 + 0.02392 x mean in mg/dL). */
  gmi: number;
  /** Time in ranges, % of covered time: 70-180, < 70, < 54, > 180, > 250. */
  tir: number;
  tbr70: number;
  tbr54: number;
  tar180: number;
  tar250: number;
  /** Hypoglycaemic events per the consensus start/end rules. */
  hypoEventsLevel1: number;
  hypoEventsLevel2: number;
  events: HypoEvent[];
}

/** Readings sorted by time, with duplicates (same time) and non-finite values dropped. Never mutates the input. */
export function cleanTrace(points: readonly GlucosePoint[]): GlucosePoint[] {
  const sorted = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.gl)).sort((a, b) => a.t - b.t);
  const out: GlucosePoint[] = [];
  for (const p of sorted) if (out.length === 0 || (out[out.length - 1] as GlucosePoint).t !== p.t) out.push(p);
  return out;
}

/** The time (ms) each reading of a sorted trace stands for (see the module comment). */
export function readingWeights(trace: readonly GlucosePoint[], options: Partial<CgmMetricsOptions> = {}): number[] {
  const o = { ...DEFAULT_CGM_METRICS_OPTIONS, ...options };
  const nominal = o.intervalMin * 60_000;
  const maxGap = o.maxGapMin * 60_000;
  return trace.map((p, i) => {
    const next = trace[i + 1];
    if (next === undefined) return nominal;
    const dt = next.t - p.t;
    return dt > maxGap ? nominal : dt;
  });
}

/**
 * Level 1 (< `threshold` 70) or level 2 (< 54) events of a sorted trace, per the consensus rules.
 */
export function hypoEvents(trace: readonly GlucosePoint[], threshold: number, level: 1 | 2, options: Partial<CgmMetricsOptions> = {}): HypoEvent[] {
  const o = { ...DEFAULT_CGM_METRICS_OPTIONS, ...options };
  const weights = readingWeights(trace, o);
  const minMs = o.eventMinutes * 60_000;
  const maxGap = o.maxGapMin * 60_000;
  const events: HypoEvent[] = [];
  let current: HypoEvent | undefined;
  // The run in progress: below or not, its start, its duration so far, its nadir.
  let runBelow: boolean | undefined;
  let runStart = 0;
  let runMs = 0;
  let runNadir = Infinity;
  for (let i = 0; i < trace.length; i++) {
    const p = trace[i] as GlucosePoint;
    const below = p.gl < threshold;
    const prev = trace[i - 1];
    const gap = prev !== undefined && p.t - prev.t > maxGap;
    if (gap && current !== undefined) {
      // Readings after a gap start afresh: the event ended somewhere in the missing data.
      events.push(current);
      current = undefined;
    }
    if (below !== runBelow || gap) {
      runBelow = below;
      runStart = p.t;
      runMs = 0;
      runNadir = Infinity;
    }
    runMs += weights[i] as number;
    if (below) {
      runNadir = Math.min(runNadir, p.gl);
      const runEnd = p.t + (weights[i] as number);
      if (current !== undefined) {
        current.end = runEnd;
        current.nadir = Math.min(current.nadir, p.gl);
      } else if (runMs >= minMs) {
        current = { level, start: runStart, end: runEnd, nadir: runNadir };
      }
    } else if (current !== undefined && runMs >= minMs) {
      events.push(current);
      current = undefined;
    }
  }
  if (current !== undefined) events.push(current);
  return events;
}

/** The consensus metrics of one subject's trace (any order, any sampling). Throws on an empty trace. */
export function cgmMetrics(points: readonly GlucosePoint[], options: Partial<CgmMetricsOptions> = {}): CgmMetrics {
  const o = { ...DEFAULT_CGM_METRICS_OPTIONS, ...options };
  const trace = cleanTrace(points);
  if (trace.length === 0) throw new RangeError('cgmMetrics: no readings');
  const w = readingWeights(trace, o);
  let total = 0;
  let sum = 0;
  for (let i = 0; i < trace.length; i++) {
    total += w[i] as number;
    sum += (w[i] as number) * (trace[i] as GlucosePoint).gl;
  }
  const mean = sum / total;
  let sq = 0;
  const share = { tir: 0, tbr70: 0, tbr54: 0, tar180: 0, tar250: 0 };
  for (let i = 0; i < trace.length; i++) {
    const g = (trace[i] as GlucosePoint).gl;
    const wi = w[i] as number;
    sq += wi * (g - mean) ** 2;
    if (g >= 70 && g <= 180) share.tir += wi;
    if (g < 70) share.tbr70 += wi;
    if (g < 54) share.tbr54 += wi;
    if (g > 180) share.tar180 += wi;
    if (g > 250) share.tar250 += wi;
  }
  // Sample standard deviation (n - 1 in readings) as the consensus tools compute it.
  const n = trace.length;
  const sd = n > 1 ? Math.sqrt((sq / total) * (n / (n - 1))) : 0;
  const start = (trace[0] as GlucosePoint).t;
  const last = trace[n - 1] as GlucosePoint;
  const end = last.t;
  const period = end - start + o.intervalMin * 60_000;
  const pct = (x: number) => (100 * x) / total;
  const l1 = hypoEvents(trace, 70, 1, o);
  const l2 = hypoEvents(trace, 54, 2, o);
  return {
    readings: n,
    start,
    end,
    days: period / 86_400_000,
    dataSufficiency: Math.min(100, (100 * total) / period),
    mean,
    sd,
    cv: mean > 0 ? (100 * sd) / mean : 0,
    gmi: 3.31 + 0.02392 * mean,
    tir: pct(share.tir),
    tbr70: pct(share.tbr70),
    tbr54: pct(share.tbr54),
    tar180: pct(share.tar180),
    tar250: pct(share.tar250),
    hypoEventsLevel1: l1.length,
    hypoEventsLevel2: l2.length,
    events: [...l1, ...l2].sort((a, b) => a.start - b.start || a.level - b.level),
  };
}
