// A glucose meter's record times at the DST changes of its zone, through the driver (ble-glucose-meter
// over the simulated BlueZ) into the glucose monitor and the reading rules, as the runtime wires them.
// Europe/Berlin, 25 Oct 2026: summer time ends at 01:00 UTC, the wall clock goes from 03:00 back to 02:00,
// so 02:00-03:00 happens twice: 00:00-01:00 UTC (CEST, first pass), then 01:00-02:00 UTC (CET, second pass).
// QA (end of summer time): a fresh reading in the second pass was dated an hour early, the first pass:
// a false falling-fast trend and "measured 1 h ago" on it.
import { describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import type { Alert, Finding, Reading } from '../../device-sdk/records.js';
import { BleGlucoseMeterDriver, DEFAULT_BLE_GLUCOSE_METER_OPTIONS } from '../../device-sdk/sensors/ble-glucose-meter.js';
import { GlucoseMonitor } from '../../firmware/glucose-monitor.js';
import { createRuleEngine } from '../../firmware/rules.js';
import { SimGlucoseMeter, type SimGlucoseRecord } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, type RecordingSink, recordingSink } from '../sensors/ble-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:05';
const ZONE = 'Europe/Berlin';
const utc = (day: number, h: number, m: number) => Date.UTC(2026, 9, day, h, m);

/** The readings of a meter's sensor through the glucose monitor and the rules: trend labels per record, alerts. */
function analyse(readings: readonly Reading[]): { trends: Array<[number | undefined, string | undefined]>; alerts: Alert[] } {
  const monitor = new GlucoseMonitor('meter', undefined, { sensorType: 'meter' });
  const rules = createRuleEngine();
  const trends: Array<[number | undefined, string | undefined]> = [];
  const alerts: Alert[] = [];
  for (const r of readings) {
    const out = monitor.push(r);
    const trend: Finding | undefined = out.findings.find((f) => f.kind === 'glucose-trend');
    trends.push([r.meterRecord, trend?.label]);
    alerts.push(...out.alerts, ...rules.onReading(r).alerts);
  }
  return { trends, alerts };
}

describe.skipIf(!dbusDaemonAvailable())('a glucose meter at the end of summer time (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  async function start(meter: SimGlucoseMeter, clock: Clock, pollIntervalMs: number): Promise<{ driver: BleGlucoseMeterDriver; sink: RecordingSink }> {
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const deps = { ...driverDeps(sink, {}, ZONE), clock };
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs }, deps);
    driver.start(sink);
    return { driver, sink };
  }

  it('dates live readings in the first and the second pass through the repeated hour when they were measured', async () => {
    // A meter without Current Time, its clock following Berlin time, the zone configured; connected and
    // polled. This device's clock is at each measurement's time (+30 s) when the meter is asked for it.
    let at = utc(24, 23, 50) + 30_000;
    const clock: Clock = { ...systemClock, now: () => at };
    const meter = new SimGlucoseMeter({ address: ADDRESS, timeZone: ZONE, currentTimeService: false, contextEvery: 0, records: [{ sequenceNumber: 1, timeMs: utc(24, 23, 50), mgPerDl: 150 }] });
    const { driver, sink } = await start(meter, clock, 100);
    const live: Array<[number, number]> = [
      [utc(25, 0, 20), 140], // wall 02:20 CEST, first pass
      [utc(25, 0, 50), 130], // wall 02:50 CEST, first pass
      [utc(25, 1, 10), 100], // wall 02:10 CET, second pass
      [utc(25, 1, 40), 60], // wall 02:40 CET, second pass: a level 1 low
      [utc(25, 2, 5), 75], // wall 03:05 CET
    ];
    const truth: SimGlucoseRecord[] = [];
    try {
      await waitFor(() => sink.readings.length === 1, 'the stored record', 20_000);
      for (const [timeMs, mgPerDl] of live) {
        const transfers = driver.transfers;
        await waitFor(() => driver.transfers > transfers, 'a poll', 20_000); // the record is new to the next poll
        at = timeMs + 30_000;
        truth.push(meter.addRecord({ timeMs, mgPerDl }));
        await waitFor(() => sink.readings.length === truth.length + 1, `record ${truth.length + 1}`, 20_000);
      }
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.context?.meterClock, r.tMeter])).toEqual([
      [1, '2026-10-25T01:50:00', utc(24, 23, 50)],
      [2, '2026-10-25T02:20:00', utc(25, 0, 20)],
      [3, '2026-10-25T02:50:00', utc(25, 0, 50)],
      [4, '2026-10-25T02:10:00', utc(25, 1, 10)], // before: 00:10 UTC, the first pass, 1 h early
      [5, '2026-10-25T02:40:00', utc(25, 1, 40)], // before: 00:40 UTC
      [6, '2026-10-25T03:05:00', utc(25, 2, 5)],
    ]);
    expect(sink.readings.map((r) => [r.context?.meterTimeDst, r.context?.meterTimeDstBy])).toEqual([
      [undefined, undefined],
      // The second instant would be in the future.
      ['repeated-first', 'reception'],
      ['repeated-first', 'reception'],
      // The first is before the previous record, and before the last poll that did not have this record yet.
      ['repeated-second', 'record-order'],
      ['repeated-second', 'record-order'],
      [undefined, undefined],
    ]);
    const { trends, alerts } = analyse(sink.readings);
    // Before: record 4 was placed before records 2 and 3 (which it took for a fast clock's and dropped):
    // 150 -> 100 in 20 min, falling-fast (-2.5 mg/dL/min); true: 130 -> 100 in 20 min, -1.5.
    expect(trends).toEqual([
      [1, undefined],
      [2, 'stable'],
      [3, 'stable'],
      [4, 'falling'],
      [5, 'falling'],
      [6, 'stable'],
    ]);
    // Before: "Glucose reading 60 mg/dL, measured 1 h ago (meter time 25 Oct 02:40), is below 70 mg/dL".
    expect(alerts.map((a) => a.message)).toEqual(['Glucose reading 60 mg/dL is below 70 mg/dL; review by a clinician.']);
  }, 120_000);

  it('dates a fresh reading in the second pass fresh when the meter connects to send it', async () => {
    // The meter connects after a measurement (record 1 was stored by an earlier run): nothing but the
    // arrival of record 2 at 01:10:30 UTC, 02:10:30 CET, says which 02:10 it is.
    const at = utc(25, 1, 10) + 30_000;
    const clock: Clock = { ...systemClock, now: () => at };
    const records = [
      { sequenceNumber: 1, timeMs: utc(24, 23, 50), mgPerDl: 120 },
      { sequenceNumber: 2, timeMs: utc(25, 1, 10), mgPerDl: 50 },
    ];
    const meter = new SimGlucoseMeter({ address: ADDRESS, timeZone: ZONE, currentTimeService: false, contextEvery: 0, records });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0 }, { ...driverDeps(sink, { meter: 1 }, ZONE), clock });
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length === 1 && meter.stats.completed === 1, 'record 2', 20_000);
    } finally {
      await driver.stop();
    }
    // Before: 00:10 UTC, and the alert said "measured 1 h ago (meter time 25 Oct 02:10)".
    expect(sink.readings.map((r) => [r.meterRecord, r.tMeter, r.context?.meterTimeDst, r.context?.meterTimeDstBy])).toEqual([[2, utc(25, 1, 10), 'repeated-second', 'reception']]);
    expect(analyse(sink.readings).alerts.map((a) => a.message)).toEqual(['Glucose reading 50 mg/dL is below 54 mg/dL; review by a clinician.']);
  }, 60_000);

  it('dates a download of the night, both passes through the repeated hour, by the record order', async () => {
    // The meter offers its Current Time (its clock: Berlin time, right); the zone is configured. The
    // records are downloaded at 04:10 CET, long after: only their order can tell the two passes apart.
    const downloadAt = utc(25, 3, 10);
    const shift = downloadAt - Date.now();
    // The simulated meter keeps its clock on the process clock: its clock error is the shift to 25 Oct.
    const clock: Clock = { ...systemClock, now: () => Date.now() + shift };
    const night: Array<[number, number]> = [
      [utc(24, 23, 50), 150], // 01:50 CEST
      [utc(25, 0, 20), 140], // 02:20 CEST, first pass
      [utc(25, 0, 50), 130], // 02:50 CEST, first pass
      [utc(25, 1, 10), 120], // 02:10 CET, second pass
      [utc(25, 1, 40), 110], // 02:40 CET, second pass
      [utc(25, 2, 5), 100], // 03:05 CET
    ];
    const records = night.map(([timeMs, mgPerDl], i) => ({ sequenceNumber: i + 1, timeMs: timeMs - shift, mgPerDl }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, timeZone: ZONE, contextEvery: 0, records, faults: { clockSkewMs: shift } });
    const { driver, sink } = await start(meter, clock, 0);
    try {
      await waitFor(() => meter.stats.completed === 1 && sink.readings.length === night.length, 'the download', 30_000);
    } finally {
      await driver.stop();
    }
    expect(sink.readings[0]!.context).toMatchObject({ meterTimeBasis: 'current-time-service', meterTimeZone: ZONE, meterClockDriftS: '0' });
    expect(sink.readings.map((r) => [r.context?.meterClock, r.tMeter, r.context?.meterTimeDst, r.context?.meterTimeDstBy])).toEqual([
      ['2026-10-25T01:50:00', utc(24, 23, 50), undefined, undefined],
      ['2026-10-25T02:20:00', utc(25, 0, 20), 'repeated-first', 'default'],
      ['2026-10-25T02:50:00', utc(25, 0, 50), 'repeated-first', 'default'],
      ['2026-10-25T02:10:00', utc(25, 1, 10), 'repeated-second', 'record-order'], // before: 00:10 UTC
      ['2026-10-25T02:40:00', utc(25, 1, 40), 'repeated-second', 'record-order'], // before: 00:40 UTC
      ['2026-10-25T03:05:00', utc(25, 2, 5), undefined, undefined],
    ]);
    // A steady fall of 10 mg/dL per 30 min (-0.33 to -0.4 mg/dL/min): stable throughout.
    expect(analyse(sink.readings).trends.map(([, label]) => label)).toEqual([undefined, 'stable', 'stable', 'stable', 'stable', 'stable']);
  }, 120_000);

  it('reads a wall time in the hour skipped when summer time starts as a meter clock not yet set forward, and says so', async () => {
    // 29 Mar 2026 in Berlin: 02:00 CET becomes 03:00 CEST. A meter that does not follow DST (its clock on
    // CET, UTC+1, all year) shows 02:30 at 01:30 UTC: read with the offset before the change, that instant.
    const measured = Date.UTC(2026, 2, 29, 1, 30);
    const at = measured + 30_000;
    const clock: Clock = { ...systemClock, now: () => at };
    const meter = new SimGlucoseMeter({ address: ADDRESS, timeZone: 'Etc/GMT-1', currentTimeService: false, contextEvery: 0, records: [{ sequenceNumber: 1, timeMs: measured, mgPerDl: 50 }] });
    const { driver, sink } = await start(meter, clock, 0);
    try {
      await waitFor(() => sink.readings.length === 1, 'the record', 20_000);
    } finally {
      await driver.stop();
    }
    expect(sink.readings[0]).toMatchObject({ tMeter: measured, context: { meterClock: '2026-03-29T02:30:00', meterTimeBasis: 'configured-zone', meterTimeDst: 'skipped' } });
    expect(analyse(sink.readings).alerts.map((a) => a.message)).toEqual(['Glucose reading 50 mg/dL is below 54 mg/dL; review by a clinician.']);
  }, 60_000);
});
