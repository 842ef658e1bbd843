import { describe, expect, it } from 'vitest';
import { BleHeartRateDriver, DEFAULT_BLE_HEART_RATE_OPTIONS } from '../../device-sdk/sensors/ble-heart-rate.js';
import { SimHeartRateStrap } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:03';

describe.skipIf(!dbusDaemonAvailable())('ble-heart-rate over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('a strap that keeps measuring after its D-Bus daemon ended (Ctrl-C to the process group) sends nothing and ends nothing', async () => {
    // QA: Ctrl-C on `npm start` ended the demo with "Tried to write a message to a closed stream", an
    // 'error' event on the D-Bus connection with no listener, thrown while the heart-rate stream still ran.
    const strap = new SimHeartRateStrap({ address: ADDRESS });
    const bluez = await bluezWith([strap]);
    const sink = recordingSink();
    const driver = new BleHeartRateDriver('hr', { ...DEFAULT_BLE_HEART_RATE_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => strap.isNotifying(0x2a37), 'the heart-rate subscription');
      expect(await strap.measure({ bpm: 72 })).toBe(true);
      const daemon = (bluez as unknown as { daemon: { pid: number } }).daemon;
      process.kill(daemon.pid, 'SIGINT');
      const after: boolean[] = [];
      for (let i = 0; i < 40; i++) {
        after.push(await strap.measure({ bpm: 72 }));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect((bluez as unknown as { busLost: Error | undefined }).busLost?.message).toMatch(/closed stream|EPIPE|ECONNRESET|disconnected/);
      expect(after.slice(-10)).toEqual(Array.from({ length: 10 }, () => false));
    } finally {
      await driver.stop();
    }
  });

  it('leaves no D-Bus signal listener behind over 12 link drops: one reading per measurement, no MaxListeners warning', async () => {
    // QA: each reconnect left one PropertiesChanged listener per characteristic and one for the device on the
    // bus (node-ble objects of the old connection never released): after 10 reconnects Node warned of a leak.
    const strap = new SimHeartRateStrap({ address: ADDRESS });
    const bluez = await bluezWith([strap]);
    const sink = recordingSink();
    const driver = new BleHeartRateDriver('hr', { ...DEFAULT_BLE_HEART_RATE_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    const leaks: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') leaks.push(w.message);
    };
    process.on('warning', onWarning);
    driver.start(sink);
    try {
      for (let cycle = 0; cycle < 13; cycle++) {
        await waitFor(() => strap.isNotifying(0x2a37), `the subscription of connection ${cycle + 1}`);
        const before = sink.readings.length;
        expect(await strap.measure({ bpm: 60 + cycle })).toBe(true);
        await waitFor(() => sink.readings.length > before, `the reading of connection ${cycle + 1}`);
        if (cycle < 12) await strap.dropLink();
      }
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      await driver.stop();
      process.off('warning', onWarning);
    }
    expect(bluez.device(ADDRESS).connects).toBe(13);
    expect(sink.readings.map((r) => r.value)).toEqual(Array.from({ length: 13 }, (_, i) => 60 + i));
    expect(leaks).toEqual([]);
  }, 60_000);

  it('turns Heart Rate Measurements into heart-rate readings with contact and energy, and RR intervals into rr-interval readings; equal beats are kept', async () => {
    const strap = new SimHeartRateStrap({ address: ADDRESS });
    const bluez = await bluezWith([strap]);
    const sink = recordingSink();
    // Discovery by service UUID: no address configured.
    const { address: _address, ...options } = fastBleOptions(bluez.address, ADDRESS);
    const driver = new BleHeartRateDriver('hr', { ...DEFAULT_BLE_HEART_RATE_OPTIONS, ...options }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => strap.isNotifying(0x2a37), 'the heart-rate subscription');
      await strap.measure({ bpm: 72, rrMs: [833, 812], energyKj: 5 });
      await strap.measure({ bpm: 72 });
      await strap.measure({ bpm: 72 });
      await strap.measure({ bpm: 300, contact: false });
      await strap.sendRaw(0x2a37, Uint8Array.of(0x10, 72, 0x01)); // RR flag with an odd byte left
      await waitFor(() => sink.quarantined.length === 1, 'the bad measurement in quarantine');
      await waitFor(() => sink.readings.length === 6, 'four heart rates and two RR intervals');
    } finally {
      await driver.stop();
    }
    const hr = sink.readings.filter((r) => r.type === 'heart-rate');
    expect(hr.map((r) => r.value)).toEqual([72, 72, 72, 300]);
    expect(hr[0]).toMatchObject({ sensor: 'hr', unit: '/min', context: { contact: 'detected', location: 'chest', energyExpendedKj: '5', rrMs: '833,811.5' } });
    expect(hr[3]?.context).toMatchObject({ contact: 'not-detected' });
    // 833 ms -> 853/1024 s -> 833.0 ms; 812 ms -> 831/1024 s -> 811.5 ms (the 1/1024 s resolution).
    expect(sink.readings.filter((r) => r.type === 'rr-interval').map((r) => [r.value, r.unit])).toEqual([
      [833, 'ms'],
      [811.5, 'ms'],
    ]);
    // Each interval is timed at the beat that ends it: the first ends 811.5 ms before the notification.
    const [rr1, rr2] = sink.readings.filter((r) => r.type === 'rr-interval');
    expect(rr2?.tDevice).toBe(hr[0]?.tDevice);
    expect((rr2?.tDevice ?? 0) - (rr1?.tDevice ?? 0)).toBe(Math.round(hr[0]?.tDevice ?? 0) - Math.round((hr[0]?.tDevice ?? 0) - 811.5));
    expect(sink.quarantined[0]).toMatchObject({ sensor: 'hr', transport: `ble:${ADDRESS}/2a37` });
    expect([...(sink.quarantined[0]?.bytes ?? [])]).toEqual([0x10, 72, 0x01]);
  }, 60_000);
});
