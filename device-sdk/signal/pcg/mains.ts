/**
 * Mains hum in a heart-sound recording: detection of narrow 50/60 Hz lines (and harmonics) and their
 * removal by subtracting a fitted sinusoid, not by a notch filter. Heart sounds have much of their
 * energy around 50 Hz; a notch takes that band out of every beat (and changed 34 of 313 PASCAL B labels
 * on clean recordings), while a mains line is one frequency of steady amplitude: fitted over 4 s blocks it
 * is removed and a heart sound, short and not phase-locked to the mains, loses almost nothing.
 * A recording with no line standing out of its neighbourhood is returned unchanged.
 */
import { fft } from './dsp.js';

export interface MainsOptions {
  /** Nominal mains frequencies searched (Hz), each +-0.5 Hz per harmonic order. */
  mainsHz: readonly number[];
  /** Harmonics are searched up to here (Hz). */
  maxHz: number;
  /**
   * A line counts when its power over its +-0.5..3 Hz neighbourhood's median is at least this (dB), and it
   * is at least 6 dB above the highest bin of that neighbourhood.
   */
  minLineDb: number;
  /** Sinusoid fit blocks (s), overlapping by half. */
  blockS: number;
}

/**
 * 400 Hz: the 8th harmonic of 50 Hz; hum harmonics above are weak, and 46 of the 313 PASCAL B recordings
 * carry a steady tone at 800 Hz (the stethoscope's, not the mains'). 15 dB: the largest line of the clean
 * PASCAL B recordings up to 400 Hz is 17.6 dB, two are at 15 or more (chosen after seeing that).
 */
export const DEFAULT_MAINS_OPTIONS: Readonly<MainsOptions> = Object.freeze({ mainsHz: Object.freeze([50, 60]), maxHz: 400, minLineDb: 15, blockS: 4 });

export interface MainsLine {
  /** Estimated frequency (Hz). */
  hz: number;
  /** Line power over the neighbourhood median (dB). */
  db: number;
}

/** Longest stretch analysed for lines (2^21 samples: 524 s at 4 kHz). */
const MAX_FFT = 1 << 21;

/** Lines of `x` (sampled at `fs`) at the mains frequencies and their harmonics, strongest evidence first. */
export function detectMainsLines(x: Float32Array, fs: number, options: Partial<MainsOptions> = {}): MainsLine[] {
  const o = { ...DEFAULT_MAINS_OPTIONS, ...options };
  const len = Math.min(x.length, MAX_FFT);
  // A line needs a few seconds to stand out of heart sounds; shorter recordings are left alone.
  if (len < 2 * fs) return [];
  let n = 1;
  while (n < len) n <<= 1;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let i = 0; i < len; i++) re[i] = (x[i] as number) * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (len - 1)));
  fft(re, im);
  const df = fs / n;
  const power = (k: number) => (re[k] as number) ** 2 + (im[k] as number) ** 2;
  const lines: MainsLine[] = [];
  for (const f0 of o.mainsHz) {
    for (let h = 1; h * f0 <= Math.min(o.maxHz, 0.45 * fs); h++) {
      const lo = Math.ceil((h * (f0 - 0.5)) / df);
      const hi = Math.floor((h * (f0 + 0.5)) / df);
      let best = lo;
      for (let k = lo; k <= hi; k++) if (power(k) > power(best)) best = k;
      const line = power(best - 1) + power(best) + power(best + 1);
      const hood: number[] = [];
      for (let k = Math.ceil(best - 3 / df); k <= best + 3 / df; k++) if (Math.abs(k - best) * df >= 0.5 && k > 0) hood.push(power(k));
      hood.sort((a, b) => a - b);
      const median = hood[Math.floor(hood.length / 2)] ?? 0;
      const db = median > 0 ? 10 * Math.log10(line / (3 * median)) : Number.POSITIVE_INFINITY;
      if (!(db >= o.minLineDb)) continue;
      // A mains line stands alone; a very regular heart puts a comb of lines at multiples of its rate
      // (0.5-3 Hz apart), and one of its teeth near 50 Hz is the heart's, not the mains'.
      const highest = hood[hood.length - 1] ?? 0;
      if (!(line >= 4 * highest)) continue;
      // Parabolic interpolation of the log power around the peak bin.
      const [a, b, c] = [power(best - 1), power(best), power(best + 1)].map((p) => Math.log(p + 1e-300)) as [number, number, number];
      const shift = a - 2 * b + c === 0 ? 0 : (0.5 * (a - c)) / (a - 2 * b + c);
      const hz = (best + Math.max(-0.5, Math.min(0.5, shift))) * df;
      if (lines.some((l) => Math.abs(l.hz - hz) < 0.2)) continue;
      lines.push({ hz, db: Math.round(db * 10) / 10 });
    }
  }
  return lines.sort((p, q) => q.db - p.db);
}

/**
 * Subtracts a sinusoid at each of `lines` from `x` (a copy), fitted by least squares in blocks of
 * `blockS` overlapping by half and cross-faded (Hann weights normalised to sum to one), so that the
 * line's amplitude and phase may drift.
 */
export function subtractLines(x: Float32Array, fs: number, lines: readonly MainsLine[], options: Partial<MainsOptions> = {}): Float32Array {
  const o = { ...DEFAULT_MAINS_OPTIONS, ...options };
  const y = Float64Array.from(x);
  const L = Math.min(y.length, Math.max(8, Math.round(o.blockS * fs)));
  const hop = Math.max(1, Math.floor(L / 2));
  const starts: number[] = [];
  for (let s = 0; s + L <= y.length; s += hop) starts.push(s);
  if (starts.length === 0 || (starts[starts.length - 1] as number) + L < y.length) starts.push(Math.max(0, y.length - L));
  const weightSum = new Float64Array(y.length);
  const window = Float64Array.from({ length: L }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / L));
  for (const s of starts) for (let i = 0; i < L; i++) weightSum[s + i] = (weightSum[s + i] as number) + (window[i] as number);
  for (const line of lines) {
    const w = (2 * Math.PI * line.hz) / fs;
    const fit = new Float64Array(y.length);
    // cos and sin of w * n for every n, by rotation (re-anchored every 4096 samples against drift).
    const cos = new Float64Array(y.length);
    const sin = new Float64Array(y.length);
    const [cw, sw] = [Math.cos(w), Math.sin(w)];
    for (let i = 0; i < y.length; i++) {
      if (i % 4096 === 0) {
        cos[i] = Math.cos(w * i);
        sin[i] = Math.sin(w * i);
      } else {
        cos[i] = (cos[i - 1] as number) * cw - (sin[i - 1] as number) * sw;
        sin[i] = (sin[i - 1] as number) * cw + (cos[i - 1] as number) * sw;
      }
    }
    for (const s of starts) {
      // Normal equations of y ~ A cos + B sin over the block.
      let cc = 0;
      let ss = 0;
      let cs = 0;
      let yc = 0;
      let ys = 0;
      for (let i = s; i < s + L; i++) {
        const [c, si, v] = [cos[i] as number, sin[i] as number, y[i] as number];
        cc += c * c;
        ss += si * si;
        cs += c * si;
        yc += v * c;
        ys += v * si;
      }
      const det = cc * ss - cs * cs;
      if (!(Math.abs(det) > 1e-9)) continue;
      const A = (yc * ss - ys * cs) / det;
      const B = (ys * cc - yc * cs) / det;
      for (let i = 0; i < L; i++) fit[s + i] = (fit[s + i] as number) + (window[i] as number) * (A * (cos[s + i] as number) + B * (sin[s + i] as number));
    }
    for (let i = 0; i < y.length; i++) y[i] = (y[i] as number) - (fit[i] as number) / ((weightSum[i] as number) || 1);
  }
  return Float32Array.from(y);
}

