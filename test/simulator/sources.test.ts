import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DecodeError } from '../../device-sdk/errors.js';
import { encodeWav, readWav } from '../../device-sdk/protocols/wav.js';
import { parseCgmCsv, readCgmCsv } from '../../simulator/sources/cgm-csv.js';
import { takeSamples } from '../../simulator/sources/glucose-series.js';
import { arraySampleSource, pace, type SampleBlock } from '../../simulator/sources/sample-source.js';
import { basalRate, cgmNoise, DEXCOM_SENSOR, parseVirtualPatients, riskIndices, simulateUvaPadova, uvaPadovaSeries } from '../../simulator/sources/uva-padova.js';
import { wavSampleSource } from '../../simulator/sources/wav-replay.js';
import { wfdbReplay } from '../../simulator/sources/wfdb-replay.js';
import { readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { MITDB, missingNote, SHARED_DATA, sharedDataRuns } from '../helpers/shared-data.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const GLUCOSE_SIM = join(SHARED_DATA, 'glucose-sim');
const CGM = join(SHARED_DATA, 'cgm');

async function collect(it: AsyncIterable<SampleBlock>, clock: VirtualClock, stepMs: number): Promise<{ block: SampleBlock; at: number }[]> {
  const out: { block: SampleBlock; at: number }[] = [];
  const iterator = it[Symbol.asyncIterator]();
  for (;;) {
    const next = iterator.next();
    let settled = false;
    void next.then(() => (settled = true));
    while (!settled) {
      await Promise.resolve();
      await new Promise((r) => setImmediate(r));
      if (!settled) clock.advance(stepMs);
    }
    const r = await next;
    if (r.done) return out;
    out.push({ block: r.value, at: clock.monotonic() });
  }
}

describe('sample sources and pacing', () => {
  it('reads interleaved sample sets and stops at the end', () => {
    const src = arraySampleSource({ name: 't', rateHz: 10, unit: 'mV', gain: 200 }, [Int16Array.from([1, 2, 3]), Int16Array.from([-1, -2, -3])]);
    expect(Array.from(src.read(2))).toEqual([1, -1, 2, -2]);
    expect(Array.from(src.read(5))).toEqual([3, -3]);
    expect(src.read(5).length).toBe(0);
    expect(src.position).toBe(3);
  });

  it('loops when asked', () => {
    const src = arraySampleSource({ name: 't', rateHz: 10, unit: 'mV', gain: 200, loop: true }, [Int16Array.from([1, 2, 3])]);
    expect(Array.from(src.read(7))).toEqual([1, 2, 3, 1, 2, 3, 1]);
    expect(src.length).toBe(Infinity);
  });

  it('refuses channels of different lengths', () => {
    expect(() => arraySampleSource({ name: 't', rateHz: 1, unit: 'mV', gain: 1 }, [new Int16Array(2), new Int16Array(3)])).toThrow(ConfigError);
  });

  it('releases each block once its last sample is due, at the given speed, without loss or repeats', async () => {
    const clock = new VirtualClock();
    const src = arraySampleSource({ name: 't', rateHz: 100, unit: 'mV', gain: 1 }, [Int16Array.from({ length: 1000 }, (_, i) => i)]);
    // 10 s of signal at speed 10 in 100 ms blocks: one block every 10 ms of clock time.
    const got = await collect(pace(src, { clock, speed: 10, blockMs: 100 }), clock, 5);
    expect(got).toHaveLength(100);
    got.forEach(({ block, at }, k) => {
      expect(block.firstSample).toBe(k * 10);
      expect(block.samples[0]).toBe(k * 10);
      expect(block.samples.length).toBe(10);
      expect(at).toBeGreaterThanOrEqual((k + 1) * 10);
      expect(at).toBeLessThan((k + 1) * 10 + 5 + 1e-9);
    });
  });
});

describe.skipIf(!sharedDataRuns(MITDB))(`WFDB replay${missingNote(MITDB)}`, () => {
  it('replays MIT-BIH 208 minus the baseline, both leads interleaved, at 360 Hz and 200 adu/mV', () => {
    const rec = readWfdbRecord(join(MITDB, '208'));
    const src = wfdbReplay({ record: join(MITDB, '208'), startS: 10, durationS: 60 });
    expect([src.rateHz, src.channels, src.unit, src.gain, src.length]).toEqual([360, 2, 'mV', 200, 21_600]);
    const first = src.read(2);
    const base0 = rec.header.signals[0]!.baseline;
    const base1 = rec.header.signals[1]!.baseline;
    expect(Array.from(first)).toEqual([rec.signals[0]![3600]! - base0, rec.signals[1]![3600]! - base1, rec.signals[0]![3601]! - base0, rec.signals[1]![3601]! - base1]);
    let n = 2;
    for (let b = src.read(1000); b.length > 0; b = src.read(1000)) n += b.length / 2;
    expect(n).toBe(21_600);
  });

  it('names a signal that is not in the record', () => {
    expect(() => wfdbReplay({ record: join(MITDB, '208'), signals: [2] })).toThrow(/signals: 2 is not a signal of record 208/);
  });
});

describe('WAV replay', () => {
  it('replays stereo 24-bit as its mono mix, int16 at gain 32768', () => {
    const wav = readWav(encodeWav([Float32Array.from([0.5, -0.25]), Float32Array.from([0.125, 0])], { rateHz: 2000, format: 's24' }));
    const src = wavSampleSource(wav, 'x.wav');
    expect([src.rateHz, src.channels, src.unit, src.gain]).toEqual([2000, 1, 'au', 32768]);
    expect(Array.from(src.read(2))).toEqual([10240, -4096]);
    expect(() => wavSampleSource(wav, 'x.wav', { channels: [1] })).toThrow(/mono mix/);
  });

  const PASCAL = join(SHARED_DATA, 'pcg', 'pascal-b');
  it.skipIf(!sharedDataRuns(PASCAL))(`replays a PASCAL recording sample for sample${missingNote(PASCAL)}`, () => {
    const file = readdirSync(PASCAL).filter((f) => f.startsWith('normal'))[0]!;
    const bytes = readFileSync(join(PASCAL, file));
    const src = wavSampleSource(readWav(new Uint8Array(bytes)), file);
    const pcm = new Int16Array(bytes.buffer.slice(bytes.byteOffset + bytes.length - src.length * 2, bytes.byteOffset + bytes.length));
    expect(src.rateHz).toBe(4000);
    expect(Array.from(src.read(src.length))).toEqual(Array.from(pcm));
  });
});

describe('CGM CSV replay', () => {
  const text = '"id","time","gl"\n"a",2014-02-03 03:42:12,93\n"a",2014-02-03 03:47:12,95\n"b",2014-02-04 00:00:00,120\n"a",2014-02-03 03:52:12,101\n';
  it('splits subjects in file order, sorts by time and numbers them instead of naming them', () => {
    const [a, b] = parseCgmCsv(text, 'demo');
    expect(a).toEqual({ name: 'demo subject 0', periodMs: 300_000, samples: [{ tMs: 0, mgdl: 93 }, { tMs: 300_000, mgdl: 95 }, { tMs: 600_000, mgdl: 101 }] });
    expect(b?.samples).toEqual([{ tMs: 0, mgdl: 120 }]);
  });

  it('names the line of a bad value', () => {
    expect(() => parseCgmCsv('id,time,gl\nx,2014-02-03 03:42:12,high\n')).toThrow(/line 2: unreadable glucose "high"/);
    expect(() => parseCgmCsv('id,when,gl\n')).toThrow(DecodeError);
    // The reader medge glucose uses: conflicting duplicates and impossible values are refused, not replayed.
    expect(() => parseCgmCsv('id,time,gl\nx,2014-02-03 03:42:12,90\nx,2014-02-03 03:42:12,40\n')).toThrow(/line 3: subject "x" has two different readings/);
    expect(() => parseCgmCsv('id,time,gl\nx,2014-02-03 03:42:12,1e308\n')).toThrow(/line 2: subject "x": glucose 1e\+308 mg\/dL is outside 10-1000 mg\/dL/);
    expect(parseCgmCsv('id,time,gl\nx,2014-02-03 03:42:12,NA\nx,2014-02-03 03:47:12,90\n')[0]?.samples).toEqual([{ tMs: 0, mgdl: 90 }]);
  });

  it('refuses a CGM file in mmol/L instead of replaying it as severe hypoglycaemia', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-cgm-'));
    try {
      const rows = Array.from({ length: 20 }, (_, k) => `"s1",2024-03-01 ${String(8 + Math.floor(k / 12)).padStart(2, '0')}:${String((k % 12) * 5).padStart(2, '0')}:00,${(5.5 + 0.2 * Math.sin(k)).toFixed(1)}`);
      writeFileSync(join(dir, 'mmol.csv'), `id,time,gl\n${rows.join('\n')}\n`);
      expect(() => readCgmCsv(join(dir, 'mmol.csv'))).toThrow(ConfigError);
      expect(() => readCgmCsv(join(dir, 'mmol.csv'))).toThrow(/look like mmol\/L.*x 18\.016/);
      writeFileSync(join(dir, 'mgdl.csv'), `id,time,gl\n${rows.map((r) => r.replace(/,([0-9.]+)$/, (_, v: string) => `,${Math.round(Number(v) * 18.016)}`)).join('\n')}\n`);
      expect(readCgmCsv(join(dir, 'mgdl.csv')).samples).toHaveLength(20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file that is not UTF-8 and a subject whose unit changes inside the file, as medge glucose does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-cgm-'));
    try {
      const times = Array.from({ length: 30 }, (_, k) => `2024-03-01 ${String(8 + Math.floor(k / 12)).padStart(2, '0')}:${String((k % 12) * 5).padStart(2, '0')}:00`);
      // Latin-1 "José" and "Josè": one subject "Jos\ufffd" if decoded with replacement characters.
      const latin1 = Buffer.concat([Buffer.from('id,time,gl\n'), ...times.map((t, k) => Buffer.concat([Buffer.from('Jos'), Buffer.from([k % 2 ? 0xe8 : 0xe9]), Buffer.from(`,${t},${100 + k}\n`)]))]);
      writeFileSync(join(dir, 'latin1.csv'), latin1);
      expect(() => readCgmCsv(join(dir, 'latin1.csv'))).toThrow(DecodeError);
      expect(() => readCgmCsv(join(dir, 'latin1.csv'))).toThrow(/latin1\.csv: line 2: byte 0xE9 at byte offset 14 is not UTF-8/);
      // 220 mg/dL for 20 readings, then 12.2 (the same in mmol/L): replayed, a false severe hypo.
      writeFileSync(join(dir, 'mixed.csv'), `id,time,gl\n${times.map((t, k) => `s1,${t},${k < 20 ? 220 : 12.2}`).join('\n')}\n`);
      expect(() => readCgmCsv(join(dir, 'mixed.csv'))).toThrow(/line 22: subject "s1": .*the readings mix mg\/dL and mmol\/L/);
      // Two mmol/L meter results (12, 13) merged into a mg/dL trace a day after it: replayed, two severe lows of 12-13 mg/dL.
      writeFileSync(join(dir, 'merged.csv'), `id,time,gl\n${times.map((t, k) => `s1,${t},${120 + k}`).join('\n')}\ns1,2024-03-02 09:00:00,12\ns1,2024-03-02 13:00:00,13\n`);
      expect(() => readCgmCsv(join(dir, 'merged.csv'))).toThrow(/merged\.csv: line 32: subject "s1": 12 is a severe low of 12 mg\/dL, or 216 mg\/dL in mmol\/L, and no reading of this subject of 35 mg\/dL or more near it tells which/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a short meter log in mmol/L (from 3 readings) and skips NaN and null like NA', () => {
    // A meter device replays these values as stored records: 5 readings of 5-9 mmol/L would be 5-9 mg/dL.
    expect(() => parseCgmCsv('id,time,gl\nm,2024-03-01 07:00,5.4\nm,2024-03-01 12:00,8.9\nm,2024-03-01 18:00,6.7\nm,2024-03-01 22:00,7.2\nm,2024-03-02 07:00,5.1\n')).toThrow(
      /look like mmol\/L, not mg\/dL \(median 6\.7, highest 8\.9\).*x 18\.016/,
    );
    expect(parseCgmCsv('id,time,gl\nx,2014-02-03 03:42:12,NaN\nx,2014-02-03 03:47:12,null\nx,2014-02-03 03:52:12,90\nx,2014-02-03 03:57:12,Null\n')[0]?.samples).toEqual([{ tMs: 0, mgdl: 90 }]);
  });

  it('repeats a short series shifted by its span', () => {
    const [a] = parseCgmCsv(text);
    expect(takeSamples(a!, 4).map((s) => s.tMs)).toEqual([0, 300_000, 600_000, 900_000]);
  });

  it.skipIf(!sharedDataRuns(CGM))(`reads hall2018: 57 subjects at 5 min${missingNote(CGM)}`, () => {
    const s = readCgmCsv(join(CGM, 'hall2018.csv'), { subject: 3, offset: 10, limit: 200 });
    expect(s.name).toBe('hall2018 subject 3');
    expect(s.periodMs).toBe(300_000);
    expect(s.samples).toHaveLength(200);
    expect(s.samples[0]?.tMs).toBe(0);
    expect(s.samples.every((x) => x.mgdl >= 39 && x.mgdl <= 600)).toBe(true);
    expect(() => readCgmCsv(join(CGM, 'hall2018.csv'), { subject: 57 })).toThrow(/use 0\.\.56/);
  });
});

describe.skipIf(!sharedDataRuns(GLUCOSE_SIM))(`UVA/Padova generator${missingNote(GLUCOSE_SIM)}`, () => {
  const patients = sharedDataRuns(GLUCOSE_SIM) ? parseVirtualPatients(readFileSync(join(GLUCOSE_SIM, 'vpatient_params.csv'), 'utf8')) : [];

  it('reads the 30 virtual patients', () => {
    expect(patients.map((p) => p.name)).toHaveLength(30);
    expect(patients[0]).toMatchObject({ name: 'adolescent#001', BW: 68.706, Gb: 149.02 });
    expect(basalRate(patients[0]!)).toBeCloseTo((1.21697571391 * 68.706) / 6000, 12);
  });

  it('stays at each patient\'s basal glucose Gb for 24 h on basal insulin without meals', () => {
    for (const p of patients) {
      const { bg } = simulateUvaPadova(p, 1440, { meals: [], boluses: [] });
      expect(Math.min(...bg), p.name).toBeGreaterThan(p.Gb - 0.5);
      expect(Math.max(...bg), p.name).toBeLessThan(p.Gb + 0.5);
    }
  });

  it('rises after a meal and returns lower with a bolus; without basal insulin it climbs', () => {
    for (const p of patients.filter((x) => x.name.startsWith('adult'))) {
      const meal = simulateUvaPadova(p, 480, { meals: [{ atMin: 30, carbsG: 50 }], boluses: [] });
      const bolus = simulateUvaPadova(p, 480, { meals: [{ atMin: 30, carbsG: 50 }], boluses: [{ atMin: 30, units: 5 }] });
      const peak = Math.max(...meal.bg);
      expect(peak, p.name).toBeGreaterThan(p.Gb + 30);
      expect(Math.max(...bolus.bg), p.name).toBeLessThan(peak);
      // Glucose is up within the hour after the meal starts; the sensor compartment lags the plasma.
      expect(meal.bg[90]!, p.name).toBeGreaterThan(p.Gb + 20);
      expect(meal.sensor[60]!, p.name).toBeLessThan(meal.bg[60]!);
      const noBasal = simulateUvaPadova(p, 480, { meals: [], boluses: [], basalFactor: 0 });
      expect(noBasal.bg[480]!, p.name).toBeGreaterThan(p.Gb + 10);
    }
  });

  it('adds seeded CGM sensor error of the published size, clipped to the sensor range', () => {
    const e = cgmNoise(DEXCOM_SENSOR, 20_000, 5);
    const mean = e.reduce((a, b) => a + b, 0) / e.length;
    const sd = Math.sqrt(e.reduce((a, b) => a + (b - mean) ** 2, 0) / e.length);
    // Johnson SU with these parameters: mean about 0.5-5 mg/dL, standard deviation of roughly 10-20 mg/dL.
    expect(Math.abs(mean)).toBeLessThan(8);
    expect(sd).toBeGreaterThan(5);
    expect(sd).toBeLessThan(30);
    expect(Array.from(cgmNoise(DEXCOM_SENSOR, 50, 5))).toEqual(Array.from(e.subarray(0, 50)));
    const s = uvaPadovaSeries(patients[10]!, { minutes: 24 * 60, meals: [{ atMin: 7 * 60, carbsG: 60 }], boluses: [], seed: 2 });
    expect(s.periodMs).toBe(180_000);
    expect(s.samples).toHaveLength(481);
    expect(s.samples.every((x) => x.mgdl >= 39 && x.mgdl <= 600)).toBe(true);
    expect(riskIndices(s.samples.map((x) => x.mgdl)).hbgi).toBeGreaterThan(0);
  });

  it('computes the Kovatchev risk of 112.5 mg/dL as about zero (the symmetric point)', () => {
    expect(riskIndices([112.5]).risk).toBeLessThan(0.01);
    expect(riskIndices([40]).lbgi).toBeGreaterThan(20);
  });
});
