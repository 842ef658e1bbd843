import { describe, expect, it } from 'vitest';
import { aamiClassOf } from './beat-features.js';
import { afReference, classPairs, classScores, durationScore, grossClassScores, grossDurationScore, rhythmEpisodes } from './ec57.js';

const FS = 360;
const MIN5 = 300 * FS;
const N = 1;
const V = 5;
const A = 8;
const F = 6;
const Q = 13;

describe('EC57 V and S scoring', () => {
  it('counts V and S hits, misses and false calls from matched annotation pairs', () => {
    const at = (k: number) => MIN5 + 400 * k;
    const reference = [N, V, V, A, A, N, F, Q, N].map((code, k) => ({ sample: at(k), code }));
    const detections = [
      { sample: at(0) + 10, cls: 'N' as const }, // N -> N
      { sample: at(1) - 20, cls: 'V' as const }, // V -> V (hit)
      { sample: at(2) + 5, cls: 'N' as const }, // V -> N (V missed)
      { sample: at(3), cls: 'S' as const }, // A -> S (hit)
      // A at 4 not detected at all: counts against S Se
      { sample: at(5), cls: 'S' as const }, // N -> S (S false positive)
      { sample: at(6), cls: 'V' as const }, // F -> V: not counted against V +P
      { sample: at(7), cls: 'V' as const }, // Q -> V: not counted against V +P
      { sample: at(8), cls: 'V' as const }, // N -> V (V false positive)
      { sample: at(8) + 200, cls: 'V' as const }, // no reference beat: V false positive
    ];
    const s = classScores(classPairs(reference, detections, aamiClassOf, { fs: FS, length: at(12) }));
    expect(s.V).toMatchObject({ tp: 1, fn: 1, fp: 2 });
    expect(s.V.se).toBeCloseTo(50, 5);
    expect(s.V.ppv).toBeCloseTo(33.333, 2);
    expect(s.S).toMatchObject({ tp: 1, fn: 1, fp: 1 });
    expect(s.confusion.A).toBeUndefined();
    expect(s.confusion.S?.O).toBe(1);
    expect(s.confusion.O?.V).toBe(1);
  });

  it('scores from minute 5 and sums confusion matrices for the gross figure', () => {
    const early = [{ sample: 1000, code: V }];
    const a = classScores(classPairs(early, [{ sample: 1000, cls: 'N' }], aamiClassOf, { fs: FS, length: MIN5 * 2 }));
    expect(a.V).toMatchObject({ tp: 0, fn: 0, fp: 0, se: 100, ppv: 100 });
    const b = classScores(classPairs([{ sample: MIN5 + 10, code: V }], [{ sample: MIN5 + 10, cls: 'V' }], aamiClassOf, { fs: FS, length: MIN5 * 2 }));
    const c = classScores(classPairs([{ sample: MIN5 + 10, code: V }], [{ sample: MIN5 + 10, cls: 'S' }], aamiClassOf, { fs: FS, length: MIN5 * 2 }));
    const gross = grossClassScores([a, b, c]);
    expect(gross.V).toMatchObject({ tp: 1, fn: 1, fp: 0 });
    expect(gross.S).toMatchObject({ tp: 0, fn: 0, fp: 1 });
  });
});

describe('AF duration scoring', () => {
  it('reads (AFIB episodes from rhythm annotations, open to the end of the record', () => {
    const ann = [
      { sample: 0, code: 28, aux: '(N' },
      { sample: 1000, code: 28, aux: '(AFIB' },
      { sample: 3000, code: 28, aux: '(N' },
      { sample: 5000, code: 28, aux: '(AFIB' },
      { sample: 5200, code: 1 },
    ];
    expect(rhythmEpisodes(ann, '(AFIB', 9000)).toEqual([
      [1000, 3000],
      [5000, 9000],
    ]);
  });

  it('gives duration Se and +P from the overlap, from minute 5, summed over records for the gross figure', () => {
    const ref: [number, number][] = [[MIN5 - 1000, MIN5 + 1000]];
    const det: [number, number][] = [[MIN5 + 500, MIN5 + 2000]];
    const s = durationScore(ref, det, { fs: FS, length: MIN5 * 2 });
    // Reference from minute 5: 1000 samples; detection 1500; overlap 500.
    expect(s).toMatchObject({ overlap: 500, refOnly: 500, detOnly: 1000 });
    expect(s.se).toBeCloseTo(50, 5);
    expect(s.ppv).toBeCloseTo(33.333, 2);
    const none = durationScore([], [[MIN5, MIN5 + 3000]], { fs: FS, length: MIN5 * 2 });
    expect(none).toMatchObject({ overlap: 0, refOnly: 0, detOnly: 3000, se: 100, ppv: 0 });
    const gross = grossDurationScore([s, none]);
    expect(gross.se).toBeCloseTo(50, 5);
    expect(gross.ppv).toBeCloseTo((100 * 500) / 4500, 5);
  });

  // MIT-BIH 203-like sequence: AF, flutter, AF again, a VT run, back to AF, then VF (rhythm label and [ ]).
  const mixed = [
    { sample: 0, code: 28, aux: '(AFIB' },
    { sample: 1000, code: 28, aux: '(AFL' },
    { sample: 2000, code: 28, aux: '(AFIB' },
    { sample: 3000, code: 28, aux: '(VT' },
    { sample: 3500, code: 28, aux: '(AFIB' },
    { sample: 4000, code: 32 },
    { sample: 4200, code: 33 },
    { sample: 4500, code: 28, aux: '(VFL' },
    { sample: 5000, code: 28, aux: '(N' },
    { sample: 6000, code: 28, aux: '(AFL\0' },
  ];

  it('takes EC57 (epicmp) AF episodes from (AFIB, with reference flutter excluded from +P', () => {
    expect(afReference(mixed, 9000)).toEqual({
      af: [
        [0, 1000],
        [2000, 3000],
        [3500, 4500],
      ],
      excluded: [
        [1000, 2000],
        [6000, 9000],
      ],
    });
  });

  it('takes (AF-prefixed labels as AF under the rxr amap rule, ended by VFON, (VF and other rhythms', () => {
    expect(afReference(mixed, 9000, 'af-prefix')).toEqual({
      af: [
        [0, 3000],
        [3500, 4000],
        [6000, 9000],
      ],
      excluded: [],
    });
    expect(afReference(mixed, 9000, 'afib').af).toEqual(afReference(mixed, 9000).af);
  });

  it('counts detected AF inside excluded flutter neither for nor against +P', () => {
    const ref: [number, number][] = [[MIN5, MIN5 + 1000]];
    const flutter: [number, number][] = [[MIN5 + 1000, MIN5 + 3000]];
    const det: [number, number][] = [[MIN5 + 500, MIN5 + 4000]];
    const plain = durationScore(ref, det, { fs: FS, length: MIN5 * 2 });
    expect(plain).toMatchObject({ overlap: 500, refOnly: 500, detOnly: 3000 });
    const s = durationScore(ref, det, { fs: FS, length: MIN5 * 2, excluded: flutter });
    // 2000 of the 3500 detected samples lie in flutter: 1500 scored, 500 of them in AF.
    expect(s).toMatchObject({ overlap: 500, refOnly: 500, detOnly: 1000 });
    expect(s.se).toBeCloseTo(50, 5);
    expect(s.ppv).toBeCloseTo(33.333, 2);
  });
});
