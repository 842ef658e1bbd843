import { isQrsCode } from '../../protocols/wfdb.js';

/**
 * Beat-by-beat scoring of QRS detection after ANSI/AAMI EC57 (as PhysioNet's `bxb` does it):
 * a detection matches a reference beat within 150 ms (one detection per beat, nearest first);
 * scoring starts 5 minutes into the record; ventricular flutter/fibrillation episodes (from `[` to
 * `]`) are left out for both reference beats and detections.
 */


export const VFON = 32;
export const VFOFF = 33;

export interface ReferenceAnnotation {
  sample: number;
  code: number;
}

export interface ScoreOptions {
  fs: number;
  /** Default 150 ms. */
  matchWindowMs?: number;
  /** Default 300 s. */
  startSeconds?: number;
  /** Samples in the record (an open flutter episode runs to the end). */
  length: number;
}

export interface DetectionScore {
  tp: number;
  fn: number;
  fp: number;
  /** Sensitivity in % (100 when there is nothing to detect). */
  se: number;
  /** Positive predictivity in % (100 when nothing was detected). */
  ppv: number;
}

/** Flutter/fibrillation episodes `[start, end]` from `[` and `]` annotations. */
export function flutterEpisodes(annotations: readonly ReferenceAnnotation[], length: number): [number, number][] {
  const out: [number, number][] = [];
  let open: number | undefined;
  for (const a of annotations) {
    if (a.code === VFON && open === undefined) open = a.sample;
    else if (a.code === VFOFF && open !== undefined) {
      out.push([open, a.sample]);
      open = undefined;
    }
  }
  if (open !== undefined) out.push([open, length]);
  return out;
}

export function ratio(part: number, whole: number): number {
  return whole === 0 ? 100 : (100 * part) / whole;
}

export function scoreDetections(reference: readonly ReferenceAnnotation[], detections: readonly number[], options: ScoreOptions): DetectionScore {
  const tolerance = Math.round(((options.matchWindowMs ?? 150) * options.fs) / 1000);
  const start = Math.round((options.startSeconds ?? 300) * options.fs);
  const episodes = flutterEpisodes(reference, options.length);
  const excluded = (s: number) => episodes.some(([a, b]) => s >= a && s <= b);
  const refs = reference.filter((a) => isQrsCode(a.code) && a.sample >= start && !excluded(a.sample)).map((a) => a.sample);
  // Detections just before the start may still match a beat just after it; only those inside count as false.
  const dets = [...detections].filter((s) => s >= start - tolerance && !excluded(s)).sort((a, b) => a - b);
  const used = new Uint8Array(dets.length);
  let tp = 0;
  let j = 0;
  for (const ref of refs) {
    while (j < dets.length && (dets[j] as number) < ref - tolerance) j++;
    let best = -1;
    let bestDistance = tolerance + 1;
    for (let k = j; k < dets.length && (dets[k] as number) <= ref + tolerance; k++) {
      const distance = Math.abs((dets[k] as number) - ref);
      if (!used[k] && distance < bestDistance) {
        bestDistance = distance;
        best = k;
      }
    }
    if (best >= 0) {
      used[best] = 1;
      tp++;
    }
  }
  const fp = dets.filter((s, k) => !used[k] && s >= start).length;
  const fn = refs.length - tp;
  return { tp, fn, fp, se: ratio(tp, tp + fn), ppv: ratio(tp, tp + fp) };
}

/** Gross totals over records (sums of counts, not means of percentages). */
export function grossScore(scores: readonly DetectionScore[]): DetectionScore {
  const tp = scores.reduce((s, x) => s + x.tp, 0);
  const fn = scores.reduce((s, x) => s + x.fn, 0);
  const fp = scores.reduce((s, x) => s + x.fp, 0);
  return { tp, fn, fp, se: ratio(tp, tp + fn), ppv: ratio(tp, tp + fp) };
}
