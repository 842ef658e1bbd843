import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../errors.js';
import {
  decodeMderFloat,
  decodeSfloat,
  encodeMderFloat,
  encodeSfloat,
  finiteValue,
  IEEE11073_SPECIAL_KINDS,
  MDER_FLOAT_SPECIALS,
  scaledValue,
  SFLOAT_SPECIALS,
  type Ieee11073Value,
} from './ieee11073.js';

const PROPERTY = { seed: 42, numRuns: 500 };

/** Little-endian bytes of a raw SFLOAT, as it appears in a characteristic value. */
function le16(raw: number): string {
  return [raw & 0xff, raw >>> 8].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}

describe('SFLOAT (IEEE 11073-20601, 16 bit)', () => {
  it('encodes the spec vectors (ble-health-profiles.md §3.1)', () => {
    // 120 mg/dL sent as kg/L the way meters do it: mantissa 120 (0x078), exponent -5 (0xB) -> 0xB078, bytes 78 B0.
    expect(encodeSfloat(0.0012, { precision: 5 })).toBe(0xb078);
    expect(le16(0xb078)).toBe('78 B0');
    // 6.7 mmol/L as mol/L: 0.0067 = 67e-4, mantissa 0x043, exponent -4 (0xC) -> 0xC043. Also the shortest exact form.
    expect(encodeSfloat(0.0067)).toBe(0xc043);
    expect(encodeSfloat(0.0067, { precision: 4 })).toBe(0xc043);
  });

  it('decodes the spec vectors with their mantissa and exponent', () => {
    expect(decodeSfloat(0xb078)).toEqual({ kind: 'number', value: 0.0012, mantissa: 120, exponent: -5 });
    expect(decodeSfloat(0xc043)).toEqual({ kind: 'number', value: 0.0067, mantissa: 67, exponent: -4 });
  });

  it('picks the shortest exact representation by default', () => {
    expect(encodeSfloat(0.0012)).toBe(0xc00c); // 12e-4: same number as 0xB078, fewer digits
    expect(encodeSfloat(120)).toBe(0x100c); // 12e1, bytes 0C 10 as in Nordic's CGM "small" test record
    expect(encodeSfloat(12.34)).toBe(0xe4d2); // 1234e-2, Nordic CGM full test
    expect(encodeSfloat(0.2)).toBe(0xf002); // 2e-1, trend in the same test
    expect(encodeSfloat(99.7)).toBe(0xf3e5); // 997e-1, quality in the same test
    expect(encodeSfloat(0)).toBe(0x0000);
    expect(encodeSfloat(-5)).toBe(0x0ffb); // mantissa -5 = 0xFFB, exponent 0
    expect(encodeSfloat(2045)).toBe(0x07fd); // largest mantissa that is not a special value
    expect(encodeSfloat(2046)).toBe(0x10cd); // 2046 would collide with +INF at exponent 0: 204.6e1 is not exact, 205e1 = 2050
    expect(encodeSfloat(3e9)).toBe(0x7000 | 300); // 300e7: the exponent cannot exceed 7
  });

  it('falls back to the most precise representation when no exact one exists', () => {
    expect(decodeSfloat(encodeSfloat(123.45))).toEqual({ kind: 'number', value: 123.5, mantissa: 1235, exponent: -1 }); // half away from zero
    expect(decodeSfloat(encodeSfloat(-123.45))).toEqual({ kind: 'number', value: -123.5, mantissa: -1235, exponent: -1 });
    expect(decodeSfloat(encodeSfloat(1 / 3))).toEqual({ kind: 'number', value: 0.333, mantissa: 333, exponent: -3 });
    expect(decodeSfloat(encodeSfloat(1e-12))).toMatchObject({ kind: 'number', value: 0, exponent: -8 });
  });

  it('rounds to the requested precision, half away from zero', () => {
    expect(decodeSfloat(encodeSfloat(98.65, { precision: 1 }))).toMatchObject({ mantissa: 987, exponent: -1 });
    expect(decodeSfloat(encodeSfloat(-98.65, { precision: 1 }))).toMatchObject({ mantissa: -987, exponent: -1 });
    expect(decodeSfloat(encodeSfloat(1500, { precision: -2 }))).toMatchObject({ mantissa: 15, exponent: 2 });
    expect(decodeSfloat(encodeSfloat(100, { precision: 1 }))).toMatchObject({ mantissa: 1000, exponent: -1 }); // 0xF3E8
  });

  it('decodes and encodes all five special values (exponent 0 only)', () => {
    const expected: Record<string, number> = { nan: 0x07ff, nres: 0x0800, '+inf': 0x07fe, '-inf': 0x0802, reserved: 0x0801 };
    for (const kind of IEEE11073_SPECIAL_KINDS) {
      expect(SFLOAT_SPECIALS[kind]).toBe(expected[kind]);
      expect(decodeSfloat(expected[kind] as number)).toEqual({ kind });
      expect(encodeSfloat({ kind })).toBe(expected[kind]);
      expect(finiteValue({ kind })).toBeUndefined();
    }
    expect(encodeSfloat(NaN)).toBe(0x07ff);
    expect(encodeSfloat(Infinity)).toBe(0x07fe);
    expect(encodeSfloat(-Infinity)).toBe(0x0802);
    // With another exponent the same mantissas are ordinary numbers.
    expect(decodeSfloat(0x17ff)).toEqual({ kind: 'number', value: 20470, mantissa: 2047, exponent: 1 });
    expect(decodeSfloat(0xf800)).toEqual({ kind: 'number', value: -204.8, mantissa: -2048, exponent: -1 });
  });

  it('refuses what it cannot represent with a ConfigError naming the field', () => {
    expect(() => encodeSfloat(2.1e10)).toThrow(ConfigError); // 2045e7 is the largest
    expect(() => encodeSfloat(5, { precision: 9 })).toThrow(/precision/);
    expect(() => encodeSfloat(3000, { precision: 0 })).toThrow(/beyond the SFLOAT limit/);
    expect(() => encodeSfloat({ kind: 'number', value: 2047, mantissa: 2047, exponent: 0 }, {}, '/glucose')).toThrow(/\/glucose\/mantissa.*special/);
    expect(() => encodeSfloat({ kind: 'number', value: 5, mantissa: 4, exponent: 0 })).toThrow(/does not equal/);
    expect(() => encodeSfloat({ kind: 'number', value: 1e8, mantissa: 1, exponent: 8 })).toThrow(/exponent/);
    expect(() => encodeSfloat({ kind: 'bogus' } as unknown as Ieee11073Value)).toThrow(/kind/);
  });

  it('throws DecodeError for raw values outside 16 bits', () => {
    for (const raw of [-1, 0x10000, 1.5, NaN]) expect(() => decodeSfloat(raw)).toThrow(DecodeError);
  });

  it('round-trips every one of the 65 536 raw values: encode(decode(raw)) === raw', () => {
    for (let raw = 0; raw <= 0xffff; raw++) {
      if (encodeSfloat(decodeSfloat(raw)) !== raw) expect(raw).toBe(-1);
    }
  });

  it('property: decode(encode(v)) equals v for every exactly representable number', () => {
    fc.assert(
      fc.property(fc.integer({ min: -2045, max: 2045 }), fc.integer({ min: -8, max: 7 }), (mantissa, exponent) => {
        const v = scaledValue(mantissa, exponent);
        const decoded = decodeSfloat(encodeSfloat(v));
        expect(decoded.kind === 'number' && decoded.value).toBe(v);
      }),
      PROPERTY,
    );
  });

  it('property: a decoded value re-encodes to the same bits, specials included', () => {
    const raws = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(...Object.values(SFLOAT_SPECIALS)));
    fc.assert(
      fc.property(raws, (raw) => {
        const value = decodeSfloat(raw);
        expect(decodeSfloat(encodeSfloat(value))).toEqual(value);
      }),
      PROPERTY,
    );
  });
});

describe('FLOAT (IEEE 11073-20601, 32 bit)', () => {
  it('decodes and encodes all five special values', () => {
    const expected: Record<string, number> = { nan: 0x007fffff, nres: 0x00800000, '+inf': 0x007ffffe, '-inf': 0x00800002, reserved: 0x00800001 };
    for (const kind of IEEE11073_SPECIAL_KINDS) {
      expect(MDER_FLOAT_SPECIALS[kind]).toBe(expected[kind]);
      expect(decodeMderFloat(expected[kind] as number)).toEqual({ kind });
      expect(encodeMderFloat({ kind })).toBe(expected[kind]);
    }
    expect(encodeMderFloat(NaN)).toBe(0x007fffff);
    expect(encodeMderFloat(-Infinity)).toBe(0x00800002);
  });

  it('encodes and decodes numbers', () => {
    // 36.4 (e.g. a body temperature): mantissa 364 = 0x00016C, exponent -1 = 0xFF -> 0xFF00016C, bytes 6C 01 00 FF.
    expect(encodeMderFloat(36.4)).toBe(0xff00016c);
    expect(decodeMderFloat(0xff00016c)).toEqual({ kind: 'number', value: 36.4, mantissa: 364, exponent: -1 });
    // 120 mg/dL in kg/L with the meter's exponent.
    expect(decodeMderFloat(encodeMderFloat(0.0012, { precision: 5 }))).toMatchObject({ mantissa: 120, exponent: -5 });
    expect(encodeMderFloat(-1)).toBe(0x00ffffff);
    expect(decodeMderFloat(0x80000001)).toEqual({ kind: 'number', value: 1e-128, mantissa: 1, exponent: -128 });
    expect(decodeMderFloat(encodeMderFloat(Math.PI))).toMatchObject({ mantissa: 3141593, exponent: -6 });
    expect(() => encodeMderFloat(1e200)).toThrow(ConfigError);
    expect(() => decodeMderFloat(2 ** 32)).toThrow(DecodeError);
  });

  it('property: encode(decode(raw)) === raw for any 32-bit raw value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(...Object.values(MDER_FLOAT_SPECIALS))), (raw) => {
        expect(encodeMderFloat(decodeMderFloat(raw))).toBe(raw);
      }),
      PROPERTY,
    );
  });

  it('property: decode(encode(v)) equals v for every exactly representable number', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8388605, max: 8388605 }), fc.integer({ min: -128, max: 127 }), (mantissa, exponent) => {
        const v = scaledValue(mantissa, exponent);
        const decoded = decodeMderFloat(encodeMderFloat(v));
        expect(decoded.kind === 'number' && decoded.value).toBe(v);
      }),
      PROPERTY,
    );
  });
});
