/**
 * Features of a heart-sound window for the normal/abnormal screen (pure: no I/O, no timers):
 * timing (heart rate, systole share, cycle and systole variability, extra sounds per cycle, premature
 * cycles and pauses),
 * energy of systole and diastole relative to S1 and S2 (murmurs fill systole or diastole),
 * band energies in murmur bands (25-50-100-150-250-400-600-800 Hz at a 4 kHz working rate) per phase
 * relative to the sounds, the envelope between the sounds, and a
 * per-cycle template (energy of each quarter of systole and diastole relative to the cycle's own S1/S2,
 * in 4 bands, median over cycles; `cycleTemplate`).
 *
 * Only ratios within a recording: no overall spectral shape (band shares, cepstra), which says more
 * about the chest piece, its placement and the patient than about a murmur (dropping them raised the
 * patient-wise CV balanced accuracy on three fold seeds).
 *
 * Frames: 64 ms Hann windows every 16 ms of the band-passed signal at the working rate.
 */
import { median, upperMedian } from '../stats.js';
import { powerSpectrum } from './dsp.js';
import type { Segmentation } from './segmentation.js';
import { ENVELOPE_RATE_HZ } from './segmentation.js';

export const PCG_BANDS_HZ: readonly (readonly [number, number])[] = Object.freeze([
  [25, 50],
  [50, 100],
  [100, 150],
  [150, 250],
  [250, 400],
  [400, 600],
  [600, 800],
] as const);

/** Bands of the per-cycle template (Hz). */
export const PCG_TEMPLATE_BANDS_HZ: readonly (readonly [number, number])[] = Object.freeze([
  [25, 100],
  [100, 200],
  [200, 400],
  [400, 800],
] as const);
/** Systole and diastole are each cut into this many equal parts of the template. */
const TEMPLATE_PARTS = 4;

export const PCG_FEATURE_NAMES: readonly string[] = Object.freeze([
  'heartRate/100',
  'cycleS',
  'systole/cycle',
  'periodicity',
  'coverage',
  'cycleCv',
  'systoleCv',
  'extraSoundsPerCycle',
  'max cycle deviation',
  'irregular cycle share',
  'log S2/S1',
  'log systole/S1',
  'log diastole/S1',
  'log systole/diastole',
  ...PCG_BANDS_HZ.map(([a, b]) => `log systole/sounds ${a}-${b} Hz`),
  ...PCG_BANDS_HZ.map(([a, b]) => `log diastole/sounds ${a}-${b} Hz`),
  'envelope mid-systole',
  'envelope mid-diastole',
  'systole centroid/400 Hz',
  'has cycles',
  ...PCG_TEMPLATE_BANDS_HZ.flatMap(([a, b]) => Array.from({ length: TEMPLATE_PARTS }, (_, k) => `log systole part ${k + 1}/sounds ${a}-${b} Hz`)),
  ...PCG_TEMPLATE_BANDS_HZ.flatMap(([a, b]) => Array.from({ length: TEMPLATE_PARTS }, (_, k) => `log diastole part ${k + 1}/sounds ${a}-${b} Hz`)),
]);

export const PCG_FEATURE_COUNT = PCG_FEATURE_NAMES.length;

const meanOf = (a: readonly number[]) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : 0);
const sdOf = (a: readonly number[]) => {
  if (a.length < 2) return 0;
  const m = meanOf(a);
  return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1));
};

type Region = 'sound' | 's1' | 's2' | 'systole' | 'diastole' | 'none';

/** Where time `t` (s) falls in the segmented cycles. */
function regionAt(t: number, seg: Segmentation, nextS1: number[]): Region {
  for (let k = 0; k < seg.cycles.length; k++) {
    const c = seg.cycles[k] as { s1: number; s2: number };
    const next = nextS1[k] as number;
    if (t < c.s1 - 0.06) return 'none';
    if (Math.abs(t - c.s1) <= 0.05) return 's1';
    if (Math.abs(t - c.s2) <= 0.05) return 's2';
    if (t > c.s1 + 0.08 && t < c.s2 - 0.07) return 'systole';
    if (t > c.s2 + 0.09 && t < next - 0.07) return 'diastole';
    if (t < next - 0.06) return 'none';
  }
  return 'none';
}

/**
 * The per-cycle template: for every segmented cycle, the energy of each quarter of systole (S1 end to
 * S2 start) and of diastole (S2 end to the next S1) in each template band, relative to the same
 * cycle's S1 and S2 in that band (log10); the median over the cycles (robust to a noisy cycle).
 * Frames: 32 ms Hann windows every 8 ms. Zeros (no excess, no deficit) without cycles.
 */
export function cycleTemplate(x: Float32Array, fs: number, seg: Segmentation, nextS1: readonly number[]): Float32Array {
  const nb = PCG_TEMPLATE_BANDS_HZ.length;
  const out = new Float32Array(2 * nb * TEMPLATE_PARTS);
  if (seg.cycles.length === 0 || x.length === 0) return out;
  const n = Math.max(16, 2 ** Math.round(Math.log2(0.032 * fs)));
  const hop = Math.max(1, Math.round(0.008 * fs));
  const bins = n / 2 + 1;
  const bandBins = PCG_TEMPLATE_BANDS_HZ.map(([a, b]) => [Math.max(1, Math.ceil((a * n) / fs)), Math.min(bins - 1, Math.floor((b * n) / fs))] as const);
  const frames: Float64Array[] = [];
  for (let start = 0; start + n <= x.length; start += hop) {
    const p = powerSpectrum(x, start, n);
    frames.push(Float64Array.from(bandBins, ([a, b]) => {
      let s = 0;
      for (let k = a; k <= b; k++) s += p[k] as number;
      return s;
    }));
  }
  if (frames.length === 0) return out;
  // Frame index whose centre is nearest to time t.
  const at = (t: number) => Math.round((t * fs - n / 2) / hop);
  let total = 0;
  for (const fr of frames) for (const v of fr) total += v;
  const eps = (total / (frames.length * nb)) * 1e-4 + 1e-20;
  const meanIn = (t0: number, t1: number, b: number): number | undefined => {
    const a = Math.max(0, at(t0));
    const z = Math.min(frames.length - 1, at(t1));
    if (z < a) return undefined;
    let s = 0;
    for (let k = a; k <= z; k++) s += (frames[k] as Float64Array)[b] as number;
    return s / (z - a + 1);
  };
  const perCycle: number[][] = Array.from({ length: out.length }, () => []);
  seg.cycles.forEach((c, k) => {
    const next = nextS1[k] as number;
    const sysA = c.s1 + 0.06;
    const sysB = c.s2 - 0.05;
    const diaA = c.s2 + 0.06;
    const diaB = next - 0.05;
    if (sysB - sysA < 0.04 || diaB - diaA < 0.04 || at(c.s1 - 0.03) < 0 || at(next) >= frames.length) return;
    for (let b = 0; b < nb; b++) {
      const s1 = meanIn(c.s1 - 0.03, c.s1 + 0.03, b) ?? 0;
      const s2 = meanIn(c.s2 - 0.03, c.s2 + 0.03, b) ?? 0;
      const ref = (s1 + s2) / 2 + eps;
      for (let q = 0; q < TEMPLATE_PARTS; q++) {
        const sv = meanIn(sysA + ((sysB - sysA) * q) / TEMPLATE_PARTS, sysA + ((sysB - sysA) * (q + 1)) / TEMPLATE_PARTS, b);
        const dv = meanIn(diaA + ((diaB - diaA) * q) / TEMPLATE_PARTS, diaA + ((diaB - diaA) * (q + 1)) / TEMPLATE_PARTS, b);
        if (sv !== undefined) (perCycle[b * TEMPLATE_PARTS + q] as number[]).push(Math.max(-6, Math.min(6, Math.log10((sv + eps) / ref))));
        if (dv !== undefined) (perCycle[(nb + b) * TEMPLATE_PARTS + q] as number[]).push(Math.max(-6, Math.min(6, Math.log10((dv + eps) / ref))));
      }
    }
  });
  perCycle.forEach((vals, k) => (out[k] = vals.length > 0 ? median(vals) : 0));
  return out;
}

/** The feature vector (`PCG_FEATURE_NAMES` order) of a band-passed window `x` at `fs` and its segmentation. */
export function pcgFeatures(x: Float32Array, fs: number, seg: Segmentation): Float32Array {
  const f = new Float32Array(PCG_FEATURE_COUNT);
  const durationS = x.length / fs;
  const cyc = seg.cycles;
  const cycleS = seg.cycleS || 0.8;
  const nextS1 = cyc.map((c, k) => {
    const n = cyc[k + 1];
    return n && n.s1 - c.s1 < 1.5 * cycleS ? n.s1 : c.s2 + Math.max(0.1, cycleS - (c.s2 - c.s1));
  });
  const s1Gaps: number[] = [];
  for (let k = 1; k < cyc.length; k++) {
    const g = (cyc[k] as { s1: number }).s1 - (cyc[k - 1] as { s1: number }).s1;
    if (g < 1.5 * cycleS) s1Gaps.push(g);
  }
  const systoles = cyc.map((c) => c.s2 - c.s1);
  const hr = s1Gaps.length ? 60 / meanOf(s1Gaps) : seg.cycleS > 0 ? 60 / seg.cycleS : 0;
  let i = 0;
  f[i++] = hr / 100;
  f[i++] = seg.cycleS;
  f[i++] = seg.cycleS > 0 ? seg.systoleS / seg.cycleS : 0;
  f[i++] = seg.periodicity;
  f[i++] = Math.min(1, (cyc.length * cycleS) / Math.max(durationS, cycleS));
  f[i++] = s1Gaps.length > 1 ? sdOf(s1Gaps) / meanOf(s1Gaps) : 0;
  f[i++] = systoles.length > 1 ? sdOf(systoles) / meanOf(systoles) : 0;
  f[i++] = seg.extraPeaks.length / Math.max(1, durationS / cycleS);
  // Ectopic beats: a premature cycle and its compensatory pause stand out from the median cycle.
  // (The upper median, as it was trained: for an even count the longer middle interval.)
  const medGap = s1Gaps.length ? upperMedian(s1Gaps) : 0;
  f[i++] = medGap > 0 ? Math.max(...s1Gaps.map((g) => Math.abs(g - medGap) / medGap)) : 0;
  f[i++] = medGap > 0 ? s1Gaps.filter((g) => Math.abs(g - medGap) > 0.15 * medGap).length / s1Gaps.length : 0;

  // Short-time spectra.
  const n = Math.max(32, 2 ** Math.round(Math.log2(0.064 * fs)));
  const hop = n / 4;
  const bins = n / 2 + 1;
  const bandBins = PCG_BANDS_HZ.map(([a, b]) => [Math.max(1, Math.ceil((a * n) / fs)), Math.min(bins - 1, Math.floor((b * n) / fs))] as const);
  const regions: Record<Region, { bands: number[]; total: number; count: number; centroid: number }> = {
    sound: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
    s1: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
    s2: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
    systole: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
    diastole: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
    none: { bands: PCG_BANDS_HZ.map(() => 0), total: 0, count: 0, centroid: 0 },
  };
  let allTotal = 0;
  let frameCount = 0;
  for (let start = 0; start + n <= x.length || (start === 0 && x.length > 0); start += hop) {
    const p = powerSpectrum(x, start, n);
    const bandP = bandBins.map(([a, b]) => {
      let s = 0;
      for (let k = a; k <= b; k++) s += p[k] as number;
      return s;
    });
    const total = bandP.reduce((s, v) => s + v, 0);
    let centroidNum = 0;
    for (let k = bandBins[0]![0]; k <= bandBins[bandBins.length - 1]![1]; k++) centroidNum += (p[k] as number) * ((k * fs) / n);
    const t = (start + n / 2) / fs;
    const region = regionAt(t, seg, nextS1);
    const targets = region === 's1' || region === 's2' ? [regions[region], regions.sound] : [regions[region]];
    for (const r of targets) {
      bandP.forEach((v, b) => (r.bands[b] = (r.bands[b] as number) + v));
      r.total += total;
      r.centroid += centroidNum;
      r.count++;
    }
    allTotal += total;
    frameCount++;
    if (start + n > x.length) break;
  }
  const eps = 1e-9 * (allTotal / Math.max(1, frameCount)) + 1e-20;
  const mean = (r: { total: number; count: number }) => r.total / Math.max(1, r.count);
  const logRatio = (a: number, b: number) => Math.max(-6, Math.min(6, Math.log10((a + eps) / (b + eps))));
  const hasCycles = cyc.length > 0 && regions.s1.count > 0;
  const R = regions;
  f[i++] = hasCycles ? logRatio(mean(R.s2), mean(R.s1)) : 0;
  f[i++] = hasCycles ? logRatio(mean(R.systole), mean(R.s1)) : 0;
  f[i++] = hasCycles ? logRatio(mean(R.diastole), mean(R.s1)) : 0;
  f[i++] = hasCycles ? logRatio(mean(R.systole), mean(R.diastole)) : 0;
  for (let b = 0; b < PCG_BANDS_HZ.length; b++) f[i++] = hasCycles ? logRatio((R.systole.bands[b] as number) / Math.max(1, R.systole.count), (R.sound.bands[b] as number) / Math.max(1, R.sound.count)) : 0;
  for (let b = 0; b < PCG_BANDS_HZ.length; b++) f[i++] = hasCycles ? logRatio((R.diastole.bands[b] as number) / Math.max(1, R.diastole.count), (R.sound.bands[b] as number) / Math.max(1, R.sound.count)) : 0;
  // Envelope between the sounds, relative to the sound peaks.
  const env = seg.envelope;
  const envAt = (t: number) => (env[Math.min(env.length - 1, Math.max(0, Math.round(t * ENVELOPE_RATE_HZ)))] as number) ?? 0;
  const peakLevel = meanOf(cyc.flatMap((c) => [envAt(c.s1), envAt(c.s2)])) || 1;
  const midMean = (a: number, b: number) => {
    const vals: number[] = [];
    for (let t = a; t <= b; t += 1 / ENVELOPE_RATE_HZ) vals.push(envAt(t));
    return meanOf(vals);
  };
  f[i++] = hasCycles ? meanOf(cyc.map((c) => midMean(c.s1 + 0.25 * (c.s2 - c.s1), c.s1 + 0.75 * (c.s2 - c.s1)))) / peakLevel : 0;
  f[i++] = hasCycles ? meanOf(cyc.map((c, k) => midMean(c.s2 + 0.25 * ((nextS1[k] as number) - c.s2), c.s2 + 0.75 * ((nextS1[k] as number) - c.s2)))) / peakLevel : 0;
  f[i++] = hasCycles && R.systole.total > 0 ? R.systole.centroid / R.systole.total / 400 : 0;
  f[i++] = hasCycles ? 1 : 0;
  const template = cycleTemplate(x, fs, seg, nextS1);
  for (const v of template) f[i++] = v;
  for (let k = 0; k < f.length; k++) if (!Number.isFinite(f[k] as number)) f[k] = 0;
  return f;
}
