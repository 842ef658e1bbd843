/**
 * CGM traces as CSV text with the columns `id,time,gl` (GlucoBench layout: quoted or bare fields,
 * a header line, LF or CRLF). `time` is ISO-8601 or `YYYY-MM-DD HH:MM[:SS]` (read as UTC: only
 * differences matter), or epoch milliseconds. `gl` is mg/dL (see `rowsInMgDl` for mmol/L); `NA` or an empty field is a missing
 * reading (kept as NaN so that output can mirror input rows). Pure: parses text.
 */
import type { GlucosePoint } from './types.js';

export interface CgmRow {
  id: string;
  /** The time field as written. */
  time: string;
  t: number;
  gl: number;
}

export class CgmCsvError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

function unquote(s: string): string {
  const v = s.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/""/g, '"') : v;
}

/** Parses a time field to ms, or NaN. */
export function parseCgmTime(s: string): number {
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$/.exec(s);
  if (m) return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), Math.round(Number(m[7] ?? 0) * 1000));
  return Date.parse(s);
}

/** Parses the CSV text; throws `CgmCsvError` naming the line on a missing column or an unreadable time. */
export function parseCgmCsv(text: string): CgmRow[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => unquote(h).toLowerCase());
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new CgmCsvError(1, `the header must name the columns id,time,gl (got ${JSON.stringify(lines[0] ?? '')})`);
    return i;
  };
  const [ci, ct, cg] = [col('id'), col('time'), col('gl')];
  const rows: CgmRow[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n] as string;
    if (line.trim() === '') continue;
    const f = line.split(',');
    if (f.length < header.length) throw new CgmCsvError(n + 1, `expected ${header.length} fields, got ${f.length}`);
    const time = unquote(f[ct] as string);
    const t = parseCgmTime(time);
    if (!Number.isFinite(t)) throw new CgmCsvError(n + 1, `unreadable time ${JSON.stringify(time)}`);
    const g = unquote(f[cg] as string);
    const gl = g === '' || g.toUpperCase() === 'NA' ? Number.NaN : Number(g);
    if (Number.isNaN(gl) && g !== '' && g.toUpperCase() !== 'NA') throw new CgmCsvError(n + 1, `unreadable glucose ${JSON.stringify(g)}`);
    rows.push({ id: unquote(f[ci] as string), time, t, gl });
  }
  return rows;
}

/** Glucose units a CSV may carry; everything inside medge computes in mg/dL. */
export type GlucoseUnit = 'mg/dL' | 'mmol/L';
export const GLUCOSE_UNITS: readonly GlucoseUnit[] = Object.freeze(['mg/dL', 'mmol/L']);
/** mg/dL per mmol/L of glucose (molar mass 180.16 g/mol). */
export const MG_DL_PER_MMOL_L = 18.016;

/** `gl` in mg/dL, converted from `unit` (the same rows for mg/dL; missing readings stay NaN). */
export function rowsInMgDl(rows: readonly CgmRow[], unit: GlucoseUnit): readonly CgmRow[] {
  return unit === 'mg/dL' ? rows : rows.map((r) => ({ ...r, gl: r.gl * MG_DL_PER_MMOL_L }));
}

/**
 * Whether readings said to be mg/dL look like mmol/L: a CGM reads 40-400 mg/dL (2.2-22.2 mmol/L), so a
 * trace whose median is below 25 and whose highest reading is below 35 cannot be mg/dL. Returns the
 * median and maximum when it looks so (at least 10 readings), else undefined.
 */
export function mmolLike(readings: readonly number[]): { median: number; max: number } | undefined {
  const v = readings.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length < 10) return undefined;
  const median = v[Math.floor(v.length / 2)] as number;
  const max = v[v.length - 1] as number;
  return median < 25 && max < 35 ? { median, max } : undefined;
}

/** Rows grouped by subject id (first-seen order), each as a trace sorted by time without missing values or duplicate times. */
export function tracesById(rows: readonly CgmRow[]): Map<string, GlucosePoint[]> {
  const by = new Map<string, GlucosePoint[]>();
  for (const r of rows) {
    if (!Number.isFinite(r.gl)) continue;
    let list = by.get(r.id);
    if (list === undefined) by.set(r.id, (list = []));
    list.push({ t: r.t, gl: r.gl });
  }
  for (const [id, list] of by) {
    list.sort((a, b) => a.t - b.t);
    by.set(
      id,
      list.filter((p, i) => i === 0 || (list[i - 1] as GlucosePoint).t !== p.t),
    );
  }
  return by;
}
