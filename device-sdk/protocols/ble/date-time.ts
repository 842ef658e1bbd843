/**
 * The 7-byte Bluetooth "Date Time" (characteristic 0x2A08, used as Base Time in Glucose
 * Measurement, as the RACP user-facing-time filter and as CGM Session Start Time):
 *
 * | bytes | field   | range                       |
 * |-------|---------|-----------------------------|
 * | 2     | year    | 1582..9999, 0 = not known   |
 * | 1     | month   | 1..12, 0 = not known        |
 * | 1     | day     | 1..31, 0 = not known        |
 * | 1     | hours   | 0..23                       |
 * | 1     | minutes | 0..59                       |
 * | 1     | seconds | 0..59                       |
 *
 * The decoder keeps the fields exactly as received (unknown = 0 stays 0, out-of-range values are
 * kept too, so a meter with a broken clock still yields its reading and the driver can annotate
 * it). `epochMs` is added only when year, month and day are known and all fields form a real
 * calendar date and time. The meter sends local wall-clock time without a zone, so `epochMs` is
 * that wall clock read as if it were UTC; attach the meter's zone (if known) downstream.
 */
import type { ByteReader, ByteWriter } from './bytes.js';

export interface BleDateTimeFields {
  year: number;
  month: number;
  day: number;
  hours: number;
  minutes: number;
  seconds: number;
}

export interface BleDateTime extends BleDateTimeFields {
  /** The wall-clock fields read as UTC, in ms since the epoch; absent when incomplete or not a real date. */
  epochMs?: number;
}

export const DATE_TIME_LENGTH = 7;

/** Wall clock read as UTC (ms), or `undefined` when a field is unknown (0) or the fields are not a real date/time. */
export function dateTimeEpochMs(value: BleDateTimeFields): number | undefined {
  const { year, month, day, hours, minutes, seconds } = value;
  if (year < 1582 || year > 9999 || month < 1 || month > 12 || day < 1) return undefined;
  if (hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  return Date.UTC(year, month - 1, day, hours, minutes, seconds);
}

/** The decoded form of date-time fields: the same fields plus `epochMs` when they form a real date. */
export function toBleDateTime(fields: BleDateTimeFields): BleDateTime {
  const { year, month, day, hours, minutes, seconds } = fields;
  const epochMs = dateTimeEpochMs(fields);
  return epochMs === undefined ? { year, month, day, hours, minutes, seconds } : { year, month, day, hours, minutes, seconds, epochMs };
}

export function readDateTime(reader: ByteReader, field: string): BleDateTime {
  const year = reader.uint16(`${field}.year`);
  const month = reader.uint8(`${field}.month`);
  const day = reader.uint8(`${field}.day`);
  const hours = reader.uint8(`${field}.hours`);
  const minutes = reader.uint8(`${field}.minutes`);
  const seconds = reader.uint8(`${field}.seconds`);
  return toBleDateTime({ year, month, day, hours, minutes, seconds });
}

/** Writes the seven bytes; `epochMs` is ignored (the fields are what goes on the wire). */
export function writeDateTime(writer: ByteWriter, value: BleDateTimeFields, field: string): void {
  writer
    .uint16(value.year, `${field}/year`)
    .uint8(value.month, `${field}/month`)
    .uint8(value.day, `${field}/day`)
    .uint8(value.hours, `${field}/hours`)
    .uint8(value.minutes, `${field}/minutes`)
    .uint8(value.seconds, `${field}/seconds`);
}
