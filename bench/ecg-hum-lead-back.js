// The ECG monitor (EcgMonitor, rule classifier, one lead) under mains hum: false alarms on living patients whose
// lead comes off and back, and the alarm time when the heart has stopped, at a given rate, hum size and mains
// frequency (exact, off by a fixed amount, or drifting), as the adoption checks of the hum fit use them.
//
// 1. Living lead-backs: each shared MIT-BIH record's lead 1 x1, x0.5 and x0.3 for 300 s, hum and 0.01 mV of
//    noise added, the front end reporting the lead off for 3 s in every 20 s (from 5 s). Counted: every
//    `ecg-no-beats` (the heart beats throughout: all are false; 207's ventricular flutter included).
// 2. Stopped-heart lead-back: 101 for 30 s, the lead off 30-40 s, then 0.03 mV of noise under the same hum; per
//    seed the time of the first `ecg-no-beats` after the lead-back (s; should be 4).
// 3. Arrest while locked on: 101 until 29.9 s, then its level held under 0.03 mV of noise, lead on; per seed
//    the time of the first `ecg-no-beats` after the last reference beat (s; should be 4-4.1).
// Cases 2 and 3 run 10 seeds (noise and the hum's phase).
//
//   node bench/ecg-hum-lead-back.js [--data DIR] [--fs 250] [--gain 200] [--hum-mv 0.3] [--hum-hz 60]
//                                   [--sweep-hz 0] [--sweep-s 100] [--sections 123] [--records 100,101,...]
//
// --hum-hz is the mains frequency (49.8, 60.2...); --sweep-hz S moves it S Hz around that as a sine of period
// --sweep-s (mains drifts by up to 0.2 Hz, slowly).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isQrsCode } from '../dist/device-sdk/protocols/wfdb.js';
import { EcgMonitor } from '../dist/firmware/ecg-monitor.js';
import { readWfdbAnnotations, readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';
import { quantile, round } from './lib/ecg-monitor-stream.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
if (!existsSync(dir)) {
  process.stdout.write(`${JSON.stringify({ 'ecg-hum-lead-back': { skipped: `${dir} is missing` } })}\n`);
  process.exit(0);
}
const fs = Number(arg('--fs', 250));
const gain = Number(arg('--gain', 200));
const humMv = Number(arg('--hum-mv', 0.3));
const humHz = Number(arg('--hum-hz', 60));
const sweepHz = Number(arg('--sweep-hz', 0));
const sweepS = Number(arg('--sweep-s', 100));
const sections = arg('--sections', '123');
const names =
  arg('--records', undefined)?.split(',') ??
  readdirSync(dir)
    .filter((f) => f.endsWith('.hea'))
    .map((f) => f.slice(0, -4))
    .sort();

/** A Gaussian noise source from `seed` (deterministic). */
function seeded(seed) {
  let s = seed;
  const u = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Hum (mV) at `t` s: `humMv` at `humHz`, moved `sweepHz` around it with period `sweepS` (phase integrated), from `phase`. */
const hum = (phase) => (t) => humMv * Math.sin(2 * Math.PI * (humHz * t - (sweepHz * sweepS * Math.cos((2 * Math.PI * t) / sweepS)) / (2 * Math.PI)) + phase);

/** Record lead 1 in mV at `t` s (linear between its 360 Hz samples), and its beat times (s). */
function record(name) {
  const r = readWfdbRecord(join(dir, name));
  const sp = r.header.signals[0];
  const x = r.signals[0];
  const g = sp.adcGain || 200;
  const mv = (t) => {
    const p = t * 360;
    const k = Math.min(Math.floor(p), x.length - 2);
    return ((x[k] - sp.baseline) * (1 - (p - k)) + (x[k + 1] - sp.baseline) * (p - k)) / g;
  };
  const beats = readWfdbAnnotations(join(dir, name))
    .annotations.filter((a) => isQrsCode(a.code))
    .map((a) => a.sample / 360);
  return { mv, beats };
}

/** Streams `sig` (mV at t s) for `seconds` in 100 ms chunks, the front end reporting the lead off where `off(t)`; the ecg-no-beats times (s). */
function noBeats(sig, seconds, off) {
  const monitor = new EcgMonitor('ecg');
  const times = [];
  const n = seconds * fs;
  const chunk = Math.round(fs / 10);
  for (let i = 0; i < n; ) {
    const isOff = off(i / fs);
    let j = i + 1;
    while (j < n && j - i < chunk && off(j / fs) === isOff) j++;
    const samples = Int16Array.from({ length: j - i }, (_, k) => (isOff ? 32767 : Math.round(sig((i + k) / fs) * gain)));
    const c = { sensor: 'ecg', channel: 0, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV', gain, samples };
    for (const a of monitor.push(isOff ? { ...c, leadOff: true, saturated: true } : c).alerts) if (a.kind === 'ecg-no-beats') times.push(a.t / 1000);
    i = j;
  }
  return times;
}

const started = process.cpuUsage();
const out = { fs, gain, humMv, humHz, sweepHz, sweepS: sweepHz ? sweepS : undefined };
if (sections.includes('1')) {
  const perRecord = {};
  let falseNoBeats = 0;
  for (const name of names) {
    const { mv } = record(name);
    for (const scale of [1, 0.5, 0.3]) {
      const noise = seeded(12345);
      const h = hum(0);
      const alarms = noBeats((t) => scale * mv(t) + h(t) + 0.01 * noise(), 300, (t) => t >= 5 && (t - 5) % 20 < 3).length;
      if (alarms > 0) perRecord[`${name}x${scale}`] = alarms;
      falseNoBeats += alarms;
    }
  }
  out.living = { cases: names.length * 3, falseNoBeats, perRecord };
  process.stderr.write(`living: ${falseNoBeats}\n`);
}
const seeds = Array.from({ length: 10 }, (_, s) => s + 1);
const { mv, beats } = sections.includes('2') || sections.includes('3') ? record('101') : {};
const summary = (delays) => ({ delays: delays.map((d) => (d === undefined ? null : round(d, 2))), max: delays.includes(undefined) ? null : round(Math.max(...delays), 2), median: round(quantile(delays.filter((d) => d !== undefined), 0.5) ?? NaN, 2) });
if (sections.includes('2')) {
  let early = 0;
  const delays = seeds.map((seed) => {
    const noise = seeded(seed);
    const h = hum(seed);
    const times = noBeats((t) => (t < 30 ? mv(t) : 0.03 * noise()) + h(t), 60, (t) => t >= 30 && t < 40);
    early += times.filter((t) => t <= 40).length;
    const first = times.find((t) => t > 40);
    return first === undefined ? undefined : first - 40;
  });
  out.stoppedLeadBack = { early, ...summary(delays) };
}
if (sections.includes('3')) {
  const cut = 29.9;
  const last = Math.max(...beats.filter((b) => b < cut));
  let early = 0;
  const delays = seeds.map((seed) => {
    const noise = seeded(100 + seed);
    const h = hum(seed);
    const times = noBeats((t) => (t < cut ? mv(t) : mv(cut) + 0.03 * noise()) + h(t), 50, () => false);
    early += times.filter((t) => t <= last).length;
    const first = times.find((t) => t > last);
    return first === undefined ? undefined : first - last;
  });
  out.arrestLockedOn = { early, ...summary(delays) };
}
const used = process.cpuUsage(started);
out.cpuS = round((used.user + used.system) / 1e6, 1);
process.stdout.write(`${JSON.stringify({ 'ecg-hum-lead-back': out })}\n`);
