import { mulberry32 } from '../../device-sdk/random.js';

export interface SyntheticPcg {
  samples: Float32Array;
  rateHz: number;
  /** True S1 and S2 centres (s). */
  s1: number[];
  s2: number[];
}

/**
 * A synthetic phonocardiogram with known sounds: S1 (Gaussian-windowed 50 + 90 Hz, 40 ms) every
 * 60/bpm s, S2 (70 + 130 Hz, 30 ms, 70 % of S1) `systoleS` later, white noise at `noise` of full
 * scale, and optionally a holosystolic murmur (band noise 150-300 Hz between S1 and S2).
 */
export function syntheticPcg(options: { bpm?: number; systoleS?: number; seconds?: number; rateHz?: number; noise?: number; murmur?: number; seed?: number } = {}): SyntheticPcg {
  const { bpm = 72, systoleS = 0.3, seconds = 10, rateHz = 4000, noise = 0.005, murmur = 0, seed = 1 } = options;
  const rand = mulberry32(seed);
  const n = Math.round(seconds * rateHz);
  const x = new Float32Array(n);
  const cycle = 60 / bpm;
  const s1: number[] = [];
  const s2: number[] = [];
  const burst = (t0: number, sd: number, f1: number, f2: number, amp: number) => {
    const c = Math.round(t0 * rateHz);
    const w = Math.round(4 * sd * rateHz);
    for (let i = Math.max(0, c - w); i < Math.min(n, c + w); i++) {
      const t = (i - c) / rateHz;
      const g = Math.exp(-0.5 * (t / sd) ** 2);
      x[i] = (x[i] as number) + amp * g * (0.6 * Math.sin(2 * Math.PI * f1 * t) + 0.4 * Math.sin(2 * Math.PI * f2 * t));
    }
  };
  for (let t = 0.25; t + systoleS + 0.1 < seconds; t += cycle) {
    s1.push(t);
    s2.push(t + systoleS);
    burst(t, 0.012, 50, 90, 0.5);
    burst(t + systoleS, 0.009, 70, 130, 0.35);
    if (murmur > 0) {
      let phase = 0;
      for (let i = Math.round((t + 0.05) * rateHz); i < Math.round((t + systoleS - 0.04) * rateHz) && i < n; i++) {
        phase += (2 * Math.PI * (150 + 150 * rand())) / rateHz;
        x[i] = (x[i] as number) + murmur * Math.sin(phase) * (0.5 + 0.5 * rand());
      }
    }
  }
  for (let i = 0; i < n; i++) x[i] = (x[i] as number) + noise * (2 * rand() - 1);
  return { samples: x, rateHz, s1, s2 };
}
