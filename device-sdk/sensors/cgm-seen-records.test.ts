import { describe, expect, it } from 'vitest';
import { CGM_NO_VALUE, CGM_NOT_COMPARABLE, CGM_NOT_HELD, CGM_RESEND_RECOVER, CGM_RESEND_RUN, CGM_SEEN_SESSIONS, CgmResendJudge, CgmSeenRecords, cgmHeldValue } from './cgm-seen-records.js';

describe('CgmSeenRecords', () => {
  it('holds every offset of a session, 0 to 65,535, with its exact value; sized to the highest offset in 4,096-offset steps', () => {
    const seen = new CgmSeenRecords();
    expect(seen.valueOf('sn:A s1', 0)).toBe(CGM_NOT_HELD);
    for (let o = 0; o < 20_160; o += 5) seen.add('sn:A s1', o, cgmHeldValue(100 + (o % 97)));
    expect(seen.bytes).toBe(40_960);
    expect(seen.valueOf('sn:A s1', 0)).toBe(cgmHeldValue(100));
    expect(seen.valueOf('sn:A s1', 1)).toBe(CGM_NOT_HELD);
    expect(seen.valueOf('sn:A s1', 20_155)).toBe(cgmHeldValue(100 + (20_155 % 97)));
    expect(seen.size).toEqual({ sessions: 1, records: 4032 });
    expect(seen.highest('sn:A s1')).toBe(20_155);
    seen.add('sn:A s1', 65_535, 7);
    expect(seen.bytes).toBe(131_072);
    expect(seen.highest('sn:A s1')).toBe(65_535);
    expect(seen.highest('sn:A s2')).toBe(-1);
  });

  it(`keeps the ${CGM_SEEN_SESSIONS} sessions used last: a lookup counts as a use`, () => {
    const seen = new CgmSeenRecords();
    for (let i = 0; i < CGM_SEEN_SESSIONS; i++) seen.add(`sn:A s${i}`, 10, 1);
    expect(seen.valueOf('sn:A s0', 10)).toBe(1);
    seen.add('sn:A s-new', 10, 1);
    // s1 was used least recently, not s0.
    expect(seen.valueOf('sn:A s1', 10)).toBe(CGM_NOT_HELD);
    expect(seen.valueOf('sn:A s0', 10)).toBe(1);
    expect(seen.size.sessions).toBe(CGM_SEEN_SESSIONS);
  });

  it('moves a session onto another, keeping the target’s values where both hold one; forgets one', () => {
    const seen = new CgmSeenRecords();
    seen.add(' ', 0, 3);
    seen.add(' ', 5, 4);
    seen.add(' ', 9000, 5);
    seen.add(' utc 1', 5, 9);
    seen.move(' ', ' utc 1');
    expect([0, 5, 9000].map((o) => seen.valueOf(' utc 1', o))).toEqual([3, 9, 5]);
    expect(seen.valueOf(' ', 0)).toBe(CGM_NOT_HELD);
    seen.move(' utc 1', 'sn:A utc 1');
    expect(seen.keysStartingWith('sn:A ')).toEqual(['sn:A utc 1']);
    expect(seen.keysStartingWith(' ')).toEqual([]);
    seen.forget('sn:A utc 1');
    expect(seen.size).toEqual({ sessions: 0, records: 0 });
  });

  it('held values are exact: every 0.1 mg/dL step its own, no value and values off the 0.1 steps apart', () => {
    const values = Array.from({ length: 6000 }, (_, i) => cgmHeldValue(i / 10));
    expect(new Set(values).size).toBe(6000);
    expect(values.every((v) => v !== CGM_NOT_HELD && v !== CGM_NO_VALUE && v !== CGM_NOT_COMPARABLE)).toBe(true);
    // SFLOAT 1234 x 10^-1 and 1234 x 10^-1 read back as a double: the same.
    expect(cgmHeldValue(1234 * 10 ** -1)).toBe(cgmHeldValue(123.4));
    expect(cgmHeldValue(120)).not.toBe(cgmHeldValue(120.1));
    expect(cgmHeldValue(undefined)).toBe(CGM_NO_VALUE);
    expect(cgmHeldValue(Number.NaN)).toBe(CGM_NO_VALUE);
    expect([12.34, -1, 7000].map(cgmHeldValue)).toEqual([CGM_NOT_COMPARABLE, CGM_NOT_COMPARABLE, CGM_NOT_COMPARABLE]);
  });
});

/** Runs records [offset, value] through a judge; what was handed over, dropped and how many new sessions. */
function judgeAll(judge: CgmResendJudge<number>, records: readonly (readonly [number, number | undefined])[], known = false, session = ' ') {
  const handed: number[] = [];
  let dropped = 0;
  let newSessions = 0;
  for (const [offset, value] of records) {
    const j = judge.judge(session, known, offset, cgmHeldValue(value), offset);
    handed.push(...j.release);
    if (j.newSession) newSessions += 1;
    if (j.handOver) handed.push(offset);
    dropped += j.dropped - j.recovered;
  }
  return { handed, dropped, newSessions };
}

const session = (from: number, to: number, valueAt: (o: number) => number | undefined) => {
  const out: [number, number | undefined][] = [];
  for (let o = from; o <= to; o += 5) out.push([o, valueAt(o)]);
  return out;
};

describe('CgmResendJudge', () => {
  it(`drops a resend once ${CGM_RESEND_RUN} records in a row repeat the held values; the first ${CGM_RESEND_RUN - 1} are held back until then`, () => {
    const judge = new CgmResendJudge<number>();
    const old = session(0, 2000, (o) => 100 + (o % 90));
    expect(judgeAll(judge, old).handed).toHaveLength(401);
    const first = judge.judge(' ', false, 0, cgmHeldValue(100), 0);
    expect(first).toEqual({ release: [], recovered: 0, newSession: false, handOver: false, dropped: 0 });
    expect(judge.holding).toBe(1);
    judge.judge(' ', false, 5, cgmHeldValue(105), 5);
    expect(judge.holding).toBe(2);
    expect(judge.judge(' ', false, 10, cgmHeldValue(110), 10).dropped).toBe(3);
    expect(judge.holding).toBe(0);
    // The rest of the session resent: repeats, then the next new record.
    const rest = judgeAll(judge, [...old.slice(3), [2005, 111]]);
    expect(rest).toEqual({ handed: [2005], dropped: 398, newSessions: 0 });
  });

  it('a new sensor whose first records repeat the old session’s values (fewer than the run) loses none: held back, then handed over', () => {
    const judge = new CgmResendJudge<number>();
    judgeAll(judge, session(0, 1195, (o) => 100 + (o % 50)));
    // The new sensor (same key: no 0x2AAA, no serial): its first two records equal the old ones at 0 and 5, then not.
    const fresh = session(0, 595, (o) => (o < 10 ? 100 + o : 200 + (o % 40)));
    const r = judgeAll(judge, fresh);
    expect(r.handed).toEqual(fresh.map(([o]) => o));
    expect(r.dropped).toBe(0);
    expect(r.newSessions).toBe(1);
    // The new sensor's session resent from 0: repeats, its first two records included (held in the new session).
    expect(judgeAll(judge, fresh)).toEqual({ handed: [], dropped: 120, newSessions: 0 });
  });

  it(`a new sensor whose first ${CGM_RESEND_RUN} or more records repeat the old ones: dropped as a run, handed over when the next one differs (up to ${CGM_RESEND_RECOVER})`, () => {
    for (const same of [CGM_RESEND_RUN, 10, CGM_RESEND_RECOVER]) {
      const judge = new CgmResendJudge<number>();
      judgeAll(judge, session(0, 1195, (o) => 100 + (o % 50)));
      const fresh = session(0, 595, (o) => (o < 5 * same ? 100 + (o % 50) : 200 + (o % 40)));
      let dropped = 0;
      for (const [o, v] of fresh.slice(0, same)) dropped += judge.judge(' ', false, o, cgmHeldValue(v), o).dropped;
      expect(dropped).toBe(same);
      // A lost link or a timeout in between releases nothing of a confirmed run, and does not end it.
      expect(judge.release()).toEqual([]);
      const next = judge.judge(' ', false, 5 * same, cgmHeldValue(fresh[same]?.[1]), 5 * same);
      expect(next).toEqual({ release: fresh.slice(0, same).map(([o]) => o), recovered: same, newSession: true, handOver: true, dropped: 0 });
      // They are the new session's: its resend from 0 is repeats.
      judgeAll(judge, fresh.slice(same + 1));
      expect(judgeAll(judge, fresh)).toEqual({ handed: [], dropped: 120, newSessions: 0 });
    }
  });

  it('a reconnect’s resend of the session’s newest 1-2 records is dropped when the next new record or a timeout ends it; a run below the top is not', () => {
    const judge = new CgmResendJudge<number>();
    judgeAll(judge, session(0, 100, (o) => 100 + o));
    // The last two sent again first on a new link, then the next new record: both dropped.
    judge.judge(' ', true, 95, cgmHeldValue(195), 95, true);
    judge.judge(' ', true, 100, cgmHeldValue(200), 100);
    expect(judge.judge(' ', true, 105, cgmHeldValue(205), 105)).toEqual({ release: [], recovered: 0, newSession: false, handOver: true, dropped: 2 });
    // The last one sent again on a new link, then a lost link or a timeout: dropped, nothing handed over.
    judge.judge(' ', true, 105, cgmHeldValue(205), 105, true);
    expect(judge.dropTail()).toBe(1);
    expect(judge.release()).toEqual([]);
    // The same on the link that sent it (no reconnect between): handed over (in doubt, stored twice).
    judge.judge(' ', true, 105, cgmHeldValue(205), 105, false);
    expect(judge.dropTail()).toBe(0);
    expect(judge.release()).toEqual([105]);
    // Two repeats that skip a held record, or stop below the top, are handed over (possibly a new sensor's).
    judge.judge(' ', true, 90, cgmHeldValue(190), 90, true);
    judge.judge(' ', true, 100, cgmHeldValue(200), 100);
    expect(judge.dropTail()).toBe(0);
    expect(judge.release()).toEqual([90, 100]);
    judge.judge(' ', true, 0, cgmHeldValue(100), 0, true);
    judge.judge(' ', true, 5, cgmHeldValue(105), 5);
    expect(judge.dropTail()).toBe(0);
    expect(judge.release()).toEqual([0, 5]);
  });

  it('a new sensor’s first valued records equal to a short old session’s are never taken for the tail (QA: warm-up below, a one-record session)', () => {
    // The old sensor: warm-up records without a value (0..115), then one valued record at 120.
    const judge = new CgmResendJudge<number>();
    const warm = session(0, 115, () => undefined);
    judgeAll(judge, [...warm, [120, 143]]);
    // The new sensor, same key: its warm-up records (equal: no value), then 143 at 120 first on a new link, then 150.
    judgeAll(judge, warm);
    judge.judge(' ', false, 120, cgmHeldValue(143), 120, true);
    expect(judge.judge(' ', false, 125, cgmHeldValue(150), 125).release).toEqual([120]);
    // Without a session key that tells sessions apart, the old session's top repeated first on a new link (a new sensor
    // whose lower records were never received: QA, 0:110 5:112 then 5:112 10:118): handed over, never dropped.
    const late = new CgmResendJudge<number>();
    judgeAll(late, [[0, 110], [5, 112]]);
    late.judge(' ', false, 5, cgmHeldValue(112), 5, true);
    expect(late.judge(' ', false, 10, cgmHeldValue(118), 10)).toEqual({ release: [5], recovered: 0, newSession: false, handOver: true, dropped: 0 });
    late.judge(' ', false, 10, cgmHeldValue(118), 10, true);
    expect(late.dropTail()).toBe(0);
    expect(late.release()).toEqual([10]);
    // A one-record session starting at 0, repeated by a new sensor's first record on a new link: handed over.
    const one = new CgmResendJudge<number>();
    judgeAll(one, [[0, 120]]);
    one.judge(' ', false, 0, cgmHeldValue(120), 0, true);
    expect(one.judge(' ', false, 5, cgmHeldValue(125), 5).release).toEqual([0]);
  });

  it('a held offset with another value is never a repeat, within the first day too (a sensor replaced within it)', () => {
    const judge = new CgmResendJudge<number>();
    judgeAll(judge, session(0, 1195, (o) => 100 + (o % 50)));
    const fresh = session(0, 595, (o) => 200 + (o % 40));
    expect(judgeAll(judge, fresh)).toEqual({ handed: fresh.map(([o]) => o), dropped: 0, newSessions: 1 });
    // The old session's values are forgotten: a later run of them at the same offsets is the new sensor's, not a repeat.
    expect(judgeAll(judge, session(600, 610, (o) => 100 + (o % 50))).dropped).toBe(0);
  });

  it('a run restarts when offsets go back (a new sensor sending offset 0 after a confirmed resend)', () => {
    const judge = new CgmResendJudge<number>();
    judgeAll(judge, session(0, 100, () => 120));
    expect(judgeAll(judge, session(0, 20, () => 120)).dropped).toBe(5);
    // Offset 0 again with the same value: held back, not dropped; a different value next hands it over.
    expect(judge.judge(' ', false, 0, cgmHeldValue(120), 0).dropped).toBe(0);
    expect(judgeAll(judge, [[5, 140]])).toEqual({ handed: [0, 5], dropped: 0, newSessions: 1 });
  });

  it('releases the records held back on request (a timeout, a lost link) and when another session’s record comes', () => {
    const judge = new CgmResendJudge<number>();
    judgeAll(judge, session(0, 100, () => 120));
    judgeAll(judge, [[50, 120], [55, 120]]);
    expect(judge.release()).toEqual([50, 55]);
    judgeAll(judge, [[60, 120]]);
    expect(judge.judge('sn:B ', false, 0, cgmHeldValue(90), 0).release).toEqual([60]);
  });

  it('an offset not held below the highest: a gap when the session key is known, a new sensor more than a day below when not', () => {
    const known = new CgmResendJudge<number>();
    judgeAll(known, session(120, 4000, (o) => 100 + (o % 90)), true);
    // A resend from 0 whose first records (warm-up, no value) were never held: handed over, then the run drops the rest.
    const resend = session(0, 4000, (o) => (o < 120 ? undefined : 100 + (o % 90)));
    expect(judgeAll(known, resend, true)).toEqual({ handed: resend.slice(0, 24).map(([o]) => o), dropped: 777, newSessions: 0 });
    // Without a session key the day rule: a valued record not held more than a day below the highest is a new sensor; a
    // record without a value tells nothing (the warm-up of the resend above, or of a new sensor: its first value does).
    const unknown = new CgmResendJudge<number>();
    judgeAll(unknown, session(120, 4000, (o) => 100 + (o % 90)));
    expect(judgeAll(unknown, resend)).toEqual({ handed: resend.slice(0, 24).map(([o]) => o), dropped: 777, newSessions: 0 });
    const fresh = session(0, 300, (o) => (o < 120 ? undefined : 200 + (o % 40)));
    expect(judgeAll(unknown, fresh)).toEqual({ handed: fresh.map(([o]) => o), dropped: 0, newSessions: 1 });
    const next = new CgmResendJudge<number>();
    judgeAll(next, session(120, 4000, (o) => 100 + (o % 90)));
    expect(judgeAll(next, [[0, 150]])).toEqual({ handed: [0], dropped: 0, newSessions: 1 });
  });

  it('records without a value, or with values off the 0.1 mg/dL steps, are never repeats', () => {
    const judge = new CgmResendJudge<number>();
    const odd = session(0, 50, (o) => (o % 10 === 0 ? undefined : 12.34));
    judgeAll(judge, odd);
    expect(judgeAll(judge, odd)).toEqual({ handed: odd.map(([o]) => o), dropped: 0, newSessions: 0 });
  });

  it('replays stored records: the same value again keeps the session, another value starts a new one', () => {
    const judge = new CgmResendJudge<number>();
    for (const [o, v] of session(0, 1195, (x) => 100 + (x % 50))) judge.replay(' ', false, o, cgmHeldValue(v));
    for (const [o, v] of session(0, 100, (x) => 100 + (x % 50))) judge.replay(' ', false, o, cgmHeldValue(v));
    expect(judge.highest).toBe(1195);
    for (const [o, v] of session(0, 595, (x) => 200 + (x % 40))) judge.replay(' ', false, o, cgmHeldValue(v));
    expect(judge.highest).toBe(595);
    expect(judge.seen.valueOf(' ', 600)).toBe(CGM_NOT_HELD);
    // A new sensor stored whose first two records equal the old ones: held as the new session's (its resend is repeats).
    for (const [o, v] of session(0, 1195, (x) => 100 + (x % 50))) judge.replay(' ', false, o, cgmHeldValue(v));
    const fresh = session(0, 595, (x) => (x < 10 ? 100 + x : 200 + (x % 40)));
    for (const [o, v] of fresh) judge.replay(' ', false, o, cgmHeldValue(v));
    expect(judgeAll(judge, fresh)).toEqual({ handed: [], dropped: 120, newSessions: 0 });
  });
});
