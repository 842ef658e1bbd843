// The ECG monitor after a lead is put back on (EcgMonitor, the runtime's live ECG path, with the rule
// classifier: the asystole clock and the QRS acquisition do not depend on the classes).
//
// 1. Lead-back cases on real ECG: each shared MIT-BIH record (MLII, as stored: about 5 mV of DC
//    offset, as electrode potentials give) streamed in 100 ms chunks, the lead off (0 V) for 3 s from
//    50k + 45 s and back at 50k + 48 s, for every k with 12 s of the record after the lead-back (35 a
//    record, 910 over the 26 records). Per case: the time from the lead-back to the first detection the
//    monitor takes as a heartbeat (credible, or prominent enough to hold the asystole alert back), its
//    R peak, the acquisition (beats analysed again), and every ecg-no-beats in the 12 s after it (and the
//    false ones until the next lead-off, 47 s after it). An
//    ecg-no-beats is false when the reference has a beat in the 4 s before it (after the lead-back);
//    cases inside a ventricular flutter episode (207: `[` to `]`) are counted apart.
//    `noBeatsIfClockAt` answers, from the first-detection times, how many cases an asystole clock
//    starting X s after the lead-back (instead of where the monitor starts it) would have alarmed falsely
//    before that first detection.
// 2. No heartbeat: 101 for 30 s, the lead off for 10 s, then 20 s of no heartbeat, then 101 again (as
//    test/firmware/ecg-alarms.test.ts), the no-heartbeat stretch either Gaussian baseline noise (0.03 mV
//    SD) or the MIT-BIH noise stress test's muscle artefact `ma` (channel 0) scaled to an RMS of 0.25,
//    0.5 or 1 mV (nstdb's -6 dB SNR puts about 1 mV RMS on a 1.5 mV QRS); also the same without the lead
//    off. Per case: ecg-no-beats delay from the lead-back (or from the start of the stretch), heart-rate
//    readings and rhythm findings whose interval lies in the stretch (beats taken from noise).
//
// 3. Lead-back onto muscle artefact with no heartbeat, 40 s of it (section 3 below): when ecg-no-beats comes.
//
//   node bench/ecg-lead-back.js [--data DIR] [--noise DIR] [--off-s 3] [--every-s 50] [--phases 1] [--fs 360] [--gain 200] [--hum-mv 0] [--hum-hz 60]
//
// --off-s, --every-s and --phases move the lead-backs of section 1: the lead off for OFF s ending
// EVERY - 2 s into each EVERY s (default: 3 s off, back at 48 s of every 50 s), the whole layout run again
// shifted by EVERY / PHASES s for each phase (QA's re-check: --off-s 2 --every-s 20 --phases 4).
// --fs and --gain stream every case as a front end sampling at FS Hz with GAIN ADC units per mV gives it (the
// 360 Hz case linearly interpolated, then rounded to whole units; an Arduino with an AD8232: about 30 per mV).
// Section 2's noise is made at 360 Hz, so the interpolation lowers its SD (128 Hz: by up to a third).
// --hum-mv adds mains hum of that amplitude (mV) at --hum-hz to section 1's records while the lead is on (the
// stretches off stay flat), at 360 Hz before the interpolation (which takes about a tenth off 60 Hz).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { flutterEpisodes } from '../dist/device-sdk/signal/ecg/ec57.js';
import { isQrsCode } from '../dist/device-sdk/protocols/wfdb.js';
import { readWfdbAnnotations, readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';
import { FS, GAIN, muscleNoiseMv, quantile, recordSlicer, round, streamThroughMonitor as streamMonitor } from './lib/ecg-monitor-stream.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
const noiseDir = arg('--noise', join(import.meta.dirname, '..', '..', 'shared', 'data', 'nstdb'));
if (!existsSync(dir) || !existsSync(join(noiseDir, 'ma.hea'))) {
  process.stdout.write(`${JSON.stringify({ 'ecg-lead-back': { skipped: `${existsSync(dir) ? noiseDir : dir} is missing` } })}\n`);
  process.exit(0);
}
// 1. Lead-back cases on the records.
const records = readdirSync(dir)
  .filter((f) => f.endsWith('.hea'))
  .map((f) => f.slice(0, -4))
  .sort();
const offS = Number(arg('--off-s', 3));
const everyS = Number(arg('--every-s', 50));
const phases = Number(arg('--phases', 1));
const format = { fs: Number(arg('--fs', FS)), gain: Number(arg('--gain', GAIN)) };
const humMv = Number(arg('--hum-mv', 0));
const humHz = Number(arg('--hum-hz', 60));
const stream = (x) => streamMonitor(x, undefined, {}, format);
const cases = [];
for (const name of records) {
  const record = readWfdbRecord(join(dir, name));
  const annotations = readWfdbAnnotations(join(dir, name)).annotations;
  const beatsMs = annotations.filter((a) => isQrsCode(a.code)).map((a) => (a.sample * 1000) / FS);
  const flutter = flutterEpisodes(annotations, record.signals[0].length).map(([a, b]) => [(a * 1000) / FS, (b * 1000) / FS]);
  for (let phase = 0; phase < phases; phase++) {
    const x = Int16Array.from(record.signals[0], (v, i) => (humMv ? v + Math.round(humMv * GAIN * Math.sin((2 * Math.PI * humHz * i) / FS)) : v));
    const shiftS = (phase * everyS) / phases;
    const leadBacks = [];
    for (let k = 0; (everyS * k + shiftS + everyS - 2 + 12) * FS <= x.length; k++) {
      const back = everyS * k + shiftS + everyS - 2;
      x.fill(0, Math.round((back - offS) * FS), Math.round(back * FS));
      leadBacks.push(back * 1000);
    }
    const run = stream(x);
    for (const L of leadBacks) {
      const end = L + 12_000;
      const inWindow = (t) => t >= L && t < end;
      const first = run.detections.find((d) => d.reportMs > L && d.evidence);
      const firstCredible = run.detections.find((d) => d.reportMs > L && d.credible);
      const acquired = run.acquiredAt.find((t) => t > L);
      const noBeats = run.alerts.filter((a) => a.kind === 'ecg-no-beats' && inWindow(a.t));
      const falseNoBeats = noBeats.filter((a) => beatsMs.some((b) => b >= Math.max(L, a.t - 4_000) && b <= a.t));
      // Until the next lead-off (47 s on by default): an alarm that a later clock moves past the 12 s window still counts here.
      const untilNextOff = run.alerts.filter((a) => a.kind === 'ecg-no-beats' && a.t >= L && a.t < L + (everyS - offS) * 1000 && beatsMs.some((b) => b >= Math.max(L, a.t - 4_000) && b <= a.t));
      cases.push({
        record: name,
        leadBackS: L / 1000,
        flutter: flutter.some(([a, b]) => a < end && b > L),
        firstReportS: first && first.reportMs < end ? (first.reportMs - L) / 1000 : null,
        firstRS: first && first.reportMs < end ? (first.rMs - L) / 1000 : null,
        firstCredibleReportS: firstCredible && firstCredible.reportMs < end ? (firstCredible.reportMs - L) / 1000 : null,
        acquiredS: acquired !== undefined && acquired < end ? (acquired - L) / 1000 : null,
        noBeats: noBeats.map((a) => round((a.t - L) / 1000)),
        falseNoBeats: falseNoBeats.length,
        falseNoBeatsUntilNextOff: untilNextOff.map((a) => round((a.t - L) / 1000)),
      });
    }
    process.stderr.write(`${name}: ${leadBacks.length} lead-backs\n`);
  }
}

const outside = cases.filter((c) => !c.flutter);
const summary = (list) => {
  const first = list.map((c) => c.firstReportS).filter((v) => v !== null);
  const firstR = list.map((c) => c.firstRS).filter((v) => v !== null);
  const acquired = list.map((c) => c.acquiredS).filter((v) => v !== null);
  return {
    cases: list.length,
    firstHeartbeatReportS: { median: quantile(first, 0.5), p99: quantile(first, 0.99), max: quantile(first, 1), none: list.length - first.length },
    firstHeartbeatRPeakS: { median: quantile(firstR, 0.5), p99: quantile(firstR, 0.99), max: quantile(firstR, 1) },
    acquiredS: { median: quantile(acquired, 0.5), p90: quantile(acquired, 0.9), p99: quantile(acquired, 0.99), notIn12s: list.length - acquired.length },
    casesWithNoBeats: list.filter((c) => c.noBeats.length > 0).length,
    falseNoBeats: list.reduce((n, c) => n + c.falseNoBeats, 0),
    falseNoBeatsCases: list.filter((c) => c.falseNoBeats > 0).map((c) => `${c.record}@${c.leadBackS}s: ${c.noBeats.join(',')}`),
    falseNoBeatsUntilNextOff: list.reduce((n, c) => n + c.falseNoBeatsUntilNextOff.length, 0),
    falseNoBeatsUntilNextOffCases: list.filter((c) => c.falseNoBeatsUntilNextOff.length > 0).map((c) => `${c.record}@${c.leadBackS}s: ${c.falseNoBeatsUntilNextOff.join(',')}`),
  };
};
// An alarm before the first heartbeat: a clock started X s after the lead-back fires at the first chunk end
// X + 4 s after it unless a detection was reported in or before that chunk.
const noBeatsIfClockAt = {};
for (const X of [0, 0.25, 0.5, 1, 1.5, 2]) {
  const late = outside.filter((c) => c.firstReportS === null || c.firstReportS > X + 4 + 1e-9);
  noBeatsIfClockAt[X] = { cases: late.length, which: late.slice(0, 20).map((c) => `${c.record}@${c.leadBackS}s first ${c.firstReportS}`) };
}

// 2. No heartbeat.
const { mv: maMv, rms: maRms } = muscleNoiseMv(noiseDir);
const ecg = recordSlicer(dir, '101');
let seed = 1;
const gaussian = () => {
  const u = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
};
const noHeartbeat = [];
const stretches = [
  { name: 'baseline 0.03 mV', make: () => Int16Array.from({ length: 20 * FS }, () => Math.round(gaussian() * 0.03 * GAIN)) },
  ...[0.25, 0.5, 1].flatMap((rms) =>
    [0, 300, 600, 900].map((fromS) => ({ name: `ma ${rms} mV RMS from ${fromS} s`, make: () => Int16Array.from(maMv.subarray(fromS * FS, (fromS + 20) * FS), (v) => Math.round((v * rms * GAIN) / maRms)) })),
  ),
];
for (const s of stretches) {
  for (const leadOff of [true, false]) {
    const parts = [ecg(0, 30), ...(leadOff ? [new Int16Array(10 * FS)] : []), s.make(), ecg(30, 10)];
    const x = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      x.set(p, at);
      at += p.length;
    }
    const from = leadOff ? 40_000 : 30_000;
    const to = from + 20_000;
    const run = stream(x);
    const noBeats = run.alerts.find((a) => a.kind === 'ecg-no-beats' && a.t >= from && a.t <= to);
    // Readings and findings about beats in the stretch (their interval starts after it began).
    const fromNoise = [...run.readings.filter((r) => r.tDevice > from + 2_500 && r.tDevice <= to), ...run.findings.filter((f) => f.kind !== 'ecg-rate' && f.intervalStart >= from && f.t <= to)];
    const rates = run.readings.filter((r) => r.tDevice > from + 2_500 && r.tDevice <= to).map((r) => r.value);
    noHeartbeat.push({ stretch: s.name, leadOff, noBeatsAfterS: noBeats ? round((noBeats.t - from) / 1000) : null, heartRates: rates, findingsFromNoise: fromNoise.length - rates.length, acquired: run.acquiredAt.filter((t) => t > from && t <= to).length });
  }
}

// 3. A lead put back on a heart that has stopped, the lead showing only muscle artefact, long enough to see
//    when ecg-no-beats comes: 101 for 30 s, the lead off for 10 s, then 40 s of `ma` (RMS 0.25, 0.5, 1 mV,
//    from 6 offsets: 18 cases), then 101 again; and the clean lead-back onto asystole (baseline noise) to
//    compare. Per case: ecg-no-beats delay from the lead-back, heart rates from the noise.
const ontoNoise = [];
for (const s of [
  { name: 'baseline 0.03 mV', make: () => Int16Array.from({ length: 40 * FS }, () => Math.round(gaussian() * 0.03 * GAIN)) },
  ...[0.25, 0.5, 1].flatMap((rms) =>
    [0, 300, 600, 900, 1200, 1500].map((fromS) => ({ name: `ma ${rms} mV RMS from ${fromS} s`, make: () => Int16Array.from(maMv.subarray(fromS * FS, (fromS + 40) * FS), (v) => Math.round((v * rms * GAIN) / maRms)) })),
  ),
]) {
  const parts = [ecg(0, 30), new Int16Array(10 * FS), s.make(), ecg(30, 10)];
  const x = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  const run = stream(x);
  const noBeats = run.alerts.find((a) => a.kind === 'ecg-no-beats' && a.t >= 40_000 && a.t <= 80_000);
  ontoNoise.push({ stretch: s.name, noBeatsAfterS: noBeats ? round((noBeats.t - 40_000) / 1000) : null, heartRates: run.readings.filter((r) => r.tDevice > 42_500 && r.tDevice <= 80_000).map((r) => r.value) });
}
const onMa = ontoNoise.filter((c) => c.stretch.startsWith('ma'));
const leadBackOntoNoise = {
  maCases: onMa.length,
  maNoBeatsAfterS: { min: quantile(onMa.map((c) => c.noBeatsAfterS ?? Infinity), 0), max: quantile(onMa.map((c) => c.noBeatsAfterS ?? Infinity), 1), none: onMa.filter((c) => c.noBeatsAfterS === null).length, within12s: onMa.filter((c) => c.noBeatsAfterS !== null && c.noBeatsAfterS <= 12).length },
  maWithHeartRate: onMa.filter((c) => c.heartRates.length > 0).length,
  cases: ontoNoise,
};

process.stdout.write(
  `${JSON.stringify(
    {
      'ecg-lead-back': {
        leadBacks: { layout: { offS, everyS, phases }, format, ...(humMv ? { hum: { mv: humMv, hz: humHz } } : {}), all: summary(cases), outsideFlutter: summary(outside), flutter: summary(cases.filter((c) => c.flutter)), noBeatsIfClockAt },
        noHeartbeat: { maRmsMv: round(maRms, 3), cases: noHeartbeat },
        leadBackOntoNoise,
      },
    },
    null,
    1,
  )}\n`,
);
