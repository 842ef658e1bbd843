import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { RECORD_KINDS, type RecordKind } from '../records.js';
import type { DeviceKey } from '../security/device-key.js';
import { makeDirs } from '../make-dirs.js';
import { LEDGER_TABLES, LedgerKeyring, recordAad } from './ledger-keys.js';
import { seqReservationPath, SeqReservation } from './seq-reservation.js';
import type { StoredRecord } from './outbox-store.js';
import { type LedgerRow, SqliteOutboxStore, type SqliteOutboxStoreOptions } from './sqlite-outbox-store.js';

/** Damaged ledgers are moved into `<dataDir>/<this><UTC time>/`, never deleted. */
export const DAMAGED_LEDGER_DIR_PREFIX = 'ledger-damaged-';
/** What the recovery wrote next to the moved files: the `LedgerDamage` as JSON. */
export const DAMAGE_REPORT_FILE = 'damage.json';

/** Why a ledger file was taken for damaged: SQLite's error code, or `quick-check` when `PRAGMA quick_check` was not ok. */
export interface LedgerDamageCause {
  code: string;
  reason: string;
}

/** What `openLedgerRecovering` did with a damaged ledger. */
export interface LedgerDamage extends LedgerDamageCause {
  /** The folder the damaged file and its -wal/-shm were moved into. */
  movedTo: string;
  /** File names moved (`ledger.sqlite`, `ledger.sqlite-wal`, `ledger.sqlite-shm`, those present). */
  files: string[];
  /** Per kind, the fresh ledger's seqs start above this (seq reservation, or what the damaged file showed). */
  seqFloor: Record<RecordKind, number>;
  /** Per kind, the highest seq still readable in the damaged file (sequence table, rows, acked watermark). */
  readableMaxSeq: Partial<Record<RecordKind, number>>;
  /** Records not acknowledged by the edge, read from the damaged file and copied into the fresh ledger (they sync from it). */
  restored: Partial<Record<RecordKind, number>>;
  /** What could not be read (a technician may get more out of the moved file). */
  unreadable: string[];
}

/**
 * Ledgers up to this size (bytes) get the full `PRAGMA quick_check` before the runtime starts; larger ones
 * only the quick checks at start (readable header and schema, not shorter than its pages) and the full one
 * in a worker thread once monitoring runs (`checkLedgerInBackground`). `quick_check` reads every page: 0.54 s
 * for 245 MB in the page cache here, so a ledger at the default 2 GiB budget on an SD card (~30 MB/s) would
 * hold monitoring back for about a minute at every boot.
 */
export const FULL_CHECK_AT_START_MAX_BYTES = 64 * 1024 * 1024;

/** What `PRAGMA quick_check` said, as a damage cause; undefined when `ok`. */
function quickCheck(db: Database.Database): LedgerDamageCause | undefined {
  const problems = db.pragma('quick_check(5)', { simple: false }) as { quick_check: string }[];
  const text = problems.map((p) => p.quick_check);
  if (text.length === 1 && text[0] === 'ok') return undefined;
  return { code: 'quick-check', reason: `PRAGMA quick_check: ${text.join('; ').slice(0, 400)}` };
}

/**
 * Whether the ledger at `path` is damaged: it cannot be opened as a database or read (`SQLITE_CORRUPT*`,
 * `SQLITE_NOTADB`), it is shorter than its pages (truncated), or `PRAGMA quick_check` finds a problem (a file
 * up to `fullCheckMaxBytes`; larger ones are left to `checkLedgerInBackground`). Undefined: it is sound as far
 * as checked, or does not exist. Any other error (busy, read-only, cannot open) is thrown: moving such a file
 * aside would not help.
 */
export function checkLedgerFile(path: string, fullCheckMaxBytes = FULL_CHECK_AT_START_MAX_BYTES): LedgerDamageCause | undefined {
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    const bytes = statSync(path).size;
    if (bytes <= fullCheckMaxBytes) return quickCheck(db);
    db.prepare('SELECT COUNT(*) FROM sqlite_master').pluck().get();
    const pages = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
    // Pages past the end of the file (a truncated copy) are read only when needed; say so now. (The -wal may hold pages
    // that grew the database since the last checkpoint: then the file is shorter without being damaged.)
    if (pages > bytes && !existsSync(`${path}-wal`)) return { code: 'truncated', reason: `the file has ${bytes} bytes, its ${pages / (db.pragma('page_size', { simple: true }) as number)} pages need ${pages}` };
    return undefined;
  } catch (error) {
    const code = corruptCode(error);
    if (code === undefined) throw error;
    return { code, reason: (error as Error).message };
  } finally {
    db?.close();
  }
}

/**
 * The full check of a ledger too large to check before monitoring starts (`FULL_CHECK_AT_START_MAX_BYTES`):
 * `PRAGMA quick_check` on its own read-only connection in a worker thread, so sampling, storage and alarms never
 * wait for it. Resolves with the damage found, or undefined when `ok` (or when it could not run: logged by the
 * caller; a damaged page is still found when a read or write reaches it).
 */
export function checkLedgerInBackground(path: string): Promise<LedgerDamageCause | undefined> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.sqlite);
    let db;
    try {
      db = new Database(workerData.path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      const text = db.pragma('quick_check(5)', { simple: false }).map((p) => p.quick_check);
      parentPort.postMessage(text.length === 1 && text[0] === 'ok' ? { ok: true } : { code: 'quick-check', reason: 'PRAGMA quick_check: ' + text.join('; ').slice(0, 400) });
    } catch (error) {
      parentPort.postMessage({ error: error.message, code: error.code });
    } finally {
      if (db) db.close();
    }`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { path, sqlite } });
    worker.unref();
    worker.once('message', (m: { ok?: true; code?: string; reason?: string; error?: string }) => {
      void worker.terminate();
      if (m.ok) return resolve(undefined);
      if (m.reason !== undefined && m.code !== undefined) return resolve({ code: m.code, reason: m.reason });
      const failure = Object.assign(new Error(m.error ?? 'the ledger check failed'), { code: m.code });
      const code = corruptCode(failure);
      if (code !== undefined) return resolve({ code, reason: failure.message });
      reject(failure);
    });
    worker.once('error', reject);
  });
}

/** SQLite's code when `error` or one of its causes says the file is damaged (SQLITE_CORRUPT*, SQLITE_NOTADB). */
export function corruptCode(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) return code;
  }
  return undefined;
}

interface Salvage {
  maxSeq: Partial<Record<RecordKind, number>>;
  records: StoredRecord[];
  unreadable: string[];
}

/** Runs `fn`, or notes `what` as unreadable and returns undefined. */
function attempt<T>(unreadable: string[], what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    unreadable.push(`${what}: ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Rows of a table of a damaged file with seq > `after`: read in seq order up to the first unreadable page,
 * then from the highest seq down to the first unreadable page from that side.
 */
function readableRows(db: Database.Database, table: string, after: number, unreadable: string[]): LedgerRow[] {
  const rows = new Map<number, LedgerRow>();
  const columns = 'seq, boot_no, t_ms, tag, key_id, body';
  for (const order of ['ASC', 'DESC']) {
    try {
      for (const r of db.prepare(`SELECT ${columns} FROM ${table} WHERE seq > ? ORDER BY seq ${order}`).iterate(after) as IterableIterator<LedgerRow>) {
        if (rows.has(r.seq)) break; // the two passes met: everything was readable
        rows.set(r.seq, r);
      }
    } catch (error) {
      unreadable.push(`${table} (${order === 'ASC' ? 'after' : 'before'} the rows read): ${(error as Error).message}`);
    }
  }
  return [...rows.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Reads what is left of a damaged ledger (moved aside, opened read-only): the highest seq per kind it
 * shows, and the records the edge had not acknowledged with their boot id, device time and plaintext
 * body (sealed bodies are opened with `deviceKey`; one whose authentication fails is not taken).
 */
function salvage(path: string, deviceKey: DeviceKey | undefined): Salvage {
  const out: Salvage = { maxSeq: {}, records: [], unreadable: [] };
  const db = attempt(out.unreadable, 'database', () => new Database(path, { readonly: true, fileMustExist: true }));
  if (!db) return out;
  try {
    // A file that is not a database at all (header overwritten) answers nothing: said once.
    if (attempt(out.unreadable, 'database', () => db.prepare('SELECT COUNT(*) FROM sqlite_master').pluck().get()) === undefined) return out;
    const raise = (kind: RecordKind, seq: number | null | undefined) => {
      if (typeof seq === 'number' && seq > (out.maxSeq[kind] ?? 0)) out.maxSeq[kind] = seq;
    };
    const sequences = attempt(out.unreadable, 'sqlite_sequence', () => db.prepare('SELECT name, seq FROM sqlite_sequence').all() as { name: string; seq: number }[]) ?? [];
    const acked = new Map(attempt(out.unreadable, 'sync_state', () => db.prepare('SELECT kind, acked_up_to FROM sync_state').all() as { kind: string; acked_up_to: number }[])?.map((r) => [r.kind, r.acked_up_to]));
    const boots = new Map(attempt(out.unreadable, 'boots', () => db.prepare('SELECT boot_no, boot_id FROM boots').all() as { boot_no: number; boot_id: string }[])?.map((r) => [r.boot_no, r.boot_id]));
    const keyring = deviceKey ? attempt(out.unreadable, 'data_keys', () => new LedgerKeyring(db, deviceKey)) : undefined;
    for (const kind of RECORD_KINDS) {
      const table = LEDGER_TABLES[kind];
      raise(kind, sequences.find((s) => s.name === table)?.seq);
      raise(kind, acked.get(kind));
      raise(kind, attempt(out.unreadable, `${table} MAX(seq)`, () => db.prepare(`SELECT MAX(seq) FROM ${table}`).pluck().get() as number | null));
      // Without the watermark every readable row is taken: one the edge holds already is a replay there.
      const rows = readableRows(db, table, acked.get(kind) ?? 0, out.unreadable);
      let skipped = 0;
      for (const r of rows) {
        raise(kind, r.seq);
        const bootId = boots.get(r.boot_no);
        let body: Buffer | undefined = r.key_id === null ? r.body : undefined;
        if (r.key_id !== null && keyring) {
          try {
            body = keyring.openMany(r.key_id, [r.body], [recordAad(kind, r.seq)])[0];
          } catch {
            body = undefined;
          }
        }
        if (bootId === undefined || body === undefined) skipped += 1;
        else out.records.push({ kind, seq: r.seq, bootId, tMs: r.t_ms, tag: r.tag, body });
      }
      if (skipped > 0) out.unreadable.push(`${skipped} ${kind} records read but not restored (boot id unknown or body does not authenticate)`);
    }
  } finally {
    db.close();
  }
  return out;
}

/** A UTC time as `20261207T051500Z`, for folder names. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Opens the device ledger at `path`; when the file is damaged (`checkLedgerFile`, or the open fails with
 * SQLITE_CORRUPT / SQLITE_NOTADB) it is moved aside with its -wal and -shm into
 * `<dir>/ledger-damaged-<UTC>/` (never deleted), a fresh ledger is started whose seqs continue above
 * every seq the old one could have handed out (the seq reservation next to the ledger, and the highest
 * seq still readable in the damaged file), and the records the edge had not acknowledged that can still
 * be read are copied into it with their seqs. `damage` says what happened; the caller raises and audits it.
 * Other open failures (another device's ledger, a newer schema, a missing device key) are thrown.
 */
export function openLedgerRecovering(
  path: string,
  options: SqliteOutboxStoreOptions & { nowMs: number; /** Known damaged (a write failed with SQLITE_CORRUPT): moved aside without checking. */ damaged?: LedgerDamageCause },
): { store: SqliteOutboxStore; damage?: LedgerDamage } {
  const { nowMs, damaged, ...storeOptions } = options;
  const reservation = storeOptions.seqReservation ?? new SeqReservation(seqReservationPath(path));
  const opts: SqliteOutboxStoreOptions = { ...storeOptions, seqReservation: reservation };
  let cause = damaged && existsSync(path) ? damaged : checkLedgerFile(path);
  if (!cause) {
    try {
      return { store: new SqliteOutboxStore(path, opts) };
    } catch (error) {
      const code = corruptCode(error);
      if (code === undefined) throw error;
      cause = { code, reason: (error as Error).message };
    }
  }
  const dir = dirname(path);
  let movedTo = join(dir, `${DAMAGED_LEDGER_DIR_PREFIX}${stamp(nowMs)}`);
  for (let n = 2; existsSync(movedTo); n++) movedTo = join(dir, `${DAMAGED_LEDGER_DIR_PREFIX}${stamp(nowMs)}-${n}`);
  makeDirs(movedTo);
  const files: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    if (!existsSync(`${path}${suffix}`)) continue;
    renameSync(`${path}${suffix}`, join(movedTo, `${basename(path)}${suffix}`));
    files.push(`${basename(path)}${suffix}`);
  }
  const found = salvage(join(movedTo, basename(path)), storeOptions.encryption?.deviceKey);
  if (reservation.damaged !== undefined) found.unreadable.push(`seq reservation ${reservation.path}: ${reservation.damaged}`);
  reservation.raise(found.maxSeq);
  const store = new SqliteOutboxStore(path, opts);
  const seqFloor = Object.fromEntries(RECORD_KINDS.map((k) => [k, reservation.bound(k)])) as Record<RecordKind, number>;
  let restored: Partial<Record<RecordKind, number>> = {};
  try {
    restored = store.restore(found.records.filter((r) => r.seq <= seqFloor[r.kind]));
  } catch (error) {
    found.unreadable.push(`restoring ${found.records.length} records: ${(error as Error).message}`);
  }
  const damage: LedgerDamage = { ...cause, movedTo, files, seqFloor, readableMaxSeq: found.maxSeq, restored, unreadable: found.unreadable };
  try {
    writeFileSync(join(movedTo, DAMAGE_REPORT_FILE), `${JSON.stringify({ detectedAt: new Date(nowMs).toISOString(), ...damage }, null, 2)}\n`);
  } catch (error) {
    damage.unreadable.push(`${DAMAGE_REPORT_FILE} not written: ${(error as Error).message}`);
  }
  return { store, damage };
}
