import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksum, encodeSignals, formatHeader, isQrsCode, WFDB_ANNOTATION_CODES, type WfdbSignalSpec } from '../../device-sdk/protocols/wfdb.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { medge, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('ecg-cli');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'wfdb', '101-10s');

/** A copy of the 101-10s fixture (.hea, .dat, .atr) in a fresh temporary directory; returns its path without extension. */
function copyOfFixture(files: readonly string[] = ['hea', 'dat', 'atr']): string {
  const dir = tempDir();
  for (const ext of files) copyFileSync(`${FIXTURE}.${ext}`, join(dir, `101-10s.${ext}`));
  return join(dir, '101-10s');
}

/** The copy with its header's sampling frequency replaced (360 Hz in the fixture). */
function withRate(fs: string): string {
  const record = copyOfFixture();
  const header = readFileSync(`${record}.hea`, 'utf8');
  writeFileSync(`${record}.hea`, header.replace(/^101-10s 2 360 3600/, `101-10s 2 ${fs} 3600`));
  return record;
}

const noStackTrace = (stderr: string) => expect(stderr).not.toMatch(/unexpected error|\n\s+at /);

describe('medge ecg annotate', () => {
  it('writes one beat annotation per detected beat of a WFDB record, readable as MIT format', async () => {
    const out = join(tempDir(), '101-10s.qrs');
    const r = await medge(['ecg', 'annotate', FIXTURE, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const written = readWfdbAnnotations(FIXTURE, 'atr');
    const ours = readWfdbAnnotations(out.replace(/\.qrs$/, ''), 'qrs').annotations;
    const reference = written.annotations.filter((a) => isQrsCode(a.code)).map((a) => a.sample);
    // After the detector's 2 s learning period every reference beat is found within 150 ms (54 samples).
    const scored = reference.filter((s) => s > 2.5 * 360);
    expect(scored.length).toBeGreaterThan(5);
    for (const s of scored) expect(ours.some((a) => Math.abs(a.sample - s) <= 54), `beat at ${s}`).toBe(true);
    // Beats are typed with the AAMI class codes (N=1, S=8, V=5, F=6, Q=13) by the shipped model.
    expect(ours.every((a) => [1, 8, 5, 6, 13].includes(a.code))).toBe(true);
    expect(ours.filter((a) => a.code === WFDB_ANNOTATION_CODES.NORMAL).length).toBeGreaterThan(scored.length - 2);
    expect(r.stderr).toMatch(/classifier ecg-beats@/);
  });

  it('writes typed beats and AF rhythm annotations with the rule fallback (--no-model)', async () => {
    const out = join(tempDir(), '119.qrs');
    const r = await medge(['ecg', 'annotate', join(ROOT, 'test', 'fixtures', 'wfdb', '119-60s'), '--out', out, '--no-model']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/classifier algo:beat-rules@1/);
    const ours = readWfdbAnnotations(out.replace(/\.qrs$/, ''), 'qrs').annotations;
    expect(ours.some((a) => a.code === WFDB_ANNOTATION_CODES.PVC)).toBe(true);
  });
});

describe('medge ecg annotate, records it cannot use', () => {
  it('refuses a header with an absurd sampling frequency at once, naming the file and the value', async () => {
    // Before: the QRS detector sized a 2.5e9-sample buffer with a loop that never ended (no output, 10+ min).
    const record = withRate('1000000000');
    const r = await medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'x.qrs'), '--no-model'], { timeoutMs: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`wfdb-header: ${record}.hea: line 1: sampling frequency 1000000000 Hz is outside 0.001..100000 Hz`);
    noStackTrace(r.stderr);
  });

  it('runs to the end at 50 kHz and refuses 20 Hz, where the QRS band-pass cannot be built', async () => {
    const fast = await medge(['ecg', 'annotate', withRate('50000'), '--out', join(tempDir(), 'fast.qrs'), '--no-model'], { timeoutMs: 30_000 });
    expect(fast.code, fast.stderr).toBe(0);
    const record = withRate('20');
    const slow = await medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'slow.qrs'), '--no-model'], { timeoutMs: 30_000 });
    expect(slow.code, slow.stderr).toBe(2);
    expect(slow.stderr).toContain(`${record}.hea sampling frequency: is too low for the QRS detector`);
    expect(slow.stderr).toContain('(got 20)');
  });

  it('names a truncated signal file, says so, and how much of it was read', async () => {
    const record = copyOfFixture();
    writeFileSync(`${record}.dat`, readFileSync(`${record}.dat`).subarray(0, 3 * 1800)); // 1800 of 3600 frames
    const r = await medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'x.qrs'), '--no-model']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${record}.dat holds 1800 samples (5.0 s at 360 Hz) where the header gives 3600 (10.0 s at 360 Hz): the file looks truncated`);
  });

  it('refuses a signal file over 2 GiB as a data error naming the file and the limit', async () => {
    const record = copyOfFixture();
    truncateSync(`${record}.dat`, 3 * 1024 ** 3); // sparse: no disk used
    const r = await medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'x.qrs'), '--no-model']);
    expect(r.code, r.stderr).toBe(1);
    // Before: "cannot read ...: ERR_FS_FILE_TOO_LARGE (ERR_FS_FILE_TOO_LARGE)".
    expect(r.stderr).toContain(`cannot read ${record}.dat: the file is 2 GiB or larger, more than medge reads in one piece (ERR_FS_FILE_TOO_LARGE)`);
    noStackTrace(r.stderr);
  });

  it('refuses a record whose .dat is missing as a data error (exit 1), naming the file, without the usage', async () => {
    const r = await medge(['ecg', 'annotate', copyOfFixture(['hea', 'atr']), '--out', join(tempDir(), 'x.qrs'), '--no-model']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/record .*101-10s: its signal file .*101-10s\.dat is missing/);
    expect(r.stderr).not.toContain('Usage:');
    noStackTrace(r.stderr);
  });

  it('names the signal file when it is a directory (exit 1), not the record with a wildcard', async () => {
    const record = copyOfFixture(['hea', 'atr']);
    mkdirSync(`${record}.dat`);
    const r = await medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'x.qrs'), '--no-model']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`medge: record ${record}: cannot read ${record}.dat: is a directory, a file was expected (EISDIR)`);
    noStackTrace(r.stderr);
  });

  it('refuses a multi-frequency record (first signal at 2 samples per frame) instead of analysing it at half its rate', async () => {
    const record = copyOfFixture();
    const wf = readWfdbRecord(record);
    const [first, second] = wf.signals as [Int16Array, Int16Array];
    const twice = Int16Array.from({ length: 2 * first.length }, (_, i) => first[i >> 1] as number);
    const [a, b] = wf.header.signals as [WfdbSignalSpec, WfdbSignalSpec];
    writeFileSync(`${record}.hea`, formatHeader({ ...wf.header, signals: [{ ...a, samplesPerFrame: 2, checksum: checksum(twice) }, b] }));
    writeFileSync(`${record}.dat`, encodeSignals([twice, second], 212, { samplesPerFrame: [2, 1] }));
    const [annotate, evaluate] = await Promise.all([
      medge(['ecg', 'annotate', record, '--out', join(tempDir(), 'x.qrs'), '--no-model']),
      medge(['ecg', 'eval', '--data', dirname(record), '--no-model', '--from', '0', '--json']),
    ]);
    expect(annotate.code, annotate.stderr).toBe(1);
    expect(annotate.stderr).toContain(`medge: record ${record}: its first signal stores 2 samples per frame (format 212x2 in ${record}.hea: sampled at 720 Hz, a multi-frequency record)`);
    noStackTrace(annotate.stderr);
    expect(evaluate.code, evaluate.stderr).toBe(1);
    expect((JSON.parse(evaluate.stdout) as { failed: { record: string; errorCode: string }[] }).failed).toEqual([expect.objectContaining({ record: '101-10s', errorCode: 'data' })]);
  });

  it('accepts RECORD given as its .hea file', async () => {
    const out = join(tempDir(), 'x.qrs');
    const r = await medge(['ecg', 'annotate', `${FIXTURE}.hea`, '--out', out, '--no-model']);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(out).size).toBeGreaterThan(0);
  });

  it.each([
    ['a record without a header', () => [join(tempDir(), 'nope')], /RECORD .*nope: there is no header .*nope\.hea; RECORD is a WFDB record's path without extension/],
    ['a directory as RECORD', () => [join(ROOT, 'test', 'fixtures', 'wfdb')], /RECORD .*wfdb is a directory; give one record in it, without extension \(e\.g\. .*wfdb\/101-10s\)/],
    ['--out in a directory that does not exist', () => [FIXTURE, '--out', join(tempDir(), 'nodir', 'x.atr')], /--out .*nodir\/x\.atr: the directory .*nodir does not exist/],
    ['--out onto a directory', () => [FIXTURE, '--out', tempDir()], /--out .* is a directory: give the path of the file to write, e.g. --out .*\.qrs/],
    ['--model DIR and --no-model together', () => [FIXTURE, '--model', join(ROOT, 'models', 'ecg-beats'), '--no-model'], /give --model DIR or --no-model, not both/],
  ])('refuses %s with a usage error (exit 2) that says what to give', async (_name, args, message) => {
    const [record, ...rest] = args();
    const options = rest.includes('--out') ? rest : [...rest, '--out', join(tempDir(), 'x.qrs')];
    const r = await medge(['ecg', 'annotate', record as string, ...options, ...(rest.includes('--model') ? [] : ['--no-model'])]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('Usage: medge ecg annotate');
    noStackTrace(r.stderr);
  });

  it('says a --model directory does not exist, and keeps the training hint for a directory without a model', async () => {
    const missing = await medge(['ecg', 'annotate', FIXTURE, '--out', join(tempDir(), 'x.qrs'), '--model', 'nope']);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain('--model nope: no such directory');
    expect(missing.stderr).toContain(join('models', 'ecg-beats'));
    expect(missing.stderr).not.toContain('train:ecg');
    const empty = tempDir();
    const noModel = await medge(['ecg', 'annotate', FIXTURE, '--out', join(tempDir(), 'x.qrs'), '--model', empty]);
    expect(noModel.code, noModel.stderr).toBe(1);
    expect(noModel.stderr).toContain(`no beat classifier model in ${empty} (run npm run train:ecg)`);
  });

  it('lists the same backends in its usage and in the message for an unknown one', async () => {
    const r = await medge(['ecg', 'annotate', FIXTURE, '--out', join(tempDir(), 'x.qrs'), '--backend', 'gpu']);
    expect(r.code).toBe(2);
    const listed = /--backend must be one of ([a-z, ]+), got "gpu"/.exec(r.stderr)?.[1]?.split(', ');
    const usage = [...r.stderr.matchAll(/--backend ([a-z|]+)\]/g)].map((m) => m[1]?.split('|'));
    expect(listed).toEqual(['wasm', 'cpu', 'tensorflow']);
    expect(usage).toEqual([listed, listed]); // annotate and eval
  });
});

describe('medge ecg annotate --out', () => {
  it("refuses to write over the record's own files, even read-only ones and through another path", async () => {
    const record = copyOfFixture();
    const before = (ext: string) => readFileSync(`${record}.${ext}`);
    const kept = { hea: before('hea'), dat: before('dat'), atr: before('atr') };
    chmodSync(`${record}.atr`, 0o444); // as PhysioNet downloads often are: the rename used to replace it anyway
    const link = join(tempDir(), 'link');
    symlinkSync(join(record, '..'), link);
    for (const [out, what] of [
      [`${record}.atr`, 'reference annotations'],
      [join(link, '101-10s.atr'), 'reference annotations'],
      [`${record}.hea`, 'header'],
      [`${record}.dat`, 'signal file'],
    ] as const) {
      const r = await medge(['ecg', 'annotate', record, '--out', out, '--no-model']);
      expect(r.code, `${out}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`--out ${out} is the record's own ${what}`);
      expect(r.stderr).toContain(`e.g. --out ${join(out, '..', '101-10s.qrs')}`);
    }
    for (const ext of ['hea', 'dat', 'atr'] as const) expect(readFileSync(`${record}.${ext}`).equals(kept[ext]), ext).toBe(true);
    expect(statSync(`${record}.atr`).mode & 0o777).toBe(0o444);
  });

  it('refuses to replace a read-only file and replaces a writable one', async () => {
    const dir = tempDir();
    const readOnly = join(dir, 'kept.qrs');
    writeFileSync(readOnly, 'keep me');
    chmodSync(readOnly, 0o444);
    const r = await medge(['ecg', 'annotate', FIXTURE, '--out', readOnly, '--no-model']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--out ${readOnly} exists and is read-only (mode 0444); refusing to replace it`);
    expect(readFileSync(readOnly, 'utf8')).toBe('keep me');
    const writable = join(dir, 'old.qrs');
    writeFileSync(writable, 'old run');
    const again = await medge(['ecg', 'annotate', FIXTURE, '--out', writable, '--no-model']);
    expect(again.code, again.stderr).toBe(0);
    expect(readWfdbAnnotations(join(dir, 'old'), 'qrs').annotations.length).toBeGreaterThan(5);
  });
});

describe('medge ecg eval', () => {
  it('scores QRS, V, S and AF on a directory of records and prints JSON', async () => {
    const r = await medge(['ecg', 'eval', '--data', join(ROOT, 'test', 'fixtures', 'wfdb'), '--records', '119-60s', '--from', '10', '--json']);
    expect(r.code, r.stderr).toBe(0);
    type Score = { tp: number; fn: number; fp: number; se: number; ppv: number };
    const out = JSON.parse(r.stdout) as { classifier: string; records: { record: string }[]; gross: { qrs: Score; classes: { V: Score; S: Score }; af: { overlap: number; detOnly: number } } };
    expect(out.records.map((x) => x.record)).toEqual(['119-60s']);
    expect(out.classifier).toMatch(/^ecg-beats@/);
    // 50 s scored: about 55 beats, 16 of them V; no AF in the reference or the detection.
    expect(out.gross.qrs.tp + out.gross.qrs.fn).toBeGreaterThan(50);
    expect(out.gross.qrs.se).toBe(100);
    expect(out.gross.classes.V.tp + out.gross.classes.V.fn).toBeGreaterThanOrEqual(14);
    expect(out.gross.classes.V.se).toBeGreaterThanOrEqual(90);
    expect(out.gross.af).toMatchObject({ overlap: 0, detOnly: 0 });
  });

  it.each([
    ['a --data directory that does not exist', () => ['--data', join(tempDir(), 'nope')], /--data .*nope: no such directory/],
    ['a file as --data', () => ['--data', `${FIXTURE}.hea`], /--data .*101-10s\.hea is a file, not a directory; give the directory holding the records \(.*wfdb\), with --records 101-10s for this one/],
    ['a record that is not there', () => ['--data', join(ROOT, 'test', 'fixtures', 'wfdb'), '--records', '999'], /--records: there is no record 999 in .*wfdb \(no 999\.hea\); records there with a reference: 101-10s, 119-60s/],
    ['a record without a reference', () => ['--data', join(copyOfFixture(['hea', 'dat']), '..'), '--records', '101-10s'], /--records: record 101-10s has no reference annotations .*101-10s\.atr to score against/],
  ])('refuses %s with a usage error (exit 2)', async (_name, args, message) => {
    const r = await medge(['ecg', 'eval', ...args(), '--no-model']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    noStackTrace(r.stderr);
  });

  it('names a record it cannot read with its error, scores the others and exits 1', async () => {
    const dir = tempDir();
    const fixtures = join(ROOT, 'test', 'fixtures', 'wfdb');
    for (const ext of ['hea', 'dat', 'atr']) {
      copyFileSync(join(fixtures, `101-10s.${ext}`), join(dir, `101-10s.${ext}`));
      copyFileSync(join(fixtures, `119-60s.${ext}`), join(dir, `119-60s.${ext}`));
    }
    // 119-60s's signal file cut short: the record cannot be read; 101-10s sorts first, so a stop at the
    // bad record would still score it -- the old code then exited 1 with no scores at all.
    writeFileSync(join(dir, '119-60s.dat'), readFileSync(join(dir, '119-60s.dat')).subarray(0, 3000));
    const [text, json] = await Promise.all([
      medge(['ecg', 'eval', '--data', dir, '--from', '0', '--no-model']),
      medge(['ecg', 'eval', '--data', dir, '--from', '0', '--no-model', '--json']),
    ]);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stderr).toMatch(/119-60s failed: wfdb-signal: .*119-60s\.dat holds 1000 samples .* the file looks truncated/);
    expect(text.stderr).toContain('1 of 2 record(s) could not be scored: 119-60s');
    expect(text.stderr).not.toContain('Usage:');
    expect(text.stdout).toMatch(/^101-10s +\d+/m);
    expect(text.stdout).toMatch(/^gross +\d+/m);
    expect(text.stdout).toMatch(/Not scored \(1 of 2 records; gross is over the 1 scored\): 119-60s \(wfdb-signal: /);
    expect(json.code, json.stderr).toBe(1);
    const out = JSON.parse(json.stdout) as { records: { record: string }[]; failed: { record: string; error: string; errorCode: string }[]; gross: { qrs: { tp: number } } };
    expect(out.records.map((r) => r.record)).toEqual(['101-10s']);
    expect(out.failed).toEqual([{ record: '119-60s', error: expect.stringMatching(/looks truncated/), errorCode: 'decode' }]);
    expect(out.gross.qrs.tp).toBeGreaterThan(5);
  });

  it('prints - (null in JSON) for a figure without a denominator, in record rows and gross lines alike', async () => {
    const data = join(ROOT, 'test', 'fixtures', 'wfdb');
    // Nothing scored (--from past the end): every Se and +P lacks a denominator.
    const none = await medge(['ecg', 'eval', '--data', data, '--records', '101-10s', '--from', '99999', '--no-model', '--json']);
    expect(none.code, none.stderr).toBe(0);
    type Shown = { se: number | null; ppv: number | null };
    const j = JSON.parse(none.stdout) as { records: { qrs: Shown; af: Shown; afByRule: Record<string, Shown> }[]; gross: { qrs: Shown; af: Shown; classes: { V: Shown; S: Shown }; afByRule: Record<string, Shown> } };
    for (const s of [j.records[0]?.qrs, j.records[0]?.af, j.records[0]?.afByRule.ec57, j.gross.qrs, j.gross.af, j.gross.classes.V, j.gross.classes.S, ...Object.values(j.gross.afByRule)]) {
      expect(s).toMatchObject({ se: null, ppv: null });
    }
    const text = await medge(['ecg', 'eval', '--data', data, '--records', '101-10s', '--from', '99999', '--no-model']);
    expect(text.code, text.stderr).toBe(0);
    const gross = text.stdout.split('\n').find((l) => l.startsWith('gross')) as string;
    expect(gross.replace(/\s+/g, ' ')).toBe('gross 0 0 0 - - | 0 - - | 0 - - | 0 0 - -');
    expect(text.stdout).toContain('AF duration gross by reference rule: ec57 Se - +P -; af-prefix Se - +P -; afib Se - +P -');
    expect(text.stdout).not.toContain('100.00');
    // Beats scored, no AF anywhere: QRS figures print, the AF ones (row and gross line) do not.
    const beats = await medge(['ecg', 'eval', '--data', data, '--records', '119-60s', '--from', '10', '--no-model']);
    const row = beats.stdout.split('\n').find((l) => l.startsWith('119-60s')) as string;
    expect(row).toMatch(/ 100\.00 +100\.00 \|/);
    expect(row).toMatch(/ 0 +0 +- +-$/);
    expect(beats.stdout).toContain('ec57 Se - +P -');
  });
});
