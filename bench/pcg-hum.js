// Mains hum and the heart-sound screen: how many of the shared PASCAL B recordings change their label
// (normal / abnormal / unreadable) when a mains line is added, against the same recordings as recorded.
// The hum is a sine (and harmonics) of amplitude k x the recording's own RMS, random phase (fixed seed).
// Prints JSON: per condition, labels changed (and how), unreadable share.
//
//   node bench/pcg-hum.js [--data DIR] [--limit N]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWav } from '../dist/device-sdk/protocols/wav.js';
import { loadPcgModelInProcess, pcgModelDir, screenRecording } from '../dist/firmware/pcg-monitor.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const data = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'pcg', 'pascal-b'));
const limit = Number(arg('--limit', 'Infinity'));
if (!existsSync(data)) {
  process.stderr.write(`pcg-hum: no recordings at ${data} (give --data DIR of PASCAL B WAVs)\n`);
  process.exit(2);
}

/** Conditions: [name, lines as [Hz, amplitude x RMS]]. */
const CONDITIONS = [
  ['50 Hz, 0.5 x RMS', [[50, 0.5]]],
  ['50 Hz, 0.1 x RMS', [[50, 0.1]]],
  ['60 Hz, 0.5 x RMS', [[60, 0.5]]],
  ['50 + 150 + 250 Hz, 0.5 / 0.2 / 0.1 x RMS', [[50, 0.5], [150, 0.2], [250, 0.1]]],
  ['49.7 Hz, 0.5 x RMS', [[49.7, 0.5]]],
  ['50 Hz, 2 x RMS', [[50, 2]]],
];

// Fixed-seed phases (mulberry32), so that runs compare.
let seed = 20261206;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

function withHum(samples, rateHz, lines) {
  let mean = 0;
  for (const v of samples) mean += v;
  mean /= samples.length;
  let sq = 0;
  for (const v of samples) sq += (v - mean) ** 2;
  const rms = Math.sqrt(sq / samples.length);
  const out = Float32Array.from(samples);
  for (const [hz, k] of lines) {
    const phase = 2 * Math.PI * random();
    for (let i = 0; i < out.length; i++) out[i] += k * rms * Math.sin((2 * Math.PI * hz * i) / rateHz + phase);
  }
  return out;
}

const files = readdirSync(data).filter((f) => f.endsWith('.wav')).sort().slice(0, limit);
const model = await loadPcgModelInProcess(pcgModelDir(), 'wasm');
const recordings = files.map((f) => readWav(new Uint8Array(readFileSync(join(data, f)))));
const clean = [];
for (const w of recordings) clean.push((await screenRecording(model, w.samples, w.rateHz)).label);
const share = (labels) => Math.round((1000 * labels.filter((l) => l === 'unreadable').length) / labels.length) / 10;
const result = { recordings: files.length, model: model.manifest.id ?? 'pcg-abnormal', clean: { unreadablePct: share(clean), abnormal: clean.filter((l) => l === 'abnormal').length }, conditions: [] };
for (const [name, lines] of CONDITIONS) {
  const labels = [];
  for (const w of recordings) labels.push((await screenRecording(model, withHum(w.samples, w.rateHz, lines), w.rateHz)).label);
  const moves = {};
  let changed = 0;
  labels.forEach((l, i) => {
    if (l === clean[i]) return;
    changed++;
    const key = `${clean[i]}->${l}`;
    moves[key] = (moves[key] ?? 0) + 1;
  });
  result.conditions.push({ name, changed, changedPct: Math.round((1000 * changed) / files.length) / 10, moves, unreadablePct: share(labels) });
  process.stderr.write(`pcg-hum: ${name}: ${changed} changed\n`);
}
await model.close();
process.stdout.write(`${JSON.stringify({ 'pcg-hum': result })}\n`);
