// Per-point latency of the 30-minute glucose forecast: feature extraction, the model on the TF.js
// wasm and cpu backends (one point per call, as at each new CGM reading, and batches of 256 as
// `medge glucose predict` runs them), the plain-JavaScript evaluation the runtime uses, the
// predicted-hypoglycaemia detector (its features and network, plain JavaScript), and one whole
// GlucoseMonitor step (trend, faults, forecast, detector, alerts) per reading. `backendAndLoadMs` is the
// backend's start plus the model load of `medge glucose predict` (loadGlucoseForecaster: manifest read
// and checked once, both networks; the forecast's TF.js model from the same bytes); `cliLoad` is that
// load repeated 200 times on a started backend.
//
//   node bench/glucose-forecast.js [--points N]
import { join } from 'node:path';
import { initBackend, layersModelFromFiles, tf } from '../dist/device-sdk/inference/index.js';
import { mulberry32 } from '../dist/device-sdk/random.js';
import { decodeForecast, FORECAST_SPEC, forecastFeatures } from '../dist/device-sdk/signal/glucose/forecast.js';
import { detectorFeatures } from '../dist/device-sdk/signal/glucose/hypo-detector.js';
import { GlucoseMonitor, loadGlucoseForecaster } from '../dist/firmware/glucose-monitor.js';
import { numberArg } from './lib/common.js';

const points = numberArg('points', 2000);
const dir = join(import.meta.dirname, '..', 'models', 'glucose-forecast', 'artifact');
const rng = mulberry32(7);
const MIN = 60_000;
const F = FORECAST_SPEC.features;
/** A deterministic CGM-like trace: 5-minute readings, daily swings, meals, noise. */
const trace = Array.from({ length: points + 12 }, (_, k) => ({ t: k * 5 * MIN, gl: Math.round(120 + 40 * Math.sin(k / 30) + 25 * Math.max(0, Math.sin(k / 7)) + (rng() - 0.5) * 8) }));

/** @param {number[]} us */
function stats(us) {
  const s = [...us].sort((a, b) => a - b);
  const q = (p) => Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0) * 10) / 10;
  return { medianUs: q(0.5), p95Us: q(0.95), n: s.length };
}

/** @param {() => void} fn */
function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1000;
}

const feats = [];
const featIdx = [];
const featureUs = [];
for (let i = 12; i < trace.length; i++) {
  let f;
  featureUs.push(time(() => (f = forecastFeatures(trace, i))));
  if (f) {
    feats.push(f);
    featIdx.push(i);
  }
}
const x = new Float32Array(feats.length * F);
feats.forEach((f, r) => x.set(f, r * F));

const result = { points: feats.length, features: stats(featureUs) };
for (const backend of ['wasm', 'cpu']) {
  const startMs = performance.now();
  await initBackend(backend);
  const load = async () => {
    const f = loadGlucoseForecaster(dir);
    return layersModelFromFiles(f.forecastFiles.topology, f.forecastFiles.weights);
  };
  const model = await load();
  const loadMs = Math.round(performance.now() - startMs);
  const cliLoad = [];
  for (let k = 0; k < 200; k++) {
    const t0 = process.hrtime.bigint();
    const m = await load();
    cliLoad.push(Number(process.hrtime.bigint() - t0) / 1000);
    m.dispose();
  }
  const single = [];
  for (let r = 0; r < feats.length; r++) {
    // warm-up on the first 20
    const us = time(() => tf.tidy(() => model.predict(tf.tensor2d(x.subarray(r * F, r * F + F), [1, F])).dataSync()));
    if (r >= 20) single.push(us);
  }
  const batchUs = time(() => {
    for (let b = 0; b < feats.length; b += 256) {
      const n = Math.min(256, feats.length - b);
      tf.tidy(() => model.predict(tf.tensor2d(x.subarray(b * F, (b + n) * F), [n, F])).dataSync());
    }
  });
  result[backend] = { backendAndLoadMs: loadMs, cliLoad: stats(cliLoad), single: stats(single), batch256PerPointUs: Math.round((batchUs / feats.length) * 100) / 100 };
  process.stderr.write(`${backend}: ${JSON.stringify(result[backend])}\n`);
}

const forecaster = loadGlucoseForecaster(dir);
const js = [];
for (const f of feats) js.push(time(() => forecaster.net.predict(f)));
result.plainJs = stats(js.slice(20));
const detFeatUs = [];
const detUs = [];
feats.forEach((f, r) => {
  const i = featIdx[r];
  const fc = decodeForecast(trace[i].gl, forecaster.net.predict(f));
  let x;
  detFeatUs.push(time(() => (x = detectorFeatures(trace, i, f, fc))));
  detUs.push(time(() => forecaster.detector.predict(x)));
});
result.detector = { features: stats(detFeatUs.slice(20)), plainJs: stats(detUs.slice(20)) };
const monitor = new GlucoseMonitor('cgm', forecaster);
const step = [];
for (const p of trace) step.push(time(() => monitor.push({ sensor: 'cgm', type: 'glucose', value: p.gl, unit: 'mg/dL', tDevice: p.t })));
result.monitorStep = stats(step.slice(20));
process.stdout.write(`${JSON.stringify({ 'glucose-forecast': result })}\n`);
