/**
 * Trains the 30-minute glucose forecast (`npm run train:glucose`): a small MLP on the resampled
 * 5-minute history and rate-of-change features (device-sdk/signal/glucose/forecast.ts) predicting the
 * change from the last reading and the logit of "a hypoglycaemic event starts within 60 min"; then
 * the predicted-hypoglycaemia detector (detector.ts, device-sdk/signal/glucose/hypo-detector.ts) on
 * the forecast's outputs and the recent trace.
 *
 * Data: cgm/hall2018.csv and cgm/colas2019.zip from the shared data directory (`--data DIR`, default
 * ../shared/data beside the package). Split by subject (data.ts), seeds fixed. The detector's alert
 * policy is chosen on the training subjects only (3-fold cross-validation by subject, out-of-fold
 * probabilities); the held-out subjects are evaluated once, with the uint8 artifacts as shipped.
 * Writes models/glucose-forecast/artifact/ (model.json, weights.bin, detector.json, detector.bin,
 * medge-model.json, MODEL_CARD.md); `--sign-key FILE` signs it with that Ed25519 private key (the npm
 * script passes the development key in models/keys).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { signingKeyFile, signTrainedArtifact } from '../../device-sdk/security/artifact-files.js';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, saveQuantizedModel, tf } from '../../device-sdk/inference/index.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { DenseNetwork } from '../../device-sdk/signal/glucose/dense-network.js';
import { sha256Hex } from '../../device-sdk/security/signing.js';
import { FORECAST_SPEC, forecastFeatures } from '../../device-sdk/signal/glucose/forecast.js';
import { DETECTOR_SPEC } from '../../device-sdk/signal/glucose/hypo-detector.js';
import { hypoEvents } from '../../device-sdk/signal/glucose/metrics.js';
import { MS_PER_MIN } from '../../device-sdk/signal/glucose/types.js';
import { packageRoot } from '../../firmware/package-root.js';
import { loadCgmSubjects, splitSubjects, type Subject, subjectFolds } from './data.js';
import { choosePolicy, detectorRows, scorePolicy, trainDetector } from './detector.js';
import { type BatchPredictor, type DetectorPredictor, describeSet, detectorTrace, evaluateSubject, gatedRuleAlertTimes, predictTrace, ruleAlertTimes, scoreAlerts, type SubjectEvaluation, summarize, sumScores, targets, type TracePrediction } from './evaluate.js';
import { fitShuffled, type TrainingRows } from './fit.js';
import { writeModelCard } from './model-card.js';

export const MODEL_ID = 'glucose-forecast';
export const MODEL_VERSION = '1.1.0';
/** The detector's files beside the forecast's. */
export const DETECTOR_TOPOLOGY = 'detector.json';
export const DETECTOR_WEIGHTS = 'detector.bin';
/** The alert policy is chosen on out-of-fold detector probabilities of the training subjects (folds by subject). */
const FOLD_SEED = 6;
const DETECTOR_FOLDS = 3;
export const SPLIT_SEED = 5;
export const TEST_FRACTION = 0.2;
/** Goal of the policy choice (the issue's): as many events caught as possible at no more than this many false episodes per subject-day. */
const FALSE_PER_DAY_BUDGET = 0.3;

function progress(label: string, done: number, total: number, extra = ''): void {
  const width = 30;
  const filled = Math.round((width * done) / total);
  process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${extra}   `);
  if (done === total) process.stderr.write('\n');
}

/** Forecast training rows: x the forecast features, y the scaled change at t + 30 and the event label. */
type Samples = TrainingRows;

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
  return fitShuffled(buildModel(seed), loss, samples, {
    features: FORECAST_SPEC.features,
    targets: 2,
    batch: 512,
    epochs,
    shuffleSeed: seed,
    onBatches: (epoch, done, meanLoss) => progress(`epoch ${epoch}/${epochs}`, done, samples.n, `loss ${meanLoss.toFixed(4)}`),
    onEpoch: (epoch, meanLoss) => progress(`epoch ${epoch}/${epochs}`, samples.n, samples.n, `loss ${meanLoss.toFixed(4)}`),
  });
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { data: { type: 'string' }, out: { type: 'string' }, epochs: { type: 'string' }, 'detector-epochs': { type: 'string' }, seed: { type: 'string' }, 'eval-only': { type: 'boolean' }, 'keep-forecast': { type: 'boolean' }, 'sign-key': { type: 'string' } } });
  // Checked before training, so that a wrong path or key fails now rather than after the run.
  const signingKey = signingKeyFile(values['sign-key']);
  const root = packageRoot();
  const dataDir = values.data ?? join(root, '..', 'shared', 'data');
  const outDir = values.out ?? join(root, 'models', 'glucose-forecast', 'artifact');
  const epochs = Number(values.epochs ?? 12);
  const detectorEpochs = Number(values['detector-epochs'] ?? 16);
  const seed = Number(values.seed ?? 20_260_523);
  await initBackend('cpu');
  process.stderr.write(`reading ${dataDir}/cgm ...\n`);
  const all = loadCgmSubjects(dataDir);
  const { train: trainSet, test: testSet } = splitSubjects(all, SPLIT_SEED, TEST_FRACTION);
  process.stderr.write(`${all.length} subjects: ${trainSet.length} train, ${testSet.length} held out\n`);
  const samples = buildSamples(trainSet);
  const positives = Array.from({ length: samples.n }, (_, i) => samples.y[2 * i + 1] as number).reduce((a, b) => a + b, 0);
  process.stderr.write(`${samples.n} training rows (${positives} within 60 min before an event onset)\n`);
  // --eval-only: choose the policy, evaluate and write the card for the artifacts already in outDir (no training);
  // --keep-forecast: train the detector only, on the forecast already in outDir.
  if (!values['eval-only'] && !values['keep-forecast']) await trainAndSave(samples, seed, epochs, outDir);
  await evaluateArtifact(outDir, trainSet, testSet, { seed, epochs, detectorEpochs, rows: samples.n, train: !values['eval-only'] });
  process.stderr.write(`${signTrainedArtifact(outDir, signingKey, { id: MODEL_ID, version: MODEL_VERSION })}\n`);
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

/** Saves the detector as `detector.json` + `detector.bin` (uint8) beside the forecast; returns their sha256. */
async function saveDetector(model: tfl.LayersModel, outDir: string): Promise<void> {
  const tmp = join(outDir, '.detector-tmp');
  await saveQuantizedModel(model, tmp, { id: `${MODEL_ID}-detector`, version: MODEL_VERSION, input: {}, labels: ['hypo-onset-10-60min-logit'], thresholds: {} } as unknown as Parameters<typeof saveQuantizedModel>[2]);
  const topology = JSON.parse(readFileSync(join(tmp, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
  for (const g of topology.weightsManifest) g.paths = [DETECTOR_WEIGHTS];
  writeFileSync(join(outDir, DETECTOR_TOPOLOGY), `${JSON.stringify(topology)}\n`);
  writeFileSync(join(outDir, DETECTOR_WEIGHTS), readFileSync(join(tmp, 'weights.bin')));
  rmSync(tmp, { recursive: true, force: true });
}

function denseFrom(outDir: string, topology: string, weights: string): DenseNetwork {
  return DenseNetwork.fromArtifacts(readFileSync(join(outDir, topology), 'utf8'), readFileSync(join(outDir, weights)));
}

function detectorPredictor(net: DenseNetwork): DetectorPredictor {
  const D = DETECTOR_SPEC.features;
  return (x, n) => {
    const out = new Float32Array(n);
    for (let r = 0; r < n; r++) out[r] = net.predict(x.subarray(r * D, (r + 1) * D))[0] as number;
    return out;
  };
}

/**
 * Trains the detector on part of the training subjects, chooses its alert policy on the others
 * (inner split), and evaluates the held-out subjects once, with the uint8 artifacts as shipped.
 */
async function evaluateArtifact(outDir: string, trainSet: Subject[], testSet: Subject[], run: { seed: number; epochs: number; detectorEpochs: number; rows: number; train: boolean }): Promise<void> {
  const net = denseFrom(outDir, 'model.json', 'weights.bin');
  const predict: BatchPredictor = (x, n) => {
    const out = new Float32Array(n * 2);
    for (let r = 0; r < n; r++) out.set(net.predict(x.subarray(r * FORECAST_SPEC.features, (r + 1) * FORECAST_SPEC.features)), r * 2);
    return out;
  };
  const predsOf = async (set: readonly Subject[]) => {
    const out: TracePrediction[] = [];
    for (const [k, s] of set.entries()) {
      out.push(await predictTrace(s.trace, predict));
      if ((k + 1) % 10 === 0 || k + 1 === set.length) progress('forecast runs', k + 1, set.length);
    }
    return out;
  };
  const trainPreds = await predsOf(trainSet);
  const predOf = new Map(trainSet.map((s, k) => [s.id, trainPreds[k] as TracePrediction]));
  const rowsOf = (set: readonly Subject[]) => detectorRows(set, set.map((s) => predOf.get(s.id) as TracePrediction));
  // Out-of-fold probabilities on the training subjects: each fold scored by a detector trained on the other folds.
  const folds = subjectFolds(trainSet, FOLD_SEED, DETECTOR_FOLDS);
  const oofSubjects: Subject[] = [];
  const oofProbs: Float64Array[] = [];
  for (const [k, fold] of folds.entries()) {
    const rest = folds.filter((_, j) => j !== k).flat();
    const rows = rowsOf(rest);
    process.stderr.write(`detector fold ${k + 1}/${DETECTOR_FOLDS}: trained on ${rest.length} subjects (${rows.n} rows), scores ${fold.length}\n`);
    const model = await trainDetector(rows, run.seed + k + 1, run.detectorEpochs, () => undefined);
    const dir = join(outDir, `.fold-${k}`);
    await saveDetector(model, dir);
    const foldDetector = detectorPredictor(denseFrom(dir, DETECTOR_TOPOLOGY, DETECTOR_WEIGHTS));
    rmSync(dir, { recursive: true, force: true });
    for (const s of fold) {
      oofSubjects.push(s);
      oofProbs.push(detectorTrace(s.trace, predOf.get(s.id) as TracePrediction, foldDetector));
    }
  }
  const chosen = choosePolicy(oofSubjects, oofProbs, FALSE_PER_DAY_BUDGET);
  process.stderr.write(`alert policy (out-of-fold, training subjects): ${JSON.stringify(chosen)}\n`);
  const rows = rowsOf(trainSet);
  const positives = rows.y.reduce((a, b) => a + b, 0);
  if (run.train) {
    const model = await trainDetector(rows, run.seed, run.detectorEpochs, (epoch, l) => process.stderr.write(`detector epoch ${epoch}/${run.detectorEpochs} loss ${l.toFixed(4)}\n`));
    await saveDetector(model, outDir);
  }
  const detectorNet = denseFrom(outDir, DETECTOR_TOPOLOGY, DETECTOR_WEIGHTS);
  const detector = detectorPredictor(detectorNet);
  const policy = chosen.policy;

  const testPreds = await predsOf(testSet);
  const testProbs = testSet.map((s, k) => detectorTrace(s.trace, testPreds[k] as TracePrediction, detector));
  const testEvals: SubjectEvaluation[] = [];
  for (const s of testSet) testEvals.push(await evaluateSubject(s.id, s.trace, predict, detector, policy));
  const test = summarize(testEvals);
  // Subject-level bootstrap (1000 resamples, fixed seed) of the chosen point on the held-out subjects: how wide the figures are.
  const boot = mulberry32(run.seed + 99);
  const catches: number[] = [];
  const falses: number[] = [];
  for (let b = 0; b < 1000; b++) {
    const sc = sumScores(Array.from({ length: testEvals.length }, () => (testEvals[Math.floor(boot() * testEvals.length)] as SubjectEvaluation).model));
    catches.push(sc.catchRate);
    falses.push(sc.falsePerDay);
  }
  const ci = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    return [round(sorted[25] as number), round(sorted[974] as number)];
  };
  const ci95 = { method: 'bootstrap over held-out subjects, 1000 resamples, 2.5th-97.5th percentile', catchRate: ci(catches), falsePerDay: ci(falses) };
  const trainEvals = [];
  for (const s of trainSet) trainEvals.push(await evaluateSubject(s.id, s.trace, predict, detector, policy));
  const trainEval = summarize(trainEvals);
  // The trade-off on held-out subjects (the chosen policy with other alert-on probabilities; not used for choosing).
  const ratio = policy.release / policy.probability;
  const probabilities = [...new Set([0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, policy.probability])].sort((x, y) => x - y);
  const curve = probabilities.map((probability) => {
    const sc = scorePolicy(testSet, testProbs, { ...policy, probability, release: Math.round(probability * ratio * 1000) / 1000 });
    return { probability, catchRate: round(sc.catchRate), falsePerDay: round(sc.falsePerDay), caught: sc.caught, falseEpisodes: sc.falseEpisodes };
  });
  const ruleCurve = [72, 75, 80, 85, 90].map((level) => {
    const plain = sumScores(testSet.map((s) => scoreAlerts(s.trace, ruleAlertTimes(s.trace, level))));
    const gated = sumScores(testSet.map((s) => scoreAlerts(s.trace, gatedRuleAlertTimes(s.trace, level, policy))));
    return { level, catchRate: round(plain.catchRate), falsePerDay: round(plain.falsePerDay), gatedCatchRate: round(gated.catchRate), gatedFalsePerDay: round(gated.falsePerDay) };
  });
  process.stderr.write(`held-out: ${JSON.stringify(test)}\ntrade-off: ${JSON.stringify(curve)}\nrules: ${JSON.stringify(ruleCurve)}\n`);
  const manifestPath = join(outDir, 'medge-model.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown> & { files: Record<string, string> };
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
    version: MODEL_VERSION,
    files: { ...manifest.files, [DETECTOR_TOPOLOGY]: sha256Hex(readFileSync(join(outDir, DETECTOR_TOPOLOGY))), [DETECTOR_WEIGHTS]: sha256Hex(readFileSync(join(outDir, DETECTOR_WEIGHTS))) },
    detector: { input: { shape: [null, DETECTOR_SPEC.features], ...DETECTOR_SPEC, features: 'device-sdk/signal/glucose/hypo-detector.ts detectorFeatures' }, output: 'logit of a consensus level 1 event starting 10 to 60 min after the reading', topology: DETECTOR_TOPOLOGY, weights: DETECTOR_WEIGHTS },
    thresholds: { ...policy },
    training: {
      data: ['cgm/hall2018.csv (Hall et al. 2018, CC BY 4.0)', 'cgm/colas2019.zip (Colas et al. 2019, CC BY 4.0)'],
      split: { method: 'by subject, sha256(seed:id) order per dataset', seed: SPLIT_SEED, testFraction: TEST_FRACTION, train: trainSet.length, test: testSet.map((s) => s.id) },
      seed: run.seed,
      epochs: run.epochs,
      rows: run.rows,
      params: net.layers.reduce((a, l) => a + l.kernel.length + l.bias.length, 0),
      detector: {
        policyChoice: { method: `${DETECTOR_FOLDS}-fold cross-validation by subject over the training subjects (out-of-fold probabilities)`, foldSeed: FOLD_SEED },
        epochs: run.detectorEpochs,
        rows: rows.n,
        positives,
        params: detectorNet.layers.reduce((a, l) => a + l.kernel.length + l.bias.length, 0),
      },
      alertTuning: { on: 'training subjects, out-of-fold detector probabilities', falsePerDayBudget: FALSE_PER_DAY_BUDGET, catchRate: round(chosen.catchRate), falsePerDay: round(chosen.falsePerDay) },
    },
    metrics: { heldOut: { ...metricsOf(test), ci95, tradeOff: { model: curve, rule: ruleCurve } }, training: metricsOf(trainEval) },
  };
  writeFileSync(manifestPath, `${JSON.stringify(full, null, 2)}\n`);
  writeModelCard(join(outDir, 'MODEL_CARD.md'), full, { train: describeSet(trainSet.map((s) => s.trace)), test: describeSet(testSet.map((s) => s.trace)) });
  process.stderr.write(`wrote ${outDir}\n`);
}

await main();
