/**
 * Trains the ECG beat classifier (AAMI N S V F Q) on the shared MIT-BIH records and writes the
 * uint8-quantized artifact with its manifest.
 * `npm run train:ecg [-- --data DIR] [--out DIR] [--folds K] [--epochs E] [--backend wasm|cpu] [--no-cv] [--no-final]`
 * (experiments, with `--no-final`: `--zero NAME,...`, `--lead2 morph|scalars|all`, `--augment noise|stretch|both [--noise-dir DIR]`).
 * `--sign-key FILE` signs the written artifact (`--out`) with that Ed25519 private key as
 * `MODEL_ID@MODEL_VERSION`, as `medge sign` does; `npm run train:ecg` passes the development key
 * (models/keys), so the runtime, which loads only signed models, takes the model it has just trained.
 *
 * 1. Beats: our own streaming front end (QRS detection + features) over every non-paced record,
 *    labelled from the `.atr` beat matched to each detected beat (models/ecg-beats/dataset.ts).
 * 2. Leave-records-out cross-validation: records dealt round-robin (sorted) into K folds; each fold is
 *    scored by a model trained on the other folds only, its beats reported as the pipeline reports them
 *    (the AF detector over the classes; a beat called S inside AF is N). Scores follow EC57 (from
 *    minute 5, missed beats count against Se, false detections against +P).
 * 3. The shipped model is trained the same way on all non-paced records.
 * Fixed seed: data order and initial weights are deterministic. The shipped 1.0.0 was made with the
 * defaults (5 folds, 10 epochs, wasm).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '../../device-sdk/inference/backend.js';
import { saveQuantizedModel } from '../../device-sdk/inference/artifacts.js';
import { classOf, DEFAULT_SUPRAVENTRICULAR_RULE, splitSupraventricular, type SupraventricularRule, supraventricularThresholds } from '../../device-sdk/signal/ecg/beat-classes.js';
import { afOverBeats } from '../../device-sdk/signal/ecg/af-detector.js';
import { AAMI_CLASSES, type AamiClass, DEFAULT_BEAT_FEATURE_OPTIONS, FEATURE_NAMES, featureLength } from '../../device-sdk/signal/ecg/beat-features.js';
import { type ClassPair, type ClassScores, classScores, type ScoreClass } from '../../device-sdk/signal/ecg/ec57.js';
import { signingKeyFile, signTrainedArtifact } from '../../device-sdk/security/artifact-files.js';
import { nstNoises } from '../../firmware/cli/ecg.js';
import { packageRoot } from '../../firmware/package-root.js';
import { atrialValues } from './af-cv.js';
import { AUGMENTATIONS, augmentedBeats, augmentTag, LEAD2_SCALARS, lead2Beats, PACED_RECORDS, type RecordBeats, recordBeats } from './dataset.js';

export const MODEL_ID = 'ecg-beats';
export const MODEL_VERSION = '1.5.0';
const SEED = 20260401;
/** Class weight exponent: weight = (share of N / share of class) ^ CLASS_WEIGHT_POWER, capped. */
const CLASS_WEIGHT_POWER = 0.5;
const CLASS_WEIGHT_CAP = 20;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bar(done: number, total: number, label: string): void {
  const width = 30;
  const n = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(n)}${' '.repeat(width - n)}] ${label}`.padEnd(100));
  if (done === total) process.stderr.write('\n');
}

/** Hidden units of one member network (the merged network has `members` times as many). */
const HIDDEN: readonly [number, number] = [64, 32];

export function buildModel(inputs: number, seed: number, members = 1): tfl.LayersModel {
  const model = tfl.sequential();
  const init = (s: number) => tfl.initializers.heNormal({ seed: seed + s });
  const reg = tfl.regularizers.l2({ l2: 1e-4 });
  model.add(tfl.layers.dense({ inputShape: [inputs], units: HIDDEN[0] * members, activation: 'relu', kernelInitializer: init(1), kernelRegularizer: reg }));
  model.add(tfl.layers.dense({ units: HIDDEN[1] * members, activation: 'relu', kernelInitializer: init(2), kernelRegularizer: reg }));
  model.add(tfl.layers.dense({ units: AAMI_CLASSES.length, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 3 }) }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  return model;
}

/**
 * Disposes a model of `buildModel` and its Adam state: an optimizer passed to `compile` as an object is
 * not the model's, so `LayersModel.dispose` leaves it (tfjs-layers disposes only one it made from a name).
 */
export function disposeModel(model: tfl.LayersModel): void {
  model.dispose();
  model.optimizer?.dispose();
}

interface Dataset {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

const Q = AAMI_CLASSES.indexOf('Q');

/**
 * The rhythm features feed the supraventricular rule (beat-classes.ts), not the model: the model reads
 * the other columns (the 67 inputs of 1.0.0), and the shipped model's first layer has zero weights for
 * these, so it takes the whole feature row the runtime extracts.
 */
export const RULE_FEATURES: readonly string[] = Object.freeze(['rrPreNormal', 'rrPostNormal', 'rrSpread', 'rrIrregularShare', 'qrsCorr', 'pCorr', 'pEnergy', 'tCorr']);
const MODEL_COLUMNS: readonly number[] = Array.from({ length: featureLength() }, (_, c) => c).filter((c) => !RULE_FEATURES.includes(FEATURE_NAMES[c] as string));

/** The model columns of rows `width` wide: MODEL_COLUMNS, then any columns appended after the extractor's (the `--lead2` experiment). */
function modelColumns(width: number): readonly number[] {
  return width === featureLength() ? MODEL_COLUMNS : [...MODEL_COLUMNS, ...Array.from({ length: width - featureLength() }, (_, i) => featureLength() + i)];
}

/** The model columns of row-major features of `width`. */
function modelInputs(features: Float32Array, n: number, width: number): Float32Array {
  const columns = modelColumns(width);
  const out = new Float32Array(n * columns.length);
  for (let i = 0; i < n; i++) columns.forEach((c, j) => (out[i * columns.length + j] = features[i * width + c] as number));
  return out;
}

/** `--lead2` variants (experiment): which second-lead columns are appended to the network's inputs. */
export const LEAD2_VARIANTS = Object.freeze({
  /** The second lead's beat minus its template (50 points). */
  morph: (scalars: number) => (c: number) => c >= scalars,
  /** Its template correlation, distances, QRS width, energy and amplitude (6 columns). */
  scalars: (scalars: number) => (c: number) => c < scalars,
  /** Both (56 columns). */
  all: () => () => true,
});

/**
 * Appends the chosen second-lead columns (models/ecg-beats/dataset.ts `lead2Beats`, same R peaks) to each
 * row of `r`'s features; the rhythm rule and the AF detector still read the first lead's columns.
 */
function appendLead2(dir: string, r: RecordBeats, variant: keyof typeof LEAD2_VARIANTS, cache: string): string {
  const l2 = lead2Beats(dir, r, cache);
  const keep = LEAD2_VARIANTS[variant](LEAD2_SCALARS.length);
  const columns = Array.from({ length: l2.width }, (_, c) => c).filter(keep);
  const n = r.samples.length;
  const width = r.width + columns.length;
  const features = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    features.set(r.features.subarray(i * r.width, (i + 1) * r.width), i * width);
    columns.forEach((c, j) => (features[i * width + r.width + j] = l2.features[i * l2.width + c] as number));
  }
  r.features = features;
  r.width = width;
  return l2.lead;
}

/**
 * Moves the smallest value (by less than half a uint8 step) so that the per-tensor uint8 quantization
 * (range min..max in 255 steps) has a step exactly at 0: the zero weights of the rule-only columns stay
 * zero in the shipped model.
 */
function zeroExactUint8(values: Float32Array): Float32Array {
  let lo = 0;
  let hi = 0;
  let at = -1;
  values.forEach((v, i) => {
    if (v < lo) [lo, at] = [v, i];
    if (v > hi) hi = v;
  });
  const k = Math.round((-255 * lo) / (hi - lo));
  if (at >= 0 && k > 0 && k < 255) values[at] = (-k * hi) / (255 - k);
  return values;
}

/**
 * One network computing the mean of the members' logits (then softmax): their first layers side by side,
 * their second layers block-diagonal, their output layers stacked and divided by the member count. The
 * mean over networks trained from different seeds evens out what any one seed happens to learn.
 */
export function mergeMembers(members: tfl.LayersModel[], seed: number): tfl.LayersModel {
  const k = members.length;
  if (k === 1) return members[0] as tfl.LayersModel;
  const inputs = members[0]?.inputs[0]?.shape[1] as number;
  const merged = buildModel(inputs, seed, k);
  const weights = members.map((m) => m.layers.map((l) => l.getWeights().map((t) => ({ data: t.dataSync() as Float32Array, shape: t.shape as number[] }))));
  const classes = AAMI_CLASSES.length;
  const [h1, h2] = HIDDEN;
  const k1 = new Float32Array(inputs * h1 * k);
  const b1 = new Float32Array(h1 * k);
  const k2 = new Float32Array(h1 * k * h2 * k);
  const b2 = new Float32Array(h2 * k);
  const k3 = new Float32Array(h2 * k * classes);
  const b3 = new Float32Array(classes);
  weights.forEach((w, j) => {
    type Pair = [{ data: Float32Array }, { data: Float32Array }];
    const [[kk1, bb1], [kk2, bb2], [kk3, bb3]] = w as unknown as [Pair, Pair, Pair];
    for (let i = 0; i < inputs; i++) for (let u = 0; u < h1; u++) k1[i * h1 * k + j * h1 + u] = kk1.data[i * h1 + u] as number;
    b1.set(bb1.data, j * h1);
    for (let i = 0; i < h1; i++) for (let u = 0; u < h2; u++) k2[(j * h1 + i) * h2 * k + j * h2 + u] = kk2.data[i * h2 + u] as number;
    b2.set(bb2.data, j * h2);
    for (let i = 0; i < h2; i++) for (let c = 0; c < classes; c++) k3[(j * h2 + i) * classes + c] = (kk3.data[i * classes + c] as number) / k;
    for (let c = 0; c < classes; c++) b3[c] = (b3[c] as number) + (bb3.data[c] as number) / k;
  });
  // setWeights takes the values (the layer's variables keep them), so the tensors made here are disposed.
  tf.tidy(() => {
    merged.layers[0]?.setWeights([tf.tensor2d(k1, [inputs, h1 * k]), tf.tensor1d(b1)]);
    // Zero exactly representable after uint8 quantization: no cross-talk between the members through the
    // second layer's off-diagonal blocks (the output layer has no structural zeros; the same adjustment
    // moves its smallest weight by less than half a step).
    merged.layers[1]?.setWeights([tf.tensor2d(zeroExactUint8(k2), [h1 * k, h2 * k]), tf.tensor1d(b2)]);
    merged.layers[2]?.setWeights([tf.tensor2d(zeroExactUint8(k3), [h2 * k, classes]), tf.tensor1d(b3)]);
  });
  return merged;
}

/** `members` networks trained on the same data from seeds `seed`, `seed + 1000`, ..., merged (`mergeMembers`). */
async function trainMembers(data: Dataset, epochs: number, seed: number, members: number, label: string): Promise<tfl.LayersModel> {
  const nets: tfl.LayersModel[] = [];
  for (let j = 0; j < members; j++) nets.push(await train(data, epochs, seed + 1000 * j, members > 1 ? `${label} member ${j + 1}/${members}` : label));
  const merged = mergeMembers(nets, seed);
  if (members > 1) for (const n of nets) disposeModel(n);
  return merged;
}

/** The model over all feature columns: `model`'s first-layer weights at the model columns, zero at the rule-only ones. */
export function expandInputs(model: tfl.LayersModel, seed: number): tfl.LayersModel {
  const members = (model.layers[0]?.getWeights()[0]?.shape[1] as number) / HIDDEN[0];
  const full = buildModel(featureLength(), seed, members);
  model.layers.forEach((layer, l) => {
    const weights = layer.getWeights();
    if (l > 0) return full.layers[l]?.setWeights(weights);
    const [kernel, bias] = weights as [tf.Tensor, tf.Tensor];
    const units = kernel.shape[1] as number;
    const k = kernel.dataSync();
    const wide = new Float32Array(featureLength() * units);
    MODEL_COLUMNS.forEach((c, j) => wide.set(k.subarray(j * units, (j + 1) * units), c * units));
    // `bias` is `model`'s own variable (the caller disposes `model`); only the widened kernel is new here.
    const wideKernel = tf.tensor2d(zeroExactUint8(wide), [featureLength(), units]);
    full.layers[0]?.setWeights([wideKernel, bias]);
    wideKernel.dispose();
  });
  return full;
}

/**
 * Labelled beats of some records. Left out: beats that matched no reference, and Q beats (a few dozen
 * unclassifiable beats in the non-paced records: too few to learn from, and as a boosted class they
 * absorbed V beats). The model keeps a Q output, which it learns never to choose.
 */
function gather(records: readonly RecordBeats[]): Dataset {
  const width = modelColumns(records[0]?.width ?? featureLength()).length;
  let n = 0;
  for (const r of records) for (const l of r.labels) if (l >= 0 && l !== Q) n++;
  const x = new Float32Array(n * width);
  const y = new Int32Array(n);
  let k = 0;
  for (const r of records) {
    const inputs = modelInputs(r.features, r.samples.length, r.width);
    r.labels.forEach((l, i) => {
      if (l < 0 || l === Q) return;
      x.set(inputs.subarray(i * width, (i + 1) * width), k * width);
      y[k++] = l;
    });
  }
  return { x, y, n };
}

export async function train(data: Dataset, epochs: number, seed: number, label: string): Promise<tfl.LayersModel> {
  const width = data.n > 0 ? data.x.length / data.n : MODEL_COLUMNS.length;
  const counts = AAMI_CLASSES.map((_, c) => data.y.filter((v) => v === c).length);
  const classWeight: Record<number, number> = {};
  counts.forEach((n, c) => {
    // S and V are weighted up for their rarity; F and Q (few, heterogeneous) are not, so that they do not absorb V beats.
    const boosted = AAMI_CLASSES[c] === 'S' || AAMI_CLASSES[c] === 'V';
    classWeight[c] = n === 0 || !boosted ? 1 : Math.min(CLASS_WEIGHT_CAP, ((counts[0] as number) / n) ** CLASS_WEIGHT_POWER);
  });
  const model = buildModel(width, seed);
  const random = mulberry32(seed);
  const order = Array.from({ length: data.n }, (_, i) => i);
  const xs = new Float32Array(data.n * width);
  const ys = new Float32Array(data.n * AAMI_CLASSES.length);
  for (let e = 0; e < epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    ys.fill(0);
    order.forEach((src, dst) => {
      xs.set(data.x.subarray(src * width, (src + 1) * width), dst * width);
      ys[dst * AAMI_CLASSES.length + (data.y[src] as number)] = 1;
    });
    const x = tf.tensor2d(xs, [data.n, width]);
    const y = tf.tensor2d(ys, [data.n, AAMI_CLASSES.length]);
    const h = await model.fit(x, y, { epochs: 1, batchSize: 256, shuffle: false, classWeight, verbose: 0 });
    x.dispose();
    y.dispose();
    bar(e + 1, epochs, `${label} epoch ${e + 1}/${epochs} loss ${(h.history.loss?.[0] as number).toFixed(4)}`);
  }
  return model;
}

/**
 * Classes of a record's beats as the runtime assigns them (the model's probabilities, N + S split by the
 * rhythm rule, the most probable class), and the network's own (the same probabilities before the rule).
 */
export function predictClasses(model: tfl.LayersModel, r: RecordBeats, rule: SupraventricularRule = DEFAULT_SUPRAVENTRICULAR_RULE): { classes: AamiClass[]; network: AamiClass[] } {
  const n = r.samples.length;
  if (n === 0) return { classes: [], network: [] };
  const inputs = model.inputs[0]?.shape[1] === r.width ? r.features : modelInputs(r.features, n, r.width);
  const p = tf.tidy(() => (model.predict(tf.tensor2d(inputs, [n, inputs.length / n])) as tf.Tensor).dataSync() as Float32Array);
  const k = AAMI_CLASSES.length;
  const argmax = (q: Float32Array) => Array.from({ length: n }, (_, i) => classOf(q, i * k).cls);
  const network = argmax(p);
  return { classes: argmax(splitSupraventricular(p.slice(), r.features, n, r.width, rule)), network };
}

/** EC57 pairs of one record from its labelled beats and predicted classes (scored part only). */
export function pairsOf(r: RecordBeats, predicted: Int32Array): ClassPair[] {
  const pairs: ClassPair[] = [];
  r.labels.forEach((l, i) => {
    if (!r.scored[i]) return;
    pairs.push({ ref: l < 0 ? undefined : (AAMI_CLASSES[l] as ScoreClass), det: AAMI_CLASSES[predicted[i] as number] as ScoreClass });
  });
  r.missed.forEach((n, c) => {
    for (let i = 0; i < n; i++) pairs.push({ ref: AAMI_CLASSES[c] as ScoreClass, det: undefined });
  });
  return pairs;
}

const fmt = (s: { se: number; ppv: number; tp: number; fn: number; fp: number }) => ({ se: Math.round(s.se * 100) / 100, ppv: Math.round(s.ppv * 100) / 100, tp: s.tp, fn: s.fn, fp: s.fp });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      folds: { type: 'string' },
      epochs: { type: 'string' },
      backend: { type: 'string' },
      'no-cv': { type: 'boolean' },
      'no-final': { type: 'boolean' },
      /** Ablation: feature names (or `morphology`) whose inputs are zeroed in training and evaluation. */
      zero: { type: 'string' },
      /** Experiment: append the second lead's features (`morph`, `scalars` or `all`) to the network's inputs; CV only. */
      lead2: { type: 'string' },
      /** Experiment: augmented copies of the training folds' records (`noise`, `stretch` or `both`, `AUGMENTATIONS`); CV only. */
      augment: { type: 'string' },
      /** The MIT-BIH NST records `ma` and `bw` for `--augment noise|both` (default DATA/../nstdb). */
      'noise-dir': { type: 'string' },
      /** Networks from different seeds merged into one (the mean of their logits). */
      members: { type: 'string' },
      /** Ed25519 private key (PEM) that signs the written artifact. */
      'sign-key': { type: 'string' },
    },
  });
  const root = packageRoot();
  const dir = resolve(values.data ?? join(root, '..', 'shared', 'data', 'mitdb'));
  const out = resolve(values.out ?? join(root, 'models', 'ecg-beats'));
  const folds = Number(values.folds ?? 5);
  const epochs = Number(values.epochs ?? 10);
  const members = Number(values.members ?? 4);
  if (!Number.isInteger(members) || members < 1) throw new Error(`--members must be a whole number >= 1, got ${JSON.stringify(values.members)}`);
  const augment = values.augment;
  if (augment !== undefined) {
    if (!Object.keys(AUGMENTATIONS).includes(augment)) throw new Error(`--augment must be one of ${Object.keys(AUGMENTATIONS).join(', ')}, got ${JSON.stringify(augment)}`);
    if (!values['no-final']) throw new Error('--augment is an experiment (not adopted): use it with --no-final');
    if (values.lead2 !== undefined) throw new Error('--augment and --lead2 cannot be combined (the copies have no second-lead features)');
  }
  // Checked before training, so that a wrong path or key fails now rather than after the run.
  const signingKey = signingKeyFile(values['sign-key']);
  // Preprocessed beats and CV outputs: a git-ignored cache outside the signed artifact directory.
  const cache = join(root, 'dist', 'cache', 'ecg-beats');
  // wasm trains this small MLP several times faster than cpu in Node; both are deterministic.
  const backend = values.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu' && backend !== 'tensorflow') throw new Error(`--backend must be wasm, cpu or tensorflow, got ${JSON.stringify(backend)}`);
  await initBackend(backend);
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.atr'))
    .map((f) => f.slice(0, -4))
    .filter((r) => !PACED_RECORDS.includes(r))
    .sort();
  const records: RecordBeats[] = [];
  for (const [i, name] of names.entries()) {
    records.push(recordBeats(dir, name, cache));
    bar(i + 1, names.length, `beats of ${name}`);
  }
  /** Each record's augmented copies, used only while the record is in the training folds. */
  const copies = new Map<string, RecordBeats[]>();
  if (augment !== undefined) {
    const plan = AUGMENTATIONS[augment as keyof typeof AUGMENTATIONS];
    const noises = plan.some((c) => c.kind === 'noise') ? nstNoises(resolve(values['noise-dir'] ?? join(dirname(dir), 'nstdb'))) : [];
    for (const [i, name] of names.entries()) {
      copies.set(name, plan.map((c) => augmentedBeats(dir, name, c, noises, cache)));
      bar(i + 1, names.length, `augmented copies of ${name} (${plan.map(augmentTag).join(', ')})`);
    }
  }
  /** The records of a training set with their augmented copies. */
  const withCopies = (set: readonly RecordBeats[]) => set.flatMap((r) => [r, ...(copies.get(r.record) ?? [])]);
  if (values.zero) {
    const width = featureLength();
    const columns = new Set<number>();
    for (const name of values.zero.split(',')) {
      if (name === 'morphology') for (let c = FEATURE_NAMES.length; c < width; c++) columns.add(c);
      else if ((FEATURE_NAMES as readonly string[]).includes(name)) columns.add((FEATURE_NAMES as readonly string[]).indexOf(name));
      else throw new Error(`--zero: unknown feature ${JSON.stringify(name)}`);
    }
    for (const r of withCopies(records)) for (let i = 0; i < r.samples.length; i++) for (const c of columns) r.features[i * width + c] = 0;
    if (!values['no-final']) throw new Error('--zero is for cross-validation ablations: use it with --no-final');
  }
  const lead2 = values.lead2;
  if (lead2 !== undefined) {
    if (!Object.keys(LEAD2_VARIANTS).includes(lead2)) throw new Error(`--lead2 must be one of ${Object.keys(LEAD2_VARIANTS).join(', ')}, got ${JSON.stringify(lead2)}`);
    if (!values['no-final']) throw new Error('--lead2 is an experiment (the runtime reads one lead): use it with --no-final');
    const leads: Record<string, string> = {};
    for (const [i, r] of records.entries()) {
      leads[r.record] = appendLead2(dir, r, lead2 as keyof typeof LEAD2_VARIANTS, cache);
      bar(i + 1, records.length, `second lead of ${r.record}`);
    }
    process.stderr.write(`--lead2 ${lead2}: ${modelColumns(records[0]?.width ?? featureLength()).length} network inputs; second leads ${Object.entries(leads).map(([r, l]) => `${r}:${l}`).join(' ')}\n`);
  }
  const split = Array.from({ length: folds }, (_, k) => names.filter((_, i) => i % folds === k));
  let cv: Record<string, unknown> | undefined;
  if (!values['no-cv']) {
    const perRecord: Record<string, ClassScores> = {};
    /** Out-of-fold classes after the rhythm rule, and the network's own (before it: what `rule-grid.js` re-applies rule variants to). */
    const oof: Record<string, { samples: number[]; classes: string[]; network: string[] }> = {};
    const all: ClassPair[] = [];
    for (let k = 0; k < folds; k++) {
      const test = records.filter((r) => split[k]?.includes(r.record));
      const trainSet = gather(withCopies(records.filter((r) => !split[k]?.includes(r.record))));
      const model = await trainMembers(trainSet, epochs, SEED + k, members, `fold ${k + 1}/${folds}`);
      for (const r of test) {
        const { classes, network } = predictClasses(model, r);
        const samples = [...r.samples];
        oof[r.record] = { samples, classes, network };
        // Scored as the pipeline reports the beats: the AF detector over these classes, S inside AF -> N.
        const { reported } = afOverBeats(samples, classes, atrialValues(dir, r.record, samples), { fs: r.fs }, r.length);
        const pairs = pairsOf(r, Int32Array.from(reported, (c) => AAMI_CLASSES.indexOf(c)));
        perRecord[r.record] = classScores(pairs);
        all.push(...pairs);
      }
      disposeModel(model);
    }
    const gross = classScores(all);
    cv = {
      method: `leave-records-out, ${folds} folds (records sorted, dealt round-robin), EC57 scoring from minute 5 on our detected beats`,
      ...(augment === undefined ? {} : { augment: { variant: augment, copies: AUGMENTATIONS[augment as keyof typeof AUGMENTATIONS], trainingBeats: 'each training fold\'s records and their copies; test folds unaugmented' } }),
      folds: split,
      gross: { V: fmt(gross.V), S: fmt(gross.S), confusion: gross.confusion },
      perRecord: Object.fromEntries(Object.entries(perRecord).map(([r, s]) => [r, { V: fmt(s.V), S: fmt(s.S) }])),
    };
    process.stderr.write(`CV gross: V Se ${gross.V.se.toFixed(2)} +P ${gross.V.ppv.toFixed(2)}  S Se ${gross.S.se.toFixed(2)} +P ${gross.S.ppv.toFixed(2)}\n`);
    for (const [r, s] of Object.entries(perRecord)) process.stderr.write(`  ${r}: V ${s.V.tp}/${s.V.tp + s.V.fn} fp ${s.V.fp}  S ${s.S.tp}/${s.S.tp + s.S.fn} fp ${s.S.fp}\n`);
    mkdirSync(cache, { recursive: true });
    const suffix = `${lead2 === undefined ? '' : `-lead2-${lead2}`}${augment === undefined ? '' : `-augment-${augment}`}`;
    writeFileSync(join(cache, `cv${suffix}.json`), `${JSON.stringify(cv, null, 2)}\n`);
    // Out-of-fold beat classes: the AF detector is evaluated on classes from models that never saw the record.
    writeFileSync(join(cache, `cv-classes${suffix}.json`), JSON.stringify(oof));
  }
  if (values['no-final']) return;
  const all = gather(records);
  const trained = await trainMembers(all, epochs, SEED, members, 'final model');
  const model = expandInputs(trained, SEED);
  disposeModel(trained);
  const manifest = await saveQuantizedModel(model, out, {
    id: MODEL_ID,
    version: MODEL_VERSION,
    input: {
      name: 'beat-features',
      shape: [null, featureLength()],
      dtype: 'float32',
      lead: 'first signal (MLII on MIT-BIH)',
      features: [...FEATURE_NAMES, `morphology[${DEFAULT_BEAT_FEATURE_OPTIONS.morphPoints}]`],
      featureOptions: DEFAULT_BEAT_FEATURE_OPTIONS,
      extractor: 'device-sdk/signal/ecg/beat-features.ts BeatFeatureExtractor',
    },
    labels: [...AAMI_CLASSES],
    thresholds: { argmax: 1, ...supraventricularThresholds() },
    training: {
      data: 'MIT-BIH Arrhythmia Database (PhysioNet, ODC-By 1.0), shared non-paced records',
      records: names,
      excluded: PACED_RECORDS,
      beats: all.n,
      classCounts: Object.fromEntries(AAMI_CLASSES.map((c, i) => [c, all.y.filter((v) => v === i).length])),
      seed: SEED,
      members: { count: members, seeds: Array.from({ length: members }, (_, j) => SEED + 1000 * j), merge: 'mean of the members\' logits, then softmax (one network: first layers side by side, second layers block-diagonal)' },
      epochs,
      classWeight: `S and V: min(${CLASS_WEIGHT_CAP}, (count N / count class)^${CLASS_WEIGHT_POWER}); N, F, Q: 1`,
      params: model.countParams(),
    },
    metrics: cv ? { crossValidation: { method: cv.method, folds: cv.folds, gross: { V: (cv.gross as { V: unknown }).V, S: (cv.gross as { S: unknown }).S } } } : {},
  });
  process.stderr.write(`wrote ${out} (${manifest.files['weights.bin']?.slice(0, 12)}…, ${model.countParams()} params)\n`);
  process.stderr.write(`${signTrainedArtifact(out, signingKey, { id: MODEL_ID, version: MODEL_VERSION })}\n`);
  disposeModel(model);
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join('models', 'ecg-beats', 'train.js'))) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
