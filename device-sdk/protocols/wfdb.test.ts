import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../errors.js';
import {
  annotationMnemonic,
  checksum,
  decodeAnnotations,
  decodeSignals,
  encodeAnnotations,
  encodeSignals,
  formatHeader,
  isQrsCode,
  parseHeader,
  toPhysical,
  WFDB_ANNOTATION_CODEC,
  WFDB_ANNOTATION_CODES,
  WFDB_FORMATS,
  WFDB_FS_RANGE,
  WFDB_HEADER_CODEC,
  WFDB_SIGNAL_CODEC,
  type WfdbAnnotation,
  type WfdbAnnotationInput,
  type WfdbHeader,
  type WfdbSignalFormat,
  type WfdbSignalSpec,
} from './wfdb.js';

/** `'e3 33 f3'` -> bytes; spaces are for reading only. */
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (text: string): string => Buffer.from(text, 'ascii').toString('hex');

function decodeError(codec: string, run: () => unknown): DecodeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).codec).toBe(codec);
    return error as DecodeError;
  }
  throw new Error(`expected a DecodeError (${codec})`);
}

function signal(fileName: string, format: number, extra: Partial<WfdbSignalSpec> = {}): WfdbSignalSpec {
  return { fileName, format, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 200, baseline: 0, adcResolution: 12, adcZero: 0, initialValue: 0, blockSize: 0, ...extra };
}

function recordOf(signals: WfdbSignalSpec[], nSamples = 0): WfdbHeader {
  return { recordName: 'r', fs: 360, nSamples, signals, comments: [] };
}

/** What decodeAnnotations gives back for an encoded input. */
function decoded(input: WfdbAnnotationInput, rate?: number): WfdbAnnotation {
  const a: WfdbAnnotation = { sample: input.sample, code: input.code, mnemonic: annotationMnemonic(input.code), subtype: input.subtype ?? 0, chan: input.chan ?? 0, num: input.num ?? 0 };
  if (input.aux !== undefined && input.aux !== '') a.aux = input.aux;
  if (rate !== undefined) a.time = input.sample / rate;
  return a;
}

describe('WFDB header', () => {
  it('parses a MIT-BIH header (mitdb/101.hea)', () => {
    const h = parseHeader('101 2 360 650000\n101.dat 212 200 11 1024 955 29832 0 MLII\n101.dat 212 200 11 1024 992 19589 0 V1\n# 75 F 1011 654 x1\n# Diapres\n');
    expect(h).toEqual({
      recordName: '101',
      fs: 360,
      nSamples: 650000,
      signals: [
        { fileName: '101.dat', format: 212, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 200, baseline: 1024, adcResolution: 11, adcZero: 1024, initialValue: 955, checksum: 29832, blockSize: 0, description: 'MLII' },
        { fileName: '101.dat', format: 212, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 200, baseline: 1024, adcResolution: 11, adcZero: 1024, initialValue: 992, checksum: 19589, blockSize: 0, description: 'V1' },
      ],
      comments: ['75 F 1011 654 x1', 'Diapres'],
    });
  });

  it('parses CRLF lines and an explicit gain(baseline) (nstdb/118e24.hea)', () => {
    const h = parseHeader('118e24 2 360 650000\r\n118e24.dat 212 200(1024) 11 0 -167 -13451 0 MLII\r\n118e24.dat 212 200(1024) 11 0 -103 32392 0 V1\r\n# Created by `nst\' from records 118 and em (SNR = 24 dB)\r\n');
    expect(h.signals[0]).toEqual({ fileName: '118e24.dat', format: 212, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 200, baseline: 1024, adcResolution: 11, adcZero: 0, initialValue: -167, checksum: -13451, blockSize: 0, description: 'MLII' });
    expect(h.signals[1]?.checksum).toBe(32392);
    expect(h.comments).toEqual(["Created by `nst' from records 118 and em (SNR = 24 dB)"]);
  });

  it('drops a leading byte-order mark (a header saved by a Windows editor), which was read as part of the record name', () => {
    const text = '101 2 360 650000\r\n101.dat 212 200 11 1024 955 29832 0 MLII\r\n101.dat 212 200 11 1024 992 19589 0 V1\r\n';
    expect(parseHeader(`\ufeff${text}`)).toEqual(parseHeader(text));
    expect(parseHeader(`\ufeff${text}`).recordName).toBe('101');
  });

  it('parses units, samples per frame, skew, offset, counter frequency, base time and date, and defaults', () => {
    const h = parseHeader(
      [
        '# recorded at the clinic',
        'rec-1 3 500/1000(-5) 12000 08:30:15.250 25/12/2020',
        '',
        'rec-1.dat 16x4:2+512 100.5(-3)/mmHg 16 0 -3 1234 0 ABP radial  ',
        'rec-1.dat\t16 1e3/uV',
        'rec-2.dat 212',
      ].join('\r\n'),
    );
    expect(h).toMatchObject({ recordName: 'rec-1', fs: 500, counterFrequency: 1000, baseCounter: -5, nSamples: 12000, baseTime: '08:30:15.250', baseDate: '25/12/2020', comments: ['recorded at the clinic'] });
    expect(h.signals).toEqual([
      { fileName: 'rec-1.dat', format: 16, samplesPerFrame: 4, skew: 2, byteOffset: 512, adcGain: 100.5, baseline: -3, units: 'mmHg', adcResolution: 16, adcZero: 0, initialValue: -3, checksum: 1234, blockSize: 0, description: 'ABP radial' },
      { fileName: 'rec-1.dat', format: 16, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 1000, baseline: 0, units: 'uV', adcResolution: 16, adcZero: 0, initialValue: 0, blockSize: 0 },
      // gain missing: uncalibrated (0); resolution from the format; zero, baseline, initial value 0
      { fileName: 'rec-2.dat', format: 212, samplesPerFrame: 1, skew: 0, byteOffset: 0, adcGain: 0, baseline: 0, adcResolution: 12, adcZero: 0, initialValue: 0, blockSize: 0 },
    ]);
    expect(parseHeader('nosig 0')).toEqual({ recordName: 'nosig', fs: 250, nSamples: 0, signals: [], comments: [] });
  });

  it.each([
    ['empty text', '', 'no record line'],
    ['only comments', '# a\n# b\n', 'no record line'],
    ['a multi-segment record', 'multi/3 2 360 1000\nseg1 500\n', 'multi-segment'],
    ['fewer signal lines than announced', '100 2 360 10\n100.dat 212 200 11 1024 0 0 0 MLII\n', 'announces 2 signal(s) but 1'],
    ['an extra line', '100 1 360 10\n100.dat 16\n100.dat 16\n', 'unexpected line'],
    ['an unknown format', '100 1 360\n100.dat 999 200\n', 'valid formats: 0, 8, 16'],
    ['a non-numeric gain', '100 1 360\n100.dat 212 abc\n', 'gain'],
    ['zero samples per frame', '100 1 360\n100.dat 212x0\n', 'samples per frame'],
    ['a negative sample count', '100 1 360 -5\n', 'sample count'],
    ['a zero frequency', '100 1 0\n100.dat 16\n', 'must be positive'],
    // A mistyped rate once made the ECG pipeline size a 2.5-billion-sample buffer and spin for good.
    ['an absurd frequency', '101 2 1000000000 650000\n101.dat 212\n101.dat 212\n', 'sampling frequency 1000000000 Hz is outside 0.001..100000 Hz'],
    ['a frequency above the range', '100 1 100001\n100.dat 16\n', 'outside 0.001..100000 Hz'],
    ['a frequency below the range', '100 1 0.0001\n100.dat 16\n', 'outside 0.001..100000 Hz'],
    ['a bad base time', '100 0 360 10 noon\n', 'base time'],
    ['a fractional checksum', '100 1 360 10\n100.dat 16 200 16 0 0 1.5 0\n', 'checksum'],
    ['a shared file with two formats', '100 2 360\n100.dat 16\n100.dat 212\n', 'share 100.dat'],
    ['a carriage return inside a line', '100 1 360\r 10\n100.dat 16\n', 'carriage return'],
  ])('rejects %s', (_name, text, message) => {
    expect(decodeError(WFDB_HEADER_CODEC, () => parseHeader(text)).message).toContain(message);
  });

  it('formats a header that parses back to itself', () => {
    const text = '101 2 360 650000\n101.dat 212 200 11 1024 955 29832 0 MLII\n101.dat 212 200 11 1024 992 19589 0 V1\n# 75 F 1011 654 x1\n';
    const h = parseHeader(text);
    expect(formatHeader(h)).toBe('101 2 360 650000\n101.dat 212 200(1024) 11 1024 955 29832 0 MLII\n101.dat 212 200(1024) 11 1024 992 19589 0 V1\n# 75 F 1011 654 x1\n');
    expect(parseHeader(formatHeader(h))).toEqual(h);
  });

  it('refuses to format what the text cannot hold', () => {
    const base = parseHeader('r 1 360 10\nr.dat 16 200 16 0 0 5 0 ECG\n');
    const noChecksum = { ...base, signals: [{ ...(base.signals[0] as WfdbSignalSpec), checksum: undefined }] };
    expect(() => formatHeader(noChecksum)).toThrow(ConfigError);
    expect(() => formatHeader({ ...base, recordName: 'a b' })).toThrow(ConfigError);
    expect(() => formatHeader({ ...base, comments: ['two\nlines'] })).toThrow(ConfigError);
    // a rate parseHeader would refuse is not written either
    expect(() => formatHeader({ ...base, fs: 1e9 })).toThrow(ConfigError);
  });

  const number = fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.double({ min: -1e9, max: 1e9, noNaN: true }).map((x) => x + 0));
  const positive = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 1e-3, max: 1e6, noNaN: true }));
  const rate = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: WFDB_FS_RANGE[0], max: WFDB_FS_RANGE[1], noNaN: true }));
  const word = (max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{1,${max}}$`));
  const headerArb = fc
    .record({
      recordName: word(12),
      fs: rate,
      counter: fc.option(fc.record({ frequency: positive, base: fc.option(number, { nil: undefined }) }), { nil: undefined }),
      nSamples: fc.oneof(fc.constant(0), fc.maxSafeNat()),
      time: fc.option(
        fc.record({
          time: fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }), fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined })),
          date: fc.option(fc.tuple(fc.integer({ min: 1, max: 31 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 9999 })), { nil: undefined }),
        }),
        { nil: undefined },
      ),
      withChecksums: fc.boolean(),
      signals: fc.array(
        fc.record({
          file: fc.integer({ min: 0, max: 2 }),
          format: fc.constantFrom(...WFDB_FORMATS),
          samplesPerFrame: fc.integer({ min: 1, max: 8 }),
          skew: fc.nat(100),
          byteOffset: fc.nat(4096),
          adcGain: number,
          baseline: fc.integer({ min: -70000, max: 70000 }),
          units: fc.option(fc.stringMatching(/^[A-Za-z%^µ/]{1,6}$/), { nil: undefined }),
          adcResolution: fc.nat(32),
          adcZero: fc.integer({ min: -70000, max: 70000 }),
          initialValue: fc.integer({ min: -70000, max: 70000 }),
          checksum: fc.integer({ min: -32768, max: 32767 }),
          blockSize: fc.nat(8192),
          description: fc.option(fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9 ,.()_-]{0,20}[A-Za-z0-9])?$/), { nil: undefined }),
        }),
        { maxLength: 5 },
      ),
      comments: fc.array(fc.stringMatching(/^[ -~]{0,40}$/), { maxLength: 4 }),
    })
    .map((g): WfdbHeader => {
      const pad = (n: number, w = 2) => String(n).padStart(w, '0');
      const h: WfdbHeader = { recordName: g.recordName, fs: g.fs, nSamples: g.nSamples, signals: [], comments: g.comments };
      if (g.counter !== undefined) {
        h.counterFrequency = g.counter.frequency;
        if (g.counter.base !== undefined) h.baseCounter = g.counter.base;
      }
      if (g.time !== undefined) {
        const [hh, mm, ss, ms] = g.time.time;
        h.baseTime = `${pad(hh)}:${pad(mm)}:${pad(ss)}${ms === undefined ? '' : `.${pad(ms, 3)}`}`;
        if (g.time.date !== undefined) h.baseDate = `${pad(g.time.date[0])}/${pad(g.time.date[1])}/${pad(g.time.date[2], 4)}`;
      }
      let previous: WfdbSignalSpec | undefined;
      for (const { file, units, checksum: sum, description, ...rest } of g.signals) {
        const spec: WfdbSignalSpec = { ...rest, fileName: `${g.recordName}-${file}.dat` };
        if (units !== undefined) spec.units = units;
        if (g.withChecksums) {
          spec.checksum = sum;
          if (description !== undefined) spec.description = description;
        } else {
          spec.blockSize = 0; // positional: no block size or description without a checksum
        }
        if (previous !== undefined && previous.fileName === spec.fileName) {
          spec.format = previous.format; // signals of one file share format and block size
          spec.blockSize = previous.blockSize;
        }
        h.signals.push(spec);
        previous = spec;
      }
      return h;
    });

  it('round-trips random headers: parseHeader(formatHeader(h)) equals h', () => {
    fc.assert(
      fc.property(headerArb, fc.boolean(), (h, crlf) => {
        const text = formatHeader(h);
        expect(parseHeader(crlf ? text.replace(/\n/g, '\r\n') : text)).toEqual(h);
      }),
      { numRuns: 500 },
    );
  });

  it('fuzz: random text gives a header or a DecodeError', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.array(fc.constantFrom('100', '2', '360', '212', '16', '200(0)/mV', 'x.dat', '#', '-1', '1e3', '12:00', 'x2', ':3', '+4', '(', '/'), { maxLength: 9 }).map((t) => t.join(' ')),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r'), (lines, eol) => {
        try {
          const h = parseHeader(lines.join(eol));
          expect(parseHeader(formatHeader(h))).toEqual(h);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('WFDB signal formats 212 and 16', () => {
  const twoLeads212 = (nSamples = 0) => recordOf([signal('r.dat', 212), signal('r.dat', 212)], nSamples);

  it('decodes the worked example of format 212: e3 33 f3 = 995, 1011 (start of mitdb 100.dat)', () => {
    // s0 = 0xe3 | (0x33 & 0x0f) << 8 = 0x3e3 = 995; s1 = 0xf3 | (0x33 & 0xf0) << 4 = 0x3f3 = 1011
    expect(decodeSignals(hex('e3 33 f3'), twoLeads212())).toEqual([Int16Array.of(995), Int16Array.of(1011)]);
    expect(decodeSignals(hex('e3 33 f3'), recordOf([signal('r.dat', 212)]))).toEqual([Int16Array.of(995, 1011)]);
    expect(toHex(encodeSignals([Int16Array.of(995), Int16Array.of(1011)], 212))).toBe('e333f3');
  });

  it.each<[string, Int16Array[], WfdbSignalFormat, number[] | undefined, string]>([
    // 12-bit two's complement: -1 = 0xfff, -2048 = 0x800 -> ff | 8f | 00
    ['212 negative extremes', [Int16Array.of(-1), Int16Array.of(-2048)], 212, undefined, 'ff 8f 00'],
    ['212 positive extreme and zero', [Int16Array.of(2047), Int16Array.of(0)], 212, undefined, 'ff 07 00'],
    // an odd last sample takes two bytes (signal.c f212)
    ['212 odd sample count', [Int16Array.of(1, 2, 5)], 212, undefined, '01 00 02 05 00'],
    // 2 samples of a, then 1 of b per frame; the 3-byte pairs run across the interleaved stream 1 2 5 | 3 4 6
    ['212 two samples per frame', [Int16Array.of(1, 2, 3, 4), Int16Array.of(5, 6)], 212, [2, 1], '01 00 02 05 00 03 04 00 06'],
    ['16 little-endian', [Int16Array.of(1, -2)], 16, undefined, '0100 feff'],
    ['16 interleaved', [Int16Array.of(1, 2), Int16Array.of(3, -32768)], 16, undefined, '0100 0300 0200 0080'],
  ])('vector: %s', (_name, signals, format, spf, bytes) => {
    const encoded = encodeSignals(signals, format, spf === undefined ? {} : { samplesPerFrame: spf });
    expect(toHex(encoded)).toBe(bytes.replace(/\s+/g, ''));
    const header = recordOf(signals.map((_s, i) => signal('r.dat', format, { samplesPerFrame: spf?.[i] ?? 1 })));
    expect(decodeSignals(encoded, header)).toEqual(signals);
  });

  it('honours the byte offset, the file name and the header sample count', () => {
    const header = recordOf([signal('a.dat', 16, { byteOffset: 4 }), signal('b.dat', 212), signal('a.dat', 16, { byteOffset: 4 })]);
    const a = hex('dead beef 0100 0200 0300 0400');
    expect(decodeSignals(a, header)).toEqual([Int16Array.of(1, 3), Int16Array.of(2, 4)]);
    expect(decodeSignals(hex('e3 33 f3'), header, 'b.dat')).toEqual([Int16Array.of(995, 1011)]);
    expect(decodeSignals(a, { ...header, nSamples: 1 })).toEqual([Int16Array.of(1), Int16Array.of(2)]);
    // a short file decodes to the whole frames it holds; the loader compares with the header
    expect(decodeSignals(hex('e3 33'), twoLeads212(10))).toEqual([new Int16Array(0), new Int16Array(0)]);
  });

  it('refuses files it cannot decode', () => {
    expect(decodeError(WFDB_SIGNAL_CODEC, () => decodeSignals(hex('00'), recordOf([signal('r.dat', 310)]))).message).toContain('supported formats: 16, 212');
    expect(decodeError(WFDB_SIGNAL_CODEC, () => decodeSignals(hex('00'), twoLeads212(), 'other.dat')).message).toContain('other.dat');
    decodeError(WFDB_SIGNAL_CODEC, () => decodeSignals(hex('00'), recordOf([signal('r.dat', 212), signal('r.dat', 16)])));
  });

  it('refuses to encode what the format cannot hold', () => {
    expect(() => encodeSignals([Int16Array.of(2048)], 212)).toThrow(ConfigError);
    expect(() => encodeSignals([Int16Array.of(1, 2), Int16Array.of(1)], 16)).toThrow(ConfigError);
    expect(() => encodeSignals([Int16Array.of(1)], 310 as WfdbSignalFormat)).toThrow(ConfigError);
  });

  const signalsArb = (min: number, max: number) =>
    fc
      .record({ spf: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }), frames: fc.nat(40), seed: fc.array(fc.integer({ min, max }), { minLength: 1, maxLength: 400 }) })
      .map(({ spf, frames, seed }) => ({ spf, signals: spf.map((n, j) => Int16Array.from({ length: frames * n }, (_v, i) => seed[(i * 7 + j * 13) % seed.length] as number)) }));

  it.each<[WfdbSignalFormat, number, number]>([
    [212, -2048, 2047],
    [16, -32768, 32767],
  ])('round-trips random signals in format %i', (format, min, max) => {
    fc.assert(
      fc.property(signalsArb(min, max), ({ spf, signals }) => {
        const header = recordOf(spf.map((n) => signal('r.dat', format, { samplesPerFrame: n })));
        expect(decodeSignals(encodeSignals(signals, format, { samplesPerFrame: spf }), header)).toEqual(signals);
      }),
      { numRuns: 300 },
    );
  });

  it('fuzz: random bytes give arrays of whole frames or a DecodeError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.record({ format: fc.constantFrom(16, 212, 212, 80), spf: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }), nSamples: fc.nat(100), byteOffset: fc.nat(20) }),
        (bytes, { format, spf, nSamples, byteOffset }) => {
          const header = recordOf(spf.map((n) => signal('r.dat', format, { samplesPerFrame: n, byteOffset })), nSamples);
          try {
            const out = decodeSignals(bytes, header);
            const frames = (out[0]?.length ?? 0) / (spf[0] as number);
            expect(out.map((s) => s.length)).toEqual(spf.map((n) => frames * n));
            if (nSamples > 0) expect(frames).toBeLessThanOrEqual(nSamples);
          } catch (error) {
            expect(error).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('checksum: the 16-bit sum of the samples, signed like the header field', () => {
    expect(checksum(Int16Array.of(1, 2, 3))).toBe(6);
    expect(checksum(Int16Array.of(-1))).toBe(-1);
    expect(checksum(Int16Array.of(32767, 1))).toBe(-32768);
    expect(checksum(Int16Array.of(30000, 10000))).toBe(40000 - 65536);
    expect(checksum(new Int16Array(65536).fill(1))).toBe(0);
    expect(checksum(new Int16Array(0))).toBe(0);
  });

  it('converts to physical units: (adu - baseline) / gain, default gain when uncalibrated, NaN for missing samples', () => {
    const spec = signal('r.dat', 212, { adcGain: 200, baseline: 1024 });
    expect(Array.from(toPhysical(Int16Array.of(1024, 1224, 824, -2048), spec))).toEqual([0, 1, -1, NaN]);
    expect(Array.from(toPhysical(Int16Array.of(400), { ...spec, adcGain: 0, baseline: 0 }))).toEqual([2]);
    expect(Array.from(toPhysical(Int16Array.of(-32768, -2048), signal('r.dat', 16, { adcGain: 1000 })))).toEqual([NaN, Math.fround(-2.048)]);
  });
});

describe('WFDB annotations', () => {
  it('decodes the first words of mitdb/101.atr', () => {
    // 0x7007: code 28 (+, rhythm) at +7; 0xfc03: AUX of 3 bytes "(N\0" + pad; 0x044c: code 1 (N) at +76; 0: end
    const file = decodeAnnotations(hex('0770 03fc 284e 0000 4c04 0000'), { fs: 360 });
    expect(file).toEqual({
      tickRate: 360,
      annotations: [
        { sample: 7, time: 7 / 360, code: 28, mnemonic: '+', subtype: 0, chan: 0, num: 0, aux: '(N' },
        { sample: 83, time: 83 / 360, code: 1, mnemonic: 'N', subtype: 0, chan: 0, num: 0 },
      ],
    });
    expect(decodeAnnotations(hex('0770 03fc 284e 0000 4c04 0000')).tickRate).toBeUndefined();
  });

  it.each<[string, WfdbAnnotationInput[], string]>([
    // SKIP (59 << 10 = 0xec00), then 70000 = 0x00011170 as the high word 0x0001, then the low word 0x1170, each little-endian
    ['a SKIP for an interval over 1023', [{ sample: 70000, code: 1 }], '00ec 0100 7011 0004 0000'],
    // an earlier time: SKIP -400 = 0xfffffe70
    ['a negative SKIP', [{ sample: 500, code: 1 }, { sample: 100, code: 5 }], 'f405 00ec ffff 70fe 0014 0000'],
    // SUB 3 (0xf403), CHN 1 (0xf801), NUM 2 (0xf002) after the annotation word, in putann's order
    ['subtype, chan and num', [{ sample: 10, code: 1, subtype: 3, chan: 1, num: 2 }], '0a04 03f4 01f8 02f0 0000'],
    // chan and num persist: the second annotation needs no CHN
    ['a chan that stays', [{ sample: 10, code: 1, chan: 1 }, { sample: 20, code: 1, chan: 1 }, { sample: 30, code: 1 }], '0a04 01f8 0a04 0a04 00f8 0000'],
    // AUX of 5 bytes, padded to 6
    ['an odd-length AUX', [{ sample: 7, code: 28, aux: '(AFIB' }], `0770 05fc ${ascii('(AFIB')}00 0000`],
    ['an even-length AUX', [{ sample: 7, code: 28, aux: '(N' }], `0770 02fc ${ascii('(N')} 0000`],
    // code 0 cannot be a word of 0 (end of file): SKIP to the tick before, then an interval of 1
    ['code 0 (NOTQRS)', [{ sample: 5, code: 0 }], '00ec 0000 0400 0100 0000'],
    ['no annotations', [], '0000'],
  ])('vector: %s', (_name, input, bytes) => {
    const encoded = encodeAnnotations(input);
    expect(toHex(encoded)).toBe(bytes.replace(/\s+/g, ''));
    expect(decodeAnnotations(encoded).annotations).toEqual(input.map((a) => decoded(a)));
  });

  it('writes and reads the time-resolution note', () => {
    const bytes = encodeAnnotations([{ sample: 0, code: 1 }, { sample: 1500, code: 5 }], { timeResolution: 1000 });
    // NOTE at +0 (22 << 10 = 0x5800), AUX of 24 bytes (0xfc18), the text, then the annotations
    expect(toHex(bytes.subarray(0, 28))).toBe(`0058 18fc ${ascii('## time resolution: 1000')}`.replace(/\s+/g, ''));
    const file = decodeAnnotations(bytes, { fs: 360 });
    expect(file.timeResolution).toBe(1000);
    expect(file.tickRate).toBe(1000);
    expect(file.annotations).toEqual([decoded({ sample: 0, code: 1 }, 1000), decoded({ sample: 1500, code: 5 }, 1000)]);
    // as wfdb-python writes it (fs without a fraction) and with a fractional rate
    expect(decodeAnnotations(encodeAnnotations([], { timeResolution: 360.5 })).timeResolution).toBe(360.5);
  });

  it.each([
    ['empty input', ''],
    ['no end word', '0104'],
    ['half a word', '0104 00'],
    ['a truncated SKIP', '00ec 0100'],
    ['a truncated AUX', '0770 05fc 2841'],
    ['a pseudo-annotation first', '03f4 0000'],
    ['an AUX over 255 bytes', `0104 00fd ${'41'.repeat(256)} 0000`],
    ['a negative time', '00ec ffff ffff 0004 0000'],
    ['a bad time-resolution value', `0058 16fc ${ascii('## time resolution: ab')} 0000`],
  ])('rejects %s', (_name, bytes) => {
    decodeError(WFDB_ANNOTATION_CODEC, () => decodeAnnotations(hex(bytes)));
  });

  it.each<[string, WfdbAnnotationInput]>([
    ['a negative tick', { sample: -1, code: 1 }],
    ['a fractional tick', { sample: 1.5, code: 1 }],
    ['a pseudo-annotation code', { sample: 1, code: 59 }],
    ['a subtype over 10 bits', { sample: 1, code: 1, subtype: 1024 }],
    ['aux over 255 bytes', { sample: 1, code: 22, aux: 'x'.repeat(256) }],
    ['aux with NUL', { sample: 1, code: 22, aux: 'a\0b' }],
    ['a gap beyond 32 bits', { sample: 2 ** 31, code: 1 }],
    ['a look-alike time-resolution note', { sample: 0, code: 22, aux: '## time resolution: 5' }],
  ])('refuses to encode %s', (_name, annotation) => {
    expect(() => encodeAnnotations([annotation])).toThrow(ConfigError);
  });

  it('knows the ecgcodes.h codes, their mnemonics and which are beats', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 19, 20, 21, 22, 23].map(annotationMnemonic).join('')).toBe('NLRaVFJASEj/Q~|sT*D"=');
    expect([24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41].map(annotationMnemonic).join('')).toBe('pB^t+u?![]en@xf()r');
    expect([annotationMnemonic(0), annotationMnemonic(15), annotationMnemonic(45), annotationMnemonic(58)]).toEqual([' ', '[15]', '[45]', '[58]']);
    expect(WFDB_ANNOTATION_CODES).toMatchObject({ NORMAL: 1, PVC: 5, PACE: 12, NOISE: 14, NOTE: 22, RHYTHM: 28, VFON: 32, VFOFF: 33, RONT: 41 });
    expect([1, 5, 12, 13, 31, 41].every(isQrsCode)).toBe(true);
    expect([0, 14, 16, 22, 28, 32, 33].some(isQrsCode)).toBe(false);
  });

  const field = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 1023 }) });
  const aux = fc.option(fc.oneof(fc.string({ minLength: 1, maxLength: 60 }), fc.constantFrom('(N', '(AFIB', '(VT', 'TS', 'µV', 'ñ', '\u{1F493}')), { nil: undefined, freq: 3 });
  const gap = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1023 }) }, { weight: 2, arbitrary: fc.integer({ min: 1024, max: 2 ** 31 - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: -5000, max: -1 }) });
  const annotationsArb = fc.array(fc.record({ gap, code: fc.integer({ min: 0, max: 58 }), subtype: field, chan: field, num: field, aux }), { maxLength: 40 }).map((list) => {
    let t = 0;
    return list.map(({ gap: g, ...rest }): WfdbAnnotationInput => {
      t = Math.max(0, t + g);
      const a: WfdbAnnotationInput = { sample: t, ...rest };
      if (rest.aux === undefined) delete a.aux;
      return a;
    });
  });

  it('round-trips random annotations: big gaps, negative steps, subtypes, chans, nums, odd aux, time resolution', () => {
    fc.assert(
      fc.property(
        annotationsArb,
        fc.option(fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0.01, max: 1e6, noNaN: true })), { nil: undefined }),
        fc.option(fc.constantFrom(250, 360, 500), { nil: undefined }),
        (input, timeResolution, fs) => {
          const bytes = encodeAnnotations(input, timeResolution === undefined ? {} : { timeResolution });
          const file = decodeAnnotations(bytes, fs === undefined ? {} : { fs });
          const rate = timeResolution ?? fs;
          expect(file.timeResolution).toBe(timeResolution);
          expect(file.annotations).toEqual(input.map((a) => decoded(a, rate)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('fuzz: random and mutated bytes give annotations or a DecodeError', () => {
    const valid = annotationsArb.map((list) => encodeAnnotations(list));
    const mutated = fc.record({ bytes: valid, flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), cut: fc.option(fc.nat(), { nil: undefined }) }).map(({ bytes, flips, cut }) => {
      const b = Uint8Array.from(bytes);
      for (const [at, mask] of flips) b[at % b.length] = (b[at % b.length] as number) ^ mask;
      return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
    });
    let decodedFiles = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated), (bytes) => {
        try {
          const file = decodeAnnotations(bytes);
          decodedFiles++;
          for (const a of file.annotations) {
            expect(a.sample).toBeGreaterThanOrEqual(0);
            expect(a.code).toBeGreaterThanOrEqual(0);
            expect(a.code).toBeLessThanOrEqual(58);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3000 },
    );
    expect(decodedFiles).toBeGreaterThan(100); // the mutations leave enough files readable to exercise the decoder
  });
});
