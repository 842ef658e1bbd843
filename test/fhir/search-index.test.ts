import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding, Reading, RecordBodies, RecordKind, StreamChunk } from '../../device-sdk/records.js';
import { openReadOnlyDatabase } from '../../device-sdk/store/sqlite-outbox-store.js';
import { resolveStoredConflicts } from '../../edge/conflicts.js';
import { edgeDatabasePath, EdgeStore } from '../../edge/edge-store.js';
import { exportEdgeResources, exportResources, validateTransactionBundle, writeEdgeExport, writeTransactionBundle } from '../../edge/fhir/export.js';
import { FhirServer } from '../../edge/fhir/http.js';
import { patientId, type Resource } from '../../edge/fhir/mapping.js';
import { answerFromResources, codingsOf } from '../../edge/fhir/query.js';
import { FhirIndexError, type FhirIndexEvent, FhirSearchIndex, fhirIndexPath } from '../../edge/fhir/search-index.js';
import { requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

// The FHIR API answers searches from an SQL index of the Observations (search-index.ts) instead of filtering
// the whole export in memory; the CLI export streams. Both must give exactly what the in-memory path gives.

const tmp = useTempDirs('fhir-sql');
/** Five minutes before midnight UTC: the records straddle a day (and a month's end is near) for date searches. */
const T0 = Date.UTC(2026, 10, 30, 23, 55, 0);
const NOW = T0 + 86_400_000;
const SHA = 'c'.repeat(64);

/**
 * Commits records as the ingest does, each device's records of a kind numbered on from the last ones
 * committed; `again` commits them under the seqs from 1 instead (another board with the same id: seq conflicts).
 */
function ledger(store: EdgeStore, site: string) {
  const last = new Map<string, number>();
  return <K extends RecordKind>(deviceId: string, kind: K, bootId: string, bodies: { t: number; body: RecordBodies[K] }[], again = false): void => {
    const afterSeq = again ? 0 : (last.get(`${deviceId}/${kind}`) ?? 0);
    const records = bodies.map(({ t, body }, i) => ({ seq: afterSeq + i + 1, bootId, tMs: t, body: encodeBody(kind, body) }));
    store.commit({ site, deviceId, kind, bootId, afterSeq, lastSeq: afterSeq + records.length, ackedUpTo: 0, records });
    last.set(`${deviceId}/${kind}`, Math.max(last.get(`${deviceId}/${kind}`) ?? 0, afterSeq + records.length));
  };
}

/** Two sites, three devices, two sessions of one, every record kind the export maps, and imported seq-conflict records. */
function richStore(dir: string): void {
  const store = new EdgeStore(dir);
  const ward3 = ledger(store, 'ward-3');
  const ward4 = ledger(store, 'ward-4');
  const readings: Reading[] = [{ sensor: 'device', type: 'device-info', value: 0, unit: '', tDevice: T0, context: { firmwareVersion: 'medge 0.2.0', model: 'Pi 5 kit' } }];
  for (let i = 0; i < 60; i++) {
    const t = T0 + i * 10_000;
    readings.push({ sensor: 'ecg', type: 'heart-rate', value: 60 + i, unit: '/min', tDevice: t, context: { method: 'ecg-qrs' } });
    if (i % 6 === 0) readings.push({ sensor: 'meter', type: 'glucose', value: 50 + i * 3, unit: i % 12 === 0 ? 'mg/dL' : 'mmol/L', tDevice: t + 1, tMeter: t - 7_200_000, meterRecord: 100 + i, context: { meal: 'fasting' } });
    if (i % 4 === 0) readings.push({ sensor: 'cgm', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: t + 2, context: { specimen: 'interstitial' } });
    if (i % 10 === 0) readings.push({ sensor: 'strap', type: 'rr-interval', value: 800, unit: 'ms', tDevice: t + 3 });
  }
  ward3('clinic-01', 'reading', 'boot-1', readings.map((r) => ({ t: r.tDevice, body: r })));
  const findings: Finding[] = [
    { kind: 'ecg-rhythm', label: 'AFIB', probability: 0.91, t: T0 + 240_000, intervalStart: T0 + 200_000, intervalEnd: T0 + 240_000, modelId: 'ecg-af@1.0.0', modelSha256: SHA, inputQuality: 0.8, sensor: 'ecg' },
    { kind: 'ecg-rate', label: 'fast', value: 120, probability: 1, t: T0 + 400_000, modelId: 'algo:qrs@1', modelSha256: SHA, inputQuality: 1, sensor: 'ecg' },
    { kind: 'pcg-screening', label: 'abnormal', probability: 0.7, t: T0 + 420_000, modelId: 'pcg@1.0.0', modelSha256: 'd'.repeat(64), inputQuality: 0.9 },
    { kind: 'glucose-trend', label: 'hypo predicted', probability: 0.6, t: T0 + 430_000, modelId: 'glucose@2', modelSha256: 'e'.repeat(64), inputQuality: 0.95 },
  ];
  ward3('clinic-01', 'finding', 'boot-1', findings.map((f) => ({ t: f.t, body: f })));
  const alerts: Alert[] = [{ kind: 'ecg-af-onset', severity: 2, message: 'Irregular rhythm: review.', t: T0 + 240_000, sensor: 'ecg' }];
  ward3('clinic-01', 'alert', 'boot-1', alerts.map((a) => ({ t: a.t, body: a })));
  const chunks: StreamChunk[] = Array.from({ length: 30 }, (_, i) => ({
    sensor: 'ecg',
    channel: 0,
    firstSample: i * 250,
    t0: T0 + 225_000 + i * 1000,
    rateHz: 250,
    unit: 'mV',
    gain: 100,
    samples: Int16Array.from({ length: 250 }, (_, k) => (k * 7) % 90),
  }));
  ward3('clinic-01', 'chunk', 'boot-1', chunks.map((c) => ({ t: c.t0 + 1000, body: c })));
  // A second session of clinic-01, the next day.
  const later = Array.from({ length: 5 }, (_, i) => ({ t: T0 + 90_000_000 + i * 60_000, body: { sensor: 'ecg', type: 'heart-rate', value: 70, unit: '/min', tDevice: T0 + 90_000_000 + i * 60_000 } as Reading }));
  ward3('clinic-01', 'reading', 'boot-2', later);
  // Another site and device, and its seq conflicts (another board with the same id), imported by an operator.
  const hr = (v: number, t: number): { t: number; body: Reading } => ({ t, body: { sensor: 'strap', type: 'heart-rate', value: v, unit: '/min', tDevice: t } });
  ward4('clinic-02', 'reading', 'boot-z', [hr(80, T0), hr(81, T0 + 60_000), hr(82, T0 + 120_000)]);
  ward4('clinic-02', 'reading', 'boot-y', [hr(90, T0 + 30_000), hr(91, T0 + 90_000)], true);
  ward4('clinic-03', 'reading', 'boot-q', [hr(55, T0 - 86_400_000)]);
  store.close();
  const settled = resolveStoredConflicts(edgeDatabasePath(dir), { deviceId: 'clinic-02' }, { choice: 'import', operator: 'QA', reason: 'second board' }, NOW);
  expect(settled).toHaveLength(2);
}

/** An answer's JSON with the ids made of the clock (`search-<ms>`, `oo-<ms>`) set aside: everything else must be equal. */
function comparable(body: string): unknown {
  const parsed = JSON.parse(body) as { id?: string };
  if (typeof parsed.id === 'string' && /^(search|oo)-\d+$/.test(parsed.id)) parsed.id = 'clock';
  return parsed;
}

/** Compares the API's answers over HTTP with the in-memory search of a fresh export of `dir`. */
async function expectSameOverHttp(server: FhirServer, dir: string, paths: string[]): Promise<void> {
  const resources = exportEdgeResources(dir, { now: NOW });
  const base = `http://127.0.0.1:${server.port}`;
  for (const path of paths) {
    const res = await fetch(`${base}${path}`);
    const expected = answerFromResources(new URL(`${base}${path}`), resources);
    expect({ path, status: res.status, body: comparable(await res.text()) }).toEqual({ path, status: expected.status, body: comparable(expected.body) });
  }
}

/** The requests compared: every type, every read, and searches by each parameter, prefix, precision and paging form. */
function requests(resources: readonly Resource[]): string[] {
  const observations = resources.filter((r) => r.resourceType === 'Observation');
  const codings = [...new Map(observations.flatMap(codingsOf).map((c) => [`${c.system}|${c.code}`, c])).values()];
  const patients = resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id);
  const dates = ['2026', '2026-11', '2026-12', '2026-11-30', '2026-12-01', '2026-11-30T23:58', '2026-11-30T23:56:10Z', '2026-12-01T01:00:00+02:00', '2026-11-30T23:59:59.500Z', '2026-12-02', '2025'];
  const paths = ['Observation', 'Device', 'Patient', 'DiagnosticReport'].map((t) => `/fhir/${t}`);
  for (const r of resources) paths.push(`/fhir/${r.resourceType}/${r.id}`);
  paths.push('/fhir/Observation/nope', `/fhir/Device/${observations[0]?.id}`, `/fhir/Observation/${resources[0]?.id}`);
  for (const p of [...patients, 'pt-unknown']) paths.push(`/fhir/Observation?patient=${p}`, `/fhir/Observation?subject=Patient/${p}`, `/fhir/DiagnosticReport?patient=Patient/${p}`);
  for (const c of codings) paths.push(`/fhir/Observation?code=${encodeURIComponent(`${c.system}|${c.code}`)}`, `/fhir/Observation?code=${c.code}`, `/fhir/Observation?code=|${c.code}`, `/fhir/Observation?code=${encodeURIComponent(`http://wrong.example|${c.code}`)}`);
  paths.push('/fhir/Observation?code=8867-4,99504-3', '/fhir/Observation?code=41653-7,nothing', '/fhir/DiagnosticReport?code=11524-6');
  for (const d of dates) {
    for (const prefix of ['', 'eq', 'ne', 'gt', 'ge', 'lt', 'le']) paths.push(`/fhir/Observation?date=${encodeURIComponent(prefix + d)}`);
    paths.push(`/fhir/DiagnosticReport?date=ge${encodeURIComponent(d)}`);
  }
  paths.push(
    `/fhir/Observation?patient=${patients[0]}&code=8867-4&date=ge2026-11-30T23:58&date=lt2026-12-01`,
    '/fhir/Observation?date=ge2026-11-30&date=le2026-11-30T23:57',
    `/fhir/Observation?_id=${observations[3]?.id},${observations[7]?.id},nope`,
    `/fhir/Observation?_id=${observations[5]?.id}&code=8867-4`,
  );
  for (const paging of ['_count=0', '_count=1', '_count=7', '_count=7&_offset=7', '_count=7&_offset=3', '_offset=50', '_count=1000', '_count=5000', '_offset=100000', '_count=-1', '_count=x', '_offset=1.5', '_count=7&_format=json']) {
    paths.push(`/fhir/Observation?${paging}`, `/fhir/Observation?code=8867-4&${paging}`, `/fhir/Device?${paging}`);
  }
  paths.push('/fhir/Observation?colour=red', '/fhir/Observation?date=yesterday', '/fhir/Observation?date=ne', '/fhir/Observation?code=8867-4&date=bad&colour=red', '/fhir/Observation?colour=red&date=bad', '/fhir/Device?date=nope');
  return paths;
}

describe('FHIR searches in SQL (search-index.ts) against the in-memory searches of the whole export', () => {
  const open: Database.Database[] = [];
  afterEach(() => {
    for (const db of open.splice(0)) db.close();
  });

  it('answers every read and search exactly as answerFromResources does on a real store (ids, order, total, links, errors)', () => {
    const dir = tmp();
    richStore(dir);
    const db = openReadOnlyDatabase(edgeDatabasePath(dir), 'edge store', '');
    open.push(db);
    const resources = exportResources(db, { now: NOW });
    const index = new FhirSearchIndex(db, { now: NOW });
    try {
      const observations = resources.filter((r) => r.resourceType === 'Observation');
      expect(index.observations).toBe(observations.length);
      // The fixture has what the comparison needs: imported conflict ids, waveforms, periods, two days, every code.
      expect(observations.filter((o) => /^r-clinic-02-\d+-[0-9a-f]{12}$/.test(o.id))).toHaveLength(2);
      expect(observations.filter((o) => o.id.startsWith('w-')).length).toBeGreaterThan(5);
      expect(observations.filter((o) => o.effectivePeriod !== undefined && o.id.startsWith('f-'))).toHaveLength(1);
      const paths = requests(resources);
      expect(paths.length).toBeGreaterThan(300);
      const statuses = new Map<number, number>();
      let nonEmpty = 0;
      for (const path of paths) {
        const url = new URL(`http://edge.test${path}`);
        const expected = answerFromResources(url, resources);
        const actual = index.answer(url);
        expect({ path, status: actual.status, body: comparable(actual.body) }).toEqual({ path, status: expected.status, body: comparable(expected.body) });
        statuses.set(actual.status, (statuses.get(actual.status) ?? 0) + 1);
        const total = (JSON.parse(actual.body) as { total?: number }).total;
        if (path.startsWith('/fhir/Observation?') && total !== undefined && total > 0 && total < observations.length) nonEmpty += 1;
      }
      // Not a comparison of empty answers: reads found, searches that select some but not all, and each kind of error.
      expect(statuses.get(200)).toBeGreaterThan(300);
      expect(statuses.get(400)).toBeGreaterThan(10);
      expect(statuses.get(404)).toBe(3);
      expect(nonEmpty).toBeGreaterThan(100);
    } finally {
      index.close();
    }
  });

  it('reads each page from the store: a page reflects the stored rows, and a read by id finds an imported conflict record', () => {
    const dir = tmp();
    richStore(dir);
    const db = openReadOnlyDatabase(edgeDatabasePath(dir), 'edge store', '');
    open.push(db);
    const index = new FhirSearchIndex(db, { now: NOW });
    try {
      const imported = exportResources(db, { now: NOW }).find((r) => /^r-clinic-02-1-[0-9a-f]{12}$/.test(r.id));
      expect(imported).toBeDefined();
      const read = index.answer(new URL(`http://edge.test/fhir/Observation/${imported?.id}`));
      expect(read.status).toBe(200);
      expect(JSON.parse(read.body)).toEqual(imported);
      const p2 = patientId('ward-4', 'clinic-02');
      const page = JSON.parse(index.answer(new URL(`http://edge.test/fhir/Observation?patient=${p2}&_count=2&_offset=1`)).body) as { total: number; entry: { resource: { valueQuantity: { value: number } } }[] };
      // clinic-02: 80, 90 (imported, seq 1 of boot-y at T0+30 s), 81, 91, 82 in time order; the page is the 2nd and 3rd.
      expect(page.total).toBe(5);
      expect(page.entry.map((e) => e.resource.valueQuantity.value)).toEqual([90, 81]);
    } finally {
      index.close();
    }
  });
});

describe('medge edge export-fhir, streamed (writeEdgeExport)', () => {
  it('writes the same bytes as the in-memory export and names the same schema errors', () => {
    const dir = tmp();
    richStore(dir);
    const expectedFile = join(dir, 'expected.json');
    const resources = exportEdgeResources(dir, { now: NOW });
    writeTransactionBundle(expectedFile, resources, NOW);
    const out = join(dir, 'out', 'streamed.json');
    const result = writeEdgeExport(dir, out, { now: NOW });
    expect(result.errors).toEqual([]);
    expect(result.written).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(expectedFile, 'utf8'));
    expect([...result.counts]).toEqual([...resources.reduce((m, r) => m.set(r.resourceType, (m.get(r.resourceType) ?? 0) + 1), new Map<string, number>())]);
    expect(readdirSync(join(dir, 'out'))).toEqual(['streamed.json']); // no temporary files left
    // --since and no waveform: still the same bytes.
    const since = { now: NOW, sinceMs: T0 + 300_000, waveformWindowMs: 0 };
    writeTransactionBundle(expectedFile, exportEdgeResources(dir, since), NOW);
    expect(writeEdgeExport(dir, out, { ...since, validate: false }).written).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(expectedFile, 'utf8'));
  });

  it('an empty store gives the same empty Bundle', () => {
    const dir = tmp();
    new EdgeStore(dir).close();
    const expectedFile = join(dir, 'expected.json');
    writeTransactionBundle(expectedFile, exportEdgeResources(dir, { now: NOW }), NOW);
    const out = join(dir, 'streamed.json');
    expect(writeEdgeExport(dir, out, { now: NOW }).written).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(expectedFile, 'utf8'));
  });

  it('an invalid Bundle is not written, with the errors validateTransactionBundle names (entry indices after Devices and Patients)', () => {
    const dir = tmp();
    richStore(dir);
    // Findings the schema refuses: an empty label is an empty FHIR string (valueCodeableConcept.text).
    const store = new EdgeStore(dir);
    const empty = (t: number): { t: number; body: Finding } => ({ t, body: { kind: 'ecg-rhythm', label: '', probability: 0.5, t, modelId: 'ecg-af@1.0.0', modelSha256: SHA, inputQuality: 1 } });
    ledger(store, 'ward-4')('clinic-03', 'finding', 'boot-q', [empty(T0), empty(T0 + 1000)]);
    store.close();
    const resources = exportEdgeResources(dir, { now: NOW });
    const expected = validateTransactionBundle(resources, NOW);
    expect(expected.length).toBeGreaterThan(0);
    const out = join(dir, 'out', 'bad.json');
    const result = writeEdgeExport(dir, out, { now: NOW });
    expect(result.written).toBe(false);
    expect(result.errors).toEqual(expected);
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
  });
});

describe('the FHIR API worker answers from the SQL index', () => {
  let server: FhirServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('gives over HTTP what answerFromResources gives on the export', async () => {
    requireBuild(); // the query worker runs the compiled code
    const dir = tmp();
    richStore(dir);
    const resources = exportEdgeResources(dir, { now: NOW });
    server = new FhirServer({ dataDir: dir, port: 0, export: { now: NOW } });
    await server.start();
    const p1 = patientId('ward-3', 'clinic-01');
    await expectSameOverHttp(server, dir, [
      '/fhir/Observation?_count=10&_offset=20',
      `/fhir/Observation?patient=${p1}&code=8867-4&date=ge2026-12-01`,
      '/fhir/Observation?code=131328',
      `/fhir/Observation/${resources.find((r) => r.id.startsWith('w-'))?.id}`,
      '/fhir/DiagnosticReport',
      '/fhir/Observation?date=yesterday',
    ]);
  });

  it('builds it once from the whole store (logged once); a restarted API opens it and takes in what was synced meanwhile', async () => {
    requireBuild(); // the query worker runs the compiled code
    const dir = tmp();
    const { stages, close } = stagedStore(dir);
    stages[0]?.();
    stages[1]?.();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const paths = () => [
      '/fhir/Observation?_count=10&_offset=20',
      '/fhir/Observation?code=131328',
      '/fhir/Device',
      '/fhir/Patient',
      '/fhir/DiagnosticReport',
      `/fhir/Observation?patient=${patientId('ward-4', 'strap-02')}`,
      ...exportEdgeResources(dir, { now: NOW }).filter((r) => r.resourceType === 'Observation').slice(-5).map((r) => `/fhir/Observation/${r.id}`),
    ];
    const watermark = () => {
      const index = new Database(join(dir, 'edge-fhir-index.sqlite'), { readonly: true, fileMustExist: true }) // the file a restarted API opens;
      try {
        return Number(index.prepare("SELECT value FROM fhir_meta WHERE key = 'records_max_id'").pluck().get());
      } finally {
        index.close();
      }
    };
    const highestRecord = () => {
      const db = openReadOnlyDatabase(edgeDatabasePath(dir), 'edge store', '');
      try {
        return db.prepare('SELECT max(id) FROM records').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    server = new FhirServer({ dataDir: dir, port: 0, export: { now: NOW }, logger });
    await server.start();
    await expectSameOverHttp(server, dir, paths());
    await server.stop();
    expect(watermark()).toBe(highestRecord());
    for (const stage of stages.slice(2)) stage();
    server = new FhirServer({ dataDir: dir, port: 0, export: { now: NOW }, logger });
    await server.start();
    await expectSameOverHttp(server, dir, paths());
    close();
    expect(watermark()).toBe(highestRecord());
    const built = lines.map((l) => JSON.parse(l) as { component?: string; reason?: string }).filter((l) => l.component === 'fhir-index');
    expect(built.map((l) => l.reason)).toEqual(['missing']);
  });
});

/** A heart rate of `sensor` at `t`. */
const heartRate = (sensor: string, value: number, t: number): { t: number; body: Reading } => ({ t, body: { sensor, type: 'heart-rate', value, unit: '/min', tDevice: t } });
/** One-second ECG chunks from `from`, stored when they end. */
const ecgChunks = (from: number, count: number, firstSample = 0): { t: number; body: StreamChunk }[] =>
  Array.from({ length: count }, (_, i) => ({
    t: from + (i + 1) * 1000,
    body: { sensor: 'ecg', channel: 0, firstSample: firstSample + i * 250, t0: from + i * 1000, rateHz: 250, unit: 'mV', gain: 100, samples: Int16Array.from({ length: 250 }, (_, k) => (k * 3 + i) % 80) },
  }));
const ecgFinding = (kind: string, label: string, t: number): { t: number; body: Finding } => ({ t, body: { kind, label, probability: 0.9, t, modelId: 'ecg-af@1.0.0', modelSha256: SHA, inputQuality: 0.9, sensor: 'ecg' } });
const ecgAlert = (t: number): { t: number; body: Alert } => ({ t, body: { kind: 'ecg-af-onset', severity: 2, message: 'Irregular rhythm: review.', t, sensor: 'ecg' } });
const deviceInfo = (firmwareVersion: string, t: number): { t: number; body: Reading } => ({ t, body: { sensor: 'device', type: 'device-info', value: 0, unit: '', tDevice: t, context: { firmwareVersion, model: 'Pi 5 kit' } } });

/**
 * A store filled in stages as devices would sync it, each stage changing what earlier Observations,
 * Devices and DiagnosticReports look like: records older than those indexed (their place in the export is
 * before), chunks before the findings they are excerpted around, a later firmware, a new sensor, an ECG
 * alert earlier than a session's first ECG moment (its excerpts move before the other session's), a device
 * whose id sorts first, seq conflicts and then their import by an operator.
 */
function stagedStore(dir: string): { stages: (() => void)[]; close: () => void } {
  const store = new EdgeStore(dir);
  const ward3 = ledger(store, 'ward-3');
  const ward4 = ledger(store, 'ward-4');
  const stages = [
    () => {
      ward3('ecg-01', 'reading', 'boot-1', Array.from({ length: 30 }, (_, i) => heartRate('ecg', 60 + i, T0 + (20 + i) * 10_000)));
      ward4('strap-02', 'reading', 'boot-z', [heartRate('strap', 80, T0), heartRate('strap', 81, T0 + 60_000), heartRate('strap', 82, T0 + 120_000)]);
    },
    () => {
      ward3('ecg-01', 'chunk', 'boot-1', ecgChunks(T0 + 225_000, 30));
      ward3('ecg-01', 'reading', 'boot-1', [deviceInfo('medge 0.1.0', T0), ...Array.from({ length: 20 }, (_, i) => heartRate('ecg', 50 + i, T0 + i * 10_000))]);
    },
    () => {
      ward3('ecg-01', 'finding', 'boot-1', [ecgFinding('ecg-rhythm', 'AFIB', T0 + 240_000), ecgFinding('ecg-rate', 'fast', T0 + 400_000)]);
      ward3('ecg-01', 'alert', 'boot-1', [ecgAlert(T0 + 238_000)]);
      ward3('ecg-01', 'chunk', 'boot-2', ecgChunks(T0 + 90_000_000, 20));
      ward3('ecg-01', 'finding', 'boot-2', [ecgFinding('ecg-rhythm', 'sinus', T0 + 90_010_000)]);
      ward3('ecg-01', 'reading', 'boot-2', [deviceInfo('medge 0.2.0', T0 + 90_000_000), heartRate('ecg', 70, T0 + 90_000_500)]);
    },
    () => {
      ward3('ecg-01', 'chunk', 'boot-1', ecgChunks(T0 + 395_000, 10, 30 * 250));
      ward3('ecg-01', 'alert', 'boot-2', [ecgAlert(T0 - 5000)]);
      ward3('ecg-01', 'reading', 'boot-1', [{ t: T0 + 5, body: { sensor: 'strap', type: 'rr-interval', value: 800, unit: 'ms', tDevice: T0 + 5 } }]);
      ward4('strap-02', 'reading', 'boot-y', [heartRate('strap', 90, T0 + 30_000), heartRate('strap', 91, T0 + 90_000)], true);
      ward4('aaa-00', 'reading', 'boot-a', [heartRate('strap', 55, T0 - 86_400_000)]);
    },
    () => {
      expect(resolveStoredConflicts(edgeDatabasePath(dir), { deviceId: 'strap-02' }, { choice: 'import', operator: 'QA', reason: 'second board' }, NOW)).toHaveLength(2);
    },
  ];
  return { stages, close: () => store.close() };
}

/** Compares every request of `requests()` between the index and the in-memory search of a fresh export; returns the export. */
function expectSameAnswers(db: Database.Database, index: FhirSearchIndex): Resource[] {
  const resources = exportResources(db, { now: NOW });
  for (const path of requests(resources)) {
    const url = new URL(`http://edge.test${path}`);
    const expected = answerFromResources(url, resources);
    const actual = index.answer(url);
    expect({ path, status: actual.status, body: comparable(actual.body) }).toEqual({ path, status: expected.status, body: comparable(expected.body) });
  }
  return resources;
}

const recordCount = (db: Database.Database): number => db.prepare('SELECT count(*) FROM records').pluck().get() as number;

describe('the search index kept beside the store (edge-fhir-index.sqlite) and brought up to date from its watermark', () => {
  const open: Database.Database[] = [];
  const indexes: FhirSearchIndex[] = [];
  afterEach(() => {
    for (const index of indexes.splice(0)) index.close();
    for (const db of open.splice(0)) db.close();
  });
  const openStore = (dir: string): Database.Database => {
    const db = openReadOnlyDatabase(edgeDatabasePath(dir), 'edge store', '');
    open.push(db);
    return db;
  };
  const openIndex = (db: Database.Database, dir: string, events: FhirIndexEvent[] = []): FhirSearchIndex => {
    const index = new FhirSearchIndex(db, { now: NOW }, { path: fhirIndexPath(dir), onEvent: (e) => events.push(e) });
    indexes.push(index);
    return index;
  };
  /** The whole staged store in `dir`, with its index built and closed; returns the store, open read-only. */
  const indexedStore = (dir: string): Database.Database => {
    const { stages, close } = stagedStore(dir);
    for (const stage of stages) stage();
    close();
    const db = openStore(dir);
    openIndex(db, dir).close();
    indexes.splice(0);
    return db;
  };

  it('reads only the rows added since its watermark, across reopenings, and answers as a fresh export of the whole store does', () => {
    const dir = tmp();
    const { stages, close } = stagedStore(dir);
    const [first, ...rest] = stages;
    first?.();
    const db = openStore(dir);
    const events: FhirIndexEvent[] = [];
    let index = openIndex(db, dir, events);
    expect(index.lastRefresh).toEqual({ rebuilt: 'missing', recordsRead: recordCount(db), importedRead: 0, sessionsExcerpted: 0 });
    expectSameAnswers(db, index);
    let seen = recordCount(db);
    for (const [i, stage] of rest.entries()) {
      stage();
      const refresh = index.refresh();
      expect(refresh.rebuilt).toBeUndefined();
      expect(refresh.recordsRead).toBe(recordCount(db) - seen); // the new rows only, never the whole store
      seen = recordCount(db);
      if (i === rest.length - 1) expect(refresh.importedRead).toBe(2);
      expectSameAnswers(db, index);
      // A new worker (or a restarted edge) opens the kept index and reads nothing from the store.
      index.close();
      indexes.splice(indexes.indexOf(index), 1);
      index = openIndex(db, dir, events);
      expect(index.lastRefresh).toEqual({ recordsRead: 0, importedRead: 0, sessionsExcerpted: 0 });
      expectSameAnswers(db, index);
    }
    close();
    expect(events).toEqual([{ kind: 'rebuilt', reason: 'missing' }]); // built once, never again
    // Unchanged store: a refresh reads nothing.
    expect(index.refresh()).toEqual({ recordsRead: 0, importedRead: 0, sessionsExcerpted: 0 });
    // The fixture did what it says: excerpts of both sessions, an imported record, the later firmware, the device sorting first.
    const resources = exportResources(db, { now: NOW });
    const waveformIds = resources.filter((r) => r.id.startsWith('w-')).map((r) => r.id);
    expect(waveformIds.length).toBeGreaterThan(20);
    expect(resources.filter((r) => /^r-strap-02-\d+-[0-9a-f]{12}$/.test(r.id))).toHaveLength(2);
    expect(resources.find((r) => r.id === 'dev-ecg-01')?.version).toEqual([{ type: { text: 'firmware' }, value: 'medge 0.2.0' }]);
    expect(resources.find((r) => r.resourceType === 'Device')?.id).toBe('dev-aaa-00');
  });

  it('a record ingested or imported after the index was built is found by the next request, with its stored content', () => {
    const dir = tmp();
    const { stages, close } = stagedStore(dir);
    stages[0]?.();
    stages[1]?.();
    stages[2]?.();
    stages[3]?.();
    const db = openStore(dir);
    const index = openIndex(db, dir);
    const imported = () => index.answer(new URL('http://edge.test/fhir/Observation?patient=' + patientId('ward-4', 'strap-02')));
    expect((JSON.parse(imported().body) as { total: number }).total).toBe(3); // the conflicts are not exported while open
    stages[4]?.();
    index.refresh();
    const page = JSON.parse(imported().body) as { total: number; entry: { resource: Resource }[] };
    expect(page.total).toBe(5);
    const variant = page.entry.map((e) => e.resource).find((r) => /^r-strap-02-1-[0-9a-f]{12}$/.test(r.id));
    expect((variant?.valueQuantity as { value: number }).value).toBe(90);
    close();
  });

  it('is built again from the whole store, and says so once, when it is damaged, of another version, or of another store', () => {
    const dir = tmp();
    const db = indexedStore(dir);
    const path = fhirIndexPath(dir);
    const reopen = (): { index: FhirSearchIndex; events: FhirIndexEvent[] } => {
      const events: FhirIndexEvent[] = [];
      const index = openIndex(db, dir, events);
      expectSameAnswers(db, index);
      index.close();
      indexes.splice(0);
      return { index, events };
    };
    // Not a database at all.
    writeFileSync(path, 'this is not an index');
    let { index, events } = reopen();
    expect(events.map((e) => e.reason)).toEqual(['corrupt']);
    expect(index.lastRefresh.rebuilt).toBe('corrupt');
    expect(index.lastRefresh.recordsRead).toBe(recordCount(db));
    // A database whose pages past the first are garbage.
    const bytes = readFileSync(path);
    bytes.fill(0xab, 4096);
    writeFileSync(path, bytes);
    ({ events } = reopen());
    expect(events.map((e) => e.reason)).toEqual(['corrupt']);
    // Made under another version.
    const raw = new Database(path);
    raw.prepare("UPDATE fhir_meta SET value = '{\"index\":0}' WHERE key = 'stamp'").run();
    raw.close();
    ({ events } = reopen());
    expect(events.map((e) => e.reason)).toEqual(['version']);
    // Intact and current: opened, not rebuilt.
    ({ index, events } = reopen());
    expect(events).toEqual([]);
    expect(index.lastRefresh.recordsRead).toBe(0);
  });

  it('answers from a private index, and says so, when the index file cannot be written', () => {
    const dir = tmp();
    const { stages, close } = stagedStore(dir);
    for (const stage of stages) stage();
    close();
    mkdirSync(fhirIndexPath(dir)); // a directory where the file would go: SQLite cannot open it
    const db = openStore(dir);
    const events: FhirIndexEvent[] = [];
    const index = openIndex(db, dir, events);
    expect(events.map((e) => e.reason)).toEqual(['unwritable']);
    expect(index.lastRefresh.recordsRead).toBe(recordCount(db));
    expectSameAnswers(db, index);
  });

  it('answers from an index in memory, and says so once, when the disk is full (the file removed) or another process holds the file locked', () => {
    for (const cause of ['disk-full', 'locked'] as const) {
      const dir = tmp();
      const { stages, close } = stagedStore(dir);
      stages[0]?.();
      stages[1]?.();
      const db = openStore(dir);
      const events: FhirIndexEvent[] = [];
      const index = openIndex(db, dir, events);
      const kept = index['index'] as Database.Database;
      let holder: Database.Database | undefined;
      if (cause === 'disk-full') {
        // SQLite's page limit on the index's connection: its next growth fails with SQLITE_FULL, as on a full disk.
        kept.pragma(`max_page_count = ${kept.pragma('page_count', { simple: true }) as number}`);
      } else {
        holder = new Database(fhirIndexPath(dir)); // another API process, a backup tool: a write transaction held open
        holder.exec('BEGIN IMMEDIATE');
      }
      for (const stage of stages.slice(2)) stage();
      close();
      // Before: refresh threw SQLITE_FULL (each request a 500) or SQLITE_BUSY after 10 s (each request a 503).
      const refreshed = index.refresh();
      expect(refreshed.rebuilt, cause).toBe(cause);
      expect(refreshed.recordsRead).toBe(recordCount(db));
      expect(events.map((e) => e.reason)).toEqual(['missing', cause]);
      expect(events[1]?.detail).toContain('answering from an index in memory');
      expect(existsSync(fhirIndexPath(dir))).toBe(cause === 'locked'); // a full disk gets the index's space back
      expectSameAnswers(db, index);
      // It stays in memory: later refreshes read only what is new, and nothing is said again.
      expect(index.refresh()).toEqual({ recordsRead: 0, importedRead: 0, sessionsExcerpted: 0 });
      holder?.exec('ROLLBACK');
      holder?.close();
      // The next opening (a new query worker) uses the file again.
      index.close();
      indexes.splice(indexes.indexOf(index), 1);
      const again: FhirIndexEvent[] = [];
      const reopened = openIndex(db, dir, again);
      expectSameAnswers(db, reopened);
      // Full disk: the file was removed, so it is built anew. Locked: the file as it was, brought up to date from its watermark.
      expect(again.map((e) => e.reason)).toEqual(cause === 'disk-full' ? ['missing'] : []);
      expect(reopened.lastRefresh.recordsRead).toBeGreaterThan(0);
      expect(existsSync(fhirIndexPath(dir))).toBe(true);
    }
  });

  it('never answers with another record when a restored store reused the row ids below the watermark (devices resent what it lost, in another order)', () => {
    // QA re-check: the row at the watermark was the same record again, so the index was kept, and its locators named
    // rows that held other records: a read of a glucose Observation answered with another patient's heart rate.
    const dir = tmp();
    const store = edgeDatabasePath(dir);
    const batch = (dev: string, from: number, n: number, v: number) => ({
      site: 'w',
      deviceId: dev,
      kind: 'reading' as const,
      bootId: 'b1',
      afterSeq: from,
      lastSeq: from + n,
      ackedUpTo: 0,
      records: Array.from({ length: n }, (_, i) => ({
        seq: from + i + 1,
        bootId: 'b1',
        tMs: T0 + (from + i) * 1000,
        body: encodeBody('reading', { sensor: dev === 'cgm-a' ? 'cgm' : 'strap', type: dev === 'cgm-a' ? 'glucose' : 'heart-rate', value: v + i, unit: dev === 'cgm-a' ? 'mg/dL' : '/min', tDevice: T0 + (from + i) * 1000 }),
      })),
    });
    const commit = (...batches: ReturnType<typeof batch>[]) => {
      const s = new EdgeStore(dir);
      for (const b of batches) s.commit(b);
      s.close();
    };
    const indexOnce = () => {
      const db = openReadOnlyDatabase(store, 'edge store', '');
      new FhirSearchIndex(db, { now: NOW }, { path: fhirIndexPath(dir) }).close();
      db.close();
    };
    commit(batch('cgm-a', 0, 100, 100), batch('hr-b', 0, 100, 50));
    indexOnce();
    writeFileSync(`${store}.bak`, readFileSync(store));
    commit(batch('cgm-a', 100, 25, 300), batch('hr-b', 100, 25, 80));
    indexOnce();
    for (const suffix of ['-wal', '-shm']) rmSync(`${store}${suffix}`, { force: true });
    writeFileSync(store, readFileSync(`${store}.bak`));
    commit(batch('hr-b', 100, 10, 80), batch('cgm-a', 100, 25, 300), batch('hr-b', 110, 15, 90));
    const db = openStore(dir);
    const index = openIndex(db, dir);
    const read = new URL('http://edge.test/fhir/Observation/r-cgm-a-101');
    expect(() => index.answer(read)).toThrow(FhirIndexError);
    // The worker rebuilds on that error (query-worker.ts); then every answer is the export's.
    index.rebuild('row-missing');
    expectSameAnswers(db, index);
    expect(JSON.parse(index.answer(read).body)).toMatchObject({ id: 'r-cgm-a-101', valueQuantity: { value: 300 } });
  });

  it('notices a store put in its place (a restored backup) and rows the store no longer holds', () => {
    const dir = tmp();
    let db = indexedStore(dir);
    // The same file, its last rows replaced by others (what a restore of an older backup followed by new syncs looks like).
    const writable = new Database(edgeDatabasePath(dir));
    const last = writable.prepare('SELECT max(id) FROM records').pluck().get() as number;
    writable.prepare('DELETE FROM records WHERE id > ?').run(last - 3);
    const store = new EdgeStore(dir);
    ledger(store, 'ward-9')('other-01', 'reading', 'boot-o', [heartRate('strap', 61, T0), heartRate('strap', 62, T0 + 1000), heartRate('strap', 63, T0 + 2000)]);
    store.close();
    const events: FhirIndexEvent[] = [];
    const index = openIndex(db, dir, events);
    expect(events.map((e) => e.reason)).toEqual(['store-replaced']);
    expectSameAnswers(db, index);
    // A row deleted below the watermark: the page that names it makes the index be rebuilt (as the worker does).
    const deleted = writable.prepare("SELECT id FROM records WHERE kind = 'reading' ORDER BY id LIMIT 1 OFFSET 5").pluck().get() as number;
    writable.prepare('DELETE FROM records WHERE id = ?').run(deleted);
    writable.close();
    const all = new URL('http://edge.test/fhir/Observation?_count=1000');
    expect(() => index.refresh() && index.answer(all)).toThrow(FhirIndexError);
    expect(index.rebuild('row-missing').rebuilt).toBe('row-missing');
    expectSameAnswers(db, index);
    // Another file in the store's place, an older backup (its rows end below the watermark): rebuilt at the next opening.
    index.close();
    indexes.splice(0);
    db.close();
    open.splice(0);
    const older = tmp();
    const backup = stagedStore(older);
    backup.stages[0]?.();
    backup.stages[1]?.();
    backup.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${edgeDatabasePath(dir)}${suffix}`, { force: true });
    writeFileSync(edgeDatabasePath(dir), readFileSync(edgeDatabasePath(older)));
    db = openStore(dir);
    const again: FhirIndexEvent[] = [];
    expectSameAnswers(db, openIndex(db, dir, again));
    expect(again.map((e) => e.reason)).toEqual(['store-replaced']);
  });
});
