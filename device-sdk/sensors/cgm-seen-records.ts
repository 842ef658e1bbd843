/**
 * The CGM records a `ble-cgm` driver handed over, for duplicate detection: per sensor session (`<CGM key> <session
 * key>`, see ble-cgm.ts) one byte per Time Offset (a uint16 of minutes, CGMS §3.1.1.4: at most 65,536 per session), 0
 * when no record at that offset was handed over, else the record's content mark (`cgmRecordMark`: 1-255 from its
 * glucose value), so that a whole session is remembered, whatever its length and interval, and the day rule can tell a
 * resent record (same content) from a new sensor's (ble-cgm.ts "Sensor sessions").
 *
 * Bounded: the `CGM_SEEN_SESSIONS` sessions used last (a record handed over, looked up or moved); a session is sized to
 * its highest offset (4,096-byte steps): 20 KB for a 14-day session at any interval, 64 KB at most (45.5 days).
 */

/**
 * Sensor sessions remembered (the ones used last). A CGM resends records of its current session only (its Time Offsets
 * count from that session's start); 8 covers the current session and the 7 before it: 7 sensor replacements, 49-105
 * days of 7-15-day sensors, or two CGMs alternating under one sensor name with 3 earlier sessions each.
 */
export const CGM_SEEN_SESSIONS = 8;
const OFFSETS = 0x10000;
const STEP = 4096;

/** The content mark of a record with glucose `value` (mg/dL; undefined when the record has none): 1-255. */
export function cgmRecordMark(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return 255;
  // SFLOAT mg/dL keeps at most 4 significant digits: 1/1000 mg/dL tells every value apart; FNV-1a over its 4 bytes.
  let h = 0x811c9dc5;
  let v = Math.round(value * 1000) | 0;
  for (let i = 0; i < 4; i++, v >>>= 8) h = Math.imul(h ^ (v & 0xff), 0x01000193);
  return 1 + ((h >>> 0) % 254);
}

export class CgmSeenRecords {
  /** Session key -> marks by time offset; Map order is use order (least recently used first). */
  private readonly sessions = new Map<string, Uint8Array>();

  constructor(private readonly limit = CGM_SEEN_SESSIONS) {}

  /** The mark held for `offset` of `session` (0: none handed over). */
  markOf(session: string, offset: number): number {
    const marks = this.use(session);
    return marks !== undefined && offset < marks.length ? (marks[offset] as number) : 0;
  }

  /** Takes the record at `offset` of `session`, with content `mark`, as handed over. */
  add(session: string, offset: number, mark: number): void {
    let marks = this.use(session);
    if (marks === undefined || offset >= marks.length) {
      const grown = new Uint8Array(Math.min(OFFSETS, (Math.floor(offset / STEP) + 1) * STEP));
      if (marks !== undefined) grown.set(marks);
      marks = grown;
      this.sessions.delete(session);
      this.sessions.set(session, marks);
      if (this.sessions.size > this.limit) this.sessions.delete(this.sessions.keys().next().value as string);
    }
    marks[offset] = mark;
  }

  /** Forgets the records of `session` (a new sensor session under the same key). */
  forget(session: string): void {
    this.sessions.delete(session);
  }

  /** Moves the records of `from` to `to` (kept where `to` holds one at the same offset). */
  move(from: string, to: string): void {
    const marks = this.sessions.get(from);
    if (marks === undefined || from === to) return;
    this.sessions.delete(from);
    const target = this.sessions.get(to);
    let merged = marks;
    if (target !== undefined) {
      merged = target.length >= marks.length ? target : new Uint8Array(marks.length);
      if (merged !== target) merged.set(target);
      marks.forEach((mark, offset) => {
        if (merged[offset] === 0) merged[offset] = mark;
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
    const marks = this.sessions.get(session);
    if (marks !== undefined) for (let o = marks.length - 1; o >= 0; o--) if (marks[o] !== 0) return o;
    return -1;
  }

  /** Sessions held, and records held in all of them. */
  get size(): { sessions: number; records: number } {
    let records = 0;
    for (const marks of this.sessions.values()) for (const m of marks) if (m !== 0) records += 1;
    return { sessions: this.sessions.size, records };
  }

  /** Bytes of marks held. */
  get bytes(): number {
    let n = 0;
    for (const marks of this.sessions.values()) n += marks.length;
    return n;
  }

  private use(session: string): Uint8Array | undefined {
    const marks = this.sessions.get(session);
    if (marks !== undefined) {
      this.sessions.delete(session);
      this.sessions.set(session, marks);
    }
    return marks;
  }
}
