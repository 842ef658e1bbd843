/**
 * Helpers for the coded values (enumerations, nibbles) and bit fields of the BLE health codecs.
 * Decoded coded values keep the number that was on the wire and add its name; numbers the
 * specification reserves are named `'reserved'` rather than refused, because they carry no layout
 * information and the rest of the record is still valid.
 */
import { ConfigError } from '../../errors.js';

/** A coded value as decoded: the number on the wire and its name. */
export interface Coded<Name extends string> {
  code: number;
  name: Name | 'reserved';
}

/** A coded value as accepted by the encoders (the name is derived, so it is not needed). */
export interface CodeInput {
  code: number;
}

export function coded<Name extends string>(table: Readonly<Record<number, Name>>, code: number): Coded<Name> {
  return { code, name: table[code] ?? 'reserved' };
}

/** Reads the code of an encoder input, checking it fits `bits` bits. */
export function codeOf(input: CodeInput, bits: 4 | 8, field: string): number {
  const code = input?.code;
  const max = 2 ** bits - 1;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > max) {
    throw new ConfigError(`${field}/code`, code, `is not a ${bits}-bit code`, `use an integer 0..${max}`);
  }
  return code;
}

/** Named booleans for the bits of `bits` listed in `table` (flag name -> bit index). */
export function namedBits<Flag extends string>(table: Readonly<Record<Flag, number>>, bits: number): Record<Flag, boolean> {
  const out = {} as Record<Flag, boolean>;
  for (const name of Object.keys(table) as Flag[]) out[name] = ((bits >>> table[name]) & 1) === 1;
  return out;
}

/** The bit mask for a list of flag names (for building encoder inputs). */
export function bitsOf<Flag extends string>(table: Readonly<Record<Flag, number>>, flags: readonly Flag[]): number {
  let bits = 0;
  for (const name of flags) {
    const bit = table[name];
    if (bit === undefined) {
      throw new ConfigError('flags', name, 'is not a known flag', `use one of ${Object.keys(table).join(', ')}`);
    }
    bits |= 1 << bit;
  }
  return bits >>> 0;
}

/** The flags of `flags` byte outside `allowed`, as a list of bit indices (for error messages). */
export function reservedBitsSet(flags: number, allowed: number): number[] {
  const out: number[] = [];
  for (let bit = 0; bit < 8; bit++) if ((flags >>> bit) & 1 && !((allowed >>> bit) & 1)) out.push(bit);
  return out;
}
