import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { type Clock, type ClockTimer, systemClock } from '../device-sdk/clock.js';
import { ConfigError, DecodeError, MedgeError, StoreError } from '../device-sdk/errors.js';
import { createLogger, type Logger } from '../device-sdk/log.js';
import { type Alert, DEFAULT_METER_RECORD_BITS, type Finding, METER_NUMBERING_CONTEXT, type MeterIdentity, MeterRecordBook, type MeterRecordBits, RECORD_KINDS, type Reading, type RecordKind, type StreamChunk } from '../device-sdk/records.js';
import { ArtifactSlot, readTrustedKeys, type VerifiedArtifact } from '../device-sdk/security/artifact-slot.js';
import { DEVICE_KEY_FILE, loadOrCreateDeviceKey } from '../device-sdk/security/device-key.js';
import { canonicalJson, sha256Hex } from '../device-sdk/security/signing.js';
import { loadWireKey, sealPayload } from '../device-sdk/security/wire-keys.js';
import { Ledger } from '../device-sdk/store/ledger.js';
import type { OutboxStore, RecordFilter, StoredRecord } from '../device-sdk/store/outbox-store.js';
import { decodeBody } from '../device-sdk/proto/index.js';
import { SqliteOutboxStore, type SqliteOutboxStoreOptions } from '../device-sdk/store/sqlite-outbox-store.js';
import { checkLedgerInBackground, corruptCode, FULL_CHECK_AT_START_MAX_BYTES, type LedgerDamage, type LedgerDamageCause, openLedgerRecovering } from '../device-sdk/store/ledger-recovery.js';
import { Uplink } from '../device-sdk/sync/uplink.js';
import type { EdgeTlsFiles, RuntimeConfig } from './config.js';
import { createRuleEngine, DEFAULT_RULE_OPTIONS, type RuleEngine } from './rules.js';
import { decodeGlucoseLine, GLUCOSE_LINE_CODEC } from './sources/glucose-line-codec.js';
import { createDriver } from '../device-sdk/sensors/registry.js';
import { type AlarmOutput, hasAlarmOutput } from '../device-sdk/sensors/firmata-ecg.js';
import type { SensorSink, SensorState, StoredCgmSession } from '../device-sdk/sensors/types.js';
import { CGM_SEEN_SESSIONS, cgmHeldValue } from '../device-sdk/sensors/cgm-seen-records.js';
import { type Analyzer, type AnalyzerOutput, createAnalyzers, ecgSensors, glucoseSensors, SAMPLE_RATE_UNVALIDATED, type StoredRecords } from './analyzers.js';
import { DEFAULT_GLUCOSE_MONITOR_OPTIONS } from './glucose-monitor.js';
import { SignalWatchdog } from './signal-watchdog.js';
import { UnreadableDataWatch } from './unreadable-data.js';
import { createSimSource, type SourceSink } from './sources/sim-sources.js';
import { packageRoot, packageVersion } from './package-root.js';
import type { LinkState, RuntimeStatus, SensorStatus } from './status.js';
import { ClinicServer } from './ui/server.js';
import { unacknowledgedAlerts } from './ui/clinic-data.js';
import { makeDirs } from '../device-sdk/make-dirs.js';
import type { InferenceWorkerOptions } from '../device-sdk/inference/worker.js';

/** The alert kind of an analysis that threw on its input (severity 2): the sensor's data are stored but not analysed. */
export const ANALYSIS_ERROR = 'analysis-error';
/** An `analysis-error` of the same analysis and sensor is raised again only after this long (ms). */
const ANALYSIS_ERROR_REPEAT_MS = 10 * 60_000;
/**
 * The alert kind of a damaged ledger: at start (severity 2: moved aside, a fresh ledger runs, a technician
 * must look) or while running (severity 3: records wait in memory until a restart starts a fresh ledger).
 */
export const STORAGE_DAMAGED = 'storage-damaged';
/** A ledger flush that keeps failing is logged this often (it is retried every flush interval). */
const FLUSH_ERROR_LOG_INTERVAL_MS = 60_000;

/** Decoders for bytes that arrive raw from a transport, by codec name (`timeZone`: the configured zone, for meter times). One explicit list. */
const RAW_CODECS: Readonly<Record<string, (bytes: Uint8Array, tDevice: number, sensor: string, timeZone?: string) => Reading>> = Object.freeze({
  [GLUCOSE_LINE_CODEC]: decodeGlucoseLine,
});

export interface RuntimeDeps {
  clock: Clock;
  logger: Logger;
  /** Seed of the simulated sources (each source gets seed + its index). */
  seed: number;
  /**
   * The inference workers' deadlines, over the config's `inference` ones (tests): a model that does not
   * answer in time is stopped and its analysis falls back to its rules, so `stop()` returns within about
   * `requestTimeoutMs + closeTimeoutMs` of the models' share of it.
   */
  inference: Partial<InferenceWorkerOptions>;
  /** Restarts of a model worker that stopped answering (default: the config's `inference.restartDelaysMs`). */
  modelRestarts: { delaysMs: readonly number[] };
}

export interface RuntimeEvents {
  alert: [Alert];
  status: [RuntimeStatus];
  /** The clinic screen is listening at `url`, or could not start (`error`); alarms run either way. */
  ui: [{ url?: string; error?: string }];
}

/**
 * The MQTT.js TLS options of a device identity: the edge must present a certificate from `ca`, and
 * the device authenticates with its own. An unreadable file is a `ConfigError` naming its field.
 */
export function readTlsFiles(files: EdgeTlsFiles): Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  const read = (field: keyof EdgeTlsFiles): string => {
    try {
      return readFileSync(files[field], 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new ConfigError(`edge.tls.${field}`, files[field], `cannot read ${files[field]} (${code})`, 'point it at the file medge provision wrote, readable by this user');
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key'), rejectUnauthorized: true };
}

/** Creates the data directory if needed; one that is a file or cannot be created is a `ConfigError` on `dataDir`. */
function prepareDataDir(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new ConfigError('dataDir', dir, 'is a file, not a directory', 'point dataDir at a directory (it is created when missing)');
  }
  try {
    makeDirs(dir);
    accessSync(dir, constants.W_OK);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const code = e.code ?? e.message;
    const at = e.path !== undefined && resolve(e.path) !== resolve(dir) ? ` at ${e.path}` : '';
    throw new ConfigError('dataDir', dir, `cannot be created or written (${code}${at})`, 'choose a directory the runtime user can write, or give that user write permission');
  }
}

/** The audit detail of a ledger found damaged and replaced (`ledger-damaged`). */
function damageDetail(d: LedgerDamage): string {
  const restored = Object.values(d.restored).reduce((a, b) => a + b, 0);
  const floor = RECORD_KINDS.map((k) => `${k} ${d.seqFloor[k]}`).join(', ');
  const unreadable = d.unreadable.length > 0 ? `; ${d.unreadable.length} parts unreadable (see ${d.movedTo}/damage.json)` : '';
  return `${d.code}: ${d.reason.slice(0, 200)}; moved to ${d.movedTo} (${d.files.join(', ')}); fresh ledger, seqs above ${floor}; ${restored} unacknowledged records restored${unreadable}`;
}

/** `storage-damaged` (2) for a ledger found damaged and replaced: the bedside keeps working, a technician must look. */
function damageAlert(d: LedgerDamage, t: number): Alert {
  const restored = Object.values(d.restored).reduce((a, b) => a + b, 0);
  return {
    kind: STORAGE_DAMAGED,
    severity: 2,
    t,
    message: `The device ledger was damaged (${d.code}) and could not be used. Monitoring goes on with a fresh ledger; ${restored} records not yet synced were recovered from the damaged file${d.unreadable.length > 0 ? ' (parts of it could not be read: records there that were not yet synced are not on this device any more)' : ''}. The damaged file is kept in ${d.movedTo}: a technician should check the storage card and the file.`,
  };
}

/** Where the ledger file of a device data directory lives. */
export function ledgerPath(dataDir: string): string {
  return join(dataDir, 'ledger.sqlite');
}

/**
 * What the ledger keeps of the glucose sensors across a restart: the newest record number stored per sensor
 * of `meters` and per meter numbering (`MeterRecordBook`: a replaced or reset meter numbers from 1 again), each
 * on its own counter width (`newerMeterRecord`: on a Bluetooth meter's 16 bits, 0 after
 * 65,535 is newer; a serial meter's 32-bit numbers are not wrapped at 65,536; a meter's backfill resumes from it, so each record is stored once; records the edge acknowledged and compaction
 * removed after the retention are no longer counted), and the readings and alerts of `replayed` stored at or
 * after `sinceMs` (device clock), in the order they were stored: the rules and the analyses replay them at
 * start, so that an alert episode open before a restart stays open. Those dated after `untilMs` (now) are not
 * replayed: the device clock was set back since they were stored, and a trace ending in the future takes
 * every new reading for a backfilled one (QA: the clock set back 48 h before a restart, no
 * glucose-predicted-low nor sustained-high alert in the 10 h after it, none until the clock passes the stored
 * readings again; a meter's record numbers still count). Only the meters' readings are read whole; of the
 * other sensors' readings and of the alerts, those stored since `sinceMs` (`OutboxStore.readMatching`: the
 * rest are never opened. QA: 300k stored heart-rate readings, 3.5 days at one a second, took 2.5 s to scan at
 * every start of a runtime with a glucose source, 3.2 s as many glucose readings; none of them is replayed).
 */
export function storedGlucoseState(store: OutboxStore, sensors: { meters: Readonly<Record<string, MeterRecordBits>>; replayed: readonly string[] }, sinceMs: number, untilMs = Number.POSITIVE_INFINITY): { meterRecords: MeterRecordBook } & StoredRecords {
  const alerts: Alert[] = [];
  const meters = new Map(Object.entries(sensors.meters));
  // Records without a date are known by content on the glucose meters only (not one entry per CGM reading for the whole run).
  const meterRecords = new MeterRecordBook((sensor) => meters.get(sensor) ?? DEFAULT_METER_RECORD_BITS, (sensor) => meters.has(sensor));
  const replayed = new Set(sensors.replayed);
  const rows: StoredRecord[] = [];
  const read = (kind: RecordKind, filter: RecordFilter) => {
    for (let after = 0; ; ) {
      const page = store.readMatching(kind, filter, after, 5000);
      if (page.length === 0) return;
      after = (page.at(-1) as { seq: number }).seq;
      rows.push(...page);
    }
  };
  if (meters.size > 0) read('reading', { tags: [...meters.keys()] });
  const others = [...replayed].filter((s) => !meters.has(s));
  // A reading is stored after it is taken: one stored before `sinceMs` was taken before it.
  if (others.length > 0) read('reading', { tags: others, fromTMs: sinceMs });
  // Both in seq order: merged, the readings are in the order they were stored.
  rows.sort((a, b) => a.seq - b.seq);
  const readings: Reading[] = [];
  for (const row of rows) {
    const r = decodeBody('reading', row.body);
    if (meters.has(r.sensor)) meterRecords.note(r);
    if (replayed.has(r.sensor) && r.tDevice >= sinceMs && r.tDevice <= untilMs) readings.push(r);
  }
  if (replayed.size > 0) {
    rows.length = 0;
    // An alert's tag is its kind (the sensor is in the body); it is stored after it is raised.
    read('alert', { fromTMs: sinceMs });
    for (const row of rows) {
      const a = decodeBody('alert', row.body);
      if (a.sensor !== undefined && replayed.has(a.sensor) && a.t >= sinceMs && a.t <= untilMs) alerts.push(a);
    }
  }
  return { meterRecords, readings, alerts };
}

/**
 * How far back the CGM records stored before a start are read (`storedCgmRecords`): 21 days of the device clock before
 * the newest stored for the sensor. CGM sensors are worn 7-15 days (a session's Time Offsets may run 45.5 days at most):
 * every record of a session of up to 21 days, the one a CGM resends (its current session), was stored in the 21 days
 * before the newest, however the runtime's time was cut by restarts and whatever the clock says at this start. A device
 * clock set back while they were stored reads more rows; one set forward by more than 21 days since a session's first
 * records were stored leaves those out (stored again when resent).
 */
export const CGM_RECALL_MS = 21 * 86_400_000;
/**
 * At most this many of a sensor's rows are read (`storedCgmRecords`, the newest): 21 days of 1-minute records (30,240)
 * and more. Bounds the start when the device clock was set back (QA: the whole ledger read, 105k rows, 1.5 s).
 */
export const CGM_RECALL_MAX_ROWS = 32_768;
/** Rows that cannot be opened skipped per sensor before its stored records are given up (a damaged ledger). */
const CGM_RECALL_MAX_UNREADABLE = 64;
const CGM_RECALL_PAGE = 4096;

/**
 * The seq of the newest row matching `filter` below `beforeSeq` (one that cannot be opened: reads of it throw), found
 * by the oldest row after a seq (`readMatching`, one row), which is past `beforeSeq` (or none) from that seq on.
 */
function newestSeqBelow(store: OutboxStore, filter: RecordFilter, beforeSeq: number): number {
  let lo = 0;
  let hi = beforeSeq - 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    let past: boolean;
    try {
      const next = store.readMatching('reading', filter, mid, 1)[0];
      past = next === undefined || next.seq >= beforeSeq;
    } catch {
      past = false;
    }
    if (past) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The newest rows matching `filter`, at most `maxRows`, oldest first (`readBefore` pages backwards). A row
 * that cannot be opened is skipped and logged (its seq, nothing of its content), the rows around it kept; more than
 * `CGM_RECALL_MAX_UNREADABLE` throw.
 */
function readNewest(store: OutboxStore, filter: RecordFilter, log: Logger, sensor: string, maxRows = CGM_RECALL_MAX_ROWS): StoredRecord[] {
  const pages: StoredRecord[][] = [];
  let rows = 0;
  let before = Number.MAX_SAFE_INTEGER;
  let unreadable = 0;
  while (rows < maxRows) {
    const limit = Math.min(CGM_RECALL_PAGE, maxRows - rows);
    let page: StoredRecord[];
    try {
      page = store.readBefore('reading', before, limit, filter);
    } catch (error) {
      // Row by row down to the one that cannot be opened, which is skipped.
      page = [];
      while (page.length < limit) {
        try {
          const row = store.readBefore('reading', before, 1, filter)[0];
          if (row === undefined) break;
          page.unshift(row);
          before = row.seq;
        } catch {
          if (++unreadable > CGM_RECALL_MAX_UNREADABLE) throw error;
          before = newestSeqBelow(store, filter, before);
          log.warn({ sensor, seq: before, err: (error as Error).message }, 'CGM reading stored before this start not readable: skipped');
        }
      }
    }
    if (page.length === 0) break;
    pages.push(page);
    rows += page.length;
    before = (page[0] as StoredRecord).seq;
  }
  return pages.reverse().flat();
}

/**
 * The CGM readings stored for each of `sensors` in the `CGM_RECALL_MS` before the newest stored for it (at most the
 * newest `CGM_RECALL_MAX_ROWS`), by sensor session of a CGM (serial and session start as stored), the session stored
 * last last, at most `CGM_SEEN_SESSIONS` (those stored last), as the records the drivers take as handed over
 * (`DriverDeps.storedCgmRecords`): a CGM resends its backlog when it reconnects, and a restarted runtime stored it again
 * (test/sensors/ble-cgm-restart.test.ts). Pages backwards by tag and time (`OutboxStore.readBefore`): the rows before the
 * window and other sensors' are not opened; each row in it is (its offset, session and serial are sealed with the rest:
 * bench/cgm-recall.js). Only the CGM driver's readings (`source: cgm`, a uint16 time offset) count: not those another
 * source stored under the same sensor name. A row that cannot be opened or decoded is skipped and logged (no serial),
 * the others kept; a sensor whose rows cannot be read at all is logged and has none: the monitoring starts, and records
 * resent are stored again.
 */
export function storedCgmRecords(store: OutboxStore, sensors: readonly string[], log: Logger): Map<string, StoredCgmSession[]> {
  const out = new Map<string, StoredCgmSession[]>();
  for (const sensor of sensors) {
    // Per CGM and session: its fields, offsets and values; Map order is the order last stored (the last row's group last).
    const groups = new Map<string, { session: Omit<StoredCgmSession, 'offsets' | 'values'>; offsets: number[]; values: number[] }>();
    let last: string | undefined;
    try {
      const newest = readNewest(store, { tags: [sensor] }, log, sensor, 1).at(-1);
      if (newest === undefined) continue;
      let undecodable = 0;
      for (const row of readNewest(store, { tags: [sensor], fromTMs: newest.tMs - CGM_RECALL_MS }, log, sensor)) {
        let r: Reading;
        try {
          r = decodeBody('reading', row.body);
        } catch {
          undecodable += 1;
          continue;
        }
        const c = r.context ?? {};
        const offset = r.meterRecord;
        if (r.sensor !== sensor || c.source !== 'cgm' || offset === undefined || !Number.isInteger(offset) || offset < 0 || offset > 0xffff) continue;
        const serial = c[METER_NUMBERING_CONTEXT.serial];
        const address = c[METER_NUMBERING_CONTEXT.meter];
        const key = `${serial === undefined ? '-' : `s${serial}`} ${c.sessionStart ?? '-'}`;
        let group = groups.get(key);
        if (group === undefined) {
          group = { session: {}, offsets: [], values: [] };
          if (c.sessionStart !== undefined) group.session.sessionStart = c.sessionStart;
          if (serial !== undefined) group.session.serial = serial;
        }
        if (key !== last) {
          groups.delete(key);
          groups.set(key, group);
          last = key;
        }
        if (serial !== undefined && address !== undefined) group.session.address = address;
        group.offsets.push(offset);
        group.values.push(cgmHeldValue(r.value));
      }
      if (undecodable > 0) log.warn({ sensor, rows: undecodable }, 'CGM readings stored before this start not decodable: skipped');
    } catch (error) {
      log.warn({ sensor, err: (error as Error).message }, 'CGM records stored before this start not readable: records the CGM resends are stored again');
      continue;
    }
    const sessions = [...groups.values()].slice(-CGM_SEEN_SESSIONS).map((g) => ({ ...g.session, offsets: Uint16Array.from(g.offsets), values: Uint16Array.from(g.values) }));
    if (sessions.length > 0) out.set(sensor, sessions);
  }
  return out;
}

/** What the runtime starts per configured source: a simulated source or a device driver. */
interface RuntimeSource {
  sensor: string;
  /** `sim-ecg`, or the driver name of a device. */
  source: string;
  rateUnit: 'samples/s' | 'readings/min';
  nominalRate: number;
  /** The width of its readings' `meterRecord` counter (`SensorDriver.meterRecordBits`), when it declares one. */
  meterRecordBits?: MeterRecordBits;
  start(sink: SourceSink & SensorSink): void;
  stop(): void | Promise<void>;
}

/**
 * The device runtime: sources → ledger → rules → local alarms, and the uplink draining the ledger
 * to the edge. Nothing here waits for the network: alerts are stored and raised locally first.
 *
 * Lifecycle: `start()` opens the ledger, starts the uplink and the sources; `stopSources()` stops
 * producing (used to drain); `stop()` stops everything, flushes and closes the ledger.
 */
export class Runtime extends EventEmitter<RuntimeEvents> {
  readonly config: RuntimeConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly store: SqliteOutboxStore;
  private readonly ledger: Ledger;
  private readonly uplink: Uplink;
  private readonly rules: RuleEngine;
  private readonly sources: RuntimeSource[];
  /** Live analysis (ECG, heart sounds, glucose) run on every chunk and reading, locally. */
  private readonly analyzers: Analyzer[];
  private readonly sensorStates = new Map<string, SensorState>();
  /** Each stream sensor's sample rate this session, and whether the audit log had it at that rate when it came (`noteRate`). */
  private readonly sensorRates = new Map<string, { rateHz: number; audited: boolean }>();
  /** When `analysis-error` was last raised, by `analyzer|sensor`. */
  private readonly analysisErrors = new Map<string, number>();
  /** Monitored ECG sensors, watched for a lost signal while the sources run. */
  private readonly ecgSensors: string[];
  private watchdog: SignalWatchdog | undefined;
  private readonly unreadable: UnreadableDataWatch;
  private watchdogTimer: ClockTimer | undefined;
  /** Drivers with alarm outputs (a Firmata board's LED and buzzer), driven on every raised alert and told of acknowledgements. */
  private readonly alarmOutputs: AlarmOutput[] = [];
  /** Newest meter record number seen per sensor and meter numbering (durable once the ledger flushes; read back from the ledger at start). */
  private meterRecords: MeterRecordBook;
  /** The CGM records stored before this start, per CGM sensor, until its driver takes them (`storedCgmRecords`). */
  private readonly cgmRecords: Map<string, StoredCgmSession[]>;
  /** The width of each sensor's meter record counter, as its source declares it (`DEFAULT_METER_RECORD_BITS` otherwise). */
  private readonly meterRecordBits: Readonly<Record<string, MeterRecordBits>>;
  private readonly counts = new Map<string, number>();
  private readonly rates = new Map<string, number>();
  private lastAlert: Alert | undefined;
  private storageFull = false;
  private refusedChunks = 0;
  /** The ledger's file system is full (a flush failed with SQLITE_FULL): waveform is not stored until a flush succeeds again. */
  private diskFull = false;
  private lastFlushErrorLogAt: number | undefined;
  private lastRateAt = 0;
  private timers: NodeJS.Timeout[] = [];
  private readonly startedAt: number;
  private stopped = false;
  private started = false;
  /** Analyzer flushes in progress, chained (`flushAnalyzers`). */
  private flushing: Promise<void> = Promise.resolve();
  /** Set just before the store closes: analyzer output arriving later is dropped. */
  private storeClosed = false;
  /** The clinic screen (`config.ui`), when enabled. */
  private readonly ui: ClinicServer | undefined;
  /** The last status emitted: what the clinic screen shows (computing a new one resets the rate counters). */
  private lastStatus: RuntimeStatus | undefined;
  private readonly deviceKeyCreated: boolean;
  /** The ledger was damaged at start and replaced by a fresh one (reported by `start`). */
  private readonly ledgerDamage: LedgerDamage | undefined;
  /** A write failed with SQLITE_CORRUPT while running (`storage-damaged` raised once): waveform is not stored, records wait in memory. */
  private ledgerCorrupt: LedgerDamageCause | undefined;
  private readonly storeOptions: SqliteOutboxStoreOptions;
  /** The ledger's counters at the last status that could read them. */
  private lastStats: ReturnType<SqliteOutboxStore['stats']> | undefined;
  private readonly trustedKeys: readonly string[];

  constructor(config: RuntimeConfig, deps: Partial<RuntimeDeps> = {}) {
    super();
    this.config = config;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger('medge-runtime', config.log.level);
    // Read before the ledger opens: a missing key file fails here without leaving the store open.
    const { tls, payloadEncryption, ...edge } = config.edge;
    const mqtt = tls ? readTlsFiles(tls) : {};
    let sealer: ((topic: string, payload: Uint8Array) => Uint8Array) | undefined;
    if (payloadEncryption) {
      let wireKey: ReturnType<typeof loadWireKey>;
      try {
        wireKey = loadWireKey(payloadEncryption.keyFile);
      } catch (error) {
        throw new ConfigError('edge.payloadEncryption.keyFile', payloadEncryption.keyFile, (error as Error).message, 'point it at the ID.wire.key file medge provision wrote (mode 0600)');
      }
      sealer = (topic, payload) => sealPayload(payloadEncryption.suite, wireKey, topic, payload);
    }
    // With no trusted keys configured, the key that signed the models shipped in this package is
    // trusted (it is published: see models/keys/README.md), so unsigned or tampered models are still refused.
    const trusted = config.artifacts.trustedKeys.length > 0 ? config.artifacts.trustedKeys : [join(packageRoot(), 'models', 'keys', 'dev-signing.pub')];
    if (config.artifacts.trustedKeys.length === 0) this.log.warn({ trusted }, 'artifacts.trustedKeys is empty: trusting the published development key of the shipped models; set your own key on production boards');
    this.trustedKeys = readTrustedKeys(trusted);
    prepareDataDir(config.dataDir);
    const { deviceKey, created: deviceKeyCreated } = loadOrCreateDeviceKey(config.store.deviceKeyFile ?? join(config.dataDir, DEVICE_KEY_FILE));
    this.deviceKeyCreated = deviceKeyCreated;
    const hours = 3600_000;
    const recordMs = config.store.recordRetentionDays * 24 * hours;
    this.storeOptions = {
      deviceId: config.deviceId,
      budgetBytes: config.store.budgetBytes,
      retentionMs: { chunk: config.store.chunkRetentionHours * hours, alert: recordMs, finding: recordMs, reading: recordMs, quarantine: recordMs },
      encryption: { suite: config.store.cipher, deviceKey },
      // Seqs start above the device clock's floor at every open: a new SD card or a restored ledger under
      // this deviceId does not reuse the seqs of the one before (device-sdk/store/README.md, "Sequence numbers").
      seqFloorClock: this.clock,
    };
    // A damaged ledger is moved aside and a fresh one started (seqs above the old ones): the bedside keeps being monitored.
    const opened = openLedgerRecovering(ledgerPath(config.dataDir), { ...this.storeOptions, nowMs: this.clock.now() });
    this.store = opened.store;
    this.ledgerDamage = opened.damage;
    this.ledger = new Ledger(this.store, {
      clock: this.clock,
      onFlushError: (error) => this.onFlushError(error),
    });
    this.uplink = new Uplink(this.store, { ...edge, site: config.site, clock: this.clock, logger: this.log, mqtt, ...(sealer ? { sealPayload: sealer } : {}) });
    this.rules = createRuleEngine();
    const seed = deps.seed ?? 1;
    const driverDeps = {
      clock: this.clock,
      logger: this.log,
      lastMeterRecord: (sensor: string, meter?: MeterIdentity) => this.meterRecords.last(sensor, meter),
      meterRecordStored: (sensor: string, meter: MeterIdentity, record: number, meterClock: string, like?: Reading) => this.meterRecords.holds(sensor, meter, record, meterClock, like),
      datedMeterRecordAtOrBefore: (sensor: string, meter: MeterIdentity, record: number) => this.meterRecords.datedAtOrBefore(sensor, meter, record),
      meterReadingStored: (reading: Reading) => this.meterRecords.holdsAsSent(reading),
      storedCgmRecords: (sensor: string) => {
        const records = this.cgmRecords.get(sensor) ?? [];
        this.cgmRecords.delete(sensor);
        return records;
      },
      ...(config.timeZone !== undefined ? { timeZone: config.timeZone } : {}),
    };
    const deviceKinds: Record<string, string> = {};
    this.sources = config.sources.map((s, i): RuntimeSource => {
      if (s.type !== 'device') return createSimSource(s, this.clock, seed + i, config.timeZone);
      const driver = createDriver(s.driver, s.sensor, s.options, driverDeps);
      deviceKinds[s.sensor] = driver.kind;
      if (hasAlarmOutput(driver)) this.alarmOutputs.push(driver);
      return { sensor: s.sensor, source: s.driver, rateUnit: driver.rateUnit, nominalRate: driver.nominalRate, ...(driver.meterRecordBits ? { meterRecordBits: driver.meterRecordBits } : {}), start: (sink) => driver.start(sink), stop: () => driver.stop() };
    });
    this.meterRecordBits = Object.fromEntries(this.sources.map((source) => [source.sensor, source.meterRecordBits ?? DEFAULT_METER_RECORD_BITS]));
    // Meter record numbers survive a restart: a meter's backfill resumes after the last stored record.
    // So do the rules' episodes of every glucose sensor's readings: the readings stored in the last day (the
    // historical limit) are replayed through the rules, nothing raised, so that the next record of a low that
    // already alerted (a meter's backfill after the restart, a CGM's next reading) does not alert again, nor an
    // old severe reading's notice. The glucose analysis replays them too, with the sensors' stored alerts, so
    // that a predicted-low or sustained-high episode open at a restart stays open and a sustained high goes on
    // counting from its start (before: alerted again, or two hours after the restart).
    const meterSensors = Object.fromEntries(Object.keys(deviceKinds).filter((sensor) => deviceKinds[sensor] === 'glucose-meter').map((sensor) => [sensor, this.meterRecordBits[sensor] ?? DEFAULT_METER_RECORD_BITS]));
    const replayMin = Math.max(DEFAULT_RULE_OPTIONS.historical.afterMin, DEFAULT_GLUCOSE_MONITOR_OPTIONS.historyMin);
    const now = this.clock.now();
    const stored = storedGlucoseState(this.store, { meters: meterSensors, replayed: glucoseSensors(config.sources, deviceKinds) }, now - replayMin * 60_000, now);
    // Every source's record numbers from now on, on its own counter width; the meters' as stored.
    this.meterRecords = stored.meterRecords;
    // So do a CGM's records: those it resends when it reconnects after the restart are not stored again.
    this.cgmRecords = storedCgmRecords(this.store, Object.keys(deviceKinds).filter((sensor) => deviceKinds[sensor] === 'cgm'), this.log);
    for (const r of stored.readings) this.rules.onReading(r);
    this.ecgSensors = ecgSensors(config.sources, deviceKinds);
    this.unreadable = new UnreadableDataWatch(this.clock);
    const { restartDelaysMs, ...deadlines } = config.inference;
    this.analyzers = createAnalyzers(config, deviceKinds, {
      trustedKeys: this.trustedKeys,
      logger: this.log,
      now: () => this.clock.now(),
      clock: this.clock,
      ...(config.artifacts.models ? { models: config.artifacts.models } : {}),
      // The config's deadlines and restarts (defaults: DEFAULT_INFERENCE_WORKER_OPTIONS, DEFAULT_MODEL_RESTARTS); deps override them (tests).
      inference: { ...deadlines, ...deps.inference },
      modelRestarts: deps.modelRestarts ?? { delaysMs: restartDelaysMs },
      meterRecordBits: this.meterRecordBits,
    });
    for (const a of this.analyzers) a.restore?.(stored);
    this.restoreAlarms();
    this.startedAt = this.clock.monotonic();
    if (config.ui.enabled) this.ui = new ClinicServer({ config, store: this.store, status: () => this.lastStatus, clock: this.clock, logger: this.log, onAcknowledged: (seq) => this.acknowledged(seq) });
  }

  get bootId(): string {
    return this.store.bootId;
  }

  start(): void {
    if (this.started) throw new MedgeError('runtime', 'the runtime is already started');
    this.started = true;
    this.log.info(
      {
        deviceId: this.config.deviceId,
        site: this.config.site,
        bootId: this.store.bootId,
        edge: this.config.edge.url,
        sources: this.config.sources.map((s) => s.type),
        store: this.config.store,
        // Meter clocks without a Current Time Service are read in this zone (device-sdk/sensors/meter-time.ts).
        timeZone: this.config.timeZone ?? 'not set: record times of meters without a Current Time Service are stored zone-unknown',
      },
      'runtime starting',
    );
    this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'start', detail: `boot ${this.store.bootId}` });
    // Who produced this session's records, for the edge (FHIR Device: model and firmware version).
    this.ledger.add('reading', {
      sensor: 'device',
      type: 'device-info',
      value: 0,
      unit: '',
      tDevice: this.clock.now(),
      context: { firmwareVersion: `medge ${packageVersion()}`, model: this.config.deviceModel ?? 'medge runtime', sensors: this.config.sources.map((s) => s.sensor).join(',') },
    });
    this.auditConfig();
    if (this.ledgerDamage) this.reportLedgerDamage(this.ledgerDamage);
    else this.checkLedgerLater();
    if (this.deviceKeyCreated) {
      this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'device-key-create', detail: `device key ${this.store.keyring?.deviceKey.keyId} created` });
    }
    this.uplink.on('state', (state) => this.log.info({ link: state }, 'link state'));
    // Another board under this deviceId keeps taking over the MQTT session: stored and raised like any alert.
    this.uplink.on('alert', (alert) => this.raise(alert));
    this.uplink.start();
    for (const a of this.analyzers) {
      a.start?.({
        settled: (s, alert) => {
          // A model that settles after stop() has nowhere to go: the store is closed.
          if (this.stopped) return;
          const action = `analysis-${s.analyzer}`;
          const detail = s.state === 'model' ? `model ${s.algo} from ${s.source ?? '?'}` : `fallback ${s.algo}: ${s.reason ?? 'unknown'}`;
          const previous = this.store.lastAudit(action)?.detail;
          this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action, detail });
          if (alert && previous !== detail) this.raise(alert);
        },
        emit: (out) => {
          if (!this.storeClosed) this.take(out);
        },
      });
    }
    const sink = this.sink();
    if (this.ecgSensors.length > 0) {
      this.watchdog = new SignalWatchdog(this.ecgSensors, this.clock);
      this.armWatchdog();
    }
    for (const source of this.sources) source.start(sink);
    this.lastRateAt = this.clock.monotonic();
    const every = (ms: number, fn: () => void) => {
      // A timer that throws (a ledger damaged while running) is logged, never an uncaught exception that ends the monitoring.
      const t = setInterval(() => {
        try {
          fn();
        } catch (error) {
          this.log.error({ err: (error as Error).message }, 'periodic runtime task failed; retried at its next turn');
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.config.statusIntervalMs, () => {
      this.lastStatus = this.status();
      this.emit('status', this.lastStatus);
    });
    every(10_000, () => this.checkBudget());
    this.checkBudget();
    this.ui?.start().then(
      (url) => this.emit('ui', { url }),
      (error: unknown) => {
        // The screen is not worth stopping the alarms for: report it and keep running.
        this.log.error({ err: (error as Error).message, listen: this.config.ui.listen }, 'clinic screen could not start');
        this.emit('ui', { error: (error as Error).message });
      },
    );
    this.startReencryption();
  }

  /**
   * A slot for a signed artifact (a model, an update bundle) verified against the config's
   * `artifacts.trustedKeys`: `offer(dir)` loads a candidate with `load` only if its signature and
   * every file hash hold, and otherwise keeps the previous one. Every offer goes to the audit log.
   */
  artifactSlot<T>(name: string, load: (artifact: VerifiedArtifact) => T | Promise<T>, dispose?: (value: T) => void): ArtifactSlot<T> {
    return new ArtifactSlot<T>({
      name,
      trustedKeys: this.trustedKeys,
      load,
      ...(dispose ? { dispose } : {}),
      onOffer: ({ slot, dir, outcome }) => {
        const tMs = this.clock.now();
        if (outcome.accepted) {
          const { id, version } = outcome.manifest;
          this.log.info({ slot, id, version, keyId: outcome.keyId }, 'artifact accepted');
          this.store.appendAudit({ tMs, actor: 'runtime', action: 'artifact-accept', detail: `${slot}: ${id}@${version} from ${dir}, signed by ${outcome.keyId}${outcome.previous ? `, replacing ${outcome.previous.version}` : ''}` });
        } else {
          const kept = outcome.kept ? `${outcome.kept.id}@${outcome.kept.version}` : 'nothing';
          this.log.error({ slot, dir, reason: outcome.reason, kept }, `artifact refused: ${outcome.message}`);
          this.store.appendAudit({ tMs, actor: 'runtime', action: 'artifact-refuse', detail: `${slot}: ${dir} refused (${outcome.reason}: ${outcome.message}); keeps ${kept}` });
        }
      },
    });
  }

  /** Audits, logs and raises (`storage-damaged`, 2) a ledger that was damaged at start and replaced by a fresh one. */
  private reportLedgerDamage(d: LedgerDamage): void {
    this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'ledger-damaged', detail: damageDetail(d) });
    this.log.error({ code: d.code, movedTo: d.movedTo, files: d.files, seqFloor: d.seqFloor, restored: d.restored, unreadable: d.unreadable.length }, 'ledger damaged: moved aside, a fresh ledger started');
    this.raise(damageAlert(d, this.clock.now()));
  }

  /** Records the config's hash in the audit log when it differs from the one the last start recorded. */
  private auditConfig(): void {
    const hash = sha256Hex(canonicalJson(this.config));
    const previous = this.store.lastAudit('config')?.detail.match(/sha256 ([0-9a-f]{64})/)?.[1];
    if (previous === hash) return;
    this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'config', detail: `${previous ? `changed from sha256 ${previous.slice(0, 16)}... to` : 'first'} sha256 ${hash}` });
  }

  /**
   * Moves records not under the active data key (plaintext from before encryption at rest, or older
   * keys after a rotation made while the runtime was stopped) to it, a few hundred per tick, off the hot path.
   */
  private startReencryption(): void {
    let moved = 0;
    const timer = setInterval(() => {
      try {
        const step = this.store.reencryptStep(200);
        moved += step.moved;
        if (!step.done) return;
        if (moved > 0) this.log.info({ records: moved }, 'records re-sealed under the active data key');
      } catch (error) {
        this.log.error({ err: (error as Error).message }, 're-encryption step failed; retrying at the next start');
      }
      clearInterval(timer);
      this.timers = this.timers.filter((t) => t !== timer);
    }, 50);
    timer.unref();
    this.timers.push(timer);
  }

  /** Checks the ECG sensors for a lost signal every second (device clock). */
  private armWatchdog(): void {
    this.watchdogTimer = this.clock.setTimeout(() => {
      const watchdog = this.watchdog;
      if (this.stopped || !watchdog) return;
      for (const alert of watchdog.check()) this.raise(alert);
      this.armWatchdog();
    }, 1000);
  }

  private count(sensor: string, n: number): void {
    this.counts.set(sensor, (this.counts.get(sensor) ?? 0) + n);
  }

  /**
   * Runs one step of an analysis on data already stored. An exception there is logged and raised as
   * `analysis-error` (severity 2: that sensor's data are not being analysed), at most once per analysis
   * and sensor every `ANALYSIS_ERROR_REPEAT_MS`; it never stops storage, the other analyses or the link
   * (QA: one ECG frame at 1e9 Hz made the QRS detector throw, which ended the serial session for good).
   */
  private analyze(a: Analyzer, sensor: string, step: () => AnalyzerOutput | undefined): void {
    let out: AnalyzerOutput | undefined;
    try {
      out = step();
    } catch (error) {
      this.analysisFailed(a, sensor, error);
      return;
    }
    this.take(out, sensor);
  }

  /**
   * Logs an analysis step that threw and raises `analysis-error` for it (see `analyze`). `sensor` is
   * undefined for a flush of every sensor (at stop).
   */
  private analysisFailed(a: Analyzer, sensor: string | undefined, error: unknown): void {
    const key = `${a.name}|${sensor ?? '*'}`;
    const now = this.clock.now();
    const last = this.analysisErrors.get(key);
    const message = error instanceof Error ? error.message : String(error);
    this.log.error({ analyzer: a.name, sensor, err: message }, 'analysis failed on its input; the data are stored');
    if (this.storeClosed) return;
    if (last !== undefined && now - last < ANALYSIS_ERROR_REPEAT_MS && now >= last) return;
    this.analysisErrors.set(key, now);
    const which = sensor === undefined ? 'every sensor' : `sensor ${sensor}`;
    this.raise({
      kind: ANALYSIS_ERROR,
      severity: 2,
      t: now,
      ...(sensor === undefined ? {} : { sensor }),
      message: `The ${a.name} analysis of ${which} failed on the data it received (${message.slice(0, 300)}). The data are stored; until the analysis runs again there are no findings or alarms from it: check the device's settings.`,
    });
  }

  /**
   * Stores what an analyzer gave and raises its alerts (derived readings are not counted in a sensor's
   * rate); findings without a sensor name `sensor`, the sensor of the chunk or reading that produced
   * them (a flush or a timer names its own).
   */
  private take(out: AnalyzerOutput | undefined, sensor?: string): void {
    if (!out) return;
    const named = (f: Finding) => (f.sensor === undefined && sensor !== undefined ? { ...f, sensor } : f);
    for (const r of out.readings ?? []) this.onReading(r, false);
    // A finding that raised an alert is stored with it (its seq becomes the alert's findingSeq).
    const raising = new Set((out.alerts ?? []).map((a) => a.finding).filter((f) => f !== undefined));
    for (const f of out.findings ?? []) if (!raising.has(f)) this.ledger.add('finding', named(f));
    for (const { finding, ...alert } of out.alerts ?? []) {
      // A sensor that was at this unvalidated rate when the audit log last recorded it was reported then:
      // the same information (severity 1) is not raised again at every start. Its findings stay flagged.
      if (alert.kind === SAMPLE_RATE_UNVALIDATED && alert.sensor !== undefined && this.sensorRates.get(alert.sensor)?.audited) {
        this.log.info({ alert: alert.kind, sensor: alert.sensor }, 'unvalidated sample rate already reported before this start; not raised again');
        continue;
      }
      this.raise(alert, finding && named(finding));
    }
  }

  /**
   * Records a stream's sample rate in the audit log (`sample-rate-SENSOR`) when it differs from the last
   * one recorded for the sensor, before the analyses see the chunk.
   */
  private noteRate(c: StreamChunk): void {
    if (this.sensorRates.get(c.sensor)?.rateHz === c.rateHz) return;
    const action = `sample-rate-${c.sensor}`;
    const detail = `${c.rateHz} Hz`;
    let previous: string | undefined;
    try {
      previous = this.store.lastAudit(action)?.detail;
      if (previous !== detail) this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action, detail });
    } catch (error) {
      // A ledger damaged while running: the chunk still goes to the analyses (the audit entry is missing).
      this.log.error({ sensor: c.sensor, rateHz: c.rateHz, err: (error as Error).message }, 'sample rate not audited');
    }
    this.sensorRates.set(c.sensor, { rateHz: c.rateHz, audited: previous === detail });
  }

  private sink(): SourceSink & SensorSink {
    return {
      chunk: (c) => {
        this.count(c.sensor, c.samples.length);
        this.noteRate(c);
        this.unreadable.readable(c.sensor);
        const restored = this.watchdog?.chunk(c);
        if (restored) this.raise(restored);
        if (this.storageFull || this.diskFull || this.ledgerCorrupt) this.refusedChunks += 1;
        else this.ledger.add('chunk', c);
        // Analysis runs whether or not the waveform could be stored: alarms never wait for storage.
        for (const a of this.analyzers) if (a.onChunk) this.analyze(a, c.sensor, () => a.onChunk?.(c));
      },
      reading: (r) => this.onReading(r),
      quarantine: (q) => this.quarantine(q.transport, q.sensor, q.error, q.bytes),
      gap: (g) => this.log.warn({ sensor: g.sensor, channel: g.channel, firstSample: g.firstSample, samples: g.samples, reason: g.reason }, 'stream gap'),
      notice: (n) => this.raise({ kind: n.kind, severity: 1, message: n.message, t: this.clock.now(), sensor: n.sensor }),
      state: (st) => {
        const before = this.sensorStates.get(st.sensor);
        this.sensorStates.set(st.sensor, st);
        if (before?.connected !== st.connected || before.detail !== st.detail) this.log.info({ sensor: st.sensor, connected: st.connected, detail: st.detail }, 'sensor state');
        // A recording that ends with its link: what the analyzers buffered for it is analysed now.
        if (before?.connected === true && !st.connected) void this.flushAnalyzers(st.sensor);
      },
      raw: (bytes, info) => {
        const decode = RAW_CODECS[info.codec];
        try {
          if (!decode) throw new DecodeError(info.codec, `no decoder registered; known codecs: ${Object.keys(RAW_CODECS).join(', ')}`);
          this.onReading(decode(bytes, this.clock.now(), info.sensor, this.config.timeZone));
        } catch (error) {
          if (!(error instanceof MedgeError)) throw error;
          this.quarantine(info.transport, info.sensor, error.message, bytes);
        }
      },
    };
  }

  /** Keeps bytes no codec accepted, and raises the alarm of a sensor that sends nothing else. */
  private quarantine(transport: string, sensor: string, error: string, bytes: Uint8Array): void {
    this.count(sensor, 1);
    this.ledger.add('quarantine', { transport, source: sensor, t: this.clock.now(), error, bytes });
    this.log.warn({ transport, sensor, bytes: bytes.byteLength, err: error }, 'bytes quarantined');
    const alert = this.unreadable.quarantined(sensor, error);
    if (alert) this.raise(alert);
  }

  /**
   * Takes what the analyzers buffered for `sensor` (all sensors when undefined: `stopSources`). Flushes run
   * one after the other, so awaiting the last one has every earlier one stored too.
   */
  private flushAnalyzers(sensor?: string): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      for (const a of this.analyzers) {
        try {
          const out = await a.flush?.(sensor);
          if (!this.storeClosed) this.take(out);
        } catch (error) {
          // What the analyzer buffered for the recording was not analysed: said like any other analysis failure.
          this.analysisFailed(a, sensor, error);
        }
      }
    });
    return this.flushing;
  }

  /** Stores a reading and runs the rules on it. `fromDevice` is false for readings the runtime derived itself (not counted in the sensor's rate). */
  private onReading(r: Reading, fromDevice = true): void {
    if (fromDevice) {
      this.count(r.sensor, 1);
      this.unreadable.readable(r.sensor);
    }
    if (!this.meterRecords.note(r)) {
      // A record of this meter (number and meter clock) already stored: a numbering found restarted by mistake.
      this.log.warn({ sensor: r.sensor, meterRecord: r.meterRecord }, 'meter record already stored: not stored again');
      return;
    }
    this.ledger.add('reading', r);
    this.take(this.rules.onReading(r), r.sensor);
    for (const a of this.analyzers) if (a.onReading) this.analyze(a, r.sensor, () => a.onReading?.(r));
  }

  /** Stores the alert durably (with the finding that raised it, when given), then raises it locally (log, status, listeners such as a buzzer). */
  raise(alert: Alert, finding?: Finding): void {
    let seq: number | undefined;
    // Stored later (the ledger keeps it buffered and retries): the alarm outputs learn the seq an acknowledgement will name.
    const storedLate = (late: number): void => {
      this.log.info({ alert: alert.kind, seq: late }, 'alert stored');
      for (const output of this.alarmOutputs) output.alertStored(alert, late);
    };
    try {
      seq = finding ? this.ledger.addAlertWithFinding(alert, finding, storedLate) : this.ledger.addAlert(alert, storedLate);
    } catch (error) {
      // The alarm is raised even when it cannot be stored.
      this.log.error({ err: (error as Error).message, alert: alert.kind }, 'alert not yet stored');
    }
    this.lastAlert = alert;
    const level = alert.severity === 3 ? 'error' : alert.severity === 2 ? 'warn' : 'info';
    this.log[level]({ alert: alert.kind, severity: alert.severity, seq, sensor: alert.sensor }, alert.message);
    this.emit('alert', alert);
    for (const output of this.alarmOutputs) output.alarm(alert, seq);
  }

  /**
   * At start: alarm outputs latch again for the alerts stored before the restart that the audit log
   * has no acknowledgement for, within the longest latch (`AlarmOutput.latchMs`), so that an urgent
   * alarm raised before a restart lights the LED again when the board connects.
   */
  private restoreAlarms(): void {
    if (this.alarmOutputs.length === 0) return;
    const latchMs = Math.max(...this.alarmOutputs.map((o) => o.latchMs));
    const open = unacknowledgedAlerts(this.store, this.clock.now() - latchMs);
    if (open.length > 0) this.log.warn({ alerts: open.length, seqs: open.map((a) => a.seq) }, 'unacknowledged alerts from before the restart: alarm outputs latched again');
    for (const output of this.alarmOutputs) output.restoreAlarms(open);
  }

  /** The alert stored as `seq` was acknowledged locally (clinic screen): the alarm outputs silence it and no longer latch it. */
  acknowledged(seq: number): void {
    for (const output of this.alarmOutputs) output.acknowledged(seq);
  }

  /**
   * A timed ledger flush failed; the ledger keeps the records buffered and retries. Logged at most once
   * a minute. On a full disk (`StoreError.diskFull`) the eviction order of the budget applies to what
   * waits in memory: buffered raw waveform is dropped and no more is taken until a flush succeeds
   * (`checkBudget` retries), clinical records stay buffered, and `storage-full` (3) is raised once.
   */
  /**
   * The ledger was found damaged while running (a write failed with SQLITE_CORRUPT, or the background check of
   * a large ledger failed): `storage-damaged` (3), once; at stop the file is moved aside (`saveIntoFreshLedger`).
   */
  private ledgerDamagedWhileRunning(cause: LedgerDamageCause): void {
    if (this.ledgerCorrupt) return;
    this.ledgerCorrupt = cause;
    this.raise({
      kind: STORAGE_DAMAGED,
      severity: 3,
      t: this.clock.now(),
      message: `The device ledger became damaged while running (${cause.code}): raw waveform is no longer stored and new clinical records wait in memory. Monitoring and alarms go on. Stop and start the device: at stop the records in memory are saved in a fresh ledger and the damaged file is kept for a technician in ${this.config.dataDir}.`,
    });
  }

  /**
   * The full check of a ledger too large to check before monitoring started (`FULL_CHECK_AT_START_MAX_BYTES`),
   * in a worker thread: damage found is handled as damage found by a write.
   */
  private checkLedgerLater(): void {
    const path = ledgerPath(this.config.dataDir);
    let bytes: number;
    try {
      bytes = statSync(path).size;
    } catch {
      return;
    }
    if (bytes <= FULL_CHECK_AT_START_MAX_BYTES) return;
    const started = Date.now();
    this.log.info({ bytes }, 'checking the ledger in the background (too large to check before monitoring starts)');
    checkLedgerInBackground(path).then(
      (cause) => {
        this.log.info({ ms: Date.now() - started, damaged: cause?.code }, 'background ledger check done');
        if (cause && !this.stopped) this.ledgerDamagedWhileRunning({ code: cause.code, reason: `the background check at start: ${cause.reason}` });
      },
      (error: unknown) => this.log.warn({ err: (error as Error).message }, 'the background ledger check could not run; a damaged page is still found when a write reaches it'),
    );
  }

  private onFlushError(error: unknown): void {
    const now = this.clock.monotonic();
    const full = error instanceof StoreError && error.diskFull;
    const code = corruptCode(error);
    const corrupt = code !== undefined;
    const dropped = full || corrupt ? this.ledger.dropBuffered('chunk') : 0;
    this.refusedChunks += dropped;
    if (this.lastFlushErrorLogAt === undefined || now - this.lastFlushErrorLogAt >= FLUSH_ERROR_LOG_INTERVAL_MS) {
      this.lastFlushErrorLogAt = now;
      this.log.error({ err: (error as Error).message, buffered: this.ledger.buffered, refusedChunks: this.refusedChunks }, 'ledger flush failed; records kept in memory, retrying');
    }
    if (code !== undefined) this.ledgerDamagedWhileRunning({ code, reason: `a write failed while running: ${(error as Error).message}` });
    if (!full || this.diskFull) return;
    this.diskFull = true;
    this.raise({
      kind: 'storage-full',
      severity: 3,
      t: this.clock.now(),
      message: `The disk of the device ledger is full: raw waveform is no longer stored, and new clinical records wait in memory (lost if the device stops) until space is freed on the file system of ${this.config.dataDir}.`,
    });
  }

  private checkBudget(): void {
    if (this.diskFull) {
      try {
        this.ledger.flush();
        this.diskFull = false;
        this.lastFlushErrorLogAt = undefined;
        this.log.info({ refusedChunks: this.refusedChunks }, 'the ledger disk has room again; storing waveform again');
      } catch {
        return; // still full: reported when it started; the ledger retries its flush
      }
    }
    const report = this.store.enforceBudget(this.clock.now());
    const evicted = Object.values(report.evicted).reduce((a, b) => a + b, 0);
    if (evicted > 0) this.log.warn({ evicted: report.evicted, bytesUsed: report.bytesUsed }, 'ledger over budget: evicted records');
    if (report.overBudget && !this.storageFull) {
      this.storageFull = true;
      this.raise({
        kind: 'storage-full',
        severity: 3,
        t: this.clock.now(),
        message: `Device storage is full (${report.bytesUsed} of ${report.budgetBytes} bytes) and holds only unsynced clinical records; raw waveform is no longer stored. Restore the link to the edge.`,
      });
    } else if (!report.overBudget && this.storageFull) {
      this.storageFull = false;
      this.log.info({ refusedChunks: this.refusedChunks }, 'storage back under budget; storing waveform again');
    }
  }

  status(): RuntimeStatus {
    let stats: ReturnType<SqliteOutboxStore['stats']>;
    try {
      stats = this.store.stats();
      this.lastStats = stats;
    } catch (error) {
      // A ledger that cannot be read (damaged while running): the last counters read are shown (none: zeros).
      this.log.debug({ err: (error as Error).message }, 'ledger counters not readable');
      stats = this.lastStats ?? (Object.fromEntries(RECORD_KINDS.map((k) => [k, { lastSeq: 0, produced: 0, ackedUpTo: 0, pending: 0, rows: 0, bytes: 0 }])) as ReturnType<SqliteOutboxStore['stats']>);
    }
    const now = this.clock.monotonic();
    const seconds = Math.max(0.001, (now - this.lastRateAt) / 1000);
    for (const source of this.sources) {
      const n = this.counts.get(source.sensor) ?? 0;
      this.rates.set(source.sensor, source.rateUnit === 'samples/s' ? n / seconds : (n / seconds) * 60);
      this.counts.set(source.sensor, 0);
    }
    this.lastRateAt = now;
    const sensors: SensorStatus[] = this.sources.map((s) => ({
      sensor: s.sensor,
      source: s.source,
      connected: !this.stopped && (this.sensorStates.get(s.sensor)?.connected ?? true),
      rate: Math.round((this.rates.get(s.sensor) ?? 0) * 10) / 10,
      rateUnit: s.rateUnit,
    }));
    const produced = {} as Record<RecordKind, number>;
    const backlog = {} as Record<RecordKind, number>;
    let bytesUsed = 0;
    for (const kind of RECORD_KINDS) {
      produced[kind] = stats[kind].produced;
      backlog[kind] = stats[kind].pending + (kind === 'chunk' ? this.ledger.buffered : 0);
      bytesUsed += stats[kind].bytes;
    }
    const status: RuntimeStatus = {
      deviceId: this.config.deviceId,
      bootId: this.store.bootId,
      uptimeMs: Math.round(now - this.startedAt),
      link: this.uplink.state as LinkState,
      sensors,
      produced,
      backlog,
      quarantined: stats.quarantine.produced,
      storage: { bytesUsed, budgetBytes: this.config.store.budgetBytes, overBudget: this.storageFull, diskFull: this.diskFull },
      analysis: this.analyzers.flatMap((a) => (a.status ? [a.status()] : [])),
    };
    if (this.uplink.lastAckMs !== undefined) status.lastAckMs = this.uplink.lastAckMs;
    if (this.alarmOutputs.length > 0) status.alarmsLatched = Math.max(...this.alarmOutputs.map((o) => o.activeAlarms));
    if (this.lastAlert) status.lastAlert = { kind: this.lastAlert.kind, severity: this.lastAlert.severity, message: this.lastAlert.message, t: this.lastAlert.t };
    return status;
  }

  /** Stops producing; what was produced is flushed to the ledger and keeps draining to the edge. */
  async stopSources(): Promise<void> {
    // Stopped on purpose: silence from here on is not a lost signal.
    this.watchdog?.clear();
    this.watchdog = undefined;
    if (this.watchdogTimer) this.clock.clearTimeout(this.watchdogTimer);
    await Promise.all(this.sources.map((source) => source.stop()));
    // The streams ended: partial windows and results still in flight are analysed and stored too.
    await this.flushAnalyzers();
    try {
      this.ledger.flush();
    } catch (error) {
      // A damaged ledger: the records stay buffered and `stop` saves them in a fresh ledger.
      if (corruptCode(error) === undefined) throw error;
      this.onFlushError(error);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopSources();
    await Promise.all(this.analyzers.map((a) => a.close?.()));
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.ui?.stop();
    await this.uplink.stop();
    if (this.ledgerCorrupt) {
      this.storeClosed = true;
      this.store.close();
      this.saveIntoFreshLedger(this.ledgerCorrupt);
      this.log.info('runtime stopped');
      return;
    }
    this.store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'stop', detail: `boot ${this.store.bootId}` });
    this.storeClosed = true;
    this.store.close();
    this.log.info('runtime stopped');
  }

  /**
   * At stop after the ledger became damaged while running: moves it aside like a start does
   * (`openLedgerRecovering`), stores the records that waited in memory in the fresh ledger (new seqs, above
   * the old ones), with `storage-damaged` (2) and the audit entry, so that the next start syncs them.
   */
  private saveIntoFreshLedger(damaged: LedgerDamageCause): void {
    const entries = this.ledger.takeBuffered();
    const { store, damage } = openLedgerRecovering(ledgerPath(this.config.dataDir), { ...this.storeOptions, nowMs: this.clock.now(), damaged });
    try {
      const ledger = new Ledger(store, { clock: this.clock });
      store.append(entries);
      if (damage) {
        store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'ledger-damaged', detail: damageDetail(damage) });
        ledger.addAlert(damageAlert(damage, this.clock.now()));
      }
      store.appendAudit({ tMs: this.clock.now(), actor: 'runtime', action: 'stop', detail: `boot ${this.store.bootId}: ${entries.length} records kept in memory saved in a fresh ledger` });
      this.log.error({ records: entries.length, movedTo: damage?.movedTo }, 'damaged ledger moved aside at stop; the records kept in memory are in a fresh ledger');
    } finally {
      store.close();
    }
  }
}
