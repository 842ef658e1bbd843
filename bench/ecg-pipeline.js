// The whole streaming ECG pipeline on the shared MIT-BIH records: QRS detection, beat features, beat
// classification (the shipped model, uint8, in-process on the wasm backend, so that everything runs on
// one core) and AF detection, streamed in 1 s chunks as the runtime feeds it. Prints the real-time
// factor of the QRS front end alone and of the whole pipeline, per-beat inference latency on wasm and
// cpu (single beats and batches; tfjs-node when it loads), model load time (in-process and in a worker
// thread), the time to annotate all records through `analyzeSignal` with the worker (as `medge ecg
// annotate` does), and resident memory.
//
//   node bench/ecg-pipeline.js [--data DIR] [--model DIR]
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend, tf, tfjsNodeAvailable } from '../dist/device-sdk/inference/backend.js';
import { loadModel, readModelManifest } from '../dist/device-sdk/inference/artifacts.js';
import { AfDetector, AtrialActivity } from '../dist/device-sdk/signal/ecg/af-detector.js';
import { beatModelMismatch, classOf } from '../dist/device-sdk/signal/ecg/beat-classes.js';
import { EcgFrontEnd } from '../dist/device-sdk/signal/ecg/front-end.js';
import { QrsDetector } from '../dist/device-sdk/signal/ecg/qrs-detector.js';
import { analyzeSignal } from '../dist/firmware/cli/ecg.js';
import { WorkerBeatClassifier } from '../dist/firmware/ecg-classifier.js';
import { readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
const modelDir = arg('--model', join(import.meta.dirname, '..', 'models', 'ecg-beats'));
if (!existsSync(dir) || !existsSync(join(modelDir, 'medge-model.json'))) {
  process.stdout.write(`${JSON.stringify({ 'ecg-pipeline': { skipped: `${existsSync(dir) ? modelDir : dir} is missing` } })}\n`);
  process.exit(0);
}
// The check the runtime's classifier makes (WorkerBeatClassifier.start): a model trained on other features is refused, not timed.
const mismatch = beatModelMismatch(readModelManifest(modelDir).manifest, modelDir);
if (mismatch) {
  process.stderr.write(`ecg-pipeline: refused: ${mismatch.message}\n`);
  process.exit(1);
}
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const now = () => performance.now();
const records = readdirSync(dir)
  .filter((f) => f.endsWith('.hea'))
  .map((f) => f.slice(0, -4))
  .sort();
const signals = records.map((name) => {
  const r = readWfdbRecord(join(dir, name));
  return { name, fs: r.header.fs, signal: r.signals[0] };
});
const signalSeconds = signals.reduce((s, r) => s + r.signal.length / r.fs, 0);

const cpuSeconds = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};
// 1. QRS detection alone.
const qrsCpu = process.cpuUsage();
let qrsMs = 0;
const chunkMicros = [];
for (const { fs, signal } of signals) {
  const detector = new QrsDetector({ fs });
  const chunk = Math.round(fs);
  const t0 = now();
  for (let i = 0; i < signal.length; i += chunk) {
    const c0 = now();
    detector.push([signal.subarray(i, i + chunk)]);
    chunkMicros.push((now() - c0) * 1000);
  }
  qrsMs += now() - t0;
}
const qrsCpuSeconds = cpuSeconds(qrsCpu);
chunkMicros.sort((a, b) => a - b);
const pct = (p) => Math.round(chunkMicros[Math.floor(p * (chunkMicros.length - 1))]);
process.stderr.write('ecg-pipeline: QRS front end done\n');

// 2. The whole pipeline in one thread: front end, in-process wasm classification per 1 s chunk, atrial activity and AF.
const loadStart = now();
await initBackend('wasm');
const backendMs = now() - loadStart;
const modelStart = now();
const loaded = await loadModel(modelDir);
const modelLoadMs = now() - modelStart;
const width = loaded.manifest.input.shape[1];
let pipelineMs = 0;
let beats = 0;
let frontEndMs = 0;
const pipelineCpu = process.cpuUsage();
for (const { name, fs, signal } of signals) {
  const t0 = now();
  const fe = new EcgFrontEnd({ fs });
  const af = new AfDetector({ fs });
  const atrial = new AtrialActivity({ fs });
  const chunk = Math.round(fs);
  const step = (feats) => {
    if (feats.length === 0) return;
    const x = new Float32Array(feats.length * width);
    feats.forEach((b, i) => x.set(b.features, i * width));
    const p = tf.tidy(() => loaded.model.predict(tf.tensor2d(x, [feats.length, width])).dataSync());
    feats.forEach((b, i) => af.push({ sample: b.sample, cls: classOf(p, i * 5).cls, atrial: atrial.beat(b.sample) }));
    beats += feats.length;
  };
  for (let i = 0; i < signal.length; i += chunk) {
    const f0 = now();
    const samples = signal.subarray(i, i + chunk);
    const feats = fe.push(samples);
    frontEndMs += now() - f0;
    atrial.pushSamples(samples);
    step(feats);
  }
  step(fe.flush());
  pipelineMs += now() - t0;
  process.stderr.write(`ecg-pipeline: ${name}\n`);
}

const pipelineCpuSeconds = cpuSeconds(pipelineCpu);

// 3. Per-beat inference latency.
async function latency(backend) {
  await initBackend(backend);
  const m = await loadModel(modelDir);
  const one = tf.tensor2d(new Float32Array(width).fill(0.1), [1, width]);
  const batch = tf.tensor2d(new Float32Array(64 * width).fill(0.1), [64, width]);
  for (let i = 0; i < 20; i++) m.model.predict(one).dataSync();
  const singles = [];
  for (let i = 0; i < 300; i++) {
    const t0 = now();
    tf.tidy(() => m.model.predict(one).dataSync());
    singles.push(now() - t0);
  }
  singles.sort((a, b) => a - b);
  const t0 = now();
  for (let i = 0; i < 50; i++) tf.tidy(() => m.model.predict(batch).dataSync());
  const batchedPerBeat = (now() - t0) / (50 * 64);
  one.dispose();
  batch.dispose();
  return { singleBeatMs: { median: round(singles[150], 3), p99: round(singles[296], 3) }, batch64PerBeatMs: round(batchedPerBeat, 4) };
}
const inference = { wasm: await latency('wasm'), cpu: await latency('cpu') };
inference.tensorflow = (await tfjsNodeAvailable()) ? await latency('tensorflow') : 'not installed (optional @tensorflow/tfjs-node)';

// 4. Annotating all records as `medge ecg annotate` does (front end + worker classification + AF).
const workerStart = now();
const classifier = await WorkerBeatClassifier.start(modelDir, 'wasm');
const workerStartMs = now() - workerStart;
const annotateStart = now();
for (const { fs, signal } of signals) await analyzeSignal(signal, fs, classifier);
const annotateAllMs = now() - annotateStart;
const workerLoadMs = classifier.worker.loadMs;
await classifier.close();

process.stdout.write(
  `${JSON.stringify({
    'ecg-pipeline': {
      records: records.length,
      signalHours: round(signalSeconds / 3600, 2),
      beats,
      cpuNote: 'the machine is shared: wall-clock factors depend on load; cpuTime factors count only this process\'s CPU time',
      qrs: { realTimeFactor: Math.round((signalSeconds * 1000) / qrsMs), realTimeFactorCpuTime: Math.round(signalSeconds / qrsCpuSeconds), perSecondChunkMicros: { median: pct(0.5), p99: pct(0.99), max: pct(1) } },
      wholePipelineOneThread: {
        realTimeFactor: Math.round((signalSeconds * 1000) / pipelineMs),
        realTimeFactorCpuTime: Math.round(signalSeconds / pipelineCpuSeconds),
        seconds: round(pipelineMs / 1000, 2),
        frontEndShare: round(frontEndMs / pipelineMs, 2),
        note: 'QRS + features + wasm classification per 1 s chunk + atrial activity + AF, one thread' },
      inferencePerBeat: inference,
      modelLoad: { wasmBackendInitMs: round(backendMs), inProcessLoadMs: round(modelLoadMs), workerStartMs: round(workerStartMs), workerBackendAndLoadMs: round(workerLoadMs) },
      annotateAllRecordsSeconds: round(annotateAllMs / 1000, 2),
      model: { id: loaded.manifest.id, version: loaded.manifest.version, sha256: loaded.sha256.slice(0, 16), params: loaded.model.countParams() },
      rssMiB: round(process.memoryUsage().rss / 1048576),
    },
  })}\n`,
);
