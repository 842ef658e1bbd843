/**
 * CGM CSV replay: continuous glucose traces in the GlucoBench layout (`id,time,gl`, e.g.
 * `../shared/data/cgm/hall2018.csv`): one row per reading, `time` as `YYYY-MM-DD HH:MM:SS` local to
 * the study (read as UTC: only differences matter), `gl` in mg/dL (`NA`, `NaN`, `null` or empty: no reading, skipped). Quoted fields are accepted.
 * The rows are read by the same reader as `medge glucose`, with its checks: UTF-8 only (`decodeCgmCsv`), and
 * no subject whose readings mix mg/dL and mmol/L, nor a reading below 35 that could be mmol/L which no reading
 * of its subject near it shows to be a real low (`checkUnitMix`).
 *
 * Subjects are chosen by their position in the file (0 = the first id that appears), so scenario
 * files and reports never carry a study's subject identifiers.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError, DecodeError } from '../../device-sdk/errors.js';
import { CgmCsvError, checkGlucoseRange, checkUnitMix, decodeCgmCsv, mmolLike, parseCgmCsv as parseCsvRows, tracesById } from '../../device-sdk/signal/glucose/csv.js';
import type { GlucosePoint } from '../../device-sdk/signal/glucose/types.js';
import type { GlucoseSample, GlucoseSeries } from './glucose-series.js';

export const CGM_CSV_CODEC = 'cgm-csv';

export interface CgmCsvOptions {
  /** Subject by position in the file (default 0). */
  subject?: number;
  /** Skip this many readings of the subject first. */
  offset?: number;
  /** At most this many readings. */
  limit?: number;
}

/**
 * Parses the CSV text into one series per subject, in file order, with the reader `medge glucose` uses
 * (`parseCgmCsv` of device-sdk/signal/glucose/csv.ts: strict times, decimal values, conflicting
 * duplicates refused, exact duplicates read once) and its plausible range (10-1000 mg/dL). Throws
 * `DecodeError` (codec `cgm-csv`) naming the line.
 */
export function parseCgmCsv(text: string, name = 'cgm'): GlucoseSeries[] {
  let traces: Map<string, GlucosePoint[]>;
  try {
    const rows = parseCsvRows(text);
    // A CGM reads 40-400 mg/dL: a trace of mmol/L values would be replayed as severe hypoglycaemia. The
    // same check from 3 readings on as `medge glucose` (a short meter log fed to a simulated meter too).
    const looks = mmolLike(rows.filter((r) => Number.isFinite(r.gl)).map((r) => r.gl));
    if (looks) throw new ConfigError('file', name, `has gl values that look like mmol/L, not mg/dL (median ${looks.median}, highest ${looks.max})`, 'convert gl to mg/dL (x 18.016)');
    checkGlucoseRange(rows, 'mg/dL');
    checkUnitMix(rows, 'mg/dL');
    traces = tracesById(rows);
  } catch (error) {
    if (error instanceof CgmCsvError) throw new DecodeError(CGM_CSV_CODEC, `${name}: ${error.message}`, { cause: error });
    throw error;
  }
  return [...traces.values()].map((points, k) => {
    const t0 = points[0]?.t ?? 0;
    const samples: GlucoseSample[] = points.map((p) => ({ tMs: p.t - t0, mgdl: p.gl }));
    const gaps = samples.slice(1).map((s, j) => s.tMs - (samples[j] as GlucoseSample).tMs).sort((x, y) => x - y);
    const periodMs = gaps.length > 0 ? (gaps[Math.floor(gaps.length / 2)] as number) : 300_000;
    return { name: `${name.replace(/\.csv$/, '')} subject ${k}`, periodMs, samples };
  });
}

/** Reads one subject's trace from a CGM CSV file. */
export function readCgmCsv(file: string, options: CgmCsvOptions = {}): GlucoseSeries {
  let text: string;
  try {
    text = decodeCgmCsv(readFileSync(file));
  } catch (error) {
    if (error instanceof CgmCsvError) throw new DecodeError(CGM_CSV_CODEC, `${basename(file)}: ${error.message}`, { cause: error });
    throw error;
  }
  const all = parseCgmCsv(text, basename(file));
  const subject = options.subject ?? 0;
  const series = all[subject];
  if (!Number.isInteger(subject) || series === undefined) throw new ConfigError('subject', subject, `is not a subject of ${basename(file)}`, `use 0..${all.length - 1}`);
  const offset = options.offset ?? 0;
  const picked = series.samples.slice(offset, options.limit === undefined ? undefined : offset + options.limit);
  const t0 = picked[0]?.tMs ?? 0;
  return { ...series, samples: picked.map((s) => ({ tMs: s.tMs - t0, mgdl: s.mgdl })) };
}
