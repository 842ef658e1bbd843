// BLE glucose-meter backfill over the simulated BlueZ (a real dbus-daemon, node-ble unmodified):
// how fast the ble-glucose-meter driver stores a meter's records through RACP, with and without
// link drops mid-transfer. Prints one JSON object. Needs `npm run build` and dbus-daemon.
//
//   node bench/ble-backfill.js [--records 2000]

import { systemClock } from '../dist/device-sdk/clock.js';
import { silentLogger } from '../dist/device-sdk/log.js';
import { BleGlucoseMeterDriver, DEFAULT_BLE_GLUCOSE_METER_OPTIONS } from '../dist/device-sdk/sensors/ble-glucose-meter.js';
import { SimGlucoseMeter, startSimulatedBluez } from '../dist/simulator/bluez/index.js';

const arg = process.argv.indexOf('--records');
const records = arg > 0 ? Number(process.argv[arg + 1]) : 2000;
const ADDRESS = 'C0:FF:EE:00:00:01';

/** @param {number[]} cuts */
async function run(cuts) {
  const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: records, faults: { disconnectAfterRecords: [...cuts] } });
  const bluez = await startSimulatedBluez({ devices: [meter] });
  /** @type {import('../dist/device-sdk/records.js').Reading[]} */
  const readings = [];
  let last;
  const deps = { clock: systemClock, logger: silentLogger, lastMeterRecord: () => (last === undefined ? undefined : { record: last }) };
  const options = { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, address: ADDRESS, dbusAddress: bluez.address, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 }, pollIntervalMs: 0 };
  const driver = new BleGlucoseMeterDriver('meter', options, deps);
  const started = performance.now();
  let firstAt;
  await new Promise((resolve) => {
    driver.start({
      chunk: () => undefined,
      gap: () => undefined,
      quarantine: () => undefined,
      state: () => undefined,
      reading: (r) => {
        firstAt ??= performance.now();
        readings.push(r);
        last = r.meterRecord;
        if (readings.length === records) resolve(undefined);
      },
    });
  });
  const elapsed = performance.now() - started;
  await driver.stop();
  await bluez.stop();
  const unique = new Set(readings.map((r) => r.meterRecord)).size;
  return {
    records,
    linkDrops: cuts.length,
    storedOnce: unique === records && readings.length === records,
    racpTransfers: meter.stats.transfers,
    recordsSentByMeter: meter.stats.recordsSent,
    msToFirstRecord: Math.round((firstAt ?? 0) - started),
    msTotal: Math.round(elapsed),
    recordsPerSecond: Math.round((records / elapsed) * 1000),
  };
}

await run([]); // warm-up: JIT, D-Bus introspection code paths
const clean = await run([]);
const dropped = await run([Math.floor(records / 3), Math.floor(records / 4)]);
process.stdout.write(`${JSON.stringify({ bleBackfill: { clean, twoLinkDrops: dropped } })}\n`);
