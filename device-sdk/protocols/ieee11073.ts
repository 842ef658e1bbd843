/**
 * IEEE 11073-20601 (MDER) decimal floating-point numbers as used by the Bluetooth health
 * profiles: SFLOAT (16 bit, GSS "medfloat16") and FLOAT (32 bit, GSS "medfloat32").
 * These are base-10 numbers `mantissa · 10^exponent`, not IEEE 754 floats.
 *
 * | type   | exponent           | mantissa             | finite mantissas   |
 * |--------|--------------------|----------------------|--------------------|
 * | SFLOAT | bits 15..12, -8..7 | bits 11..0, 12-bit   | ±2045 (2^11 − 3)   |
 * | FLOAT  | bits 31..24, ±127  | bits 23..0, 24-bit   | ±8388605 (2^23 − 3)|
 *
 * Special values use exponent 0 and the five mantissas at the ends of the range:
 *
 * | kind       | SFLOAT raw | FLOAT raw    |
 * |------------|------------|--------------|
 * | `nan`      | 0x07FF     | 0x007FFFFF   |
 * | `nres`     | 0x0800     | 0x00800000   |  (not at this resolution)
 * | `+inf`     | 0x07FE     | 0x007FFFFE   |
 * | `-inf`     | 0x0802     | 0x00800002   |
 * | `reserved` | 0x0801     | 0x00800001   |  (reserved for future use)
 *
 * Decoded values are `Ieee11073Value`: either `{ kind: 'number', value, mantissa, exponent }` or
 * `{ kind: <special> }`. The mantissa and exponent are kept because several encodings denote the
 * same number (0x0064 = 100·10^0 and 0xF3E8 = 1000·10^-1); encoding a decoded value reproduces the
 * original raw bits exactly. Only exponent 0 marks a special value: a raw value with another
 * exponent is a number even when its mantissa lies in the special range (0x17FF = 2047·10^1), so
 * every raw value decodes and re-encodes to itself.
 *
 * Encoding a plain JS number picks the representation itself: the shortest exact one when there
 * is one (0.0067 → 67·10^-4 = 0xC043), otherwise the most precise one that fits. `precision`
 * (decimal places, like `toFixed`) fixes the exponent to `-precision` instead and rounds half away
 * from zero: `encodeSfloat(0.0012, { precision: 5 })` is 120·10^-5 = 0xB078, the encoding that
 * glucose meters use for 120 mg/dL in kg/L. `NaN`, `Infinity` and `-Infinity` map to the specials.
 * Values that do not fit (|value| > 2045·10^7 for SFLOAT) are refused with a `ConfigError`; pass
 * `{ kind: '+inf' }` explicitly when the device semantics call for it.
 */
import { ConfigError, DecodeError } from '../errors.js';

export const IEEE11073_SPECIAL_KINDS = ['nan', 'nres', '+inf', '-inf', 'reserved'] as const;
export type Ieee11073Special = (typeof IEEE11073_SPECIAL_KINDS)[number];

export interface Ieee11073Number {
  kind: 'number';
  /** `mantissa · 10^exponent`, correctly rounded to the nearest double. */
  value: number;
  mantissa: number;
  exponent: number;
}

export interface Ieee11073SpecialValue {
  kind: Ieee11073Special;
}

export type Ieee11073Value = Ieee11073Number | Ieee11073SpecialValue;

export interface Ieee11073EncodeOptions {
  /**
   * Decimal places: the exponent becomes `-precision` and the value is rounded half away from
   * zero. Omit it to get the shortest exact encoding (or the most precise one when none is exact).
   */
  precision?: number;
}

export const SFLOAT_CODEC = 'ieee11073-sfloat';
export const MDER_FLOAT_CODEC = 'ieee11073-float';

interface Format {
  codec: string;
  name: string;
  totalBits: number;
  mantissaBits: number;
  exponentBits: number;
  /** Largest finite mantissa magnitude, 2^(mantissaBits-1) − 3. */
  finiteMax: number;
  specials: Readonly<Record<Ieee11073Special, number>>;
}

function makeFormat(codec: string, name: string, mantissaBits: number, exponentBits: number): Format {
  const half = 2 ** (mantissaBits - 1);
  const field = 2 ** mantissaBits;
  return {
    codec,
    name,
    totalBits: mantissaBits + exponentBits,
    mantissaBits,
    exponentBits,
    finiteMax: half - 3,
    // Raw values with exponent 0, expressed as the unsigned mantissa field.
    specials: Object.freeze({ nan: half - 1, nres: half, '+inf': half - 2, '-inf': field - (half - 2), reserved: field - (half - 1) }),
  };
}

const SFLOAT = makeFormat(SFLOAT_CODEC, 'SFLOAT', 12, 4);
const MDER_FLOAT = makeFormat(MDER_FLOAT_CODEC, 'FLOAT', 24, 8);

/** Raw SFLOAT bits of each special value. */
export const SFLOAT_SPECIALS: Readonly<Record<Ieee11073Special, number>> = SFLOAT.specials;
/** Raw FLOAT bits of each special value. */
export const MDER_FLOAT_SPECIALS: Readonly<Record<Ieee11073Special, number>> = MDER_FLOAT.specials;

/** Decodes raw SFLOAT bits (an integer 0..0xFFFF, as read little-endian from the wire). */
export function decodeSfloat(raw: number): Ieee11073Value {
  return decode(raw, SFLOAT);
}

/** Decodes raw FLOAT bits (an integer 0..0xFFFFFFFF, as read little-endian from the wire). */
export function decodeMderFloat(raw: number): Ieee11073Value {
  return decode(raw, MDER_FLOAT);
}

/**
 * Raw SFLOAT bits for a number or a decoded value. `field` names the value in error messages.
 * Throws `ConfigError` for values that cannot be represented.
 */
export function encodeSfloat(value: number | Ieee11073Value, options: Ieee11073EncodeOptions = {}, field = 'value'): number {
  return encode(value, SFLOAT, options, field);
}

/** Raw FLOAT bits for a number or a decoded value. Throws `ConfigError` when not representable. */
export function encodeMderFloat(value: number | Ieee11073Value, options: Ieee11073EncodeOptions = {}, field = 'value'): number {
  return encode(value, MDER_FLOAT, options, field);
}

/** The numeric value of a decoded number, `undefined` for the special values. */
export function finiteValue(value: Ieee11073Value): number | undefined {
  return value.kind === 'number' ? value.value : undefined;
}

/** `mantissa · 10^exponent` as the nearest double (parsed from its decimal form, so 1234e-2 is exactly 12.34). */
export function scaledValue(mantissa: number, exponent: number): number {
  return Number(`${mantissa}e${exponent}`);
}

function exponentRange(format: Format): { min: number; max: number } {
  const half = 2 ** (format.exponentBits - 1);
  return { min: -half, max: half - 1 };
}

function signExtend(field: number, bits: number): number {
  const half = 2 ** (bits - 1);
  return field >= half ? field - 2 ** bits : field;
}

function decode(raw: number, format: Format): Ieee11073Value {
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw >= 2 ** format.totalBits) {
    throw new DecodeError(format.codec, `raw ${format.name} must be an integer 0..${2 ** format.totalBits - 1}, got ${String(raw)}`);
  }
  const mantissaField = raw % 2 ** format.mantissaBits;
  const exponentField = Math.floor(raw / 2 ** format.mantissaBits);
  const exponent = signExtend(exponentField, format.exponentBits);
  if (exponent === 0) {
    for (const kind of IEEE11073_SPECIAL_KINDS) {
      if (format.specials[kind] === mantissaField) return { kind };
    }
  }
  const mantissa = signExtend(mantissaField, format.mantissaBits);
  return { kind: 'number', value: scaledValue(mantissa, exponent), mantissa, exponent };
}

function pack(mantissa: number, exponent: number, format: Format): number {
  const mantissaField = mantissa < 0 ? mantissa + 2 ** format.mantissaBits : mantissa;
  const exponentField = exponent < 0 ? exponent + 2 ** format.exponentBits : exponent;
  return exponentField * 2 ** format.mantissaBits + mantissaField;
}

function encode(input: number | Ieee11073Value, format: Format, options: Ieee11073EncodeOptions, field: string): number {
  if (typeof input === 'number') return encodeNumber(input, format, options, field);
  if (input === null || typeof input !== 'object') {
    throw new ConfigError(field, input, `is not a number or an IEEE-11073 value`, `pass a number, { kind: 'number', mantissa, exponent, value } or { kind: 'nan' | 'nres' | '+inf' | '-inf' | 'reserved' }`);
  }
  if (input.kind !== 'number') {
    const raw = (format.specials as Record<string, number | undefined>)[input.kind];
    if (raw === undefined) {
      throw new ConfigError(`${field}/kind`, input.kind, 'is not a known kind', `use one of number, ${IEEE11073_SPECIAL_KINDS.join(', ')}`);
    }
    return raw;
  }
  const { mantissa, exponent, value } = input;
  const range = exponentRange(format);
  const mantissaMin = -(2 ** (format.mantissaBits - 1));
  const mantissaMax = 2 ** (format.mantissaBits - 1) - 1;
  if (!Number.isInteger(exponent) || exponent < range.min || exponent > range.max) {
    throw new ConfigError(`${field}/exponent`, exponent, `is outside the ${format.name} exponent range`, `use an integer ${range.min}..${range.max}`);
  }
  if (!Number.isInteger(mantissa) || mantissa < mantissaMin || mantissa > mantissaMax) {
    throw new ConfigError(`${field}/mantissa`, mantissa, `is outside the ${format.name} mantissa range`, `use an integer ${mantissaMin}..${mantissaMax}`);
  }
  const raw = pack(mantissa, exponent, format);
  if (exponent === 0 && Object.values(format.specials).includes(raw)) {
    throw new ConfigError(`${field}/mantissa`, mantissa, `with exponent 0 is a reserved ${format.name} special value`, `pass { kind: 'nan' | 'nres' | '+inf' | '-inf' | 'reserved' } for specials, or another exponent`);
  }
  if (value !== scaledValue(mantissa, exponent)) {
    throw new ConfigError(`${field}/value`, value, `does not equal mantissa·10^exponent (${mantissa}e${exponent})`, 'pass the number itself, or a value decoded by this module unchanged');
  }
  return raw;
}

/** |value| as an exact decimal: `digits · 10^exponent`, digits without leading or trailing zeros ("0" for zero). */
function decimalParts(value: number): { digits: bigint; exponent: number } {
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(Math.abs(value).toString());
  if (!match) throw new Error(`unreachable: cannot parse ${value}`);
  const fraction = match[2] ?? '';
  let text = `${match[1]}${fraction}`.replace(/^0+/, '');
  let exponent = Number(match[3] ?? 0) - fraction.length;
  if (text === '') return { digits: 0n, exponent: 0 };
  const trailing = /0*$/.exec(text)?.[0].length ?? 0;
  text = text.slice(0, text.length - trailing);
  exponent += trailing;
  return { digits: BigInt(text), exponent };
}

/** `digits · 10^from` expressed as an integer multiple of 10^to, rounded half away from zero (magnitude only). */
function rescale(digits: bigint, from: number, to: number): bigint {
  if (to <= from) return digits * 10n ** BigInt(from - to);
  const divisor = 10n ** BigInt(to - from);
  const quotient = digits / divisor;
  return 2n * (digits % divisor) >= divisor ? quotient + 1n : quotient;
}

function encodeNumber(value: number, format: Format, options: Ieee11073EncodeOptions, field: string): number {
  if (Number.isNaN(value)) return format.specials.nan;
  if (value === Infinity) return format.specials['+inf'];
  if (value === -Infinity) return format.specials['-inf'];
  const range = exponentRange(format);
  const sign = value < 0 ? -1 : 1;
  const { digits, exponent } = decimalParts(value);
  const max = BigInt(format.finiteMax);
  const finish = (magnitude: bigint, e: number): number => pack(sign * Number(magnitude), e, format);

  const { precision } = options;
  if (precision !== undefined) {
    if (!Number.isInteger(precision) || -precision < range.min || -precision > range.max) {
      throw new ConfigError('precision', precision, `is not a usable ${format.name} precision`, `use an integer ${-range.max}..${-range.min} (decimal places; the exponent becomes -precision)`);
    }
    const magnitude = rescale(digits, exponent, -precision);
    if (magnitude > max) {
      throw new ConfigError(field, value, `needs mantissa ${sign * Number(magnitude)} at precision ${precision}, beyond the ${format.name} limit ±${format.finiteMax}`, 'use fewer decimal places');
    }
    return finish(magnitude, -precision);
  }

  if (digits === 0n) return finish(0n, 0);
  // Shortest exact representation: the largest exponent <= the value's own exponent that keeps the
  // mantissa within range.
  const exactExponent = Math.min(exponent, range.max);
  if (exactExponent >= range.min) {
    const magnitude = rescale(digits, exponent, exactExponent);
    if (magnitude <= max) return finish(magnitude, exactExponent);
  }
  // Not exactly representable: the smallest exponent whose rounded mantissa fits.
  for (let e = Math.max(range.min, Math.min(exponent + 1, range.max)); e <= range.max; e++) {
    const magnitude = rescale(digits, exponent, e);
    if (magnitude <= max) return finish(magnitude, e);
  }
  throw new ConfigError(field, value, `is too large for ${format.name} (limit ±${format.finiteMax}e${range.max})`, `pass { kind: '+inf' } or { kind: '-inf' } if the device should report an overflow`);
}
