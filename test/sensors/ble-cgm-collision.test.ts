/**
 * QA re-check F2 (before: the new sensor's offset 0 dropped): a new sensor (no 0x2AAA, no serial) whose first record
 * repeats the old session's value at offset 0. One match is never a repeat (`CGM_RESEND_RUN`): held back, then handed
 * over when the next record differs. Its session resent from 0 afterwards: repeats, its offset 0 included.
 */
import { describe, expect, it } from 'vitest';
import { BleCgmDriver, DEFAULT_BLE_CGM_OPTIONS } from '../../device-sdk/sensors/ble-cgm.js';
import { SimCgm } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';
const ADDRESS = 'C0:FF:EE:00:00:02';
describe.skipIf(!dbusDaemonAvailable())('ble-cgm: a new sensor whose first value repeats the old one (needs dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();
  it('new sensor (no 0x2AAA) whose first record repeats the old session value at offset 0', async () => {
    const cgm = new SimCgm({ address: ADDRESS, sessionStartTime: false });
    const bluez = await bluezWith([cgm]);
    const sink = recordingSink();
    const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    driver.start(sink);
    const old = Array.from({ length: 400 }, (_, i) => ({ mgPerDl: 80 + ((i * 7) % 150), timeOffset: 5 * i }));
    // new sensor: 400 records, the first one 80 mg/dL like the old session's at offset 0
    const fresh = Array.from({ length: 400 }, (_, i) => ({ mgPerDl: i === 0 ? 80 : 240 - ((i * 3) % 120), timeOffset: 5 * i }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'sub');
      expect(await cgm.sendRecords(old)).toBe(400);
      await waitFor(() => sink.readings.length === 400, 'old 400');
      await cgm.dropLink();
      cgm.replaceSensor();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'resub');
      expect(await cgm.sendRecords(fresh)).toBe(400);
      await waitFor(() => sink.readings.length === 800, 'the new sensor\'s 400');
      const afterNew = sink.readings.length;
      const newOffset0Stored = sink.readings.slice(400).some((r) => r.meterRecord === 0);
      // the CGM reconnects and resends the new sensor's session from the start
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'resub2');
      expect(await cgm.sendRecords(fresh)).toBe(400);
      await waitFor(() => driver.duplicateRecords === 400, 'the resend counted as 400 repeats');
      expect(afterNew).toBe(800);
      expect(newOffset0Stored).toBe(true);
      expect(sink.readings.slice(400).map((r) => [r.meterRecord, r.value])).toEqual(fresh.map((r) => [r.timeOffset, r.mgPerDl]));
      expect(driver.sessionRestarts).toBe(1);
    } finally {
      await driver.stop();
    }
  }, 60_000);
});
