/**
 * Builds FHIR R4 resources from an edge data directory, read-only (usable while the edge runs).
 *
 * Per device: a Device, a pseudonymous Patient, Observations for heart rate, glucose (meter and
 * CGM kept distinct), findings (ECG, heart sounds, glucose) with the model as a software Device,
 * ECG waveform excerpts around ECG findings and alerts as SampledData, and a DiagnosticReport per
 * session (one runtime boot). `--since` filters by the device's record time.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';
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
  patientResource,
  type Resource,
  readingObservation,
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

interface Row extends RecordRow {
  /** Set (non-null) only for a seq-conflict record an operator imported. */
  body_sha256: string | null;
}

function toRecord<T>(row: Row, body: T): StoredRecord<T> {
  const record: StoredRecord<T> = { deviceId: row.device_id, site: row.site, bootId: row.boot_id, seq: row.seq, tMs: row.t_ms, body };
  if (row.body_sha256 !== null) record.variant = conflictVariant(row.boot_id, row.t_ms, row.body_sha256);
  return record;
}

/**
 * The records to export as SQL: `records` (unique by device, kind and seq: each once) and the seq-conflict
 * records an operator imported (each settled once, `edge/conflicts.ts`), which carry their body hash.
 */
function exportedRecordsSql(db: Database.Database): string {
  const stored = 'SELECT device_id, kind, seq, site, boot_id, t_ms, body, NULL AS body_sha256 FROM records';
  const imported = importedRecordsSql(db);
  return imported === undefined ? stored : `${stored} UNION ALL ${imported}`;
}

/** Appends in place: copying the list at each finding made a session of 100,000 ECG findings quadratic. */
function addMoment(moments: Map<string, { t: number; rank: number }[]>, key: string, moment: { t: number; rank: number }): void {
  const list = moments.get(key);
  if (list === undefined) moments.set(key, [moment]);
  else list.push(moment);
}

/** The resources of an open edge database. */
export function exportResources(db: Database.Database, options: ExportOptions = {}): Resource[] {
  const since = options.sinceMs ?? 0;
  const windowMs = options.waveformWindowMs ?? 5000;
  const maxWaveformMs = (options.maxWaveformSecondsPerSession ?? 60) * 1000;
  const devices = new Map<string, DeviceInfo>();
  const patients = new Map<string, Resource>();
  const models = new Map<string, Resource>();
  const sessions = new Map<string, SessionSummary>();
  const observations: Resource[] = [];
  /** Per session, the times of its ECG findings and alerts and how much their waveform matters (`momentRank`). */
  const ecgMoments = new Map<string, { t: number; rank: number }[]>();

  const sessionOf = (row: Row): SessionSummary => {
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
  const deviceOf = (row: Row): DeviceInfo => {
    let d = devices.get(row.device_id);
    if (!d) {
      d = { deviceId: row.device_id, site: row.site, sensors: [] };
      devices.set(row.device_id, d);
      const p = patientResource(row.site, row.device_id);
      patients.set(p.id, p);
    }
    return d;
  };
  const addSensor = (d: DeviceInfo, sensor: string) => {
    if (!d.sensors.includes(sensor)) d.sensors.push(sensor);
  };

  const source = exportedRecordsSql(db);
  const clinical = db.prepare(`SELECT * FROM (${source}) WHERE kind IN ('reading', 'finding', 'alert') AND t_ms >= ? ORDER BY device_id, t_ms, kind, seq, body_sha256`);
  for (const row of clinical.iterate(since) as Iterable<Row>) {
    const d = deviceOf(row);
    const s = sessionOf(row);
    if (row.kind === 'reading') {
      const r = decodeBody('reading', row.body) as Reading;
      if (r.type === 'device-info') {
        if (r.context?.model) d.model = r.context.model;
        if (r.context?.firmwareVersion) d.firmwareVersion = r.context.firmwareVersion;
        continue;
      }
      addSensor(d, r.sensor);
      const obs = readingObservation(toRecord(row, r));
      if (obs) {
        observations.push(obs);
        s.observationIds.push(obs.id);
      }
    } else if (row.kind === 'finding') {
      const f = decodeBody('finding', row.body) as Finding;
      if (f.sensor !== undefined) addSensor(d, f.sensor);
      const obs = findingObservation(toRecord(row, f));
      observations.push(obs);
      s.observationIds.push(obs.id);
      const modelRef = modelResourceId(f.modelId, f.modelSha256);
      if (!models.has(modelRef)) models.set(modelRef, modelResource(f.modelId, f.modelSha256));
      if (f.kind.toLowerCase().startsWith('ecg')) {
        s.hasEcg = true;
        const key = `${row.device_id}\u0000${row.boot_id}`;
        addMoment(ecgMoments, key, { t: f.t, rank: momentRank(f) });
      }
    } else {
      const a = decodeBody('alert', row.body) as Alert;
      s.alerts.push(a);
      if (a.kind.toLowerCase().startsWith('ecg')) {
        const key = `${row.device_id}\u0000${row.boot_id}`;
        addMoment(ecgMoments, key, { t: a.t, rank: momentRank(a) });
      }
    }
  }

  // ECG waveform excerpts: the chunks that overlap a window around each ECG finding or alert.
  if (windowMs > 0) {
    const chunks = db.prepare(`SELECT * FROM (${source}) WHERE kind = 'chunk' AND device_id = ? AND boot_id = ? AND t_ms BETWEEN ? AND ? ORDER BY seq, body_sha256`);
    for (const [key, moments] of ecgMoments) {
      const s = sessions.get(key);
      if (!s) continue;
      /** Chunks already excerpted, by seq and (for an imported conflict record) body hash. */
      const taken = new Set<string>();
      const chunkKey = (row: Row) => `${row.seq}\u0000${row.body_sha256 ?? ''}`;
      let takenMs = 0;
      for (const { t } of moments.sort((a, b) => b.rank - a.rank || a.t - b.t)) {
        if (takenMs >= maxWaveformMs) break;
        // Chunks are stored when they end, so look a little past the window too.
        const near: { row: Row; c: StreamChunk; distance: number; ms: number }[] = [];
        for (const row of chunks.iterate(s.deviceId, s.bootId, t - windowMs, t + 2 * windowMs) as Iterable<Row>) {
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
          const obs = waveformObservation(toRecord(row, c));
          observations.push(obs);
          s.observationIds.push(obs.id);
          s.hasEcg = true;
        }
      }
    }
  }
  const now = options.now ?? Date.now();
  return [
    ...[...devices.values()].map(deviceResource),
    ...models.values(),
    ...patients.values(),
    ...observations,
    ...[...sessions.values()].filter((s) => s.observationIds.length > 0 || s.alerts.length > 0).map((s) => sessionReport(s, now)),
  ];
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

/**
 * Validates the transaction Bundle of `resources` against the R4 schema one entry at a time (the
 * errors name `entry[i]` as `validateFhir` on the whole Bundle does), without building the Bundle.
 */
export function validateTransactionBundle(resources: readonly Resource[], now = Date.now()): string[] {
  const shell = transactionBundle([], now);
  const errors: string[] = [...validateFhir(shell).errors];
  resources.forEach((resource, i) => {
    for (const e of validateFhir({ ...shell, entry: [transactionEntry(resource)] }).errors) errors.push(e.replace(/^(\(Bundle\/[^)]*\)\.entry)\[0\]/, `$1[${i}]`));
  });
  return errors;
}

/**
 * Writes the transaction Bundle of `resources` to `file` (through a temporary file and a rename), one
 * entry per line. The text is written in pieces: the Bundle of a large edge store is more text than one
 * JavaScript string may hold (400,000 readings: `JSON.stringify` threw "Invalid string length").
 */
export function writeTransactionBundle(file: string, resources: readonly Resource[], now = Date.now()): void {
  const { entry: _entry, ...head } = transactionBundle([], now);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let pending = `${JSON.stringify(head).slice(0, -1)},"entry":[\n`;
    resources.forEach((resource, i) => {
      pending += `${JSON.stringify(transactionEntry(resource))}${i + 1 < resources.length ? ',' : ''}\n`;
      if (pending.length >= 1 << 20) {
        writeSync(fd, pending);
        pending = '';
      }
    });
    writeSync(fd, `${pending}]}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, file);
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
