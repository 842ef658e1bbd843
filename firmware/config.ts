/**
 * The runtime config: the JSON file behind `medge run --config FILE`.
 *
 * `parseRuntimeConfig` validates caller input against a JSON schema (ajv 8, `additionalProperties:
 * false` everywhere), then merges it over the frozen defaults into a NEW object; the input is
 * never mutated. Every problem becomes a `ConfigProblem` naming the field (`edge.window`,
 * `sources[1].type`), the offending value and a concrete fix; the thrown `ConfigErrors` is a
 * `ConfigError` whose own fields are those of the first problem.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import { ConfigError, formatValue } from '../device-sdk/errors.js';
import { getDriver } from '../device-sdk/sensors/registry.js';
import { isTimeZone } from '../device-sdk/time-zone.js';
import { CIPHER_SUITES, type CipherSuite } from '../device-sdk/security/envelope.js';
import { DEFAULT_INFERENCE_WORKER_OPTIONS } from '../device-sdk/inference/worker.js';
import { DEFAULT_MODEL_RESTARTS } from './model-restarts.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const SOURCE_TYPES = ['sim-ecg', 'sim-pcg', 'sim-glucose', 'sim-hr', 'device'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Synthetic ECG waveform (see `sources/sim-sources.ts`). */
export interface SimEcgSourceConfig {
  type: 'sim-ecg';
  sensor: string;
  rateHz: number;
  /** Samples per emitted chunk, as a duration. */
  chunkMs: number;
  heartRateBpm: number;
  /** Standard deviation of the added noise (mV). */
  noiseMv: number;
}

/** Synthetic heart sounds (phonocardiogram), arbitrary units. */
export interface SimPcgSourceConfig {
  type: 'sim-pcg';
  sensor: string;
  rateHz: number;
  chunkMs: number;
  heartRateBpm: number;
  /** Standard deviation of the added noise (ADC units). */
  noise: number;
}

/** Heart-rate readings from a chest strap. */
export interface SimHrSourceConfig {
  type: 'sim-hr';
  sensor: string;
  intervalMs: number;
  /** Probability per reading that a short run above 125 /min starts. */
  runProbability: number;
}

/** A glucose meter that sends text lines over a simulated serial link. */
export interface SimGlucoseSourceConfig {
  type: 'sim-glucose';
  sensor: string;
  intervalMs: number;
  /** Probability that a line is corrupted on the wire (flipped byte or truncation). */
  corruptRate: number;
  /** Readings per cycle of the slow glucose swing. */
  periodReadings: number;
}

/**
 * A real device (or a simulator peer) on a real transport, read by a registered driver
 * (`device-sdk/sensors`). `options` are validated against the driver's own schema.
 */
export interface DeviceSourceConfig {
  type: 'device';
  sensor: string;
  /** A registered driver name, e.g. `serial-ecg`, `ble-glucose-meter`. */
  driver: string;
  options: Record<string, unknown>;
}

export type SourceConfig = SimEcgSourceConfig | SimPcgSourceConfig | SimHrSourceConfig | SimGlucoseSourceConfig | DeviceSourceConfig;

/** A source as a caller may write it: the `type` plus any options; the rest comes from the defaults. */
export type SourceConfigInput = {
  [K in SourceType]: { type: K } & Partial<Omit<Extract<SourceConfig, { type: K }>, 'type'>>;
}[SourceType];

/** Paths of the PEM files of a device's TLS identity. */
export interface EdgeTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export const UI_ROLES = ['operator', 'clinician', 'technician'] as const;
export type UiRole = (typeof UI_ROLES)[number];

export const UI_LANGUAGES = ['en', 'zh-CN'] as const;
export type UiLanguage = (typeof UI_LANGUAGES)[number];

/** A person who may log in to the clinic screen. */
export interface UiUserConfig {
  /** Shown on the login screen and in the audit log (`role/name`); never a patient identifier. */
  name: string;
  role: UiRole;
  /** `scrypt$N$r$p$salt$hash` (base64), as `medge ui pin-hash` prints it. The PIN itself is never stored. */
  pinHash: string;
}

/** The clinic screen served by the runtime (`firmware/ui`). */
export interface UiConfig {
  enabled: boolean;
  /** `host:port` (`[::1]:8080` for IPv6); port 0 picks a free port. */
  listen: string;
  users: UiUserConfig[];
  /** A session ends after this long without a request. */
  sessionIdleMinutes: number;
  /** Language of the login screen until someone switches it. */
  language: UiLanguage;
}

export interface RuntimeConfig {
  /** 1-64 characters of `[A-Za-z0-9._-]`. */
  deviceId: string;
  site: string;
  /** Absolute: a relative path in the file is resolved against the config file's directory. */
  dataDir: string;
  edge: {
    /** `mqtt://` or `mqtts://`. */
    url: string;
    batchMaxRecords: number;
    batchMaxBytes: number;
    /** Batches in flight without an acknowledgement. */
    window: number;
    ackTimeoutMs: number;
    /**
     * The slowest link the uplink allows for (bytes/s): a batch not yet PUBACKed gets its transmission
     * time at this rate on top of `ackTimeoutMs` before it times out (`device-sdk/sync/README.md`).
     */
    slowLinkBytesPerSec: number;
    backoff: { initialMs: number; maxMs: number };
    /**
     * Mutual TLS with the edge (`medge provision` writes the files): the CA certificate that signed
     * the edge's server certificate, and this device's certificate and private key (PEM). Absolute:
     * relative paths in the file resolve against the config file's directory. Needs an mqtts:// url.
     */
    tls?: EdgeTlsFiles;
    /**
     * Payload encryption inside TLS: every batch sealed with this device's wire key (`medge provision`
     * writes OUT/ID.wire.key; the edge holds a copy) under `suite`. Needs `tls`. Absolute path.
     */
    payloadEncryption?: { suite: CipherSuite; keyFile: string };
  };
  store: {
    budgetBytes: number;
    chunkRetentionHours: number;
    recordRetentionDays: number;
    /** Cipher of record bodies at rest (`sm4-ctr-hmac-sm3` where the national algorithms are required). */
    cipher: CipherSuite;
    /** The device key that wraps the data keys (0600; created on first start). Default: dataDir/device.key. Absolute. */
    deviceKeyFile?: string;
  };
  sources: SourceConfig[];
  /**
   * Signed artifacts (models, update bundles): the Ed25519 public keys (PEM files, `signing.pub`)
   * whose signatures the runtime accepts. Absolute. Empty: the runtime trusts the published development
   * key of the shipped models (models/keys/dev-signing.pub) and warns that production boards need their own.
   */
  artifacts: {
    trustedKeys: string[];
    /**
     * Model directories that replace the shipped ones (absolute; e.g. on a data partition). Each is
     * verified against `trustedKeys` before it is loaded; a refused model leaves that analysis on its
     * rule-based fallback and raises an `analysis-degraded` alert (severity 1).
     */
    models?: ModelDirs;
  };
  log: { level: LogLevel };
  statusIntervalMs: number;
  /** The board's model name, reported to the edge (FHIR Device.modelNumber). */
  deviceModel?: string;
  /**
   * The IANA time zone of the clinic (`Africa/Nairobi`, `America/New_York`): the zone glucose meter
   * clocks are set to, used for a meter's record times (local wall clock, no zone) when the meter
   * cannot tell its clock (no Bluetooth Current Time Service). A meter's Current Time takes precedence;
   * without either, record times are stored zone-unknown (device-sdk/sensors/meter-time.ts).
   */
  timeZone?: string;
  ui: UiConfig;
  /**
   * The inference workers' deadlines and restarts (`device-sdk/inference/worker.ts`, `firmware/model-restarts.ts`):
   * a model that does not answer a request within `requestTimeoutMs` (its worker's compute time) or load within
   * `startTimeoutMs` is stopped and its analysis falls back to its rules; the worker is restarted after each of
   * `restartDelaysMs` in turn. A slower board (a Pi Zero class CPU, a slow SD card) may need longer deadlines.
   */
  inference: InferenceConfig;
}

/** See `RuntimeConfig.inference`. */
export interface InferenceConfig {
  requestTimeoutMs: number;
  startTimeoutMs: number;
  closeTimeoutMs: number;
  restartDelaysMs: number[];
}

/** Model directories, one per analysis (see `artifacts.models`). */
export interface ModelDirs {
  /** The ECG beat classifier (default: the shipped models/ecg-beats). */
  ecgBeats?: string;
  /** The heart-sound screen (default: the shipped models/pcg-abnormal). */
  pcgAbnormal?: string;
  /** The glucose forecast and predicted-low detector (default: the shipped models/glucose-forecast/artifact). */
  glucoseForecast?: string;
}

type DeepReadonly<T> = T extends (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

type DeepPartial<T> = T extends (infer E)[] ? E[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** The config as it may appear in the file, before defaults. */
export type RuntimeConfigInput = Omit<DeepPartial<RuntimeConfig>, 'sources'> & { sources?: SourceConfigInput[] };

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}

export const DEFAULT_RUNTIME_CONFIG = deepFreeze({
  site: 'default',
  edge: {
    url: 'mqtt://127.0.0.1:1883',
    batchMaxRecords: 2000,
    batchMaxBytes: 262_144,
    window: 16,
    ackTimeoutMs: 10_000,
    slowLinkBytesPerSec: 4096,
    backoff: { initialMs: 250, maxMs: 30_000 },
  },
  store: { budgetBytes: 2 * 1024 ** 3, chunkRetentionHours: 24, recordRetentionDays: 90, cipher: 'aes-256-gcm' as CipherSuite },
  sources: [] as SourceConfig[],
  artifacts: { trustedKeys: [] as string[] },
  log: { level: 'info' as LogLevel },
  statusIntervalMs: 1000,
  ui: { enabled: false, listen: '127.0.0.1:8080', users: [] as UiUserConfig[], sessionIdleMinutes: 15, language: 'en' as UiLanguage },
  inference: {
    requestTimeoutMs: DEFAULT_INFERENCE_WORKER_OPTIONS.requestTimeoutMs,
    startTimeoutMs: DEFAULT_INFERENCE_WORKER_OPTIONS.startTimeoutMs,
    closeTimeoutMs: DEFAULT_INFERENCE_WORKER_OPTIONS.closeTimeoutMs,
    restartDelaysMs: [...DEFAULT_MODEL_RESTARTS.delaysMs],
  },
});

export const DEFAULT_SOURCE_CONFIGS = deepFreeze({
  'sim-ecg': { type: 'sim-ecg', sensor: 'ecg', rateHz: 360, chunkMs: 1000, heartRateBpm: 72, noiseMv: 0.02 },
  'sim-pcg': { type: 'sim-pcg', sensor: 'pcg', rateHz: 4000, chunkMs: 1000, heartRateBpm: 72, noise: 150 },
  'sim-hr': { type: 'sim-hr', sensor: 'hr-strap', intervalMs: 1000, runProbability: 0.02 },
  'sim-glucose': { type: 'sim-glucose', sensor: 'glucose-meter', intervalMs: 300_000, corruptRate: 0.05, periodReadings: 48 },
  device: { type: 'device', sensor: 'device', driver: 'serial-ecg', options: {} },
} satisfies { [K in SourceType]: Extract<SourceConfig, { type: K }> });

// ---- schema ----------------------------------------------------------------------------------

const NAME_SCHEMA = {
  type: 'string',
  pattern: '^[A-Za-z0-9._-]{1,64}$',
  description: '1-64 characters of letters, digits, ".", "_" or "-"',
};
const int = (minimum: number, maximum?: number, example?: number): SchemaObject => ({
  type: 'integer',
  minimum,
  ...(maximum === undefined ? {} : { maximum }),
  ...(example === undefined ? {} : { examples: [example] }),
});
const positive = (example: number): SchemaObject => ({ type: 'number', exclusiveMinimum: 0, examples: [example] });
const range = (minimum: number, maximum: number, example: number): SchemaObject => ({ type: 'number', minimum, maximum, examples: [example] });
const object = (properties: Record<string, SchemaObject>, required: string[] = []): SchemaObject => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

const SOURCE_SCHEMAS: Record<SourceType, Record<string, SchemaObject>> = {
  'sim-ecg': {
    sensor: { ...NAME_SCHEMA, examples: ['ecg'] },
    rateHz: int(50, 2000, 360),
    chunkMs: int(100, 10_000, 1000),
    heartRateBpm: range(30, 220, 72),
    noiseMv: range(0, 1, 0.02),
  },
  'sim-pcg': {
    sensor: { ...NAME_SCHEMA, examples: ['pcg'] },
    rateHz: int(1000, 16_000, 4000),
    chunkMs: int(100, 10_000, 1000),
    heartRateBpm: range(30, 220, 72),
    noise: range(0, 5000, 150),
  },
  'sim-hr': {
    sensor: { ...NAME_SCHEMA, examples: ['hr-strap'] },
    intervalMs: int(100, 3_600_000, 1000),
    runProbability: range(0, 1, 0.02),
  },
  'sim-glucose': {
    sensor: { ...NAME_SCHEMA, examples: ['glucose-meter'] },
    intervalMs: int(100, 86_400_000, 300_000),
    corruptRate: range(0, 1, 0.05),
    periodReadings: int(4, 100_000, 48),
  },
  device: {
    sensor: { ...NAME_SCHEMA, examples: ['ecg'] },
    driver: { ...NAME_SCHEMA, description: 'a registered driver name', examples: ['serial-ecg'] },
    options: { type: 'object', description: "the driver's options", examples: [{ path: '/dev/ttyUSB0' }] },
  },
};

/** Fields a source of each type must name (the rest have defaults). */
const SOURCE_REQUIRED: Partial<Record<SourceType, string[]>> = { device: ['sensor', 'driver'] };

const SOURCE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: SOURCE_TYPES.map((type) => object({ type: { const: type, examples: [type] }, ...SOURCE_SCHEMAS[type] }, ['type', ...(SOURCE_REQUIRED[type] ?? [])])),
};

const RUNTIME_SCHEMA: SchemaObject = object(
  {
    deviceId: { ...NAME_SCHEMA, examples: ['clinic-01'] },
    site: { ...NAME_SCHEMA, examples: ['ward-3'] },
    dataDir: { type: 'string', minLength: 1, description: 'a directory path', examples: ['./data'] },
    edge: object({
      url: {
        type: 'string',
        pattern: '^mqtts?://[^\\s/?#]+',
        description: 'an mqtt:// or mqtts:// URL',
        examples: ['mqtt://127.0.0.1:1883'],
      },
      batchMaxRecords: int(1, 10_000, 2000),
      batchMaxBytes: int(1024, 4_194_304, 262_144),
      window: int(1, 64, 16),
      ackTimeoutMs: int(500, 600_000, 10_000),
      // 256 B/s (2 kbit/s, below GSM CSD) to 1 Gbit/s.
      slowLinkBytesPerSec: int(256, 125_000_000, 4096),
      backoff: object({ initialMs: int(1, 600_000, 250), maxMs: int(1, 3_600_000, 30_000) }),
      tls: object(
        {
          ca: { type: 'string', minLength: 1, description: 'a path to a PEM file', examples: ['./certs/ca.crt'] },
          cert: { type: 'string', minLength: 1, description: 'a path to a PEM file', examples: ['./certs/clinic-01.crt'] },
          key: { type: 'string', minLength: 1, description: 'a path to a PEM file', examples: ['./certs/clinic-01.key'] },
        },
        ['ca', 'cert', 'key'],
      ),
      payloadEncryption: object(
        {
          suite: { type: 'string', enum: [...CIPHER_SUITES] },
          keyFile: { type: 'string', minLength: 1, description: 'a path to the wire key file', examples: ['./certs/clinic-01.wire.key'] },
        },
        ['suite', 'keyFile'],
      ),
    }),
    store: object({
      budgetBytes: int(1_048_576, Number.MAX_SAFE_INTEGER, 2 * 1024 ** 3),
      chunkRetentionHours: positive(24),
      recordRetentionDays: positive(90),
      cipher: { type: 'string', enum: [...CIPHER_SUITES] },
      deviceKeyFile: { type: 'string', minLength: 1, description: 'a path to the device key file', examples: ['./keys/device.key'] },
    }),
    sources: { type: 'array', items: SOURCE_SCHEMA },
    artifacts: object({
      trustedKeys: { type: 'array', items: { type: 'string', minLength: 1, description: 'a path to an Ed25519 public key (PEM)', examples: ['./keys/signing.pub'] } },
      models: object({
        ecgBeats: { type: 'string', minLength: 1, description: 'a path to a signed ecg-beats model directory', examples: ['/data/models/ecg-beats'] },
        pcgAbnormal: { type: 'string', minLength: 1, description: 'a path to a signed pcg-abnormal model directory', examples: ['/data/models/pcg-abnormal'] },
        glucoseForecast: { type: 'string', minLength: 1, description: 'a path to a signed glucose-forecast model directory', examples: ['/data/models/glucose-forecast'] },
      }),
    }),
    log: object({ level: { type: 'string', enum: [...LOG_LEVELS] } }),
    statusIntervalMs: int(100, 60_000, 1000),
    deviceModel: { type: 'string', minLength: 1, maxLength: 128, description: "the board's model name", examples: ['Raspberry Pi 4 + AD8232 front end'] },
    timeZone: { type: 'string', minLength: 1, maxLength: 64, description: 'an IANA time zone name', examples: ['Africa/Nairobi'] },
    ui: object({
      enabled: { type: 'boolean', examples: [true] },
      listen: {
        type: 'string',
        pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
        description: 'a host:port address',
        examples: ['127.0.0.1:8080'],
      },
      users: {
        type: 'array',
        items: object(
          {
            name: { ...NAME_SCHEMA, examples: ['nurse-1'] },
            role: { type: 'string', enum: [...UI_ROLES] },
            pinHash: {
              type: 'string',
              pattern: '^scrypt\\$[0-9]+\\$[0-9]+\\$[0-9]+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+$',
              description: 'a PIN hash as printed by `medge ui pin-hash`',
              examples: ['scrypt$16384$8$1$...$...'],
            },
          },
          ['name', 'role', 'pinHash'],
        ),
      },
      sessionIdleMinutes: int(1, 1440, 15),
      language: { type: 'string', enum: [...UI_LANGUAGES] },
    }),
    inference: object({
      // 100 ms (below it a healthy batch on a Pi 4 class board, about 1 s for 1024 beats, would time out) to 10 min.
      requestTimeoutMs: int(100, 600_000, 5000),
      startTimeoutMs: int(1000, 3_600_000, 60_000),
      closeTimeoutMs: int(100, 600_000, 2000),
      // At most 10 restarts, each 1 s to 1 day after the worker stopped answering; [] never restarts it.
      restartDelaysMs: { type: 'array', maxItems: 10, items: int(1000, 86_400_000, 60_000) },
    }),
  },
  ['deviceId', 'dataDir'],
);

const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true });
const validateRuntime = ajv.compile<RuntimeConfigInput>(RUNTIME_SCHEMA);
const validateSource = ajv.compile<SourceConfigInput>(SOURCE_SCHEMA);

// ---- errors ----------------------------------------------------------------------------------

/** One thing wrong with a config. */
export interface ConfigProblem {
  field: string;
  value: unknown;
  problem: string;
  fix: string;
}

/** All problems found in one config. `field`, `value` and `fix` are those of the first problem. */
export class ConfigErrors extends ConfigError {
  readonly problems: readonly ConfigProblem[];
  /** The config file, when the config came from one. */
  readonly file?: string;
  constructor(problems: readonly ConfigProblem[], file?: string) {
    const [first, ...rest] = problems;
    if (first === undefined) throw new RangeError('ConfigErrors needs at least one problem');
    super(first.field, first.value, first.problem, first.fix);
    this.problems = Object.freeze([...problems]);
    if (file !== undefined) this.file = file;
    const more = rest.map((p) => `\n  - ${describeProblem(p)}`).join('');
    this.message = `${file === undefined ? '' : `${file}: `}${this.message}${
      rest.length > 0 ? `\n${rest.length} more problem${rest.length > 1 ? 's' : ''}:${more}` : ''
    }`;
  }
}

function describeProblem(p: ConfigProblem): string {
  return `${p.field}: ${p.problem} (got ${formatValue(p.value)}). Fix: ${p.fix}`;
}

const ROOT = '(root)';

function joinField(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent === ROOT ? '' : parent}[${key}]`;
  return parent === ROOT ? key : `${parent}.${key}`;
}

/** Walks a JSON pointer through `data`, giving the dotted field name and the value found there. */
function locate(data: unknown, pointer: string, prefix: string): { field: string; value: unknown } {
  let field = prefix;
  let value = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) {
      field = joinField(field, Number(key));
      value = value[Number(key)];
    } else {
      field = joinField(field, key);
      value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
  }
  return { field, value };
}

function childOf(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}

/** "use an integer between 1 and 64", "use one of: a, b", ... for a property schema. */
function expectation(schema: SchemaObject | undefined): string {
  if (schema === undefined) return 'check the documented config format';
  const example = Array.isArray(schema.examples) ? ` (e.g. ${JSON.stringify(schema.examples[0])})` : '';
  if (Array.isArray(schema.enum)) return `use one of: ${schema.enum.join(', ')}`;
  if (schema.const !== undefined) return `use ${JSON.stringify(schema.const)}`;
  const kind = schema.type === 'integer' ? 'an integer' : schema.type === 'number' ? 'a number' : undefined;
  if (kind !== undefined) {
    const { minimum, maximum, exclusiveMinimum } = schema as { minimum?: number; maximum?: number; exclusiveMinimum?: number };
    if (minimum !== undefined && maximum !== undefined && maximum !== Number.MAX_SAFE_INTEGER) return `use ${kind} between ${minimum} and ${maximum}${example}`;
    if (minimum !== undefined) return `use ${kind} of at least ${minimum}${example}`;
    if (exclusiveMinimum !== undefined) return `use ${kind} greater than ${exclusiveMinimum}${example}`;
    return `use ${kind}${example}`;
  }
  if (typeof schema.description === 'string') return `use ${schema.description}${example}`;
  if (schema.type === 'object') return 'use an object ({ ... })';
  if (schema.type === 'array') return 'use an array ([ ... ])';
  return `use a ${String(schema.type)}${example}`;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

function toProblem(error: ErrorObject, data: unknown, prefix: string): ConfigProblem | undefined {
  const at = locate(data, error.instancePath, prefix);
  const parent = error.parentSchema as SchemaObject | undefined;
  const properties = (parent?.properties ?? {}) as Record<string, SchemaObject>;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const valid = Object.keys(properties);
      const near = valid.find((v) => v.toLowerCase() === key.toLowerCase() || editDistance(v, key) <= 2);
      return {
        field: joinField(at.field, key),
        value: childOf(at.value, key),
        problem: 'unknown property',
        fix: `${near === undefined ? 'remove it' : `rename it to "${near}"`}; valid properties here are: ${valid.join(', ')}`,
      };
    }
    case 'required': {
      const key = String(params.missingProperty);
      const example = properties[key]?.examples?.[0] as unknown;
      const fix =
        parent?.discriminator !== undefined
          ? `add "${key}": one of ${SOURCE_TYPES.map((t) => JSON.stringify(t)).join(', ')}`
          : `add "${key}": ${example === undefined ? '...' : JSON.stringify(example)}`;
      return { field: joinField(at.field, key), value: undefined, problem: 'is required', fix };
    }
    case 'discriminator': {
      const field = joinField(at.field, String(params.tag));
      const value = childOf(at.value, String(params.tag));
      if (params.error === 'mapping') {
        return { field, value, problem: 'unknown source type', fix: `use one of: ${SOURCE_TYPES.join(', ')}` };
      }
      if (value === undefined) return undefined; // reported by `required`
      return { field, value, problem: 'must be a string', fix: `use one of: ${SOURCE_TYPES.join(', ')}` };
    }
    case 'oneOf':
      return undefined; // summary of the branch errors, which are reported themselves
    case 'maxItems':
      return { field: at.field, value: at.value, problem: `has ${Array.isArray(at.value) ? at.value.length : '?'} entries`, fix: `keep at most ${String(params.limit)}` };
    default: {
      const problem =
        error.keyword === 'pattern' && typeof parent?.description === 'string'
          ? `is not ${parent.description}`
          : error.keyword === 'enum'
            ? 'is not one of the allowed values'
            : (error.message ?? `fails ${error.keyword}`);
      return { field: at.field, value: at.value, problem, fix: expectation(parent) };
    }
  }
}

function problemsOf(errors: readonly ErrorObject[] | null | undefined, data: unknown, prefix: string): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const error of errors ?? []) {
    const problem = toProblem(error, data, prefix);
    if (problem === undefined || seen.has(problem.field)) continue; // one problem per field
    seen.add(problem.field);
    problems.push(problem);
  }
  return problems;
}

const driverOptionValidators = new Map<string, ValidateFunction>();

/** The problems of a device source's `driver` (unknown) or `options` (against the driver's schema), each naming its option. */
function driverOptionProblems(name: string, options: unknown, at: string): ConfigProblem[] {
  let driver: ReturnType<typeof getDriver>;
  try {
    driver = getDriver(name, `${at}.driver`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [{ field: error.field, value: error.value, problem: error.problem, fix: error.fix }];
  }
  let validate = driverOptionValidators.get(name);
  if (validate === undefined) {
    validate = ajv.compile(driver.optionsSchema);
    driverOptionValidators.set(name, validate);
  }
  const input = options ?? {};
  if (validate(input)) return [];
  return problemsOf(validate.errors, input, `${at}.options`).map((p) => ({ ...p, problem: `${p.problem} (driver ${name})` }));
}

// ---- merging ---------------------------------------------------------------------------------

function resolveSource(input: SourceConfigInput): SourceConfig {
  return { ...DEFAULT_SOURCE_CONFIGS[input.type], ...input } as SourceConfig;
}

function crossFieldProblems(config: RuntimeConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.edge.tls !== undefined && !config.edge.url.startsWith('mqtts://')) {
    problems.push({
      field: 'edge.url',
      value: config.edge.url,
      problem: 'is not an mqtts:// URL, but edge.tls is set',
      fix: `use ${JSON.stringify(config.edge.url.replace(/^mqtt:\/\//, 'mqtts://'))} (the edge's TLS port), or remove edge.tls`,
    });
  }
  if (config.edge.payloadEncryption !== undefined && config.edge.tls === undefined) {
    problems.push({
      field: 'edge.payloadEncryption',
      value: config.edge.payloadEncryption,
      problem: 'is set without edge.tls (payload encryption runs inside TLS, with the identity medge provision issued)',
      fix: 'add edge.tls with the files medge provision wrote, or remove edge.payloadEncryption',
    });
  }
  const { initialMs, maxMs } = config.edge.backoff;
  if (maxMs < initialMs) {
    problems.push({
      field: 'edge.backoff.maxMs',
      value: maxMs,
      problem: `is below edge.backoff.initialMs (${initialMs})`,
      fix: `use a value of at least ${initialMs}, or lower edge.backoff.initialMs`,
    });
  }
  if (config.ui.enabled && config.ui.users.length === 0) {
    problems.push({
      field: 'ui.users',
      value: config.ui.users,
      problem: 'is empty, but ui.enabled is true: nobody could log in',
      fix: 'add { "name": "nurse-1", "role": "operator", "pinHash": "..." } with the hash `medge ui pin-hash` prints, or set ui.enabled to false',
    });
  }
  if (config.timeZone !== undefined && !isTimeZone(config.timeZone)) {
    problems.push({
      field: 'timeZone',
      value: config.timeZone,
      problem: 'is not an IANA time zone name known to this runtime',
      fix: 'use the clinic\'s zone as Area/City, e.g. "Africa/Nairobi", "America/New_York", "Asia/Kolkata" (or "UTC"); a fixed offset such as "+03:00" is not a zone',
    });
  }
  const port = Number(config.ui.listen.slice(config.ui.listen.lastIndexOf(':') + 1));
  if (port > 65_535) {
    problems.push({ field: 'ui.listen', value: config.ui.listen, problem: 'has a port above 65535', fix: 'use a port between 0 and 65535 (e.g. "127.0.0.1:8080")' });
  }
  const userNames = new Set<string>();
  config.ui.users.forEach((user, index) => {
    if (userNames.has(user.name)) {
      problems.push({ field: `ui.users[${index}].name`, value: user.name, problem: 'duplicates another user name', fix: 'give each user a distinct name' });
    }
    userNames.add(user.name);
  });
  const sensors = new Map<string, number>();
  config.sources.forEach((source, index) => {
    const earlier = sensors.get(source.sensor);
    if (earlier !== undefined) {
      problems.push({
        field: `sources[${index}].sensor`,
        value: source.sensor,
        problem: `duplicates the sensor name of sources[${earlier}]`,
        fix: `give each source a distinct "sensor", e.g. "${source.sensor}-2"`,
      });
    } else sensors.set(source.sensor, index);
    if (source.type === 'device') {
      // The driver's options are checked here with its schema, so that each problem names its own
      // option and value as the rest of the config does (`driverOptionProblems`).
      const optionProblems = driverOptionProblems(source.driver, source.options, `sources[${index}]`);
      if (optionProblems.length > 0) problems.push(...optionProblems);
      // Checked: merged over the driver's defaults as `resolveDriverOptions` would, without validating again.
      else source.options = { ...getDriver(source.driver).defaults, ...(source.options ?? {}) } as Record<string, unknown>;
    }
  });
  return problems;
}

/**
 * Validates `input` (parsed JSON) and returns a new, complete config. Relative `dataDir` and
 * `edge.tls` paths resolve against `baseDir` (the config file's directory). Throws `ConfigErrors` listing every problem.
 */
export function parseRuntimeConfig(input: unknown, baseDir: string, file?: string): RuntimeConfig {
  if (!validateRuntime(input)) throw new ConfigErrors(problemsOf(validateRuntime.errors, input, ROOT), file);
  const d = DEFAULT_RUNTIME_CONFIG;
  const { tls, payloadEncryption, ...edgeInput } = input.edge ?? {};
  const { deviceKeyFile, ...storeInput } = input.store ?? {};
  const config: RuntimeConfig = {
    deviceId: input.deviceId as string,
    site: input.site ?? d.site,
    dataDir: resolve(baseDir, input.dataDir as string),
    edge: {
      ...d.edge,
      ...edgeInput,
      backoff: { ...d.edge.backoff, ...edgeInput.backoff },
      ...(tls === undefined ? {} : { tls: { ca: resolve(baseDir, tls.ca as string), cert: resolve(baseDir, tls.cert as string), key: resolve(baseDir, tls.key as string) } }),
      ...(payloadEncryption === undefined
        ? {}
        : { payloadEncryption: { suite: payloadEncryption.suite as CipherSuite, keyFile: resolve(baseDir, payloadEncryption.keyFile as string) } }),
    },
    store: { ...d.store, ...storeInput, ...(deviceKeyFile === undefined ? {} : { deviceKeyFile: resolve(baseDir, deviceKeyFile) }) },
    sources: (input.sources ?? []).map(resolveSource),
    artifacts: {
      trustedKeys: (input.artifacts?.trustedKeys ?? []).map((p) => resolve(baseDir, p as string)),
      ...(input.artifacts?.models === undefined
        ? {}
        : { models: Object.fromEntries(Object.entries(input.artifacts.models).map(([k, p]) => [k, resolve(baseDir, p as string)])) as ModelDirs }),
    },
    log: { ...d.log, ...input.log },
    statusIntervalMs: input.statusIntervalMs ?? d.statusIntervalMs,
    ...(input.deviceModel === undefined ? {} : { deviceModel: input.deviceModel }),
    ...(input.timeZone === undefined ? {} : { timeZone: input.timeZone }),
    ui: { ...d.ui, ...input.ui, users: (input.ui?.users ?? []).map((u) => ({ ...u }) as UiUserConfig) },
    inference: { ...d.inference, ...input.inference, restartDelaysMs: [...(input.inference?.restartDelaysMs ?? d.inference.restartDelaysMs)] as number[] },
  };
  const problems = crossFieldProblems(config);
  if (problems.length > 0) throw new ConfigErrors(problems, file);
  return config;
}

/**
 * Validates one source config (as a caller may write it) and fills in the defaults of its type.
 * `field` names it in errors, e.g. `sources[2]`.
 */
export function parseSourceConfig(input: unknown, field = 'source'): SourceConfig {
  if (!validateSource(input)) throw new ConfigErrors(problemsOf(validateSource.errors, input, field));
  return resolveSource(input);
}

/** Reads and parses a JSON config file. An unreadable file or invalid JSON is a `ConfigError` naming the file. */
export function loadRuntimeConfig(path: string): RuntimeConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError('--config', path, `cannot read config file ${file} (${code})`, 'check the path given to --config and that the file is readable');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      '--config',
      path,
      `config file ${file} is not valid JSON: ${(error as Error).message}`,
      'fix the JSON syntax (double-quoted keys and strings, no trailing commas or comments)',
    );
  }
  // No config is nested this deep; validating (and quoting) a hostile one would overflow the stack.
  if (nestingDepth(json, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH) {
    throw new ConfigError('--config', path, `config file ${file} nests objects or arrays more than ${MAX_CONFIG_DEPTH} levels deep`, 'use the config layout of the README (a few levels deep)');
  }
  return parseRuntimeConfig(json, dirname(file), file);
}

const MAX_CONFIG_DEPTH = 32;

/** Depth of nested objects and arrays in `value`, counted without recursion, stopping once past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) return deepest;
    for (const inner of Object.values(v)) stack.push([inner, depth + 1]);
  }
  return deepest;
}
