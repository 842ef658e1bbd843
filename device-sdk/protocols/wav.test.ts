import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../errors.js';
import { hexToBytes } from './ble/bytes.js';
import { decodeWav, encodeWav, toInt16, type WavBits, WavError } from './wav.js';
import { SHARED_DATA, missingNote, sharedDataRuns } from '../../test/helpers/shared-data.js';

const hex = (s: string) => hexToBytes(s.replace(/\s+|\/\/[^\n]*/g, ''));

const HEADER_16_MONO_8K = `
  52494646 2a000000 57415645      // "RIFF", size 42 (= 50 - 8), "WAVE"
  666d7420 10000000               // "fmt ", 16 bytes
  0100 0100 401f0000 803e0000     // PCM, 1 channel, 8000 Hz, 16000 bytes/s
  0200 1000                       // block align 2, 16 bits
  64617461 06000000               // "data", 6 bytes
  0000 ff7f 0080                  // 0, 32767, -32768
`;

describe('decodeWav', () => {
  it('reads a canonical 16-bit mono file (annotated vector)', () => {
    const wav = decodeWav(hex(HEADER_16_MONO_8K));
    expect(wav.sampleRate).toBe(8000);
    expect(wav.bitsPerSample).toBe(16);
    expect(wav.frames).toBe(3);
    expect(wav.truncated).toBe(false);
    expect(Array.from(wav.channels[0] ?? [])).toEqual([0, 32767 / 32768, -1]);
  });

  it('reads 8-bit samples as unsigned around 128', () => {
    const bytes = hex(`
      52494646 28000000 57415645 666d7420 10000000
      0100 0100 a00f0000 a00f0000 0100 0800       // PCM mono 4000 Hz, block 1, 8 bits
      64617461 03000000 80 ff 00 00               // 128 (0), 255 (+127), 0 (-128), pad byte
    `);
    const wav = decodeWav(bytes);
    expect(Array.from(wav.channels[0] ?? [])).toEqual([0, 127 / 128, -1]);
  });

  it('reads 24-bit stereo, de-interleaving channels and sign-extending', () => {
    const bytes = hex(`
      52494646 30000000 57415645 666d7420 10000000
      0100 0200 44ac0000 98092800 0600 1800       // PCM stereo 44100 Hz, block 6, 24 bits
      64617461 0c000000
      000040 0000c0                               // L +0.5, R -0.5
      ffff7f 010000                               // L max, R 1 step
    `);
    const wav = decodeWav(bytes);
    expect(wav.channels).toHaveLength(2);
    expect(Array.from(wav.channels[0] ?? [])).toEqual([0.5, 8388607 / 8388608]);
    expect(Array.from(wav.channels[1] ?? [])).toEqual([-0.5, 1 / 8388608]);
  });

  it('skips unknown chunks with odd sizes (pad byte) before fmt and data', () => {
    const bytes = hex(`
      52494646 34000000 57415645
      4c495354 03000000 616263 00                 // "LIST", 3 bytes "abc", pad
      666d7420 10000000 0100 0100 401f0000 803e0000 0200 1000
      64617461 02000000 3412                      // 0x1234
    `);
    expect(Array.from(decodeWav(bytes).channels[0] ?? [])).toEqual([0x1234 / 32768]);
  });

  it('reads WAVE_FORMAT_EXTENSIBLE with the PCM sub-format and refuses float', () => {
    const ext = (guidFirst: string) =>
      hex(`
      52494646 3e000000 57415645
      666d7420 28000000 feff 0100 401f0000 803e0000 0200 1000   // extensible, mono 8 kHz, 16 bits
      1600 1000 04000000                                       // cbSize 22, valid bits 16, mask FC
      ${guidFirst}000000 00001000 800000aa 00389b71              // sub-format GUID
      64617461 02000000 0100
    `);
    expect(Array.from(decodeWav(ext('01')).channels[0] ?? [])).toEqual([1 / 32768]);
    expect(() => decodeWav(ext('03'))).toThrow(expect.objectContaining({ reason: 'format' }) as Error);
  });

  it('reads a data chunk cut short up to the last whole frame and says so', () => {
    const bytes = hex(HEADER_16_MONO_8K).slice(0, -1);
    const wav = decodeWav(bytes);
    expect(wav.truncated).toBe(true);
    expect(wav.frames).toBe(2);
  });

  it('refuses what it cannot read with a typed reason', () => {
    const cases: [string, string][] = [
      ['riff', '52494646 00000000 41564920'],
      ['format', '52494646 24000000 57415645 666d7420 10000000 0300 0100 401f0000 00fa0000 0400 2000 64617461 00000000'],
      ['bits', '52494646 24000000 57415645 666d7420 10000000 0100 0100 401f0000 00000000 0200 0c00 64617461 00000000'],
      ['channels', '52494646 24000000 57415645 666d7420 10000000 0100 0000 401f0000 00000000 0000 1000 64617461 00000000'],
      ['fmt', '52494646 0c000000 57415645 64617461 00000000'],
      ['no-data', '52494646 1c000000 57415645 666d7420 10000000 0100 0100 401f0000 803e0000 0200 1000'],
      ['fmt', '52494646 1c000000 57415645 666d7420 10000000 0100 0100 401f0000 803e0000 0400 1000'],
    ];
    for (const [reason, bytes] of cases) {
      expect(() => decodeWav(hex(bytes)), reason).toThrow(WavError);
      try {
        decodeWav(hex(bytes));
      } catch (error) {
        expect((error as WavError).reason).toBe(reason);
      }
    }
  });

  it('round-trips every bit depth and channel count (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<WavBits>(8, 16, 24, 32),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 192_000 }),
        fc.integer({ min: 0, max: 40 }),
        fc.infiniteStream(fc.integer()),
        (bits, n, rate, frames, ints) => {
          const scale = 2 ** (bits - 1);
          const it = ints[Symbol.iterator]();
          const channels = Array.from({ length: n }, () => Float32Array.from({ length: frames }, () => (((it.next().value as number) % scale) | 0) / scale));
          // 32-bit values are not exact in float32: compare through the encoder's rounding instead.
          const wav = decodeWav(encodeWav(channels, { sampleRate: rate, bitsPerSample: bits }));
          expect(wav.sampleRate).toBe(rate);
          expect(wav.frames).toBe(frames);
          if (bits < 32) expect(wav.channels).toEqual(channels);
          else for (let c = 0; c < n; c++) for (let i = 0; i < frames; i++) expect(wav.channels[c]?.[i]).toBeCloseTo(channels[c]?.[i] ?? NaN, 6);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('throws nothing but DecodeError for random and mutated bytes (fuzz)', () => {
    const good = hex(HEADER_16_MONO_8K);
    const tryDecode = (bytes: Uint8Array) => {
      try {
        decodeWav(bytes);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), tryDecode), { seed: 42, numRuns: 3000 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: good.length }), (i, v, cut) => {
        const m = good.slice(0, Math.max(cut, i + 1));
        m[i] = v;
        tryDecode(m);
      }),
      { seed: 42, numRuns: 3000 },
    );
  });
});

describe('toInt16', () => {
  it('scales by 32768 with rounding and clipping', () => {
    expect(Array.from(toInt16(Float32Array.from([0, 0.5, -1, 1, -1.5, 1 / 65536])))).toEqual([0, 16384, -32768, 32767, -32768, 1]);
  });
});

const PASCAL = join(SHARED_DATA, 'pcg', 'pascal-b');
describe.skipIf(!sharedDataRuns(PASCAL))(`PASCAL recordings${missingNote(PASCAL)}`, () => {
  it('decodes every recording as 4 kHz mono 16-bit', () => {
    const files = readdirSync(PASCAL).filter((f) => f.endsWith('.wav'));
    expect(files.length).toBeGreaterThan(100);
    for (const f of files) {
      const wav = decodeWav(readFileSync(join(PASCAL, f)));
      expect([wav.sampleRate, wav.bitsPerSample, wav.channels.length], f).toEqual([4000, 16, 1]);
      expect(wav.frames, f).toBeGreaterThan(4000 * 0.5);
    }
  });
});
