import { describe, expect, it } from 'vitest';
import { flutterEpisodes, grossScore, scoreDetections } from './ec57.js';

const FS = 360;
const MIN5 = 300 * FS;
const beat = (sample: number, code = 1) => ({ sample, code });

describe('EC57 beat-by-beat scoring', () => {
  it('matches within 150 ms, one detection per beat, nearest first', () => {
    const refs = [beat(MIN5 + 1000), beat(MIN5 + 1300), beat(MIN5 + 2000)];
    // 54 samples = 150 ms at 360 Hz: +54 matches, +55 does not.
    const score = scoreDetections(refs, [MIN5 + 1054, MIN5 + 1290, MIN5 + 1310, MIN5 + 2055], { fs: FS, length: MIN5 + 5000 });
    expect(score).toMatchObject({ tp: 2, fn: 1, fp: 2 });
    expect(score.se).toBeCloseTo(66.667, 2);
    expect(score.ppv).toBeCloseTo(50, 5);
  });

  it('ignores the first five minutes and non-beat annotations', () => {
    const refs = [beat(100), beat(MIN5 - 10), { sample: MIN5 + 50, code: 28 }, beat(MIN5 + 500, 5), { sample: MIN5 + 900, code: 14 }];
    const score = scoreDetections(refs, [90, MIN5 - 10, MIN5 + 505, MIN5 + 900], { fs: FS, length: MIN5 + 2000 });
    // MIN5 - 10 is matched to nothing scored but lies before the start: not a false positive. MIN5 + 900 (noise) is.
    expect(score).toMatchObject({ tp: 1, fn: 0, fp: 1 });
  });

  it('leaves ventricular flutter episodes out, including one still open at the end', () => {
    const refs = [beat(MIN5 + 100), { sample: MIN5 + 200, code: 32 }, beat(MIN5 + 300), { sample: MIN5 + 400, code: 33 }, beat(MIN5 + 600), { sample: MIN5 + 900, code: 32 }, beat(MIN5 + 1000)];
    expect(flutterEpisodes(refs, MIN5 + 2000)).toEqual([
      [MIN5 + 200, MIN5 + 400],
      [MIN5 + 900, MIN5 + 2000],
    ]);
    const score = scoreDetections(refs, [MIN5 + 100, MIN5 + 310, MIN5 + 350, MIN5 + 1500], { fs: FS, length: MIN5 + 2000 });
    expect(score).toMatchObject({ tp: 1, fn: 1, fp: 0 });
  });

  it('sums gross counts rather than averaging percentages', () => {
    const g = grossScore([
      { tp: 99, fn: 1, fp: 0, se: 99, ppv: 100 },
      { tp: 1, fn: 1, fp: 1, se: 50, ppv: 50 },
    ]);
    expect(g).toMatchObject({ tp: 100, fn: 2, fp: 1 });
    expect(g.se).toBeCloseTo(98.039, 3);
  });
});
