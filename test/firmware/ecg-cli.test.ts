import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isQrsCode, WFDB_ANNOTATION_CODES } from '../../device-sdk/protocols/wfdb.js';
import { readWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';
import { medge, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('ecg-cli');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'wfdb', '101-10s');

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
});
