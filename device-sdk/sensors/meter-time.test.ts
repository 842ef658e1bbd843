import { describe, expect, it } from 'vitest';
import { FRESH_READING_MS, meterTime, placeWallClock } from './meter-time.js';

const MIN = 60_000;
const utc = (h: number, m: number) => Date.UTC(2026, 9, 25, h, m);
// Berlin, 25 Oct 2026: wall 02:10 is 00:10 UTC (first pass, CEST) or 01:10 UTC (second pass, CET).
const BOTH = [utc(0, 10), utc(1, 10)];

describe('a wall time repeated when summer time ends (placeWallClock)', () => {
  it('takes the instant a fresh reading can be: not in the future, and the one just before its arrival', () => {
    expect(placeWallClock(BOTH, { receivedAtMs: utc(0, 11) })).toEqual({ t: utc(0, 10), by: 'reception' });
    expect(placeWallClock(BOTH, { receivedAtMs: utc(1, 11) })).toEqual({ t: utc(1, 10), by: 'reception' });
    // A meter clock a few minutes fast: still the instant near the arrival.
    expect(placeWallClock(BOTH, { receivedAtMs: utc(0, 5) })).toEqual({ t: utc(0, 10), by: 'reception' });
  });

  it('takes the earliest instant not before the previous record, or the last completed transfer', () => {
    expect(placeWallClock(BOTH, { receivedAtMs: utc(5, 0), previousRecordMs: utc(0, 50) })).toEqual({ t: utc(1, 10), by: 'record-order' });
    expect(placeWallClock(BOTH, { receivedAtMs: utc(5, 0), previousRecordMs: utc(0, 5) })).toEqual({ t: utc(0, 10), by: 'default' });
    expect(placeWallClock(BOTH, { receivedAtMs: utc(5, 0), lastTransferMs: utc(1, 0) })).toEqual({ t: utc(1, 10), by: 'record-order' });
    // Within the margin of the last transfer (a meter clock minutes off): not ruled out.
    expect(placeWallClock(BOTH, { receivedAtMs: utc(5, 0), lastTransferMs: utc(0, 10) + FRESH_READING_MS })).toEqual({ t: utc(0, 10), by: 'default' });
  });

  it('drops the order when it rules out both (a clock set back), and never crashes on nothing to place', () => {
    expect(placeWallClock(BOTH, { receivedAtMs: utc(5, 0), previousRecordMs: utc(3, 0) })).toEqual({ t: utc(0, 10), by: 'default' });
    expect(placeWallClock(BOTH, { receivedAtMs: utc(0, 30), previousRecordMs: utc(3, 0) })).toEqual({ t: utc(0, 10), by: 'reception' });
    expect(placeWallClock(BOTH, { receivedAtMs: utc(-3, 0) })).toEqual({ t: utc(0, 10), by: 'default' });
    expect(placeWallClock([], { receivedAtMs: utc(0, 0) })).toBeUndefined();
  });

  it('marks the choice in the reading context, and a skipped wall time', () => {
    const zone = { basis: 'configured-zone', zone: 'Europe/Berlin' } as const;
    expect(meterTime(Date.UTC(2026, 9, 25, 2, 10), zone, { receivedAtMs: utc(1, 10) + MIN })).toEqual({
      tMeter: utc(1, 10),
      context: { meterClock: '2026-10-25T02:10:00', meterTimeBasis: 'configured-zone', meterTimeZone: 'Europe/Berlin', meterTimeDst: 'repeated-second', meterTimeDstBy: 'reception' },
    });
    expect(meterTime(Date.UTC(2026, 9, 25, 2, 10), zone).context).toMatchObject({ meterTimeDst: 'repeated-first', meterTimeDstBy: 'default' });
    expect(meterTime(Date.UTC(2026, 2, 29, 2, 30), zone)).toMatchObject({ tMeter: Date.UTC(2026, 2, 29, 1, 30), context: { meterTimeDst: 'skipped' } });
    expect(meterTime(Date.UTC(2026, 9, 26, 2, 10), zone).context.meterTimeDst).toBeUndefined();
  });
});
