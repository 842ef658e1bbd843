import { ConfigError, DecodeError } from '../errors.js';

/**
 * CRC-16/MCRF4XX: the CRC-CCITT polynomial 0x1021 processed LSB-first (reflected form 0x8408),
 * initial value 0xFFFF, no final XOR, input and output reflected. Check value for the ASCII bytes
 * "123456789": 0x6F91 (CRC RevEng catalogue). This is the E2E-CRC of the Bluetooth Continuous
 * Glucose Monitoring Service and of the other health services that reuse it; the CRC is
 * transmitted little-endian right after the bytes it covers.
 */
export const CRC16_MCRF4XX_CHECK = 0x6f91;

const MCRF4XX_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x8408 : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/**
 * CRC-16/MCRF4XX of `bytes[start, end)` (table-driven, one lookup per byte).
 * `start`/`end` default to the whole array; a range outside the array is a caller error.
 */
export function crc16Mcrf4xx(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > bytes.length || start > end) {
    throw new ConfigError('range', { start, end, length: bytes.length }, 'is not a range inside the byte array', 'pass 0 <= start <= end <= bytes.length');
  }
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc = (crc >>> 8) ^ (MCRF4XX_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number);
  }
  return crc;
}

const IBM3740_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    table[i] = c & 0xffff;
  }
  return table;
})();

const ISO_HDLC_TABLE: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    table[i] = c;
  }
  return table;
})();

/**
 * CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE) of `bytes[start, end)`: poly 0x1021, init 0xFFFF, not
 * reflected, xorout 0. Check value over ASCII `123456789`: 0x29B1. The header check of the medge
 * serial stream protocol. The range is the caller's to keep inside the array (hot path).
 */
export function crc16Ibm3740(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ (IBM3740_TABLE[((crc >>> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return crc;
}

/**
 * CRC-32/ISO-HDLC (zlib, Ethernet) of `bytes[start, end)`: poly 0x04C11DB7, init 0xFFFFFFFF, reflected
 * in and out, xorout 0xFFFFFFFF. Check value over ASCII `123456789`: 0xCBF43926. The frame check of the
 * medge serial stream protocol. The range is the caller's to keep inside the array (hot path).
 */
export function crc32IsoHdlc(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = -1;
  for (let i = start; i < end; i++) crc = (ISO_HDLC_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/**
 * A received CRC does not match the one computed over the received bytes. `expected` is the CRC
 * computed here over the covered bytes, `actual` the value found on the wire; `offset` is the index
 * of the first covered byte in the decoded buffer (the start of the record).
 */
export class CrcMismatchError extends DecodeError {
  readonly expected: number;
  readonly actual: number;
  readonly offset: number;
  constructor(codec: string, expected: number, actual: number, offset: number, what: string) {
    super(codec, `${what}: E2E-CRC mismatch, expected ${hex16(expected)} (computed over the record) but the record carries ${hex16(actual)}`);
    this.expected = expected;
    this.actual = actual;
    this.offset = offset;
  }
}

function hex16(value: number): string {
  return `0x${value.toString(16).toUpperCase().padStart(4, '0')}`;
}
