import { readFileSync } from 'node:fs';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../errors.js';
import {
  decodeFrame,
  encodeFrame,
  frameToChunks,
  readFrameHeader,
  STREAM_CAPABILITIES,
  STREAM_CODEC,
  STREAM_DATA_HEADER_BYTES,
  STREAM_HEADER_BYTES,
  STREAM_MAX_BODY_BYTES,
  STREAM_TRAILER_BYTES,
  StreamFrameError,
  streamFrameCrc,
  streamHeaderCrc,
  type StreamDataFrame,
  type StreamFrame,
  type StreamFrameErrorReason,
  type StreamInfoFrame,
  STREAM_UNITS,
  type StreamUnit,
} from './stream-frame.js';

/** Random frames of every kind, with float32-exact rate and gain so that they round-trip. */
function streamFrameArb(): fc.Arbitrary<StreamFrame> {
  const seq = fc.integer({ min: 0, max: 0xffff });
  const deviceType = fc.oneof(fc.constantFrom('ecg' as const, 'pcg' as const), fc.integer({ min: 0x80, max: 0xff }));
  const positiveF32 = fc.float({ min: Math.fround(1e-6), max: Math.fround(1e9), noNaN: true });
  const data = fc.integer({ min: 1, max: 32 }).chain((ch) =>
    fc.record({
      kind: fc.constant('data' as const),
      seq,
      seqReset: fc.boolean(),
      deviceType,
      sampleFormat: fc.constant('int16le' as const),
      unit: fc.constantFrom(...(Object.keys(STREAM_UNITS) as StreamUnit[])),
      rateHz: fc.oneof(fc.constantFrom(250, 360, 500, 1000, 4000, 976.5625), positiveF32),
      gain: fc.oneof(fc.constantFrom(1, 200, 32768), positiveF32),
      firstSample: fc.integer({ min: 0, max: 0xffffffff }),
      clockReset: fc.boolean(),
      leadOff: fc.integer({ min: 0, max: 2 ** ch - 1 }),
      saturated: fc.integer({ min: 0, max: 2 ** ch - 1 }),
      channels: fc.integer({ min: 0, max: Math.min(20, Math.floor((STREAM_MAX_BODY_BYTES - 24) / (2 * ch))) }).chain((n) =>
        fc.array(fc.int16Array({ minLength: n, maxLength: n }), { minLength: ch, maxLength: ch }),
      ),
    }),
  );
  const text = fc.string({ maxLength: 16, unit: 'grapheme' });
  const info = fc.record({
    kind: fc.constant('info' as const),
    seq,
    seqReset: fc.boolean(),
    deviceType,
    channelCount: fc.integer({ min: 0, max: 32 }),
    capabilities: fc.integer({ min: 0, max: 0xffffffff }),
    vendor: text,
    model: text,
    firmware: text,
    serial: text,
  });
  const identify = fc.record({ kind: fc.constant('identify' as const), seq, seqReset: fc.boolean() });
  const vendor = fc.record({
    kind: fc.constant('vendor' as const),
    seq,
    seqReset: fc.boolean(),
    type: fc.integer({ min: 0x80, max: 0xff }),
    body: fc.uint8Array({ maxLength: 300 }),
  });
  return fc.oneof(data, info, identify, vendor);
}

/** Joins annotated hex lines: everything after `#` on a line is a comment. */
function hex(annotated: string): Uint8Array {
  const digits = annotated
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

/** The hex block that follows `<!-- vector:name -->` in the protocol README. */
function readmeVector(name: string): Uint8Array {
  const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- vector:${name} -->\\s*\`\`\`text\\n([0-9a-f \\n]+)\`\`\``).exec(readme);
  if (!match?.[1]) throw new Error(`README.md has no vector:${name} block`);
  return hex(match[1]);
}

/** Recomputes both CRCs after a test has edited a frame, so that a later check is reached. */
function reseal(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const h = streamHeaderCrc(out, 0, 10);
  out[10] = h & 0xff;
  out[11] = h >>> 8;
  const at = out.length - 4;
  new DataView(out.buffer).setUint32(at, streamFrameCrc(out, 0, at), true);
  return out;
}

function reasonOf(bytes: Uint8Array): StreamFrameErrorReason | 'ok' {
  try {
    decodeFrame(bytes);
    return 'ok';
  } catch (error) {
    if (error instanceof StreamFrameError) return error.reason;
    throw error;
  }
}

// README §9.1, byte for byte.
const DATA_VECTOR = hex(`
  a5 4d                    # sync
  01                       # version 1
  01                       # type DATA
  28 00                    # body length 40 = 24 + 2 ch x 4 samples x 2 bytes
  11 00                    # seq 17
  00                       # flags: none
  00                       # reserved
  71 55                    # header CRC-16/IBM-3740 of bytes 0-9 = 0x5571
  01                       # device type ECG
  02                       # 2 channels
  01                       # sample format int16 LE
  01                       # unit mV
  00 00 b4 43              # rate, float32 360.0
  00 00 48 43              # gain, float32 200.0 ADC units per mV
  a0 05 00 00              # first sample 1440
  00 00 00 00              # lead-off mask
  00 00 00 00              # saturation mask
  64 00 ec ff              # s0: ch0 100, ch1 -20
  fa 00 3c 00              # s1: ch0 250, ch1 60
  84 03 f4 01              # s2: ch0 900, ch1 500
  90 01 b4 00              # s3: ch0 400, ch1 180
  d7 c2 eb ca              # CRC-32/ISO-HDLC of bytes 0-51 = 0xCAEBC2D7
`);
const DATA_FRAME: StreamDataFrame = {
  kind: 'data',
  seq: 17,
  seqReset: false,
  deviceType: 'ecg',
  sampleFormat: 'int16le',
  unit: 'mV',
  rateHz: 360,
  gain: 200,
  firstSample: 1440,
  clockReset: false,
  leadOff: 0,
  saturated: 0,
  channels: [Int16Array.of(100, 250, 900, 400), Int16Array.of(-20, 60, 500, 180)],
};

const IDENTIFY_VECTOR = hex(`
  a5 4d 01 03              # sync, version 1, IDENTIFY
  00 00                    # body length 0
  00 00                    # seq 0
  01 00                    # flags SEQ_RESET, reserved
  fa 53                    # header CRC 0x53FA
  68 68 9e f4              # CRC-32 0xF49E6868
`);

const INFO_VECTOR = hex(`
  a5 4d 01 02              # sync, version 1, INFO
  20 00                    # body length 32
  00 00                    # seq 0
  01 00                    # flags SEQ_RESET, reserved
  93 de                    # header CRC 0xDE93
  01 02 00 00              # ECG, 2 channels, reserved
  03 00 00 00              # capabilities: lead-off | saturation
  04 41 63 6d 65           # vendor "Acme"
  05 45 43 47 2d 32        # model "ECG-2"
  05 31 2e 34 2e 30        # firmware "1.4.0"
  06 41 31 42 32 43 33     # serial "A1B2C3"
  da fb 53 0c              # CRC-32 0x0C53FBDA
`);
const INFO_FRAME: StreamInfoFrame = {
  kind: 'info',
  seq: 0,
  seqReset: true,
  deviceType: 'ecg',
  channelCount: 2,
  capabilities: 3,
  vendor: 'Acme',
  model: 'ECG-2',
  firmware: '1.4.0',
  serial: 'A1B2C3',
};

const VENDOR_VECTOR = hex(`
  a5 4d 01 c1              # sync, version 1, vendor type 0xC1
  03 00 12 00 00 00        # body length 3, seq 18, flags 0, reserved
  12 4e                    # header CRC 0x4E12
  01 02 03                 # vendor body
  0c 07 00 12              # CRC-32 0x1200070C
`);

describe('CRCs (README §4.3)', () => {
  const ascii = new TextEncoder().encode('123456789');

  it('have the catalogue check values', () => {
    expect(streamHeaderCrc(ascii)).toBe(0x29b1);
    expect(streamFrameCrc(ascii)).toBe(0xcbf43926);
  });

  it('frame CRC equals zlib crc32 (CRC-32/ISO-HDLC) on random input and sub-ranges', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length ? a % bytes.length : 0;
        const end = start + (bytes.length - start ? b % (bytes.length - start + 1) : 0);
        expect(streamFrameCrc(bytes, start, end)).toBe(zlibCrc32(bytes.subarray(start, end)));
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('test vectors', () => {
  it('README §9.1 DATA example is this annotated vector, byte for byte', () => {
    expect(readmeVector('data')).toEqual(DATA_VECTOR);
    expect(DATA_VECTOR.length).toBe(56);
    expect(encodeFrame(DATA_FRAME)).toEqual(DATA_VECTOR);
    expect(decodeFrame(DATA_VECTOR)).toEqual(DATA_FRAME);
  });

  it('IDENTIFY, INFO and vendor vectors match the README and round-trip', () => {
    expect(readmeVector('identify')).toEqual(IDENTIFY_VECTOR);
    expect(readmeVector('info')).toEqual(INFO_VECTOR);
    expect(readmeVector('vendor')).toEqual(VENDOR_VECTOR);
    expect(encodeFrame({ kind: 'identify', seq: 0, seqReset: true })).toEqual(IDENTIFY_VECTOR);
    expect(decodeFrame(IDENTIFY_VECTOR)).toEqual({ kind: 'identify', seq: 0, seqReset: true });
    expect(encodeFrame(INFO_FRAME)).toEqual(INFO_VECTOR);
    expect(decodeFrame(INFO_VECTOR)).toEqual(INFO_FRAME);
    const vendor = { kind: 'vendor', seq: 18, seqReset: false, type: 0xc1, body: Uint8Array.of(1, 2, 3) } as const;
    expect(encodeFrame(vendor)).toEqual(VENDOR_VECTOR);
    expect(decodeFrame(VENDOR_VECTOR)).toEqual(vendor);
  });

  it('flags, masks, vendor device types and float32 fields land where the README says', () => {
    const frame: StreamDataFrame = {
      ...DATA_FRAME,
      seq: 0xfffe,
      seqReset: true,
      clockReset: true,
      deviceType: 0x9a,
      unit: 'uV',
      rateHz: 976.5625,
      gain: 0.5,
      firstSample: 0xfffffff0,
      leadOff: 0b10,
      saturated: 0b01,
      channels: [Int16Array.of(-32768), Int16Array.of(32767)],
    };
    const bytes = encodeFrame(frame);
    expect(bytes.subarray(6, 10)).toEqual(hex('fe ff 03 00')); // seq 0xFFFE, SEQ_RESET | CLOCK_RESET
    expect(bytes.subarray(12, 16)).toEqual(hex('9a 02 01 02')); // vendor device type, 2 ch, int16, uV
    expect(bytes.subarray(16, 24)).toEqual(hex('00 24 74 44  00 00 00 3f')); // 976.5625, 0.5
    expect(bytes.subarray(24, 36)).toEqual(hex('f0 ff ff ff  02 00 00 00  01 00 00 00'));
    expect(bytes.subarray(36, 40)).toEqual(hex('00 80 ff 7f')); // -32768, 32767
    expect(decodeFrame(bytes)).toEqual(frame);
  });
});

describe('round trip', () => {
  it('decodeFrame(encodeFrame(f)) equals f for random frames of every kind', () => {
    fc.assert(
      fc.property(streamFrameArb(), (frame) => {
        const bytes = encodeFrame(frame);
        expect(decodeFrame(bytes)).toEqual(frame);
        expect(readFrameHeader(bytes)?.bodyLength).toBe(bytes.length - 16);
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('decode errors', () => {
  it('are StreamFrameError, a DecodeError of codec medge-stream, with a reason', () => {
    const error = (() => {
      try {
        decodeFrame(DATA_VECTOR.subarray(0, 40));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(DecodeError);
    expect(error).toMatchObject({ code: 'decode', codec: STREAM_CODEC, reason: 'length' });
  });

  const cases: Array<[string, () => Uint8Array, StreamFrameErrorReason]> = [
    ['too short', () => DATA_VECTOR.subarray(0, 15), 'length'],
    ['no sync', () => Uint8Array.of(0x00, ...DATA_VECTOR.subarray(1)), 'sync'],
    ['header byte flipped', () => DATA_VECTOR.map((b, i) => (i === 6 ? b ^ 0x01 : b)), 'header-crc'],
    ['trailing byte', () => Uint8Array.of(...DATA_VECTOR, 0), 'length'],
    ['cut short', () => DATA_VECTOR.subarray(0, 55), 'length'],
    ['length field over 4096', () => reseal(Uint8Array.of(...DATA_VECTOR.subarray(0, 4), 0x01, 0x10, ...DATA_VECTOR.subarray(6))), 'length'],
    ['sample byte flipped', () => DATA_VECTOR.map((b, i) => (i === 40 ? b ^ 0x80 : b)), 'crc'],
    ['CRC byte flipped', () => DATA_VECTOR.map((b, i) => (i === 55 ? b ^ 0x01 : b)), 'crc'],
    ['version 2', () => reseal(DATA_VECTOR.map((b, i) => (i === 2 ? 2 : b))), 'version'],
    ['reserved type 0x04', () => reseal(DATA_VECTOR.map((b, i) => (i === 3 ? 0x04 : b))), 'type'],
    ['reserved type 0x00', () => reseal(DATA_VECTOR.map((b, i) => (i === 3 ? 0x00 : b))), 'type'],
    ['int24 packed format', () => reseal(DATA_VECTOR.map((b, i) => (i === 14 ? 0x02 : b))), 'format'],
    ['int24 in int32 format', () => reseal(DATA_VECTOR.map((b, i) => (i === 14 ? 0x03 : b))), 'format'],
    ['unknown format', () => reseal(DATA_VECTOR.map((b, i) => (i === 14 ? 0x7f : b))), 'format'],
    ['reserved device type', () => reseal(DATA_VECTOR.map((b, i) => (i === 12 ? 0x03 : b))), 'value'],
    ['zero channels', () => reseal(DATA_VECTOR.map((b, i) => (i === 13 ? 0 : b))), 'value'],
    ['33 channels', () => reseal(DATA_VECTOR.map((b, i) => (i === 13 ? 33 : b))), 'value'],
    ['3 channels do not divide 16 sample bytes', () => reseal(DATA_VECTOR.map((b, i) => (i === 13 ? 3 : b))), 'length'],
    ['reserved unit', () => reseal(DATA_VECTOR.map((b, i) => (i === 15 ? 0x05 : b))), 'value'],
    ['rate 0', () => reseal(DATA_VECTOR.map((b, i) => (i >= 16 && i < 20 ? 0 : b))), 'value'],
    ['gain NaN', () => reseal(DATA_VECTOR.map((b, i) => [0, 0, 0xc0, 0x7f][i - 20] ?? b)), 'value'],
    ['lead-off bit beyond channel count', () => reseal(DATA_VECTOR.map((b, i) => (i === 28 ? 0b100 : b))), 'value'],
    ['data body shorter than its sub-header', () => reseal(hex('a5 4d 01 01 04 00 00 00 00 00 00 00  01 02 01 01  00 00 00 00')), 'length'],
    ['info string runs past the body', () => reseal(INFO_VECTOR.map((b, i) => (i === 37 ? 0x07 : b))), 'length'],
    ['info string not UTF-8', () => reseal(INFO_VECTOR.map((b, i) => (i === 21 ? 0xff : b))), 'value'],
  ];
  it.each(cases)('%s -> %s', (_name, make, reason) => {
    expect(reasonOf(make())).toBe(reason);
  });

  it('every single-bit error in the example frame is detected', () => {
    for (let bit = 0; bit < DATA_VECTOR.length * 8; bit++) {
      const bad = DATA_VECTOR.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(['sync', 'header-crc', 'crc']).toContain(reasonOf(bad));
    }
  });

  it('every 1-, 2- and 3-bit error in the header (96 bits) fails the header CRC or the sync', () => {
    const flip = (bits: number[]): Uint8Array => {
      const bad = DATA_VECTOR.slice();
      for (const bit of bits) bad[bit >> 3]! ^= 1 << (bit & 7);
      return bad;
    };
    for (let a = 0; a < 96; a++) {
      expect(readFrameHeader(flip([a]))).toBeUndefined();
      for (let b = a + 1; b < 96; b++) {
        expect(readFrameHeader(flip([a, b]))).toBeUndefined();
        for (let c = b + 1; c < 96; c += 7) expect(readFrameHeader(flip([a, b, c]))).toBeUndefined();
      }
    }
  });

  it('IDENTIFY ignores body bytes and INFO ignores bytes after the serial (later revisions append fields)', () => {
    const identify = encodeFrame({ kind: 'vendor', seq: 3, seqReset: false, type: 0x80, body: Uint8Array.of(9, 9) });
    identify[3] = 0x03;
    expect(decodeFrame(reseal(identify))).toEqual({ kind: 'identify', seq: 3, seqReset: false });
    const info = INFO_VECTOR.slice(0, 44);
    const longer = Uint8Array.of(...info.subarray(0, 4), 0x22, 0x00, ...info.subarray(6), 0xaa, 0xbb, 0, 0, 0, 0);
    expect(decodeFrame(reseal(longer))).toEqual(INFO_FRAME);
  });
});

describe('encode errors', () => {
  const bad: Array<[string, StreamFrame]> = [
    ['seq over 65535', { ...DATA_FRAME, seq: 65536 }],
    ['no channels', { ...DATA_FRAME, channels: [] }],
    ['ragged channels', { ...DATA_FRAME, channels: [Int16Array.of(1, 2), Int16Array.of(1)] }],
    ['unknown unit', { ...DATA_FRAME, unit: 'mmHg' as 'mV' }],
    ['zero gain', { ...DATA_FRAME, gain: 0 }],
    ['infinite rate', { ...DATA_FRAME, rateHz: Infinity }],
    ['mask beyond channels', { ...DATA_FRAME, leadOff: 0b100 }],
    ['reserved device type code', { ...DATA_FRAME, deviceType: 0x10 }],
    ['body over 4096', { ...DATA_FRAME, channels: [new Int16Array(1100), new Int16Array(1100)] }],
    ['vendor type in the medge range', { kind: 'vendor', seq: 0, seqReset: false, type: 0x10, body: new Uint8Array(0) }],
    ['info string over 255 bytes', { ...INFO_FRAME, serial: 'x'.repeat(256) }],
  ];
  it.each(bad)('%s throws RangeError', (_name, frame) => {
    expect(() => encodeFrame(frame)).toThrow(RangeError);
  });

  it('the largest body is accepted', () => {
    const perChannel = (STREAM_MAX_BODY_BYTES - 24) / 4;
    const frame = { ...DATA_FRAME, channels: [new Int16Array(perChannel), new Int16Array(perChannel)] };
    expect(encodeFrame(frame).length).toBe(4112);
  });
});

describe('frameToChunks', () => {
  it('gives one StreamChunk per channel with the frame rate, gain, unit and first sample', () => {
    const chunks = frameToChunks(DATA_FRAME, 'ecg');
    expect(chunks).toHaveLength(2);
    expect(chunks[0]).toEqual({
      sensor: 'ecg',
      channel: 0,
      firstSample: 1440,
      t0: 4000,
      rateHz: 360,
      unit: 'mV',
      gain: 200,
      samples: Int16Array.of(100, 250, 900, 400),
    });
    expect(chunks[1]).toMatchObject({ channel: 1, samples: Int16Array.of(-20, 60, 500, 180) });
  });

  it('takes an unwrapped first sample and a board-clock t0 from the driver', () => {
    const [chunk] = frameToChunks(DATA_FRAME, 'ecg', { firstSample: 2 ** 32 + 1440, t0: 1_700_000_000_000 });
    expect(chunk).toMatchObject({ firstSample: 2 ** 32 + 1440, t0: 1_700_000_000_000 });
  });

  it('carries the lead-off and saturation bits of each channel when the INFO capabilities say the masks are meaningful', () => {
    // Lead-off mask 02 00 00 00 (channel 1), saturation mask 01 00 00 00 (channel 0), through the wire.
    const frame = decodeFrame(encodeFrame({ ...DATA_FRAME, leadOff: 0b10, saturated: 0b01 })) as StreamDataFrame;
    const both = STREAM_CAPABILITIES.leadOff | STREAM_CAPABILITIES.saturation;
    const [c0, c1] = frameToChunks(frame, 'ecg', { capabilities: both });
    expect(c0).toMatchObject({ channel: 0, saturated: true });
    expect(c0).not.toHaveProperty('leadOff');
    expect(c1).toMatchObject({ channel: 1, leadOff: true });
    expect(c1).not.toHaveProperty('saturated');
    // One capability without the other: only that mask is read.
    const [d0, d1] = frameToChunks(frame, 'ecg', { capabilities: STREAM_CAPABILITIES.leadOff });
    expect(d0).not.toHaveProperty('saturated');
    expect(d1).toMatchObject({ leadOff: true });
  });

  it('ignores the masks of a device that has not announced them (no INFO yet, or capabilities without the bits)', () => {
    const frame = { ...DATA_FRAME, leadOff: 0b11, saturated: 0b11 };
    for (const options of [{}, { capabilities: STREAM_CAPABILITIES.vendorFrames | STREAM_CAPABILITIES.int24 }]) {
      for (const chunk of frameToChunks(frame, 'ecg', options)) {
        expect(chunk).not.toHaveProperty('leadOff');
        expect(chunk).not.toHaveProperty('saturated');
      }
    }
  });

  it('gives no chunks for a status-only frame of a device that has not announced its masks', () => {
    const status = { ...DATA_FRAME, leadOff: 0b01, channels: [new Int16Array(0), new Int16Array(0)] };
    expect(frameToChunks(status, 'ecg')).toEqual([]);
    expect(frameToChunks(status, 'ecg', { capabilities: STREAM_CAPABILITIES.vendorFrames })).toEqual([]);
  });

  it('gives one zero-sample chunk per channel, with its flags, for a status-only frame (§5.1) once the masks are announced', () => {
    // Body length 24: the DATA sub-header and no samples; lead-off mask 01 00 00 00 (channel 0 off), through the wire.
    const bytes = encodeFrame({ ...DATA_FRAME, leadOff: 0b01, saturated: 0b01, channels: [new Int16Array(0), new Int16Array(0)] });
    expect(bytes.length).toBe(STREAM_HEADER_BYTES + STREAM_DATA_HEADER_BYTES + STREAM_TRAILER_BYTES);
    const frame = decodeFrame(bytes) as StreamDataFrame;
    const [c0, c1, ...more] = frameToChunks(frame, 'ecg', { capabilities: STREAM_CAPABILITIES.leadOff, firstSample: 1445, t0: 5000 });
    expect(more).toEqual([]);
    expect(c0).toMatchObject({ channel: 0, firstSample: 1445, t0: 5000, leadOff: true, samples: new Int16Array(0) });
    expect(c0).not.toHaveProperty('saturated');
    expect(c1).toMatchObject({ channel: 1, firstSample: 1445, samples: new Int16Array(0) });
    expect(c1).not.toHaveProperty('leadOff');
  });
});
