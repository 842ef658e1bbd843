/**
 * CGM CSV replay: continuous glucose traces in the GlucoBench layout (`id,time,gl`, e.g.
 * `../shared/data/cgm/hall2018.csv`): one row per reading, `time` as `YYYY-MM-DD HH:MM:SS` local to
 * the study (read as UTC: only differences matter), `gl` in mg/dL (`NA` or empty: no reading, skipped). Quoted fields are accepted.
 *
 * Subjects are chosen by their position in the file (0 = the first id that appears), so scenario
 * files and reports never carry a study's subject identifiers.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConfigError, DecodeError } from '../../device-sdk/errors.js';
import { mmolLike } from '../../device-sdk/signal/glucose/csv.js';
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

/** Values that mean "no reading" (the sensor was warming up or off): skipped, the series keeps its times. */
const MISSING = new Set(['', 'NA', 'NaN', 'null']);

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/;

function unquote(field: string): string {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1).replaceAll('""', '"') : f;
}

/** Parses the CSV text into one series per subject, in file order. Throws `DecodeError` (codec `cgm-csv`) naming the line. */
export function parseCgmCsv(text: string, name = 'cgm'): GlucoseSeries[] {
  const lines = text.split(/\r?\n/);
  const head = (lines[0] ?? '').split(',').map(unquote);
  const col = (c: string) => head.indexOf(c);
  const [iId, iTime, iGl] = [col('id'), col('time'), col('gl')];
  if (iId < 0 || iTime < 0 || iGl < 0) throw new DecodeError(CGM_CSV_CODEC, `line 1: header ${JSON.stringify(head.join(','))} lacks id, time and gl columns`);
  const bySubject = new Map<string, { t: number; mgdl: number }[]>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    const f = line.split(',').map(unquote);
    const m = TIME.exec(f[iTime] ?? '');
    const gl = Number(f[iGl]);
    if (!m) throw new DecodeError(CGM_CSV_CODEC, `line ${i + 1}: time ${JSON.stringify(f[iTime])} is not YYYY-MM-DD HH:MM[:SS]`);
    if (MISSING.has(f[iGl] ?? '')) continue;
    if (!Number.isFinite(gl)) throw new DecodeError(CGM_CSV_CODEC, `line ${i + 1}: gl ${JSON.stringify(f[iGl])} is not a number`);
    const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, m[6] === undefined ? 0 : +m[6]);
    const id = f[iId] ?? '';
    let rows = bySubject.get(id);
    if (!rows) bySubject.set(id, (rows = []));
    rows.push({ t, mgdl: gl });
  }
  return [...bySubject.values()].map((rows, k) => {
    rows.sort((a, b) => a.t - b.t);
    const t0 = rows[0]?.t ?? 0;
    const samples: GlucoseSample[] = rows.map((r) => ({ tMs: r.t - t0, mgdl: r.mgdl }));
    const gaps = samples.slice(1).map((s, j) => s.tMs - (samples[j] as GlucoseSample).tMs).sort((a, b) => a - b);
    const periodMs = gaps.length > 0 ? (gaps[Math.floor(gaps.length / 2)] as number) : 300_000;
    return { name: `${name} subject ${k}`, periodMs, samples };
  });
}

/** Reads one subject's trace from a CGM CSV file. */
export function readCgmCsv(file: string, options: CgmCsvOptions = {}): GlucoseSeries {
  const all = parseCgmCsv(readFileSync(file, 'utf8'), basename(file).replace(/\.csv$/, ''));
  const subject = options.subject ?? 0;
  const series = all[subject];
  if (!Number.isInteger(subject) || series === undefined) throw new ConfigError('subject', subject, `is not a subject of ${basename(file)}`, `use 0..${all.length - 1}`);
  // A CGM reads 40-400 mg/dL: a trace of mmol/L values would be replayed as severe hypoglycaemia.
  const looks = mmolLike(series.samples.map((s) => s.mgdl));
  if (looks) throw new ConfigError('file', basename(file), `has gl values that look like mmol/L, not mg/dL (median ${looks.median}, highest ${looks.max})`, 'convert gl to mg/dL (x 18.016)');
  const offset = options.offset ?? 0;
  const picked = series.samples.slice(offset, options.limit === undefined ? undefined : offset + options.limit);
  const t0 = picked[0]?.tMs ?? 0;
  return { ...series, samples: picked.map((s) => ({ tMs: s.tMs - t0, mgdl: s.mgdl })) };
}
