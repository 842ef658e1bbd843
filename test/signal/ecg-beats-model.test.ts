import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { readModelManifest } from '../../device-sdk/inference/artifacts.js';
import { aamiClassOf, featureLength } from '../../device-sdk/signal/ecg/beat-features.js';
import { classPairs, classScores } from '../../device-sdk/signal/ecg/ec57.js';
import { analyzeSignal } from '../../firmware/cli/ecg.js';
import { defaultBeatModelDir } from '../../firmware/ecg-classifier.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { useShippedBeatClassifier } from '../helpers/beat-classifier.js';
import { ROOT } from '../helpers/cli.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'wfdb', '119-60s');

describe('the shipped ECG beat classifier (models/ecg-beats)', () => {
  const shipped = useShippedBeatClassifier();

  it('is a uint8 artifact whose manifest gives labels, input spec and cross-validation figures', () => {
    const { manifest } = readModelManifest(defaultBeatModelDir());
    expect(manifest).toMatchObject({ id: 'ecg-beats', quantization: 'uint8', labels: ['N', 'S', 'V', 'F', 'Q'] });
    expect(manifest.input.shape).toEqual([null, featureLength()]);
    expect(manifest.metrics).toHaveProperty('crossValidation');
    expect(shipped.current.worker.backend).toBe('wasm');
  });

  it('classifies the ventricular beats of a minute of record 119 (bigeminy) in the worker', async () => {
    const record = readWfdbRecord(FIXTURE);
    const r = await analyzeSignal(record.signals[0] as Int16Array, record.header.fs, shipped.current);
    const reference = readWfdbAnnotations(FIXTURE, 'atr').annotations;
    // Every reference beat after the first 10 s (the references of the features settle) is scored.
    const scores = classScores(classPairs(reference, r.beats, aamiClassOf, { fs: 360, length: 21600, startSeconds: 10 }));
    const refV = reference.filter((a) => isQrsCode(a.code) && a.code === 5 && a.sample >= 3600).length;
    expect(refV).toBeGreaterThanOrEqual(14);
    expect(scores.V.tp + scores.V.fn).toBe(refV);
    expect(scores.V.se).toBeGreaterThanOrEqual(90);
    expect(scores.V.ppv).toBeGreaterThanOrEqual(90);
    expect(r.classifier).toMatch(/^ecg-beats@/);
    expect(r.afEpisodes).toEqual([]);
  });
});
