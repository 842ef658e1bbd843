// The CPU the live ECG monitor (EcgMonitor, rule classifier) takes, and a fingerprint of what it says, so a
// change meant to be faster can be shown to change nothing: MIT-BIH records streamed on two leads (channels 0
// and 1, both signals of the record) in 100 ms chunks, clean or with mains hum added to both leads. Per case:
// process CPU seconds (user + system, this thread's work and V8's beside it), x real time on that CPU, the
// counts of alerts, findings and heart-rate readings, and the sha256 of all three as JSON (in order); and the
// sha256 over every case.
//
//   node bench/ecg-monitor-cpu.js [--data DIR] [--records 101,114,208] [--seconds 1800] [--fs 360] [--gain 200]
//                                 [--hum 0,0.3@50,0.3@60] [--hum-sweep-hz 0]
//
// --hum lists the conditions: 0 (clean) or MV@HZ (MV mV of HZ Hz hum, added at 360 Hz in MIT-BIH units before
// the resampling to --fs). --hum-sweep-hz S lets the hum frequency move S Hz around HZ as a slow sine (period
// 300 s), as mains does.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EcgMonitor } from '../dist/firmware/ecg-monitor.js';
import { readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';
import { FS, GAIN, inFormat, round } from './lib/ecg-monitor-stream.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dir = arg('--data', join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb'));
const records = arg('--records', '101,114,208').split(',');
const seconds = Number(arg('--seconds', 1800));
const format = { fs: Number(arg('--fs', FS)), gain: Number(arg('--gain', GAIN)) };
const conditions = arg('--hum', '0,0.3@50,0.3@60').split(',');
const sweepHz = Number(arg('--hum-sweep-hz', 0));
if (records.some((name) => !existsSync(join(dir, `${name}.hea`)))) {
  process.stdout.write(`${JSON.stringify({ 'ecg-monitor-cpu': { skipped: `records ${records.join(', ')} are not all in ${dir}` } })}\n`);
  process.exit(0);
}

/** Hum of `mv` mV at `hz` (moving `sweepHz` around it over 300 s) in MIT-BIH units at `FS`, for samples `i` asked in order. */
function humAt(mv, hz) {
  let phase = 0;
  return (i) => {
    const v = Math.round(mv * GAIN * Math.sin(phase));
    phase += (2 * Math.PI * (hz + sweepHz * Math.sin((2 * Math.PI * i) / (300 * FS)))) / FS;
    return v;
  };
}

const cases = [];
const all = createHash('sha256');
for (const name of records) {
  const record = readWfdbRecord(join(dir, name));
  const leads = [0, 1].map((c) => {
    const baseline = record.header.signals[c]?.baseline ?? 0;
    return Int16Array.from(record.signals[c].subarray(0, seconds * FS), (v) => v - baseline);
  });
  for (const condition of conditions) {
    const [mv, hz] = condition === '0' ? [0, 0] : condition.split('@').map(Number);
    const withHum = leads.map((x) => {
      if (!mv) return inFormat(x, format);
      const hum = humAt(mv, hz);
      return inFormat(
        x.map((v, i) => v + hum(i)),
        format,
      );
    });
    const { fs, gain } = format;
    const chunk = Math.round(fs / 10);
    const alerts = [];
    const findings = [];
    const readings = [];
    const started = process.cpuUsage();
    const monitor = new EcgMonitor('ecg', {});
    const [a, b] = withHum;
    for (let i = 0; i < a.length; i += chunk) {
      for (const channel of [0, 1]) {
        const x = channel === 0 ? a : b;
        const o = monitor.push({ sensor: 'ecg', channel, firstSample: i, t0: (i * 1000) / fs, rateHz: fs, unit: 'mV', gain, samples: x.slice(i, i + chunk) });
        alerts.push(...o.alerts);
        findings.push(...o.findings);
        readings.push(...o.readings);
      }
    }
    const used = process.cpuUsage(started);
    const cpuS = (used.user + used.system) / 1e6;
    const out = JSON.stringify({ alerts, findings, readings });
    all.update(out);
    cases.push({
      record: name,
      hum: condition,
      cpuS: round(cpuS, 2),
      xRealTime: Math.round(a.length / fs / cpuS),
      alerts: alerts.length,
      findings: findings.length,
      readings: readings.length,
      sha256: createHash('sha256').update(out).digest('hex').slice(0, 16),
    });
    process.stderr.write(`${JSON.stringify(cases.at(-1))}\n`);
  }
}
process.stdout.write(
  `${JSON.stringify({ 'ecg-monitor-cpu': { fs: format.fs, gain: format.gain, seconds, sweepHz, cases, cpuS: round(cases.reduce((s, c) => s + c.cpuS, 0), 2), sha256: all.digest('hex') } })}\n`,
);
