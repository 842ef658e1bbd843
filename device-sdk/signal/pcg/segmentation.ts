/**
 * Heart-sound envelope and S1/S2 segmentation (pure: no I/O, no timers).
 *
 * After Schmidt et al. (Physiol Meas 31, 2010) and Springer et al. (IEEE TBME 63(4), 2016), lite:
 * 1. envelope: normalised Shannon energy `-x^2 ln x^2` of the band-passed signal (Liang et al., 1997),
 *    averaged over 20 ms frames every 10 ms (a 100 Hz envelope), smoothed over 50 ms;
 * 2. heart cycle length: the highest autocorrelation peak of the envelope between `minCycleS` and
 *    `maxCycleS` (halved while a peak at half the lag is at least 60 % as high); systole length: the highest peak between 0.2 s and half the cycle (Schmidt);
 * 3. candidate sounds: envelope peaks at least 120 ms apart above a fraction of the strong peaks;
 * 4. S1-S2 pairs: two candidates a systole apart; a dynamic programme chains pairs whose S1s are one
 *    cycle (+-35 %, or two cycles when one pair was missed) apart and keeps the best-scoring chain. Candidates outside the chain are extra
 *    sounds (S3/S4, clicks, ectopic beats or noise) and feed the features and the quality gate.
 */
export const ENVELOPE_RATE_HZ = 100;

export interface SegmentationOptions {
  minCycleS: number;
  maxCycleS: number;
  /** Candidate peaks must be at least this far apart (s). */
  minPeakGapS: number;
  /** A candidate must reach this fraction of the 90th percentile of peak heights. */
  peakFraction: number;
}

export const DEFAULT_SEGMENTATION_OPTIONS: Readonly<SegmentationOptions> = Object.freeze({ minCycleS: 0.33, maxCycleS: 2, minPeakGapS: 0.12, peakFraction: 0.3 });

export interface HeartCycle {
  /** S1 and S2 onset-ish times: the envelope peak of each sound (s from the start). */
  s1: number;
  s2: number;
}

export interface Segmentation {
  /** Envelope, 100 Hz, scaled so that its 99th percentile is 1. */
  envelope: Float32Array;
  /** Cycle length from the autocorrelation (s); 0 when none was found. */
  cycleS: number;
  /** Systole length from the autocorrelation (s); 0 when none was found. */
  systoleS: number;
  /** Normalised autocorrelation at the cycle lag (0..1): how periodic the recording is. */
  periodicity: number;
  /** The chained S1/S2 pairs, in time order. */
  cycles: HeartCycle[];
  /** Candidate sounds not in the chain (s). */
  extraPeaks: number[];
  /** All candidate sounds (s). */
  peaks: number[];
  /** Envelope at the chained S1/S2 peaks over its median: about 1 for noise, 3 to 10 and more for clear heart sounds. */
  contrast: number;
}

function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(p * (sorted.length - 1))))] as number;
}

/** The Shannon-energy envelope at 100 Hz of a band-passed signal at `fs`. */
export function shannonEnvelope(x: Float32Array, fs: number): Float32Array {
  const scale = percentile(Float32Array.from(x, Math.abs), 0.995) || 1;
  const hop = Math.max(1, Math.round(fs / ENVELOPE_RATE_HZ));
  const win = hop * 2;
  const frames = Math.max(0, Math.floor(x.length / hop));
  const raw = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    let acc = 0;
    let n = 0;
    const start = f * hop - hop / 2;
    for (let i = Math.max(0, Math.round(start)); i < Math.min(x.length, Math.round(start) + win); i++) {
      const v = Math.min(1, Math.abs(x[i] as number) / scale);
      const e = v * v;
      acc += e > 0 ? -e * Math.log(e) : 0;
      n++;
    }
    raw[f] = n > 0 ? acc / n : 0;
  }
  // 50 ms moving average.
  const out = new Float32Array(frames);
  const k = 2;
  for (let f = 0; f < frames; f++) {
    let acc = 0;
    let n = 0;
    for (let j = Math.max(0, f - k); j <= Math.min(frames - 1, f + k); j++) {
      acc += raw[j] as number;
      n++;
    }
    out[f] = acc / n;
  }
  const top = percentile(out, 0.99) || 1;
  for (let f = 0; f < frames; f++) out[f] = (out[f] as number) / top;
  return out;
}

/** Normalised autocorrelation of the mean-removed envelope for lags 0..maxLag. */
function autocorrelation(env: Float32Array, maxLag: number): Float64Array {
  let mean = 0;
  for (const v of env) mean += v;
  mean /= env.length || 1;
  const d = Float64Array.from(env, (v) => v - mean);
  let e0 = 0;
  for (const v of d) e0 += v * v;
  const ac = new Float64Array(maxLag + 1);
  for (let lag = 0; lag <= maxLag && lag < d.length; lag++) {
    let acc = 0;
    for (let i = 0; i + lag < d.length; i++) acc += (d[i] as number) * (d[i + lag] as number);
    // Biased (as xcorr 'coeff'): long lags, seen by fewer samples, weigh less.
    ac[lag] = e0 > 0 ? acc / e0 : 0;
  }
  return ac;
}

function argmaxIn(a: Float64Array, lo: number, hi: number): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = Math.max(1, lo); i <= Math.min(a.length - 2, hi); i++) {
    const v = a[i] as number;
    if (v > bestV && v >= (a[i - 1] as number) && v >= (a[i + 1] as number)) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** Local maxima of the envelope, `minGap` samples apart, the larger winning. */
function pickPeaks(env: Float32Array, minGap: number, fraction: number): number[] {
  const local: number[] = [];
  for (let i = 1; i < env.length - 1; i++) if ((env[i] as number) > (env[i - 1] as number) && (env[i] as number) >= (env[i + 1] as number)) local.push(i);
  const heights = local.map((i) => env[i] as number);
  const floor = fraction * percentile(heights, 0.9);
  const byHeight = local.filter((i) => (env[i] as number) >= floor).sort((a, b) => (env[b] as number) - (env[a] as number));
  const taken: number[] = [];
  for (const i of byHeight) if (taken.every((j) => Math.abs(j - i) >= minGap)) taken.push(i);
  return taken.sort((a, b) => a - b);
}

/** Segments a band-passed heart-sound signal at `fs` into S1/S2 cycles. */
export function segmentHeartSounds(x: Float32Array, fs: number, options: Partial<SegmentationOptions> = {}): Segmentation {
  const o = { ...DEFAULT_SEGMENTATION_OPTIONS, ...options };
  const env = shannonEnvelope(x, fs);
  const r = ENVELOPE_RATE_HZ;
  const maxLag = Math.min(env.length - 2, Math.round(o.maxCycleS * r));
  const empty: Segmentation = { envelope: env, cycleS: 0, systoleS: 0, periodicity: 0, cycles: [], extraPeaks: [], peaks: [], contrast: 0 };
  if (maxLag < Math.round(o.minCycleS * r) + 2) return empty;
  const ac = autocorrelation(env, maxLag);
  let cycleLag = argmaxIn(ac, Math.round(o.minCycleS * r), maxLag);
  // A peak at half the lag nearly as high means the lag spans two cycles.
  for (let guard = 0; guard < 2 && cycleLag > 0; guard++) {
    const half = argmaxIn(ac, Math.max(Math.round(o.minCycleS * r), Math.round(cycleLag * 0.42)), Math.round(cycleLag * 0.58));
    if (half > 0 && (ac[half] as number) >= 0.6 * (ac[cycleLag] as number)) cycleLag = half;
    else break;
  }
  const peaksIdx = pickPeaks(env, Math.round(o.minPeakGapS * r), o.peakFraction);
  const peaks = peaksIdx.map((i) => i / r);
  if (cycleLag < 0) return { ...empty, peaks, extraPeaks: peaks };
  const cycleS = cycleLag / r;
  const sysLag = argmaxIn(ac, Math.round(0.2 * r), Math.round(cycleLag / 2));
  const systoleS = sysLag > 0 ? sysLag / r : Math.min(0.45, 0.2 + 0.25 * cycleS);
  const periodicity = Math.max(0, Math.min(1, ac[cycleLag] as number));

  // Candidate S1-S2 pairs.
  const amp = peaksIdx.map((i) => env[i] as number);
  const tol = Math.max(0.06, 0.25 * systoleS);
  interface Pair {
    i: number;
    j: number;
    score: number;
    best: number;
    prev: number;
  }
  const pairs: Pair[] = [];
  for (let i = 0; i < peaks.length; i++) {
    for (let j = i + 1; j < peaks.length; j++) {
      const dt = (peaks[j] as number) - (peaks[i] as number);
      if (dt > systoleS + tol) break;
      if (dt < systoleS - tol) continue;
      const score = 1 + (amp[i] as number) + (amp[j] as number) - (3 * Math.abs(dt - systoleS)) / tol;
      pairs.push({ i, j, score, best: score, prev: -1 });
    }
  }
  // Chain pairs: S1 to next S1 one cycle apart, the next S1 after this S2 (dynamic programme).
  for (let p = 0; p < pairs.length; p++) {
    const cur = pairs[p] as Pair;
    for (let q = 0; q < p; q++) {
      const prev = pairs[q] as Pair;
      const gap = (peaks[cur.i] as number) - (peaks[prev.i] as number);
      if (prev.j >= cur.i) continue;
      // One cycle on, or two (one S1-S2 pair missed, at a cost).
      const k = gap < 1.5 * cycleS ? 1 : 2;
      const dev = Math.abs(gap - k * cycleS) / cycleS;
      if (dev > 0.35) continue;
      const v = prev.best + cur.score - 2 * dev - (k - 1) * 1.5;
      if (v > cur.best) {
        cur.best = v;
        cur.prev = q;
      }
    }
  }
  let end = -1;
  for (let p = 0; p < pairs.length; p++) if (end < 0 || (pairs[p] as Pair).best > (pairs[end] as Pair).best) end = p;
  const chain: Pair[] = [];
  for (let p = end; p >= 0; p = (pairs[p] as Pair).prev) chain.push(pairs[p] as Pair);
  chain.reverse();
  const used = new Set(chain.flatMap((c) => [c.i, c.j]));
  const median = percentile(env, 0.5);
  const chainLevel = chain.reduce((sum, c) => sum + (amp[c.i] as number) + (amp[c.j] as number), 0) / Math.max(1, 2 * chain.length);
  return {
    contrast: median > 0 ? chainLevel / median : chain.length > 0 ? 100 : 0,
    envelope: env,
    cycleS,
    systoleS,
    periodicity,
    cycles: chain.map((c) => ({ s1: peaks[c.i] as number, s2: peaks[c.j] as number })),
    extraPeaks: peaks.filter((_, k) => !used.has(k)),
    peaks,
  };
}
