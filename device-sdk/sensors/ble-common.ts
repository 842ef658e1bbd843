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
}

/**
 * Reads the Device Information Service strings the device offers (DIS 1.1: Manufacturer Name 0x2A29, Model
 * Number 0x2A24, Serial Number 0x2A25, Firmware Revision 0x2A26; `protocols/ble/device-information.ts`). None
 * of it is required: an absent service or characteristic, a refused read (a `BleError` on a link still up) and
 * bytes that are no text (handed to `quarantine`, kept for a later parser) leave the field out. A lost link rejects.
 */
export async function readDeviceInformation(link: GattLink, quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void): Promise<DeviceInformationRead> {
  const out: DeviceInformationRead = { info: {}, offered: false, refused: [] };
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
      quarantine(uuid, bytes, error);
    }
  }
  return out;
}

/** Reads of the Serial Number String at most, when it reads another serial than the one known (`identifyPeripheral`). */
export const SERIAL_READS = 3;

/** The serial a peripheral told, when it is one: undefined for none and for a placeholder (`isPlaceholderSerial`). */
function usableSerial(serial: string | undefined): string | undefined {
  return serial === undefined || isPlaceholderSerial(serial) ? undefined : serial;
}

/** How a driver names its peripheral in the log (`glucose meter`, `the meter`) and who it is without a serial. */
export interface PeripheralNames {
  device: string;
  it: string;
  /** Who the peripheral is without a serial: `the meter is known by its address`. */
  withoutSerial: string;
}

/**
 * The serial known before (`identifyPeripheral`): the driver's, e.g. the meter's at this address or the CGM's on this
 * sensor, and `where` it was known (`at this address`), for the log.
 */
export interface KnownSerial {
  serial: string;
  where: string;
}

/**
 * Who the peripheral on `link` is (records.ts `MeterIdentity`): its address, and its serial number when it offers the
 * Device Information Service and tells one (`readDeviceInformation`: a refused, empty or undecodable serial is none,
 * undecodable bytes go to `quarantine`). A placeholder serial (`isPlaceholderSerial`: `0000000000`, `N/A`, ...) is
 * none too: many units send it alike (QA: two meters answering `0000000000` were taken for one, and one meter that
 * answered it at a connect for another, its records stored again).
 *
 * A serial other than the `known` one (the driver says which: the meter's at this address, the CGM's before on this
 * sensor) is read again before it is believed (a corrupted read took the same device for another one, and its records
 * were stored again: QA): believed when a re-read gives it again; the known serial when a re-read gives that one;
 * at most `SERIAL_READS` reads, and without two alike the known serial (a replacement is then left to the driver's
 * other checks). Re-reads that fail or answer a placeholder count for nothing. Both cases are logged without either serial.
 *
 * Without a serial, logged once per address (`noSerialLogged` remembers them) with manufacturer, model, firmware
 * and why (`names.withoutSerial` says who the device then is); the serial itself is never logged, nor a placeholder.
 * `info` is what the device told, placeholder included. A lost link rejects.
 */
export async function identifyPeripheral(
  link: GattLink,
  names: PeripheralNames,
  log: { sensor: string; logger: DriverDeps['logger']; noSerialLogged: Set<string> },
  quarantine: (characteristic: number, bytes: Uint8Array, error: DecodeError) => void,
  known?: KnownSerial,
): Promise<{ identity: MeterIdentity; info: DeviceInformation }> {
  const read = await readDeviceInformation(link, quarantine);
  const { manufacturer, model, firmware } = read.info;
  const told = usableSerial(read.info.serial);
  const before = known !== undefined && usableSerial(known.serial) !== undefined ? known : undefined;
  const serial = told !== undefined && before !== undefined && told !== before.serial ? await confirmSerial(link, told, before, names, log) : told;
  if (serial === undefined && !log.noSerialLogged.has(link.address)) {
    log.noSerialLogged.add(link.address);
    const why = !read.offered
      ? 'no Device Information Service'
      : read.refused.includes('serial')
        ? 'its serial number read refused'
        : read.info.serial !== undefined
          ? 'a placeholder serial number'
          : 'no serial number';
    log.logger.info({ sensor: log.sensor, address: link.address, manufacturer, model, firmware }, `${names.device}: ${why}; ${names.withoutSerial}`);
  }
  return { identity: serial !== undefined ? { address: link.address, serial } : { address: link.address }, info: read.info };
}

/** `first`, another serial than `known`, when re-reads confirm it; else `known` (see `identifyPeripheral`). A lost link rejects. */
async function confirmSerial(link: GattLink, first: string, known: KnownSerial, names: PeripheralNames, log: { sensor: string; logger: DriverDeps['logger'] }): Promise<string> {
  const address = link.address;
  let previous = first;
  for (let n = 1; n < SERIAL_READS; n++) {
    const again = usableSerial(await readSerial(link));
    if (again === previous) return again;
    if (again === known.serial) {
      log.logger.warn({ sensor: log.sensor, address, reads: n + 1 }, `${names.device} serial number read differently once: ${names.it} known ${known.where}`);
      return known.serial;
    }
    if (again !== undefined) previous = again;
  }
  log.logger.warn({ sensor: log.sensor, address, reads: SERIAL_READS }, `${names.device} serial number reads disagree: ${names.it} known ${known.where} is kept`);
  return known.serial;
}

/** The Serial Number String read once more; undefined when refused, empty or no text. A lost link rejects. */
async function readSerial(link: GattLink): Promise<string | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await link.read(DEVICE_INFORMATION_SERVICE_UUID, DEVICE_INFORMATION_FIELDS.serial);
  } catch (error) {
    if (!link.connected || !(error instanceof BleError) || error.code === 'disconnected') throw error;
    return undefined;
  }
  try {
    return decodeDisString(bytes);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    return undefined;
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
