import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../errors.js';
import { ByteReader, ByteWriter, bytesToHex, hexToBytes } from './bytes.js';
import { readDateTime, toBleDateTime, writeDateTime } from './date-time.js';

describe('hex helpers', () => {
  it('reads the notations used in specs and test vectors', () => {
    expect(Array.from(hexToBytes('1B 01 00 E3'))).toEqual([0x1b, 0x01, 0x00, 0xe3]);
    expect(Array.from(hexToBytes('0x1b, 0x01:0xE3'))).toEqual([0x1b, 0x01, 0xe3]);
    expect(bytesToHex(Uint8Array.from([0x78, 0xb0, 0x0a]))).toBe('78 B0 0A');
    expect(() => hexToBytes('1B 0')).toThrow(ConfigError);
    expect(() => hexToBytes('zz')).toThrow(ConfigError);
  });
});

describe('ByteReader / ByteWriter (little-endian)', () => {
  it('reads and writes uint16, sint16 and uint24 least significant byte first', () => {
    const bytes = new ByteWriter().uint16(0x0105, 'a').int16(-5, 'b').uint24(0x019e6e, 'c').toBytes();
    expect(bytesToHex(bytes)).toBe('05 01 FB FF 6E 9E 01');
    const r = new ByteReader('test-codec', bytes);
    expect([r.uint16('a'), r.int16('b'), r.uint24('c')]).toEqual([0x0105, -5, 0x019e6e]);
    r.expectEnd('c');
  });

  it('names the field and the shortfall when a value is cut short', () => {
    const r = new ByteReader('test-codec', Uint8Array.from([1]));
    expect(() => r.uint16('sequence number')).toThrow(DecodeError);
    expect(() => r.uint16('sequence number')).toThrow('test-codec: truncated at sequence number: needs 2 bytes at offset 0, 1 left (value is 1 bytes)');
  });

  it('refuses out-of-range values with a ConfigError naming the field', () => {
    expect(() => new ByteWriter().uint8(256, '/x')).toThrow(/\/x: is not an unsigned 8-bit integer/);
    expect(() => new ByteWriter().int16(40_000, '/y')).toThrow(/\/y/);
    expect(() => new ByteWriter().uint16(1.5, '/z')).toThrow(ConfigError);
  });
});

describe('Date Time (7 bytes)', () => {
  it('decodes E3 07 02 1B 0B 0A 1E as 2019-02-27 11:10:30 with its epoch time', () => {
    const t = readDateTime(new ByteReader('test', hexToBytes('E3 07 02 1B 0B 0A 1E')), 'base time');
    expect(t).toEqual({ year: 2019, month: 2, day: 27, hours: 11, minutes: 10, seconds: 30, epochMs: Date.UTC(2019, 1, 27, 11, 10, 30) });
    const w = new ByteWriter();
    writeDateTime(w, t, '/baseTime');
    expect(bytesToHex(w.toBytes())).toBe('E3 07 02 1B 0B 0A 1E');
  });

  it('keeps unknown (0) and impossible fields as sent, without an epoch time', () => {
    expect(toBleDateTime({ year: 0, month: 2, day: 27, hours: 11, minutes: 10, seconds: 30 }).epochMs).toBeUndefined(); // year unknown
    expect(toBleDateTime({ year: 2019, month: 0, day: 27, hours: 11, minutes: 10, seconds: 30 }).epochMs).toBeUndefined(); // month unknown
    expect(toBleDateTime({ year: 2019, month: 2, day: 0, hours: 11, minutes: 10, seconds: 30 }).epochMs).toBeUndefined(); // day unknown
    expect(toBleDateTime({ year: 2019, month: 2, day: 29, hours: 0, minutes: 0, seconds: 0 }).epochMs).toBeUndefined(); // not a leap year
    expect(toBleDateTime({ year: 2020, month: 2, day: 29, hours: 0, minutes: 0, seconds: 0 }).epochMs).toBe(Date.UTC(2020, 1, 29));
    expect(toBleDateTime({ year: 2019, month: 13, day: 1, hours: 0, minutes: 0, seconds: 0 }).epochMs).toBeUndefined();
    expect(toBleDateTime({ year: 2019, month: 1, day: 1, hours: 24, minutes: 0, seconds: 0 }).epochMs).toBeUndefined();
    expect(toBleDateTime({ year: 1581, month: 1, day: 1, hours: 0, minutes: 0, seconds: 0 }).epochMs).toBeUndefined();
  });
});
