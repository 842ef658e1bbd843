/**
 * DSP building blocks for heart sounds (pure: no I/O, no timers): band-limited resampling,
 * Butterworth biquad sections run forward and backward (zero phase), and a radix-2 FFT.
 *
 * Sources: J. O. Smith, "Digital Audio Resampling" (windowed-sinc band-limited interpolation);
 * R. Bristow-Johnson, "Audio EQ Cookbook" (biquad low/high-pass by the bilinear transform);
 * Butterworth section Q values 1 / (2 cos((2k - 1) pi / 2n)); Gustafsson's forward-backward filtering
 * (as MATLAB/SciPy `filtfilt`) with a mirrored padding against edge transients.
 */
import { ConfigError } from '../../errors.js';

/**
 * Resamples `x` from `fromHz` to `toHz` by windowed-sinc interpolation (Kaiser-like Blackman window,
 * 8 zero crossings each side), low-passed below 0.45 of the lower rate, so downsampling does not alias.
 */
export function resample(x: Float32Array, fromHz: number, toHz: number): Float32Array {
  if (!(fromHz > 0) || !(toHz > 0)) throw new ConfigError('rateHz', { fromHz, toHz }, 'sample rates must be positive', 'give both rates in Hz');
  if (fromHz === toHz) return Float32Array.from(x);
  const ratio = toHz / fromHz;
  const n = Math.max(0, Math.floor(x.length * ratio));
  const out = new Float32Array(n);
  // Cutoff in cycles per input sample.
  const fc = 0.5 * Math.min(1, ratio) * 0.9;
  const zeroCrossings = 8;
  const half = Math.ceil(zeroCrossings / (2 * fc));
  for (let m = 0; m < n; m++) {
    const t = m / ratio;
    const center = Math.floor(t);
    let acc = 0;
    let wsum = 0;
    const lo = Math.max(0, center - half + 1);
    const hi = Math.min(x.length - 1, center + half);
    for (let k = lo; k <= hi; k++) {
      const d = t - k;
      const u = d / half;
      if (u <= -1 || u >= 1) continue;
      const arg = 2 * fc * d;
      const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
      const w = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      const h = 2 * fc * sinc * w;
      acc += (x[k] as number) * h;
      wsum += h;
    }
    // Normalising by the tap sum keeps DC gain exactly 1 (also at the edges).
    out[m] = wsum !== 0 ? acc / wsum : 0;
  }
  return out;
}

/** One second-order section: y = (b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2). */
export interface Biquad {
  b0: number;
  b1: number;
  b2: number;
  a1: number;
  a2: number;
}

function biquad(kind: 'low' | 'high', cutoffHz: number, fs: number, q: number): Biquad {
  const w0 = (2 * Math.PI * cutoffHz) / fs;
  const cos = Math.cos(w0);
  const alpha = Math.sin(w0) / (2 * q);
  const a0 = 1 + alpha;
  const b1 = kind === 'low' ? 1 - cos : -(1 + cos);
  const b0 = kind === 'low' ? (1 - cos) / 2 : (1 + cos) / 2;
  return { b0: b0 / a0, b1: b1 / a0, b2: b0 / a0, a1: (-2 * cos) / a0, a2: (1 - alpha) / a0 };
}

/** Butterworth high- or low-pass of even `order` as biquad sections. */
export function butterworth(kind: 'low' | 'high', order: number, cutoffHz: number, fs: number): Biquad[] {
  if (order < 2 || order % 2 !== 0) throw new ConfigError('order', order, 'must be an even number >= 2', 'use 2, 4, 6 ...');
  if (!(cutoffHz > 0 && cutoffHz < fs / 2)) throw new ConfigError('cutoffHz', cutoffHz, `must be between 0 and the Nyquist frequency ${fs / 2} Hz`, 'lower the cutoff or raise the rate');
  const sections: Biquad[] = [];
  for (let k = 1; k <= order / 2; k++) sections.push(biquad(kind, cutoffHz, fs, 1 / (2 * Math.cos(((2 * k - 1) * Math.PI) / (2 * order)))));
  return sections;
}

function runSections(x: Float64Array, sections: readonly Biquad[]): void {
  for (const s of sections) {
    // Start from the steady state of the first sample (as if it had been there forever).
    const dc = x[0] ?? 0;
    const gain = (s.b0 + s.b1 + s.b2) / (1 + s.a1 + s.a2);
    let x1 = dc;
    let x2 = dc;
    let y1 = dc * gain;
    let y2 = dc * gain;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i] as number;
      const yi = s.b0 * xi + s.b1 * x1 + s.b2 * x2 - s.a1 * y1 - s.a2 * y2;
      x2 = x1;
      x1 = xi;
      y2 = y1;
      y1 = yi;
      x[i] = yi;
    }
  }
}

/** Zero-phase filtering: forward, then backward, with odd mirrored padding of `pad` samples each side. */
export function filtfilt(x: Float32Array, sections: readonly Biquad[], pad = 0): Float32Array {
  const p = Math.min(pad, Math.max(0, x.length - 1));
  const n = x.length + 2 * p;
  const buf = new Float64Array(n);
  const first = x[0] ?? 0;
  const last = x[x.length - 1] ?? 0;
  for (let i = 0; i < p; i++) buf[i] = 2 * first - (x[p - i] as number);
  for (let i = 0; i < x.length; i++) buf[p + i] = x[i] as number;
  for (let i = 0; i < p; i++) buf[p + x.length + i] = 2 * last - (x[x.length - 2 - i] as number);
  runSections(buf, sections);
  buf.reverse();
  runSections(buf, sections);
  buf.reverse();
  return Float32Array.from(buf.subarray(p, p + x.length));
}

/** Zero-phase Butterworth band-pass (`order` each for the high- and the low-pass side). */
export function bandPass(x: Float32Array, fs: number, lowHz: number, highHz: number, order = 4): Float32Array {
  const sections = [...butterworth('high', order, lowHz, fs), ...butterworth('low', order, Math.min(highHz, fs * 0.45), fs)];
  return filtfilt(x, sections, Math.round(fs / lowHz) * 3);
}

/** In-place iterative radix-2 FFT of (re, im); length must be a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const tr = re[i] as number;
      re[i] = re[j] as number;
      re[j] = tr;
      const ti = im[i] as number;
      im[i] = im[j] as number;
      im[j] = ti;
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const br = (re[b] as number) * cr - (im[b] as number) * ci;
        const bi = (re[b] as number) * ci + (im[b] as number) * cr;
        re[b] = (re[a] as number) - br;
        im[b] = (im[a] as number) - bi;
        re[a] = (re[a] as number) + br;
        im[a] = (im[a] as number) + bi;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
}

/** Power spectrum (|X|^2, bins 0..n/2) of `x[start, start + n)` with a Hann window; zero-padded past the end. */
export function powerSpectrum(x: Float32Array, start: number, n: number): Float64Array {
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = x[start + i];
    re[i] = v === undefined ? 0 : v * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
  }
  fft(re, im);
  const out = new Float64Array(n / 2 + 1);
  for (let k = 0; k <= n / 2; k++) out[k] = (re[k] as number) ** 2 + (im[k] as number) ** 2;
  return out;
}
