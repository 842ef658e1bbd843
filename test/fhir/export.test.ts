import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding, Reading, RecordKind, RecordBodies, StreamChunk } from '../../device-sdk/records.js';
import { EdgeStore } from '../../edge/edge-store.js';
import { exportEdgeResources, transactionBundle, validateTransactionBundle, writeTransactionBundle } from '../../edge/fhir/export.js';
import { FhirServer } from '../../edge/fhir/http.js';
import { patientId, readingObservation, type Resource } from '../../edge/fhir/mapping.js';
import { validateFhir } from '../../edge/fhir/validate.js';
import { medge, requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('fhir');
const T0 = Date.UTC(2026, 10, 23, 8, 0, 0);
const SHA = 'a'.repeat(64);

/** Commits records of one kind for a device, the way the ingest does. */
function put<K extends RecordKind>(store: EdgeStore, deviceId: string, kind: K, bodies: { t: number; body: RecordBodies[K] }[], bootId = 'boot-1', afterSeq = 0): void {
  store.commit({
    site: 'ward-3',
    deviceId,
    kind,
    bootId,
    afterSeq,
    lastSeq: afterSeq + bodies.length,
    ackedUpTo: 0,
    records: bodies.map((b, i) => ({ seq: afterSeq + i + 1, bootId, tMs: b.t, body: encodeBody(kind, b.body) })),
  });
}

function populate(dir: string): void {
  const store = new EdgeStore(dir);
  const readings: Reading[] = [
    { sensor: 'device', type: 'device-info', value: 0, unit: '', tDevice: T0, context: { firmwareVersion: 'medge 0.1.0', model: 'Pi 4 clinic kit' } },
    { sensor: 'ecg', type: 'heart-rate', value: 72, unit: '/min', tDevice: T0 + 10_000, context: { method: 'ecg-qrs' } },
    { sensor: 'meter', type: 'glucose', value: 64, unit: 'mg/dL', tDevice: T0 + 20_000, tMeter: T0 + 19_000, meterRecord: 41, context: { meal: 'fasting' } },
    { sensor: 'cgm', type: 'glucose', value: 190, unit: 'mg/dL', tDevice: T0 + 30_000, context: { specimen: 'interstitial' } },
    { sensor: 'strap', type: 'rr-interval', value: 800, unit: 'ms', tDevice: T0 + 31_000 },
  ];
  put(store, 'clinic-01', 'reading', readings.map((r) => ({ t: r.tDevice, body: r })));
  const findings: Finding[] = [
    { kind: 'ecg-rhythm', label: 'AFIB', probability: 0.91, t: T0 + 60_000, intervalStart: T0 + 40_000, intervalEnd: T0 + 60_000, modelId: 'ecg-af@1.0.0', modelSha256: SHA, inputQuality: 0.8, qualityFlags: ['baseline-wander'], sensor: 'ecg' },
    { kind: 'pcg-screening', label: 'abnormal', probability: 0.77, t: T0 + 70_000, modelId: 'pcg-abnormal@1.0.0', modelSha256: 'b'.repeat(64), inputQuality: 0.9 },
  ];
  put(store, 'clinic-01', 'finding', findings.map((f) => ({ t: f.t, body: f })));
  const alerts: Alert[] = [{ kind: 'ecg-af-onset', severity: 2, message: 'Irregular rhythm suggestive of AF: review by a clinician.', t: T0 + 60_000, sensor: 'ecg' }];
  put(store, 'clinic-01', 'alert', alerts.map((a) => ({ t: a.t, body: a })));
  const chunks: StreamChunk[] = Array.from({ length: 40 }, (_, i) => ({
    sensor: 'ecg',
    channel: 0,
    firstSample: i * 360,
    t0: T0 + i * 1000 + 30_000,
    rateHz: 360,
    unit: 'mV',
    gain: 200,
    samples: Int16Array.from({ length: 360 }, (_, k) => Math.round(200 * Math.sin(k / 20))),
  }));
  put(store, 'clinic-01', 'chunk', chunks.map((c) => ({ t: c.t0 + 1000, body: c })));
  put(store, 'clinic-02', 'reading', [{ t: T0, body: { sensor: 'strap', type: 'heart-rate', value: 88, unit: '/min', tDevice: T0 } }]);
  store.close();
}

const codesOf = (r: Resource): string[] => ((r.code as { coding?: { code: string }[] }).coding ?? []).map((c) => c.code);

describe('FHIR R4 export from the edge store', () => {
  beforeAll(() => {
    // Compiling the schema once up front keeps the per-test figures meaningful.
    validateFhir({ resourceType: 'Patient', id: 'warm-up' });
  });

  it('writes a transaction Bundle that validates against the official R4 schema, with the right codes and units', () => {
    const dir = tmp();
    populate(dir);
    const resources = exportEdgeResources(dir, { now: T0 + 3600_000 });
    const bundle = transactionBundle(resources, T0 + 3600_000);
    const result = validateFhir(bundle);
    expect(result.errors).toEqual([]);
    expect(result.valid).toBe(true);

    const obs = resources.filter((r) => r.resourceType === 'Observation');
    const hr = obs.filter((r) => codesOf(r).includes('8867-4'));
    expect(hr).toHaveLength(2);
    expect(hr[0]?.valueQuantity).toEqual({ value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' });
    const meter = obs.filter((r) => codesOf(r).includes('41653-7'));
    const cgm = obs.filter((r) => codesOf(r).includes('99504-3'));
    expect(meter).toHaveLength(1);
    expect(cgm).toHaveLength(1);
    expect(meter[0]?.effectiveDateTime).toBe(new Date(T0 + 19_000).toISOString()); // the meter's own clock
    expect((meter[0]?.interpretation as { coding: { code: string }[] }[])[0]?.coding[0]?.code).toBe('L');
    expect((cgm[0]?.valueQuantity as { code: string }).code).toBe('mg/dL');
    // Telemetry with no clinical code is not exported as an Observation.
    expect(obs.some((r) => JSON.stringify(r).includes('rr-interval'))).toBe(false);

    const af = obs.find((r) => codesOf(r).includes('8601-7'));
    expect(af?.status).toBe('preliminary');
    expect((af?.valueCodeableConcept as { coding: { code: string }[] }).coding[0]?.code).toBe('49436004');
    expect(af?.effectivePeriod).toEqual({ start: new Date(T0 + 40_000).toISOString(), end: new Date(T0 + 60_000).toISOString() });
    const components = af?.component as { code: { coding: { code: string }[] }; valueQuantity: { value: number } }[];
    expect(components.find((c) => c.code.coding[0]?.code === 'probability')?.valueQuantity.value).toBe(91);
    expect(components.find((c) => c.code.coding[0]?.code === 'input-quality')?.valueQuantity.value).toBe(0.8);
    expect(JSON.stringify(af?.note)).toMatch(/not a diagnosis/);
    expect(JSON.stringify(af?.note)).toContain('From sensor ecg of device clinic-01.');
    const modelRef = (af?.device as { reference: string }).reference;
    const model = resources.find((r) => `Device/${r.id}` === modelRef);
    expect(model?.identifier).toEqual([{ system: 'https://medge.dev/fhir/sid/model-sha256', value: SHA }]);
    expect(model?.version).toEqual([{ type: { text: 'model' }, value: '1.0.0' }]);

    const pcg = obs.find((r) => codesOf(r).includes('heart-sound-screening'));
    expect((pcg?.method as { coding: { code: string }[] }).coding[0]?.code).toBe('37931006');
    expect((pcg?.interpretation as { coding: { code: string }[] }[])[0]?.coding[0]?.code).toBe('A');

    // Waveform only around the ECG finding and alert (t = T0+60 s, +-5 s), as SampledData.
    const waves = obs.filter((r) => codesOf(r).includes('131328'));
    expect(waves.length).toBeGreaterThan(0);
    expect(waves.length).toBeLessThan(40);
    const sd = (waves[0]?.component as { valueSampledData: { period: number; factor: number; data: string; dimensions: number } }[])[0]?.valueSampledData;
    expect(sd?.period).toBeCloseTo(1000 / 360, 5);
    expect(sd?.factor).toBe(1 / 200);
    expect(sd?.data.split(' ')).toHaveLength(360);

    const device = resources.find((r) => r.resourceType === 'Device' && r.id === 'dev-clinic-01');
    expect(device?.modelNumber).toBe('Pi 4 clinic kit');
    expect(device?.version).toEqual([{ type: { text: 'firmware' }, value: 'medge 0.1.0' }]);

    // Patients are pseudonymous and one per device; every subject reference resolves in the Bundle.
    const patients = resources.filter((r) => r.resourceType === 'Patient');
    expect(patients.map((p) => p.id).sort()).toEqual([patientId('ward-3', 'clinic-01'), patientId('ward-3', 'clinic-02')].sort());
    expect(JSON.stringify(patients)).not.toMatch(/clinic-0/);
    const ids = new Set(resources.map((r) => `${r.resourceType}/${r.id}`));
    const refs = JSON.stringify(bundle).match(/"reference":"[^"]+"/g) ?? [];
    for (const ref of refs) expect(ids.has(ref.slice('"reference":"'.length, -1))).toBe(true);

    // One DiagnosticReport per session, referencing the session's observations and naming the alert.
    const reports = resources.filter((r) => r.resourceType === 'DiagnosticReport');
    expect(reports).toHaveLength(2);
    const report = reports.find((r) => JSON.stringify(r.subject).includes(patientId('ward-3', 'clinic-01')));
    expect((report?.result as unknown[]).length).toBe(obs.filter((r) => JSON.stringify(r.subject).includes(patientId('ward-3', 'clinic-01'))).length);
    expect(report?.conclusion).toMatch(/1 alert\(s\).*suggestive of AF/);
  });

  it('keeps CGM record identifiers unique across sensor sessions (the time offset restarts with each sensor)', () => {
    const cgm = (seq: number, sessionStart: string | undefined): Reading => ({ sensor: 'cgm-1', type: 'glucose', value: 100, unit: 'mg/dL', tDevice: 1_000 * seq, meterRecord: 5, context: { source: 'cgm', ...(sessionStart ? { sessionStart } : {}) } });
    const identifier = (seq: number, sessionStart?: string) => {
      const obs = readingObservation({ deviceId: 'dev-1', site: 'site-a', bootId: 'b', seq, tMs: 1_000 * seq, body: cgm(seq, sessionStart) }) as Resource & { identifier: { system: string; value: string }[] };
      return obs.identifier.find((i) => i.system.endsWith('/meter-sequence'))?.value;
    };
    const a = identifier(1, '2026-01-05T08:00:00+01:00');
    const b = identifier(2, '2026-01-05T20:00:00+01:00');
    expect(a).toBe('dev-1/cgm-1/2026-01-05T08:00:00+01:00/5');
    expect(b).not.toBe(a);
    expect(identifier(3)).toBe('dev-1/cgm-1/5');
  });

  it("names a meter record by the meter's serial when the meter told one (the same meter at another address keeps its identifiers), else by its address", () => {
    const identifier = (seq: number, context: Record<string, string>) => {
      const body: Reading = { sensor: 'meter', type: 'glucose', value: 100, unit: 'mg/dL', tDevice: 1_000 * seq, meterRecord: 7, context };
      const obs = readingObservation({ deviceId: 'dev-1', site: 'site-a', bootId: 'b', seq, tMs: 1_000 * seq, body }) as Resource & { identifier: { system: string; value: string }[] };
      return obs.identifier.find((i) => i.system.endsWith('/meter-sequence'))?.value;
    };
    expect(identifier(1, { meter: 'C0:FF:EE:00:00:01', meterSerial: 'GM7-004211' })).toBe('dev-1/meter/sn:GM7-004211/7');
    expect(identifier(2, { meter: 'D4:2A:19:7E:00:05', meterSerial: 'GM7-004211' })).toBe('dev-1/meter/sn:GM7-004211/7');
    expect(identifier(3, { meter: 'C0:FF:EE:00:00:01', meterSerial: 'GM7-009999' })).toBe('dev-1/meter/sn:GM7-009999/7');
    expect(identifier(4, { meter: 'C0:FF:EE:00:00:01' })).toBe('dev-1/meter/C0:FF:EE:00:00:01/7'); // a row stored without a serial, as before
  });

  it('states the glucose target range in the unit of the reading (QA: "70-180 mg/dL" on mmol/L readings)', () => {
    const observation = (value: number, unit: string) =>
      readingObservation({ deviceId: 'dev-1', site: 'site-a', bootId: 'b', seq: 1, tMs: 1_000, body: { sensor: 'meter', type: 'glucose', value, unit, tDevice: 1_000 } }) as Resource & {
        referenceRange: { low: { value: number; unit: string }; high: { value: number }; text: string }[];
        interpretation: { coding: { code: string }[] }[];
      };
    const mmol = observation(3.4, 'mmol/L');
    expect(mmol.referenceRange[0]).toMatchObject({ low: { value: 3.9, unit: 'mmol/L' }, high: { value: 10 }, text: 'Consensus target range 3.9-10 mmol/L' });
    expect(mmol.interpretation[0]?.coding[0]?.code).toBe('L');
    expect(observation(120, 'mg/dL').referenceRange[0]?.text).toBe('Consensus target range 70-180 mg/dL');
  });

  it('is idempotent: the same store gives the same resources, and entries are PUTs by id', () => {
    const dir = tmp();
    populate(dir);
    const a = exportEdgeResources(dir, { now: 1 });
    const b = exportEdgeResources(dir, { now: 1 });
    expect(b).toEqual(a);
    const bundle = transactionBundle(a, 1) as unknown as { entry: { fullUrl: string; request: { method: string; url: string } }[] };
    expect(bundle.entry.every((e) => e.request.method === 'PUT' && /^urn:uuid:[0-9a-f-]{36}$/.test(e.fullUrl))).toBe(true);
    expect(new Set(bundle.entry.map((e) => e.fullUrl)).size).toBe(bundle.entry.length);
  });

  it('writes the Bundle entry by entry: the file parses to the same Bundle, and entry-wise validation names entry[i]', () => {
    const dir = tmp();
    populate(dir);
    const resources = exportEdgeResources(dir, { now: 1 });
    const file = join(dir, 'out', 'bundle.json');
    mkdirSync(join(dir, 'out'));
    writeTransactionBundle(file, resources, 5);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(transactionBundle(resources, 5));
    expect(readdirSync(join(dir, 'out'))).toEqual(['bundle.json']); // no temporary file left
    expect(validateTransactionBundle(resources, 5)).toEqual([]);
    const broken = resources.map((r, i) => (i === 3 ? { ...r, status: 'done' } : r));
    const errors = validateTransactionBundle(broken, 5);
    expect(errors).toEqual(validateFhir(transactionBundle(broken, 5)).errors);
    expect(errors[0]).toMatch(/\.entry\[3\]\.resource\(/);
  });

  it('medge edge export-fhir writes the Bundle of 400,000 readings (JSON.stringify of the whole Bundle threw "Invalid string length")', async () => {
    const dir = tmp();
    const store = new EdgeStore(dir);
    const total = 400_000;
    for (let off = 0; off < total; off += 5000) {
      const bodies = Array.from({ length: 5000 }, (_, i) => {
        const t = T0 + (off + i) * 60_000;
        return { t, body: { sensor: 'cgm', type: 'glucose', value: 60 + ((off + i) % 200), unit: 'mg/dL', tDevice: t, context: { specimen: 'interstitial' } } as Reading };
      });
      put(store, 'clinic-big', 'reading', bodies, 'boot-1', off);
    }
    store.close();
    const file = join(dir, 'big.json');
    // Entry-wise validation is covered above; it would double this test's time.
    const result = await medge(['edge', 'export-fhir', '--data', dir, '--out', file, '--no-validate'], { timeoutMs: 240_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('400003 resources (1 Device, 1 Patient, 400000 Observation, 1 DiagnosticReport)');
    expect(statSync(file).size).toBeGreaterThan(400_000_000);
    const head = Buffer.alloc(200);
    const fd = openSync(file, 'r');
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    expect(head.toString('utf8')).toMatch(/^\{"resourceType":"Bundle","id":"medge-export-\d+","type":"transaction","timestamp":"[^"]+","entry":\[\n\{"fullUrl":"urn:uuid:/);
  }, 300_000);

  it('--since keeps only later records', () => {
    const dir = tmp();
    populate(dir);
    const later = exportEdgeResources(dir, { sinceMs: T0 + 25_000, waveformWindowMs: 0 });
    const obs = later.filter((r) => r.resourceType === 'Observation');
    expect(obs.some((r) => codesOf(r).includes('41653-7'))).toBe(false);
    expect(obs.some((r) => codesOf(r).includes('99504-3'))).toBe(true);
  });

  it('codes the labels the runtime writes: af-suspected is SNOMED atrial fibrillation (A), its negations are not, slow/fast rates are L/H', () => {
    const dir = tmp();
    const store = new EdgeStore(dir);
    const finding = (kind: string, label: string, i: number): { t: number; body: Finding } => ({
      t: T0 + i,
      body: { kind, label, probability: 0.9, t: T0 + i, modelId: 'algo:af@1', modelSha256: SHA, inputQuality: 1, sensor: 'ecg' },
    });
    // Labels from firmware/ecg-monitor.ts (onAf, the rate and beat-class findings), then negations that must never be coded AF.
    const labels: [string, string][] = [['ecg-af', 'af-suspected'], ['ecg-af', 'af-not-suspected'], ['ecg-rate', 'slow'], ['ecg-rate', 'fast'], ['ecg-beat-classes', 'no-ectopy'], ['ecg-rhythm', 'no afib'], ['ecg-rhythm', 'non-af']];
    put(store, 'clinic-09', 'finding', labels.map(([kind, label], i) => finding(kind, label, i)));
    store.close();
    const obs = exportEdgeResources(dir, { now: T0 + 3600_000 }).filter((r) => r.resourceType === 'Observation');
    const byLabel = new Map(obs.map((r) => [(r.valueCodeableConcept as { text: string }).text, r]));
    const afCoded = (label: string) => ((byLabel.get(label)?.valueCodeableConcept as { coding?: { code: string }[] }).coding ?? []).map((c) => c.code);
    const interpretation = (label: string) => (byLabel.get(label)?.interpretation as { coding: { code: string }[] }[] | undefined)?.[0]?.coding[0]?.code;
    expect(afCoded('af-suspected')).toEqual(['49436004']);
    for (const negation of ['af-not-suspected', 'no afib', 'non-af']) expect(afCoded(negation)).toEqual([]);
    expect(labels.map(([, label]) => interpretation(label))).toEqual(['A', 'N', 'L', 'H', 'N', undefined, undefined]);
    expect(validateFhir(transactionBundle(obs, T0)).errors).toEqual([]);
  });

  it('takes the ECG waveform around alerts first: routine heart-rate findings do not use up the excerpts', () => {
    const dir = tmp();
    const store = new EdgeStore(dir);
    // 130 s of ECG in 100 ms chunks; a heart rate every 5 s; an electrode lead-off alert at 125 s.
    const chunks: StreamChunk[] = Array.from({ length: 1300 }, (_, i) => ({ sensor: 'ecg', channel: 0, firstSample: i * 36, t0: T0 + i * 100, rateHz: 360, unit: 'mV', gain: 200, samples: new Int16Array(36).fill(i % 7) }));
    put(store, 'clinic-09', 'chunk', chunks.map((c) => ({ t: c.t0 + 100, body: c })));
    const rates: Finding[] = Array.from({ length: 24 }, (_, i) => ({ kind: 'ecg-rate', label: 'normal-range', value: 72, probability: 1, t: T0 + 5000 * (i + 1), modelId: 'algo:qrs-detector@1', modelSha256: SHA, inputQuality: 1, sensor: 'ecg' }));
    put(store, 'clinic-09', 'finding', rates.map((f) => ({ t: f.t, body: f })));
    put(store, 'clinic-09', 'alert', [{ t: T0 + 125_000, body: { kind: 'ecg-lead-off', severity: 2, message: 'ECG front end reports electrode contact lost', t: T0 + 125_000, sensor: 'ecg' } }]);
    store.close();
    const excerpts = exportEdgeResources(dir, { maxWaveformSecondsPerSession: 12 })
      .filter((r) => (r as { code?: { text?: string } }).code?.text === 'ECG waveform excerpt')
      .map((r) => Date.parse((r as unknown as { effectivePeriod: { start: string } }).effectivePeriod.start) - T0);
    // 12 s in all: the chunks touching the alert's +-5 s first (101), nearest first, then 1.9 s around the first heart rate.
    expect(excerpts).toHaveLength(120);
    expect(excerpts.slice(0, 101).sort((a, b) => a - b)).toEqual(Array.from({ length: 101 }, (_, i) => 119_900 + 100 * i));
    expect(excerpts[0]).toBe(124_900);
    expect(excerpts.slice(101).every((t) => t >= 4_000 && t < 6_000)).toBe(true);
  });
});

describe('FHIR R4 schema validation', () => {
  it('rejects invalid resources and names what is wrong, also inside a Bundle', () => {
    const good = { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' } };
    expect(validateFhir(good).valid).toBe(true);
    const badStatus = validateFhir({ ...good, status: 'done' });
    expect(badStatus.valid).toBe(false);
    expect(badStatus.errors[0]).toMatch(/\(Observation\/o1\)\/status must be equal to one of the allowed values/);
    expect(validateFhir({ resourceType: 'Observation', id: 'o2', status: 'final' }).errors[0]).toMatch(/must have required property 'code'/);
    expect(validateFhir({ ...good, id: 'has spaces' }).valid).toBe(false);
    expect(validateFhir({ ...good, valueQuantity: { value: '72' } }).valid).toBe(false);
    expect(validateFhir({ ...good, subjectt: { reference: 'Patient/p' } }).errors[0]).toMatch(/additional properties \(subjectt\)/);
    expect(validateFhir({ resourceType: 'Sandwich', id: 'x' }).errors[0]).toMatch(/not an R4 resource type/);
    const bundle = { resourceType: 'Bundle', id: 'b', type: 'transaction', entry: [{ resource: good, request: { method: 'PUT', url: 'Observation/o1' } }, { resource: { ...good, id: 'o3', status: 'done' }, request: { method: 'PUT', url: 'Observation/o3' } }] };
    const result = validateFhir(bundle);
    expect(result.valid).toBe(false);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/entry\[1\]\.resource\(Observation\/o3\)\/status/);
    expect(validateFhir({ ...bundle, type: 'pile' }).valid).toBe(false);
  });
});

describe('FHIR HTTP API on the edge', () => {
  let server: FhirServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function get(path: string): Promise<{ status: number; body: Resource & { entry?: { resource: Resource }[]; total?: number } }> {
    const res = await fetch(`http://127.0.0.1:${server?.port}${path}`);
    expect(res.headers.get('content-type')).toMatch(/application\/fhir\+json/);
    return { status: res.status, body: (await res.json()) as Resource };
  }

  it('searches Observations by patient, code and date, and serves Devices, reads and errors', async () => {
    const dir = tmp();
    populate(dir);
    server = new FhirServer({ dataDir: dir, port: 0 });
    await server.start();
    const p1 = patientId('ward-3', 'clinic-01');

    const hr = await get(`/fhir/Observation?patient=Patient/${p1}&code=http://loinc.org|8867-4`);
    expect(hr.status).toBe(200);
    expect(hr.body.type).toBe('searchset');
    expect(hr.body.total).toBe(1);
    expect(validateFhir(hr.body).valid).toBe(true);

    const glucose = await get(`/fhir/Observation?patient=${p1}&code=41653-7,99504-3`);
    expect(glucose.body.total).toBe(2);
    const later = await get(`/fhir/Observation?patient=${p1}&code=41653-7,99504-3&date=ge${new Date(T0 + 25_000).toISOString()}`);
    expect(later.body.entry?.map((e) => codesOf(e.resource))).toEqual([['99504-3']]);
    const day = await get('/fhir/Observation?code=8867-4&date=2026-11-23');
    expect(day.body.total).toBe(2);
    const otherDay = await get('/fhir/Observation?code=8867-4&date=2026-11-24');
    expect(otherDay.body.total).toBe(0);

    const devices = await get('/fhir/Device');
    expect(devices.body.entry?.map((e) => e.resource.id).sort()).toEqual(expect.arrayContaining(['dev-clinic-01', 'dev-clinic-02']));
    expect(devices.body.total).toBe(4); // two devices, two models

    const one = hr.body.entry?.[0]?.resource;
    const read = await get(`/fhir/Observation/${one?.id}`);
    expect(read.body).toEqual(one);

    const bad = await get('/fhir/Observation?colour=red');
    expect(bad.status).toBe(400);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    expect((await get('/fhir/Observation?date=yesterday')).status).toBe(400);
    expect((await get('/fhir/Observation/nope')).status).toBe(404);
    expect((await get('/fhir/Medication')).status).toBe(404);
    const meta = await get('/fhir/metadata');
    expect(meta.body.resourceType).toBe('CapabilityStatement');
    expect(validateFhir(meta.body).errors).toEqual([]);
  });
});


describe('medge edge export-fhir (CLI) after a demo run', () => {
  it('exports what a real runtime sent to a real edge, valid against the R4 schema', async () => {
    requireBuild();
    const dir = tmp();
    const demo = await medge(['demo', '--seconds', '6', '--json', '--data', dir], { timeoutMs: 120_000 });
    expect(demo.code).toBe(0);
    const out = join(dir, 'bundle.json');
    const result = await medge(['edge', 'export-fhir', '--data', join(dir, 'edge'), '--out', out], { timeoutMs: 120_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/valid against the FHIR R4 schema/);
    const bundle = JSON.parse(readFileSync(out, 'utf8')) as { type: string; entry: { resource: Resource }[] };
    expect(bundle.type).toBe('transaction');
    expect(validateFhir(bundle).valid).toBe(true);
    const resources = bundle.entry.map((e) => e.resource);
    expect(resources.filter((r) => r.resourceType === 'Observation' && codesOf(r).includes('8867-4')).length).toBeGreaterThan(0);
    const device = resources.find((r) => r.resourceType === 'Device' && (r.version as { type: { text: string }; value: string }[])[0]?.type.text === 'firmware');
    expect((device?.version as { value: string }[])[0]?.value).toMatch(/^medge \d+\.\d+\.\d+/);
    expect(resources.filter((r) => r.resourceType === 'DiagnosticReport').length).toBeGreaterThan(0);

    const bad = await medge(['edge', 'export-fhir', '--data', join(dir, 'nothing-here'), '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no edge store/);
  });
});
