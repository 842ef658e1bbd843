/**
 * The beat dataset of a set of WFDB records: our own streaming front end (QRS detection + beat
 * features, exactly as the runtime runs it) over the first signal, each detected beat labelled with the
 * AAMI class of the reference beat it matches (nearest within 150 ms, EC57), or none.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isQrsCode } from '../../device-sdk/protocols/wfdb.js';
import { AAMI_CLASSES, type AamiClass, aamiClassOf, featureLength } from '../../device-sdk/signal/ecg/beat-features.js';
import { flutterEpisodes } from '../../device-sdk/signal/ecg/ec57.js';
import { extractBeats } from '../../device-sdk/signal/ecg/front-end.js';
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

const VERSION = 8;

/** Builds (or reads from `cacheDir`) the beats of one record. */
export function recordBeats(dir: string, record: string, cacheDir?: string): RecordBeats {
  const width = featureLength();
  const cache = cacheDir ? join(cacheDir, `${record}.v${VERSION}.json`) : undefined;
  if (cache && existsSync(cache)) {
    const c = JSON.parse(readFileSync(cache, 'utf8')) as { fs: number; length: number; samples: number[]; features: number[]; labels: number[]; scored: number[]; missed: number[]; width: number };
    if (c.width === width) return { record, fs: c.fs, length: c.length, width, samples: Int32Array.from(c.samples), features: Float32Array.from(c.features), labels: Int8Array.from(c.labels), scored: Uint8Array.from(c.scored), missed: c.missed };
  }
  const path = join(dir, record);
  const wf = readWfdbRecord(path);
  const fs = wf.header.fs;
  const signal = wf.signals[0] as Int16Array;
  const beats = extractBeats(signal, fs);
  const ann = readWfdbAnnotations(path, 'atr').annotations;
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
  const out: RecordBeats = {
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
  if (cache) {
    mkdirSync(cacheDir as string, { recursive: true });
    writeFileSync(cache, JSON.stringify({ fs, length: out.length, width, samples: [...out.samples], features: [...out.features].map((x) => Math.round(x * 1e5) / 1e5), labels: [...labels], scored: [...out.scored], missed }));
  }
  return out;
}

export type { AamiClass };
