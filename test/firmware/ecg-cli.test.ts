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
    expect(ours.every((a) => a.code === WFDB_ANNOTATION_CODES.UNKNOWN)).toBe(true);
  });
});
