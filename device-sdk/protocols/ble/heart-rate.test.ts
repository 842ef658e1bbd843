import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../errors.js';
import { bytesToHex, hexToBytes } from './bytes.js';
import { decodeHeartRateMeasurement, encodeHeartRateMeasurement, HEART_RATE_MEASUREMENT_CODEC, type HeartRateMeasurementFields } from './heart-rate.js';

function decodeHex(text: string) {
  return decodeHeartRateMeasurement(hexToBytes(text));
}

function roundTrip(text: string): void {
  expect(bytesToHex(encodeHeartRateMeasurement(decodeHex(text)))).toBe(bytesToHex(hexToBytes(text)));
}

// Vectors of Nordic Android-BLE-Common-Library
// ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/hr/HeartRateMeasurementDataCallbackTest.java
// (also ble-health-profiles.md §3.6).
describe('Heart Rate Measurement 0x2A37', () => {
  it('00 55: 85 bpm, uint8, no contact information', () => {
    // 00: flags, uint8 format, contact code 0 (not supported); 55: 85 bpm
    expect(decodeHex('00 55')).toEqual({ heartRate: 85, format: 'uint8', sensorContact: { code: 0, supported: false, detected: false } });
    roundTrip('00 55');
  });

  it('04 FF: 255 bpm, contact supported but not detected', () => {
    // 04: contact code 2 (bits 1-2 = 10); FF: 255 bpm
    expect(decodeHex('04 FF')).toEqual({ heartRate: 255, format: 'uint8', sensorContact: { code: 2, supported: true, detected: false } });
    roundTrip('04 FF');
  });

  it('1E 55 32 00 21 00: 85 bpm, contact detected, 50 kJ, one RR interval of 33/1024 s', () => {
    // 1E: contact code 3, energy (bit 3), RR (bit 4); 55: 85 bpm; 32 00: 50 kJ; 21 00: RR 33
    const m = decodeHex('1E 55 32 00 21 00');
    expect(m).toEqual({
      heartRate: 85,
      format: 'uint8',
      sensorContact: { code: 3, supported: true, detected: true },
      energyExpendedKj: 50,
      rrIntervals: [33],
      rrIntervalsMs: [(33 * 1000) / 1024],
    });
    expect(m.rrIntervalsMs?.[0]).toBeCloseTo(32.227, 3);
    roundTrip('1E 55 32 00 21 00');
  });

  it('1F 01 01 32 01 01 00 02 01 FF FF: uint16 257 bpm, 306 kJ, RR [1, 258, 65535]', () => {
    // 1F: uint16 format + the rest; 01 01: 257 bpm; 32 01: 306 kJ; 01 00, 02 01, FF FF: RR intervals
    const m = decodeHex('1F 01 01 32 01 01 00 02 01 FF FF');
    expect(m).toMatchObject({ heartRate: 257, format: 'uint16', energyExpendedKj: 306, rrIntervals: [1, 258, 65535] });
    expect(m.rrIntervalsMs?.[2]).toBeCloseTo(63999.02, 2);
    roundTrip('1F 01 01 32 01 01 00 02 01 FF FF');
  });

  it('keeps contact code 1 (also "not supported") so that it round-trips', () => {
    expect(decodeHex('02 48').sensorContact).toEqual({ code: 1, supported: false, detected: false });
    roundTrip('02 48');
  });

  it('decodes the RR flag with no interval as an empty list (Nordic rejects 17 01 01)', () => {
    // 17: uint16, contact detected, RR flag; 01 01: 257 bpm; no RR bytes follow.
    expect(decodeHex('17 01 01')).toMatchObject({ heartRate: 257, rrIntervals: [], rrIntervalsMs: [] });
    roundTrip('17 01 01');
  });

  it('many RR intervals fill the rest of the value', () => {
    const rr = Array.from({ length: 9 }, (_, i) => 800 + i);
    const bytes = encodeHeartRateMeasurement({ heartRate: 72, rrIntervals: rr });
    expect(bytes.length).toBe(2 + 18);
    expect(decodeHeartRateMeasurement(bytes).rrIntervals).toEqual(rr);
  });

  it('fails with a DecodeError on empty, truncated, odd RR, trailing and reserved-flag values', () => {
    const fails = (text: string, pattern: RegExp) => {
      let error: unknown;
      try {
        decodeHex(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DecodeError);
      expect((error as DecodeError).codec).toBe(HEART_RATE_MEASUREMENT_CODEC);
      expect((error as DecodeError).message).toMatch(pattern);
    };
    fails('', /truncated at flags/);
    fails('00', /truncated at heart rate \(uint8\)/);
    fails('01 55', /truncated at heart rate \(uint16\)/);
    fails('08 55 32', /truncated at energy expended/);
    fails('10 55 21 00 22', /odd/);
    fails('00 55 00', /trailing/);
    fails('20 55', /reserved flag bit 5/);
  });

  it('picks the uint16 format for rates above 255 and refuses bad fields with a ConfigError', () => {
    expect(bytesToHex(encodeHeartRateMeasurement({ heartRate: 300 }))).toBe('01 2C 01');
    expect(bytesToHex(encodeHeartRateMeasurement({ heartRate: 60, format: 'uint16' }))).toBe('01 3C 00');
    expect(() => encodeHeartRateMeasurement({ heartRate: 300, format: 'uint8' })).toThrow(/\/heartRate/);
    expect(() => encodeHeartRateMeasurement({ heartRate: 60, sensorContact: { code: 4 } })).toThrow(/\/sensorContact/);
    expect(() => encodeHeartRateMeasurement({ heartRate: 60, rrIntervals: [70_000] })).toThrow(/\/rrIntervals\/0/);
    expect(() => encodeHeartRateMeasurement({ heartRate: -1 })).toThrow(ConfigError);
  });
});

describe('round-trip property', () => {
  const fields: fc.Arbitrary<HeartRateMeasurementFields> = fc
    .record(
      {
        format: fc.constantFrom('uint8' as const, 'uint16' as const),
        heartRate: fc.integer({ min: 0, max: 0xffff }),
        sensorContact: fc.record({ code: fc.integer({ min: 0, max: 3 }) }),
        energyExpendedKj: fc.integer({ min: 0, max: 0xffff }),
        rrIntervals: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 9 }),
      },
      { requiredKeys: ['format', 'heartRate', 'sensorContact'] },
    )
    .map((f) => (f.format === 'uint8' ? { ...f, heartRate: f.heartRate & 0xff } : f));

  it('decode(encode(v)) carries v and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fields, (f) => {
        const bytes = encodeHeartRateMeasurement(f);
        const v = decodeHeartRateMeasurement(bytes);
        expect(v).toMatchObject(f);
        expect(v.rrIntervalsMs).toEqual(f.rrIntervals?.map((x) => (x * 1000) / 1024));
        expect(decodeHeartRateMeasurement(encodeHeartRateMeasurement(v))).toEqual(v);
        expect(bytesToHex(encodeHeartRateMeasurement(v))).toBe(bytesToHex(bytes));
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});
