/**
 * Record Access Control Point (0x2A52), as used by the Glucose Service and the Continuous
 * Glucose Monitoring Service: `OpCode(1) Operator(1) [Operand...]`, written by the collector and
 * answered by an indication. Stored records arrive as measurement notifications *before* the
 * final indication. Layouts from `shared/specs/ble-health-profiles.md` §3.5, checked against Arm
 * Cordio's `CH_RACP_*` constants and Cypress/Infineon's `cy_en_ble_cgms_racp_*` enums.
 *
 * | op | meaning                              | operator        | operand                     |
 * |----|--------------------------------------|-----------------|-----------------------------|
 * | 1  | report stored records                | 1..6            | filter for 2, 3, 4          |
 * | 2  | delete stored records                | 1..6            | filter for 2, 3, 4          |
 * | 3  | abort operation                      | 0 (null)        | none                        |
 * | 4  | report number of stored records      | 1..6            | filter for 2, 3, 4          |
 * | 5  | number of stored records (response)  | 0               | uint16 count (GLS and CGMS) |
 * | 6  | response code (response)             | 0               | request op code, value      |
 *
 * Operators: 1 all, 2 ≤, 3 ≥, 4 within range (inclusive), 5 first, 6 last. The filter is a type
 * byte and one (≤, ≥) or two (range) values: Glucose 0x01 sequence number (uint16), 0x02
 * user-facing time (Date Time, 7 bytes); CGM 0x01 time offset (uint16). Because 0x01 means a
 * different field per service, decoding a request needs `{ service }`.
 *
 * Requests that break these rules fail with `RacpRequestError` (a `DecodeError`), whose
 * `responseCode` is the RACP response value a server must answer with (op code not supported,
 * invalid operator, operator not supported, invalid operand, operand not supported). Trailing
 * bytes are an invalid operand in requests and a `DecodeError` in responses.
 */
import { ConfigError, DecodeError } from '../../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { coded, codeOf, type Coded, type CodeInput } from './codes.js';
import { DATE_TIME_LENGTH, readDateTime, writeDateTime, type BleDateTime, type BleDateTimeFields } from './date-time.js';

export const RACP_UUID = 0x2a52;
export const RACP_CODEC = 'ble-racp';

export const RACP_OP_CODES = Object.freeze({
  1: 'report-stored-records',
  2: 'delete-stored-records',
  3: 'abort-operation',
  4: 'report-number-of-stored-records',
  5: 'number-of-stored-records-response',
  6: 'response-code',
} as const);
export type RacpOpCodeName = (typeof RACP_OP_CODES)[keyof typeof RACP_OP_CODES];

export const RACP_OPERATORS = Object.freeze({
  0: 'null',
  1: 'all',
  2: 'less-or-equal',
  3: 'greater-or-equal',
  4: 'within-range',
  5: 'first',
  6: 'last',
} as const);
export type RacpOperatorName = (typeof RACP_OPERATORS)[keyof typeof RACP_OPERATORS];

export const RACP_RESPONSE_CODES = Object.freeze({
  1: 'success',
  2: 'op-code-not-supported',
  3: 'invalid-operator',
  4: 'operator-not-supported',
  5: 'invalid-operand',
  6: 'no-records-found',
  7: 'abort-unsuccessful',
  8: 'procedure-not-completed',
  9: 'operand-not-supported',
} as const);
export type RacpResponseCodeName = (typeof RACP_RESPONSE_CODES)[keyof typeof RACP_RESPONSE_CODES];

/** The service whose RACP is spoken; it decides what filter type 0x01 means. */
export type RacpService = 'glucose' | 'cgm';

export interface RacpDecodeOptions {
  service: RacpService;
}

// ---------------------------------------------------------------------------------------------
// Requests (collector -> sensor)

/** Request op codes that take an operator over the stored records. */
export type RacpRecordOpCode = 'report-stored-records' | 'delete-stored-records' | 'report-number-of-stored-records';

export type RacpFilterValue<Time extends BleDateTimeFields> =
  | { type: 'sequence-number'; value: number }
  | { type: 'user-facing-time'; value: Time }
  | { type: 'time-offset'; value: number };

export type RacpRangeFilter<Time extends BleDateTimeFields> =
  | { type: 'sequence-number'; from: number; to: number }
  | { type: 'user-facing-time'; from: Time; to: Time }
  | { type: 'time-offset'; from: number; to: number };

/**
 * A request. `sequence-number` and `user-facing-time` are Glucose filters, `time-offset` the CGM
 * filter. Examples: all records `{ opCode: 'report-stored-records', operator: 'all' }` (`01 01`);
 * sequence ≥ 16 `{ opCode: 'report-stored-records', operator: 'greater-or-equal', filter:
 * { type: 'sequence-number', value: 16 } }` (`01 03 01 10 00`).
 */
export type RacpRequestFields<Time extends BleDateTimeFields = BleDateTimeFields> =
  | { opCode: RacpRecordOpCode; operator: 'all' | 'first' | 'last' }
  | { opCode: RacpRecordOpCode; operator: 'less-or-equal' | 'greater-or-equal'; filter: RacpFilterValue<Time> }
  | { opCode: RacpRecordOpCode; operator: 'within-range'; filter: RacpRangeFilter<Time> }
  | { opCode: 'abort-operation' };

/** A decoded request: user-facing times carry `epochMs` when complete. */
export type RacpRequest = RacpRequestFields<BleDateTime>;

/** A request that a RACP server must refuse; `responseCode` is the response value to send back for `requestOpCode`. */
export class RacpRequestError extends DecodeError {
  readonly requestOpCode: number;
  readonly responseCode: number;
  constructor(requestOpCode: number, responseCode: keyof typeof RACP_RESPONSE_CODES, message: string) {
    super(RACP_CODEC, `${message} (answer: ${RACP_RESPONSE_CODES[responseCode]})`);
    this.requestOpCode = requestOpCode;
    this.responseCode = responseCode;
  }
}

const OP_CODE_NUMBERS: Readonly<Record<RacpRecordOpCode | 'abort-operation', number>> = Object.freeze({
  'report-stored-records': 1,
  'delete-stored-records': 2,
  'abort-operation': 3,
  'report-number-of-stored-records': 4,
});

const OPERATOR_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  all: 1,
  'less-or-equal': 2,
  'greater-or-equal': 3,
  'within-range': 4,
  first: 5,
  last: 6,
});

const FILTER_TYPE_NUMBERS: Readonly<Record<string, number>> = Object.freeze({ 'sequence-number': 1, 'user-facing-time': 2, 'time-offset': 1 });

export function encodeRacpRequest(request: RacpRequestFields): Uint8Array {
  const opCode = (OP_CODE_NUMBERS as Record<string, number | undefined>)[request?.opCode];
  if (opCode === undefined) {
    throw badChoice('/opCode', request?.opCode, `use one of ${Object.keys(OP_CODE_NUMBERS).join(', ')}`);
  }
  const w = new ByteWriter().uint8(opCode, '/opCode');
  if (request.opCode === 'abort-operation') return w.uint8(0, '/operator').toBytes();
  const operator = OPERATOR_NUMBERS[request.operator];
  if (operator === undefined) {
    throw badChoice('/operator', request.operator, `use one of ${Object.keys(OPERATOR_NUMBERS).join(', ')}`);
  }
  w.uint8(operator, '/operator');
  if (request.operator === 'less-or-equal' || request.operator === 'greater-or-equal') {
    writeFilterType(w, request.filter.type);
    writeFilterValue(w, request.filter.type, request.filter.value, '/filter/value');
  } else if (request.operator === 'within-range') {
    writeFilterType(w, request.filter.type);
    writeFilterValue(w, request.filter.type, request.filter.from, '/filter/from');
    writeFilterValue(w, request.filter.type, request.filter.to, '/filter/to');
  }
  return w.toBytes();
}

export function decodeRacpRequest(bytes: Uint8Array, options: RacpDecodeOptions): RacpRequest {
  const service = options?.service;
  if (service !== 'glucose' && service !== 'cgm') {
    throw new DecodeError(RACP_CODEC, `options.service must be 'glucose' or 'cgm', got ${String(service)}`);
  }
  const r = new ByteReader(RACP_CODEC, bytes);
  const opCodeNumber = r.uint8('op code');
  const opCodeName = (RACP_OP_CODES as Record<number, RacpOpCodeName | undefined>)[opCodeNumber];
  if (opCodeNumber > 4 || opCodeName === undefined) {
    const what = opCodeName === undefined ? 'is reserved' : `is a response (${opCodeName}), not a request`;
    throw new RacpRequestError(opCodeNumber, 2, `op code ${opCodeNumber} ${what}`);
  }
  if (r.remaining < 1) throw new RacpRequestError(opCodeNumber, 3, `${opCodeName} without an operator`);
  const operatorNumber = r.uint8('operator');
  if (opCodeName === 'abort-operation') {
    if (operatorNumber !== 0) throw new RacpRequestError(opCodeNumber, 3, `abort-operation needs operator 0 (null), got ${operatorNumber}`);
    if (r.remaining > 0) throw new RacpRequestError(opCodeNumber, 5, `abort-operation takes no operand, got ${r.remaining} bytes`);
    return { opCode: 'abort-operation' };
  }
  const opCode = opCodeName as RacpRecordOpCode;
  if (operatorNumber === 0) throw new RacpRequestError(opCodeNumber, 3, `${opCode} needs an operator, got 0 (null)`);
  if (operatorNumber > 6) throw new RacpRequestError(opCodeNumber, 4, `operator ${operatorNumber} is reserved`);
  const operator = RACP_OPERATORS[operatorNumber as 1 | 2 | 3 | 4 | 5 | 6];
  if (operator === 'all' || operator === 'first' || operator === 'last') {
    if (r.remaining > 0) throw new RacpRequestError(opCodeNumber, 5, `operator ${operator} takes no operand, got ${r.remaining} bytes`);
    return { opCode, operator };
  }
  if (r.remaining < 1) throw new RacpRequestError(opCodeNumber, 5, `operator ${operator} needs a filter type and value`);
  const filterType = filterTypeName(r.uint8('filter type'), service, opCodeNumber);
  const valueLength = filterType === 'user-facing-time' ? DATE_TIME_LENGTH : 2;
  const values = operator === 'within-range' ? 2 : 1;
  if (r.remaining !== values * valueLength) {
    throw new RacpRequestError(opCodeNumber, 5, `operator ${operator} with filter ${filterType} needs ${values * valueLength} operand bytes after the filter type, got ${r.remaining}`);
  }
  if (operator === 'within-range') {
    if (filterType === 'user-facing-time') {
      return { opCode, operator, filter: { type: filterType, from: readDateTime(r, 'from'), to: readDateTime(r, 'to') } };
    }
    return { opCode, operator, filter: { type: filterType, from: r.uint16('from'), to: r.uint16('to') } };
  }
  if (filterType === 'user-facing-time') return { opCode, operator, filter: { type: filterType, value: readDateTime(r, 'value') } };
  return { opCode, operator, filter: { type: filterType, value: r.uint16('value') } };
}

function filterTypeName(type: number, service: RacpService, opCode: number): 'sequence-number' | 'user-facing-time' | 'time-offset' {
  if (type === 1) return service === 'glucose' ? 'sequence-number' : 'time-offset';
  if (type === 2 && service === 'glucose') return 'user-facing-time';
  throw new RacpRequestError(opCode, 9, `filter type ${type} is not defined for the ${service} service`);
}

function writeFilterType(w: ByteWriter, type: string): void {
  const number = FILTER_TYPE_NUMBERS[type];
  if (number === undefined) throw badChoice('/filter/type', type, 'use sequence-number or user-facing-time (Glucose), time-offset (CGM)');
  w.uint8(number, '/filter/type');
}

function writeFilterValue(w: ByteWriter, type: string, value: number | BleDateTimeFields, field: string): void {
  if (type === 'user-facing-time') writeDateTime(w, value as BleDateTimeFields, field);
  else w.uint16(value as number, field);
}

// ---------------------------------------------------------------------------------------------
// Responses (sensor -> collector, indicated)

export type RacpResponseFields =
  | { opCode: 'number-of-stored-records-response'; count: number }
  | { opCode: 'response-code'; requestOpCode: CodeInput; responseCode: CodeInput };

export type RacpResponse =
  | { opCode: 'number-of-stored-records-response'; count: number }
  | { opCode: 'response-code'; requestOpCode: Coded<RacpOpCodeName>; responseCode: Coded<RacpResponseCodeName> };

/** `05 00 LL HH` (count, uint16) or `06 00 <request op code> <response value>`; exact lengths, operator must be 0. */
export function decodeRacpResponse(bytes: Uint8Array): RacpResponse {
  const r = new ByteReader(RACP_CODEC, bytes);
  const opCode = r.uint8('op code');
  if (opCode !== 5 && opCode !== 6) {
    const name = (RACP_OP_CODES as Record<number, string | undefined>)[opCode];
    throw new DecodeError(RACP_CODEC, `op code ${opCode} ${name === undefined ? 'is reserved' : `(${name}) is a request`}; responses are 5 (number of stored records) and 6 (response code)`);
  }
  const operator = r.uint8('operator');
  if (operator !== 0) throw new DecodeError(RACP_CODEC, `response op code ${opCode} needs operator 0 (null), got ${operator}`);
  if (opCode === 5) {
    const count = r.uint16('number of stored records');
    r.expectEnd('the uint16 record count');
    return { opCode: 'number-of-stored-records-response', count };
  }
  const requestOpCode = coded(RACP_OP_CODES, r.uint8('request op code'));
  const responseCode = coded(RACP_RESPONSE_CODES, r.uint8('response code value'));
  r.expectEnd('the response code value');
  return { opCode: 'response-code', requestOpCode, responseCode };
}

export function encodeRacpResponse(response: RacpResponseFields): Uint8Array {
  if (response?.opCode === 'number-of-stored-records-response') {
    return new ByteWriter().uint8(5, '/opCode').uint8(0, '/operator').uint16(response.count, '/count').toBytes();
  }
  if (response?.opCode === 'response-code') {
    return new ByteWriter()
      .uint8(6, '/opCode')
      .uint8(0, '/operator')
      .uint8(codeOf(response.requestOpCode, 8, '/requestOpCode'), '/requestOpCode')
      .uint8(codeOf(response.responseCode, 8, '/responseCode'), '/responseCode')
      .toBytes();
  }
  throw badChoice('/opCode', (response as { opCode?: unknown } | undefined)?.opCode, 'use number-of-stored-records-response or response-code');
}

function badChoice(field: string, value: unknown, fix: string): ConfigError {
  return new ConfigError(field, value, 'is not a known RACP value', fix);
}
