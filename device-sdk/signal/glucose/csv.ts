/**
 * CGM traces as CSV text with the columns `id,time,gl` (GlucoBench layout: quoted or bare fields, a
 * quoted field may hold commas; a header line, LF or CRLF). Strict about what a reading is, because a
 * misread row becomes a clinical number:
 *
 * - Every row has as many fields as the header: a row with one more is what a decimal comma makes of
 *   `5,3` (5.3 mmol/L), and reading its first half would be a wrong number.
 * - `time` is an ISO 8601 date-time `YYYY-MM-DDTHH:MM[:SS[.fff]]` (`T`, `t` or a space; the hour may
 *   have one digit; an optional `Z` or `+HH:MM` offset; without one it is read as UTC: only differences
 *   matter), or epoch milliseconds (an integer of 12 or 13 digits: 1973 to 2286, also written with a
 *   zero fraction, `1673769900000.0`). Calendar fields must exist (no 2014-02-30, no 24:00); anything
 *   else is refused with its line number, with a hint for the common forms: slash dates and dates with
 *   the year last (`03/02/2014`: day and month order depend on the locale), 12-hour clocks (AM/PM),
 *   epoch seconds.
 * - `gl` is a decimal number (`93`, `5.2`, `1e2`) in the file's unit (mg/dL unless the caller says
 *   mmol/L, see `rowsInMgDl`); `NA`, `NaN`, `null` (any case) or an empty field is a missing reading
 *   (kept as NaN so that output can mirror input rows). Zero, negative and non-finite values are refused
 *   (a missing reading is NA), and so are `Low`/`High` (a CGM's out-of-range marks: which number they
 *   stand for is the writer's choice); `checkGlucoseRange` refuses values no glucose device can report,
 *   once the unit is known.
 * - The same subject and time twice with different `gl` is refused naming both lines (medge does not
 *   guess which is right); an exact duplicate row (same id, time and gl) is kept as a row but is one
 *   reading (`tracesById`).
 *
 * Pure: parses text.
 */
import { MedgeError } from '../../errors.js';
import type { GlucosePoint } from './types.js';

export interface CgmRow {
  id: string;
  /** The time field as written. */
  time: string;
  t: number;
  gl: number;
  /** Line of the file (1-based; the header is line 1). */
  line: number;
}

/** A CGM CSV that cannot be read as glucose readings. `line` is the offending line (1-based), `otherLine` the line it conflicts with. */
export class CgmCsvError extends MedgeError {
  readonly line: number;
  readonly otherLine: number | undefined;
  constructor(line: number, message: string, otherLine?: number) {
    super('decode', `line ${line}: ${message}`);
    this.line = line;
    this.otherLine = otherLine;
  }
}

/** The fields of a CSV line: commas inside double quotes do not split (quotes are kept; see `unquote`). */
function splitFields(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

function unquote(s: string): string {
  const v = s.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/""/g, '"') : v;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[ Tt](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$/;
/**
 * Epoch milliseconds: 12 or 13 digits (1973-03-03 to 2286-11-20), so that epoch seconds are not read as
 * 1970; a zero fraction (`.0`, as a float column writes it) is the same integer.
 */
const EPOCH_MS = /^\d{12,13}(?:\.0*)?$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Parses a time field to ms (see the module comment for the formats), or NaN. */
export function parseCgmTime(s: string): number {
  if (EPOCH_MS.test(s)) return Number(s);
  const m = DATE_TIME.exec(s);
  if (!m) return Number.NaN;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  let offsetMin = 0;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const hh = Number(zone.slice(1, 3));
    const mm = Number(zone.slice(-2));
    if (hh > 14 || mm > 59) return Number.NaN;
    offsetMin = (zone.startsWith('-') ? -1 : 1) * (hh * 60 + mm);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, Math.round(Number(m[7] ?? 0) * 1000)) - offsetMin * 60_000;
}

const TIME_FIX = 'write times as YYYY-MM-DD HH:MM[:SS] or ISO 8601 (2014-02-03T03:42:12Z), or epoch milliseconds';
const TIME_FORMAT = 'medge reads YYYY-MM-DD HH:MM[:SS] on a 24-hour clock with an optional UTC offset (Z or +HH:MM), e.g. 2023-01-15 08:05 or 2023-01-15T08:05:00+01:00, or epoch milliseconds; export the times in that form';

/** Why a time field was refused, with the fix. */
function timeProblem(time: string): string {
  if (/^\d{9,10}(?:\.\d*)?$/.test(time)) return `time ${JSON.stringify(time)} looks like epoch seconds; medge reads epoch milliseconds: multiply by 1000`;
  if (/^\d{12,13}\.\d*$/.test(time)) return `time ${JSON.stringify(time)} is epoch milliseconds with a fraction: write whole milliseconds`;
  // Forms that spreadsheets and meter software write; refused because day and month order (and the hour of a 12-hour clock) would be a guess.
  const forms: string[] = [];
  if (/^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:\s|$)/.test(time)) forms.push('a date with the year last (day and month order depend on the locale: 1/2/2023 is 1 February or 2 January)');
  else if (/^\d{4}[/.]\d{1,2}[/.]\d{1,2}(?:\s|$)/.test(time)) forms.push('slashes or dots in the date');
  if (/\d\s*[AaPp]\.?[Mm]\.?$/.test(time)) forms.push('a 12-hour clock (AM/PM)');
  if (forms.length > 0) return `unreadable time ${JSON.stringify(time)}: ${forms.join(' and ')}; ${TIME_FORMAT}`;
  return `unreadable time ${JSON.stringify(time)}: ${TIME_FIX}`;
}

/** Whether a (readable) time field fixes its instant: epoch milliseconds or an explicit offset. */
function hasOffset(time: string): boolean {
  return EPOCH_MS.test(time) || DATE_TIME.exec(time)?.[8] !== undefined;
}

/** Glucose fields that mean "no reading" (compared upper-case): what CSV writers put for a missing value. */
const MISSING = new Set(['', 'NA', 'NAN', 'NULL']);
/** Out-of-range marks a CGM writes instead of a number (Dexcom exports: `Low`, `High`). */
const OUT_OF_RANGE_MARK = /^(?:low|lo|high|hi)$/i;

/**
 * Parses the CSV text; throws `CgmCsvError` naming the line on a missing column, an unreadable time, an
 * unreadable, non-positive or non-finite glucose value, or a second, different reading of a subject at the same time.
 */
export function parseCgmCsv(text: string): CgmRow[] {
  const lines = text.split(/\r?\n/);
  const header = splitFields(lines[0] ?? '').map((h) => unquote(h).toLowerCase());
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new CgmCsvError(1, `the header must name the columns id,time,gl (got ${JSON.stringify(lines[0] ?? '')})`);
    return i;
  };
  const [ci, ct, cg] = [col('id'), col('time'), col('gl')];
  const rows: CgmRow[] = [];
  // First row of each subject and time, to find conflicting duplicates.
  const seen = new Map<string, CgmRow>();
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n] as string;
    if (line.trim() === '') continue;
    const f = splitFields(line);
    if (f.length !== header.length) {
      const hint =
        f.length === header.length + 1
          ? ': one field too many, which is what a decimal comma makes of a value (5,3 for 5.3, as exports in locales with a decimal comma write it, often with fields separated by semicolons); write decimal points (5.3) and separate fields with commas'
          : '';
      throw new CgmCsvError(n + 1, `expected ${header.length} fields as in the header, got ${f.length}${hint}`);
    }
    const time = unquote(f[ct] as string);
    const t = parseCgmTime(time);
    if (!Number.isFinite(t)) throw new CgmCsvError(n + 1, timeProblem(time));
    const g = unquote(f[cg] as string);
    const missing = MISSING.has(g.toUpperCase());
    if (OUT_OF_RANGE_MARK.test(g)) {
      throw new CgmCsvError(
        n + 1,
        `unreadable glucose ${JSON.stringify(g)}: a CGM writes Low/High for a reading outside its range, not a number; replace it with the sensor's limit (a Dexcom's: Low 40, High 400 mg/dL; 2.2 and 22.2 mmol/L), or NA for a missing reading`,
      );
    }
    if (!missing && !DECIMAL.test(g)) throw new CgmCsvError(n + 1, `unreadable glucose ${JSON.stringify(g)}: write a decimal number, or NA (or nothing) for a missing reading`);
    const gl = missing ? Number.NaN : Number(g);
    if (!missing && !Number.isFinite(gl)) throw new CgmCsvError(n + 1, `glucose ${JSON.stringify(g)} is not a finite number: no device reports it; fix or remove the row`);
    if (gl <= 0) throw new CgmCsvError(n + 1, `glucose ${JSON.stringify(g)} is not positive: a glucose reading is > 0; write NA (or nothing) for a missing reading`);
    const row: CgmRow = { id: unquote(f[ci] as string), time, t, gl, line: n + 1 };
    const key = `${row.id}\u0000${t}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, row);
    else if (!Object.is(first.gl, gl)) {
      const v = (x: number) => (Number.isNaN(x) ? 'NA' : String(x));
      // Without an offset the likely cause is local time: the hour after the autumn clock change (or
      // after time-zone travel) repeats the times of the hour before. Either reading may be the right one.
      const cause =
        hasOffset(time) && hasOffset(first.time)
          ? 'remove the wrong one of the two rows'
          : 'likely cause: an export in local time without a UTC offset repeats an hour at the autumn clock change or after time-zone travel; export the times with a UTC offset (2024-10-27T02:30:00+01:00), or remove one of the two rows';
      throw new CgmCsvError(
        n + 1,
        `subject ${JSON.stringify(row.id)} has two different readings at ${JSON.stringify(time)}: ${v(gl)} here and ${v(first.gl)} on line ${first.line}; ${cause} (medge does not guess which is right; an exact duplicate row is read once)`,
        first.line,
      );
    }
    rows.push(row);
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
 * The fewest readings `mmolLike` and `mgdlLike` judge. From three on, a log entirely in the other unit's
 * band is not a plausible trace of any length: three or more mg/dL readings all below 35 with the median
 * below 25 would be one unbroken, life-threatening hypoglycaemia (level 2 is below 54) that every check
 * found unresolved, while every person's mmol/L log (2-33) lies there. One or two readings are not judged:
 * a single meter check in a severe low is real, and a short mmol/L log of values of 10-35 looks the same
 * (`unitUndecidable`: `medge glucose` asks for `--units` then; below 10 `checkGlucoseRange` refuses it).
 */
export const UNIT_CHECK_MIN_READINGS = 3;

/**
 * Below this, a reading is in both units' bands: 10-35 mg/dL is a severe low a meter can report, and
 * 10-35 mmol/L (180-630 mg/dL) a high.
 */
export const EITHER_UNIT_BELOW = 35;

/**
 * The readings of a log too short for `mmolLike` and `mgdlLike` (fewer than `UNIT_CHECK_MIN_READINGS`)
 * whose readings are all below `EITHER_UNIT_BELOW`, so that no unit can be judged from them; else
 * undefined. Without a stated unit such a log is refused rather than read as a severe low that may be a high.
 */
export function unitUndecidable(readings: readonly number[]): readonly number[] | undefined {
  const v = readings.filter(Number.isFinite);
  return v.length > 0 && v.length < UNIT_CHECK_MIN_READINGS && v.every((g) => g < EITHER_UNIT_BELOW) ? v : undefined;
}

/**
 * Whether readings said to be mg/dL look like mmol/L: a CGM reads 40-400 mg/dL (2.2-22.2 mmol/L), so a
 * trace whose median is below 25 and whose highest reading is below 35 cannot be mg/dL (nor can a meter
 * log, see `UNIT_CHECK_MIN_READINGS`). Returns the median and maximum when it looks so (at least
 * `UNIT_CHECK_MIN_READINGS` readings), else undefined.
 */
export function mmolLike(readings: readonly number[]): { median: number; max: number } | undefined {
  const v = readings.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length < UNIT_CHECK_MIN_READINGS) return undefined;
  const median = v[Math.floor(v.length / 2)] as number;
  const max = v[v.length - 1] as number;
  return median < 25 && max < 35 ? { median, max } : undefined;
}

/**
 * Whether readings said to be mmol/L look like mg/dL (the mirror of `mmolLike`): a CGM reads 2.2-22.2
 * mmol/L and a meter at most 33.3 mmol/L (600 mg/dL), so a trace whose median is above 25 mmol/L (450
 * mg/dL, above any CGM's range) and whose highest reading is above 35 mmol/L (630 mg/dL, above any
 * meter's) cannot be mmol/L at any length, while mg/dL data (median ~100-180, highest ~250-400) always
 * is so. Returns the median and maximum when it looks so (at least `UNIT_CHECK_MIN_READINGS` readings),
 * else undefined.
 */
export function mgdlLike(readings: readonly number[]): { median: number; max: number } | undefined {
  const v = readings.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length < UNIT_CHECK_MIN_READINGS) return undefined;
  const median = v[Math.floor(v.length / 2)] as number;
  const max = v[v.length - 1] as number;
  return median > 25 && max > 35 ? { median, max } : undefined;
}

/**
 * The glucose values (mg/dL) a reading can have: CGMs report 40-400 mg/dL (LO/HI outside), meters about
 * 10-600 and laboratory plasma glucose rarely exceeds 1000 even in a hyperosmolar crisis. A value outside
 * is a unit mistake or a corrupt row, never a glucose level.
 */
export const GLUCOSE_RANGE_MG_DL: readonly [number, number] = Object.freeze([10, 1000] as [number, number]);

/**
 * Refuses (`CgmCsvError` with the line) the first reading outside `GLUCOSE_RANGE_MG_DL` once converted
 * from `unit`; missing readings (NaN) pass.
 */
export function checkGlucoseRange(rows: readonly CgmRow[], unit: GlucoseUnit): void {
  const [lo, hi] = GLUCOSE_RANGE_MG_DL;
  const scale = unit === 'mg/dL' ? 1 : MG_DL_PER_MMOL_L;
  for (const r of rows) {
    const mgdl = r.gl * scale;
    if (!(mgdl < lo || mgdl > hi)) continue;
    const range = unit === 'mg/dL' ? `${lo}-${hi} mg/dL` : `${(lo / MG_DL_PER_MMOL_L).toFixed(2)}-${(hi / MG_DL_PER_MMOL_L).toFixed(1)} mmol/L (${lo}-${hi} mg/dL)`;
    const hint = unit === 'mg/dL' ? (mgdl < lo ? '; if the file is in mmol/L give --units mmol/L' : '') : mgdl > hi ? '; if the file is in mg/dL leave out --units mmol/L' : '';
    throw new CgmCsvError(r.line, `glucose ${r.gl} ${unit} is outside ${range}, what any glucose meter or CGM can report: fix or remove the row${hint}`);
  }
}

/**
 * Rows grouped by subject id (first-seen order), each as a trace sorted by time without missing values or
 * duplicate times (an exact duplicate row of `parseCgmCsv` is one reading; it refuses conflicting ones).
 */
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
