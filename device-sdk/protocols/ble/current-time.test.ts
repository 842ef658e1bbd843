import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../errors.js';
import { bytesToHex, hexToBytes } from './bytes.js';
import { decodeCurrentTime, decodeLocalTimeInformation, encodeCurrentTime, encodeLocalTimeInformation } from './current-time.js';

describe('Current Time 0x2A2B', () => {
  it('E3 07 02 1B 0B 0A 1E 03 80 01: 2019-02-27 11:10:30.5, Wednesday, set by hand', () => {
    // E3 07: 2019; 02: February; 1B: 27; 0B 0A 1E: 11:10:30; 03: Wednesday; 80: 128/256 s; 01: manual update
    const t = decodeCurrentTime(hexToBytes('E3 07 02 1B 0B 0A 1E 03 80 01'));
    expect(t).toMatchObject({ dateTime: { year: 2019, month: 2, day: 27, hours: 11, minutes: 10, seconds: 30 }, dayOfWeek: 3, fractions256: 128 });
    expect(t.adjustReason).toEqual({ bits: 1, manualUpdate: true, externalReference: false, timeZoneChange: false, dstChange: false });
    expect(t.wallClockMs).toBe(Date.UTC(2019, 1, 27, 11, 10, 30, 500));
    expect(bytesToHex(encodeCurrentTime(t))).toBe(bytesToHex(hexToBytes('E3 07 02 1B 0B 0A 1E 03 80 01')));
  });

  it('00 00 00 00 00 00 00 00 00 00: a meter that does not know the date gives no wall clock', () => {
    expect(decodeCurrentTime(hexToBytes('00 00 00 00 00 00 00 00 00 00')).wallClockMs).toBeUndefined();
  });

  it('refuses a wrong length and a day of week above 7', () => {
    expect(() => decodeCurrentTime(hexToBytes('E3 07 02 1B 0B 0A 1E 03 80'))).toThrow(DecodeError);
    expect(() => decodeCurrentTime(hexToBytes('E3 07 02 1B 0B 0A 1E 03 80 01 00'))).toThrow(DecodeError);
    expect(() => decodeCurrentTime(hexToBytes('E3 07 02 1B 0B 0A 1E 08 80 01'))).toThrow(/day of week 8/);
    expect(() => encodeCurrentTime({ dateTime: { year: 2019, month: 2, day: 27, hours: 0, minutes: 0, seconds: 0 }, dayOfWeek: 9, fractions256: 0, adjustReason: { bits: 0 } })).toThrow(ConfigError);
  });
});

describe('Local Time Information 0x2A0F', () => {
  it('EC 04: UTC-5 standard time plus 1 h of DST (New York in summer)', () => {
    // EC: -20 x 15 min; 04: DST +1 h
    const l = decodeLocalTimeInformation(hexToBytes('EC 04'));
    expect(l).toEqual({ timeZone: -20, dstOffset: 4, timeZoneMinutes: -300, dstOffsetMinutes: 60, utcOffsetMinutes: -240 });
    expect(bytesToHex(encodeLocalTimeInformation(l))).toBe('EC 04');
  });

  it('16 00: UTC+5:30 (India); 80 FF: nothing known', () => {
    expect(decodeLocalTimeInformation(hexToBytes('16 00')).utcOffsetMinutes).toBe(330);
    expect(decodeLocalTimeInformation(hexToBytes('80 FF'))).toEqual({ timeZone: -128, dstOffset: 255 });
  });

  it('refuses values outside the ranges', () => {
    expect(() => decodeLocalTimeInformation(hexToBytes('39 00'))).toThrow(/time zone 57/);
    expect(() => decodeLocalTimeInformation(hexToBytes('00 03'))).toThrow(/DST offset 3/);
    expect(() => decodeLocalTimeInformation(hexToBytes('00'))).toThrow(DecodeError);
  });
});
