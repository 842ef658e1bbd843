/**
 * The simulated BlueZ: `org.bluez` on a private D-Bus, serving simulated GATT peripherals to an
 * UNMODIFIED node-ble client (and so to `device-sdk/transport/ble.ts` and the BLE drivers).
 *
 * ## Programmatic API (for tests, `medge sim` scenarios and the sim helper)
 *
 * ```ts
 * import { startSimulatedBluez, SimGlucoseMeter, SimCgm, SimHeartRateStrap } from './simulator/bluez/index.js';
 *
 * const meter = new SimGlucoseMeter({ address: 'C0:FF:EE:00:00:01', storedRecords: 500, seed: 7 });
 * const cgm = new SimCgm({ address: 'C0:FF:EE:00:00:02' });
 * const strap = new SimHeartRateStrap({ address: 'C0:FF:EE:00:00:03' });
 * const bluez = await startSimulatedBluez({ devices: [meter, cgm, strap] });
 * // bluez.address: 'unix:path=/tmp/medge-dbus-XXXX/bus,guid=...' -> driver option `dbusAddress`
 *
 * meter.faults.disconnectAfterRecords = [150, 120]; // drop the link after 150 records of the next
 *                                                  // transfer, then after 120 of the one after
 * meter.faults.duplicateEvery = 10;                 // every 10th notification is sent twice
 * meter.faults.clockSkewMs = 3_600_000;             // the meter clock is an hour fast
 * meter.faults.clockJump = { atSequence: 300, byMs: -86_400_000 }; // ... and jumps back a day
 * meter.faults.notifyDelayMs = 20;                  // slow device
 * meter.addRecord({ mgPerDl: 142, meal: 'postprandial' }); // a new measurement on the meter
 *
 * await cgm.measure({ mgPerDl: 110 });             // one CGM notification (next time offset)
 * cgm.faults.duplicateEvery = 3;
 * cgm.replaceSensor();                             // a new sensor: new Session Start Time 0x2AAA, offsets from 0
 * await strap.measure({ bpm: 72, rrMs: [830, 812] }); // one Heart Rate Measurement notification
 * await strap.sendRaw(0x2a37, Uint8Array.of(0xff)); // any bytes on any characteristic (bad-bytes tests)
 * await meter.dropLink();                           // link loss now (device side)
 * bluez.setInRange(strap.address, false);           // out of range: disconnects, connects fail
 *
 * await bluez.stop();                               // unexports, disconnects, stops the private bus
 * ```
 *
 * - `startSimulatedBluez({ devices, dbusAddress?, adapter?, discoveryDelayMs?, connectDelayMs? })`
 *   starts a private `dbus-daemon` (unless `dbusAddress` is given), owns `org.bluez` on it and
 *   exports `/org/bluez` (AgentManager1), `/org/bluez/hci0` (Adapter1) and an ObjectManager at `/`.
 * - A device object (Device1) is published when discovery starts (after `discoveryDelayMs`) for
 *   every peripheral in range, or at once with `publishDevicesAtStart: true`; it stays, as BlueZ keeps
 *   known devices, until `removeDevice`.
 * - `Connect` fails (`org.bluez.Error.Failed`) when the peripheral is out of range; otherwise, after
 *   `connectDelayMs`, the GATT objects are published and `ServicesResolved` and `Connected` become
 *   true BEFORE the reply (node-ble would otherwise hang; see specs/simulated-bluez.md).
 * - A disconnect (either side) sets `Notifying` false on every characteristic and `Connected` and
 *   `ServicesResolved` false; the GATT objects stay published (a bonded device's cache).
 * - Peripherals implement `SimPeripheral`: a list of services and characteristics with read/write
 *   handlers, and they notify through the `SimPeripheralLink` the simulated BlueZ attaches.
 */
import dbus from 'dbus-next';
import { MedgeError } from '../../device-sdk/errors.js';
import { bleUuid } from '../../device-sdk/transport/ble-uuid.js';
import { type PrivateDbus, startPrivateDbus } from './dbus-daemon.js';
import { Adapter1, AgentManager1, bluezError, Device1, GattCharacteristic1, GattService1, interfaceName, ObjectManager, propertiesChanged } from './dbus-objects.js';

type DbusInterface = InstanceType<typeof dbus.interface.Interface>;

export type SimCharacteristicFlag = 'read' | 'write' | 'write-without-response' | 'notify' | 'indicate';

/** A GATT characteristic as a peripheral declares it. */
export interface SimCharacteristicSpec {
  /** A 16-bit SIG number (`0x2a18`) or a 128-bit UUID string. */
  uuid: number | string;
  flags: readonly SimCharacteristicFlag[];
  /** What `ReadValue` returns when there is no `onRead`. */
  value?: Uint8Array;
  /** A thrown `Error` becomes a D-Bus error reply (`org.bluez.Error.Failed`) to the reader. */
  onRead?(): Uint8Array | Promise<Uint8Array>;
  /** A thrown `Error` becomes a D-Bus error reply (`org.bluez.Error.Failed`) to the writer. */
  onWrite?(bytes: Uint8Array, type: string): void | Promise<void>;
}

export interface SimServiceSpec {
  uuid: number | string;
  characteristics: readonly SimCharacteristicSpec[];
}

/** The peripheral's side of the simulated radio link, given to it by `attach`. */
export interface SimPeripheralLink {
  readonly connected: boolean;
  /** Whether the collector enabled notifications/indications on `uuid`. */
  isNotifying(uuid: number | string): boolean;
  /**
   * Notifies (or indicates) `bytes` on `uuid`. Returns false, sending nothing, when the link is down
   * or the collector has not enabled notifications on it (as a real peripheral would drop them).
   */
  notify(uuid: number | string, bytes: Uint8Array): boolean;
  /** Link loss initiated by the peripheral (out of range, power off, a fault). */
  dropLink(): Promise<void>;
}

export interface SimPeripheral {
  /** `AA:BB:CC:DD:EE:FF`, upper case. */
  readonly address: string;
  readonly name: string;
  readonly services: readonly SimServiceSpec[];
  attach(link: SimPeripheralLink): void;
  onConnect?(): void;
  onDisconnect?(): void;
}

export interface SimulatedBluezOptions {
  devices: readonly SimPeripheral[];
  /** Use this bus instead of starting a private `dbus-daemon`. */
  dbusAddress?: string;
  adapter: string;
  adapterAddress: string;
  /** Delay between `StartDiscovery` and the devices appearing. */
  discoveryDelayMs: number;
  /** Delay of `Connect` (radio connection and service discovery). */
  connectDelayMs: number;
  /** Publish every device object at start, as BlueZ does for devices it already knows. */
  publishDevicesAtStart: boolean;
}

export const DEFAULT_SIMULATED_BLUEZ_OPTIONS: Readonly<Omit<SimulatedBluezOptions, 'devices'>> = Object.freeze({
  adapter: 'hci0',
  adapterAddress: '00:1A:7D:DA:71:00',
  discoveryDelayMs: 10,
  connectDelayMs: 5,
  publishDevicesAtStart: false,
});

export interface SimDeviceStatus {
  address: string;
  published: boolean;
  inRange: boolean;
  connected: boolean;
  /** Completed `Connect` calls. */
  connects: number;
  /** Disconnects of either side. */
  disconnects: number;
}

export interface SimulatedBluez {
  /** The D-Bus address of the bus `org.bluez` lives on (driver option `dbusAddress`). */
  readonly address: string;
  readonly adapterPath: string;
  device(address: string): SimDeviceStatus;
  addDevice(peripheral: SimPeripheral): void;
  /** Unexports the device object (BlueZ forgetting it); disconnects first. */
  removeDevice(address: string): Promise<void>;
  /** Out of range: disconnects now, `Connect` fails and discovery does not find it until back in range. */
  setInRange(address: string, inRange: boolean): Promise<void>;
  stop(): Promise<void>;
}

function devicePathOf(adapterPath: string, address: string): string {
  return `${adapterPath}/dev_${address.toUpperCase().replace(/:/g, '_')}`;
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

class SimDevice implements SimPeripheralLink {
  readonly path: string;
  readonly iface: Device1;
  readonly peripheral: SimPeripheral;
  readonly chars = new Map<string, GattCharacteristic1>();
  readonly gattObjects: [string, DbusInterface][] = [];
  published = false;
  gattPublished = false;
  inRange = true;
  connects = 0;
  disconnects = 0;
  private readonly owner: BluezImpl;

  constructor(owner: BluezImpl, peripheral: SimPeripheral) {
    this.owner = owner;
    this.peripheral = peripheral;
    this.path = devicePathOf(owner.adapterPath, peripheral.address);
    const uuids = peripheral.services.map((s) => bleUuid(s.uuid));
    this.iface = new Device1(peripheral.address.toUpperCase(), peripheral.name, owner.adapterPath, uuids, {
      connect: () => this.connect(),
      disconnect: () => this.disconnect(),
    });
    let handle = 1;
    const hex = (n: number) => n.toString(16).padStart(4, '0');
    for (const service of peripheral.services) {
      const servicePath = `${this.path}/service${hex(handle)}`;
      handle += 1;
      this.gattObjects.push([servicePath, new GattService1(bleUuid(service.uuid), this.path)]);
      for (const spec of service.characteristics) {
        const charPath = `${servicePath}/char${hex(handle)}`;
        handle += 2;
        const uuid = bleUuid(spec.uuid);
        const char = new GattCharacteristic1(uuid, servicePath, [...spec.flags], {
          read: async (offset) => {
            this.requireConnected();
            let value: Uint8Array;
            try {
              value = spec.onRead ? await spec.onRead() : (spec.value ?? new Uint8Array(0));
            } catch (error) {
              if (error instanceof dbus.DBusError) throw error;
              throw bluezError('Failed', (error as Error).message);
            }
            return value.subarray(Math.min(offset, value.length));
          },
          write: async (bytes, type) => {
            this.requireConnected();
            if (!spec.onWrite) throw bluezError('NotPermitted', 'Write not permitted');
            try {
              await spec.onWrite(bytes, type);
            } catch (error) {
              if (error instanceof dbus.DBusError) throw error;
              throw bluezError('Failed', (error as Error).message);
            }
          },
          startNotify: () => this.requireConnected(),
          stopNotify: () => undefined,
        });
        this.chars.set(uuid, char);
        this.gattObjects.push([charPath, char]);
      }
    }
    peripheral.attach(this);
  }

  get connected(): boolean {
    return this.iface.Connected;
  }

  private requireConnected(): void {
    if (!this.iface.Connected) throw bluezError('NotConnected', 'Not Connected');
  }

  isNotifying(uuid: number | string): boolean {
    return this.connected && (this.chars.get(bleUuid(uuid))?.Notifying ?? false);
  }

  notify(uuid: number | string, bytes: Uint8Array): boolean {
    const char = this.chars.get(bleUuid(uuid));
    if (!char || !this.connected || !char.Notifying || this.owner.isStopped) return false;
    char.notify(bytes);
    return true;
  }

  async connect(): Promise<void> {
    if (this.iface.Connected) return;
    if (!this.inRange) {
      await delay(this.owner.options.connectDelayMs);
      throw bluezError('Failed', 'le-connection-abort-by-local');
    }
    await delay(this.owner.options.connectDelayMs);
    if (!this.inRange || !this.published || this.owner.isStopped) throw bluezError('Failed', 'le-connection-abort-by-local');
    if (!this.gattPublished) {
      for (const [path, iface] of this.gattObjects) this.owner.exportObject(path, [iface]);
      this.gattPublished = true;
    }
    this.iface.Connected = true;
    this.iface.ServicesResolved = true;
    propertiesChanged(this.iface, { Connected: true, ServicesResolved: true });
    this.connects += 1;
    this.peripheral.onConnect?.();
  }

  async disconnect(): Promise<void> {
    if (!this.iface.Connected) return;
    for (const char of this.chars.values()) {
      if (char.Notifying) {
        char.Notifying = false;
        propertiesChanged(char, { Notifying: false });
      }
    }
    this.iface.ServicesResolved = false;
    this.iface.Connected = false;
    propertiesChanged(this.iface, { ServicesResolved: false, Connected: false });
    this.disconnects += 1;
    this.peripheral.onDisconnect?.();
    await Promise.resolve();
  }

  dropLink(): Promise<void> {
    return this.disconnect();
  }
}

class BluezImpl implements SimulatedBluez {
  readonly address: string;
  readonly adapterPath: string;
  readonly options: Omit<SimulatedBluezOptions, 'devices'>;
  private readonly bus: dbus.MessageBus;
  private readonly daemon: PrivateDbus | undefined;
  private readonly adapter: Adapter1;
  private readonly objectManager: ObjectManager;
  private readonly objects = new Map<string, DbusInterface[]>();
  private readonly devices = new Map<string, SimDevice>();
  private discoveryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Why the D-Bus connection failed (its daemon ended, e.g. on Ctrl-C to the process group), once it did. */
  busLost: Error | undefined;

  constructor(address: string, bus: dbus.MessageBus, daemon: PrivateDbus | undefined, options: Omit<SimulatedBluezOptions, 'devices'>) {
    this.address = address;
    this.bus = bus;
    this.daemon = daemon;
    this.options = options;
    this.adapterPath = `/org/bluez/${options.adapter}`;
    // A write on a closed connection is an 'error' event on the bus; without a listener it ended the process
    // (QA: Ctrl-C on `npm start` stopped the private dbus-daemon while the heart-rate strap still notified).
    bus.on('error', (error: Error) => {
      this.busLost ??= error;
    });
    this.objectManager = new ObjectManager(() => this.objects);
    bus.export('/', this.objectManager);
    this.exportObject('/org/bluez', [new AgentManager1()]);
    this.adapter = new Adapter1(options.adapterAddress, `medge-sim-${options.adapter}`, {
      startDiscovery: () => {
        this.discoveryTimer = setTimeout(() => this.publishInRange(), options.discoveryDelayMs);
      },
      stopDiscovery: () => clearTimeout(this.discoveryTimer),
      removeDevice: (path) => {
        const d = [...this.devices.values()].find((x) => x.path === path);
        if (!d) throw bluezError('DoesNotExist', `no device at ${path}`);
        void this.removeDevice(d.peripheral.address);
      },
    });
    this.exportObject(this.adapterPath, [this.adapter]);
  }

  exportObject(path: string, ifaces: DbusInterface[]): void {
    for (const i of ifaces) this.bus.export(path, i);
    this.objects.set(path, [...(this.objects.get(path) ?? []), ...ifaces]);
    this.objectManager.InterfacesAdded(path, ifaces);
  }

  private unexportObject(path: string): void {
    const ifaces = this.objects.get(path);
    if (!ifaces) return;
    for (const i of ifaces) this.bus.unexport(path, i);
    this.objects.delete(path);
    this.objectManager.InterfacesRemoved(
      path,
      ifaces.map((i) => interfaceName(i)),
    );
  }

  private publish(d: SimDevice): void {
    if (d.published) return;
    this.exportObject(d.path, [d.iface]);
    d.published = true;
  }

  private publishInRange(): void {
    if (this.stopped || !this.adapter.Discovering) return;
    for (const d of this.devices.values()) if (d.inRange) this.publish(d);
  }

  private get(address: string): SimDevice {
    const d = this.devices.get(address.toUpperCase());
    if (!d) throw new MedgeError('sim-bluez', `no simulated device ${address}; known: ${[...this.devices.keys()].join(', ') || 'none'}`);
    return d;
  }

  device(address: string): SimDeviceStatus {
    const d = this.get(address);
    return { address: d.peripheral.address, published: d.published, inRange: d.inRange, connected: d.connected, connects: d.connects, disconnects: d.disconnects };
  }

  addDevice(peripheral: SimPeripheral): void {
    const key = peripheral.address.toUpperCase();
    if (!/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/.test(key)) throw new MedgeError('sim-bluez', `device address ${peripheral.address} is not AA:BB:CC:DD:EE:FF`);
    if (this.devices.has(key)) throw new MedgeError('sim-bluez', `a simulated device ${key} already exists`);
    const d = new SimDevice(this, peripheral);
    this.devices.set(key, d);
    if (this.options.publishDevicesAtStart || this.adapter.Discovering) this.publish(d);
  }

  async removeDevice(address: string): Promise<void> {
    const d = this.get(address);
    await d.disconnect();
    for (const [path] of [...d.gattObjects].reverse()) this.unexportObject(path);
    d.gattPublished = false;
    this.unexportObject(d.path);
    d.published = false;
    this.devices.delete(address.toUpperCase());
  }

  async setInRange(address: string, inRange: boolean): Promise<void> {
    const d = this.get(address);
    d.inRange = inRange;
    if (!inRange) await d.disconnect();
    else if (this.adapter.Discovering) this.publish(d);
  }

  /** Stopping or stopped, or its bus is gone: devices connect and notify no more. */
  get isStopped(): boolean {
    return this.stopped || this.busLost !== undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.discoveryTimer);
    for (const d of this.devices.values()) {
      await d.disconnect().catch((error: unknown) => {
        // With the bus gone there is nobody to tell.
        if (this.busLost === undefined) throw error;
      });
    }
    this.bus.disconnect();
    await this.daemon?.stop();
  }
}

export async function startSimulatedBluez(options: Partial<SimulatedBluezOptions> & { devices: readonly SimPeripheral[] }): Promise<SimulatedBluez> {
  const { devices, dbusAddress, ...rest } = options;
  const merged = { ...DEFAULT_SIMULATED_BLUEZ_OPTIONS, ...rest };
  const daemon = dbusAddress === undefined ? await startPrivateDbus() : undefined;
  const address = dbusAddress ?? (daemon as PrivateDbus).address;
  const bus = dbus.sessionBus({ busAddress: address });
  try {
    await bus.requestName('org.bluez', 0);
  } catch (error) {
    bus.disconnect();
    await daemon?.stop();
    throw new MedgeError('sim-bluez', `cannot own org.bluez on ${address}: ${(error as Error).message}`, { cause: error });
  }
  const bluez = new BluezImpl(address, bus, daemon, merged);
  for (const p of devices) bluez.addDevice(p);
  return bluez;
}
