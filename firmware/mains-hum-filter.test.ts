import { describe, expect, it } from 'vitest';
import { MainsHumFilter } from './mains-hum-filter.js';

/** Peak-to-peak of the filtered `x`. */
const span = (x: readonly number[]) => Math.max(...x) - Math.min(...x);

describe('MainsHumFilter', () => {
  it('notches only where the moving averages leave hum: 128 Hz (both 50 and 60 Hz), not 250 or 360 Hz', () => {
    expect(new MainsHumFilter({ fs: 128 }).notchedHz).toEqual([50, 60]);
    expect(new MainsHumFilter({ fs: 250 }).notchedHz).toEqual([]);
    expect(new MainsHumFilter({ fs: 360 }).notchedHz).toEqual([]);
    expect(new MainsHumFilter({ fs: 128 }).runIn).toBe(2 + 1 + 4);
  });

  it('takes 1 mV of 50 or 60 Hz hum down to under 0.02 mV, keeps DC and most of a QRS-like pulse (the stream gives what a window gives)', () => {
    for (const fs of [128, 250, 360]) {
      for (const hz of [50, 60]) {
        const hum = Array.from({ length: fs }, (_, i) => 2 + Math.sin((2 * Math.PI * hz * i) / fs + 0.4));
        const out = MainsHumFilter.apply(hum, { fs });
        expect(span(out), `${fs} Hz, ${hz} Hz hum`).toBeLessThan(0.02);
        expect(out[0], `${fs} Hz: DC kept`).toBeCloseTo(2, 1);
      }
      // A 1 mV triangle 80 ms wide (a QRS complex's size and width) keeps more than half of its height.
      const half = Math.round(0.04 * fs);
      const pulse = Array.from({ length: fs }, (_, i) => Math.max(0, 1 - Math.abs(i - fs / 2) / half));
      expect(span(MainsHumFilter.apply(pulse, { fs })), `${fs} Hz pulse`).toBeGreaterThan(0.5);
      // Streamed sample by sample, with a reset in between: the same samples as a fresh window.
      const f = new MainsHumFilter({ fs });
      for (let i = 0; i < 10; i++) f.push(5);
      f.reset();
      const streamed = pulse.map((v) => f.push(v)).filter((v): v is number => v !== undefined);
      expect(streamed).toEqual(MainsHumFilter.apply(pulse, { fs }));
      expect(streamed.length).toBe(pulse.length - f.runIn);
    }
  });
});
