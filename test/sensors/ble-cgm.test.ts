import { describe, expect, it } from 'vitest';
import { BleCgmDriver, DEFAULT_BLE_CGM_OPTIONS } from '../../device-sdk/sensors/ble-cgm.js';
import { SimCgm } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:02';

describe.skipIf(!dbusDaemonAvailable())('ble-cgm over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('stores each CGM record once: retransmitted notifications and records repeated with the same time offset are suppressed and counted', async () => {
    const cgm = new SimCgm({ address: ADDRESS, faults: { duplicateEvery: 3 } });
    const bluez = await bluezWith([cgm]);
    const sink = recordingSink();
    const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      const values = [100, 104, 109, 115, 122, 130, 137, 141, 144, 146, 147, 147];
      for (const [i, v] of values.entries()) expect(await cgm.measure({ mgPerDl: v, trend: 1.2, quality: 95 })).toBe(i * 5);
      // The same record again with different bytes (a resent record after a sensor hiccup): suppressed by its time offset.
      expect(await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 999, timeOffset: 10 }))).toBe(true);
      await cgm.measure({ mgPerDl: 150 });
      await waitFor(() => sink.readings.length === 13, '13 distinct records');
      await waitFor(() => driver.duplicates === 5, 'the duplicates counted');
    } finally {
      await driver.stop();
    }
    expect(cgm.duplicatesSent).toBe(4);
    expect(driver.duplicateRecords).toBe(1);
    expect(sink.readings.map((r) => r.meterRecord)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]);
    expect(sink.readings.map((r) => r.value)).toEqual([100, 104, 109, 115, 122, 130, 137, 141, 144, 146, 147, 147, 150]);
    expect(sink.readings[0]).toMatchObject({ sensor: 'cgm', type: 'glucose', unit: 'mg/dL', context: { source: 'cgm', trendMgPerDlPerMin: '1.2', qualityPercent: '95' } });
    expect(sink.states.some((s) => /duplicates suppressed/.test(s.detail))).toBe(true);
    expect(sink.quarantined).toEqual([]);
  }, 60_000);

  it('quarantines a record whose E2E-CRC does not match, and keeps streaming after a reconnect', async () => {
    const cgm = new SimCgm({ address: ADDRESS });
    const bluez = await bluezWith([cgm]);
    const sink = recordingSink();
    const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      await cgm.measure({ mgPerDl: 120 });
      const corrupt = cgm.encode({ mgPerDl: 121, timeOffset: 5 });
      corrupt[2] = (corrupt[2] as number) ^ 0x01; // one flipped bit in the glucose value
      await cgm.sendRaw(0x2aa7, corrupt);
      await waitFor(() => sink.quarantined.length === 1, 'the corrupted record in quarantine');
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      await cgm.measure({ mgPerDl: 125 });
      await waitFor(() => sink.readings.length === 2, 'the record after the reconnect');
      // A new sensor session two days in: time offsets restart at 0 and are new records, not duplicates.
      await cgm.measure({ mgPerDl: 130, timeOffset: 2880 });
      await cgm.measure({ mgPerDl: 131, timeOffset: 0 });
      await waitFor(() => sink.readings.length === 4, 'the first record of the new session');
    } finally {
      await driver.stop();
    }
    expect(bluez.device(ADDRESS).connects).toBe(2);
    expect(sink.quarantined[0]).toMatchObject({ sensor: 'cgm', transport: `ble:${ADDRESS}/2aa7` });
    expect(sink.quarantined[0]?.error).toMatch(/CRC/);
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [0, 120],
      [5, 125],
      [2880, 130],
      [0, 131],
    ]);
    expect(driver.sessionRestarts).toBe(1);
    expect(driver.duplicates).toBe(0);
  }, 60_000);
});
