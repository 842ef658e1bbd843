// The ECG monitor (EcgMonitor, rule classifier) once it has locked on to a patient's beats, when the heart
// stops and the lead shows only muscle artefact; and what a check against that costs on real ECG.
//
// a. Noise replacing ECG while locked on: MIT-BIH 101 for 30 s (the monitor acquires), then 60 s of the
//    MIT-BIH noise stress test's muscle artefact `ma` (channel 0) scaled to an RMS of 0.25, 0.5 or 1 mV,
//    from 6 offsets into `ma` (0-1500 s), then 101 again for 10 s; no lead-off. Per case: the
//    `ecg-no-beats` delay from the heart stopping (30 s), heart-rate readings whose RR interval starts
//    6 s or more after it (`lateRates`, the ecg-rate finding's interval) and any reading made 6 s or more
//    after it (`ratesAfter6s`), ventricular-run and AF-onset alerts in the noise.
// b. The 26 shared MIT-BIH records streamed whole, clean and with `ma` and `bw` mixed in at 12 dB SNR each
//    (as `medge ecg eval --noise-snr 12`). Per record: ecg-no-beats alarms, false ones (the reference has a
//    beat in the 4 s before), and the times of the heart-rate readings. With `--compare FILE` (an earlier
//    output of this bench) the readings lost: reading times that had a reading in FILE and have none now,
//    over those that had one.
//
// Measured (rule classifier, 2026-12): today's monitor gives heart rates from the noise in 14 of the 18 cases
// of (a), ventricular-run/AF alarms in 12, ecg-no-beats 4.1-57.1 s after the stop; (b) 3 false ecg-no-beats
// clean (116 x2, 208: beats whose QRS left the analysed lead for 3-5 s, bench/ecg-qrs-visibility.js), 0 at 12 dB. A locked-on shape check (a
// detection is a heartbeat when >= 0.15 mV and its QRS correlates >= 0.8 with one of 8 kept shapes, or
// >= 0.9 with one of the 3 credible detections before it; 3 that are not in a row lose acquisition; those
// hold the asystole clock for at most X s after the last heartbeat) was not adopted: with X = 2 s, (a) no
// rate or alarm from the noise and ecg-no-beats 4.1-10.3 s, but at 12 dB 3 false ecg-no-beats (the same
// beats of 116 and 208 not in the lead, which noise detections used to hide); with X = 6 s none at 12 dB but
// ecg-no-beats up to 26 s after the stop (noise detections shaped like a kept QRS restart the clock).
// X = 4 s, and a 0.5-2x size gate on the kept shapes, fail both ways too.
// 2026-12-07, both leads streamed: (b) 0 false ecg-no-beats clean and at 12 dB (lead 2 holds the alarm back where
// 116's and 208's QRS leaves lead 1), readings as with one lead; (a) unchanged (14 with rates, 12 with alarms,
// 4.1-57.1 s). The shape check above re-implemented on top of that still failed: as described, ecg-no-beats up to
// 46 s, 4 false ones in 207 and 2.6 % of readings lost clean; with misses only capping the asystole clock, 4.1-10.3 s
// but 18 false ecg-no-beats clean (108, 114, 102, 104, 124, 207: beats unlike the kept shapes).
//
// Since 2026-12-07 both leads are streamed (lead 2 with the noise's second channel, mixed at 12 dB of its own
// QRS power in b); `--leads 1` streams lead 1 only, as before.
//
//   node bench/ecg-noise-locked.js [--data DIR] [--noise DIR] [--compare FILE] [--leads 1|2] [--monitor-options JSON]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isQrsCode } from '../dist/device-sdk/protocols/wfdb.js';
import { mixNoises, qrsSignalPower } from '../dist/device-sdk/signal/ecg/noise-mix.js';
import { readWfdbAnnotations, readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';
import { FS, GAIN, muscleNoiseMv, recordSlicer, round, streamThroughMonitor } from './lib/ecg-monitor-stream.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
const noiseDir = arg('--noise', join(import.meta.dirname, '..', '..', 'shared', 'data', 'nstdb'));
const compare = arg('--compare', undefined);
// Lead 2 (channel 1) streamed too (default), as a two-lead front end does; --leads 1 streams lead 1 only (as before 2026-12-07).
const twoLeads = arg('--leads', '2') !== '1';
// EcgMonitor options as JSON (e.g. '{"lockedShapeCheck":false}'), to measure a setting against the default.
const monitorOptions = JSON.parse(arg('--monitor-options', '{}'));
if (!existsSync(dir) || !existsSync(join(noiseDir, 'ma.hea')) || !existsSync(join(noiseDir, 'bw.hea'))) {
  process.stdout.write(`${JSON.stringify({ 'ecg-noise-locked': { skipped: `${existsSync(dir) ? noiseDir : dir} is missing` } })}\n`);
  process.exit(0);
}
const ALARMS = ['ecg-ventricular-run', 'ecg-sustained-ventricular-run', 'ecg-af-onset'];

// a. Noise replacing ECG while locked on.
const { mv: maMv, rms: maRms } = muscleNoiseMv(noiseDir);
const { mv: maMv2, rms: maRms2 } = muscleNoiseMv(noiseDir, 1);
const ecg = recordSlicer(dir, '101');
const ecg2 = recordSlicer(dir, '101', 1);
/** @param {Int16Array[]} parts */
const joined = (parts) => {
  const x = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  return x;
};
const STOP_MS = 30_000;
const NOISE_S = 60;
const locked = [];
for (const rms of [0.25, 0.5, 1]) {
  for (const fromS of [0, 300, 600, 900, 1200, 1500]) {
    const noise = Int16Array.from(maMv.subarray(fromS * FS, (fromS + NOISE_S) * FS), (v) => Math.round((v * rms * GAIN) / maRms));
    const x = joined([ecg(0, 30), noise, ecg(30, 10)]);
    // Lead 2: the record's second lead, and the noise's second channel (the heart stops on both).
    const noise2 = Int16Array.from(maMv2.subarray(fromS * FS, (fromS + NOISE_S) * FS), (v) => Math.round((v * rms * GAIN) / maRms2));
    const to = STOP_MS + NOISE_S * 1000;
    const run = streamThroughMonitor(x, twoLeads ? joined([ecg2(0, 30), noise2, ecg2(30, 10)]) : undefined, monitorOptions);
    const noBeats = run.alerts.find((a) => a.kind === 'ecg-no-beats' && a.t >= STOP_MS && a.t <= to);
    const rate = run.findings.filter((f) => f.kind === 'ecg-rate' && f.t > STOP_MS && f.t <= to);
    locked.push({
      case: `ma ${rms} mV RMS from ${fromS} s`,
      acquiredBeforeStop: run.acquiredAt.some((t) => t < STOP_MS),
      noBeatsAfterS: noBeats ? round((noBeats.t - STOP_MS) / 1000) : null,
      lateRates: rate.filter((f) => f.intervalStart >= STOP_MS + 6_000).map((f) => f.value),
      ratesAfter6s: rate.filter((f) => f.t >= STOP_MS + 6_000).map((f) => `${f.value}@${round((f.t - STOP_MS) / 1000, 1)}`),
      alarms: run.alerts.filter((a) => ALARMS.includes(a.kind) && a.t > STOP_MS && a.t <= to).map((a) => `${a.kind}@${round((a.t - STOP_MS) / 1000, 1)}`),
      reacquiredAfterS: (() => {
        const t = run.acquiredAt.find((v) => v > to);
        return t === undefined ? null : round((t - to) / 1000);
      })(),
    });
  }
}
process.stderr.write('locked-on noise cases done\n');

// b. Whole records, clean and noisy.
const noiseRecords = ['ma', 'bw'].map((n) => readWfdbRecord(join(noiseDir, n)));
const noises = noiseRecords.map((r) => r.signals[0]);
const noises2 = noiseRecords.map((r) => r.signals[1]);
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.hea'))
  .map((f) => f.slice(0, -4))
  .sort();
const records = { clean: {}, noisy12dB: {} };
for (const name of names) {
  const record = readWfdbRecord(join(dir, name));
  const clean = Int16Array.from(record.signals[0]);
  const annotations = readWfdbAnnotations(join(dir, name)).annotations;
  const beatSamples = annotations.filter((a) => isQrsCode(a.code)).map((a) => a.sample);
  const beatsMs = beatSamples.map((s) => (s * 1000) / FS);
  const noisy = mixNoises(clean, noises, qrsSignalPower(clean, beatSamples, FS), 12);
  const clean2 = Int16Array.from(record.signals[1]);
  const noisy2 = mixNoises(clean2, noises2, qrsSignalPower(clean2, beatSamples, FS), 12);
  for (const [condition, x, x2] of [
    ['clean', clean, clean2],
    ['noisy12dB', noisy, noisy2],
  ]) {
    const run = streamThroughMonitor(x, twoLeads ? x2 : undefined, monitorOptions);
    const noBeats = run.alerts.filter((a) => a.kind === 'ecg-no-beats');
    const falseNoBeats = noBeats.filter((a) => beatsMs.some((b) => b >= a.t - 4_000 && b <= a.t));
    records[condition][name] = {
      noBeats: noBeats.length,
      falseNoBeats: falseNoBeats.map((a) => round(a.t / 1000, 1)),
      alarms: run.alerts.filter((a) => ALARMS.includes(a.kind)).length,
      readingTimesS: run.readings.map((r) => round(r.tDevice / 1000, 1)),
    };
  }
  process.stderr.write(`${name} done\n`);
}
const totals = {};
const before = compare ? JSON.parse(readFileSync(compare, 'utf8'))['ecg-noise-locked'].records : undefined;
for (const condition of Object.keys(records)) {
  const list = Object.entries(records[condition]);
  const t = { noBeats: 0, falseNoBeats: 0, alarms: 0, readings: 0 };
  for (const [, r] of list) {
    t.noBeats += r.noBeats;
    t.falseNoBeats += r.falseNoBeats.length;
    t.alarms += r.alarms;
    t.readings += r.readingTimesS.length;
  }
  t.falseNoBeatsAt = list.filter(([, r]) => r.falseNoBeats.length > 0).map(([n, r]) => `${n}@${r.falseNoBeats.join(',')}`);
  if (before) {
    let had = 0;
    let lost = 0;
    const lostBy = {};
    for (const [n, r] of list) {
      const now = new Set(r.readingTimesS);
      const then = before[condition][n]?.readingTimesS ?? [];
      had += then.length;
      const gone = then.filter((s) => !now.has(s)).length;
      lost += gone;
      if (gone > 0) lostBy[n] = gone;
    }
    const prev = Object.values(before[condition]);
    t.before = { falseNoBeats: prev.reduce((n, r) => n + r.falseNoBeats.length, 0), noBeats: prev.reduce((n, r) => n + r.noBeats, 0), readings: had };
    t.readingsLost = { lost, had, percent: round((100 * lost) / (had || 1)), byRecord: lostBy };
  }
  totals[condition] = t;
}
const summaryA = {
  cases: locked.length,
  withLateRate: locked.filter((c) => c.lateRates.length > 0).length,
  withRateAfter6s: locked.filter((c) => c.ratesAfter6s.length > 0).length,
  withAlarm: locked.filter((c) => c.alarms.length > 0).length,
  noBeatsMaxS: locked.some((c) => c.noBeatsAfterS === null) ? null : Math.max(...locked.map((c) => c.noBeatsAfterS)),
  noBeatsMissing: locked.filter((c) => c.noBeatsAfterS === null).length,
};
process.stdout.write(`${JSON.stringify({ 'ecg-noise-locked': { noiseWhileLocked: { summary: summaryA, cases: locked }, totals, records } })}\n`);
