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
      const residual = new Float64Array(x.length);
      for (let k = 0; k < x.length; k++) residual[k] = (x[k] as number) - (hum[k] as number);
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
    const x = new Float64Array(to - from);
    for (let k = 0, i = from % this.ring.length; k < x.length; k++, i = i + 1 === this.ring.length ? 0 : i + 1) x[k] = this.ring[i] as number;
    return x;
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
 * may drift linearly over the stretch. Returns the fitted hum alone (the line left out), or undefined when there is
 * nothing to fit. Mains 0.2 Hz off its nominal frequency turns its phase by 0.8 pi rad over the 2.3 s of a detection's
 * stretch, which a linear drift follows poorly: of 0.3 mV at 49.8-60.2 Hz it leaves 0.31-0.34 mV of the 0.6 mV span
 * (at 250 and 128 Hz; a cubic drift leaves 0.02 mV, but was not adopted: see the README's ECG monitor section).
 */
export function fitHum(x: ArrayLike<number>, fs: number, mainsHz: readonly number[]): Float64Array | undefined {
  const n = x.length;
  const basis = humBasis(fs, mainsHz);
  const gram = basis === undefined ? undefined : humGram(basis, n);
  if (basis === undefined || gram === undefined) return undefined;
  const { m, humFrom } = basis;
  growWaves(basis, n);
  // Normal equations (m <= 10, symmetric), solved by Gaussian elimination with partial pivoting.
  const a: number[][] = [];
  for (let i = 0; i < m; i++) {
    const row = new Array<number>(m + 1).fill(0);
    for (let j = 0; j < m; j++) row[j] = gram[i >= j ? (i * (i + 1)) / 2 + j : (j * (j + 1)) / 2 + i] as number;
    a.push(row);
  }
  // x's products with each basis function (`basisAt`), each summed over k in order, one frequency at a time.
  const mid = (n - 1) / 2;
  let one = 0;
  let line = 0;
  for (let k = 0; k < n; k++) {
    const v = x[k] as number;
    one += v;
    line += ((k - mid) / n) * v;
  }
  (a[0] as number[])[m] = one;
  (a[1] as number[])[m] = line;
  let i = 2;
  for (const { nyquist, cos, sin } of basis.waves) {
    let xc = 0;
    let xrc = 0;
    let xs = 0;
    let xrs = 0;
    for (let k = 0; k < n; k++) {
      const v = x[k] as number;
      const ramp = (k - mid) / n;
      const c = cos[k] as number;
      const s = sin[k] as number;
      xc += c * v;
      xrc += ramp * c * v;
      xs += s * v;
      xrs += ramp * s * v;
    }
    (a[i++] as number[])[m] = xc;
    (a[i++] as number[])[m] = xrc;
    if (nyquist) continue;
    (a[i++] as number[])[m] = xs;
    (a[i++] as number[])[m] = xrs;
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
  // The hum: at each k, coefficient times basis function summed in the basis's order (`basisAt`).
  const hum = new Float64Array(n);
  let j = humFrom;
  for (const { nyquist, cos, sin } of basis.waves) {
    const cc = coef[j++] as number;
    const crc = coef[j++] as number;
    const cs = nyquist ? 0 : (coef[j++] as number);
    const crs = nyquist ? 0 : (coef[j++] as number);
    for (let k = 0; k < n; k++) {
      const ramp = (k - mid) / n;
      const c = cos[k] as number;
      let h = (hum[k] as number) + cc * c + crc * (ramp * c);
      if (!nyquist) {
        const s = sin[k] as number;
        h = h + cs * s + crs * (ramp * s);
      }
      hum[k] = h;
    }
  }
  return hum;
}

/**
 * The basis of `fitHum` at a rate `fs` for given mains frequencies, whatever the stretch's length `n`: a constant, a
 * ramp `(k - (n - 1) / 2) / n`, and per frequency as sampled a cosine and a sine (a cosine alone at half the rate), each
 * also times the ramp. The cosines and sines come from tables grown as longer stretches are asked for; `grams` keeps
 * the Gram matrix of every stretch length asked (see `humGram`).
 */
interface HumBasis {
  /** Per frequency: cos(w k) and sin(w k), k = 0.., and whether it is half the rate (no sine). */
  waves: { hz: number; nyquist: boolean; cos: Float64Array; sin: Float64Array }[];
  fs: number;
  /** Number of basis functions (2 + 2 or 4 per frequency: at most 10 for 50 and 60 Hz). */
  m: number;
  /** The first basis function of the hum (before it: the line). */
  humFrom: number;
  /** Lower triangle (row by row) of the Gram matrix per stretch length. */
  grams: Map<number, Float64Array | undefined>;
}

/** The `HumBasis` per rate and frequencies last used (a device has one or two rates). */
const HUM_BASES = new Map<string, HumBasis | undefined>();

/** Gram matrices kept per `HumBasis`: `similarity` fits stretches of every length from 2 QRS windows to 3 RR intervals and more. */
const MAX_GRAMS = 2_048;

function humBasis(fs: number, mainsHz: readonly number[]): HumBasis | undefined {
  const key = `${fs}|${mainsHz.join(',')}`;
  if (HUM_BASES.has(key)) return HUM_BASES.get(key);
  const freqs = [...new Set(mainsHz.map((hz) => aliasHz(hz, fs)))].filter((hz) => hz > 0);
  const waves = freqs.map((hz) => ({ hz, nyquist: Math.abs(hz - fs / 2) < 1e-9, cos: new Float64Array(0), sin: new Float64Array(0) }));
  const basis = freqs.length === 0 ? undefined : { waves, fs, m: 2 + waves.reduce((s, w) => s + (w.nyquist ? 2 : 4), 0), humFrom: 2, grams: new Map() };
  HUM_BASES.set(key, basis);
  if (HUM_BASES.size > 16) HUM_BASES.delete(HUM_BASES.keys().next().value as string);
  return basis;
}

/** Grows the cosine and sine tables of `basis` to `n` samples at least (the values do not depend on the tables' length). */
function growWaves(basis: HumBasis, n: number): void {
  for (const wave of basis.waves) {
    if (wave.cos.length >= n) continue;
    const w = (2 * Math.PI * wave.hz) / basis.fs;
    const len = Math.max(n, 2 * wave.cos.length);
    wave.cos = Float64Array.from({ length: len }, (_, k) => Math.cos(w * k));
    wave.sin = Float64Array.from({ length: len }, (_, k) => Math.sin(w * k));
  }
}

/** The `m` basis functions of `basis` over `n` samples at sample `k`, into `out` (the tables hold `n` samples). */
function basisAt(basis: HumBasis, n: number, k: number, out: Float64Array): void {
  const ramp = (k - (n - 1) / 2) / n;
  out[0] = 1;
  out[1] = ramp;
  let i = 2;
  for (const { nyquist, cos, sin } of basis.waves) {
    const c = cos[k] as number;
    out[i++] = c;
    out[i++] = ramp * c;
    if (nyquist) continue;
    const s = sin[k] as number;
    out[i++] = s;
    out[i++] = ramp * s;
  }
}

/**
 * The Gram matrix (lower triangle) of `basis` over `n` samples; undefined when the stretch is too short to fit
 * (fewer than 8 samples, or than twice the basis functions and one). It depends only on n, the rate and the
 * frequencies, so it is built once per length (`MAX_GRAMS` lengths kept): building it, the m(m+1)/2 products over
 * n samples, was most of the live monitor's CPU when each fit built it again. Summed in the order a plain loop
 * over the samples sums, so fits are the same to the bit whether it was kept or not.
 */
function humGram(basis: HumBasis, n: number): Float64Array | undefined {
  if (basis.grams.has(n)) return basis.grams.get(n);
  const { m } = basis;
  let gram: Float64Array | undefined;
  if (n >= 8 && n > 2 * m) {
    growWaves(basis, n);
    gram = new Float64Array((m * (m + 1)) / 2);
    const b = new Float64Array(m);
    for (let k = 0; k < n; k++) {
      basisAt(basis, n, k, b);
      for (let i = 0, at = 0; i < m; i++) {
        const bi = b[i] as number;
        for (let j = 0; j <= i; j++, at++) gram[at] = (gram[at] as number) + bi * (b[j] as number);
      }
    }
  }
  basis.grams.set(n, gram);
  if (basis.grams.size > MAX_GRAMS) basis.grams.delete(basis.grams.keys().next().value as number);
  return gram;
}
