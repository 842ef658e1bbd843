/**
 * IANA time zones, for wall-clock times that come without a zone (a glucose meter's record times):
 * pure functions over Node's ICU data (`Intl`), no I/O, no timers.
 *
 * `wallClockToUtcMs` reads a wall-clock time (given as if it were UTC, the way `date-time.ts` gives
 * a Bluetooth Date Time) in a zone. Around a DST change a wall-clock time can be ambiguous (the hour
 * repeated in autumn: the first, daylight-saving, reading is taken) or not exist (the hour skipped
 * in spring: it is read with the offset before the change); nothing in the time itself can tell.
 * `wallClockInstants` gives every instant a wall time can be, for a caller that knows more (a meter's
 * record order and when the record arrived: `sensors/meter-time.ts`).
 */

/** True when `name` is an IANA zone name (or `UTC`) this runtime's ICU knows. */
export function isTimeZone(name: string): boolean {
  if (typeof name !== 'string' || name.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(zone, f);
  }
  return f;
}

/** Local wall clock − UTC in `zone` at the instant `utcMs` (ms; whole seconds). Throws RangeError for an unknown zone. */
export function zoneOffsetMs(zone: string, utcMs: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(utcMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day as number, parts.hour as number, parts.minute as number, parts.second as number);
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/**
 * Every UTC instant (ms, earliest first) at which a clock set to `zone` shows the wall-clock time
 * `wallMs` (its fields read as UTC): one as a rule, two in the hour repeated when DST ends (the
 * daylight-saving one first), none in the hour skipped when it starts. Throws RangeError for an
 * unknown zone; none for a wall time that is not a finite number.
 */
export function wallClockInstants(wallMs: number, zone: string): number[] {
  if (!Number.isFinite(wallMs)) return [];
  const before = zoneOffsetMs(zone, wallMs - 86_400_000);
  const after = zoneOffsetMs(zone, wallMs + 86_400_000);
  // Try both offsets around the instant; keep those the zone agrees with at the instant they give.
  const candidates = before === after ? [wallMs - before] : [wallMs - Math.max(before, after), wallMs - Math.min(before, after)];
  return candidates.filter((t) => zoneOffsetMs(zone, t) === wallMs - t);
}

/**
 * The UTC instant (ms) of the wall-clock time `wallMs` (its fields read as UTC) in `zone`: the first
 * of a repeated one, and a skipped one read with the offset before the change (a clock not yet set forward).
 */
export function wallClockToUtcMs(wallMs: number, zone: string): number {
  return wallClockInstants(wallMs, zone)[0] ?? wallMs - zoneOffsetMs(zone, wallMs - 86_400_000);
}

/** `+05:30`, `-04:00` for an offset in minutes. */
export function formatUtcOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const m = Math.abs(Math.round(minutes));
  return `${sign}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}
