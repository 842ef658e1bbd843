import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.js';
import { median, medianInPlace, upperMedian } from './stats.js';

/** Reference: a sorted copy, the middle value or the mean of the two middle ones. */
function reference(values: readonly number[], upper = false): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 || upper ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Random lists with ties (values on a coarse grid) or without. */
function randomList(rand: () => number, n: number, ties: boolean): number[] {
  return Array.from({ length: n }, () => (ties ? Math.floor(rand() * 7) - 3 : (rand() - 0.5) * 1e3));
}

describe('median', () => {
  it('takes the middle value of an odd count and the mean of the two middle values of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([2, 1])).toBe(1.5);
    expect(median(Float32Array.of(0.5, -1, 0.25, 8))).toBe(0.375);
  });

  it('upperMedian takes the larger middle value of an even count, the middle one of an odd count', () => {
    expect(upperMedian([4, 1, 3, 2])).toBe(3);
    expect(upperMedian([2, 1])).toBe(2);
    expect(upperMedian([5, 9, 1])).toBe(5);
  });

  it('uses only the first n values when a count is given', () => {
    expect(median([5, 1, 3, 100, -100], 3)).toBe(3);
    expect(median([5, 1, 3, 100, -100], 4)).toBe(4);
    expect(upperMedian([5, 1, 3, 100, -100], 4)).toBe(5);
    expect(() => median([1, 2], 3)).toThrow(RangeError);
    expect(() => median([1, 2], -1)).toThrow(RangeError);
  });

  it('is NaN for an empty list or one holding NaN (NaN is not ordered, so it is not skipped silently)', () => {
    expect(median([])).toBeNaN();
    expect(upperMedian([])).toBeNaN();
    expect(median([1, Number.NaN, 3])).toBeNaN();
    expect(upperMedian([Number.NaN, 1])).toBeNaN();
    expect(medianInPlace(Float64Array.of(1, 2, Number.NaN), 3)).toBeNaN();
    // A NaN past the count is not part of the list.
    expect(median([1, 2, 3, Number.NaN], 3)).toBe(2);
    expect(medianInPlace(Float64Array.of(1, 2, 3, Number.NaN), 3)).toBe(2);
    // Infinities are ordered values.
    expect(median([Number.POSITIVE_INFINITY, 1, 2])).toBe(2);
    expect(median([Number.NEGATIVE_INFINITY, 1, 2, 3])).toBe(1.5);
  });

  it('does not modify its input', () => {
    const values = [9, 3, 7, 1, 5, 2];
    const long = randomList(mulberry32(3), 101, false);
    const copy = [...long];
    median(values);
    upperMedian(values);
    median(long);
    expect(values).toEqual([9, 3, 7, 1, 5, 2]);
    expect(long).toEqual(copy);
  });

  it('matches a full sort on random lists of every length up to 200, with and without ties', () => {
    const rand = mulberry32(11);
    for (let n = 1; n <= 200; n++) {
      for (const ties of [false, true]) {
        const values = randomList(rand, n, ties);
        expect(median(values)).toBe(reference(values));
        expect(upperMedian(values)).toBe(reference(values, true));
        const buffer = Float64Array.from(values);
        expect(medianInPlace(buffer)).toBe(reference(values));
      }
    }
  });

  it('handles sorted, reversed and constant lists on the selection path (longer than 32)', () => {
    const up = Array.from({ length: 100 }, (_, i) => i);
    expect(median(up)).toBe(49.5);
    expect(median([...up].reverse())).toBe(49.5);
    expect(upperMedian(up)).toBe(50);
    expect(median(new Array<number>(77).fill(4))).toBe(4);
  });

  it('reuses its scratch: a short list after a long one sees none of the long one', () => {
    const long = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(median(long)).toBe(500.5);
    expect(median([0.1, 0.3, 0.2])).toBe(0.2);
    expect(median([0.1, 0.4])).toBeCloseTo(0.25, 15);
    expect(median(long)).toBe(500.5);
  });

  it('medianInPlace reorders only the first n values of the scratch buffer', () => {
    const rand = mulberry32(5);
    for (const n of [5, 40]) {
      const values = randomList(rand, n, true);
      const buffer = new Float64Array(n + 10).fill(-7);
      buffer.set(values);
      expect(medianInPlace(buffer, n)).toBe(reference(values));
      // The first n are the same values (a permutation), the tail is untouched.
      expect([...buffer.subarray(0, n)].sort((a, b) => a - b)).toEqual([...values].sort((a, b) => a - b));
      expect([...buffer.subarray(n)]).toEqual(new Array<number>(10).fill(-7));
      // The same buffer reused for another list.
      buffer.set([3, 1, 2]);
      expect(medianInPlace(buffer, 3)).toBe(2);
    }
  });
});
