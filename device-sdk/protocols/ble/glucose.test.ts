import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../errors.js';
import { decodeSfloat, scaledValue, type Ieee11073Value } from '../ieee11073.js';
import { bytesToHex, hexToBytes } from './bytes.js';
import { bitsOf } from './codes.js';
import {
  decodeGlucoseFeature,
  decodeGlucoseMeasurement,
  decodeGlucoseMeasurementContext,
  encodeGlucoseFeature,
  encodeGlucoseMeasurement,
  encodeGlucoseMeasurementContext,
  GLUCOSE_MEASUREMENT_CODEC,
  GLUCOSE_SENSOR_STATUS_BITS,
  MG_PER_DL_PER_MMOL_PER_L,
  type GlucoseMeasurementContextFields,
  type GlucoseMeasurementFields,
} from './glucose.js';

const PROPERTY = { seed: 42, numRuns: 500 };

function decodeHex<T>(decode: (b: Uint8Array) => T, text: string): T {
  return decode(hexToBytes(text));
}

function roundTrip<T>(decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array, text: string): void {
  expect(bytesToHex(encode(decode(hexToBytes(text))))).toBe(bytesToHex(hexToBytes(text)));
}

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    return error as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('Glucose Measurement 0x2A18', () => {
  // Nordic Android-BLE-Common-Library,
  // ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/glucose/GlucoseMeasurementDataCallbackTest.java
  // (also the vector in ble-health-profiles.md §3.2).
  const NORDIC =
    '1B' + //       flags: time offset, concentration+type/location, units kg/L (bit 2 clear), status, context follows
    ' 01 00' + //   sequence number 1
    ' E3 07' + //   year 2019
    ' 02 1B' + //   February 27
    ' 0B 0A 1E' + // 11:10:30
    ' FB FF' + //   time offset -5 min
    ' 1E 00' + //   concentration SFLOAT 0x001E = 30 (exponent 0: the test's unrealistic 30 kg/L)
    ' 12' + //      type 2 capillary plasma (low nibble), location 1 finger (high nibble)
    ' 05 01'; //    status 0x0105: battery low, sample size insufficient, temperature too low

  it('decodes the Nordic unit-test vector field by field', () => {
    const m = decodeHex(decodeGlucoseMeasurement, NORDIC);
    expect(m.sequenceNumber).toBe(1);
    expect(m.baseTime).toEqual({ year: 2019, month: 2, day: 27, hours: 11, minutes: 10, seconds: 30, epochMs: Date.UTC(2019, 1, 27, 11, 10, 30) });
    expect(m.timeOffsetMinutes).toBe(-5);
    expect(m.measuredAtMs).toBe(Date.UTC(2019, 1, 27, 11, 5, 30)); // Nordic asserts minute 5 after adding the offset
    expect(m.units).toBe('kg/L');
    expect(m.concentration?.value).toEqual({ kind: 'number', value: 30, mantissa: 30, exponent: 0 });
    expect(m.concentration?.mgPerDl).toBe(3_000_000);
    expect(m.concentration?.type).toEqual({ code: 2, name: 'capillary-plasma' });
    expect(m.concentration?.sampleLocation).toEqual({ code: 1, name: 'finger' });
    expect(m.sensorStatus?.bits).toBe(0x0105); // Nordic asserts 261
    const set = Object.entries(m.sensorStatus ?? {}).filter(([k, v]) => k !== 'bits' && v === true).map(([k]) => k);
    expect(set).toEqual(['batteryLow', 'sampleSizeInsufficient', 'temperatureTooLow']);
    expect(bitsOf(GLUCOSE_SENSOR_STATUS_BITS, ['batteryLow', 'sampleSizeInsufficient', 'temperatureTooLow'])).toBe(0x0105);
    expect(m.sensorStatus?.generalDeviceFault).toBe(false); // Nordic asserts this too (its comment says "Device Fault", wrongly)
    expect(m.contextFollows).toBe(true);
    roundTrip(decodeGlucoseMeasurement, encodeGlucoseMeasurement, NORDIC);
  });

  it('decodes 120 mg/dL sent as kg/L (spec vector 0xB078)', () => {
    const text =
      '02' + //                     flags: concentration present, kg/L
      ' 2A 00' + //                 sequence 42
      ' E8 07 03 0F 08 1E 00' + //  2024-03-15 08:30:00
      ' 78 B0' + //                 SFLOAT 0xB078 = 120e-5 kg/L
      ' 11'; //                     capillary whole blood, finger
    const m = decodeHex(decodeGlucoseMeasurement, text);
    expect(m.concentration?.value).toEqual({ kind: 'number', value: 0.0012, mantissa: 120, exponent: -5 });
    expect(m.concentration?.mgPerDl).toBe(120);
    expect(m.concentration?.mmolPerL).toBeCloseTo(6.661, 3); // 120 / 18.0156
    expect(m.concentration?.type.name).toBe('capillary-whole-blood');
    expect(m.timeOffsetMinutes).toBeUndefined();
    expect(m.sensorStatus).toBeUndefined();
    expect(m.measuredAtMs).toBe(Date.UTC(2024, 2, 15, 8, 30, 0));
    roundTrip(decodeGlucoseMeasurement, encodeGlucoseMeasurement, text);
  });

  it('decodes 6.7 mmol/L sent as mol/L (spec vector 0xC043)', () => {
    const text =
      '06' + //                     flags: concentration present, mol/L (bit 2)
      ' 2B 00' + //                 sequence 43
      ' E8 07 03 0F 08 1E 00' + //  2024-03-15 08:30:00
      ' 43 C0' + //                 SFLOAT 0xC043 = 67e-4 mol/L
      ' F8'; //                     undetermined plasma (8), location not available (15)
    const m = decodeHex(decodeGlucoseMeasurement, text);
    expect(m.units).toBe('mol/L');
    expect(m.concentration?.mmolPerL).toBe(6.7);
    expect(m.concentration?.mgPerDl).toBeCloseTo(6.7 * MG_PER_DL_PER_MMOL_PER_L, 10);
    expect(m.concentration?.type).toEqual({ code: 8, name: 'undetermined-plasma' });
    expect(m.concentration?.sampleLocation).toEqual({ code: 15, name: 'not-available' });
    roundTrip(decodeGlucoseMeasurement, encodeGlucoseMeasurement, text);
  });

  // Disputed bits: SIG order / nRF5 SDK ble_gls.h / Wireshark / Cordio read 0x0020 as "higher" and
  // 0x0040 as "lower"; Nordic's Android library (GlucoseMeasurementCallback.GlucoseStatus) swaps
  // them. One fixture per bit, both readings written down.
  it('reads status bit 5 (0x0020) as result too HIGH (Nordic Android would say lower)', () => {
    const m = decodeHex(decodeGlucoseMeasurement, '08 2C 00 E8 07 03 0F 08 1E 00 20 00'); // flags: status only; status 0x0020
    expect(m.sensorStatus).toMatchObject({ bits: 0x20, resultTooHigh: true, resultTooLow: false });
  });

  it('reads status bit 6 (0x0040) as result too LOW (Nordic Android would say higher)', () => {
    const m = decodeHex(decodeGlucoseMeasurement, '08 2D 00 E8 07 03 0F 08 1E 00 40 00'); // flags: status only; status 0x0040
    expect(m.sensorStatus).toMatchObject({ bits: 0x40, resultTooHigh: false, resultTooLow: true });
    expect(GLUCOSE_SENSOR_STATUS_BITS.resultTooHigh).toBe(5);
    expect(GLUCOSE_SENSOR_STATUS_BITS.resultTooLow).toBe(6);
  });

  it('keeps unknown date fields as 0 and gives no epoch time for them', () => {
    // Smallest value: flags 0, sequence 0, base time all zero (year, month, day unknown).
    const m = decodeHex(decodeGlucoseMeasurement, '00 00 00 00 00 00 00 00 00 00');
    expect(m.baseTime).toEqual({ year: 0, month: 0, day: 0, hours: 0, minutes: 0, seconds: 0 });
    expect(m.measuredAtMs).toBeUndefined();
    // 31 February: fields kept, no epoch time.
    expect(decodeHex(decodeGlucoseMeasurement, '00 00 00 E8 07 02 1F 00 00 00').baseTime.epochMs).toBeUndefined();
  });

  it('keeps the unit flag when no concentration follows, and reserved sample types by number', () => {
    const m = decodeHex(decodeGlucoseMeasurement, '04 00 00 00 00 00 00 00 00 00'); // mol/L flag, nothing else
    expect(m.units).toBe('mol/L');
    expect(m.concentration).toBeUndefined();
    roundTrip(decodeGlucoseMeasurement, encodeGlucoseMeasurement, '04 00 00 00 00 00 00 00 00 00');
    const odd = decodeHex(decodeGlucoseMeasurement, '02 00 00 00 00 00 00 00 00 00 FF 07 5B'); // NaN, type 11, location 5
    expect(odd.concentration).toEqual({ value: { kind: 'nan' }, type: { code: 11, name: 'reserved' }, sampleLocation: { code: 5, name: 'reserved' } });
  });

  it('fails with a DecodeError on empty, truncated, reserved-flag and over-long values', () => {
    expect(decodeError(() => decodeGlucoseMeasurement(new Uint8Array())).codec).toBe(GLUCOSE_MEASUREMENT_CODEC);
    // Nordic's onInvalidDataReceived vector: flags announce a time offset but it is missing (15 of 17 bytes).
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurement, '1B 00 00 E2 07 04 1A 0B 09 1E 1E 00 12 05 01')).message).toMatch(/truncated/);
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurement, '00 00 00 00 00 00 00 00 00')).message).toMatch(/truncated at base time.seconds/);
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurement, '20 00 00 00 00 00 00 00 00 00')).message).toMatch(/reserved flag bit 5/);
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurement, '00 00 00 00 00 00 00 00 00 00 00')).message).toMatch(/1 unexpected trailing byte/);
  });

  it('refuses unencodable fields with a ConfigError naming them', () => {
    const base: GlucoseMeasurementFields = { sequenceNumber: 1, baseTime: { year: 2024, month: 1, day: 1, hours: 0, minutes: 0, seconds: 0 }, units: 'kg/L', contextFollows: false };
    expect(() => encodeGlucoseMeasurement({ ...base, sequenceNumber: 70_000 })).toThrow(/\/sequenceNumber/);
    expect(() => encodeGlucoseMeasurement({ ...base, timeOffsetMinutes: 40_000 })).toThrow(ConfigError);
    expect(() => encodeGlucoseMeasurement({ ...base, units: 'mg/dL' as 'kg/L' })).toThrow(/\/units/);
    expect(() => encodeGlucoseMeasurement({ ...base, concentration: { value: 0.0012, type: { code: 16 }, sampleLocation: { code: 1 } } })).toThrow(/\/concentration\/type\/code/);
    // A plain number is encoded with the shortest exact SFLOAT: 0.0012 kg/L -> 12e-4 (0xC00C), still 120 mg/dL.
    const bytes = encodeGlucoseMeasurement({ ...base, concentration: { value: 0.0012, type: { code: 1 }, sampleLocation: { code: 1 } } });
    expect(bytesToHex(bytes.slice(10, 12))).toBe('0C C0');
    expect(decodeGlucoseMeasurement(bytes).concentration?.mgPerDl).toBe(120);
  });
});

describe('Glucose Measurement Context 0x2A34', () => {
  // Field values of Nordic's GlucoseMeasurementContextDataCallbackTest.onGlucoseMeasurementContextReceived_full
  // (ble-common/src/test/java/.../callback/glucose/GlucoseMeasurementContextDataCallbackTest.java); the
  // SFLOAT bytes are this codec's encoding of its floats.
  const FULL =
    'FF' + //       flags: every field, medication in liters (bit 5), extended flags (bit 7)
    ' 00 00' + //   sequence 0
    ' B3' + //      extended flags 0xB3 (all reserved in GLS 1.0; Nordic ignores them, kept here)
    ' 03 64 00' + // carbohydrate: dinner, 100 (SFLOAT 0x0064). SIG unit kg; Nordic's comment says grams
    ' 04' + //      meal: casual
    ' 12' + //      tester 2 health care professional (low), health 1 minor issues (high)
    ' 3C 00 32' + // exercise 60 s at 50 %
    ' 04 D3 F4' + // medication: long-acting insulin, 123.5 (1235e-1; Nordic writes 123.45f). SIG: liters, Nordic: ml
    ' 59 F1'; //    HbA1c 34.5 % (345e-1)

  it('decodes every optional field', () => {
    const c = decodeHex(decodeGlucoseMeasurementContext, FULL);
    expect(c.sequenceNumber).toBe(0);
    expect(c.extendedFlags).toBe(0xb3);
    expect(c.carbohydrate).toEqual({ id: { code: 3, name: 'dinner' }, amount: { kind: 'number', value: 100, mantissa: 100, exponent: 0 }, grams: 100_000 });
    expect(c.meal).toEqual({ code: 4, name: 'casual' });
    expect(c.testerHealth).toEqual({ tester: { code: 2, name: 'health-care-professional' }, health: { code: 1, name: 'minor-health-issues' } });
    expect(c.exercise).toEqual({ durationSeconds: 60, intensityPercent: 50, overrun: false });
    expect(c.medicationUnits).toBe('L');
    expect(c.medication).toEqual({ id: { code: 4, name: 'long-acting-insulin' }, amount: { kind: 'number', value: 123.5, mantissa: 1235, exponent: -1 }, millilitres: 123_500 });
    expect(c.hba1c).toEqual({ kind: 'number', value: 34.5, mantissa: 345, exponent: -1 });
    roundTrip(decodeGlucoseMeasurementContext, encodeGlucoseMeasurementContext, FULL);
  });

  it('decodes a context with the sequence number only (Nordic "_empty", without its 14 padding bytes)', () => {
    expect(decodeHex(decodeGlucoseMeasurementContext, '00 01 00')).toEqual({ sequenceNumber: 1, medicationUnits: 'kg' });
    // Nordic's parser accepts the padded 17-byte value; here trailing bytes are an error (see glucose.ts).
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurementContext, '00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00')).message).toMatch(/14 unexpected trailing bytes/);
  });

  it('decodes meal, exercise overrun and medication in kilograms', () => {
    expect(decodeHex(decodeGlucoseMeasurementContext, '02 2A 00 01').meal).toEqual({ code: 1, name: 'preprandial' }); // meal only: preprandial
    expect(decodeHex(decodeGlucoseMeasurementContext, '08 2A 00 FF FF 64').exercise).toEqual({ durationSeconds: 0xffff, intensityPercent: 100, overrun: true });
    // Medication (bit 4), kilograms (bit 5 clear): rapid-acting insulin, 2e-6 kg = 2 mg.
    const med = decodeHex(decodeGlucoseMeasurementContext, '10 2A 00 01 02 A0');
    expect(med.medication).toEqual({ id: { code: 1, name: 'rapid-acting-insulin' }, amount: { kind: 'number', value: 0.000002, mantissa: 2, exponent: -6 }, milligrams: 2 });
  });

  it('fails with a DecodeError when a field is cut short', () => {
    // Nordic's onInvalidDataReceived vector (5 bytes, flags 0xFF).
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurementContext, 'FF 00 00 B3 03')).message).toMatch(/truncated at carbohydrate/);
    expect(decodeError(() => decodeHex(decodeGlucoseMeasurementContext, FULL.slice(0, -3))).message).toMatch(/truncated at HbA1c/);
    expect(() => decodeGlucoseMeasurementContext(new Uint8Array(2))).toThrow(DecodeError);
  });
});

describe('Glucose Feature 0x2A51', () => {
  it('decodes Nordic GlucoseFeatureDataCallbackTest: F0 03 (strip type .. time fault)', () => {
    const f = decodeHex(decodeGlucoseFeature, 'F0 03'); // 0x03F0: bits 4..9
    expect(f.bits).toBe(0x03f0);
    expect(f).toMatchObject({
      lowBatteryDetection: false,
      sensorMalfunctionDetection: false,
      sensorSampleSize: false,
      stripInsertionErrorDetection: false,
      stripTypeErrorDetection: true,
      resultHighLowDetection: true,
      temperatureHighLowDetection: true,
      readInterruptDetection: true,
      generalDeviceFault: true,
      timeFault: true,
      multipleBond: false,
    });
    roundTrip(decodeGlucoseFeature, encodeGlucoseFeature, 'F0 03');
  });

  it('accepts exactly two bytes', () => {
    expect(() => decodeGlucoseFeature(new Uint8Array())).toThrow(DecodeError); // Nordic's invalid vector: empty
    expect(() => decodeHex(decodeGlucoseFeature, 'F0')).toThrow(/truncated/);
    expect(() => decodeHex(decodeGlucoseFeature, 'F0 03 00')).toThrow(/trailing/);
  });
});

// ---------------------------------------------------------------------------------------------
// Round-trip properties

const sfloat: fc.Arbitrary<Ieee11073Value> = fc.integer({ min: 0, max: 0xffff }).map(decodeSfloat);
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const nibble = fc.integer({ min: 0, max: 15 });
const dateTime = fc.record({
  year: fc.oneof(fc.constant(0), fc.integer({ min: 1582, max: 9999 }), u16),
  month: fc.oneof(fc.integer({ min: 0, max: 12 }), u8),
  day: fc.oneof(fc.integer({ min: 0, max: 31 }), u8),
  hours: fc.oneof(fc.integer({ min: 0, max: 23 }), u8),
  minutes: fc.oneof(fc.integer({ min: 0, max: 59 }), u8),
  seconds: fc.oneof(fc.integer({ min: 0, max: 59 }), u8),
});

const measurementFields: fc.Arbitrary<GlucoseMeasurementFields> = fc.record(
  {
    sequenceNumber: u16,
    baseTime: dateTime,
    timeOffsetMinutes: fc.integer({ min: -0x8000, max: 0x7fff }),
    units: fc.constantFrom('kg/L' as const, 'mol/L' as const),
    concentration: fc.record({ value: sfloat, type: fc.record({ code: nibble }), sampleLocation: fc.record({ code: nibble }) }),
    sensorStatus: fc.record({ bits: u16 }),
    contextFollows: fc.boolean(),
  },
  { requiredKeys: ['sequenceNumber', 'baseTime', 'units', 'contextFollows'] },
);

const contextFields: fc.Arbitrary<GlucoseMeasurementContextFields> = fc.record(
  {
    sequenceNumber: u16,
    extendedFlags: u8,
    carbohydrate: fc.record({ id: fc.record({ code: u8 }), amount: sfloat }),
    meal: fc.record({ code: u8 }),
    testerHealth: fc.record({ tester: fc.record({ code: nibble }), health: fc.record({ code: nibble }) }),
    exercise: fc.record({ durationSeconds: u16, intensityPercent: u8 }),
    medicationUnits: fc.constantFrom('kg' as const, 'L' as const),
    medication: fc.record({ id: fc.record({ code: u8 }), amount: sfloat }),
    hba1c: sfloat,
  },
  { requiredKeys: ['sequenceNumber', 'medicationUnits'] },
);

describe('round-trip properties', () => {
  it('Glucose Measurement: decode(encode(v)) carries v and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(measurementFields, (fields) => {
        const bytes = encodeGlucoseMeasurement(fields);
        const v = decodeGlucoseMeasurement(bytes);
        expect(v).toMatchObject(fields);
        expect(decodeGlucoseMeasurement(encodeGlucoseMeasurement(v))).toEqual(v);
        expect(bytesToHex(encodeGlucoseMeasurement(v))).toBe(bytesToHex(bytes));
        // Derived values, computed independently.
        const c = v.concentration;
        if (c?.value.kind === 'number') {
          if (v.units === 'kg/L') expect(c.mgPerDl).toBe(scaledValue(c.value.mantissa, c.value.exponent + 5));
          else expect(c.mmolPerL).toBe(scaledValue(c.value.mantissa, c.value.exponent + 3));
        }
        if (v.sensorStatus) expect(v.sensorStatus.batteryLow).toBe((v.sensorStatus.bits & 1) === 1);
      }),
      PROPERTY,
    );
  });

  it('Glucose Measurement Context: decode(encode(v)) carries v and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(contextFields, (fields) => {
        const bytes = encodeGlucoseMeasurementContext(fields);
        const v = decodeGlucoseMeasurementContext(bytes);
        expect(v).toMatchObject(fields);
        expect(decodeGlucoseMeasurementContext(encodeGlucoseMeasurementContext(v))).toEqual(v);
        expect(bytesToHex(encodeGlucoseMeasurementContext(v))).toBe(bytesToHex(bytes));
      }),
      PROPERTY,
    );
  });

  it('Glucose Feature: decode(encode(v)) equals v', () => {
    fc.assert(
      fc.property(u16, (bits) => {
        const v = decodeGlucoseFeature(encodeGlucoseFeature({ bits }));
        expect(v.bits).toBe(bits);
        expect(decodeGlucoseFeature(encodeGlucoseFeature(v))).toEqual(v);
      }),
      PROPERTY,
    );
  });
});
