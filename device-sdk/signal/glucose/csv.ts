/**
 * CGM traces as CSV text with the columns `id,time,gl` (GlucoBench layout: quoted or bare fields, a
 * quoted field may hold commas; a header line, LF, CRLF or CR line ends). Strict about what a reading is, because a
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

/**
 * A CGM CSV that cannot be read as glucose readings. `line` is the offending line (1-based), `otherLine`
 * the line it conflicts with, `byteOffset` the offending byte (0-based) when the bytes are not UTF-8 text.
 */
export class CgmCsvError extends MedgeError {
  readonly line: number;
  readonly otherLine: number | undefined;
  readonly byteOffset: number | undefined;
  /** The subject id of the refused row, when the refusal is about one subject's readings (it is in the message too). */
  readonly subject: string | undefined;
  constructor(line: number, message: string, otherLine?: number, byteOffset?: number, subject?: string) {
    super('decode', `line ${line}: ${message}`);
    this.line = line;
    this.otherLine = otherLine;
    this.byteOffset = byteOffset;
    this.subject = subject;
  }
}

/** The most characters of a field or line an error message quotes. */
const SHOWN_MAX = 60;

/**
 * `s` quoted for an error message: at most `SHOWN_MAX` characters, control characters (C0, DEL, C1),
 * replacement characters and unpaired surrogates escaped, so that a binary file does not write raw bytes
 * to the terminal.
 */
export function shown(s: string): string {
  const cut = s.length > SHOWN_MAX ? s.slice(0, SHOWN_MAX) : s;
  const quoted = JSON.stringify(cut).replace(/[\u007f-\u009f\ufffd\ud800-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > SHOWN_MAX ? `${quoted}... (${s.length} characters)` : quoted;
}

/** Offset of the first byte of `bytes` that does not start or continue a valid UTF-8 sequence, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    // Continuation bytes and the minimum code point of a 2-, 3- or 4-byte sequence (no overlong forms).
    const [need, min] = c >= 0xc2 && c <= 0xdf ? [1, 0x80] : c >= 0xe0 && c <= 0xef ? [2, 0x800] : c >= 0xf0 && c <= 0xf4 ? [3, 0x10000] : [0, 0];
    if (need === 0 || i + need >= bytes.length) return i;
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const x = bytes[i + k] as number;
      if ((x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < offset; i = bytes.indexOf(0x0a, i + 1)) line++;
  return line;
}

/**
 * The most bytes of a CGM CSV file `decodeCgmCsv` reads: the longest string V8 can hold (2^29 - 24
 * characters, about 512 MiB; a UTF-8 file of this many bytes decodes to at most as many characters).
 * Beyond it decoding threw a bare "Cannot create a string longer than 0x1fffffe8 characters".
 */
export const CGM_CSV_MAX_BYTES = 0x1fffffe8;

/**
 * The error for a CGM CSV file of `fileBytes` bytes, more than `CGM_CSV_MAX_BYTES`: `head` is the file or at
 * least its first `CGM_CSV_MAX_BYTES` bytes (a caller that knows the size need not read the rest, and cannot
 * read a file over 2 GiB in one piece), for the line where the limit falls.
 */
export function cgmCsvTooLarge(head: Uint8Array, fileBytes: number): CgmCsvError {
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  return new CgmCsvError(
    lineAt(head, CGM_CSV_MAX_BYTES),
    `the file is ${mib(fileBytes)} (${fileBytes} bytes); medge reads CGM CSV files of up to ${mib(CGM_CSV_MAX_BYTES)} (${CGM_CSV_MAX_BYTES} bytes), which ends on this line: split the file (by subject, or by date), each part with the header line`,
    undefined,
    CGM_CSV_MAX_BYTES,
  );
}

/**
 * The text of a CGM CSV file: UTF-8 (a byte-order mark is dropped). A file larger than `CGM_CSV_MAX_BYTES`
 * is refused naming the line where the limit falls. Anything else is refused
 * (`CgmCsvError` with the line and byte offset) rather than decoded with replacement characters, which
 * would turn `José` (Latin-1 0xE9) and `Josè` (0xE8) into one subject `Jos\ufffd`: a NUL byte (a binary
 * file, or UTF-16), a UTF-16 byte-order mark, or a byte that is not UTF-8 (Latin-1 or Windows-1252 text).
 */
export function decodeCgmCsv(bytes: Uint8Array): string {
  if (bytes.length > CGM_CSV_MAX_BYTES) throw cgmCsvTooLarge(bytes, bytes.length);
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  if (utf16) throw new CgmCsvError(1, 'the file is UTF-16 text (it starts with a UTF-16 byte-order mark); medge reads UTF-8: re-save it as UTF-8, e.g. iconv -f utf-16 -t utf-8 IN.csv > OUT.csv', undefined, 0);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new CgmCsvError(lineAt(bytes, nul), `a NUL byte at byte offset ${nul}: this is not a CSV text file (binary data, or UTF-16 text without a byte-order mark); give the CGM export as UTF-8 CSV text`, undefined, nul);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const at = firstInvalidUtf8(bytes);
    const b = bytes[at] as number;
    const latin1 = b >= 0xa0 ? ` (in Latin-1 it would be ${JSON.stringify(String.fromCharCode(b))})` : '';
    throw new CgmCsvError(
      lineAt(bytes, at),
      `byte 0x${b.toString(16).toUpperCase().padStart(2, '0')} at byte offset ${at} is not UTF-8${latin1}: the file is in another encoding (Latin-1 or Windows-1252, as older exports write); medge reads UTF-8 only, so that no two subject ids or values are read as the same: re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 IN.csv > OUT.csv`,
      undefined,
      at,
    );
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
  if (/^\d{9,10}(?:\.\d*)?$/.test(time)) return `time ${shown(time)} looks like epoch seconds; medge reads epoch milliseconds: multiply by 1000`;
  if (/^\d{12,13}\.\d*$/.test(time)) return `time ${shown(time)} is epoch milliseconds with a fraction: write whole milliseconds`;
  // Forms that spreadsheets and meter software write; refused because day and month order (and the hour of a 12-hour clock) would be a guess.
  const forms: string[] = [];
  if (/^\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?:[\sTt]|$)/.test(time)) forms.push('a two-digit year (which number is the year, and which the day, is a guess: 23-01-15 may be 2023-01-15 or 23 January 2015)');
  else if (/^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:\s|$)/.test(time)) forms.push('a date with the year last (day and month order depend on the locale: 1/2/2023 is 1 February or 2 January)');
  else if (/^\d{4}[/.]\d{1,2}[/.]\d{1,2}(?:\s|$)/.test(time)) forms.push('slashes or dots in the date');
  if (/\d\s*[AaPp]\.?[Mm]\.?$/.test(time)) forms.push('a 12-hour clock (AM/PM)');
  if (forms.length > 0) return `unreadable time ${shown(time)}: ${forms.join(' and ')}; ${TIME_FORMAT}`;
  return `unreadable time ${shown(time)}: ${TIME_FIX}`;
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
 * The lines of `text` without building an array of them (a CGM export can have millions). A line ends in
 * LF, CRLF or a lone CR (what "CSV (Macintosh)" exports of spreadsheets write: read as one line, the whole
 * file was refused as a header without the columns).
 */
function* linesOf(text: string): Generator<string> {
  let lf = text.indexOf('\n');
  let cr = text.indexOf('\r');
  for (let start = 0; start <= text.length; ) {
    if (lf >= 0 && lf < start) lf = text.indexOf('\n', start);
    if (cr >= 0 && cr < start) cr = text.indexOf('\r', start);
    const end = Math.min(lf < 0 ? text.length : lf, cr < 0 ? text.length : cr);
    yield text.slice(start, end);
    start = end + (end === cr && end + 1 === lf ? 2 : 1);
  }
}

/** How often (lines) `parseCgmCsv` calls `onProgress`. */
const PROGRESS_LINES = 1 << 16;

export interface CgmCsvParseOptions {
  /** Called every 65,536 lines with the line number and the share of the text read (0-1), for a person waiting on a long file. */
  onProgress?: (line: number, fraction: number) => void;
}

/** Field separators other than the comma that spreadsheets and meter software write, by name. */
const OTHER_SEPARATORS: readonly (readonly [string, string])[] = Object.freeze([
  [';', 'semicolons (as spreadsheets in locales with a decimal comma write)'],
  ['\t', 'tabs'],
  ['|', 'vertical bars'],
] as const);

/** Why a header without the columns may still hold them: they are separated by something other than commas. */
function separatorHint(headerLine: string): string {
  const names = (sep: string) => headerLine.split(sep).map((h) => unquote(h).toLowerCase());
  const found = OTHER_SEPARATORS.find(([sep]) => COLUMNS.every((c) => names(sep).includes(c)));
  return found === undefined ? '' : `: its fields are separated by ${found[1]}; medge reads comma-separated files: export the file with commas between fields (and decimal points in numbers)`;
}

/** The columns `parseCgmCsv` reads. */
const COLUMNS = ['id', 'time', 'gl'] as const;

/**
 * Parses the CSV text; throws `CgmCsvError` naming the line on a missing or repeated column, an
 * unreadable time, times with and without a UTC offset in one file, an unreadable, non-positive or
 * non-finite glucose value, or a second, different reading of a subject at the same time.
 */
export function parseCgmCsv(text: string, options: CgmCsvParseOptions = {}): CgmRow[] {
  const lines = linesOf(text);
  const onProgress = options.onProgress;
  const first = lines.next();
  const headerLine = first.done === true ? '' : first.value;
  const header = splitFields(headerLine).map((h) => unquote(h).toLowerCase());
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new CgmCsvError(1, `the header must name the columns id,time,gl (got ${shown(headerLine)})${separatorHint(headerLine)}`);
    // A second column of the same name would be silently ignored (id,time,gl,gl: which gl is the reading?).
    const again = header.indexOf(name, i + 1);
    if (again >= 0) throw new CgmCsvError(1, `the header names the column ${name} twice (columns ${i + 1} and ${again + 1} of ${shown(headerLine)}): medge would read the first and ignore the other; keep one ${name} column (rename or remove the other)`);
    return i;
  };
  const [ci, ct, cg] = COLUMNS.map(col) as [number, number, number];
  const rows: CgmRow[] = [];
  // Per subject, the first row at each time, to find conflicting duplicates; one id string per subject.
  const seen = new Map<string, Map<number, CgmRow>>();
  const ids = new Map<string, string>();
  // The first row's time form (with a UTC offset or epoch ms, or local without one): all rows must share it.
  let form: { zoned: boolean; line: number; time: string } | undefined;
  let n = 1;
  let chars = headerLine.length + 1;
  for (const line of lines) {
    n++;
    chars += line.length + 1;
    if (onProgress !== undefined && n % PROGRESS_LINES === 0) onProgress(n, Math.min(1, chars / text.length));
    if (line.trim() === '') continue;
    const f = splitFields(line);
    if (f.length !== header.length) {
      // An odd number of double quotes with the fields miscounted: a quoted field runs on past the line end (RFC 4180
      // allows a line break inside quotes), or a stray quote swallowed the commas after it.
      if (((line.match(/"/g)?.length ?? 0) & 1) === 1) {
        throw new CgmCsvError(
          n,
          `expected ${header.length} fields as in the header, got ${f.length}: a double quote opens a field that does not close on this line (${shown(line)}), a quoted field holding a line break or a stray quote; medge reads one reading per line: remove line breaks and stray quotes from the fields`,
        );
      }
      const hint =
        f.length === header.length + 1
          ? ': one field too many, which is what a decimal comma makes of a value (5,3 for 5.3, as exports in locales with a decimal comma write it, often with fields separated by semicolons); write decimal points (5.3) and separate fields with commas'
          : '';
      throw new CgmCsvError(n, `expected ${header.length} fields as in the header, got ${f.length}${hint}`);
    }
    const time = unquote(f[ct] as string);
    const t = parseCgmTime(time);
    if (!Number.isFinite(t)) throw new CgmCsvError(n, timeProblem(time));
    const zoned = hasOffset(time);
    if (form === undefined) form = { zoned, line: n, time };
    else if (form.zoned !== zoned) {
      const [withOffset, without] = zoned ? [`${shown(time)} here`, `${shown(form.time)} on line ${form.line}`] : [`${shown(form.time)} on line ${form.line}`, `${shown(time)} here`];
      throw new CgmCsvError(
        n,
        `times with and without a UTC offset in one file (${withOffset} fixes its instant, ${without} is a local time of an unknown zone, read as UTC): mixing them shifts readings by the offset and reorders them; export every time in one form, all with a UTC offset (2014-02-03T03:47:12+03:00, Z or epoch milliseconds) or all without`,
        form.line,
      );
    }
    const g = unquote(f[cg] as string);
    const missing = MISSING.has(g.toUpperCase());
    if (OUT_OF_RANGE_MARK.test(g)) {
      throw new CgmCsvError(
        n,
        `unreadable glucose ${shown(g)}: a CGM writes Low/High for a reading outside its range, not a number; replace it with the sensor's limit (a Dexcom's: Low 40, High 400 mg/dL; 2.2 and 22.2 mmol/L), or NA for a missing reading`,
      );
    }
    if (!missing && !DECIMAL.test(g)) throw new CgmCsvError(n, `unreadable glucose ${shown(g)}: write a decimal number, or NA (or nothing) for a missing reading`);
    const gl = missing ? Number.NaN : Number(g);
    if (!missing && !Number.isFinite(gl)) throw new CgmCsvError(n, `glucose ${shown(g)} is not a finite number: no device reports it; fix or remove the row`);
    if (gl <= 0) throw new CgmCsvError(n, `glucose ${shown(g)} is not positive: a glucose reading is > 0; write NA (or nothing) for a missing reading`);
    const rawId = unquote(f[ci] as string);
    let id = ids.get(rawId);
    if (id === undefined) ids.set(rawId, (id = rawId));
    const row: CgmRow = { id, time, t, gl, line: n };
    let atTime = seen.get(id);
    if (atTime === undefined) seen.set(id, (atTime = new Map()));
    const earlier = atTime.get(t);
    if (earlier === undefined) atTime.set(t, row);
    else if (!Object.is(earlier.gl, gl)) {
      const v = (x: number) => (Number.isNaN(x) ? 'NA' : String(x));
      // Without an offset the likely cause is local time: the hour after the autumn clock change (or
      // after time-zone travel) repeats the times of the hour before. Either reading may be the right one.
      const cause = zoned
        ? 'remove the wrong one of the two rows'
        : 'likely cause: an export in local time without a UTC offset repeats an hour at the autumn clock change or after time-zone travel; export the times with a UTC offset (2024-10-27T02:30:00+01:00), or remove one of the two rows';
      throw new CgmCsvError(
        n,
        `subject ${shown(row.id)} has two different readings at ${shown(time)}: ${v(gl)} here and ${v(earlier.gl)} on line ${earlier.line}; ${cause} (medge does not guess which is right; an exact duplicate row is read once)`,
        earlier.line,
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
 * The fastest glucose change (mg/dL per minute) `unitMix` takes for a real one: blood glucose changes by at
 * most about 3-5 mg/dL/min (CGM rate arrows top out at 3); a step faster than this is not glucose.
 */
export const MAX_GLUCOSE_RATE_MG_DL_PER_MIN = 10;

/** A reading that can only be in the other unit than its file's, and why (see `unitMix`). */
export interface UnitMix {
  row: CgmRow;
  /** The subject's reading that shows it (a neighbour, or its first reading in the file's unit). */
  other: CgmRow;
  reason: string;
  /** What to do, when it is not splitting the file by unit (the reading's unit is in doubt, not known). */
  fix?: string;
}

/** Throws `CgmCsvError` at the first row of a subject whose readings mix the units (`unitMix`), naming the fix. */
export function checkUnitMix(rows: readonly CgmRow[], unit: GlucoseUnit): void {
  const mix = unitMix(rows, unit);
  if (!mix) return;
  const other = unit === 'mg/dL' ? 'mmol/L' : 'mg/dL';
  throw new CgmCsvError(
    mix.row.line,
    `subject ${shown(mix.row.id)}: ${mix.reason}: ${mix.fix ?? `the readings mix mg/dL and mmol/L (read as ${unit}, a ${other} reading is a wrong clinical number); split the file so that each has one unit and give --units ${other} for the ${other} one, or convert these rows to ${unit}`}`,
    mix.other.line,
    undefined,
    mix.row.id,
  );
}

/**
 * The first row (in file order) of a subject whose readings mix mg/dL and mmol/L although the file is read
 * as `unit`, or undefined. Whole-file detection (`mmolLike`, `mgdlLike`) misses a unit change inside a
 * file (220 mg/dL, then 12.2 for the same in mmol/L, read as a severe hypo) and a subject in the other
 * unit next to others. Per subject:
 *
 * - all its readings look like the other unit (`mmolLike` / `mgdlLike` of its readings);
 * - in mg/dL, a reading below `EITHER_UNIT_BELOW` next to readings above it that is written with a
 *   fraction while those are whole numbers (meters and CGMs report whole mg/dL; mmol/L is written with a
 *   decimal; a file converted to mg/dL with decimals is not judged by fractions), or that is reached
 *   from (or left to) its neighbour faster than `MAX_GLUCOSE_RATE_MG_DL_PER_MIN` while, read as mmol/L, it
 *   continues it. Real mg/dL traces pass: CGMs report 39/40 and up, and a meter's real severe low is a whole
 *   number reached at a physiological rate;
 * - in mg/dL, a reading below `EITHER_UNIT_BELOW` that no reading of the subject of `EITHER_UNIT_BELOW` or more
 *   shows to be mg/dL: the nearest such reading before and after it (lows next to it are in the same doubt,
 *   so they are no evidence) must be reachable from it as mg/dL and not as mmol/L at
 *   `MAX_GLUCOSE_RATE_MG_DL_PER_MIN` (a meter's 28 mg/dL 20 min after 90 passes: 504 mg/dL cannot follow 90
 *   so soon). Without that, one or two readings of 12 in a subject's 300 readings around 110 (a meter's mmol/L
 *   results merged into a mg/dL export, days apart from the trace) would each be a severe hypo of 12 mg/dL;
 * - in mmol/L, a reading of `EITHER_UNIT_BELOW` or more next to readings below it: above any meter's 33.3
 *   mmol/L, it can only be mg/dL.
 */
export function unitMix(rows: readonly CgmRow[], unit: GlucoseUnit): UnitMix | undefined {
  const bySubject = new Map<string, CgmRow[]>();
  for (const r of rows) {
    if (!Number.isFinite(r.gl)) continue;
    let list = bySubject.get(r.id);
    if (list === undefined) bySubject.set(r.id, (list = []));
    list.push(r);
  }
  let found: UnitMix | undefined;
  const keep = (m: UnitMix) => {
    if (found === undefined || m.row.line < found.row.line) found = m;
  };
  const other = unit === 'mg/dL' ? 'mmol/L' : 'mg/dL';
  for (const [, list] of bySubject) {
    const all = list.map((r) => r.gl);
    const looks = unit === 'mg/dL' ? mmolLike(all) : mgdlLike(all);
    if (looks) {
      keep({ row: list[0] as CgmRow, other: list[0] as CgmRow, reason: `all readings of this subject look like ${other} (median ${looks.median}, highest ${looks.max})` });
      continue;
    }
    const low = list.filter((r) => r.gl < EITHER_UNIT_BELOW);
    if (low.length === 0 || low.length === list.length) continue;
    if (unit === 'mmol/L') {
      const high = list.find((r) => r.gl >= EITHER_UNIT_BELOW) as CgmRow;
      keep({ row: high, other: low[0] as CgmRow, reason: `${high.gl} is above any meter's 33.3 mmol/L, so it can only be ${other}, next to readings below ${EITHER_UNIT_BELOW}` });
      continue;
    }
    // Only where the subject's other readings are whole numbers: a file converted to mg/dL with decimals
    // (99.1, and 30.6 for a real 1.7 mmol/L) says nothing by its fractions.
    const wholeHighs = list.every((r) => r.gl < EITHER_UNIT_BELOW || Number.isInteger(r.gl));
    const fraction = wholeHighs ? low.find((r) => !Number.isInteger(r.gl)) : undefined;
    const firstHigh = list.find((r) => r.gl >= EITHER_UNIT_BELOW) as CgmRow;
    if (fraction) keep({ row: fraction, other: firstHigh, reason: `${fraction.gl} is written with a fraction below ${EITHER_UNIT_BELOW} (meters and CGMs report whole mg/dL; it is ${Math.round(fraction.gl * MG_DL_PER_MMOL_L)} mg/dL if mmol/L), next to readings of ${EITHER_UNIT_BELOW} mg/dL and more` });
    const trace = [...list].sort((a, b) => a.t - b.t || a.line - b.line);
    const rate = (a: number, b: number, minutes: number) => Math.abs(a - b) / minutes;
    for (let i = 1; i < trace.length; i++) {
      const [p, q] = [trace[i - 1] as CgmRow, trace[i] as CgmRow];
      const minutes = (q.t - p.t) / 60_000;
      if (minutes <= 0) continue;
      for (const [lowRow, highRow] of [[p, q], [q, p]] as const) {
        if (!(lowRow.gl < EITHER_UNIT_BELOW && highRow.gl >= EITHER_UNIT_BELOW)) continue;
        const mgdlRate = rate(highRow.gl, lowRow.gl, minutes);
        if (mgdlRate > MAX_GLUCOSE_RATE_MG_DL_PER_MIN && rate(highRow.gl, lowRow.gl * MG_DL_PER_MMOL_L, minutes) <= MAX_GLUCOSE_RATE_MG_DL_PER_MIN) {
          keep({
            row: lowRow,
            other: highRow,
            reason: `${lowRow.gl} next to ${highRow.gl} ${minutes} min ${lowRow === q ? 'before' : 'after'} (line ${highRow.line}) is a change of ${mgdlRate.toFixed(0)} mg/dL/min, which no glucose makes, but read as ${other} it is ${(lowRow.gl * MG_DL_PER_MMOL_L).toFixed(0)} mg/dL, continuing it`,
          });
        }
      }
    }
    const unconfirmed = unconfirmedLow(trace);
    if (unconfirmed) keep(unconfirmed);
  }
  return found;
}

/** A time difference (ms) as `45 min`, `6 h` or `3 days`. */
function apart(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes < 120 ? `${minutes} min` : minutes < 48 * 60 ? `${Math.round(minutes / 60)} h` : `${Math.round(minutes / 1440)} days`;
}

/**
 * The first reading (in file order) of a mg/dL subject's `trace` (sorted by time, with readings of
 * `EITHER_UNIT_BELOW` and more) below `EITHER_UNIT_BELOW` that the nearest of those readings before and after it
 * do not show to be mg/dL (see `unitMix`), or undefined.
 */
function unconfirmedLow(trace: readonly CgmRow[]): UnitMix | undefined {
  const high = (r: CgmRow | undefined) => r !== undefined && r.gl >= EITHER_UNIT_BELOW;
  const reachable = (from: number, to: number, minutes: number) => Math.abs(from - to) <= MAX_GLUCOSE_RATE_MG_DL_PER_MIN * minutes;
  let found: UnitMix | undefined;
  for (let i = 0; i < trace.length; i++) {
    const low = trace[i] as CgmRow;
    if (high(low) || (found !== undefined && found.row.line < low.line)) continue;
    let before = i - 1;
    while (before >= 0 && !high(trace[before])) before--;
    let after = i + 1;
    while (after < trace.length && !high(trace[after])) after++;
    const near = [trace[before], trace[after]].filter((r): r is CgmRow => r !== undefined);
    const confirmed = near.some((h) => {
      const minutes = Math.abs(h.t - low.t) / 60_000;
      return reachable(h.gl, low.gl, minutes) && !reachable(h.gl, low.gl * MG_DL_PER_MMOL_L, minutes);
    });
    if (confirmed) continue;
    const nearest = near.reduce((a, b) => (Math.abs(b.t - low.t) < Math.abs(a.t - low.t) ? b : a));
    found = {
      row: low,
      other: nearest,
      reason: `${low.gl} is a severe low of ${low.gl} mg/dL, or ${(low.gl * MG_DL_PER_MMOL_L).toFixed(0)} mg/dL in mmol/L, and no reading of this subject of ${EITHER_UNIT_BELOW} mg/dL or more near it tells which (the nearest, ${nearest.gl} at line ${nearest.line}, is ${apart(Math.abs(nearest.t - low.t))} ${nearest.t < low.t ? 'earlier' : 'later'}; a real low is reached from and left to readings around it at no more than ${MAX_GLUCOSE_RATE_MG_DL_PER_MIN} mg/dL/min)`,
      fix: `the readings may mix mg/dL and mmol/L (read as mg/dL, a mmol/L reading is a false severe hypo): convert it to mg/dL (x ${MG_DL_PER_MMOL_L}) if it is mmol/L, or write NA if its unit is not known; a real low that no reading near it shows can be analysed apart, in a file of its own with --units mg/dL`,
    };
  }
  return found;
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
  const bad = rows.find((r) => r.gl * scale < lo || r.gl * scale > hi);
  if (bad === undefined) return;
  const mgdl = bad.gl * scale;
  const range = unit === 'mg/dL' ? `${lo}-${hi} mg/dL` : `${(lo / MG_DL_PER_MMOL_L).toFixed(2)}-${(hi / MG_DL_PER_MMOL_L).toFixed(1)} mmol/L (${lo}-${hi} mg/dL)`;
  // Below the range in a mg/dL subject whose other readings are not in doubt, and a glucose level read as mmol/L:
  // a mmol/L reading mixed in, not a file in mmol/L (the whole-file hint would send the user the wrong way).
  const mixedIn = unit === 'mg/dL' && mgdl < lo && mgdl * MG_DL_PER_MMOL_L >= lo && rows.some((r) => r.id === bad.id && r.gl >= EITHER_UNIT_BELOW);
  const hint = mixedIn
    ? `; its other readings are ${EITHER_UNIT_BELOW} mg/dL or more: it looks like a mmol/L reading (${(mgdl * MG_DL_PER_MMOL_L).toFixed(0)} mg/dL) mixed in; convert it to mg/dL (x ${MG_DL_PER_MMOL_L}) or write NA`
    : unit === 'mg/dL'
      ? mgdl < lo
        ? '; if the file is in mmol/L give --units mmol/L'
        : ''
      : mgdl > hi
        ? '; if the file is in mg/dL leave out --units mmol/L'
        : '';
  throw new CgmCsvError(bad.line, `subject ${shown(bad.id)}: glucose ${bad.gl} ${unit} is outside ${range}, what any glucose meter or CGM can report: fix or remove the row${hint}`, undefined, undefined, bad.id);
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
