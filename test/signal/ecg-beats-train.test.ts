import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelManifest } from '../../device-sdk/inference/artifacts.js';
import { readManifest, verifyArtifactDir } from '../../device-sdk/security/artifact-files.js';
import { defaultBeatModelDir } from '../../firmware/ecg-classifier.js';
import { initBackend, tf } from '../../device-sdk/inference/backend.js';
import { featureLength } from '../../device-sdk/signal/ecg/beat-features.js';
import { buildModel, disposeModel, expandInputs, mergeMembers, MODEL_ID, MODEL_VERSION, RULE_FEATURES } from '../../models/ecg-beats/train.js';
import { requireBuild, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('ecg-beats-train');
const devPub = readFileSync(join(ROOT, 'models', 'keys', 'dev-signing.pub'), 'utf8');

describe('npm run train:ecg', () => {
  it('signs the model it writes as MODEL_ID@MODEL_VERSION, so that the runtime takes it', () => {
    requireBuild();
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['train:ecg'] ?? '';
    // Run as npm runs it: `npm run train:ecg -- ARGS` appends ARGS to the script's last command. Without its
    // build step (the suite runs on the build it requires); two short fixture records (their beats are cached
    // in dist/cache/ecg-beats like the shared records'), one epoch, two members.
    const steps = script.split('&&').map((s) => s.trim()).filter((s) => s !== 'npm run build');
    const out = join(tmp(), 'ecg-beats');
    const args = ['--data', join(ROOT, 'test', 'fixtures', 'wfdb'), '--out', out, '--no-cv', '--epochs', '1', '--members', '2'];
    const run = spawnSync('sh', ['-c', `${steps.join(' && ')} ${args.map((a) => `'${a}'`).join(' ')}`], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const { manifest } = verifyArtifactDir(out, [devPub]);
    expect(manifest).toMatchObject({ id: MODEL_ID, version: MODEL_VERSION });
    expect(readModelManifest(out).manifest).toMatchObject({ id: MODEL_ID, version: MODEL_VERSION });
  });

  it('is the version the shipped model was signed and written with', () => {
    expect(readManifest(defaultBeatModelDir())).toMatchObject({ id: MODEL_ID, version: MODEL_VERSION });
    expect(readModelManifest(defaultBeatModelDir()).manifest).toMatchObject({ id: MODEL_ID, version: MODEL_VERSION });
  });
});

describe('models/ecg-beats/train.ts', () => {
  it('merges members and widens the inputs without leaving tensors behind', async () => {
    await initBackend('cpu');
    const members = [1, 1001, 2001].map((seed) => buildModel(featureLength() - RULE_FEATURES.length, seed));
    const before = tf.memory().numTensors;
    const merged = mergeMembers(members, 1);
    const full = expandInputs(merged, 1);
    expect(full.inputs[0]?.shape).toEqual([null, featureLength()]);
    expect(full.countParams()).toBe(merged.countParams() + RULE_FEATURES.length * 64 * members.length);
    disposeModel(merged);
    disposeModel(full);
    expect(tf.memory().numTensors).toBe(before);
    for (const m of members) disposeModel(m);
    expect(tf.memory().numTensors).toBe(0);
  });
});
