// The runtime with a `ble-glucose-meter` source against the simulated BlueZ when the meter's record
// numbers start again below the ones stored for the sensor: the clinic replaced the meter (another
// address under the same sensor name), or the meter's memory was cleared / it was reset. The new
// records (1, 2, ...) are fetched, stored once, and a 45 mg/dL among them alerts like any live reading;
// one info alert says the numbering restarted; the new numbering survives a restart of the runtime.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../device-sdk/records.js';
import { BleGlucoseMeterDriver, DEFAULT_BLE_GLUCOSE_METER_OPTIONS } from '../../device-sdk/sensors/ble-glucose-meter.js';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';
import { meterRuntimeConfig, runRuntimeUntil, storedInLedger } from './ble-runtime-harness.js';

const OLD_METER = 'C0:FF:EE:00:00:01';
const NEW_METER = 'C0:FF:EE:00:00:02';
const RESTARTED = 'meter-numbering-restarted';
const tempDir = useTempDirs('ble-meter-restart');




/** Three records measured in the last two hours, the newest a severe low (45 mg/dL, 2 min ago). */
function addTodaysRecords(meter: SimGlucoseMeter): void {
  const now = Date.now();
  meter.addRecord({ mgPerDl: 112, timeMs: now - 120 * 60_000 });
  meter.addRecord({ mgPerDl: 96, timeMs: now - 60 * 60_000 });
  meter.addRecord({ mgPerDl: 45, timeMs: now - 2 * 60_000 });
}

describe.skipIf(!dbusDaemonAvailable())('ble-glucose-meter whose record numbers restart (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('a replaced meter (another address, same sensor name) has its records 1, 2, 3 fetched after a restart, and its severe low alerts', async () => {
    const old = new SimGlucoseMeter({ address: OLD_METER, storedRecords: 30, seed: 5 });
    const replacement = new SimGlucoseMeter({ address: NEW_METER, seed: 6 });
    addTodaysRecords(replacement);
    const bluez = await bluezWith([old, replacement]);
    const dir = tempDir();
    const dataDir = join(dir, 'device');
    await runRuntimeUntil(meterRuntimeConfig(dir, bluez.address, OLD_METER), () => storedInLedger(dataDir, 'reading').length >= 30, 'the old meter backfilled');

    // The clinic swaps the meter and edits the sensor's address; the runtime restarts.
    await runRuntimeUntil(meterRuntimeConfig(dir, bluez.address, NEW_METER), () => storedInLedger(dataDir, 'reading').length >= 33, "the new meter's records 1-3 stored");
    const readings = storedInLedger(dataDir, 'reading');
    expect(readings.slice(30).map((r) => [r.meterRecord, r.value])).toEqual([
      [1, 112],
      [2, 96],
      [3, 45],
    ]);
    expect(readings.slice(30).every((r) => r.context?.meter === NEW_METER)).toBe(true);
    const alerts = storedInLedger(dataDir, 'alert');
    expect(alerts.filter((a) => a.kind === 'hypoglycaemia-level-2' && a.sensor === 'meter')).toHaveLength(1);
    const notices = alerts.filter((a) => a.kind === RESTARTED);
    expect(notices.map((a) => [a.severity, a.sensor])).toEqual([[1, 'meter']]);
    expect(notices[0]?.message).toMatch(/^glucose meter record numbers restarted: replaced or reset; records fetched from its first one/);
    expect(replacement.stats.recordsSent).toBe(3);
  }, 60_000);

  it('a meter whose memory was cleared has its new records fetched, and the new numbering holds across a further restart', async () => {
    const meter = new SimGlucoseMeter({ address: OLD_METER, storedRecords: 30, seed: 5 });
    const bluez = await bluezWith([meter]);
    const dir = tempDir();
    const dataDir = join(dir, 'device');
    const config = meterRuntimeConfig(dir, bluez.address, OLD_METER);
    await runRuntimeUntil(config, () => storedInLedger(dataDir, 'reading').length >= 30, 'the meter backfilled');
    const before = storedInLedger(dataDir, 'reading');

    // Reset while the runtime is down: its memory is empty and its numbers start again at 1.
    meter.clearMemory();
    addTodaysRecords(meter);
    await runRuntimeUntil(config, () => storedInLedger(dataDir, 'reading').length >= 33, 'the records 1-3 after the reset stored');
    let readings = storedInLedger(dataDir, 'reading');
    expect(readings.slice(0, 30)).toEqual(before);
    expect(readings.slice(30).map((r) => [r.meterRecord, r.value])).toEqual([
      [1, 112],
      [2, 96],
      [3, 45],
    ]);
    expect(new Set(readings.slice(30).map((r) => r.context?.meterEpoch)).size).toBe(1);
    expect(readings.slice(30)[0]?.context?.meterEpoch).toBeDefined();
    let alerts = storedInLedger(dataDir, 'alert');
    expect(alerts.filter((a) => a.kind === 'hypoglycaemia-level-2')).toHaveLength(1);
    expect(alerts.filter((a) => a.kind === RESTARTED).map((a) => a.severity)).toEqual([1]);

    // Another restart with nothing new: the meter's last record (3) is the stored one, no new numbering.
    const lastAsked = meter.stats.reports.last ?? 0;
    await runRuntimeUntil(config, () => (meter.stats.reports.last ?? 0) > lastAsked, "the meter's last record compared");
    expect(storedInLedger(dataDir, 'reading')).toHaveLength(33);
    // And one more: the stored numbering is the meter's; only record 4 is asked for and stored, once.
    const sentBefore = meter.stats.recordsSent;
    meter.addRecord({ mgPerDl: 130 });
    await runRuntimeUntil(config, () => storedInLedger(dataDir, 'reading').length >= 34, 'record 4 stored');
    await new Promise((resolve) => setTimeout(resolve, 300)); // anything sent twice would be stored by now
    readings = storedInLedger(dataDir, 'reading');
    expect(readings.slice(30).map((r) => r.meterRecord)).toEqual([1, 2, 3, 4]);
    expect(meter.stats.recordsSent - sentBefore).toBe(2); // record 3, checked at connect (RACP within range 3..3), and record 4
    expect(new Set(readings.slice(30).map((r) => r.context?.meterEpoch)).size).toBe(1);
    alerts = storedInLedger(dataDir, 'alert');
    expect(alerts.filter((a) => a.kind === RESTARTED)).toHaveLength(1);
    expect(alerts.filter((a) => a.kind === 'hypoglycaemia-level-2')).toHaveLength(1); // the start-up replays did not alert it again
  }, 90_000);

  it('a meter reset while connected: the driver finds the new numbering at its next poll, hands over record 1 once, and tells it once', async () => {
    const meter = new SimGlucoseMeter({ address: OLD_METER, storedRecords: 10, seed: 7 });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, OLD_METER), pollIntervalMs: 100 }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length === 10, 'the 10 records');
      const transfers = meter.stats.transfers;
      await waitFor(() => meter.stats.transfers >= transfers + 2, 'two polls that brought nothing');
      expect(sink.notices).toEqual([]); // the same last record: no new numbering
      meter.clearMemory();
      meter.addRecord({ mgPerDl: 45 });
      await waitFor(() => sink.readings.length === 11, 'record 1 after the reset');
      const polls = meter.stats.transfers;
      await waitFor(() => meter.stats.transfers >= polls + 2, 'two more polls');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => r.meterRecord)).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), 1]);
    const last = sink.readings.at(-1) as Reading;
    expect([last.value, last.context?.meter, last.context?.meterEpoch !== undefined]).toEqual([45, OLD_METER, true]);
    expect(sink.readings.slice(0, 10).every((r) => r.context?.meterEpoch === undefined && r.context?.meter === OLD_METER)).toBe(true);
    expect(sink.notices).toEqual([{ sensor: 'meter', kind: RESTARTED, message: 'glucose meter record numbers restarted: replaced or reset; records fetched from its first one' }]);
    expect(meter.lastError).toBeUndefined();
  }, 30_000);

  it('two meters taking turns on one sensor, one of them empty: no numbering-restarted notice for the meter that was not replaced', async () => {
    // No address configured: the first meter advertising the service is used, so two meters in a clinic take
    // turns. An empty meter (no records yet) on the link, then the first meter again with a new record: nothing
    // restarted. Before: the empty meter's 'replaced' notice was kept and told with the first meter's record 11.
    const first = new SimGlucoseMeter({ address: OLD_METER, storedRecords: 10, seed: 8 });
    const empty = new SimGlucoseMeter({ address: NEW_METER, seed: 9 });
    const bluez = await bluezWith([first]);
    const sink = recordingSink();
    const { address: _address, ...anyMeter } = fastBleOptions(bluez.address, OLD_METER);
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...anyMeter, pollIntervalMs: 100 }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length === 10, "the first meter's 10 records");
      await bluez.removeDevice(OLD_METER);
      const mark = sink.states.length;
      bluez.addDevice(empty);
      // An empty meter reports 0 stored records and is not asked for them: a completed backfill on its link.
      await waitFor(() => bluez.device(NEW_METER).connects >= 1 && sink.states.slice(mark).some((s) => s.connected && /new records/.test(s.detail ?? '')), 'the empty meter backfilled');
      await bluez.removeDevice(NEW_METER);
      first.addRecord({ mgPerDl: 130 });
      bluez.addDevice(first);
      await waitFor(() => sink.readings.length === 11, "the first meter's record 11");
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.context?.meter, r.context?.meterEpoch])).toEqual(Array.from({ length: 11 }, (_, i) => [i + 1, OLD_METER, undefined]));
    expect(sink.notices).toEqual([]);
  }, 30_000);
});
