import { describe, expect, it } from 'vitest';
import { CgmRecordClock } from './ble-cgm.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 6, 20, 0, 0);

/** Observes and dates one record at a time, as the driver does for records that are not part of a burst. */
function measuredAt(clock: CgmRecordClock, offset: number, now: number, monotonic: number): number {
  clock.observe(offset, monotonic);
  return clock.dateOf(offset, now, monotonic);
}

describe('CgmRecordClock: when a CGM record was measured, by this device', () => {
  it('dates live records at their arrival and a burst after a link loss at their own times', () => {
    const clock = new CgmRecordClock();
    // Records every 5 min arrive 2 s after they are measured (monotonic clock from 1000 ms).
    const arrive = (offset: number, delayMs: number) => measuredAt(clock, offset, T0 + offset * MIN + delayMs, 1000 + offset * MIN + delayMs);
    expect([0, 5, 10, 35].map((o) => arrive(o, 2000))).toEqual([0, 5, 10, 35].map((o) => T0 + o * MIN + 2000));
    // The link was down from 35 to 70 min: the records of 40-65 min come in one burst at 70 min.
    const burst = [40, 45, 50, 55, 60, 65].map((o, i) => measuredAt(clock, o, T0 + 70 * MIN + i * 50, 1000 + 70 * MIN + i * 50));
    expect(burst).toEqual([40, 45, 50, 55, 60, 65].map((o) => T0 + o * MIN + 2000));
  });

  it('is not moved by a step of the wall clock, and starts afresh with a new sensor session', () => {
    const clock = new CgmRecordClock();
    expect(measuredAt(clock, 0, T0, 5000)).toBe(T0);
    // The wall clock is set back 1 h (NTP) between two records: the record is dated on the new wall clock.
    expect(measuredAt(clock, 5, T0 + 5 * MIN - 3_600_000, 5000 + 5 * MIN)).toBe(T0 + 5 * MIN - 3_600_000);
    clock.reset();
    expect(measuredAt(clock, 0, T0 + 10 * MIN, 5000 + 10 * MIN)).toBe(T0 + 10 * MIN);
  });

  it('dates a burst received before any live record by its newest record once all of it is observed', () => {
    const clock = new CgmRecordClock();
    // Connected mid-session: records 0-20 min arrive together at 20 min (2 s after the last was measured).
    const arrivals = [0, 5, 10, 15, 20].map((o, i) => ({ o, now: T0 + 20 * MIN + 2000 + i * 10, mono: 20 * MIN + 2000 + i * 10 }));
    // Dated one by one, each record is dated at its own arrival: 10 ms apart instead of 5 min.
    const oneByOne = new CgmRecordClock();
    expect(arrivals.map((a) => measuredAt(oneByOne, a.o, a.now, a.mono))).toEqual(arrivals.map((a) => a.now));
    // Observed together first, they get their own times back.
    for (const a of arrivals) clock.observe(a.o, a.mono);
    expect(arrivals.map((a) => clock.dateOf(a.o, a.now, a.mono))).toEqual(arrivals.map((a) => T0 + a.o * MIN + 2040));
  });
});
