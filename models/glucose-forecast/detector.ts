/**
 * Training of the predicted-hypoglycaemia detector (device-sdk/signal/glucose/hypo-detector.ts) and
 * the choice of its alert policy, used by train.ts.
 *
 * Rows: every reading where the forecast ran, at or above 70 mg/dL and outside an ongoing event
 * (where the device never raises the alert); label 1 when a consensus event starts 10 to 60 min
 * after the reading, 0 when none starts within 60 min; readings with an onset less than 10 min
 * ahead are left out (an alert there is neither false nor in time). Plain binary cross-entropy, so
 * the output is a probability. The policy is chosen on subjects the detector was not trained on.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../device-sdk/inference/index.js';
import { DETECTOR_SPEC, type HypoAlertPolicy } from '../../device-sdk/signal/glucose/hypo-detector.js';
import { hypoEvents } from '../../device-sdk/signal/glucose/metrics.js';
import { type GlucosePoint, MS_PER_MIN } from '../../device-sdk/signal/glucose/types.js';
import type { Subject } from './data.js';
import { detectorAlertTimes, scoreAlerts, sumScores, type TracePrediction } from './evaluate.js';
import { fitShuffled, type TrainingRows } from './fit.js';

/** The detector's training rows: x its features, y the label (one value per row). */
export type DetectorRows = TrainingRows;

/** The detector's training rows of `subjects` (with their forecast runs `preds`). */
export function detectorRows(subjects: readonly Subject[], preds: readonly TracePrediction[]): DetectorRows {
  const D = DETECTOR_SPEC.features;
  const xs: Float32Array[] = [];
  const ys: number[] = [];
  subjects.forEach((s, k) => {
    const pred = preds[k] as TracePrediction;
    const events = hypoEvents(s.trace, 70, 1);
    pred.rows.forEach((i, r) => {
      const p = s.trace[i] as GlucosePoint;
      if (p.gl < 70 || events.some((e) => p.t >= e.start && p.t < e.end + 15 * MS_PER_MIN)) return;
      const ahead = events.map((e) => (e.start - p.t) / MS_PER_MIN).filter((m) => m >= 0 && m <= DETECTOR_SPEC.leadMaxMin);
      if (ahead.some((m) => m < DETECTOR_SPEC.leadMinMin)) return;
      xs.push(pred.detectorX.subarray(r * D, r * D + D));
      ys.push(ahead.length > 0 ? 1 : 0);
    });
  });
  const x = new Float32Array(ys.length * D);
  xs.forEach((row, r) => x.set(row, r * D));
  return { x, y: Float32Array.from(ys), n: ys.length };
}

export function buildDetector(seed: number): tfl.LayersModel {
  const init = (k: number) => tfl.initializers.glorotUniform({ seed: seed + k });
  const model = tfl.sequential();
  model.add(tfl.layers.dense({ inputShape: [DETECTOR_SPEC.features], units: 16, activation: 'relu', kernelInitializer: init(11) }));
  model.add(tfl.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init(12) }));
  model.add(tfl.layers.dense({ units: 1, activation: 'linear', kernelInitializer: init(13) }));
  return model;
}

function bce(yTrue: tf.Tensor, logits: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, yTrue)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))))));
}

/** Trains the detector (the training loop of fit.ts: batches of 256, shuffle seed `seed + 1`). */
export async function trainDetector(rows: DetectorRows, seed: number, epochs: number, log: (epoch: number, loss: number) => void): Promise<tfl.LayersModel> {
  return fitShuffled(buildDetector(seed), bce, rows, { features: DETECTOR_SPEC.features, targets: 1, batch: 256, epochs, shuffleSeed: seed + 1, onEpoch: log });
}

export interface PolicyChoice {
  policy: HypoAlertPolicy;
  catchRate: number;
  falsePerDay: number;
}

/** The policy grid searched: alert-on probability, release ratio (hysteresis), hold-off after a low, re-arm level. */
export function policyGrid(): HypoAlertPolicy[] {
  const out: HypoAlertPolicy[] = [];
  for (let k = 0; k <= 23; k++) {
    const probability = Math.round((0.025 + 0.025 * k) * 1000) / 1000;
    for (const ratio of [1, 0.5, 0.25]) for (const holdoffMin of [0, 30, 60]) for (const rearmLevel of [0, 80]) out.push({ probability, release: Math.round(probability * ratio * 1000) / 1000, holdoffMin, rearmLevel, rearmAfterMin: 120 });
  }
  return out;
}

/** Scores a policy over subjects with their detector probabilities. */
export function scorePolicy(subjects: readonly Subject[], probs: readonly Float64Array[], policy: HypoAlertPolicy): ReturnType<typeof sumScores> {
  return sumScores(subjects.map((s, k) => scoreAlerts(s.trace, detectorAlertTimes(s.trace, probs[k] as Float64Array, policy))));
}

/** The most events caught at no more than `budget` false episodes per subject-day (ties: fewer false episodes). */
export function choosePolicy(subjects: readonly Subject[], probs: readonly Float64Array[], budget: number): PolicyChoice {
  let best: PolicyChoice | undefined;
  for (const policy of policyGrid()) {
    const s = scorePolicy(subjects, probs, policy);
    const within = s.falsePerDay <= budget;
    const bestWithin = best !== undefined && best.falsePerDay <= budget;
    const better =
      best === undefined ||
      (within && !bestWithin) ||
      (within && bestWithin && (s.catchRate > best.catchRate || (s.catchRate === best.catchRate && s.falsePerDay < best.falsePerDay))) ||
      (!within && !bestWithin && s.falsePerDay < best.falsePerDay);
    if (better) best = { policy, catchRate: s.catchRate, falsePerDay: s.falsePerDay };
  }
  return best as PolicyChoice;
}
