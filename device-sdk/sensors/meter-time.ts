/**
 * A glucose meter's record times in UTC. The Glucose Measurement Base Time (+ Time Offset, GLS
 * §3.106-3.107) is the meter's local wall clock with no zone, so the driver converts it, choosing by
 * this precedence:
 *
 * 1. `current-time-service`: the meter offers the Current Time Service (0x1805, Current Time
 *    0x2A2B). The driver reads the meter's clock on connect, and again before every poll of a
 *    connection that stays up (the clock may be set, or change for DST, while connected: the records
 *    of each poll are converted by the clock as it was just before it), and takes the offset between it and this
 *    device's clock (`offsetMs` = meter wall clock − device UTC, rounded to whole seconds: record times
 *    have 1 s resolution and the read itself takes milliseconds), as the Tidepool uploader computes a
 *    meter's clock offset against the host's. Without a configured zone every record time of that
 *    poll is converted by it: UTC = wall clock − offset; the offset holds the meter's zone and
 *    DST and its clock's drift or wrong setting at once. With a configured zone the offset is split
 *    into the zone's UTC offset now and the clock's drift (`driftMs`): UTC = the wall clock minus the
 *    drift, read in the zone, so that a record from before a DST switch gets its own DST. Limit: a
 *    record written before the meter's clock was set (or, without a zone, before a DST switch) is
 *    converted with today's offset, and so is a record measured before a clock change and first
 *    downloaded after it (the meter does not say which clock a record was written with). Local Time Information (0x2A0F), when offered, is recorded (the
 *    meter's own statement of its zone) but not needed for the conversion.
 * 2. `configured-zone`: no usable Current Time; the runtime config names the zone meter clocks are
 *    set to (`timeZone`, an IANA name such as `Africa/Nairobi`): the wall clock is read in that zone
 *    (DST included; `device-sdk/time-zone.ts`). A drifting or wrongly set clock is not corrected.
 * (`stated-offset`: a meter that writes its UTC offset with each time, `10:30:00+02:00`, such as the serial
 *    line meter of firmware/sources/glucose-line-codec.ts, is converted by it; nothing to choose.)
 * 3. `zone-unknown`: neither: the wall clock is read as if it were UTC (as before this module), and
 *    the reading says so. Its age is then unknown by up to the meter's UTC offset: alert texts say
 *    that rather than give an age (firmware/rules.ts).
 *
 * Nothing is lost: the reading's context keeps the wall clock as the meter sent it (`meterClock`,
 * `2026-01-01T07:00:00`, no zone), the basis (`meterTimeBasis`) and what the conversion used
 * (`meterClockOffsetS` for 1, with `meterUtcOffset` when the meter stated its zone; `meterTimeZone` for 2).
 *
 * DST changes in a zone (1 with a configured zone, and 2). A wall time in the hour repeated when
 * summer time ends (Europe/Berlin, last Sunday of October: 02:00-03:00 twice, 00:00-01:00 UTC then
 * 01:00-02:00 UTC) is two instants an hour apart; the record alone cannot tell which. What can
 * (`MeterTimePlacement`, given by the driver) decides, by this rule (`placeWallClock`):
 * - an instant before the earliest the record can be is out: before the meter's previous record
 *   (record numbers count up in the order records are written, GLS §3.6.1.2), or more than
 *   `FRESH_READING_MS` before the start of the last completed transfer (every record numbered after
 *   those it reported was written after it asked; the margin covers a meter clock a few minutes off);
 * - an instant more than `FRESH_READING_MS` after the record arrived is out (in the future);
 * - of the rest, the one within `FRESH_READING_MS` of the record's arrival when there is one: a
 *   reading that can have been measured just now was (meters send a new measurement at once);
 * - else the earliest left (a download of the night: the first pass, unless order rules it out).
 * If order rules out both (the meter's clock was set back), order is dropped; if nothing is left at
 * all, the first instant. The choice is kept in the context: `meterTimeDst` `repeated-first` or
 * `repeated-second`, and `meterTimeDstBy`, what decided it: `record-order`, `reception` or `default`.
 * Limit: a first-pass record first downloaded within 15 min after its wall time came round again is
 * taken for the second pass. A wall time in the hour skipped when summer time starts (02:30 on the last
 * Sunday of March in Berlin) never happens on a clock that follows the zone: it is a meter clock not
 * yet set forward, read with the offset before the change (02:30 CET, 01:30 UTC), marked `meterTimeDst: skipped`.
 * Without a zone (1 alone, 3) there is one conversion and nothing to choose.
 */
import type { CurrentTime, LocalTimeInformation } from '../protocols/ble/current-time.js';
import type { Reading } from '../records.js';
import { formatUtcOffset, wallClockInstants, wallClockToUtcMs, zoneOffsetMs } from '../time-zone.js';

/** Reading context key: when this device estimates a CGM record was measured (ISO 8601 UTC; ble-cgm.ts `CgmRecordClock`). */
export const CGM_MEASURED_AT = 'measuredAt';

/** When a CGM reading was measured by its context's `CGM_MEASURED_AT` (ms), or undefined without a readable one. */
export function cgmMeasuredAt(r: Pick<Reading, 'context'>): number | undefined {
  const iso = r.context?.[CGM_MEASURED_AT];
  const ms = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

export type MeterTimeBasis = 'current-time-service' | 'stated-offset' | 'configured-zone' | 'zone-unknown';

/** How one connection's record times are converted to UTC. */
export type MeterClock =
  | { basis: 'current-time-service'; offsetMs: number; utcOffsetMinutes?: number; zone?: string; driftMs?: number }
  | { basis: 'stated-offset'; utcOffsetMinutes: number }
  | { basis: 'configured-zone'; zone: string }
  | { basis: 'zone-unknown' };

/** Context keys of a reading's meter time. */
export const METER_TIME_CONTEXT = Object.freeze({
  /** The meter's wall clock as sent, `YYYY-MM-DDTHH:MM:SS`, no zone. */
  clock: 'meterClock',
  /** A `MeterTimeBasis`. */
  basis: 'meterTimeBasis',
  /** Current Time Service: meter wall clock − device clock (UTC), whole seconds. */
  offsetS: 'meterClockOffsetS',
  /** Current Time Service with Local Time Information, or a time written with its offset: the meter's stated UTC offset, `+01:00`. */
  utcOffset: 'meterUtcOffset',
  /** Configured zone: its IANA name. */
  zone: 'meterTimeZone',
  /** Current Time Service with a configured zone: the meter clock's error against the zone's time, whole seconds. */
  driftS: 'meterClockDriftS',
  /** In a zone, a wall time at a DST change: `repeated-first`, `repeated-second` (of the two instants it can be) or `skipped` (no such time). */
  dst: 'meterTimeDst',
  /** What chose the instant of a repeated wall time: `record-order`, `reception` or `default` (`placeWallClock`). */
  dstBy: 'meterTimeDstBy',
} as const);

/** A reading within this of its arrival can be a fresh one; the margin of the other bounds of `placeWallClock` (ms). */
export const FRESH_READING_MS = 15 * 60_000;

/** What the driver knows about when a record can have been measured, to choose between the instants of a repeated wall time. */
export interface MeterTimePlacement {
  /** This device's clock when the record arrived. */
  receivedAtMs: number;
  /** The instant given to the meter's previous record (the next lower number handed over), when known. */
  previousRecordMs?: number;
  /** When the last completed record transfer (RACP report stored records) was requested, on this device's clock. */
  lastTransferMs?: number;
}

/**
 * The instant a wall time that can be any of `instants` (earliest first, two for a repeated hour) was,
 * by the rule of the module comment, and what decided it. Undefined for no instants.
 */
export function placeWallClock(instants: readonly number[], p: MeterTimePlacement): { t: number; by: 'record-order' | 'reception' | 'default' } | undefined {
  const first = instants[0];
  if (first === undefined) return undefined;
  const notBefore = Math.max(p.previousRecordMs ?? Number.NEGATIVE_INFINITY, (p.lastTransferMs ?? Number.NEGATIVE_INFINITY) - FRESH_READING_MS);
  const past = instants.filter((t) => t <= p.receivedAtMs + FRESH_READING_MS);
  const ordered = past.filter((t) => t >= notBefore);
  const left = ordered.length > 0 ? ordered : past; // order ruling out every instant: the clock was set back
  if (left.length === 0) return { t: first, by: 'default' };
  if (left.length === 1) return { t: left[0] as number, by: past.length > 1 ? 'record-order' : 'reception' };
  const nearest = [...left].sort((a, b) => Math.abs(p.receivedAtMs - a) - Math.abs(p.receivedAtMs - b) || a - b)[0] as number;
  if (Math.abs(p.receivedAtMs - nearest) <= FRESH_READING_MS) return { t: nearest, by: 'reception' };
  return { t: left[0] as number, by: 'default' };
}

/**
 * The clock of a meter whose Current Time read `current` when this device's clock read `deviceNowMs`;
 * undefined when the meter does not know its date (then the next basis applies).
 */
export function meterClockFromCurrentTime(current: CurrentTime, deviceNowMs: number, local?: LocalTimeInformation, timeZone?: string): MeterClock | undefined {
  if (current.wallClockMs === undefined) return undefined;
  const seconds = (ms: number) => Math.round(ms / 1000) * 1000;
  const clock: MeterClock = { basis: 'current-time-service', offsetMs: seconds(current.wallClockMs - deviceNowMs) };
  if (local?.utcOffsetMinutes !== undefined) clock.utcOffsetMinutes = local.utcOffsetMinutes;
  if (timeZone !== undefined) {
    clock.zone = timeZone;
    clock.driftMs = seconds(current.wallClockMs - (deviceNowMs + zoneOffsetMs(timeZone, deviceNowMs)));
  }
  return clock;
}

/**
 * True when two meter clocks convert record times alike: same basis, zone and stated UTC offset, and
 * (Current Time) offsets and drifts within `toleranceMs` of each other. Two reads of an unchanged
 * clock can round 1 s apart (the read takes milliseconds, the offset is rounded to whole seconds).
 */
export function sameMeterClock(a: MeterClock, b: MeterClock, toleranceMs = 0): boolean {
  if (a.basis !== b.basis) return false;
  if (a.basis === 'current-time-service' && b.basis === 'current-time-service') {
    const near = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? x === y : Math.abs(x - y) <= toleranceMs);
    return near(a.offsetMs, b.offsetMs) && near(a.driftMs, b.driftMs) && a.zone === b.zone && a.utcOffsetMinutes === b.utcOffsetMinutes;
  }
  if (a.basis === 'configured-zone' && b.basis === 'configured-zone') return a.zone === b.zone;
  if (a.basis === 'stated-offset' && b.basis === 'stated-offset') return a.utcOffsetMinutes === b.utcOffsetMinutes;
  return true;
}

/** The meter clock of a connection without a usable Current Time: the configured zone, or unknown. */
export function meterClockWithoutCurrentTime(timeZone: string | undefined): MeterClock {
  return timeZone !== undefined ? { basis: 'configured-zone', zone: timeZone } : { basis: 'zone-unknown' };
}

/** A meter wall clock (ms whose UTC fields are its fields) as the context keeps it (`METER_TIME_CONTEXT.clock`): `YYYY-MM-DDTHH:MM:SS`. */
export function meterWallClockText(wallMs: number): string {
  return new Date(wallMs).toISOString().slice(0, 19);
}

/**
 * `tMeter` (UTC ms) and the context entries of a record whose meter wall clock is `wallMs` (its fields
 * read as UTC). `placement`: what decides a wall time repeated at a DST change (module comment); without
 * it, the first instant.
 */
export function meterTime(wallMs: number, clock: MeterClock, placement?: MeterTimePlacement): { tMeter: number; context: Record<string, string> } {
  const k = METER_TIME_CONTEXT;
  const context: Record<string, string> = { [k.clock]: meterWallClockText(wallMs), [k.basis]: clock.basis };
  /** The wall time `wall` read in `zone`, a repeated or skipped one marked in the context. */
  const inZone = (wall: number, zone: string): number => {
    const instants = wallClockInstants(wall, zone);
    if (instants.length === 0) {
      context[k.dst] = 'skipped';
      return wallClockToUtcMs(wall, zone);
    }
    const placed = instants.length > 1 && placement !== undefined ? placeWallClock(instants, placement) : undefined;
    const t = placed?.t ?? (instants[0] as number);
    if (instants.length > 1) {
      context[k.dst] = t === instants[0] ? 'repeated-first' : 'repeated-second';
      context[k.dstBy] = placed?.by ?? 'default';
    }
    return t;
  };
  switch (clock.basis) {
    case 'current-time-service':
      context[k.offsetS] = String(clock.offsetMs / 1000);
      if (clock.utcOffsetMinutes !== undefined) context[k.utcOffset] = formatUtcOffset(clock.utcOffsetMinutes);
      if (clock.zone === undefined || clock.driftMs === undefined) return { tMeter: wallMs - clock.offsetMs, context };
      context[k.zone] = clock.zone;
      context[k.driftS] = String(clock.driftMs / 1000);
      return { tMeter: inZone(wallMs - clock.driftMs, clock.zone), context };
    case 'stated-offset':
      context[k.utcOffset] = formatUtcOffset(clock.utcOffsetMinutes);
      return { tMeter: wallMs - clock.utcOffsetMinutes * 60_000, context };
    case 'configured-zone':
      context[k.zone] = clock.zone;
      return { tMeter: inZone(wallMs, clock.zone), context };
    case 'zone-unknown':
      return { tMeter: wallMs, context };
  }
}

/** True when the reading's `tMeter` is a meter wall clock read as UTC because its zone is unknown. */
export function meterTimeZoneUnknown(r: Pick<Reading, 'context'>): boolean {
  return r.context?.[METER_TIME_CONTEXT.basis] === 'zone-unknown';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * The meter's own wall clock of a reading as a person reads it on the meter, `6 Dec 11:05`
 * (`context.meterClock`; without it, `tMeter` shown in UTC, `6 Dec 11:05 UTC`). Undefined without a meter time.
 */
export function meterClockText(r: Pick<Reading, 'tMeter' | 'context'>, nowMs?: number): string | undefined {
  // The year only when it is not this device's: "4 Jan 07:00" read in December would look like this morning.
  const year = (y: number) => (nowMs !== undefined && y !== new Date(nowMs).getUTCFullYear() ? ` ${y}` : '');
  const wall = r.context?.[METER_TIME_CONTEXT.clock];
  const m = wall !== undefined ? /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(wall) : null;
  if (m) return `${Number(m[3])} ${MONTHS[Number(m[2]) - 1] ?? m[2]}${year(Number(m[1]))} ${m[4]}:${m[5]}`;
  if (r.tMeter === undefined) return undefined;
  const d = new Date(r.tMeter);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${year(d.getUTCFullYear())} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')} UTC`;
}
