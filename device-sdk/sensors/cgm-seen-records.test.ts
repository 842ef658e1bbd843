import { describe, expect, it } from 'vitest';
import { CGM_SEEN_SESSIONS, CgmSeenRecords, cgmRecordMark } from './cgm-seen-records.js';

describe('CgmSeenRecords', () => {
  it('holds every offset of a session, 0 to 65,535, with its mark; sized to the highest offset in 4,096-byte steps', () => {
    const seen = new CgmSeenRecords();
    expect(seen.markOf('sn:A s1', 0)).toBe(0);
    for (let o = 0; o < 20_160; o += 5) seen.add('sn:A s1', o, cgmRecordMark(100 + (o % 97)));
    expect(seen.bytes).toBe(20_480);
    expect(seen.markOf('sn:A s1', 0)).toBe(cgmRecordMark(100));
    expect(seen.markOf('sn:A s1', 1)).toBe(0);
    expect(seen.markOf('sn:A s1', 20_155)).toBe(cgmRecordMark(100 + (20_155 % 97)));
    expect(seen.size).toEqual({ sessions: 1, records: 4032 });
    expect(seen.highest('sn:A s1')).toBe(20_155);
    seen.add('sn:A s1', 65_535, 7);
    expect(seen.bytes).toBe(65_536);
    expect(seen.highest('sn:A s1')).toBe(65_535);
    expect(seen.highest('sn:A s2')).toBe(-1);
  });

  it(`keeps the ${CGM_SEEN_SESSIONS} sessions used last: a lookup counts as a use`, () => {
    const seen = new CgmSeenRecords();
    for (let i = 0; i < CGM_SEEN_SESSIONS; i++) seen.add(`sn:A s${i}`, 10, 1);
    expect(seen.markOf('sn:A s0', 10)).toBe(1);
    seen.add('sn:A s-new', 10, 1);
    // s1 was used least recently, not s0.
    expect(seen.markOf('sn:A s1', 10)).toBe(0);
    expect(seen.markOf('sn:A s0', 10)).toBe(1);
    expect(seen.size.sessions).toBe(CGM_SEEN_SESSIONS);
  });

  it('moves a session onto another, keeping the target’s marks where both hold one; forgets one', () => {
    const seen = new CgmSeenRecords();
    seen.add(' ', 0, 3);
    seen.add(' ', 5, 4);
    seen.add(' ', 9000, 5);
    seen.add(' utc 1', 5, 9);
    seen.move(' ', ' utc 1');
    expect([0, 5, 9000].map((o) => seen.markOf(' utc 1', o))).toEqual([3, 9, 5]);
    expect(seen.markOf(' ', 0)).toBe(0);
    seen.move(' utc 1', 'sn:A utc 1');
    expect(seen.keysStartingWith('sn:A ')).toEqual(['sn:A utc 1']);
    expect(seen.keysStartingWith(' ')).toEqual([]);
    seen.forget('sn:A utc 1');
    expect(seen.size).toEqual({ sessions: 0, records: 0 });
  });

  it('marks are 1-255, the same for the same value, 255 without a value', () => {
    const marks = Array.from({ length: 581 }, (_, i) => cgmRecordMark(20 + i));
    expect(marks.every((m) => m >= 1 && m <= 255)).toBe(true);
    expect(cgmRecordMark(120.5)).toBe(cgmRecordMark(120.5));
    expect(cgmRecordMark(undefined)).toBe(255);
    // Neighbouring values (a new sensor's reading beside the old one's) differ.
    expect(marks.filter((m, i) => i > 0 && m === marks[i - 1])).toEqual([]);
  });
});
