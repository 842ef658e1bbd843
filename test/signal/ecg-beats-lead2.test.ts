import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AAMI_CLASSES } from '../../device-sdk/signal/ecg/beat-features.js';
import { readWfdbRecord } from '../../simulator/sources/wfdb-files.js';
import { MITDB, missingNote, sharedDataRuns } from '../helpers/shared-data.js';
import { featuresAtPeaks, LEAD2_SCALARS, lead2Beats, recordBeats } from '../../models/ecg-beats/dataset.js';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.skipIf(!sharedDataRuns(MITDB))(`second-lead beat features (train.js --lead2 experiment)${missingNote(MITDB)}`, () => {
  const beats = recordBeats(MITDB, '119');

  it('driving the extractor at given R peaks reproduces the streaming front end on the same lead', () => {
    const rows = featuresAtPeaks(readWfdbRecord(join(MITDB, '119')).signals[0] as Int16Array, beats.fs, beats.samples);
    expect(rows.length).toBe(beats.samples.length);
    let worst = 0;
    rows.forEach((row, i) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - (beats.features[i * beats.width + c] as number))))));
    // recordBeats rounds to 1e-5.
    expect(worst).toBeLessThan(1e-4);
  });

  it("gives one row per first-lead beat, and 119's ventricular beats differ from its dominant beat in V1", () => {
    const l2 = lead2Beats(MITDB, beats);
    expect(l2.lead).toBe('V1');
    expect(l2.width).toBe(LEAD2_SCALARS.length + 50);
    expect(l2.features.length).toBe(beats.samples.length * l2.width);
    const corr = (cls: string) => {
      const values: number[] = [];
      beats.labels.forEach((l, i) => {
        if (AAMI_CLASSES[l] === cls) values.push(l2.features[i * l2.width] as number);
      });
      return mean(values);
    };
    expect(corr('N')).toBeGreaterThan(0.95);
    expect(corr('V')).toBeLessThan(0.85);
  });
});
