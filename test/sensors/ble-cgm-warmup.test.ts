/**
 * QA re-check F3 (before: the whole session stored again): a session whose first 2 hours have no glucose value
 * (warm-up: quarantined, so not in the ledger a restart recalls), resent from offset 0 after a restart. With the session
 * start read (0x2AAA) the offsets not held are a gap, not a new sensor; without it a record without a value tells
 * nothing (the day rule waits for a valued one); the valued records are repeats.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimCgm } from '../../simulator/bluez/index.js';
import type { SimulatedBluez } from '../../simulator/bluez/bluez.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { cgmDeviceInformation, cgmRuntimeConfig, storedInLedger, withRuntime } from './ble-runtime-harness.js';
const ADDRESS = 'C0:FF:EE:00:00:02';
const tempDir = useTempDirs('ble-cgm-warmup');
async function run(dir: string, bluez: SimulatedBluez, cgm: SimCgm, records: { mgPerDl: number; timeOffset: number }[], expectCount: number) {
  const dataDir = join(dir, 'device');
  const before = bluez.device(cgm.address).connects;
  await withRuntime(cgmRuntimeConfig(dir, bluez.address), async () => {
    await waitFor(() => bluez.device(cgm.address).connects > before && cgm.isNotifying(0x2aa7), 'sub', 15_000);
    expect(await cgm.sendRecords(records)).toBe(records.length);
    await waitFor(() => storedInLedger(dataDir, 'reading').length >= expectCount, 'stored', 15_000, 250);
  });
  return storedInLedger(dataDir, 'reading');
}
describe.skipIf(!dbusDaemonAvailable())('ble-cgm: a session starting with warm-up records, resent after a restart (needs dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();
  it.each([true, false])('each valued record is stored once (QA F3: 552 stored twice before), 0x2AAA offered: %s', async (sessionStartTime) => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001'), sessionStartTime });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    // 2 days at 5 min; the first 2 hours (0..115) without a glucose value (NaN)
    const session = Array.from({ length: 576 }, (_, i) => ({ mgPerDl: i < 24 ? Number.NaN : 70 + ((i * 37) % 250), timeOffset: 5 * i }));
    const first = await run(dir, bluez, cgm, session, 552);
    // A new record after the resend: stored once every record before it was judged (records are handled in order).
    const second = await run(dir, bluez, cgm, [...session, { mgPerDl: 150, timeOffset: 2880 }], 553);
    const counts = new Map<number, number>();
    for (const r of second) counts.set(r.meterRecord as number, (counts.get(r.meterRecord as number) ?? 0) + 1);
    expect(first).toHaveLength(552);
    expect(second).toHaveLength(553);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
  }, 120_000);
});
