import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../device-sdk/errors.js';
import { annotationMnemonic, checksum, decodeAnnotations, encodeAnnotations, isQrsCode, WFDB_ANNOTATION_CODES, type WfdbAnnotation } from '../../device-sdk/protocols/wfdb.js';
import { cutWfdbExcerpt, MITDB_101_EXCERPT } from '../../test/fixtures/wfdb/excerpt.js';
import { MITDB, missingNote, NSTDB, sharedDataRuns } from '../../test/helpers/shared-data.js';
import { useTempDirs } from '../../test/helpers/temp.js';
import { readWfdbAnnotations, readWfdbRecord, type WfdbRecord, WfdbRecordError, writeWfdbAnnotations } from './wfdb-files.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'wfdb');
const FIXTURE = join(FIXTURES, MITDB_101_EXCERPT.name);

const haveMitdb = existsSync(MITDB);
const haveNstdb = existsSync(NSTDB);
const tempDir = useTempDirs('wfdb');

/** Beat and non-beat labels of the MIT-BIH reference annotations (README of the data; ecgcodes.h). */
const MITDB_LABELS = new Set(['N', 'L', 'R', 'a', 'V', 'F', 'J', 'A', 'S', 'E', 'j', '/', 'Q', 'e', 'f', '!', '+', '~', '|', 'x', '"', '[', ']']);

function recordsIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.hea'))
    .map((f) => f.slice(0, -'.hea'.length))
    .sort();
}

/** Every signal agrees with its header and (unless told otherwise) its samples stay within the ADC resolution. */
function expectConsistent(record: WfdbRecord, { withinResolution = true } = {}): void {
  const { header, signals } = record;
  expect(signals).toHaveLength(header.signals.length);
  header.signals.forEach((spec, i) => {
    const samples = signals[i] as Int16Array;
    expect(samples.length).toBe(header.nSamples * spec.samplesPerFrame);
    expect(((checksum(samples) - (spec.checksum ?? 0)) & 0xffff) === 0).toBe(true);
    expect(samples[0]).toBe(spec.initialValue);
    if (withinResolution) {
      const half = 2 ** (spec.adcResolution - 1);
      let outside = 0;
      for (let k = 0; k < samples.length; k++) {
        const v = samples[k] as number;
        if (v < spec.adcZero - half || v >= spec.adcZero + half) outside++;
      }
      expect(outside, `samples of signal ${i} outside ${spec.adcResolution} bits around ${spec.adcZero}`).toBe(0);
    }
    const physical = record.physical(i);
    expect(physical).toHaveLength(samples.length);
    let notFinite = 0;
    for (let k = 0; k < physical.length; k++) if (!Number.isFinite(physical[k])) notFinite++;
    expect(notFinite).toBe(0);
  });
}

/** Reference annotations of a 30-minute MIT-BIH record look like reference annotations. */
function expectSaneAnnotations(annotations: WfdbAnnotation[], nSamples: number): void {
  const problems: string[] = [];
  let previous = 0;
  for (const a of annotations) {
    if (a.sample < previous || a.sample >= nSamples) problems.push(`${a.mnemonic} at ${a.sample}: out of order or outside the record`);
    if (a.time !== a.sample / 360) problems.push(`${a.mnemonic} at ${a.sample}: time ${a.time}`);
    if (!MITDB_LABELS.has(a.mnemonic)) problems.push(`${a.mnemonic} at ${a.sample}: not an MIT-BIH label`);
    if (a.code === WFDB_ANNOTATION_CODES.RHYTHM && !/^\([A-Z]+$/.test(a.aux ?? '')) problems.push(`rhythm at ${a.sample}: aux ${JSON.stringify(a.aux)}`);
    previous = a.sample;
  }
  expect(problems).toEqual([]);
  const beats = annotations.filter((a) => isQrsCode(a.code)).length;
  expect(beats).toBeGreaterThan(1000); // 30 min at 35-115 beats/min
  expect(beats).toBeLessThan(3500);
  expect(annotations.some((a) => a.code === WFDB_ANNOTATION_CODES.RHYTHM)).toBe(true);
}

function countBy(annotations: WfdbAnnotation[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of annotations) if (isQrsCode(a.code)) counts[a.mnemonic] = (counts[a.mnemonic] ?? 0) + 1;
  return counts;
}

describe(`WFDB files: the committed excerpt ${MITDB_101_EXCERPT.name}`, () => {
  it('reads the record, checks it against its header and converts to millivolts', () => {
    const record = readWfdbRecord(FIXTURE);
    expect(record.header).toMatchObject({ recordName: '101-10s', fs: 360, nSamples: 3600 });
    expect(record.header.signals.map((s) => [s.description, s.format, s.adcGain, s.baseline])).toEqual([
      ['MLII', 212, 200, 1024],
      ['V1', 212, 200, 1024],
    ]);
    expectConsistent(record);
    expect(record.signals[0]?.[0]).toBe(955);
    expect(record.physical(0)[0]).toBeCloseTo((955 - 1024) / 200, 6);
    expect(() => record.physical(2)).toThrow(/not a signal of record 101-10s/);
  });

  it('reads the annotations with times from the header rate', () => {
    const file = readWfdbAnnotations(FIXTURE);
    expect(file.tickRate).toBe(360);
    expect(file.annotations[0]).toEqual({ sample: 7, time: 7 / 360, code: 28, mnemonic: '+', subtype: 0, chan: 0, num: 0, aux: '(N' });
    expect(file.annotations.slice(1).map((a) => a.mnemonic).join('')).toBe('N'.repeat(11));
    expect(readWfdbAnnotations(FIXTURE, 'atr', { fs: 720 }).annotations[0]?.time).toBe(7 / 720);
  });

  function copyOfFixture(): string {
    const dir = tempDir();
    for (const ext of ['hea', 'dat', 'atr']) copyFileSync(`${FIXTURE}.${ext}`, join(dir, `${MITDB_101_EXCERPT.name}.${ext}`));
    return join(dir, MITDB_101_EXCERPT.name);
  }

  function recordError(path: string): WfdbRecordError {
    try {
      readWfdbRecord(path);
    } catch (error) {
      expect(error).toBeInstanceOf(WfdbRecordError);
      expect(error).toBeInstanceOf(DecodeError);
      return error as WfdbRecordError;
    }
    throw new Error('expected a WfdbRecordError');
  }

  it('names the record and signal whose checksum does not match', () => {
    const path = copyOfFixture();
    const dat = readFileSync(`${path}.dat`);
    dat[3] = (dat[3] as number) ^ 0x01; // low byte of the second frame's MLII sample
    writeFileSync(`${path}.dat`, dat);
    const error = recordError(path);
    expect(error).toMatchObject({ codec: 'wfdb-signal', record: '101-10s', signal: 0, check: 'checksum' });
    expect(error.message).toContain('record 101-10s, signal 0 (MLII)');
  });

  it('names the record and signal whose length does not match', () => {
    const path = copyOfFixture();
    writeFileSync(`${path}.dat`, readFileSync(`${path}.dat`).subarray(0, 10800 - 3)); // one frame short
    expect(recordError(path)).toMatchObject({ record: '101-10s', signal: 0, check: 'length', expected: 3600, actual: 3599 });
  });

  it('says which signal file looks truncated and how much of it was read', () => {
    const path = copyOfFixture();
    writeFileSync(`${path}.dat`, readFileSync(`${path}.dat`).subarray(0, 3 * 1800)); // 1800 of 3600 frames: 5 s of 10
    const error = recordError(path);
    expect(error).toMatchObject({ check: 'length', expected: 3600, actual: 1800, file: `${path}.dat` });
    expect(error.message).toContain(`${path}.dat holds 1800 samples (5.0 s at 360 Hz) where the header gives 3600 (10.0 s at 360 Hz): the file looks truncated`);
  });

  it('names the file of a header it cannot parse', () => {
    const path = copyOfFixture();
    writeFileSync(`${path}.hea`, '101-10s 3 360 3600\n101-10s.dat 212 200 11 1024 955 0 0 MLII\n');
    expect(() => readWfdbRecord(path)).toThrow(DecodeError);
    expect(() => readWfdbRecord(path)).toThrow(`${path}.hea: record line announces 3 signal(s) but 1`);
  });

  it('leaves no partial file behind when the annotation file cannot be put in place', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'taken.atr'));
    expect(() => writeWfdbAnnotations(join(dir, 'taken.atr'), [{ sample: 10, code: 1 }])).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(['taken.atr']);
  });

  it('writes annotations and reads them back identical, with and without a time resolution', () => {
    const { annotations } = readWfdbAnnotations(FIXTURE);
    const dir = tempDir();
    writeWfdbAnnotations(join(dir, 'copy.atr'), annotations);
    expect(readWfdbAnnotations(join(dir, 'copy'), 'atr', { fs: 360 }).annotations).toEqual(annotations);
    // at 1 kHz ticks: sample numbers are ticks, times follow the note, not the fs option
    const ticks = annotations.map((a) => ({ ...a, sample: Math.round((a.sample * 1000) / 360) }));
    writeWfdbAnnotations(join(dir, 'ms.atr'), ticks, { timeResolution: 1000 });
    const back = readWfdbAnnotations(join(dir, 'ms'), 'atr', { fs: 360 });
    expect(back.timeResolution).toBe(1000);
    expect(back.annotations.map((a) => [a.sample, a.time])).toEqual(ticks.map((a) => [a.sample, a.sample / 1000]));
    expect(readdirSync(dir).sort()).toEqual(['copy.atr', 'ms.atr']); // no partial files left behind
  });
});

describe.skipIf(!sharedDataRuns(MITDB))(`WFDB files: MIT-BIH Arrhythmia Database${missingNote(MITDB)}`, () => {
  const records = haveMitdb ? recordsIn(MITDB) : [];

  it('has the 26 records (DS1 and the paced records)', () => {
    expect(haveMitdb, `${MITDB} is missing`).toBe(true);
    expect(records).toEqual(['101', '102', '104', '106', '107', '108', '109', '112', '114', '115', '116', '118', '119', '122', '124', '201', '203', '205', '207', '208', '209', '215', '217', '220', '223', '230']);
  });

  it.each(records)('record %s: signals match the header checksums and lengths; annotations are sane and round-trip', (name) => {
    const path = join(MITDB, name);
    const record = readWfdbRecord(path);
    expect(record.header).toMatchObject({ recordName: name, fs: 360, nSamples: 650000 });
    expect(record.header.signals.map((s) => [s.fileName, s.format, s.adcResolution, s.adcGain])).toEqual([
      [`${name}.dat`, 212, 11, 200],
      [`${name}.dat`, 212, 11, 200],
    ]);
    expectConsistent(record);
    const file = readWfdbAnnotations(path);
    expect(file.timeResolution).toBeUndefined();
    expectSaneAnnotations(file.annotations, record.header.nSamples);
    expect(decodeAnnotations(encodeAnnotations(file.annotations), { fs: 360 }).annotations).toEqual(file.annotations);
  });

  it('counts the beats of records 101 and 208 as the MIT-BIH directory does', () => {
    expect(countBy(readWfdbAnnotations(join(MITDB, '101')).annotations)).toEqual({ N: 1860, A: 3, Q: 2 });
    expect(countBy(readWfdbAnnotations(join(MITDB, '208')).annotations)).toEqual({ N: 1586, V: 992, F: 373, S: 2, Q: 2 });
  });

  it('has the rhythm labels of the database, in the AUX text of rhythm annotations', () => {
    const labels = new Set<string>();
    for (const name of records) {
      for (const a of readWfdbAnnotations(join(MITDB, name)).annotations) if (a.code === WFDB_ANNOTATION_CODES.RHYTHM && a.aux !== undefined) labels.add(a.aux);
    }
    for (const label of ['(N', '(AFIB', '(AFL', '(B', '(T', '(VT', '(SVTA', '(P', '(VFL', '(NOD', '(IVR']) expect(labels).toContain(label);
    expect(annotationMnemonic(WFDB_ANNOTATION_CODES.RHYTHM)).toBe('+');
  });

  it('cuts the committed excerpt byte for byte from record 101', () => {
    const { source, name, frames, provenance } = MITDB_101_EXCERPT;
    const excerpt = cutWfdbExcerpt(join(MITDB, source), name, frames, provenance);
    expect(excerpt.hea).toBe(readFileSync(`${FIXTURE}.hea`, 'utf8'));
    expect(Buffer.from(excerpt.dat).equals(readFileSync(`${FIXTURE}.dat`))).toBe(true);
    expect(Buffer.from(excerpt.atr).equals(readFileSync(`${FIXTURE}.atr`))).toBe(true);
    expect(Buffer.from(excerpt.dat).equals(readFileSync(join(MITDB, `${source}.dat`)).subarray(0, excerpt.dat.length))).toBe(true);
  });

  it('writes the annotations of record 208 to a file and reads them back identical', () => {
    const original = readWfdbAnnotations(join(MITDB, '208'));
    const path = join(tempDir(), '208');
    writeWfdbAnnotations(`${path}.atr`, original.annotations);
    expect(readWfdbAnnotations(path, 'atr', { fs: 360 })).toEqual(original);
  });
});

describe.skipIf(!sharedDataRuns(NSTDB))(`WFDB files: MIT-BIH Noise Stress Test Database${missingNote(NSTDB)}`, () => {
  it('reads 118e24 (CRLF header, explicit baseline) with the beat annotations of record 118', () => {
    expect(haveNstdb, `${NSTDB} is missing`).toBe(true);
    const record = readWfdbRecord(join(NSTDB, '118e24'));
    expect(record.header.signals.map((s) => [s.description, s.baseline, s.adcZero])).toEqual([
      ['MLII', 1024, 0],
      ['V1', 1024, 0],
    ]);
    expectConsistent(record, { withinResolution: false }); // the added noise goes beyond the 11 bits the header states
    const { annotations } = readWfdbAnnotations(join(NSTDB, '118e24'));
    expectSaneAnnotations(annotations, record.header.nSamples);
    expect(countBy(annotations)).toEqual({ R: 2166, A: 96, V: 16 });
    if (haveMitdb) {
      const clean = readWfdbAnnotations(join(MITDB, '118')).annotations;
      expect(annotations.map((a) => [a.sample, a.code])).toEqual(clean.map((a) => [a.sample, a.code]));
    }
  });

  it.each(['bw', 'ma'])('reads the uncalibrated noise record %s (gain 0: default gain)', (name) => {
    const record = readWfdbRecord(join(NSTDB, name));
    expect(record.header.signals.map((s) => [s.description, s.adcGain, s.adcResolution])).toEqual([
      ['noise1', 0, 12],
      ['noise2', 0, 12],
    ]);
    expectConsistent(record);
    const spec = record.header.signals[0];
    expect(record.physical(0)[100]).toBeCloseTo(((record.signals[0]?.[100] ?? 0) - (spec?.baseline ?? 0)) / 200, 6);
  });
});
