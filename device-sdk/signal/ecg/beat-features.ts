/**
 * Per-beat features for the beat classifier (pure: no I/O, no timers). Samples and detected R peaks in,
 * one fixed-length feature vector per beat out, bounded memory.
 *
 * Inter-patient beat classification works when every feature is measured against the patient's own
 * rhythm and morphology, so the extractor keeps running references of the record:
 * - RR: the interval before and after the beat, a local mean (last `localBeats` intervals) and a
 *   record-level running mean (exponential, `globalBeats` time constant); the ratios to both
 *   (prematurity is what separates S from N beats);
 * - morphology: the band-passed lead from `windowMs[0]` to `windowMs[1]` around the R peak, resampled to
 *   `morphPoints` points, baseline (median) removed, scaled by the running QRS amplitude of the record,
 *   minus a running template (per-point median of the last `templateBeats` non-premature beats, i.e.
 *   the patient's dominant beat); the correlation with and distance to the template; QRS width
 *   relative to the template's, QRS energy;
 * - rhythm (for the supraventricular rule of beat-classes.ts): RR before and after relative to the
 *   median of the last RR intervals between two beats of the dominant rhythm (shaped like it), the
 *   spread of the last RR intervals (AF context), and the correlation of the QRS, P-wave and T-wave
 *   regions with a second template of the beats not premature against that median, P-region energy.
 * The feature layout is `FEATURE_NAMES` followed by the morphology; the model manifest records it.
 */

import { median, medianInPlace } from '../stats.js';
import { Biquad, DEFAULT_MAINS_HZ, MainsFilter } from './qrs-detector.js';

/** AAMI EC57 beat classes. */
export const AAMI_CLASSES = ['N', 'S', 'V', 'F', 'Q'] as const;
export type AamiClass = (typeof AAMI_CLASSES)[number];

/** WFDB beat code -> AAMI class (EC57 / de Chazal 2004). Paced (/ f) and unclassifiable beats are Q. */
export function aamiClassOf(code: number): AamiClass | undefined {
  switch (code) {
    case 1: // N
    case 2: // L
    case 3: // R
    case 34: // e
    case 11: // j
      return 'N';
    case 8: // A
    case 4: // a
    case 7: // J
    case 9: // S
      return 'S';
    case 5: // V
    case 10: // E
      return 'V';
    case 6: // F
      return 'F';
    case 12: // /
    case 38: // f
    case 13: // Q
      return 'Q';
    default:
      return undefined;
  }
}

/** The WFDB code written for a beat of each AAMI class (N=1, S=8 'A', V=5, F=6, Q=13). */
export const AAMI_WFDB_CODE: Readonly<Record<AamiClass, number>> = Object.freeze({ N: 1, S: 8, V: 5, F: 6, Q: 13 });

export interface BeatFeatureOptions {
  fs: number;
  /** Morphology window around the R peak (ms). */
  windowMs: [number, number];
  morphPoints: number;
  localBeats: number;
  globalBeats: number;
  templateBeats: number;
  /** Band of the morphology filter (Hz). */
  bandHz: [number, number];
  /** Mains frequencies notched out before the band filter ([] for none; the QRS detector takes the lead as it comes). */
  mainsHz: readonly number[];
  /**
   * `canonical`: the morphology is turned so that the dominant beat's largest QRS deflection is positive,
   * decided on the first `templateBeats` beats of the stream and then kept (a lead's polarity is set by
   * where its electrodes are, which does not change during a recording), so a lead recorded with its
   * polarity reversed (swapped electrodes, an inverting front end) gives the same features;
   * `as-recorded`: the lead's own sign (ecg-beats up to 1.3.0).
   */
  polarity: 'canonical' | 'as-recorded';
}

export const DEFAULT_BEAT_FEATURE_OPTIONS: Readonly<Omit<BeatFeatureOptions, 'fs'>> = Object.freeze({
  windowMs: [-250, 400] as [number, number],
  morphPoints: 50,
  localBeats: 10,
  globalBeats: 300,
  templateBeats: 21,
  bandHz: [0.5, 35] as [number, number],
  mainsHz: DEFAULT_MAINS_HZ,
  polarity: 'canonical',
});

export const FEATURE_NAMES = Object.freeze([
  'rrPre',
  'rrPost',
  'rrLocal',
  'rrGlobal',
  'rrPreLocal',
  'rrPostLocal',
  'rrPreGlobal',
  'rrPostGlobal',
  'rrLocalGlobal',
  'rrPostPre',
  'rrIrregularity',
  'templateCorr',
  'templateDist',
  'qrsDist',
  'qrsWidth',
  'qrsEnergy',
  'amplitude',
  'rrPreNormal',
  'rrPostNormal',
  'rrSpread',
  'rrIrregularShare',
  'qrsCorr',
  'pCorr',
  'pEnergy',
  'tCorr',
] as const);

export function featureLength(options: Pick<BeatFeatureOptions, 'morphPoints'> = DEFAULT_BEAT_FEATURE_OPTIONS): number {
  return FEATURE_NAMES.length + options.morphPoints;
}

export interface BeatFeatures {
  /** Sample index of the R peak (as given). */
  sample: number;
  /** RR before and after (s). */
  rrPre: number;
  rrPost: number;
  features: Float32Array;
}

/**
 * A template: the per-point median of the beats of `history` (each `out.length` points long), written
 * into `out`; `column` is scratch at least `history.length` long.
 */
function pointMedian(history: readonly Float32Array[], column: Float64Array, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < history.length; j++) column[j] = (history[j] as Float32Array)[i] as number;
    out[i] = medianInPlace(column, history.length);
  }
  return out;
}

/** Correlation with the template from which a beat counts as shaped like the dominant beat. */
const NORMAL_MIN_CORR = 0.75;
/** RR intervals of the rhythm context (AF-like irregularity). */
const CONTEXT_BEATS = 16;
/** RR intervals between beats of the dominant rhythm that set the reference of prematurity. */
const NORMAL_BEATS = 8;

const clip = (x: number, hi = 4) => (Number.isFinite(x) ? Math.max(0, Math.min(hi, x)) : 0);

interface Pending {
  sample: number;
  rrPre: number;
  rrPost?: number;
  /** RR before < 85 % of the mean of the previous intervals: kept out of the template. */
  premature: boolean;
  /** RR before < 85 % of the median RR of the dominant rhythm: kept out of the rhythm features' template. */
  early: boolean;
  /** Morphology (difference from the template) and its scalars, once the window after the R peak has arrived. */
  shape?: {
    morph: Float32Array;
    corr: number;
    dist: number;
    qrsDist: number;
    width: number;
    energy: number;
    amplitude: number;
    qrsCorr: number;
    pCorr: number;
    pEnergy: number;
    tCorr: number;
    /** Shaped like the template (correlation >= NORMAL_MIN_CORR). */
    normalLike: boolean;
  };
}

/**
 * Streaming extractor: `pushSamples` every chunk (first lead), `pushBeat` every detected R peak (in
 * order); `take` returns the beats whose features are complete (morphology window passed and the
 * next beat known). `flush` completes the rest at the end of a record (RR after = RR before).
 */
export class BeatFeatureExtractor {
  readonly options: BeatFeatureOptions;
  private readonly hp: Biquad;
  private readonly lp: Biquad;
  private readonly mains: MainsFilter;
  private readonly ring: Float64Array;
  private n = 0;
  private readonly pre: number;
  private readonly post: number;
  private readonly pending: Pending[] = [];
  private readonly ready: BeatFeatures[] = [];
  private lastSample: number | undefined;
  private nextShapeAt = Number.POSITIVE_INFINITY;
  private readonly rrHistory: number[] = [];
  private readonly recentRr: number[] = [];
  private templateWidth = 0;
  private rrGlobal = 0;
  private beatsSeen = 0;
  private amplitudeRef = 0;
  /** Sign applied to the lead's morphology (`polarity: 'canonical'`); final once the template is full. */
  private polarity = 1;
  private polarityFinal = false;
  private readonly templateHistory: Float32Array[] = [];
  /** Scratch of the templates' per-point medians (no allocation per beat). */
  private readonly column: Float64Array;
  private readonly template: Float32Array;
  private readonly dominant: Float32Array;
  /** Successive differences of `contextRr` (scratch). */
  private readonly deltas = new Float64Array(CONTEXT_BEATS);
  /** RR intervals between two consecutive beats of the dominant rhythm (the reference of prematurity). */
  private readonly normalRr: number[] = [];
  /** The last RR intervals, whatever the beats (the rhythm context: irregular in AF). */
  private readonly contextRr: number[] = [];
  private prevNormalLike = false;
  /** The rhythm features' template: the last beats not premature against the dominant rhythm. */
  private readonly dominantHistory: Float32Array[] = [];
  /** Morphology point ranges: P wave (-250..-60 ms), QRS (-100..+100 ms), T wave (+150..+400 ms). */
  private readonly pRange: [number, number];
  private readonly qrsRange: [number, number];
  private readonly tRange: [number, number];

  constructor(options: Partial<BeatFeatureOptions> & { fs: number }) {
    this.options = { ...DEFAULT_BEAT_FEATURE_OPTIONS, ...options };
    const { fs, bandHz, windowMs } = this.options;
    this.hp = Biquad.highPass(fs, bandHz[0]);
    this.lp = Biquad.lowPass(fs, bandHz[1]);
    this.mains = new MainsFilter(fs, this.options.mainsHz);
    this.pre = Math.round((-windowMs[0] * fs) / 1000);
    this.post = Math.round((windowMs[1] * fs) / 1000);
    this.ring = new Float64Array(Math.max(this.pre + this.post + 2, Math.round(3 * fs)));
    const { morphPoints, templateBeats } = this.options;
    this.column = new Float64Array(templateBeats);
    this.template = new Float32Array(morphPoints);
    this.dominant = new Float32Array(morphPoints);
    const range = (a: number, b: number): [number, number] => {
      let lo = morphPoints;
      let hi = -1;
      for (let i = 0; i < morphPoints; i++) {
        const tMs = windowMs[0] + (i * (windowMs[1] - windowMs[0])) / (morphPoints - 1);
        if (tMs >= a && tMs <= b) {
          lo = Math.min(lo, i);
          hi = Math.max(hi, i);
        }
      }
      return hi < lo ? [0, 0] : [lo, hi + 1];
    };
    this.pRange = range(-250, -60);
    this.qrsRange = range(-100, 100);
    this.tRange = range(150, 400);
  }

  /** Samples seen so far. */
  get sampleCount(): number {
    return this.n;
  }

  pushSamples(samples: ArrayLike<number>): void {
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.n % this.ring.length] = this.lp.step(this.hp.step(this.mains.step(samples[i] as number)));
      this.n += 1;
      // A pending beat's morphology is taken as soon as its window is complete.
      if (this.n > this.nextShapeAt) this.shapeAll();
    }
  }

  private shapeAll(): void {
    for (const p of this.pending) if (!p.shape && this.n > p.sample + this.post) p.shape = this.shape(p.sample, p.premature, p.early);
    this.release();
    this.updateNextShape();
  }

  private updateNextShape(): void {
    const first = this.pending.find((p) => !p.shape);
    this.nextShapeAt = first ? first.sample + this.post : Number.POSITIVE_INFINITY;
  }

  /** A detected R peak (sample index in the same count as the samples pushed). */
  pushBeat(sample: number): void {
    const fs = this.options.fs;
    const rrPre = this.lastSample === undefined ? 0 : (sample - this.lastSample) / fs;
    if (this.lastSample !== undefined) {
      const last = this.pending[this.pending.length - 1];
      if (last) last.rrPost = rrPre;
    }
    this.lastSample = sample;
    const mean = this.recentRr.length > 0 ? this.recentRr.reduce((a, b) => a + b, 0) / this.recentRr.length : 0;
    const dominantRr = this.normalRr.length >= 3 ? median(this.normalRr) : this.recentRr.length > 0 ? median(this.recentRr) : 0;
    const p: Pending = { sample, rrPre, premature: rrPre > 0 && mean > 0 && rrPre < 0.85 * mean, early: rrPre > 0 && dominantRr > 0 && rrPre < 0.85 * dominantRr };
    if (rrPre > 0) {
      this.recentRr.push(rrPre);
      if (this.recentRr.length > this.options.localBeats) this.recentRr.shift();
    }
    if (this.n > sample + this.post) p.shape = this.shape(sample, p.premature, p.early);
    this.pending.push(p);
    this.release();
    this.updateNextShape();
  }

  private release(): void {
    while (this.pending.length > 0) {
      const p = this.pending[0] as Pending;
      if (!p.shape || p.rrPost === undefined) return;
      this.pending.shift();
      this.complete(p, p.rrPost);
    }
  }

  /** Completes every pending beat (end of record): RR after is taken as RR before. */
  flush(): void {
    for (const p of this.pending) p.shape ??= this.shape(Math.min(p.sample, this.n - 1), p.premature, p.early);
    while (this.pending.length > 0) {
      const p = this.pending.shift() as Pending;
      this.complete(p, p.rrPost ?? p.rrPre);
    }
  }

  take(): BeatFeatures[] {
    return this.ready.splice(0, this.ready.length);
  }

  private value(k: number): number {
    if (k < 0 || k >= this.n || k < this.n - this.ring.length) return 0;
    return this.ring[k % this.ring.length] as number;
  }

  private shape(r: number, premature: boolean, early: boolean): NonNullable<Pending['shape']> {
    const { morphPoints, fs, templateBeats } = this.options;
    const raw = new Float32Array(morphPoints);
    const span = this.pre + this.post;
    for (let i = 0; i < morphPoints; i++) {
      const x = r - this.pre + (i * span) / (morphPoints - 1);
      const k = Math.floor(x);
      const f = x - k;
      raw[i] = this.value(k) * (1 - f) + this.value(k + 1) * f;
    }
    const base = median(raw);
    for (let i = 0; i < morphPoints; i++) raw[i] = (raw[i] as number) - base;
    // QRS amplitude, width and energy in r-100..r+120 ms.
    const from = r - Math.round(0.1 * fs);
    const to = r + Math.round(0.12 * fs);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    let maxSlope = 0;
    let energy = 0;
    for (let k = from; k <= to; k++) {
      const v = this.value(k) - base;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      maxSlope = Math.max(maxSlope, Math.abs(this.value(k + 1) - this.value(k)));
      if (Math.abs(k - r) <= 0.06 * fs) energy += v * v;
    }
    let first = -1;
    let last = -1;
    for (let k = from; k <= to; k++) {
      if (Math.abs(this.value(k + 1) - this.value(k)) >= 0.2 * maxSlope) {
        if (first < 0) first = k;
        last = k;
      }
    }
    const p2p = hi - lo;
    this.amplitudeRef = this.amplitudeRef === 0 ? p2p : this.amplitudeRef + 0.05 * (p2p - this.amplitudeRef);
    const scale = this.amplitudeRef > 0 ? this.amplitudeRef : 1;
    const morph = new Float32Array(morphPoints);
    for (let i = 0; i < morphPoints; i++) morph[i] = Math.max(-4, Math.min(4, (this.polarity * (raw[i] as number)) / scale));
    // Template: per-point median of the last non-premature beats (the record's dominant morphology);
    // the model sees the beat's difference from it, so a patient's own wide dominant beat (bundle
    // branch block) is not taken for a ventricular one.
    let corr = 1;
    let dist = 0;
    let qrsDist = 0;
    const diff = new Float32Array(morphPoints);
    const width = first < 0 ? 0 : (last - first + 1) / fs / 0.1;
    if (this.templateHistory.length >= 3) {
      const template = pointMedian(this.templateHistory, this.column, this.template);
      if (this.options.polarity === 'canonical' && !this.polarityFinal) this.turnPolarity(template, morph);
      corr = correlation(morph, template);
      let sq = 0;
      for (let i = 0; i < morphPoints; i++) {
        diff[i] = (morph[i] as number) - (template[i] as number);
        sq += (diff[i] as number) ** 2;
      }
      dist = Math.sqrt(sq / morphPoints);
      // The same distance over the QRS complex only (R peak -100 ms to +100 ms).
      const [q0, q1] = this.qrsRange;
      let qsq = 0;
      for (let i = q0; i < q1; i++) qsq += (diff[i] as number) ** 2;
      qrsDist = q1 > q0 ? Math.sqrt(qsq / (q1 - q0)) : 0;
    }
    // The template takes the beats that are not premature; its per-point median keeps the dominant
    // beat as long as most of them are (in bigeminy the ectopic beats are premature and stay out).
    if (!premature || this.templateHistory.length < 3) {
      this.templateHistory.push(morph);
      if (this.templateHistory.length > templateBeats) this.templateHistory.shift();
      this.templateWidth = this.templateWidth === 0 ? width : this.templateWidth + 0.1 * (width - this.templateWidth);
    }
    // The rhythm features compare the beat with a second template, of the beats not premature against
    // the dominant rhythm's median RR (a run of supraventricular beats stays out of it): QRS, P-wave and
    // T-wave correlation, P-wave energy, and whether the beat is shaped like the dominant beat.
    let qrsCorr = 1;
    let pCorr = 1;
    let pEnergy = 1;
    let tCorr = 1;
    let normalLike = true;
    if (this.dominantHistory.length >= 3) {
      const dominant = pointMedian(this.dominantHistory, this.column, this.dominant);
      normalLike = correlation(morph, dominant) >= NORMAL_MIN_CORR;
      qrsCorr = correlation(morph, dominant, this.qrsRange);
      pCorr = correlation(morph, dominant, this.pRange);
      tCorr = correlation(morph, dominant, this.tRange);
      const pv = variance(morph, this.pRange);
      const tv = variance(dominant, this.pRange);
      pEnergy = tv > 0 ? pv / tv : 1;
    }
    if (!early || this.dominantHistory.length < 3) {
      this.dominantHistory.push(morph);
      if (this.dominantHistory.length > templateBeats) this.dominantHistory.shift();
    }
    return {
      morph: diff,
      corr,
      dist,
      qrsDist,
      width: this.templateWidth > 0 ? width / this.templateWidth : 1,
      energy: energy / (scale * scale) / (0.12 * fs),
      amplitude: p2p / scale,
      qrsCorr,
      pCorr,
      pEnergy,
      tCorr,
      normalLike,
    };
  }

  /**
   * Canonical polarity, while the template fills: when its largest QRS deflection is negative, every
   * stored beat, the template and the current beat are turned over, and so is every later beat; once the
   * template holds `templateBeats` beats the sign is final. Reversing the lead swaps the two deflections,
   * so the same decision is taken the other way round and the features come out the same.
   */
  private turnPolarity(template: Float32Array, morph: Float32Array): void {
    const [q0, q1] = this.qrsRange;
    let hi = 0;
    let lo = 0;
    let hiAt = q0;
    let loAt = q0;
    for (let i = q0; i < q1; i++) {
      const v = template[i] as number;
      if (v > hi) [hi, hiAt] = [v, i];
      if (-v > lo) [lo, loAt] = [-v, i];
    }
    this.polarityFinal = this.templateHistory.length >= this.options.templateBeats;
    // A tie (both deflections clipped at the same bound) goes by which comes first, which reversal also swaps.
    if (lo < hi || (lo === hi && loAt >= hiAt)) return;
    this.polarity = -this.polarity;
    // A beat is often in both histories (the same array): each is turned once.
    for (const beat of new Set([...this.templateHistory, ...this.dominantHistory, template, morph])) for (let i = 0; i < beat.length; i++) beat[i] = -(beat[i] as number);
  }

  private complete(p: Pending, rrPost: number): void {
    const { localBeats, globalBeats } = this.options;
    const shape = p.shape as NonNullable<Pending['shape']>;
    const rrPre = p.rrPre > 0 ? p.rrPre : rrPost;
    // References from the beats before this one (a premature beat must not set its own reference).
    const local = this.rrHistory.length > 0 ? this.rrHistory.reduce((a, b) => a + b, 0) / this.rrHistory.length : rrPre || 1;
    const global = this.beatsSeen > 0 ? this.rrGlobal : local;
    // Irregularity of the preceding rhythm: mean absolute successive difference / mean (high in AF,
    // where a short interval is not a premature beat).
    let irregular = 0;
    for (let i = 1; i < this.rrHistory.length; i++) irregular += Math.abs((this.rrHistory[i] as number) - (this.rrHistory[i - 1] as number));
    irregular = this.rrHistory.length > 1 ? irregular / (this.rrHistory.length - 1) / local : 0;
    // Prematurity against the dominant rhythm: the median of the last RR intervals between two beats of
    // it (not a mean polluted by ectopic beats and their pauses).
    const normal = this.normalRr.length >= 3 ? median(this.normalRr) : local;
    // Rhythm context: the median successive RR difference over the last intervals, relative to their
    // median, and the share of successive differences above 15 %: one premature beat in a regular rhythm
    // moves neither much, AF moves both.
    let spread = 0;
    let irregularShare = 0;
    if (this.contextRr.length >= 4) {
      const med = median(this.contextRr);
      const deltas = this.deltas;
      const nd = this.contextRr.length - 1;
      for (let i = 0; i < nd; i++) {
        deltas[i] = Math.abs((this.contextRr[i + 1] as number) - (this.contextRr[i] as number));
        if ((deltas[i] as number) > 0.15 * med) irregularShare += 1;
      }
      irregularShare /= nd;
      spread = med > 0 ? medianInPlace(deltas, nd) / med : 0;
    }
    if (p.rrPre > 0) {
      this.contextRr.push(p.rrPre);
      if (this.contextRr.length > CONTEXT_BEATS) this.contextRr.shift();
      if (shape.normalLike && this.prevNormalLike) {
        this.normalRr.push(p.rrPre);
        if (this.normalRr.length > NORMAL_BEATS) this.normalRr.shift();
      }
    }
    this.prevNormalLike = shape.normalLike;
    if (p.rrPre > 0) {
      this.rrHistory.push(p.rrPre);
      if (this.rrHistory.length > localBeats) this.rrHistory.shift();
      this.beatsSeen += 1;
      const alpha = Math.max(1 / this.beatsSeen, 1 / globalBeats);
      this.rrGlobal += alpha * (p.rrPre - this.rrGlobal);
    }
    const f = new Float32Array(featureLength(this.options));
    const scalars = [
      clip(rrPre),
      clip(rrPost),
      clip(local),
      clip(global),
      clip(rrPre / local),
      clip(rrPost / local),
      clip(rrPre / global),
      clip(rrPost / global),
      clip(local / global),
      clip(rrPost / rrPre),
      clip(irregular),
      shape.corr,
      clip(shape.dist),
      clip(shape.qrsDist),
      clip(shape.width),
      clip(shape.energy),
      clip(shape.amplitude),
      clip(rrPre / normal),
      clip(rrPost / normal),
      clip(spread),
      irregularShare,
      shape.qrsCorr,
      shape.pCorr,
      clip(shape.pEnergy),
      shape.tCorr,
    ];
    f.set(scalars, 0);
    f.set(shape.morph, scalars.length);
    this.ready.push({ sample: p.sample, rrPre, rrPost, features: f });
  }
}

function correlation(a: Float32Array, b: Float32Array, range: [number, number] = [0, a.length]): number {
  const [from, to] = range;
  const n = to - from;
  if (n < 2) return 0;
  let ma = 0;
  let mb = 0;
  for (let i = from; i < to; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = from; i < to; i++) {
    const x = (a[i] as number) - ma;
    const y = (b[i] as number) - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

function variance(a: Float32Array, [from, to]: [number, number]): number {
  const n = to - from;
  if (n < 1) return 0;
  let m = 0;
  for (let i = from; i < to; i++) m += a[i] as number;
  m /= n;
  let v = 0;
  for (let i = from; i < to; i++) v += ((a[i] as number) - m) ** 2;
  return v / n;
}
