/**
 * Heart-sound DSP on signals with a known answer: resampling and band-pass gains, S1/S2 segmentation
 * and heart rate on synthetic phonocardiograms, and the quality gate.
 */
import { describe, expect, it } from 'vitest';
import { bandPass, resample } from '../../device-sdk/signal/pcg/dsp.js';
import { analyzePcg, DEFAULT_PCG_SCREEN_OPTIONS, preparePcg } from '../../device-sdk/signal/pcg/screen.js';
import { segmentHeartSounds } from '../../device-sdk/signal/pcg/segmentation.js';
import { PCG_FEATURE_COUNT, PCG_FEATURE_NAMES } from '../../device-sdk/signal/pcg/features.js';
import { mulberry32 } from '../../device-sdk/random.js';
import { syntheticPcg } from './synthetic.js';

const tone = (hz: number, rateHz: number, seconds: number) => Float32Array.from({ length: Math.round(seconds * rateHz) }, (_, i) => Math.sin((2 * Math.PI * hz * i) / rateHz));
const rmsOf = (x: Float32Array, from = 0, to = x.length) => Math.sqrt(x.subarray(from, to).reduce((s, v) => s + v * v, 0) / (to - from));

describe('resample', () => {
  it('keeps an in-band tone (100 Hz, 44.1 kHz -> 2 kHz) and its length', () => {
    const y = resample(tone(100, 44100, 1), 44100, 2000);
    expect(y.length).toBe(2000);
    expect(rmsOf(y, 100, 1900)).toBeCloseTo(Math.SQRT1_2, 2);
  });
  it('removes a tone above the new Nyquist frequency instead of aliasing it (1.5 kHz, 4 kHz -> 2 kHz)', () => {
    const y = resample(tone(1500, 4000, 1), 4000, 2000);
    expect(rmsOf(y, 100, 1900)).toBeLessThan(0.01);
  });
  it('upsamples (1 kHz -> 2 kHz) a tone without loss', () => {
    const y = resample(tone(50, 1000, 1), 1000, 2000);
    expect(y.length).toBe(2000);
    expect(rmsOf(y, 100, 1900)).toBeCloseTo(Math.SQRT1_2, 2);
  });
});

describe('bandPass 25-400 Hz', () => {
  it.each([
    [5, 0, 0.02],
    [100, 0.69, 0.72],
    [200, 0.69, 0.72],
    [900, 0, 0.03],
  ])('%d Hz: rms between %f and %f', (hz, lo, hi) => {
    const y = bandPass(tone(hz, 2000, 2), 2000, 25, 400);
    const r = rmsOf(y, 500, 3500);
    expect(r).toBeGreaterThanOrEqual(lo);
    expect(r).toBeLessThanOrEqual(hi);
  });
});

describe('S1/S2 segmentation on a synthetic phonocardiogram', () => {
  it.each([
    [60, 0.33],
    [72, 0.3],
    [110, 0.26],
  ])('at %d /min finds every S1 and S2 within 40 ms and the heart rate', (bpm, systoleS) => {
    const pcg = syntheticPcg({ bpm, systoleS, seconds: 12, rateHz: 4000 });
    const seg = segmentHeartSounds(preparePcg(pcg.samples, pcg.rateHz), DEFAULT_PCG_SCREEN_OPTIONS.workingRateHz);
    expect(seg.cycleS).toBeCloseTo(60 / bpm, 1);
    expect(seg.systoleS).toBeCloseTo(systoleS, 1);
    // Every true cycle except possibly the first and last (edges) is found, labelled the right way round.
    const inner = pcg.s1.slice(1, -1);
    for (const t of inner) {
      const hit = seg.cycles.find((c) => Math.abs(c.s1 - t) <= 0.04);
      expect(hit, `S1 at ${t.toFixed(2)} s`).toBeDefined();
      expect(Math.abs((hit as { s2: number }).s2 - (t + systoleS))).toBeLessThanOrEqual(0.04);
    }
    expect(seg.cycles.length).toBeLessThanOrEqual(pcg.s1.length);
    const a = analyzePcg(pcg.samples, pcg.rateHz);
    expect(a.readable).toBe(true);
    expect(Math.abs((a.heartRate as number) - bpm)).toBeLessThanOrEqual(2);
    expect(a.quality.score).toBeGreaterThan(0.8);
  });

  it('gives the same answer for the signal at another rate and gain (8 kHz, 1/10 level)', () => {
    const a = analyzePcg(syntheticPcg({ rateHz: 4000 }).samples, 4000);
    const b8k = syntheticPcg({ rateHz: 8000 });
    const b = analyzePcg(b8k.samples.map((v) => v / 10), 8000);
    expect(b.heartRate).toBe(a.heartRate);
    expect(b.segmentation.cycles.length).toBe(a.segmentation.cycles.length);
  });

  it('features: one vector per 30 s window (every 15 s, the tail included), finite, and a systolic murmur raises mid-systole energy', () => {
    const clean = analyzePcg(syntheticPcg({ seconds: 16 }).samples, 4000);
    const murmur = analyzePcg(syntheticPcg({ seconds: 16, murmur: 0.08 }).samples, 4000);
    expect(clean.windows.map((w) => [w.startS, w.endS])).toEqual([[0, 16]]);
    const long = analyzePcg(syntheticPcg({ seconds: 40 }).samples, 4000);
    expect(long.windows.map((w) => [w.startS, w.endS])).toEqual([
      [0, 30],
      [10, 40],
    ]);
    for (const w of [...clean.windows, ...murmur.windows]) {
      expect(w.features.length).toBe(PCG_FEATURE_COUNT);
      expect(w.features.every(Number.isFinite)).toBe(true);
    }
    const k = PCG_FEATURE_NAMES.indexOf('log systole/S1');
    expect(murmur.windows[0]?.features[k]).toBeGreaterThan((clean.windows[0]?.features[k] as number) + 0.5);
  });
});

describe('per-cycle template', () => {
  it('a systolic murmur (150-300 Hz) fills the systolic quarters of its band relative to S1/S2, not diastole', () => {
    const clean = analyzePcg(syntheticPcg({ seconds: 12 }).samples, 4000);
    const murmur = analyzePcg(syntheticPcg({ seconds: 12, murmur: 0.08 }).samples, 4000);
    const at = (a: typeof clean, name: string) => a.windows[0]?.features[PCG_FEATURE_NAMES.indexOf(name)] as number;
    for (let q = 2; q <= 3; q++) {
      const name = `log systole part ${q}/sounds 100-200 Hz`;
      expect(at(murmur, name)).toBeGreaterThan(at(clean, name) + 1);
      const dia = `log diastole part ${q}/sounds 100-200 Hz`;
      expect(Math.abs(at(murmur, dia) - at(clean, dia))).toBeLessThan(0.5);
    }
  });
  it('keeps murmur energy above 400 Hz (4 kHz working rate, band to 800 Hz): a 500-700 Hz systolic murmur shows in the 400-800 Hz quarters', () => {
    const base = syntheticPcg({ seconds: 12 });
    const x = Float32Array.from(base.samples);
    const rand = mulberry32(3);
    for (const t of base.s1) {
      let phase = 0;
      for (let i = Math.round((t + 0.06) * 4000); i < Math.round((t + 0.25) * 4000) && i < x.length; i++) {
        phase += (2 * Math.PI * (500 + 200 * rand())) / 4000;
        x[i] = (x[i] as number) + 0.05 * Math.sin(phase);
      }
    }
    const clean = analyzePcg(base.samples, 4000);
    const high = analyzePcg(x, 4000);
    const name = 'log systole part 2/sounds 400-800 Hz';
    const k = PCG_FEATURE_NAMES.indexOf(name);
    expect(k).toBeGreaterThan(0);
    expect(high.windows[0]?.features[k]).toBeGreaterThan((clean.windows[0]?.features[k] as number) + 1);
  });
});

describe('quality gate', () => {
  it('calls noise without heart sounds unreadable', () => {
    const rand = mulberry32(9);
    const noise = Float32Array.from({ length: 40000 }, () => 0.3 * (2 * rand() - 1));
    const a = analyzePcg(noise, 4000);
    expect(a.readable).toBe(false);
    expect(a.quality.flags).toContain('no-heart-sounds');
  });
  it('flags recordings that are too short, flat or clipped', () => {
    expect(analyzePcg(syntheticPcg({ seconds: 0.8 }).samples, 4000).quality.flags).toContain('too-short');
    expect(analyzePcg(new Float32Array(40000), 4000).quality.flags).toContain('flat');
    const clipped = syntheticPcg({ seconds: 10 }).samples.map((v) => Math.max(-1, Math.min(1, v * 40)));
    expect(analyzePcg(clipped, 4000).quality.flags).toContain('clipped');
  });
});
