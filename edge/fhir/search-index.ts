/**
 * The FHIR API's searches in SQL, from an index of the edge store that persists and is kept up to date.
 *
 * The index (`fhirIndexPath`: `edge-fhir-index.sqlite`, a sidecar file beside the store, written only by the
 * API's worker) holds, for every Observation, the fields a search looks at (id, subject, effective instants,
 * codings, stored once per distinct set), the locator of its record (`records.id`, or `conflicts.id` for an
 * imported conflict record) and its place in the export (`ord`, a byte string that sorts as the export does:
 * `clinicalOrd`, `waveformOrd`); and what the Devices, Patients and DiagnosticReports are made from (per
 * device, sensor, model and session). A search is a COUNT and a page (`ORDER BY ord LIMIT/OFFSET`) in SQL,
 * and only the rows of the page are read from the store and mapped to FHIR (`observationReader`); a read by id
 * is an index lookup and one row. Devices, Patients and DiagnosticReports are made from the index on demand.
 *
 * `refresh()` (at the start, and before each request: `query-worker.ts`) reads only what the store gained
 * since the index's watermark: rows of `records` above the highest `records.id` indexed (the store only
 * inserts, and SQLite hands out rowids in commit order, so nothing can appear below the watermark later), and
 * conflict records an operator imported since (`conflict_resolutions` only grows). A session that gained an
 * ECG finding, alert or chunk gets its waveform excerpts chosen again (`waveformPicker`, as the export does).
 * The index and its watermark change in one transaction. It is rebuilt from the whole store only when it is
 * missing, was made under another version (`FHIR_INDEX_VERSION`, `FHIR_MAPPING_VERSION`, the export options),
 * is unreadable (corrupt: rebuilt, reported once through `onEvent`), or belongs to another store (the store
 * file was replaced, or the row at the watermark is not the one indexed: a store restored from a backup), or
 * when a page names a row the store no longer holds (`FhirIndexError`).
 *
 * The answers are those `answerFromResources` gives on the whole export (same matches, order, `total`,
 * links): `test/fhir/search-index.test.ts` compares them on a real store, built at once and after each of
 * several stages of ingest and reopenings of the kept file.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, rmSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { MedgeError } from '../../device-sdk/errors.js';
import type { Alert } from '../../device-sdk/records.js';
import { hasTable } from '../edge-store.js';
import {
  type EcgMoment,
  type ExportOptions,
  type ExportRow,
  locatorOf,
  observationReader,
  type RecordLocator,
  toRecord,
  visitClinicalRow,
  waveformPicker,
} from './export.js';
import { deviceResource, FHIR_MAPPING_VERSION, modelResource, type ObservationSearchFields, patientResource, type Resource, searchFieldsOf, sessionReport, waveformObservation } from './mapping.js';
import {
  codeTokens,
  dateError,
  dateParam,
  type FhirAnswer,
  PAGING_PARAMETERS,
  patientReference,
  readAnswer,
  resourcePath,
  search,
  searchAnswer,
  unsupportedParameterError,
} from './query.js';

/** Version of the index's tables and of how they are filled: an index of another version is rebuilt. */
export const FHIR_INDEX_VERSION = 1;

/** The index file of an edge data directory: beside the store, never inside it. */
export const fhirIndexPath = (dataDir: string): string => join(dataDir, 'edge-fhir-index.sqlite');

/** Why the index was built from the whole store. */
export type FhirIndexRebuildReason = 'missing' | 'version' | 'store-replaced' | 'corrupt' | 'row-missing' | 'unwritable' | 'disk-full' | 'locked';

/**
 * How long a write to the kept index file waits for a lock another connection holds (another API process on the
 * same data directory, a backup tool) before the index moves to memory ('locked'): short enough that the build in
 * memory still answers within the API's `answerTimeoutMs` (10 s).
 */
export const FHIR_INDEX_BUSY_TIMEOUT_MS = 3000;

/** Below this many bytes free on the index file's file system an I/O error is taken for a full disk. */
const FULL_DISK_FREE_BYTES = 1024 * 1024;

/**
 * Why the kept index file at `path` cannot be written: the disk is full, or another connection holds it locked.
 * SQLite says SQLITE_FULL for ENOSPC on a write, but an I/O error (SQLITE_IOERR_SHMSIZE: the -shm file of a new
 * connection cannot be made; QA re-check: a disk with 0 bytes free gave 500s) for ENOSPC elsewhere, so an I/O error
 * with less than `FULL_DISK_FREE_BYTES` free counts as a full disk too.
 */
function unusableFile(error: unknown, path: string): 'disk-full' | 'locked' | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_FULL') return 'disk-full';
  if (code.startsWith('SQLITE_BUSY')) return 'locked';
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') {
    try {
      const fs = statfsSync(dirname(path));
      if (fs.bavail * fs.bsize < FULL_DISK_FREE_BYTES) return 'disk-full';
    } catch {
      // The directory cannot be looked at: not known to be a full disk.
    }
  }
  return undefined;
}

/** What the index reports for the log: a rebuild from the whole store, and why (`detail`: the error, if any). */
export interface FhirIndexEvent {
  kind: 'rebuilt';
  reason: FhirIndexRebuildReason;
  detail?: string;
}

export interface FhirIndexSettings {
  /** The index file (`fhirIndexPath`); undefined: a private temporary database, built at once and not kept. */
  path?: string;
  /** Told once per rebuild of a kept index (the API logs it). */
  onEvent?: (event: FhirIndexEvent) => void;
}

/** What one `refresh()` did. */
export interface FhirIndexRefresh {
  /** Set when the index was built from the whole store, with why. */
  rebuilt?: FhirIndexRebuildReason;
  /** Rows of `records` read from the store. */
  recordsRead: number;
  /** Imported conflict records read from the store. */
  importedRead: number;
  /** Sessions whose waveform excerpts were chosen again. */
  sessionsExcerpted: number;
}

/** The index names a record the store no longer holds (`reason: 'row-missing'`): it must be rebuilt. */
export class FhirIndexError extends MedgeError {
  readonly reason: FhirIndexRebuildReason;
  readonly at: RecordLocator;
  constructor(reason: FhirIndexRebuildReason, at: RecordLocator, message: string) {
    super('fhir-index', message);
    this.reason = reason;
    this.at = at;
  }
}

/** Whether `error` is SQLite saying a database file is damaged or is not a database. */
export function isCorruptionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

// Order-preserving byte strings: `ord` compares (memcmp, as SQLite compares BLOBs) as the export's
// `ORDER BY device_id, t_ms, kind, seq, body_sha256` compares the rows (text by UTF-8 bytes, numbers by value,
// NULL first).

/** Text: its UTF-8 bytes, 0x00 escaped as 00 FF, ended by 00 01 (so a prefix sorts first). */
function textOrd(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (!bytes.includes(0)) return Buffer.concat([bytes, TEXT_END]);
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 0) out.push(0, 0xff);
    else out.push(b);
  }
  out.push(0, 1);
  return Buffer.from(out);
}

const TEXT_END = Buffer.of(0, 1);

/** Writes a number at `at` of `b` as 8 bytes: its IEEE 754 bits, sign flipped (positive) or all flipped (negative), big-endian. */
function writeNumberOrd(b: Buffer, n: number, at: number): void {
  b.writeDoubleBE(n === 0 ? 0 : n, at);
  if ((b[at] as number) & 0x80) for (let i = at; i < at + 8; i++) b[i] = ~(b[i] as number) & 0xff;
  else b[at] = (b[at] as number) ^ 0x80;
}

function numberOrd(n: number): Buffer {
  const b = Buffer.alloc(8);
  writeNumberOrd(b, n, 0);
  return b;
}

/** Part 0 and a device id's `textOrd`, by device id (every row of a device starts with it). */
const devicePrefixes = new Map<string, Buffer>();

function devicePrefix(deviceId: string): Buffer {
  let prefix = devicePrefixes.get(deviceId);
  if (prefix === undefined) {
    if (devicePrefixes.size >= 10_000) devicePrefixes.clear();
    prefix = Buffer.concat([Buffer.of(0), textOrd(deviceId)]);
    devicePrefixes.set(deviceId, prefix);
  }
  return prefix;
}

/**
 * The export place of a clinical row's Observation (or alert, or moment): part 0, then the export's sort
 * columns; for an imported conflict record its id last, so that two rows never share one.
 */
export function clinicalOrd(row: ExportRow): Buffer {
  const kind = CLINICAL_KIND_ORD[row.kind];
  if (kind === undefined) throw new TypeError(`not a clinical record kind: ${row.kind}`);
  const prefix = devicePrefix(row.device_id);
  const b = Buffer.allocUnsafe(prefix.length + 18);
  prefix.copy(b, 0);
  writeNumberOrd(b, row.t_ms, prefix.length);
  b[prefix.length + 8] = kind;
  writeNumberOrd(b, row.seq, prefix.length + 9);
  b[prefix.length + 17] = 0;
  // records are unique by (device, kind, seq); an imported conflict record shares them with the stored one.
  if (row.body_sha256 === null) return b;
  b[prefix.length + 17] = 1;
  return Buffer.concat([b, textOrd(row.body_sha256), numberOrd(row.row_id)]);
}

/** The clinical kinds as one byte each, in the order of their names (the export sorts by `kind`). */
const CLINICAL_KIND_ORD: Readonly<Record<string, number>> = Object.freeze({ alert: 1, finding: 2, reading: 3 });

/**
 * The export place of a waveform excerpt: part 1 (after every clinical Observation), then its session's
 * place among the sessions with ECG (the place of the session's first ECG moment), then its place in the
 * session's excerpts.
 */
export function waveformOrd(sessionEcgOrd: Buffer, position: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(position);
  return Buffer.concat([Buffer.of(1), sessionEcgOrd, p]);
}

const WAVEFORM_PART = Buffer.of(1);

const SCHEMA = `
  CREATE TABLE fhir_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE fhir_observation (ord BLOB PRIMARY KEY, id TEXT NOT NULL, subject TEXT, eff_lo INTEGER, eff_hi INTEGER, code_set INTEGER NOT NULL,
    source TEXT NOT NULL, row_id INTEGER NOT NULL, session INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE fhir_code_set (code_set INTEGER NOT NULL, system TEXT, code TEXT NOT NULL);
  CREATE TABLE fhir_code_set_key (key TEXT PRIMARY KEY, code_set INTEGER NOT NULL);
  CREATE INDEX fhir_code_set_code ON fhir_code_set (code, system);
  CREATE TABLE fhir_session (session INTEGER PRIMARY KEY, device_id TEXT NOT NULL, boot_id TEXT NOT NULL, site TEXT NOT NULL, first_ord BLOB NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, ecg_finding INTEGER NOT NULL, waveforms INTEGER NOT NULL, UNIQUE (device_id, boot_id));
  CREATE TABLE fhir_alert (session INTEGER NOT NULL, ord BLOB NOT NULL, severity INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (session, ord)) WITHOUT ROWID;
  CREATE TABLE fhir_moment (session INTEGER NOT NULL, ord BLOB NOT NULL, t REAL NOT NULL, rank INTEGER NOT NULL, PRIMARY KEY (session, ord)) WITHOUT ROWID;
  CREATE TABLE fhir_device (device_id TEXT PRIMARY KEY, site TEXT NOT NULL, first_ord BLOB NOT NULL, model TEXT, model_ord BLOB, firmware TEXT, firmware_ord BLOB);
  CREATE TABLE fhir_sensor (device_id TEXT NOT NULL, sensor TEXT NOT NULL, first_ord BLOB NOT NULL, PRIMARY KEY (device_id, sensor));
  CREATE TABLE fhir_model (ref TEXT PRIMARY KEY, model_id TEXT NOT NULL, sha256 TEXT NOT NULL, first_ord BLOB NOT NULL);
  CREATE TABLE fhir_imported (conflict_id INTEGER PRIMARY KEY);`;

/** The Observation indexes, dropped for a build from the whole store and made again after it (faster than kept up row by row). */
const OBSERVATION_INDEXES = `
  CREATE INDEX IF NOT EXISTS fhir_observation_id ON fhir_observation (id);
  CREATE INDEX IF NOT EXISTS fhir_observation_subject ON fhir_observation (subject, ord);
  CREATE INDEX IF NOT EXISTS fhir_observation_date ON fhir_observation (eff_lo, eff_hi);`;
const DROP_OBSERVATION_INDEXES = `
  DROP INDEX IF EXISTS fhir_observation_id; DROP INDEX IF EXISTS fhir_observation_subject;
  DROP INDEX IF EXISTS fhir_observation_date;`;

/** A WHERE clause over `fhir_observation` and its arguments. */
interface Where {
  sql: string;
  args: (string | number)[];
}

/** SQL of a `date` condition: the same comparisons as `matchesDate` on (eff_lo, eff_hi). */
function dateWhere(value: string): Where | undefined {
  const { prefix, range } = dateParam(value);
  if (!range) return undefined;
  const [lo, hi] = range;
  switch (prefix) {
    case 'eq':
      return { sql: 'eff_lo >= ? AND eff_hi < ?', args: [lo, hi] };
    case 'ne':
      return { sql: 'NOT coalesce(eff_lo >= ? AND eff_hi < ?, 0)', args: [lo, hi] };
    case 'gt':
      return { sql: 'eff_hi >= ?', args: [hi] };
    case 'ge':
      return { sql: 'eff_hi >= ?', args: [lo] };
    case 'lt':
      return { sql: 'eff_lo < ?', args: [lo] };
    case 'le':
      return { sql: 'eff_lo < ?', args: [hi] };
  }
}

/** The row of `records` at the watermark, as the index remembers it (a store restored from a backup holds another row there). */
const watermarkMark = (row: { device_id: string; kind: string; seq: number; boot_id: string; t_ms: number } | undefined): string =>
  row === undefined ? '' : JSON.stringify([row.device_id, row.kind, row.seq, row.boot_id, row.t_ms]);

/** The identity of the store file (a file put in its place, e.g. a restored backup, has another). */
function storeFileId(store: Database.Database): string {
  try {
    const s = statSync(store.name);
    return `${s.dev}:${s.ino}`;
  } catch {
    return '';
  }
}

interface SessionAgg {
  session: number;
  site: string;
  firstOrd: Buffer;
  startMs: number;
  endMs: number;
  ecgFinding: boolean;
}

interface DeviceAgg {
  site: string;
  firstOrd: Buffer;
  model: string | null;
  modelOrd: Buffer | null;
  firmware: string | null;
  firmwareOrd: Buffer | null;
  sensors: Map<string, Buffer>;
  known: boolean;
}

const earlier = (a: Buffer, b: Buffer | null): boolean => b === null || Buffer.compare(a, b) < 0;

export class FhirSearchIndex {
  private readonly store: Database.Database;
  private readonly options: ExportOptions;
  private readonly settings: FhirIndexSettings;
  private readonly read: (at: RecordLocator) => Resource | undefined;
  /** What the index was made under; another stamp in a kept index means a rebuild. */
  private readonly stamp: string;
  private index!: Database.Database;
  /** Set when the index was (re)made empty: the next refresh reads the whole store. */
  private pendingRebuild: FhirIndexRebuildReason | undefined;
  /** Set once the kept file could not be written (full disk, held lock): the index lives in memory from then on (`toMemory`). */
  private inMemory = false;
  /** `PRAGMA data_version` of the store connection at the last refresh: unchanged means no other connection committed since. */
  private seenDataVersion: number | undefined;
  /** The frame (Devices, Patients, DiagnosticReports) made from the index, and the index state it was made at. */
  private frame: { at: string; devices?: Resource[]; patients?: Resource[]; reports?: Resource[] } = { at: '' };
  private changes = 0;
  /** What the last `refresh()` did. */
  lastRefresh: FhirIndexRefresh;

  /** Opens the index at `settings.path` (or a private temporary one) and brings it up to date with `store` (an open edge database). */
  constructor(store: Database.Database, options: ExportOptions = {}, settings: FhirIndexSettings = {}) {
    this.store = store;
    this.options = options;
    this.settings = settings;
    this.read = observationReader(store);
    this.stamp = JSON.stringify({
      index: FHIR_INDEX_VERSION,
      mapping: FHIR_MAPPING_VERSION,
      sinceMs: options.sinceMs ?? 0,
      waveformWindowMs: options.waveformWindowMs ?? 5000,
      maxWaveformSecondsPerSession: options.maxWaveformSecondsPerSession ?? 60,
    });
    this.open();
    this.lastRefresh = this.refresh();
  }

  /** Observations indexed. */
  get observations(): number {
    return (this.index.prepare('SELECT count(*) AS n FROM fhir_observation').get() as { n: number }).n;
  }

  /** Frees the index (a kept one stays on disk; a temporary one goes). */
  close(): void {
    this.index.close();
  }

  private meta(key: string): string | undefined {
    return (this.index.prepare('SELECT value FROM fhir_meta WHERE key = ?').pluck().get(key) as string | undefined) ?? undefined;
  }

  private setMeta(key: string, value: string | number): void {
    this.index.prepare('INSERT INTO fhir_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, String(value));
  }

  /** Opens (or makes) the index file and checks that it belongs to this version and store; an unusable one is made again. */
  private open(): void {
    const { path } = this.settings;
    if (path === undefined) return this.fresh(undefined, 'missing');
    const existed = existsSync(path);
    try {
      this.index = new Database(path);
      this.index.pragma(`busy_timeout = ${FHIR_INDEX_BUSY_TIMEOUT_MS}`);
      // WAL, as `seal` left it. Damage is found here or at a query, and the file is made again.
      this.index.pragma('journal_mode = WAL');
      this.index.pragma('synchronous = NORMAL');
      const tables = this.index.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'fhir_meta'").pluck().get() as number;
      const stamp = tables === 1 ? this.meta('stamp') : undefined;
      if (stamp === undefined) return this.fresh(path, existed ? 'corrupt' : 'missing', existed ? 'the index file holds no index' : undefined);
      if (stamp !== this.stamp) return this.fresh(path, 'version', `made as ${stamp}`);
      if (this.meta('store_file') !== storeFileId(this.store)) return this.fresh(path, 'store-replaced', 'the store file is not the one indexed');
    } catch (error) {
      const unusable = unusableFile(error, path);
      if (unusable !== undefined) return this.toMemory(unusable, error as Error, path);
      this.index?.close();
      if (isCorruptionError(error)) return this.fresh(path, 'corrupt', (error as Error).message);
      // The data directory is not writable here: a private index, as before the index was kept.
      return this.fresh(undefined, 'unwritable', (error as Error).message);
    }
  }

  /** Makes an empty index (the file removed first) to be filled from the whole store at the next refresh. */
  private fresh(path: string | undefined, reason: FhirIndexRebuildReason, detail?: string, announce = true): void {
    if (this.index?.open) this.index.close();
    if (path !== undefined) for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    // '': private, on disk (the temporary directory) only when it outgrows its cache; ':memory:' after a full disk.
    this.index = new Database(path ?? (this.inMemory ? ':memory:' : ''));
    // The index holds device, site and pseudonymous patient ids, times and alert texts: the store's permissions,
    // not the umask's (QA re-check: 0644 beside a 0600 store). SQLite gives its -wal and -shm the same.
    if (path !== undefined) {
      try {
        chmodSync(path, statSync(this.store.name).mode & 0o777);
      } catch {
        // A store without a file of its own (in memory): nothing to follow.
      }
    }
    // The build from the whole store is written without a journal or fsyncs (a new file: nothing to roll back
    // to); the file is stamped only after it is complete and on disk (`seal`), so a build cut short leaves a
    // file without a stamp, which the next opening makes again.
    this.index.pragma('journal_mode = OFF');
    this.index.pragma('synchronous = OFF');
    if (path !== undefined) this.index.pragma(`busy_timeout = ${FHIR_INDEX_BUSY_TIMEOUT_MS}`);
    this.index.exec(`BEGIN; ${SCHEMA} ${OBSERVATION_INDEXES} COMMIT;`);
    this.setMeta('records_max_id', 0);
    this.setMeta('records_mark', '');
    this.setMeta('resolutions', 0);
    this.pendingRebuild = reason;
    this.seenDataVersion = undefined;
    this.frame = { at: '' };
    if (announce && (path !== undefined || reason === 'unwritable' || this.inMemory)) this.settings.onEvent?.({ kind: 'rebuilt', reason, ...(detail === undefined ? {} : { detail }) });
  }

  /**
   * Builds the index again from the whole store (the file removed first): for a page that named a row the
   * store no longer holds, or an index found damaged while answering.
   */
  rebuild(reason: FhirIndexRebuildReason, detail?: string): FhirIndexRefresh {
    this.fresh(this.keptPath, reason, detail);
    return (this.lastRefresh = this.refresh());
  }

  /** After a build from the whole store: the file synced to disk, then stamped, and from now on in WAL mode. */
  private seal(): void {
    const path = this.keptPath;
    if (path !== undefined) {
      const fd = openSync(path, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // WAL with synchronous=NORMAL: the small transaction of a refresh is not an fsync (24 ms per batch of
      // 10 readings with a rollback journal, 1 ms without); a crash may lose the last refreshes, never the
      // consistency of the index with its watermark.
      this.index.pragma('journal_mode = WAL');
      this.index.pragma('synchronous = NORMAL');
    }
    this.index.transaction(() => {
      this.setMeta('stamp', this.stamp);
      this.setMeta('store_file', storeFileId(this.store));
    })();
  }

  /** Whether SQLite finds the index file sound (`PRAGMA quick_check`): an error it gives is the store's when it does. */
  healthy(): boolean {
    try {
      return this.index.pragma('quick_check(1)', { simple: true }) === 'ok';
    } catch {
      return false;
    }
  }

  /** The kept index file, or undefined for a private one. */
  private get keptPath(): string | undefined {
    return this.settings.path !== undefined && this.index.name === this.settings.path ? this.settings.path : undefined;
  }

  /**
   * Brings the index up to date with the store: reads only what the store gained since the watermark (see the file
   * comment). When the kept file cannot be written (a full disk, a lock held longer than `FHIR_INDEX_BUSY_TIMEOUT_MS`)
   * the index moves to memory and is built there (`toMemory`), so requests are answered rather than failing.
   */
  refresh(): FhirIndexRefresh {
    const dataVersion = this.store.pragma('data_version', { simple: true }) as number;
    if (dataVersion === this.seenDataVersion && this.pendingRebuild === undefined) return (this.lastRefresh = { recordsRead: 0, importedRead: 0, sessionsExcerpted: 0 });
    let result: FhirIndexRefresh;
    try {
      result = this.upToDate();
    } catch (error) {
      const path = this.keptPath;
      const unusable = path !== undefined ? unusableFile(error, path) : undefined;
      if (unusable === undefined || path === undefined) throw error;
      this.toMemory(unusable, error as Error, path);
      result = this.upToDate();
    }
    this.seenDataVersion = dataVersion;
    if (result.rebuilt !== undefined || result.recordsRead > 0 || result.importedRead > 0) this.changes += 1;
    return (this.lastRefresh = result);
  }

  /** `refresh` on the index as it is: a damaged index or another store's is made again from the whole store. */
  private upToDate(): FhirIndexRefresh {
    const catchUp = () => {
      try {
        return this.store.transaction(() => this.index.transaction(() => this.catchUp()).immediate())();
      } catch (error) {
        // A build from the whole store has no journal to roll back with: start it again from an empty file
        // (not announced again: the build that failed was).
        if (this.pendingRebuild !== undefined) {
          try {
            this.fresh(this.keptPath, this.pendingRebuild, undefined, false);
          } catch {
            // The file cannot even be made again (a full disk): the error of the build is the one to handle.
          }
        }
        throw error;
      }
    };
    let result: FhirIndexRefresh | 'store-replaced';
    try {
      result = catchUp();
    } catch (error) {
      if (!isCorruptionError(error) || this.healthy()) throw error;
      this.fresh(this.keptPath, 'corrupt', (error as Error).message);
      result = catchUp();
    }
    if (result === 'store-replaced') {
      this.fresh(this.keptPath, 'store-replaced', 'the row at the watermark is not the one indexed');
      result = catchUp();
      if (result === 'store-replaced') throw new Error('the FHIR index could not be rebuilt: the store changed under it');
    }
    if (result.rebuilt !== undefined) this.seal();
    return result;
  }

  /**
   * The kept file cannot be written: the index is made again in memory and kept there while this index is open (the
   * API's worker: it ends after `idleMs` without requests, and the next one tries the file again). On a full disk
   * the file is removed, so that the store, which needs the space more, gets it back; a locked file is left to its
   * holder. Before, each request was answered 500 (full disk) or 503 (held lock) until the file could be written.
   */
  private toMemory(reason: 'disk-full' | 'locked', error: Error, path: string): void {
    this.inMemory = true;
    if (this.index?.open) this.index.close();
    if (reason === 'disk-full') for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    this.fresh(undefined, reason, `${error.message}; answering from an index in memory until the query worker starts again`);
  }

  /** One refresh, inside a read transaction of the store and a write transaction of the index. */
  private catchUp(): FhirIndexRefresh | 'store-replaced' {
    const watermark = Number(this.meta('records_max_id') ?? 0);
    const markOf = this.store.prepare('SELECT device_id, kind, seq, boot_id, t_ms FROM records WHERE id = ?');
    if (watermark > 0 && watermarkMark(markOf.get(watermark) as Parameters<typeof watermarkMark>[0]) !== this.meta('records_mark')) return 'store-replaced';
    const rebuilt = this.pendingRebuild;
    const whole = watermark === 0;
    if (whole) this.index.exec(DROP_OBSERVATION_INDEXES);
    const batch = new IndexBatch(this.index, this.store, this.options, whole);

    const maxId = (this.store.prepare('SELECT max(id) FROM records').pluck().get() as number | null) ?? 0;
    let recordsRead = 0;
    const rows = this.store.prepare('SELECT device_id, kind, seq, site, boot_id, t_ms, body, NULL AS body_sha256, id AS row_id FROM records WHERE id > ? AND id <= ? ORDER BY id');
    for (const row of rows.iterate(watermark, maxId) as Iterable<ExportRow>) {
      recordsRead += 1;
      batch.add(row);
    }

    let importedRead = 0;
    let resolutions = Number(this.meta('resolutions') ?? 0);
    if (hasTable(this.store, 'conflict_resolutions')) {
      const count = this.store.prepare('SELECT count(*) FROM conflict_resolutions').pluck().get() as number;
      // Settlements only grow (triggers refuse UPDATE and DELETE): fewer is a store restored from a backup (QA re-check).
      if (count < resolutions) return 'store-replaced';
      if (count !== resolutions) {
        const known = new Set(this.index.prepare('SELECT conflict_id FROM fhir_imported').pluck().all() as number[]);
        const imported = this.store.prepare(`SELECT c.device_id, c.kind, c.seq, c.site, c.boot_id, c.t_ms, c.body, c.body_sha256, c.id AS row_id FROM conflicts c
          JOIN conflict_resolutions r ON r.conflict_id = c.id AND r.choice = 'import' ORDER BY c.id`);
        const mark = this.index.prepare('INSERT INTO fhir_imported (conflict_id) VALUES (?)');
        for (const row of imported.iterate() as Iterable<ExportRow>) {
          if (known.has(row.row_id)) continue;
          importedRead += 1;
          mark.run(row.row_id);
          batch.add(row);
        }
        resolutions = count;
      }
    }
    const sessionsExcerpted = batch.finish();
    // ANALYZE on a sample (analysis_limit): the planner needs the shape of the indexes, not exact counts.
    if (whole) this.index.exec(`${OBSERVATION_INDEXES} PRAGMA analysis_limit = 1000; ANALYZE;`);
    this.setMeta('records_max_id', maxId);
    this.setMeta('records_mark', watermarkMark(markOf.get(maxId) as Parameters<typeof watermarkMark>[0]));
    this.setMeta('resolutions', resolutions);
    this.pendingRebuild = undefined;
    return { ...(rebuilt === undefined ? {} : { rebuilt }), recordsRead, importedRead, sessionsExcerpted };
  }

  /** The Devices (then models), Patients or DiagnosticReports, in export order, made from the index (kept until it changes). */
  private others(type: string): Resource[] {
    const at = `${this.changes}:${this.index.pragma('data_version', { simple: true }) as number}`;
    if (this.frame.at !== at) this.frame = { at };
    if (type === 'DiagnosticReport') return (this.frame.reports ??= this.reports());
    if (this.frame.devices === undefined || this.frame.patients === undefined) {
      const devices = this.index.prepare('SELECT device_id, site, model, firmware FROM fhir_device ORDER BY first_ord').all() as { device_id: string; site: string; model: string | null; firmware: string | null }[];
      const sensors = new Map<string, string[]>();
      for (const { device_id, sensor } of this.index.prepare('SELECT device_id, sensor FROM fhir_sensor ORDER BY device_id, first_ord').all() as { device_id: string; sensor: string }[]) {
        const list = sensors.get(device_id);
        if (list === undefined) sensors.set(device_id, [sensor]);
        else list.push(sensor);
      }
      const models = this.index.prepare('SELECT model_id, sha256 FROM fhir_model ORDER BY first_ord').all() as { model_id: string; sha256: string }[];
      this.frame.devices = [
        ...devices.map((d) =>
          deviceResource({ deviceId: d.device_id, site: d.site, ...(d.model === null ? {} : { model: d.model }), ...(d.firmware === null ? {} : { firmwareVersion: d.firmware }), sensors: sensors.get(d.device_id) ?? [] }),
        ),
        ...models.map((m) => modelResource(m.model_id, m.sha256)),
      ];
      const patients = new Map<string, Resource>();
      for (const d of devices) {
        const p = patientResource(d.site, d.device_id);
        if (!patients.has(p.id)) patients.set(p.id, p);
      }
      this.frame.patients = [...patients.values()];
    }
    return type === 'Patient' ? this.frame.patients : this.frame.devices;
  }

  /** The DiagnosticReports: one per session with Observations or alerts, each naming all of its Observations (one pass over the index in export order). */
  private reports(): Resource[] {
    const now = this.options.now ?? Date.now();
    const observationIds = new Map<number, string[]>();
    for (const { session, id } of this.index.prepare('SELECT session, id FROM fhir_observation ORDER BY ord').iterate() as Iterable<{ session: number; id: string }>) {
      const ids = observationIds.get(session);
      if (ids === undefined) observationIds.set(session, [id]);
      else ids.push(id);
    }
    const alerts = this.index.prepare('SELECT severity, message FROM fhir_alert WHERE session = ? ORDER BY ord');
    const sessions = this.index.prepare('SELECT session, device_id, boot_id, site, start_ms, end_ms, ecg_finding, waveforms FROM fhir_session ORDER BY first_ord').all() as {
      session: number;
      device_id: string;
      boot_id: string;
      site: string;
      start_ms: number;
      end_ms: number;
      ecg_finding: number;
      waveforms: number;
    }[];
    const reports: Resource[] = [];
    for (const s of sessions) {
      const ids = observationIds.get(s.session) ?? [];
      const sessionAlerts = alerts.all(s.session) as Pick<Alert, 'severity' | 'message'>[];
      if (ids.length === 0 && sessionAlerts.length === 0) continue;
      reports.push(
        sessionReport(
          { deviceId: s.device_id, site: s.site, bootId: s.boot_id, startMs: s.start_ms, endMs: s.end_ms, observationIds: ids, alerts: sessionAlerts, hasEcg: s.ecg_finding === 1 || s.waveforms > 0 },
          now,
        ),
      );
    }
    return reports;
  }

  /**
   * The Observation `id` of an indexed record, read from the store; `FhirIndexError` when the store no longer holds
   * it there, or holds another record in that row (QA re-check: a store restored from a backup, then resent the
   * records it had lost in another order, reused the row ids below the watermark: reads answered with another
   * patient's Observation).
   */
  private observationAt(at: RecordLocator & { id: string }): Resource {
    const found = this.read(at);
    if (found === undefined) throw new FhirIndexError('row-missing', at, `the store no longer holds the record of an indexed Observation (${at.table} ${at.rowId})`);
    if (found.id !== at.id) throw new FhirIndexError('row-missing', at, `the store holds another record where the index has Observation ${at.id} (${at.table} ${at.rowId}): the store was replaced or restored`);
    return found;
  }

  /** The answer to `GET url`, a read or search-type the HTTP side let through (`answerWithoutResources`), from the index as of the last refresh. */
  answer(url: URL): FhirAnswer {
    const { type, id } = resourcePath(url);
    if (type !== 'Observation') {
      const others = this.others(type);
      if (id !== undefined) return readAnswer(type, id, others.find((r) => r.resourceType === type && r.id === id));
      const matches = search(others, type, url.searchParams);
      return searchAnswer(url, 'error' in matches ? matches : { total: matches.length, page: (offset, size) => matches.slice(offset, offset + size) });
    }
    if (id !== undefined) {
      const at = this.index.prepare('SELECT source AS "table", row_id AS rowId, id FROM fhir_observation WHERE id = ? ORDER BY ord LIMIT 1').get(id) as (RecordLocator & { id: string }) | undefined;
      return readAnswer(type, id, at === undefined ? undefined : this.observationAt(at));
    }
    const where = this.where(url.searchParams);
    if ('error' in where) return searchAnswer(url, where);
    const total = (this.index.prepare(`SELECT count(*) AS n FROM fhir_observation WHERE ${where.sql}`).get(...where.args) as { n: number }).n;
    const page = (offset: number, size: number): Resource[] =>
      (this.index.prepare(`SELECT source AS "table", row_id AS rowId, id FROM fhir_observation WHERE ${where.sql} ORDER BY ord LIMIT ? OFFSET ?`).all(...where.args, size, offset) as (RecordLocator & { id: string })[]).map((at) =>
        this.observationAt(at),
      );
    return searchAnswer(url, { total, page });
  }

  /** The search parameters as one WHERE clause (AND of each), or the error `search()` gives for them. */
  where(params: URLSearchParams): Where | { error: string } {
    const parts: Where[] = [];
    for (const [name, value] of params) {
      if (PAGING_PARAMETERS.has(name)) continue;
      if (name === 'patient' || name === 'subject') parts.push({ sql: 'subject = ?', args: [patientReference(value)] });
      else if (name === 'code') {
        const tokens = codeTokens(value);
        const any = tokens.map((t) => (t.system === undefined ? 'code = ?' : '(code = ? AND system = ?)')).join(' OR ');
        parts.push({ sql: `code_set IN (SELECT code_set FROM fhir_code_set WHERE ${any})`, args: tokens.flatMap((t) => (t.system === undefined ? [t.code] : [t.code, t.system])) });
      } else if (name === 'date') {
        const date = dateWhere(value);
        if (!date) return { error: dateError(value) };
        parts.push(date);
      } else if (name === '_id') {
        const ids = value.split(',');
        parts.push({ sql: `id IN (${ids.map(() => '?').join(', ')})`, args: ids });
      } else return { error: unsupportedParameterError(name, 'Observation') };
    }
    return parts.length === 0 ? { sql: '1', args: [] } : { sql: parts.map((p) => `(${p.sql})`).join(' AND '), args: parts.flatMap((p) => p.args) };
  }
}

/**
 * The rows of one refresh going into the index: Observations, alerts and ECG moments as they come; what
 * sessions, devices, sensors and models gain is gathered in memory and written once at `finish()`, which
 * also chooses the waveform excerpts again for the sessions that gained ECG moments or chunks.
 */
class IndexBatch {
  private readonly sessions = new Map<string, SessionAgg>();
  private readonly devices = new Map<string, DeviceAgg>();
  private readonly models = new Map<string, { modelId: string; sha256: string; ord: Buffer }>();
  /** Sessions (by device and boot) that gained an ECG moment or a chunk. */
  private readonly excerpt = new Set<string>();
  private readonly codeSets = new Map<string, number>();
  private readonly since: number;
  private readonly addObservation: Database.Statement;
  private readonly addAlert: Database.Statement;
  private readonly addMoment: Database.Statement;
  private readonly addCode: Database.Statement;
  private readonly addCodeSet: Database.Statement;
  private nextCodeSet: number;

  constructor(
    private readonly index: Database.Database,
    private readonly store: Database.Database,
    private readonly options: ExportOptions,
    /** The index was empty: no excerpts to drop (and no index on sessions to find them with). */
    private readonly whole: boolean,
  ) {
    this.since = options.sinceMs ?? 0;
    this.addObservation = index.prepare('INSERT INTO fhir_observation (ord, id, subject, eff_lo, eff_hi, code_set, source, row_id, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.addAlert = index.prepare('INSERT INTO fhir_alert (session, ord, severity, message) VALUES (?, ?, ?, ?)');
    this.addMoment = index.prepare('INSERT INTO fhir_moment (session, ord, t, rank) VALUES (?, ?, ?, ?)');
    this.addCode = index.prepare('INSERT INTO fhir_code_set (code_set, system, code) VALUES (?, ?, ?)');
    this.addCodeSet = index.prepare('INSERT INTO fhir_code_set_key (key, code_set) VALUES (?, ?)');
    for (const { key, code_set } of index.prepare('SELECT key, code_set FROM fhir_code_set_key').all() as { key: string; code_set: number }[]) this.codeSets.set(key, code_set);
    this.nextCodeSet = this.codeSets.size;
  }

  private codeSetOf(codings: { system?: string; code?: string }[]): number {
    const key = JSON.stringify(codings.map((c) => [c.system, c.code]));
    let id = this.codeSets.get(key);
    if (id === undefined) {
      id = this.nextCodeSet++;
      this.codeSets.set(key, id);
      this.addCodeSet.run(key, id);
      for (const c of codings) if (typeof c.code === 'string') this.addCode.run(id, c.system ?? null, c.code);
    }
    return id;
  }

  /** Writes an Observation's search fields. NaN (an unparsable instant) is stored as NULL: it fails every comparison, as in matchesDate. */
  observation(ord: Buffer, fields: ObservationSearchFields, at: RecordLocator, session: number): void {
    const instant = (t: number | undefined) => (t === undefined || Number.isNaN(t) ? null : t);
    this.addObservation.run(ord, fields.id, fields.subject ?? null, instant(fields.effective?.[0]), instant(fields.effective?.[1]), this.codeSetOf(fields.codings), at.table, at.rowId, session);
  }

  private sessionOf(row: ExportRow, ord: Buffer): SessionAgg {
    const key = `${row.device_id}\u0000${row.boot_id}`;
    let s = this.sessions.get(key);
    if (s === undefined) {
      this.index
        .prepare('INSERT INTO fhir_session (device_id, boot_id, site, first_ord, start_ms, end_ms, ecg_finding, waveforms) VALUES (?, ?, ?, ?, ?, ?, 0, 0) ON CONFLICT (device_id, boot_id) DO NOTHING')
        .run(row.device_id, row.boot_id, row.site, ord, row.t_ms, row.t_ms);
      const held = this.index.prepare('SELECT session, site, first_ord, start_ms, end_ms, ecg_finding FROM fhir_session WHERE device_id = ? AND boot_id = ?').get(row.device_id, row.boot_id) as {
        session: number;
        site: string;
        first_ord: Buffer;
        start_ms: number;
        end_ms: number;
        ecg_finding: number;
      };
      s = { session: held.session, site: held.site, firstOrd: held.first_ord, startMs: held.start_ms, endMs: held.end_ms, ecgFinding: held.ecg_finding === 1 };
      this.sessions.set(key, s);
    }
    if (Buffer.compare(ord, s.firstOrd) < 0) {
      s.firstOrd = ord;
      s.site = row.site;
    }
    s.startMs = Math.min(s.startMs, row.t_ms);
    s.endMs = Math.max(s.endMs, row.t_ms);
    return s;
  }

  private deviceOf(row: ExportRow, ord: Buffer): DeviceAgg {
    let d = this.devices.get(row.device_id);
    if (d === undefined) {
      const held = this.index.prepare('SELECT site, first_ord, model, model_ord, firmware, firmware_ord FROM fhir_device WHERE device_id = ?').get(row.device_id) as
        | { site: string; first_ord: Buffer; model: string | null; model_ord: Buffer | null; firmware: string | null; firmware_ord: Buffer | null }
        | undefined;
      d = held
        ? { site: held.site, firstOrd: held.first_ord, model: held.model, modelOrd: held.model_ord, firmware: held.firmware, firmwareOrd: held.firmware_ord, sensors: new Map(), known: true }
        : { site: row.site, firstOrd: ord, model: null, modelOrd: null, firmware: null, firmwareOrd: null, sensors: new Map(), known: false };
      if (held) for (const s of this.index.prepare('SELECT sensor, first_ord FROM fhir_sensor WHERE device_id = ?').all(row.device_id) as { sensor: string; first_ord: Buffer }[]) d.sensors.set(s.sensor, s.first_ord);
      this.devices.set(row.device_id, d);
    }
    if (Buffer.compare(ord, d.firstOrd) < 0) {
      d.firstOrd = ord;
      d.site = row.site;
    }
    return d;
  }

  /** A row of `records` or an imported conflict record, of any kind. */
  add(row: ExportRow): void {
    if (row.kind === 'chunk') {
      this.excerpt.add(`${row.device_id}\u0000${row.boot_id}`);
      return;
    }
    if ((row.kind !== 'reading' && row.kind !== 'finding' && row.kind !== 'alert') || row.t_ms < this.since) return;
    const ord = clinicalOrd(row);
    const d = this.deviceOf(row, ord);
    const s = this.sessionOf(row, ord);
    visitClinicalRow(row, {
      // The export keeps the last model and firmware named in export order.
      deviceInfo: (model, firmwareVersion) => {
        if (model !== undefined && (d.modelOrd === null || Buffer.compare(ord, d.modelOrd) > 0)) {
          d.model = model;
          d.modelOrd = ord;
        }
        if (firmwareVersion !== undefined && (d.firmwareOrd === null || Buffer.compare(ord, d.firmwareOrd) > 0)) {
          d.firmware = firmwareVersion;
          d.firmwareOrd = ord;
        }
      },
      sensor: (sensor) => {
        const held = d.sensors.get(sensor);
        if (held === undefined || earlier(ord, held)) d.sensors.set(sensor, ord);
      },
      observation: (obs) => this.observation(ord, obs.searchFields(), obs.at, s.session),
      model: (ref, modelId, sha256) => {
        const held = this.models.get(ref);
        if (held === undefined || earlier(ord, held.ord)) this.models.set(ref, { modelId, sha256, ord });
      },
      ecgMoment: (moment, fromFinding) => {
        if (fromFinding) s.ecgFinding = true;
        this.addMoment.run(s.session, ord, moment.t, moment.rank);
        this.excerpt.add(`${row.device_id}\u0000${row.boot_id}`);
      },
      alert: (a) => this.addAlert.run(s.session, ord, a.severity, a.message),
    });
  }

  /** Writes what sessions, devices, sensors and models gained, and the waveform excerpts of the sessions that need them again; returns how many sessions were excerpted. */
  finish(): number {
    const putSession = this.index.prepare('UPDATE fhir_session SET site = ?, first_ord = ?, start_ms = ?, end_ms = ?, ecg_finding = ? WHERE session = ?');
    for (const s of this.sessions.values()) putSession.run(s.site, s.firstOrd, s.startMs, s.endMs, s.ecgFinding ? 1 : 0, s.session);
    const putDevice = this.index.prepare(`INSERT INTO fhir_device (device_id, site, first_ord, model, model_ord, firmware, firmware_ord) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, first_ord = excluded.first_ord, model = excluded.model, model_ord = excluded.model_ord, firmware = excluded.firmware, firmware_ord = excluded.firmware_ord`);
    const putSensor = this.index.prepare('INSERT INTO fhir_sensor (device_id, sensor, first_ord) VALUES (?, ?, ?) ON CONFLICT (device_id, sensor) DO UPDATE SET first_ord = excluded.first_ord');
    for (const [deviceId, d] of this.devices) {
      putDevice.run(deviceId, d.site, d.firstOrd, d.model, d.modelOrd, d.firmware, d.firmwareOrd);
      for (const [sensor, ord] of d.sensors) putSensor.run(deviceId, sensor, ord);
    }
    const putModel = this.index.prepare(`INSERT INTO fhir_model (ref, model_id, sha256, first_ord) VALUES (?, ?, ?, ?)
      ON CONFLICT (ref) DO UPDATE SET model_id = excluded.model_id, sha256 = excluded.sha256, first_ord = excluded.first_ord WHERE excluded.first_ord < first_ord`);
    for (const [ref, m] of this.models) putModel.run(ref, m.modelId, m.sha256, m.ord);

    if (this.excerpt.size === 0) return 0;
    const waveforms = waveformPicker(this.store, this.options);
    const sessionRow = this.index.prepare('SELECT session FROM fhir_session WHERE device_id = ? AND boot_id = ?').pluck();
    const moments = this.index.prepare('SELECT ord, t, rank FROM fhir_moment WHERE session = ? ORDER BY ord');
    const dropExcerpts = this.index.prepare('DELETE FROM fhir_observation WHERE session = ? AND ord >= ?');
    const putCount = this.index.prepare('UPDATE fhir_session SET waveforms = ? WHERE session = ?');
    let excerpted = 0;
    for (const key of this.excerpt) {
      const [deviceId, bootId] = key.split('\u0000') as [string, string];
      const session = sessionRow.get(deviceId, bootId) as number | undefined;
      if (session === undefined) continue; // chunks of a session with no clinical row: nothing is excerpted around them
      const held = moments.all(session) as { ord: Buffer; t: number; rank: number }[];
      const first = held[0];
      if (first === undefined) continue; // no ECG moment: no excerpts
      excerpted += 1;
      if (!this.whole) dropExcerpts.run(session, WAVEFORM_PART);
      const picked = waveforms(deviceId, bootId, held.map(({ t, rank }): EcgMoment => ({ t, rank })));
      picked.forEach(({ row, chunk }, i) => {
        const obs = waveformObservation(toRecord(row, chunk));
        this.observation(waveformOrd(first.ord, i), searchFieldsOf(obs), locatorOf(row), session);
      });
      putCount.run(picked.length, session);
    }
    return excerpted;
  }
}
