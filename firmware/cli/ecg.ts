import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, MedgeError } from '../../device-sdk/errors.js';
import { BACKENDS, type BackendName } from '../../device-sdk/inference/backend-names.js';
import { isQrsCode, type WfdbAnnotationInput } from '../../device-sdk/protocols/wfdb.js';
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
import { DEFAULT_QRS_OPTIONS, QrsDetector } from '../../device-sdk/signal/ecg/qrs-detector.js';
import { readWfdbAnnotations, readWfdbRecord, type WfdbRecord, writeWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';
import { defaultBeatModelDir, WorkerBeatClassifier } from '../ecg-classifier.js';
import { MODEL_MANIFEST_FILE } from '../../device-sdk/inference/files.js';
import { checkOutFile, statOrUndefined } from './out-file.js';
import { OS_PROBLEMS, systemProblem } from './system-errors.js';
import { DataError, parse, UsageError } from './args.js';

export const ECG_USAGE = `Usage: medge ecg annotate RECORD --out FILE [--model DIR | --no-model] [--backend wasm|cpu|tensorflow]
       medge ecg eval --data DIR [--records 100,101,...] [--noise-snr DB [--noise-dir DIR]] [--reverse-polarity] [--from SECONDS] [--model DIR | --no-model] [--backend wasm|cpu|tensorflow] [--json]

annotate  runs the streaming ECG pipeline (QRS detection, beat features, the beat classifier in an
          inference worker, the AF detector) over a WFDB record (path without extension, first signal)
          and writes an MIT-format annotation file: one beat per detected beat at its R peak, typed with
          its AAMI class (N=1, S=8 'A', V=5, F=6, Q=13), and rhythm annotations (type 28, AUX '(AFIB' or
          '(N') where AF starts and ends. Without a model (--no-model, or none shipped) beats are typed
          by coarse rules. RECORD may also be given as its .hea file. --out must not be one of the
          record's own files (its .hea, its signal files, its .atr reference) nor a read-only file.
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
          start of scoring (default 300 s, the EC57 learning period) for short records. A figure
          without a denominator (no reference beat of the class, nothing detected) prints as - (null
          in --json). A record that cannot be read (a truncated or missing signal file, a damaged
          header or .atr) is named with its error and the others are still scored: gross is over the
          scored records, --json lists the others in "failed" ([{record, error, errorCode}]), and the
          exit status is 1.
--model   the beat classifier's directory (default: the shipped models/ecg-beats); --backend runs it
          on wasm (default), cpu, or tensorflow (needs the optional package @tensorflow/tfjs-node).`;

/** Records with paced beats: their beats are not scored by class (AAMI). */
export const PACED_RECORDS: readonly string[] = Object.freeze(['102', '104', '107', '217']);

/** Detected R peaks of the first signal of a record, streamed in one-second chunks as the runtime does. */
export function detectBeats(recordPath: string): { fs: number; length: number; beats: number[] } {
  const record = readWfdbRecord(recordPath);
  const fs = record.header.fs;
  const signal = record.signals[0];
  if (!signal) throw new DataError(`${recordPath} has no signals`);
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

/**
 * A RECORD argument as the record's path without extension: a trailing `.hea` is dropped (the
 * header is what names a record). A directory, or a path without a header, is a `UsageError` that
 * says what RECORD is.
 */
export function recordArgument(arg: string): string {
  const path = arg.endsWith('.hea') ? arg.slice(0, -'.hea'.length) : arg;
  const stat = statOrUndefined(arg);
  if (stat?.isDirectory()) {
    const example = readdirSync(arg).find((f) => f.endsWith('.hea'));
    throw new UsageError(
      `RECORD ${arg} is a directory; give one record in it, without extension${example ? ` (e.g. ${join(arg, basename(example, '.hea'))})` : ''}, or use 'medge ecg eval --data ${arg}' for all of them`,
      ECG_USAGE,
    );
  }
  if (!existsSync(`${path}.hea`)) {
    throw new UsageError(`RECORD ${arg}: there is no header ${path}.hea; RECORD is a WFDB record's path without extension (e.g. /data/mitdb/101 for 101.hea and 101.dat)`, ECG_USAGE);
  }
  return path;
}

/**
 * Reads a record whose header exists: a file it names that cannot be read (a missing .dat) is a
 * `DataError` naming the file (exit 1: the command line was right); a record too slow for the QRS
 * detector is a `ConfigError`.
 */
function readRecord(path: string): WfdbRecord {
  let record: WfdbRecord;
  try {
    record = readWfdbRecord(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (error instanceof MedgeError || typeof e.code !== 'string') throw error;
    const file = e.path ?? `${path}.*`;
    if (e.code === 'ENOENT') throw new DataError(`record ${path}: its signal file ${file} is missing; a record's signal files sit beside its header ${path}.hea, which names them`, { cause: error });
    throw new DataError(`record ${path}: cannot read ${file}: ${OS_PROBLEMS[e.code] ?? e.code} (${e.code})`, { cause: error });
  }
  if (!record.signals[0]) throw new DataError(`record ${path} has no signals`);
  // A multi-frequency record: the first signal holds several samples per frame, i.e. it is sampled at a
  // multiple of the header's rate. Analysed at the header's rate, its beats came out at the wrong times.
  const spf = record.header.signals[0]?.samplesPerFrame ?? 1;
  if (spf !== 1) {
    throw new DataError(
      `record ${path}: its first signal stores ${spf} samples per frame (format ${record.header.signals[0]?.format}x${spf} in ${path}.hea: sampled at ${record.header.fs * spf} Hz, a multi-frequency record); medge ecg reads a first signal of one sample per frame at the header's ${record.header.fs} Hz: write the record with one sample per frame (resampled to one rate) and run it again`,
    );
  }
  // The detector's band-pass (5-18 Hz) is not realisable at or below twice its upper edge: at 20 Hz the
  // pipeline ran and reported beats and AF out of a broken filter.
  const minFs = 2 * DEFAULT_QRS_OPTIONS.bandHz[1];
  if (!(record.header.fs > minFs)) {
    throw new ConfigError(`${path}.hea sampling frequency`, record.header.fs, `is too low for the QRS detector (its ${DEFAULT_QRS_OPTIONS.bandHz.join('-')} Hz band needs more than ${minFs} Hz)`, 'use an ECG recorded at 125 Hz or more');
  }
  return record;
}

/**
 * Checks `--out` before anything runs (`checkOutFile`), keeping the record's own files: header, signal
 * files and the .atr reference (the file is written beside and renamed over the target, so a read-only
 * mode would not protect them).
 */
export function checkAnnotationOut(out: string, record: string, wf: WfdbRecord): void {
  const own = [`${record}.hea`, `${record}.atr`, ...wf.header.signals.map((spec) => join(dirname(record), spec.fileName))];
  const example = `${basename(record)}.qrs`;
  const keep = own.map((file) => {
    const what = file.endsWith('.atr') ? 'reference annotations' : file.endsWith('.hea') ? 'header' : 'signal file';
    const named = resolve(file) === resolve(out) ? '' : ` (${file})`;
    return { file, refusal: `is the record's own ${what}${named}; refusing to replace it: write to another file, e.g. --out ${join(dirname(out), example)}` };
  });
  checkOutFile(out, { keep, example, usage: ECG_USAGE });
}

interface ModelChoice {
  /** Undefined: no model (rules). */
  dir: string | undefined;
  /** Whether the directory was given (`--model`) rather than the shipped default. */
  given: boolean;
  backend: BackendName;
}

/** Checks --model, --no-model and --backend before any record is read. */
function modelChoice(values: { model?: string; 'no-model'?: boolean; backend?: string }): ModelChoice {
  if (values['no-model'] && values.model !== undefined) throw new UsageError('give --model DIR or --no-model, not both', ECG_USAGE);
  const backend = (values.backend ?? 'wasm') as BackendName;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(values.backend)}`, ECG_USAGE);
  if (values['no-model']) return { dir: undefined, given: false, backend };
  const shipped = defaultBeatModelDir();
  if (values.model === undefined) return { dir: shipped, given: false, backend };
  const stat = statOrUndefined(values.model);
  if (!stat) throw new UsageError(`--model ${values.model}: no such directory (the shipped beat classifier is ${shipped}; leave --model out to use it)`, ECG_USAGE);
  if (!stat.isDirectory()) throw new UsageError(`--model ${values.model} is a file; give the model's directory (the one holding medge-model.json), e.g. ${shipped}`, ECG_USAGE);
  return { dir: values.model, given: true, backend };
}

async function openClassifier(choice: ModelChoice): Promise<WorkerBeatClassifier | undefined> {
  if (choice.dir === undefined) return undefined;
  if (!choice.given && !existsSync(join(choice.dir, MODEL_MANIFEST_FILE))) {
    process.stderr.write(`medge ecg: no beat classifier in ${choice.dir}; beats are typed by rules\n`);
    return undefined;
  }
  // TF.js loads in the classifier's worker only.
  return WorkerBeatClassifier.start(choice.dir, choice.backend);
}

const MODEL_OPTIONS = { model: { type: 'string' }, 'no-model': { type: 'boolean' }, backend: { type: 'string' } } as const;

export async function ecgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`${ECG_USAGE}\n`);
    return 0;
  }
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
  const arg = positionals[0];
  if (!arg || !values.out) throw new UsageError('RECORD and --out FILE are required', ECG_USAGE);
  const choice = modelChoice(values);
  const record = recordArgument(arg);
  const wf = readRecord(record);
  checkAnnotationOut(values.out, record, wf);
  const classifier = await openClassifier(choice);
  try {
    const r = await analyzeSignal(wf.signals[0] as Int16Array, wf.header.fs, classifier);
    try {
      writeWfdbAnnotations(values.out, toAnnotations(r));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof code !== 'string') throw error;
      throw new UsageError(`cannot write --out ${values.out} (${code}); choose a file in a writable directory`, ECG_USAGE);
    }
    const counts = AAMI_CLASSES.map((c) => `${c} ${r.beats.filter((b) => b.cls === c).length}`).join(', ');
    process.stderr.write(`medge ecg annotate: ${r.beats.length} beats (${counts}), ${r.afEpisodes.length} AF episode(s) written to ${values.out} (classifier ${r.classifier})\n`);
  } finally {
    await classifier?.close();
  }
  return 0;
}

/** A record `eval` could not read: named with the error, the others are still scored. */
interface RecordFailure {
  record: string;
  error: string;
  /** The error's `code` (`data`, `decode`, `config`) or errno. */
  errorCode: string;
}

/** Reads what `eval` scores of one record, or the reason it cannot: a damaged record is not the run's end. */
function readScoredRecord(path: string): { wf: WfdbRecord; reference: ReturnType<typeof readWfdbAnnotations>['annotations'] } | { error: string; errorCode: string } {
  try {
    return { wf: readRecord(path), reference: readWfdbAnnotations(path, 'atr').annotations };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = error instanceof MedgeError ? error.message : systemProblem(error);
    if (message === undefined || typeof code !== 'string') throw error;
    return { error: message, errorCode: code };
  }
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
    return readRecord(path).signals[0] as Int16Array;
  });
}

/** A score as reported, with Se and +P null where their denominator is 0 (ec57.ts scores those 100). */
type Reported<T extends { se: number; ppv: number }> = Omit<T, 'se' | 'ppv'> & { se: number | null; ppv: number | null };

function reportedDetection(s: DetectionScore): Reported<DetectionScore> {
  return { ...s, se: s.tp + s.fn > 0 ? s.se : null, ppv: s.tp + s.fp > 0 ? s.ppv : null };
}

function reportedDuration<T extends DurationScore>(s: T): Reported<T> {
  return { ...s, se: s.overlap + s.refOnly > 0 ? s.se : null, ppv: s.overlap + s.detOnly > 0 ? s.ppv : null };
}

function reportedClasses(c: ClassScores | undefined): (Omit<ClassScores, 'V' | 'S'> & { V: Reported<DetectionScore>; S: Reported<DetectionScore> }) | undefined {
  return c && { ...c, V: reportedDetection(c.V), S: reportedDetection(c.S) };
}

function reportedByRule(scores: Record<AfReferenceRule, DurationScore>): Record<AfReferenceRule, Reported<DurationScore>> {
  return Object.fromEntries(AF_REFERENCE_RULES.map((rule) => [rule, reportedDuration(scores[rule])])) as Record<AfReferenceRule, Reported<DurationScore>>;
}

/** The records `eval` scores: `--records` (each must have a .hea and a .atr in DIR), else every record of DIR with both. */
function evalRecords(dir: string, records: string | undefined): string[] {
  const stat = statOrUndefined(dir);
  if (!stat) throw new UsageError(`--data ${dir}: no such directory; give the directory holding the WFDB records (.hea, .dat, .atr), e.g. /data/mitdb`, ECG_USAGE);
  if (!stat.isDirectory()) {
    throw new UsageError(`--data ${dir} is a file, not a directory; give the directory holding the records${dir.endsWith('.hea') ? ` (${dirname(dir)}), with --records ${basename(dir, '.hea')} for this one` : ''}`, ECG_USAGE);
  }
  const available = readdirSync(dir)
    .filter((f) => f.endsWith('.atr') && existsSync(join(dir, `${basename(f, '.atr')}.hea`)))
    .map((f) => basename(f, '.atr'))
    .sort();
  if (records === undefined) {
    if (available.length === 0) throw new UsageError(`no WFDB records with .atr annotations in ${dir}`, ECG_USAGE);
    return available;
  }
  const names = records.split(',').map((n) => n.trim().replace(/\.hea$/, ''));
  const listed = available.length === 0 ? 'none there has both a .hea and a .atr' : `records there with a reference: ${available.slice(0, 10).join(', ')}${available.length > 10 ? ', ...' : ''}`;
  for (const name of names) {
    if (name === '') throw new UsageError(`--records has an empty name in ${JSON.stringify(records)}; separate the names with commas`, ECG_USAGE);
    if (!existsSync(join(dir, `${name}.hea`))) throw new UsageError(`--records: there is no record ${name} in ${dir} (no ${name}.hea); ${listed}`, ECG_USAGE);
    if (!existsSync(join(dir, `${name}.atr`))) throw new UsageError(`--records: record ${name} has no reference annotations ${join(dir, `${name}.atr`)} to score against; ${listed}`, ECG_USAGE);
  }
  return names;
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
  const choice = modelChoice(values);
  const names = evalRecords(dir, values.records);
  const noise = snr === undefined ? undefined : nstNoises(values['noise-dir'] ?? join(dirname(dir.replace(/\/+$/, '')), 'nstdb'));
  const classifier = await openClassifier(choice);
  const results: RecordResult[] = [];
  const failures: RecordFailure[] = [];
  let classifierId = '';
  try {
    for (const name of names) {
      const read = readScoredRecord(join(dir, name));
      if ('error' in read) {
        failures.push({ record: name, ...read });
        if (!values.json) process.stderr.write(`medge ecg eval: ${name} failed: ${read.error}\n`);
        continue;
      }
      const { wf, reference } = read;
      const fs = wf.header.fs;
      let signal = wf.signals[0] as Int16Array;
      if (values['reverse-polarity']) signal = reversedLead(signal, wf.header.signals[0]?.baseline ?? 0);
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
      if (!values.json) process.stderr.write(`medge ecg eval: ${name} done (${results.length + failures.length}/${names.length})\n`);
    }
  } finally {
    await classifier?.close();
  }
  // Se and +P without a denominator (nothing scored, no reference AF, ...) are reported as null / "-".
  const records = results.map((r) => ({ record: r.record, qrs: reportedDetection(r.qrs), classes: reportedClasses(r.classes), af: reportedDuration(r.af), afByRule: reportedByRule(r.afByRule) }));
  const gross = {
    qrs: reportedDetection(grossScore(results.map((r) => r.qrs))),
    classes: reportedClasses(grossClassScores(results.flatMap((r) => (r.classes ? [r.classes] : [])))),
    af: reportedDuration(grossDurationScore(results.map((r) => r.af))),
    afByRule: reportedByRule(Object.fromEntries(AF_REFERENCE_RULES.map((rule) => [rule, grossDurationScore(results.map((r) => r.afByRule[rule]))])) as Record<AfReferenceRule, DurationScore>),
  };
  if (failures.length > 0) process.stderr.write(`medge ecg eval: ${failures.length} of ${names.length} record(s) could not be scored: ${failures.map((f) => f.record).join(', ')}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ classifier: classifierId, noiseSnrDb: snr ?? null, reversePolarity: values['reverse-polarity'] === true, records, failed: failures, gross })}\n`);
    return failures.length > 0 ? 1 : 0;
  }
  const pct = (x: number | null, width = 7) => (x === null ? '-' : x.toFixed(2)).padStart(width);
  type ReportedClasses = ReturnType<typeof reportedClasses>;
  const cls = (s: Reported<DetectionScore> | undefined) => (s ? `${String(s.tp + s.fn).padStart(5)} ${pct(s.se)} ${pct(s.ppv)}` : '    -       -       -');
  const lines = [`record      beats     FN     FP    QRS Se  QRS +P |    V   V Se    V +P |    S   S Se    S +P |  AF ref s  AF det s   AF Se   AF +P`];
  const row = (name: string, q: Reported<DetectionScore>, c: ReportedClasses, af: Reported<DurationScore>, refS: number, detS: number) =>
    `${name.padEnd(8)} ${String(q.tp + q.fn).padStart(8)} ${String(q.fn).padStart(6)} ${String(q.fp).padStart(6)} ${pct(q.se)} ${pct(q.ppv)} | ${cls(c?.V)} | ${cls(c?.S)} | ${refS.toFixed(0).padStart(9)} ${detS.toFixed(0).padStart(9)} ${pct(af.se)} ${pct(af.ppv)}`;
  records.forEach((r, i) => {
    const { refSeconds, detSeconds } = (results[i] as RecordResult).af;
    lines.push(row(r.record, r.qrs, r.classes, r.af, refSeconds, detSeconds));
  });
  const seconds = (k: 'refSeconds' | 'detSeconds') => results.reduce((s, r) => s + r.af[k], 0);
  lines.push(row('gross', gross.qrs, gross.classes, gross.af, seconds('refSeconds'), seconds('detSeconds')));
  lines.push(`AF duration gross by reference rule: ${AF_REFERENCE_RULES.map((rule) => `${rule} Se ${pct(gross.afByRule[rule].se, 0)} +P ${pct(gross.afByRule[rule].ppv, 0)}`).join('; ')} (ec57: '(AFIB' episodes, reference flutter left out of +P, as epicmp; af-prefix: flutter counted as AF; afib: flutter counted as not AF).`);
  lines.push(`Scored per ANSI/AAMI EC57: 150 ms match window, from ${startSeconds === 300 ? 'minute 5' : `${startSeconds} s`}, ventricular flutter excluded. V and S gross over the non-paced records (${PACED_RECORDS.join(', ')} excluded). Classifier: ${classifierId}.${snr === undefined ? '' : ` Noise: ma + bw at ${snr} dB SNR.`}${values['reverse-polarity'] ? ' Lead polarity reversed.' : ''}`);
  if (failures.length > 0) lines.push(`Not scored (${failures.length} of ${names.length} records; gross is over the ${results.length} scored): ${failures.map((f) => `${f.record} (${f.error})`).join('; ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return failures.length > 0 ? 1 : 0;
}
