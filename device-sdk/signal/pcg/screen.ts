/**
 * The heart-sound screen up to the model (pure: no I/O, no timers; the model is injected):
 * resample to the working rate, band-pass, segment, quality gate, features per window, and the
 * decision from the windows' probabilities. The CLI, the runtime monitor and the training script all
 * run this one path, so what was evaluated is what ships.
 */
import { upperMedian } from '../stats.js';
import { bandPass, resample } from './dsp.js';
import { detectMainsLines, type MainsLine, subtractLines } from './mains.js';
import { pcgFeatures } from './features.js';
import { type Segmentation, segmentHeartSounds } from './segmentation.js';

export interface PcgScreenOptions {
  /** Everything is resampled to this rate first (Hz). */
  workingRateHz: number;
  bandHz: [number, number];
  /** Feature windows (s): a recording is cut into windows of `windowS` every `hopS`; a shorter one is one window. */
  windowS: number;
  hopS: number;
  /** Shorter recordings are `unreadable`. */
  minSeconds: number;
  /** Quality score (0..1) below which a recording is `unreadable`. */
  minQuality: number;
  /** Share of clipped samples above which a recording is `unreadable`. */
  maxClipped: number;
  /** S1/S2 envelope contrast (see `Segmentation.contrast`) below which no heart sounds are heard. */
  minContrast: number;
  /** Mains frequencies whose lines (and harmonics to 400 Hz) are found and subtracted (device-sdk/signal/pcg/mains.ts); empty: none. */
  mainsHz: readonly number[];
}

export const DEFAULT_PCG_SCREEN_OPTIONS: Readonly<PcgScreenOptions> = Object.freeze({
  workingRateHz: 4000,
  bandHz: [25, 800] as [number, number],
  windowS: 30,
  hopS: 15,
  minSeconds: 1.2,
  minQuality: 0.3,
  maxClipped: 0.05,
  minContrast: 1.8,
  mainsHz: Object.freeze([50, 60]),
});

export type PcgLabel = 'normal' | 'abnormal' | 'unreadable';

export interface PcgQuality {
  /** 0 (unusable) .. 1 (clean). */
  score: number;
  durationS: number;
  /** Share of samples at full scale. */
  clipped: number;
  /** Root mean square of the raw samples (full scale 1). */
  rms: number;
  periodicity: number;
  /** Share of the recording covered by segmented heart cycles. */
  coverage: number;
  /** S1/S2 peaks over the median envelope. */
  contrast: number;
  /** Mains lines found and subtracted before the analysis (Hz, 0.1 Hz): the stethoscope picks up hum. */
  mainsHz: number[];
  /** Why it is unreadable (empty when it is readable): `low-sample-rate` (below twice the band's upper edge, 1600 Hz), `too-short`, `flat`, `clipped`, `no-heart-cycles`, `no-heart-sounds`, `low-quality`. */
  flags: string[];
}

export interface PcgAnalysis {
  quality: PcgQuality;
  readable: boolean;
  /**
   * Beats per minute from the S1-S1 intervals (or the cycle length); null when the recording is not
   * readable (any quality flag: no usable S1/S2 cycles to count), so that flat, noisy, clipped or too short
   * recordings never report a rate read off their autocorrelation.
   */
  heartRate: number | null;
  segmentation: Segmentation;
  /** Feature vectors of the windows (empty when unreadable). */
  windows: { startS: number; endS: number; features: Float32Array }[];
}

/**
 * Heart rate (/min) from a segmentation: the upper median S1-S1 interval within 1.5 cycles (for an even
 * count the longer of the two middle intervals, not their mean), else the cycle length. The upper median
 * is kept on purpose: the mean of the two middle intervals would change the reported rate of 98 of the
 * 313 PASCAL B recordings (by up to 17/min). The model's heart-rate feature is separate (`pcgFeatures`).
 */
export function heartRateOf(seg: Segmentation): number | null {
  const gaps: number[] = [];
  for (let k = 1; k < seg.cycles.length; k++) {
    const g = (seg.cycles[k] as { s1: number }).s1 - (seg.cycles[k - 1] as { s1: number }).s1;
    if (g < 1.5 * seg.cycleS) gaps.push(g);
  }
  if (gaps.length > 0) return Math.round(60 / upperMedian(gaps));
  return seg.cycleS > 0 ? Math.round(60 / seg.cycleS) : null;
}

/** Band-passed signal at the working rate, scaled to unit RMS, with mains lines removed (`prepareWithMains`). */
export function preparePcg(samples: Float32Array, rateHz: number, options: Partial<PcgScreenOptions> = {}): Float32Array {
  return prepareWithMains(samples, rateHz, options).x;
}

/** `preparePcg`, and the mains lines it found and subtracted before the band-pass. */
function prepareWithMains(samples: Float32Array, rateHz: number, options: Partial<PcgScreenOptions>): { x: Float32Array; mains: MainsLine[] } {
  const o = { ...DEFAULT_PCG_SCREEN_OPTIONS, ...options };
  let x = resample(samples, rateHz, o.workingRateHz);
  if (x.length < 8) return { x, mains: [] };
  const mains = o.mainsHz.length > 0 ? detectMainsLines(x, o.workingRateHz, { mainsHz: o.mainsHz }) : [];
  if (mains.length > 0) x = subtractLines(x, o.workingRateHz, mains);
  const y = bandPass(x, o.workingRateHz, o.bandHz[0], o.bandHz[1]);
  // Unit RMS: the features then do not depend on the stethoscope's gain or the file's bit depth.
  let sumSq = 0;
  for (const v of y) sumSq += v * v;
  const rms = Math.sqrt(sumSq / y.length);
  if (rms > 0) for (let i = 0; i < y.length; i++) y[i] = (y[i] as number) / rms;
  return { x: y, mains };
}

/** Analyses one recording (mono, -1..1, at `rateHz`): quality, heart rate and window features. */
export function analyzePcg(samples: Float32Array, rateHz: number, options: Partial<PcgScreenOptions> = {}): PcgAnalysis {
  const o = { ...DEFAULT_PCG_SCREEN_OPTIONS, ...options };
  const durationS = samples.length / rateHz;
  let sumSq = 0;
  let clippedCount = 0;
  let mean = 0;
  for (const v of samples) mean += v;
  mean /= samples.length || 1;
  for (const v of samples) {
    sumSq += (v - mean) ** 2;
    if (Math.abs(v) >= 0.999) clippedCount++;
  }
  const rms = Math.sqrt(sumSq / (samples.length || 1));
  const clipped = clippedCount / (samples.length || 1);
  const { x, mains } = prepareWithMains(samples, rateHz, o);
  const fs = o.workingRateHz;
  const seg = segmentHeartSounds(x, fs);
  const coverage = seg.cycleS > 0 ? Math.min(1, (seg.cycles.length * seg.cycleS) / Math.max(durationS, seg.cycleS)) : 0;
  // Periodic, covered by S1/S2 cycles, and sounds that stand out of the background (noise has a contrast of about 1).
  const contrastScore = Math.max(0, Math.min(1, (seg.contrast - 1.5) / 3));
  const score = Math.round(Math.max(0, Math.min(1, 0.35 * Math.min(1, seg.periodicity / 0.5) + 0.25 * coverage + 0.4 * contrastScore)) * 100) / 100;
  const flags: string[] = [];
  // Below twice the band's upper edge the recording cannot hold what the features measure (murmur energy
  // up to 800 Hz): an 8 Hz file of noise would otherwise be screened, heart rate and all.
  if (rateHz < 2 * o.bandHz[1]) flags.push('low-sample-rate');
  if (durationS < o.minSeconds) flags.push('too-short');
  if (rms < 1e-4) flags.push('flat');
  if (clipped > o.maxClipped) flags.push('clipped');
  if (seg.cycles.length === 0) flags.push('no-heart-cycles');
  else if (seg.contrast < o.minContrast) flags.push('no-heart-sounds');
  else if (score < o.minQuality) flags.push('low-quality');
  const quality: PcgQuality = {
    score: flags.length ? Math.min(score, o.minQuality / 2) : score,
    durationS,
    clipped,
    rms,
    periodicity: seg.periodicity,
    coverage,
    contrast: seg.contrast,
    mainsHz: mains.map((l) => Math.round(l.hz * 10) / 10),
    flags,
  };
  const readable = flags.length === 0;
  const windows: PcgAnalysis['windows'] = [];
  if (readable) {
    const win = Math.round(o.windowS * fs);
    const hop = Math.round(o.hopS * fs);
    const starts: number[] = [];
    if (x.length <= win) starts.push(0);
    else {
      for (let s = 0; s + win <= x.length; s += hop) starts.push(s);
      // The tail, when the hops left more than half a hop uncovered.
      const lastEnd = (starts[starts.length - 1] as number) + win;
      if (x.length - lastEnd > hop / 2) starts.push(x.length - win);
    }
    for (const s of starts) {
      const part = x.subarray(s, Math.min(x.length, s + win));
      const wseg = part.length === x.length ? seg : segmentHeartSounds(part, fs);
      windows.push({ startS: s / fs, endS: (s + part.length) / fs, features: pcgFeatures(part, fs, wseg) });
    }
  }
  return { quality, readable, heartRate: readable ? heartRateOf(seg) : null, segmentation: seg, windows };
}

export interface PcgDecision {
  label: PcgLabel;
  /** Probability of `abnormal` (mean over the windows); null when unreadable. */
  probability: number | null;
  heartRate: number | null;
}

/** The label from the windows' abnormal probabilities and the model's threshold. */
export function decidePcg(analysis: PcgAnalysis, windowProbabilities: ArrayLike<number>, threshold: number): PcgDecision {
  if (!analysis.readable || windowProbabilities.length === 0) return { label: 'unreadable', probability: null, heartRate: analysis.heartRate };
  let sum = 0;
  for (let k = 0; k < windowProbabilities.length; k++) sum += windowProbabilities[k] as number;
  const p = sum / windowProbabilities.length;
  return { label: p >= threshold ? 'abnormal' : 'normal', probability: Math.round(p * 1000) / 1000, heartRate: analysis.heartRate };
}

/** Standardises feature rows in place with the model's per-feature mean and sd into one batch. */
export function featureBatch(windows: readonly { features: Float32Array }[], mean: readonly number[], sd: readonly number[]): Float32Array {
  const dim = mean.length;
  const out = new Float32Array(windows.length * dim);
  windows.forEach((w, r) => {
    for (let k = 0; k < dim; k++) out[r * dim + k] = ((w.features[k] ?? 0) - (mean[k] as number)) / ((sd[k] as number) || 1);
  });
  return out;
}
