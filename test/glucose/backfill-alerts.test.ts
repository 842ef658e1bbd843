// The runtime downloading a glucose meter's memory (ble-glucose-meter against the simulated BlueZ):
// months-old records raise no live alert (QA D4: the demo raised three hyperglycaemia alerts within
// milliseconds, timed at the download); what they crossed is stored as findings timed at the meter's
// clock. A measurement taken now still alerts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const ADDRESS = 'C0:FF:EE:00:00:04';
const tempDir = useTempDirs('glucose-backfill');
const HOUR = 3600_000;

describe.skipIf(!dbusDaemonAvailable())('a glucose meter memory downloaded by the runtime (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  /**
   * A runtime reading `meter` on a simulated BlueZ, started afresh by each `run(round, during)` on one data
   * directory (a restart between rounds); the alerts of every round collected as [round, kind, message].
   */
  async function meterRuntimes(meter: SimGlucoseMeter, deviceId: string) {
    const bluez = await bluezWith([meter]);
    const dir = tempDir();
    const options = { address: ADDRESS, dbusAddress: bluez.address, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 }, pollIntervalMs: 100 };
    const config = parseRuntimeConfig({ deviceId, dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, log: { level: 'silent' }, sources: [{ type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options }] }, dir);
    const raised: Array<[number, string, string]> = [];
    const run = async (round: number, during: (runtime: Runtime) => Promise<void>) => {
      const runtime = new Runtime(config, { logger: silentLogger });
      runtime.on('alert', (a) => raised.push([round, a.kind, a.message]));
      runtime.start();
      try {
        await during(runtime);
      } finally {
        await runtime.stop();
      }
    };
    return { run, raised, dir };
  }

  /** A runtime reading `meter` on a simulated BlueZ (polling every 100 ms), its data in a new temporary dir; alerts collected as raised. */
  async function runtimeReading(meter: SimGlucoseMeter, deviceId: string): Promise<{ runtime: Runtime; raised: Alert[]; dataDir: string }> {
    const bluez = await bluezWith([meter]);
    const dir = tempDir();
    const config = parseRuntimeConfig(
      {
        deviceId,
        dataDir: 'device',
        edge: { url: 'mqtt://127.0.0.1:1' },
        log: { level: 'silent' },
        sources: [{ type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options: { address: ADDRESS, dbusAddress: bluez.address, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 }, pollIntervalMs: 100 } }],
      },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    const raised: Alert[] = [];
    runtime.on('alert', (a) => raised.push(a));
    runtime.start();
    return { runtime, raised, dataDir: join(dir, 'device') };
  }

  it('raises no live alert for months-old records, stores their crossings as historical findings, and alerts on a new measurement', async () => {
    const first = Date.UTC(2026, 0, 1, 7);
    // No severe low among them: an old one raises a single clock warning (firmware/rules.test.ts).
    const values = [145, 277, 253, 190, 259, 170, 60, 120];
    const meter = new SimGlucoseMeter({ address: ADDRESS, seed: 4, contextEvery: 0, records: values.map((mgPerDl, i) => ({ sequenceNumber: i + 1, timeMs: first + i * 3 * HOUR, mgPerDl })) });
    const { runtime, raised, dataDir } = await runtimeReading(meter, 'glu-backfill-1');
    try {
      await waitFor(() => runtime.status().produced.reading >= 1 + values.length, 'the backfill in the ledger', 60_000);
      expect(raised).toEqual([]);
      // The patient measures now: a live reading, alerted.
      meter.addRecord({ mgPerDl: 300 });
      await waitFor(() => raised.length > 0, 'the live alert', 30_000);
    } finally {
      await runtime.stop();
    }
    const alerts = readLedgerBodies(ledgerPath(dataDir), 'alert').map((row) => decodeBody('alert', row.body));
    expect(alerts.map((a) => [a.kind, a.message])).toEqual([['hyperglycaemia', 'Glucose reading 300 mg/dL is above 250 mg/dL; review by a clinician.']]);
    const findings = readLedgerBodies(ledgerPath(dataDir), 'finding').map((row) => decodeBody('finding', row.body) as Finding);
    const historical = findings.filter((f) => f.kind === 'glucose-historical-out-of-range');
    expect(historical.map((f) => [f.label, f.value, f.t])).toEqual([
      ['hyperglycaemia', 277, first + 3 * HOUR],
      ['hypoglycaemia-level-1', 60, first + 18 * HOUR],
    ]);
    expect(historical[0]!.evidence).toMatch(/^historical reading \(record 2, measured 2026-01-01T10:00:00.000Z \(meter time 1 Jan 10:00\), received /);
  }, 120_000);

  it('takes a UTC-5 meter\'s fresh reading as fresh, and says plainly that a severe low downloaded 3 h after it was measured is past', async () => {
    // The meter's clock is set to Bogotá time (UTC-5, no DST) and offers the Current Time Service.
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const lowAt = now - 190 * 60_000;
    const meter = new SimGlucoseMeter({
      address: ADDRESS,
      contextEvery: 0,
      timeZone: 'America/Bogota',
      records: [
        { sequenceNumber: 1, timeMs: now - 40 * HOUR, mgPerDl: 120 },
        { sequenceNumber: 2, timeMs: lowAt, mgPerDl: 45 },
      ],
    });
    const { runtime, raised, dataDir } = await runtimeReading(meter, 'glu-backfill-2');
    try {
      await waitFor(() => raised.length >= 1, 'the alert of the backfilled low', 60_000);
      meter.addRecord({ mgPerDl: 300 });
      await waitFor(() => raised.length >= 2, 'the live alert', 30_000);
    } finally {
      await runtime.stop();
    }
    const wall = new Date(lowAt - 5 * HOUR);
    const meterTime = `${wall.getUTCDate()} ${wall.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })} ${String(wall.getUTCHours()).padStart(2, '0')}:${String(wall.getUTCMinutes()).padStart(2, '0')}`;
    expect(raised.map((a) => [a.kind, a.severity])).toEqual([
      ['hypoglycaemia-level-2', 3],
      ['hyperglycaemia', 2],
    ]);
    expect(raised[0]!.message).toMatch(new RegExp(`^Glucose reading 45 mg/dL, measured 3 h 1[01] min ago \\(meter time ${meterTime}\\), is below 54 mg/dL; review by a clinician\\.$`));
    expect(raised[1]!.message).toBe('Glucose reading 300 mg/dL is above 250 mg/dL; review by a clinician.');
    const readings = readLedgerBodies(ledgerPath(dataDir), 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'glucose');
    expect(readings.slice(0, 2).map((r) => [r.meterRecord, r.tMeter, r.context?.meterTimeBasis])).toEqual([
      [1, now - 40 * HOUR, 'current-time-service'],
      [2, lowAt, 'current-time-service'],
    ]);
  }, 120_000);

  it('keeps an alerted low open across a restart: the next record of the same low, backfilled after it, raises nothing new', async () => {
    // QA: an extra level 2 alarm on a backfill. The runtime stops during a low (50 mg/dL alerted); the meter
    // records 48 meanwhile; the restarted runtime's backfill raised a second level 2 alarm for the same low.
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const meter = new SimGlucoseMeter({ address: ADDRESS, contextEvery: 0, records: [{ sequenceNumber: 1, timeMs: now - 20 * 60_000, mgPerDl: 100 }, { sequenceNumber: 2, timeMs: now - 5 * 60_000, mgPerDl: 50 }] });
    const { run, raised } = await meterRuntimes(meter, 'glu-restart');
    await run(1, (runtime) => waitFor(() => runtime.status().produced.reading >= 3, 'records 1-2 (and the device info)', 30_000));
    meter.addRecord({ mgPerDl: 48 });
    await run(2, async (runtime) => {
      await waitFor(() => runtime.status().produced.reading >= 2, 'record 3 backfilled', 30_000);
      // Recovered, then low again: a new episode, alerted.
      meter.addRecord({ mgPerDl: 120 });
      meter.addRecord({ mgPerDl: 45 });
      await waitFor(() => raised.some(([round]) => round === 2), 'the new low', 30_000);
    });
    // Before: [2, 'hypoglycaemia-level-2', 'Glucose reading 48 mg/dL is below 54 mg/dL; ...'] as well.
    expect(raised).toEqual([
      [1, 'hypoglycaemia-level-2', 'Glucose reading 50 mg/dL is below 54 mg/dL; review by a clinician.'],
      [2, 'hypoglycaemia-level-2', 'Glucose reading 45 mg/dL is below 54 mg/dL; review by a clinician.'],
    ]);
  }, 120_000);

  it('reads on after the meter\'s record number wrapped from 65,535 to 0, across a restart: a severe low in record 1 alarms', async () => {
    // QA: records after the wrap were taken for duplicates of 0..65,535 and never stored (a 45 mg/dL low raised nothing).
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const meter = new SimGlucoseMeter({ address: ADDRESS, contextEvery: 0, records: [{ sequenceNumber: 65_534, timeMs: now - 60 * 60_000, mgPerDl: 110 }, { sequenceNumber: 65_535, timeMs: now - 30 * 60_000, mgPerDl: 120 }] });
    const { run, raised, dir } = await meterRuntimes(meter, 'glu-wrap');
    const glucoseRecords = () =>
      readLedgerBodies(ledgerPath(join(dir, 'device')), 'reading')
        .map((row) => decodeBody('reading', row.body))
        .filter((r) => r.type === 'glucose')
        .map((r) => [r.meterRecord, r.value]);
    await run(1, async () => {
      await waitFor(() => glucoseRecords().length === 2, 'records 65,534-65,535', 30_000);
      meter.addRecord({ mgPerDl: 150, timeMs: now - 10 * 60_000 }); // record 0
      await waitFor(() => glucoseRecords().length === 3, 'record 0', 30_000);
    });
    meter.addRecord({ mgPerDl: 45 }); // record 1, measured while the runtime was down
    const transfers = meter.stats.completed;
    await run(2, async () => {
      await waitFor(() => raised.length > 0 && meter.stats.completed >= transfers + 3, 'the low and a few polls', 30_000);
    });
    expect(meter.records.map((r) => r.sequenceNumber)).toEqual([65_534, 65_535, 0, 1]);
    expect(glucoseRecords()).toEqual([[65_534, 110], [65_535, 120], [0, 150], [1, 45]]);
    expect(raised).toEqual([[2, 'hypoglycaemia-level-2', 'Glucose reading 45 mg/dL is below 54 mg/dL; review by a clinician.']]);
  }, 120_000);
  it("orders a wrapped meter's records on its 16-bit counter: 65,534 and 65,535 sent after 0 and 1 are older records, kept in the trend's history", async () => {
    // RACP "report all" of the simulated meter sends its records in number order: 0, 1, 65,534, 65,535.
    // The driver, the runtime and the glucose analysis all take 65,534 after 1 for three records behind it
    // (meterRecordAfter on 16 bits). Before, the analysis took it for newer (its own arithmetic: any higher
    // number was newer), dropped records 0 and 1 from its trace as dated by a clock since set back, gave a
    // trend from 65,534 to 65,535, and the next reading's trend was a two-reading slope.
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const records = [[65_534, 20, 110], [65_535, 15, 120], [0, 10, 130], [1, 5, 140]].map(([sequenceNumber, ago, mgPerDl]) => ({ sequenceNumber: sequenceNumber!, timeMs: now - ago! * 60_000, mgPerDl: mgPerDl! }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, contextEvery: 0, records });
    const { runtime, dataDir } = await runtimeReading(meter, 'glu-wrap-order');
    try {
      await waitFor(() => runtime.status().produced.reading >= 5, 'the four records (and the device info)', 30_000);
      meter.addRecord({ mgPerDl: 150, timeMs: now }); // record 2
      await waitFor(() => runtime.status().produced.reading >= 6, 'record 2', 30_000);
    } finally {
      await runtime.stop();
    }
    const readings = readLedgerBodies(ledgerPath(dataDir), 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'glucose');
    expect(readings.map((r) => r.meterRecord)).toEqual([0, 1, 65_534, 65_535, 2]);
    const trends = readLedgerBodies(ledgerPath(dataDir), 'finding')
      .map((row) => decodeBody('finding', row.body) as Finding)
      .filter((f) => f.kind === 'glucose-trend')
      .map((f) => [(f.t - now) / 60_000, f.evidence?.split(';')[0]]);
    // Before: [[-5, ...], [-15, 'least squares over 2 readings in 15 min'], [0, 'least squares over 2 readings in 15 min']].
    expect(trends).toEqual([
      [-5, 'least squares over 2 readings in 15 min'],
      [0, 'least squares over 4 readings in 15 min'],
    ]);
  }, 120_000);
});
