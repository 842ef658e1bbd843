import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../device-sdk/errors.js';
import { createRuleEngine } from '../rules.js';
import { decodeGlucoseLine, encodeGlucoseLine, GLUCOSE_LINE_CODEC } from './glucose-line-codec.js';

const ascii = (text: string) => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function decodeError(bytes: Uint8Array): DecodeError {
  try {
    decodeGlucoseLine(bytes, 0, 'glucose-meter');
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).codec).toBe(GLUCOSE_LINE_CODEC);
    return error as DecodeError;
  }
  throw new Error(`expected a DecodeError for ${hex(bytes)}`);
}

/** Appends the XOR checksum, so that tests reach the field checks. */
function withChecksum(body: string): Uint8Array {
  let sum = 0;
  for (const byte of ascii(body)) sum ^= byte;
  return ascii(`${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`);
}

describe('glucose line codec', () => {
  const tMeter = Date.UTC(2024, 4, 1, 8, 30);

  it('encodes the documented vector', () => {
    const bytes = encodeGlucoseLine({ record: 1042, tMeter, value: 97, meal: 'fasting' });
    // "GLU,1042,2024-05-01T08:30:00.000Z,97,mg/dL,fasting*" + checksum + "\r\n"
    expect(new TextDecoder().decode(bytes)).toMatch(/^GLU,1042,2024-05-01T08:30:00\.000Z,97,mg\/dL,fasting\*[0-9A-F]{2}\r\n$/);
    expect(hex(bytes.subarray(0, 4))).toBe('474c552c'); // "GLU,"
    expect(hex(bytes.subarray(-2))).toBe('0d0a'); // "\r\n"
  });

  it('round-trips', () => {
    const bytes = encodeGlucoseLine({ record: 7, tMeter, value: 212.4, meal: 'postprandial' });
    expect(decodeGlucoseLine(bytes, 123, 'meter-1')).toEqual({
      sensor: 'meter-1',
      type: 'glucose',
      value: 212,
      unit: 'mg/dL',
      tDevice: 123,
      tMeter,
      meterRecord: 7,
      // The time is the meter's wall clock; without a configured zone it is read as UTC and says so.
      context: { meal: 'postprandial', meterClock: '2024-05-01T08:30:00', meterTimeBasis: 'zone-unknown' },
    });
    // without the line ending (a framer may strip it)
    expect(decodeGlucoseLine(bytes.subarray(0, -2), 123, 'meter-1').value).toBe(212);
  });

  it('rejects a checksum mismatch', () => {
    const bytes = encodeGlucoseLine({ record: 7, tMeter, value: 120, meal: 'unknown' });
    const tampered = bytes.slice();
    tampered[17] = (tampered[17] ?? 0) ^ 0x01; // one bit in the time field
    expect(decodeError(tampered).message).toContain('checksum mismatch');
  });

  it.each([
    ['empty input', new Uint8Array(0)],
    ['huge input', new Uint8Array(257).fill(0x41)],
    ['non-UTF-8', Uint8Array.of(0x47, 0xff, 0xfe, 0x2a, 0x30, 0x30)],
    ['no checksum', ascii('GLU,1,2024-05-01T08:30:00Z,97,mg/dL,fasting\r\n')],
    ['wrong prefix', withChecksum('GLX,1,2024-05-01T08:30:00Z,97,mg/dL,fasting')],
    ['field count', withChecksum('GLU,1,2024-05-01T08:30:00Z,97,mg/dL')],
    ['non-numeric value', withChecksum('GLU,1,2024-05-01T08:30:00Z,9x,mg/dL,fasting')],
    ['non-numeric record', withChecksum('GLU,-1,2024-05-01T08:30:00Z,97,mg/dL,fasting')],
    ['bad time', withChecksum('GLU,1,2024-02-30T08:30:00Z,97,mg/dL,fasting')],
    ['time without zone', withChecksum('GLU,1,2024-05-01T08:30:00,97,mg/dL,fasting')],
    ['other unit', withChecksum('GLU,1,2024-05-01T08:30:00Z,5,mmol/L,fasting')],
    ['unknown meal', withChecksum('GLU,1,2024-05-01T08:30:00Z,97,mg/dL,brunch')],
  ])('rejects %s', (_name, bytes) => {
    decodeError(bytes);
  });

  it('accepts a time zone offset: the meter states it, so it converts the time (whatever zone is configured)', () => {
    for (const zone of [undefined, 'Africa/Nairobi']) {
      const reading = decodeGlucoseLine(withChecksum('GLU,1,2024-05-01T10:30:00+02:00,97,mg/dL,fasting'), 0, 'm', zone);
      expect(reading.tMeter).toBe(tMeter);
      expect(reading.context).toEqual({ meal: 'fasting', meterClock: '2024-05-01T10:30:00', meterTimeBasis: 'stated-offset', meterUtcOffset: '+02:00' });
    }
  });

  it("reads a Z time as the meter's wall clock: in the configured zone, else marked zone-unknown, and the alert says what it knows", () => {
    // A Nairobi meter (UTC+3) set to local time sends a 45 mg/dL measured at 08:30 UTC, received a minute later.
    const line = withChecksum('GLU,12,2024-05-01T11:30:00Z,45,mg/dL,fasting');
    const received = tMeter + 60_000;
    const zoned = decodeGlucoseLine(line, received, 'm', 'Africa/Nairobi');
    expect(zoned.tMeter).toBe(tMeter);
    expect(zoned.context).toEqual({ meal: 'fasting', meterClock: '2024-05-01T11:30:00', meterTimeBasis: 'configured-zone', meterTimeZone: 'Africa/Nairobi' });
    // Before: 11:30 UTC, unmarked: "measured at meter time 1 May 11:30 UTC, 2 h 59 min ahead of this device's clock (check the meter's clock)".
    expect(createRuleEngine().onReading(zoned).alerts.map((a) => a.message)).toEqual(['Glucose reading 45 mg/dL is below 54 mg/dL; review by a clinician.']);
    const unknown = decodeGlucoseLine(line, received, 'm');
    expect(unknown).toMatchObject({ tMeter: Date.UTC(2024, 4, 1, 11, 30), context: { meterClock: '2024-05-01T11:30:00', meterTimeBasis: 'zone-unknown' } });
    expect(createRuleEngine().onReading(unknown).alerts[0]!.message).toMatch(/measured at meter time 1 May 11:30 \(the meter's time zone is unknown, so how long ago is not known: it may be hours old\)/);
    // The hour repeated when summer time ends: a line received in the second pass is dated then.
    const fold = decodeGlucoseLine(withChecksum('GLU,13,2026-10-25T02:10:00Z,100,mg/dL,unknown'), Date.UTC(2026, 9, 25, 1, 10, 30), 'm', 'Europe/Berlin');
    expect(fold).toMatchObject({ tMeter: Date.UTC(2026, 9, 25, 1, 10), context: { meterTimeDst: 'repeated-second', meterTimeDstBy: 'reception' } });
  });

  it('returns a Reading or throws a DecodeError for any bytes (fuzz)', () => {
    const valid = encodeGlucoseLine({ record: 99, tMeter, value: 140, meal: 'preprandial' });
    const mutated = fc
      .tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }))
      .map(([at, byte]) => Uint8Array.from(valid, (b, i) => (i === at ? byte : b)));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        for (const zone of [undefined, 'Europe/Berlin']) {
          try {
            const reading = decodeGlucoseLine(bytes, 1, 's', zone);
            expect(reading.type).toBe('glucose');
            expect(Number.isInteger(reading.value)).toBe(true);
            expect(Number.isFinite(reading.tMeter)).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
