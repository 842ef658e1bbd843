// Who a CGM is, through the runtime and the simulated BlueZ: its Device Information serial number (else the sensor's CGM),
// then its sensor session start and time offsets. A CGM replaced under the same sensor name whose session start and
// time offsets collide with the old one's (a start the factory wrote, the same address) is another CGM: its records
// are stored, not dropped as repeats of the old one's, and each names its serial (context, FHIR identifier).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BleCgmDriver, DEFAULT_BLE_CGM_OPTIONS } from '../../device-sdk/sensors/ble-cgm.js';
import { readingObservation } from '../../edge/fhir/mapping.js';
import { SimCgm } from '../../simulator/bluez/index.js';
import { simDeviceInformationService } from '../../simulator/bluez/peripheral.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';
import { cgmDeviceInformation, cgmRuntimeConfig, runRuntimeUntil, storedInLedger } from './ble-runtime-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:02';
const OTHER_ADDRESS = 'D4:2A:19:7E:00:07';
const tempDir = useTempDirs('ble-cgm-identity');

/** A started `ble-cgm` driver finding its CGM by service (no address), and its sink. */
function startedDriver(dbusAddress: string) {
  const sink = recordingSink();
  const { address: _address, ...byService } = fastBleOptions(dbusAddress, ADDRESS);
  const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS, ...byService }, driverDeps(sink));
  driver.start(sink);
  return { sink, driver };
}

describe.skipIf(!dbusDaemonAvailable())('ble-cgm identity through the runtime (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('a CGM replaced at the same address with the same session start: its records at offsets already seen are stored, each naming its serial', async () => {
    // Both report the session start the factory wrote (the simulator's default): only the serial tells them apart.
    const first = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001') });
    const second = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-B-0002') });
    expect(second.encodeSessionStartTime()).toEqual(first.encodeSessionStartTime());
    const bluez = await bluezWith([first]);
    const dir = tempDir();
    const dataDir = join(dir, 'device');
    const stored = () => storedInLedger(dataDir, 'reading');
    let swapped = false;
    const script = (async () => {
      await waitFor(() => first.isNotifying(0x2aa7), 'the first CGM subscribed', 15_000);
      for (const v of [120, 125, 130, 135]) await first.measure({ mgPerDl: v });
      await waitFor(() => stored().length >= 4, "the first CGM's 4 records stored", 15_000);
      // The transmitter is replaced: the old one is gone, the new one answers at the same address.
      await bluez.removeDevice(ADDRESS);
      bluez.addDevice(second);
      swapped = true;
      await waitFor(() => second.isNotifying(0x2aa7), 'the second CGM subscribed', 15_000);
      for (const v of [90, 85]) await second.measure({ mgPerDl: v });
    })();
    script.catch(() => undefined);
    await runRuntimeUntil(cgmRuntimeConfig(dir, bluez.address), () => swapped && stored().length >= 6, "the second CGM's records stored");
    await script;
    const readings = stored();
    expect(readings.map((r) => [r.meterRecord, r.value, r.context?.meterSerial])).toEqual([
      [0, 120, 'CGM-A-0001'],
      [5, 125, 'CGM-A-0001'],
      [10, 130, 'CGM-A-0001'],
      [15, 135, 'CGM-A-0001'],
      [0, 90, 'CGM-B-0002'],
      [5, 85, 'CGM-B-0002'],
    ]);
    expect(new Set(readings.map((r) => r.context?.sessionStart)).size).toBe(1);
    expect(readings.every((r) => r.context?.meter === ADDRESS)).toBe(true);
    // The FHIR meter-sequence identifier names the CGM: record 0 of each is another record.
    const ids = readings.map(
      (r, seq) => (readingObservation({ deviceId: 'ble-clinic-1', site: 's', bootId: 'b', seq, tMs: r.tDevice, body: r })?.identifier as { system: string; value: string }[]).find((i) => i.system.endsWith('/meter-sequence'))?.value,
    );
    const start = readings[0]?.context?.sessionStart as string;
    expect(ids[0]).toBe(`ble-clinic-1/cgm/sn:CGM-A-0001/${start}/0`);
    expect(ids[4]).toBe(`ble-clinic-1/cgm/sn:CGM-B-0002/${start}/0`);
    expect(new Set(ids).size).toBe(6);
  }, 60_000);

  it('the same serial at another address (a new random address) is the same CGM: records it sends again are repeats; so is a CGM without a serial at a new address', async () => {
    const info = cgmDeviceInformation('CGM-A-0001');
    const before = new SimCgm({ address: ADDRESS, deviceInformation: info });
    const after = new SimCgm({ address: OTHER_ADDRESS, deviceInformation: info });
    const bluez = await bluezWith([before]);
    const { sink, driver } = startedDriver(bluez.address);
    try {
      await waitFor(() => before.isNotifying(0x2aa7), 'the CGM subscribed');
      for (const v of [120, 125, 130]) await before.measure({ mgPerDl: v });
      await waitFor(() => sink.readings.length === 3, '3 records');
      await bluez.removeDevice(ADDRESS);
      bluez.addDevice(after);
      await waitFor(() => after.isNotifying(0x2aa7), 'the CGM subscribed at its new address');
      // It sends records 0-10 again after the reconnect (a run of `CGM_RESEND_RUN`, 3, repeats), then a new one.
      for (const [i, v] of [120, 125, 130].entries()) await after.measure({ mgPerDl: v, timeOffset: 5 * i });
      await after.measure({ mgPerDl: 136, timeOffset: 15 });
      await waitFor(() => sink.readings.length === 4 && driver.duplicateRecords === 3, 'the new record, and the three again as repeats');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.context?.meter, r.context?.meterSerial])).toEqual([
      [0, ADDRESS, 'CGM-A-0001'],
      [5, ADDRESS, 'CGM-A-0001'],
      [10, ADDRESS, 'CGM-A-0001'],
      [15, OTHER_ADDRESS, 'CGM-A-0001'],
    ]);
    expect(driver.deviceChanges).toBe(0);

    // A CGM without the Device Information Service and a new random address at each connection: no identity from
    // the address (QA: its resent records were stored again under each address), and its record ids stay as before.
    const plain = new SimCgm({ address: ADDRESS, deviceInformation: false });
    const moved = new SimCgm({ address: OTHER_ADDRESS, deviceInformation: false });
    const bluez2 = await bluezWith([plain]);
    const { sink: sink2, driver: driver2 } = startedDriver(bluez2.address);
    try {
      await waitFor(() => plain.isNotifying(0x2aa7), 'the CGM without DIS subscribed');
      for (const v of [101, 102, 103]) await plain.measure({ mgPerDl: v });
      await waitFor(() => sink2.readings.length === 3, 'its records');
      await bluez2.removeDevice(ADDRESS);
      bluez2.addDevice(moved);
      await waitFor(() => moved.isNotifying(0x2aa7), 'the CGM subscribed at its new address');
      for (const [i, v] of [101, 102, 103].entries()) await moved.measure({ mgPerDl: v, timeOffset: 5 * i });
      await moved.measure({ mgPerDl: 104, timeOffset: 15 });
      await waitFor(() => sink2.readings.length === 4 && driver2.duplicateRecords === 3, 'the new record, and the three again as repeats');
    } finally {
      await driver2.stop();
    }
    expect(sink2.readings.map((r) => [r.meterRecord, r.context?.meter, r.context?.meterSerial])).toEqual([
      [0, undefined, undefined],
      [5, undefined, undefined],
      [10, undefined, undefined],
      [15, undefined, undefined],
    ]);
    expect(driver2.deviceChanges).toBe(0);
  }, 60_000);

  it('a serial read refused at one connection (or only readable from the second) is the same CGM: records it sends again are repeats', async () => {
    const info = cgmDeviceInformation('CGM-A-0001');
    for (const refusedAt of [1, 0]) {
      let refuse = refusedAt === 0;
      const cgm = new SimCgm({ address: ADDRESS, deviceInformation: info });
      Object.defineProperty(cgm, 'services', { value: cgm.services.map((s) => (s.uuid === 0x180a ? simDeviceInformationService(info, () => refuse) : s)) });
      const bluez = await bluezWith([cgm]);
      const { sink, driver } = startedDriver(bluez.address);
      const reconnect = async () => {
        const before = bluez.device(ADDRESS).connects;
        await cgm.dropLink();
        await waitFor(() => bluez.device(ADDRESS).connects > before && cgm.isNotifying(0x2aa7), 'the CGM subscribed again');
      };
      try {
        await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscribed');
        for (const v of [120, 125, 130]) await cgm.measure({ mgPerDl: v });
        await waitFor(() => sink.readings.length === 3, '3 records');
        refuse = refusedAt === 1; // QA: the read refused once, then answered again
        await reconnect();
        for (const [i, v] of [120, 125, 130].entries()) await cgm.measure({ mgPerDl: v, timeOffset: 5 * i });
        await waitFor(() => driver.duplicateRecords === 3, 'three sent again as repeats');
        refuse = false;
        await reconnect();
        for (const [i, v] of [120, 125, 130].entries()) await cgm.measure({ mgPerDl: v, timeOffset: 5 * i });
        await cgm.measure({ mgPerDl: 136, timeOffset: 15 });
        await waitFor(() => sink.readings.length === 4 && driver.duplicateRecords === 6, 'the new record, and three sent again as repeats');
      } finally {
        await driver.stop();
      }
      // Before (QA): offsets 5 and 10 stored again under the address, then under the serial.
      expect(sink.readings.map((r) => r.meterRecord), `serial refused at connect ${refusedAt}`).toEqual([0, 5, 10, 15]);
      expect(driver.deviceChanges).toBe(0);
      expect(sink.readings[3]?.context?.meterSerial).toBe('CGM-A-0001');
    }
  }, 90_000);
});
