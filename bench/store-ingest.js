// Ledger write throughput against the floor of a bare better-sqlite3 insert loop.
//
//   node bench/store-ingest.js [--rows 1000000] [--rounds 3] [--cipher aes-256-gcm]
//
// ledger: `Ledger.add('reading', r)` on a SqliteOutboxStore, flushed by size every 1000 records
//         (maxBuffered 1000, flush timer far away), WAL + synchronous=FULL. The ledger encodes
//         every reading itself (protobuf) inside the timed loop, as it does on a board. Two variants:
//         sealed at rest with --cipher (default AES-256-GCM, the runtime's default;
//         aes-256-gcm|sm4-ctr-hmac-sm3) and in clear (no encryption configured).
// bare:   the same rows (same columns, same encoded body bytes, pre-encoded before timing) inserted
//         with one prepared statement into an identical table, same pragmas, 1000-row transactions.
// Each round runs bare, sealed and clear once, in a rotating order (the machine may be shared:
// interleaving spreads its load over all three); each ratio is taken within a round and the
// reported figures are medians over the rounds.
// Prints one JSON object on stdout; progress goes to stderr.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { encodeBody } from '../dist/device-sdk/proto/index.js';
import { applyDurablePragmas, Ledger, ROW_OVERHEAD_BYTES, SqliteOutboxStore } from '../dist/device-sdk/store/index.js';
import { createDeviceKey } from '../dist/device-sdk/security/device-key.js';
import { numberArg, progress, reading, removeDir, round, tempDir, tempFsInfo } from './lib/common.js';

const ROWS = Math.floor(numberArg('rows', 1_000_000));
const TX = 1000;
const TARGET_RATIO = 0.6;
const ROUNDS = Math.max(1, Math.floor(numberArg('rounds', 3)));
const cipherAt = process.argv.indexOf('--cipher');
const CIPHER = cipherAt > 0 ? process.argv[cipherAt + 1] : 'aes-256-gcm';
if (CIPHER === 'none') throw new Error('--cipher none: the clear ledger is always measured (ratioClear); give a cipher suite');

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? /** @type {number} */ (s[m]) : (/** @type {number} */ (s[m - 1]) + /** @type {number} */ (s[m])) / 2;
}

function maybeGc() {
  if (typeof globalThis.gc === 'function') globalThis.gc();
}

/**
 * Row count, byte totals, first and last body and tag histogram of a ledger table (to check both runs stored the same rows).
 * @param {string} path
 * @param {string} table
 */
function tableSummary(path, table) {
  const db = new Database(path, { readonly: true });
  try {
    const sum = /** @type {{ n: number, bytes: number, body: number }} */ (
      db.prepare(`SELECT COUNT(*) AS n, SUM(bytes) AS bytes, SUM(length(body)) AS body FROM ${table}`).get()
    );
    const first = /** @type {Buffer} */ (db.prepare(`SELECT body FROM ${table} ORDER BY seq LIMIT 1`).pluck().get());
    const last = /** @type {Buffer} */ (db.prepare(`SELECT body FROM ${table} ORDER BY seq DESC LIMIT 1`).pluck().get());
    const tags = db.prepare(`SELECT tag, COUNT(*) AS n FROM ${table} GROUP BY tag ORDER BY tag`).all();
    return { ...sum, first: first.toString('hex'), last: last.toString('hex'), tags: JSON.stringify(tags) };
  } finally {
    db.close();
  }
}

/**
 * @param {string} cipher 'none' or a cipher suite
 * @param {number} rows
 */
function runLedger(cipher, rows = ROWS) {
  const ROWS = rows;
  const readings = Array.from({ length: ROWS }, (_, i) => reading(i));
  maybeGc();
  const dir = tempDir('ingest-ledger');
  const path = join(dir, 'ledger.sqlite');
  const encryption = cipher === 'none' ? undefined : { suite: cipher, deviceKey: createDeviceKey(join(dir, 'device.key')) };
  const store = new SqliteOutboxStore(path, { deviceId: 'bench-ingest', ...(encryption ? { encryption } : {}) });
  const ledger = new Ledger(store, { maxBuffered: TX, flushIntervalMs: 1_000_000_000 });
  progress(`store-ingest: ledger (${cipher === 'none' ? 'clear' : cipher}), ${ROWS} readings`);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) ledger.add('reading', /** @type {any} */ (readings[i]));
  ledger.flush();
  const seconds = (performance.now() - t0) / 1000;
  const stats = store.stats().reading;
  // Sealed bodies differ from the bare table's: compare what the ledger gives back (opened) instead.
  const first = store.readAfter('reading', 0, 1)[0];
  const last = store.readAfter('reading', ROWS - 1, 1)[0];
  store.close();
  const summary = tableSummary(path, 'rec_reading');
  const sealedBytes = summary.body;
  summary.first = Buffer.from(first.body).toString('hex');
  summary.last = Buffer.from(last.body).toString('hex');
  summary.body = stats.bytes - ROWS * ROW_OVERHEAD_BYTES;
  summary.sealedBytes = sealedBytes;
  removeDir(dir);
  if (stats.lastSeq !== ROWS || stats.rows !== ROWS) throw new Error(`ledger stored ${stats.rows} rows (lastSeq ${stats.lastSeq}), expected ${ROWS}`);
  return { seconds, summary };
}

/**
 * @param {boolean} multiRow 64-row INSERTs (as the ledger does) instead of one row per INSERT
 * @param {number} rows
 */
function runBare(multiRow = false, rows = ROWS) {
  const ROWS = rows;
  // Pre-encoded bodies, tags and times: the bare loop only inserts.
  const bodies = new Array(ROWS);
  const tags = new Array(ROWS);
  const times = new Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    const r = reading(i);
    bodies[i] = encodeBody('reading', r);
    tags[i] = r.sensor;
    times[i] = r.tDevice;
  }
  maybeGc();
  const dir = tempDir('ingest-bare');
  const path = join(dir, 'bare.sqlite');
  const db = new Database(path);
  applyDurablePragmas(db);
  // Same table as DEVICE_MIGRATIONS' rec_reading.
  db.exec(`CREATE TABLE rec_reading (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, boot_no INTEGER NOT NULL, t_ms INTEGER NOT NULL,
    tag TEXT NOT NULL DEFAULT '', bytes INTEGER NOT NULL, body BLOB NOT NULL)`);
  const insert = db.prepare('INSERT INTO rec_reading (boot_no, t_ms, tag, bytes, body) VALUES (?, ?, ?, ?, ?)');
  const MULTI = 64;
  const insertMulti = db.prepare(`INSERT INTO rec_reading (boot_no, t_ms, tag, bytes, body) VALUES ${new Array(MULTI).fill('(?, ?, ?, ?, ?)').join(', ')}`);
  const args = new Array(MULTI * 5);
  const insertRange = db.transaction((/** @type {number} */ from, /** @type {number} */ to) => {
    let i = from;
    if (multiRow) {
      for (; i + MULTI <= to; i += MULTI) {
        for (let r = 0; r < MULTI; r++) {
          const body = bodies[i + r];
          args[r * 5] = 1;
          args[r * 5 + 1] = times[i + r];
          args[r * 5 + 2] = tags[i + r];
          args[r * 5 + 3] = body.byteLength + ROW_OVERHEAD_BYTES;
          args[r * 5 + 4] = body;
        }
        insertMulti.run(args);
      }
    }
    for (; i < to; i++) {
      const body = bodies[i];
      insert.run(1, times[i], tags[i], body.byteLength + ROW_OVERHEAD_BYTES, body);
    }
  });
  progress(`store-ingest: bare better-sqlite3${multiRow ? ' (64-row INSERTs)' : ''}, ${ROWS} rows`);
  const t0 = performance.now();
  for (let from = 0; from < ROWS; from += TX) insertRange(from, Math.min(ROWS, from + TX));
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  const summary = tableSummary(path, 'rec_reading');
  removeDir(dir);
  return { seconds, summary };
}

/** @type {{ bare: number[], sealed: number[], clear: number[], bareMultiRow: number[] }} */
const seconds = { bare: [], sealed: [], clear: [], bareMultiRow: [] };
/** @type {Record<string, any>} */
const summaries = {};
const runs = /** @type {const} */ ([
  ['bare', () => runBare()],
  ['sealed', () => runLedger(CIPHER)],
  ['clear', () => runLedger('none')],
  ['bareMultiRow', () => runBare(true)],
]);
// Warm-up (untimed): every variant once on a few rows, so that no variant pays for the JIT or the
// first temp file alone.
const WARMUP_ROWS = Math.min(ROWS, 20_000);
runBare(false, WARMUP_ROWS);
runLedger(CIPHER, WARMUP_ROWS);
runLedger('none', WARMUP_ROWS);
runBare(true, WARMUP_ROWS);
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < runs.length; k++) {
    const [name, run] = /** @type {(typeof runs)[number]} */ (runs[(round + k) % runs.length]);
    maybeGc();
    const r = run();
    seconds[name].push(r.seconds);
    summaries[name] = r.summary;
  }
}
const ratios = {
  sealed: seconds.sealed.map((t, i) => /** @type {number} */ (seconds.bare[i]) / t),
  clear: seconds.clear.map((t, i) => /** @type {number} */ (seconds.bare[i]) / t),
};
const ratio = median(ratios.sealed);
/** @param {number[]} ts */
const perf = (ts) => ({ rowsPerSec: round(ROWS / median(ts)), seconds: round(median(ts), 3), runs: ts.map((t) => round(t, 3)) });

/** @type {Record<string, unknown>} */
const result = {
  rows: ROWS,
  transactionSize: TX,
  rounds: ROUNDS,
  cipher: CIPHER,
  ledger: perf(seconds.sealed),
  ledgerClear: perf(seconds.clear),
  bare: perf(seconds.bare),
  // Informational: the bare loop with the ledger's own 64-row INSERTs (part of the ledger's gain is that batching, not the crypto).
  bareMultiRow: perf(seconds.bareMultiRow),
  ratioVsMultiRow: round(median(seconds.sealed.map((t, i) => /** @type {number} */ (seconds.bareMultiRow[i]) / t)), 3),
  ratioClearVsMultiRow: round(median(seconds.clear.map((t, i) => /** @type {number} */ (seconds.bareMultiRow[i]) / t)), 3),
  ratio: round(ratio, 3),
  ratioClear: round(median(ratios.clear), 3),
  ratios: { sealed: ratios.sealed.map((x) => round(x, 3)), clear: ratios.clear.map((x) => round(x, 3)) },
  target: { minRatio: TARGET_RATIO, met: ratio >= TARGET_RATIO },
  bodyBytes: summaries.sealed.body,
  storedBodyBytes: summaries.sealed.sealedBytes,
  note:
    `ledger = Ledger.add() per reading (protobuf encoding, tag and clock inside the timed loop), bodies sealed at rest with ${CIPHER}; ledgerClear = the same without encryption; ` +
    'both committed by SqliteOutboxStore.append in 1000-record transactions; ' +
    'bare = one prepared INSERT of PRE-ENCODED bodies (encoding not timed) into an identical table. All WAL + synchronous=FULL, fresh files in ' +
    `${tempFsInfo().dir} (${tempFsInfo().fs}); ratio = median over rounds of ledger rows/s ÷ bare rows/s of the same round (ratioClear likewise), the target applies to ratio (encrypted).`,
};
const mismatch = ['sealed', 'clear', 'bareMultiRow'].flatMap((name) =>
  ['n', 'bytes', 'body', 'first', 'last', 'tags'].filter((k) => summaries[name][k] !== summaries.bare[k]).map((k) => `${name}.${k}`),
);
if (mismatch.length > 0) result.error = `ledger and bare tables differ in ${mismatch.join(', ')}`;
process.stdout.write(`${JSON.stringify({ 'store-ingest': result })}\n`);
if (result.error) process.exitCode = 1;
