/**
 * Little-endian readers and writers shared by the BLE codecs: every multi-byte field of the SIG
 * health characteristics is transmitted least significant byte first.
 *
 * `ByteReader` throws only `DecodeError` (with the codec's name): reading past the end says which
 * field was cut short and how many bytes were missing.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { decodeSfloat, encodeSfloat, type Ieee11073EncodeOptions, type Ieee11073Value } from '../ieee11073.js';

export class ByteReader {
  readonly codec: string;
  readonly bytes: Uint8Array;
  readonly start: number;
  readonly end: number;
  private offset: number;

  /** Reads `bytes[start, end)`; `end` defaults to the whole array. */
  constructor(codec: string, bytes: Uint8Array, start = 0, end?: number) {
    if (!(bytes instanceof Uint8Array)) {
      throw new DecodeError(codec, `expected the characteristic value as a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
    }
    this.codec = codec;
    this.bytes = bytes;
    this.start = start;
    this.end = end ?? bytes.length;
    this.offset = start;
  }

  /** Index of the next unread byte in `bytes`. */
  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private take(count: number, field: string): number {
    if (this.offset + count > this.end) {
      throw new DecodeError(
        this.codec,
        `truncated at ${field}: needs ${count} byte${count === 1 ? '' : 's'} at offset ${this.offset - this.start}, ${this.remaining} left (value is ${this.end - this.start} bytes)`,
      );
    }
    const at = this.offset;
    this.offset += count;
    return at;
  }

  uint8(field: string): number {
    return this.bytes[this.take(1, field)] as number;
  }

  uint16(field: string): number {
    const at = this.take(2, field);
    return (this.bytes[at] as number) | ((this.bytes[at + 1] as number) << 8);
  }

  int16(field: string): number {
    const value = this.uint16(field);
    return value >= 0x8000 ? value - 0x10000 : value;
  }

  uint24(field: string): number {
    const at = this.take(3, field);
    return (this.bytes[at] as number) | ((this.bytes[at + 1] as number) << 8) | ((this.bytes[at + 2] as number) << 16);
  }

  sfloat(field: string): Ieee11073Value {
    return decodeSfloat(this.uint16(field));
  }

  /** Fails when bytes are left over: every layout here is fully described by its flags. */
  expectEnd(what: string): void {
    if (this.offset !== this.end) {
      throw new DecodeError(this.codec, `${this.end - this.offset} unexpected trailing byte${this.end - this.offset === 1 ? '' : 's'} after ${what} (value is ${this.end - this.start} bytes, layout ends at ${this.offset - this.start})`);
    }
  }
}

/** Growable little-endian writer; values are range-checked and refused with a `ConfigError` naming the field. */
export class ByteWriter {
  private readonly out: number[] = [];

  get length(): number {
    return this.out.length;
  }

  uint8(value: number, field: string): this {
    this.out.push(checkUint(value, 8, field));
    return this;
  }

  uint16(value: number, field: string): this {
    const v = checkUint(value, 16, field);
    this.out.push(v & 0xff, v >>> 8);
    return this;
  }

  int16(value: number, field: string): this {
    if (!Number.isInteger(value) || value < -0x8000 || value > 0x7fff) {
      throw new ConfigError(field, value, 'is not a signed 16-bit integer', 'use an integer -32768..32767');
    }
    return this.uint16(value & 0xffff, field);
  }

  uint24(value: number, field: string): this {
    const v = checkUint(value, 24, field);
    this.out.push(v & 0xff, (v >>> 8) & 0xff, v >>> 16);
    return this;
  }

  sfloat(value: number | Ieee11073Value, field: string, options: Ieee11073EncodeOptions = {}): this {
    return this.uint16(encodeSfloat(value, options, field), field);
  }

  bytes(values: Uint8Array): this {
    for (const b of values) this.out.push(b);
    return this;
  }

  /** Overwrites one byte already written (used for size fields). */
  patchUint8(index: number, value: number, field: string): this {
    this.out[index] = checkUint(value, 8, field);
    return this;
  }

  toBytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export function checkUint(value: number, bits: 8 | 16 | 24 | 32, field: string): number {
  const max = 2 ** bits - 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new ConfigError(field, value, `is not an unsigned ${bits}-bit integer`, `use an integer 0..${max}`);
  }
  return value;
}

/**
 * Bytes from hex text as written in specs and test vectors: `'1B 01 00 E3'`, `'1b0100e3'`,
 * `'0x1B, 0x01'`. Whitespace, commas, colons and `0x` prefixes are ignored. Throws `ConfigError`
 * for anything else or an odd number of digits.
 */
export function hexToBytes(text: string): Uint8Array {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (!/^[0-9a-fA-F]*$/.test(clean) || clean.length % 2 !== 0) {
    throw new ConfigError('hex', text, 'is not an even number of hex digits', "write bytes as pairs of hex digits, e.g. '1B 01 00'");
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `'1B 01 00 E3'`: upper-case hex pairs separated by spaces (the form used in logs and test vectors). */
export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}
