/**
 * Reads and writes WFDB records on disk (PhysioNet format: `.hea` header, `.dat` signal files,
 * annotation files such as `.atr`). A thin file layer over the pure codecs in
 * `device-sdk/protocols/wfdb.ts`; signal sources of the simulator replay what it returns.
 *
 * Synchronous on purpose: records are read once when a scenario starts, never on a sampling path.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, DecodeError } from '../../device-sdk/errors.js';
import {
  checksum,
  decodeAnnotations,
  decodeSignals,
  encodeAnnotations,
  parseHeader,
  toPhysical,
  WFDB_SIGNAL_CODEC,
  type WfdbAnnotationEncodeOptions,
  type WfdbAnnotationFile,
  type WfdbAnnotationInput,
  type WfdbHeader,
} from '../../device-sdk/protocols/wfdb.js';

/** A signal of a record does not match its header. `signal` is the index in `header.signals`. */
export class WfdbRecordError extends DecodeError {
  readonly record: string;
  readonly signal: number;
  readonly check: 'length' | 'checksum';
  readonly expected: number;
  readonly actual: number;
  /** The signal file, as the reader opened it (header directory + the name the header gives). */
  readonly file: string | undefined;
  constructor(
    record: string,
    signal: number,
    description: string | undefined,
    check: 'length' | 'checksum',
    expected: number,
    actual: number,
    where: { file: string; fs: number; samplesPerFrame: number } | undefined = undefined,
  ) {
    const what = check === 'length' ? 'samples' : 'checksum';
    const seconds = (n: number) => (where ? ` (${(n / (where.fs * where.samplesPerFrame)).toFixed(1)} s at ${where.fs} Hz)` : '');
    const found =
      check === 'length' && where && actual < expected
        ? `${where.file} holds ${actual} samples${seconds(actual)} where the header gives ${expected}${seconds(expected)}: the file looks truncated; copy the record again from its source`
        : `${where ? `${where.file}: ` : ''}${what} ${actual} does not match the header's ${expected}`;
    super(WFDB_SIGNAL_CODEC, `record ${record}, signal ${signal}${description === undefined ? '' : ` (${description})`}: ${found}`);
    this.record = record;
    this.signal = signal;
    this.check = check;
    this.expected = expected;
    this.actual = actual;
    this.file = where?.file;
  }
}

export interface WfdbRecord {
  header: WfdbHeader;
  /** Raw ADC samples, one array per header signal (`nSamples x samplesPerFrame` each). */
  signals: Int16Array[];
  /** Physical values of signal `i` in the signal's units (`toPhysical`); NaN where a sample is missing. */
  physical(i: number): Float32Array;
}

/** Re-throws a codec error with the file it came from in the message (same class of error, same codec). */
function inFile<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof DecodeError && !(error instanceof WfdbRecordError)) {
      throw new DecodeError(error.codec, `${file}: ${error.message.slice(error.codec.length + 2)}`, { cause: error });
    }
    throw error;
  }
}

function readHeaderFile(path: string): WfdbHeader {
  const file = `${path}.hea`;
  return inFile(file, () => parseHeader(readFileSync(file, 'utf8')));
}

/** A signal file's bytes; a file system error names the file (`path`), which a read (EISDIR) does not. */
function readSignalFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (typeof e.code === 'string' && e.path === undefined) e.path = file;
    throw error;
  }
}

/**
 * Reads `<path>.hea` and the signal files it names (relative to the header's directory), and checks
 * every signal against the header: its sample count (`nSamples x samplesPerFrame`, when the header
 * gives a sample count; a longer file is read up to it) and its checksum (when given). Throws `WfdbRecordError`
 * (a `DecodeError`, codec `wfdb-signal`) naming the record and signal on a mismatch, `DecodeError`
 * for unreadable contents, and the file system's error for a missing file.
 */
export function readWfdbRecord(pathWithoutExtension: string): WfdbRecord {
  const header = readHeaderFile(pathWithoutExtension);
  const dir = dirname(pathWithoutExtension);
  const signals: Int16Array[] = new Array<Int16Array>(header.signals.length);
  const done = new Set<string>();
  header.signals.forEach((spec) => {
    if (done.has(spec.fileName)) return;
    done.add(spec.fileName);
    if (spec.fileName === '~') throw new DecodeError(WFDB_SIGNAL_CODEC, `record ${header.recordName}: signals without a file (~) are not supported`);
    const file = join(dir, spec.fileName);
    const decoded = inFile(file, () => decodeSignals(readSignalFile(file), header, spec.fileName));
    let next = 0;
    header.signals.forEach((s, i) => {
      if (s.fileName === spec.fileName) signals[i] = decoded[next++] as Int16Array;
    });
  });
  header.signals.forEach((spec, i) => {
    const samples = signals[i] as Int16Array;
    const where = { file: join(dir, spec.fileName), fs: header.fs, samplesPerFrame: spec.samplesPerFrame };
    if (header.nSamples > 0 && samples.length !== header.nSamples * spec.samplesPerFrame) {
      throw new WfdbRecordError(header.recordName, i, spec.description, 'length', header.nSamples * spec.samplesPerFrame, samples.length, where);
    }
    if (spec.checksum === undefined) return;
    const sum = checksum(samples);
    if (((sum - spec.checksum) & 0xffff) !== 0) throw new WfdbRecordError(header.recordName, i, spec.description, 'checksum', spec.checksum, sum, where);
  });
  return {
    header,
    signals,
    physical(i: number): Float32Array {
      const spec = header.signals[i];
      const samples = signals[i];
      if (spec === undefined || samples === undefined) {
        throw new ConfigError('signal', i, `is not a signal of record ${header.recordName}`, `use 0..${header.signals.length - 1}`);
      }
      return toPhysical(samples, spec);
    },
  };
}

const ANNOTATOR = /^[A-Za-z0-9_-]+$/;

export interface ReadWfdbAnnotationsOptions {
  /** Sampling frequency for `time`; default: the record header's, when `<path>.hea` exists. */
  fs?: number;
}

/**
 * Reads the annotation file `<path>.<annotator>` (e.g. `100.atr`). Times in seconds use the file's
 * time-resolution note, else `options.fs`, else the sampling frequency of `<path>.hea` if present.
 * Throws `DecodeError` (codec `wfdb-annotation`) for bad contents.
 */
export function readWfdbAnnotations(pathWithoutExtension: string, annotator = 'atr', options: ReadWfdbAnnotationsOptions = {}): WfdbAnnotationFile {
  if (!ANNOTATOR.test(annotator)) throw new ConfigError('annotator', annotator, 'is not an annotator name', 'use letters, digits, "_" or "-", e.g. atr');
  const file = `${pathWithoutExtension}.${annotator}`;
  const bytes = readFileSync(file);
  const fs = options.fs ?? (existsSync(`${pathWithoutExtension}.hea`) ? readHeaderFile(pathWithoutExtension).fs : undefined);
  return inFile(file, () => decodeAnnotations(bytes, fs === undefined ? {} : { fs }));
}

/**
 * Writes annotations to `path` (the full file name, e.g. `/data/100.qrs`) in MIT format
 * (`encodeAnnotations`). The file is written beside the target and renamed over it, so a reader
 * never sees half a file.
 */
export function writeWfdbAnnotations(path: string, annotations: readonly WfdbAnnotationInput[], options: WfdbAnnotationEncodeOptions = {}): void {
  const bytes = encodeAnnotations(annotations, options);
  const partial = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  writeFileSync(partial, bytes);
  try {
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true }); // e.g. `path` is a directory: leave nothing behind
    throw error;
  }
}
