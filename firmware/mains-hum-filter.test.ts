import { describe, expect, it } from 'vitest';
import { aliasHz, MainsHumFilter } from './mains-hum-filter.js';

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
    // 100 and 110 Hz: 60 Hz at or above half the rate (the notch at its alias, 40 and 50 Hz).
    for (const fs of [100, 110, 128, 250, 360]) {
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

  it('notches mains at or above half the rate at its alias when that is 30 Hz or more: 60 Hz at 100 Hz sampling (40 Hz)', () => {
    // A front end without a good anti-alias filter: 60 Hz hum sampled at 100 Hz is a 40 Hz tone. Before, only
    // frequencies below half the rate were notched, and the two 2-sample averages left 0.19 mV of 1 mV hum.
    expect(aliasHz(60, 100)).toBe(40);
    expect(aliasHz(100, 128)).toBe(28);
    expect(new MainsHumFilter({ fs: 100 }).notchedHz).toEqual([40]);
    expect(new MainsHumFilter({ fs: 110 }).notchedHz).toEqual([50]);
    // Aliases in the QRS band's core are left alone (60 Hz at 64 Hz: 4 Hz; 50 Hz at 64 Hz: 14 Hz).
    expect(new MainsHumFilter({ fs: 64 }).notchedHz).toEqual([]);
    // The hum itself is taken down at 100 and 110 Hz in the test above.
  });
});
