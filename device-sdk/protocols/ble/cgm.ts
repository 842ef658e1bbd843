/**
 * Bluetooth Continuous Glucose Monitoring Service (CGMS 1.0.1) codecs: CGM Measurement (0x2AA7),
 * CGM Feature (0x2AA8) and CGM Session Start Time (0x2AAA, at the end of this file). RACP is in
 * `racp.ts` (filter 0x01 = time offset for CGM).
 *
 * CGM Measurement: one notification holds one or more records, each delimited by its Size byte:
 *
 * | bytes | field                               | present when                         |
 * |-------|-------------------------------------|--------------------------------------|
 * | 1     | Size (whole record, incl. CRC)      | always (minimum 6)                   |
 * | 1     | Flags                               | always                               |
 * | 2     | Glucose concentration, SFLOAT mg/dL | always                               |
 * | 2     | Time offset, uint16 minutes         | always (since Session Start Time)    |
 * | 0–3   | Sensor Status Annunciation octets   | flag bits 5, 6, 7 (see below)        |
 * | 2     | Trend, SFLOAT (mg/dL)/min           | flag bit 0                           |
 * | 2     | Quality, SFLOAT %                   | flag bit 1                           |
 * | 2     | E2E-CRC, CRC-16/MCRF4XX, LE         | CGM Feature bit 12 (`e2eCrc: true`)  |
 *
 * Decisions (decoders throw only `DecodeError`; a bad CRC is a `CrcMismatchError` carrying
 * `expected`/`actual`):
 * - `e2eCrc` comes from the CGM Feature characteristic and is required: when true every record
 *   must end in a CRC over all its other bytes and it is verified; when false a record must not
 *   carry one. The size must equal exactly what the flags (and `e2eCrc`) imply. Nordic's Android
 *   library instead guesses the CRC from `size == computed + 2`; guessing would accept a record
 *   whose CRC was stripped, so the feature decides here and the error names the mismatch.
 * - Reserved flag bits 2–4 set fail (unknown fields would make the size check meaningless).
 * - An empty notification fails; bytes after the last record are impossible (size delimits).
 *
 * Disputed: which flag bit announces which annunciation octet. All sources put the octets on the
 * wire low to high: Status (bits 0–7: session stopped, battery low, ...), Cal/Temp (8–15),
 * Warning (16–23: patient/hypo/hyper/rate/device-range results). They differ in the gating bits:
 * - `'sig'` (default): bit 7 "Status-Octet present", bit 6 "Cal/Temp-Octet present", bit 5
 *   "Warning-Octet present", as the flag names say. Source: the SIG GSS structure as transcribed
 *   by bluetooth-sig-python (`cgm_measurement.py`: "order is Status, Cal/Temp, Warning"), and the
 *   UHN/JDRF parser as described in ble-health-profiles.md §3.7 (reads the bit-7 octet first).
 * - `'nordic'`: bit 5 announces the octet with bits 0–7, bit 7 the octet with bits 16–23
 *   (Nordic Android-BLE-Common-Library `ContinuousGlucoseMeasurementDataCallback` + `CGMStatus`,
 *   Cypress/Infineon PSoC CGMS: `CY_BLE_CGMS_GLMT_FLG_WG 0x20` with mask `0x3F` on bits 0–5).
 * With all three octets present (Nordic's own test vector) or none, both layouts decode the same
 * bytes identically; they disagree only when a subset is present. Two encoders follow neither:
 * Nordic's nRF Connect SDK (`cgms_meas.c`) writes warning (bit 5), cal/temp, status (bit 7) in that
 * order, and UHN's BLECgmSim writes status, warning, cal/temp. Records from those differ only when
 * two or more octets are present.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { CrcMismatchError, crc16Mcrf4xx } from '../crc.js';
import type { Ieee11073Value } from '../ieee11073.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { type BleDateTime, type BleDateTimeFields, dateTimeEpochMs, readDateTime, writeDateTime } from './date-time.js';
import { coded, codeOf, namedBits, reservedBitsSet, type Coded, type CodeInput } from './codes.js';
import { GLUCOSE_SAMPLE_TYPES, type GlucoseSampleTypeName } from './glucose.js';

export const CGM_MEASUREMENT_UUID = 0x2aa7;
export const CGM_FEATURE_UUID = 0x2aa8;
export const CGM_SESSION_START_TIME_UUID = 0x2aaa;

export const CGM_MEASUREMENT_CODEC = 'ble-cgm-measurement';
export const CGM_FEATURE_CODEC = 'ble-cgm-feature';
export const CGM_SESSION_START_TIME_CODEC = 'ble-cgm-session-start-time';

export const CGM_ANNUNCIATION_LAYOUTS = ['sig', 'nordic'] as const;
export type CgmAnnunciationLayout = (typeof CGM_ANNUNCIATION_LAYOUTS)[number];

export interface CgmMeasurementOptions {
  /** CGM Feature bit 12 (E2E-CRC supported): records end in a CRC that is verified / written. */
  e2eCrc: boolean;
  /** Which flag bit announces which annunciation octet; see the module comment. Default `'sig'`. */
  annunciationLayout?: CgmAnnunciationLayout;
}

/** Sensor Status Annunciation (24 bits across the three octets): flag name -> bit. Unlisted bits are reserved. */
export const CGM_SENSOR_STATUS_BITS = Object.freeze({
  sessionStopped: 0,
  deviceBatteryLow: 1,
  sensorTypeIncorrect: 2,
  sensorMalfunction: 3,
  deviceSpecificAlert: 4,
  generalDeviceFault: 5,
  timeSyncRequired: 8,
  calibrationNotAllowed: 9,
  calibrationRecommended: 10,
  calibrationRequired: 11,
  sensorTemperatureTooHigh: 12,
  sensorTemperatureTooLow: 13,
  calibrationPending: 14,
  resultBelowPatientLow: 16,
  resultAbovePatientHigh: 17,
  resultBelowHypo: 18,
  resultAboveHyper: 19,
  rateOfDecreaseExceeded: 20,
  rateOfIncreaseExceeded: 21,
  resultBelowDeviceRange: 22,
  resultAboveDeviceRange: 23,
} as const);
export type CgmSensorStatusFlag = keyof typeof CGM_SENSOR_STATUS_BITS;

/** The annunciation octets that are present, by meaning (not by flag bit). */
export interface CgmAnnunciationOctets {
  /** Bits 0–7. */
  status?: number;
  /** Bits 8–15. */
  calTemp?: number;
  /** Bits 16–23. */
  warning?: number;
}

export type CgmSensorStatus = CgmAnnunciationOctets & {
  /** The 24-bit annunciation with absent octets as 0. */
  bits: number;
} & Record<CgmSensorStatusFlag, boolean>;

export interface CgmMeasurementRecordFields {
  /** SFLOAT, mg/dL. */
  glucose: Ieee11073Value | number;
  /** uint16 minutes since the Session Start Time; also the record's sequence for gap detection. */
  timeOffsetMinutes: number;
  /** The octets to send; an octet left undefined is not sent (its flag bit stays clear). */
  annunciation?: CgmAnnunciationOctets;
  /** SFLOAT, (mg/dL)/min. */
  trend?: Ieee11073Value | number;
  /** SFLOAT, percent. */
  quality?: Ieee11073Value | number;
}

export interface CgmMeasurementRecord extends CgmMeasurementRecordFields {
  glucose: Ieee11073Value;
  annunciation?: CgmSensorStatus;
  trend?: Ieee11073Value;
  quality?: Ieee11073Value;
}

const FLAG_TREND = 0x01;
const FLAG_QUALITY = 0x02;
const KNOWN_FLAGS = 0xe3;

/** Flag bit announcing each octet, per layout. */
const OCTET_FLAGS: Readonly<Record<CgmAnnunciationLayout, { status: number; calTemp: number; warning: number }>> = Object.freeze({
  sig: { status: 0x80, calTemp: 0x40, warning: 0x20 },
  nordic: { status: 0x20, calTemp: 0x40, warning: 0x80 },
});

function layoutOf(options: CgmMeasurementOptions | undefined, onError: (message: string) => Error): CgmAnnunciationLayout {
  if (options === null || typeof options !== 'object' || typeof options.e2eCrc !== 'boolean') {
    throw onError('options.e2eCrc must be true or false (CGM Feature bit 12, E2E-CRC supported)');
  }
  const layout = options.annunciationLayout ?? 'sig';
  if (!CGM_ANNUNCIATION_LAYOUTS.includes(layout)) throw onError(`options.annunciationLayout must be one of ${CGM_ANNUNCIATION_LAYOUTS.join(', ')}, got ${String(layout)}`);
  return layout;
}

/** All records of one CGM Measurement notification, in order; the first record that cannot be decoded fails the whole notification. */
export function decodeCgmMeasurement(bytes: Uint8Array, options: CgmMeasurementOptions): CgmMeasurementRecord[] {
  return decodeCgmMeasurementParts(bytes, options).map((part) => {
    if ('error' in part) throw part.error;
    return part.record;
  });
}

/** One record of a CGM Measurement notification, or the bytes that could not be decoded and why. */
export type CgmMeasurementPart = { record: CgmMeasurementRecord; bytes: Uint8Array } | { error: DecodeError; bytes: Uint8Array };

/**
 * The records of one CGM Measurement notification (a CGM may pack several, e.g. a burst after a
 * reconnect), each decoded on its own: a record whose E2E-CRC does not match is one failed part and
 * the records around it still decode, since its Size agreed with its flags (the record boundaries hold,
 * and a wrong boundary would fail the next record's CRC). A framing error (a Size below 6, past the end,
 * or not what the flags imply; reserved flags) makes the rest of the notification one failed part.
 */
export function decodeCgmMeasurementParts(bytes: Uint8Array, options: CgmMeasurementOptions): CgmMeasurementPart[] {
  const layout = layoutOf(options, (m) => new DecodeError(CGM_MEASUREMENT_CODEC, m));
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(CGM_MEASUREMENT_CODEC, 'expected the notification value as a Uint8Array');
  if (bytes.length === 0) return [{ error: new DecodeError(CGM_MEASUREMENT_CODEC, 'empty notification; a record is at least 6 bytes'), bytes }];
  const parts: CgmMeasurementPart[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const where = `record ${parts.length + 1} at byte ${offset}`;
    const framingError = (message: string): CgmMeasurementPart[] => [...parts, { error: new DecodeError(CGM_MEASUREMENT_CODEC, `${where}: ${message}`), bytes: bytes.subarray(offset) }];
    const size = bytes[offset] as number;
    const left = bytes.length - offset;
    if (size < 6) return framingError(`size ${size} is below the minimum of 6`);
    if (size > left) return framingError(`size ${size} but only ${left} bytes left in the notification`);
    const flags = bytes[offset + 1] as number;
    const reserved = reservedBitsSet(flags, KNOWN_FLAGS);
    if (reserved.length > 0) {
      return framingError(`reserved flag bit${reserved.length > 1 ? 's' : ''} ${reserved.join(', ')} set (flags 0x${flags.toString(16).toUpperCase().padStart(2, '0')})`);
    }
    const bodyLength = recordLengthWithoutCrc(flags);
    const expected = bodyLength + (options.e2eCrc ? 2 : 0);
    if (size !== expected) {
      const hint =
        size === bodyLength + 2 && !options.e2eCrc
          ? '; it looks like a record with an E2E-CRC, but e2eCrc is false (check CGM Feature bit 12)'
          : size === bodyLength && options.e2eCrc
            ? '; it looks like a record without the E2E-CRC that the CGM Feature announces'
            : '';
      return framingError(`size ${size} but flags 0x${flags.toString(16).toUpperCase().padStart(2, '0')} ${options.e2eCrc ? 'with' : 'without'} E2E-CRC imply ${expected}${hint}`);
    }
    const recordBytes = bytes.subarray(offset, offset + size);
    if (options.e2eCrc) {
      const crcAt = offset + size - 2;
      const actual = (bytes[crcAt] as number) | ((bytes[crcAt + 1] as number) << 8);
      const computed = crc16Mcrf4xx(bytes, offset, crcAt);
      if (computed !== actual) {
        parts.push({ error: new CrcMismatchError(CGM_MEASUREMENT_CODEC, computed, actual, offset, where), bytes: recordBytes });
        offset += size;
        continue;
      }
    }
    const r = new ByteReader(CGM_MEASUREMENT_CODEC, bytes, offset + 2, offset + bodyLength);
    const record: CgmMeasurementRecord = { glucose: r.sfloat('glucose concentration'), timeOffsetMinutes: r.uint16('time offset') };
    const gates = OCTET_FLAGS[layout];
    const octets: CgmAnnunciationOctets = {};
    if (flags & gates.status) octets.status = r.uint8('status octet');
    if (flags & gates.calTemp) octets.calTemp = r.uint8('cal/temp octet');
    if (flags & gates.warning) octets.warning = r.uint8('warning octet');
    if (flags & 0xe0) record.annunciation = cgmSensorStatus(octets);
    if (flags & FLAG_TREND) record.trend = r.sfloat('trend');
    if (flags & FLAG_QUALITY) record.quality = r.sfloat('quality');
    r.expectEnd(where);
    parts.push({ record, bytes: recordBytes });
    offset += size;
  }
  return parts;
}

export function encodeCgmMeasurement(records: readonly CgmMeasurementRecordFields[], options: CgmMeasurementOptions): Uint8Array {
  const layout = layoutOf(options, (m) => new ConfigError('options', options, m, 'pass { e2eCrc: <CGM Feature bit 12>, annunciationLayout?: sig | nordic }'));
  if (!Array.isArray(records) || records.length === 0) {
    throw new ConfigError('records', records, 'is not a non-empty array', 'pass at least one CGM measurement record');
  }
  const out = new ByteWriter();
  records.forEach((record, i) => {
    const at = `/${i}`;
    const start = out.length;
    const gates = OCTET_FLAGS[layout];
    const a = record.annunciation;
    const flags =
      (record.trend !== undefined ? FLAG_TREND : 0) |
      (record.quality !== undefined ? FLAG_QUALITY : 0) |
      (a?.status !== undefined ? gates.status : 0) |
      (a?.calTemp !== undefined ? gates.calTemp : 0) |
      (a?.warning !== undefined ? gates.warning : 0);
    const size = recordLengthWithoutCrc(flags) + (options.e2eCrc ? 2 : 0);
    out.uint8(size, `${at}/size`).uint8(flags, `${at}/flags`);
    out.sfloat(record.glucose, `${at}/glucose`).uint16(record.timeOffsetMinutes, `${at}/timeOffsetMinutes`);
    if (a?.status !== undefined) out.uint8(a.status, `${at}/annunciation/status`);
    if (a?.calTemp !== undefined) out.uint8(a.calTemp, `${at}/annunciation/calTemp`);
    if (a?.warning !== undefined) out.uint8(a.warning, `${at}/annunciation/warning`);
    if (record.trend !== undefined) out.sfloat(record.trend, `${at}/trend`);
    if (record.quality !== undefined) out.sfloat(record.quality, `${at}/quality`);
    if (options.e2eCrc) {
      const sofar = out.toBytes();
      out.uint16(crc16Mcrf4xx(sofar, start, sofar.length), `${at}/crc`);
    }
  });
  return out.toBytes();
}

/** The decoded annunciation for the octets present. */
export function cgmSensorStatus(octets: CgmAnnunciationOctets): CgmSensorStatus {
  const bits = (octets.status ?? 0) | ((octets.calTemp ?? 0) << 8) | ((octets.warning ?? 0) << 16);
  const out: CgmAnnunciationOctets = {};
  if (octets.status !== undefined) out.status = octets.status;
  if (octets.calTemp !== undefined) out.calTemp = octets.calTemp;
  if (octets.warning !== undefined) out.warning = octets.warning;
  return { ...out, bits, ...namedBits(CGM_SENSOR_STATUS_BITS, bits) };
}

function recordLengthWithoutCrc(flags: number): number {
  return 6 + (flags & FLAG_TREND ? 2 : 0) + (flags & FLAG_QUALITY ? 2 : 0) + (flags & 0x20 ? 1 : 0) + (flags & 0x40 ? 1 : 0) + (flags & 0x80 ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// CGM Feature 0x2AA8: uint24 features, type (low nibble) / sample location (high nibble), E2E-CRC.

/** CGM Feature bits: flag name -> bit. Bits 17–23 are reserved. */
export const CGM_FEATURE_BITS = Object.freeze({
  calibration: 0,
  patientHighLowAlerts: 1,
  hypoAlerts: 2,
  hyperAlerts: 3,
  rateOfIncreaseDecreaseAlerts: 4,
  deviceSpecificAlert: 5,
  sensorMalfunctionDetection: 6,
  sensorTemperatureHighLowDetection: 7,
  sensorResultHighLowDetection: 8,
  lowBatteryDetection: 9,
  sensorTypeErrorDetection: 10,
  generalDeviceFault: 11,
  e2eCrc: 12,
  multipleBond: 13,
  multipleSessions: 14,
  trendInformation: 15,
  quality: 16,
} as const);
export type CgmFeatureFlag = keyof typeof CGM_FEATURE_BITS;

export const CGM_SAMPLE_LOCATIONS = Object.freeze({
  1: 'finger',
  2: 'alternate-site-test',
  3: 'earlobe',
  4: 'control-solution',
  5: 'subcutaneous-tissue',
  15: 'not-available',
} as const);
export type CgmSampleLocationName = (typeof CGM_SAMPLE_LOCATIONS)[keyof typeof CGM_SAMPLE_LOCATIONS];

export interface CgmFeatureFields {
  /** The 24 feature bits (use `CGM_FEATURE_BITS`); bit 12 decides whether the E2E-CRC is computed or 0xFFFF. */
  bits: number;
  type: CodeInput;
  sampleLocation: CodeInput;
}

export type CgmFeature = {
  bits: number;
  type: Coded<GlucoseSampleTypeName>;
  sampleLocation: Coded<CgmSampleLocationName>;
} & Record<CgmFeatureFlag, boolean>;

/**
 * Exactly 6 bytes. When feature bit 12 (E2E-CRC) is set the CRC over the first 4 bytes is
 * verified; when it is clear the field must be 0xFFFF as CGMS requires.
 */
export function decodeCgmFeature(bytes: Uint8Array): CgmFeature {
  const r = new ByteReader(CGM_FEATURE_CODEC, bytes);
  const bits = r.uint24('features');
  const typeAndLocation = r.uint8('type-sample location');
  const crc = r.uint16('E2E-CRC');
  r.expectEnd('the E2E-CRC');
  if ((bits >>> CGM_FEATURE_BITS.e2eCrc) & 1) {
    const computed = crc16Mcrf4xx(bytes, 0, 4);
    if (computed !== crc) throw new CrcMismatchError(CGM_FEATURE_CODEC, computed, crc, 0, 'CGM Feature');
  } else if (crc !== 0xffff) {
    throw new DecodeError(CGM_FEATURE_CODEC, `E2E-CRC is not supported (feature bit 12 clear) but the CRC field is 0x${crc.toString(16).toUpperCase().padStart(4, '0')} instead of 0xFFFF`);
  }
  return {
    bits,
    type: coded(GLUCOSE_SAMPLE_TYPES, typeAndLocation & 0x0f),
    sampleLocation: coded(CGM_SAMPLE_LOCATIONS, typeAndLocation >>> 4),
    ...namedBits(CGM_FEATURE_BITS, bits),
  };
}

export function encodeCgmFeature(feature: CgmFeatureFields): Uint8Array {
  const w = new ByteWriter()
    .uint24(feature.bits, '/bits')
    .uint8((codeOf(feature.sampleLocation, 4, '/sampleLocation') << 4) | codeOf(feature.type, 4, '/type'), '/typeSampleLocation');
  const head = w.toBytes();
  return w.uint16((feature.bits >>> CGM_FEATURE_BITS.e2eCrc) & 1 ? crc16Mcrf4xx(head) : 0xffff, '/crc').toBytes();
}

// ---------------------------------------------------------------------------------------------
// CGM Session Start Time 0x2AAA (read; CGMS §3.5, shared spec §3.8):
//
// | bytes | field                                   | values                                        |
// |-------|-----------------------------------------|-----------------------------------------------|
// | 7     | Session Start Time, Date Time (0x2A08)  | local wall clock; year/month/day 0 = unknown  |
// | 1     | Time Zone, sint8, 15-minute units       | -48..+56; -128 = not known (0x2A0E)           |
// | 1     | DST Offset, uint8                       | 0 standard, 2 +0.5 h, 4 +1 h, 8 +2 h; 255 = not known (0x2A0D) |
// | 2     | E2E-CRC, CRC-16/MCRF4XX over bytes 0–8  | only when CGM Feature bit 12 is set           |
//
// As for CGM Measurement, the CGM Feature decides whether the CRC is there (`e2eCrc`): 9 bytes
// without, 11 with, anything else fails. Nordic's Android library instead accepts 9 or 11 and
// infers the CRC from the length. The wall clock is local time, so UTC = wall clock − time zone −
// DST offset (Nordic's `CGMSessionStartTimeDataCallback` builds its Calendar the same way).
// Values outside the ranges above fail; "not known" values decode (without the derived fields).

/** Time Zone "offset not known" (Time Zone characteristic 0x2A0E). */
export const CGM_TIME_ZONE_UNKNOWN = -128;
/** DST Offset "DST not known" (DST Offset characteristic 0x2A0D). */
export const CGM_DST_OFFSET_UNKNOWN = 255;
/** DST Offset code -> minutes added to standard time. */
export const CGM_DST_OFFSET_MINUTES: Readonly<Record<number, number>> = Object.freeze({ 0: 0, 2: 30, 4: 60, 8: 120 });

export interface CgmSessionOptions {
  /** CGM Feature bit 12 (E2E-CRC supported): the value ends in a CRC that is verified / written. */
  e2eCrc: boolean;
}

export interface CgmSessionStartTimeFields {
  /** Local wall clock of the session start (Date Time; year, month or day 0 = not known). */
  startTime: BleDateTimeFields;
  /** Time Zone in 15-minute units, -48..+56, or -128 (`CGM_TIME_ZONE_UNKNOWN`). */
  timeZone: number;
  /** DST Offset code: 0, 2, 4, 8, or 255 (`CGM_DST_OFFSET_UNKNOWN`). */
  dstOffset: number;
}

export interface CgmSessionStartTime extends CgmSessionStartTimeFields {
  /** As received; `epochMs` (the wall clock read as UTC) when year, month and day are known. */
  startTime: BleDateTime;
  /** Time zone in minutes east of UTC, when known. */
  timeZoneMinutes?: number;
  /** DST offset in minutes, when known. */
  dstOffsetMinutes?: number;
  /** The session start in UTC (ms): wall clock − time zone − DST offset; only when all three are known. */
  utcMs?: number;
}

/** Why `fields` cannot be a Session Start Time, or undefined when they can. */
function sessionStartTimeProblem(fields: CgmSessionStartTimeFields): string | undefined {
  const t = fields.startTime;
  const ranges: [keyof BleDateTimeFields, number, number][] = [
    ['month', 0, 12],
    ['day', 0, 31],
    ['hours', 0, 23],
    ['minutes', 0, 59],
    ['seconds', 0, 59],
  ];
  if (!Number.isInteger(t.year) || (t.year !== 0 && (t.year < 1582 || t.year > 9999))) return `year ${t.year} is outside 1582..9999 (0 = not known)`;
  for (const [name, min, max] of ranges) {
    const v = t[name];
    if (!Number.isInteger(v) || v < min || v > max) return `${name} ${v} is outside ${min}..${max}`;
  }
  if (t.year !== 0 && t.month !== 0 && t.day !== 0 && dateTimeEpochMs(t) === undefined) return `${t.year}-${t.month}-${t.day} is not a calendar date`;
  const tz = fields.timeZone;
  if (!Number.isInteger(tz) || (tz !== CGM_TIME_ZONE_UNKNOWN && (tz < -48 || tz > 56))) return `time zone ${tz} is outside -48..+56 (15-minute units; -128 = not known)`;
  if (fields.dstOffset !== CGM_DST_OFFSET_UNKNOWN && CGM_DST_OFFSET_MINUTES[fields.dstOffset] === undefined) return `DST offset ${fields.dstOffset} is not 0, 2, 4, 8 (or 255 = not known)`;
  return undefined;
}

function sessionOptionsCheck(options: CgmSessionOptions | undefined, onError: (message: string) => Error): boolean {
  if (options === null || typeof options !== 'object' || typeof options.e2eCrc !== 'boolean') throw onError('options.e2eCrc must be true or false (CGM Feature bit 12, E2E-CRC supported)');
  return options.e2eCrc;
}

/** 9 bytes, or 11 with the E2E-CRC (verified) when `e2eCrc`. */
export function decodeCgmSessionStartTime(bytes: Uint8Array, options: CgmSessionOptions): CgmSessionStartTime {
  const e2eCrc = sessionOptionsCheck(options, (m) => new DecodeError(CGM_SESSION_START_TIME_CODEC, m));
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(CGM_SESSION_START_TIME_CODEC, 'expected the characteristic value as a Uint8Array');
  const expected = e2eCrc ? 11 : 9;
  if (bytes.length !== expected) {
    const hint =
      bytes.length === 11 && !e2eCrc
        ? '; it looks like a value with an E2E-CRC, but e2eCrc is false (check CGM Feature bit 12)'
        : bytes.length === 9 && e2eCrc
          ? '; it looks like a value without the E2E-CRC that the CGM Feature announces'
          : '';
    throw new DecodeError(CGM_SESSION_START_TIME_CODEC, `${bytes.length} bytes, but a Session Start Time ${e2eCrc ? 'with' : 'without'} E2E-CRC is ${expected}${hint}`);
  }
  const r = new ByteReader(CGM_SESSION_START_TIME_CODEC, bytes);
  const startTime = readDateTime(r, 'session start time');
  const tzRaw = r.uint8('time zone');
  const timeZone = tzRaw >= 0x80 ? tzRaw - 0x100 : tzRaw;
  const dstOffset = r.uint8('DST offset');
  if (e2eCrc) {
    const actual = r.uint16('E2E-CRC');
    const computed = crc16Mcrf4xx(bytes, 0, 9);
    if (computed !== actual) throw new CrcMismatchError(CGM_SESSION_START_TIME_CODEC, computed, actual, 0, 'Session Start Time');
  }
  r.expectEnd(e2eCrc ? 'the E2E-CRC' : 'the DST offset');
  const problem = sessionStartTimeProblem({ startTime, timeZone, dstOffset });
  if (problem !== undefined) throw new DecodeError(CGM_SESSION_START_TIME_CODEC, problem);
  const out: CgmSessionStartTime = { startTime, timeZone, dstOffset };
  if (timeZone !== CGM_TIME_ZONE_UNKNOWN) out.timeZoneMinutes = timeZone * 15;
  const dst = CGM_DST_OFFSET_MINUTES[dstOffset];
  if (dst !== undefined) out.dstOffsetMinutes = dst;
  if (startTime.epochMs !== undefined && out.timeZoneMinutes !== undefined && dst !== undefined) out.utcMs = startTime.epochMs - (out.timeZoneMinutes + dst) * 60_000;
  return out;
}

/** The 9 bytes (11 with the E2E-CRC when `e2eCrc`); values outside the ranges are refused with a `ConfigError`. */
export function encodeCgmSessionStartTime(value: CgmSessionStartTimeFields, options: CgmSessionOptions): Uint8Array {
  const e2eCrc = sessionOptionsCheck(options, (m) => new ConfigError('options', options, m, 'pass { e2eCrc: <CGM Feature bit 12> }'));
  const problem = value !== null && typeof value === 'object' && value.startTime !== null && typeof value.startTime === 'object' ? sessionStartTimeProblem(value) : 'is not { startTime, timeZone, dstOffset }';
  if (problem !== undefined) throw new ConfigError('sessionStartTime', value, problem, 'use a Date Time with fields in range (0 = not known), time zone -48..+56 or -128, DST offset 0, 2, 4, 8 or 255');
  const w = new ByteWriter();
  writeDateTime(w, value.startTime, '/startTime');
  w.uint8(value.timeZone & 0xff, '/timeZone').uint8(value.dstOffset, '/dstOffset');
  if (e2eCrc) w.uint16(crc16Mcrf4xx(w.toBytes()), '/crc');
  return w.toBytes();
}
