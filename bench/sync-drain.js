// End-to-end drain of a device ledger to an edge node:
// device store -> Uplink (batch, deflate, QoS 1) -> broker -> edge ingest (validate, commit, fsync)
// -> Ack -> device acknowledge -> device compaction.
//
//   node bench/sync-drain.js [--records 100000] [--repeat 3]
//
// For each run: a fresh SqliteOutboxStore is filled with readings (not timed), a fresh EdgeNode is
// started (embedded aedes on port 0, or a fresh Mosquitto through `brokerUrl`), then the clock runs
// from `uplink.start()` until the store reports nothing pending and no rows left (acknowledged rows
// are compacted: retentionMs.reading = 0; a final `store.compact()` is inside the timed section).
// Several batch sizes / windows run on aedes; Mosquitto runs the uplink defaults and the best aedes
// setting. Each setting runs --repeat times (median reported, all rates in `samples`) after an
// unreported warm-up drain. `mosquittoPub` times `mosquitto_pub -q 1 -l` for 100k 200-byte lines
// (two processes of 50k: see mosquittoPub() for why) as the broker's own ceiling on this machine.
// Prints one JSON object on stdout; progress goes to stderr.

import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Ledger, SqliteOutboxStore } from '../dist/device-sdk/store/index.js';
import { DEFAULT_UPLINK_OPTIONS, Uplink } from '../dist/device-sdk/sync/index.js';
import { EdgeNode } from '../dist/edge/index.js';
import { numberArg, progress, reading, removeDir, round, tempDir } from './lib/common.js';
import { findMosquitto, startMosquitto } from './lib/mosquitto.js';

const RECORDS = Math.floor(numberArg('records', 100_000));
const REPEAT = Math.floor(numberArg('repeat', 3));
const WARMUP_RECORDS = 10_000;
const TARGET_RECORDS_PER_SEC = 50_000;
const RUN_TIMEOUT_MS = 120_000;
const AEDES_SETTINGS = [
  { batchMaxRecords: 500, window: 8 },
  { batchMaxRecords: 500, window: 16 },
  { batchMaxRecords: 2000, window: 8 },
  { batchMaxRecords: 2000, window: 16 },
];
const PUB_MESSAGES = 100_000;
const PUB_LINE_BYTES = 200; // 199 characters + newline; mosquitto_pub -l strips the newline

let runNo = 0;

/**
 * @param {{ broker: 'aedes' | 'mosquitto', batchMaxRecords: number, window: number }} setting
 * @param {number} [records]
 * @param {string} [label]
 */
async function drainOnce(setting, records = RECORDS, label = '') {
  runNo += 1;
  const deviceId = `bench-drain-${runNo}`;
  const dir = tempDir('drain');
  const store = new SqliteOutboxStore(join(dir, 'device', 'ledger.sqlite'), { deviceId, retentionMs: { reading: 0 } });
  const ledger = new Ledger(store, { maxBuffered: 1000, flushIntervalMs: 1_000_000_000 });
  for (let i = 0; i < records; i++) ledger.add('reading', /** @type {any} */ (reading(i)));
  ledger.flush();
  // Rows are stamped with the device clock at add(); compaction removes rows with t_ms < now - 0.
  await new Promise((resolve) => setTimeout(resolve, 5));

  /** @type {Awaited<ReturnType<typeof startMosquitto>> | undefined} */
  let mosquitto;
  if (setting.broker === 'mosquitto') mosquitto = await startMosquitto();
  const edge = new EdgeNode(mosquitto ? { dataDir: join(dir, 'edge'), brokerUrl: mosquitto.url } : { dataDir: join(dir, 'edge'), port: 0 });
  await edge.start();
  // EdgeNode.start() resolves on CONNACK, before its SUBSCRIBE is granted: give the subscription a
  // moment, or the first batches could go to a topic nobody listens to (and wait for ackTimeoutMs).
  await new Promise((resolve) => setTimeout(resolve, 200));

  let batches = 0;
  let redelivered = 0;
  /** @type {string[]} */
  const failures = [];
  edge.onOutcome = (outcome) => {
    if (outcome.ok) {
      batches += 1;
      redelivered += outcome.result.redelivered;
    } else failures.push(`${outcome.reason}: ${outcome.message}`);
  };

  const uplink = new Uplink(store, { url: edge.url, site: 'bench', batchMaxRecords: setting.batchMaxRecords, window: setting.window });
  /** @type {(value?: unknown) => void} */
  let finished = () => undefined;
  const done = new Promise((resolve) => {
    finished = resolve;
  });
  uplink.on('ack', ({ kind, upToSeq }) => {
    if (kind === 'reading' && upToSeq >= records) finished();
  });
  const timeout = setTimeout(() => finished('timeout'), RUN_TIMEOUT_MS);

  const t0 = performance.now();
  uplink.start();
  const outcome = await done;
  let stats = store.stats().reading;
  if (stats.pending === 0 && stats.rows > 0) {
    store.compact(Date.now());
    stats = store.stats().reading;
  }
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(timeout);

  await uplink.stop();
  const edgeStats = edge.store.stats();
  const audit = edge.store.audit(deviceId).reading;
  await edge.stop();
  store.close();
  if (mosquitto) await mosquitto.dispose();
  removeDir(dir);

  /** @type {string[]} */
  const errors = [];
  if (outcome === 'timeout') errors.push(`not drained after ${RUN_TIMEOUT_MS} ms (acked up to ${stats.ackedUpTo} of ${records})`);
  if (stats.pending !== 0) errors.push(`device still has ${stats.pending} readings pending`);
  if (stats.rows !== 0) errors.push(`device still holds ${stats.rows} readings after compaction`);
  const stored = edgeStats.devices[deviceId]?.reading;
  if (stored !== records) errors.push(`edge stats show ${stored} readings for ${deviceId}, expected exactly ${records}`);
  if (!audit || audit.stored !== records || audit.minSeq !== 1 || audit.maxSeq !== records || audit.duplicateBodies !== 0) {
    errors.push(`edge audit ${JSON.stringify(audit)} is not ${records} distinct readings with seq 1..${records}`);
  }
  if (failures.length > 0) errors.push(`edge rejected ${failures.length} messages, first: ${failures[0]}`);

  /** @type {Record<string, unknown>} */
  const run = {
    batchMaxRecords: setting.batchMaxRecords,
    window: setting.window,
    recordsPerSec: round(records / seconds),
    seconds: round(seconds, 3),
    batches,
  };
  if (redelivered > 0) run.redelivered = redelivered;
  if (errors.length > 0) run.error = errors.join('; ');
  progress(`sync-drain: ${label}${setting.broker} batch ${setting.batchMaxRecords} window ${setting.window}: ${run.recordsPerSec} records/s${run.error ? ` ERROR ${run.error}` : ''}`);
  return run;
}

/** @param {number[]} xs */
function median(xs) {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? /** @type {number} */ (sorted[mid]) : (/** @type {number} */ (sorted[mid - 1]) + /** @type {number} */ (sorted[mid])) / 2;
}

/**
 * REPEAT drains with one setting; the median run is reported, with every run's rate in `samples`.
 * @param {'aedes' | 'mosquitto'} broker
 * @param {{ batchMaxRecords: number, window: number }} setting
 */
async function measure(broker, setting) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await drainOnce({ broker, ...setting }));
  const failed = runs.find((r) => r.error !== undefined);
  const seconds = median(runs.map((r) => /** @type {number} */ (r.seconds)));
  /** @type {Record<string, unknown>} */
  const out = {
    batchMaxRecords: setting.batchMaxRecords,
    window: setting.window,
    recordsPerSec: round(RECORDS / seconds),
    seconds: round(seconds, 3),
    batches: runs[0]?.batches,
    samples: runs.map((r) => r.recordsPerSec),
  };
  const redelivered = runs.reduce((sum, r) => sum + /** @type {number} */ (r.redelivered ?? 0), 0);
  if (redelivered > 0) out.redelivered = redelivered;
  if (failed) out.error = failed.error;
  return out;
}

/** @param {Record<string, unknown>[]} runs */
function best(runs) {
  const ok = runs.filter((r) => r.error === undefined);
  return ok.reduce((a, b) => (/** @type {number} */ (b.recordsPerSec) > /** @type {number} */ (a.recordsPerSec) ? b : a), ok[0] ?? runs[0] ?? {});
}

/**
 * Waits until the broker's `$SYS/broker/publish/messages/received` (refreshed every `sys_interval`
 * = 1 s) reaches `expected` or stops changing; returns the last value seen.
 * @param {string} url
 * @param {number} expected
 */
async function brokerPublishesReceived(url, expected) {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, clean: true });
  try {
    return await new Promise((resolve, reject) => {
      let last = -1;
      let lastChange = Date.now();
      const check = setInterval(() => {
        if (last >= expected || (last >= 0 && Date.now() - lastChange > 2500)) {
          clearInterval(check);
          resolve(last);
        }
      }, 100);
      client.on('error', (error) => {
        clearInterval(check);
        reject(error);
      });
      client.on('message', (_topic, payload) => {
        const value = Number(payload.toString());
        if (value !== last) lastChange = Date.now();
        last = value;
      });
      client.subscribe('$SYS/broker/publish/messages/received', { qos: 0 });
    });
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

/**
 * Runs `mosquitto_pub` with a file as stdin; resolves with its exit code and stderr.
 * @param {string} pub
 * @param {string[]} args
 * @param {string} inputPath
 * @returns {Promise<{ code: number | string | null, stderr: string }>}
 */
function runPub(pub, args, inputPath) {
  const fd = openSync(inputPath, 'r');
  const child = spawn(pub, args, { stdio: [fd, 'ignore', 'pipe'] });
  closeSync(fd);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code: code ?? signal, stderr })));
}

/**
 * Times `mosquitto_pub -q 1 -l` publishing PUB_MESSAGES lines of PUB_LINE_BYTES from stdin to a
 * fresh broker, as the broker's own ceiling for 200-byte QoS 1 messages.
 *
 * mosquitto_pub 2.0.11 cannot send more than 65,535 lines in one `-l` run: at end of input it
 * remembers the last (16-bit, wrapped) message id and disconnects on the first PUBACK carrying that
 * id, i.e. after message 100,000 - 65,535 = 34,465, and still exits 0. So the lines go through
 * two sequential processes of 50,000 each, and the broker's `$SYS` counter confirms delivery. The
 * single-process run is kept to show the loss.
 */
async function mosquittoPub() {
  const pub = findMosquitto('mosquitto_pub');
  if (!pub) return { skipped: 'mosquitto_pub not found (apt-get install -y mosquitto-clients)' };
  const dir = tempDir('pub');
  const half = PUB_MESSAGES / 2;
  const line = `${'x'.repeat(PUB_LINE_BYTES - 1)}\n`;
  writeFileSync(join(dir, 'half.txt'), line.repeat(half));
  writeFileSync(join(dir, 'all.txt'), line.repeat(PUB_MESSAGES));
  /** @param {string[]} files */
  const timed = async (files) => {
    const broker = await startMosquitto({ extraConfig: ['sys_interval 1'] });
    try {
      const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', 'bench/x', '-l'];
      const t0 = performance.now();
      const errors = [];
      for (const f of files) {
        const { code, stderr } = await runPub(pub, args, join(dir, f));
        if (code !== 0) errors.push(`mosquitto_pub exited with ${code}: ${stderr.trim().slice(0, 300)}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      const delivered = await brokerPublishesReceived(broker.url, PUB_MESSAGES);
      return { seconds, delivered, errors };
    } finally {
      await broker.dispose();
    }
  };
  try {
    const split = await timed(['half.txt', 'half.txt']);
    const single = await timed(['all.txt']);
    /** @type {Record<string, unknown>} */
    const out = {
      messages: PUB_MESSAGES,
      bytes: PUB_LINE_BYTES,
      payloadBytes: PUB_LINE_BYTES - 1,
      seconds: round(split.seconds, 3),
      messagesPerSec: round(PUB_MESSAGES / split.seconds),
      delivered: split.delivered,
      command: `2 x (mosquitto_pub -h 127.0.0.1 -p <port> -q 1 -t bench/x -l < ${half} lines), sequential`,
      singleProcess: {
        command: `mosquitto_pub -h 127.0.0.1 -p <port> -q 1 -t bench/x -l < ${PUB_MESSAGES} lines`,
        seconds: round(single.seconds, 3),
        delivered: single.delivered,
        note: 'one -l run of more than 65,535 lines stops at the PUBACK of the wrapped 16-bit message id and exits 0; its time is not a throughput',
      },
    };
    if (split.errors.length > 0) out.error = split.errors.join('; ');
    else if (split.delivered !== PUB_MESSAGES) out.error = `the broker received ${split.delivered} of ${PUB_MESSAGES} messages`;
    progress(`sync-drain: mosquitto_pub ${out.messagesPerSec} messages/s (${split.delivered} delivered); single -l run of 100k: ${single.delivered} delivered`);
    return out;
  } finally {
    removeDir(dir);
  }
}

async function main() {
  progress(`sync-drain: ${RECORDS} readings per run, median of ${REPEAT}`);
  // Warm-up (JIT, page cache, first-connection costs): not reported.
  const warm = await drainOnce({ broker: 'aedes', batchMaxRecords: 500, window: 8 }, WARMUP_RECORDS, `warm-up (${WARMUP_RECORDS} records, not reported): `);
  if (warm.error) throw new Error(`warm-up drain failed: ${warm.error}`);
  const aedesRuns = [];
  for (const s of AEDES_SETTINGS) aedesRuns.push(await measure('aedes', s));
  const aedesBest = best(aedesRuns);

  /** @type {Record<string, unknown>} */
  let mosquitto;
  /** @type {Record<string, unknown>} */
  let pubResult;
  if (!findMosquitto()) {
    mosquitto = { skipped: 'mosquitto not found in PATH, /usr/sbin or /usr/local/sbin (apt-get install -y mosquitto)' };
    pubResult = { skipped: 'mosquitto not found' };
  } else {
    const defaults = { batchMaxRecords: DEFAULT_UPLINK_OPTIONS.batchMaxRecords, window: DEFAULT_UPLINK_OPTIONS.window };
    const settings = [defaults];
    const b = /** @type {{ batchMaxRecords?: number, window?: number }} */ (aedesBest);
    if (b.batchMaxRecords !== undefined && b.window !== undefined && (b.batchMaxRecords !== defaults.batchMaxRecords || b.window !== defaults.window)) {
      settings.push({ batchMaxRecords: b.batchMaxRecords, window: b.window });
    }
    const runs = [];
    for (const s of settings) runs.push(await measure('mosquitto', s));
    mosquitto = { ...best(runs), runs };
    pubResult = await mosquittoPub();
  }

  const allRuns = [...aedesRuns, ...(/** @type {Record<string, unknown>[]} */ (mosquitto.runs ?? []))];
  const errors = allRuns.filter((r) => r.error !== undefined).map((r) => `${r.batchMaxRecords}/${r.window}: ${r.error}`);
  if (pubResult.error) errors.push(`mosquitto_pub: ${pubResult.error}`);
  const defaultRun = aedesRuns.find((r) => r.batchMaxRecords === DEFAULT_UPLINK_OPTIONS.batchMaxRecords && r.window === DEFAULT_UPLINK_OPTIONS.window);
  /** @type {Record<string, unknown>} */
  const result = {
    records: RECORDS,
    defaults: { batchMaxRecords: DEFAULT_UPLINK_OPTIONS.batchMaxRecords, window: DEFAULT_UPLINK_OPTIONS.window },
    aedes: { ...aedesBest, runs: aedesRuns },
    mosquitto,
    mosquittoPub: pubResult,
    target: {
      minRecordsPerSec: TARGET_RECORDS_PER_SEC,
      metWithDefaults: typeof defaultRun?.recordsPerSec === 'number' && defaultRun.recordsPerSec >= TARGET_RECORDS_PER_SEC,
      metWithBest: typeof aedesBest.recordsPerSec === 'number' && aedesBest.recordsPerSec >= TARGET_RECORDS_PER_SEC,
    },
  };
  if (errors.length > 0) result.error = errors.join(' | ');
  process.stdout.write(`${JSON.stringify({ 'sync-drain': result })}\n`);
  process.exitCode = errors.length > 0 ? 1 : 0;
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ 'sync-drain': { records: RECORDS, error: String(error?.stack ?? error) } })}\n`);
  process.exitCode = 1;
});
