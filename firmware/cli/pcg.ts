import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { MedgeError } from '../../device-sdk/errors.js';
import { BACKENDS, type BackendName } from '../../device-sdk/inference/backend.js';
import { readWav, readWavInfo, type WavAudio } from '../../device-sdk/protocols/wav.js';
import { loadPcgModelInProcess, PCG_MAX_INVALID_SHARE, pcgModelDir, pcgModelId, screenRecording } from '../pcg-monitor.js';
import { parse, UsageError } from './args.js';
import { OS_PROBLEMS } from './system-errors.js';

/**
 * What `pcg classify` reads: a stethoscope recording lasts seconds to a minute or two (PASCAL 1-30 s,
 * PhysioNet 2016 5-120 s), so longer files are refused rather than held in memory whole (a 60-minute
 * 4 kHz file took 1.0 GB). Checked from the WAV header before the samples are read.
 */
export const PCG_CLASSIFY_LIMITS: Readonly<{ maxSeconds: number; maxBytes: number; headBytes: number; maxInvalidShare: number }> = Object.freeze({
  maxSeconds: 300,
  /** 300 s of 96 kHz stereo 16-bit is 115 MB. */
  maxBytes: 128 * 1024 * 1024,
  /**
   * Of a file larger than `maxBytes`, which is refused unread, only this many first bytes are read to
   * say how long the recording is (when its data chunk's header lies within them).
   */
  headBytes: 1024 * 1024,
  /**
   * Share of samples that may be NaN or infinite (read as 0) before a recording is unreadable: 1% is
   * 0.3 s of a 30 s recording, about one heart cycle replaced by silence (the live monitor's limit too).
   */
  maxInvalidShare: PCG_MAX_INVALID_SHARE,
});

export const PCG_USAGE = `Usage: medge pcg classify FILE.wav... [--json] [--model DIR] [--backend ${BACKENDS.join('|')}]

classify  screens heart-sound recordings (any PCM WAV: 8/16/24/32-bit or float, any rate, mono or
          stereo, up to ${PCG_CLASSIFY_LIMITS.maxSeconds / 60} minutes and ${PCG_CLASSIFY_LIMITS.maxBytes / 1024 / 1024} MiB) with the pcg-abnormal model: normal, abnormal
          (murmur or extra sound) or unreadable (too short, flat, clipped, too noisy to judge, or
          sampled below 1600 Hz). One
          line per file; with --json one object per line:
          {"file","label","probability","heartRate","quality","model","modelSha256"} (probability of
          abnormal, null when unreadable; heart rate in /min from the S1-S1 intervals, null when the
          recording is unreadable; model as id@version and the sha256 of its medge-model.json).
          A recording that is incomplete or damaged is still screened if what remains passes the
          quality gate, and says so: "truncated":true and the quality flag truncated when its data
          chunk is declared larger than the file or its size was never written (0 or 0xFFFFFFFF);
          "invalidSamples":N and the flag invalid-samples for NaN/infinite float samples (read as 0;
          unreadable above ${PCG_CLASSIFY_LIMITS.maxInvalidShare * 100}% of the samples); "channel":N when stereo channels cancel out
          in their mean (antiphase) and the loudest channel was screened alone. "warnings" explains
          each (on stderr without --json).
          A file that cannot be screened (missing, a directory, not a WAV, too long) is an error, not
          a label: {"file","label":null,"probability":null,"heartRate":null,"error","errorCode"}
          (stderr without --json); the other files are screened and the exit status is 1.
          Decision support for auscultation, not a diagnosis.
--backend runs the model on wasm (default), cpu, or tensorflow (needs the optional package
          @tensorflow/tfjs-node).`;

/** A file `pcg classify` could not screen. `errorCode`: an errno (`ENOENT`, `EISDIR`, `EACCES` ...), `wav` (not a readable WAV) or `too-long`. */
export class RecordingFileError extends MedgeError {
  readonly file: string;
  readonly errorCode: string;
  constructor(file: string, errorCode: string, message: string, options?: { cause?: unknown }) {
    super('recording-file', message, options);
    this.file = file;
    this.errorCode = errorCode;
  }
}


function ioError(file: string, error: unknown): RecordingFileError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === undefined) throw error;
  return new RecordingFileError(file, code, `cannot read: ${code === 'EISDIR' ? 'is a directory, not a WAV file' : (OS_PROBLEMS[code] ?? code)}`, { cause: error });
}

/** Reads one recording within `PCG_CLASSIFY_LIMITS`; throws `RecordingFileError` for a file it cannot screen. */
export function readRecording(file: string): WavAudio {
  const limits = PCG_CLASSIFY_LIMITS;
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    if (!st.isFile()) return fail(file, 'ENOTREG', 'cannot read: not a regular file');
    size = st.size;
  } catch (error) {
    if (error instanceof RecordingFileError) throw error;
    throw ioError(file, error);
  }
  if (size > limits.maxBytes) {
    // Refused unread; the header, when the first bytes hold it, says how long the recording is.
    const head = new Uint8Array(limits.headBytes);
    try {
      const fd = openSync(file, 'r');
      try {
        readSync(fd, head, 0, head.length, 0);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw ioError(file, error);
    }
    const info = wavOrFail(file, () => readWavInfo(head, size));
    if (info.durationS > limits.maxSeconds) tooLong(file, info.durationS);
    fail(file, 'too-long', `file is ${(size / 1024 / 1024).toFixed(0)} MiB; pcg classify reads WAV files of up to ${limits.maxBytes / 1024 / 1024} MiB: resample or mix down (e.g. sox IN -r 4000 -c 1 OUT)`);
  }
  // The whole file (at most maxBytes): a metadata chunk before the data (a LIST or iXML chunk, embedded
  // pictures) may be of any size. The duration is checked from the header before the samples are decoded.
  let bytes: Uint8Array;
  try {
    const buffer = readFileSync(file);
    bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    throw ioError(file, error);
  }
  const info = wavOrFail(file, () => readWavInfo(bytes));
  if (info.durationS > limits.maxSeconds) tooLong(file, info.durationS);
  return wavOrFail(file, () => readWav(bytes));
}

function tooLong(file: string, durationS: number): never {
  return fail(file, 'too-long', `recording is ${durationS.toFixed(0)} s (${(durationS / 60).toFixed(1)} min) long; pcg classify screens recordings of up to ${PCG_CLASSIFY_LIMITS.maxSeconds / 60} min (a stethoscope recording is seconds to a minute or two): trim it (e.g. sox IN OUT trim 0 60)`);
}

/**
 * What the reader had to work around in a recording, for its result line: the JSON fields, quality
 * flags and warnings, and whether the recording is unreadable because of it (too many invalid samples).
 */
export function recordingNotes(wav: WavAudio): { fields: Record<string, unknown>; flags: string[]; warnings: string[]; unreadable: boolean } {
  const fields: Record<string, unknown> = {};
  const flags: string[] = [];
  const warnings: string[] = [];
  let unreadable = false;
  const t = wav.truncated;
  if (t !== undefined) {
    fields.truncated = true;
    flags.push('truncated');
    warnings.push(
      t.reason === 'cut-short'
        ? `the data chunk declares ${t.declaredBytes} bytes but the file holds ${t.readBytes}: the recording is cut short; screened the ${(wav.samples.length / wav.rateHz).toFixed(1)} s present`
        : `the data chunk's size was never written (${t.declaredBytes === 0 ? '0' : '0xFFFFFFFF'}, as a recorder that did not finish writes): read ${(wav.samples.length / wav.rateHz).toFixed(1)} s to the end of the file; the recording may be incomplete`,
    );
  }
  if (wav.invalidSamples !== undefined) {
    const share = wav.invalidSamples / Math.max(1, wav.samples.length);
    fields.invalidSamples = wav.invalidSamples;
    flags.push('invalid-samples');
    unreadable = share > PCG_CLASSIFY_LIMITS.maxInvalidShare;
    warnings.push(`${wav.invalidSamples} of ${wav.samples.length} samples are NaN or infinite (read as 0)${unreadable ? `: more than ${PCG_CLASSIFY_LIMITS.maxInvalidShare * 100}%, not screened` : ''}`);
  }
  if (wav.channel !== undefined) {
    fields.channel = wav.channel;
    warnings.push(`the ${wav.channels} channels cancel out when averaged (antiphase): screened channel ${wav.channel} (the loudest) alone`);
  }
  return { fields, flags, warnings, unreadable };
}

function fail(file: string, code: string, message: string): never {
  throw new RecordingFileError(file, code, message);
}

function wavOrFail<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof MedgeError) throw new RecordingFileError(file, 'wav', `not a readable WAV file: ${error.message}`, { cause: error });
    throw error;
  }
}

export async function pcgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`${PCG_USAGE}\n`);
    return 0;
  }
  if (sub === 'classify') return classify(rest);
  throw new UsageError(sub === undefined ? 'pcg needs a subcommand' : `unknown pcg subcommand ${JSON.stringify(sub)}; subcommands are: classify`, PCG_USAGE);
}

async function classify(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, model: { type: 'string' }, backend: { type: 'string' } }, PCG_USAGE, Number.MAX_SAFE_INTEGER);
  if (values.help) {
    process.stdout.write(`${PCG_USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('at least one FILE.wav is required', PCG_USAGE);
  const backend = (values.backend ?? 'wasm') as BackendName;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(values.backend)}`, PCG_USAGE);
  const model = await loadPcgModelInProcess(values.model ?? pcgModelDir(), backend);
  const modelId = pcgModelId(model);
  let failed = 0;
  try {
    for (const file of positionals) {
      let line: Record<string, unknown>;
      try {
        const wav = readRecording(file);
        const notes = recordingNotes(wav);
        const r = await screenRecording(model, wav.samples, wav.rateHz);
        line = notes.unreadable
          ? { file, label: 'unreadable', probability: null, heartRate: null, quality: r.analysis.quality.score }
          : { file, label: r.label, probability: r.probability, heartRate: r.heartRate, quality: r.analysis.quality.score };
        const flags = [...r.analysis.quality.flags, ...notes.flags];
        if (flags.length > 0) line.qualityFlags = flags;
        Object.assign(line, notes.fields);
        if (notes.warnings.length > 0) line.warnings = notes.warnings;
        line.model = modelId;
        line.modelSha256 = model.sha256;
      } catch (error) {
        if (!(error instanceof RecordingFileError)) throw error;
        failed += 1;
        if (values.json) process.stdout.write(`${JSON.stringify({ file, label: null, probability: null, heartRate: null, error: error.message, errorCode: error.errorCode })}\n`);
        else process.stderr.write(`medge pcg classify: ${file}: ${error.message}\n`);
        continue;
      }
      if (values.json) process.stdout.write(`${JSON.stringify(line)}\n`);
      else {
        const p = typeof line.probability === 'number' ? ` p(abnormal)=${line.probability.toFixed(2)}` : '';
        const hr = typeof line.heartRate === 'number' ? ` heart rate ${line.heartRate}/min` : '';
        const why = Array.isArray(line.qualityFlags) ? ` (${line.qualityFlags.join(', ')})` : '';
        process.stdout.write(`${file}: ${String(line.label)}${p}${hr}${why}\n`);
        for (const w of (line.warnings as string[] | undefined) ?? []) process.stderr.write(`medge pcg classify: ${file}: warning: ${w}\n`);
      }
    }
    if (!values.json) process.stdout.write(`model ${model.manifest.id} ${model.manifest.version} (${model.sha256.slice(0, 12)}…) on ${model.backend}; decision support, not a diagnosis\n`);
    if (failed > 0) process.stderr.write(`medge pcg classify: ${failed} of ${positionals.length} file(s) could not be screened\n`);
  } finally {
    await model.close();
  }
  return failed > 0 ? 1 : 0;
}
