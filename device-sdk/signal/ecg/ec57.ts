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

// ---------------------------------------------------------------------------------------------
// Beat classes (AAMI N S V F Q) and atrial fibrillation duration
// ---------------------------------------------------------------------------------------------

/** AAMI classes in the order of the confusion matrix; `O` (none) is a missed beat or a false detection. */
export const SCORE_CLASSES = ['N', 'S', 'V', 'F', 'Q'] as const;
export type ScoreClass = (typeof SCORE_CLASSES)[number];

/** One scored beat: the reference class and the detection's class (`undefined` = no beat on that side). */
export interface ClassPair {
  ref: ScoreClass | undefined;
  det: ScoreClass | undefined;
}

export interface ClassScores {
  /** confusion[ref][det] with the key `O` for "none". */
  confusion: Record<string, Record<string, number>>;
  V: DetectionScore;
  S: DetectionScore;
}

/**
 * V and S (SVEB) scores after EC57 (bxb): Se = beats of the class detected with the class / all scored
 * reference beats of the class (missed beats count against it); +P = beats detected with the class and
 * so labelled / all detections given the class, where detections whose reference is F or Q are not
 * counted against V, and those whose reference is Q are not counted against S (EC57 4.2.1.3). False
 * detections (no reference beat) given the class count against +P.
 */
export function classScores(pairs: Iterable<ClassPair>): ClassScores {
  const keys = [...SCORE_CLASSES, 'O'];
  const confusion: Record<string, Record<string, number>> = Object.fromEntries(keys.map((r) => [r, Object.fromEntries(keys.map((d) => [d, 0]))]));
  for (const p of pairs) {
    const row = confusion[p.ref ?? 'O'] as Record<string, number>;
    row[p.det ?? 'O'] = (row[p.det ?? 'O'] as number) + 1;
  }
  const c = (r: string, d: string) => (confusion[r] as Record<string, number>)[d] as number;
  const sumRow = (r: string) => keys.reduce((s, d) => s + c(r, d), 0);
  const score = (k: ScoreClass, excluded: string[]): DetectionScore => {
    const tp = c(k, k);
    const fn = sumRow(k) - tp;
    const fp = keys.filter((r) => r !== k && !excluded.includes(r)).reduce((s, r) => s + c(r, k), 0);
    return { tp, fn, fp, se: ratio(tp, tp + fn), ppv: ratio(tp, tp + fp) };
  };
  return { confusion, V: score('V', ['F', 'Q']), S: score('S', ['Q']) };
}

export interface ClassifiedBeat {
  sample: number;
  cls: ScoreClass;
}

/**
 * Matches detections to reference beats as `scoreDetections` does (150 ms, from minute 5, flutter left
 * out) and returns the pairs for `classScores`. `refClass` maps a WFDB code to its class.
 */
export function classPairs(reference: readonly ReferenceAnnotation[], detections: readonly ClassifiedBeat[], refClass: (code: number) => ScoreClass | undefined, options: ScoreOptions): ClassPair[] {
  const tolerance = Math.round(((options.matchWindowMs ?? 150) * options.fs) / 1000);
  const start = Math.round((options.startSeconds ?? 300) * options.fs);
  const episodes = flutterEpisodes(reference, options.length);
  const excluded = (s: number) => episodes.some(([a, b]) => s >= a && s <= b);
  const refs = reference.filter((a) => isQrsCode(a.code) && a.sample >= start && !excluded(a.sample));
  const dets = detections.filter((d) => d.sample >= start - tolerance && !excluded(d.sample)).sort((a, b) => a.sample - b.sample);
  const used = new Uint8Array(dets.length);
  const pairs: ClassPair[] = [];
  let j = 0;
  for (const ref of refs) {
    while (j < dets.length && (dets[j] as ClassifiedBeat).sample < ref.sample - tolerance) j++;
    let best = -1;
    let bestDistance = tolerance + 1;
    for (let k = j; k < dets.length && (dets[k] as ClassifiedBeat).sample <= ref.sample + tolerance; k++) {
      const distance = Math.abs((dets[k] as ClassifiedBeat).sample - ref.sample);
      if (!used[k] && distance < bestDistance) {
        bestDistance = distance;
        best = k;
      }
    }
    const cls = refClass(ref.code) ?? 'Q';
    if (best >= 0) {
      used[best] = 1;
      pairs.push({ ref: cls, det: (dets[best] as ClassifiedBeat).cls });
    } else pairs.push({ ref: cls, det: undefined });
  }
  dets.forEach((d, k) => {
    if (!used[k] && d.sample >= start) pairs.push({ ref: undefined, det: d.cls });
  });
  return pairs;
}

/** Gross class scores: the sum of confusion matrices. */
export function grossClassScores(all: readonly ClassScores[]): ClassScores {
  const pairs: ClassPair[] = [];
  for (const s of all) {
    for (const [r, row] of Object.entries(s.confusion)) {
      for (const [d, n] of Object.entries(row)) {
        for (let i = 0; i < n; i++) pairs.push({ ref: r === 'O' ? undefined : (r as ScoreClass), det: d === 'O' ? undefined : (d as ScoreClass) });
      }
    }
  }
  return classScores(pairs);
}

/** Sample intervals `[start, end)` of a rhythm in MIT rhythm annotations (code 28, AUX `(AFIB`, ...). */
export function rhythmEpisodes(annotations: readonly (ReferenceAnnotation & { aux?: string })[], rhythm: string, length: number): [number, number][] {
  return labelEpisodes(annotations, length, (label) => label === rhythm, false);
}

export const RHYTHM = 28;

/**
 * Which reference rhythm intervals count as atrial fibrillation when scoring AF duration.
 * - `ec57`: the EC38/EC57 episode comparator (PhysioNet `epicmp.c`, G. Moody, functions `find_episode`
 *   and `find_exclusions`): an AF episode starts at a rhythm annotation whose AUX begins `(AFIB` and
 *   ends at the next rhythm annotation that does not; intervals the reference marks as atrial flutter
 *   (`(AFL`) are excluded from the positive-predictivity comparison (AF detected during flutter is
 *   neither a true nor a false positive), and count for nothing in sensitivity.
 * - `af-prefix`: the AF state of the run comparator's `amap` (`rxr.c`): a rhythm label beginning `(AF`
 *   (fibrillation or flutter) begins AF, a `(VF` label or a `[` (VFON) annotation ends it, any other
 *   rhythm label ends it. Flutter then counts as AF for both Se and +P.
 * - `afib`: the exact label `(AFIB` only, flutter scored as not-AF (what this project reported first).
 */
export type AfReferenceRule = 'ec57' | 'af-prefix' | 'afib';
export const AF_REFERENCE_RULES: readonly AfReferenceRule[] = Object.freeze(['ec57', 'af-prefix', 'afib']);

export interface AfReference {
  /** Reference AF episodes `[start, end)`. */
  af: [number, number][];
  /** Intervals left out of the +P comparison (reference atrial flutter under `ec57`). */
  excluded: [number, number][];
}

const auxLabel = (aux: string): string => aux.replace(/\0+$/, '').trim();

/** Reference AF episodes (and +P exclusions) of MIT annotations under `rule` (default `ec57`). */
export function afReference(annotations: readonly (ReferenceAnnotation & { aux?: string })[], length: number, rule: AfReferenceRule = 'ec57'): AfReference {
  if (rule === 'afib') return { af: rhythmEpisodes(annotations, '(AFIB', length), excluded: [] };
  if (rule === 'ec57') return { af: prefixEpisodes(annotations, '(AFIB', length, false), excluded: prefixEpisodes(annotations, '(AFL', length, false) };
  return { af: prefixEpisodes(annotations, '(AF', length, true), excluded: [] };
}

/** Episodes from a rhythm label beginning with `prefix` to the next rhythm label that does not (or to VFON when `vfEnds`). */
function prefixEpisodes(annotations: readonly (ReferenceAnnotation & { aux?: string })[], prefix: string, length: number, vfEnds: boolean): [number, number][] {
  return labelEpisodes(annotations, length, (label) => label.startsWith(prefix), vfEnds);
}

/** Episodes from a rhythm label that is `inside` to the next rhythm label that is not (or to VFON when `vfEnds`). */
function labelEpisodes(annotations: readonly (ReferenceAnnotation & { aux?: string })[], length: number, inside: (label: string) => boolean, vfEnds: boolean): [number, number][] {
  const out: [number, number][] = [];
  let open: number | undefined;
  for (const a of annotations) {
    let isIn: boolean;
    if (a.code === RHYTHM && a.aux !== undefined) isIn = inside(auxLabel(a.aux));
    else if (vfEnds && a.code === VFON) isIn = false;
    else continue;
    if (isIn && open === undefined) open = a.sample;
    else if (!isIn && open !== undefined) {
      out.push([open, a.sample]);
      open = undefined;
    }
  }
  if (open !== undefined) out.push([open, length]);
  return out;
}

export interface DurationScore {
  /** Samples in both, in the reference only, in the detection only (scored part). */
  overlap: number;
  refOnly: number;
  detOnly: number;
  se: number;
  ppv: number;
}

/**
 * Duration sensitivity and positive predictivity of detected episodes against reference episodes, from
 * `startSeconds` (default 300 s). Detected time inside `excluded` (reference flutter under the EC57 AF
 * rule, see `afReference`) counts neither for nor against +P, as in `epicmp.c`.
 */
export function durationScore(
  reference: readonly [number, number][],
  detected: readonly [number, number][],
  options: { fs: number; length: number; startSeconds?: number; excluded?: readonly [number, number][] },
): DurationScore {
  const start = Math.round((options.startSeconds ?? 300) * options.fs);
  const clipTo = (eps: readonly [number, number][]) => eps.map(([a, b]) => [Math.max(a, start), Math.min(b, options.length)] as [number, number]).filter(([a, b]) => b > a);
  const ref = clipTo(reference);
  const det = clipTo(detected);
  const total = (eps: [number, number][]) => eps.reduce((s, [a, b]) => s + b - a, 0);
  const overlapOf = (x: readonly [number, number][], y: readonly [number, number][]) => {
    let n = 0;
    for (const [a, b] of x) for (const [c, d] of y) n += Math.max(0, Math.min(b, d) - Math.max(a, c));
    return n;
  };
  // Reference AF and the excluded intervals (flutter) do not overlap, so the overlap needs no correction.
  const overlap = overlapOf(ref, det);
  const r = total(ref);
  const d = total(det) - overlapOf(mergeIntervals(clipTo(options.excluded ?? [])), det);
  return { overlap, refOnly: r - overlap, detOnly: d - overlap, se: ratio(overlap, r), ppv: ratio(overlap, d) };
}

/** Gross duration scores: sums of samples over records. */
export function grossDurationScore(scores: readonly DurationScore[]): DurationScore {
  const overlap = scores.reduce((s, x) => s + x.overlap, 0);
  const refOnly = scores.reduce((s, x) => s + x.refOnly, 0);
  const detOnly = scores.reduce((s, x) => s + x.detOnly, 0);
  return { overlap, refOnly, detOnly, se: ratio(overlap, overlap + refOnly), ppv: ratio(overlap, overlap + detOnly) };
}

function mergeIntervals(eps: readonly [number, number][]): [number, number][] {
  const s = [...eps].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
