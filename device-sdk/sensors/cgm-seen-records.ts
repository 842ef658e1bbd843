/**
 * The CGM records a `ble-cgm` driver handed over, for duplicate detection: per sensor session (`<CGM key> <session
 * key>`, see ble-cgm.ts) one uint16 per Time Offset (a uint16 of minutes, CGMS §3.1.1.4: at most 65,536 per session),
 * 0 when no record at that offset was handed over, else the record's exact glucose value (`cgmHeldValue`: mg/dL x 10
 * + 1, or a code for a record without a value), so that a whole session is remembered, whatever its length and
 * interval, and a resent record (the same value at the same offset) is told from a new sensor's (ble-cgm.ts "Sensor
 * sessions", `CgmResendJudge`).
 *
 * Bounded: the `CGM_SEEN_SESSIONS` sessions used last (a record handed over, looked up or moved); a session is sized to
 * its highest offset (4,096-offset steps, 8 KB): 40 KB for a 14-day session at any interval, 128 KB at most (45.5 days).
 *
 * Before, a session held an 8-bit hash of the value and one equal hash made a record a repeat: QA (real traces,
 * hall2018) found a replaced sensor's first record dropped in 46 of 2,000 swaps (1.86% of first records collide: 1.38%
 * the same mg/dL, 0.48% hash collisions).
 */

/**
 * Sensor sessions remembered (the ones used last). A CGM resends records of its current session only (its Time Offsets
 * count from that session's start); 8 covers the current session and the 7 before it: 7 sensor replacements, 49-105
 * days of 7-15-day sensors, or two CGMs alternating under one sensor name with 3 earlier sessions each.
 */
export const CGM_SEEN_SESSIONS = 8;
/** Held value: no record at that offset handed over. */
export const CGM_NOT_HELD = 0;
/** Held value of a record without a finite glucose value (a warm-up record, quarantined): neither a repeat nor another value. */
export const CGM_NO_VALUE = 0xfffe;
/** Held value of a value not in 0.1 mg/dL steps from 0 to 6,553.2: compared with nothing (never a repeat). */
export const CGM_NOT_COMPARABLE = 0xffff;
const OFFSETS = 0x10000;
const STEP = 4096;

/**
 * The held value of a record with glucose `value` (mg/dL, undefined when the record has none): its exact value as
 * mg/dL x 10 + 1 (CGMS sends SFLOAT mg/dL: 0.1 mg/dL steps below 204.8, whole mg/dL to 2,047; finer steps occur only
 * below 20.48 mg/dL), `CGM_NO_VALUE` without a value, `CGM_NOT_COMPARABLE` for a value not in 0.1 mg/dL steps from 0
 * to 6,553.2.
 */
export function cgmHeldValue(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return CGM_NO_VALUE;
  const tenths = Math.round(value * 10);
  if (tenths < 0 || tenths + 1 >= CGM_NO_VALUE || Math.abs(value * 10 - tenths) > 1e-6) return CGM_NOT_COMPARABLE;
  return tenths + 1;
}

export class CgmSeenRecords {
  /** Session key -> held values by time offset; Map order is use order (least recently used first). */
  private readonly sessions = new Map<string, Uint16Array>();

  constructor(private readonly limit = CGM_SEEN_SESSIONS) {}

  /** The value held for `offset` of `session` (`CGM_NOT_HELD`: none handed over). */
  valueOf(session: string, offset: number): number {
    const values = this.use(session);
    return values !== undefined && offset < values.length ? (values[offset] as number) : CGM_NOT_HELD;
  }

  /** Takes the record at `offset` of `session`, with held value `value` (`cgmHeldValue`), as handed over. */
  add(session: string, offset: number, value: number): void {
    let values = this.use(session);
    if (values === undefined || offset >= values.length) {
      const grown = new Uint16Array(Math.min(OFFSETS, (Math.floor(offset / STEP) + 1) * STEP));
      if (values !== undefined) grown.set(values);
      values = grown;
      this.sessions.delete(session);
      this.sessions.set(session, values);
      if (this.sessions.size > this.limit) this.sessions.delete(this.sessions.keys().next().value as string);
    }
    values[offset] = value;
  }

  /** Forgets the records of `session` (a new sensor session under the same key). */
  forget(session: string): void {
    this.sessions.delete(session);
  }

  /** Moves the records of `from` to `to` (kept where `to` holds one at the same offset). */
  move(from: string, to: string): void {
    const values = this.sessions.get(from);
    if (values === undefined || from === to) return;
    this.sessions.delete(from);
    const target = this.sessions.get(to);
    let merged = values;
    if (target !== undefined) {
      merged = target.length >= values.length ? target : new Uint16Array(values.length);
      if (merged !== target) merged.set(target);
      values.forEach((value, offset) => {
        if (merged[offset] === CGM_NOT_HELD) merged[offset] = value;
      });
    }
    this.sessions.delete(to);
    this.sessions.set(to, merged);
  }

  /** Session keys held that start with `prefix`. */
  keysStartingWith(prefix: string): string[] {
    return [...this.sessions.keys()].filter((k) => k.startsWith(prefix));
  }

  /** The highest offset held of `session`, or -1. */
  highest(session: string): number {
    const values = this.sessions.get(session);
    if (values !== undefined) for (let o = values.length - 1; o >= 0; o--) if (values[o] !== CGM_NOT_HELD) return o;
    return -1;
  }

  /** Sessions held, and records held in all of them. */
  get size(): { sessions: number; records: number } {
    let records = 0;
    for (const values of this.sessions.values()) for (const v of values) if (v !== CGM_NOT_HELD) records += 1;
    return { sessions: this.sessions.size, records };
  }

  /** Bytes of held values. */
  get bytes(): number {
    let n = 0;
    for (const values of this.sessions.values()) n += values.byteLength;
    return n;
  }

  private use(session: string): Uint16Array | undefined {
    const values = this.sessions.get(session);
    if (values !== undefined) {
      this.sessions.delete(session);
      this.sessions.set(session, values);
    }
    return values;
  }
}

/**
 * Consecutive records (ascending time offsets) that must repeat the values held at their offsets before they are
 * dropped as a resend; fewer are handed over, unless they repeat the session's newest records (`tailRun`). A new sensor's first record
 * repeats the old session's at its offset in 1.39% of 2,000,000 random pairs of real traces (hall2018; QA: 1.86% over
 * the first 50 records), its first 2 in 0.16%, its first 3 in 0.030% (609): those are dropped, and handed over after all
 * when a record with another value follows (`CGM_RESEND_RECOVER`).
 */
export const CGM_RESEND_RUN = 3;
/**
 * A record below the highest time offset further than this (minutes) at an offset not held starts a new sensor
 * session when the session key cannot tell (no session start read on this link): time offsets restart at 0 with a new
 * sensor (CGMS §3.1.1.4). A record resent after a reconnect is minutes old, not a day.
 */
export const CGM_SESSION_RESTART_MINUTES = 24 * 60;

/**
 * A run of repeats up to this long is kept after it was dropped, so that a record with another value at the next
 * offset (a new sensor whose first records happened to repeat the old session's values) hands it over after all. A run
 * of 32 equal values of two sensors at the same offsets: not seen in 2,000,000 random pairs of real traces (hall2018:
 * 3 in a row 609 times, 5 in a row 25 times).
 */
export const CGM_RESEND_RECOVER = 32;

/** What `CgmResendJudge.judge` decided for a record. */
export interface CgmJudgement<T> {
  /** Records held back before, to hand over now, before a new session starts. */
  release: T[];
  /** Of `release`, those dropped before as repeats (counted then): a run taken back (`CGM_RESEND_RECOVER`). */
  recovered: number;
  /** The record starts a new sensor session under the same key: the records held of it were forgotten. */
  newSession: boolean;
  /** The record is to be handed over (after `release`, and after the new session started when `newSession`). */
  handOver: boolean;
  /** Records dropped as repeats now: the record and those held back with it (a resend of `CGM_RESEND_RUN` confirmed). */
  dropped: number;
}

interface RunEntry<T> {
  offset: number;
  value: number;
  record: T;
}

/**
 * Tells resent CGM records from new ones by the values held of each session (`CgmSeenRecords`). Pure (no I/O, no
 * timers): the driver holds back, times out and hands over. A record at an offset:
 * - not held: handed over (a gap filled, or the next record). More than `CGM_SESSION_RESTART_MINUTES` below the
 *   highest while the session key cannot tell (`known` false), with a value, a new sensor: the session's records are
 *   forgotten.
 * - held with another value (or a value where the record held had none, or none where it had one): a new sensor under
 *   the same key (or a CGM that changed a record: in doubt, stored twice); never a repeat. The session's records are
 *   forgotten, the held-back released, the record handed over. When it follows a run of repeats (the next offset up),
 *   the run's records, up to `CGM_RESEND_RECOVER`, are handed over too (`recovered`): they were the new sensor's.
 * - held with the same value: held back (`holding`, at most `CGM_RESEND_RUN` - 1 records) until `CGM_RESEND_RUN`
 *   records in a row (ascending offsets) repeat theirs: then they and the following repeats are dropped. Any other
 *   record releases them first (handed over: a duplicate is recoverable, a lost reading is not), as does the driver on
 *   a timeout or a lost link (`release`).
 * - held without a comparable value (`CGM_NO_VALUE`, `CGM_NOT_COMPARABLE`) on either side: handed over, nothing else.
 */
export class CgmResendJudge<T> {
  readonly seen = new CgmSeenRecords();
  /** The highest time offset of the current session. */
  highest = -1;
  /** The current run of repeats: held back while shorter than `CGM_RESEND_RUN`, then dropped but kept (`CGM_RESEND_RECOVER`). */
  private entries: RunEntry<T>[] = [];
  private run = 0;
  private runLast = -1;
  private runSession = '';
  /** The run's first record was the first judged on its link, under a session key that tells sessions apart (`tailRun`). */
  private runMayBeTail = false;
  /** `replay`'s run of records equal to those held (ascending offsets of one session). */
  private replayRun: { offset: number; value: number }[] = [];
  private replaySession = '';

  /** Records held back, waiting for the run of repeats to be confirmed or broken. */
  get holding(): number {
    return this.run < CGM_RESEND_RUN ? this.entries.length : 0;
  }

  /** Judges the record at `offset` of `session` with held value `value`; `known`: the session key tells sessions apart (read on this link). */
  judge(session: string, known: boolean, offset: number, value: number, record: T, firstOnLink = false): CgmJudgement<T> {
    const held = this.seen.valueOf(session, offset);
    const ascending = session === this.runSession && offset > this.runLast;
    if (held === value && value !== CGM_NO_VALUE && value !== CGM_NOT_COMPARABLE) {
      const release = ascending ? [] : this.endRun();
      if (this.entries.length === 0) this.runMayBeTail = firstOnLink && known;
      this.runSession = session;
      this.runLast = offset;
      this.run += 1;
      this.highest = Math.max(this.highest, offset);
      const dropped = this.run < CGM_RESEND_RUN ? 0 : this.run === CGM_RESEND_RUN ? this.entries.length + 1 : 1;
      if (this.run <= CGM_RESEND_RECOVER) this.entries.push({ offset, value, record });
      else this.entries = [];
      return { release, recovered: 0, newSession: false, handOver: false, dropped };
    }
    const mismatch = held !== CGM_NOT_HELD && held !== value && held !== CGM_NOT_COMPARABLE && value !== CGM_NOT_COMPARABLE;
    const confirmed = this.run >= CGM_RESEND_RUN;
    // A shorter run that repeated the session's newest records, followed by the next new record: a resend (`tailRun`).
    const tail = !confirmed && held === CGM_NOT_HELD && ascending && offset > this.highest ? this.tailRun() : 0;
    const run = (confirmed && !(mismatch && ascending)) || tail > 0 ? [] : this.entries;
    this.entries = [];
    this.run = 0;
    this.runLast = -1;
    const newSession = this.take(session, known, offset, value, held);
    // The run below this record (ascending): the new session's first records, held in it (a resend of them later is a
    // repeat, not a day-rule drop).
    if (newSession) for (const h of run) if (h.offset < offset) this.seen.add(session, h.offset, h.value);
    return { release: run.map((h) => h.record), recovered: confirmed ? run.length : 0, newSession, handOver: true, dropped: tail };
  }

  /**
   * The records held back when they are a resend of the session's newest records, else 0: a run shorter than
   * `CGM_RESEND_RUN` under a session key that tells sessions apart (`known`: 0x2AAA read on the link; without it a new
   * sensor whose first record received, on a new link, repeats the old session's top value at its offset looks the
   * same: QA, 1.4-1.7 % of real-trace swaps lost that record), that began with the first record judged on its link (a
   * reconnect), whose last record is at the session's highest offset, that skips no record held between its first and last, and whose nearest record held below
   * has a glucose value. A CGM resending its last record or two after a reconnect sends exactly that (before: stored
   * twice once `CGM_RESEND_RUN` was asked). A new sensor's first valued records at the old session's top offsets come
   * after its warm-up records (no value) or its lower records on the same link (QA re-check of the first version, which
   * asked neither: 1.4 % of replacements after a 1-record session lost the new sensor's first reading). Judged when the
   * run ends by the next new record or by `dropTail` (timeout, lost link, stop).
   */
  private tailRun(): number {
    const first = this.entries[0];
    const last = this.entries.at(-1);
    if (first === undefined || last === undefined || !this.runMayBeTail || this.run >= CGM_RESEND_RUN || last.offset !== this.highest) return 0;
    let i = 0;
    for (let o = first.offset; o <= last.offset; o++) {
      if (this.seen.valueOf(this.runSession, o) === CGM_NOT_HELD) continue;
      if (this.entries[i]?.offset !== o) return 0;
      i += 1;
    }
    for (let o = first.offset - 1; o >= 0; o--) {
      const below = this.seen.valueOf(this.runSession, o);
      if (below !== CGM_NOT_HELD) return below === CGM_NO_VALUE || below === CGM_NOT_COMPARABLE ? 0 : this.entries.length;
    }
    return 0;
  }

  /** Drops the records held back when they are a resend of the session's newest records (`tailRun`); how many. */
  dropTail(): number {
    const n = this.tailRun();
    if (n > 0) this.endRun();
    return n;
  }

  /**
   * Takes a record stored before a restart (the runtime's `storedCgmRecords`, in the order stored) as handed over: as
   * `judge` would have, without holding back (it was stored). A value other than the one held is a new session.
   */
  replay(session: string, known: boolean, offset: number, value: number): void {
    const held = this.seen.valueOf(session, offset);
    const last = this.replayRun.at(-1);
    if (last !== undefined && (session !== this.replaySession || offset <= last.offset)) this.replayRun = [];
    this.replaySession = session;
    if (held === value) {
      this.highest = Math.max(this.highest, offset);
      if (this.replayRun.length < CGM_RESEND_RECOVER) this.replayRun.push({ offset, value });
      return;
    }
    const run = this.replayRun;
    this.replayRun = [];
    // As `judge`: the run of equal values just below a new session's record was its first records.
    if (this.take(session, known, offset, value, held)) for (const h of run) this.seen.add(session, h.offset, h.value);
  }

  /** Holds a record judged new; whether it starts a new sensor session (the session's records forgotten). */
  private take(session: string, known: boolean, offset: number, value: number, held: number): boolean {
    let newSession: boolean;
    // A record without a value (warm-up: quarantined, so not recalled after a restart) tells nothing: the next valued one does.
    if (held === CGM_NOT_HELD) newSession = !known && value !== CGM_NO_VALUE && offset < this.highest - CGM_SESSION_RESTART_MINUTES;
    else newSession = held !== value && held !== CGM_NOT_COMPARABLE && value !== CGM_NOT_COMPARABLE;
    if (newSession) {
      this.seen.forget(session);
      this.highest = -1;
    }
    this.highest = Math.max(this.highest, offset);
    this.seen.add(session, offset, value);
    return newSession;
  }

  /**
   * The records held back (a run shorter than `CGM_RESEND_RUN`), to hand over: a timeout, a lost link, another session
   * or CGM, a stop. The run ends; a confirmed run stays (its records dropped, kept for `recovered`).
   */
  release(): T[] {
    return this.run < CGM_RESEND_RUN ? this.endRun() : [];
  }

  private endRun(): T[] {
    const out = this.run < CGM_RESEND_RUN ? this.entries.map((h) => h.record) : [];
    this.entries = [];
    this.run = 0;
    this.runLast = -1;
    return out;
  }
}
