// FHIR API latency on a large edge store, how long the ingest stalls meanwhile (QA F3), and the CLI export.
//
//   node bench/fhir-api.js [--readings 400000] [--dist DIR] [--store DIR] [--no-export] [--answer-timeout-ms N]
//
// Seeds an edge store with --readings CGM readings of one device (not timed; or copies --store, e.g.
// QA's /tmp/qa-fhir-400k), then runs an EdgeNode (embedded aedes on port 0) and the FhirServer in this
// process, as `medge edge --http` does. A device ("dev-live") syncs continuously over MQTT: one batch of
// 10 readings in flight, the next sent on each ack. While it does, these requests run one after another:
// GET /fhir/Device (twice), an empty date search, a date search of one day with _count=100. For each:
// latency, status, entries; `ackGapMs` is the longest time between two acks while the request ran (the
// ingest stall). `restart`: the API is stopped and started again (a new worker, as after an edge restart or
// an idle worker) while the device syncs, and the first two requests of the new worker are timed
// (`indexFileMb`: the size of the kept index, when the build keeps one). Then, with the store unchanged since (the live device stopped): `pages`, 20 pages of
// 1000 Observations spread over the store and 20 one-day searches of 100; `reads`, 30 reads by id spread
// over the store (each with p50/p95 ms). Then `export`: `medge edge export-fhir` (validating, as by
// default) of the store as seeded (copied before the live device syncs) in a child process: wall time
// and peak RSS. --dist runs another build (e.g.
// main's dist) to measure the code before a change. Prints one JSON object on stdout; progress on stderr.
/* global fetch, AbortSignal */

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { numberArg, progress, removeDir, round, tempDir } from './lib/common.js';
import { FHIR_STORE_T0, seedCgmStore } from './lib/fhir-store.js';

const READINGS = Math.floor(numberArg('readings', 400_000));
const argAfter = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const DIST = resolve(argAfter('dist') ?? new URL('../dist', import.meta.url).pathname);
const STORE = argAfter('store');
/** --answer-timeout-ms: the API's answerTimeoutMs, so that a first request is timed whole rather than as 503s 10 s apart. */
const ANSWER_TIMEOUT_MS = argAfter('answer-timeout-ms');
const serverOptions = { port: 0, ...(ANSWER_TIMEOUT_MS ? { limits: { answerTimeoutMs: Number(ANSWER_TIMEOUT_MS) } } : {}) };
const REQUEST_TIMEOUT_MS = 120_000;
const T0 = FHIR_STORE_T0;

const { EdgeStore } = await import(`${DIST}/edge/edge-store.js`);
const { EdgeNode } = await import(`${DIST}/edge/index.js`);
const { FhirServer } = await import(`${DIST}/edge/fhir/http.js`);
const { encodeBody, decodeAck } = await import(`${DIST}/device-sdk/proto/index.js`);
const { buildBatch } = await import(`${DIST}/device-sdk/sync/batch.js`);
const { upTopic, downTopic } = await import(`${DIST}/device-sdk/sync/topics.js`);

/** The live device's readings: measured now (outside the seeded days). */
const live = (i) => encodeBody('reading', { sensor: 'cgm', type: 'glucose', value: 60 + (i % 200), unit: 'mg/dL', tDevice: Date.now() });

const dir = tempDir('fhir-api');
const dataDir = join(dir, 'edge');
if (STORE) cpSync(STORE, dataDir, { recursive: true });
else {
  progress(`seeding ${READINGS} readings`);
  seedCgmStore({ EdgeStore, encodeBody }, dataDir, READINGS);
}

// The export is measured on the store as seeded (a copy taken now), not on what the live device adds to it.
const exportDataDir = join(dir, 'export-edge');
if (!process.argv.includes('--no-export')) cpSync(dataDir, exportDataDir, { recursive: true });

const edge = new EdgeNode({ dataDir, port: 0 });
await edge.start();
let fhir = new FhirServer({ ...serverOptions, dataDir });
await fhir.start();
await new Promise((r) => setTimeout(r, 200));

// The live device: one batch in flight, the next on each ack.
const acks = [];
const client = mqtt.connect(edge.url, { clientId: 'dev-live', clean: true });
await new Promise((r, j) => client.once('connect', r).once('error', j));
await client.subscribeAsync(downTopic('s', 'dev-live', 'ack'), { qos: 1 });
let seq = 0;
let running = true;
const send = () => {
  const records = Array.from({ length: 10 }, (_, i) => ({ seq: seq + i + 1, bootId: 'live', tMs: Date.now(), body: live(seq + i) }));
  const payload = buildBatch({ deviceId: 'dev-live', bootId: 'live', kind: 'reading', afterSeq: seq, ackedUpTo: 0, records, sentMs: Date.now() });
  seq += 10;
  client.publish(upTopic('s', 'dev-live', 'reading'), Buffer.from(payload), { qos: 1 });
};
client.on('message', (_topic, payload) => {
  const ack = decodeAck(payload);
  if (ack.upToSeq >= seq) {
    acks.push(performance.now());
    if (running) send();
  }
});
send();
await new Promise((r) => setTimeout(r, 1000));
const baselineAcks = acks.length;

/** The longest gap between acks within [from, to] (the edges count as acks: a stall across them counts). */
function longestGap(from, to) {
  const times = [from, ...acks.filter((t) => t > from && t < to), to];
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  return gap;
}

async function request(path) {
  const from = performance.now();
  let status;
  let entries;
  let total;
  let retryAfter;
  try {
    const res = await fetch(`http://127.0.0.1:${fhir.port}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    status = res.status;
    retryAfter = res.headers.get('retry-after') ?? undefined;
    const body = await res.json();
    entries = body.entry?.length;
    total = body.total;
  } catch (error) {
    status = -1;
    retryAfter = error.message;
  }
  const to = performance.now();
  const result = { path, status, ms: round(to - from), entries, total, ackGapMs: round(longestGap(from, to)), ...(retryAfter ? { retryAfter } : {}) };
  progress(JSON.stringify(result));
  return result;
}

/** Retries a 503/429 after its Retry-After, as a client should; the figure is the time to the answer. */
async function requestUntilAnswered(path) {
  const from = performance.now();
  const tries = [];
  for (;;) {
    const r = await request(path);
    tries.push(r);
    if ((r.status !== 503 && r.status !== 429) || performance.now() - from > REQUEST_TIMEOUT_MS) break;
    await new Promise((res) => setTimeout(res, Number(r.retryAfter ?? 1) * 1000));
  }
  const to = performance.now();
  return { path, status: tries.at(-1).status, msToAnswer: round(to - from), ackGapMs: round(longestGap(from, to)), tries };
}

const requests = [];
for (const path of ['/fhir/Device', '/fhir/Observation?date=2031-01-01', '/fhir/Device', '/fhir/Observation?date=2026-11-02&_count=100']) {
  requests.push(await requestUntilAnswered(path));
}
// A restart of the API (its worker) while the device syncs, as after an edge restart or an idle worker:
// the first requests of the new worker.
await fhir.stop();
fhir = new FhirServer({ ...serverOptions, dataDir });
await fhir.start();
const restart = [];
for (const path of ['/fhir/Device', '/fhir/Observation?date=2026-11-02&_count=100']) restart.push(await requestUntilAnswered(path));
const indexFile = join(dataDir, 'edge-fhir-index.sqlite');
const indexFileMb = existsSync(indexFile) ? round(statSync(indexFile).size / 2 ** 20) : undefined;
running = false;
await new Promise((r) => setTimeout(r, 300));
client.end(true);

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
/** Runs the paths one after another (answered, retrying a 503/429 as a client should) and sums up their latencies. */
async function series(paths) {
  const answers = [];
  for (const path of paths) answers.push(await requestUntilAnswered(path));
  const ms = answers.map((a) => a.msToAnswer);
  return { count: answers.length, statuses: [...new Set(answers.map((a) => a.status))], p50Ms: round(percentile(ms, 50)), p95Ms: round(percentile(ms, 95)), maxMs: round(Math.max(...ms)) };
}
const seeded = STORE ? 400_000 : READINGS;
const pages = {
  all: await series(Array.from({ length: 20 }, (_, i) => `/fhir/Observation?_count=1000&_offset=${Math.floor((i * seeded) / 20)}`)),
  oneDay: await series(Array.from({ length: 20 }, (_, i) => `/fhir/Observation?date=${new Date(T0 + Math.floor((i * seeded) / 20) * 60_000).toISOString().slice(0, 10)}&_count=100`)),
};
const reads = await series(Array.from({ length: 30 }, (_, i) => `/fhir/Observation/r-dev-1-${1 + Math.floor((i * (seeded - 1)) / 29)}`));
const apiMaxRssMb = round(process.resourceUsage().maxRSS / 1024);
await fhir.stop();
await edge.stop();

/** `medge edge export-fhir` of the store, in a child process of the build under test: wall time and peak RSS. */
function exportFhir() {
  const out = join(dir, 'bundle.json');
  const child = `const { exportFhirCommand } = await import(${JSON.stringify(`${DIST}/firmware/cli/fhir.js`)});
    const from = performance.now();
    const code = exportFhirCommand(['--data', ${JSON.stringify(exportDataDir)}, '--out', ${JSON.stringify(out)}]);
    process.stderr.write(JSON.stringify({ code, ms: performance.now() - from, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\\n');`;
  progress('export-fhir');
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const figures = JSON.parse(run.stderr.trim().split('\n').at(-1) ?? '{}');
  const result = { exitCode: figures.code, ms: round(figures.ms), maxRssMb: round(figures.maxRssMb), bytes: figures.code === 0 ? statSync(out).size : 0, stdout: run.stdout.trim() };
  progress(JSON.stringify(result));
  return result;
}
const exported = process.argv.includes('--no-export') ? undefined : exportFhir();
removeDir(dir);

console.log(
  JSON.stringify({
    fhirApi: {
      dist: DIST,
      readings: STORE ? `copy of ${STORE}` : READINGS,
      acksPerSecondIdle: baselineAcks,
      ackedBatches: acks.length,
      requests,
      restart,
      ...(indexFileMb === undefined ? {} : { indexFileMb }),
      pages,
      reads,
      apiMaxRssMb,
      ...(exported ? { export: exported } : {}),
    },
  }),
);
process.exit(0);
