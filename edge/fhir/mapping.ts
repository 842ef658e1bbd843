/**
 * Edge records → FHIR R4 resources. Pure functions of the stored records: the same store gives
 * the same resources (ids are derived from device, kind and seq), so re-exporting is idempotent
 * (transaction entries are PUTs).
 *
 * The patient is pseudonymous: the edge knows devices, not people. `Patient/pt-…` is a stable
 * pseudonym of (site, device); the hospital system links it to a person, never the device.
 */
import { createHash } from 'node:crypto';
import { type Alert, type Finding, meterRecordId, type Reading, type StreamChunk } from '../../device-sdk/records.js';
import { CATEGORY, CODES, type Coding, DECISION_SUPPORT_NOTE, INTERPRETATIONS, MEDGE_CODES, MEDGE_DEVICE_ID, MEDGE_MODEL_SHA256, MEDGE_PSEUDONYM, MEDGE_RECORD, UCUM } from './codes.js';

/**
 * Version of what this mapping gives an Observation search (`ObservationSearchFields`: ids, subjects,
 * effective instants, codings) and of which records become Observations. The API's persistent index
 * (`search-index.ts`) is rebuilt from the whole store when it was made under another version: bump it with
 * any change to those.
 */
export const FHIR_MAPPING_VERSION = 1;

/** A FHIR resource as plain JSON, checked against the official R4 JSON schema (validate.ts). */
export type Resource = { resourceType: string; id: string } & Record<string, unknown>;

export interface StoredRecord<T> {
  deviceId: string;
  site: string;
  bootId: string;
  seq: number;
  tMs: number;
  body: T;
  /**
   * Set for a seq-conflict record an operator imported (`edge/conflicts.ts`): it shares (device, kind,
   * seq) with a stored record, so its ids carry this too and never replace the stored record's resources.
   */
  variant?: string;
}

/** The FHIR id of a record's resource: from device and seq, plus the variant of an imported conflict record. */
const recordId = (prefix: string, rec: StoredRecord<unknown>): string =>
  rec.variant === undefined ? fhirId(prefix, rec.deviceId, rec.seq) : fhirId(prefix, rec.deviceId, rec.seq, rec.variant);

const ID_OK = /^[A-Za-z0-9\-.]{1,64}$/;

/** A FHIR id from parts: readable when the parts allow it, else a hash (ids are [A-Za-z0-9-.]{1,64}). */
export function fhirId(...parts: (string | number)[]): string {
  const readable = parts.map(String).join('-').replace(/[^A-Za-z0-9\-.]/g, '-');
  if (ID_OK.test(readable) && readable === parts.map(String).join('-')) return readable;
  const hash = createHash('sha256').update(parts.map(String).join('\u0000')).digest('hex');
  const prefix = readable.slice(0, 40).replace(/-+$/, '');
  return `${prefix}-${hash.slice(0, 16)}`.slice(0, 64);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Pseudonyms already computed, by site and device: every Observation names its patient (400,000 hashes for 400,000 readings). */
const pseudonyms = new Map<string, string>();

export function pseudonymOf(site: string, deviceId: string): string {
  const key = `${site}\u0000${deviceId}`;
  let pseudonym = pseudonyms.get(key);
  if (pseudonym === undefined) {
    pseudonym = createHash('sha256').update(`medge-patient\u0000${key}`).digest('hex').slice(0, 32);
    if (pseudonyms.size >= 10_000) pseudonyms.clear();
    pseudonyms.set(key, pseudonym);
  }
  return pseudonym;
}

export const patientId = (site: string, deviceId: string): string => `pt-${pseudonymOf(site, deviceId).slice(0, 24)}`;
export const deviceResourceId = (deviceId: string): string => fhirId('dev', deviceId);
export const modelResourceId = (modelId: string, sha256: string): string => fhirId('model', modelId.replace(/[^A-Za-z0-9\-.]/g, '-'), sha256.slice(0, 12));

export function patientResource(site: string, deviceId: string): Resource {
  return {
    resourceType: 'Patient',
    id: patientId(site, deviceId),
    identifier: [{ system: MEDGE_PSEUDONYM, value: pseudonymOf(site, deviceId) }],
    active: true,
  };
}

export interface DeviceInfo {
  deviceId: string;
  site: string;
  model?: string;
  firmwareVersion?: string;
  sensors: string[];
}

export function deviceResource(info: DeviceInfo): Resource {
  const r: Resource = {
    resourceType: 'Device',
    id: deviceResourceId(info.deviceId),
    identifier: [{ system: MEDGE_DEVICE_ID, value: info.deviceId }],
    status: 'active',
    manufacturer: 'medge',
    deviceName: [{ name: info.deviceId, type: 'user-friendly-name' }],
    modelNumber: info.model ?? 'medge point-of-care device',
    type: { text: 'Point-of-care monitoring device (medge runtime)' },
    version: [{ type: { text: 'firmware' }, value: info.firmwareVersion ?? 'unknown' }],
    property: info.sensors.length > 0 ? [{ type: { text: 'sensors' }, valueCode: info.sensors.map((s) => ({ text: s })) }] : undefined,
    note: [{ text: `Site ${info.site}` }],
  };
  if (r.property === undefined) delete r.property;
  return r;
}

/** The on-device model as a software Device: its id and version, pinned by the sha256 of its manifest. */
export function modelResource(modelId: string, sha256: string): Resource {
  const [name, version] = modelId.includes('@') ? (modelId.split('@', 2) as [string, string]) : [modelId, 'unspecified'];
  return {
    resourceType: 'Device',
    id: modelResourceId(modelId, sha256),
    identifier: [{ system: MEDGE_MODEL_SHA256, value: sha256 }],
    status: 'active',
    deviceName: [{ name, type: 'model-name' }],
    type: { text: 'Software: on-device analysis algorithm (decision support)' },
    version: [{ type: { text: 'model' }, value: version }],
  };
}

function quantity(value: number, unit: string): Record<string, unknown> {
  // Only units we know to be valid UCUM get the UCUM system and code.
  const ucum: Record<string, string> = { '/min': '/min', 'mg/dL': 'mg/dL', 'mmol/L': 'mmol/L', '%': '%', mV: 'mV', ms: 'ms', kJ: 'kJ', '1': '1' };
  const code = ucum[unit];
  return code ? { value, unit, system: UCUM, code } : { value, unit };
}

const concept = (c: Coding, text?: string) => ({ coding: [c], ...(text ? { text } : {}) });

function common(rec: StoredRecord<unknown>, kind: string): Record<string, unknown> {
  return {
    identifier: [{ system: MEDGE_RECORD, value: `${rec.deviceId}/${kind}/${rec.seq}${rec.variant === undefined ? '' : `/${rec.variant}`}` }],
    subject: { reference: subjectReference(rec.site, rec.deviceId) },
  };
}

/** The `subject` reference of a device's resources: its pseudonymous Patient. */
export const subjectReference = (site: string, deviceId: string): string => `Patient/${patientId(site, deviceId)}`;

/** What an Observation search looks at (`edge/fhir/query.ts`): id, subject, the instants it covers, its codings and those of its components. */
export interface ObservationSearchFields {
  id: string;
  subject: string | undefined;
  effective: [number, number] | undefined;
  codings: { system?: string; code?: string }[];
}

/** The instants a resource's `effectiveDateTime` or `effectivePeriod` covers (a dateTime: one instant). */
export function effectiveRange(r: Resource): [number, number] | undefined {
  const dt = r.effectiveDateTime as string | undefined;
  if (dt) {
    const t = Date.parse(dt);
    return [t, t];
  }
  const p = r.effectivePeriod as { start?: string; end?: string } | undefined;
  if (p?.start) return [Date.parse(p.start), Date.parse(p.end ?? p.start)];
  return undefined;
}

/** The codings a `code` search looks at: the resource's `code` and those of its components. */
export function codingsOf(r: Resource): { system?: string; code?: string }[] {
  return ((r.code as { coding?: { system?: string; code?: string }[] } | undefined)?.coding ?? []).concat(
    ((r.component as { code?: { coding?: { system?: string; code?: string }[] } }[] | undefined) ?? []).flatMap((c) => c.code?.coding ?? []),
  );
}

/** The search fields of a resource. */
export function searchFieldsOf(r: Resource): ObservationSearchFields {
  return { id: r.id, subject: (r.subject as { reference?: string } | undefined)?.reference, effective: effectiveRange(r), codings: codingsOf(r) };
}

/** The code of a reading's Observation; undefined for reading types with no clinical mapping (device telemetry). */
function readingCode(r: Reading): Coding | undefined {
  if (r.type === 'heart-rate') return CODES.heartRate;
  if (r.type === 'glucose' || r.type === 'cgm-glucose') return isCgmReading(r) ? CODES.glucoseCgm : CODES.glucoseMeter;
  return undefined;
}

/**
 * `searchFieldsOf(readingObservation(rec))` without making the Observation (the API's search index reads
 * every reading of the store); undefined where readingObservation gives none.
 */
export function readingSearchFields(rec: StoredRecord<Reading>): ObservationSearchFields | undefined {
  const code = readingCode(rec.body);
  if (code === undefined) return undefined;
  const t = Date.parse(iso(rec.body.tMeter ?? rec.body.tDevice));
  return { id: recordId('r', rec), subject: subjectReference(rec.site, rec.deviceId), effective: [t, t], codings: [code] };
}

/** Whether a glucose reading came from a CGM (interstitial fluid) rather than a finger-stick meter. */
export function isCgmReading(r: Reading): boolean {
  return r.type === 'cgm-glucose' || r.context?.specimen === 'interstitial' || r.context?.source === 'cgm';
}

/** The Observation of a reading, or undefined for reading types with no clinical mapping (device telemetry). */
export function readingObservation(rec: StoredRecord<Reading>): Resource | undefined {
  const r = rec.body;
  const code = readingCode(r);
  if (code === undefined) return undefined;
  const base = {
    resourceType: 'Observation',
    id: recordId('r', rec),
    ...common(rec, 'reading'),
    status: 'final',
    effectiveDateTime: iso(r.tMeter ?? r.tDevice),
    device: { reference: `Device/${deviceResourceId(rec.deviceId)}`, display: `${rec.deviceId} / ${r.sensor}` },
  };
  if (r.type === 'heart-rate') {
    const method = r.context?.method === 'ecg-qrs' ? 'ECG (QRS detection)' : `sensor ${r.sensor}`;
    return { ...base, category: [concept(CATEGORY.vitalSigns)], code: concept(code), valueQuantity: quantity(r.value, '/min'), method: { text: method } };
  }
  if (r.type === 'glucose' || r.type === 'cgm-glucose') {
    const low = r.unit === 'mmol/L' ? 3.9 : 70;
    const high = r.unit === 'mmol/L' ? 10 : 180;
    const interpretation = r.value < low ? INTERPRETATIONS.low : r.value > high ? INTERPRETATIONS.high : INTERPRETATIONS.normal;
    const obs: Resource = {
      ...base,
      category: [concept(CATEGORY.laboratory)],
      code: concept(code),
      valueQuantity: quantity(r.value, r.unit),
      interpretation: [concept(interpretation)],
      referenceRange: [{ low: quantity(low, r.unit), high: quantity(high, r.unit), text: `Consensus target range ${low}-${high} ${r.unit}` }],
    };
    const record = meterRecordId(r);
    if (record !== undefined) (obs.identifier as unknown[]).push({ system: `${MEDGE_RECORD}/meter-sequence`, value: `${rec.deviceId}/${r.sensor}/${record}` });
    if (r.context && Object.keys(r.context).length > 0) obs.note = [{ text: Object.entries(r.context).map(([k, v]) => `${k}: ${v}`).join('; ') }];
    return obs;
  }
  return undefined;
}

function findingCode(f: Finding): { code: Record<string, unknown>; category: Coding; method?: Record<string, unknown> } {
  const k = f.kind.toLowerCase();
  if (k.startsWith('ecg') || k.includes('rhythm') || k.includes('beat') || k.startsWith('af')) {
    return { code: { coding: [CODES.ecgImpression, CODES.ecgFinding], text: f.kind }, category: CATEGORY.procedure };
  }
  if (k.startsWith('pcg') || k.includes('heart-sound')) {
    return { code: { coding: [CODES.heartSoundScreening], text: f.kind }, category: CATEGORY.exam, method: concept(CODES.auscultation) };
  }
  if (k.startsWith('glucose') || k.includes('hypo') || k.includes('hyper')) {
    return { code: { coding: [CODES.glucoseFinding], text: f.kind }, category: CATEGORY.laboratory };
  }
  return { code: { coding: [CODES.finding], text: f.kind }, category: CATEGORY.exam };
}

/**
 * Interpretations of the labels the runtime's ECG analyses write (`firmware/ecg-monitor.ts`), which the
 * generic patterns below would miss or misread: `af-suspected` names no "afib", `af-not-suspected` and
 * `no-ectopy` are negations, and a heart rate is `slow` (< 50/min) or `fast` (> 100/min).
 */
const RUNTIME_LABEL_INTERPRETATIONS: ReadonlyMap<string, Coding> = new Map([
  ['af-suspected', INTERPRETATIONS.abnormal],
  ['af-not-suspected', INTERPRETATIONS.normal],
  ['no-ectopy', INTERPRETATIONS.normal],
  ['slow', INTERPRETATIONS.low],
  ['fast', INTERPRETATIONS.high],
]);

/** Whether a finding label says atrial fibrillation is present (never for a negation such as `af-not-suspected`). */
export function labelsAtrialFibrillation(label: string): boolean {
  const l = label.toLowerCase();
  if (/(^|[^a-z])(no|not|non)([^a-z]|$)/.test(l)) return false;
  return /(^|[^a-z])(afib|af)([^a-z]|$)|atrial fibrillation/.test(l);
}

function findingValue(f: Finding): Record<string, unknown> {
  const label = f.label.toLowerCase();
  const coding: Coding[] = [];
  if (labelsAtrialFibrillation(label)) coding.push(CODES.atrialFibrillation);
  if (label.includes('murmur')) coding.push(CODES.heartMurmur);
  return { valueCodeableConcept: { ...(coding.length > 0 ? { coding } : {}), text: f.label } };
}

export function findingObservation(rec: StoredRecord<Finding>): Resource {
  const f = rec.body;
  const { code, category, method } = findingCode(f);
  const label = f.label.toLowerCase();
  const interpretation = RUNTIME_LABEL_INTERPRETATIONS.get(label) ?? (labelsAtrialFibrillation(label) || /abnormal|murmur|ventricular|^v$|^s$|hypo|hyper|tachy|brady/.test(label) ? INTERPRETATIONS.abnormal : /normal|^n$|sinus/.test(label) ? INTERPRETATIONS.normal : undefined);
  const component: Record<string, unknown>[] = [
    { code: concept(CODES.probability), valueQuantity: quantity(Math.round(f.probability * 10000) / 100, '%') },
    { code: concept(CODES.inputQuality), valueQuantity: quantity(Math.round(f.inputQuality * 1000) / 1000, '1') },
  ];
  if (f.value !== undefined) component.push({ code: { text: `${f.kind} value` }, valueQuantity: { value: f.value } });
  const effective = f.intervalStart !== undefined && f.intervalEnd !== undefined && f.intervalEnd >= f.intervalStart ? { effectivePeriod: { start: iso(f.intervalStart), end: iso(f.intervalEnd) } } : { effectiveDateTime: iso(f.t) };
  const notes = [DECISION_SUPPORT_NOTE, `Model ${f.modelId}, sha256 ${f.modelSha256}.`];
  if (f.sensor !== undefined) notes.push(`From sensor ${f.sensor} of device ${rec.deviceId}.`);
  if (f.qualityFlags && f.qualityFlags.length > 0) notes.push(`Input quality flags: ${f.qualityFlags.join(', ')}.`);
  if (f.evidence) notes.push(`Evidence: ${f.evidence}`);
  return {
    resourceType: 'Observation',
    id: recordId('f', rec),
    ...common(rec, 'finding'),
    status: 'preliminary',
    category: [concept(category)],
    code,
    ...effective,
    ...findingValue(f),
    ...(interpretation ? { interpretation: [concept(interpretation)] } : {}),
    ...(method ? { method } : {}),
    device: { reference: `Device/${modelResourceId(f.modelId, f.modelSha256)}`, display: f.modelId },
    note: notes.map((text) => ({ text })),
    component,
  };
}

/** An ECG waveform excerpt as SampledData (R4: origin, period in ms, factor, dimensions, data). */
export function waveformObservation(rec: StoredRecord<StreamChunk>): Resource {
  const c = rec.body;
  const periodMs = 1000 / c.rateHz;
  return {
    resourceType: 'Observation',
    id: recordId('w', rec),
    ...common(rec, 'chunk'),
    status: 'final',
    category: [concept(CATEGORY.procedure)],
    code: { coding: [CODES.ecgPotential, CODES.ecgStudy], text: 'ECG waveform excerpt' },
    effectivePeriod: { start: iso(c.t0), end: iso(c.t0 + c.samples.length * periodMs) },
    device: { reference: `Device/${deviceResourceId(rec.deviceId)}`, display: `${rec.deviceId} / ${c.sensor}` },
    component: [
      {
        code: concept(CODES.ecgLeadII),
        valueSampledData: {
          origin: quantity(0, c.unit),
          period: Math.round(periodMs * 1e6) / 1e6,
          factor: 1 / c.gain,
          dimensions: 1,
          data: Array.from(c.samples).join(' '),
        },
      },
    ],
    note: [
      { text: `Sensor ${c.sensor}, channel ${c.channel}, samples ${c.firstSample}..${c.firstSample + c.samples.length - 1} at ${c.rateHz} Hz.` },
      // What the front end said about these samples (annotations, never a correction of them).
      ...(c.leadOff ? [{ text: 'The ECG front end reported lead-off (electrode contact lost) during these samples.' }] : []),
      ...(c.saturated ? [{ text: 'The ECG front end reported samples at the ADC limit (saturation) in this excerpt.' }] : []),
    ],
  };
}

export interface SessionSummary {
  deviceId: string;
  site: string;
  bootId: string;
  startMs: number;
  endMs: number;
  observationIds: string[];
  /** The session's alerts in export order (the report names the first 20). */
  alerts: Pick<Alert, 'severity' | 'message'>[];
  hasEcg: boolean;
}

export function sessionReport(s: SessionSummary, issuedMs: number): Resource {
  const alertText = s.alerts.length === 0 ? 'No alerts were raised in this session.' : `${s.alerts.length} alert(s): ${s.alerts.slice(0, 20).map((a) => `[severity ${a.severity}] ${a.message}`).join(' ')}`;
  return {
    resourceType: 'DiagnosticReport',
    id: fhirId('s', s.deviceId, s.bootId),
    identifier: [{ system: `${MEDGE_RECORD}/session`, value: `${s.deviceId}/${s.bootId}` }],
    status: 'preliminary',
    code: { coding: s.hasEcg ? [CODES.sessionReport, CODES.ecgStudy] : [CODES.sessionReport], text: 'Point-of-care device session' },
    subject: { reference: subjectReference(s.site, s.deviceId) },
    effectivePeriod: { start: iso(s.startMs), end: iso(Math.max(s.startMs, s.endMs)) },
    issued: iso(issuedMs),
    result: s.observationIds.map((id) => ({ reference: `Observation/${id}` })),
    conclusion: `${alertText} ${DECISION_SUPPORT_NOTE}`,
  };
}

export { MEDGE_CODES };
