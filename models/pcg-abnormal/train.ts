/**
 * Trains and evaluates the heart-sound screen (normal vs abnormal: murmur or extra sound) on PASCAL
 * CHSC 2011 dataset B, with patient-wise cross-validation, and writes the shipped artifact.
 *
 *   npm run train:pcg [-- --data DIR --out DIR --folds 5 --seed 7 --epochs 60 --hidden 8 --l2 0.01 --dropout 0.3]
 *                        [--cv-only] [--ensemble N] [--crops] [--inner-folds K]
 *
 * The last three were tried and are off by default (see the model card): --ensemble N merges N seeded
 * networks into one, --crops adds 4 crops of each training recording, --inner-folds K picks the
 * threshold by an inner patient-wise CV on the training side. `--sign-key FILE` signs the written
 * artifact with that Ed25519 private key (`npm run train:pcg` passes the development key in models/keys);
 * without it the script prints how to sign it, since the runtime loads only signed models.
 *
 * 1. every recording is analysed by the same path the CLI and the runtime use (device-sdk/signal/pcg:
 *    resample to 4 kHz, band-pass 25-800 Hz, S1/S2 segmentation, 30 s windows every 15 s -> features: a recording of up to 30 s is one window);
 *    features are cached under .medge-data/cache/pcg-abnormal (git-ignored; bump FEATURE_VERSION when
 *    the feature code changes);
 * 2. patients (the id in the file name) are dealt into `folds` folds (seeded, stratified by whether
 *    the patient has an abnormal recording); every fold's model is trained on the other folds' patients
 *    only, with the standardisation computed on them, saved uint8-quantized, reloaded, and scored on
 *    the held-out patients' recordings (mean window probability, threshold 0.5, the quality gate);
 *    noisy recordings stay in training and evaluation;
 * 3. the shipped model is trained the same way on all patients; its manifest carries the CV figures.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { signingKeyFile, signTrainedArtifact } from '../../device-sdk/security/artifact-files.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { initBackend, tf } from '../../device-sdk/inference/backend.js';
import { loadModel, saveQuantizedModel } from '../../device-sdk/inference/artifacts.js';
import { DEFAULT_PCG_SCREEN_OPTIONS } from '../../device-sdk/signal/pcg/screen.js';
import { PCG_FEATURE_COUNT, PCG_FEATURE_NAMES } from '../../device-sdk/signal/pcg/features.js';
import { packageRoot } from '../../firmware/package-root.js';
import { listPascal, loadExample, type PcgExample } from './dataset.js';
import * as tfl from '@tensorflow/tfjs-layers';

export const PCG_MODEL_ID = 'pcg-abnormal';
export const PCG_MODEL_VERSION = '1.1.0';
const FEATURE_VERSION = 11;

function progress(label: string, done: number, total: number): void {
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
}

function loadAll(dir: string, cacheDir: string): PcgExample[] {
  const infos = listPascal(dir);
  if (infos.length === 0) throw new Error(`no PASCAL B recordings (normal__*.wav, murmur__*.wav ...) in ${dir}`);
  mkdirSync(cacheDir, { recursive: true });
  const cacheFile = join(cacheDir, `features-v${FEATURE_VERSION}.json`);
  const cache: Record<string, PcgExample> = existsSync(cacheFile) ? (JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, PcgExample>) : {};
  const out: PcgExample[] = [];
  infos.forEach((info, k) => {
    const hit = cache[info.file];
    const e = hit ?? loadExample(dir, info);
    cache[info.file] = e;
    out.push(e);
    progress('features', k + 1, infos.length);
  });
  writeFileSync(cacheFile, JSON.stringify(cache));
  return out;
}

/** Seeded patient-wise folds, stratified by whether a patient has any abnormal recording. */
export function patientFolds(examples: readonly PcgExample[], folds: number, seed: number): Map<string, number> {
  const rand = mulberry32(seed);
  const patients = [...new Set(examples.map((e) => e.patient))].sort();
  const abnormal = new Set(examples.filter((e) => e.abnormal).map((e) => e.patient));
  const shuffle = <T>(a: T[]) => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j] as T, a[i] as T];
    }
    return a;
  };
  const fold = new Map<string, number>();
  let k = 0;
  for (const group of [shuffle(patients.filter((p) => abnormal.has(p))), shuffle(patients.filter((p) => !abnormal.has(p)))]) for (const p of group) fold.set(p, k++ % folds);
  return fold;
}

interface Standardisation {
  mean: number[];
  sd: number[];
}

function standardisation(rows: number[][]): Standardisation {
  const mean = new Array<number>(PCG_FEATURE_COUNT).fill(0);
  const sd = new Array<number>(PCG_FEATURE_COUNT).fill(0);
  for (const r of rows) r.forEach((v, k) => (mean[k] = (mean[k] as number) + v / rows.length));
  for (const r of rows) r.forEach((v, k) => (sd[k] = (sd[k] as number) + (v - (mean[k] as number)) ** 2 / Math.max(1, rows.length - 1)));
  return { mean: mean.map((v) => Math.round(v * 1e6) / 1e6), sd: sd.map((v) => Math.round(Math.max(1e-6, Math.sqrt(v)) * 1e6) / 1e6) };
}

export interface Hyper {
  /** Networks trained with different seeds and merged into one (their logits averaged). */
  ensemble: number;
  /** Train on the recordings' crops as well (augmentation of the training side). */
  crops: boolean;
  epochs: number;
  hidden: number;
  l2: number;
  dropout: number;
}

function buildModel(seed: number, h: Hyper): tfl.LayersModel {
  const model = tfl.sequential();
  const reg = () => tfl.regularizers.l2({ l2: h.l2 });
  if (h.hidden > 0) {
    model.add(tfl.layers.dense({ inputShape: [PCG_FEATURE_COUNT], units: h.hidden, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }), kernelRegularizer: reg() }));
    model.add(tfl.layers.dropout({ rate: h.dropout, seed: seed + 1 }));
    model.add(tfl.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 3 }), kernelRegularizer: reg() }));
  } else {
    model.add(tfl.layers.dropout({ inputShape: [PCG_FEATURE_COUNT], rate: h.dropout, seed: seed + 1 }));
    model.add(tfl.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 3 }), kernelRegularizer: reg() }));
  }
  model.compile({ optimizer: tf.train.adam(0.003), loss: 'binaryCrossentropy' });
  return model;
}

async function train(examples: readonly PcgExample[], seed: number, h: Hyper): Promise<{ model: tfl.LayersModel; norm: Standardisation }> {
  const rows: number[][] = [];
  const labels: number[] = [];
  for (const e of examples) {
    for (const f of h.crops ? [...e.windows, ...e.crops] : e.windows) {
      rows.push(f);
      labels.push(e.abnormal ? 1 : 0);
    }
  }
  // The classes weigh the same (by window count).
  const nAbn = labels.filter((l) => l === 1).length;
  const classWeight = { 0: labels.length / (2 * (labels.length - nAbn)), 1: labels.length / (2 * Math.max(1, nAbn)) };
  const norm = standardisation(rows);
  const xAll = rows.map((r) => r.map((v, k) => (v - (norm.mean[k] as number)) / (norm.sd[k] as number)));
  const members: tfl.LayersModel[] = [];
  for (let m = 0; m < (h.hidden > 0 ? Math.max(1, h.ensemble) : 1); m++) {
    // Each member: its own seeded order (fit does not shuffle: reproducible), initialisation and dropout.
    const memberSeed = seed + 1000 * m;
    const rand = mulberry32(memberSeed);
    const order = rows.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const x = tf.tensor2d(order.map((i) => xAll[i] as number[]));
    const y = tf.tensor2d(order.map((i) => [labels[i] as number]));
    const member = buildModel(memberSeed, h);
    await member.fit(x, y, { epochs: h.epochs, batchSize: 32, shuffle: false, classWeight, verbose: 0 });
    tf.dispose([x, y]);
    members.push(member);
  }
  const model = members.length === 1 ? (members[0] as tfl.LayersModel) : mergeMembers(members, seed, h);
  return { model, norm };
}

/**
 * One network equal to the mean of the members' logits: the hidden layers side by side, the output
 * weights divided by the member count (a bagged ensemble that ships and runs as one small model).
 */
function mergeMembers(members: tfl.LayersModel[], seed: number, h: Hyper): tfl.LayersModel {
  const n = members.length;
  const merged = buildModel(seed, { ...h, hidden: h.hidden * n });
  const parts = members.map((m) => m.getWeights());
  const w1 = tf.concat(parts.map((p) => p[0] as tf.Tensor), 1);
  const b1 = tf.concat(parts.map((p) => p[1] as tf.Tensor), 0);
  const w2 = tf.div(tf.concat(parts.map((p) => p[2] as tf.Tensor), 0), n);
  const b2 = tf.div(tf.addN(parts.map((p) => p[3] as tf.Tensor)), n);
  merged.setWeights([w1, b1, w2, b2]);
  tf.dispose([w1, b1, w2, b2]);
  for (const m of members) m.dispose();
  return merged;
}

function predictRecording(model: tfl.LayersModel, norm: Standardisation, e: PcgExample): number {
  if (e.windows.length === 0) return 0.5;
  const x = tf.tensor2d(e.windows.map((r) => r.map((v, k) => (v - (norm.mean[k] as number)) / (norm.sd[k] as number))));
  const p = model.predict(x) as tf.Tensor;
  const values = p.dataSync();
  tf.dispose([x, p]);
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

export interface ScreenScores {
  recordings: number;
  unreadable: number;
  unreadableRate: number;
  scored: number;
  sensitivity: number;
  specificity: number;
  balancedAccuracy: number;
  accuracy: number;
  auc: number;
}

function auc(pairs: { p: number; y: boolean }[]): number {
  const pos = pairs.filter((q) => q.y);
  const neg = pairs.filter((q) => !q.y);
  let s = 0;
  for (const a of pos) for (const b of neg) s += a.p > b.p ? 1 : a.p === b.p ? 0.5 : 0;
  return pos.length && neg.length ? s / (pos.length * neg.length) : 0;
}

/** Figures over the recordings the quality gate lets through; `t` (when given) is the threshold the result was decided with. */
export function score(results: { e: PcgExample; p: number; t?: number }[], threshold: number): ScreenScores {
  const readable = results.filter((r) => r.e.flags.length === 0);
  const pos = (r: { p: number; t?: number }) => r.p >= (r.t ?? threshold);
  const tp = readable.filter((r) => r.e.abnormal && pos(r)).length;
  const fn = readable.filter((r) => r.e.abnormal && !pos(r)).length;
  const tn = readable.filter((r) => !r.e.abnormal && !pos(r)).length;
  const fp = readable.filter((r) => !r.e.abnormal && pos(r)).length;
  const r4 = (v: number) => Math.round(v * 10000) / 10000;
  const se = tp / Math.max(1, tp + fn);
  const sp = tn / Math.max(1, tn + fp);
  return {
    recordings: results.length,
    unreadable: results.length - readable.length,
    unreadableRate: r4((results.length - readable.length) / Math.max(1, results.length)),
    scored: readable.length,
    sensitivity: r4(se),
    specificity: r4(sp),
    balancedAccuracy: r4((se + sp) / 2),
    accuracy: r4((tp + tn) / Math.max(1, readable.length)),
    auc: r4(auc(readable.map((r) => ({ p: r.p, y: r.e.abnormal })))),
  };
}

/**
 * The decision threshold from an inner patient-wise cross-validation on the training side only: the
 * out-of-fold probabilities of the readable recordings, the grid threshold (0.2-0.8) with the best
 * balanced accuracy (the mean of those within 0.01 of the best, for stability).
 */
async function innerThreshold(trainSet: readonly PcgExample[], innerFolds: number, seed: number, h: Hyper): Promise<number> {
  const fold = patientFolds(trainSet, innerFolds, seed + 17);
  const oof: { e: PcgExample; p: number }[] = [];
  for (let k = 0; k < innerFolds; k++) {
    const { model, norm } = await train(
      trainSet.filter((e) => fold.get(e.patient) !== k),
      seed + 100 + k,
      h,
    );
    for (const e of trainSet) if (fold.get(e.patient) === k && e.flags.length === 0) oof.push({ e, p: predictRecording(model, norm, e) });
    model.dispose();
  }
  const grid = Array.from({ length: 61 }, (_, i) => 0.2 + i * 0.01);
  const ba = grid.map((t) => score(oof, t).balancedAccuracy);
  const best = Math.max(...ba);
  const near = grid.filter((_, i) => (ba[i] as number) >= best - 0.01);
  return Math.round((near.reduce((s, v) => s + v, 0) / near.length) * 1000) / 1000;
}

async function main(): Promise<void> {
  const root = packageRoot();
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: resolve(root, '..', 'shared', 'data', 'pcg', 'pascal-b') },
      out: { type: 'string', default: join(root, 'models', PCG_MODEL_ID) },
      folds: { type: 'string', default: '5' },
      seed: { type: 'string', default: '7' },
      epochs: { type: 'string', default: '60' },
      ensemble: { type: 'string', default: '1' },
      crops: { type: 'boolean', default: false },
      hidden: { type: 'string', default: '8' },
      l2: { type: 'string', default: '0.01' },
      dropout: { type: 'string', default: '0.3' },
      'cv-only': { type: 'boolean', default: false },
      'inner-folds': { type: 'string', default: '0' },
      'sign-key': { type: 'string' },
    },
  });
  // Checked before training, so that a wrong path or key fails now rather than after the run.
  const signingKey = signingKeyFile(values['sign-key']);
  const folds = Number(values.folds);
  const seed = Number(values.seed);
  const epochs = Number(values.epochs);
  const hyper: Hyper = { ensemble: Number(values.ensemble), crops: values.crops as boolean, epochs, hidden: Number(values.hidden), l2: Number(values.l2), dropout: Number(values.dropout) };
  await initBackend('cpu');
  // Git-ignored, and outside the artifact directory (whose every file the signature covers).
  const cacheDir = join(root, '.medge-data', 'cache', PCG_MODEL_ID);
  const examples = loadAll(values.data as string, cacheDir);
  const fold = patientFolds(examples, folds, seed);
  // 0: the fixed threshold 0.5; else chosen by inner patient-wise CV on each training side.
  const innerFolds = Number(values['inner-folds']);
  const threshold = 0.5;
  const results: { e: PcgExample; p: number; t: number; fold: number }[] = [];
  const foldThresholds: number[] = [];
  for (let k = 0; k < folds; k++) {
    const trainSet = examples.filter((e) => fold.get(e.patient) !== k && e.windows.length > 0);
    const testSet = examples.filter((e) => fold.get(e.patient) === k);
    const trainPatients = new Set(trainSet.map((e) => e.patient));
    if (testSet.some((e) => trainPatients.has(e.patient))) throw new Error('a patient is in both the training and the test fold');
    const t = innerFolds > 1 ? await innerThreshold(trainSet, innerFolds, seed + k, hyper) : threshold;
    foldThresholds.push(t);
    const { model, norm } = await train(trainSet, seed + k, hyper);
    // Score the uint8 artifact, as shipped, not the float model.
    const tmp = join(cacheDir, `fold-${k}`);
    rmSync(tmp, { recursive: true, force: true });
    await saveQuantizedModel(model, tmp, { id: `${PCG_MODEL_ID}-fold${k}`, version: '0', input: {}, labels: ['normal', 'abnormal'], thresholds: {} });
    model.dispose();
    const q = await loadModel(tmp);
    for (const e of testSet) results.push({ e, p: predictRecording(q.model, norm, e), t, fold: k });
    q.model.dispose();
    progress('cross-validation folds', k + 1, folds);
  }
  const cv = score(results, threshold);
  const clean = score(
    results.filter((r) => !r.e.noisy),
    threshold,
  );
  const noisy = score(
    results.filter((r) => r.e.noisy),
    threshold,
  );
  const perFold = Array.from({ length: folds }, (_, k) => score(results.filter((r) => r.fold === k), threshold));
  process.stderr.write(`patient-wise ${folds}-fold CV: ${JSON.stringify(cv)}\nclean: ${JSON.stringify(clean)}\nnoisy: ${JSON.stringify(noisy)}\n`);
  const summary = { cv, clean, noisy, perFold: perFold.map((s) => ({ scored: s.scored, unreadable: s.unreadable, balancedAccuracy: s.balancedAccuracy, auc: s.auc })) };
  writeFileSync(join(cacheDir, 'cv-results.json'), `${JSON.stringify({ summary, recordings: results.map((r) => ({ file: r.e.file, fold: r.fold, abnormal: r.e.abnormal, p: Math.round(r.p * 1000) / 1000, flags: r.e.flags })) }, null, 1)}\n`);
  if (values['cv-only']) return;
  const { model, norm } = await train(
    examples.filter((e) => e.windows.length > 0),
    seed,
    hyper,
  );
  const patients = new Set(examples.map((e) => e.patient)).size;
  const o = DEFAULT_PCG_SCREEN_OPTIONS;
  const manifest = await saveQuantizedModel(model, values.out as string, {
    id: PCG_MODEL_ID,
    version: PCG_MODEL_VERSION,
    input: {
      name: 'pcg-window-features',
      shape: [null, PCG_FEATURE_COUNT],
      dtype: 'float32',
      featureVersion: FEATURE_VERSION,
      featureNames: [...PCG_FEATURE_NAMES],
      standardise: norm,
      workingRateHz: o.workingRateHz,
      bandHz: o.bandHz,
      windowS: o.windowS,
      hopS: o.hopS,
      aggregation: 'mean of window probabilities',
    },
    labels: ['normal', 'abnormal'],
    thresholds: { abnormal: threshold, minQuality: o.minQuality, minSeconds: o.minSeconds, maxClipped: o.maxClipped, minContrast: o.minContrast },
    training: {
      data: 'PASCAL Classifying Heart Sounds Challenge 2011, dataset B (labelled part, shared/data/pcg/pascal-b)',
      recordings: examples.length,
      patients,
      classes: { normal: examples.filter((e) => !e.abnormal).length, abnormal: examples.filter((e) => e.abnormal).length, noisy: examples.filter((e) => e.noisy).length },
      split: `patient-wise ${folds}-fold cross-validation (seed ${seed}, stratified by patient); the shipped model is trained on all patients`,
      seed,
      hyper,
      backend: 'cpu',
    },
    metrics: { crossValidation: summary, goals: { balancedAccuracy: 0.85, maxUnreadableRate: 0.15 } },
  });
  process.stderr.write(`wrote ${values.out} (${manifest.files['weights.bin']?.slice(0, 12)}…)\n`);
  process.stderr.write(`${signTrainedArtifact(values.out as string, signingKey, { id: PCG_MODEL_ID, version: PCG_MODEL_VERSION })}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`train:pcg failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
