// Heart-sound screen latency: `pcg classify` of one 30 s recording (WAV decode, resampling, band-pass,
// segmentation, features, model), per backend (wasm, cpu), in process as the CLI runs it. The
// recording is a shared PASCAL recording looped to 30 s when ../shared is there, else a synthetic one.
//
//   node bench/pcg-classify.js [--runs 10]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeWav, readWav } from '../dist/device-sdk/protocols/wav.js';
import { analyzePcg } from '../dist/device-sdk/signal/pcg/screen.js';
import { loadPcgModelInProcess, pcgModelDir, screenRecording } from '../dist/firmware/pcg-monitor.js';

const runsIndex = process.argv.indexOf('--runs');
const runs = runsIndex > 0 ? Number(process.argv[runsIndex + 1]) : 10;
const seconds = 30;
const shared = join(import.meta.dirname, '..', '..', 'shared', 'data', 'pcg', 'pascal-b');

function recording() {
  if (existsSync(shared)) {
    const name = readdirSync(shared).filter((f) => f.startsWith('normal__')).sort()[0];
    if (name) {
      const w = readWav(new Uint8Array(readFileSync(join(shared, name))));
      const out = new Float32Array(seconds * w.rateHz);
      for (let i = 0; i < out.length; i++) out[i] = w.samples[i % w.samples.length];
      return { source: `pascal-b ${name.split('_')[2]} looped`, wav: encodeWav(out, { rateHz: w.rateHz }) };
    }
  }
  const rateHz = 4000;
  const out = new Float32Array(seconds * rateHz);
  for (let t = 0.2; t < seconds - 0.5; t += 60 / 72) {
    for (const [at, f, amp] of [[t, 60, 0.5], [t + 0.3, 100, 0.35]]) {
      for (let i = Math.round((at - 0.04) * rateHz); i < Math.round((at + 0.04) * rateHz); i++) {
        const d = i / rateHz - at;
        out[i] += amp * Math.exp(-0.5 * (d / 0.012) ** 2) * Math.sin(2 * Math.PI * f * d);
      }
    }
  }
  return { source: 'synthetic 72/min', wav: encodeWav(out, { rateHz }) };
}

const { source, wav } = recording();
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 10) / 10;
  return { median: r(s[Math.floor(s.length / 2)]), p95: r(s[Math.min(s.length - 1, Math.floor(0.95 * s.length))]), max: r(s[s.length - 1]) };
};
const result = { recordingSeconds: seconds, source, runs };
// DSP alone (decode + resample + band-pass + segmentation + features), no model.
const dsp = [];
for (let k = 0; k < runs; k++) {
  const t0 = performance.now();
  const w = readWav(wav);
  analyzePcg(w.samples, w.rateHz);
  dsp.push(performance.now() - t0);
}
result.dspMs = stats(dsp);
for (const backend of ['wasm', 'cpu']) {
  const t0 = performance.now();
  const model = await loadPcgModelInProcess(pcgModelDir(), backend);
  const loadMs = Math.round(performance.now() - t0);
  const times = [];
  let label;
  for (let k = 0; k < runs + 1; k++) {
    const s = performance.now();
    const w = readWav(wav);
    const r = await screenRecording(model, w.samples, w.rateHz);
    if (k > 0) times.push(performance.now() - s); // the first run warms up the kernels
    label = r.label;
  }
  result[backend] = { loadMs, perRecordingMs: stats(times), label };
  await model.close();
  process.stderr.write(`pcg-classify: ${backend} done\n`);
}
process.stdout.write(`${JSON.stringify({ 'pcg-classify': result })}\n`);
