// What a runtime start pays to remember the CGM records stored before it (firmware/runtime.ts `storedCgmRecords`,
// taken by the driver's `recall`): time, rows opened and memory, on a ledger holding a year of CGM readings.
//
//   node bench/cgm-recall.js [--days 365] [--interval 5] [--hr-days 2] [--rounds 3] [--dist DIR]
//
// The ledger: `--days` of one CGM's readings every `--interval` minutes (default a year of 5-minute readings: 105,120),
// sealed at rest with AES-256-GCM (the runtime's default), each naming its serial and its sensor session (a new one
// every 14 days, time offsets from 0), stored in time order; in the last `--hr-days` days a heart-rate strap's readings
// every second between them (other sensors' rows the newest CGM rows are found among).
// start:        `storedCgmRecords(store, ['cgm'], silentLogger)` on the ledger reopened (what a runtime start adds): the
//               rows of the 21 days before the newest, by session (a build before it, `--dist`: the newest 2,048 rows).
// recall:       `BleCgmDriver.recall()` taking the records (into its `seen`).
// heap:         retained heap with array buffers (after GC) of the records handed over, and of the driver's `seen` after recall.
// `--dist DIR` runs another build (default dist/: run `npm run build` first), for before -> after.
// Times are medians over the rounds. Prints one JSON object on stdout; progress goes to stderr.

import { join, resolve } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import { numberArg, progress, round, stringArg, tempDir, tempFsInfo } from './lib/common.js';

const DIST = resolve(stringArg('dist', new URL('../dist', import.meta.url).pathname));
/** @param {string} module a module of the build, e.g. `device-sdk/log.js` */
const load = (module) => import(pathToFileURL(join(DIST, module)).href);
const { encodeBody } = await load('device-sdk/proto/index.js');
const { SqliteOutboxStore } = await load('device-sdk/store/index.js');
const { createDeviceKey } = await load('device-sdk/security/device-key.js');
const { silentLogger } = await load('device-sdk/log.js');
const { systemClock } = await load('device-sdk/clock.js');
const cgm = await load('device-sdk/sensors/ble-cgm.js');
const { BleCgmDriver, DEFAULT_BLE_CGM_OPTIONS } = cgm;
/** @type {number | undefined} the newest rows read by the build before sessions were remembered whole */
const LIMIT = cgm.CGM_SEEN_LIMIT;
const { storedCgmRecords: stored } = await load('firmware/runtime.js');
/** @param {unknown} store */
const storedCgmRecords = (store) => (LIMIT === undefined ? stored(store, ['cgm'], silentLogger) : stored(store, ['cgm'], LIMIT, silentLogger));
/** Records handed over: a list of records (before) or of sessions with their offsets. @param {any[]} records */
const recordCount = (records) => records.reduce((n, r) => n + (r.offsets ? r.offsets.length : 1), 0);

const DAYS = numberArg('days', 365);
const INTERVAL_MIN = numberArg('interval', 5);
const ROUNDS = Math.max(1, Math.floor(numberArg('rounds', 3)));
const HR_DAYS = numberArg('hr-days', 2);
const SESSION_DAYS = 14;
const T0 = Date.UTC(2025, 11, 1);

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? /** @type {number} */ (s[m]) : (/** @type {number} */ (s[m - 1]) + /** @type {number} */ (s[m])) / 2;
}

// bench/run.js starts benches without flags: the collector is exposed here.
v8.setFlagsFromString('--expose-gc');
const collect = /** @type {() => void} */ (runInNewContext('gc'));

function gc() {
  collect();
  collect();
  // Typed arrays (the offsets and marks) are held outside the V8 heap.
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

const dir = tempDir('cgm-recall');
const path = join(dir, 'ledger.sqlite');
const deviceKey = createDeviceKey(join(dir, 'device.key'));
const options = { deviceId: 'bench-cgm', encryption: { suite: 'aes-256-gcm', deviceKey } };
const rows = Math.floor((DAYS * 24 * 60) / INTERVAL_MIN);
const sessionMs = SESSION_DAYS * 86_400_000;
const hrFromMs = T0 + rows * INTERVAL_MIN * 60_000 - HR_DAYS * 86_400_000;
let hrRows = 0;
{
  const store = new SqliteOutboxStore(path, options);
  const started = performance.now();
  /** @type {import('../dist/device-sdk/store/outbox-store.js').AppendEntry[]} */
  let batch = [];
  for (let i = 0; i < rows; i++) {
    const tMs = T0 + i * INTERVAL_MIN * 60_000;
    for (let t = Math.max(hrFromMs, tMs - INTERVAL_MIN * 60_000); t < tMs; t += 1000, hrRows++) {
      batch.push({ kind: 'reading', tMs: t, tag: 'hr-strap', body: encodeBody('reading', { sensor: 'hr-strap', type: 'heart-rate', value: 60 + (hrRows % 40), unit: 'bpm', tDevice: t }) });
    }
    const sessionStartMs = T0 + Math.floor((tMs - T0) / sessionMs) * sessionMs;
    const sessionStart = `${new Date(sessionStartMs + 3600_000).toISOString().slice(0, 19)}+01:00`;
    const reading = {
      sensor: 'cgm',
      type: 'glucose',
      value: 60 + ((i * 13) % 200),
      unit: 'mg/dL',
      tDevice: tMs,
      meterRecord: Math.round((tMs - sessionStartMs) / 60_000),
      context: { source: 'cgm', sessionStart, meter: 'C0:FF:EE:00:00:02', meterSerial: 'CGM-A-0001', trendMgPerDlPerMin: '0.4', qualityPercent: '95', measuredAt: new Date(tMs).toISOString() },
    };
    batch.push({ kind: 'reading', tMs, tag: 'cgm', body: encodeBody('reading', reading) });
    if (batch.length >= 5000 || i === rows - 1) {
      store.append(batch);
      batch = [];
    }
  }
  store.close();
  progress(`ledger: ${rows} CGM readings and ${hrRows} heart-rate readings written in ${round((performance.now() - started) / 1000, 1)} s`);
}

/** One `storedCgmRecords` on a freshly opened store: its time, the rows it opened and what it returned. */
function recall() {
  const store = new SqliteOutboxStore(path, options);
  try {
    let opened = 0;
    for (const method of /** @type {const} */ (['readBefore', 'readMatching'])) {
      const read = store[method].bind(store);
      store[method] = (/** @type {any[]} */ ...args) => {
        const page = read(...args);
        opened += page.length;
        return page;
      };
    }
    const t = performance.now();
    const records = storedCgmRecords(store).get('cgm') ?? [];
    return { ms: performance.now() - t, opened, records };
  } finally {
    store.close();
  }
}

const startMs = [];
const recallMs = [];
let start = recall();
for (let r = 0; r < ROUNDS; r++) {
  start = recall();
  startMs.push(start.ms);
  progress(`round ${r + 1}: ${round(start.ms, 1)} ms (${start.opened} rows opened)`);
}

// Retained heap of the records handed over (the runtime holds them until the driver takes them), then of the drivers'
// `seen` once they took them, over as many drivers that took none.
const before = gc();
const held = new Map([['cgm', recall().records]]);
const recordsHeap = gc() - before;
/** @param {boolean} withRecords */
function driverTaking(withRecords) {
  const records = withRecords ? held.get('cgm') ?? [] : [];
  const given = new Map([['cgm', records]]);
  const storedCgmRecords = (/** @type {string} */ sensor) => {
    const r = given.get(sensor) ?? [];
    given.delete(sensor);
    return r;
  };
  const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS }, { clock: systemClock, logger: silentLogger, lastMeterRecord: () => undefined, storedCgmRecords });
  const t = performance.now();
  driver.recall();
  if (withRecords) recallMs.push(performance.now() - t);
  return driver;
}
const empty = Array.from({ length: ROUNDS }, () => driverTaking(false));
const emptyHeap = gc();
const drivers = Array.from({ length: ROUNDS }, () => driverTaking(true));
held.clear();
const seenHeapPerDriver = (gc() - emptyHeap) / ROUNDS;
void empty;

const result = {
  cgmRecall: {
    ledger: { cgmReadings: rows, days: DAYS, intervalMin: INTERVAL_MIN, sessionDays: SESSION_DAYS, heartRateReadings: hrRows, cipher: 'aes-256-gcm', ...tempFsInfo() },
    dist: DIST,
    remembered: LIMIT === undefined ? 'the rows of the 21 days before the newest, by session (8 at most)' : `the newest ${LIMIT} rows`,
    start: { ms: round(median(startMs), 1), rowsOpened: start.opened, recordsKept: recordCount(start.records), sessions: LIMIT === undefined ? start.records.length : undefined },
    // The driver's held records: `judge.seen` (exact uint16 values), before it `seen` (8-bit marks).
    driverRecall: { ms: round(median(recallMs), 2), seen: (drivers[0]?.['judge']?.seen ?? drivers[0]?.['seen'])?.size, seenBytes: (drivers[0]?.['judge']?.seen ?? drivers[0]?.['seen'])?.bytes },
    heapKB: { recordsHandedOver: round(recordsHeap / 1024), driverSeen: round(seenHeapPerDriver / 1024) },
    rounds: ROUNDS,
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
