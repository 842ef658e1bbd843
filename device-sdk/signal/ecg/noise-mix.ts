/**
 * Noise stress after the MIT-BIH Noise Stress Test (nst, EC57): noise added to a clean record at a
 * given signal-to-noise ratio, where the signal power is taken from the QRS complexes
 * (S = (median peak-to-peak QRS amplitude)^2 / 8, the power of a sine of that amplitude) and the noise
 * power is the mean square of the noise (mean removed). SNR dB = 10 log10(S / (a^2 N)). Pure.
 */
import { upperMedian } from '../stats.js';

export function qrsSignalPower(signal: ArrayLike<number>, beats: readonly number[], fs: number): number {
  const half = Math.round(0.05 * fs);
  const p2p: number[] = [];
  for (const b of beats) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let k = Math.max(0, b - half); k <= Math.min(signal.length - 1, b + half); k++) {
      const v = signal[k] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (hi > lo) p2p.push(hi - lo);
  }
  if (p2p.length === 0) return 0;
  const a = upperMedian(p2p);
  return (a * a) / 8;
}

export function noisePower(noise: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < noise.length; i++) mean += noise[i] as number;
  mean /= noise.length || 1;
  let sq = 0;
  for (let i = 0; i < noise.length; i++) sq += ((noise[i] as number) - mean) ** 2;
  return sq / (noise.length || 1);
}

/**
 * Adds each noise record at `snrDb` of its own (e.g. `ma` and `bw` each at 12 dB: each as strong as the
 * stress test makes it), rounded and clipped to `range`.
 */
export function mixNoises(signal: ArrayLike<number>, noises: readonly ArrayLike<number>[], signalPower: number, snrDb: number, range: [number, number] = [-32768, 32767]): Int16Array {
  // Mix in floating point, round once at the end.
  const acc = Float64Array.from(signal as ArrayLike<number>);
  for (const noise of noises) {
    const n = noisePower(noise);
    const scale = n > 0 ? Math.sqrt(signalPower / (n * 10 ** (snrDb / 10))) : 0;
    let mean = 0;
    for (let i = 0; i < noise.length; i++) mean += noise[i] as number;
    mean /= noise.length || 1;
    for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + scale * ((noise[i % noise.length] as number) - mean);
  }
  const mixed = new Int16Array(acc.length);
  for (let i = 0; i < acc.length; i++) mixed[i] = Math.max(range[0], Math.min(range[1], Math.round(acc[i] as number)));
  return mixed;
}

/**
 * `signal + a * noise` with `a` set for `snrDb`, rounded and clipped to `[min, max]` (the ADC range).
 * The noise is repeated when shorter than the signal; its mean is removed.
 */
export function mixNoise(signal: ArrayLike<number>, noise: ArrayLike<number>, signalPower: number, snrDb: number, range: [number, number] = [-32768, 32767]): { mixed: Int16Array; scale: number } {
  const n = noisePower(noise);
  const scale = n > 0 ? Math.sqrt(signalPower / (n * 10 ** (snrDb / 10))) : 0;
  let mean = 0;
  for (let i = 0; i < noise.length; i++) mean += noise[i] as number;
  mean /= noise.length || 1;
  const mixed = new Int16Array(signal.length);
  for (let i = 0; i < signal.length; i++) {
    const v = Math.round((signal[i] as number) + scale * ((noise[i % noise.length] as number) - mean));
    mixed[i] = Math.max(range[0], Math.min(range[1], v));
  }
  return { mixed, scale };
}
