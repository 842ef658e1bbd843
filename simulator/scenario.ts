/**
 * Scenario files: which simulated devices exist, on which transport, replaying or generating what,
 * with which faults. YAML or JSON (the `yaml` package reads both), validated with ajv against
 * `SCENARIO_SCHEMA`; every problem names its field (`devices[2].faults.corruptRate`), the value and a fix.
 *
 * ```yaml
 * name: clinic-day
 * seed: 7
 * durationS: 1800              # signal seconds; default: until every finite source has ended
 * devices:
 *   - sensor: ecg              # the runtime's sensor name
 *     kind: ecg                # ecg | pcg | glucose-meter | cgm | heart-rate
 *     transport: serial        # serial | ble
 *     source: { type: wfdb, record: mitdb/208 }
 *     faults: { corruptRate: 0.05, unplug: [{ atS: 900, downS: 3 }] }
 * ```
 *
 * Relative file names in sources resolve against the data directory (`--data DIR`, default the
 * workspace's `shared/data`), then against the scenario file's directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Ajv, type ErrorObject, type SchemaObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ConfigError, formatValue } from '../device-sdk/errors.js';
import { isTimeZone } from '../device-sdk/time-zone.js';
import { BLE_FAULTS_SCHEMA, type BleFaults, resolveBleFaults, resolveSerialFaults, SERIAL_FAULTS_SCHEMA, type SerialFaults } from './faults.js';

export const SCENARIO_KINDS = ['ecg', 'pcg', 'glucose-meter', 'cgm', 'heart-rate'] as const;
export type ScenarioDeviceKind = (typeof SCENARIO_KINDS)[number];
export const SCENARIO_TRANSPORTS = ['serial', 'ble'] as const;
export type ScenarioTransport = (typeof SCENARIO_TRANSPORTS)[number];
export const SCENARIO_SOURCE_TYPES = ['wfdb', 'wav', 'cgm-csv', 'uva-padova', 'constant'] as const;

export interface WfdbSourceSpec {
  type: 'wfdb';
  record: string;
  signals?: number[];
  startS?: number;
  durationS?: number;
  loop?: boolean;
}
export interface WavSourceSpec {
  type: 'wav';
  file: string;
  channels?: number[];
  startS?: number;
  durationS?: number;
  loop?: boolean;
}
export interface CgmCsvSourceSpec {
  type: 'cgm-csv';
  file: string;
  subject?: number;
  offset?: number;
  /** Keep every n-th reading (e.g. 12 on a 5-minute trace: one an hour, like fingersticks). */
  every?: number;
}
export interface UvaPadovaSourceSpec {
  type: 'uva-padova';
  patient: string;
  /** Parameter file (default `glucose-sim/vpatient_params.csv`). */
  params?: string;
  /** Length of the simulated span (min). */
  minutes: number;
  /** Meals repeated every day (minutes after midnight). */
  dailyMeals?: { atMin: number; carbsG: number }[];
  /** A bolus of carbs/CR units with every meal, CR from `Quest.csv` (default false). */
  mealBoluses?: boolean;
  /** `Dexcom` (3 min), `GuardianRT` (5 min), `Navigator` (1 min), or `none` (exact, 5 min). */
  sensor?: 'Dexcom' | 'GuardianRT' | 'Navigator' | 'none';
  /** Sampling period of the series (min); default the sensor's. */
  periodMin?: number;
}
/** Heart-rate strap: a constant rate with seeded beat-to-beat variation. */
export interface ConstantSourceSpec {
  type: 'constant';
  value: number;
  /** Standard deviation of the variation. */
  sd?: number;
  periodS: number;
  count: number;
}
export type ScenarioSourceSpec = WfdbSourceSpec | WavSourceSpec | CgmCsvSourceSpec | UvaPadovaSourceSpec | ConstantSourceSpec;

export interface ScenarioDevice {
  sensor: string;
  kind: ScenarioDeviceKind;
  transport: ScenarioTransport;
  /** Driver name for the runtime config; default from kind and transport (`DEFAULT_DRIVERS`). */
  driver: string;
  /** Extra driver options merged over what the runner sets (path, D-Bus address, MAC). */
  driverOptions: Record<string, unknown>;
  /** BLE MAC address of the peripheral (generated when absent). */
  address: string;
  source: ScenarioSourceSpec;
  /** Glucose meter: records in its memory at the start (taken from the source). */
  storedRecords: number;
  /**
   * Glucose meter: measurements the patient takes while the scenario runs, at `atS` seconds of signal:
   * a new record stamped with the meter's clock at that moment (a live reading, unlike the stored ones).
   */
  measurements: { atS: number; mgPerDl: number }[];
  /**
   * Glucose meter: its clock, set to `timeZone` (IANA, default UTC), and whether it offers the Current
   * Time Service (default true), by which the runtime converts its record times to UTC.
   */
  meterClock: { timeZone: string; currentTimeService: boolean };
  /** Stream devices: milliseconds of signal per frame. */
  frameMs: number;
  serialFaults: SerialFaults;
  bleFaults: BleFaults;
}

export interface Scenario {
  name: string;
  description: string;
  seed: number;
  /** Cap on signal time (s); undefined: until every finite source ends. */
  durationS: number | undefined;
  devices: ScenarioDevice[];
  /** Where relative source paths were resolved. */
  dataDir: string;
  /** The scenario file, when it came from one. */
  file: string | undefined;
}

export const DEFAULT_DRIVERS: Readonly<Record<`${ScenarioTransport}:${ScenarioDeviceKind}`, string | undefined>> = Object.freeze({
  'serial:ecg': 'serial-ecg',
  'serial:pcg': 'serial-stethoscope',
  'serial:glucose-meter': undefined,
  'serial:cgm': undefined,
  'serial:heart-rate': undefined,
  'ble:ecg': undefined,
  'ble:pcg': undefined,
  'ble:glucose-meter': 'ble-glucose-meter',
  'ble:cgm': 'ble-cgm',
  'ble:heart-rate': 'ble-heart-rate',
});

const name = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', description: '1-64 of A-Z a-z 0-9 . _ -', examples: ['ecg'] };
const span = {
  startS: { type: 'number', minimum: 0, examples: [0] },
  durationS: { type: 'number', exclusiveMinimum: 0, examples: [1800] },
  loop: { type: 'boolean' },
};

const SOURCE_SCHEMAS: Record<(typeof SCENARIO_SOURCE_TYPES)[number], SchemaObject> = {
  wfdb: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'record'],
    properties: { type: { const: 'wfdb' }, record: { type: 'string', minLength: 1, examples: ['mitdb/208'] }, signals: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } }, ...span },
  },
  wav: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'file'],
    properties: { type: { const: 'wav' }, file: { type: 'string', minLength: 1, examples: ['pcg/pascal-b/normal__201101070538.wav'] }, channels: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } }, ...span },
  },
  'cgm-csv': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'file'],
    properties: {
      type: { const: 'cgm-csv' },
      file: { type: 'string', minLength: 1, examples: ['cgm/hall2018.csv'] },
      subject: { type: 'integer', minimum: 0, examples: [0] },
      offset: { type: 'integer', minimum: 0, examples: [0] },
      every: { type: 'integer', minimum: 1, examples: [12] },
    },
  },
  'uva-padova': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'patient', 'minutes'],
    properties: {
      type: { const: 'uva-padova' },
      patient: { type: 'string', pattern: '^(adult|adolescent|child)#0(0[1-9]|10)$', description: 'a virtual patient: adult#001..adult#010, adolescent#001.., child#001..', examples: ['adult#001'] },
      params: { type: 'string', minLength: 1 },
      minutes: { type: 'integer', minimum: 1, maximum: 60 * 24 * 366, examples: [1440] },
      dailyMeals: {
        type: 'array',
        items: { type: 'object', additionalProperties: false, required: ['atMin', 'carbsG'], properties: { atMin: { type: 'number', minimum: 0, maximum: 1439 }, carbsG: { type: 'number', minimum: 0, maximum: 500 } } },
      },
      mealBoluses: { type: 'boolean' },
      sensor: { type: 'string', enum: ['Dexcom', 'GuardianRT', 'Navigator', 'none'] },
      periodMin: { type: 'number', exclusiveMinimum: 0, examples: [5] },
    },
  },
  constant: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'value', 'periodS', 'count'],
    properties: {
      type: { const: 'constant' },
      value: { type: 'number', examples: [72] },
      sd: { type: 'number', minimum: 0 },
      periodS: { type: 'number', exclusiveMinimum: 0, examples: [1] },
      count: { type: 'integer', minimum: 1, examples: [600] },
    },
  },
};

export const SCENARIO_SCHEMA: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'devices'],
  properties: {
    name: { ...name, examples: ['clinic-day'] },
    description: { type: 'string' },
    seed: { type: 'integer', minimum: 0, maximum: 0xffffffff, examples: [7] },
    durationS: { type: 'number', exclusiveMinimum: 0, examples: [1800] },
    devices: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['sensor', 'kind', 'transport', 'source'],
        properties: {
          sensor: name,
          kind: { type: 'string', enum: [...SCENARIO_KINDS] },
          transport: { type: 'string', enum: [...SCENARIO_TRANSPORTS] },
          driver: { type: 'string', minLength: 1, examples: ['serial-ecg'] },
          driverOptions: { type: 'object' },
          address: { type: 'string', pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$', description: 'a MAC address AA:BB:CC:DD:EE:FF', examples: ['C0:FF:EE:00:00:01'] },
          source: {
            type: 'object',
            required: ['type'],
            discriminator: { propertyName: 'type' },
            oneOf: SCENARIO_SOURCE_TYPES.map((t) => SOURCE_SCHEMAS[t]),
          },
          storedRecords: { type: 'integer', minimum: 0, maximum: 65535, examples: [500] },
          measurements: {
            type: 'array',
            items: {
              type: 'object',
              required: ['atS', 'mgPerDl'],
              additionalProperties: false,
              properties: { atS: { type: 'number', minimum: 0, examples: [5] }, mgPerDl: { type: 'number', minimum: 10, maximum: 600, examples: [290] } },
            },
          },
          frameMs: { type: 'integer', minimum: 10, maximum: 100, examples: [50] },
          meterClock: {
            type: 'object',
            additionalProperties: false,
            properties: {
              timeZone: { type: 'string', minLength: 1, description: 'an IANA time zone name', examples: ['America/New_York'] },
              currentTimeService: { type: 'boolean', examples: [true] },
            },
          },
          faults: { type: 'object' },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true });
const validateScenario = ajv.compile(SCENARIO_SCHEMA);
const validateSerialFaults = ajv.compile(SERIAL_FAULTS_SCHEMA);
const validateBleFaults = ajv.compile(BLE_FAULTS_SCHEMA);

/** One problem in a scenario. */
export interface ScenarioProblem {
  field: string;
  value: unknown;
  problem: string;
  fix: string;
}

/** Every problem of a scenario; `field`, `value`, `fix` are those of the first. */
export class ScenarioError extends ConfigError {
  readonly problems: readonly ScenarioProblem[];
  constructor(problems: readonly ScenarioProblem[], file?: string) {
    const first = problems[0] ?? { field: '(root)', value: undefined, problem: 'is invalid', fix: 'see simulator/scenario.ts' };
    super(first.field, first.value, first.problem, first.fix);
    this.problems = problems;
    const rest = problems.slice(1).map((p) => `\n  - ${p.field}: ${p.problem} (got ${formatValue(p.value)}). Fix: ${p.fix}`);
    this.message = `${file ? `${file}: ` : ''}${this.message}${rest.length > 0 ? `\n${rest.length} more problem(s):${rest.join('')}` : ''}`;
  }
}

function fieldOf(prefix: string, pointer: string): string {
  let field = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field = /^\d+$/.test(key) ? `${field}[${key}]` : field === '' ? key : `${field}.${key}`;
  }
  return field === '' ? '(root)' : field;
}

function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const raw of pointer.split('/').slice(1)) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[raw] : undefined;
  return v;
}

function fixFor(schema: SchemaObject | undefined): string {
  if (!schema) return 'see the scenario format in simulator/scenario.ts';
  const example = Array.isArray(schema.examples) ? ` (e.g. ${JSON.stringify(schema.examples[0])})` : '';
  if (Array.isArray(schema.enum)) return `use one of: ${schema.enum.join(', ')}`;
  if (schema.const !== undefined) return `use ${JSON.stringify(schema.const)}`;
  if (typeof schema.description === 'string') return `use ${schema.description}${example}`;
  const range = [schema.minimum !== undefined ? `>= ${schema.minimum}` : '', schema.exclusiveMinimum !== undefined ? `> ${schema.exclusiveMinimum}` : '', schema.maximum !== undefined ? `<= ${schema.maximum}` : '']
    .filter(Boolean)
    .join(' and ');
  return `use ${schema.type === 'integer' ? 'an integer' : schema.type === 'number' ? 'a number' : `a ${String(schema.type ?? 'value')}`}${range ? ` ${range}` : ''}${example}`;
}

function problemsOf(errors: readonly ErrorObject[] | null | undefined, data: unknown, prefix: string): ScenarioProblem[] {
  const out: ScenarioProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const parent = e.parentSchema as SchemaObject | undefined;
    const params = e.params as Record<string, unknown>;
    let p: ScenarioProblem | undefined;
    const at = fieldOf(prefix, e.instancePath);
    const value = valueAt(data, e.instancePath);
    if (e.keyword === 'additionalProperties') {
      const key = String(params.additionalProperty);
      const valid = Object.keys((parent?.properties ?? {}) as object);
      p = { field: at === '(root)' ? key : `${at}.${key}`, value: (value as Record<string, unknown>)?.[key], problem: 'unknown property', fix: `remove it; valid properties here are: ${valid.join(', ')}` };
    } else if (e.keyword === 'required') {
      const key = String(params.missingProperty);
      const example = ((parent?.properties ?? {}) as Record<string, SchemaObject>)[key]?.examples?.[0] as unknown;
      p = { field: at === '(root)' ? key : `${at}.${key}`, value: undefined, problem: 'is required', fix: `add "${key}"${example === undefined ? '' : `: ${JSON.stringify(example)}`}` };
    } else if (e.keyword === 'discriminator') {
      p = { field: `${at}.type`, value: (value as Record<string, unknown>)?.type, problem: 'is not a source type', fix: `use one of: ${SCENARIO_SOURCE_TYPES.join(', ')}` };
    } else if (e.keyword !== 'oneOf' && e.keyword !== 'if') {
      p = { field: at, value, problem: e.keyword === 'pattern' && parent?.description ? `is not ${String(parent.description)}` : (e.message ?? `fails ${e.keyword}`), fix: fixFor(parent) };
    }
    if (p && !seen.has(p.field)) {
      seen.add(p.field);
      out.push(p);
    }
  }
  return out;
}

function resolvePath(file: string, dataDir: string, scenarioDir: string | undefined): string {
  if (isAbsolute(file)) return file;
  const inData = resolve(dataDir, file);
  if (existsSync(inData) || existsSync(`${inData}.hea`) || scenarioDir === undefined) return inData;
  const inScenario = resolve(scenarioDir, file);
  return existsSync(inScenario) || existsSync(`${inScenario}.hea`) ? inScenario : inData;
}

/** Validates an already-parsed scenario and fills in defaults (a new object; the input is not touched). */
export function parseScenario(input: unknown, options: { dataDir: string; file?: string }): Scenario {
  if (!validateScenario(input)) throw new ScenarioError(problemsOf(validateScenario.errors, input, ''), options.file);
  const raw = input as {
    name: string;
    description?: string;
    seed?: number;
    durationS?: number;
    devices: (Omit<ScenarioDevice, 'driver' | 'driverOptions' | 'address' | 'storedRecords' | 'measurements' | 'meterClock' | 'frameMs' | 'serialFaults' | 'bleFaults'> & {
      meterClock?: { timeZone?: string; currentTimeService?: boolean };
      driver?: string;
      driverOptions?: Record<string, unknown>;
      address?: string;
      storedRecords?: number;
      measurements?: { atS: number; mgPerDl: number }[];
      frameMs?: number;
      faults?: Record<string, unknown>;
    })[];
  };
  const problems: ScenarioProblem[] = [];
  const scenarioDir = options.file === undefined ? undefined : dirname(resolve(options.file));
  const sensors = new Set<string>();
  const devices = raw.devices.map((d, i): ScenarioDevice => {
    const at = `devices[${i}]`;
    if (sensors.has(d.sensor)) problems.push({ field: `${at}.sensor`, value: d.sensor, problem: 'is used by another device', fix: 'give every device its own sensor name' });
    sensors.add(d.sensor);
    const driver = d.driver ?? DEFAULT_DRIVERS[`${d.transport}:${d.kind}`];
    if (driver === undefined) {
      const ok = Object.entries(DEFAULT_DRIVERS).filter(([k, v]) => v && k.endsWith(`:${d.kind}`)).map(([k]) => k.split(':')[0]);
      problems.push({ field: `${at}.transport`, value: d.transport, problem: `no simulated ${d.kind} device on ${d.transport}`, fix: `use transport ${ok.join(' or ')}` });
    }
    const validate = d.transport === 'serial' ? validateSerialFaults : validateBleFaults;
    if (d.faults !== undefined && !validate(d.faults)) problems.push(...problemsOf(validate.errors, d.faults, `${at}.faults`));
    const streamKinds: readonly string[] = ['ecg', 'pcg'];
    const wantsSamples = streamKinds.includes(d.kind);
    const isSamples = d.source.type === 'wfdb' || d.source.type === 'wav';
    if (wantsSamples !== isSamples) {
      problems.push({ field: `${at}.source.type`, value: d.source.type, problem: `cannot feed a ${d.kind} device`, fix: wantsSamples ? 'use wfdb or wav' : 'use cgm-csv, uva-padova or constant' });
    }
    if (d.kind !== 'ecg' && Array.isArray(d.faults?.leadOff) && d.faults.leadOff.length > 0) {
      problems.push({ field: `${at}.faults.leadOff`, value: d.faults.leadOff, problem: `takes electrodes off an ECG front end; a ${d.kind} device has none`, fix: 'remove it, or set kind: ecg' });
    }
    if (d.measurements !== undefined && d.kind !== 'glucose-meter') {
      problems.push({ field: `${at}.measurements`, value: d.measurements, problem: `is for glucose meters, not ${d.kind}`, fix: 'remove it, or set kind: glucose-meter' });
    }
    if (d.meterClock !== undefined && d.kind !== 'glucose-meter') {
      problems.push({ field: `${at}.meterClock`, value: d.meterClock, problem: `is for glucose meters, not ${d.kind}`, fix: 'remove it, or set kind: glucose-meter' });
    }
    if (d.meterClock?.timeZone !== undefined && !isTimeZone(d.meterClock.timeZone)) {
      problems.push({ field: `${at}.meterClock.timeZone`, value: d.meterClock.timeZone, problem: 'is not an IANA time zone name', fix: 'use Area/City, e.g. "America/New_York", or "UTC"' });
    }
    if (d.kind === 'cgm' && d.source.type === 'constant' && d.source.periodS < 60) {
      problems.push({ field: `${at}.source.periodS`, value: d.source.periodS, problem: 'is shorter than a minute: CGM time offsets count whole minutes, so readings would collide', fix: 'use 60 or more (e.g. 300, a 5-minute CGM)' });
    }
    const source = { ...d.source } as ScenarioSourceSpec;
    if (source.type === 'wfdb') source.record = resolvePath(source.record, options.dataDir, scenarioDir);
    if (source.type === 'wav' || source.type === 'cgm-csv') source.file = resolvePath(source.file, options.dataDir, scenarioDir);
    if (source.type === 'uva-padova') source.params = resolvePath(source.params ?? join('glucose-sim', 'vpatient_params.csv'), options.dataDir, scenarioDir);
    return {
      sensor: d.sensor,
      kind: d.kind,
      transport: d.transport,
      driver: driver ?? '',
      driverOptions: { ...(d.driverOptions ?? {}) },
      address: (d.address ?? `C0:FF:EE:00:00:${(i + 1).toString(16).padStart(2, '0')}`).toUpperCase(),
      source,
      storedRecords: d.storedRecords ?? 0,
      measurements: (d.measurements ?? []).map((m) => ({ ...m })),
      meterClock: { timeZone: d.meterClock?.timeZone ?? 'UTC', currentTimeService: d.meterClock?.currentTimeService ?? true },
      frameMs: d.frameMs ?? 50,
      serialFaults: resolveSerialFaults(d.transport === 'serial' ? (d.faults as Partial<SerialFaults>) : undefined),
      bleFaults: resolveBleFaults(d.transport === 'ble' ? (d.faults as Partial<BleFaults>) : undefined),
    };
  });
  if (problems.length > 0) throw new ScenarioError(problems, options.file);
  return { name: raw.name, description: raw.description ?? '', seed: raw.seed ?? 1, durationS: raw.durationS, devices, dataDir: options.dataDir, file: options.file };
}

/** Reads a YAML or JSON scenario file. YAML syntax errors name the line. */
export function loadScenario(file: string, options: { dataDir: string }): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('--scenario', file, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'pass the path of a scenario .yaml or .json file');
  }
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new ConfigError('--scenario', file, `is not valid YAML/JSON: ${(error as Error).message.split('\n')[0]}`, 'fix the syntax at the line named');
  }
  return parseScenario(data, { dataDir: options.dataDir, file });
}
