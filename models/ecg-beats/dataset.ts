/**
 * The beat dataset of a set of WFDB records: our own streaming front end (QRS detection + beat
 * features, exactly as the runtime runs it) over the first signal, each detected beat labelled with the
 * AAMI class of the reference beat it matches (nearest within 150 ms, EC57), or none.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { AAMI_CLASSES, type AamiClass, aamiClassOf, BeatFeatureExtractor, FEATURE_NAMES, featureLength } from '../../device-sdk/signal/ecg/beat-features.js';
import { flutterEpisodes, type ReferenceAnnotation } from '../../device-sdk/signal/ecg/ec57.js';
import { extractBeats } from '../../device-sdk/signal/ecg/front-end.js';
import { mixNoises, qrsSignalPower } from '../../device-sdk/signal/ecg/noise-mix.js';
import { resample } from '../../device-sdk/signal/pcg/dsp.js';
import { readWfdbAnnotations, readWfdbRecord } from '../../simulator/sources/wfdb-files.js';

/** Records whose beats are paced: left out of classifier training and evaluation. */
export const PACED_RECORDS: readonly string[] = Object.freeze(['102', '104', '107', '217']);

export interface RecordBeats {
  record: string;
  fs: number;
  length: number;
  /** Detected R peaks. */
  samples: Int32Array;
  /** Row-major features, `samples.length x width`. */
  features: Float32Array;
  width: number;
  /** Class index into AAMI_CLASSES of the matched reference beat, -1 when the detection matched none. */
  labels: Int8Array;
  /** Whether the beat is scored under EC57 (from minute 5, outside flutter). */
  scored: Uint8Array;
  /** Reference beats per class (scored part) that no detection matched. */
  missed: number[];
}

const VERSION = 10;

/** Reads a record's beats from a cache file written by `writeCache` (undefined when absent or of another width). */
function readCache(record: string, cache: string | undefined, width: number): RecordBeats | undefined {
  if (!cache || !existsSync(cache)) return undefined;
  const c = JSON.parse(readFileSync(cache, 'utf8')) as { fs: number; length: number; samples: number[]; features: number[]; labels: number[]; scored: number[]; missed: number[]; width: number };
  if (c.width !== width) return undefined;
  return { record, fs: c.fs, length: c.length, width, samples: Int32Array.from(c.samples), features: Float32Array.from(c.features), labels: Int8Array.from(c.labels), scored: Uint8Array.from(c.scored), missed: c.missed };
}

function writeCache(beats: RecordBeats, cache: string | undefined): void {
  if (!cache) return;
  mkdirSync(dirname(cache), { recursive: true });
  const { fs, length, width, samples, features, labels, scored, missed } = beats;
  writeFileSync(cache, JSON.stringify({ fs, length, width, samples: [...samples], features: [...features].map((x) => Math.round(x * 1e5) / 1e5), labels: [...labels], scored: [...scored], missed }));
}

/**
 * Our front end's beats over `signal` (the first lead), each labelled with the AAMI class of the reference
 * beat of `ann` it matches (nearest unused within 150 ms), or -1.
 */
function labelledBeats(record: string, signal: Int16Array, fs: number, ann: readonly ReferenceAnnotation[]): RecordBeats {
  const width = featureLength();
  const beats = extractBeats(signal, fs);
  const refs = ann.filter((a) => isQrsCode(a.code));
  const tol = Math.round(0.15 * fs);
  const start = 300 * fs;
  const episodes = flutterEpisodes(ann, signal.length);
  const isScored = (s: number) => s >= start && !episodes.some(([a, b]) => s >= a && s <= b);
  const labels = new Int8Array(beats.length).fill(-1);
  const used = new Uint8Array(refs.length);
  let j = 0;
  beats.forEach((b, i) => {
    while (j < refs.length && (refs[j]?.sample as number) < b.sample - tol) j++;
    let best = -1;
    let bestD = tol + 1;
    for (let k = j; k < refs.length && (refs[k]?.sample as number) <= b.sample + tol; k++) {
      const d = Math.abs((refs[k]?.sample as number) - b.sample);
      if (!used[k] && d < bestD) {
        bestD = d;
        best = k;
      }
    }
    if (best >= 0) {
      used[best] = 1;
      const cls = aamiClassOf(refs[best]?.code as number);
      labels[i] = cls === undefined ? 4 : AAMI_CLASSES.indexOf(cls);
    }
  });
  const missed = AAMI_CLASSES.map(() => 0);
  refs.forEach((r, k) => {
    if (used[k] || !isScored(r.sample)) return;
    const cls = aamiClassOf(r.code) ?? 'Q';
    missed[AAMI_CLASSES.indexOf(cls)] = (missed[AAMI_CLASSES.indexOf(cls)] as number) + 1;
  });
  // Rounded to 1e-5 (as cached), so that a run from the cache and a fresh run train on the same numbers.
  const features = new Float32Array(beats.length * width);
  beats.forEach((b, i) => features.set(b.features.map((x) => Math.round(x * 1e5) / 1e5), i * width));
  return {
    record,
    fs,
    length: signal.length,
    width,
    samples: Int32Array.from(beats.map((b) => b.sample)),
    features,
    labels,
    scored: Uint8Array.from(beats.map((b) => (isScored(b.sample) ? 1 : 0))),
    missed,
  };
}

/** Builds (or reads from `cacheDir`) the beats of one record. */
export function recordBeats(dir: string, record: string, cacheDir?: string): RecordBeats {
  const cache = cacheDir ? join(cacheDir, `${record}.v${VERSION}.json`) : undefined;
  const cached = readCache(record, cache, featureLength());
  if (cached) return cached;
  const path = join(dir, record);
  const wf = readWfdbRecord(path);
  const out = labelledBeats(record, wf.signals[0] as Int16Array, wf.header.fs, readWfdbAnnotations(path, 'atr').annotations);
  writeCache(out, cache);
  return out;
}

/**
 * Experiment (`train.js --augment`): one augmented copy of a training record. `noise`: MIT-BIH NST `ma`
 * and `bw` each mixed in at `snrDb` as `medge ecg eval --noise-snr` mixes them (signal power from the
 * reference QRS amplitudes, `noise-mix.ts`), the noise records read from `offsetSeconds` on (wrapping).
 * `stretch`: the record resampled in time by `factor` (windowed-sinc, `resample`; 0.9 makes it 10 %
 * shorter, so it reads at 360 Hz as a faster heart rate with narrower QRS complexes) and the reference
 * annotation times scaled by the same factor.
 */
export type AugmentCopy = { kind: 'noise'; snrDb: number; offsetSeconds: number } | { kind: 'stretch'; factor: number };

/** The copies of each `--augment` variant (fixed before any run; not tuned on the folds). */
export const AUGMENTATIONS: Readonly<Record<'noise' | 'stretch' | 'both', readonly AugmentCopy[]>> = (() => {
  const noise: AugmentCopy[] = [
    { kind: 'noise', snrDb: 12, offsetSeconds: 0 },
    { kind: 'noise', snrDb: 6, offsetSeconds: 900 },
  ];
  const stretch: AugmentCopy[] = [
    { kind: 'stretch', factor: 0.9 },
    { kind: 'stretch', factor: 1.1 },
  ];
  return Object.freeze({ noise: Object.freeze(noise), stretch: Object.freeze(stretch), both: Object.freeze([...noise, ...stretch]) });
})();

/** A file-name-safe tag of a copy (its cache key and its record name, `101~noise-12db-0s`). */
export function augmentTag(copy: AugmentCopy): string {
  return copy.kind === 'noise' ? `noise-${copy.snrDb}db-${copy.offsetSeconds}s` : `stretch-${copy.factor}`;
}

/** `noise` read from `offset` on, wrapping at its end (same mean and power as `noise`). */
function rotated(noise: Int16Array, offset: number): Int16Array {
  const k = ((offset % noise.length) + noise.length) % noise.length;
  const out = new Int16Array(noise.length);
  out.set(noise.subarray(k));
  out.set(noise.subarray(0, k), noise.length - k);
  return out;
}

/**
 * The first lead and reference annotations of one augmented copy (pure). `noises`: the NST `ma` and `bw`
 * first signals (`nstNoises`), needed for `noise` copies; the signal power is taken from `ann`'s QRS
 * annotations as `medge ecg eval --noise-snr` takes it.
 */
export function augmentedLead(signal: Int16Array, fs: number, ann: readonly ReferenceAnnotation[], copy: AugmentCopy, noises: readonly Int16Array[]): { lead: Int16Array; ann: ReferenceAnnotation[] } {
  if (copy.kind === 'noise') {
    if (noises.length === 0) throw new Error(`augment ${augmentTag(copy)}: no noise records given`);
    const power = qrsSignalPower(signal, ann.filter((a) => isQrsCode(a.code)).map((a) => a.sample), fs);
    const offset = Math.round(copy.offsetSeconds * fs);
    return { lead: mixNoises(signal, noises.map((n) => rotated(n, offset)), power, copy.snrDb), ann: [...ann] };
  }
  if (!(copy.factor > 0)) throw new Error(`augment stretch: the factor must be > 0, got ${copy.factor}`);
  const stretched = resample(Float32Array.from(signal), fs, fs * copy.factor);
  return {
    lead: Int16Array.from(stretched, (v) => Math.max(-32768, Math.min(32767, Math.round(v)))),
    ann: ann.map((a) => ({ code: a.code, sample: Math.round(a.sample * copy.factor) })),
  };
}

/**
 * Builds (or reads from `cacheDir`) the beats of one augmented copy of `record` (`augmentedLead`), labelled
 * as the originals are: our detector's beats matched to the copy's reference within 150 ms.
 */
export function augmentedBeats(dir: string, record: string, copy: AugmentCopy, noises: readonly Int16Array[], cacheDir?: string): RecordBeats {
  const name = `${record}~${augmentTag(copy)}`;
  const cache = cacheDir ? join(cacheDir, 'augment', `${name}.v${VERSION}.json`) : undefined;
  const cached = readCache(name, cache, featureLength());
  if (cached) return cached;
  const path = join(dir, record);
  const wf = readWfdbRecord(path);
  const { lead, ann } = augmentedLead(wf.signals[0] as Int16Array, wf.header.fs, readWfdbAnnotations(path, 'atr').annotations, copy, noises);
  const out = labelledBeats(name, lead, wf.header.fs, ann);
  writeCache(out, cache);
  return out;
}

/**
 * Experiment (`train.js --lead2`): the second lead's columns. Scalars relative to the patient's own
 * dominant beat on that lead (correlation with and distance to its running template, the distance over
 * the QRS, QRS width relative to the template's, QRS energy and peak-to-peak amplitude relative to the
 * lead's running QRS amplitude), then the beat minus that template (`morphPoints` points).
 */
export const LEAD2_SCALARS: readonly string[] = Object.freeze(['templateCorr', 'templateDist', 'qrsDist', 'qrsWidth', 'qrsEnergy', 'amplitude']);

export interface Lead2Beats {
  /** The second signal's description in the header (V1, V2, V4, V5 or MLII on MIT-BIH). */
  lead: string;
  /** Row-major, one row per beat of the first lead: `LEAD2_SCALARS` then the morphology. */
  features: Float32Array;
  width: number;
}

const LEAD2_VERSION = 2;

/**
 * A `BeatFeatureExtractor`'s rows for one signal driven at given R peaks (in order) instead of its own
 * detector's, streamed in one-second chunks as `extractBeats` streams: each R peak is given once the
 * chunk holding it has been pushed (well within the extractor's 3 s ring).
 */
export function featuresAtPeaks(signal: Int16Array, fs: number, peaks: ArrayLike<number>): Float32Array[] {
  const extractor = new BeatFeatureExtractor({ fs });
  const rows: Float32Array[] = [];
  const chunk = Math.max(1, Math.round(fs));
  let next = 0;
  for (let i = 0; i < signal.length; i += chunk) {
    const part = signal.subarray(i, i + chunk);
    extractor.pushSamples(part);
    while (next < peaks.length && (peaks[next] as number) < i + part.length) extractor.pushBeat(peaks[next++] as number);
    for (const b of extractor.take()) rows.push(b.features);
  }
  while (next < peaks.length) extractor.pushBeat(peaks[next++] as number);
  extractor.flush();
  for (const b of extractor.take()) rows.push(b.features);
  return rows;
}

/**
 * The second lead's features at the first lead's detected R peaks (`beats.samples`, the same beats,
 * same order): a `BeatFeatureExtractor` of its own (same options: 0.5-35 Hz, 50 points -250..+400 ms,
 * template = per-point median of the last 21 non-premature beats) fed the second signal and driven at
 * the given R peaks (`featuresAtPeaks`).
 */
export function lead2Beats(dir: string, beats: RecordBeats, cacheDir?: string): Lead2Beats {
  const morph = featureLength() - FEATURE_NAMES.length;
  const width = LEAD2_SCALARS.length + morph;
  const cache = cacheDir ? join(cacheDir, `${beats.record}.lead2.v${LEAD2_VERSION}.json`) : undefined;
  if (cache && existsSync(cache)) {
    const c = JSON.parse(readFileSync(cache, 'utf8')) as { lead: string; width: number; n: number; features: number[] };
    if (c.width === width && c.n === beats.samples.length) return { lead: c.lead, width, features: Float32Array.from(c.features) };
  }
  const wf = readWfdbRecord(join(dir, beats.record));
  const signal = wf.signals[1];
  if (!signal) throw new Error(`record ${beats.record} has no second signal`);
  const lead = wf.header.signals[1]?.description ?? '?';
  const fs = wf.header.fs;
  if (fs !== beats.fs) throw new Error(`record ${beats.record}: fs ${fs} != ${beats.fs}`);
  const rows = featuresAtPeaks(signal, fs, beats.samples);
  if (rows.length !== beats.samples.length) throw new Error(`record ${beats.record}: ${rows.length} second-lead rows for ${beats.samples.length} beats`);
  const columns = [...LEAD2_SCALARS.map((name) => (FEATURE_NAMES as readonly string[]).indexOf(name)), ...Array.from({ length: morph }, (_, i) => FEATURE_NAMES.length + i)];
  const features = new Float32Array(rows.length * width);
  rows.forEach((row, i) => columns.forEach((c, j) => (features[i * width + j] = Math.round((row[c] as number) * 1e5) / 1e5)));
  if (cache) {
    mkdirSync(cacheDir as string, { recursive: true });
    writeFileSync(cache, JSON.stringify({ lead, width, n: rows.length, features: [...features] }));
  }
  return { lead, width, features };
}

export type { AamiClass };
