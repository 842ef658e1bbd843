/**
 * RIFF/WAVE codec: hand-written vectors (annotated hex), round trips through the writer for every
 * sample format, stereo mix-down, unknown chunks, and fuzzing: any bytes decode or throw DecodeError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../device-sdk/errors.js';
import { encodeWav, readWav, readWavInfo, WAV_SAMPLE_FORMATS, type WavSampleFormat } from '../../device-sdk/protocols/wav.js';

/** Hex bytes; `#` starts a comment to the end of the line. */
const hex = (s: string) =>
  Uint8Array.from(
    s
      .split('\n')
      .map((line) => line.split('#')[0])
      .join('')
      .replace(/\s+/g, '')
      .match(/../g) ?? [],
    (h) => parseInt(h, 16),
  );

// A 16-bit mono 4000 Hz file with a LIST chunk before data, as the PASCAL recordings have.
const PCM16_WITH_LIST = hex(`
  52494646 36000000 57415645            # RIFF, size 54, WAVE
  666d7420 10000000                     # "fmt ", 16 bytes
    0100 0100 a00f0000 401f0000 0200 1000  # PCM, 1 ch, 4000 Hz, 8000 B/s, align 2, 16 bits
  4c495354 05000000 494e464f 41 00      # "LIST", 5 bytes (odd: one pad byte follows)
  64617461 08000000                     # "data", 8 bytes
    0000 0040 00c0 ff7f                 # 0, 16384, -16384, 32767
`);

describe('readWav vectors', () => {
  it('reads 16-bit PCM after an odd-sized unknown chunk and its pad byte', () => {
    const w = readWav(PCM16_WITH_LIST);
    expect(w).toMatchObject({ rateHz: 4000, channels: 1, bitsPerSample: 16, format: 's16' });
    expect(Array.from(w.samples)).toEqual([0, 0.5, -0.5, 32767 / 32768]);
  });

  it('reads 8-bit unsigned (128 is zero)', () => {
    // fmt: PCM, 1 ch, 8000 Hz, align 1, 8 bits; data 80 ff 00 c0
    const w = readWav(hex('52494646 28000000 57415645 666d7420 10000000 0100 0100 401f0000 401f0000 0100 0800 64617461 04000000 80ff00c0'));
    expect(w.format).toBe('u8');
    expect(Array.from(w.samples)).toEqual([0, 127 / 128, -1, 0.5]);
  });

  it('reads 24-bit little-endian two-complement samples', () => {
    // data: 000040 (4194304 = 0.5), 0000c0 (-0.5), ffff7f (max)
    const w = readWav(hex('52494646 2d000000 57415645 666d7420 10000000 0100 0100 44ac0000 cc040200 0300 1800 64617461 09000000 000040 0000c0 ffff7f 00'));
    expect(w).toMatchObject({ rateHz: 44100, bitsPerSample: 24, format: 's24' });
    expect(Array.from(w.samples)).toEqual([0.5, -0.5, 8388607 / 8388608]);
  });

  it('mixes stereo down to mono by averaging the channels', () => {
    // 2 ch 16-bit: frame (16384, -16384) -> 0, frame (32767, 32767) -> 32767/32768
    const w = readWav(hex('52494646 2c000000 57415645 666d7420 10000000 0100 0200 a00f0000 803e0000 0400 1000 64617461 08000000 0040 00c0 ff7f ff7f'));
    expect(w.channels).toBe(2);
    expect(Array.from(w.samples)).toEqual([0, 32767 / 32768]);
  });

  it('reads a data chunk cut short by the end of the file up to the last whole frame', () => {
    const w = readWav(hex('52494646 ffffffff 57415645 666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000 64617461 ffffffff 0040 0040 00'));
    expect(Array.from(w.samples)).toEqual([0.5, 0.5]);
  });

  it('flags a data chunk declared larger than the file (cut short) and reads it to the last whole frame', () => {
    // data declares 8 bytes, 5 follow: 2 whole frames
    const bytes = hex('52494646 2c000000 57415645 666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000 64617461 08000000 0040 00c0 00');
    const w = readWav(bytes);
    expect(Array.from(w.samples)).toEqual([0.5, -0.5]);
    expect(w.truncated).toEqual({ reason: 'cut-short', declaredBytes: 8, readBytes: 4 });
    expect(readWavInfo(bytes.subarray(0, 44), bytes.length).truncated).toEqual(w.truncated);
    // A whole file carries no flag.
    expect(readWav(PCM16_WITH_LIST).truncated).toBeUndefined();
  });

  it.each([
    ['0', '00000000'],
    ['0xFFFFFFFF', 'ffffffff'],
  ])('reads a data chunk of size %s with audio following (a streaming recorder) to the end of the file, flagged size-unset', (_name, size) => {
    const w = readWav(hex(`52494646 2c000000 57415645 666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000 64617461 ${size} 0040 00c0 0040 00c0`));
    expect(Array.from(w.samples)).toEqual([0.5, -0.5, 0.5, -0.5]);
    expect(w.truncated).toEqual({ reason: 'size-unset', declaredBytes: parseInt(size, 16), readBytes: 8 });
  });

  it('keeps an empty data chunk empty when nothing or another chunk follows it', () => {
    const fmt = '666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000';
    const empty = readWav(hex(`52494646 24000000 57415645 ${fmt} 64617461 00000000`));
    expect(empty.samples.length).toBe(0);
    expect(empty.truncated).toBeUndefined();
    const thenList = readWav(hex(`52494646 30000000 57415645 ${fmt} 64617461 00000000 4c495354 04000000 494e464f`));
    expect(thenList.samples.length).toBe(0);
    expect(thenList.truncated).toBeUndefined();
  });

  it('finds the data chunk after an odd-sized chunk written without its pad byte', () => {
    const w = readWav(hex(`
      52494646 33000000 57415645
      666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
      6a756e6b 03000000 616263            # "junk", 3 bytes, no pad byte
      64617461 04000000 0040 00c0         # "data" right after
    `));
    expect(Array.from(w.samples)).toEqual([0.5, -0.5]);
  });

  it('finds the data chunk after a chunk without its pad byte when the padded position looks printable too', () => {
    // Without the pad, the padded position reads "ata" and the data size's low byte: 0x26 ('&') is
    // printable, so "ata&" passed for a chunk id and the walk skipped the audio ("no data chunk").
    const samples = Array.from({ length: 0x26 / 2 }, (_, i) => (i % 2 === 0 ? '0040' : '00c0')).join(' ');
    const w = readWav(hex(`
      52494646 00000000 57415645
      666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
      4c495354 05000000 494e464f 41       # "LIST", 5 bytes, no pad byte
      64617461 26000000 ${samples}        # "data", 38 bytes (19 samples)
    `));
    expect(w.samples.length).toBe(19);
    expect(w.samples[0]).toBe(0.5);
    expect(w.samples[1]).toBe(-0.5);
    // With its pad byte (0) the same file reads the same, and so does a known id after a printable pad.
    expect(Array.from(readWav(hex(`
      52494646 00000000 57415645
      666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
      4c495354 05000000 494e464f 41 00
      64617461 26000000 ${samples}
    `)).samples)).toEqual(Array.from(w.samples));
    expect(Array.from(readWav(hex(`
      52494646 00000000 57415645
      666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
      4c495354 05000000 494e464f 41 20    # pad byte written as a space
      64617461 26000000 ${samples}
    `)).samples)).toEqual(Array.from(w.samples));
  });

  it('names a chunk that runs past the end of the file, or a chunk header cut short, before the data chunk', () => {
    const fmt = '666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000';
    expect(() => readWav(hex(`52494646 00000000 57415645 ${fmt} 4c495354 f0ffffff 494e464f 64617461 02000000 0040`))).toThrow(
      'wav: chunk "LIST" at byte 36 declares 4294967280 bytes, past the end of the 58-byte file, before any data chunk: the file is damaged or cut short',
    );
    expect(() => readWav(hex(`52494646 00000000 57415645 ${fmt} 64617461`))).toThrow(
      'wav: the file ends at byte 40, inside the header of the chunk at byte 36, before any data chunk: it is cut short',
    );
  });

  it('takes the loudest channel alone when the channels cancel out in the mean (R = -L)', () => {
    const left = Float32Array.from({ length: 400 }, (_, i) => 0.5 * Math.sin(i / 5));
    const right = left.map((v) => -v);
    const w = readWav(encodeWav([left, right], { rateHz: 4000, format: 'f32' }));
    expect(w.channel).toBe(0);
    expect(Array.from(w.samples)).toEqual(Array.from(left));
    // Quieter antiphase on the left: the right is the loudest.
    expect(readWav(encodeWav([right.map((v) => v / 2), left], { rateHz: 4000, format: 'f32' })).channel).toBe(1);
    // Correlated or one-sided channels keep the mean.
    expect(readWav(encodeWav([left, left], { rateHz: 4000 })).channel).toBeUndefined();
    expect(readWav(encodeWav([left, new Float32Array(400)], { rateHz: 4000 })).channel).toBeUndefined();
  });

  it('counts NaN and infinite float samples (read as 0) instead of hiding them', () => {
    // f32 mono: 0.5, NaN, +Inf, -0.5
    const w = readWav(hex('52494646 34000000 57415645 666d7420 10000000 0300 0100 a00f0000 803e0000 0400 2000 64617461 10000000 0000003f 0000c07f 0000807f 000000bf'));
    expect(Array.from(w.samples)).toEqual([0.5, 0, 0, -0.5]);
    expect(w.invalidSamples).toBe(2);
    expect(readWav(PCM16_WITH_LIST).invalidSamples).toBeUndefined();
  });

  it.each([
    ['not RIFF', '4f676753 24000000 57415645', 'not a RIFF file'],
    ['RF64 without ds64', '52463634 ffffffff 57415645 666d7420 10000000 0100 0100 401f0000 401f0000 0100 0800 64617461 ffffffff', 'without its ds64 chunk'],
    ['not WAVE', '52494646 24000000 41564920', 'not WAVE'],
    ['no fmt', '52494646 0c000000 57415645 64617461 00000000', 'data chunk before the fmt chunk'],
    ['compressed', '52494646 24000000 57415645 666d7420 10000000 0200 0100 401f0000 401f0000 0100 0400 64617461 00000000', 'compressed WAV'],
    ['12-bit', '52494646 24000000 57415645 666d7420 10000000 0100 0100 401f0000 401f0000 0200 0c00 64617461 00000000', '12 bits per sample'],
    ['bad align', '52494646 24000000 57415645 666d7420 10000000 0100 0200 401f0000 401f0000 0200 1000 64617461 00000000', 'block align'],
    ['no data', '52494646 1c000000 57415645 666d7420 10000000 0100 0100 401f0000 401f0000 0200 1000', 'no data chunk'],
    ['short', '5249', 'too short'],
  ])('throws DecodeError for %s', (_name, bytes, message) => {
    expect(() => readWav(hex(bytes))).toThrow(DecodeError);
    expect(() => readWav(hex(bytes))).toThrow(message);
  });
});

// The same 16-bit mono 4000 Hz samples (0, 16384, -16384, 32767) in the three other containers.
const RIFX_PCM16 = hex(`
  52494658 0000002c 57415645            # RIFX, size 44 (big-endian), WAVE
  666d7420 00000010                     # "fmt ", 16 bytes
    0001 0001 00000fa0 00001f40 0002 0010  # PCM, 1 ch, 4000 Hz, 8000 B/s, align 2, 16 bits, all big-endian
  64617461 00000008                     # "data", 8 bytes
    0000 4000 c000 7fff                 # big-endian samples
`);
const RF64_PCM16 = hex(`
  52463634 ffffffff 57415645            # RF64, size -1 (in ds64), WAVE
  64733634 1c000000                     # "ds64", 28 bytes
    48000000 00000000                   # RIFF size 72 (low, high)
    08000000 00000000                   # data size 8
    04000000 00000000                   # sample count 4
    00000000                            # table: no entries
  666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
  64617461 ffffffff                     # "data", size -1: ds64 gives 8
    0000 0040 00c0 ff7f
`);
// BW64 (ITU-R BS.2088) with a chunk whose size is in the ds64 table.
const BW64_TABLE = hex(`
  42573634 ffffffff 57415645            # BW64, WAVE
  64733634 28000000                     # "ds64", 40 bytes: 28 + one table entry
    58000000 00000000 08000000 00000000 04000000 00000000
    01000000                            # one entry
    62657874 04000000 00000000          # "bext" is 4 bytes
  62657874 ffffffff 01020304            # "bext", size -1 (4 in ds64)
  666d7420 10000000 0100 0100 a00f0000 401f0000 0200 1000
  64617461 08000000 0000 0040 00c0 ff7f # a data chunk may give its size itself too
`);

/** `file` (as encodeWav writes it: fmt then data, no other chunk) rewritten as RIFX: every number and sample big-endian. */
function toRifx(file: Uint8Array, bytesPerSample: number, guid: 'data1-big-endian' | 'as-riff' = 'data1-big-endian'): Uint8Array {
  const out = Uint8Array.from(file);
  const v = new DataView(out.buffer);
  const swap = (at: number, n: number) => out.subarray(at, at + n).reverse();
  out.set([0x52, 0x49, 0x46, 0x58], 0);
  swap(4, 4);
  const fmtSize = v.getUint32(16, true);
  swap(16, 4);
  [[20, 2], [22, 2], [24, 4], [28, 4], [32, 2], [34, 2]].forEach(([at, n]) => swap(at as number, n as number));
  // The sub-format GUID: its first field (Data1, 4 bytes) big-endian, or left as RIFF stores it (ffmpeg's reading).
  if (fmtSize === 40) [[36, 2], [38, 2], [40, 4], ...(guid === 'data1-big-endian' ? [[44, 4]] : [])].forEach(([at, n]) => swap(at as number, n as number));
  const data = 20 + fmtSize;
  const size = v.getUint32(data + 4, true);
  swap(data + 4, 4);
  for (let at = data + 8; at + bytesPerSample <= data + 8 + size; at += bytesPerSample) swap(at, bytesPerSample);
  return out;
}

/** `file` (as encodeWav writes it) rewritten as RF64 (EBU Tech 3306): sizes -1, a ds64 chunk first. */
function toRf64(file: Uint8Array): Uint8Array {
  const ds64 = new Uint8Array(8 + 28);
  const out = new Uint8Array(file.length + ds64.length);
  out.set(file.subarray(0, 12), 0);
  out.set(file.subarray(12), 12 + ds64.length);
  const v = new DataView(out.buffer);
  out.set([0x52, 0x46, 0x36, 0x34], 0);
  v.setUint32(4, 0xffffffff, true);
  out.set([0x64, 0x73, 0x36, 0x34], 12);
  v.setUint32(16, 28, true);
  v.setUint32(20, out.length - 8, true);
  const data = 12 + ds64.length + 8 + new DataView(file.buffer, file.byteOffset).getUint32(16, true);
  v.setUint32(28, v.getUint32(data + 4, true), true);
  v.setUint32(data + 4, 0xffffffff, true);
  return out;
}

describe('RIFX, RF64 and BW64', () => {
  it('reads the same samples from big-endian RIFX, from RF64 with its sizes in ds64, and from BW64 with a ds64 table', () => {
    const plain = readWav(PCM16_WITH_LIST);
    for (const [bytes, container] of [[RIFX_PCM16, 'RIFX'], [RF64_PCM16, 'RF64'], [BW64_TABLE, 'BW64']] as const) {
      const w = readWav(bytes);
      expect(w).toMatchObject({ rateHz: 4000, channels: 1, bitsPerSample: 16, format: 's16', container });
      expect(w.truncated).toBeUndefined();
      expect(Array.from(w.samples)).toEqual(Array.from(plain.samples));
      expect(readWavInfo(bytes)).toMatchObject({ frames: 4, container });
    }
    expect(plain.container).toBeUndefined();
  });

  it('reads every sample format of the writer as RIFX and as RF64, and flags an RF64 data size beyond the file as cut short', () => {
    const x = Float32Array.of(0, 0.25, -0.5, 0.999, -1, 0.123456);
    for (const format of WAV_SAMPLE_FORMATS) {
      for (const extensible of [false, true]) {
        const riff = encodeWav([x, x.map((v) => v / 2)], { rateHz: 8000, format, extensible });
        const expected = Array.from(readWav(riff).samples);
        const bytesPerSample = format === 'u8' ? 1 : format === 's16' ? 2 : format === 's24' ? 3 : 4;
        expect(Array.from(readWav(toRifx(riff, bytesPerSample)).samples)).toEqual(expected);
        expect(Array.from(readWav(toRifx(riff, bytesPerSample, 'as-riff')).samples)).toEqual(expected);
        expect(Array.from(readWav(toRf64(riff)).samples)).toEqual(expected);
      }
    }
    const cut = toRf64(encodeWav(x, { rateHz: 8000 }));
    new DataView(cut.buffer).setUint32(28, 1000, true); // ds64 data size: 1000 bytes, 12 present
    expect(readWav(cut).truncated).toEqual({ reason: 'cut-short', declaredBytes: 1000, readBytes: 12 });
  });

  it('throws DecodeError for a chunk of size -1 that ds64 does not list, a ds64 table past its chunk, and a size beyond 2^53', () => {
    const unlisted = Uint8Array.from(BW64_TABLE);
    unlisted[48] = 0x00; // the table names "\0ext", not "bext"
    expect(() => readWav(unlisted)).toThrow('ds64 does not list it');
    const longTable = Uint8Array.from(BW64_TABLE);
    new DataView(longTable.buffer).setUint32(44, 3, true);
    expect(() => readWav(longTable)).toThrow('ds64 table declares 3 entries');
    const huge = Uint8Array.from(RF64_PCM16);
    new DataView(huge.buffer).setUint32(32, 0x00400000, true); // data size high word: 2^54
    expect(() => readWav(huge)).toThrow(DecodeError);
    expect(() => readWav(huge)).toThrow('beyond what this reader can address');
    // QA re-check: a file cut inside ds64 says so (it said the chunk was too small).
    expect(() => readWav(RF64_PCM16.subarray(0, 30))).toThrow('the file ends inside its 28-byte ds64 chunk');
  });
});

describe('encodeWav / readWav round trip', () => {
  const STEP: Record<WavSampleFormat, number> = { u8: 1 / 128, s16: 1 / 32768, s24: 1 / 8388608, s32: 1 / 2147483648, f32: 0 };
  it.each(WAV_SAMPLE_FORMATS.map((f) => [f]))('%s mono and stereo, plain and extensible, within half a step', (format) => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -1, max: Math.fround(0.999), noNaN: true }), { maxLength: 64 }),
        fc.integer({ min: 1, max: 192_000 }),
        fc.boolean(),
        (values, rateHz, extensible) => {
          // Inputs below the top code (the writer clips there, as every PCM writer does).
          const x = Float32Array.from(values, (v) => Math.min(v, 1 - STEP[format]));
          const w = readWav(encodeWav(x, { rateHz, format, extensible, extraChunks: [['LIST', new Uint8Array(3)]] }));
          expect(w.rateHz).toBe(rateHz);
          expect(w.format).toBe(format);
          expect(w.samples.length).toBe(x.length);
          for (let i = 0; i < x.length; i++) expect(Math.abs((w.samples[i] as number) - (x[i] as number))).toBeLessThanOrEqual(STEP[format] / 2 + 1e-7);
          const stereo = readWav(encodeWav([x, x], { rateHz, format }));
          expect(stereo.channels).toBe(2);
          for (let i = 0; i < x.length; i++) expect(stereo.samples[i]).toBeCloseTo(w.samples[i] as number, 6);
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('readWav fuzz', () => {
  const check = (bytes: Uint8Array) => {
    try {
      const w = readWav(bytes);
      expect(w.samples.every((v) => v >= -1 && v <= 1)).toBe(true);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw new Error(`threw ${String(error)}, not a DecodeError`, { cause: error });
    }
  };
  it('random bytes decode or throw DecodeError, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), check), { seed: 42, numRuns: 3000 });
  });
  it('mutated valid files (byte changed, truncated, extended) decode or throw DecodeError', () => {
    const valid = [PCM16_WITH_LIST, RIFX_PCM16, RF64_PCM16, BW64_TABLE, encodeWav(Float32Array.of(0.1, -0.2, 0.3), { rateHz: 4000, format: 's24', extensible: true }), encodeWav([Float32Array.of(0.5), Float32Array.of(-0.5)], { rateHz: 8000, format: 'f32' })];
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: -8, max: 8 }), (base, at, value, resize) => {
        const b = Uint8Array.from(base);
        b[at % b.length] = value;
        const n = Math.max(0, b.length + resize);
        const out = new Uint8Array(n);
        out.set(b.subarray(0, n));
        check(out);
      }),
      { seed: 42, numRuns: 3000 },
    );
  });
});

describe('readWavInfo (header only)', () => {
  it('gives what readWav decodes, without the samples, from the whole file or its first bytes and the file size', () => {
    const files = [PCM16_WITH_LIST, encodeWav([Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)), new Float32Array(1000)], { rateHz: 44100, format: 's24', extensible: true })];
    for (const bytes of files) {
      const { samples, ...audio } = readWav(bytes);
      const expected = { ...audio, frames: samples.length, durationS: samples.length / audio.rateHz };
      expect(readWavInfo(bytes)).toEqual(expected);
      // 80 bytes reach the data chunk's header of both; the frame count comes from the file size.
      expect(readWavInfo(bytes.subarray(0, 80), bytes.length)).toEqual(expected);
    }
    // A data chunk cut short by the end of the file: the frames present, as readWav reads them.
    const cut = encodeWav(new Float32Array(100), { rateHz: 4000 }).subarray(0, 44 + 51);
    expect(readWavInfo(cut.subarray(0, 44), cut.length).frames).toBe(readWav(cut).samples.length);
  });

  it('throws DecodeError when the first bytes do not reach the data chunk, or the header is bad', () => {
    expect(() => readWavInfo(PCM16_WITH_LIST.subarray(0, 40), PCM16_WITH_LIST.length)).toThrow(/no data chunk in the first 40 bytes/);
    expect(() => readWavInfo(Uint8Array.of(1, 2, 3), 1000)).toThrow(DecodeError);
    expect(() => readWavInfo(new TextEncoder().encode('RIFF....WAVEjunk'), 16)).toThrow(DecodeError);
  });

  it('random bytes and truncated heads give info or DecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.nat({ max: 1 << 20 }), (bytes, extra) => {
        try {
          const info = readWavInfo(bytes, bytes.length + extra);
          expect(info.frames).toBeGreaterThanOrEqual(0);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw new Error(`threw ${String(error)}, not a DecodeError`, { cause: error });
        }
      }),
      { seed: 42, numRuns: 2000 },
    );
  });
});
