import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../errors.js';
import { bytesToHex, hexToBytes } from './bytes.js';
import {
  decodeRacpRequest,
  decodeRacpResponse,
  encodeRacpRequest,
  encodeRacpResponse,
  RACP_CODEC,
  RacpRequestError,
  type RacpRequestFields,
  type RacpResponseFields,
} from './racp.js';

const PROPERTY = { seed: 42, numRuns: 500 };
const glucose = { service: 'glucose' } as const;
const cgm = { service: 'cgm' } as const;

function requestHex(request: RacpRequestFields): string {
  return bytesToHex(encodeRacpRequest(request));
}

function requestError(text: string, options: { service: 'glucose' | 'cgm' } = glucose): RacpRequestError {
  try {
    decodeRacpRequest(hexToBytes(text), options);
  } catch (error) {
    expect(error).toBeInstanceOf(RacpRequestError);
    expect(error).toBeInstanceOf(DecodeError);
    return error as RacpRequestError;
  }
  throw new Error(`expected ${text} to be refused`);
}

describe('RACP requests (ble-health-profiles.md §3.5)', () => {
  it('encodes the spec examples', () => {
    // 01 01: report stored records, all.
    expect(requestHex({ opCode: 'report-stored-records', operator: 'all' })).toBe('01 01');
    // 04 01: report number of stored records, all.
    expect(requestHex({ opCode: 'report-number-of-stored-records', operator: 'all' })).toBe('04 01');
    // 01 03 01 10 00: report records with sequence number >= 16 (filter 0x01, uint16 LE).
    expect(requestHex({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: 16 } })).toBe('01 03 01 10 00');
    // 01 04 01 05 00 0A 00: report records with sequence number 5..10 inclusive.
    expect(requestHex({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 5, to: 10 } })).toBe('01 04 01 05 00 0A 00');
  });

  it('encodes first, last, abort, delete and the time filters', () => {
    expect(requestHex({ opCode: 'report-stored-records', operator: 'first' })).toBe('01 05'); // oldest record
    expect(requestHex({ opCode: 'report-stored-records', operator: 'last' })).toBe('01 06'); // most recent record
    expect(requestHex({ opCode: 'abort-operation' })).toBe('03 00'); // abort, null operator
    expect(requestHex({ opCode: 'delete-stored-records', operator: 'all' })).toBe('02 01');
    // 01 02 02 E8 07 03 0F 08 1E 00: records up to user-facing time 2024-03-15 08:30:00 (Glucose filter 0x02).
    const upTo = { year: 2024, month: 3, day: 15, hours: 8, minutes: 30, seconds: 0 };
    expect(requestHex({ opCode: 'report-stored-records', operator: 'less-or-equal', filter: { type: 'user-facing-time', value: upTo } })).toBe('01 02 02 E8 07 03 0F 08 1E 00');
    // CGM: records with time offset >= 300 min (filter 0x01 = time offset in CGMS): 01 03 01 2C 01.
    expect(requestHex({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'time-offset', value: 300 } })).toBe('01 03 01 2C 01');
  });

  it('decodes requests per service: filter 0x01 is a sequence number for Glucose, a time offset for CGM', () => {
    expect(decodeRacpRequest(hexToBytes('01 03 01 10 00'), glucose)).toEqual({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: 16 } });
    expect(decodeRacpRequest(hexToBytes('01 03 01 10 00'), cgm)).toEqual({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'time-offset', value: 16 } });
    expect(decodeRacpRequest(hexToBytes('01 04 02 E8 07 03 0F 08 1E 00 E8 07 03 0F 09 00 00'), glucose)).toEqual({
      opCode: 'report-stored-records',
      operator: 'within-range',
      filter: {
        type: 'user-facing-time',
        from: { year: 2024, month: 3, day: 15, hours: 8, minutes: 30, seconds: 0, epochMs: Date.UTC(2024, 2, 15, 8, 30) },
        to: { year: 2024, month: 3, day: 15, hours: 9, minutes: 0, seconds: 0, epochMs: Date.UTC(2024, 2, 15, 9, 0) },
      },
    });
    expect(decodeRacpRequest(hexToBytes('03 00'), cgm)).toEqual({ opCode: 'abort-operation' });
  });

  it('refuses bad requests with the response code a server must send back', () => {
    expect(requestError('07 01')).toMatchObject({ requestOpCode: 7, responseCode: 2, codec: RACP_CODEC }); // reserved op code -> op code not supported
    expect(requestError('06 00 01 01')).toMatchObject({ requestOpCode: 6, responseCode: 2 }); // a response sent as a request
    expect(requestError('01 00')).toMatchObject({ requestOpCode: 1, responseCode: 3 }); // null operator -> invalid operator
    expect(requestError('03 01')).toMatchObject({ requestOpCode: 3, responseCode: 3 }); // abort needs the null operator
    expect(requestError('01 07')).toMatchObject({ responseCode: 4 }); // reserved operator -> operator not supported
    expect(requestError('01 01 00')).toMatchObject({ responseCode: 5 }); // 'all' takes no operand -> invalid operand
    expect(requestError('01 03')).toMatchObject({ responseCode: 5 }); // >= without a filter
    expect(requestError('01 03 01 10')).toMatchObject({ responseCode: 5 }); // value cut short
    expect(requestError('01 04 01 05 00')).toMatchObject({ responseCode: 5 }); // range with one value
    expect(requestError('01 03 03 10 00')).toMatchObject({ responseCode: 9 }); // filter type 3 -> operand not supported
    expect(requestError('01 03 02 E8 07 03 0F 08 1E 00', cgm)).toMatchObject({ responseCode: 9 }); // no time filter in CGMS
    expect(() => decodeRacpRequest(new Uint8Array(), glucose)).toThrow(DecodeError);
    expect(() => decodeRacpRequest(hexToBytes('01 01'), {} as { service: 'glucose' })).toThrow(/options.service/);
  });

  it('refuses unknown request names with a ConfigError', () => {
    expect(() => encodeRacpRequest({ opCode: 'report' } as unknown as RacpRequestFields)).toThrow(ConfigError);
    expect(() => encodeRacpRequest({ opCode: 'report-stored-records', operator: 'some' } as unknown as RacpRequestFields)).toThrow(/\/operator/);
    expect(() => encodeRacpRequest({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: -1 } })).toThrow(/\/filter\/value/);
  });
});

describe('RACP responses', () => {
  it('decodes the number of stored records (uint16)', () => {
    // 05 00 LL HH
    expect(decodeRacpResponse(hexToBytes('05 00 02 01'))).toEqual({ opCode: 'number-of-stored-records-response', count: 258 }); // Nordic "uint16" test
    expect(bytesToHex(encodeRacpResponse({ opCode: 'number-of-stored-records-response', count: 258 }))).toBe('05 00 02 01');
    // Nordic's RecordAccessControlPointDataCallback also accepts a uint8 or uint32 count (05 00 01,
    // 05 00 04 03 02 01); Glucose and CGMS define uint16, so those are refused here.
    expect(() => decodeRacpResponse(hexToBytes('05 00 01'))).toThrow(/truncated/);
    expect(() => decodeRacpResponse(hexToBytes('05 00 04 03 02 01'))).toThrow(/trailing/);
  });

  it('decodes response codes with the request op code and the named value', () => {
    // 06 00 01 01: report stored records -> success (spec "completion"; Nordic onRecordAccessOperationCompleted).
    expect(decodeRacpResponse(hexToBytes('06 00 01 01'))).toEqual({
      opCode: 'response-code',
      requestOpCode: { code: 1, name: 'report-stored-records' },
      responseCode: { code: 1, name: 'success' },
    });
    // 06 00 01 06: nothing to report -> no records found.
    expect(decodeRacpResponse(hexToBytes('06 00 01 06'))).toMatchObject({ responseCode: { code: 6, name: 'no-records-found' } });
    // Nordic's error vectors: 06 00 0C 02 (op code 12 not supported), 06 00 03 07, 06 00 02 08, 06 00 02 09, 06 00 01 0A (unknown 10).
    expect(decodeRacpResponse(hexToBytes('06 00 0C 02'))).toMatchObject({ requestOpCode: { code: 12, name: 'reserved' }, responseCode: { code: 2, name: 'op-code-not-supported' } });
    expect(decodeRacpResponse(hexToBytes('06 00 03 07'))).toMatchObject({ requestOpCode: { name: 'abort-operation' }, responseCode: { name: 'abort-unsuccessful' } });
    expect(decodeRacpResponse(hexToBytes('06 00 02 08'))).toMatchObject({ requestOpCode: { name: 'delete-stored-records' }, responseCode: { name: 'procedure-not-completed' } });
    expect(decodeRacpResponse(hexToBytes('06 00 02 09'))).toMatchObject({ responseCode: { code: 9, name: 'operand-not-supported' } });
    expect(decodeRacpResponse(hexToBytes('06 00 01 0A'))).toMatchObject({ responseCode: { code: 10, name: 'reserved' } });
    expect(bytesToHex(encodeRacpResponse({ opCode: 'response-code', requestOpCode: { code: 1 }, responseCode: { code: 6 } }))).toBe('06 00 01 06');
  });

  it('refuses malformed responses with a DecodeError', () => {
    expect(() => decodeRacpResponse(hexToBytes('01 01'))).toThrow(/is a request/); // Nordic "tooShort": a request, not a response
    expect(() => decodeRacpResponse(hexToBytes('01 03 01 02 00'))).toThrow(DecodeError); // Nordic "wrongOpCode"
    expect(() => decodeRacpResponse(hexToBytes('06 01 01'))).toThrow(/operator 0/); // Nordic "invalidOperator"
    expect(() => decodeRacpResponse(hexToBytes('06 00 01'))).toThrow(/truncated/);
    expect(() => decodeRacpResponse(hexToBytes('06 00 01 01 00'))).toThrow(/trailing/);
    expect(() => decodeRacpResponse(new Uint8Array())).toThrow(DecodeError);
  });
});

// ---------------------------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const dateTime = fc.record({ year: u16, month: u8, day: u8, hours: u8, minutes: u8, seconds: u8 });
const recordOpCode = fc.constantFrom('report-stored-records' as const, 'delete-stored-records' as const, 'report-number-of-stored-records' as const);

function requestArb(service: 'glucose' | 'cgm'): fc.Arbitrary<RacpRequestFields> {
  const numberType = service === 'glucose' ? ('sequence-number' as const) : ('time-offset' as const);
  const single = service === 'glucose'
    ? fc.oneof(fc.record({ type: fc.constant(numberType), value: u16 }), fc.record({ type: fc.constant('user-facing-time' as const), value: dateTime }))
    : fc.record({ type: fc.constant(numberType), value: u16 });
  const range = service === 'glucose'
    ? fc.oneof(fc.record({ type: fc.constant(numberType), from: u16, to: u16 }), fc.record({ type: fc.constant('user-facing-time' as const), from: dateTime, to: dateTime }))
    : fc.record({ type: fc.constant(numberType), from: u16, to: u16 });
  return fc.oneof(
    fc.record({ opCode: recordOpCode, operator: fc.constantFrom('all' as const, 'first' as const, 'last' as const) }),
    fc.record({ opCode: recordOpCode, operator: fc.constantFrom('less-or-equal' as const, 'greater-or-equal' as const), filter: single }),
    fc.record({ opCode: recordOpCode, operator: fc.constant('within-range' as const), filter: range }),
    fc.constant({ opCode: 'abort-operation' as const }),
  ) as fc.Arbitrary<RacpRequestFields>;
}

describe('round-trip properties', () => {
  for (const service of ['glucose', 'cgm'] as const) {
    it(`${service} requests: decode(encode(v)) carries v and re-encodes to the same bytes`, () => {
      fc.assert(
        fc.property(requestArb(service), (request) => {
          const bytes = encodeRacpRequest(request);
          const v = decodeRacpRequest(bytes, { service });
          expect(v).toMatchObject(request);
          expect(decodeRacpRequest(encodeRacpRequest(v), { service })).toEqual(v);
          expect(bytesToHex(encodeRacpRequest(v))).toBe(bytesToHex(bytes));
        }),
        PROPERTY,
      );
    });
  }

  it('responses: decode(encode(v)) carries v', () => {
    const responses: fc.Arbitrary<RacpResponseFields> = fc.oneof(
      fc.record({ opCode: fc.constant('number-of-stored-records-response' as const), count: u16 }),
      fc.record({ opCode: fc.constant('response-code' as const), requestOpCode: fc.record({ code: u8 }), responseCode: fc.record({ code: u8 }) }),
    );
    fc.assert(
      fc.property(responses, (response) => {
        const v = decodeRacpResponse(encodeRacpResponse(response));
        expect(v).toMatchObject(response);
        expect(decodeRacpResponse(encodeRacpResponse(v))).toEqual(v);
      }),
      PROPERTY,
    );
  });
});
