import { aliasHz, DEFAULT_MAINS_HUM_FILTER_OPTIONS, MainsHumFilter } from './mains-hum-filter.js';

/**
 * Whether a detected QRS complex is credible (pure: no I/O, no timers): the ECG monitor's check on its
 * QRS detector while the detector learns a new stream or a lead that was put back on.
 *
 * The detector adapts its thresholds to what it sees, so on a lead that shows only baseline noise (a
 * patient with no heartbeat) it soon "finds" beats in the noise. A QRS complex stands out of the signal
 * around it; noise does not. A detection at R peak `r` is credible when the peak-to-peak of the lead in
 * `r ± qrsHalfMs` is at least `minQrsMv` and at least `minProminence` times the median peak-to-peak of
 * the `windowMs` windows of the `backgroundMs` before it. On the 26 shared MIT-BIH records 99 % of the
 * detector's beats have a prominence >= 2 on 19 records (>= 1.1 on all but 207, whose ventricular flutter
 * has no QRS to stand out); on baseline noise (0.03 mV SD) its detections sit at 0.9-1.2.
 */

import { blankPacePulse, type PacePulseOptions } from './pace-pulses.js';

export interface QrsCredibilityOptions {
  fs: number;
  /** Half-width of the QRS window around the R peak (ms). */
  qrsHalfMs: number;
  /** Smallest peak-to-peak of a credible QRS (mV). */
  minQrsMv: number;
  /** Smallest ratio of the QRS peak-to-peak to the median peak-to-peak of the background windows. */
  minProminence: number;
  /**
   * A lower ratio from which a detection still counts as a sign of a heartbeat (it holds the asystole
   * alert back) without being credible: noisy ECG (MIT-BIH 108) has runs of QRS at 1.3-2.
   */
  minEvidenceProminence: number;
  /**
   * Before a stream has shown a credible QRS, such a detection counts as a sign of a heartbeat only when
   * its peak-to-peak is at least this (mV): on baseline noise (0.03 mV SD) after a lead-back the detector's
   * first detections reach a prominence of 1.6 at 0.2 mV; the wide complexes of a ventricular tachycardia
   * (MIT-BIH 205 at 298 s) stand out no more (1.0-1.6) but measure 1-1.5 mV.
   */
  minFirstEvidenceMv: number;
  /**
   * Two detections have the same shape when their `r ± qrsHalfMs` windows (line taken off) correlate at
   * least this much. Muscle artefact stands out of its background as a QRS does (the nstdb `ma` record's
   * detections reach a prominence of 2 and more) but does not repeat its shape: with each of its credible
   * detections against the best of the 3 before it the correlation is 0.49 (median; 95th percentile 0.81),
   * where the credible detections after a lead-back on the 26 MIT-BIH records reach 0.99 (median; 10th
   * percentile 0.94, 5th 0.80; bench/ecg-lead-back.js cases).
   */
  minRepeatCorrelation: number;
  /** Background: windows of `windowMs` over the `backgroundMs` before the QRS. */
  windowMs: number;
  backgroundMs: number;
  /** Fewest background windows (of this stream) for a verdict; fewer: not credible. */
  minWindows: number;
  /**
   * Mains frequencies (Hz) whose hum `measure` fits and takes out (see `measure`). Under 0.3 mV of hum a
   * 120 ms window spans the hum's 0.6 mV whatever it holds, so a QRS of 0.2-0.4 mV stood out 1.1-1.5 times and
   * was neither credible nor a sign of a heartbeat (living MIT-BIH lead-backs x0.3/x0.5 at 250 Hz: false
   * `ecg-no-beats`). Empty: not fitted.
   */
  mainsHz: readonly number[];
  /**
   * The fitted hum is taken out only when it spans at least this share of the median background window
   * left once it is out (the hum is what the background is made of); on a lead without hum `measure` is the
   * raw one.
   */
  minHumShare: number;
}

export const DEFAULT_QRS_CREDIBILITY_OPTIONS: Readonly<Omit<QrsCredibilityOptions, 'fs'>> = Object.freeze({
  qrsHalfMs: 60,
  minQrsMv: 0.15,
  minProminence: 2,
  minEvidenceProminence: 1.5,
  minFirstEvidenceMv: 0.5,
  minRepeatCorrelation: 0.8,
  windowMs: 120,
  backgroundMs: 2_000,
  minWindows: 4,
  mainsHz: DEFAULT_MAINS_HUM_FILTER_OPTIONS.mainsHz,
  minHumShare: 1,
});

/** How long after the R peak a detection may be checked (ms): the detector reports about 300 ms late. */
const HISTORY_MARGIN_MS = 2_000;

export class QrsCredibility {
  readonly options: QrsCredibilityOptions;
  private readonly ring: Float64Array;
  /** Samples pushed since the start of the stream. */
  private pushed = 0;
  /** `humFit` of the stretches last asked ("from:to"). */
  private readonly fits = new Map<string, { residual: Float64Array; level: number; humSpan: number } | undefined>();

  constructor(options: Partial<QrsCredibilityOptions> & { fs: number }) {
    this.options = { ...DEFAULT_QRS_CREDIBILITY_OPTIONS, ...options };
    const { fs, backgroundMs, qrsHalfMs } = this.options;
    this.ring = new Float64Array(Math.ceil(((backgroundMs + qrsHalfMs + HISTORY_MARGIN_MS) * fs) / 1000));
  }

  /** Samples of the stream in ADC units, `gain` ADC units per mV. */
  pushSamples(samples: ArrayLike<number>, gain: number): void {
    for (let i = 0; i < samples.length; i++) this.ring[(this.pushed + i) % this.ring.length] = (samples[i] as number) / (gain || 1);
    this.pushed += samples.length;
  }

  /** Peak-to-peak (mV) of samples [from, to) of the stream. */
  private p2p(from: number, to: number): number {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = from; i < to; i++) {
      const v = this.ring[i % this.ring.length] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return hi - lo;
  }

  /**
   * The QRS detected at sample `r` of the stream: its peak-to-peak (mV) and its prominence (that over the
   * median of the background windows); undefined when too little of the stream is at hand. Where the lead
   * carries mains hum (`mainsHz`, `minHumShare`), both are measured with the hum fitted over the background
   * and the QRS window (`fitHum`) taken out, so a QRS under hum stands out of the rest of the lead as it would
   * without the hum (then `humTakenOut`).
   */
  measure(r: number): { qrsMv: number; prominence: number; humTakenOut?: true } | undefined {
    const raw = this.rawMeasure(r);
    if (raw === undefined) return raw;
    const { fs, qrsHalfMs, backgroundMs } = this.options;
    const half = Math.round((qrsHalfMs * fs) / 1000);
    const from = Math.max(0, this.pushed - this.ring.length, r - Math.round((backgroundMs * fs) / 1000));
    const lead = this.humFree(from, r + half + 1);
    if (lead === undefined) return raw;
    const qrsMv = span(lead.x, r - half - from, lead.x.length);
    return { qrsMv, prominence: lead.level > 0 ? qrsMv / lead.level : Number.POSITIVE_INFINITY, humTakenOut: true };
  }

  /**
   * Samples [from, to) of the stream (mV) with their mains hum (`fitHum`) taken out, and the median peak-to-peak
   * of their `windowMs` windows; undefined when the stretch is not at hand, or the hum (`mainsHz`) spans less
   * than `minHumShare` of that median (no hum to take out).
   */
  private humFree(from: number, to: number, always = false): { x: Float64Array; level: number } | undefined {
    const fit = this.humFit(from, to);
    if (fit === undefined || (!always && fit.humSpan < this.options.minHumShare * fit.level)) return undefined;
    return { x: fit.residual, level: fit.level };
  }

  /**
   * The hum fit of samples [from, to) (see `humFree`), kept for the stretches last asked (a detection is measured
   * several times; the samples of a stretch at hand do not change).
   */
  private humFit(from: number, to: number): { residual: Float64Array; level: number; humSpan: number } | undefined {
    const key = `${from}:${to}`;
    if (this.fits.has(key)) return this.fits.get(key);
    const { fs, mainsHz, windowMs, minWindows } = this.options;
    const x = mainsHz.length === 0 ? undefined : this.stretch(from, to);
    const hum = x === undefined ? undefined : fitHum(x, fs, mainsHz);
    let fit: { residual: Float64Array; level: number; humSpan: number } | undefined;
    if (x !== undefined && hum !== undefined) {
      const residual = x.map((v, k) => v - (hum[k] as number));
      const level = medianWindowSpan(residual, Math.max(2, Math.round((windowMs * fs) / 1000)), minWindows);
      if (level !== undefined) fit = { residual, level, humSpan: span(hum, 0, hum.length) };
    }
    // Not kept when the stretch is not all at hand yet (it may be later).
    if (x !== undefined) {
      this.fits.set(key, fit);
      if (this.fits.size > 16) this.fits.delete(this.fits.keys().next().value as string);
    }
    return fit;
  }

  /** `measure` on the lead as it is (hum and all). */
  private rawMeasure(r: number): { qrsMv: number; prominence: number } | undefined {
    const qrsMv = this.qrsMv(r);
    if (qrsMv === undefined) return undefined;
    const level = this.backgroundLevel(r);
    if (level === undefined) return undefined;
    return { qrsMv, prominence: level > 0 ? qrsMv / level : Number.POSITIVE_INFINITY };
  }

  /** Median peak-to-peak (mV) of the background windows of the detection at `r`; undefined when fewer than `minWindows` are at hand. */
  private backgroundLevel(r: number): number | undefined {
    const { fs, qrsHalfMs, windowMs, backgroundMs, minWindows } = this.options;
    const end = r + Math.round((qrsHalfMs * fs) / 1000) + 1;
    const start = Math.max(0, this.pushed - this.ring.length, r - Math.round((backgroundMs * fs) / 1000));
    const w = Math.max(2, Math.round((windowMs * fs) / 1000));
    const background: number[] = [];
    for (let s = start; s + w <= end; s += w) background.push(this.p2p(s, s + w));
    if (background.length < minWindows) return undefined;
    background.sort((a, b) => a - b);
    return background[background.length >> 1] as number;
  }

  /**
   * Whether the detection at `r` is a pacemaker pulse with no QRS after it (`blankPacePulse`): its QRS window
   * (`r ± qrsHalfMs`) holds a pulse, and once the pulse is blanked, what is left from `r - qrsHalfMs` to
   * `r + captureWindowMs` (the QRS an atrial pulse leads to comes up to 250 ms later) measures less than
   * `minQrsMv`, or less than `maxUnprominentMv` while standing out of the background less than
   * `minEvidenceProminence` times. False when that stretch is not at hand.
   */
  pacePulseOnly(r: number, options: PacePulseOptions): boolean {
    const { fs, qrsHalfMs, minQrsMv, minEvidenceProminence } = this.options;
    const half = Math.round((qrsHalfMs * fs) / 1000);
    const after = Math.max(half, Math.round((options.captureWindowMs * fs) / 1000));
    const window = this.stretch(r - half, r + after + 1);
    if (window === undefined) return false;
    const pulse = blankPacePulse(window, fs, options, 1, 2 * half + 1);
    if (pulse === undefined) return false;
    const left = Math.max(...pulse.blanked) - Math.min(...pulse.blanked);
    if (left < minQrsMv) return true;
    const level = this.backgroundLevel(r);
    return left < options.maxUnprominentMv && level !== undefined && level > 0 && left / level < minEvidenceProminence;
  }

  /**
   * The correlation of the QRS windows (`r ± qrsHalfMs`, their line taken off) of the detections at
   * samples `r` and `q`; undefined when either is not at hand (or flat).
   */
  similarity(r: number, q: number): number | undefined {
    const half = Math.round((this.options.qrsHalfMs * this.options.fs) / 1000);
    const oldest = Math.max(0, this.pushed - this.ring.length);
    if (Math.min(r, q) - half < oldest || Math.max(r, q) + half >= this.pushed) return undefined;
    const from = Math.min(r, q) - half;
    const lead = this.humFree(from, Math.max(r, q) + half + 1);
    const at = lead === undefined ? (k: number) => this.ring[k % this.ring.length] as number : (k: number) => lead.x[k - from] as number;
    const a = detrended(at, r, half);
    const b = detrended(at, q, half);
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < a.length; k++) {
      ab += (a[k] as number) * (b[k] as number);
      aa += (a[k] as number) ** 2;
      bb += (b[k] as number) ** 2;
    }
    return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : undefined;
  }

  /** Peak-to-peak (mV) of the QRS window of the detection at sample `r` (`r ± qrsHalfMs`); undefined when not at hand. */
  qrsMv(r: number): number | undefined {
    const half = Math.round((this.options.qrsHalfMs * this.options.fs) / 1000);
    if (r - half < Math.max(0, this.pushed - this.ring.length) || r + half + 1 > this.pushed) return undefined;
    return this.p2p(r - half, r + half + 1);
  }

  /**
   * Peak-to-peak (mV) of the QRS window of the detection at sample `r` (`r ± qrsHalfMs`) with mains hum at
   * `mainsHz` taken out by `MainsHumFilter` (the filter `LeadDeflection` streams: moving averages, and a notch
   * where the rate holds no whole hum period, as 128 Hz); undefined when not at hand (the window and the
   * filter's run-in before it).
   */
  humFreeQrsMv(r: number, mainsHz: readonly number[] = DEFAULT_MAINS_HUM_FILTER_OPTIONS.mainsHz): number | undefined {
    const { fs, qrsHalfMs } = this.options;
    const half = Math.round((qrsHalfMs * fs) / 1000);
    const filter = new MainsHumFilter({ fs, mainsHz });
    const samples = this.stretch(r - half - filter.runIn, r + half + 1);
    if (samples === undefined) return undefined;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const sample of samples) {
      const v = filter.push(sample);
      if (v === undefined) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    return hi - lo;
  }

  /**
   * Peak-to-peak (mV) of the QRS window of the detection at sample `r` with the mains hum fitted over it and
   * the `backgroundMs` before it taken out (`fitHum`, as `measure` does under hum, here whatever the hum's
   * size); undefined when not at hand. Unlike `humFreeQrsMv` it keeps a narrow QRS's span (MIT-BIH 114 x0.3:
   * 0.09-0.10 mV once averaged).
   */
  fittedHumFreeQrsMv(r: number): number | undefined {
    const { fs, qrsHalfMs, backgroundMs } = this.options;
    const half = Math.round((qrsHalfMs * fs) / 1000);
    const from = Math.max(0, this.pushed - this.ring.length, r - Math.round((backgroundMs * fs) / 1000));
    const lead = this.humFree(from, r + half + 1, true);
    return lead === undefined ? undefined : span(lead.x, r - half - from, lead.x.length);
  }

  /** Samples [from, to) of the stream (mV); undefined when any of them is not at hand (too old for the ring, or not pushed yet). */
  private stretch(from: number, to: number): Float64Array | undefined {
    if (from < Math.max(0, this.pushed - this.ring.length) || to > this.pushed) return undefined;
    return Float64Array.from({ length: to - from }, (_, k) => this.ring[(from + k) % this.ring.length] as number);
  }

  /** Whether the detection at `r` has the shape of one of the detections at `others` (`minRepeatCorrelation`). */
  repeats(r: number, others: readonly number[]): boolean {
    return others.some((q) => (this.similarity(r, q) ?? -1) >= this.options.minRepeatCorrelation);
  }

  /**
   * Whether the QRS detected at sample `r` stands out of its background (see the module comment);
   * `minProminence` and `minQrsMv` override the options.
   */
  credible(r: number, minProminence = this.options.minProminence, minQrsMv = this.options.minQrsMv): boolean {
    const m = this.measure(r);
    return m !== undefined && m.qrsMv >= minQrsMv && m.prominence >= minProminence;
  }
}

/** Samples `c ± half` (`at(k)`: sample k of the stream) with their least-squares line taken off (baseline wander tilts a QRS window). */
function detrended(at: (k: number) => number, c: number, half: number): Float64Array {
  const n = 2 * half + 1;
  const x = new Float64Array(n);
  let mean = 0;
  for (let k = 0; k < n; k++) {
    x[k] = at(c - half + k);
    mean += x[k] as number;
  }
  mean /= n;
  let sxy = 0;
  let sxx = 0;
  for (let k = 0; k < n; k++) {
    sxy += (k - half) * ((x[k] as number) - mean);
    sxx += (k - half) ** 2;
  }
  const slope = sxy / sxx;
  for (let k = 0; k < n; k++) x[k] = (x[k] as number) - mean - slope * (k - half);
  return x;
}

/** Peak-to-peak of `x[from, to)` (0 when empty). */
export function span(x: ArrayLike<number>, from: number, to: number): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = from; i < to; i++) {
    const v = x[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return to > from ? hi - lo : 0;
}

/** Median peak-to-peak of the whole windows of `w` samples of `x` from its start (as `backgroundLevel`); undefined when fewer than `minWindows`. */
function medianWindowSpan(x: ArrayLike<number>, w: number, minWindows: number): number | undefined {
  const spans: number[] = [];
  for (let s = 0; s + w <= x.length; s += w) spans.push(span(x, s, s + w));
  if (spans.length < minWindows) return undefined;
  spans.sort((a, b) => a - b);
  return spans[spans.length >> 1] as number;
}

/**
 * The mains hum in `x` (sampled at `fs`): a least-squares fit of a line and, for each frequency of `mainsHz` as
 * sampled (`aliasHz`; none at 0 Hz, a cosine alone at half the rate), a cosine and a sine with amplitudes that
 * may drift linearly over the stretch (a mains frequency 0.2 Hz off its nominal value turns its phase by 0.8 rad
 * over 2 s). Returns the fitted hum alone (the line left out), or undefined when there is nothing to fit.
 */
export function fitHum(x: ArrayLike<number>, fs: number, mainsHz: readonly number[]): Float64Array | undefined {
  const n = x.length;
  const design = humDesign(n, fs, mainsHz);
  if (design === undefined) return undefined;
  const { phi, gram, humFrom } = design;
  const m = phi.length;
  // Normal equations (m <= 10, symmetric), solved by Gaussian elimination with partial pivoting.
  const a = gram.map((row) => [...row, 0]);
  for (let i = 0; i < m; i++) {
    const pi = phi[i] as Float64Array;
    let acc = 0;
    for (let k = 0; k < n; k++) acc += (pi[k] as number) * (x[k] as number);
    (a[i] as number[])[m] = acc;
  }
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let i = c + 1; i < m; i++) if (Math.abs((a[i] as number[])[c] as number) > Math.abs((a[p] as number[])[c] as number)) p = i;
    [a[c], a[p]] = [a[p] as number[], a[c] as number[]];
    const row = a[c] as number[];
    const pivot = row[c] as number;
    if (Math.abs(pivot) < 1e-12) return undefined;
    for (let i = 0; i < m; i++) {
      if (i === c) continue;
      const other = a[i] as number[];
      const f = (other[c] as number) / pivot;
      if (f !== 0) for (let j = c; j <= m; j++) other[j] = (other[j] as number) - f * (row[j] as number);
    }
  }
  const coef = a.map((row, i) => (row[m] as number) / (row[i] as number));
  const hum = new Float64Array(n);
  for (let j = humFrom; j < m; j++) {
    const c = coef[j] as number;
    const pj = phi[j] as Float64Array;
    for (let k = 0; k < n; k++) hum[k] = (hum[k] as number) + c * (pj[k] as number);
  }
  return hum;
}

/** The basis of `fitHum` over `n` samples and its Gram matrix: they depend only on n, fs and the frequencies. */
interface HumDesign {
  phi: Float64Array[];
  gram: number[][];
  humFrom: number;
}

/** cos(w k) and sin(w k), k = 0.., of the frequencies `fitHum` has fitted, grown as longer stretches are asked for. */
const SINUSOIDS = new Map<string, { cos: Float64Array; sin: Float64Array }>();

/** cos(w k) and sin(w k) for k < n (w = 2 pi hz / fs), from a table kept per (hz, fs). */
function sinusoid(hz: number, fs: number, n: number): { cos: Float64Array; sin: Float64Array } {
  const key = `${hz}|${fs}`;
  let t = SINUSOIDS.get(key);
  if (t === undefined || t.cos.length < n) {
    const w = (2 * Math.PI * hz) / fs;
    const len = Math.max(n, 2 * (t?.cos.length ?? 0));
    t = { cos: Float64Array.from({ length: len }, (_, k) => Math.cos(w * k)), sin: Float64Array.from({ length: len }, (_, k) => Math.sin(w * k)) };
    SINUSOIDS.set(key, t);
    if (SINUSOIDS.size > 16) SINUSOIDS.delete(SINUSOIDS.keys().next().value as string);
  }
  return { cos: t.cos.subarray(0, n), sin: t.sin.subarray(0, n) };
}

/** `humDesign`s last used (a monitor fits stretches of a few lengths at one rate). */
const HUM_DESIGNS = new Map<string, HumDesign | undefined>();

/**
 * The basis and Gram matrix of `fitHum` for `n` samples at `fs`, kept for the last few (n, fs, frequencies): building
 * them (the cosines and sines, and the m x m products over n samples) was most of the live monitor's CPU when each fit
 * built them again. The same numbers in the same order as before, so the fits are the same to the bit.
 */
function humDesign(n: number, fs: number, mainsHz: readonly number[]): HumDesign | undefined {
  const key = `${n}|${fs}|${mainsHz.join(',')}`;
  if (HUM_DESIGNS.has(key)) return HUM_DESIGNS.get(key);
  let design: HumDesign | undefined;
  const freqs = [...new Set(mainsHz.map((hz) => aliasHz(hz, fs)))].filter((hz) => hz > 0);
  if (freqs.length > 0 && n >= 8) {
    const mid = (n - 1) / 2;
    const ramp = Float64Array.from({ length: n }, (_, k) => (k - mid) / n);
    const phi: Float64Array[] = [new Float64Array(n).fill(1), ramp];
    const humFrom = phi.length;
    for (const hz of freqs) {
      const nyquist = Math.abs(hz - fs / 2) < 1e-9;
      const { cos, sin } = sinusoid(hz, fs, n);
      phi.push(cos, cos.map((c, k) => (ramp[k] as number) * c));
      if (!nyquist) phi.push(sin, sin.map((v, k) => (ramp[k] as number) * v));
    }
    const m = phi.length;
    if (n > 2 * m) {
      const gram = phi.map(() => new Array<number>(m).fill(0));
      for (let i = 0; i < m; i++) {
        const pi = phi[i] as Float64Array;
        for (let j = 0; j <= i; j++) {
          const pj = phi[j] as Float64Array;
          let acc = 0;
          for (let k = 0; k < n; k++) acc += (pi[k] as number) * (pj[k] as number);
          (gram[i] as number[])[j] = acc;
          (gram[j] as number[])[i] = acc;
        }
      }
      design = { phi, gram, humFrom };
    }
  }
  HUM_DESIGNS.set(key, design);
  if (HUM_DESIGNS.size > 32) HUM_DESIGNS.delete(HUM_DESIGNS.keys().next().value as string);
  return design;
}
