// Glucose meter numbering checks (QA re-check of the record identity change, stop 20), through the runtime (its SQLite
// ledger) and the simulated BlueZ on a private D-Bus. Losing a reading is worse than storing it twice:
// - a cleared meter without a date on its records has every new record stored, also those equal to an old one;
// - a meter whose clock does not run (every record at one time) found reset, its new records stored;
// - a meter that deleted its newest record is asked for records of its present numbering only, and a lost link or a
//   busy meter during that request is no reset;
// - a meter without any dated record that deleted its newest record: no notice nor refetch at any connect.
// - a cleared meter whose clock stops at its factory default: its new record 1 stored though an old one had that time;
// - a cleared undated meter refilled past the stored floor: found reset by content, every new record stored.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RuntimeConfig } from '../../firmware/config.js';
import { SimGlucoseMeter, type SimGlucoseRecord } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { meterRuntimeConfig, storedInLedger, withRuntime } from './ble-runtime-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:01';
const RESTARTED = 'meter-numbering-restarted';
const H = 3600_000;
const tempDir = useTempDirs('ble-meter-compare');

/** Waits until the meter has answered nothing more for 500 ms (a connect's checks and transfer done). */
async function meterSettled(meter: SimGlucoseMeter): Promise<void> {
  const mark = () => JSON.stringify([meter.stats.reports, meter.stats.recordsSent]);
  let last = mark();
  let since = Date.now();
  await waitFor(() => {
    const now = mark();
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since >= 500;
  }, 'the meter idle');
}


function notices(dataDir: string): number {
  return storedInLedger(dataDir, 'alert').filter((a) => a.kind === RESTARTED).length;
}

describe.skipIf(!dbusDaemonAvailable())('ble-glucose-meter numbering checks (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  async function stored(meter: SimGlucoseMeter, count: number) {
    const bluez = await bluezWith([meter]);
    const dir = tempDir();
    const dataDir = join(dir, 'device');
    const config = meterRuntimeConfig(dir, bluez.address, ADDRESS);
    await withRuntime(config, () => waitFor(() => storedInLedger(dataDir, 'reading').length >= count && meter.stats.completed >= 1, `${count} stored`));
    return { bluez, dataDir, config };
  }

  /** Runs the runtime over `connects` connects of the meter, dropping the link between them. */
  async function connects(bluez: Awaited<ReturnType<typeof bluezWith>>, meter: SimGlucoseMeter, config: RuntimeConfig, count: number): Promise<void> {
    await withRuntime(config, async () => {
      for (let c = 0; c < count; c++) {
        const before = bluez.device(ADDRESS).connects;
        await waitFor(() => bluez.device(ADDRESS).connects > before, `connect ${c + 1}`);
        await meterSettled(meter);
        if (c < count - 1) await meter.dropLink();
      }
    });
  }

  it('a cleared meter without dates: its new records 110, 97, 130 all stored, also those equal to the old records 1 and 3 (before: 1 of 3)', async () => {
    const records: SimGlucoseRecord[] = [110, 95, 130, 142, 118].map((v, i) => ({ sequenceNumber: i + 1, timeMs: Date.UTC(2026, 0, 1) + i * H, mgPerDl: v, undated: true }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const { bluez, dataDir, config } = await stored(meter, 5);
    meter.clearMemory();
    for (const v of [110, 97, 130]) meter.addRecord({ mgPerDl: v, undated: true });
    await connects(bluez, meter, config, 1);
    const fresh = storedInLedger(dataDir, 'reading').filter((r) => r.context?.meterEpoch !== undefined);
    expect(fresh.map((r) => [r.meterRecord, r.value])).toEqual([[1, 110], [2, 97], [3, 130]]);
    expect(notices(dataDir)).toBe(1);
  }, 60_000);

  it('a cleared meter whose clock does not run (every record at 2000-01-01 00:00): one notice and its 3 new records stored (before: no notice, none stored)', async () => {
    const FROZEN = Date.UTC(2000, 0, 1);
    const records: SimGlucoseRecord[] = Array.from({ length: 10 }, (_, i) => ({ sequenceNumber: i + 1, timeMs: FROZEN, mgPerDl: 100 + i * 7 }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const { bluez, dataDir, config } = await stored(meter, 10);
    meter.clearMemory();
    for (const v of [181, 64, 243]) meter.addRecord({ mgPerDl: v, timeMs: FROZEN });
    await connects(bluez, meter, config, 1);
    const values = storedInLedger(dataDir, 'reading').map((r) => r.value);
    expect(values).toEqual([...records.map((r) => r.mgPerDl), 181, 64, 243]);
    expect(notices(dataDir)).toBe(1);
  }, 60_000);

  it('a meter reset once whose undated newest record was deleted: the dated record asked for is of its present numbering; 3 connects without notice or refetch (before: a notice and 19 to 21 records sent per connect)', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 30, seed: 5 });
    const { bluez, dataDir, config } = await stored(meter, 30);
    meter.clearMemory();
    const t0 = Date.UTC(2026, 2, 1, 8);
    for (let i = 1; i <= 20; i++) meter.addRecord({ mgPerDl: 90 + i * 3, timeMs: t0 + i * 5 * H, undated: i > 10 });
    await withRuntime(config, async () => {
      await waitFor(() => storedInLedger(dataDir, 'reading').length >= 50, 'the new numbering stored');
      await meterSettled(meter);
    });
    expect(notices(dataDir)).toBe(1);
    meter.deleteRecords(20);
    const sent = meter.stats.recordsSent;
    await connects(bluez, meter, config, 3);
    expect({ stored: storedInLedger(dataDir, 'reading').length, notices: notices(dataDir) }).toEqual({ stored: 50, notices: 1 });
    expect(meter.stats.recordsSent - sent).toBeLessThanOrEqual(12);
  }, 90_000);

  it('a meter without any dated record that deleted its newest one: its records compared by content, 3 connects without notice or refetch (before: a notice and 9 records sent at each)', async () => {
    const records = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 10, seed: 24 }).records.map((r) => ({ ...r, undated: true }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const { bluez, dataDir, config } = await stored(meter, 10);
    meter.deleteRecords(10);
    const sent = meter.stats.recordsSent;
    await connects(bluez, meter, config, 3);
    expect({ stored: storedInLedger(dataDir, 'reading').length, notices: notices(dataDir), all: meter.stats.reports.all }).toEqual({ stored: 10, notices: 0, all: 1 });
    // The connect-time check compares the undated record it asks for and the 4 below it by content (a refilled cleared
    // meter: below); 18 sent over 3 connects (before that comparison: 10; before the content comparison: 27).
    expect(meter.stats.recordsSent - sent).toBeLessThanOrEqual(20);
  }, 60_000);

  for (const fault of ['link lost', 'busy'] as const) {
    it(`a meter that deleted its newest record, ${fault} during the request for the dated record below its undated last one: no reset (before: a notice and every record sent again)`, async () => {
      const records = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 10, seed: 22 }).records.map((r) => ([2, 5, 9].includes(r.sequenceNumber) ? { ...r, undated: true } : r));
      const meter = new SimGlucoseMeter({ address: ADDRESS, records });
      const { bluez, dataDir, config } = await stored(meter, 10);
      meter.deleteRecords(10);
      // The first "within range 8..8" (01 04 01 08 00 08 00): the meter drops the link, or a procedure of its own still runs.
      const sim = meter as unknown as { onRacpWrite: (b: Uint8Array) => void; staleUntil: number };
      const write = sim.onRacpWrite.bind(meter);
      let hit = 0;
      sim.onRacpWrite = (b: Uint8Array) => {
        if (hit === 0 && b[0] === 1 && b[1] === 4 && b[3] === 8 && b[5] === 8) {
          hit++;
          if (fault === 'link lost') {
            void meter.dropLink();
            return;
          }
          sim.staleUntil = Date.now() + 300;
        }
        write(b);
      };
      const sent = meter.stats.recordsSent;
      await withRuntime(config, async () => {
        await waitFor(() => hit === 1 && bluez.device(ADDRESS).connects >= (fault === 'link lost' ? 3 : 2), 'the fault and a connect after it');
        await meterSettled(meter);
      });
      expect({ stored: storedInLedger(dataDir, 'reading').length, notices: notices(dataDir), all: meter.stats.reports.all }).toEqual({ stored: 10, notices: 0, all: 1 });
      expect(meter.stats.recordsSent - sent).toBeLessThanOrEqual(6);
    }, 60_000);
  }

  it('a cleared meter whose clock stops at its factory default: the new record 1 at that time stored (QA round 2, before: 181 lost, 2 of 3 stored)', async () => {
    const FROZEN = Date.UTC(2000, 0, 1);
    const t0 = Date.UTC(2026, 0, 1, 8);
    const records: SimGlucoseRecord[] = Array.from({ length: 10 }, (_, i) => ({ sequenceNumber: i + 1, timeMs: i === 0 ? FROZEN : t0 + i * H, mgPerDl: 100 + i * 7 }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const { bluez, dataDir, config } = await stored(meter, 10);
    meter.clearMemory();
    meter.addRecord({ mgPerDl: 181, timeMs: FROZEN });
    meter.addRecord({ mgPerDl: 64, timeMs: t0 + 720 * H });
    meter.addRecord({ mgPerDl: 243, timeMs: t0 + 721 * H });
    await connects(bluez, meter, config, 2);
    const values = storedInLedger(dataDir, 'reading').map((r) => r.value);
    expect({ stored: values.length, notices: notices(dataDir), fresh: [181, 64, 243].filter((v) => values.includes(v)) }).toEqual({ stored: 13, notices: 1, fresh: [181, 64, 243] });
  }, 60_000);

  it('a cleared undated meter back with more records than were stored: found reset by content at connect, all new records stored (QA round 2, before: 201-205 lost, 206 stored as record 6 of the old numbering)', async () => {
    const records: SimGlucoseRecord[] = [110, 95, 130, 142, 118].map((v, i) => ({ sequenceNumber: i + 1, timeMs: Date.UTC(2026, 0, 1) + i * H, mgPerDl: v, undated: true }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const { bluez, dataDir, config } = await stored(meter, 5);
    meter.clearMemory();
    const fresh = [201, 202, 203, 204, 205, 206];
    for (const v of fresh) meter.addRecord({ mgPerDl: v, undated: true });
    await connects(bluez, meter, config, 2);
    const readings = storedInLedger(dataDir, 'reading');
    expect({ stored: readings.length, notices: notices(dataDir), fresh: fresh.filter((v) => readings.some((r) => r.value === v && r.context?.meterEpoch !== undefined)) }).toEqual({ stored: 11, notices: 1, fresh });
  }, 60_000);
});
