/**
 * The `org.bluez` D-Bus interfaces of the simulated BlueZ, exported with dbus-next. These classes
 * are the wire surface only: what a call does is delegated to the hooks that `bluez.ts` passes in.
 *
 * Written from BlueZ's doc/org.bluez.{Adapter,Device,GattService,GattCharacteristic}.rst and from
 * what node-ble 1.13 needs (shared/specs/simulated-bluez.md): every object is a child node of its
 * parent in introspection, `/org/bluez` declares `AgentManager1`, characteristics are direct children
 * of services which are direct children of devices, and notifications are `PropertiesChanged` of
 * `Value`. An `org.freedesktop.DBus.ObjectManager` at `/` serves `GetManagedObjects` and emits
 * `InterfacesAdded`/`InterfacesRemoved` like BlueZ does (node-ble itself only introspects).
 */
import dbus from 'dbus-next';
import { bluezAttError } from '../../device-sdk/protocols/ble/att-error.js';

const { Interface } = dbus.interface;
type DbusInterface = InstanceType<typeof Interface>;

/** A D-Bus error reply with a BlueZ error name (`org.bluez.Error.Failed`, ...). */
export function bluezError(name: 'Failed' | 'InProgress' | 'NotConnected' | 'NotPermitted' | 'NotSupported' | 'DoesNotExist' | 'InvalidArguments' | 'NotReady', message: string): Error {
  return new dbus.DBusError(`org.bluez.Error.${name}`, message);
}

/**
 * The D-Bus error reply BlueZ gives a client's `ReadValue`/`WriteValue` when the peripheral answered the ATT request
 * with error `code` (src/gatt-client.c `create_gatt_dbus_error`; e.g. 0x80: `org.bluez.Error.Failed` "Operation
 * failed with ATT error: 0x80"; `protocols/ble/att-error.ts`).
 */
export function bluezAttErrorReply(code: number): Error {
  const { name, text } = bluezAttError(code);
  return new dbus.DBusError(name, text);
}

/** Sends `PropertiesChanged` for `changed` (values already assigned on the object). */
export function propertiesChanged(iface: DbusInterface, changed: Record<string, unknown>): void {
  Interface.emitPropertiesChanged(iface, changed, []);
}

interface Described {
  $properties?: Record<string, { signature: string; name: string }>;
}

/** The D-Bus name of an exported interface (`org.bluez.Device1`). */
export function interfaceName(iface: DbusInterface): string {
  return (iface as unknown as { $name: string }).$name;
}

/** The `a{sv}` property map of an interface, for ObjectManager. */
export function propertyVariants(iface: DbusInterface): Record<string, InstanceType<typeof dbus.Variant>> {
  const out: Record<string, InstanceType<typeof dbus.Variant>> = {};
  const props = (iface as unknown as Described).$properties ?? {};
  for (const p of Object.values(props)) out[p.name] = new dbus.Variant(p.signature, (iface as unknown as Record<string, unknown>)[p.name]);
  return out;
}

// ---- /org/bluez ---------------------------------------------------------------------------

export class AgentManager1 extends Interface {
  constructor() {
    super('org.bluez.AgentManager1');
  }
  RegisterAgent(_agent: string, _capability: string): void {}
  UnregisterAgent(_agent: string): void {}
  RequestDefaultAgent(_agent: string): void {}
}
AgentManager1.configureMembers({
  methods: { RegisterAgent: { inSignature: 'os' }, UnregisterAgent: { inSignature: 'o' }, RequestDefaultAgent: { inSignature: 'o' } },
});

// ---- /org/bluez/hciN ----------------------------------------------------------------------

export interface AdapterHooks {
  startDiscovery(): void;
  stopDiscovery(): void;
  removeDevice(path: string): void;
}

export class Adapter1 extends Interface {
  Address: string;
  Name: string;
  Alias: string;
  AddressType = 'public';
  Powered = true;
  Discovering = false;
  Discoverable = false;
  Pairable = true;
  UUIDs: string[] = [];
  private readonly hooks: AdapterHooks;
  constructor(address: string, name: string, hooks: AdapterHooks) {
    super('org.bluez.Adapter1');
    this.Address = address;
    this.Name = name;
    this.Alias = name;
    this.hooks = hooks;
  }
  SetDiscoveryFilter(_filter: Record<string, unknown>): void {}
  StartDiscovery(): void {
    if (!this.Powered) throw bluezError('NotReady', 'Resource Not Ready');
    if (this.Discovering) throw bluezError('InProgress', 'Operation already in progress');
    this.Discovering = true;
    propertiesChanged(this, { Discovering: true });
    this.hooks.startDiscovery();
  }
  StopDiscovery(): void {
    if (!this.Discovering) throw bluezError('Failed', 'No discovery started');
    this.Discovering = false;
    propertiesChanged(this, { Discovering: false });
    this.hooks.stopDiscovery();
  }
  RemoveDevice(path: string): void {
    this.hooks.removeDevice(path);
  }
}
Adapter1.configureMembers({
  properties: {
    Address: { signature: 's', access: 'read' },
    Name: { signature: 's', access: 'read' },
    Alias: { signature: 's', access: 'readwrite' },
    AddressType: { signature: 's', access: 'read' },
    Powered: { signature: 'b', access: 'readwrite' },
    Discovering: { signature: 'b', access: 'read' },
    Discoverable: { signature: 'b', access: 'readwrite' },
    Pairable: { signature: 'b', access: 'readwrite' },
    UUIDs: { signature: 'as', access: 'read' },
  },
  methods: {
    SetDiscoveryFilter: { inSignature: 'a{sv}' },
    StartDiscovery: {},
    StopDiscovery: {},
    RemoveDevice: { inSignature: 'o' },
  },
});

// ---- /org/bluez/hciN/dev_XX_XX_XX_XX_XX_XX ------------------------------------------------

export interface DeviceHooks {
  /** Resolves when the link is up and the GATT objects are published (ServicesResolved set). */
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

export class Device1 extends Interface {
  Address: string;
  AddressType = 'public';
  Name: string;
  Alias: string;
  Adapter: string;
  Paired = false;
  Trusted = false;
  Blocked = false;
  LegacyPairing = false;
  Connected = false;
  ServicesResolved = false;
  UUIDs: string[];
  RSSI = -60;
  private readonly hooks: DeviceHooks;
  constructor(address: string, name: string, adapterPath: string, uuids: string[], hooks: DeviceHooks) {
    super('org.bluez.Device1');
    this.Address = address;
    this.Name = name;
    this.Alias = name;
    this.Adapter = adapterPath;
    this.UUIDs = uuids;
    this.hooks = hooks;
  }
  async Connect(): Promise<void> {
    await this.hooks.connect();
  }
  async Disconnect(): Promise<void> {
    await this.hooks.disconnect();
  }
  Pair(): void {
    this.Paired = true;
    propertiesChanged(this, { Paired: true });
  }
  CancelPair(): void {}
}
Device1.configureMembers({
  properties: {
    Address: { signature: 's', access: 'read' },
    AddressType: { signature: 's', access: 'read' },
    Name: { signature: 's', access: 'read' },
    Alias: { signature: 's', access: 'readwrite' },
    Adapter: { signature: 'o', access: 'read' },
    Paired: { signature: 'b', access: 'read' },
    Trusted: { signature: 'b', access: 'readwrite' },
    Blocked: { signature: 'b', access: 'readwrite' },
    LegacyPairing: { signature: 'b', access: 'read' },
    Connected: { signature: 'b', access: 'read' },
    ServicesResolved: { signature: 'b', access: 'read' },
    UUIDs: { signature: 'as', access: 'read' },
    RSSI: { signature: 'n', access: 'read' },
  },
  methods: { Connect: {}, Disconnect: {}, Pair: {}, CancelPair: {} },
});

// ---- GATT ---------------------------------------------------------------------------------

export class GattService1 extends Interface {
  UUID: string;
  Primary = true;
  Device: string;
  constructor(uuid: string, devicePath: string) {
    super('org.bluez.GattService1');
    this.UUID = uuid;
    this.Device = devicePath;
  }
}
GattService1.configureMembers({
  properties: { UUID: { signature: 's', access: 'read' }, Primary: { signature: 'b', access: 'read' }, Device: { signature: 'o', access: 'read' } },
});

export interface CharacteristicHooks {
  read(offset: number): Promise<Uint8Array>;
  /** `type` is BlueZ's write type option: `command` (without response), `request`, `reliable`. */
  write(bytes: Uint8Array, type: string): Promise<void>;
  startNotify(): void;
  stopNotify(): void;
}

function optionValue(options: Record<string, unknown> | undefined, key: string): unknown {
  const v = options?.[key];
  return v !== null && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : v;
}

export class GattCharacteristic1 extends Interface {
  UUID: string;
  Service: string;
  Value: Buffer = Buffer.alloc(0);
  Notifying = false;
  Flags: string[];
  private readonly hooks: CharacteristicHooks;
  constructor(uuid: string, servicePath: string, flags: string[], hooks: CharacteristicHooks) {
    super('org.bluez.GattCharacteristic1');
    this.UUID = uuid;
    this.Service = servicePath;
    this.Flags = flags;
    this.hooks = hooks;
  }
  async ReadValue(options: Record<string, unknown>): Promise<Buffer> {
    const offset = Number(optionValue(options, 'offset') ?? 0);
    const value = Buffer.from(await this.hooks.read(offset));
    this.Value = value;
    return value;
  }
  async WriteValue(value: Buffer | number[], options: Record<string, unknown>): Promise<void> {
    const type = String(optionValue(options, 'type') ?? 'request');
    await this.hooks.write(Uint8Array.from(value), type);
  }
  StartNotify(): void {
    if (!this.Flags.includes('notify') && !this.Flags.includes('indicate')) throw bluezError('NotSupported', 'Operation is not supported');
    if (this.Notifying) return;
    this.Notifying = true;
    propertiesChanged(this, { Notifying: true });
    this.hooks.startNotify();
  }
  StopNotify(): void {
    if (!this.Notifying) return;
    this.Notifying = false;
    propertiesChanged(this, { Notifying: false });
    this.hooks.stopNotify();
  }
  /** A notification or indication: the new `Value` as `PropertiesChanged`. */
  notify(bytes: Uint8Array): void {
    this.Value = Buffer.from(bytes);
    propertiesChanged(this, { Value: this.Value });
  }
}
GattCharacteristic1.configureMembers({
  properties: {
    UUID: { signature: 's', access: 'read' },
    Service: { signature: 'o', access: 'read' },
    Value: { signature: 'ay', access: 'read' },
    Notifying: { signature: 'b', access: 'read' },
    Flags: { signature: 'as', access: 'read' },
  },
  methods: {
    ReadValue: { inSignature: 'a{sv}', outSignature: 'ay' },
    WriteValue: { inSignature: 'aya{sv}' },
    StartNotify: {},
    StopNotify: {},
  },
});

// ---- / ------------------------------------------------------------------------------------

/** `org.freedesktop.DBus.ObjectManager` over the objects that `registry()` lists. */
export class ObjectManager extends Interface {
  private readonly registry: () => ReadonlyMap<string, readonly DbusInterface[]>;
  constructor(registry: () => ReadonlyMap<string, readonly DbusInterface[]>) {
    super('org.freedesktop.DBus.ObjectManager');
    this.registry = registry;
  }
  GetManagedObjects(): Record<string, Record<string, Record<string, unknown>>> {
    const out: Record<string, Record<string, Record<string, unknown>>> = {};
    for (const [path, ifaces] of this.registry()) {
      const entry: Record<string, Record<string, unknown>> = {};
      for (const i of ifaces) entry[interfaceName(i)] = propertyVariants(i);
      out[path] = entry;
    }
    return out;
  }
  InterfacesAdded(path: string, ifaces: readonly DbusInterface[]): [string, Record<string, Record<string, unknown>>] {
    const entry: Record<string, Record<string, unknown>> = {};
    for (const i of ifaces) entry[interfaceName(i)] = propertyVariants(i);
    return [path, entry];
  }
  InterfacesRemoved(path: string, names: readonly string[]): [string, string[]] {
    return [path, [...names]];
  }
}
ObjectManager.configureMembers({
  methods: { GetManagedObjects: { outSignature: 'a{oa{sa{sv}}}' } },
  signals: { InterfacesAdded: { signature: 'oa{sa{sv}}' }, InterfacesRemoved: { signature: 'oas' } },
});
