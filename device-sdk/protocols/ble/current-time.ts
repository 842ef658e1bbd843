/**
 * Current Time Service (CTS 1.1, service 0x1805) codecs: Current Time (0x2A2B) and Local Time
 * Information (0x2A0F). A glucose meter that offers CTS tells its clock's present reading, so a
 * collector can convert the meter's record times (GLS Base Time, local wall clock without a zone)
 * to UTC by the offset between that clock and its own (see `device-sdk/sensors/meter-time.ts`).
 *
 * Current Time 0x2A2B (read, notify), 10 bytes (GATT Specification Supplement "Exact Time 256" +
 * Adjust Reason; layout as in Philips' shinelib `ExactTime256`, bluetooth-sig-python `current_time`):
 *
 * | bytes | field         | values                                                     |
 * |-------|---------------|------------------------------------------------------------|
 * | 7     | Date Time     | local wall clock (0x2A08 layout, `date-time.ts`)           |
 * | 1     | Day of Week   | 1 Monday .. 7 Sunday, 0 = not known                        |
 * | 1     | Fractions256  | 1/256 s                                                    |
 * | 1     | Adjust Reason | b0 manual update, b1 external reference, b2 time zone change, b3 DST change |
 *
 * Local Time Information 0x2A0F (read), 2 bytes: Time Zone sint8 in 15-minute units (-48..+56,
 * -128 = not known; characteristic 0x2A0E) and DST Offset uint8 (0 standard, 2 +0.5 h, 4 +1 h,
 * 8 +2 h, 255 = not known; 0x2A0D), the encodings of the CGM Session Start Time (`cgm.ts`).
 * The wall clock of Current Time is local time: UTC = wall clock − time zone − DST offset.
 *
 * Strictness: exact lengths (10 and 2 bytes) and the ranges above; out-of-range values fail with
 * `DecodeError` (the bytes go to quarantine), "not known" values decode without derived fields.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { CGM_DST_OFFSET_MINUTES, CGM_DST_OFFSET_UNKNOWN, CGM_TIME_ZONE_UNKNOWN } from './cgm.js';
import { readDateTime, writeDateTime, type BleDateTime, type BleDateTimeFields } from './date-time.js';

export const CURRENT_TIME_SERVICE_UUID = 0x1805;
export const CURRENT_TIME_UUID = 0x2a2b;
export const LOCAL_TIME_INFORMATION_UUID = 0x2a0f;

export const CURRENT_TIME_CODEC = 'ble-current-time';
export const LOCAL_TIME_INFORMATION_CODEC = 'ble-local-time-information';

/** Adjust Reason bits. Bits 4–7 are reserved (kept in `adjustReason.bits`). */
export const CURRENT_TIME_ADJUST_REASON_BITS = Object.freeze({ manualUpdate: 0, externalReference: 1, timeZoneChange: 2, dstChange: 3 } as const);

export interface CurrentTimeFields {
  /** The meter's clock now: local wall clock, no zone. */
  dateTime: BleDateTimeFields;
  /** 1 Monday .. 7 Sunday, 0 = not known. */
  dayOfWeek: number;
  /** 0..255, in 1/256 s. */
  fractions256: number;
  adjustReason: { bits: number };
}

export interface CurrentTime extends CurrentTimeFields {
  /** As received; `epochMs` (the wall clock read as UTC) when it is a real date and time. */
  dateTime: BleDateTime;
  /** `dateTime.epochMs` plus the fractions (ms, wall clock read as UTC); absent when the date is not known. */
  wallClockMs?: number;
  adjustReason: { bits: number; manualUpdate: boolean; externalReference: boolean; timeZoneChange: boolean; dstChange: boolean };
}

export function decodeCurrentTime(bytes: Uint8Array): CurrentTime {
  const r = new ByteReader(CURRENT_TIME_CODEC, bytes);
  const dateTime = readDateTime(r, 'date time');
  const dayOfWeek = r.uint8('day of week');
  const fractions256 = r.uint8('fractions256');
  const bits = r.uint8('adjust reason');
  r.expectEnd('the adjust reason');
  if (dayOfWeek > 7) throw new DecodeError(CURRENT_TIME_CODEC, `day of week ${dayOfWeek} is outside 1..7 (0 = not known)`);
  const b = CURRENT_TIME_ADJUST_REASON_BITS;
  const out: CurrentTime = {
    dateTime,
    dayOfWeek,
    fractions256,
    adjustReason: { bits, manualUpdate: (bits & (1 << b.manualUpdate)) !== 0, externalReference: (bits & (1 << b.externalReference)) !== 0, timeZoneChange: (bits & (1 << b.timeZoneChange)) !== 0, dstChange: (bits & (1 << b.dstChange)) !== 0 },
  };
  if (dateTime.epochMs !== undefined) out.wallClockMs = dateTime.epochMs + Math.round((fractions256 * 1000) / 256);
  return out;
}

export function encodeCurrentTime(value: CurrentTimeFields): Uint8Array {
  if (!Number.isInteger(value.dayOfWeek) || value.dayOfWeek < 0 || value.dayOfWeek > 7) {
    throw new ConfigError('/dayOfWeek', value.dayOfWeek, 'is not a day of week', 'use 1 (Monday) .. 7 (Sunday), or 0 = not known');
  }
  const w = new ByteWriter();
  writeDateTime(w, value.dateTime, '/dateTime');
  return w.uint8(value.dayOfWeek, '/dayOfWeek').uint8(value.fractions256, '/fractions256').uint8(value.adjustReason.bits, '/adjustReason/bits').toBytes();
}

export interface LocalTimeInformationFields {
  /** 15-minute units, -48..+56, or -128 (not known). */
  timeZone: number;
  /** DST Offset code: 0, 2, 4, 8, or 255 (not known). */
  dstOffset: number;
}

export interface LocalTimeInformation extends LocalTimeInformationFields {
  /** Minutes east of UTC of standard time, when known. */
  timeZoneMinutes?: number;
  /** Minutes added by daylight saving time, when known. */
  dstOffsetMinutes?: number;
  /** Local wall clock − UTC, in minutes (time zone + DST), when both are known. */
  utcOffsetMinutes?: number;
}

export function decodeLocalTimeInformation(bytes: Uint8Array): LocalTimeInformation {
  const r = new ByteReader(LOCAL_TIME_INFORMATION_CODEC, bytes);
  const tzRaw = r.uint8('time zone');
  const timeZone = tzRaw >= 0x80 ? tzRaw - 0x100 : tzRaw;
  const dstOffset = r.uint8('DST offset');
  r.expectEnd('the DST offset');
  const problem = localTimeProblem({ timeZone, dstOffset });
  if (problem !== undefined) throw new DecodeError(LOCAL_TIME_INFORMATION_CODEC, problem);
  const out: LocalTimeInformation = { timeZone, dstOffset };
  if (timeZone !== CGM_TIME_ZONE_UNKNOWN) out.timeZoneMinutes = timeZone * 15;
  const dst = CGM_DST_OFFSET_MINUTES[dstOffset];
  if (dst !== undefined) out.dstOffsetMinutes = dst;
  if (out.timeZoneMinutes !== undefined && dst !== undefined) out.utcOffsetMinutes = out.timeZoneMinutes + dst;
  return out;
}

export function encodeLocalTimeInformation(value: LocalTimeInformationFields): Uint8Array {
  const problem = localTimeProblem(value);
  if (problem !== undefined) throw new ConfigError('localTimeInformation', value, problem, 'use a time zone of -48..+56 (15-minute units) or -128, and a DST offset of 0, 2, 4, 8 or 255');
  return new ByteWriter().uint8(value.timeZone & 0xff, '/timeZone').uint8(value.dstOffset, '/dstOffset').toBytes();
}

function localTimeProblem(v: LocalTimeInformationFields): string | undefined {
  const tz = v.timeZone;
  if (!Number.isInteger(tz) || (tz !== CGM_TIME_ZONE_UNKNOWN && (tz < -48 || tz > 56))) return `time zone ${tz} is outside -48..+56 (15-minute units; -128 = not known)`;
  if (v.dstOffset !== CGM_DST_OFFSET_UNKNOWN && CGM_DST_OFFSET_MINUTES[v.dstOffset] === undefined) return `DST offset ${v.dstOffset} is not 0, 2, 4, 8 (or 255 = not known)`;
  return undefined;
}
