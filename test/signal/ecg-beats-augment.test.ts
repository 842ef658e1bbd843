import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { AAMI_CLASSES } from '../../device-sdk/signal/ecg/beat-features.js';
import { noisePower, qrsSignalPower } from '../../device-sdk/signal/ecg/noise-mix.js';
import { nstNoises } from '../../firmware/cli/ecg.js';
import { AUGMENTATIONS, augmentedBeats, augmentedLead, type AugmentCopy, recordBeats } from '../../models/ecg-beats/dataset.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { requireBuild, ROOT } from '../helpers/cli.js';
import { MITDB, missingNote, NSTDB, sharedDataRuns } from '../helpers/shared-data.js';

const classCounts = (labels: Int8Array) => AAMI_CLASSES.map((_, c) => labels.filter((l) => l === c).length);
const medianRr = (samples: Int32Array) => {
  const rr = Array.from({ length: samples.length - 1 }, (_, i) => (samples[i + 1] as number) - (samples[i] as number)).sort((a, b) => a - b);
  return rr[rr.length >> 1] as number;
};

describe.skipIf(!sharedDataRuns(MITDB) || !sharedDataRuns(NSTDB))(`augmented training copies (train.js --augment experiment)${missingNote(MITDB)}${missingNote(NSTDB)}`, () => {
  const path = join(MITDB, '119');
  const wf = readWfdbRecord(path);
  const signal = wf.signals[0] as Int16Array;
  const fs = wf.header.fs;
  const ann = readWfdbAnnotations(path, 'atr').annotations;
  const noises = nstNoises(NSTDB);
  const original = recordBeats(MITDB, '119');

  it('a stretched copy is the record resampled in time, its reference scaled, its beats labelled as the original', () => {
    for (const factor of [0.9, 1.1]) {
      const copy: AugmentCopy = { kind: 'stretch', factor };
      const { lead, ann: scaled } = augmentedLead(signal, fs, ann, copy, []);
      expect(lead.length).toBe(Math.floor(signal.length * factor));
      expect(scaled.map((a) => a.sample)).toEqual(ann.map((a) => Math.round(a.sample * factor)));
      const beats = augmentedBeats(MITDB, '119', copy, []);
      // Every beat of 119 is found and matched in both copies (N 1542, V 443 on the original).
      expect(classCounts(beats.labels)).toEqual(classCounts(original.labels));
      expect(beats.labels.filter((l) => l < 0).length).toBe(0);
      // The heart rate it reads at the same sampling rate: RR scaled by the factor (to within a sample or two).
      expect(Math.abs(medianRr(beats.samples) - factor * medianRr(original.samples))).toBeLessThanOrEqual(2);
    }
  });

  it('a noise copy adds ma and bw each at its SNR as `medge ecg eval --noise-snr` defines it, from a different noise offset per copy', () => {
    const power = qrsSignalPower(signal, ann.filter((a) => isQrsCode(a.code)).map((a) => a.sample), fs);
    const added = AUGMENTATIONS.noise.map((copy) => {
      const { lead, ann: same } = augmentedLead(signal, fs, ann, copy, noises);
      expect(same).toEqual(ann.map((a) => expect.objectContaining({ sample: a.sample, code: a.code })));
      return { copy, noise: Float64Array.from(lead, (v, i) => v - (signal[i] as number)) };
    });
    for (const { copy, noise } of added) {
      if (copy.kind !== 'noise') throw new Error('noise copies only');
      // Two noises of that SNR each: about twice the power of one (ma and bw are nearly uncorrelated); rounding adds 1/12.
      const snr = 10 * Math.log10(power / (noisePower(noise) / 2));
      expect(Math.abs(snr - copy.snrDb)).toBeLessThan(0.5);
    }
    // The two copies' noises are different stretches of the NST records, not one noise at two gains.
    const [a, b] = added.map((x) => x.noise) as [Float64Array, Float64Array];
    const mean = (x: Float64Array) => x.reduce((s, v) => s + v, 0) / x.length;
    const [ma, mb] = [mean(a), mean(b)];
    let ab = 0;
    for (let i = 0; i < a.length; i++) ab += ((a[i] as number) - ma) * ((b[i] as number) - mb);
    const corr = ab / (a.length * Math.sqrt(noisePower(a) * noisePower(b)));
    expect(Math.abs(corr)).toBeLessThan(0.5);
  });

  it('train.js refuses --augment for the shipped model, an unknown variant, and with --lead2', () => {
    requireBuild();
    const run = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist', 'models', 'ecg-beats', 'train.js'), '--data', join(ROOT, 'test', 'fixtures', 'wfdb'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const final = run(['--augment', 'noise', '--no-cv']);
    expect(final.status).not.toBe(0);
    expect(final.stderr).toContain('use it with --no-final');
    const unknown = run(['--augment', 'rotate', '--no-final']);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('--augment must be one of noise, stretch, both, got "rotate"');
    const lead2 = run(['--augment', 'stretch', '--lead2', 'morph', '--no-final']);
    expect(lead2.status).not.toBe(0);
    expect(lead2.stderr).toContain('cannot be combined');
  });
});
