import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import {
  decodeFrame,
  encodeFrame,
  readFrameHeader,
  STREAM_MAX_FRAME_BYTES,
  STREAM_UNITS,
  StreamFrameError,
  streamFrameCrc,
  streamHeaderCrc,
  type StreamDataFrame,
  type StreamFrame,
  type StreamUnit,
  type StreamVendorFrame,
} from './stream-frame.js';
import { StreamFramer, type StreamFramerEvent } from './stream-framer.js';

// ---- helpers ---------------------------------------------------------------------------------

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes the events account for, in event order. */
function accounted(events: readonly StreamFramerEvent[]): Uint8Array {
  return concat(events.flatMap((e) => (e.type === 'frame' ? [e.raw] : e.type === 'garbage' ? [e.bytes] : [])));
}

/** Bound on what the framer may hold between calls: a garbage run under one maximum frame plus one candidate. */
const BUFFER_BOUND = 2 * STREAM_MAX_FRAME_BYTES;

/**
 * Pushes `stream` in chunks whose sizes cycle through `sizes` (0 = an empty push), checking the
 * accounting invariant and the memory bound after every push, then flushes.
 */
function feed(stream: Uint8Array, sizes: readonly number[], framer = new StreamFramer()): StreamFramerEvent[] {
  const events: StreamFramerEvent[] = [];
  let at = 0;
  let k = 0;
  let pushed = 0;
  let returned = 0;
  while (at < stream.length) {
    const size = Math.min(sizes[k++ % sizes.length] ?? 1, stream.length - at);
    const out = framer.push(stream.subarray(at, at + size));
    events.push(...out);
    at += size;
    pushed += size;
    returned += accounted(out).length;
    if (framer.bufferedBytes > BUFFER_BOUND) expect(framer.bufferedBytes).toBeLessThanOrEqual(BUFFER_BOUND);
    if (returned + framer.bufferedBytes !== pushed) expect(returned + framer.bufferedBytes).toBe(pushed);
  }
  events.push(...framer.flush());
  expect(framer.bufferedBytes).toBe(0);
  expect(accounted(events)).toEqual(stream);
  return events;
}

const frames = (events: readonly StreamFramerEvent[]): StreamFrame[] => events.flatMap((e) => (e.type === 'frame' ? [e.frame] : []));
const raws = (events: readonly StreamFramerEvent[]): Uint8Array[] => events.flatMap((e) => (e.type === 'frame' ? [e.raw] : []));
const garbage = (events: readonly StreamFramerEvent[]) => events.flatMap((e) => (e.type === 'garbage' ? [e] : []));
const gaps = (events: readonly StreamFramerEvent[]) => events.flatMap((e) => (e.type === 'gap' ? [e] : []));

/**
 * The gap events implied by the frames seen (and by intact frames that came out as garbage), in
 * place: checks that every gap event sits right before the frame that revealed it, with the right
 * numbers, and that no other gap event exists.
 */
function expectGapsConsistent(events: readonly StreamFramerEvent[]): void {
  let expected: number | undefined;
  const want: unknown[] = [];
  for (const e of events) {
    if (e.type === 'gap') continue;
    const header = e.type === 'frame' ? { seq: e.frame.seq, seqReset: e.frame.seqReset } : intactHeader(e.bytes);
    if (!header) continue;
    const seqReset = header.seqReset;
    if (expected !== undefined && !seqReset && header.seq !== expected) {
      want.push({ type: 'gap', expectedSeq: expected, gotSeq: header.seq, missingFrames: (header.seq - expected) & 0xffff });
    }
    want.push(e.type === 'frame' ? e.raw : e.bytes);
    expected = (header.seq + 1) & 0xffff;
  }
  const got = events.flatMap((e): unknown[] => (e.type === 'gap' ? [e] : e.type === 'frame' ? [e.raw] : intactHeader(e.bytes) ? [e.bytes] : []));
  expect(got).toEqual(want);
}

/** The seq of garbage that is one intact frame (valid header and CRC-32) this decoder could not read. */
function intactHeader(bytes: Uint8Array): { seq: number; seqReset: boolean } | undefined {
  const header = readFrameHeader(bytes);
  if (!header || bytes.length !== 16 + header.bodyLength) return undefined;
  const crc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 4, true);
  if (streamFrameCrc(bytes, 0, bytes.length - 4) !== crc) return undefined;
  return { seq: header.seq, seqReset: (header.flags & 1) !== 0 };
}

/** A 12-byte header with a valid header CRC and no body: a false start the framer must get past. */
function fakeHeader(bodyLength: number, type: number, seq: number): Uint8Array {
  const h = Uint8Array.of(0xa5, 0x4d, 0x01, type, bodyLength & 0xff, bodyLength >>> 8, seq & 0xff, seq >>> 8, 0, 0, 0, 0);
  const crc = streamHeaderCrc(h, 0, 10);
  h[10] = crc & 0xff;
  h[11] = crc >>> 8;
  return h;
}

/** Recomputes both CRCs after an edit. */
function reseal(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const h = streamHeaderCrc(out, 0, 10);
  out[10] = h & 0xff;
  out[11] = h >>> 8;
  new DataView(out.buffer).setUint32(out.length - 4, streamFrameCrc(out, 0, out.length - 4), true);
  return out;
}

function ecg(seq: number, firstSample = seq * 4, extra: Partial<StreamDataFrame> = {}): StreamDataFrame {
  return {
    kind: 'data',
    seq,
    seqReset: false,
    deviceType: 'ecg',
    sampleFormat: 'int16le',
    unit: 'mV',
    rateHz: 360,
    gain: 200,
    firstSample,
    clockReset: false,
    leadOff: 0,
    saturated: 0,
    channels: [Int16Array.of(1, 2, 3, 4), Int16Array.of(-1, -2, -3, -4)],
    ...extra,
  };
}

// ---- arbitraries -----------------------------------------------------------------------------

/** Frames a device sends (data, info, vendor), small enough to keep runs fast; seq set later. */
const deviceFrameArb: fc.Arbitrary<StreamFrame> = (() => {
  const deviceType = fc.oneof(fc.constantFrom('ecg' as const, 'pcg' as const), fc.integer({ min: 0x80, max: 0xff }));
  const data = fc.integer({ min: 1, max: 8 }).chain((ch) =>
    fc.record({
      kind: fc.constant('data' as const),
      seq: fc.constant(0),
      seqReset: fc.constant(false),
      deviceType,
      sampleFormat: fc.constant('int16le' as const),
      unit: fc.constantFrom(...(Object.keys(STREAM_UNITS) as StreamUnit[])),
      rateHz: fc.constantFrom(250, 360, 500, 1000, 4000, 976.5625),
      gain: fc.constantFrom(1, 200, 1000, 32768, 0.25),
      firstSample: fc.integer({ min: 0, max: 0xffffffff }),
      clockReset: fc.boolean(),
      leadOff: fc.integer({ min: 0, max: 2 ** ch - 1 }),
      saturated: fc.integer({ min: 0, max: 2 ** ch - 1 }),
      channels: fc.integer({ min: 0, max: 24 }).chain((n) => fc.array(fc.int16Array({ minLength: n, maxLength: n }), { minLength: ch, maxLength: ch })),
    }),
  );
  const text = fc.string({ maxLength: 12, unit: 'grapheme-ascii' });
  const info = fc.record({
    kind: fc.constant('info' as const),
    seq: fc.constant(0),
    seqReset: fc.constant(false),
    deviceType,
    channelCount: fc.integer({ min: 0, max: 32 }),
    capabilities: fc.integer({ min: 0, max: 15 }),
    vendor: text,
    model: text,
    firmware: text,
    serial: text,
  });
  const vendor = fc.record({
    kind: fc.constant('vendor' as const),
    seq: fc.constant(0),
    seqReset: fc.constant(false),
    type: fc.integer({ min: 0x80, max: 0xff }),
    body: fc.uint8Array({ maxLength: 48 }),
  });
  return fc.oneof({ weight: 6, arbitrary: data }, { weight: 1, arbitrary: info }, { weight: 2, arbitrary: vendor });
})();

/** A device's frame sequence: consecutive seqs from a start near the wrap, so 65535 -> 0 is exercised. */
const streamArb = (max: number) =>
  fc
    .tuple(fc.array(deviceFrameArb, { minLength: 1, maxLength: max }), fc.oneof(fc.integer({ min: 65500, max: 65535 }), fc.integer({ min: 0, max: 65535 })))
    .map(([list, start]) => list.map((f, i) => ({ ...f, seq: (start + i) & 0xffff })));

/** Bytes likely to look like frame starts: random bytes with extra sync bytes. */
const noiseArb = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 255 }) }, fc.constant(0xa5), fc.constant(0x4d)), { minLength: 1, maxLength: 40 })
  .map((a) => Uint8Array.from(a));

const chunkSizesArb = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 20 }).filter((s) => s.some((n) => n > 0)),
  fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 20 }),
  fc.constant([1 << 20]),
);

type Corruption =
  | { kind: 'none' }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'noise-before'; bytes: Uint8Array }
  | { kind: 'fake-header-before'; length: number; type: number; seq: number }
  | { kind: 'foreign-vendor-before'; seq: number; body: Uint8Array };

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: 'none' as const }) },
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: noiseArb }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant('noise-before' as const), bytes: noiseArb }),
  fc.record({ kind: fc.constant('fake-header-before' as const), length: fc.integer({ min: 0, max: 4096 }), type: fc.integer({ min: 0, max: 255 }), seq: fc.nat({ max: 0xffff }) }),
  fc.record({ kind: fc.constant('foreign-vendor-before' as const), seq: fc.nat({ max: 0xffff }), body: fc.uint8Array({ maxLength: 20 }) }),
);

// ---- tests -----------------------------------------------------------------------------------

describe('StreamFramer: split and merged chunks', () => {
  it('yields exactly the frames, in order, whatever the chunking (no garbage, no gaps)', () => {
    fc.assert(
      fc.property(streamArb(30), chunkSizesArb, (list, sizes) => {
        const encoded = list.map(encodeFrame);
        const events = feed(concat(encoded), sizes);
        expect(frames(events)).toEqual(list);
        expect(raws(events)).toEqual(encoded);
        expect(garbage(events)).toEqual([]);
        expect(gaps(events)).toEqual([]);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('returns a frame in the push that completes it, not later', () => {
    const framer = new StreamFramer();
    const bytes = encodeFrame(ecg(5));
    for (let i = 0; i < bytes.length - 1; i++) expect(framer.push(bytes.subarray(i, i + 1))).toEqual([]);
    expect(framer.push(bytes.subarray(bytes.length - 1))).toEqual([{ type: 'frame', frame: ecg(5), raw: bytes }]);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('copies what it returns: a caller reusing its chunk buffer does not change past events', () => {
    const framer = new StreamFramer();
    const chunk = encodeFrame(ecg(1));
    const [event] = framer.push(chunk);
    chunk.fill(0);
    expect(event).toMatchObject({ type: 'frame', raw: encodeFrame(ecg(1)) });
  });
});

describe('StreamFramer: corruption and resynchronisation', () => {
  it('recovers every frame whose own bytes are intact, accounts for every byte and reports the gaps', () => {
    fc.assert(
      fc.property(streamArb(25), fc.array(corruptionArb, { minLength: 25, maxLength: 25 }), chunkSizesArb, (list, corruptions, sizes) => {
        const parts: Uint8Array[] = [];
        const mustRecover: Uint8Array[] = [];
        const recoveredIndex = new Map<string, number>();
        let foreign = 0;
        list.forEach((frame, i) => {
          const bytes = encodeFrame(frame);
          const c = corruptions[i] ?? { kind: 'none' };
          let intact = true;
          switch (c.kind) {
            case 'none':
              parts.push(bytes);
              break;
            case 'flip': {
              const bad = bytes.slice();
              bad[c.at % bad.length]! ^= 1 << c.bit;
              parts.push(bad);
              intact = false;
              break;
            }
            case 'insert': {
              const at = 1 + (c.at % (bytes.length - 1));
              parts.push(bytes.subarray(0, at), c.bytes, bytes.subarray(at));
              intact = false;
              break;
            }
            case 'delete': {
              const at = c.at % bytes.length;
              parts.push(bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + c.count)));
              intact = false;
              break;
            }
            case 'truncate':
              parts.push(bytes.subarray(0, 1 + (c.keep % (bytes.length - 1))));
              intact = false;
              break;
            case 'noise-before':
              parts.push(c.bytes, bytes);
              break;
            case 'fake-header-before':
              parts.push(fakeHeader(c.length, c.type, c.seq), bytes);
              break;
            case 'foreign-vendor-before': {
              const injected = encodeFrame({ kind: 'vendor', seq: c.seq, seqReset: false, type: 0xee, body: c.body });
              parts.push(injected, bytes);
              mustRecover.push(injected);
              foreign++;
              break;
            }
          }
          if (intact) {
            mustRecover.push(bytes);
            recoveredIndex.set(Buffer.from(bytes).toString('hex'), i);
          }
        });
        const stream = concat(parts);
        const events = feed(stream, sizes);

        // Exactly the intact frames (the device's and the injected vendor frames), in order.
        expect(raws(events)).toEqual(mustRecover);
        for (const e of events) if (e.type === 'frame') expect(decodeFrame(e.raw)).toEqual(e.frame);
        for (const g of garbage(events)) {
          expect(g.bytes.length).toBeGreaterThan(0);
          expect(g.error).toBeInstanceOf(StreamFrameError);
        }
        expectGapsConsistent(events);

        // Without foreign frames, a gap before a frame counts exactly the device frames lost since the previous one.
        if (foreign === 0) {
          let previous: number | undefined;
          let pendingGap: number | undefined;
          for (const e of events) {
            if (e.type === 'gap') pendingGap = e.missingFrames;
            if (e.type !== 'frame') continue;
            const index = recoveredIndex.get(Buffer.from(e.raw).toString('hex'));
            expect(index).toBeDefined();
            if (previous !== undefined && index !== undefined) expect(pendingGap ?? 0).toBe(index - previous - 1);
            previous = index;
            pendingGap = undefined;
          }
        }
      }),
      { seed: 42, numRuns: 400 },
    );
  });

  it('a device that starts mid-stream: the partial frame is garbage (sync), the rest are frames, no gap', () => {
    const list = [ecg(10), ecg(11), ecg(12)];
    const stream = concat(list.map(encodeFrame)).subarray(7);
    const events = feed(stream, [5]);
    expect(frames(events)).toEqual(list.slice(1));
    expect(garbage(events).map((g) => [g.bytes.length, g.error.reason])).toEqual([[encodeFrame(ecg(10)).length - 7, 'sync']]);
    expect(gaps(events)).toEqual([]);
  });

  it('an oversize length field triggers resync at once instead of buffering', () => {
    const framer = new StreamFramer();
    const bogus = fakeHeader(60_000, 0x01, 3);
    const good = encodeFrame(ecg(4));
    const events = framer.push(concat([bogus, good]));
    expect(events.map((e) => e.type)).toEqual(['garbage', 'frame']);
    expect(events[0]).toMatchObject({ type: 'garbage', bytes: bogus, error: { reason: 'length', codec: 'medge-stream' } });
    expect(framer.bufferedBytes).toBe(0);
  });

  it('a maxBodyBytes below the protocol maximum rejects longer frames as length errors', () => {
    const framer = new StreamFramer({ maxBodyBytes: 32 });
    const big = encodeFrame(ecg(1)); // body 40
    const small = encodeFrame({ kind: 'identify', seq: 2, seqReset: false });
    const events = feed(concat([big, small]), [1000], framer);
    // The 56 rejected bytes come out in pieces of at most this framer's maximum frame (48 bytes).
    expect(garbage(events).map((g) => [g.bytes.length, g.error.reason])).toEqual([
      [48, 'length'],
      [8, 'length'],
    ]);
    expect(frames(events)).toEqual([{ kind: 'identify', seq: 2, seqReset: false }]);
    expect(() => new StreamFramer({ maxBodyBytes: 5000 })).toThrow(ConfigError);
  });

  it('a frame cut short by a device reset: the frames after it are recovered once its claimed length has arrived', () => {
    const cut = encodeFrame(ecg(7)).subarray(0, 30);
    const after = [ecg(0, 0, { seqReset: true, clockReset: true }), ecg(1, 4)];
    const events = feed(concat([cut, ...after.map(encodeFrame)]), [3]);
    expect(frames(events)).toEqual(after);
    expect(garbage(events).map((g) => [g.bytes.length, g.error.reason])).toEqual([[30, 'crc']]);
    expect(gaps(events)).toEqual([]); // SEQ_RESET
  });

  it('frames that start inside an unfinished false start come out in the push that completes them, not after its claimed length', () => {
    // QA: a cut vendor frame announcing 4000 bytes held 19 valid 360 Hz ECG frames back (until a power cut lost them).
    const framer = new StreamFramer();
    const hidden = [ecg(1), ecg(2)];
    const first = framer.push(concat([fakeHeader(4000, 0x81, 9), encodeFrame(hidden[0] as StreamDataFrame)]));
    expect(first.map((e) => (e.type === 'garbage' ? e.error.reason : e.type))).toEqual(['truncated', 'frame']);
    expect(garbage(first)[0]?.bytes.length).toBe(12);
    expect(garbage(first)[0]?.error.message).toMatch(/cut after 12 bytes: a complete frame starts inside the 4016 bytes it announced/);
    const second = framer.push(encodeFrame(hidden[1] as StreamDataFrame));
    expect(frames([...first, ...second])).toEqual(hidden);
    expect(framer.bufferedBytes).toBe(0);
    expect(framer.flush()).toEqual([]);
  });

  it('flush() returns the unfinished false start as truncated when nothing complete follows it', () => {
    const framer = new StreamFramer();
    const tail = encodeFrame(ecg(1)).subarray(0, 20);
    expect(framer.push(concat([fakeHeader(4000, 0x01, 9), tail]))).toEqual([]);
    const flushed = framer.flush();
    expect(flushed.map((e) => (e.type === 'garbage' ? e.error.reason : e.type))).toEqual(['truncated', 'truncated']);
    expect(flushed.reduce((n, e) => n + (e.type === 'garbage' ? e.bytes.length : 0), 0)).toBe(32);
  });

  it('flush() returns a trailing partial frame as truncated garbage', () => {
    const framer = new StreamFramer();
    const bytes = encodeFrame(ecg(1));
    expect(framer.push(bytes.subarray(0, 20))).toEqual([]);
    expect(framer.bufferedBytes).toBe(20);
    const flushed = framer.flush();
    expect(flushed).toHaveLength(1);
    expect(flushed[0]).toMatchObject({ type: 'garbage', bytes: bytes.subarray(0, 20), error: { reason: 'truncated' } });
  });

  it('a large push that ends inside a frame: the frame completes in the next push', () => {
    const noise = new Uint8Array(200_000).map((_, i) => (i * 131) & 0x7f);
    const frame = encodeFrame(ecg(3));
    const stream = concat([noise, frame.subarray(0, 30), frame.subarray(30), noise.subarray(0, 10), frame]);
    const events = feed(stream, [noise.length + 30, 26, 10, 56]);
    expect(raws(events)).toEqual([frame, frame]);
    expect(garbage(events).every((g) => g.error.reason === 'sync' && g.bytes.length <= STREAM_MAX_FRAME_BYTES)).toBe(true);
    expect(gaps(events)).toEqual([{ type: 'gap', expectedSeq: 4, gotSeq: 3, missingFrames: 65535 }]);
  });

  it('holds at most about two maximum frames, whatever arrives', () => {
    const framer = new StreamFramer();
    const syncs = new Uint8Array(1 << 20).map((_, i) => (i % 2 ? 0x4d : 0xa5));
    let out = 0;
    for (const e of framer.push(syncs)) if (e.type === 'garbage') out += e.bytes.length;
    expect(framer.bufferedBytes).toBeLessThanOrEqual(BUFFER_BOUND);
    for (let i = 0; i < 20_000; i++) framer.push(Uint8Array.of(0xa5));
    expect(framer.bufferedBytes).toBeLessThanOrEqual(BUFFER_BOUND);
    expect(out).toBeGreaterThan((1 << 20) - BUFFER_BOUND);
  });
});

describe('StreamFramer: sequence gaps', () => {
  it('reports missing frames across the 65535 -> 0 wrap', () => {
    const list = [ecg(65533), ecg(65534), ecg(65535), ecg(0), ecg(2), ecg(65534)];
    const events = feed(concat(list.map(encodeFrame)), [64]);
    expect(gaps(events)).toEqual([
      { type: 'gap', expectedSeq: 1, gotSeq: 2, missingFrames: 1 },
      { type: 'gap', expectedSeq: 3, gotSeq: 65534, missingFrames: 65531 },
    ]);
    expect(events.map((e) => e.type)).toEqual(['frame', 'frame', 'frame', 'frame', 'gap', 'frame', 'gap', 'frame']);
  });

  it('reports no gap at the first frame or at a SEQ_RESET frame', () => {
    const events = feed(concat([ecg(500), ecg(501), ecg(0, 0, { seqReset: true })].map(encodeFrame)), [100]);
    expect(gaps(events)).toEqual([]);
  });

  it('counts intact frames it cannot decode (version 2, reserved type) as received, and quarantines them whole', () => {
    const v2 = reseal(encodeFrame(ecg(2)).map((b, i) => (i === 2 ? 2 : b)));
    const reserved = reseal(encodeFrame(ecg(3)).map((b, i) => (i === 3 ? 0x05 : b)));
    const events = feed(concat([encodeFrame(ecg(1)), v2, reserved, encodeFrame(ecg(4))]), [7]);
    expect(gaps(events)).toEqual([]);
    expect(garbage(events).map((g) => [g.bytes, g.error.reason])).toEqual([
      [v2, 'version'],
      [reserved, 'type'],
    ]);
    expect(frames(events).map((f) => f.seq)).toEqual([1, 4]);
  });

  it('passes vendor frames through as frames: not garbage, not gaps', () => {
    const vendor: StreamVendorFrame = { kind: 'vendor', seq: 2, seqReset: false, type: 0x90, body: Uint8Array.of(0xa5, 0x4d, 0x01) };
    const events = feed(concat([ecg(1), vendor, ecg(3)].map(encodeFrame)), [9]);
    expect(events.map((e) => (e.type === 'frame' ? e.frame.kind : e.type))).toEqual(['data', 'vendor', 'data']);
  });

  it('keeps sequence tracking across flush(): frames missed while a port was closed are a gap', () => {
    const framer = new StreamFramer();
    framer.push(encodeFrame(ecg(1)));
    framer.flush();
    expect(gaps(framer.push(encodeFrame(ecg(9))))).toEqual([{ type: 'gap', expectedSeq: 2, gotSeq: 9, missingFrames: 7 }]);
  });
});

describe('StreamFramer: fuzz', () => {
  /** Pieces of plausible and implausible streams. */
  const pieceArb = fc.oneof(
    noiseArb,
    fc.uint8Array({ minLength: 1, maxLength: 200 }),
    deviceFrameArb.map(encodeFrame),
    fc.tuple(deviceFrameArb, fc.nat(), fc.nat()).map(([f, a, b]) => {
      const bytes = encodeFrame(f);
      const start = a % bytes.length;
      return bytes.subarray(start, start + 1 + (b % (bytes.length - start)));
    }),
    fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 0xffff })).map(([len, type, seq]) => fakeHeader(len, type, seq)),
    fc.constant(Uint8Array.of(0xa5)),
    fc.constant(Uint8Array.of(0xa5, 0x4d)),
  );

  it('3000 random byte streams: never throws, accounts for every byte, events are well-formed', () => {
    fc.assert(
      fc.property(fc.array(pieceArb, { maxLength: 24 }), chunkSizesArb, (pieces, sizes) => {
        const events = feed(concat(pieces), sizes);
        for (const e of events) {
          if (e.type === 'frame') expect(decodeFrame(e.raw)).toEqual(e.frame);
          else if (e.type === 'garbage') {
            expect(e.bytes.length).toBeGreaterThan(0);
            expect(e.error).toBeInstanceOf(StreamFrameError);
            expect(e.bytes.length).toBeLessThanOrEqual(STREAM_MAX_FRAME_BYTES);
          } else {
            expect(e.missingFrames).toBe((e.gotSeq - e.expectedSeq) & 0xffff);
            expect(e.missingFrames).toBeGreaterThan(0);
          }
        }
        expectGapsConsistent(events);
      }),
      { seed: 42, numRuns: 3000 },
    );
  });
});
