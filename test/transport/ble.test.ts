import dbus from 'dbus-next';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeRacpResponse, encodeRacpRequest } from '../../device-sdk/protocols/ble/racp.js';
import { BleError, BleSupervisor, type BleSupervisorState, bleUuid, DuplicateFilter, type GattLink, NodeBleConnector, shortUuid } from '../../device-sdk/transport/ble.js';
import { SimCgm, SimGlucoseMeter, SimHeartRateStrap } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';

const METER = 'C0:FF:EE:00:00:01';
const STRAP = 'C0:FF:EE:00:00:03';
const fast = { discoveryPollMs: 20, discoveryTimeoutMs: 10_000, operationTimeoutMs: 5_000, logger: silentLogger };

describe('BLE UUIDs and the duplicate filter', () => {
  it('spells UUIDs as BlueZ does and shortens SIG ones', () => {
    expect(bleUuid(0x2a18)).toBe('00002a18-0000-1000-8000-00805f9b34fb');
    expect(bleUuid('0x2A18')).toBe('00002a18-0000-1000-8000-00805f9b34fb');
    expect(shortUuid('00002A52-0000-1000-8000-00805F9B34FB')).toBe('2a52');
    expect(shortUuid('6e400001-b5a3-f393-e0a9-e50e24dcca9e')).toBe('6e400001-b5a3-f393-e0a9-e50e24dcca9e');
    expect(() => bleUuid('2a1')).toThrow(/not a Bluetooth UUID/);
  });

  it('drops equal bytes on the same characteristic within the window only', () => {
    const f = new DuplicateFilter();
    const a = Uint8Array.of(1, 2, 3);
    expect(f.accept('2a18', a, 0, 1000)).toBe(true);
    expect(f.accept('2a18', Uint8Array.of(1, 2, 3), 500, 1000)).toBe(false);
    expect(f.accept('2a34', a, 500, 1000)).toBe(true); // another characteristic
    expect(f.accept('2a18', Uint8Array.of(1, 2, 4), 600, 1000)).toBe(true);
    expect(f.accept('2a18', a, 1500, 1000)).toBe(true); // the window has passed
    expect(f.accept('2a18', a, 1600, 0)).toBe(true); // window 0: off
    expect(f.suppressed).toBe(1);
  });
});

describe.skipIf(!dbusDaemonAvailable())('BLE GATT transport through node-ble over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('discovers by service UUID, reads, writes with response and receives indications; unknown characteristics and refused writes are typed errors', async () => {
    const meter = new SimGlucoseMeter({ address: METER, storedRecords: 4 });
    const strap = new SimHeartRateStrap({ address: STRAP });
    const bluez = await bluezWith([strap, meter]);
    const connector = new NodeBleConnector({ serviceUuid: 0x1808, dbusAddress: bluez.address, ...fast });
    try {
      const link = await connector.connect();
      expect(link.address).toBe(METER);
      expect(link.name).toBe('medge sim glucose meter');
      expect(bluez.device(METER).connected).toBe(true);
      expect(bluez.device(STRAP).connected).toBe(false);
      expect([...(await link.read(0x1808, 0x2a51))]).toEqual([0xff, 0x02]);
      const responses: unknown[] = [];
      await link.subscribe(0x1808, 0x2a52, (b) => responses.push(decodeRacpResponse(b)));
      await link.write(0x1808, 0x2a52, encodeRacpRequest({ opCode: 'report-number-of-stored-records', operator: 'all' }));
      await waitFor(() => responses.length === 1, 'the record count indication');
      expect(responses[0]).toEqual({ opCode: 'number-of-stored-records-response', count: 4 });
      await expect(link.read(0x1808, 0x2a99)).rejects.toMatchObject({ code: 'no-characteristic' });
      await expect(link.write(0x1808, 0x2a51, Uint8Array.of(1))).rejects.toMatchObject({ code: 'gatt-failed' });
      await link.disconnect();
      expect(await link.lost).toEqual({ by: 'local', reason: 'disconnect requested' });
      await expect(link.read(0x1808, 0x2a51)).rejects.toMatchObject({ code: 'disconnected' });
      await waitFor(() => !bluez.device(METER).connected, 'the peripheral to see the disconnect');
    } finally {
      await connector.close();
    }
    await expect(connector.connect()).rejects.toMatchObject({ code: 'closed' });
  }, 30_000);

  it('fails discovery with a typed timeout when the peripheral is not there', async () => {
    const bluez = await bluezWith([new SimHeartRateStrap({ address: STRAP })]);
    const connector = new NodeBleConnector({ address: 'C0:FF:EE:00:00:99', dbusAddress: bluez.address, ...fast, discoveryTimeoutMs: 300 });
    try {
      const error = await connector.connect().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BleError);
      expect(error).toMatchObject({ code: 'discovery-timeout', target: 'C0:FF:EE:00:00:99', step: 'discover' });
    } finally {
      await connector.close();
    }
  }, 30_000);

  it('the supervisor retries while the peripheral is out of range, reconnects after a link loss, and stops cleanly', async () => {
    const cgm = new SimCgm({ address: 'C0:FF:EE:00:00:02' });
    const bluez = await bluezWith([cgm], { publishDevicesAtStart: true });
    await bluez.setInRange(cgm.address, false);
    const connector = new NodeBleConnector({ address: cgm.address, dbusAddress: bluez.address, ...fast });
    const supervisor = new BleSupervisor(connector, { backoff: { initialMs: 20, maxMs: 100 }, logger: silentLogger });
    const states: BleSupervisorState[] = [];
    const values: number[] = [];
    const links: GattLink[] = [];
    supervisor.start({
      session: async (link) => {
        links.push(link);
        await link.subscribe(0x181f, 0x2aa7, (b) => values.push(b[0] as number));
      },
      state: (s) => states.push(s),
    });
    try {
      await waitFor(() => states.filter((s) => s === 'backoff').length >= 2, 'two failed attempts');
      expect(bluez.device(cgm.address).connects).toBe(0);
      await bluez.setInRange(cgm.address, true);
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the first session');
      await cgm.measure({ mgPerDl: 100 });
      await cgm.dropLink();
      await waitFor(() => supervisor.connections === 2 && cgm.isNotifying(0x2aa7), 'the second session');
      await cgm.measure({ mgPerDl: 101 });
      await waitFor(() => values.length === 2, 'a notification on each link');
    } finally {
      await supervisor.stop();
    }
    expect(states.at(-1)).toBe('stopped');
    expect(links).toHaveLength(2);
    expect(links.every((l) => !l.connected)).toBe(true);
    expect(bluez.device(cgm.address)).toMatchObject({ connected: false, connects: 2, disconnects: 2 });
    const connects = bluez.device(cgm.address).connects;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bluez.device(cgm.address).connects).toBe(connects); // nothing reconnects after stop()
  }, 30_000);

  it('publishes its objects through ObjectManager like BlueZ (InterfacesAdded on discovery, GetManagedObjects)', async () => {
    const meter = new SimGlucoseMeter({ address: METER });
    const bluez = await bluezWith([meter]);
    const client = dbus.sessionBus({ busAddress: bluez.address });
    try {
      const root = await client.getProxyObject('org.bluez', '/');
      const om = root.getInterface('org.freedesktop.DBus.ObjectManager') as dbus.ClientInterface & { GetManagedObjects(): Promise<unknown> };
      const added: string[] = [];
      om.on('InterfacesAdded', (path: string) => added.push(path));
      const adapter = (await client.getProxyObject('org.bluez', '/org/bluez/hci0')).getInterface('org.bluez.Adapter1') as dbus.ClientInterface & {
        StartDiscovery(): Promise<void>;
        StopDiscovery(): Promise<void>;
      };
      await adapter.StartDiscovery();
      await waitFor(() => added.includes('/org/bluez/hci0/dev_C0_FF_EE_00_00_01'), 'the device to be announced');
      const objects = (await om.GetManagedObjects()) as Record<string, Record<string, Record<string, { value: unknown }>>>;
      const device = objects['/org/bluez/hci0/dev_C0_FF_EE_00_00_01']?.['org.bluez.Device1'];
      expect(device?.Address?.value).toBe(METER);
      expect(device?.UUIDs?.value).toEqual([bleUuid(0x1808), bleUuid(0x1805), bleUuid(0x180a)]); // Glucose, Current Time and Device Information services
      expect(objects['/org/bluez/hci0']?.['org.bluez.Adapter1']?.Discovering?.value).toBe(true);
      await expect(adapter.StartDiscovery()).rejects.toMatchObject({ type: 'org.bluez.Error.InProgress' });
      await adapter.StopDiscovery();
    } finally {
      client.disconnect();
    }
  }, 30_000);
});
