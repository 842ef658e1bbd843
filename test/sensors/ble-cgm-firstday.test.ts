/**
 * QA re-check F1 (before: 0 of 120 stored): a sensor replaced within the old one's first day while the runtime was off,
 * on a CGM without Session Start Time 0x2AAA and without a serial: the restart recalls the old session under a key that
 * cannot tell sensors apart, so the new sensor's offsets 0-595 (below the old highest, 1,195, by less than a day) are
 * held with the old values; another value at a held offset is never a repeat.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimCgm } from '../../simulator/bluez/index.js';
import type { SimulatedBluez } from '../../simulator/bluez/bluez.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { cgmRuntimeConfig, storedInLedger, withRuntime } from './ble-runtime-harness.js';
const ADDRESS = 'C0:FF:EE:00:00:02';
const tempDir = useTempDirs('ble-cgm-firstday');
async function run(dir: string, bluez: SimulatedBluez, cgm: SimCgm, records: { mgPerDl: number; timeOffset: number }[], expectCount: number) {
  const before = bluez.device(cgm.address).connects;
  await withRuntime(cgmRuntimeConfig(dir, bluez.address), async () => {
    await waitFor(() => bluez.device(cgm.address).connects > before && cgm.isNotifying(0x2aa7), 'sub', 15_000);
    expect(await cgm.sendRecords(records)).toBe(records.length);
    await waitFor(() => storedInLedger(join(dir, 'device'), 'reading').length >= expectCount, 'the records stored', 15_000, 250);
  });
  return storedInLedger(join(dir, 'device'), 'reading');
}
describe.skipIf(!dbusDaemonAvailable())('ble-cgm: a sensor replaced within its first day while the runtime was off (needs dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();
  it('no 0x2AAA, no serial: every record of the new sensor is stored (QA F1: 0 of 120 before)', async () => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: false, sessionStartTime: false });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    const old = Array.from({ length: 240 }, (_, i) => ({ mgPerDl: 100 + (i % 50), timeOffset: 5 * i })); // 0..1195: 20 h
    const first = await run(dir, bluez, cgm, old, 240);
    cgm.replaceSensor();
    const fresh = Array.from({ length: 120 }, (_, i) => ({ mgPerDl: 200 + (i % 40), timeOffset: 5 * i })); // new sensor 0..595: 10 h
    const after = await run(dir, bluez, cgm, fresh, 360);
    expect(first).toHaveLength(240);
    expect(after.slice(240).map((r) => [r.meterRecord, r.value])).toEqual(fresh.map((r) => [r.timeOffset, r.mgPerDl]));
  }, 120_000);
});
