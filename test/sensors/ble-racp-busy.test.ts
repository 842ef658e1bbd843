// A glucose meter whose RACP procedure outlives a link loss, through the runtime and the simulated BlueZ: the
// next request is refused as "procedure already in progress", by an ATT error 0x80 to the write as GLS 1.0
// specifies (BlueZ: org.bluez.Error.Failed "Operation failed with ATT error: 0x80"), or by the RACP response
// `06 00 <op> 08` (procedure not completed) as some meters answer. Either way the driver aborts the stale
// procedure and asks again, and every record is stored once.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { meterRuntimeConfig, runRuntimeUntil, storedInLedger } from './ble-runtime-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:01';
const tempDir = useTempDirs('ble-racp-busy');

describe.skipIf(!dbusDaemonAvailable())('ble-glucose-meter and a RACP procedure still running after a link loss (needs dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  for (const answer of ['att-error', 'response-code'] as const) {
    it(`aborts the stale procedure and stores all 40 records once (meter answers ${answer === 'att-error' ? 'ATT error 0x80' : '06 00 <op> 08'})`, async () => {
      // The transfer is cut after 15 records; the meter takes it for running for a minute after the link loss.
      const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 40, seed: 9, racpBusyAnswer: answer, faults: { disconnectAfterRecords: [15], busyAfterDisconnectMs: 60_000 } });
      const bluez = await bluezWith([meter]);
      const dir = tempDir();
      const dataDir = join(dir, 'device');
      await runRuntimeUntil(meterRuntimeConfig(dir, bluez.address, ADDRESS), () => storedInLedger(dataDir, 'reading').length >= 40, 'all 40 records stored');
      const readings = storedInLedger(dataDir, 'reading');
      expect(readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(readings.map((r) => r.value)).toEqual(meter.records.map((r) => r.mgPerDl));
      // One refusal (the check of record 15 at the reconnect), then the abort; one reconnect only.
      expect(meter.stats.busy).toBe(1);
      expect(bluez.device(ADDRESS).connects).toBe(2);
      expect(meter.lastError).toBeUndefined();
    }, 60_000);
  }
});
