// Ledger write throughput against the floor of a bare better-sqlite3 insert loop.
//
//   node bench/store-ingest.js [--rows 1000000]
//
// ledger: `Ledger.add('reading', r)` on a SqliteOutboxStore, flushed by size every 1000 records
//         (maxBuffered 1000, flush timer far away), WAL + synchronous=FULL. The ledger encodes
//         every reading itself (protobuf) inside the timed loop, as it does on a board, and seals
//         every body with AES-256-GCM at rest (the runtime's default; --cipher none|aes-256-gcm|sm4-ctr-hmac-sm3).
// bare:   the same rows (same columns, same encoded body bytes, pre-encoded before timing) inserted
//         with one prepared statement into an identical table, same pragmas, 1000-row transactions.
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
const cipherAt = process.argv.indexOf('--cipher');
const CIPHER = cipherAt > 0 ? process.argv[cipherAt + 1] : 'aes-256-gcm';

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

function runLedger() {
  const readings = Array.from({ length: ROWS }, (_, i) => reading(i));
  maybeGc();
  const dir = tempDir('ingest-ledger');
  const path = join(dir, 'ledger.sqlite');
  const encryption = CIPHER === 'none' ? undefined : { suite: CIPHER, deviceKey: createDeviceKey(join(dir, 'device.key')) };
  const store = new SqliteOutboxStore(path, { deviceId: 'bench-ingest', ...(encryption ? { encryption } : {}) });
  const ledger = new Ledger(store, { maxBuffered: TX, flushIntervalMs: 1_000_000_000 });
  progress(`store-ingest: ledger, ${ROWS} readings`);
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

function runBare() {
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
  const insertRange = db.transaction((/** @type {number} */ from, /** @type {number} */ to) => {
    for (let i = from; i < to; i++) {
      const body = bodies[i];
      insert.run(1, times[i], tags[i], body.byteLength + ROW_OVERHEAD_BYTES, body);
    }
  });
  progress(`store-ingest: bare better-sqlite3, ${ROWS} rows`);
  const t0 = performance.now();
  for (let from = 0; from < ROWS; from += TX) insertRange(from, Math.min(ROWS, from + TX));
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  const summary = tableSummary(path, 'rec_reading');
  removeDir(dir);
  return { seconds, summary };
}

const ledger = runLedger();
maybeGc();
const bare = runBare();

/** @type {Record<string, unknown>} */
const result = {
  rows: ROWS,
  transactionSize: TX,
  ledger: { rowsPerSec: round(ROWS / ledger.seconds), seconds: round(ledger.seconds, 3) },
  bare: { rowsPerSec: round(ROWS / bare.seconds), seconds: round(bare.seconds, 3) },
  ratio: round(bare.seconds / ledger.seconds, 3),
  target: { minRatio: TARGET_RATIO, met: bare.seconds / ledger.seconds >= TARGET_RATIO },
  cipher: CIPHER,
  bodyBytes: ledger.summary.body,
  storedBodyBytes: ledger.summary.sealedBytes,
  note:
    'ledger = Ledger.add() per reading (protobuf encoding, tag and clock inside the timed loop; bodies sealed at rest with the given cipher), committed by SqliteOutboxStore.append in 1000-record transactions; ' +
    'bare = one prepared INSERT of PRE-ENCODED bodies (encoding not timed) into an identical table. Both WAL + synchronous=FULL, fresh files in ' +
    `${tempFsInfo().dir} (${tempFsInfo().fs}); ratio = ledger rows/s ÷ bare rows/s.`,
};
const mismatch = ['n', 'bytes', 'body', 'first', 'last', 'tags'].filter(
  (k) => /** @type {any} */ (ledger.summary)[k] !== /** @type {any} */ (bare.summary)[k],
);
if (mismatch.length > 0) result.error = `ledger and bare tables differ in ${mismatch.join(', ')}`;
process.stdout.write(`${JSON.stringify({ 'store-ingest': result })}\n`);
if (result.error) process.exitCode = 1;
