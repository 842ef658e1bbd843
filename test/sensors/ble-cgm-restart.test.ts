// A CGM resends its backlog when it reconnects, and the runtime restarts on power loss: the runtime with a real SQLite
// ledger and a `ble-cgm` source, stopped and started again on the same data directory, while the simulated CGM (over
// the simulated BlueZ) resends the records it sent before. Each record is stored once: the driver remembers the records
// stored before the restart (`DriverDeps.storedCgmRecords`). A new sensor session, or another CGM reporting the same
// session start and time offsets, is stored, not dropped.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../device-sdk/records.js';
import { ledgerPath } from '../../firmware/runtime.js';
import { SimCgm } from '../../simulator/bluez/index.js';
import type { SimulatedBluez } from '../../simulator/bluez/bluez.js';
import { simDeviceInformationService } from '../../simulator/bluez/peripheral.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { cgmDeviceInformation, cgmRuntimeConfig, storedInLedger, withRuntime } from './ble-runtime-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:02';
const OTHER_ADDRESS = 'D4:2A:19:7E:00:07';
const tempDir = useTempDirs('ble-cgm-restart');

/** Offset, value and serial of each stored reading, in order. */
const summary = (readings: readonly Reading[]) => readings.map((r) => [r.meterRecord, r.value, r.context?.meterSerial]);

/**
 * Runs a runtime on `dir` until `cgm` has connected to it and sent `records` (time offset, mg/dL) in order, one a
 * notification or, as a `backlog`, 8 to a notification, and the record sent last is stored once more (records are
 * handled in order: each sent before it was judged before it); returns the readings stored in the ledger after the
 * runtime stopped.
 */
async function runSending(dir: string, bluez: SimulatedBluez, cgm: SimCgm, records: readonly [number, number][], send: 'each' | 'backlog' = 'each'): Promise<Reading[]> {
  const dataDir = join(dir, 'device');
  const connectsBefore = bluez.device(cgm.address).connects;
  const [lastOffset, lastValue] = records.at(-1) as [number, number];
  const isLast = (r: Reading) => r.meterRecord === lastOffset && r.value === lastValue && r.context?.sessionStart === sessionStartOf(cgm);
  // Another CGM may have sent the same record before the restart: one more than before.
  const before = existsSync(ledgerPath(dataDir)) ? storedInLedger(dataDir, 'reading').filter(isLast).length : 0;
  const lastStored = () => storedInLedger(dataDir, 'reading').filter(isLast).length > before;
  await withRuntime(cgmRuntimeConfig(dir, bluez.address), async () => {
    await waitFor(() => bluez.device(cgm.address).connects > connectsBefore && cgm.isNotifying(0x2aa7), 'the CGM subscribed', 15_000);
    if (send === 'backlog') expect(await cgm.sendRecords(records.map(([timeOffset, mgPerDl]) => ({ mgPerDl, timeOffset })))).toBe(records.length);
    else for (const [timeOffset, mgPerDl] of records) expect(await cgm.measure({ mgPerDl, timeOffset })).toBe(timeOffset);
    // Each look opens the whole ledger: less often when it holds thousands.
    await waitFor(lastStored, `the record at offset ${lastOffset} stored`, 30_000, send === 'backlog' ? 500 : 25);
  });
  return storedInLedger(dataDir, 'reading');
}

/** The session start a stored reading of `cgm`'s current session names (as the driver writes it), or undefined without 0x2AAA. */
function sessionStartOf(cgm: SimCgm): string | undefined {
  if (!cgm.services.some((s) => s.characteristics.some((c) => c.uuid === 0x2aaa))) return undefined;
  // Zone +01:00 (the simulator's default: 4 quarter hours, no DST).
  return `${new Date(cgm.sessionStartMs + 3600_000).toISOString().slice(0, 19)}+01:00`;
}

const FIRST: [number, number][] = [
  [0, 120],
  [5, 125],
  [10, 130],
  [15, 135],
  [20, 140],
  [25, 145],
];
const NEXT: [number, number][] = [
  [30, 150],
  [35, 155],
];

describe.skipIf(!dbusDaemonAvailable())('ble-cgm across a runtime restart (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('the same CGM (with a serial) resending its records after a restart: each is stored once', async () => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001') });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    expect(summary(await runSending(dir, bluez, cgm, FIRST))).toHaveLength(6);
    // Power loss; at the reconnect the CGM resends its backlog, then measures on.
    const readings = await runSending(dir, bluez, cgm, [...FIRST, ...NEXT]);
    // Before the fix: 14 stored of 14 sent (0-25 twice).
    expect(summary(readings)).toEqual([...FIRST, ...NEXT].map(([o, v]) => [o, v, 'CGM-A-0001']));
  }, 60_000);

  it('the same CGM resending a whole 14-day session at 5-minute intervals (4,032 records) after a restart: each is stored once', async () => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001') });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    // Offsets 0-20,155 min; glucose 70-319 mg/dL.
    const session = Array.from({ length: 4032 }, (_, i): [number, number] => [5 * i, 70 + ((i * 37) % 250)]);
    const later: [number, number][] = [
      [20_160, 150],
      [20_165, 155],
    ];
    expect(await runSending(dir, bluez, cgm, session, 'backlog')).toHaveLength(4032);
    // Power loss; at the reconnect the CGM resends its whole session, then measures on.
    const readings = await runSending(dir, bluez, cgm, [...session, ...later], 'backlog');
    const stored = new Map<number, number>();
    for (const r of readings) stored.set(r.meterRecord as number, (stored.get(r.meterRecord as number) ?? 0) + 1);
    // Before (the newest 2,048 records remembered, and the resend from offset 0 taken for a new sensor by the day rule):
    // all 4,032 stored twice.
    expect([...stored.values()].filter((n) => n > 1)).toHaveLength(0);
    expect(summary(readings)).toEqual([...session, ...later].map(([o, v]) => [o, v, 'CGM-A-0001']));
  }, 120_000);

  it('a CGM without Device Information (no serial) resending its records after a restart: each is stored once', async () => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: false });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    await runSending(dir, bluez, cgm, FIRST);
    const readings = await runSending(dir, bluez, cgm, [...FIRST, ...NEXT]);
    expect(summary(readings)).toEqual([...FIRST, ...NEXT].map(([o, v]) => [o, v, undefined]));
    expect(new Set(readings.map((r) => r.context?.sessionStart))).toEqual(new Set([sessionStartOf(cgm)]));
  }, 60_000);

  it('a serial read refused at the first connection after a restart: the CGM stored before it, its resent records stored once', async () => {
    const info = cgmDeviceInformation('CGM-A-0001');
    let refuse = false;
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: info });
    Object.defineProperty(cgm, 'services', { value: cgm.services.map((s) => (s.uuid === 0x180a ? simDeviceInformationService(info, () => refuse) : s)) });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    await runSending(dir, bluez, cgm, FIRST);
    refuse = true;
    const readings = await runSending(dir, bluez, cgm, [...FIRST, ...NEXT]);
    expect(summary(readings)).toEqual([...FIRST, ...NEXT].map(([o, v]) => [o, v, 'CGM-A-0001']));
  }, 60_000);

  it('a new sensor session after a restart (time offsets from 0 again) is stored, with and without a session start to tell it', async () => {
    const cgm = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001') });
    const bluez = await bluezWith([cgm]);
    const dir = tempDir();
    await runSending(dir, bluez, cgm, FIRST);
    const oldStart = sessionStartOf(cgm);
    cgm.replaceSensor();
    const readings = await runSending(dir, bluez, cgm, FIRST.slice(0, 3));
    expect(readings.map((r) => [r.meterRecord, r.context?.sessionStart])).toEqual([...FIRST.map(([o]) => [o, oldStart]), ...FIRST.slice(0, 3).map(([o]) => [o, sessionStartOf(cgm)])]);
    expect(oldStart).not.toBe(sessionStartOf(cgm));

    // Without Session Start Time 0x2AAA a new session shows only by its time offsets dropping more than a day below
    // the highest (as without a restart): the highest stored before the restart counts.
    const plain = new SimCgm({ address: OTHER_ADDRESS, deviceInformation: false, sessionStartTime: false });
    const bluez2 = await bluezWith([plain]);
    const dir2 = tempDir();
    const dayOne: [number, number][] = [
      [2000, 110],
      [2005, 112],
      [2010, 114],
    ];
    await runSending(dir2, bluez2, plain, dayOne);
    plain.replaceSensor();
    const plainReadings = await runSending(dir2, bluez2, plain, [...dayOne, ...FIRST.slice(0, 2)]);
    // The resent backlog first (3 in a row: repeats), then the new sensor's 0 and 5: stored.
    expect(summary(plainReadings)).toEqual([...dayOne, ...FIRST.slice(0, 2)].map(([o, v]) => [o, v, undefined]));
  }, 90_000);

  it('another CGM (another serial) with the same session start and time offsets after a restart: its records are stored', async () => {
    const first = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('CGM-A-0001') });
    const second = new SimCgm({ address: OTHER_ADDRESS, deviceInformation: cgmDeviceInformation('CGM-B-0002') });
    expect(second.encodeSessionStartTime()).toEqual(first.encodeSessionStartTime());
    const bluez = await bluezWith([first]);
    const dir = tempDir();
    await runSending(dir, bluez, first, FIRST);
    // The transmitter is replaced while the runtime is down.
    await bluez.removeDevice(ADDRESS);
    bluez.addDevice(second);
    const readings = await runSending(dir, bluez, second, FIRST);
    expect(summary(readings)).toEqual([...FIRST.map(([o, v]) => [o, v, 'CGM-A-0001']), ...FIRST.map(([o, v]) => [o, v, 'CGM-B-0002'])]);
  }, 60_000);

  it('a CGM with a serial replacing one that answered a placeholder, across a restart: another CGM, its records stored', async () => {
    const first = new SimCgm({ address: ADDRESS, deviceInformation: cgmDeviceInformation('0000000000') });
    const second = new SimCgm({ address: OTHER_ADDRESS, deviceInformation: cgmDeviceInformation('CGM-B-0002') });
    expect(second.encodeSessionStartTime()).toEqual(first.encodeSessionStartTime());
    const bluez = await bluezWith([first]);
    const dir = tempDir();
    await runSending(dir, bluez, first, FIRST);
    await bluez.removeDevice(ADDRESS);
    bluez.addDevice(second);
    // QA (merge of the restart memory with the placeholder rule): 2 of B's 8 stored, 0-25 dropped as A's repeats.
    const readings = await runSending(dir, bluez, second, [...FIRST, ...NEXT]);
    expect(summary(readings)).toEqual([...FIRST.map(([o, v]) => [o, v, undefined]), ...[...FIRST, ...NEXT].map(([o, v]) => [o, v, 'CGM-B-0002'])]);
  }, 60_000);
});
