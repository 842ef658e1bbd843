/**
 * The predicted-hypoglycaemia detector (models/glucose-forecast, `detector.json`): features at a
 * reading, and the alert logic a device runs on the detector's probability. Pure.
 *
 * The detector estimates P(a hypoglycaemic event, < 70 mg/dL for >= 15 min, starts 10 to 60 min
 * after this reading) from the recent trace and the 30-minute forecast, using only readings up to
 * the reading (no look-ahead). Features (17), at reading i with the forecast features `f`
 * (forecast.ts) and the forecast `fc`:
 *   0       (g(t) - 100) / 30
 *   1, 2    slope over the last 15 and 30 minutes ((mg/dL/min) / 2; f[12], f[13])
 *   3       acceleration (f[14])
 *   4       slope over the last 60 minutes of the 5-minute grid, / 2
 *   5       (forecast at t + 30 - 100) / 30
 *   6       the forecast's event logit, clipped to +-8, / 4
 *   7       (lowest grid value of the last 60 min - 100) / 30
 *   8, 9    (lowest reading of the last 3 h, of the last 24 h - 100) / 30
 *   10      hours since the last reading below 70 (within 24 h) / 24; 1 when none
 *   11..14  the 24-hour pattern of the forecast features (mean, share < 70, share < 80, hours of data)
 *   15      share of the grid's older points that were missing (f[15])
 *   16      share of the readings of the last 3 h below 80
 */
import { FORECAST_SPEC, type GlucoseForecast, gridSlope } from './forecast.js';
import { type GlucosePoint, MS_PER_MIN } from './types.js';

export const DETECTOR_SPEC = Object.freeze({
  features: 17,
  center: 100,
  scale: 30,
  /** The event whose onset the detector predicts starts this many minutes ahead (closed interval). */
  leadMinMin: 10,
  leadMaxMin: 60,
});

const HOUR = 60 * MS_PER_MIN;

/** The detector's features at reading `i` of a sorted trace, given that reading's forecast features and forecast. */
export function detectorFeatures(trace: readonly GlucosePoint[], i: number, f: ArrayLike<number>, fc: GlucoseForecast): Float32Array {
  const s = DETECTOR_SPEC;
  const p = trace[i] as GlucosePoint;
  const norm = (g: number) => (g - s.center) / s.scale;
  // The 5-minute grid of the forecast features: v[k] = g(t - 5k).
  const v: number[] = [p.gl];
  for (let k = 1; k <= FORECAST_SPEC.historySteps; k++) v.push(p.gl + (f[k] as number) * FORECAST_SPEC.deltaScale);
  const slope60 = gridSlope(v, 0, v.length - 1);
  let min3h = p.gl;
  let min24h = p.gl;
  let lastLow: number | undefined;
  let n3h = 0;
  let below80in3h = 0;
  for (let k = i; k >= 0; k--) {
    const q = trace[k] as GlucosePoint;
    const age = p.t - q.t;
    if (age >= 24 * HOUR) break;
    min24h = Math.min(min24h, q.gl);
    if (age < 3 * HOUR) {
      min3h = Math.min(min3h, q.gl);
      n3h++;
      if (q.gl < 80) below80in3h++;
    }
    if (lastLow === undefined && q.gl < 70) lastLow = q.t;
  }
  const logit = Math.log(fc.hypoProbability / Math.max(1e-12, 1 - fc.hypoProbability));
  const out = new Float32Array(s.features);
  out[0] = norm(p.gl);
  out[1] = f[12] as number;
  out[2] = f[13] as number;
  out[3] = f[14] as number;
  out[4] = slope60 / FORECAST_SPEC.slopeScale;
  out[5] = norm(fc.predGl);
  out[6] = Math.max(-8, Math.min(8, Number.isFinite(logit) ? logit : Math.sign(logit) * 8)) / 4;
  out[7] = norm(Math.min(...v));
  out[8] = norm(min3h);
  out[9] = norm(min24h);
  out[10] = lastLow === undefined ? 1 : (p.t - lastLow) / (24 * HOUR);
  out[11] = f[16] as number;
  out[12] = f[17] as number;
  out[13] = f[18] as number;
  out[14] = f[19] as number;
  out[15] = f[15] as number;
  out[16] = below80in3h / Math.max(1, n3h);
  return out;
}

/** The detector's output (a logit) as a probability. */
export function detectorProbability(logit: number): number {
  return 1 / (1 + Math.exp(-logit));
}

/**
 * The alert policy on the detector's probability, as a device runs it at each reading:
 * - the alert turns on at `probability` and, once on, stays on while the probability is at least
 *   `release` (hysteresis);
 * - never at a reading below 70 mg/dL (that is the hypoglycaemia alert of its own, firmware/rules.ts)
 *   nor while a hypoglycaemic event is going on, as the device sees it from the readings so far
 *   (consensus: 15 min below 70 start it, 15 min at or above 70 end it; a gap over 15 min ends it);
 * - after an event has ended, not for `holdoffMin` minutes and not before a reading at or above
 *   `rearmLevel` mg/dL (0: no such condition), unless `rearmAfterMin` minutes have passed.
 */
export interface HypoAlertPolicy {
  probability: number;
  release: number;
  holdoffMin: number;
  rearmLevel: number;
  rearmAfterMin: number;
}

export const DEFAULT_HYPO_ALERT_POLICY: Readonly<HypoAlertPolicy> = Object.freeze({ probability: 0.3, release: 0.15, holdoffMin: 0, rearmLevel: 0, rearmAfterMin: 120 });

const READING_MS = 5 * MS_PER_MIN;
const EVENT_MS = 15 * MS_PER_MIN;

/** The alert state of one sensor, reading by reading (readings in time order). */
export class HypoAlertLogic {
  private readonly policy: HypoAlertPolicy;
  private lastT: number | undefined;
  private belowStart: number | undefined;
  private aboveStart: number | undefined;
  private inEvent = false;
  private eventEnd = Number.NEGATIVE_INFINITY;
  private rearmed = true;
  private active = false;

  constructor(policy: HypoAlertPolicy) {
    this.policy = policy;
  }

  /** Whether a hypoglycaemic event is going on (as far as the readings so far show). */
  get eventOngoing(): boolean {
    return this.inEvent;
  }

  /** Whether the predicted-hypo alert is on at a reading of `gl` mg/dL at `t` (ms), with the detector's probability (undefined: the detector could not run). */
  step(t: number, gl: number, probability: number | undefined): boolean {
    const p = this.policy;
    if (this.lastT !== undefined && t - this.lastT > EVENT_MS) {
      // A gap: the runs restart; an event in progress ended somewhere in the missing data.
      this.belowStart = undefined;
      this.aboveStart = undefined;
      if (this.inEvent) this.endEvent(this.lastT);
    }
    this.lastT = t;
    if (gl < 70) {
      this.aboveStart = undefined;
      this.belowStart ??= t;
      if (!this.inEvent && t - this.belowStart + READING_MS >= EVENT_MS) this.inEvent = true;
      this.active = false;
      return false;
    }
    this.belowStart = undefined;
    if (this.inEvent) {
      this.aboveStart ??= t;
      if (t - this.aboveStart + READING_MS >= EVENT_MS) this.endEvent(t);
      else {
        this.active = false;
        return false;
      }
    }
    const since = t - this.eventEnd;
    if (gl >= p.rearmLevel) this.rearmed = true;
    const blocked = since < p.rearmAfterMin * MS_PER_MIN && (since < p.holdoffMin * MS_PER_MIN || !this.rearmed);
    if (blocked || probability === undefined) {
      this.active = false;
      return false;
    }
    this.active = probability >= (this.active ? p.release : p.probability);
    return this.active;
  }

  private endEvent(t: number): void {
    this.inEvent = false;
    this.aboveStart = undefined;
    this.eventEnd = t;
    this.rearmed = false;
  }
}

/** The alert state at every reading of a sorted trace (probability NaN where the detector did not run). */
export function hypoAlertStates(trace: readonly GlucosePoint[], probabilities: ArrayLike<number>, policy: HypoAlertPolicy): Uint8Array {
  const logic = new HypoAlertLogic(policy);
  const out = new Uint8Array(trace.length);
  for (let i = 0; i < trace.length; i++) {
    const p = probabilities[i] as number;
    out[i] = logic.step((trace[i] as GlucosePoint).t, (trace[i] as GlucosePoint).gl, Number.isNaN(p) ? undefined : p) ? 1 : 0;
  }
  return out;
}
