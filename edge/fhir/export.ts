/**
 * Builds FHIR R4 resources from an edge data directory, read-only (usable while the edge runs).
 *
 * Per device: a Device, a pseudonymous Patient, Observations for heart rate, glucose (meter and
 * CGM kept distinct), findings (ECG, heart sounds, glucose) with the model as a software Device,
 * ECG waveform excerpts around ECG findings and alerts as SampledData, and a DiagnosticReport per
 * session (one runtime boot). `--since` filters by the device's record time.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { makeDirs } from '../../device-sdk/make-dirs.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding, Reading, StreamChunk } from '../../device-sdk/records.js';
import { withReadOnlyDatabase } from '../../device-sdk/store/sqlite-outbox-store.js';
import { conflictVariant, importedRecordsSql } from '../conflicts.js';
import { edgeDatabasePath, type RecordRow } from '../edge-store.js';
import { validateFhir } from './validate.js';
import {
  type DeviceInfo,
  deviceResource,
  findingObservation,
  modelResource,
  modelResourceId,
  type ObservationSearchFields,
  patientResource,
  type Resource,
  readingObservation,
  readingSearchFields,
  searchFieldsOf,
  type SessionSummary,
  type StoredRecord,
  sessionReport,
  waveformObservation,
} from './mapping.js';

export interface ExportOptions {
  /** Only records at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** ECG waveform around each ECG finding and alert: how many ms either side (0 = no waveform). */
  waveformWindowMs?: number;
  /**
   * At most this much waveform (s) per session. Excerpts are taken around alerts first (most severe first),
   * then around findings that are not routine (rhythm, ventricular runs, ectopy), then the routine rate and
   * no-ectopy findings; around each, the chunks nearest to it first.
   */
  maxWaveformSecondsPerSession?: number;
  now?: number;
}

/** A row of the records an export reads (`records`, or an imported conflict record). */
export interface ExportRow extends RecordRow {
  /** Set (non-null) only for a seq-conflict record an operator imported. */
  body_sha256: string | null;
  /** The row's id in its table: `records.id`, or `conflicts.id` for an imported conflict record. */
  row_id: number;
}

/**
 * Where the record of an Observation is stored: its row in `records`, or in `conflicts` for a
 * seq-conflict record an operator imported. Rows are never changed, so a locator stays valid while the
 * store grows (`observationAt` rebuilds the same resource from it).
 */
export interface RecordLocator {
  table: 'records' | 'conflicts';
  rowId: number;
}

export function toRecord<T>(row: ExportRow, body: T): StoredRecord<T> {
  const record: StoredRecord<T> = { deviceId: row.device_id, site: row.site, bootId: row.boot_id, seq: row.seq, tMs: row.t_ms, body };
  if (row.body_sha256 !== null) record.variant = conflictVariant(row.boot_id, row.t_ms, row.body_sha256);
  return record;
}

export const locatorOf = (row: ExportRow): RecordLocator => ({ table: row.body_sha256 === null ? 'records' : 'conflicts', rowId: row.row_id });

/**
 * The records to export as SQL: `records` (unique by device, kind and seq: each once) and the seq-conflict
 * records an operator imported (each settled once, `edge/conflicts.ts`), which carry their body hash.
 */
export function exportedRecordsSql(db: Database.Database): string {
  const stored = 'SELECT device_id, kind, seq, site, boot_id, t_ms, body, NULL AS body_sha256, id AS row_id FROM records';
  const imported = importedRecordsSql(db);
  return imported === undefined ? stored : `${stored} UNION ALL ${imported}`;
}

/** Appends in place: copying the list at each finding made a session of 100,000 ECG findings quadratic. */
function addMoment(moments: Map<string, EcgMoment[]>, key: string, moment: EcgMoment): void {
  const list = moments.get(key);
  if (list === undefined) moments.set(key, [moment]);
  else list.push(moment);
}

/** The resources of an export other than its Observations, in the order they are exported. */
export interface ExportFrame {
  /** The devices, then the on-device models as software Devices. */
  devices: Resource[];
  patients: Resource[];
  /** One DiagnosticReport per session with Observations or alerts; they come after the Observations. */
  reports: Resource[];
}

/** The Observation of a stored row (a reading, finding or ECG chunk), or undefined for a reading with no clinical mapping. */
function rowObservation(row: ExportRow): Resource | undefined {
  if (row.kind === 'reading') return readingObservation(toRecord(row, decodeBody('reading', row.body) as Reading));
  if (row.kind === 'finding') return findingObservation(toRecord(row, decodeBody('finding', row.body) as Finding));
  if (row.kind === 'chunk') return waveformObservation(toRecord(row, decodeBody('chunk', row.body) as StreamChunk));
  return undefined;
}

/** An Observation as `scanExport` hands it on: its record's locator, its id, and the resource or its search fields on demand. */
export interface ExportedObservation {
  at: RecordLocator;
  id: string;
  resource(): Resource;
  /** `searchFieldsOf(resource())`; for a reading without making the resource. */
  searchFields(): ObservationSearchFields;
}

/** An ECG finding's or alert's time and how much the waveform around it matters (`momentRank`). */
export interface EcgMoment {
  t: number;
  rank: number;
}

/**
 * What one clinical row (a reading, finding or alert) adds to an export, told in the order `scanExport`
 * uses it: the export and the API's persistent index (`search-index.ts`) both take a row apart with
 * `visitClinicalRow`, so they cannot disagree on what a row contributes.
 */
export interface ClinicalRowSink {
  /** A `device-info` reading: the model and firmware it names (each only when set). */
  deviceInfo(model: string | undefined, firmwareVersion: string | undefined): void;
  /** A sensor of the device (every reading but device-info, and findings that name theirs). */
  sensor(sensor: string): void;
  observation(observation: ExportedObservation): void;
  /** The model of a finding, as a software Device. */
  model(ref: string, modelId: string, modelSha256: string): void;
  /** An ECG finding (`fromFinding`, which also marks its session as holding ECG) or ECG alert: waveform is excerpted around it. */
  ecgMoment(moment: EcgMoment, fromFinding: boolean): void;
  alert(alert: Alert): void;
}

/** Takes a clinical row (kind reading, finding or alert) apart for `sink`. */
export function visitClinicalRow(row: ExportRow, sink: ClinicalRowSink): void {
  if (row.kind === 'reading') {
    const r = decodeBody('reading', row.body) as Reading;
    if (r.type === 'device-info') {
      sink.deviceInfo(r.context?.model || undefined, r.context?.firmwareVersion || undefined);
      return;
    }
    sink.sensor(r.sensor);
    const rec = toRecord(row, r);
    const fields = readingSearchFields(rec);
    if (fields === undefined) return;
    sink.observation({ at: locatorOf(row), id: fields.id, resource: () => readingObservation(rec) as Resource, searchFields: () => fields });
  } else if (row.kind === 'finding') {
    const f = decodeBody('finding', row.body) as Finding;
    if (f.sensor !== undefined) sink.sensor(f.sensor);
    const obs = findingObservation(toRecord(row, f));
    sink.observation({ at: locatorOf(row), id: obs.id, resource: () => obs, searchFields: () => searchFieldsOf(obs) });
    sink.model(modelResourceId(f.modelId, f.modelSha256), f.modelId, f.modelSha256);
    if (f.kind.toLowerCase().startsWith('ecg')) sink.ecgMoment({ t: f.t, rank: momentRank(f) }, true);
  } else if (row.kind === 'alert') {
    const a = decodeBody('alert', row.body) as Alert;
    sink.alert(a);
    if (a.kind.toLowerCase().startsWith('ecg')) sink.ecgMoment({ t: a.t, rank: momentRank(a) }, false);
  }
}

/** The clinical rows of an export, in export order, as SQL over `exportedRecordsSql` (parameter: `sinceMs`). */
export const clinicalRowsSql = (source: string): string => `SELECT * FROM (${source}) WHERE kind IN ('reading', 'finding', 'alert') AND t_ms >= ? ORDER BY device_id, t_ms, kind, seq, body_sha256`;

/**
 * The ECG waveform excerpts of one session, in the order they are exported: the chunks that overlap a
 * window around each of the session's ECG moments (given in export order), the most important moments
 * first, at most `maxWaveformSecondsPerSession` of them.
 */
export function waveformPicker(db: Database.Database, options: ExportOptions): (deviceId: string, bootId: string, moments: EcgMoment[]) => { row: ExportRow; chunk: StreamChunk }[] {
  const windowMs = options.waveformWindowMs ?? 5000;
  const maxWaveformMs = (options.maxWaveformSecondsPerSession ?? 60) * 1000;
  const chunks = db.prepare(`SELECT * FROM (${exportedRecordsSql(db)}) WHERE kind = 'chunk' AND device_id = ? AND boot_id = ? AND t_ms BETWEEN ? AND ? ORDER BY seq, body_sha256`);
  return (deviceId, bootId, moments) => {
    const picked: { row: ExportRow; chunk: StreamChunk }[] = [];
    if (windowMs <= 0) return picked;
    /** Chunks already excerpted, by seq and (for an imported conflict record) body hash. */
    const taken = new Set<string>();
    const chunkKey = (row: ExportRow) => `${row.seq}\u0000${row.body_sha256 ?? ''}`;
    let takenMs = 0;
    for (const { t } of moments.sort((a, b) => b.rank - a.rank || a.t - b.t)) {
      if (takenMs >= maxWaveformMs) break;
      // Chunks are stored when they end, so look a little past the window too.
      const near: { row: ExportRow; c: StreamChunk; distance: number; ms: number }[] = [];
      for (const row of chunks.iterate(deviceId, bootId, t - windowMs, t + 2 * windowMs) as Iterable<ExportRow>) {
        if (taken.has(chunkKey(row))) continue;
        const c = decodeBody('chunk', row.body) as StreamChunk;
        // A chunk with no samples is a front end's status-only report (lead-off, contact back): no waveform to
        // show (SampledData needs data), and what it reported reaches FHIR as the alert it raised.
        if (c.samples.length === 0) continue;
        const ms = (c.samples.length * 1000) / c.rateHz;
        const end = c.t0 + ms;
        if (c.unit !== 'mV' || end < t - windowMs || c.t0 > t + windowMs) continue;
        near.push({ row, c, distance: Math.abs(c.t0 + ms / 2 - t), ms });
      }
      for (const { row, c, ms } of near.sort((a, b) => a.distance - b.distance)) {
        if (takenMs >= maxWaveformMs) break;
        taken.add(chunkKey(row));
        takenMs += ms;
        picked.push({ row, chunk: c });
      }
    }
    return picked;
  };
}

/**
 * Reads `db` once, in export order, and hands each Observation to `onObservation` as it is made (with the
 * locator of its record) instead of keeping it: what stays in memory are the devices, models, patients and
 * sessions (each session's Observation ids, for its DiagnosticReport). Returns the other resources.
 * The resources of an export, in order: `frame.devices`, `frame.patients`, the Observations, `frame.reports`.
 */
export function scanExport(db: Database.Database, options: ExportOptions, onObservation: (observation: ExportedObservation) => void): ExportFrame {
  const devices = new Map<string, DeviceInfo>();
  const patients = new Map<string, Resource>();
  const models = new Map<string, Resource>();
  const sessions = new Map<string, SessionSummary>();
  /** Per session, the times of its ECG findings and alerts and how much their waveform matters (`momentRank`). */
  const ecgMoments = new Map<string, EcgMoment[]>();

  const sessionOf = (row: ExportRow): SessionSummary => {
    const key = `${row.device_id}\u0000${row.boot_id}`;
    let s = sessions.get(key);
    if (!s) {
      s = { deviceId: row.device_id, site: row.site, bootId: row.boot_id, startMs: row.t_ms, endMs: row.t_ms, observationIds: [], alerts: [], hasEcg: false };
      sessions.set(key, s);
    }
    s.startMs = Math.min(s.startMs, row.t_ms);
    s.endMs = Math.max(s.endMs, row.t_ms);
    return s;
  };
  const deviceOf = (row: ExportRow): DeviceInfo => {
    let d = devices.get(row.device_id);
    if (!d) {
      d = { deviceId: row.device_id, site: row.site, sensors: [] };
      devices.set(row.device_id, d);
      const p = patientResource(row.site, row.device_id);
      patients.set(p.id, p);
    }
    return d;
  };

  const source = exportedRecordsSql(db);
  for (const row of db.prepare(clinicalRowsSql(source)).iterate(options.sinceMs ?? 0) as Iterable<ExportRow>) {
    const d = deviceOf(row);
    const s = sessionOf(row);
    const key = `${row.device_id}\u0000${row.boot_id}`;
    visitClinicalRow(row, {
      deviceInfo: (model, firmwareVersion) => {
        if (model) d.model = model;
        if (firmwareVersion) d.firmwareVersion = firmwareVersion;
      },
      sensor: (sensor) => {
        if (!d.sensors.includes(sensor)) d.sensors.push(sensor);
      },
      observation: (obs) => {
        s.observationIds.push(obs.id);
        onObservation(obs);
      },
      model: (ref, modelId, sha256) => {
        if (!models.has(ref)) models.set(ref, modelResource(modelId, sha256));
      },
      ecgMoment: (moment, fromFinding) => {
        if (fromFinding) s.hasEcg = true;
        addMoment(ecgMoments, key, moment);
      },
      alert: (a) => s.alerts.push(a),
    });
  }

  // ECG waveform excerpts: the chunks that overlap a window around each ECG finding or alert.
  const waveforms = waveformPicker(db, options);
  for (const [key, moments] of ecgMoments) {
    const s = sessions.get(key);
    if (!s) continue;
    for (const { row, chunk } of waveforms(s.deviceId, s.bootId, moments)) {
      const obs = waveformObservation(toRecord(row, chunk));
      s.observationIds.push(obs.id);
      onObservation({ at: locatorOf(row), id: obs.id, resource: () => obs, searchFields: () => searchFieldsOf(obs) });
      s.hasEcg = true;
    }
  }
  const now = options.now ?? Date.now();
  return {
    devices: [...[...devices.values()].map(deviceResource), ...models.values()],
    patients: [...patients.values()],
    reports: [...sessions.values()].filter((s) => s.observationIds.length > 0 || s.alerts.length > 0).map((s) => sessionReport(s, now)),
  };
}

/** The resources of an open edge database, in export order (all in memory: `writeEdgeExport` streams them to a file instead). */
export function exportResources(db: Database.Database, options: ExportOptions = {}): Resource[] {
  const observations: Resource[] = [];
  const frame = scanExport(db, options, (obs) => observations.push(obs.resource()));
  return [...frame.devices, ...frame.patients, ...observations, ...frame.reports];
}

/**
 * Reads Observations back by the locators `scanExport` gave for them: the same resource, made from that
 * one row (undefined when the row maps to no Observation). Statements are prepared once per reader.
 */
export function observationReader(db: Database.Database): (at: RecordLocator) => Resource | undefined {
  const records = db.prepare('SELECT device_id, kind, seq, site, boot_id, t_ms, body, NULL AS body_sha256, id AS row_id FROM records WHERE id = ?');
  /** Prepared at the first imported conflict record: a store from before conflicts were kept has no such table. */
  let conflicts: Database.Statement | undefined;
  return (at) => {
    const statement = at.table === 'records' ? records : (conflicts ??= db.prepare('SELECT device_id, kind, seq, site, boot_id, t_ms, body, body_sha256, id AS row_id FROM conflicts WHERE id = ?'));
    const row = statement.get(at.rowId) as ExportRow | undefined;
    return row === undefined ? undefined : rowObservation(row);
  };
}

/** Alerts first, the most severe first (4-6), then findings that are not routine (1), then heart rates and no-ectopy counts (0). */
function momentRank(r: Alert | Finding): number {
  if ('severity' in r) return 3 + r.severity;
  return r.kind === 'ecg-rate' || (r.kind === 'ecg-beat-classes' && r.label === 'no-ectopy') ? 0 : 1;
}

/** Every resource of an edge data directory (read-only; works while the edge runs). */
export function exportEdgeResources(dataDir: string, options: ExportOptions = {}): Resource[] {
  return withReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', (db) => exportResources(db, options), `start one with: medge edge --data ${dataDir}`);
}

/** A stable `urn:uuid:` for a resource (name-based, from its type and id). */
export function uuidUrn(name: string): string {
  const h = createHash('sha256').update(`medge-fhir\u0000${name}`).digest('hex');
  const variant = ((Number.parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The entry of `resource` in a transaction Bundle: a PUT by id. */
function transactionEntry(resource: Resource): Record<string, unknown> {
  return { fullUrl: uuidUrn(`${resource.resourceType}/${resource.id}`), resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } };
}

/** A transaction Bundle of `resources`: one PUT per resource, so importing twice changes nothing. */
export function transactionBundle(resources: readonly Resource[], now = Date.now()): Resource {
  return { resourceType: 'Bundle', id: `medge-export-${now}`, type: 'transaction', timestamp: new Date(now).toISOString(), entry: resources.map(transactionEntry) };
}

/** An error of a one-entry Bundle (`entry[0]`) as the error of entry `index` of the whole Bundle. */
const renumberEntryError = (error: string, index: number): string => error.replace(/^(\(Bundle\/[^)]*\)\.entry)\[0\]/, `$1[${index}]`);

/**
 * Validates the transaction Bundle of `resources` against the R4 schema one entry at a time (the
 * errors name `entry[i]` as `validateFhir` on the whole Bundle does), without building the Bundle.
 */
export function validateTransactionBundle(resources: readonly Resource[], now = Date.now()): string[] {
  const shell = transactionBundle([], now);
  const errors: string[] = [...validateFhir(shell).errors];
  resources.forEach((resource, i) => {
    for (const e of validateFhir({ ...shell, entry: [transactionEntry(resource)] }).errors) errors.push(renumberEntryError(e, i));
  });
  return errors;
}

/** A Bundle's text written to a file in pieces, entries separated by `,\n` (one per line). */
class ChunkedWriter {
  private pending = '';
  /** Entries written so far. */
  entries = 0;
  constructor(readonly fd: number) {}

  text(text: string): void {
    this.pending += text;
    if (this.pending.length >= 1 << 20) this.flush();
  }

  entry(json: string): void {
    this.text(this.entries++ === 0 ? json : `,\n${json}`);
  }

  flush(): void {
    if (this.pending.length > 0) writeSync(this.fd, this.pending);
    this.pending = '';
  }
}

/**
 * Writes `file` through a temporary file beside it, renamed over `file` once `write` returns true; on
 * false or a throw the temporary file is removed and `file` is left as it was.
 */
function writeThroughTemporary(file: string, write: (out: ChunkedWriter) => boolean): boolean {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let keep = false;
  try {
    const out = new ChunkedWriter(fd);
    keep = write(out);
    out.flush();
    if (keep) fsyncSync(fd);
  } finally {
    closeSync(fd);
    if (!keep) rmSync(tmp, { force: true });
  }
  if (keep) renameSync(tmp, file);
  return keep;
}

/** The start of a transaction Bundle's text, up to the opening of its `entry` array. */
function bundleHead(now: number): string {
  const { entry: _entry, ...head } = transactionBundle([], now);
  return `${JSON.stringify(head).slice(0, -1)},"entry":[\n`;
}

/** The end of a transaction Bundle's text after `entries` entries. */
const bundleTail = (entries: number): string => `${entries > 0 ? '\n' : ''}]}\n`;

/**
 * Writes the transaction Bundle of `resources` to `file` (through a temporary file and a rename), one
 * entry per line. The text is written in pieces: the Bundle of a large edge store is more text than one
 * JavaScript string may hold (400,000 readings: `JSON.stringify` threw "Invalid string length").
 */
export function writeTransactionBundle(file: string, resources: readonly Resource[], now = Date.now()): void {
  writeThroughTemporary(file, (out) => {
    out.text(bundleHead(now));
    for (const resource of resources) out.entry(JSON.stringify(transactionEntry(resource)));
    out.text(bundleTail(out.entries));
    return true;
  });
}

export interface ExportFileOptions extends ExportOptions {
  /** Validate every entry against the R4 schema (default true); with errors the file is not written. */
  validate?: boolean;
}

export interface ExportFileResult {
  /** Whether `file` was written (false when validation found errors). */
  written: boolean;
  /** Resources by type, in the order the types first appear in the Bundle. */
  counts: Map<string, number>;
  /** Schema errors, named `entry[i]` as `validateTransactionBundle` names them, in entry order. */
  errors: string[];
}

/**
 * What `exportEdgeResources` + `validateTransactionBundle` + `writeTransactionBundle` do, with bounded
 * memory: the edge store is read once (`scanExport`), each Observation is validated and written as it is
 * made (to a temporary file of Observation entries beside `file`, since the Devices and Patients that come
 * first in the Bundle are known only at the end), then the Bundle is put together and renamed over `file`.
 * The bytes are those `writeTransactionBundle` writes for the same resources and time.
 */
export function writeEdgeExport(dataDir: string, file: string, options: ExportFileOptions = {}): ExportFileResult {
  const now = options.now ?? Date.now();
  const validate = options.validate ?? true;
  const shell = transactionBundle([], now);
  /** Errors with the entry index they are about (-1: the Bundle itself) and the text naming `entry[0]`. */
  const found: { index: number; text: string }[] = validate ? validateFhir(shell).errors.map((text) => ({ index: -1, text })) : [];
  const check = (resource: Resource, index: number) => {
    if (validate) for (const text of validateFhir({ ...shell, entry: [transactionEntry(resource)] }).errors) found.push({ index, text });
  };
  const counts = new Map<string, number>();
  const count = (resource: Resource) => counts.set(resource.resourceType, (counts.get(resource.resourceType) ?? 0) + 1);

  return withReadOnlyDatabase(
    edgeDatabasePath(dataDir),
    'edge store',
    (db) => {
      makeDirs(dirname(file));
      const observationsFile = `${file}.observations-${process.pid}`;
      const observationsFd = openSync(observationsFile, 'w+');
      try {
        const observations = new ChunkedWriter(observationsFd);
        const frame = scanExport(db, { ...options, now }, (exported) => {
          const obs = exported.resource();
          // Index k for now: the entries before the Observations are known only at the end.
          check(obs, observations.entries);
          observations.entry(JSON.stringify(transactionEntry(obs)));
        });
        observations.flush();
        const before = [...frame.devices, ...frame.patients];
        for (const e of found) if (e.index >= 0) e.index += before.length;
        const written = writeThroughTemporary(file, (out) => {
          out.text(bundleHead(now));
          before.forEach((resource, i) => {
            check(resource, i);
            count(resource);
            out.entry(JSON.stringify(transactionEntry(resource)));
          });
          if (observations.entries > 0) {
            out.text(out.entries > 0 ? ',\n' : '');
            out.flush();
            copyFile(observationsFd, out.fd);
            out.entries += observations.entries;
            counts.set('Observation', observations.entries);
          }
          for (const resource of frame.reports) {
            check(resource, out.entries);
            count(resource);
            out.entry(JSON.stringify(transactionEntry(resource)));
          }
          out.text(bundleTail(out.entries));
          return found.length === 0;
        });
        const errors = found.sort((a, b) => a.index - b.index).map(({ index, text }) => (index < 0 ? text : renumberEntryError(text, index)));
        return { written, counts, errors };
      } finally {
        closeSync(observationsFd);
        rmSync(observationsFile, { force: true });
      }
    },
    `start one with: medge edge --data ${dataDir}`,
  );
}

/** Appends the whole of the file open as `from` to `to`, 1 MiB at a time. */
function copyFile(from: number, to: number): void {
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (let position = 0; ; ) {
    const n = readSync(from, buffer, 0, buffer.length, position);
    if (n === 0) return;
    writeSync(to, buffer, 0, n);
    position += n;
  }
}

/**
 * A searchset Bundle (what the HTTP API answers) of one page of matches: `total` is the number of matches
 * (default: the page's), `next` / `previous` the URLs of the pages either side (`Bundle.link`).
 */
export function searchsetBundle(resources: readonly Resource[], selfUrl: string, paging: { total?: number; next?: string; previous?: string } = {}): Resource {
  return {
    resourceType: 'Bundle',
    id: `search-${Date.now()}`,
    type: 'searchset',
    total: paging.total ?? resources.length,
    link: [
      { relation: 'self', url: selfUrl },
      ...(paging.next === undefined ? [] : [{ relation: 'next', url: paging.next }]),
      ...(paging.previous === undefined ? [] : [{ relation: 'previous', url: paging.previous }]),
    ],
    entry: resources.map((resource) => ({ fullUrl: `${selfUrl.split('/fhir/')[0]}/fhir/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' } })),
  };
}
