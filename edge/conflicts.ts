/**
 * Operator review of seq conflicts: records kept in the edge store's `conflicts` table because their
 * (device, kind, seq) was already stored in `records` with another boot id, time or body (a re-imaged
 * SD card, a ledger restored from a copy, two boards with one device id; `edge-store.ts`).
 *
 * A conflict is settled once, with the operator's name and reason, as one of `CONFLICT_CHOICES`; the
 * settlement is a row of `conflict_resolutions` and neither record is ever deleted or changed:
 * - `keep-stored`: the record in `records` stands; the conflicting one stays archived in `conflicts`
 *   (a duplicate in effect, or judged invalid).
 * - `import`: the conflicting record is real data too. It stays in `conflicts` (the dedupe key of
 *   `records` is untouched, so ingest stays exactly-once) and upstream consumers read it next to the
 *   stored one (`importedRecordsSql`) under ids of its own (`conflictVariant`).
 *
 * Listings show a decoded summary of both records with structured fields only: never free text that
 * could carry identity (alert messages, finding evidence, reading context, quarantined bytes).
 */
import { existsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { MedgeError, StoreError } from '../device-sdk/errors.js';
import { decodeBody } from '../device-sdk/proto/index.js';
import type { RecordKind } from '../device-sdk/records.js';
import { sha256Hex } from '../device-sdk/security/signing.js';
import { MIGRATION_WAIT_MS } from '../device-sdk/store/migrations.js';
import { openDatabase, withReadOnlyDatabase } from '../device-sdk/store/sqlite-outbox-store.js';
import { EDGE_MIGRATIONS, hasTable, type RecordRow } from './edge-store.js';

export const CONFLICT_CHOICES = Object.freeze(['keep-stored', 'import'] as const);
export type ConflictChoice = (typeof CONFLICT_CHOICES)[number];

export function isConflictChoice(value: string): value is ConflictChoice {
  return (CONFLICT_CHOICES as readonly string[]).includes(value);
}

/** Limits of what an operator types (kept in the store with every settlement). */
export const CONFLICT_RESOLUTION_LIMITS = Object.freeze({ operatorMaxChars: 200, reasonMaxChars: 2000 });

/** What a summary shows of a record: structured clinical fields only, never free text (see the module comment). */
export type RecordSummary =
  | { kind: 'reading'; type: string; value: number; unit: string; time: string; sensor: string; meterRecord?: number }
  | { kind: 'finding'; finding: string; label: string; probability: number; time: string; modelId: string }
  | { kind: 'alert'; alert: string; severity: number; time: string; sensor?: string }
  | { kind: 'quarantine'; transport: string; bytes: number; time: string }
  | { kind: 'chunk'; sensor: string; channel: number; time: string; rateHz: number; unit: string; samples: number };

/** One of the two records of a conflict. */
export interface ConflictSide {
  bootId: string;
  /** The device's time of the record (ms). */
  tMs: number;
  bodySha256: string;
  /** Undefined when the body does not decode as its kind (it passed ingest, so only for a damaged store). */
  summary?: RecordSummary;
}

export interface ConflictResolution {
  choice: ConflictChoice;
  operator: string;
  reason: string;
  resolvedMs: number;
}

export interface ConflictEntry {
  id: number;
  deviceId: string;
  kind: RecordKind;
  seq: number;
  site: string;
  /** When the edge received the conflicting record (ms). */
  receivedMs: number;
  /** The record in `records` under (device, kind, seq); undefined only for a store whose row went missing. */
  stored?: ConflictSide;
  /** The record kept in `conflicts`. */
  incoming: ConflictSide;
  status: 'open' | 'resolved';
  resolution?: ConflictResolution;
}

export interface ConflictFilter {
  deviceId?: string;
  kind?: RecordKind;
  id?: number;
  /** Only open (not yet settled) or only resolved conflicts. */
  status?: ConflictEntry['status'];
  /** Only conflicts with a higher id (the next page after the last id listed). */
  afterId?: number;
  /** At most this many, lowest ids first. */
  limit?: number;
}

/** The SQL conditions and parameters of `filter` over `conflicts c` (joined to `conflict_resolutions r` when `settled`). */
function filterSql(filter: ConflictFilter, settled: boolean): { where: string; params: (string | number)[] } {
  const conditions = (
    [
      ['c.id = ?', filter.id],
      ['c.device_id = ?', filter.deviceId],
      ['c.kind = ?', filter.kind],
      ['c.id > ?', filter.afterId],
    ] as const
  ).filter(([, value]) => value !== undefined);
  const where: string[] = conditions.map(([sql]) => sql);
  if (filter.status === 'open' && settled) where.push('r.conflict_id IS NULL');
  if (filter.status === 'resolved') where.push(settled ? 'r.conflict_id IS NOT NULL' : '0');
  return { where: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', params: conditions.map(([, value]) => value as string | number) };
}

/** How many conflicts match `filter` (its `afterId` and `limit` left out), and how many of them are open. */
export function countConflicts(db: Database.Database, filter: ConflictFilter = {}): { total: number; open: number } {
  if (!hasTable(db, 'conflicts')) return { total: 0, open: 0 };
  const settled = hasTable(db, 'conflict_resolutions');
  const { where, params } = filterSql({ ...filter, afterId: undefined, limit: undefined }, settled);
  const row = db
    .prepare(`SELECT COUNT(*) AS total, ${settled ? 'COUNT(*) - COUNT(r.conflict_id)' : 'COUNT(*)'} AS open FROM conflicts c ${settled ? 'LEFT JOIN conflict_resolutions r ON r.conflict_id = c.id' : ''} ${where}`)
    .get(...params) as { total: number; open: number };
  return { total: row.total, open: row.open };
}

export type ConflictTarget = { id: number } | { deviceId: string; kind?: RecordKind };

export type ConflictProblem = 'unknown-conflict' | 'unknown-device' | 'already-resolved' | 'nothing-open' | 'bad-resolution';

/** A review or settlement that cannot be done: `problem` says why, with the conflict or device it is about. */
export class ConflictResolutionError extends MedgeError {
  readonly problem: ConflictProblem;
  readonly conflictId?: number;
  readonly deviceId?: string;
  constructor(problem: ConflictProblem, message: string, about: { conflictId?: number; deviceId?: string } = {}) {
    super('conflict', message);
    this.problem = problem;
    if (about.conflictId !== undefined) this.conflictId = about.conflictId;
    if (about.deviceId !== undefined) this.deviceId = about.deviceId;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The structured fields of a record body, or undefined when it does not decode. */
export function summarizeRecord(kind: RecordKind, body: Uint8Array): RecordSummary | undefined {
  try {
    switch (kind) {
      case 'reading': {
        const r = decodeBody('reading', body);
        return { kind, type: r.type, value: r.value, unit: r.unit, time: iso(r.tMeter ?? r.tDevice), sensor: r.sensor, ...(r.meterRecord === undefined ? {} : { meterRecord: r.meterRecord }) };
      }
      case 'finding': {
        const f = decodeBody('finding', body);
        return { kind, finding: f.kind, label: f.label, probability: f.probability, time: iso(f.t), modelId: f.modelId };
      }
      case 'alert': {
        const a = decodeBody('alert', body);
        return { kind, alert: a.kind, severity: a.severity, time: iso(a.t), ...(a.sensor === undefined ? {} : { sensor: a.sensor }) };
      }
      case 'quarantine': {
        const q = decodeBody('quarantine', body);
        return { kind, transport: q.transport, bytes: q.bytes.length, time: iso(q.t) };
      }
      case 'chunk': {
        const c = decodeBody('chunk', body);
        return { kind, sensor: c.sensor, channel: c.channel, time: iso(c.t0), rateHz: c.rateHz, unit: c.unit, samples: c.samples.length };
      }
    }
  } catch {
    return undefined;
  }
}

/** One line of a summary, e.g. `glucose 92 mg/dL at 2026-12-07T04:00:00.000Z (sensor meter)`. */
export function summaryText(s: RecordSummary | undefined): string {
  if (!s) return '(body does not decode)';
  switch (s.kind) {
    case 'reading':
      return `${s.type} ${s.value} ${s.unit} at ${s.time} (sensor ${s.sensor}${s.meterRecord === undefined ? '' : `, meter record ${s.meterRecord}`})`;
    case 'finding':
      return `finding ${s.finding} ${s.label} p=${s.probability} at ${s.time} (model ${s.modelId})`;
    case 'alert':
      return `alert ${s.alert} severity ${s.severity} at ${s.time}${s.sensor === undefined ? '' : ` (sensor ${s.sensor})`}`;
    case 'quarantine':
      return `quarantined ${s.bytes} bytes from ${s.transport} at ${s.time}`;
    case 'chunk':
      return `chunk ${s.sensor} channel ${s.channel}, ${s.samples} samples at ${s.rateHz} Hz (${s.unit}) from ${s.time}`;
  }
}

/**
 * What tells an imported conflict record apart from the stored record of its (device, kind, seq), and
 * from other conflicts at that seq: 12 hex digits of a hash of the conflicts table's unique key. Stable
 * across exports and across stores that hold the same records, so upstream ids never change.
 */
export function conflictVariant(bootId: string, tMs: number, bodySha256: string): string {
  return sha256Hex(`medge-conflict\u0000${bootId}\u0000${tMs}\u0000${bodySha256}`).slice(0, 12);
}

/**
 * SQL selecting the imported conflict records with the columns of `records` (device_id, kind, seq,
 * site, boot_id, t_ms, body) plus body_sha256 and row_id (the conflict's id), for consumers that read `records` (the FHIR export);
 * undefined for a store that has no settlements yet (older schema, read read-only).
 */
export function importedRecordsSql(db: Database.Database): string | undefined {
  if (!hasTable(db, 'conflict_resolutions')) return undefined;
  return `SELECT c.device_id, c.kind, c.seq, c.site, c.boot_id, c.t_ms, c.body, c.body_sha256, c.id AS row_id FROM conflicts c
    JOIN conflict_resolutions r ON r.conflict_id = c.id AND r.choice = 'import'`;
}

interface ConflictRow extends RecordRow {
  id: number;
  received_ms: number;
  body_sha256: string;
  stored_boot_id: string | null;
  stored_t_ms: number | null;
  stored_body: Buffer | null;
  choice: ConflictChoice | null;
  operator: string | null;
  reason: string | null;
  resolved_ms: number | null;
}

function toEntry(row: ConflictRow): ConflictEntry {
  const entry: ConflictEntry = {
    id: row.id,
    deviceId: row.device_id,
    kind: row.kind,
    seq: row.seq,
    site: row.site,
    receivedMs: row.received_ms,
    incoming: { bootId: row.boot_id, tMs: row.t_ms, bodySha256: row.body_sha256, summary: summarizeRecord(row.kind, row.body) },
    status: row.choice === null ? 'open' : 'resolved',
  };
  if (row.stored_body !== null) {
    entry.stored = { bootId: row.stored_boot_id as string, tMs: row.stored_t_ms as number, bodySha256: sha256Hex(row.stored_body), summary: summarizeRecord(row.kind, row.stored_body) };
  }
  if (row.choice !== null) entry.resolution = { choice: row.choice, operator: row.operator as string, reason: row.reason as string, resolvedMs: row.resolved_ms as number };
  return entry;
}

/** Conflicts kept in an open edge database, by id (arrival order), with both records and their settlement. */
export function listConflicts(db: Database.Database, filter: ConflictFilter = {}): ConflictEntry[] {
  if (!hasTable(db, 'conflicts')) return [];
  const settled = hasTable(db, 'conflict_resolutions');
  const { where, params } = filterSql(filter, settled);
  const rows = db
    .prepare(
      `SELECT c.id, c.device_id, c.kind, c.seq, c.site, c.boot_id, c.t_ms, c.received_ms, c.body, c.body_sha256,
         s.boot_id AS stored_boot_id, s.t_ms AS stored_t_ms, s.body AS stored_body,
         ${settled ? 'r.choice, r.operator, r.reason, r.resolved_ms' : 'NULL AS choice, NULL AS operator, NULL AS reason, NULL AS resolved_ms'}
       FROM conflicts c LEFT JOIN records s ON s.device_id = c.device_id AND s.kind = c.kind AND s.seq = c.seq
       ${settled ? 'LEFT JOIN conflict_resolutions r ON r.conflict_id = c.id' : ''}
       ${where} ORDER BY c.id${filter.limit !== undefined && filter.limit > 0 ? ` LIMIT ${Math.floor(filter.limit)}` : ''}`,
    )
    .all(...params) as ConflictRow[];
  return rows.map(toEntry);
}

/** Whether the store has ever heard of the device (it sent records, or only conflicts). */
export function knowsDevice(db: Database.Database, deviceId: string): boolean {
  const inDevices = db.prepare('SELECT COUNT(*) FROM devices WHERE device_id = ?').pluck().get(deviceId) as number;
  return inDevices > 0 || (hasTable(db, 'conflicts') && (db.prepare('SELECT COUNT(*) FROM conflicts WHERE device_id = ?').pluck().get(deviceId) as number) > 0);
}

function checkResolution(resolution: Omit<ConflictResolution, 'resolvedMs'>): ConflictResolution['choice'] {
  const { operatorMaxChars, reasonMaxChars } = CONFLICT_RESOLUTION_LIMITS;
  if (!isConflictChoice(resolution.choice)) throw new ConflictResolutionError('bad-resolution', `choice must be one of ${CONFLICT_CHOICES.join(', ')}, got ${JSON.stringify(resolution.choice)}`);
  if (resolution.operator.trim() === '' || resolution.operator.length > operatorMaxChars) {
    throw new ConflictResolutionError('bad-resolution', `the operator's name must be 1 to ${operatorMaxChars} characters, got ${resolution.operator.length}`);
  }
  if (resolution.reason.trim() === '' || resolution.reason.length > reasonMaxChars) {
    throw new ConflictResolutionError('bad-resolution', `the reason must be 1 to ${reasonMaxChars} characters, got ${resolution.reason.length}`);
  }
  return resolution.choice;
}

/**
 * Settles one conflict (`{ id }`) or every open conflict of a device (`{ deviceId, kind? }`) in one
 * transaction, and returns the settled entries. Refused with `ConflictResolutionError`: an unknown
 * id or device, an id already settled (a settlement is final), a device with nothing open. The write
 * transaction only picks the open ids and inserts their settlements; the entries (both records decoded
 * and summarised) are read after it, so that a running edge's ingest does not wait on them (QA: settling
 * 275,000 conflicts held the write lock 7 s, and the edge's commit failed with "database is locked" after
 * its 5 s busy timeout).
 */
export function resolveConflicts(db: Database.Database, target: ConflictTarget, resolution: Omit<ConflictResolution, 'resolvedMs'>, now: number): ConflictEntry[] {
  const choice = checkResolution(resolution);
  const insert = db.prepare('INSERT INTO conflict_resolutions (conflict_id, choice, operator, reason, resolved_ms) VALUES (?, ?, ?, ?, ?)');
  const ids = db
    .transaction((): number[] => {
      if ('id' in target) {
        const [entry] = listConflicts(db, { id: target.id });
        if (!entry) throw new ConflictResolutionError('unknown-conflict', `no conflict with id ${target.id}; 'medge edge conflicts' lists them`, { conflictId: target.id });
        if (entry.resolution) {
          const r = entry.resolution;
          throw new ConflictResolutionError('already-resolved', `conflict ${target.id} was already resolved (${r.choice} by ${r.operator} at ${iso(r.resolvedMs)}); a resolution is final`, {
            conflictId: target.id,
          });
        }
        insert.run(entry.id, choice, resolution.operator, resolution.reason, now);
        return [entry.id];
      }
      const { deviceId, kind } = target;
      if (!knowsDevice(db, deviceId)) throw new ConflictResolutionError('unknown-device', `no device ${JSON.stringify(deviceId)} in this edge store`, { deviceId });
      const open = db
        .prepare(
          `SELECT c.id FROM conflicts c LEFT JOIN conflict_resolutions r ON r.conflict_id = c.id
           WHERE c.device_id = ? ${kind === undefined ? '' : 'AND c.kind = ?'} AND r.conflict_id IS NULL ORDER BY c.id`,
        )
        .pluck()
        .all(...(kind === undefined ? [deviceId] : [deviceId, kind])) as number[];
      if (open.length === 0) throw new ConflictResolutionError('nothing-open', `device ${deviceId} has no open conflicts${kind === undefined ? '' : ` of kind ${kind}`}`, { deviceId });
      for (const id of open) insert.run(id, choice, resolution.operator, resolution.reason, now);
      return open;
    })
    .immediate();
  if ('id' in target) return listConflicts(db, { id: target.id });
  const settled = new Set(ids);
  return listConflicts(db, { deviceId: target.deviceId, ...(target.kind === undefined ? {} : { kind: target.kind }) }).filter((e) => settled.has(e.id));
}

/** Conflicts of the edge store at `path`, read-only (works while the edge runs; an older store is not migrated). */
export function readConflicts(path: string, filter: ConflictFilter = {}): ConflictEntry[] {
  return readConflictPage(path, filter).entries;
}

/** `readConflicts`, with how many conflicts match the filter in all (`countConflicts`), in one read transaction. */
export function readConflictPage(path: string, filter: ConflictFilter = {}): { entries: ConflictEntry[]; total: number; open: number } {
  return withReadOnlyDatabase(path, 'edge store', (db) => {
    if (filter.deviceId !== undefined && !knowsDevice(db, filter.deviceId)) {
      throw new ConflictResolutionError('unknown-device', `no device ${JSON.stringify(filter.deviceId)} in the edge store ${path}`, { deviceId: filter.deviceId });
    }
    return db.transaction(() => ({ entries: listConflicts(db, filter), ...countConflicts(db, filter) }))();
  });
}

/** Settles conflicts in the edge store at `path` (migrated first; an edge may be running on it: SQLite serialises the writes). */
export function resolveStoredConflicts(path: string, target: ConflictTarget, resolution: Omit<ConflictResolution, 'resolvedMs'>, now: number): ConflictEntry[] {
  if (!existsSync(path)) throw new StoreError('open', `no edge store at ${path}`);
  const db = openDatabase(path, EDGE_MIGRATIONS, 'edge store', MIGRATION_WAIT_MS);
  try {
    return resolveConflicts(db, target, resolution, now);
  } finally {
    db.close();
  }
}
