import { describe, expect, it } from 'vitest';
import { formatUtcOffset, isTimeZone, wallClockInstants, wallClockToUtcMs, zoneOffsetMs } from './time-zone.js';

const HOUR = 3600_000;

describe('time zones', () => {
  it('knows IANA names and refuses offsets and made-up names', () => {
    expect(['UTC', 'America/New_York', 'Africa/Nairobi', 'Asia/Kolkata'].map(isTimeZone)).toEqual([true, true, true, true]);
    expect(['', '+03:00', 'Mars/Olympus_Mons', 'EST5EDT7'].map(isTimeZone)).toEqual([false, false, false, false]);
  });

  it('reads a wall clock in a zone with its DST rules', () => {
    // 07:00 on the wall in New York: EST (UTC-5) in January, EDT (UTC-4) in July.
    expect(wallClockToUtcMs(Date.UTC(2026, 0, 1, 7), 'America/New_York')).toBe(Date.UTC(2026, 0, 1, 12));
    expect(wallClockToUtcMs(Date.UTC(2026, 6, 1, 7), 'America/New_York')).toBe(Date.UTC(2026, 6, 1, 11));
    expect(wallClockToUtcMs(Date.UTC(2026, 6, 1, 7), 'Asia/Kolkata')).toBe(Date.UTC(2026, 6, 1, 1, 30));
    expect(zoneOffsetMs('Asia/Kolkata', Date.UTC(2026, 6, 1))).toBe(5.5 * HOUR);
  });

  it('takes the first of a repeated hour and reads a skipped hour with the offset before the change', () => {
    // 2026-11-01 01:30 happens twice in New York (EDT, then EST); 2026-03-08 02:30 never happens.
    expect(wallClockToUtcMs(Date.UTC(2026, 10, 1, 1, 30), 'America/New_York')).toBe(Date.UTC(2026, 10, 1, 5, 30));
    expect(wallClockToUtcMs(Date.UTC(2026, 2, 8, 2, 30), 'America/New_York')).toBe(Date.UTC(2026, 2, 8, 7, 30));
  });

  it('gives both instants of a repeated wall time, none of a skipped one, one otherwise', () => {
    // Berlin, 25 Oct 2026: 02:10 happens at 00:10 UTC (CEST) and at 01:10 UTC (CET); 29 Mar 2026 02:30 never.
    expect(wallClockInstants(Date.UTC(2026, 9, 25, 2, 10), 'Europe/Berlin')).toEqual([Date.UTC(2026, 9, 25, 0, 10), Date.UTC(2026, 9, 25, 1, 10)]);
    expect(wallClockInstants(Date.UTC(2026, 2, 29, 2, 30), 'Europe/Berlin')).toEqual([]);
    expect(wallClockInstants(Date.UTC(2026, 9, 25, 3, 0), 'Europe/Berlin')).toEqual([Date.UTC(2026, 9, 25, 2, 0)]);
    // Lord Howe Island moves its clock by 30 min: 01:45 on 5 Apr 2026 is twice, 30 min apart.
    expect(wallClockInstants(Date.UTC(2026, 3, 5, 1, 45), 'Australia/Lord_Howe')).toEqual([Date.UTC(2026, 3, 4, 14, 45), Date.UTC(2026, 3, 4, 15, 15)]);
    expect(wallClockInstants(Number.NaN, 'Europe/Berlin')).toEqual([]);
    expect(wallClockToUtcMs(Date.UTC(2026, 2, 29, 2, 30), 'Europe/Berlin')).toBe(Date.UTC(2026, 2, 29, 1, 30));
  });

  it('formats UTC offsets', () => {
    expect([formatUtcOffset(-300), formatUtcOffset(330), formatUtcOffset(0)]).toEqual(['-05:00', '+05:30', '+00:00']);
  });
});
