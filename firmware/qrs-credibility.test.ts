import { describe, expect, it } from 'vitest';
import { fitHum, QrsCredibility } from './qrs-credibility.js';

const FS = 360;

/** A QRS-like wave (mV) centred on sample `r`: Q, R and S as narrow Gaussians, times `sign`. */
function addQrs(x: Float64Array, r: number, sign = 1): void {
  for (let k = -30; k <= 30; k++) {
    const t = k / FS;
    const v = -0.2 * Math.exp(-(((t + 0.03) / 0.008) ** 2) / 2) + 1.2 * Math.exp(-((t / 0.01) ** 2) / 2) - 0.3 * Math.exp(-(((t - 0.03) / 0.01) ** 2) / 2);
    x[r + k] = (x[r + k] as number) + sign * v;
  }
}

describe('QrsCredibility.similarity / repeats', () => {
  it('tells a repeated QRS shape (on a tilted baseline) from an inverted one and from one not at hand', () => {
    const x = new Float64Array(4 * FS);
    // Baseline wander: a slope of 1 mV/s under the second complex.
    for (let i = 0; i < x.length; i++) x[i] = i > 1.5 * FS ? (i - 1.5 * FS) / FS : 0;
    addQrs(x, FS);
    addQrs(x, 2 * FS);
    addQrs(x, 3 * FS, -1);
    const c = new QrsCredibility({ fs: FS });
    c.pushSamples(Int16Array.from(x, (v) => Math.round(v * 200)), 200);
    expect(c.similarity(2 * FS, FS)).toBeGreaterThan(0.99);
    expect(c.similarity(3 * FS, FS)).toBeLessThan(-0.99);
    expect(c.repeats(2 * FS, [3 * FS, FS])).toBe(true);
    expect(c.repeats(3 * FS, [FS, 2 * FS])).toBe(false);
    // The window of a detection at the last sample is not complete yet.
    expect(c.similarity(4 * FS - 1, FS)).toBeUndefined();
  });
});

describe('QrsCredibility.humFreeQrsMv', () => {
  it('measures a QRS complex nearly whole and 50 or 60 Hz hum as almost nothing', () => {
    const hum = (hz: number, mv: number) => Float64Array.from({ length: 3 * FS }, (_, i) => mv * Math.sin((2 * Math.PI * hz * i) / FS));
    const x = hum(50, 0.5);
    addQrs(x, 2 * FS);
    const c = new QrsCredibility({ fs: FS });
    c.pushSamples(Int16Array.from(x, (v) => Math.round(v * 200)), 200);
    // The complex (1.2 mV R, narrow) keeps most of its size; the hum alone (1 mV peak-to-peak) is gone.
    expect(c.humFreeQrsMv(2 * FS, [50, 60])).toBeGreaterThan(0.5);
    expect(c.humFreeQrsMv(1 * FS, [50, 60])).toBeLessThan(0.05);
    const c60 = new QrsCredibility({ fs: FS });
    c60.pushSamples(Int16Array.from(hum(60, 0.5), (v) => Math.round(v * 200)), 200);
    expect(c60.humFreeQrsMv(FS, [50, 60])).toBeLessThan(0.05);
    // Not at hand: the window (and the averages' run-in) reaches past what was pushed.
    expect(c.humFreeQrsMv(3 * FS - 5, [50, 60])).toBeUndefined();
  });
});

describe('QrsCredibility.humFreeQrsMv at a rate holding no whole hum period', () => {
  it('measures 1 mV of 50 or 60 Hz at 128 Hz as almost nothing (the averages alone left 0.12 mV of 50 Hz)', () => {
    for (const hz of [50, 60]) {
      const c = new QrsCredibility({ fs: 128 });
      c.pushSamples(Int16Array.from({ length: 3 * 128 }, (_, i) => Math.round(1000 * Math.sin((2 * Math.PI * hz * i) / 128))), 1000);
      expect(c.humFreeQrsMv(2 * 128, [50, 60]), `${hz} Hz`).toBeLessThan(0.02);
      expect(c.qrsMv(2 * 128), `${hz} Hz`).toBeGreaterThan(1.9);
    }
  });
});

describe('fitHum', () => {
  /** 50 Hz hum with a drifting amplitude and phase, 60 Hz hum and a line, sampled at `fs` (mV). */
  const lead = (fs: number, n: number) => {
    const hum = Float64Array.from({ length: n }, (_, k) => (0.3 + (0.1 * k) / n) * Math.cos((2 * Math.PI * 50 * k) / fs + 0.4) + (0.05 - (0.2 * k) / n) * Math.sin((2 * Math.PI * 60 * k) / fs));
    return { hum, x: hum.map((v, k) => v + 0.8 - (0.5 * k) / n) };
  };

  it('takes out hum whose amplitudes drift linearly, leaving the line, at 360, 250 and 128 Hz', () => {
    for (const fs of [360, 250, 128]) {
      const { hum, x } = lead(fs, 2 * fs);
      const fitted = fitHum(x, fs, [50, 60]) as Float64Array;
      expect(Math.max(...hum.map((v, k) => Math.abs(v - (fitted[k] as number)))), `${fs} Hz`).toBeLessThan(1e-9);
    }
  });

  it('fits a stretch to the same bits whatever was fitted before (its Gram matrices are kept per length)', () => {
    const { x } = lead(250, 700);
    const first = fitHum(x, 250, [50, 60]) as Float64Array;
    for (let n = 40; n < 700; n += 37) fitHum(x.subarray(0, n), 250, [50, 60]);
    expect(Buffer.from((fitHum(x, 250, [50, 60]) as Float64Array).buffer).equals(Buffer.from(first.buffer))).toBe(true);
    // Too short to fit 10 functions: nothing.
    expect(fitHum(x.subarray(0, 20), 250, [50, 60])).toBeUndefined();
  });
});
