// The runtime with a `ble-glucose-meter` device source against the simulated BlueZ: every meter
// record ends up in the ledger exactly once, across link drops and across a runtime restart.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Reading } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const ADDRESS = 'C0:FF:EE:00:00:01';
const tempDir = useTempDirs('ble-runtime');

function storedReadings(dataDir: string): Reading[] {
  // Read-only, bodies opened with the device key the runtime created beside its ledger.
  return readLedgerBodies(ledgerPath(dataDir), 'reading')
    .map((row) => decodeBody('reading', row.body))
    .filter((r) => r.type !== 'device-info'); // the runtime's own record of each start
}

describe.skipIf(!dbusDaemonAvailable())('runtime with a ble-glucose-meter source (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('stores every meter record once in the ledger, through link drops and a restart of the runtime', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 200, seed: 3, faults: { disconnectAfterRecords: [70, 90] } });
    const bluez = await bluezWith([meter]);
    const dir = tempDir();
    const config = parseRuntimeConfig(
      {
        deviceId: 'ble-clinic-1',
        dataDir: 'device',
        edge: { url: 'mqtt://127.0.0.1:1' }, // offline: nothing listens
        log: { level: 'silent' },
        sources: [
          {
            type: 'device',
            sensor: 'meter',
            driver: 'ble-glucose-meter',
            options: { address: ADDRESS, dbusAddress: bluez.address, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 }, pollIntervalMs: 0 },
          },
        ],
      },
      dir,
    );
    const dataDir = join(dir, 'device');

    const first = new Runtime(config, { logger: silentLogger });
    first.start();
    try {
      // Every transfer done: the backfill, and the one-record check of each reconnect (RACP within range).
      await waitFor(() => meter.stats.completed === 1 + (meter.stats.reports['within-range'] ?? 0) && first.status().produced.reading >= 200, 'the first backfill in the ledger', 60_000);
    } finally {
      await first.stop();
    }
    // 3 backfill transfers (2 cut) and the checks of records 70 and 160 at the reconnects.
    expect(meter.stats).toMatchObject({ transfers: 5, cut: 2, recordsSent: 202, reports: { all: 1, 'greater-or-equal': 2, 'within-range': 2 } });
    expect(storedReadings(dataDir).map((r) => r.meterRecord)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));

    // New measurements on the meter while the runtime is down; the restarted runtime asks only for them.
    for (const mgPerDl of [101, 102, 103, 104, 105]) meter.addRecord({ mgPerDl });
    const second = new Runtime(config, { logger: silentLogger });
    second.start();
    try {
      await waitFor(() => meter.stats.completed === 5 && second.status().produced.reading >= 205, 'the second backfill in the ledger', 60_000);
    } finally {
      await second.stop();
    }
    expect(meter.stats.recordsSent).toBe(208); // record 200 checked at connect, then 201-205
    const readings = storedReadings(dataDir);
    expect(readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 205 }, (_, i) => i + 1));
    expect(readings.slice(-5).map((r) => r.value)).toEqual([101, 102, 103, 104, 105]);
    const truth = new Map(meter.records.map((r) => [r.sequenceNumber, r]));
    for (const r of readings) expect([r.sensor, r.type, r.value, r.tMeter]).toEqual(['meter', 'glucose', truth.get(r.meterRecord as number)?.mgPerDl, truth.get(r.meterRecord as number)?.timeMs]);
  }, 120_000);
});
