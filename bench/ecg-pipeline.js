// The streaming ECG pipeline on one core: real-time factor of QRS detection over the shared MIT-BIH
// records (streamed in 1 s chunks, as the runtime feeds it), per-chunk latency and resident memory.
// Beat classification and AF detection are not built yet; their figures will join this bench.
//
//   node bench/ecg-pipeline.js [--data DIR]
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QrsDetector } from '../dist/device-sdk/signal/ecg/qrs-detector.js';
import { readWfdbRecord } from '../dist/simulator/sources/wfdb-files.js';

const argIndex = process.argv.indexOf('--data');
const dir = argIndex > 0 ? process.argv[argIndex + 1] : join(import.meta.dirname, '..', '..', 'shared', 'data', 'mitdb');
if (!existsSync(dir)) {
  process.stdout.write(`${JSON.stringify({ 'ecg-pipeline': { skipped: `${dir} is missing` } })}\n`);
  process.exit(0);
}
const records = readdirSync(dir)
  .filter((f) => f.endsWith('.hea'))
  .map((f) => f.slice(0, -4))
  .sort();
let samples = 0;
let seconds = 0;
let signalSeconds = 0;
let beats = 0;
const chunkMicros = [];
for (const name of records) {
  const record = readWfdbRecord(join(dir, name));
  const fs = record.header.fs;
  const signal = record.signals[0];
  const detector = new QrsDetector({ fs });
  const chunk = Math.round(fs);
  const started = process.hrtime.bigint();
  for (let i = 0; i < signal.length; i += chunk) {
    const t0 = process.hrtime.bigint();
    beats += detector.push([signal.subarray(i, i + chunk)]).length;
    chunkMicros.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  seconds += Number(process.hrtime.bigint() - started) / 1e9;
  samples += signal.length;
  signalSeconds += signal.length / fs;
  process.stderr.write(`ecg-pipeline: ${name}\n`);
}
chunkMicros.sort((a, b) => a - b);
const pct = (p) => Math.round(chunkMicros[Math.floor(p * (chunkMicros.length - 1))]);
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
process.stdout.write(
  `${JSON.stringify({
    'ecg-pipeline': {
      records: records.length,
      signalHours: round(signalSeconds / 3600, 2),
      beats,
      qrs: {
        samplesPerSec: Math.round(samples / seconds),
        realTimeFactor: Math.round(signalSeconds / seconds),
        perSecondChunkMicros: { median: pct(0.5), p99: pct(0.99), max: pct(1) },
      },
      rssMiB: round(process.memoryUsage().rss / 1048576),
      notImplemented: ['beat classification inference (wasm/cpu/tfjs-node)', 'model load time', 'AF detection'],
    },
  })}\n`,
);
