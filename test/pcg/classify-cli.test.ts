/**
 * `medge pcg classify` end to end (built CLI): any PCM WAV in, one JSON line per file out; shared
 * PASCAL recordings when ../shared is there; and the shipped model's cross-validation figures in
 * its manifest match what its model card states.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeWav } from '../../device-sdk/protocols/wav.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { sha256Hex } from '../../device-sdk/security/signing.js';
import { BIN, medge, requireBuild, ROOT } from '../helpers/cli.js';
import { missingNote, SHARED_DATA, sharedDataRuns } from '../helpers/shared-data.js';
import { useTempDirs } from '../helpers/temp.js';
import { syntheticPcg } from './synthetic.js';

const tempDir = useTempDirs('pcg-cli');
const PASCAL = join(SHARED_DATA, 'pcg', 'pascal-b');
const MODEL_DIR = join(ROOT, 'models', 'pcg-abnormal');

interface Line {
  file: string;
  label: string;
  probability: number | null;
  heartRate: number | null;
  model?: string;
  modelSha256?: string;
  error?: string;
  errorCode?: string;
}

const MODEL_SHA256 = sha256Hex(readFileSync(join(ROOT, 'models', 'pcg-abnormal', 'medge-model.json')));
const MODEL_ID = (() => {
  const m = JSON.parse(readFileSync(join(ROOT, 'models', 'pcg-abnormal', 'medge-model.json'), 'utf8')) as { id: string; version: string };
  return `${m.id}@${m.version}`;
})();

function parseLines(stdout: string): Line[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
}

function checkShape(line: Line): void {
  expect(Object.keys(line)).toEqual(expect.arrayContaining(['file', 'label', 'probability', 'heartRate']));
  expect(['normal', 'abnormal', 'unreadable']).toContain(line.label);
  if (line.label === 'unreadable') expect(line.probability).toBeNull();
  else {
    expect(line.probability).toBeGreaterThanOrEqual(0);
    expect(line.probability).toBeLessThanOrEqual(1);
    expect(line.label === 'abnormal').toBe((line.probability as number) >= 0.5);
  }
  if (line.heartRate !== null) expect(line.heartRate).toBeGreaterThan(20);
  // No heart rate from a recording that cannot be read for one.
  if (line.label === 'unreadable') expect(line.heartRate).toBeNull();
  expect(line).toMatchObject({ model: MODEL_ID, modelSha256: MODEL_SHA256 });
}

describe('medge pcg classify', () => {
  it('reads 8-bit mono, 24-bit stereo and float WAVs at other rates; JSON lines; a bad file is an error line, not a label, and exit 1', async () => {
    const dir = tempDir();
    const pcg = syntheticPcg({ seconds: 12, bpm: 80, rateHz: 8000 });
    const files = {
      u8: join(dir, 'u8-8k.wav'),
      stereo: join(dir, 's24-stereo-44k.wav'),
      float: join(dir, 'f32-2k.wav'),
      bad: join(dir, 'not-a-wav.wav'),
    };
    writeFileSync(files.u8, encodeWav(pcg.samples, { rateHz: 8000, format: 'u8' }));
    const hi = syntheticPcg({ seconds: 12, bpm: 80, rateHz: 44100 });
    writeFileSync(files.stereo, encodeWav([hi.samples, hi.samples.map((v) => v * 0.5)], { rateHz: 44100, format: 's24' }));
    writeFileSync(files.float, encodeWav(syntheticPcg({ seconds: 12, bpm: 80, rateHz: 2000 }).samples, { rateHz: 2000, format: 'f32' }));
    writeFileSync(files.bad, 'RIFF....WAVEjunk');
    const r = await medge(['pcg', 'classify', files.u8, files.stereo, files.float, files.bad, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const lines = parseLines(r.stdout);
    expect(lines.map((l) => l.file)).toEqual([files.u8, files.stereo, files.float, files.bad]);
    lines.slice(0, 3).forEach(checkShape);
    for (const l of lines.slice(0, 3)) {
      expect(l.label).not.toBe('unreadable');
      expect(l.heartRate).toBe(80);
    }
    expect(lines[3]).toEqual({ file: files.bad, label: null, probability: null, heartRate: null, error: expect.stringMatching(/^not a readable WAV file: wav: /) as unknown, errorCode: 'wav' });
  });

  it('reports no heart rate for recordings without usable heart sounds (silence, too short, noise, clipping)', async () => {
    const dir = tempDir();
    const rate = 4000;
    const rand = mulberry32(11);
    const files = {
      silent: join(dir, 'silent-10s.wav'),
      short: join(dir, 'silent-0.5s.wav'),
      noise: join(dir, 'noise.wav'),
      clipped: join(dir, 'clipped.wav'),
    };
    writeFileSync(files.silent, encodeWav(new Float32Array(10 * rate), { rateHz: rate }));
    writeFileSync(files.short, encodeWav(new Float32Array(rate / 2), { rateHz: rate }));
    writeFileSync(files.noise, encodeWav(Float32Array.from({ length: 10 * rate }, () => 0.25 * (2 * rand() - 1)), { rateHz: rate }));
    writeFileSync(files.clipped, encodeWav(Float32Array.from({ length: 10 * rate }, (_, i) => Math.sign(Math.sin((2 * Math.PI * 1.2 * i) / rate))), { rateHz: rate }));
    const r = await medge(['pcg', 'classify', ...Object.values(files), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = parseLines(r.stdout);
    expect(lines.map((l) => [l.label, l.heartRate])).toEqual(Object.values(files).map(() => ['unreadable', null]));
    lines.forEach(checkShape);
    const text = await medge(['pcg', 'classify', files.silent]);
    expect(text.stdout).not.toMatch(/heart rate/);
  });

  it('answers unreadable (low-sample-rate) for recordings sampled below 1600 Hz instead of screening them', async () => {
    const dir = tempDir();
    const rand = mulberry32(5);
    const files = { noise8: join(dir, 'noise-8hz.wav'), heart1k: join(dir, 'heart-1000hz.wav') };
    writeFileSync(files.noise8, encodeWav(Float32Array.from({ length: 8 * 20 }, () => 0.6 * (2 * rand() - 1)), { rateHz: 8 }));
    writeFileSync(files.heart1k, encodeWav(syntheticPcg({ seconds: 12, bpm: 70, rateHz: 1000 }).samples, { rateHz: 1000 }));
    const r = await medge(['pcg', 'classify', ...Object.values(files), '--json']);
    expect(r.code, r.stderr).toBe(0);
    for (const line of parseLines(r.stdout)) {
      expect(line).toMatchObject({ label: 'unreadable', probability: null, heartRate: null });
      expect((line as unknown as { qualityFlags: string[] }).qualityFlags).toContain('low-sample-rate');
    }
  });

  it('reports a missing file, a directory and a too-long recording as errors for those files, screens the others, exits 1', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.wav');
    writeFileSync(good, encodeWav(syntheticPcg({ seconds: 8 }).samples, { rateHz: 4000 }));
    // 301 s at 1 kHz (600 kB): longer than any stethoscope recording, refused from its header.
    const long = join(dir, 'long.wav');
    writeFileSync(long, encodeWav(new Float32Array(301 * 1000), { rateHz: 1000 }));
    const missing = join(dir, 'missing.wav');
    const [json, text] = await Promise.all([medge(['pcg', 'classify', missing, dir, long, good, '--json']), medge(['pcg', 'classify', missing, good])]);
    expect(json.code, json.stderr).toBe(1);
    const lines = parseLines(json.stdout);
    expect(lines.map((l) => [l.file, l.label, l.errorCode ?? null])).toEqual([
      [missing, null, 'ENOENT'],
      [dir, null, 'EISDIR'],
      [long, null, 'too-long'],
      [good, expect.stringMatching(/^(normal|abnormal)$/), null],
    ]);
    expect(lines[0]?.error).toBe('cannot read: no such file or directory');
    expect(lines[1]?.error).toBe('cannot read: is a directory, not a WAV file');
    expect(lines[2]?.error).toMatch(/recording is 301 s \(5\.0 min\) long; pcg classify screens recordings of up to 5 min.*trim/);
    checkShape(lines[3] as Line);
    expect(json.stderr).toMatch(/3 of 4 file\(s\) could not be screened/);
    expect(text.code).toBe(1);
    expect(text.stdout).not.toMatch(/missing\.wav/);
    expect(text.stdout).toMatch(/good\.wav: (normal|abnormal)/);
    expect(text.stderr).toMatch(/missing\.wav: cannot read: no such file or directory/);
    expect(text.stderr).not.toMatch(/ENOENT: no such file or directory|\n\s+at /);
  });

  it('screens incomplete or damaged WAVs with a visible flag and warning (cut short, size never written, no pad byte, antiphase stereo, NaN samples)', async () => {
    const dir = tempDir();
    const x = syntheticPcg({ seconds: 10 }).samples;
    const whole = encodeWav(x, { rateHz: 4000 });
    const put = (name: string, bytes: Uint8Array) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    // Cut in the middle of a sample, header untouched: 5 s of the 10 s present.
    const cut = put('cut.wav', whole.subarray(0, 44 + 40_001));
    // A streaming recorder's header: data size 0, 10 s of audio after it.
    const unset = Uint8Array.from(whole);
    new DataView(unset.buffer).setUint32(40, 0, true);
    const size0 = put('size0.wav', unset);
    // A 3-byte chunk without its pad byte between fmt and data.
    const nopad = new Uint8Array(whole.length + 11);
    nopad.set(whole.subarray(0, 36));
    nopad.set([0x6a, 0x75, 0x6e, 0x6b, 3, 0, 0, 0, 0x61, 0x62, 0x63], 36);
    nopad.set(whole.subarray(36), 47);
    const odd = put('nopad.wav', nopad);
    const anti = put('antiphase.wav', encodeWav([x, x.map((v) => -0.8 * v)], { rateHz: 4000 }));
    // encodeWav writes no NaN: samples 1000-1999 overwritten in the data chunk (at byte 44).
    const nan = encodeWav(x, { rateHz: 4000, format: 'f32' });
    for (let i = 1000; i < 2000; i++) new DataView(nan.buffer).setFloat32(44 + 4 * i, i === 1000 ? Number.POSITIVE_INFINITY : Number.NaN, true);
    const nans = put('nan.wav', nan);
    const r = await medge(['pcg', 'classify', cut, size0, odd, anti, nans, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [a, b, c, d, e] = parseLines(r.stdout) as (Line & { truncated?: boolean; qualityFlags?: string[]; warnings?: string[]; channel?: number; invalidSamples?: number })[];
    expect(a).toMatchObject({ truncated: true, qualityFlags: expect.arrayContaining(['truncated']) });
    expect(a?.warnings?.[0]).toMatch(/declares 80000 bytes but the file holds 40000: the recording is cut short; screened the 5\.0 s present/);
    expect(a?.label).toMatch(/^(normal|abnormal)$/);
    expect(b).toMatchObject({ label: expect.stringMatching(/^(normal|abnormal)$/), heartRate: 72, truncated: true });
    expect(b?.warnings?.[0]).toMatch(/size was never written \(0.*read 10\.0 s to the end of the file; the recording may be incomplete/);
    expect(c).toMatchObject({ label: expect.stringMatching(/^(normal|abnormal)$/), heartRate: 72 });
    expect(c?.truncated).toBeUndefined();
    expect(d).toMatchObject({ label: expect.stringMatching(/^(normal|abnormal)$/), heartRate: 72, channel: 0 });
    expect(d?.warnings?.[0]).toMatch(/cancel out when averaged \(antiphase\)/);
    // 1000 of 40000 samples (2.5%) invalid: unreadable, not a silent "normal".
    expect(e).toMatchObject({ label: 'unreadable', probability: null, heartRate: null, invalidSamples: 1000, qualityFlags: expect.arrayContaining(['invalid-samples']) });
    [a, b, c, d, e].forEach((l) => checkShape(l as Line));
    const text = await medge(['pcg', 'classify', cut]);
    expect(text.stdout).toMatch(/cut\.wav: (normal|abnormal) .*\(.*truncated\)/);
    expect(text.stderr).toMatch(/cut\.wav: warning: the data chunk declares 80000 bytes/);
  });

  it('screens a WAV whose metadata chunk before the data is larger than 1 MiB (embedded picture, long iXML)', async () => {
    const file = join(tempDir(), 'meta.wav');
    writeFileSync(file, encodeWav(syntheticPcg({ seconds: 8 }).samples, { rateHz: 4000, extraChunks: [['LIST', new Uint8Array(2 * 1024 * 1024 + 1)]] }));
    const r = await medge(['pcg', 'classify', file, '--json']);
    expect(r.code, r.stdout).toBe(0);
    const [line] = parseLines(r.stdout);
    checkShape(line as Line);
    expect(line?.heartRate).toBe(72);
  });

  it('stops quietly, exit 1, when the reader of its output goes away (| head -1): no stack trace', async () => {
    const dir = tempDir();
    const file = join(dir, 'a.wav');
    writeFileSync(file, encodeWav(syntheticPcg({ seconds: 8 }).samples, { rateHz: 4000 }));
    requireBuild();
    const child = spawn(process.execPath, [BIN, 'pcg', 'classify', ...Array.from({ length: 40 }, () => file), '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The first line read, the pipe is closed, as head does.
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    checkShape(JSON.parse(first.split('\n')[0] as string) as Line);
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code).toBe(1);
  });

  it('lists every backend it accepts in its help (and so does glucose predict)', async () => {
    const [help, glucose] = await Promise.all([medge(['pcg', 'classify', '--help']), medge(['glucose', '--help'])]);
    expect(help.stdout).toMatch(/--backend wasm\|cpu\|tensorflow/);
    expect(glucose.stdout).toMatch(/--backend wasm\|cpu\|tensorflow/);
  });

  it('prints text without --json, and usage errors exit 2', async () => {
    const file = join(tempDir(), 'a.wav');
    writeFileSync(file, encodeWav(syntheticPcg({ seconds: 8 }).samples, { rateHz: 4000 }));
    const r = await medge(['pcg', 'classify', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (normal|abnormal) p\\(abnormal\\)=\\d\\.\\d\\d heart rate 72/min`));
    expect(r.stdout).toMatch(/decision support, not a diagnosis/);
    expect((await medge(['pcg', 'classify'])).code).toBe(2);
    expect((await medge(['pcg', 'classify', file, '--backend', 'gpu'])).code).toBe(2);
  });
});

describe.skipIf(!sharedDataRuns(PASCAL))(`medge pcg classify on shared PASCAL recordings${missingNote(PASCAL)}`, () => {
  it('answers every recording of a few patients with the JSON shape', async () => {
    const names = readdirSync(PASCAL).sort();
    const pick = ['normal__', 'murmur__', 'extrastole__', 'normal_noisynormal_'].map((p) => names.find((n) => n.startsWith(p)) as string);
    const r = await medge(['pcg', 'classify', ...pick.map((n) => join(PASCAL, n)), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = parseLines(r.stdout);
    expect(lines).toHaveLength(4);
    lines.forEach(checkShape);
  });
});

describe('the shipped pcg-abnormal model', () => {
  const manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'medge-model.json'), 'utf8')) as {
    quantization: string;
    metrics: { crossValidation: { cv: { balancedAccuracy: number; unreadableRate: number; sensitivity: number; specificity: number; auc: number; recordings: number } } };
  };
  const card = readFileSync(join(MODEL_DIR, 'MODEL_CARD.md'), 'utf8');
  const cardFigure = (name: string) => {
    const m = new RegExp(`\\| ${name} \\| ([0-9.]+) %? ?\\|`).exec(card);
    if (!m) throw new Error(`MODEL_CARD.md has no "| ${name} | ... |" row`);
    return Number(m[1]);
  };

  it('is uint8-quantized and its manifest cross-validation figures are the ones its model card states', () => {
    expect(manifest.quantization).toBe('uint8');
    const cv = manifest.metrics.crossValidation.cv;
    expect(cardFigure('balanced accuracy')).toBeCloseTo(cv.balancedAccuracy * 100, 1);
    expect(cardFigure('unreadable')).toBeCloseTo(cv.unreadableRate * 100, 1);
    expect(cardFigure('sensitivity')).toBeCloseTo(cv.sensitivity * 100, 1);
    expect(cardFigure('specificity')).toBeCloseTo(cv.specificity * 100, 1);
    expect(cardFigure('recordings')).toBe(cv.recordings);
    // The card's stated floors hold for the shipped figures.
    expect(cv.unreadableRate).toBeLessThanOrEqual(0.15);
    expect(cv.balancedAccuracy).toBeGreaterThanOrEqual(cardFigure('balanced accuracy floor') / 100);
  });
});
