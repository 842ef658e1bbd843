/**
 * Trains the 30-minute glucose forecast (`npm run train:glucose`): a small MLP on the resampled
 * 5-minute history and rate-of-change features (device-sdk/signal/glucose/forecast.ts) predicting the
 * change from the last reading and the logit of "a hypoglycaemic event starts within 60 min".
 *
 * Data: cgm/hall2018.csv and cgm/colas2019.zip from the shared data directory (`--data DIR`, default
 * ../shared/data beside the package). Split by subject (data.ts), seed fixed. Alert thresholds are
 * tuned on the training subjects only; the held-out subjects are evaluated once, with the uint8
 * artifact as shipped. Writes models/glucose-forecast/artifact/ (model.json, weights.bin,
 * medge-model.json, MODEL_CARD.md); sign it afterwards (the npm script does).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, saveQuantizedModel, tf } from '../../device-sdk/inference/index.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { DenseNetwork } from '../../device-sdk/signal/glucose/dense-network.js';
import { FORECAST_SPEC, forecastFeatures, type HypoAlertThresholds } from '../../device-sdk/signal/glucose/forecast.js';
import { hypoEvents } from '../../device-sdk/signal/glucose/metrics.js';
import { MS_PER_MIN } from '../../device-sdk/signal/glucose/types.js';
import { packageRoot } from '../../firmware/package-root.js';
import { loadCgmSubjects, splitSubjects, type Subject } from './data.js';
import { type BatchPredictor, describeSet, evaluateSubject, modelAlertTimes, predictTrace, ruleAlertTimes, scoreAlerts, summarize, sumScores, targets, type TracePrediction } from './evaluate.js';
import { writeModelCard } from './model-card.js';

export const MODEL_ID = 'glucose-forecast';
export const MODEL_VERSION = '1.0.0';
export const SPLIT_SEED = 5;
export const TEST_FRACTION = 0.2;
/** Goal of the alert tuning on training subjects: as many events caught as possible at no more than this many false episodes a day. */
const FALSE_PER_DAY_BUDGET = 0.25;

function progress(label: string, done: number, total: number, extra = ''): void {
  const width = 30;
  const filled = Math.round((width * done) / total);
  process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${extra}   `);
  if (done === total) process.stderr.write('\n');
}

interface Samples {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

/** Training rows: every reading with features and a reference value at t + 30. */
function buildSamples(subjects: readonly Subject[]): Samples {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of subjects) {
    const tr = s.trace;
    const target = targets(tr);
    const onsets = hypoEvents(tr, 70, 1).map((e) => e.start);
    let o = 0;
    for (let i = 0; i < tr.length; i++) {
      const y = target[i] as number;
      if (Number.isNaN(y)) continue;
      const f = forecastFeatures(tr, i);
      if (f === undefined) continue;
      const t = tr[i]!.t;
      while (o < onsets.length && (onsets[o] as number) <= t) o++;
      const next = onsets[o];
      const label = next !== undefined && next - t <= 60 * MS_PER_MIN ? 1 : 0;
      for (const v of f) xs.push(v);
      ys.push((y - tr[i]!.gl) / FORECAST_SPEC.deltaScale, label);
    }
  }
  return { x: Float32Array.from(xs), y: Float32Array.from(ys), n: ys.length / 2 };
}

function buildModel(seed: number): tfl.LayersModel {
  const init = (k: number) => tfl.initializers.glorotUniform({ seed: seed + k });
  const model = tfl.sequential();
  model.add(tfl.layers.dense({ inputShape: [FORECAST_SPEC.features], units: 32, activation: 'relu', kernelInitializer: init(1) }));
  model.add(tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(2) }));
  model.add(tfl.layers.dense({ units: 2, activation: 'linear', kernelInitializer: init(3) }));
  return model;
}

/** Squared error on the change (column 0) plus weighted binary cross-entropy on the event logit (column 1). */
function loss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [dt, lt] = tf.split(yTrue, 2, 1) as [tf.Tensor, tf.Tensor];
    const [dp, lp] = tf.split(yPred, 2, 1) as [tf.Tensor, tf.Tensor];
    const mse = tf.mean(tf.square(tf.sub(dp, dt)));
    // log(1 + exp(-|z|)) + max(z, 0) - z*y, stable.
    const ce = tf.add(tf.sub(tf.relu(lp), tf.mul(lp, lt)), tf.log1p(tf.exp(tf.neg(tf.abs(lp)))));
    const weighted = tf.mean(tf.mul(ce, tf.add(1, tf.mul(lt, 2))));
    return tf.add(mse, weighted);
  });
}

async function train(samples: Samples, seed: number, epochs: number): Promise<tfl.LayersModel> {
  const model = buildModel(seed);
  model.compile({ optimizer: tf.train.adam(2e-3), loss });
  const F = FORECAST_SPEC.features;
  const rng = mulberry32(seed);
  const order = Array.from({ length: samples.n }, (_, i) => i);
  const batch = 512;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    if (epoch === Math.round(epochs * 0.7)) (model.optimizer as unknown as { learningRate: number }).learningRate = 5e-4;
    let total = 0;
    let batches = 0;
    for (let b = 0; b < order.length; b += batch) {
      const idx = order.slice(b, b + batch);
      const x = new Float32Array(idx.length * F);
      const y = new Float32Array(idx.length * 2);
      idx.forEach((k, r) => {
        x.set(samples.x.subarray(k * F, k * F + F), r * F);
        y[2 * r] = samples.y[2 * k] as number;
        y[2 * r + 1] = samples.y[2 * k + 1] as number;
      });
      const xt = tf.tensor2d(x, [idx.length, F]);
      const yt = tf.tensor2d(y, [idx.length, 2]);
      const l = (await model.trainOnBatch(xt, yt)) as number;
      xt.dispose();
      yt.dispose();
      total += l;
      batches++;
      if (batches % 50 === 0) progress(`epoch ${epoch}/${epochs}`, Math.min(b + batch, order.length), order.length, `loss ${(total / batches).toFixed(4)}`);
    }
    progress(`epoch ${epoch}/${epochs}`, order.length, order.length, `loss ${(total / batches).toFixed(4)}`);
  }
  return model;
}

/** The operating point: most events caught within the false-alert budget, on training subjects. */
function tuneThresholds(subjects: readonly Subject[], preds: readonly TracePrediction[]): { thresholds: HypoAlertThresholds; catchRate: number; falsePerDay: number } {
  let best: { thresholds: HypoAlertThresholds; catchRate: number; falsePerDay: number } | undefined;
  const predLevels = [0, ...Array.from({ length: 8 }, (_, k) => 66 + 2 * k)];
  const probLevels = [...Array.from({ length: 13 }, (_, k) => Math.round((0.2 + 0.05 * k) * 100) / 100), 1.01];
  const levels = [75, 80, 85, 400];
  const grid = predLevels.flatMap((predGl) => probLevels.flatMap((probability) => levels.map((level) => ({ predGl, probability, level }))));
  let done = 0;
  for (const thresholds of grid) {
    const s = sumScores(subjects.map((sub, i) => scoreAlerts(sub.trace, modelAlertTimes(sub.trace, preds[i] as TracePrediction, thresholds))));
    const better = best === undefined || (s.falsePerDay <= FALSE_PER_DAY_BUDGET && (best.falsePerDay > FALSE_PER_DAY_BUDGET || s.catchRate > best.catchRate || (s.catchRate === best.catchRate && s.falsePerDay < best.falsePerDay))) || (best.falsePerDay > FALSE_PER_DAY_BUDGET && s.falsePerDay < best.falsePerDay);
    if (better) best = { thresholds, catchRate: s.catchRate, falsePerDay: s.falsePerDay };
    if (++done % 20 === 0 || done === grid.length) progress('tuning alert thresholds', done, grid.length);
  }
  return best as NonNullable<typeof best>;
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { data: { type: 'string' }, out: { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' }, 'eval-only': { type: 'boolean' } } });
  const root = packageRoot();
  const dataDir = values.data ?? join(root, '..', 'shared', 'data');
  const outDir = values.out ?? join(root, 'models', 'glucose-forecast', 'artifact');
  const epochs = Number(values.epochs ?? 12);
  const seed = Number(values.seed ?? 20_260_523);
  await initBackend('cpu');
  process.stderr.write(`reading ${dataDir}/cgm ...\n`);
  const all = loadCgmSubjects(dataDir);
  const { train: trainSet, test: testSet } = splitSubjects(all, SPLIT_SEED, TEST_FRACTION);
  process.stderr.write(`${all.length} subjects: ${trainSet.length} train, ${testSet.length} held out\n`);
  const samples = buildSamples(trainSet);
  const positives = Array.from({ length: samples.n }, (_, i) => samples.y[2 * i + 1] as number).reduce((a, b) => a + b, 0);
  process.stderr.write(`${samples.n} training rows (${positives} within 60 min before an event onset)\n`);
  // --eval-only: tune, evaluate and write the card for the artifact already in outDir (no training).
  if (!values['eval-only']) await trainAndSave(samples, seed, epochs, outDir);
  await evaluateArtifact(outDir, trainSet, testSet, { seed, epochs, rows: samples.n });
}

async function trainAndSave(samples: Samples, seed: number, epochs: number, outDir: string): Promise<void> {
  const model = await train(samples, seed, epochs);
  const meta = {
    id: MODEL_ID,
    version: MODEL_VERSION,
    input: { name: 'glucose-history', shape: [null, FORECAST_SPEC.features], dtype: 'float32', ...FORECAST_SPEC, features: 'device-sdk/signal/glucose/forecast.ts forecastFeatures' },
    labels: ['delta-30min/20mgdl', 'hypo-onset-60min-logit'],
    thresholds: {},
  };
  await saveQuantizedModel(model, outDir, meta);
}

/** Tunes the alert thresholds on the training subjects and evaluates the held-out ones, with the uint8 artifact as shipped. */
async function evaluateArtifact(outDir: string, trainSet: Subject[], testSet: Subject[], run: { seed: number; epochs: number; rows: number }): Promise<void> {
  const net = DenseNetwork.fromArtifacts(readFileSync(join(outDir, 'model.json'), 'utf8'), readFileSync(join(outDir, 'weights.bin')));
  const predict: BatchPredictor = (x, n) => {
    const out = new Float32Array(n * 2);
    for (let r = 0; r < n; r++) out.set(net.predict(x.subarray(r * FORECAST_SPEC.features, (r + 1) * FORECAST_SPEC.features)), r * 2);
    return out;
  };
  const trainPreds: TracePrediction[] = [];
  for (const s of trainSet) trainPreds.push(await predictTrace(s.trace, predict));
  const tuned = tuneThresholds(trainSet, trainPreds);
  process.stderr.write(`alert thresholds (training subjects): ${JSON.stringify(tuned)}\n`);
  const trainEval = summarize(await Promise.all(trainSet.map((s) => evaluateSubject(s.id, s.trace, predict, tuned.thresholds))));
  const testEvals = [];
  for (const s of testSet) testEvals.push(await evaluateSubject(s.id, s.trace, predict, tuned.thresholds));
  const test = summarize(testEvals);
  // The trade-off on held-out subjects, for deployers choosing another operating point (not used for tuning).
  const testPreds: TracePrediction[] = [];
  for (const s of testSet) testPreds.push(await predictTrace(s.trace, predict));
  const curve = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8].map((probability) => {
    const th = { ...tuned.thresholds, probability };
    const sc = sumScores(testSet.map((s, i) => scoreAlerts(s.trace, modelAlertTimes(s.trace, testPreds[i] as TracePrediction, th))));
    return { probability, catchRate: round(sc.catchRate), falsePerDay: round(sc.falsePerDay) };
  });
  const ruleCurve = [75, 80, 85].map((level) => {
    const sc = sumScores(testSet.map((s) => scoreAlerts(s.trace, ruleAlertTimes(s.trace, level))));
    return { level, catchRate: round(sc.catchRate), falsePerDay: round(sc.falsePerDay) };
  });
  process.stderr.write(`held-out: ${JSON.stringify(test)}\n`);
  const manifestPath = join(outDir, 'medge-model.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  const metricsOf = (e: typeof test) => ({
    subjects: e.subjects,
    points: e.points,
    rmse30: { model: round(e.rmse.model, 3), persistence: round(e.rmse.persistence, 3), linearExtrapolation: round(e.rmse.linear, 3) },
    improvementOverPersistence: round(e.improvementOverPersistence),
    hypoAlerts: { events: e.alerts.events, caught: e.alerts.caught, catchRate: round(e.alerts.catchRate), episodes: e.alerts.episodes, falseEpisodes: e.alerts.falseEpisodes, subjectDays: round(e.alerts.subjectDays, 2), falsePerDay: round(e.alerts.falsePerDay) },
    rule85: { caught: e.rule85.caught, catchRate: round(e.rule85.catchRate), falseEpisodes: e.rule85.falseEpisodes, falsePerDay: round(e.rule85.falsePerDay) },
  });
  const full = {
    ...manifest,
    thresholds: { ...tuned.thresholds },
    training: {
      data: ['cgm/hall2018.csv (Hall et al. 2018, CC BY 4.0)', 'cgm/colas2019.zip (Colas et al. 2019, CC BY 4.0)'],
      split: { method: 'by subject, sha256(seed:id) order per dataset', seed: SPLIT_SEED, testFraction: TEST_FRACTION, train: trainSet.length, test: testSet.map((s) => s.id) },
      seed: run.seed,
      epochs: run.epochs,
      rows: run.rows,
      params: net.layers.reduce((a, l) => a + l.kernel.length + l.bias.length, 0),
      alertTuning: { on: 'training subjects', falsePerDayBudget: FALSE_PER_DAY_BUDGET, catchRate: round(tuned.catchRate), falsePerDay: round(tuned.falsePerDay) },
    },
    metrics: { heldOut: { ...metricsOf(test), tradeOff: { model: curve, rule: ruleCurve } }, training: metricsOf(trainEval) },
  };
  writeFileSync(manifestPath, `${JSON.stringify(full, null, 2)}\n`);
  writeModelCard(join(outDir, 'MODEL_CARD.md'), full, { train: describeSet(trainSet.map((s) => s.trace)), test: describeSet(testSet.map((s) => s.trace)) });
  process.stderr.write(`wrote ${outDir}\n`);
}

await main();
