/**
 * Heart Rate Measurement (0x2A37, Heart Rate Service), from `shared/specs/ble-health-profiles.md`
 * §3.6 and Nordic's Android-BLE-Common-Library `HeartRateMeasurementDataCallback` (+ its test):
 *
 * | bytes  | field                                    | present when |
 * |--------|------------------------------------------|--------------|
 * | 1      | Flags                                    | always       |
 * | 1 or 2 | Heart rate, bpm (uint8, or uint16)       | bit 0 = 1 → uint16 |
 * | 2      | Energy expended, uint16 kJ (cumulative)  | bit 3        |
 * | 2 × n  | RR intervals, uint16 in 1/1024 s         | bit 4, filling the rest of the value |
 *
 * Flag bits 1–2 are the sensor contact status: 0 and 1 "not supported", 2 "supported, not
 * detected", 3 "supported and detected". The code is kept (0 and 1 must round-trip) with
 * `supported`/`detected` derived.
 *
 * Decisions: reserved flag bits 5–7 set fail; bytes left after the heart rate and energy fail
 * unless bit 4 is set, and with bit 4 set an odd number of remaining bytes fails. Bit 4 with no
 * interval at all decodes to `rrIntervals: []`: the spec text says "zero or more", while Nordic's
 * library rejects it (its `onInvalidDataReceived` test uses `17 01 01`). An empty list loses no
 * information, so the reading is kept rather than quarantined.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { codeOf, reservedBitsSet, type CodeInput } from './codes.js';

export const HEART_RATE_MEASUREMENT_UUID = 0x2a37;
export const HEART_RATE_MEASUREMENT_CODEC = 'ble-heart-rate-measurement';

export type HeartRateFormat = 'uint8' | 'uint16';

export interface HeartRateMeasurementFields {
  /** Beats per minute. */
  heartRate: number;
  /** Flag bit 0. Optional for encoding: uint8 when `heartRate` fits, else uint16. */
  format?: HeartRateFormat;
  /** Flag bits 1–2 (0..3). Optional for encoding: 0 (not supported). */
  sensorContact?: CodeInput;
  /** Flag bit 3: uint16 kJ since the last reset (Heart Rate Control Point `01`). */
  energyExpendedKj?: number;
  /** Flag bit 4: RR intervals in units of 1/1024 s, oldest first. */
  rrIntervals?: number[];
}

export interface HeartRateSensorContact {
  code: number;
  supported: boolean;
  detected: boolean;
}

export interface HeartRateMeasurement extends HeartRateMeasurementFields {
  format: HeartRateFormat;
  sensorContact: HeartRateSensorContact;
  /** `rrIntervals` converted to milliseconds (× 1000 / 1024). */
  rrIntervalsMs?: number[];
}

const KNOWN_FLAGS = 0x1f;

export function decodeHeartRateMeasurement(bytes: Uint8Array): HeartRateMeasurement {
  const r = new ByteReader(HEART_RATE_MEASUREMENT_CODEC, bytes);
  const flags = r.uint8('flags');
  const reserved = reservedBitsSet(flags, KNOWN_FLAGS);
  if (reserved.length > 0) {
    throw new DecodeError(HEART_RATE_MEASUREMENT_CODEC, `reserved flag bit${reserved.length > 1 ? 's' : ''} ${reserved.join(', ')} set (flags 0x${flags.toString(16).toUpperCase().padStart(2, '0')})`);
  }
  const format: HeartRateFormat = flags & 0x01 ? 'uint16' : 'uint8';
  const heartRate = format === 'uint16' ? r.uint16('heart rate (uint16)') : r.uint8('heart rate (uint8)');
  const contactCode = (flags >>> 1) & 0x03;
  const out: HeartRateMeasurement = {
    heartRate,
    format,
    sensorContact: { code: contactCode, supported: contactCode >= 2, detected: contactCode === 3 },
  };
  if (flags & 0x08) out.energyExpendedKj = r.uint16('energy expended');
  if (flags & 0x10) {
    if (r.remaining % 2 !== 0) {
      throw new DecodeError(HEART_RATE_MEASUREMENT_CODEC, `RR intervals are uint16 but ${r.remaining} bytes remain (odd; value is ${bytes.length} bytes)`);
    }
    const rr: number[] = [];
    while (r.remaining > 0) rr.push(r.uint16(`RR interval ${rr.length + 1}`));
    out.rrIntervals = rr;
    out.rrIntervalsMs = rr.map((v) => (v * 1000) / 1024);
  }
  r.expectEnd(flags & 0x08 ? 'the energy expended (RR flag clear)' : 'the heart rate (energy and RR flags clear)');
  return out;
}

export function encodeHeartRateMeasurement(measurement: HeartRateMeasurementFields): Uint8Array {
  const m = measurement;
  const format = m.format ?? (Number.isInteger(m.heartRate) && m.heartRate >= 0 && m.heartRate <= 0xff ? 'uint8' : 'uint16');
  if (format !== 'uint8' && format !== 'uint16') throw new ConfigError('/format', format, 'is not a heart rate format', "use 'uint8' or 'uint16'");
  const contact = m.sensorContact === undefined ? 0 : codeOf(m.sensorContact, 4, '/sensorContact');
  if (contact > 3) throw new ConfigError('/sensorContact/code', contact, 'is not a sensor contact code', 'use 0 or 1 (not supported), 2 (not detected), 3 (detected)');
  if (m.rrIntervals !== undefined && !Array.isArray(m.rrIntervals)) {
    throw new ConfigError('/rrIntervals', m.rrIntervals, 'is not an array', 'pass RR intervals in 1/1024 s as an array of integers');
  }
  const flags = (format === 'uint16' ? 0x01 : 0) | (contact << 1) | (m.energyExpendedKj !== undefined ? 0x08 : 0) | (m.rrIntervals !== undefined ? 0x10 : 0);
  const w = new ByteWriter().uint8(flags, '/flags');
  if (format === 'uint16') w.uint16(m.heartRate, '/heartRate');
  else w.uint8(m.heartRate, '/heartRate');
  if (m.energyExpendedKj !== undefined) w.uint16(m.energyExpendedKj, '/energyExpendedKj');
  m.rrIntervals?.forEach((v, i) => w.uint16(v, `/rrIntervals/${i}`));
  return w.toBytes();
}
