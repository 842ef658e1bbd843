import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isQrsCode, type WfdbAnnotationInput } from '../../device-sdk/protocols/wfdb.js';
import type { BackendName } from '../../device-sdk/inference/backend.js';
import { afEpisodes, afOverBeats, type AfEvent, AtrialActivity } from '../../device-sdk/signal/ecg/af-detector.js';
import { type BeatClassifier, classOf, RULE_CLASSIFIER_ID, ruleBasedClass } from '../../device-sdk/signal/ecg/beat-classes.js';
import { AAMI_CLASSES, AAMI_WFDB_CODE, type AamiClass, aamiClassOf, type BeatFeatures } from '../../device-sdk/signal/ecg/beat-features.js';
import {
  AF_REFERENCE_RULES,
  afReference,
  type AfReferenceRule,
  type ClassScores,
  classPairs,
  classScores,
  type DetectionScore,
  type DurationScore,
  durationScore,
  grossClassScores,
  grossDurationScore,
  grossScore,
  RHYTHM,
  scoreDetections,
} from '../../device-sdk/signal/ecg/ec57.js';
import { EcgFrontEnd } from '../../device-sdk/signal/ecg/front-end.js';
import { mixNoises, qrsSignalPower } from '../../device-sdk/signal/ecg/noise-mix.js';
import { QrsDetector } from '../../device-sdk/signal/ecg/qrs-detector.js';
import { readWfdbAnnotations, readWfdbRecord, writeWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';
import type { WorkerBeatClassifier } from '../ecg-classifier.js';
import { packageRoot } from '../package-root.js';
import { parse, UsageError } from './args.js';

export const ECG_USAGE = `Usage: medge ecg annotate RECORD --out FILE [--model DIR | --no-model] [--backend wasm|cpu]
       medge ecg eval --data DIR [--records 100,101,...] [--noise-snr DB [--noise-dir DIR]] [--reverse-polarity] [--from SECONDS] [--model DIR | --no-model] [--backend wasm|cpu] [--json]

annotate  runs the streaming ECG pipeline (QRS detection, beat features, the beat classifier in an
          inference worker, the AF detector) over a WFDB record (path without extension, first signal)
          and writes an MIT-format annotation file: one beat per detected beat at its R peak, typed with
          its AAMI class (N=1, S=8 'A', V=5, F=6, Q=13), and rhythm annotations (type 28, AUX '(AFIB' or
          '(N') where AF starts and ends. Without a model (--no-model, or none shipped) beats are typed
          by coarse rules.
eval      annotates every record of DIR that has a .atr reference and scores it per ANSI/AAMI EC57
          (150 ms match window, from minute 5, ventricular flutter excluded): per-record and gross
          QRS Se/+P, V and S Se/+P (gross over the non-paced records), and AF duration Se/+P. AF
          reference episodes follow EC57 as PhysioNet's epicmp applies it: '(AFIB' episodes, reference
          atrial flutter ('(AFL') left out of +P; the gross AF figures are also printed with flutter
          counted as AF (rxr's '(AF' rule) and with the exact '(AFIB' label only.
          --noise-snr DB adds MIT-BIH NST noise, ma and bw (from --noise-dir, default DIR/../nstdb),
          each at that SNR, the signal power taken from the reference QRS amplitudes (EC57).
          --reverse-polarity inverts the lead (as swapped electrodes or an inverting front end would)
          before anything else, to check that the results do not depend on it. --from moves the
          start of scoring (default 300 s, the EC57 learning period) for short records.`;

/** Records with paced beats: their beats are not scored by class (AAMI). */
export const PACED_RECORDS: readonly string[] = Object.freeze(['102', '104', '107', '217']);

/** Detected R peaks of the first signal of a record, streamed in one-second chunks as the runtime does. */
export function detectBeats(recordPath: string): { fs: number; length: number; beats: number[] } {
  const record = readWfdbRecord(recordPath);
  const fs = record.header.fs;
  const signal = record.signals[0];
  if (!signal) throw new UsageError(`${recordPath} has no signals`, ECG_USAGE);
  const detector = new QrsDetector({ fs });
  const beats: number[] = [];
  const chunk = Math.max(1, Math.round(fs));
  for (let i = 0; i < signal.length; i += chunk) for (const b of detector.push([signal.subarray(i, i + chunk)])) beats.push(b.sample);
  return { fs, length: signal.length, beats };
}

export interface AnalyzedBeat {
  sample: number;
  cls: AamiClass;
  probability: number;
}

export interface AnalyzedRecord {
  fs: number;
  length: number;
  beats: AnalyzedBeat[];
  af: AfEvent[];
  afEpisodes: [number, number][];
  classifier: string;
}

/**
 * The pipeline over one signal: front end in one-second chunks (as the runtime streams), the atrial
 * activity of each beat (pre-QRS correlation, for the AF detector), beats classified in batches (model
 * or rules), then the AF detector over the classified beats (a beat called S inside an AF episode is
 * reported N: `classInRhythm`).
 */
export async function analyzeSignal(signal: Int16Array, fs: number, classifier: BeatClassifier | undefined): Promise<AnalyzedRecord> {
  const fe = new EcgFrontEnd({ fs });
  const atrialActivity = new AtrialActivity({ fs });
  const chunk = Math.max(1, Math.round(fs));
  const feats: BeatFeatures[] = [];
  const atrial: number[] = [];
  const take = (out: BeatFeatures[]) => {
    for (const b of out) {
      feats.push(b);
      atrial.push(atrialActivity.beat(b.sample));
    }
  };
  for (let i = 0; i < signal.length; i += chunk) {
    const c = signal.subarray(i, i + chunk);
    atrialActivity.pushSamples(c);
    take(fe.push(c));
  }
  take(fe.flush());
  const width = feats[0]?.features.length ?? 0;
  let beats: AnalyzedBeat[];
  if (classifier && feats.length > 0) {
    const x = new Float32Array(feats.length * width);
    feats.forEach((b, i) => x.set(b.features, i * width));
    const p = await classifier.classify(x, feats.length, width);
    beats = feats.map((b, i) => ({ sample: b.sample, ...classOf(p, i * AAMI_CLASSES.length) }));
  } else beats = feats.map((b) => ({ sample: b.sample, cls: ruleBasedClass(b.features), probability: 1 }));
  const { events: af, reported } = afOverBeats(
    beats.map((b) => b.sample),
    beats.map((b) => b.cls),
    atrial,
    { fs },
    signal.length,
  );
  beats.forEach((b, i) => {
    b.cls = reported[i] as AamiClass;
  });
  return { fs, length: signal.length, beats, af, afEpisodes: afEpisodes(af), classifier: classifier?.modelId ?? RULE_CLASSIFIER_ID };
}

/** MIT annotations of an analysed record: typed beats and AF rhythm changes, in time order. */
export function toAnnotations(r: AnalyzedRecord): WfdbAnnotationInput[] {
  const out: WfdbAnnotationInput[] = r.beats.map((b) => ({ sample: b.sample, code: AAMI_WFDB_CODE[b.cls] }));
  for (const [start, end] of r.afEpisodes) {
    out.push({ sample: start, code: RHYTHM, aux: '(AFIB' });
    if (end < r.length) out.push({ sample: end, code: RHYTHM, aux: '(N' });
  }
  return out.sort((a, b) => a.sample - b.sample);
}

async function openClassifier(values: { model?: string; 'no-model'?: boolean; backend?: string }): Promise<WorkerBeatClassifier | undefined> {
  if (values['no-model']) return undefined;
  const backend = (values.backend ?? 'wasm') as BackendName;
  if (backend !== 'wasm' && backend !== 'cpu' && backend !== 'tensorflow') throw new UsageError(`--backend must be wasm, cpu or tensorflow, got ${JSON.stringify(values.backend)}`, ECG_USAGE);
  const dir = values.model ?? join(packageRoot(), 'models', 'ecg-beats');
  if (!values.model && !existsSync(join(dir, 'medge-model.json'))) {
    process.stderr.write(`medge ecg: no beat classifier in ${dir}; beats are typed by rules\n`);
    return undefined;
  }
  // Loaded on demand: TF.js is not imported by the CLI's other commands.
  const { WorkerBeatClassifier } = await import('../ecg-classifier.js');
  return WorkerBeatClassifier.start(dir, backend);
}

const MODEL_OPTIONS = { model: { type: 'string' }, 'no-model': { type: 'boolean' }, backend: { type: 'string' } } as const;

export async function ecgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'annotate') return annotate(rest);
  if (sub === 'eval') return evaluate(rest);
  throw new UsageError(sub === undefined ? 'ecg needs a subcommand' : `unknown ecg subcommand ${JSON.stringify(sub)}; subcommands are: annotate, eval`, ECG_USAGE);
}

async function annotate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' }, ...MODEL_OPTIONS }, ECG_USAGE, 1);
  if (values.help) {
    process.stdout.write(`${ECG_USAGE}\n`);
    return 0;
  }
  const record = positionals[0];
  if (!record || !values.out) throw new UsageError('RECORD and --out FILE are required', ECG_USAGE);
  const wf = readWfdbRecord(record);
  const signal = wf.signals[0];
  if (!signal) throw new UsageError(`${record} has no signals`, ECG_USAGE);
  const classifier = await openClassifier(values);
  try {
    const r = await analyzeSignal(signal, wf.header.fs, classifier);
    writeWfdbAnnotations(values.out, toAnnotations(r));
    const counts = AAMI_CLASSES.map((c) => `${c} ${r.beats.filter((b) => b.cls === c).length}`).join(', ');
    process.stderr.write(`medge ecg annotate: ${r.beats.length} beats (${counts}), ${r.afEpisodes.length} AF episode(s) written to ${values.out} (classifier ${r.classifier})\n`);
  } finally {
    await classifier?.close();
  }
  return 0;
}

interface RecordResult {
  record: string;
  qrs: DetectionScore;
  classes?: ClassScores;
  af: DurationScore & { refSeconds: number; detSeconds: number };
  /** AF duration under every reference rule (`af` is the `ec57` one). */
  afByRule: Record<AfReferenceRule, DurationScore>;
}

/** The lead inverted about its ADC baseline (swapped electrodes), clamped to the 16-bit range. */
export function reversedLead(signal: Int16Array, baseline: number): Int16Array {
  return Int16Array.from(signal, (v) => Math.max(-32768, Math.min(32767, 2 * baseline - v)));
}

/** The NST noise records `ma` (muscle) and `bw` (baseline wander), first signal each. */
export function nstNoises(dir: string): Int16Array[] {
  return ['ma', 'bw'].map((n) => {
    const path = join(dir, n);
    if (!existsSync(`${path}.hea`)) throw new UsageError(`noise record ${path}.hea not found (--noise-dir)`, ECG_USAGE);
    return readWfdbRecord(path).signals[0] as Int16Array;
  });
}

async function evaluate(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    { data: { type: 'string' }, records: { type: 'string' }, json: { type: 'boolean' }, from: { type: 'string' }, 'noise-snr': { type: 'string' }, 'noise-dir': { type: 'string' }, 'reverse-polarity': { type: 'boolean' }, ...MODEL_OPTIONS },
    ECG_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${ECG_USAGE}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', ECG_USAGE);
  const dir = values.data;
  const snr = values['noise-snr'] === undefined ? undefined : Number(values['noise-snr']);
  if (snr !== undefined && !Number.isFinite(snr)) throw new UsageError(`--noise-snr must be a number of dB, got ${JSON.stringify(values['noise-snr'])}`, ECG_USAGE);
  const startSeconds = values.from === undefined ? 300 : Number(values.from);
  if (!(startSeconds >= 0)) throw new UsageError(`--from must be a number of seconds >= 0, got ${JSON.stringify(values.from)}`, ECG_USAGE);
  const noise = snr === undefined ? undefined : nstNoises(values['noise-dir'] ?? join(dirname(dir.replace(/\/+$/, '')), 'nstdb'));
  const names = values.records
    ? values.records.split(',').map((s) => s.trim())
    : readdirSync(dir)
        .filter((f) => f.endsWith('.atr') && existsSync(join(dir, `${basename(f, '.atr')}.hea`)))
        .map((f) => basename(f, '.atr'))
        .sort();
  if (names.length === 0) throw new UsageError(`no WFDB records with .atr annotations in ${dir}`, ECG_USAGE);
  const classifier = await openClassifier(values);
  const results: RecordResult[] = [];
  let classifierId = '';
  try {
    for (const name of names) {
      const path = join(dir, name);
      const wf = readWfdbRecord(path);
      const fs = wf.header.fs;
      let signal = wf.signals[0] as Int16Array;
      if (values['reverse-polarity']) signal = reversedLead(signal, wf.header.signals[0]?.baseline ?? 0);
      const reference = readWfdbAnnotations(path, 'atr').annotations;
      if (noise && snr !== undefined) {
        const power = qrsSignalPower(signal, reference.filter((a) => isQrsCode(a.code)).map((a) => a.sample), fs);
        signal = mixNoises(signal, noise, power, snr);
      }
      const r = await analyzeSignal(signal, fs, classifier);
      classifierId = r.classifier;
      const length = signal.length;
      const qrs = scoreDetections(reference, r.beats.map((b) => b.sample), { fs, length, startSeconds });
      const classes = PACED_RECORDS.includes(name) ? undefined : classScores(classPairs(reference, r.beats, (code) => aamiClassOf(code), { fs, length, startSeconds }));
      const afByRule = Object.fromEntries(
        AF_REFERENCE_RULES.map((rule) => {
          const ref = afReference(reference, length, rule);
          return [rule, durationScore(ref.af, r.afEpisodes, { fs, length, startSeconds, excluded: ref.excluded })];
        }),
      ) as Record<AfReferenceRule, DurationScore>;
      const af = afByRule.ec57;
      results.push({ record: name, qrs, classes, af: { ...af, refSeconds: (af.overlap + af.refOnly) / fs, detSeconds: (af.overlap + af.detOnly) / fs }, afByRule });
      if (!values.json) process.stderr.write(`medge ecg eval: ${name} done (${results.length}/${names.length})\n`);
    }
  } finally {
    await classifier?.close();
  }
  const gross = {
    qrs: grossScore(results.map((r) => r.qrs)),
    classes: grossClassScores(results.flatMap((r) => (r.classes ? [r.classes] : []))),
    af: grossDurationScore(results.map((r) => r.af)),
    afByRule: Object.fromEntries(AF_REFERENCE_RULES.map((rule) => [rule, grossDurationScore(results.map((r) => r.afByRule[rule]))])) as Record<AfReferenceRule, DurationScore>,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ classifier: classifierId, noiseSnrDb: snr ?? null, reversePolarity: values['reverse-polarity'] === true, records: results, gross })}\n`);
    return 0;
  }
  const pct = (x: number) => x.toFixed(2).padStart(7);
  const cls = (s: DetectionScore | undefined) => (s ? `${String(s.tp + s.fn).padStart(5)} ${s.tp + s.fn > 0 ? pct(s.se) : '      -'} ${s.tp + s.fp > 0 ? pct(s.ppv) : '      -'}` : '    -       -       -');
  const lines = [`record      beats     FN     FP    QRS Se  QRS +P |    V   V Se    V +P |    S   S Se    S +P |  AF ref s  AF det s   AF Se   AF +P`];
  const row = (name: string, q: DetectionScore, c: ClassScores | undefined, af: DurationScore, refS: number, detS: number) =>
    `${name.padEnd(8)} ${String(q.tp + q.fn).padStart(8)} ${String(q.fn).padStart(6)} ${String(q.fp).padStart(6)} ${pct(q.se)} ${pct(q.ppv)} | ${cls(c?.V)} | ${cls(c?.S)} | ${refS.toFixed(0).padStart(9)} ${detS.toFixed(0).padStart(9)} ${refS > 0 ? pct(af.se) : '      -'} ${detS > 0 ? pct(af.ppv) : '      -'}`;
  for (const r of results) lines.push(row(r.record, r.qrs, r.classes, r.af, r.af.refSeconds, r.af.detSeconds));
  const seconds = (k: 'refSeconds' | 'detSeconds') => results.reduce((s, r) => s + r.af[k], 0);
  lines.push(row('gross', gross.qrs, gross.classes, gross.af, seconds('refSeconds'), seconds('detSeconds')));
  lines.push(`AF duration gross by reference rule: ${AF_REFERENCE_RULES.map((rule) => `${rule} Se ${gross.afByRule[rule].se.toFixed(2)} +P ${gross.afByRule[rule].ppv.toFixed(2)}`).join('; ')} (ec57: '(AFIB' episodes, reference flutter left out of +P, as epicmp; af-prefix: flutter counted as AF; afib: flutter counted as not AF).`);
  lines.push(`Scored per ANSI/AAMI EC57: 150 ms match window, from ${startSeconds === 300 ? 'minute 5' : `${startSeconds} s`}, ventricular flutter excluded. V and S gross over the non-paced records (${PACED_RECORDS.join(', ')} excluded). Classifier: ${classifierId}.${snr === undefined ? '' : ` Noise: ma + bw at ${snr} dB SNR.`}${values['reverse-polarity'] ? ' Lead polarity reversed.' : ''}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
