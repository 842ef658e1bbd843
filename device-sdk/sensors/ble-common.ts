/**
 * What the BLE drivers share: the connection options and their JSON schema, and a base class that
 * runs a `BleSupervisor` (connect → session → link loss → backoff → reconnect) and maps it onto the
 * `SensorSink` state.
 *
 * Lifecycle of every BLE driver: `discover → connect → resolve services → subscribe → (procedure,
 * e.g. RACP backfill) → stream notifications → link lost → backoff → discover ...`, until `stop()`.
 * Notification bytes that the codec refuses go to `sink.quarantine` with transport
 * `ble:<address>/<uuid>` (uuid `2a18` for SIG characteristics) and the codec's error.
 */
import type { SchemaObject } from 'ajv';
import { DecodeError, MedgeError } from '../errors.js';
import {
  decodeDisString,
  DEVICE_INFORMATION_FIELDS,
  DEVICE_INFORMATION_SERVICE_UUID,
  type DeviceInformation,
  type DeviceInformationField,
  isPlaceholderSerial,
} from '../protocols/ble/device-information.js';
import {
  BleError,
  type BleSupervisorState,
  BleSupervisor,
  DEFAULT_NODE_BLE_CONNECTOR_OPTIONS,
  type GattConnector,
  type GattLink,
  NodeBleConnector,
  type NodeBleConnectorOptions,
  shortUuid,
} from '../transport/ble.js';
import type { MeterIdentity } from '../records.js';
import type { BackoffOptions } from '../sync/backoff.js';
import type { DriverDeps, SensorDriver, SensorKind, SensorSink } from './types.js';

/**
 * Connection options every BLE driver takes (merged with the driver's own): where BlueZ and the
 * peripheral are and the timings of `NodeBleConnector` (see its options), plus the reconnect backoff.
 * Without `address` the first device advertising the driver's service is used; without
 * `dbusAddress` the system bus (real BlueZ).
 */
export interface BleConnectionOptions
  extends Pick<NodeBleConnectorOptions, 'address' | 'dbusAddress' | 'adapter' | 'discoveryTimeoutMs' | 'discoveryPollMs' | 'connectTimeoutMs' | 'operationTimeoutMs' | 'dedupeWindowMs'> {
  backoff: BackoffOptions;
}

const { clock: _clock, logger: _logger, ...connectorTimings } = DEFAULT_NODE_BLE_CONNECTOR_OPTIONS;

export const DEFAULT_BLE_CONNECTION_OPTIONS: Readonly<BleConnectionOptions> = Object.freeze({
  ...connectorTimings,
  backoff: Object.freeze({ initialMs: 500, maxMs: 30_000 }),
});

/** JSON-schema properties of `BleConnectionOptions` (ajv 8). */
export const BLE_CONNECTION_SCHEMA_PROPERTIES: Readonly<Record<string, SchemaObject>> = Object.freeze({
  address: { type: 'string', pattern: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$', description: 'AA:BB:CC:DD:EE:FF' },
  dbusAddress: { type: 'string', pattern: '^unix:', description: 'D-Bus address of BlueZ, e.g. the simulated BlueZ (unix:path=...)' },
  adapter: { type: 'string', pattern: '^hci[0-9]+$' },
  discoveryTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000 },
  discoveryPollMs: { type: 'integer', minimum: 5, maximum: 60_000 },
  connectTimeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 },
  operationTimeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 },
  dedupeWindowMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
  backoff: {
    type: 'object',
    properties: { initialMs: { type: 'integer', minimum: 1 }, maxMs: { type: 'integer', minimum: 1 } },
    required: ['initialMs', 'maxMs'],
    additionalProperties: false,
  },
});

/** Makes the connector of a driver; tests and the composition root may pass their own. */
export type GattConnectorFactory = (options: BleConnectionOptions & { serviceUuid: number }, deps: DriverDeps) => GattConnector;

export const nodeBleConnectorFactory: GattConnectorFactory = (o, deps) =>
  new NodeBleConnector({
    ...(o.address !== undefined ? { address: o.address } : { serviceUuid: o.serviceUuid }),
    ...(o.dbusAddress !== undefined ? { dbusAddress: o.dbusAddress } : {}),
    ...(o.adapter !== undefined ? { adapter: o.adapter } : {}),
    discoveryTimeoutMs: o.discoveryTimeoutMs,
    discoveryPollMs: o.discoveryPollMs,
    connectTimeoutMs: o.connectTimeoutMs,
    operationTimeoutMs: o.operationTimeoutMs,
    dedupeWindowMs: o.dedupeWindowMs,
    clock: deps.clock,
    logger: deps.logger,
  });

/** `ble:AA:BB:CC:DD:EE:FF/2a18`: the quarantine transport of a characteristic. */
export function bleTransportName(address: string, characteristic: number | string): string {
  return `ble:${address}/${shortUuid(characteristic)}`;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What a read of the Device Information Service gave (`readDeviceInformation`). */
export interface DeviceInformationRead {
  /** The strings read; a field is absent when the device has no such characteristic, refused it, sent none or sent bytes that are no text. */
  info: DeviceInformation;
  /** Whether the device offers the service (0x180A) at all. */
  offered: boolean;
  /** Fields whose read the device refused (e.g. shown to bonded collectors only). */
  refused: DeviceInformationField[];
  /** Fields whose bytes were no text (handed to `quarantine`). */
  undecodable: DeviceInformationField[];
}

/**
 * Reads the Device Information Service strings the device offers (DIS 1.1: Manufacturer Name 0x2A29, Model
 * Number 0x2A24, Serial Number 0x2A25, Firmware Revision 0x2A26; `protocols/ble/device-information.ts`). None
 * of it is required: an absent service or characteristic, a refused read (a `BleError` on a link still up) and
 * bytes that are no text (handed to `quarantine`, kept for a later parser) leave the field out. A lost link rejects.
 */
export async function readDeviceInformation(link: GattLink, quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void): Promise<DeviceInformationRead> {
  const out: DeviceInformationRead = { info: {}, offered: false, refused: [], undecodable: [] };
  for (const [field, uuid] of Object.entries(DEVICE_INFORMATION_FIELDS) as [DeviceInformationField, number][]) {
    if (!link.hasCharacteristic(DEVICE_INFORMATION_SERVICE_UUID, uuid)) continue;
    out.offered = true;
    let bytes: Uint8Array;
    try {
      bytes = await link.read(DEVICE_INFORMATION_SERVICE_UUID, uuid);
    } catch (error) {
      if (!link.connected || !(error instanceof BleError) || error.code === 'disconnected') throw error;
      out.refused.push(field);
      continue;
    }
    try {
      const text = decodeDisString(bytes);
      if (text !== undefined) out.info[field] = text;
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      out.undecodable.push(field);
      quarantine(uuid, bytes, error);
    }
  }
  return out;
}

/** Reads of the Serial Number String at most, when it does not read the serial known (`identifyPeripheral`). */
export const SERIAL_READS = 3;

/** How a driver names its peripheral in the log (`glucose meter`, `the meter`) and who it is without a serial. */
export interface PeripheralNames {
  device: string;
  it: string;
  /** Who the peripheral is without a serial: `the meter is known by its address`. */
  withoutSerial: string;
}

/**
 * Who a driver takes its peripheral for when the serial reads (`identifyPeripheral`) do not settle it against the
 * serial known: `known` (that serial) or `none` (no serial), and `first` (the first serial read).
 */
export interface SerialRules {
  /** Reads that told other serials than the known one, none twice (a garbled read, or another device): `known` or `first`. */
  unconfirmed: 'known' | 'first';
  /** No read answered (refused, or the service or characteristic absent): `known` or `none`. */
  unread: 'known' | 'none';
}

/**
 * The serial known before (`identifyPeripheral`): the driver's, e.g. the meter's at this address or the CGM's on this
 * sensor, `where` it was known (`at this address`), for the log, and the driver's rules for reads that do not settle.
 */
export interface KnownSerial extends SerialRules {
  serial: string;
  where: string;
}

/**
 * One Serial Number String read: a serial; an answer that is none (`none`: a placeholder, an empty text, bytes that
 * are no text); or no answer (`unread`: refused, the service or characteristic absent). `none` and `unread` say why,
 * for the log.
 */
type SerialAnswer = { serial: string } | { none: string } | { unread: string };

/**
 * What a peripheral that told no serial did (`identifyPeripheral`): `answered` something that identifies nothing (a
 * placeholder, an empty text, bytes that are no text: it is there and says it has no serial), or `unanswered` (the read
 * refused, the service or characteristic absent: it may have one). A CGM telling a serial after one that `answered`
 * is another CGM (QA: a placeholder CGM replaced by one with a serial, same session start, had 4 of its 5 records
 * dropped as the old one's repeats); after one `unanswered`, the same CGM telling its serial for the first time.
 */
export type NoSerial = 'answered' | 'unanswered';

/** The serial read with the other Device Information strings (`readDeviceInformation`), as a `SerialAnswer`. */
function firstSerialAnswer(link: GattLink, read: DeviceInformationRead): SerialAnswer {
  if (!read.offered) return { unread: 'no Device Information Service' };
  if (read.refused.includes('serial')) return { unread: 'its serial number read refused' };
  if (!link.hasCharacteristic(DEVICE_INFORMATION_SERVICE_UUID, DEVICE_INFORMATION_FIELDS.serial)) return { unread: 'no serial number' };
  return read.undecodable.includes('serial') ? { none: 'its serial number no text' } : serialText(read.info.serial);
}

/** A decoded Serial Number String (undefined: empty) as a `SerialAnswer`: a placeholder (`isPlaceholderSerial`) is none. */
function serialText(text: string | undefined): SerialAnswer {
  if (text === undefined) return { none: 'no serial number' };
  return isPlaceholderSerial(text) ? { none: 'a placeholder serial number' } : { serial: text };
}

/**
 * Who the peripheral on `link` is (records.ts `MeterIdentity`): its address, and its serial number when it offers the
 * Device Information Service and tells one (`readDeviceInformation`; undecodable bytes go to `quarantine`). A
 * placeholder serial (`isPlaceholderSerial`: `0000000000`, `N/A`, ...), an empty one or bytes that are no text are no
 * serial: many units send a placeholder alike (QA: two meters answering `0000000000` were taken for one).
 *
 * With a serial `known` before (the driver says which: the meter's at this address, the CGM's before on this sensor),
 * a read that does not give it is read again, `SERIAL_READS` reads at most (a corrupted read took the same device for
 * another one, and its records were stored again: QA):
 * - a re-read giving the known serial: the known device (a corrupted read, logged);
 * - a serial read twice, in any order (`B`, garbled, `B`; a placeholder, `B`, `B`): that serial;
 * - otherwise the driver's `SerialRules`: other serials, none twice (`unconfirmed`): the known serial (the meter: a
 *   replacement is found by its numbering) or the first serial read (the CGM: nothing else tells a replacement, and a
 *   record stored twice is better than one lost; QA: a replaced CGM whose re-read was garbled had its records dropped
 *   as the old one's repeats); no answer at all (`unread`: refused, absent): the known serial (the CGM) or none (the
 *   meter: its address);
 * - only answers that are no serial (a placeholder, empty, no text): none, `noSerial: 'answered'` (both drivers take
 *   it for another device than the known one: QA round 2, the meter keeping the known serial lost a replacement's
 *   records).
 * A placeholder `known` (rows stored when a placeholder was a serial) is no serial known. Without one, the first read
 * decides.
 *
 * A result without a serial, or the known serial kept for a read without one, is logged once per address
 * (`noSerialLogged` remembers them) with manufacturer, model, firmware and why (`names.withoutSerial` says who the
 * device then is); disagreeing reads are logged; the serial itself is never logged, nor a placeholder. `info` is what
 * the device told at the first read, placeholder included. Without a serial, `noSerial` says whether a read answered
 * something that identifies nothing (`answered`) or none answered (`unanswered`). A lost link rejects.
 */
export async function identifyPeripheral(
  link: GattLink,
  names: PeripheralNames,
  log: { sensor: string; logger: DriverDeps['logger']; noSerialLogged: Set<string> },
  quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void,
  known?: KnownSerial,
): Promise<{ identity: MeterIdentity; info: DeviceInformation; noSerial?: NoSerial }> {
  const read = await readDeviceInformation(link, quarantine);
  const { manufacturer, model, firmware } = read.info;
  const first = firstSerialAnswer(link, read);
  const before = known !== undefined && !isPlaceholderSerial(known.serial) ? known : undefined;
  const { serial, why, noSerial } = before !== undefined ? await serialAgainstKnown(link, first, before, names, log, quarantine) : 'serial' in first ? { serial: first.serial } : 'none' in first ? { why: first.none, noSerial: 'answered' as const } : { why: first.unread, noSerial: 'unanswered' as const };
  if (why !== undefined && !log.noSerialLogged.has(link.address)) {
    log.noSerialLogged.add(link.address);
    const who = serial !== undefined ? `${names.it} known ${before?.where ?? ''} is kept` : names.withoutSerial;
    log.logger.info({ sensor: log.sensor, address: link.address, manufacturer, model, firmware }, `${names.device}: ${why}; ${who}`);
  }
  if (serial !== undefined) return { identity: { address: link.address, serial }, info: read.info };
  return { identity: { address: link.address }, info: read.info, noSerial: noSerial ?? 'unanswered' };
}

/**
 * The serial of the peripheral on `link` against the one `known`, from its `first` answer and re-reads (see
 * `identifyPeripheral`); `why` when it told no serial. A lost link rejects.
 */
async function serialAgainstKnown(
  link: GattLink,
  first: SerialAnswer,
  known: KnownSerial,
  names: PeripheralNames,
  log: { sensor: string; logger: DriverDeps['logger'] },
  quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void,
): Promise<{ serial?: string; why?: string; noSerial?: NoSerial }> {
  if ('serial' in first && first.serial === known.serial) return { serial: known.serial };
  const where = { sensor: log.sensor, address: link.address };
  const answers = [first];
  while (answers.length < SERIAL_READS && link.hasCharacteristic(DEVICE_INFORMATION_SERVICE_UUID, DEVICE_INFORMATION_FIELDS.serial)) {
    const again = await readSerial(link, quarantine);
    answers.push(again);
    if (!('serial' in again)) continue;
    if (again.serial === known.serial) {
      log.logger.warn({ ...where, reads: answers.length }, `${names.device} serial number read differently once: ${names.it} known ${known.where}`);
      return { serial: known.serial };
    }
    if (answers.filter((a) => 'serial' in a && a.serial === again.serial).length >= 2) return { serial: again.serial };
  }
  const told = answers.find((a): a is { serial: string } => 'serial' in a);
  if (told !== undefined) {
    const believed = known.unconfirmed === 'first';
    log.logger.warn({ ...where, reads: answers.length }, `${names.device} serial number reads disagree: ${believed ? `the first serial read is believed (${names.it} may be another than the one known ${known.where})` : `${names.it} known ${known.where} is kept`}`);
    return { serial: believed ? told.serial : known.serial };
  }
  const none = answers.find((a): a is { none: string } => 'none' in a);
  if (none !== undefined) return { why: none.none, noSerial: 'answered' };
  return { serial: known.unread === 'known' ? known.serial : undefined, why: 'unread' in first ? first.unread : 'no serial number', noSerial: 'unanswered' };
}

/** The Serial Number String read once more (bytes that are no text go to `quarantine`). A lost link rejects. */
async function readSerial(link: GattLink, quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void): Promise<SerialAnswer> {
  let bytes: Uint8Array;
  try {
    bytes = await link.read(DEVICE_INFORMATION_SERVICE_UUID, DEVICE_INFORMATION_FIELDS.serial);
  } catch (error) {
    if (!link.connected || !(error instanceof BleError) || error.code === 'disconnected') throw error;
    return { unread: 'its serial number read refused' };
  }
  try {
    return serialText(decodeDisString(bytes));
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    quarantine(DEVICE_INFORMATION_FIELDS.serial, bytes, error);
    return { none: 'its serial number no text' };
  }
}

/** The base of the BLE drivers: one supervised connection to one peripheral. */
export abstract class BleDriverBase<Options extends BleConnectionOptions> implements SensorDriver {
  readonly sensor: string;
  abstract readonly driver: string;
  abstract readonly kind: SensorKind;
  abstract readonly rateUnit: 'samples/s' | 'readings/min';
  abstract readonly nominalRate: number;
  protected readonly options: Options;
  protected readonly deps: DriverDeps;
  private readonly connectorFactory: GattConnectorFactory;
  private readonly serviceUuid: number;
  private supervisor: BleSupervisor | undefined;
  protected sink: SensorSink | undefined;
  private stopped = false;
  /** Detail appended to the `connected` state (`backfill 120/500`, `3 duplicates suppressed`). */
  private detail = '';
  private connected = false;

  constructor(sensor: string, serviceUuid: number, options: Options, deps: DriverDeps, connectorFactory: GattConnectorFactory = nodeBleConnectorFactory) {
    this.sensor = sensor;
    this.serviceUuid = serviceUuid;
    this.options = options;
    this.deps = deps;
    this.connectorFactory = connectorFactory;
  }

  start(sink: SensorSink): void {
    if (this.supervisor) throw new MedgeError('driver', `${this.driver} ${this.sensor}: already started`);
    this.sink = sink;
    const connector = this.connectorFactory({ ...this.options, serviceUuid: this.serviceUuid }, this.deps);
    this.supervisor = new BleSupervisor(connector, { backoff: this.options.backoff, clock: this.deps.clock, logger: this.deps.logger });
    this.supervisor.start({
      session: (link) => this.session(link),
      state: (state, detail) => this.onSupervisorState(state, detail),
    });
  }

  private onSupervisorState(state: BleSupervisorState, detail: string): void {
    this.connected = state === 'connected';
    if (state === 'connected') this.detail = '';
    this.report(this.connected ? detail : state === 'stopped' ? 'stopped' : detail);
  }

  /** Sends the sensor state: `connected` plus a detail such as `backfill 120/500`. */
  protected setDetail(detail: string): void {
    this.detail = detail;
    if (this.connected) this.report('connected');
  }

  private report(base: string): void {
    if (this.stopped && base !== 'stopped') return;
    this.sink?.state({ sensor: this.sensor, connected: this.connected, detail: this.connected && this.detail ? `${base}; ${this.detail}` : base });
  }

  /** Runs on each new link until it is lost (see `BleSupervisorHandlers.session`). */
  protected abstract session(link: GattLink): Promise<void>;

  protected quarantine(link: GattLink, characteristic: number, bytes: Uint8Array, error: unknown): void {
    if (this.stopped) return;
    this.sink?.quarantine({ sensor: this.sensor, transport: bleTransportName(link.address, characteristic), error: errorMessage(error), bytes: Uint8Array.from(bytes) });
  }

  protected get isStopped(): boolean {
    return this.stopped;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.supervisor?.stop();
    this.connected = false;
    this.sink?.state({ sensor: this.sensor, connected: false, detail: 'stopped' });
    this.sink = undefined;
  }
}
