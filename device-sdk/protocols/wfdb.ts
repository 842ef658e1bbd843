/**
 * WFDB (PhysioNet WaveForm DataBase) codecs: the `.hea` header text, signal files in formats 16
 * and 212, and MIT-format annotation files (`.atr`, `.qrs`, ...). Pure functions, no I/O; the file
 * loader is `simulator/sources/wfdb-files.ts`.
 *
 * Sources: the WFDB Software Package (G. B. Moody, PhysioNet), `lib/signal.c` (readheader, r212,
 * w212, f212, getvec checksum), `lib/annot.c` (getann, putann), `lib/wfdbio.c` (wfdb_g16/g32),
 * `lib/ecgcodes.h`, `lib/ecgmap.h`; wfdb-python `wfdb/io/_header.py` (header grammar) and
 * `wfdb/io/annotation.py` (the `## time resolution` note).
 *
 * Decoders throw `DecodeError` and nothing else for bad bytes or text (codecs `wfdb-header`,
 * `wfdb-signal`, `wfdb-annotation`). Encoders throw `ConfigError` for values they cannot write.
 */
import { ConfigError, DecodeError } from '../errors.js';

export const WFDB_HEADER_CODEC = 'wfdb-header';
export const WFDB_SIGNAL_CODEC = 'wfdb-signal';
export const WFDB_ANNOTATION_CODEC = 'wfdb-annotation';

/** Sampling frequency assumed when a header gives none (signal.c DEFFREQ). */
export const WFDB_DEFAULT_FS = 250;
/**
 * Sampling frequencies a header may give, in Hz. WFDB itself only asks for a positive number; these
 * bounds refuse what can only be a typo or a damaged header. The low end keeps trend records
 * (vital-sign numerics sampled once a minute, 1/60 Hz) readable; the high end is well above the
 * fastest biosignal recordings (tens of kHz) and keeps readers that size buffers by the rate from
 * asking for gigabytes (the ECG pipeline keeps 2.5 s of history per signal: at the 1 GHz of a
 * mistyped header that is 2.5 billion samples per buffer).
 */
export const WFDB_FS_RANGE: readonly [number, number] = Object.freeze([0.001, 100_000] as [number, number]);
/** ADC units per physical unit used for a signal whose gain is 0 or missing, i.e. uncalibrated (wfdb.h WFDB_DEFGAIN). */
export const WFDB_DEFAULT_GAIN = 200;
/** Signal formats a header may name (signal.c isfmt). */
export const WFDB_FORMATS: readonly number[] = Object.freeze([0, 8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524]);
/** Signal formats `decodeSignals` / `encodeSignals` implement. */
export const WFDB_SIGNAL_FORMATS = [16, 212] as const;
export type WfdbSignalFormat = (typeof WFDB_SIGNAL_FORMATS)[number];

// ---------------------------------------------------------------------------------------------
// Header (.hea)
// ---------------------------------------------------------------------------------------------

/** One signal line of a header. Fields that WFDB defaults are resolved here (see each comment). */
export interface WfdbSignalSpec {
  /** Signal file name, relative to the header's directory. Signals sharing a file are interleaved in it. */
  fileName: string;
  /** Storage format number (one of `WFDB_FORMATS`). */
  format: number;
  /** Samples of this signal per frame (`212x2`); 1 when not given. */
  samplesPerFrame: number;
  /** Skew in samples (`:n`); 0 when not given. Kept, not applied: decoded samples are as stored. */
  skew: number;
  /** Bytes before the first sample in the file (`+n`); 0 when not given. */
  byteOffset: number;
  /** ADC units per physical unit. 0 (or missing) means uncalibrated; conversions then use `WFDB_DEFAULT_GAIN`. */
  adcGain: number;
  /** ADC value of physical zero: `gain(baseline)` when given, else `adcZero` (readheader). */
  baseline: number;
  /** Physical units (`/mV`) as written; undefined when not given (WFDB then assumes mV). */
  units?: string;
  /** ADC resolution in bits; defaults from the format when missing (212: 12, 16: 16). */
  adcResolution: number;
  /** ADC output for a 0 V input; 0 when missing. */
  adcZero: number;
  /** Value of the first sample; `adcZero` when missing. */
  initialValue: number;
  /**
   * 16-bit checksum of all samples of the signal as written in the header (signed, -32768..32767
   * by convention); undefined when absent, in which case neither checksum nor length is checked.
   */
  checksum?: number;
  /** Block size in bytes; 0 when missing. */
  blockSize: number;
  /** Signal description (rest of the line, e.g. `MLII`); undefined when absent. */
  description?: string;
}

export interface WfdbHeader {
  recordName: string;
  /** Frames per second per signal (`WFDB_DEFAULT_FS` when missing). */
  fs: number;
  /** Counter frequency (`fs/counter`), when given. */
  counterFrequency?: number;
  /** Base counter value (`fs/counter(base)`), when given. */
  baseCounter?: number;
  /** Frames in the record (samples per signal when every signal has one sample per frame); 0 = unknown. */
  nSamples: number;
  /** Base time as written (`HH:MM:SS[.sss]`), when given. */
  baseTime?: string;
  /** Base date as written (`DD/MM/YYYY`), when given. */
  baseDate?: string;
  /** One entry per signal line; the record line's signal count is `signals.length`. */
  signals: WfdbSignalSpec[];
  /** Text of each `#` line, in order, without the `#` and one following space. */
  comments: string[];
}

const INT = /^[+-]?\d+$/;
const FLOAT_TEXT = '[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?';
const FLOAT = new RegExp(`^${FLOAT_TEXT}$`);
const FS_FIELD = new RegExp(`^(${FLOAT_TEXT})(?:/(${FLOAT_TEXT})(?:\\((${FLOAT_TEXT})\\))?)?$`);
const FORMAT_FIELD = /^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$/;
const GAIN_FIELD = new RegExp(`^(${FLOAT_TEXT})(?:\\(([+-]?\\d+)\\))?(?:/(\\S*))?$`);
const BASE_TIME = /^\d+(?::\d+){0,2}(?:\.\d*)?$/;
const BASE_DATE = /^\d{1,2}\/\d{1,2}\/\d{1,4}$/;
const NAME = /^[^\s/]+$/;
const FILE_NAME = /^\S+$/;

const headerFail = (message: string): never => {
  throw new DecodeError(WFDB_HEADER_CODEC, message);
};

function defaultResolution(format: number): number {
  switch (format) {
    case 8:
    case 80:
    case 508:
      return 8;
    case 16:
    case 61:
    case 160:
    case 516:
      return 16;
    case 24:
    case 524:
      return 24;
    case 32:
      return 32;
    case 310:
    case 311:
      return 10;
    default:
      return 12; // WFDB_DEFRES, and format 212
  }
}

function parseIntField(text: string, what: string, line: number, min = -Infinity): number {
  if (!INT.test(text)) return headerFail(`line ${line}: ${what} ${JSON.stringify(text)} is not an integer`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) return headerFail(`line ${line}: ${what} ${text} is out of range`);
  if (value < min) return headerFail(`line ${line}: ${what} ${text} must be at least ${min}`);
  return value + 0; // -0 -> 0
}

function parseFloatText(text: string, what: string, line: number): number {
  const value = FLOAT.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) return headerFail(`line ${line}: ${what} ${JSON.stringify(text)} is not a finite number`);
  return value + 0; // -0 -> 0
}

/** Splits a line into whitespace-separated tokens with their start offsets. */
function tokenize(line: string): { text: string; start: number }[] {
  const tokens: { text: string; start: number }[] = [];
  const re = /[^ \t]+/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) tokens.push({ text: m[0], start: m.index });
  return tokens;
}

function parseRecordLine(line: string, lineNo: number): { header: Omit<WfdbHeader, 'signals' | 'comments'>; nSignals: number } {
  const tokens = tokenize(line).map((t) => t.text);
  const [nameField, nsigField, fsField, nSamplesField, baseTime, baseDate, ...extra] = tokens;
  if (nameField === undefined || nsigField === undefined) return headerFail(`line ${lineNo}: record line needs at least a name and a signal count`);
  if (nameField.includes('/')) {
    return headerFail(`line ${lineNo}: ${JSON.stringify(nameField)} is a multi-segment record (name/segments); only single-segment records are supported`);
  }
  if (!NAME.test(nameField)) return headerFail(`line ${lineNo}: invalid record name ${JSON.stringify(nameField)}`);
  const nSignals = parseIntField(nsigField, 'signal count', lineNo, 0);
  const header: Omit<WfdbHeader, 'signals' | 'comments'> = { recordName: nameField, fs: WFDB_DEFAULT_FS, nSamples: 0 };
  if (fsField !== undefined) {
    const m = FS_FIELD.exec(fsField);
    if (m === null) return headerFail(`line ${lineNo}: sampling frequency ${JSON.stringify(fsField)} is not fs[/counter[(base)]]`);
    header.fs = parseFloatText(m[1] ?? '', 'sampling frequency', lineNo);
    if (!(header.fs > 0)) return headerFail(`line ${lineNo}: sampling frequency ${fsField} must be positive`);
    if (header.fs < WFDB_FS_RANGE[0] || header.fs > WFDB_FS_RANGE[1]) {
      return headerFail(`line ${lineNo}: sampling frequency ${m[1]} Hz is outside ${WFDB_FS_RANGE[0]}..${WFDB_FS_RANGE[1]} Hz; the header looks damaged: check its record line (name, signal count, frequency, sample count)`);
    }
    if (m[2] !== undefined) {
      header.counterFrequency = parseFloatText(m[2], 'counter frequency', lineNo);
      if (!(header.counterFrequency > 0)) return headerFail(`line ${lineNo}: counter frequency ${m[2]} must be positive`);
    }
    if (m[3] !== undefined) header.baseCounter = parseFloatText(m[3], 'base counter', lineNo);
  }
  if (nSamplesField !== undefined) header.nSamples = parseIntField(nSamplesField, 'sample count', lineNo, 0);
  if (baseTime !== undefined) {
    if (!BASE_TIME.test(baseTime)) return headerFail(`line ${lineNo}: base time ${JSON.stringify(baseTime)} is not HH:MM:SS`);
    header.baseTime = baseTime;
  }
  if (baseDate !== undefined) {
    if (!BASE_DATE.test(baseDate)) return headerFail(`line ${lineNo}: base date ${JSON.stringify(baseDate)} is not DD/MM/YYYY`);
    header.baseDate = baseDate;
  }
  if (extra.length > 0) return headerFail(`line ${lineNo}: unexpected ${JSON.stringify(extra.join(' '))} after the base date`);
  return { header, nSignals };
}

function parseSignalLine(line: string, lineNo: number): WfdbSignalSpec {
  const tokens = tokenize(line);
  const field = (i: number): string | undefined => tokens[i]?.text;
  const fileName = field(0) ?? '';
  const formatField = field(1);
  if (formatField === undefined) return headerFail(`line ${lineNo}: signal line needs at least a file name and a format`);
  const fm = FORMAT_FIELD.exec(formatField);
  if (fm === null) return headerFail(`line ${lineNo}: format ${JSON.stringify(formatField)} is not format[xspf][:skew][+offset]`);
  const format = parseIntField(fm[1] ?? '', 'format', lineNo);
  if (!WFDB_FORMATS.includes(format)) return headerFail(`line ${lineNo}: unknown signal format ${format}; valid formats: ${WFDB_FORMATS.join(', ')}`);
  const samplesPerFrame = fm[2] === undefined ? 1 : parseIntField(fm[2], 'samples per frame', lineNo, 1);
  const skew = fm[3] === undefined ? 0 : parseIntField(fm[3], 'skew', lineNo, 0);
  const byteOffset = fm[4] === undefined ? 0 : parseIntField(fm[4], 'byte offset', lineNo, 0);

  let adcGain = 0;
  let baseline: number | undefined;
  let units: string | undefined;
  const gainField = field(2);
  if (gainField !== undefined) {
    const gm = GAIN_FIELD.exec(gainField);
    if (gm === null) return headerFail(`line ${lineNo}: gain ${JSON.stringify(gainField)} is not gain[(baseline)][/units]`);
    adcGain = parseFloatText(gm[1] ?? '', 'gain', lineNo);
    if (gm[2] !== undefined) baseline = parseIntField(gm[2], 'baseline', lineNo);
    if (gm[3] !== undefined && gm[3] !== '') units = gm[3];
  }
  const resField = field(3);
  const adcResolution = resField === undefined ? defaultResolution(format) : parseIntField(resField, 'ADC resolution', lineNo, 0);
  const zeroField = field(4);
  const adcZero = zeroField === undefined ? 0 : parseIntField(zeroField, 'ADC zero', lineNo);
  const initField = field(5);
  const initialValue = initField === undefined ? adcZero : parseIntField(initField, 'initial value', lineNo);
  const sumField = field(6);
  const checksum = sumField === undefined ? undefined : parseIntField(sumField, 'checksum', lineNo);
  const blockField = field(7);
  const blockSize = blockField === undefined ? 0 : parseIntField(blockField, 'block size', lineNo, 0);
  const descStart = tokens[8]?.start;
  const description = descStart === undefined ? undefined : line.slice(descStart).trim();

  const spec: WfdbSignalSpec = {
    fileName,
    format,
    samplesPerFrame,
    skew,
    byteOffset,
    adcGain,
    baseline: baseline ?? adcZero,
    adcResolution,
    adcZero,
    initialValue,
    blockSize,
  };
  if (units !== undefined) spec.units = units;
  if (checksum !== undefined) spec.checksum = checksum;
  if (description !== undefined) spec.description = description;
  return spec;
}

/**
 * Parses a single-segment header. Lines may end in LF or CRLF; a leading byte-order mark is dropped; blank lines are skipped; `#` lines
 * are kept in `comments`. Refuses multi-segment records (`name/n`), a signal count that does not
 * match the signal lines, unknown formats, malformed numbers, and signals that share a file but
 * not its format or block size (readheader: "error in specification of signal").
 */
export function parseHeader(text: string): WfdbHeader {
  if (typeof text !== 'string') return headerFail('header text is not a string');
  // A UTF-8 byte-order mark, as Windows editors write when a header is edited by hand: not part of the record name.
  const lines = (text.startsWith('\ufeff') ? text.slice(1) : text).split('\n');
  const comments: string[] = [];
  const signals: WfdbSignalSpec[] = [];
  let record: ReturnType<typeof parseRecordLine> | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (/[\r\0]/.test(line)) return headerFail(`line ${i + 1}: contains a carriage return or NUL inside the line`);
    const trimmed = line.trimStart();
    if (trimmed.startsWith('#')) {
      const body = trimmed.slice(1);
      comments.push(body.startsWith(' ') ? body.slice(1) : body);
      continue;
    }
    if (trimmed.trim() === '') continue;
    if (record === undefined) {
      record = parseRecordLine(line, i + 1);
    } else if (signals.length < record.nSignals) {
      signals.push(parseSignalLine(line, i + 1));
    } else {
      return headerFail(`line ${i + 1}: unexpected line after the ${record.nSignals} signal line(s): ${JSON.stringify(line.slice(0, 40))}`);
    }
  }
  if (record === undefined) return headerFail('no record line (the header is empty or only comments)');
  if (signals.length !== record.nSignals) {
    return headerFail(`record line announces ${record.nSignals} signal(s) but ${signals.length} signal line(s) follow`);
  }
  for (let s = 1; s < signals.length; s++) {
    const a = signals[s - 1] as WfdbSignalSpec;
    const b = signals[s] as WfdbSignalSpec;
    if (a.fileName === b.fileName && (a.format !== b.format || a.blockSize !== b.blockSize)) {
      return headerFail(`signals ${s - 1} and ${s} share ${a.fileName} but differ in format or block size`);
    }
  }
  return { ...record.header, signals, comments };
}

function headerValueError(field: string, value: unknown, problem: string, fix: string): never {
  throw new ConfigError(field, value, problem, fix);
}

function formatNumber(value: number, field: string): string {
  if (!Number.isFinite(value)) return headerValueError(field, value, 'is not a finite number', 'give a finite number');
  return String(value);
}

function formatInt(value: number, field: string, min = -Infinity): string {
  if (!Number.isSafeInteger(value) || value < min) return headerValueError(field, value, `is not an integer >= ${min}`, 'give an integer in range');
  return String(value);
}

/**
 * Writes a header in the standard layout (LF line ends, comments after the signal lines). Every
 * signal line carries gain(baseline), resolution, zero and initial value; checksum, block size and
 * description follow when a checksum is present. Inverse of `parseHeader` on its output.
 * Throws `ConfigError` for values the text format cannot hold.
 */
export function formatHeader(h: WfdbHeader): string {
  if (!NAME.test(h.recordName)) return headerValueError('recordName', h.recordName, 'is empty or contains whitespace or "/"', 'use letters, digits, "_" and "-"');
  let fs = formatNumber(h.fs, 'fs');
  if (!(h.fs > 0)) return headerValueError('fs', h.fs, 'must be positive', 'give the sampling frequency in Hz');
  if (h.fs < WFDB_FS_RANGE[0] || h.fs > WFDB_FS_RANGE[1]) {
    return headerValueError('fs', h.fs, `is outside ${WFDB_FS_RANGE[0]}..${WFDB_FS_RANGE[1]} Hz (WFDB_FS_RANGE), which parseHeader refuses`, 'give the sampling frequency in Hz');
  }
  if (h.counterFrequency !== undefined) {
    fs += `/${formatNumber(h.counterFrequency, 'counterFrequency')}`;
    if (h.baseCounter !== undefined) fs += `(${formatNumber(h.baseCounter, 'baseCounter')})`;
  } else if (h.baseCounter !== undefined) {
    return headerValueError('baseCounter', h.baseCounter, 'needs counterFrequency', 'set counterFrequency or drop baseCounter');
  }
  const recordFields = [h.recordName, String(h.signals.length), fs];
  if (h.baseDate !== undefined && h.baseTime === undefined) return headerValueError('baseDate', h.baseDate, 'needs baseTime', 'set baseTime');
  if (h.nSamples > 0 || h.baseTime !== undefined) recordFields.push(formatInt(h.nSamples, 'nSamples', 0));
  if (h.baseTime !== undefined) {
    if (!BASE_TIME.test(h.baseTime)) return headerValueError('baseTime', h.baseTime, 'is not HH:MM:SS[.sss]', 'write e.g. 08:30:00');
    recordFields.push(h.baseTime);
  }
  if (h.baseDate !== undefined) {
    if (!BASE_DATE.test(h.baseDate)) return headerValueError('baseDate', h.baseDate, 'is not DD/MM/YYYY', 'write e.g. 25/12/2020');
    recordFields.push(h.baseDate);
  }
  const lines = [recordFields.join(' ')];
  h.signals.forEach((s, i) => {
    const at = `signals[${i}]`;
    if (!FILE_NAME.test(s.fileName)) return headerValueError(`${at}.fileName`, s.fileName, 'is empty or contains whitespace', 'use a plain file name');
    if (!WFDB_FORMATS.includes(s.format)) return headerValueError(`${at}.format`, s.format, 'is not a WFDB format', `use one of ${WFDB_FORMATS.join(', ')}`);
    let fmt = String(s.format);
    if (s.samplesPerFrame !== 1) fmt += `x${formatInt(s.samplesPerFrame, `${at}.samplesPerFrame`, 1)}`;
    if (s.skew !== 0) fmt += `:${formatInt(s.skew, `${at}.skew`, 0)}`;
    if (s.byteOffset !== 0) fmt += `+${formatInt(s.byteOffset, `${at}.byteOffset`, 0)}`;
    let gain = `${formatNumber(s.adcGain, `${at}.adcGain`)}(${formatInt(s.baseline, `${at}.baseline`)})`;
    if (s.units !== undefined && s.units !== '') {
      if (!FILE_NAME.test(s.units)) return headerValueError(`${at}.units`, s.units, 'contains whitespace', 'use e.g. mV');
      gain += `/${s.units}`;
    }
    const fields = [
      s.fileName,
      fmt,
      gain,
      formatInt(s.adcResolution, `${at}.adcResolution`, 0),
      formatInt(s.adcZero, `${at}.adcZero`),
      formatInt(s.initialValue, `${at}.initialValue`),
    ];
    if (s.checksum !== undefined) {
      fields.push(formatInt(s.checksum, `${at}.checksum`), formatInt(s.blockSize, `${at}.blockSize`, 0));
      if (s.description !== undefined) {
        const d = s.description.trim();
        if (d !== s.description || d === '' || /[\r\n\0]/.test(d)) {
          return headerValueError(`${at}.description`, s.description, 'is empty, has surrounding whitespace or a line break', 'trim it to one line');
        }
        fields.push(d);
      }
    } else if (s.blockSize !== 0 || s.description !== undefined) {
      return headerValueError(`${at}.checksum`, s.checksum, 'is needed to write a block size or description (fields are positional)', 'set checksum (see checksum())');
    }
    lines.push(fields.join(' '));
  });
  h.comments.forEach((c, i) => {
    if (/[\r\n]/.test(c)) return headerValueError(`comments[${i}]`, c, 'contains a line break', 'split it into several comments');
    lines.push(`# ${c}`);
  });
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Signal files (.dat): formats 16 and 212
// ---------------------------------------------------------------------------------------------

const signalFail = (message: string): never => {
  throw new DecodeError(WFDB_SIGNAL_CODEC, message);
};

/** The stored value WFDB reads as "no sample" (getvec VFILL) for each format. */
export const WFDB_INVALID_SAMPLE: Readonly<Record<WfdbSignalFormat, number>> = Object.freeze({ 16: -32768, 212: -2048 });

function isSupportedFormat(format: number): format is WfdbSignalFormat {
  return (WFDB_SIGNAL_FORMATS as readonly number[]).includes(format);
}

/** Number of whole samples a format stores in `length` bytes (212: an odd last sample takes 2 bytes, f212). */
function samplesIn(format: WfdbSignalFormat, length: number): number {
  if (format === 16) return Math.floor(length / 2);
  return Math.floor(length / 3) * 2 + (length % 3 >= 2 ? 1 : 0);
}

/**
 * Decodes the signals stored in one signal file: those of `header.signals` whose `fileName` is
 * `fileName` (default: the first signal's file), interleaved frame by frame (each signal
 * contributing `samplesPerFrame` consecutive samples per frame), starting at the first such
 * signal's `byteOffset`. Returns one array per signal of that file, in header order.
 *
 * Format 16: little-endian two's-complement 16-bit. Format 212: pairs of 12-bit two's-complement
 * samples in 3 bytes, `s0 = b0 | (b1 & 0x0f) << 8`, `s1 = b2 | (b1 & 0xf0) << 4`, the pairing
 * running over the interleaved sample stream (signal.c r212).
 *
 * Decodes the whole frames present, at most `header.nSamples` when that is non-zero; the caller
 * compares lengths and checksums with the header (a short file is not a codec error). Samples are
 * raw ADC values, skew not applied; `WFDB_INVALID_SAMPLE` marks missing samples.
 * Throws `DecodeError` for a file no signal uses, formats other than 16 and 212, and signals
 * of one file with different formats.
 */
export function decodeSignals(bytes: Uint8Array, header: WfdbHeader, fileName?: string): Int16Array[] {
  if (!(bytes instanceof Uint8Array)) return signalFail('signal bytes are not a Uint8Array');
  const file = fileName ?? header.signals[0]?.fileName;
  const group = header.signals.filter((s) => s.fileName === file);
  const first = group[0];
  if (first === undefined) return signalFail(`no signal of record ${header.recordName} is stored in ${JSON.stringify(file)}`);
  const format = first.format;
  if (!isSupportedFormat(format)) return signalFail(`format ${format} of ${first.fileName} is not supported; supported formats: ${WFDB_SIGNAL_FORMATS.join(', ')}`);
  if (group.some((s) => s.format !== format)) return signalFail(`signals stored in ${first.fileName} have different formats`);
  const spf = group.map((s) => s.samplesPerFrame);
  if (spf.some((n) => !Number.isSafeInteger(n) || n < 1)) return signalFail(`samples per frame of ${first.fileName} must be integers >= 1`);
  if (!Number.isSafeInteger(first.byteOffset) || first.byteOffset < 0) return signalFail(`byte offset ${first.byteOffset} of ${first.fileName} is not an integer >= 0`);
  const frameSize = spf.reduce((a, b) => a + b, 0);
  const data = bytes.subarray(Math.min(first.byteOffset, bytes.length));
  let frames = Math.floor(samplesIn(format, data.length) / frameSize);
  if (header.nSamples > 0) frames = Math.min(frames, header.nSamples);
  const out = spf.map((n) => new Int16Array(frames * n));
  let k = 0; // index in the interleaved sample stream
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < out.length; j++) {
      const target = out[j] as Int16Array;
      const n = spf[j] as number;
      for (let s = 0; s < n; s++, k++) {
        let v: number;
        if (format === 16) {
          const p = k * 2;
          v = ((data[p] as number) | ((data[p + 1] as number) << 8)) << 16 >> 16;
        } else {
          const p = (k >> 1) * 3;
          v = (k & 1) === 0 ? (data[p] as number) | (((data[p + 1] as number) & 0x0f) << 8) : (data[p + 2] as number) | (((data[p + 1] as number) & 0xf0) << 4);
          if (v >= 2048) v -= 4096;
        }
        target[f * n + s] = v;
      }
    }
  }
  return out;
}

export interface WfdbEncodeSignalsOptions {
  /** Samples per frame of each signal (default 1 each); each signal holds frames x this many samples. */
  samplesPerFrame?: readonly number[];
}

/**
 * Interleaves `signals` into one signal file of `format` (inverse of `decodeSignals`). Format 212
 * takes values -2048..2047 and writes an odd last sample as 2 bytes (signal.c f212).
 * Throws `ConfigError` for other formats, mismatched lengths and out-of-range values.
 */
export function encodeSignals(signals: readonly Int16Array[], format: WfdbSignalFormat, options: WfdbEncodeSignalsOptions = {}): Uint8Array {
  if (!isSupportedFormat(format)) throw new ConfigError('format', format, 'is not a writable WFDB format', `use one of ${WFDB_SIGNAL_FORMATS.join(', ')}`);
  const spf = options.samplesPerFrame ?? signals.map(() => 1);
  if (spf.length !== signals.length || spf.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new ConfigError('samplesPerFrame', spf, `must hold one integer >= 1 per signal (${signals.length})`, 'give one entry per signal');
  }
  const frames = signals.length === 0 ? 0 : (signals[0] as Int16Array).length / (spf[0] as number);
  signals.forEach((s, j) => {
    if (!(s instanceof Int16Array)) throw new ConfigError(`signals[${j}]`, typeof s, 'is not an Int16Array', 'pass Int16Array samples');
    if (!Number.isInteger(frames) || s.length !== frames * (spf[j] as number)) {
      throw new ConfigError(`signals[${j}].length`, s.length, `does not match ${frames} frames x ${spf[j]} samples per frame`, 'give every signal the same number of frames');
    }
    if (format === 212) {
      for (let i = 0; i < s.length; i++) {
        const v = s[i] as number;
        if (v < -2048 || v > 2047) throw new ConfigError(`signals[${j}][${i}]`, v, 'does not fit format 212 (12 bits, -2048..2047)', 'use format 16 or rescale');
      }
    }
  });
  const frameSize = spf.reduce((a, b) => a + b, 0);
  const total = frames * frameSize;
  const out = new Uint8Array(format === 16 ? total * 2 : Math.floor(total / 2) * 3 + (total % 2) * 2);
  let k = 0;
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < signals.length; j++) {
      const src = signals[j] as Int16Array;
      const n = spf[j] as number;
      for (let s = 0; s < n; s++, k++) {
        const v = src[f * n + s] as number;
        if (format === 16) {
          out[k * 2] = v & 0xff;
          out[k * 2 + 1] = (v >> 8) & 0xff;
        } else {
          const p = (k >> 1) * 3;
          if ((k & 1) === 0) {
            out[p] = v & 0xff;
            out[p + 1] = (v >> 8) & 0x0f;
          } else {
            out[p + 1] = (out[p + 1] as number) | ((v >> 4) & 0xf0);
            out[p + 2] = v & 0xff;
          }
        }
      }
    }
  }
  return out;
}

/**
 * The WFDB checksum of one signal: the sum of all its samples mod 2^16, returned as a signed
 * 16-bit value (-32768..32767), the form headers carry (e.g. `-28574` in mitdb/102.hea). getvec
 * subtracts every sample from the header value and reports "checksum error" unless the result
 * is 0 mod 2^16, so compare with `((checksum(s) - expected) & 0xffff) === 0`.
 */
export function checksum(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum = (sum + (samples[i] as number)) & 0xffff;
  return sum >= 0x8000 ? sum - 0x10000 : sum;
}

/**
 * Physical values of one signal: `(adu - baseline) / gain`, with `WFDB_DEFAULT_GAIN` when the
 * gain is 0 (uncalibrated). Samples equal to the format's `WFDB_INVALID_SAMPLE` become NaN.
 */
export function toPhysical(samples: Int16Array, spec: WfdbSignalSpec): Float32Array {
  const gain = spec.adcGain === 0 ? WFDB_DEFAULT_GAIN : spec.adcGain;
  const invalid = isSupportedFormat(spec.format) ? WFDB_INVALID_SAMPLE[spec.format] : undefined;
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i] as number;
    out[i] = v === invalid ? NaN : (v - spec.baseline) / gain;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Annotation files (MIT format)
// ---------------------------------------------------------------------------------------------

/** Annotation codes (ecgcodes.h). Codes 42..49 are user-defined; 59..63 are pseudo-annotations of the file format. */
export const WFDB_ANNOTATION_CODES = Object.freeze({
  NOTQRS: 0,
  NORMAL: 1,
  LBBB: 2,
  RBBB: 3,
  ABERR: 4,
  PVC: 5,
  FUSION: 6,
  NPC: 7,
  APC: 8,
  SVPB: 9,
  VESC: 10,
  NESC: 11,
  PACE: 12,
  UNKNOWN: 13,
  NOISE: 14,
  ARFCT: 16,
  STCH: 18,
  TCH: 19,
  SYSTOLE: 20,
  DIASTOLE: 21,
  NOTE: 22,
  MEASURE: 23,
  PWAVE: 24,
  BBB: 25,
  PACESP: 26,
  TWAVE: 27,
  RHYTHM: 28,
  UWAVE: 29,
  LEARN: 30,
  FLWAV: 31,
  VFON: 32,
  VFOFF: 33,
  AESC: 34,
  SVESC: 35,
  LINK: 36,
  NAPC: 37,
  PFUS: 38,
  WFON: 39,
  WFOFF: 40,
  RONT: 41,
});
/** Largest annotation code WFDB defines a mnemonic slot for (ecgcodes.h ACMAX). */
export const WFDB_ACMAX = 49;
/** Largest code an annotation word can carry; 59..63 are SKIP, NUM, SUB, CHN, AUX. */
export const WFDB_MAX_ANNOTATION_CODE = 58;

// annot.c cstring[]: mnemonic of each code 0..ACMAX.
const MNEMONICS: readonly string[] = Object.freeze([
  ' ', 'N', 'L', 'R', 'a', 'V', 'F', 'J', 'A', 'S',
  'E', 'j', '/', 'Q', '~', '[15]', '|', '[17]', 's', 'T',
  '*', 'D', '"', '=', 'p', 'B', '^', 't', '+', 'u',
  '?', '!', '[', ']', 'e', 'n', '@', 'x', 'f', '(',
  ')', 'r', '[42]', '[43]', '[44]', '[45]', '[46]', '[47]', '[48]', '[49]',
]);
// ecgmap.h wfdb_qrs[]: codes that denote a QRS complex (a beat).
const QRS_CODES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 25, 30, 31, 34, 35, 38, 41]);

/** The mnemonic of an annotation code (annot.c annstr): `N`, `V`, `+`, ...; `[n]` for codes without one. */
export function annotationMnemonic(code: number): string {
  return MNEMONICS[code] ?? `[${code}]`;
}

/** Whether a code denotes a QRS complex (ecgmap.h isqrs): N L R a V F J A S E j / Q B ? ! e n f r. */
export function isQrsCode(code: number): boolean {
  return QRS_CODES.has(code);
}

export interface WfdbAnnotation {
  /** Absolute annotation time in ticks (after SKIPs): signal samples, or `timeResolution` ticks when the file has that note. */
  sample: number;
  /** Time in seconds, `sample / tickRate`; present when the tick rate is known. */
  time?: number;
  /** Annotation code (`WFDB_ANNOTATION_CODES`), 0..58. */
  code: number;
  /** `annotationMnemonic(code)`. */
  mnemonic: string;
  /**
   * Subtype, channel and number as the 10-bit fields of the file (0..1023). The C library stores
   * them in chars (subtyp and num signed, chan unsigned), so it reads 1023 as subtype -1.
   * `chan` and `num` carry over from the previous annotation unless changed (annot.c getann).
   */
  subtype: number;
  chan: number;
  num: number;
  /** Auxiliary text (rhythm labels such as `(N`, `(AFIB`), UTF-8, trailing NULs removed; absent when empty. */
  aux?: string;
}

/** What `encodeAnnotations` needs; a decoded `WfdbAnnotation` qualifies (`time` and `mnemonic` are ignored). */
export interface WfdbAnnotationInput {
  sample: number;
  code: number;
  subtype?: number;
  chan?: number;
  num?: number;
  aux?: string;
}

export interface WfdbAnnotationFile {
  annotations: WfdbAnnotation[];
  /** F of a leading `## time resolution: F` note (removed from `annotations`): ticks per second of `sample`. */
  timeResolution?: number;
  /** Ticks per second used for `time`: `timeResolution`, else the `fs` option; absent when neither is known. */
  tickRate?: number;
}

export interface WfdbAnnotationDecodeOptions {
  /** Sampling frequency of the record, for `time` when the file has no time-resolution note. */
  fs?: number;
}

export interface WfdbAnnotationEncodeOptions {
  /** Writes a leading `## time resolution: F` note: the `sample` values are ticks at F Hz. */
  timeResolution?: number;
}

const CODE_SHIFT = 10;
const DATA_MASK = 0x3ff;
const SKIP = 59;
const NUM = 60;
const SUB = 61;
const CHN = 62;
const AUX = 63;
const TIME_RESOLUTION_PREFIX = '## time resolution: ';
const TIME_RESOLUTION_NOTE = /^## time resolution: *([0-9.eE+-]+) *$/;
const auxDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
const auxEncoder = new TextEncoder();

const annotationFail = (message: string): never => {
  throw new DecodeError(WFDB_ANNOTATION_CODEC, message);
};

function checkRate(value: number | undefined, field: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new ConfigError(field, value, 'must be a positive finite number of Hz', 'give the rate in Hz, e.g. 360');
  }
}

/**
 * Decodes an MIT-format annotation file (annot.c getann): 16-bit little-endian words, code =
 * word >> 10, data = word & 0x3ff; an annotation word advances the time by its data; SKIP (59)
 * adds the signed 32-bit value that follows, stored as the high 16-bit word then the low one,
 * each little-endian (wfdbio.c wfdb_g32, "PDP-11" order); SUB (61) sets the subtype of the
 * preceding annotation, CHN (62) and NUM (60) its chan and num (which persist), AUX (63) attaches
 * `data` bytes of text padded to an even length; a 0 word ends the file (bytes after it are ignored).
 * A leading NOTE at tick 0 whose text is `## time resolution: F` is returned as `timeResolution`.
 *
 * Throws `DecodeError` for a missing end word, truncated SKIP or AUX data, a pseudo-annotation
 * before the first annotation, an AUX longer than 255 bytes, a negative annotation time, and a
 * malformed time-resolution value.
 */
export function decodeAnnotations(bytes: Uint8Array, options: WfdbAnnotationDecodeOptions = {}): WfdbAnnotationFile {
  if (!(bytes instanceof Uint8Array)) return annotationFail('annotation bytes are not a Uint8Array');
  checkRate(options.fs, 'fs');
  const annotations: WfdbAnnotation[] = [];
  let pos = 0;
  let tt = 0;
  let chan = 0;
  let num = 0;
  let current: WfdbAnnotation | undefined;
  const word = (what: string): number => {
    if (pos + 2 > bytes.length) {
      return annotationFail(`truncated at byte ${pos} of ${bytes.length}: ${what} (the file must end with a 0 word)`);
    }
    const w = (bytes[pos] as number) | ((bytes[pos + 1] as number) << 8);
    pos += 2;
    return w;
  };
  for (;;) {
    const at = pos;
    const w = word('expected an annotation word');
    if (w === 0) break;
    const code = w >> CODE_SHIFT;
    const data = w & DATA_MASK;
    if (code === SKIP) {
      const high = word('SKIP interval high word');
      const low = word('SKIP interval low word');
      tt += ((high << 16) | low) >> 0; // signed 32-bit (wfdb_g32)
      continue;
    }
    if (code >= NUM) {
      if (current === undefined) return annotationFail(`byte ${at}: pseudo-annotation ${code} before the first annotation`);
      if (code === SUB) current.subtype = data;
      else if (code === CHN) current.chan = chan = data;
      else if (code === NUM) current.num = num = data;
      else {
        if (data > 255) return annotationFail(`byte ${at}: AUX length ${data} exceeds 255`);
        const end = pos + data;
        if (end > bytes.length) return annotationFail(`byte ${at}: AUX of ${data} bytes runs past the end of the file`);
        let textEnd = end;
        while (textEnd > pos && bytes[textEnd - 1] === 0) textEnd--;
        const text = auxDecoder.decode(bytes.subarray(pos, textEnd));
        if (text === '') delete current.aux;
        else current.aux = text;
        pos = end + (data & 1);
      }
      continue;
    }
    tt += data;
    if (tt < 0) return annotationFail(`byte ${at}: annotation time ${tt} is negative`);
    current = { sample: tt, code, mnemonic: annotationMnemonic(code), subtype: 0, chan, num };
    annotations.push(current);
  }

  const result: WfdbAnnotationFile = { annotations };
  const first = annotations[0];
  if (first !== undefined && first.code === WFDB_ANNOTATION_CODES.NOTE && first.sample === 0 && first.aux?.startsWith(TIME_RESOLUTION_PREFIX)) {
    const m = TIME_RESOLUTION_NOTE.exec(first.aux);
    const f = m === null ? NaN : Number(m[1]);
    if (!(Number.isFinite(f) && f > 0)) return annotationFail(`time resolution note ${JSON.stringify(first.aux)} does not give a positive frequency`);
    result.timeResolution = f;
    annotations.shift();
  }
  const rate = result.timeResolution ?? options.fs;
  if (rate !== undefined) {
    result.tickRate = rate;
    for (const a of annotations) a.time = a.sample / rate;
  }
  return result;
}

function annotationValue(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(field, value, `is not an integer in ${min}..${max}`, 'fix the annotation');
  }
  return value;
}

/**
 * Encodes annotations in MIT format (annot.c putann), in the order given: an interval above 1023
 * (or a negative one) goes into a SKIP; code 0 is written as a SKIP to the tick before plus an
 * interval of 1, so that no annotation word is 0; SUB when the subtype is non-zero, CHN and NUM
 * when they differ from the previous annotation's; AUX as a byte count, the UTF-8 text and a pad
 * byte to even length; then the 0 word. With `timeResolution` a leading NOTE carries
 * `## time resolution: F`. `decodeAnnotations(encodeAnnotations(x))` gives back `x`.
 * Throws `ConfigError` for negative or non-integer ticks, codes outside 0..58, fields outside
 * 0..1023, jumps beyond a signed 32-bit SKIP, and aux text over 255 bytes or containing NUL.
 */
export function encodeAnnotations(annotations: readonly WfdbAnnotationInput[], options: WfdbAnnotationEncodeOptions = {}): Uint8Array {
  checkRate(options.timeResolution, 'timeResolution');
  const out: number[] = [];
  const put16 = (w: number): void => {
    out.push(w & 0xff, (w >> 8) & 0xff);
  };
  const putAux = (bytes: Uint8Array): void => {
    put16((AUX << CODE_SHIFT) | bytes.length);
    for (const b of bytes) out.push(b);
    if (bytes.length & 1) out.push(0);
  };
  if (options.timeResolution !== undefined) {
    put16(WFDB_ANNOTATION_CODES.NOTE << CODE_SHIFT);
    putAux(auxEncoder.encode(`${TIME_RESOLUTION_PREFIX}${options.timeResolution}`));
  }
  let prev = 0;
  let chan = 0;
  let num = 0;
  annotations.forEach((a, i) => {
    const at = `annotations[${i}]`;
    const sample = annotationValue(a.sample, `${at}.sample`, 0, Number.MAX_SAFE_INTEGER);
    const code = annotationValue(a.code, `${at}.code`, 0, WFDB_MAX_ANNOTATION_CODE);
    const subtype = annotationValue(a.subtype ?? 0, `${at}.subtype`, 0, DATA_MASK);
    const c = annotationValue(a.chan ?? 0, `${at}.chan`, 0, DATA_MASK);
    const n = annotationValue(a.num ?? 0, `${at}.num`, 0, DATA_MASK);
    let aux: Uint8Array | undefined;
    if (a.aux !== undefined && a.aux !== '') {
      aux = auxEncoder.encode(a.aux);
      if (aux.length > 255) throw new ConfigError(`${at}.aux`, a.aux, `is ${aux.length} bytes of UTF-8; at most 255 fit`, 'shorten the text');
      if (a.aux.includes('\0') || auxDecoder.decode(aux) !== a.aux) {
        throw new ConfigError(`${at}.aux`, a.aux, 'contains NUL or unpaired surrogates', 'use plain text');
      }
      if (i === 0 && options.timeResolution === undefined && code === WFDB_ANNOTATION_CODES.NOTE && sample === 0 && a.aux.startsWith(TIME_RESOLUTION_PREFIX)) {
        throw new ConfigError(`${at}.aux`, a.aux, 'would be read back as the time-resolution note', 'pass options.timeResolution instead');
      }
    }
    let delta = sample - prev;
    const skip = (interval: number): void => {
      if (interval < -0x80000000 || interval > 0x7fffffff) {
        throw new ConfigError(`${at}.sample`, sample, `is ${interval} ticks from the previous annotation, beyond a 32-bit SKIP`, 'split the gap or check the ticks');
      }
      put16(SKIP << CODE_SHIFT);
      put16((interval >> 16) & 0xffff); // high word first (wfdb_p32)
      put16(interval & 0xffff);
    };
    if (code === 0) {
      skip(delta - 1);
      delta = 1;
    } else if (delta > DATA_MASK || delta < 0) {
      skip(delta);
      delta = 0;
    }
    put16((code << CODE_SHIFT) | delta);
    if (subtype !== 0) put16((SUB << CODE_SHIFT) | subtype);
    if (c !== chan) put16((CHN << CODE_SHIFT) | c);
    if (n !== num) put16((NUM << CODE_SHIFT) | n);
    if (aux !== undefined) putAux(aux);
    prev = sample;
    chan = c;
    num = n;
  });
  put16(0);
  return Uint8Array.from(out);
}
