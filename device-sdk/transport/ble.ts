/**
 * BLE GATT transport (STYLE items 1, 2, 9, 11): the `GattLink` seam a BLE driver talks to, its
 * node-ble implementation over BlueZ's D-Bus API, a reconnecting supervisor and duplicate
 * suppression.
 *
 * ## The seam
 * - `GattConnector.connect()` finds the peripheral (by address, or by an advertised service UUID),
 *   connects, resolves its services and returns a `GattLink`. It rejects with a `BleError`
 *   (`code`: `discovery-timeout`, `connect-failed`, `gatt-failed`, `closed`) and never hangs: every
 *   step has a timeout on the injected clock.
 * - A `GattLink` is one connection. `read`/`write`/`subscribe` reject with `BleError` code
 *   `no-characteristic` (the peripheral does not have it), `disconnected`, or `gatt-failed`.
 *   `subscribe` delivers every notification/indication value in order, after the duplicate filter.
 *   `lost` resolves once, when the link goes down for any reason (peripheral, radio, `disconnect()`);
 *   after that no callback of this link runs again. Each reconnection is a new `GattLink`.
 * - `BleSupervisor` keeps a link up: connect, hand the link to the driver's `session` callback, wait
 *   for `lost`, back off (exponential, full jitter, `sync/backoff.ts`) and reconnect, until `stop()`,
 *   which disconnects and closes the connector (node-ble `destroy()`): nothing runs after it resolves.
 *
 * ## node-ble and the bus
 * node-ble always uses the D-Bus *system* bus and reads `DBUS_SYSTEM_BUS_ADDRESS` at
 * `createBluetooth()`. `NodeBleConnector` takes the bus address as an option (`dbusAddress`, e.g. the
 * simulated BlueZ of the simulator; absent = the real system bus) and sets the variable only for the
 * duration of that synchronous call. Discovery by service UUID reads `Device1.UUIDs`, which node-ble
 * does not expose: it goes through the device's D-Bus property helper (node-ble 1.13 internals).
 * Control points are written with write-with-response (`request`), never node-ble's default
 * `reliable` write, which BlueZ treats as a different procedure.
 */
import type NodeBle from 'node-ble';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { MedgeError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { Random } from '../random.js';
import { type BackoffOptions, backoffDelay } from '../sync/backoff.js';
import { attErrorFromBluez } from '../protocols/ble/att-error.js';
import { bleUuid, shortUuid } from './ble-uuid.js';

export { bleUuid, shortUuid } from './ble-uuid.js';

export type BleErrorCode = 'discovery-timeout' | 'connect-failed' | 'gatt-failed' | 'no-characteristic' | 'disconnected' | 'timeout' | 'closed';

/** The one error type of the BLE transport. Branch on `code`; `step` names what was being done. */
export class BleError extends MedgeError {
  declare readonly code: BleErrorCode;
  /** The peripheral address, or the service UUID being searched for. */
  readonly target: string;
  readonly step: string;
  /**
   * With code `gatt-failed`: the ATT error code the peripheral refused the read or write with, when BlueZ named one
   * (`protocols/ble/att-error.ts` `attErrorFromBluez`: "Operation failed with ATT error: 0x80" gives 0x80).
   */
  readonly attError: number | undefined;
  constructor(code: BleErrorCode, target: string, step: string, message: string, options?: { cause?: unknown; attError?: number }) {
    super(code, `ble ${target} (${step}): ${message}`, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.target = target;
    this.step = step;
    this.attError = options?.attError;
  }
}

/** Why a link went down. */
export interface BleLinkLoss {
  /** `remote`: the peripheral or the radio; `local`: `disconnect()` or the supervisor stopping. */
  by: 'remote' | 'local';
  reason: string;
}

export interface SubscribeOptions {
  /**
   * Drop a value equal to one received on the same characteristic less than `windowMs` ago
   * (a retransmitted notification). `false` keeps every value: use it where equal values are
   * legitimately repeated (a heart rate of 72 twice). Default: the connector's `dedupeWindowMs`.
   */
  dedupe?: { windowMs: number } | false;
}

/** One connection to one peripheral. */
export interface GattLink {
  /** `AA:BB:CC:DD:EE:FF`. */
  readonly address: string;
  readonly name: string;
  readonly connected: boolean;
  /** Resolves once when the link is down; never rejects. */
  readonly lost: Promise<BleLinkLoss>;
  /** Notifications dropped by the duplicate filter on this link. */
  readonly duplicatesSuppressed: number;
  hasCharacteristic(service: number | string, characteristic: number | string): boolean;
  read(service: number | string, characteristic: number | string): Promise<Uint8Array>;
  /** Write with response (`request`) by default; `command` is write without response. */
  write(service: number | string, characteristic: number | string, bytes: Uint8Array, mode?: 'request' | 'command'): Promise<void>;
  subscribe(service: number | string, characteristic: number | string, onValue: (bytes: Uint8Array) => void, options?: SubscribeOptions): Promise<void>;
  disconnect(): Promise<void>;
}

export interface GattConnector {
  /** Human-readable target: the address, or `service 0x1808`. */
  readonly target: string;
  connect(): Promise<GattLink>;
  /** Releases the bus connection; `connect()` rejects with code `closed` afterwards. */
  close(): Promise<void>;
}

// ---- duplicate suppression -------------------------------------------------------------------

/**
 * Remembers recent values per key (characteristic) and refuses a value equal to one seen less than
 * `windowMs` ago. Memory is bounded by the number of values a key receives within the window.
 */
export class DuplicateFilter {
  private readonly recent = new Map<string, { hex: string; t: number }[]>();
  suppressed = 0;

  /** True to deliver `bytes`, false for a duplicate. `windowMs <= 0` delivers everything. */
  accept(key: string, bytes: Uint8Array, nowMs: number, windowMs: number): boolean {
    if (windowMs <= 0) return true;
    const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
    const list = (this.recent.get(key) ?? []).filter((e) => nowMs - e.t < windowMs);
    const duplicate = list.some((e) => e.hex === hex);
    if (!duplicate) list.push({ hex, t: nowMs });
    this.recent.set(key, list);
    if (duplicate) this.suppressed += 1;
    return !duplicate;
  }
}

// ---- node-ble implementation ------------------------------------------------------------------

export interface NodeBleConnectorOptions {
  /** Peripheral address; when absent, the first device advertising `serviceUuid` is used. */
  address?: string;
  /** Service UUID to discover by (16-bit number or 128-bit string) when no address is given. */
  serviceUuid?: number | string;
  /** D-Bus address of the bus BlueZ is on; absent = the system bus. */
  dbusAddress?: string;
  /** Adapter name (`hci0`); absent = BlueZ's first adapter. */
  adapter?: string;
  discoveryTimeoutMs: number;
  /** How often the device list is polled during discovery. */
  discoveryPollMs: number;
  connectTimeoutMs: number;
  /** Timeout of one read or write. */
  operationTimeoutMs: number;
  /** Default duplicate-suppression window of `subscribe` (0 = off). */
  dedupeWindowMs: number;
  clock: Clock;
  logger: Logger;
}

export const DEFAULT_NODE_BLE_CONNECTOR_OPTIONS: Readonly<Omit<NodeBleConnectorOptions, 'address' | 'serviceUuid' | 'dbusAddress' | 'adapter'>> = Object.freeze({
  discoveryTimeoutMs: 30_000,
  discoveryPollMs: 250,
  connectTimeoutMs: 20_000,
  operationTimeoutMs: 10_000,
  dedupeWindowMs: 2_000,
  clock: systemClock,
  logger: silentLogger,
});

const MAC = /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/;

/**
 * Rejects with `onTimeout()` when `promise` takes longer than `ms` on `clock`, and with the reason
 * of `cancel` (the connector closing) as soon as that rejects: a D-Bus call in flight when the bus is
 * closed never answers, and nothing may wait for it.
 */
function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock, onTimeout: () => BleError, cancel?: Promise<never>): Promise<T> {
  let timer: ClockTimer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race(cancel ? [promise, timeout, cancel] : [promise, timeout]).finally(() => {
    if (timer !== undefined) clock.clearTimeout(timer);
  });
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The ATT error code of a D-Bus error reply of BlueZ (dbus-next's `DBusError`: `type` is the error name, `text` its message). */
function attErrorOf(error: unknown): number | undefined {
  const e = error as { type?: unknown; text?: unknown } | undefined;
  return typeof e?.type === 'string' && typeof e.text === 'string' ? attErrorFromBluez(e.type, e.text) : undefined;
}

/** node-ble's Device keeps its D-Bus property helper private; discovery by service needs `UUIDs`. */
interface DeviceWithHelper {
  helper?: { prop(name: string): Promise<unknown> };
}

export class NodeBleConnector implements GattConnector {
  readonly target: string;
  private readonly options: NodeBleConnectorOptions;
  private session: { bluetooth: NodeBle.Bluetooth; destroy(): void } | undefined;
  private readonly links = new Set<NodeBleLink>();
  private closed = false;
  /** Rejects (code `closed`) when `close()` is called: every wait of a `connect()` in progress ends at once. */
  private readonly closing: Promise<never>;
  private signalClosed!: (error: BleError) => void;

  constructor(options: Partial<NodeBleConnectorOptions> & Pick<NodeBleConnectorOptions, 'address' | 'serviceUuid'>) {
    this.options = { ...DEFAULT_NODE_BLE_CONNECTOR_OPTIONS, ...options };
    this.closing = new Promise<never>((_, reject) => (this.signalClosed = reject));
    this.closing.catch(() => undefined);
    if (options.address === undefined && options.serviceUuid === undefined) {
      throw new BleError('connect-failed', 'any', 'configure', 'give an address or a service UUID to discover');
    }
    if (options.address !== undefined && !MAC.test(options.address.toUpperCase())) {
      throw new BleError('connect-failed', options.address, 'configure', 'the address is not AA:BB:CC:DD:EE:FF');
    }
    this.target = options.address?.toUpperCase() ?? `service 0x${shortUuid(options.serviceUuid as number | string)}`;
  }

  private guard<T>(promise: Promise<T>, ms: number, onTimeout: () => BleError): Promise<T> {
    return withTimeout(promise, ms, this.options.clock, onTimeout, this.closing);
  }

  /** node-ble (and dbus-next) load on the first connect, so a runtime without BLE sources never loads them. */
  private async bluetooth(): Promise<NodeBle.Bluetooth> {
    if (!this.session) {
      const { createBluetooth } = await import('node-ble');
      this.check('connect');
      const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
      try {
        if (this.options.dbusAddress !== undefined) process.env.DBUS_SYSTEM_BUS_ADDRESS = this.options.dbusAddress;
        this.session = createBluetooth();
      } finally {
        if (this.options.dbusAddress !== undefined) {
          if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS;
          else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved;
        }
      }
      // A bus that goes away (BlueZ restarted) must not crash the process: the next connect fails and is retried.
      const bus = (this.session.bluetooth as unknown as { dbus?: { on?(event: string, fn: (e: unknown) => void): void } }).dbus;
      bus?.on?.('error', (e) => this.options.logger.warn({ err: messageOf(e) }, 'ble: D-Bus connection error'));
    }
    return this.session.bluetooth;
  }

  private check(step: string): void {
    if (this.closed) throw new BleError('closed', this.target, step, 'the connector was closed');
  }

  async connect(): Promise<GattLink> {
    this.check('connect');
    const o = this.options;
    const started = o.clock.monotonic();
    let adapter: NodeBle.Adapter;
    try {
      const bt = await this.bluetooth();
      adapter = await this.guard(o.adapter ? bt.getAdapter(o.adapter) : bt.defaultAdapter(), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'adapter', 'BlueZ did not answer'));
    } catch (error) {
      if (error instanceof BleError) throw error;
      throw new BleError('connect-failed', this.target, 'adapter', `no Bluetooth adapter: ${messageOf(error)}`, { cause: error });
    }
    const device = await this.discover(adapter, started);
    const address = (await this.guard(device.getAddress(), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'address', 'BlueZ did not answer')).catch((e: unknown) => {
      if (e instanceof BleError && e.code === 'closed') throw e;
      return o.address ?? '';
    })).toUpperCase();
    const name = await this.guard(device.getName(), o.operationTimeoutMs, () => new BleError('timeout', address, 'name', 'BlueZ did not answer')).catch((e: unknown) => {
      if (e instanceof BleError && e.code === 'closed') throw e;
      return '';
    });
    try {
      await this.guard(device.connect(), o.connectTimeoutMs, () => new BleError('connect-failed', address, 'connect', `no connection within ${o.connectTimeoutMs} ms`));
    } catch (error) {
      device.removeAllListeners();
      if (error instanceof BleError) throw error;
      throw new BleError('connect-failed', address, 'connect', messageOf(error), { cause: error });
    }
    this.check('connect');
    const link = new NodeBleLink(address, name, device, o, () => this.links.delete(link));
    this.links.add(link);
    try {
      await this.guard(link.resolve(), o.connectTimeoutMs, () => new BleError('gatt-failed', address, 'resolve services', `services not resolved within ${o.connectTimeoutMs} ms`));
    } catch (error) {
      await link.disconnect();
      if (error instanceof BleError) throw error;
      throw new BleError('gatt-failed', address, 'resolve services', messageOf(error), { cause: error });
    }
    return link;
  }

  private async discover(adapter: NodeBle.Adapter, started: number): Promise<NodeBle.Device> {
    const o = this.options;
    let startedDiscovery = false;
    try {
      if (!(await this.guard(adapter.isDiscovering(), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'discover', 'BlueZ did not answer')))) {
        await this.guard(adapter.startDiscovery(), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'discover', 'BlueZ did not answer'));
        startedDiscovery = true;
      }
    } catch (error) {
      if (error instanceof BleError && error.code === 'closed') throw error;
      o.logger.debug({ err: messageOf(error) }, 'ble: could not start discovery (another client may be scanning)');
    }
    try {
      for (;;) {
        this.check('discover');
        const found = await this.guard(this.findDevice(adapter), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'discover', 'BlueZ did not list its devices'));
        if (found) return found;
        if (o.clock.monotonic() - started >= o.discoveryTimeoutMs) {
          throw new BleError('discovery-timeout', this.target, 'discover', `not found within ${o.discoveryTimeoutMs} ms (in range? powered? advertising?)`);
        }
        await sleep(o.clock, o.discoveryPollMs);
      }
    } finally {
      if (startedDiscovery && !this.closed) await this.guard(adapter.stopDiscovery(), o.operationTimeoutMs, () => new BleError('timeout', this.target, 'discover', 'no answer')).catch(() => undefined);
    }
  }

  private async findDevice(adapter: NodeBle.Adapter): Promise<NodeBle.Device | undefined> {
    const o = this.options;
    try {
      if (o.address !== undefined) {
        const want = o.address.toUpperCase();
        const known = (await adapter.devices()).map((d) => d.toUpperCase());
        return known.includes(want) ? await adapter.getDevice(want) : undefined;
      }
      const wanted = bleUuid(o.serviceUuid as number | string);
      for (const address of await adapter.devices()) {
        const device = await adapter.getDevice(address);
        const uuids = await (device as unknown as DeviceWithHelper).helper?.prop('UUIDs');
        if (Array.isArray(uuids) && uuids.map((u) => String(u).toLowerCase()).includes(wanted)) return device;
      }
      return undefined;
    } catch (error) {
      o.logger.debug({ err: messageOf(error) }, 'ble: device list not readable yet');
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalClosed(new BleError('closed', this.target, 'close', 'the connector was closed'));
    await Promise.all([...this.links].map((l) => l.disconnect()));
    this.session?.destroy();
    this.session = undefined;
  }
}

interface CharacteristicEntry {
  char: NodeBle.GattCharacteristic;
  listening: boolean;
}


/**
 * Removes the D-Bus signal subscription a node-ble device or characteristic object keeps (`helper`, a
 * BusHelper that listens to PropertiesChanged on the object's path from its first use; node-ble removes
 * it only in `stopNotifications()` / `disconnect()`, which need the link). Each connection gets new
 * objects, so without this every reconnect left one bus listener per characteristic and one for the
 * device behind (MaxListeners warnings after 10 reconnects, and the old objects never freed).
 */
function releaseBusListeners(object: object): void {
  const helper = (object as { helper?: { removeListeners?: () => void } }).helper;
  try {
    helper?.removeListeners?.();
  } catch {
    // a helper that never connected to the bus has nothing to release
  }
}
class NodeBleLink implements GattLink {
  readonly address: string;
  readonly name: string;
  readonly lost: Promise<BleLinkLoss>;
  private readonly device: NodeBle.Device;
  private readonly options: NodeBleConnectorOptions;
  private readonly chars = new Map<string, CharacteristicEntry>();
  private readonly filter = new DuplicateFilter();
  private readonly onGone: () => void;
  private markLost!: (loss: BleLinkLoss) => void;
  private down = false;

  constructor(address: string, name: string, device: NodeBle.Device, options: NodeBleConnectorOptions, onGone: () => void) {
    this.address = address;
    this.name = name;
    this.device = device;
    this.options = options;
    this.onGone = onGone;
    this.lost = new Promise((resolve) => (this.markLost = resolve));
    device.on('disconnect', () => this.goDown({ by: 'remote', reason: 'the peripheral disconnected' }));
  }

  get connected(): boolean {
    return !this.down;
  }

  get duplicatesSuppressed(): number {
    return this.filter.suppressed;
  }

  /** Reads the GATT database (services and characteristics) node-ble resolved. */
  async resolve(): Promise<void> {
    const gatt = await this.device.gatt();
    for (const s of await gatt.services()) {
      const service = await gatt.getPrimaryService(s);
      for (const c of await service.characteristics()) {
        this.chars.set(`${s.toLowerCase()}/${c.toLowerCase()}`, { char: await service.getCharacteristic(c), listening: false });
      }
    }
  }

  private goDown(loss: BleLinkLoss): void {
    if (this.down) return;
    this.down = true;
    for (const entry of this.chars.values()) {
      entry.char.removeAllListeners('valuechanged');
      releaseBusListeners(entry.char);
    }
    this.device.removeAllListeners();
    releaseBusListeners(this.device);
    this.onGone();
    this.options.logger.info({ address: this.address, by: loss.by, reason: loss.reason }, 'ble: link down');
    this.markLost(loss);
  }

  hasCharacteristic(service: number | string, characteristic: number | string): boolean {
    return this.chars.has(`${bleUuid(service)}/${bleUuid(characteristic)}`);
  }

  private entry(service: number | string, characteristic: number | string, step: string): CharacteristicEntry {
    if (this.down) throw new BleError('disconnected', this.address, step, 'the link is down');
    const e = this.chars.get(`${bleUuid(service)}/${bleUuid(characteristic)}`);
    if (!e) throw new BleError('no-characteristic', this.address, step, `no characteristic 0x${shortUuid(characteristic)} in service 0x${shortUuid(service)}`);
    return e;
  }

  /** Runs one GATT operation: rejects at its timeout, or at once when the link goes down meanwhile. */
  private async op<T>(step: string, run: () => Promise<T>): Promise<T> {
    const gone = this.lost.then((): never => {
      throw new BleError('disconnected', this.address, step, 'the link went down');
    });
    gone.catch(() => undefined);
    try {
      return await withTimeout(run(), this.options.operationTimeoutMs, this.options.clock, () => new BleError('timeout', this.address, step, `no answer within ${this.options.operationTimeoutMs} ms`), gone);
    } catch (error) {
      if (error instanceof BleError) throw error;
      if (this.down) throw new BleError('disconnected', this.address, step, 'the link went down', { cause: error });
      const attError = attErrorOf(error);
      throw new BleError('gatt-failed', this.address, step, messageOf(error), attError !== undefined ? { cause: error, attError } : { cause: error });
    }
  }

  async read(service: number | string, characteristic: number | string): Promise<Uint8Array> {
    const step = `read 0x${shortUuid(characteristic)}`;
    const { char } = this.entry(service, characteristic, step);
    const value = await this.op(step, () => char.readValue());
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  async write(service: number | string, characteristic: number | string, bytes: Uint8Array, mode: 'request' | 'command' = 'request'): Promise<void> {
    const step = `write 0x${shortUuid(characteristic)}`;
    const { char } = this.entry(service, characteristic, step);
    const buffer = Buffer.from(bytes);
    await this.op(step, () => (mode === 'command' ? char.writeValueWithoutResponse(buffer) : char.writeValueWithResponse(buffer)));
  }

  async subscribe(service: number | string, characteristic: number | string, onValue: (bytes: Uint8Array) => void, options: SubscribeOptions = {}): Promise<void> {
    const step = `subscribe 0x${shortUuid(characteristic)}`;
    const entry = this.entry(service, characteristic, step);
    const key = shortUuid(characteristic);
    const windowMs = options.dedupe === false ? 0 : (options.dedupe?.windowMs ?? this.options.dedupeWindowMs);
    entry.char.on('valuechanged', (buffer: Buffer) => {
      if (this.down) return;
      const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      if (!this.filter.accept(key, bytes, this.options.clock.monotonic(), windowMs)) return;
      onValue(bytes);
    });
    if (!entry.listening) {
      entry.listening = true;
      await this.op(step, () => entry.char.startNotifications());
    }
  }

  async disconnect(): Promise<void> {
    if (this.down) return;
    const device = this.device;
    this.goDown({ by: 'local', reason: 'disconnect requested' });
    try {
      await withTimeout(device.disconnect(), this.options.operationTimeoutMs, this.options.clock, () => new BleError('timeout', this.address, 'disconnect', 'BlueZ did not answer'));
    } catch (error) {
      this.options.logger.debug({ address: this.address, err: messageOf(error) }, 'ble: disconnect failed (already gone?)');
    }
  }
}

// ---- supervisor ---------------------------------------------------------------------------------

export type BleSupervisorState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'stopped';

export interface BleSupervisorOptions {
  backoff: BackoffOptions;
  clock: Clock;
  random: Random;
  logger: Logger;
}

export const DEFAULT_BLE_SUPERVISOR_OPTIONS: Readonly<BleSupervisorOptions> = Object.freeze({
  backoff: Object.freeze({ initialMs: 500, maxMs: 30_000 }),
  clock: systemClock,
  random: Math.random,
  logger: silentLogger,
});

export interface BleSupervisorHandlers {
  /**
   * Runs on every new link: subscribe, read, run a procedure. A rejection (other than the link going
   * down) is logged and the link is dropped and reconnected after the backoff. The supervisor waits
   * for `link.lost` after it resolves.
   */
  session(link: GattLink): Promise<void>;
  state?(state: BleSupervisorState, detail: string): void;
}

/**
 * Keeps one peripheral connected: connect → `session(link)` → wait for link loss → backoff →
 * connect ... `attempt` resets after every session that got connected. `stop()` cancels a wait,
 * disconnects, closes the connector and resolves when nothing is left running.
 */
export class BleSupervisor {
  private readonly connector: GattConnector;
  private readonly options: BleSupervisorOptions;
  private stopping = false;
  private running: Promise<void> | undefined;
  private link: GattLink | undefined;
  private wake: (() => void) | undefined;
  private waitTimer: ClockTimer | undefined;
  /** Completed connections. */
  connections = 0;

  constructor(connector: GattConnector, options: Partial<BleSupervisorOptions> = {}) {
    this.connector = connector;
    this.options = { ...DEFAULT_BLE_SUPERVISOR_OPTIONS, ...options };
  }

  start(handlers: BleSupervisorHandlers): void {
    if (this.running) throw new MedgeError('ble-supervisor', 'already started');
    this.running = this.loop(handlers);
  }

  private setState(handlers: BleSupervisorHandlers, state: BleSupervisorState, detail: string): void {
    if (!this.stopping || state === 'stopped') handlers.state?.(state, detail);
  }

  private async loop(handlers: BleSupervisorHandlers): Promise<void> {
    const o = this.options;
    let attempt = 0;
    while (!this.stopping) {
      this.setState(handlers, 'connecting', `connecting to ${this.connector.target}`);
      let link: GattLink | undefined;
      try {
        link = await this.connector.connect();
      } catch (error) {
        if (this.stopping) break;
        o.logger.warn({ target: this.connector.target, code: (error as MedgeError).code, err: messageOf(error), attempt }, 'ble: connect failed');
      }
      if (link && this.stopping) {
        await link.disconnect();
        break;
      }
      if (link) {
        this.link = link;
        this.connections += 1;
        attempt = 0;
        this.setState(handlers, 'connected', `connected to ${link.address}`);
        try {
          await handlers.session(link);
        } catch (error) {
          if (!(error instanceof BleError && (error.code === 'disconnected' || error.code === 'closed'))) {
            o.logger.warn({ address: link.address, err: messageOf(error) }, 'ble: session failed; reconnecting');
          }
          await link.disconnect();
        }
        const loss = await link.lost;
        this.link = undefined;
        if (this.stopping) break;
        o.logger.info({ address: link.address, by: loss.by, reason: loss.reason }, 'ble: link lost; reconnecting');
      }
      const wait = backoffDelay(attempt, o.backoff, o.random);
      attempt += 1;
      this.setState(handlers, 'backoff', `reconnecting in ${Math.round(wait)} ms`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.waitTimer = o.clock.setTimeout(resolve, wait);
      });
      this.wake = undefined;
    }
    this.setState(handlers, 'stopped', 'stopped');
  }

  /** The current link, when connected. */
  get current(): GattLink | undefined {
    return this.link?.connected ? this.link : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.running;
    this.stopping = true;
    if (this.waitTimer !== undefined) this.options.clock.clearTimeout(this.waitTimer);
    this.wake?.();
    await this.link?.disconnect();
    await this.connector.close();
    await this.running;
  }
}
