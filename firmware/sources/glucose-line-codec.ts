/**
 * The text line protocol of the simulated glucose meter (`sim-glucose`), one reading per line:
 *
 *     GLU,<record>,<ISO-8601 meter time>,<value>,mg/dL,<meal>*<checksum>\r\n
 *     GLU,1042,2024-05-01T08:30:00.000Z,97,mg/dL,fasting*3C\r\n
 *
 * `<checksum>` is two upper-case hex digits: the XOR of every byte before `*`. `<meal>` is one of
 * `GLUCOSE_MEAL_CONTEXTS`. The trailing `\r\n` is optional on decode (a framer may strip it).
 *
 * Meter time: the meter's clock is a wall clock set by its owner, and a time ending in `Z` is that wall
 * clock, not a statement that it is UTC. It is converted by the rules of the BLE meters
 * (device-sdk/sensors/meter-time.ts): read in the runtime's configured `timeZone` (a wall time in the hour
 * repeated when summer time ends is placed by the line's arrival, `placeWallClock`), else read
 * as UTC and marked `meterTimeBasis: zone-unknown`. A time written with its offset (`10:30:00+02:00`) is the
 * meter's own statement: converted by it (`stated-offset`). The reading's context keeps the wall clock
 * as sent (`meterClock`) and the basis, as a BLE meter's reading does.
 *
 * Pure functions. `decodeGlucoseLine` throws `DecodeError` (codec `glucose-line`) and nothing else.
 */
import { DecodeError } from '../../device-sdk/errors.js';
import type { Reading } from '../../device-sdk/records.js';
import { type MeterClock, meterClockWithoutCurrentTime, meterTime } from '../../device-sdk/sensors/meter-time.js';

export const GLUCOSE_LINE_CODEC = 'glucose-line';
export const GLUCOSE_MEAL_CONTEXTS = ['fasting', 'preprandial', 'postprandial', 'unknown'] as const;
export type GlucoseMealContext = (typeof GLUCOSE_MEAL_CONTEXTS)[number];
/** The record number is a uint32 (`MeterRecordBits`): it is not wrapped at 65,536. */
export const GLUCOSE_LINE_RECORD_BITS = 32;
/** Longer input is rejected before it is looked at. */
export const GLUCOSE_LINE_MAX_BYTES = 256;

export interface GlucoseLine {
  /** The meter's record number (integer, 0..2^32-1: `GLUCOSE_LINE_RECORD_BITS`). */
  record: number;
  /** The meter's wall clock (ms whose UTC fields are the wall clock; written with `Z`). */
  tMeter: number;
  /** mg/dL; rounded to an integer on encode. */
  value: number;
  meal: GlucoseMealContext;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const fail = (message: string): never => {
  throw new DecodeError(GLUCOSE_LINE_CODEC, message);
};

function xorChecksum(bytes: Uint8Array, end: number): number {
  let sum = 0;
  for (let i = 0; i < end; i++) sum ^= bytes[i] ?? 0;
  return sum;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

export function encodeGlucoseLine(line: GlucoseLine): Uint8Array {
  const body = `GLU,${line.record},${new Date(line.tMeter).toISOString()},${Math.round(line.value)},mg/dL,${line.meal}`;
  const bytes = new TextEncoder().encode(body);
  return new TextEncoder().encode(`${body}*${hex2(xorChecksum(bytes, bytes.length))}\r\n`);
}

/** The wall clock of a meter time (ms whose UTC fields are the wall clock) and how it is converted: its stated offset, or as the runtime's zone says. */
function parseMeterTime(text: string, timeZone: string | undefined): { wallMs: number; clock: MeterClock } {
  const m = ISO_TIME.exec(text);
  if (m === null) return fail(`meter time ${JSON.stringify(text)} is not ISO-8601 (YYYY-MM-DDTHH:MM:SS[.sss]Z)`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const calendar = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const valid =
    calendar.getUTCFullYear() === year &&
    calendar.getUTCMonth() === month - 1 &&
    calendar.getUTCDate() === day &&
    calendar.getUTCHours() === hour &&
    calendar.getUTCMinutes() === minute &&
    calendar.getUTCSeconds() === second;
  const instant = Date.parse(text);
  if (!valid || Number.isNaN(instant)) return fail(`meter time ${JSON.stringify(text)} is not a valid date`);
  const wallMs = Date.parse(`${text.slice(0, -(m[8] as string).length)}Z`);
  if (m[8] === 'Z') return { wallMs, clock: meterClockWithoutCurrentTime(timeZone) };
  return { wallMs, clock: { basis: 'stated-offset', utcOffsetMinutes: Math.round((wallMs - instant) / 60_000) } };
}

/**
 * Decodes one line into a glucose `Reading` of `sensor`, received at device time `tDevice`, its meter
 * time converted as the module comment says (`timeZone`: the runtime's configured zone, an IANA name).
 * Throws `DecodeError` for a wrong prefix or field count, a checksum mismatch, a non-numeric
 * value or record, a bad time, a unit other than mg/dL, an unknown meal context, non-UTF-8 bytes,
 * empty input or input over `GLUCOSE_LINE_MAX_BYTES`.
 */
export function decodeGlucoseLine(bytes: Uint8Array, tDevice: number, sensor: string, timeZone?: string): Reading {
  if (bytes.length === 0) return fail('empty line');
  if (bytes.length > GLUCOSE_LINE_MAX_BYTES) return fail(`line of ${bytes.length} bytes exceeds ${GLUCOSE_LINE_MAX_BYTES}`);
  try {
    utf8.decode(bytes);
  } catch {
    return fail('line is not valid UTF-8');
  }
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (bytes[end - 1] === 0x0d) end--;
  const star = end - 3;
  if (star < 0 || bytes[star] !== 0x2a) return fail('missing "*<checksum>" at the end of the line');
  const sumText = String.fromCharCode(bytes[star + 1] ?? 0, bytes[star + 2] ?? 0);
  if (!/^[0-9A-F]{2}$/.test(sumText)) return fail(`checksum ${JSON.stringify(sumText)} is not two upper-case hex digits`);
  const expected = xorChecksum(bytes, star);
  if (Number.parseInt(sumText, 16) !== expected) return fail(`checksum mismatch: line says ${sumText}, bytes give ${hex2(expected)}`);

  const fields = utf8.decode(bytes.subarray(0, star)).split(',');
  if (fields[0] !== 'GLU') return fail(`prefix ${JSON.stringify(fields[0])} is not "GLU"`);
  if (fields.length !== 6) return fail(`expected 6 comma-separated fields, got ${fields.length}`);
  const [, recordText, timeText, valueText, unit, meal] = fields as [string, string, string, string, string, string];
  if (!/^\d{1,10}$/.test(recordText) || Number(recordText) >= 2 ** GLUCOSE_LINE_RECORD_BITS) {
    return fail(`record number ${JSON.stringify(recordText)} is not an integer in 0..4294967295`);
  }
  const meter = parseMeterTime(timeText, timeZone);
  if (!/^\d{1,4}$/.test(valueText)) return fail(`value ${JSON.stringify(valueText)} is not an integer mg/dL`);
  if (unit !== 'mg/dL') return fail(`unit ${JSON.stringify(unit)} is not "mg/dL"`);
  if (!(GLUCOSE_MEAL_CONTEXTS as readonly string[]).includes(meal)) {
    return fail(`meal context ${JSON.stringify(meal)} is not one of ${GLUCOSE_MEAL_CONTEXTS.join(', ')}`);
  }
  const time = meterTime(meter.wallMs, meter.clock, { receivedAtMs: tDevice });
  return {
    sensor,
    type: 'glucose',
    value: Number(valueText),
    unit: 'mg/dL',
    tDevice,
    tMeter: time.tMeter,
    meterRecord: Number(recordText),
    context: { ...time.context, meal },
  };
}
