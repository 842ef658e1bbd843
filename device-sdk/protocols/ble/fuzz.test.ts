/**
 * Fuzz tests, one per decoder: 5,000 random values of 0–64 bytes each must decode to a value or
 * throw a `DecodeError`, nothing else (no RangeError, no TypeError, no hang). Whenever random
 * bytes do decode, encoding the result must give back exactly those bytes. A second pass mutates
 * known-good vectors (one byte changed, truncated or extended) to reach the deeper branches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../errors.js';
import { decodeMderFloat, decodeSfloat, encodeMderFloat, encodeSfloat } from '../ieee11073.js';
import { bytesToHex, hexToBytes } from './bytes.js';
import {
  decodeCgmFeature,
  decodeCgmMeasurement,
  decodeCgmSessionStartTime,
  encodeCgmFeature,
  encodeCgmMeasurement,
  encodeCgmSessionStartTime,
  type CgmMeasurementOptions,
} from './cgm.js';
import {
  decodeGlucoseFeature,
  decodeGlucoseMeasurement,
  decodeGlucoseMeasurementContext,
  encodeGlucoseFeature,
  encodeGlucoseMeasurement,
  encodeGlucoseMeasurementContext,
} from './glucose.js';
import { decodeHeartRateMeasurement, encodeHeartRateMeasurement } from './heart-rate.js';
import { decodeRacpRequest, decodeRacpResponse, encodeRacpRequest, encodeRacpResponse, type RacpService } from './racp.js';

const FUZZ = { seed: 42, numRuns: 5000 };
const MUTATIONS = { seed: 42, numRuns: 2000 };
const FAILED = Symbol('failed');

function attempt<T>(decode: (bytes: Uint8Array) => T, bytes: Uint8Array): T | typeof FAILED {
  try {
    return decode(bytes);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw new Error(`threw ${String(error)}, not a DecodeError, for ${bytesToHex(bytes)}`, { cause: error });
    return FAILED;
  }
}

/** Runs `inputs` through the decoder; returns how many decoded (and re-encoded byte for byte). */
function check<T>(inputs: fc.Arbitrary<Uint8Array>, params: { seed: number; numRuns: number }, decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array): number {
  let decoded = 0;
  fc.assert(
    fc.property(inputs, (bytes) => {
      const value = attempt(decode, bytes);
      if (value === FAILED) return;
      decoded++;
      expect(bytesToHex(encode(value))).toBe(bytesToHex(bytes));
    }),
    params,
  );
  return decoded;
}

const randomBytes = fc.uint8Array({ minLength: 0, maxLength: 64, size: 'max' });

function mutationsOf(vectors: string[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...vectors.map((v) => hexToBytes(v))), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'truncate', 'append'))
    .map(([bytes, at, byte, how]) => {
      if (how === 'truncate') return bytes.slice(0, at % (bytes.length + 1));
      if (how === 'append') return Uint8Array.from([...bytes, byte]);
      const copy = Uint8Array.from(bytes);
      if (copy.length > 0) copy[at % copy.length] = byte;
      return copy;
    });
}

interface Target {
  name: string;
  decode: (b: Uint8Array) => unknown;
  encode: (v: never) => Uint8Array;
  vectors: string[];
}

function cgmTarget(options: CgmMeasurementOptions): Target {
  return {
    name: `CGM Measurement ${JSON.stringify(options)}`,
    decode: (b) => decodeCgmMeasurement(b, options),
    encode: (v: Parameters<typeof encodeCgmMeasurement>[0]) => encodeCgmMeasurement(v, options),
    vectors: options.e2eCrc
      ? ['0F E3 D2 E4 05 00 02 14 FF 02 F0 E5 F3 8E 3F', '08 00 0C 10 06 00 59 6F', '08 00 0C 10 06 00 59 6F 08 00 0C 10 06 00 59 6F']
      : ['06 00 0C 10 06 00', '06 00 0C 10 05 00 06 00 0C 10 06 00', '07 20 0C 10 07 00 02', '0D E3 D2 E4 05 00 02 14 FF 02 F0 E5 F3'],
  };
}

function racpTarget(service: RacpService): Target {
  return {
    name: `RACP request (${service})`,
    decode: (b) => decodeRacpRequest(b, { service }),
    encode: encodeRacpRequest as (v: never) => Uint8Array,
    vectors: ['01 01', '04 01', '01 03 01 10 00', '01 04 01 05 00 0A 00', '03 00', '01 02 02 E8 07 03 0F 08 1E 00', '02 05'],
  };
}

const TARGETS: Target[] = [
  {
    name: 'Glucose Measurement',
    decode: decodeGlucoseMeasurement,
    encode: encodeGlucoseMeasurement as (v: never) => Uint8Array,
    vectors: ['1B 01 00 E3 07 02 1B 0B 0A 1E FB FF 1E 00 12 05 01', '02 2A 00 E8 07 03 0F 08 1E 00 78 B0 11', '06 2B 00 E8 07 03 0F 08 1E 00 43 C0 F8', '00 00 00 00 00 00 00 00 00 00'],
  },
  {
    name: 'Glucose Measurement Context',
    decode: decodeGlucoseMeasurementContext,
    encode: encodeGlucoseMeasurementContext as (v: never) => Uint8Array,
    vectors: ['FF 00 00 B3 03 64 00 04 12 3C 00 32 04 D3 F4 59 F1', '00 01 00', '02 2A 00 01', '10 2A 00 01 02 A0'],
  },
  { name: 'Glucose Feature', decode: decodeGlucoseFeature, encode: encodeGlucoseFeature as (v: never) => Uint8Array, vectors: ['F0 03'] },
  racpTarget('glucose'),
  racpTarget('cgm'),
  {
    name: 'RACP response',
    decode: decodeRacpResponse,
    encode: encodeRacpResponse as (v: never) => Uint8Array,
    vectors: ['05 00 02 01', '06 00 01 01', '06 00 01 06', '06 00 0C 02'],
  },
  cgmTarget({ e2eCrc: true }),
  cgmTarget({ e2eCrc: false }),
  cgmTarget({ e2eCrc: true, annunciationLayout: 'nordic' }),
  cgmTarget({ e2eCrc: false, annunciationLayout: 'nordic' }),
  { name: 'CGM Feature', decode: decodeCgmFeature, encode: encodeCgmFeature as (v: never) => Uint8Array, vectors: ['6E 9E 01 16 8A C1', '6E 8E 01 16 FF FF'] },
  {
    name: 'CGM Session Start Time (E2E-CRC)',
    decode: (b) => decodeCgmSessionStartTime(b, { e2eCrc: true }),
    encode: ((v: Parameters<typeof encodeCgmSessionStartTime>[0]) => encodeCgmSessionStartTime(v, { e2eCrc: true })) as (v: never) => Uint8Array,
    vectors: ['E2 07 04 18 0D 08 18 08 04 E0 C2', '00 00 00 00 00 00 00 80 FF AC CD'],
  },
  {
    name: 'CGM Session Start Time (no CRC)',
    decode: (b) => decodeCgmSessionStartTime(b, { e2eCrc: false }),
    encode: ((v: Parameters<typeof encodeCgmSessionStartTime>[0]) => encodeCgmSessionStartTime(v, { e2eCrc: false })) as (v: never) => Uint8Array,
    vectors: ['EA 07 07 04 0C 1E 00 EC 04', '00 00 04 18 0D 08 18 08 02'],
  },
  {
    name: 'Heart Rate Measurement',
    decode: decodeHeartRateMeasurement,
    encode: encodeHeartRateMeasurement as (v: never) => Uint8Array,
    vectors: ['00 55', '04 FF', '1E 55 32 00 21 00', '1F 01 01 32 01 01 00 02 01 FF FF', '17 01 01'],
  },
];

describe('fuzz: random bytes give a value or a DecodeError, and what decodes re-encodes exactly', () => {
  for (const target of TARGETS) {
    it(`${target.name}: 5,000 random values of 0-64 bytes`, () => {
      check(randomBytes, FUZZ, target.decode, target.encode as (v: unknown) => Uint8Array);
    });

    it(`${target.name}: values that are not a Uint8Array are a DecodeError too`, () => {
      for (const input of [null, undefined, [0x00, 0x55], '00 55', 42, new ArrayBuffer(2)]) {
        expect(() => target.decode(input as unknown as Uint8Array)).toThrow(DecodeError);
      }
      // A Node Buffer is a Uint8Array and is accepted like one.
      expect(attempt(target.decode, Buffer.from(hexToBytes(target.vectors[0] as string)))).not.toBe(FAILED);
    });

    it(`${target.name}: 2,000 mutations of the known vectors`, () => {
      const decoded = check(mutationsOf(target.vectors), MUTATIONS, target.decode, target.encode as (v: unknown) => Uint8Array);
      expect(decoded).toBeGreaterThan(0); // the mutations are not all rejected: the valid paths are exercised too
    });
  }

  it('SFLOAT / FLOAT raw decoders: any JS number gives a value or a DecodeError', () => {
    const inputs = fc.oneof(fc.integer({ min: -1, max: 0x1_0000_0000 }), fc.double(), fc.constantFrom(NaN, Infinity, -0, 0xffff, 0x10000, 0xffffffff));
    fc.assert(
      fc.property(inputs, (raw) => {
        for (const [decode, encode] of [
          [decodeSfloat, encodeSfloat],
          [decodeMderFloat, encodeMderFloat],
        ] as const) {
          const value = attempt(() => decode(raw), new Uint8Array());
          if (value !== FAILED) expect(encode(value)).toBe(raw);
        }
      }),
      FUZZ,
    );
  });
});
