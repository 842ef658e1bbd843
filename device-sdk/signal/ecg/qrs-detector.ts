/**
 * Streaming QRS detector (pure: no I/O, no timers). Chunks of samples in, beats out, bounded memory.
 *
 * After Hamilton & Tompkins (IEEE TBME 33(12), 1986; the OSEA detector) with the sampling rate as a
 * parameter and any number of leads:
 * 1. per lead: band-pass (2nd-order Butterworth high-pass and low-pass, `bandHz`), a 10 ms difference,
 *    absolute value; the leads' slopes are summed. On MIT-BIH one lead (MLII) scores better than the
 *    plain sum of two: fusing leads needs per-lead quality gating, which is not done yet;
 * 2. a moving average over `integrationMs` gives the detection feature;
 * 3. a feature peak is a local maximum confirmed once the feature has fallen below half of it (or
 *    `peakConfirmMs` passed); it is a QRS when it is above
 *    `noise + thresholdFraction * (qrs - noise)` (medians of the last 8 QRS and noise peaks), outside
 *    the refractory period, and, within `tWaveMs` of the previous QRS, steeper than half of it (else a T wave);
 * 4. when no QRS came for `searchbackFactor` times the median RR, the largest peak since the last QRS
 *    above half the threshold is taken (searchback);
 * 5. an accepted peak is held for `refractoryMs`: a larger peak in that time (the QRS after a P wave
 *    taken for one) replaces it; then the R peak is placed at the largest deviation of the first lead's
 *    raw samples from their mean in a window before the feature peak.
 * Measured on the shared MIT-BIH records: gross Se 99.81%, +P 99.82% (EC57); the hold puts the median
 * latency from R peak to report at 267-294 ms (README, "Protocols, transports and signal processing").
 */
import { ConfigError } from '../../errors.js';
import { median } from '../stats.js';

/** Mains frequencies notched out of the ECG by default: 50 Hz (most of the world) and 60 Hz (the Americas, parts of Asia). */
export const DEFAULT_MAINS_HZ: readonly number[] = Object.freeze([50, 60]);
const MAINS_NOTCH_Q = 10;

export interface QrsDetectorOptions {
  fs: number;
  leads: number;
  bandHz: [number, number];
  integrationMs: number;
  refractoryMs: number;
  tWaveMs: number;
  peakConfirmMs: number;
  thresholdFraction: number;
  searchbackFactor: number;
  /** Window before the feature peak in which the R peak is searched (ms). */
  locateMs: [number, number];
}

export const DEFAULT_QRS_OPTIONS: Readonly<Omit<QrsDetectorOptions, 'fs' | 'leads'>> = Object.freeze({
  bandHz: [5, 18] as [number, number],
  integrationMs: 60,
  refractoryMs: 220,
  tWaveMs: 360,
  peakConfirmMs: 100,
  thresholdFraction: 0.375,
  searchbackFactor: 1.5,
  locateMs: [-190, 10] as [number, number],
});

export interface QrsBeat {
  /** Sample index of the R peak since the detector started. */
  sample: number;
  /** Feature amplitude relative to the detection threshold (>= 1; searchback beats may be lower). */
  strength: number;
  searchback: boolean;
}

/** Direct-form-I biquad (2nd-order Butterworth high- or low-pass). */
export class Biquad {
  private x1 = 0;
  private x2 = 0;
  private y1 = 0;
  private y2 = 0;
  constructor(
    private readonly b0: number,
    private readonly b1: number,
    private readonly b2: number,
    private readonly a1: number,
    private readonly a2: number,
  ) {}
  static lowPass(fs: number, f: number): Biquad {
    const w = Math.tan((Math.PI * f) / fs);
    const q = Math.SQRT1_2;
    const n = 1 / (1 + w / q + w * w);
    return new Biquad(w * w * n, 2 * w * w * n, w * w * n, 2 * (w * w - 1) * n, (1 - w / q + w * w) * n);
  }
  static highPass(fs: number, f: number): Biquad {
    const w = Math.tan((Math.PI * f) / fs);
    const q = Math.SQRT1_2;
    const n = 1 / (1 + w / q + w * w);
    return new Biquad(n, -2 * n, n, 2 * (w * w - 1) * n, (1 - w / q + w * w) * n);
  }
  /** Notch at `f` Hz with quality `q` (bandwidth f / q; RBJ audio-EQ cookbook), unity gain away from it. */
  static notch(fs: number, f: number, q: number): Biquad {
    const w0 = (2 * Math.PI * f) / fs;
    const alpha = Math.sin(w0) / (2 * q);
    const n = 1 / (1 + alpha);
    return new Biquad(n, -2 * Math.cos(w0) * n, n, -2 * Math.cos(w0) * n, (1 - alpha) * n);
  }
  step(x: number): number {
    const y = this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2;
    this.x2 = this.x1;
    this.x1 = x;
    this.y2 = this.y1;
    this.y1 = y;
    return y;
  }
}

/**
 * Power-line interference removal: a cascade of notches (quality 10, about 5-6 Hz wide) at each mains
 * frequency below 0.49 x the sampling rate (60 Hz is notched at 125 and 128 Hz; at 120 Hz it is the
 * Nyquist frequency and cannot be). Poorly grounded clinic equipment puts tenths of a millivolt of
 * hum on an ECG, as large as a P wave; the ECG itself has little energy there. Pure and streaming.
 */
export class MainsFilter {
  private readonly notches: Biquad[];
  constructor(fs: number, mainsHz: readonly number[] = DEFAULT_MAINS_HZ) {
    this.notches = mainsHz.filter((f) => f > 0 && f < 0.49 * fs).map((f) => Biquad.notch(fs, f, MAINS_NOTCH_Q));
  }
  step(x: number): number {
    let y = x;
    for (const notch of this.notches) y = notch.step(y);
    return y;
  }
  /** The chunk filtered (a new array; the state carries over to the next chunk). */
  filter(samples: ArrayLike<number>): Float64Array {
    const out = new Float64Array(samples.length);
    for (let i = 0; i < samples.length; i++) out[i] = this.step(samples[i] as number);
    return out;
  }
}

/** Longest history a ring holds (it is indexed by a 32-bit mask). */
const RING_MAX = 2 ** 30;

/** Fixed-size ring of numbers indexed by absolute sample number (at least `size` long: a power of two, indexed by mask). */
class Ring {
  readonly data: Float64Array;
  private readonly mask: number;
  constructor(size: number) {
    let n = 1;
    while (n < size) n *= 2; // not `n <<= 1`: past 2^30 it wraps to 0 and the loop never ends
    this.data = new Float64Array(n);
    this.mask = n - 1;
  }
  set(i: number, v: number): void {
    this.data[i & this.mask] = v;
  }
  get(i: number): number {
    return this.data[i & this.mask] as number;
  }
}

interface Candidate {
  at: number;
  value: number;
  slope: number;
}

export class QrsDetector {
  readonly options: QrsDetectorOptions;
  private readonly ms: (ms: number) => number;
  private readonly hp: Biquad[];
  private readonly lp: Biquad[];
  private readonly bands: Ring[];
  private readonly raw: Ring;
  private readonly feature: Ring;
  private readonly slopeSum: Ring;
  private integ = 0;
  private n = 0;
  private readonly integWindow: number;
  // peak tracking
  /** The feature peak being tracked (`risingAt` < 0: none); its slope is measured when it is confirmed. */
  private risingAt = -1;
  private risingValue = 0;
  private prevFeature = 0;
  // Sample counts of the millisecond options (computed once, not per sample).
  private readonly diffLag: number;
  private readonly refractory: number;
  private readonly tWave: number;
  private readonly peakConfirm: number;
  /** Median RR and detection threshold, recomputed when their inputs change (not per sample). */
  private rrMedian = 0;
  private thresholdCache = Number.NaN;
  private readonly qrsPeaks: number[] = [];
  private readonly noisePeaks: number[] = [];
  private readonly rrs: number[] = [];
  private lastQrs: Candidate | undefined;
  /** An accepted peak held for the refractory period: a larger peak in that time replaces it (a P wave taken for a QRS). */
  private pending: { peak: Candidate; searchback: boolean; threshold: number } | undefined;
  private lastBeatSample = -1;
  /** Searchback looks again no earlier than this sample. */
  private searchbackAt = 0;
  private sinceLast: Candidate[] = [];
  private initDone = false;
  private readonly initLength: number;
  private readonly initPeaks: number[] = [];

  constructor(options: Partial<QrsDetectorOptions> & { fs: number; leads?: number }) {
    this.options = { ...DEFAULT_QRS_OPTIONS, leads: 1, ...options };
    const { fs, leads, bandHz } = this.options;
    this.ms = (ms: number) => Math.max(1, Math.round((ms * fs) / 1000));
    this.hp = Array.from({ length: leads }, () => Biquad.highPass(fs, bandHz[0]));
    this.lp = Array.from({ length: leads }, () => Biquad.lowPass(fs, bandHz[1]));
    const history = this.ms(2500);
    if (!(history <= RING_MAX)) {
      throw new ConfigError('fs', fs, `asks for ${history} samples of history (2.5 s), more than the detector holds (2^30)`, 'give the sampling rate in Hz (ECG is recorded at a few hundred Hz)');
    }
    this.bands = Array.from({ length: leads }, () => new Ring(history));
    this.raw = new Ring(history);
    this.feature = new Ring(history);
    this.slopeSum = new Ring(history);
    this.integWindow = this.ms(this.options.integrationMs);
    this.initLength = this.ms(2000);
    this.diffLag = this.ms(10);
    this.refractory = this.ms(this.options.refractoryMs);
    this.tWave = this.ms(this.options.tWaveMs);
    this.peakConfirm = this.ms(this.options.peakConfirmMs);
  }

  /** Feeds one chunk: `leads[l][i]` is sample i of lead l (all leads the same length). Returns the beats confirmed so far. */
  push(leads: readonly ArrayLike<number>[]): QrsBeat[] {
    const out: QrsBeat[] = [];
    const count = leads[0]?.length ?? 0;
    const d = this.diffLag;
    const nLeads = this.options.leads;
    for (let i = 0; i < count; i++) {
      const t = this.n;
      let slope = 0;
      for (let l = 0; l < nLeads; l++) {
        const x = (leads[l] as ArrayLike<number>)[i] as number;
        if (l === 0) this.raw.set(t, x);
        const band = (this.lp[l] as Biquad).step((this.hp[l] as Biquad).step(x));
        const ring = this.bands[l] as Ring;
        ring.set(t, band);
        const prev = t >= d ? ring.get(t - d) : 0;
        slope += Math.abs(band - prev);
      }
      this.slopeSum.set(t, slope);
      this.integ += slope - (t >= this.integWindow ? this.slopeSum.get(t - this.integWindow) : 0);
      const f = this.integ / this.integWindow;
      this.feature.set(t, f);
      this.n += 1;
      this.onFeature(t, f, out);
    }
    return out;
  }

  private onFeature(t: number, f: number, out: QrsBeat[]): void {
    if (f > this.prevFeature && (this.risingAt < 0 || f > this.risingValue)) {
      this.risingAt = t;
      this.risingValue = f;
    }
    this.prevFeature = f;
    if (this.risingAt >= 0 && (f < this.risingValue / 2 || t - this.risingAt > this.peakConfirm)) {
      // The slope history of the peak (integWindow samples before it) is still in the ring.
      const peak: Candidate = { at: this.risingAt, value: this.risingValue, slope: this.maxSlope(this.risingAt) };
      this.risingAt = -1;
      this.onPeak(peak);
    }
    const pending = this.pending;
    if (pending === undefined) {
      this.searchback(t);
      return;
    }
    const refractory = this.refractory;
    // A larger peak still rising inside the refractory window will replace the held one once confirmed.
    const challenger = this.risingAt >= 0 && this.risingAt - pending.peak.at < refractory && this.risingValue > pending.peak.value;
    if (!challenger && t - pending.peak.at >= refractory) {
      this.pending = undefined;
      this.commit(pending.peak, pending.searchback, pending.threshold, out);
    }
    if (!this.pending) this.searchback(t);
  }

  private maxSlope(t: number): number {
    let m = 0;
    for (let k = Math.max(0, t - this.integWindow); k <= t; k++) {
      const v = this.slopeSum.get(k);
      if (v > m) m = v;
    }
    return m;
  }

  private threshold(): number {
    if (Number.isNaN(this.thresholdCache)) {
      const qrs = median(this.qrsPeaks);
      const noise = this.noisePeaks.length > 0 ? median(this.noisePeaks) : 0;
      this.thresholdCache = noise + this.options.thresholdFraction * (qrs - noise);
    }
    return this.thresholdCache;
  }

  private remember(list: number[], value: number): void {
    list.push(value);
    if (list.length > 8) list.shift();
    if (list === this.rrs) this.rrMedian = median(this.rrs);
    else this.thresholdCache = Number.NaN;
  }

  private onPeak(peak: Candidate): void {
    if (!this.initDone) {
      this.initPeaks.push(peak.value);
      if (peak.at < this.initLength) return;
      this.initDone = true;
      const sorted = [...this.initPeaks].sort((a, b) => b - a);
      for (const v of sorted.slice(0, 3)) this.remember(this.qrsPeaks, v);
      this.remember(this.noisePeaks, median(this.initPeaks) * 0.5);
      // The peak that ends the learning is judged like the next ones (it was dropped: on a slow rhythm
      // the first beat came one RR later, up to 4.7 s after a lead was put back on; bench/ecg-lead-back.js).
    }
    const threshold = this.threshold();
    if (this.pending) {
      // Inside the refractory period of a held peak: the larger of the two is the QRS.
      if (peak.value > this.pending.peak.value) this.pending = { peak, searchback: false, threshold };
      return;
    }
    const last = this.lastQrs;
    const since = last ? peak.at - last.at : Number.POSITIVE_INFINITY;
    if (since < this.refractory) return;
    if (peak.value >= threshold) {
      if (last && since < this.tWave && peak.slope < last.slope / 2) {
        this.remember(this.noisePeaks, peak.value);
        this.sinceLast.push(peak);
        return;
      }
      this.pending = { peak, searchback: false, threshold };
    } else {
      this.remember(this.noisePeaks, peak.value);
      this.sinceLast.push(peak);
    }
  }

  private searchback(t: number): void {
    const last = this.lastQrs;
    if (!last || this.rrs.length < 2) return;
    const limit = this.options.searchbackFactor * this.rrMedian;
    if (t - last.at < limit || t < this.searchbackAt) return;
    const threshold = this.threshold();
    let best: Candidate | undefined;
    for (const c of this.sinceLast) {
      if (c.at - last.at >= this.tWave && c.value >= threshold / 2 && (!best || c.value > best.value)) best = c;
    }
    if (best) {
      this.noisePeaks.pop();
      this.thresholdCache = Number.NaN;
      this.pending = { peak: best, searchback: true, threshold };
      this.sinceLast = [];
    } else {
      // Nothing to take: look again half an interval later.
      this.searchbackAt = t + Math.round(limit / 2);
    }
  }

  private commit(peak: Candidate, searchback: boolean, threshold: number, out: QrsBeat[]): void {
    this.remember(this.qrsPeaks, peak.value);
    if (this.lastQrs) this.remember(this.rrs, peak.at - this.lastQrs.at);
    this.lastQrs = peak;
    this.sinceLast = [];
    const sample = this.locate(peak.at);
    if (sample <= this.lastBeatSample) return;
    this.lastBeatSample = sample;
    out.push({ sample, strength: peak.value / threshold, searchback });
  }

  /** The R peak: the largest deviation of the first lead from its mean over the location window (raw samples, no filter delay). */
  private locate(at: number): number {
    const [from, to] = this.options.locateMs;
    const start = Math.max(0, at + Math.round((from * this.options.fs) / 1000), this.n - this.ms(2400));
    const end = Math.min(this.n - 1, at + Math.round((to * this.options.fs) / 1000));
    let mean = 0;
    for (let k = start; k <= end; k++) mean += this.raw.get(k);
    mean /= end - start + 1;
    let best = start;
    let bestValue = -1;
    for (let k = start; k <= end; k++) {
      const v = Math.abs(this.raw.get(k) - mean);
      if (v > bestValue) {
        bestValue = v;
        best = k;
      }
    }
    return best;
  }
}
