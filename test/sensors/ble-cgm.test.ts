import { describe, expect, it } from 'vitest';
import { encodeCgmMeasurement } from '../../device-sdk/protocols/ble/cgm.js';
import { BleCgmDriver, DEFAULT_BLE_CGM_OPTIONS } from '../../device-sdk/sensors/ble-cgm.js';
import { SimCgm } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';
import { driverDeps, fastBleOptions, recordingSink } from './ble-harness.js';

const ADDRESS = 'C0:FF:EE:00:00:02';

describe.skipIf(!dbusDaemonAvailable())('ble-cgm over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  /** Sends `values` from offset 0, then the sensor is replaced while the link is down; resolves once resubscribed. */
  async function replacedAfter(cgm: SimCgm, sink: ReturnType<typeof recordingSink>, values: readonly number[]) {
    await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
    for (const v of values) await cgm.measure({ mgPerDl: v });
    await waitFor(() => sink.readings.length === values.length, 'the old sensor\'s records');
    await cgm.dropLink();
    cgm.replaceSensor();
    await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
  }

  /** The simulated CGM on a private BlueZ and a started driver for it (tests stop it in `finally`). */
  async function started(cgm: SimCgm) {
    const bluez = await bluezWith([cgm]);
    const sink = recordingSink();
    const driver = new BleCgmDriver('cgm', { ...DEFAULT_BLE_CGM_OPTIONS, ...fastBleOptions(bluez.address, ADDRESS) }, driverDeps(sink));
    driver.start(sink);
    return { cgm, bluez, sink, driver };
  }

  it('stores each CGM record once: retransmitted notifications and records repeated with the same time offset are suppressed and counted', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS, faults: { duplicateEvery: 3 } }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      const values = [100, 104, 109, 115, 122, 130, 137, 141, 144, 146, 147, 147];
      for (const [i, v] of values.entries()) expect(await cgm.measure({ mgPerDl: v, trend: 1.2, quality: 95 })).toBe(i * 5);
      // Three records again with other bytes (resent after a sensor hiccup, without trend and quality): suppressed as
      // repeats of the values held at their time offsets (`CGM_RESEND_RUN` in a row).
      for (const offset of [10, 15, 20]) expect(await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: values[offset / 5] as number, timeOffset: offset }))).toBe(true);
      await cgm.measure({ mgPerDl: 150 });
      await waitFor(() => sink.readings.length === 13, '13 distinct records');
      await waitFor(() => driver.duplicates === 7, 'the duplicates counted');
    } finally {
      await driver.stop();
    }
    expect(cgm.duplicatesSent).toBe(4);
    expect(driver.duplicateRecords).toBe(3);
    expect(sink.readings.map((r) => r.meterRecord)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]);
    expect(sink.readings.map((r) => r.value)).toEqual([100, 104, 109, 115, 122, 130, 137, 141, 144, 146, 147, 147, 150]);
    expect(sink.readings[0]).toMatchObject({ sensor: 'cgm', type: 'glucose', unit: 'mg/dL', context: { source: 'cgm', trendMgPerDlPerMin: '1.2', qualityPercent: '95' } });
    expect(sink.states.some((s) => /duplicates suppressed/.test(s.detail))).toBe(true);
    expect(sink.quarantined).toEqual([]);
  }, 60_000);

  it('quarantines a record whose E2E-CRC does not match, and keeps streaming after a reconnect', async () => {
    const { cgm, bluez, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      await cgm.measure({ mgPerDl: 120 });
      const corrupt = cgm.encode({ mgPerDl: 121, timeOffset: 5 });
      corrupt[2] = (corrupt[2] as number) ^ 0x01; // one flipped bit in the glucose value
      await cgm.sendRaw(0x2aa7, corrupt);
      await waitFor(() => sink.quarantined.length === 1, 'the corrupted record in quarantine');
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      await cgm.measure({ mgPerDl: 125 });
      await waitFor(() => sink.readings.length === 2, 'the record after the reconnect');
      // A new sensor session two days in: time offsets restart at 0 and are new records, not duplicates.
      await cgm.measure({ mgPerDl: 130, timeOffset: 2880 });
      await cgm.measure({ mgPerDl: 131, timeOffset: 0 });
      await waitFor(() => sink.readings.length === 4, 'the first record of the new session');
    } finally {
      await driver.stop();
    }
    expect(bluez.device(ADDRESS).connects).toBe(2);
    expect(sink.quarantined[0]).toMatchObject({ sensor: 'cgm', transport: `ble:${ADDRESS}/2aa7` });
    expect(sink.quarantined[0]?.error).toMatch(/CRC/);
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [0, 120],
      [5, 125],
      [2880, 130],
      [0, 131],
    ]);
    expect(driver.sessionRestarts).toBe(1);
    expect(driver.duplicates).toBe(0);
  }, 60_000);

  it('reads the records beside one with a bad E2E-CRC in the same notification, and quarantines that record alone', async () => {
    // QA: three records in one notification (a burst after a reconnect), the middle one corrupted: all three
    // were quarantined as one, and the 48 mg/dL of the third never became a reading.
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    const records = [
      { glucose: 110, timeOffsetMinutes: 5 },
      { glucose: 52, timeOffsetMinutes: 10 },
      { glucose: 48, timeOffsetMinutes: 15 },
    ];
    const burst = encodeCgmMeasurement(records, { e2eCrc: true });
    const second = burst[0] as number;
    burst[second + 4] = (burst[second + 4] as number) ^ 0x01; // one flipped bit in the second record's time offset
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      await cgm.sendRaw(0x2aa7, burst);
      await waitFor(() => sink.readings.length === 2 && sink.quarantined.length === 1, 'two readings and one quarantined record');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [5, 110],
      [15, 48],
    ]);
    expect([...(sink.quarantined[0]?.bytes ?? [])]).toEqual([...burst.subarray(second, 2 * second)]);
    expect(sink.quarantined[0]?.error).toMatch(/record 2 at byte 8: E2E-CRC mismatch/);
  }, 60_000);

  it('a sensor replaced within its first day (offsets restart below the old ones): every record of the new sensor is delivered, none counted as duplicate', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    const firstStart = cgm.sessionStartMs;
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      // Sensor 1: 0, 5, ..., 55 minutes (12 records).
      for (let i = 0; i < 12; i++) await cgm.measure({ mgPerDl: 100 + i });
      await waitFor(() => sink.readings.length === 12, 'the 12 records of sensor 1');
      // Sensor 2, replaced while disconnected, 1 h in: offsets 0..25, all below sensor 1's highest (55).
      await cgm.dropLink();
      cgm.replaceSensor();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      for (let i = 0; i < 6; i++) expect(await cgm.measure({ mgPerDl: 200 + i })).toBe(i * 5);
      await waitFor(() => sink.readings.length === 18, 'the 6 records of sensor 2');
      // Sensor 3, replaced while the link stays up, 30 min into sensor 2: 0..10 are below 25 again.
      cgm.replaceSensor();
      for (let i = 0; i < 3; i++) await cgm.measure({ mgPerDl: 300 + i });
      await waitFor(() => sink.readings.length === 21, 'the 3 records of sensor 3');
    } finally {
      await driver.stop();
    }
    expect(cgm.sessions).toBe(3);
    expect(driver.sessionRestarts).toBe(2);
    expect(driver.duplicates).toBe(0);
    expect(driver.duplicateRecords).toBe(0);
    expect(sink.readings.map((r) => r.value)).toEqual([...Array.from({ length: 12 }, (_, i) => 100 + i), 200, 201, 202, 203, 204, 205, 300, 301, 302]);
    // Each record carries its session start (the CGM's clock is UTC+1 h: time zone 4, no DST), so its
    // absolute time is session start + time offset.
    const hour = 3_600_000;
    const secondStart = firstStart + 60 * 60_000; // replaced when sensor 1's next record (60 min) was due
    const thirdStart = secondStart + 30 * 60_000;
    const iso = (utcMs: number) => `${new Date(utcMs + hour).toISOString().slice(0, 19)}+01:00`;
    expect(sink.readings[0]).toMatchObject({ meterRecord: 0, context: { source: 'cgm', sessionStart: iso(firstStart) } });
    expect(sink.readings[11]).toMatchObject({ meterRecord: 55, context: { sessionStart: iso(firstStart) } });
    expect(sink.readings[12]).toMatchObject({ meterRecord: 0, context: { sessionStart: iso(secondStart) } });
    expect(sink.readings[20]).toMatchObject({ meterRecord: 10, context: { sessionStart: iso(thirdStart) } });
    expect(sink.readings[0]?.context?.sessionStart).toBe('2026-01-05T08:00:00+01:00');
    const absolute = (r: (typeof sink.readings)[number]) => Date.parse(r.context?.sessionStart ?? '') + (r.meterRecord ?? 0) * 60_000;
    expect(sink.readings.map(absolute).slice(10, 14)).toEqual([firstStart + 50 * 60_000, firstStart + 55 * 60_000, secondStart, secondStart + 5 * 60_000]);
    expect(sink.readings.every((r) => r.tMeter === undefined)).toBe(true);
    expect(sink.states.some((s) => /session start unknown/.test(s.detail))).toBe(false);
    expect(sink.quarantined).toEqual([]);
  }, 60_000);

  it('connected mid-session, the stored records the CGM sends oldest first are dated 5 min apart by the newest of them, not each at its arrival', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    let sentAt: number | undefined;
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      // Two hours into the session: records 0-120 min (25, falling 180 -> 84 mg/dL) in one burst, then the live ones.
      for (let i = 0; i <= 24; i++) await cgm.measure({ mgPerDl: 180 - 4 * i, timeOffset: 5 * i });
      sentAt = Date.now();
      await waitFor(() => sink.readings.length === 25, 'the 25 stored records');
    } finally {
      await driver.stop();
    }
    const measured = sink.readings.map((r) => Date.parse(r.context?.measuredAt ?? ''));
    // The newest is dated at its arrival (within the burst's own duration)...
    expect(Math.abs((measured[24] as number) - (sentAt ?? 0))).toBeLessThan(2000);
    // ...and every other one 5 min before the next one, to the ms the ISO times keep (the old code dated all within ~1 s).
    for (let i = 1; i <= 24; i++) expect(Math.abs((measured[i] as number) - (measured[i - 1] as number) - 5 * 60_000)).toBeLessThanOrEqual(2);
    expect(sink.readings.map((r) => r.meterRecord)).toEqual(Array.from({ length: 25 }, (_, i) => 5 * i));
    expect(driver.records).toBe(25);
  }, 60_000);

  it('a reconnect to the same sensor session still suppresses and counts the records it resends', async () => {
    const { cgm, bluez, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      for (let i = 0; i < 4; i++) await cgm.measure({ mgPerDl: 120 + i });
      await waitFor(() => sink.readings.length === 4, 'four records');
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      // The sensor resends its last three records (other bytes: a quality field; same session, offsets and values), then a
      // new one; then one record with another value at a held offset: never a repeat (stored), a new sensor (forgotten).
      for (const offset of [5, 10, 15]) await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 120 + offset / 5, timeOffset: offset, quality: 90 }));
      await cgm.measure({ mgPerDl: 130 });
      await waitFor(() => sink.readings.length === 5, 'the new record');
      await waitFor(() => driver.duplicates === 3, 'the three resent records counted');
      await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 999, timeOffset: 15 }));
      await waitFor(() => sink.readings.length === 6, 'the record with another value');
    } finally {
      await driver.stop();
    }
    expect(bluez.device(ADDRESS).connects).toBe(2);
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [0, 120],
      [5, 121],
      [10, 122],
      [15, 123],
      [20, 130],
      [15, 999],
    ]);
    expect(driver.duplicateRecords).toBe(3);
    expect(driver.sessionRestarts).toBe(1);
  }, 60_000);

  it('a CGM resending its session from the start at a reconnect (more than a day below the highest offset, the same records): repeats, not a new sensor', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS }));
    // 0-1,995 min: the resend starts 1,995 min below the highest, the day rule's drop.
    const session = Array.from({ length: 400 }, (_, i) => ({ mgPerDl: 80 + ((i * 7) % 150), timeOffset: 5 * i }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      expect(await cgm.sendRecords(session)).toBe(400);
      await waitFor(() => sink.readings.length === 400, 'the 400 records');
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      expect(await cgm.sendRecords(session)).toBe(400);
      expect(await cgm.measure({ mgPerDl: 150 })).toBe(2000);
      await waitFor(() => sink.readings.length === 401, 'the new record');
      await waitFor(() => driver.duplicateRecords === 400, 'the 400 resent records counted');
    } finally {
      await driver.stop();
    }
    // Before: the resend from offset 0 was taken for a new sensor (the day rule) and delivered again (never 401 readings).
    expect(sink.readings.map((r) => r.meterRecord)).toEqual([...session.map((r) => r.timeOffset), 2000]);
    expect(driver.sessionRestarts).toBe(0);
  }, 60_000);

  it('with 0x2AAA unreadable, says so; a sensor replaced within its first day loses no record: its values differ from the old ones at the same offsets (before: dropped until its offsets passed the old ones)', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS, faults: { sessionStartUnreadable: true } }));
    try {
      await replacedAfter(cgm, sink, [120, 121, 122, 123]); // 0..15
      for (let i = 0; i < 5; i++) await cgm.measure({ mgPerDl: 200 + i }); // 0..20: 0..15 held with other values
      await waitFor(() => sink.readings.length === 9, 'the five records of the new sensor');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [0, 120],
      [5, 121],
      [10, 122],
      [15, 123],
      [0, 200],
      [5, 201],
      [10, 202],
      [15, 203],
      [20, 204],
    ]);
    expect(driver.duplicateRecords).toBe(0);
    expect(driver.sessionRestarts).toBe(1);
    expect(sink.readings[0]?.context?.sessionStart).toBeUndefined();
    expect(sink.states.some((s) => /session start unknown \(0x2AAA not readable: gatt-failed\): new sensor sessions detected by time offsets only/.test(s.detail))).toBe(true);
    expect(sink.quarantined).toEqual([]);
  }, 60_000);

  it('records held back as a possible resend (fewer than 3 repeats in a row) are handed over when the link is lost: none lost', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS, sessionStartTime: false }));
    try {
      await replacedAfter(cgm, sink, [120, 121, 122]);
      // The new sensor (the same key: no 0x2AAA, no serial): its first two records equal the old ones, then the link drops.
      for (let i = 0; i < 2; i++) await cgm.measure({ mgPerDl: 120 + i });
      await cgm.dropLink();
      await waitFor(() => sink.readings.length === 5, 'the two held back, handed over at the link loss');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => [r.meterRecord, r.value])).toEqual([
      [0, 120],
      [5, 121],
      [10, 122],
      [0, 120],
      [5, 121],
    ]);
    expect(driver.duplicateRecords).toBe(0);
  }, 60_000);

  it('without 0x2AAA in the GATT table, says so and keeps the time-offset rule', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS, sessionStartTime: false }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      for (let i = 0; i < 3; i++) await cgm.measure({ mgPerDl: 120 + i });
      // One record resent (other bytes, same value), then a new one: a single repeat is not enough, it is stored again.
      await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 122, timeOffset: 10, quality: 90 }));
      await cgm.measure({ mgPerDl: 123 });
      await waitFor(() => sink.readings.length === 5, 'five records');
      // Three resent (other bytes again: the transport drops bytes repeated within its window): repeats.
      for (let i = 0; i < 3; i++) await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 120 + i, timeOffset: 5 * i, quality: 91 }));
      await cgm.measure({ mgPerDl: 124 });
      await waitFor(() => sink.readings.length === 6, 'six records');
      await waitFor(() => driver.duplicateRecords === 3, 'the resent records counted');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => r.value)).toEqual([120, 121, 122, 122, 123, 124]);
    expect(sink.states.some((s) => /session start unknown \(0x2AAA absent\): new sensor sessions detected by time offsets only, 3 duplicates suppressed/.test(s.detail))).toBe(true);
  }, 60_000);

  it('quarantines a Session Start Time whose E2E-CRC does not match and keeps the time-offset rule until it reads a good one', async () => {
    const { cgm, sink, driver } = await started(new SimCgm({ address: ADDRESS, faults: { sessionStartCorrupt: true } }));
    try {
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the CGM subscription');
      for (let i = 0; i < 3; i++) await cgm.measure({ mgPerDl: 120 + i });
      await waitFor(() => sink.readings.length === 3, 'the first records');
      // A good 0x2AAA on the next connection: from then on records carry the session start.
      cgm.faults.sessionStartCorrupt = false;
      await cgm.dropLink();
      await waitFor(() => cgm.isNotifying(0x2aa7), 'the resubscription after the reconnect');
      // The CGM resends its first records (taken while the session start was unknown): still repeats.
      for (let i = 0; i < 3; i++) await cgm.sendRaw(0x2aa7, cgm.encode({ mgPerDl: 120 + i, timeOffset: 5 * i }));
      await cgm.measure({ mgPerDl: 123 });
      await waitFor(() => sink.readings.length === 4, 'the record after the reconnect');
      await waitFor(() => driver.duplicateRecords === 3, 'the resent records counted');
    } finally {
      await driver.stop();
    }
    expect(sink.readings.map((r) => r.meterRecord)).toEqual([0, 5, 10, 15]);
    expect(sink.quarantined).toHaveLength(1);
    expect(sink.quarantined[0]).toMatchObject({ sensor: 'cgm', transport: `ble:${ADDRESS}/2aaa` });
    expect(sink.quarantined[0]?.error).toMatch(/Session Start Time: E2E-CRC mismatch/);
    expect(sink.quarantined[0]?.bytes).toHaveLength(11);
    expect(sink.states.some((s) => /session start unknown \(0x2AAA undecodable\)/.test(s.detail))).toBe(true);
    expect(sink.readings.map((r) => r.context?.sessionStart)).toEqual([undefined, undefined, undefined, '2026-01-05T08:00:00+01:00']);
    // The first session start read is not a change of sensor.
    expect(driver.sessionRestarts).toBe(0);
  }, 60_000);
});
