// The glucose meter driver's connect-time floor check and resumed transfers against meters that do not follow
// the profile to the letter (QA re-check, stop 19). The simulated meter's RACP selection is replaced for the
// range request to play such a meter.
import { describe, expect, it } from 'vitest';
import { BleGlucoseMeterDriver, DEFAULT_BLE_GLUCOSE_METER_OPTIONS } from '../../device-sdk/sensors/ble-glucose-meter.js';
import { SimGlucoseMeter, type SimGlucoseRecord } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';

const A = 'C0:FF:EE:00:00:01';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Priv = { select(r: unknown): SimGlucoseRecord[] };

describe.skipIf(!dbusDaemonAvailable())('BLE glucose meter: floor check and resumed transfers with non-conforming meters', () => {
  const bluezWith = useSimulatedBluez();
  const variants: [string, (m: SimGlucoseMeter, r: { filter: { from: number } }) => SimGlucoseRecord[]][] = [
    ['N..N answered as >= N (upper bound ignored)', (m, r) => m.records.filter((x) => x.sequenceNumber >= r.filter.from)],
    ['N..N answered with record N+1 only (off by one)', (m, r) => m.records.filter((x) => x.sequenceNumber === r.filter.from + 1)],
  ];
  for (const [name, answer] of variants) {
    it(`stores every record once when the meter answers the floor check (within range n..n) ${name}: 3 reconnects`, async () => {
      const meter = new SimGlucoseMeter({ address: A, storedRecords: 12, seed: 4, contextEvery: 0 });
      const p = meter as unknown as Priv;
      const sel = p.select.bind(meter);
      p.select = (r: unknown) => ((r as { operator: string }).operator === 'within-range' ? answer(meter, r as { filter: { from: number } }) : sel(r));
      const bluez = await bluezWith([meter]);
      const sink = recordingSink();
      const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, A), pollIntervalMs: 0 }, driverDeps(sink));
      driver.start(sink);
      try {
        await waitFor(() => sink.readings.length >= 12 && driver.transfers >= 1, '12');
        meter.addRecord({ mgPerDl: 150 });
        meter.addRecord({ mgPerDl: 151 });
        for (let link = 2; link <= 4; link++) {
          await meter.dropLink();
          await waitFor(() => driver.transfers >= link, `transfer on link ${link}`);
        }
        await sleep(300);
      } finally {
        await driver.stop();
      }
      expect(sink.readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    }, 40_000);
  }
  it('a meter that sends records out of order, cut mid-transfer after 1, 2, 4: record 3 is fetched on the next link (it was never asked for again)', async () => {
    const meter = new SimGlucoseMeter({ address: A, storedRecords: 20, seed: 7, contextEvery: 0, faults: { reorderEvery: 3, disconnectAfterRecords: [3] } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, A), pollIntervalMs: 0 }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => driver.transfers >= 1, 'a transfer completed');
      await sleep(300);
    } finally {
      await driver.stop();
    }
    const got = sink.readings.map((r) => r.meterRecord as number);
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  }, 30_000);

  it('quarantines every different undecodable Current Time notification of a connection, not only the first', async () => {
    // QA re-check: after the first, later undecodable notifications with other bytes were dropped silently.
    const meter = new SimGlucoseMeter({ address: A, storedRecords: 5 });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, A), pollIntervalMs: 60_000 }, driverDeps(sink));
    driver.start(sink);
    const notify = (meter as unknown as { notify(uuid: number, bytes: Uint8Array): Promise<boolean> }).notify.bind(meter);
    const bad = [Uint8Array.of(1, 2), Uint8Array.of(0xea, 0x07, 2), Uint8Array.of(1, 2), Uint8Array.of(0xea, 0x07, 2, 30, 10)];
    try {
      await waitFor(() => sink.readings.length >= 5, 'the 5 records');
      for (const bytes of bad) await notify(0x2a2b, bytes);
      await waitFor(() => sink.quarantined.filter((q) => q.transport.endsWith('/2a2b')).length >= 3, 'three quarantined Current Time values');
      await sleep(200);
    } finally {
      await driver.stop();
    }
    const kept = sink.quarantined.filter((q) => q.transport.endsWith('/2a2b')).map((q) => [...q.bytes].join(','));
    // The repeat of the value just before it ([1, 2] again) is the same value re-read: kept once in a row.
    expect(kept).toEqual(['1,2', '234,7,2', '1,2', '234,7,2,30,10']);
  }, 30_000);
});
