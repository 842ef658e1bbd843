import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultBeatModelDir, WorkerBeatClassifier } from '../../firmware/ecg-classifier.js';
import { requireBuild, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('ecg-model-refusal');

/** A copy of the shipped beat model whose manifest says it was trained on the lead's own polarity (as 1.3.0 was). */
function modelOfOtherFeatures(): string {
  const dir = join(tmp(), 'ecg-beats');
  cpSync(defaultBeatModelDir(), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'medge-model.json'), 'utf8')) as { input: { featureOptions: Record<string, unknown> } };
  manifest.input.featureOptions.polarity = 'as-recorded';
  writeFileSync(join(dir, 'medge-model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

describe('a beat model trained on other features', () => {
  it('is refused by the runtime classifier and by the ECG bench alike', async () => {
    requireBuild();
    const dir = modelOfOtherFeatures();
    await expect(WorkerBeatClassifier.start(dir, 'wasm')).rejects.toThrow(/manifest field input\.featureOptions\.polarity/);
    // The bench refuses it before timing anything: without the check it timed the model in process (its
    // steps 2 and 3) and failed only at step 4, when the worker classifier refused it.
    const bench = spawnSync(process.execPath, [join(ROOT, 'bench', 'ecg-pipeline.js'), '--data', join(ROOT, 'test', 'fixtures', 'wfdb'), '--model', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(bench.status, bench.stderr).toBe(1);
    expect(bench.stderr).toMatch(/ecg-pipeline: refused: .*as-recorded lead polarity.*manifest field input\.featureOptions\.polarity/);
    expect(bench.stderr).not.toMatch(/QRS front end done/);
    expect(bench.stdout).toBe('');
  });
});
