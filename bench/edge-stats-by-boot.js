// `medge edge stats` on a device id whose batches came from many boots (two boards under one id, each rebooting):
// the per-boot listing of `duplicateDeviceIds[id].storedByBoot` at a million rows.
//
//   node bench/edge-stats-by-boot.js [--rows 1000000] [--boots 32] [--batch 2000] [--rounds 5]
//
// fill:  `EdgeStore.commit` (the ingest's commit: WAL, synchronous=FULL, one transaction per batch) of --rows reading
//        records of one device in --batch-record batches, the records' boot ids taking turns over --boots boots
//        (each batch one boot); a duplicate_device_ids row naming every boot, as the watch leaves it.
// stats: `readEdgeStats(dir)` (read-only connection, as the CLI), --rounds times; the median is reported.
// migration: when this build keeps per-boot counts (`boot_records`), the store is set back one schema version
//        and reopened, to time the one-off backfill of an existing store.
// Prints one JSON object on stdout; progress goes to stderr. Uses dist/ (npm run build).

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { encodeBody } from '../dist/device-sdk/proto/index.js';
import { EdgeStore, readEdgeStats } from '../dist/edge/edge-store.js';
import { numberArg, progress, reading, round, tempDir } from './lib/common.js';

const ROWS = Math.floor(numberArg('rows', 1_000_000));
const BOOTS = Math.floor(numberArg('boots', 32));
const BATCH = Math.floor(numberArg('batch', 2000));
const ROUNDS = Math.max(1, Math.floor(numberArg('rounds', 5)));
const DEVICE = 'dev-twin';

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? /** @type {number} */ (s[m]) : (/** @type {number} */ (s[m - 1]) + /** @type {number} */ (s[m])) / 2;
}

const dir = tempDir('edge-stats-by-boot');
const store = new EdgeStore(dir);
const boots = Array.from({ length: BOOTS }, (_, b) => `boot-${String(b).padStart(2, '0')}-${'0'.repeat(28)}`);
const bodies = Array.from({ length: 64 }, (_, i) => encodeBody('reading', reading(i)));
/** @type {number[]} */
const perRecordUs = [];
let seq = 0;
const fillStart = performance.now();
for (let b = 0; seq < ROWS; b++) {
  const bootId = /** @type {string} */ (boots[b % BOOTS]);
  const n = Math.min(BATCH, ROWS - seq);
  const records = Array.from({ length: n }, (_, i) => ({ seq: seq + i + 1, bootId, tMs: 1_750_000_000_000 + seq + i, body: /** @type {Uint8Array} */ (bodies[(seq + i) % 64]) }));
  const t = performance.now();
  store.commit({ site: 'bench', deviceId: DEVICE, kind: 'reading', bootId, afterSeq: seq, lastSeq: seq + n, ackedUpTo: seq, records }, 1_750_000_000_000);
  perRecordUs.push(((performance.now() - t) * 1000) / n);
  seq += n;
  if (b % 50 === 0) progress(`filled ${seq} of ${ROWS}`);
}
const fillS = (performance.now() - fillStart) / 1000;
store.close();

const db = new Database(join(dir, 'edge.sqlite'));
db.prepare(
  `INSERT INTO duplicate_device_ids (device_id, count, first_ms, last_ms, boot_ids, incumbent, refused_boot, proven_ms, refused, involved) VALUES (?, 40, 0, 0, ?, ?, ?, 0, 0, ?)`,
).run(DEVICE, JSON.stringify(boots.slice(-2)), boots[0], boots[1], JSON.stringify(boots));
const schema = /** @type {number} */ (db.pragma('user_version', { simple: true }));
const keepsBootCounts = db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'boot_records'").pluck().get() === 1;
db.close();

/** @type {number[]} */
const statsMs = [];
/** @type {unknown} */
let storedByBoot;
for (let r = 0; r < ROUNDS; r++) {
  const t = performance.now();
  const stats = readEdgeStats(dir);
  statsMs.push(performance.now() - t);
  storedByBoot = stats.duplicateDeviceIds[DEVICE]?.storedByBoot;
  progress(`stats round ${r + 1}: ${round(statsMs.at(-1) ?? 0, 1)} ms`);
}

/** @type {number | null} */
let backfillMs = null;
if (keepsBootCounts) {
  const back = new Database(join(dir, 'edge.sqlite'));
  back.exec(`DROP TABLE boot_records; DROP INDEX IF EXISTS conflicts_device_boot; PRAGMA user_version = ${schema - 1};`);
  back.close();
  const t = performance.now();
  new EdgeStore(dir).close();
  backfillMs = performance.now() - t;
  const again = readEdgeStats(dir).duplicateDeviceIds[DEVICE]?.storedByBoot;
  if (JSON.stringify(again) !== JSON.stringify(storedByBoot)) throw new Error('the backfilled per-boot counts differ from those kept by the commits');
}

const total = Object.values(/** @type {Record<string, { reading?: { stored: number } }>} */ (storedByBoot ?? {})).reduce((n, k) => n + (k.reading?.stored ?? 0), 0);
process.stdout.write(
  `${JSON.stringify({
    bench: 'edge-stats-by-boot',
    rows: ROWS,
    boots: BOOTS,
    batch: BATCH,
    schema,
    keepsBootCounts,
    statsMedianMs: round(median(statsMs), 1),
    statsMs: statsMs.map((x) => round(x, 1)),
    fillS: round(fillS, 1),
    commitUsPerRecordMedian: round(median(perRecordUs), 2),
    backfillMs: backfillMs === null ? null : round(backfillMs, 0),
    storedByBootTotal: total,
    storedByBoot,
  })}\n`,
);
