/**
 * Evaluation of the 30-minute forecast and of predicted-hypoglycaemia alerts, the same way for the
 * training script, the model card, the test suite and the CLI.
 *
 * - RMSE at 30 min over every reading with features (30 min of gap-free history) and a reference
 *   value at t + 30 min (interpolated between readings <= 15 min apart). Baselines on the same
 *   points: persistence (the last reading) and linear extrapolation of the least-squares line
 *   through the readings of the last 30 minutes.
 * - Hypoglycaemic events: consensus level 1 events (< 70 mg/dL for >= 15 min, device-sdk/signal/
 *   glucose/metrics.ts); the onset is the first reading below 70. An event is caught when an alert
 *   falls 10 to 60 min before its onset. Alerts less than 30 min apart form one episode; an episode
 *   is false when no onset follows within 60 min of any of its alerts. Alerts are evaluated at every
 *   reading (the alert state at that reading); no predicted alert is raised at a reading already
 *   below 70, and alerts while an event is going on (from its onset until it has ended by the
 *   consensus rule, 15 min at or above 70) are not scored: they predict nothing, the event is there.
 * - Subject-days: the time the readings cover (each reading stands for the time to the next one,
 *   intervals over 15 min count 5 min: the weeks between the Hall recordings' sensor wears are not
 *   monitored days).
 */
import { cgmMetrics, hypoEvents, readingWeights } from '../../device-sdk/signal/glucose/metrics.js';
import { decodeForecast, FORECAST_SPEC, forecastFeatures, valueAt } from '../../device-sdk/signal/glucose/forecast.js';
import { DETECTOR_SPEC, detectorFeatures, detectorProbability, type HypoAlertPolicy, hypoAlertStates } from '../../device-sdk/signal/glucose/hypo-detector.js';
import { slope } from '../../device-sdk/signal/glucose/trend.js';
import { type GlucosePoint, MS_PER_MIN } from '../../device-sdk/signal/glucose/types.js';

/** Model outputs for a batch of feature rows (n x features, row-major) -> n x 2, row-major. */
export type BatchPredictor = (features: Float32Array, n: number) => Float32Array | Promise<Float32Array>;

export interface TracePrediction {
  /** Per reading: forecast at t + 30 (persistence where the model has no features), hypo probability (0 without features), whether the model ran. */
  predGl: Float64Array;
  prob: Float64Array;
  modelRan: Uint8Array;
  /** The detector's features at the readings where the forecast ran (row r belongs to reading `rows[r]`). */
  detectorX: Float32Array;
  rows: number[];
}

/** Runs the model at every reading of a sorted trace, using only readings up to each one. */
export async function predictTrace(trace: readonly GlucosePoint[], predict: BatchPredictor): Promise<TracePrediction> {
  const n = trace.length;
  const F = FORECAST_SPEC.features;
  const rows: number[] = [];
  const feats = new Float32Array(n * F);
  for (let i = 0; i < n; i++) {
    const f = forecastFeatures(trace, i);
    if (f === undefined) continue;
    feats.set(f, rows.length * F);
    rows.push(i);
  }
  const predGl = Float64Array.from(trace, (p) => p.gl);
  const prob = new Float64Array(n);
  const modelRan = new Uint8Array(n);
  const D = DETECTOR_SPEC.features;
  const detectorX = new Float32Array(rows.length * D);
  if (rows.length > 0) {
    const out = await predict(feats.subarray(0, rows.length * F), rows.length);
    rows.forEach((i, r) => {
      const fc = decodeForecast((trace[i] as GlucosePoint).gl, [out[2 * r] as number, out[2 * r + 1] as number]);
      predGl[i] = fc.predGl;
      prob[i] = fc.hypoProbability;
      modelRan[i] = 1;
      detectorX.set(detectorFeatures(trace, i, feats.subarray(r * F, r * F + F), fc), r * D);
    });
  }
  return { predGl, prob, modelRan, detectorX, rows };
}

/** The detector (feature rows -> one logit each). */
export type DetectorPredictor = (features: Float32Array, n: number) => Float32Array;

/** The detector's probability at every reading of a trace (NaN where the forecast features are missing). */
export function detectorTrace(trace: readonly GlucosePoint[], pred: TracePrediction, detector: DetectorPredictor): Float64Array {
  const out = new Float64Array(trace.length).fill(Number.NaN);
  if (pred.rows.length === 0) return out;
  const logits = detector(pred.detectorX, pred.rows.length);
  pred.rows.forEach((i, r) => {
    out[i] = detectorProbability(logits[r] as number);
  });
  return out;
}

/** The reference value at t + horizon for every reading (NaN when not available). */
export function targets(trace: readonly GlucosePoint[], horizonMin: number = FORECAST_SPEC.horizonMin): Float64Array {
  const last = trace.length - 1;
  return Float64Array.from(trace, (p) => valueAt(trace, last, p.t + horizonMin * MS_PER_MIN) ?? Number.NaN);
}

/** Linear extrapolation to t + horizon of the least-squares line through the readings of the last 30 min (persistence with one reading). */
export function linearExtrapolation(trace: readonly GlucosePoint[], i: number, horizonMin: number = FORECAST_SPEC.horizonMin): number {
  const p = trace[i] as GlucosePoint;
  const window: GlucosePoint[] = [];
  for (let k = i; k >= 0 && p.t - (trace[k] as GlucosePoint).t <= 30 * MS_PER_MIN; k--) window.unshift(trace[k] as GlucosePoint);
  const s = slope(window);
  return s === undefined ? p.gl : p.gl + s * horizonMin;
}

export interface AlertScore {
  events: number;
  caught: number;
  episodes: number;
  falseEpisodes: number;
  subjectDays: number;
}

/** Scores alert times against the onsets of a trace's consensus level 1 events. */
export function scoreAlerts(trace: readonly GlucosePoint[], allAlertTimes: readonly number[]): AlertScore {
  const events = hypoEvents(trace, 70, 1);
  const onsets = events.map((e) => e.start);
  // An event goes on until 15 min at or above 70 have passed after its last reading below 70.
  const alertTimes = allAlertTimes.filter((a) => !events.some((e) => a >= e.start && a < e.end + 15 * MS_PER_MIN));
  const caught = onsets.filter((o) => alertTimes.some((a) => a >= o - 60 * MS_PER_MIN && a <= o - 10 * MS_PER_MIN)).length;
  let episodes = 0;
  let falseEpisodes = 0;
  let k = 0;
  while (k < alertTimes.length) {
    let j = k;
    while (j + 1 < alertTimes.length && (alertTimes[j + 1] as number) - (alertTimes[j] as number) < 30 * MS_PER_MIN) j++;
    const ep = alertTimes.slice(k, j + 1);
    episodes++;
    if (!ep.some((a) => onsets.some((o) => o >= a && o <= a + 60 * MS_PER_MIN))) falseEpisodes++;
    k = j + 1;
  }
  const covered = readingWeights(trace).reduce((a, b) => a + b, 0);
  return { events: onsets.length, caught, episodes, falseEpisodes, subjectDays: covered / 86_400_000 };
}

export function sumScores(scores: readonly AlertScore[]): AlertScore & { catchRate: number; falsePerDay: number } {
  const s = scores.reduce((a, b) => ({ events: a.events + b.events, caught: a.caught + b.caught, episodes: a.episodes + b.episodes, falseEpisodes: a.falseEpisodes + b.falseEpisodes, subjectDays: a.subjectDays + b.subjectDays }), { events: 0, caught: 0, episodes: 0, falseEpisodes: 0, subjectDays: 0 });
  return { ...s, catchRate: s.events > 0 ? s.caught / s.events : 0, falsePerDay: s.subjectDays > 0 ? s.falseEpisodes / s.subjectDays : 0 };
}

/** Readings where the detector's alert is on under `policy` (the device's alert logic, device-sdk/signal/glucose/hypo-detector.ts). */
export function detectorAlertTimes(trace: readonly GlucosePoint[], probabilities: ArrayLike<number>, policy: HypoAlertPolicy): number[] {
  const on = hypoAlertStates(trace, probabilities, policy);
  return trace.filter((_, i) => on[i] === 1).map((p) => p.t);
}

/** Alert times of the plain rule "glucose < `level`" (readings already below 70 excluded, as for the model). */
export function ruleAlertTimes(trace: readonly GlucosePoint[], level = 85): number[] {
  return trace.filter((p) => p.gl < level && p.gl >= 70).map((p) => p.t);
}

/** The same rule behind the detector's alert logic (disarmed after a reading below 70 until recovery; `policy` without its probabilities). */
export function gatedRuleAlertTimes(trace: readonly GlucosePoint[], level: number, policy: HypoAlertPolicy): number[] {
  return detectorAlertTimes(trace, Float64Array.from(trace, (p) => (p.gl < level ? 1 : 0)), { ...policy, probability: 0.5, release: 0.5 });
}

export interface SubjectEvaluation {
  id: string;
  /** Sum of squared errors and count over the scored points: model, persistence, linear extrapolation. */
  sse: { model: number; persistence: number; linear: number };
  points: number;
  model: AlertScore;
  rule85: AlertScore;
}

export async function evaluateSubject(id: string, trace: readonly GlucosePoint[], predict: BatchPredictor, detector: DetectorPredictor, policy: HypoAlertPolicy): Promise<SubjectEvaluation> {
  const pred = await predictTrace(trace, predict);
  const probs = detectorTrace(trace, pred, detector);
  const target = targets(trace);
  const sse = { model: 0, persistence: 0, linear: 0 };
  let points = 0;
  for (let i = 0; i < trace.length; i++) {
    const y = target[i] as number;
    if (!pred.modelRan[i] || Number.isNaN(y)) continue;
    points++;
    sse.model += ((pred.predGl[i] as number) - y) ** 2;
    sse.persistence += ((trace[i] as GlucosePoint).gl - y) ** 2;
    sse.linear += (linearExtrapolation(trace, i) - y) ** 2;
  }
  return { id, sse, points, model: scoreAlerts(trace, detectorAlertTimes(trace, probs, policy)), rule85: scoreAlerts(trace, ruleAlertTimes(trace)) };
}

export interface EvaluationSummary {
  subjects: number;
  points: number;
  rmse: { model: number; persistence: number; linear: number };
  /** 1 - model / persistence. */
  improvementOverPersistence: number;
  alerts: ReturnType<typeof sumScores>;
  rule85: ReturnType<typeof sumScores>;
  /** Mean time in range etc. are in the card; this is the count of consensus level 1 events. */
  hypoEvents: number;
}

export function summarize(evals: readonly SubjectEvaluation[]): EvaluationSummary {
  const points = evals.reduce((a, e) => a + e.points, 0);
  const r = (k: 'model' | 'persistence' | 'linear') => Math.sqrt(evals.reduce((a, e) => a + e.sse[k], 0) / Math.max(1, points));
  const rmse = { model: r('model'), persistence: r('persistence'), linear: r('linear') };
  const alerts = sumScores(evals.map((e) => e.model));
  return { subjects: evals.length, points, rmse, improvementOverPersistence: 1 - rmse.model / rmse.persistence, alerts, rule85: sumScores(evals.map((e) => e.rule85)), hypoEvents: alerts.events };
}

/** Consensus metrics over a whole set (for the card's description of the data). */
export function describeSet(traces: readonly (readonly GlucosePoint[])[]): { subjects: number; readings: number; days: number; calendarDays: number; meanTir: number; meanTbr70: number } {
  const m = traces.map((t) => cgmMetrics(t));
  return {
    subjects: m.length,
    readings: m.reduce((a, x) => a + x.readings, 0),
    days: m.reduce((a, x) => a + (x.days * x.dataSufficiency) / 100, 0),
    calendarDays: m.reduce((a, x) => a + x.days, 0),
    meanTir: m.reduce((a, x) => a + x.tir, 0) / m.length,
    meanTbr70: m.reduce((a, x) => a + x.tbr70, 0) / m.length,
  };
}
