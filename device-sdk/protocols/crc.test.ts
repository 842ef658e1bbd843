import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { CRC16_MCRF4XX_CHECK, crc16Ibm3740, crc16Mcrf4xx, crc32IsoHdlc } from './crc.js';

/** Bit-by-bit reference (reflected polynomial 0x8408, init 0xFFFF, no final XOR), to check the table. */
function bitwise(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x8408 : crc >>> 1;
  }
  return crc;
}

describe('CRC-16/MCRF4XX', () => {
  it('has the catalogue check value 0x6F91 for "123456789"', () => {
    expect(crc16Mcrf4xx(new TextEncoder().encode('123456789'))).toBe(0x6f91);
    expect(CRC16_MCRF4XX_CHECK).toBe(0x6f91);
  });

  it('is the init value for no bytes', () => {
    expect(crc16Mcrf4xx(new Uint8Array(0))).toBe(0xffff);
  });

  it('matches the CGM E2E-CRCs of Nordic Android-BLE-Common-Library ContinuousGlucoseMeasurementDataCallbackTest', () => {
    // Full record without its CRC: 0F E3 D2 E4 05 00 02 14 FF 02 F0 E5 F3 -> 0x3F8E (sent as 8E 3F).
    expect(crc16Mcrf4xx(Uint8Array.from([0x0f, 0xe3, 0xd2, 0xe4, 0x05, 0x00, 0x02, 0x14, 0xff, 0x02, 0xf0, 0xe5, 0xf3]))).toBe(0x3f8e);
    // "crcError" record 08 00 0C 10 06 00: the test asserts the computed CRC is 0x6F59 (the record carries 0x6F58).
    expect(crc16Mcrf4xx(Uint8Array.from([0x08, 0x00, 0x0c, 0x10, 0x06, 0x00]))).toBe(0x6f59);
  });

  it('covers a sub-range and refuses a range outside the array', () => {
    const bytes = new TextEncoder().encode('xx123456789yy');
    expect(crc16Mcrf4xx(bytes, 2, 11)).toBe(0x6f91);
    expect(() => crc16Mcrf4xx(bytes, 5, 20)).toThrow(ConfigError);
    expect(() => crc16Mcrf4xx(bytes, 6, 5)).toThrow(ConfigError);
  });

  it('property: the table-driven CRC equals the bitwise reference', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(crc16Mcrf4xx(bytes)).toBe(bitwise(bytes));
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('CRC-16/IBM-3740 and CRC-32/ISO-HDLC (the medge stream protocol checks)', () => {
  const ascii = new TextEncoder().encode('123456789');
  it('give the catalogue check values', () => {
    expect(crc16Ibm3740(ascii)).toBe(0x29b1);
    expect(crc32IsoHdlc(ascii)).toBe(0xcbf43926);
  });
  it('cover exactly [start, end)', () => {
    const padded = new Uint8Array([0xff, ...ascii, 0xee]);
    expect(crc16Ibm3740(padded, 1, 10)).toBe(0x29b1);
    expect(crc32IsoHdlc(padded, 1, 10)).toBe(0xcbf43926);
  });
});
