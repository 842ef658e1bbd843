import { describe, expect, it } from 'vitest';
import { BleGlucoseMeterDriver, DEFAULT_BLE_GLUCOSE_METER_OPTIONS } from '../../device-sdk/sensors/ble-glucose-meter.js';
import { resolveDriverOptions } from '../../device-sdk/sensors/registry.js';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:01';
const H = 3600_000;

describe.skipIf(!dbusDaemonAvailable())('ble-glucose-meter over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('backfills 500 stored records through two disconnects mid-transfer, storing each record exactly once with its meter time and context', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 500, seed: 11, timeOffsetMinutes: 30, faults: { disconnectAfterRecords: [150, 170] } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0 }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length >= 500 && driver.transfers === 1, '500 records and a completed transfer', 60_000);
    } finally {
      await driver.stop();
    }
    expect(meter.lastError).toBeUndefined();
    // Each reconnect first asks for the last record handed over (150, then 320: RACP within range, one record, to
    // find a reset meter), then resumes from the next one: 3 backfill transfers (2 cut) and 2 one-record checks.
    expect(meter.stats).toMatchObject({ transfers: 5, cut: 2, completed: 3, reports: { all: 1, 'greater-or-equal': 2, 'within-range': 2 } });
    expect(meter.stats.recordsSent).toBe(502); // resumed from the next record each time: only the 2 checked records sent twice
    expect(bluez.device(ADDRESS).connects).toBe(3);
    const seqs = sink.readings.map((r) => r.meterRecord);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    const byRecord = new Map(meter.records.map((r) => [r.sequenceNumber, r]));
    for (const r of sink.readings) {
      const truth = byRecord.get(r.meterRecord as number);
      expect(r).toMatchObject({ sensor: 'meter', type: 'glucose', unit: 'mg/dL', value: truth?.mgPerDl, tMeter: truth?.timeMs });
      expect(r.context?.sampleType).toBe('capillary-whole-blood');
      expect(r.context?.meal).toBe(truth?.meal); // joined from the Glucose Measurement Context when the meter sent one
      if (truth?.carbohydrateGrams !== undefined) expect(Number(r.context?.carbohydrateGrams)).toBeCloseTo(truth.carbohydrateGrams, 6);
    }
    expect(sink.readings.filter((r) => r.context?.meal !== undefined)).toHaveLength(166);
    expect(sink.quarantined).toEqual([]);
    // Progress from the record counts the meter announced before each transfer (RACP op 4).
    const details = sink.states.map((s) => s.detail);
    for (const progress of ['backfill 0/500', 'backfill 150/500', 'backfill 0/350', 'backfill 50/350', 'backfill 0/180', 'backfill 150/180']) {
      expect(details.some((d) => d.endsWith(progress)), progress).toBe(true);
    }
    expect(sink.states.at(-1)).toMatchObject({ sensor: 'meter', connected: false, detail: 'stopped' });
  }, 90_000);

  it('drops duplicate notifications, keeps the skewed and jumped clock of a meter without Current Time as reported (zone unknown), and resumes from the stored record number', async () => {
    const meter = new SimGlucoseMeter({
      address: ADDRESS,
      storedRecords: 60,
      currentTimeService: false,
      faults: { duplicateEvery: 4, clockSkewMs: 3_600_000, clockJump: { atSequence: 40, byMs: -86_400_000 } },
    });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    // Records 1..20 are already in the ledger (a previous run): only 21..60 may be stored. The byte-level
    // duplicate filter is off, so the repeated notifications reach the driver's sequence-number check.
    const options = { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0, dedupeWindowMs: 0 };
    const driver = new BleGlucoseMeterDriver('meter', options, driverDeps(sink, { meter: 20 }));
    driver.start(sink);
    try {
      await waitFor(() => driver.transfers === 1 && sink.readings.length >= 40, 'the resumed transfer', 30_000);
    } finally {
      await driver.stop();
    }
    expect(meter.stats.recordsSent).toBe(40);
    expect(meter.duplicatesSent).toBeGreaterThan(5);
    expect(driver.duplicates).toBeGreaterThan(0);
    expect(sink.quarantined).toEqual([]);
    expect(sink.readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 40 }, (_, i) => i + 21));
    for (const r of sink.readings) {
      const truth = meter.records.find((x) => x.sequenceNumber === r.meterRecord);
      const expected = (truth?.timeMs ?? 0) + 3_600_000 - ((r.meterRecord as number) >= 40 ? 86_400_000 : 0);
      expect(r.tMeter).toBe(expected);
      expect(r.context).toMatchObject({ meterTimeBasis: 'zone-unknown', meterClock: new Date(expected).toISOString().slice(0, 19) });
    }
  }, 60_000);

  /** Backfills all records of `meter` with `timeZone` configured (or none); returns the readings. */
  async function backfill(meter: SimGlucoseMeter, timeZone?: string) {
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0 }, driverDeps(sink, {}, timeZone));
    driver.start(sink);
    try {
      await waitFor(() => meter.stats.completed === 1 && sink.readings.length >= meter.records.length, 'the backfill', 30_000);
    } finally {
      await driver.stop();
    }
    expect(sink.quarantined).toEqual([]);
    return sink.readings;
  }

  const JAN = Date.UTC(2026, 0, 10, 12, 0, 0);
  const JUL = Date.UTC(2026, 6, 10, 12, 0, 0);
  const winterAndSummer = [JAN, JAN + 3 * 3600_000, JUL, JUL + 3 * 3600_000].map((timeMs, i) => ({ sequenceNumber: i + 1, timeMs, mgPerDl: 100 + i }));

  it("converts a meter's local record times to UTC by its Current Time, which also removes its clock's error, and keeps the wall clock it sent", async () => {
    // Bogotá has no DST (UTC-5 all year), so one offset converts every record exactly; the clock is 2 min fast.
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: winterAndSummer, timeZone: 'America/Bogota', faults: { clockSkewMs: 120_000 } });
    const readings = await backfill(meter);
    expect(readings.map((r) => r.tMeter)).toEqual(winterAndSummer.map((r) => r.timeMs));
    expect(readings[0]!.context).toMatchObject({
      meterTimeBasis: 'current-time-service',
      meterClock: '2026-01-10T07:02:00', // what the meter showed: local time, 2 min fast
      meterClockOffsetS: String(-5 * 3600 + 120),
      meterUtcOffset: '-05:00', // Local Time Information
    });
  }, 60_000);

  it('with a configured zone, takes only the drift from the Current Time and gives each record the DST of its own date', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: winterAndSummer, timeZone: 'America/New_York', faults: { clockSkewMs: -90_000 } });
    const readings = await backfill(meter, 'America/New_York');
    expect(readings.map((r) => r.tMeter)).toEqual(winterAndSummer.map((r) => r.timeMs));
    expect(readings.map((r) => r.context?.meterClock)).toEqual(['2026-01-10T06:58:30', '2026-01-10T09:58:30', '2026-07-10T07:58:30', '2026-07-10T10:58:30']);
    expect(readings[2]!.context).toMatchObject({ meterTimeBasis: 'current-time-service', meterTimeZone: 'America/New_York', meterClockDriftS: '-90' });
  }, 60_000);

  it('quarantines a Current Time it cannot decode and falls back to the configured zone', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: winterAndSummer, timeZone: 'America/New_York', faults: { currentTimeRaw: Uint8Array.of(0xea, 0x07, 12, 6) } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0 }, driverDeps(sink, {}, 'America/New_York'));
    driver.start(sink);
    try {
      await waitFor(() => meter.stats.completed === 1 && sink.readings.length === winterAndSummer.length, 'the backfill', 30_000);
    } finally {
      await driver.stop();
    }
    expect(sink.quarantined.map((q) => [q.transport, [...q.bytes]])).toEqual([[`ble:${ADDRESS}/2a2b`, [0xea, 0x07, 12, 6]]]);
    expect(sink.quarantined[0]!.error).toMatch(/truncated/);
    expect(sink.readings.map((r) => [r.tMeter, r.context?.meterTimeBasis])).toEqual(winterAndSummer.map((r) => [r.timeMs, 'configured-zone']));
  }, 60_000);

  it('reads the records of a meter that refuses its Current Time, in the configured zone', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: winterAndSummer, timeZone: 'America/New_York', faults: { currentTimeRefused: true } });
    const readings = await backfill(meter, 'America/New_York');
    expect(readings.map((r) => [r.tMeter, r.context?.meterTimeBasis])).toEqual(winterAndSummer.map((r) => [r.timeMs, 'configured-zone']));
  }, 60_000);

  it('reads the record times of a meter without Current Time in the configured zone', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: winterAndSummer, timeZone: 'America/New_York', currentTimeService: false });
    const readings = await backfill(meter, 'America/New_York');
    expect(readings.map((r) => r.tMeter)).toEqual(winterAndSummer.map((r) => r.timeMs));
    expect(readings[0]!.context).toMatchObject({ meterTimeBasis: 'configured-zone', meterTimeZone: 'America/New_York', meterClock: '2026-01-10T07:00:00' });
  }, 60_000);

  // QA (qa-glu, meter-clock-stale): the Current Time was read once per connection, so a meter clock set
  // right while the link stayed up converted every later record with the stale offset.
  async function clockSetWhileConnected(timeZone: string | undefined) {
    const now = Date.now();
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: [{ sequenceNumber: 1, timeMs: now - H, mgPerDl: 110 }], timeZone: 'Asia/Kolkata', faults: { clockSkewMs: 2 * H } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 200 }, driverDeps(sink, {}, timeZone));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length >= 1, 'the stored record', 20_000);
      const transfers = driver.transfers;
      await waitFor(() => driver.transfers > transfers, 'a poll with the fast clock', 20_000);
      // The patient sets the meter's clock right while it stays connected, then measures a low.
      meter.faults.clockSkewMs = 0;
      const fresh = meter.addRecord({ mgPerDl: 45 });
      await waitFor(() => sink.readings.length >= 2, 'the new record', 20_000);
      return { first: sink.readings[0]!, second: sink.readings[1]!, firstTruth: now - H - ((now - H) % 1000), fresh, connects: bluez.device(ADDRESS).connects };
    } finally {
      await driver.stop();
    }
  }

  it('reads the Current Time again before each poll: a record measured after the meter clock was set right (2 h fast) is stored at its true time', async () => {
    const { first, second, firstTruth, fresh, connects } = await clockSetWhileConnected(undefined);
    expect(connects).toBe(1); // one connection throughout
    expect(first.tMeter).toBe(firstTruth);
    expect(first.context).toMatchObject({ meterTimeBasis: 'current-time-service', meterClockOffsetS: String(5.5 * 3600 + 2 * 3600) });
    // Before: 21:37:15Z for a 45 mg/dL measured at 23:37:15Z ("2 h ago"). The context names the offset used.
    expect(second).toMatchObject({ value: 45, tMeter: fresh.timeMs, context: { meterTimeBasis: 'current-time-service', meterClockOffsetS: String(5.5 * 3600), meterUtcOffset: '+05:30' } });
  }, 60_000);

  it('a meter that notifies its Current Time when its clock is set: the records it held are read by the clock before, later ones by the new clock, without waiting for the poll', async () => {
    const now = Date.now();
    const meter = new SimGlucoseMeter({ address: ADDRESS, records: [{ sequenceNumber: 1, timeMs: now - H, mgPerDl: 110 }], timeZone: 'Asia/Kolkata', faults: { clockSkewMs: 2 * H } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    // Polls an hour apart: only the notifications make the driver read the meter meanwhile.
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 3_600_000 }, driverDeps(sink));
    driver.start(sink);
    let measuredFast;
    let measuredRight;
    try {
      await waitFor(() => sink.readings.length === 1 && driver.transfers === 1, 'the stored record', 20_000);
      // A measurement on the fast clock, then the patient sets the clock right: the meter notifies it.
      measuredFast = meter.addRecord({ mgPerDl: 60 });
      await waitFor(() => meter.isNotifying(0x2a2b), 'Current Time notifications on');
      expect(await meter.setClock(0)).toBe(true);
      await waitFor(() => sink.readings.length === 2, 'the record measured before the clock was set', 10_000);
      // A measurement on the right clock; the meter notifies its (unchanged) clock after a time sync.
      measuredRight = meter.addRecord({ mgPerDl: 45 });
      expect(await meter.notifyCurrentTime(2)).toBe(true);
      await waitFor(() => sink.readings.length === 3, 'the record measured after the clock was set', 10_000);
    } finally {
      await driver.stop();
    }
    const [, fast, right] = sink.readings;
    // Before: record 2 waited for the next poll, whose fresh clock read dated it by the new clock: 2 h in the future.
    expect(fast).toMatchObject({ meterRecord: 2, value: 60, tMeter: measuredFast.timeMs, context: { meterClockOffsetS: String(5.5 * 3600 + 2 * 3600) } });
    expect(right).toMatchObject({ meterRecord: 3, value: 45, tMeter: measuredRight.timeMs, context: { meterClockOffsetS: String(5.5 * 3600) } });
    expect(bluez.device(ADDRESS).connects).toBe(1);
    expect(sink.quarantined).toEqual([]);
  }, 60_000);

  it('with a configured zone, a clock set right while connected drops its drift for the records read after it', async () => {
    const { first, second, firstTruth, fresh } = await clockSetWhileConnected('Asia/Kolkata');
    expect(first).toMatchObject({ tMeter: firstTruth, context: { meterTimeZone: 'Asia/Kolkata', meterClockDriftS: '7200' } });
    expect(second).toMatchObject({ tMeter: fresh.timeMs, context: { meterTimeZone: 'Asia/Kolkata', meterClockDriftS: '0', meterClockOffsetS: String(5.5 * 3600) } });
  }, 60_000);

  it('polls for new measurements while connected and quarantines undecodable bytes with the BLE transport name', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 3 });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const driver = new BleGlucoseMeterDriver('meter', { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 100 }, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length === 3, 'the stored records');
      meter.addRecord({ mgPerDl: 250, meal: 'postprandial' });
      await waitFor(() => sink.readings.length === 4, 'the new record on the next poll');
      expect(sink.readings[3]).toMatchObject({ meterRecord: 4, value: 250, context: { meal: 'postprandial' } });
      // Reserved flag bit 7 set: the codec refuses the record; the bytes are kept.
      expect(await meter.sendRaw(0x2a18, Uint8Array.of(0x80, 0x05, 0x00, 0xea, 0x07, 1, 1, 0, 0, 0))).toBe(true);
      await waitFor(() => sink.quarantined.length === 1, 'the quarantined notification');
    } finally {
      await driver.stop();
    }
    expect(sink.quarantined[0]).toMatchObject({ sensor: 'meter', transport: `ble:${ADDRESS}/2a18` });
    expect(sink.quarantined[0]?.error).toMatch(/reserved flag bit 7/);
    expect([...(sink.quarantined[0]?.bytes ?? [])]).toEqual([0x80, 0x05, 0x00, 0xea, 0x07, 1, 1, 0, 0, 0]);
    expect(sink.readings).toHaveLength(4);
  }, 60_000);

  it('waits for a slow meter as long as records keep coming (the RACP timeout is an inactivity timeout)', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 60, faults: { notifyDelayMs: 4, responseDelayMs: 40 } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    // The whole transfer takes several times racpTimeoutMs; no gap between two notifications does.
    const options = { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0, racpTimeoutMs: 150 };
    const driver = new BleGlucoseMeterDriver('meter', options, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => meter.stats.completed === 1 && driver.transfers === 1, 'the slow transfer to complete', 30_000);
    } finally {
      await driver.stop();
    }
    expect(meter.stats).toMatchObject({ transfers: 1, recordsSent: 60 });
    expect(bluez.device(ADDRESS).connects).toBe(1);
    expect(sink.readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  }, 60_000);

  it('stores the records after the meter\'s uint16 record number wrapped to 0 after 65,535, once each, also after a restart', async () => {
    const records = [65_533, 65_534, 65_535].map((sequenceNumber, i) => ({ sequenceNumber, timeMs: Date.UTC(2026, 0, 1, 8 + i), mgPerDl: 100 + i }));
    const meter = new SimGlucoseMeter({ address: ADDRESS, records });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const options = { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 100 };
    const driver = new BleGlucoseMeterDriver('meter', options, driverDeps(sink));
    driver.start(sink);
    try {
      await waitFor(() => sink.readings.length === 3, 'the stored records');
      // Three new measurements on the meter: record numbers 0, 1, 2 (the last a severe low).
      for (const mgPerDl of [250, 260, 45]) meter.addRecord({ mgPerDl, timeMs: Date.now() - 60_000 });
      await waitFor(() => sink.readings.length >= 6, 'the records after the wrap');
      const transfers = meter.stats.transfers;
      await waitFor(() => meter.stats.transfers >= transfers + 3, 'three more polls');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([[65_533, 100], [65_534, 101], [65_535, 102], [0, 250], [1, 260], [2, 45]]);
    expect(sink.quarantined).toEqual([]);
    // A restart with records up to 2 in the ledger: the records of before the wrap are not stored again.
    const after = recordingSink();
    const restarted = new BleGlucoseMeterDriver('meter', { ...options, pollIntervalMs: 0 }, driverDeps(after, { meter: 2 }));
    const completed = meter.stats.completed;
    restarted.start(after);
    try {
      await waitFor(() => meter.stats.completed > completed && restarted.transfers === 1, 'the transfer after the restart');
    } finally {
      await restarted.stop();
    }
    expect(after.readings).toEqual([]);
  }, 60_000);

  it('stores a record sent after a higher-numbered one of the same transfer (out of order), and still drops the repeated ones', async () => {
    const meter = new SimGlucoseMeter({ address: ADDRESS, storedRecords: 40, faults: { reorderEvery: 5, duplicateEvery: 7 } });
    const bluez = await bluezWith([meter]);
    const sink = recordingSink();
    const options = { ...DEFAULT_BLE_GLUCOSE_METER_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS), pollIntervalMs: 0, dedupeWindowMs: 0 };
    const driver = new BleGlucoseMeterDriver('meter', options, driverDeps(sink, { meter: 0 }));
    driver.start(sink);
    try {
      await waitFor(() => meter.stats.completed === 1 && driver.transfers === 1, 'the transfer');
    } finally {
      await driver.stop();
    }
    expect(meter.duplicatesSent).toBeGreaterThan(3);
    const seqs = sink.readings.map((r) => r.meterRecord as number);
    expect(seqs.slice(0, 7)).toEqual([1, 2, 3, 4, 6, 5, 7]); // as sent
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const byRecord = new Map(meter.records.map((r) => [r.sequenceNumber, r]));
    for (const r of sink.readings) expect(r.value).toBe(byRecord.get(r.meterRecord as number)?.mgPerDl);
  }, 60_000);

  it('validates its options against its schema', () => {
    expect(() => resolveDriverOptions('ble-glucose-meter', { address: 'not-a-mac' })).toThrow(/options\.address/);
    expect(() => resolveDriverOptions('ble-glucose-meter', { pollMs: 5 })).toThrow(/additional properties/);
    expect(resolveDriverOptions('ble-glucose-meter', { address: ADDRESS })).toMatchObject({ address: ADDRESS, pollIntervalMs: 60_000 });
  });
});
