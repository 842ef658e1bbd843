import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { WFDB_ANNOTATION_CODES } from '../../device-sdk/protocols/wfdb.js';
import { type DetectionScore, grossScore, scoreDetections } from '../../device-sdk/signal/ecg/ec57.js';
import { QrsDetector } from '../../device-sdk/signal/ecg/qrs-detector.js';
import { readWfdbAnnotations, readWfdbRecord, writeWfdbAnnotations } from '../../simulator/sources/wfdb-files.js';
import { parse, UsageError } from './args.js';

export const ECG_USAGE = `Usage: medge ecg annotate RECORD --out FILE
       medge ecg eval --data DIR [--records 100,101,...] [--json]

annotate  runs the streaming QRS detector over a WFDB record (path without extension, first signal)
          and writes an MIT-format annotation file with one beat annotation per detected beat at its
          R peak. Beats are typed Q (unclassified) until the beat classifier ships.
eval      annotates every record of DIR that has a .atr reference and scores QRS detection per
          ANSI/AAMI EC57 (150 ms match window, from minute 5, ventricular flutter excluded): per-record
          and gross sensitivity (Se) and positive predictivity (+P). Beat-class (V, S) and AF scores
          come with the beat classifier and AF detector.`;

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

export async function ecgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'annotate') return annotate(rest);
  if (sub === 'eval') return evaluate(rest);
  throw new UsageError(sub === undefined ? 'ecg needs a subcommand' : `unknown ecg subcommand ${JSON.stringify(sub)}; subcommands are: annotate, eval`, ECG_USAGE);
}

function annotate(args: string[]): number {
  const { values, positionals } = parse(args, { out: { type: 'string' } }, ECG_USAGE, 1);
  if (values.help) {
    process.stdout.write(`${ECG_USAGE}\n`);
    return 0;
  }
  const record = positionals[0];
  if (!record || !values.out) throw new UsageError('RECORD and --out FILE are required', ECG_USAGE);
  const { beats } = detectBeats(record);
  writeWfdbAnnotations(
    values.out,
    beats.map((sample) => ({ sample, code: WFDB_ANNOTATION_CODES.UNKNOWN })),
  );
  process.stderr.write(`medge ecg annotate: ${beats.length} beats written to ${values.out}\n`);
  return 0;
}

interface RecordScore extends DetectionScore {
  record: string;
}

function evaluate(args: string[]): number {
  const { values } = parse(args, { data: { type: 'string' }, records: { type: 'string' }, json: { type: 'boolean' } }, ECG_USAGE);
  if (values.help) {
    process.stdout.write(`${ECG_USAGE}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', ECG_USAGE);
  const dir = values.data;
  const names = values.records
    ? values.records.split(',').map((s) => s.trim())
    : readdirSync(dir)
        .filter((f) => f.endsWith('.atr') && existsSync(join(dir, `${basename(f, '.atr')}.hea`)))
        .map((f) => basename(f, '.atr'))
        .sort();
  if (names.length === 0) throw new UsageError(`no WFDB records with .atr annotations in ${dir}`, ECG_USAGE);
  const scores: RecordScore[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const { fs, length, beats } = detectBeats(path);
    const reference = readWfdbAnnotations(path, 'atr').annotations;
    scores.push({ record: name, ...scoreDetections(reference, beats, { fs, length }) });
    if (!values.json) process.stderr.write(`medge ecg eval: ${name} done (${scores.length}/${names.length})\n`);
  }
  const gross = grossScore(scores);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ qrs: { records: scores, gross } })}\n`);
    return 0;
  }
  const pct = (x: number) => x.toFixed(2).padStart(7);
  const lines = ['record      beats     FN     FP     Se%     +P%'];
  for (const s of scores) lines.push(`${s.record.padEnd(8)} ${String(s.tp + s.fn).padStart(8)} ${String(s.fn).padStart(6)} ${String(s.fp).padStart(6)} ${pct(s.se)} ${pct(s.ppv)}`);
  lines.push(`${'gross'.padEnd(8)} ${String(gross.tp + gross.fn).padStart(8)} ${String(gross.fn).padStart(6)} ${String(gross.fp).padStart(6)} ${pct(gross.se)} ${pct(gross.ppv)}`);
  lines.push('QRS detection per ANSI/AAMI EC57: 150 ms match window, scored from minute 5, ventricular flutter excluded.');
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
