/**
 * RIFF/WAVE PCM codec: what digital stethoscopes and recorders export. Pure functions, no I/O.
 *
 * Sources: Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0" (1991),
 * RIFF chunks and the `fmt ` chunk (WAVE_FORMAT_PCM = 1), and RIFX (the same with every number
 * big-endian, samples included); Microsoft "Multiple channel audio data and WAVE files"
 * (WAVE_FORMAT_EXTENSIBLE = 0xFFFE, the sub-format GUID's first two bytes carry the format tag); RFC 2361
 * (WAVE_FORMAT_IEEE_FLOAT = 3); EBU Tech 3306 "MBWF / RF64" (2009) and ITU-R BS.2088 (BW64): the `RF64` /
 * `BW64` header, whose 32-bit sizes of -1 (0xFFFFFFFF) are given as 64-bit numbers by the `ds64` chunk that
 * must come first (RIFF size, data size, sample count, then a table of other chunks' sizes), as recorders
 * write files over 4 GiB, and some write every file.
 *
 * Read: 8-bit unsigned, 16/24/32-bit signed integer and 32-bit float PCM, any rate, any channel
 * count, unknown chunks (LIST, fact, cue ...) skipped with their pad byte. Samples are scaled to
 * -1..1 (integers by 2^(bits-1); floats as stored, clamped).
 *
 * Damaged or unfinished files are read as far as they go and annotated, never silently "fixed":
 * - A `data` chunk declared larger than the bytes that follow (a file cut short, a recorder that
 *   stopped before rewriting the header) is read up to the last whole frame and `truncated` says so
 *   (`cut-short`). So is a declared size of 0xFFFFFFFF, or of 0 with audio following, as streaming
 *   recorders write before they know the length (`size-unset`: the recording may or may not be
 *   complete). What remains is still decoded: a caller that screens it (pcg classify) screens what
 *   is there if it passes its quality gate, and shows the flag with the result, so that a user knows
 *   the recording is incomplete.
 * - An odd-sized chunk written without its pad byte (common, though the spec requires the pad): the
 *   unpadded position is taken when the chunk id there is a known one (`data`, `LIST`, ...) and the
 *   one at the padded position is not, or when only it is four printable ASCII characters.
 * - Mix-down to mono: the mean of the channels, unless it has less than `DOWNMIX_CANCEL_RATIO` of the
 *   energy of the loudest channel (channels in antiphase, R = -L, cancel out when averaged): then the
 *   loudest channel alone, named by `channel`.
 * - Float samples that are NaN or infinite are read as 0 and counted in `invalidSamples` (mono samples
 *   with at least one invalid input); the caller decides how many it accepts.
 *
 * `readWav` throws `DecodeError` (codec `wav`) and nothing else for any input bytes.
 * `encodeWav` throws `ConfigError` for parameters it cannot write.
 */
import { ConfigError, DecodeError } from '../errors.js';

export const WAV_CODEC = 'wav';
export const WAVE_FORMAT_PCM = 0x0001;
export const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
export const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Sample encodings `readWav` and `encodeWav` handle: integer bit depths, and 32-bit float. */
export const WAV_SAMPLE_FORMATS = ['u8', 's16', 's24', 's32', 'f32'] as const;
export type WavSampleFormat = (typeof WAV_SAMPLE_FORMATS)[number];

/** How much of a data chunk was read, when that is not what its header declares (see the module comment). */
export interface WavTruncation {
  /** `cut-short`: declared larger than the file; `size-unset`: declared 0 or 0xFFFFFFFF with audio following. */
  reason: 'cut-short' | 'size-unset';
  /** The size in the data chunk's header. */
  declaredBytes: number;
  /** The bytes of whole frames read to the end of the file. */
  readBytes: number;
}

export interface WavAudio {
  rateHz: number;
  /** Channels in the file (the samples are mixed down to mono). */
  channels: number;
  bitsPerSample: number;
  /** The sample encoding in the file. */
  format: WavSampleFormat;
  /** Mono samples, -1..1. */
  samples: Float32Array;
  /** Present when the data chunk was not read as declared: the file is cut short or its size was never written. */
  truncated?: WavTruncation;
  /** Present (and > 0) when that many mono samples came from NaN or infinite float samples, read as 0. */
  invalidSamples?: number;
  /** Present when the channels cancelled out in the mean and this channel (0-based, the loudest) was taken alone. */
  channel?: number;
  /** Present when the file is not plain RIFF: `RIFX` (big-endian), `RF64` or `BW64` (64-bit sizes in `ds64`). */
  container?: WavContainer;
}

/** The container forms `readWav` reads besides `RIFF`. */
export type WavContainer = 'RIFX' | 'RF64' | 'BW64';

/** The mean of the channels is used unless its energy is below this share of the loudest channel's (antiphase). */
export const DOWNMIX_CANCEL_RATIO = 0.1;

function fail(message: string): never {
  throw new DecodeError(WAV_CODEC, message);
}

function fourcc(view: DataView, at: number): string {
  return String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));
}

interface Fmt {
  /** False for RIFX: every number, samples included, is big-endian. */
  littleEndian: boolean;
  tag: number;
  channels: number;
  rateHz: number;
  blockAlign: number;
  bitsPerSample: number;
}

function parseFmt(view: DataView, at: number, size: number, littleEndian: boolean): Fmt {
  if (size < 16) fail(`fmt chunk is ${size} bytes, needs at least 16`);
  let tag = view.getUint16(at, littleEndian);
  const channels = view.getUint16(at + 2, littleEndian);
  const rateHz = view.getUint32(at + 4, littleEndian);
  const blockAlign = view.getUint16(at + 12, littleEndian);
  const bitsPerSample = view.getUint16(at + 14, littleEndian);
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) fail(`WAVE_FORMAT_EXTENSIBLE fmt chunk is ${size} bytes, needs 40`);
    // The sub-format GUID's first field (Data1) carries the format tag. RIFX writers store the GUID either as RIFF does
    // (little-endian fields, as ffmpeg reads it) or with Data1 big-endian: the one that gives a tag is taken (QA).
    tag = view.getUint16(at + 24, true);
    if (!littleEndian && tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT) tag = view.getUint32(at + 24, false) & 0xffff;
  }
  return { littleEndian, tag, channels, rateHz, blockAlign, bitsPerSample };
}

function sampleFormat(fmt: Fmt): WavSampleFormat {
  if (fmt.tag === WAVE_FORMAT_PCM) {
    switch (fmt.bitsPerSample) {
      case 8:
        return 'u8';
      case 16:
        return 's16';
      case 24:
        return 's24';
      case 32:
        return 's32';
    }
    fail(`PCM with ${fmt.bitsPerSample} bits per sample is not supported (8, 16, 24 or 32)`);
  }
  if (fmt.tag === WAVE_FORMAT_IEEE_FLOAT) {
    if (fmt.bitsPerSample === 32) return 'f32';
    fail(`IEEE float with ${fmt.bitsPerSample} bits per sample is not supported (32)`);
  }
  fail(`format tag 0x${fmt.tag.toString(16).padStart(4, '0')} is not PCM (1) or IEEE float (3); compressed WAV is not supported`);
}

/** Where the samples are: the fmt chunk and the data chunk's body (offset, and bytes present up to `fileBytes`). */
interface DataChunk {
  fmt: Fmt;
  at: number;
  size: number;
  truncated?: Omit<WavTruncation, 'readBytes'>;
  container?: WavContainer;
}

/** Four printable ASCII characters at `at`, as every chunk id is. */
function plausibleId(view: DataView, at: number): boolean {
  if (at + 8 > view.byteLength) return false;
  for (let i = 0; i < 4; i++) {
    const c = view.getUint8(at + i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/**
 * Chunk ids this reader needs or that recorders commonly write around them (RIFF/WAVE 1.0, Broadcast
 * WAV, iXML, ID3): an id that is one of these is taken over a merely printable one.
 */
const KNOWN_CHUNK_IDS: ReadonlySet<string> = new Set(['fmt ', 'data', 'LIST', 'fact', 'cue ', 'plst', 'smpl', 'inst', 'JUNK', 'junk', 'PAD ', 'bext', 'iXML', 'id3 ', 'ID3 ', 'PEAK', 'ds64', 'wavl', 'slnt']);

function knownId(view: DataView, at: number): boolean {
  return plausibleId(view, at) && KNOWN_CHUNK_IDS.has(fourcc(view, at));
}

/**
 * Where the chunk after one of `size` bytes whose body starts at `body` begins: after its pad byte when
 * `size` is odd, unless the chunk was written without one (common, though the spec requires it). The
 * unpadded position is taken when its id is a known one and the padded one's is not, or when only it
 * holds a printable id. Printable alone does not decide: without the pad byte, the padded position reads
 * the next id's last three letters and a size byte (`ata` and 0x26 of a 31014-byte data chunk), which is
 * printable for about a third of all sizes.
 */
function nextChunkAt(view: DataView, body: number, size: number): number {
  const padded = body + size + (size & 1);
  if (!(size & 1)) return padded;
  const unpadded = padded - 1;
  if (knownId(view, padded)) return padded;
  if (knownId(view, unpadded)) return unpadded;
  return !plausibleId(view, padded) && plausibleId(view, unpadded) ? unpadded : padded;
}

/** The size to read of a data chunk whose body starts at `body`, and why it is not the declared one. */
function dataExtent(view: DataView, body: number, declared: number, fileBytes: number): Pick<DataChunk, 'size' | 'truncated'> {
  const present = Math.max(0, fileBytes - body);
  if (declared === 0xffffffff || (declared === 0 && present > 0 && !plausibleId(view, body))) {
    return { size: present, truncated: { reason: 'size-unset', declaredBytes: declared } };
  }
  if (declared > present) return { size: present, truncated: { reason: 'cut-short', declaredBytes: declared } };
  return { size: declared };
}

/** The 32-bit size that RF64 / BW64 give in `ds64` instead (EBU Tech 3306 §3). */
const RF64_SIZE_IN_DS64 = 0xffffffff;

/** A 64-bit little-endian size (low word first, as `ds64` stores them); undefined above 2^53 (not addressable here). */
function size64(view: DataView, at: number): number | undefined {
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  return high >= 0x200000 ? undefined : high * 0x100000000 + low;
}

/**
 * The `ds64` chunk of an RF64 / BW64 file (EBU Tech 3306 §3): RIFF size, data size and sample count as 64-bit
 * numbers (24 bytes, as ffmpeg and libsndfile accept), then a table length and entries of (chunk id, 64-bit size).
 * The table is read only for the id of a chunk whose size is -1 (real files list 0-2 entries; QA: a table of 10M
 * entries, read whole into a map, took 35.7 s and 2.1 GB).
 */
class Ds64 {
  private readonly entries: number;
  constructor(
    private readonly view: DataView,
    private readonly body: number,
    private readonly size: number,
    private readonly container: WavContainer,
    private readonly partial: string,
  ) {
    if (size < 24) fail(`${container} ds64 chunk is ${size} bytes, needs at least 24`);
    if (body + 24 > view.byteLength) fail(`${partial} ends inside its ${size}-byte ds64 chunk`);
    this.entries = size >= 28 && body + 28 <= view.byteLength ? view.getUint32(body + 24, true) : 0;
    if (this.entries > Math.floor((size - 28) / 12)) fail(`${container} ds64 table declares ${this.entries} entries, its ${size}-byte chunk holds ${Math.max(0, Math.floor((size - 28) / 12))}`);
  }

  /** The data chunk's size, or undefined when ds64 gives one beyond 2^53. */
  get dataBytes(): number | undefined {
    return size64(this.view, this.body + 8);
  }

  /** The size the table gives chunk `id` (its first entry), or `DecodeError`. */
  sizeOf(id: string, at: number): number {
    for (let i = 0; i < this.entries; i++) {
      const entry = this.body + 28 + i * 12;
      if (entry + 12 > this.view.byteLength) fail(`${this.partial} ends inside the ds64 table, before an entry for chunk ${JSON.stringify(id)}`);
      if (fourcc(this.view, entry) !== id) continue;
      const size = size64(this.view, entry + 4);
      if (size === undefined) fail(`ds64 gives chunk ${JSON.stringify(id)} a size beyond what this reader can address`);
      return size;
    }
    fail(`${this.container} chunk ${JSON.stringify(id)} at byte ${at} gives its size as -1 and ds64 does not list it`);
  }
}

/**
 * Walks the RIFF (RIFX, RF64, BW64) chunks of `bytes` (the whole file, or its first bytes when `fileBytes`,
 * the file's size, is larger) to the data chunk.
 */
function findData(bytes: Uint8Array, fileBytes: number): DataChunk {
  if (!(bytes instanceof Uint8Array)) fail('input is not a Uint8Array');
  if (bytes.length < 12) fail(`${bytes.length} bytes is too short for a RIFF header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const form = fourcc(view, 0);
  if (form !== 'RIFF' && form !== 'RIFX' && form !== 'RF64' && form !== 'BW64') fail(`not a RIFF file (starts with ${JSON.stringify(form)})`);
  const container = form === 'RIFF' ? undefined : form;
  const littleEndian = form !== 'RIFX';
  if (fourcc(view, 8) !== 'WAVE') fail(`${form} form is ${JSON.stringify(fourcc(view, 8))}, not WAVE`);
  let ds64: Ds64 | undefined;
  if (form === 'RF64' || form === 'BW64') {
    if (bytes.length < 20 || fourcc(view, 12) !== 'ds64') fail(`${form} file without its ds64 chunk first (it holds the 64-bit sizes)`);
    ds64 = new Ds64(view, 20, view.getUint32(16, true), form, bytes.length < fileBytes ? `the part of the file read (${bytes.length} bytes)` : 'the file');
  }
  let fmt: Fmt | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = fourcc(view, at);
    let size = view.getUint32(at + 4, littleEndian);
    if (ds64 && id === 'data') {
      // ds64's size is the one that counts, as ffmpeg and libsndfile read it (a 32-bit field may hold the size modulo
      // 2^32); the field's own when ds64 gives none this reader can address.
      const large = ds64.dataBytes;
      if (large !== undefined) size = large;
      else if (size === RF64_SIZE_IN_DS64) fail('ds64 gives the data chunk a size beyond what this reader can address');
    } else if (ds64 && size === RF64_SIZE_IN_DS64) size = ds64.sizeOf(id, at);
    const body = at + 8;
    if (id === 'fmt ') {
      if (body + size > bytes.length) fail(`fmt chunk (${size} bytes) runs past the end of the ${bytes.length < fileBytes ? `first ${bytes.length} bytes` : 'file'}`);
      fmt = parseFmt(view, body, size, littleEndian);
    } else if (id === 'data') {
      if (!fmt) fail('data chunk before the fmt chunk');
      return { fmt, at: body, ...dataExtent(view, body, size, fileBytes), ...(container ? { container } : {}) };
    } else if (body + size > fileBytes) {
      fail(`chunk ${JSON.stringify(id)} at byte ${at} declares ${size} bytes, past the end of the ${fileBytes}-byte file, before any data chunk: the file is damaged or cut short`);
    }
    at = nextChunkAt(view, body, size);
  }
  if (bytes.length < fileBytes && at < fileBytes) fail(`no data chunk in the first ${bytes.length} bytes`);
  if (at < bytes.length) fail(`the file ends at byte ${bytes.length}, inside the header of the chunk at byte ${at}, before any data chunk: it is cut short`);
  fail(fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Sample encoding and frame size of a fmt chunk, or `DecodeError`. */
function checkFmt(fmt: Fmt): { format: WavSampleFormat; frameBytes: number } {
  const format = sampleFormat(fmt);
  if (fmt.channels < 1) fail('fmt chunk declares 0 channels');
  if (fmt.rateHz < 1) fail('fmt chunk declares a sample rate of 0 Hz');
  const frameBytes = (fmt.bitsPerSample / 8) * fmt.channels;
  if (fmt.blockAlign !== frameBytes) fail(`block align ${fmt.blockAlign} does not match ${fmt.channels} channel(s) of ${fmt.bitsPerSample} bits (${frameBytes})`);
  return { format, frameBytes };
}

/** Decodes a RIFF/WAVE file into mono samples in -1..1. */
export function readWav(bytes: Uint8Array): WavAudio {
  const data = findData(bytes, bytes?.length ?? 0);
  return decodeData(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), data);
}

/** What a WAV file holds, from its header: `readWav`'s audio without the samples, and the number of frames. */
export interface WavInfo extends Omit<WavAudio, 'samples' | 'invalidSamples' | 'channel'> {
  frames: number;
  durationS: number;
}

/**
 * Reads the header of a RIFF/WAVE file without decoding samples: `head` is the file or its first bytes
 * (they must reach the data chunk's header), `fileBytes` the file's size (default `head.length`). The
 * frame count is what `readWav` would decode from the whole file. Throws `DecodeError` as `readWav` does.
 */
export function readWavInfo(head: Uint8Array, fileBytes = head?.length ?? 0): WavInfo {
  const data = findData(head, Math.max(fileBytes, head?.length ?? 0));
  const { format, frameBytes } = checkFmt(data.fmt);
  const frames = Math.floor(data.size / frameBytes);
  const { channels, rateHz, bitsPerSample } = data.fmt;
  return { rateHz, channels, bitsPerSample, format, frames, durationS: frames / rateHz, ...truncation(data, frames * frameBytes) };
}

/** The optional fields `readWav` and `readWavInfo` share: how the data chunk was cut, and the container form. */
function truncation(data: DataChunk, readBytes: number): { truncated?: WavTruncation; container?: WavContainer } {
  return { ...(data.truncated ? { truncated: { ...data.truncated, readBytes } } : {}), ...(data.container ? { container: data.container } : {}) };
}

/**
 * The loudest channel when the mean of the channels has less than `DOWNMIX_CANCEL_RATIO` of its energy
 * (the channels cancel out), else undefined (use the mean). Invalid samples count as 0.
 */
function cancellingChannel(frames: number, channels: number, sample: (i: number, c: number) => number): number | undefined {
  if (channels < 2) return undefined;
  const energy = new Float64Array(channels);
  let meanEnergy = 0;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const v = sample(i, c) || 0;
      energy[c] = (energy[c] as number) + v * v;
      sum += v;
    }
    meanEnergy += (sum / channels) ** 2;
  }
  let loudest = 0;
  for (let c = 1; c < channels; c++) if ((energy[c] as number) > (energy[loudest] as number)) loudest = c;
  return meanEnergy < DOWNMIX_CANCEL_RATIO * (energy[loudest] as number) ? loudest : undefined;
}

function decodeData(view: DataView, data: DataChunk): WavAudio {
  const { fmt, at } = data;
  const { format, frameBytes } = checkFmt(fmt);
  const { channels, rateHz, bitsPerSample } = fmt;
  const bytesPerSample = bitsPerSample / 8;
  const frames = Math.floor(data.size / frameBytes);
  const samples = new Float32Array(frames);
  const read = sampleReader(view, format, fmt.littleEndian);
  const sample = (i: number, c: number) => read(at + i * frameBytes + c * bytesPerSample);
  const channel = cancellingChannel(frames, channels, sample);
  const first = channel ?? 0;
  const last = channel ?? channels - 1;
  let invalid = 0;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    let bad = false;
    for (let c = first; c <= last; c++) {
      const v = sample(i, c);
      if (Number.isNaN(v)) bad = true;
      else sum += v;
    }
    if (bad) invalid += 1;
    samples[i] = sum / (last - first + 1);
  }
  return {
    rateHz,
    channels,
    bitsPerSample,
    format,
    samples,
    ...truncation(data, frames * frameBytes),
    ...(invalid > 0 ? { invalidSamples: invalid } : {}),
    ...(channel !== undefined ? { channel } : {}),
  };
}

function sampleReader(view: DataView, format: WavSampleFormat, le: boolean): (at: number) => number {
  switch (format) {
    case 'u8':
      return (at) => (view.getUint8(at) - 128) / 128;
    case 's16':
      return (at) => view.getInt16(at, le) / 32768;
    case 's24':
      return le
        ? (at) => (view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16)) / 8388608
        : (at) => (view.getUint8(at + 2) | (view.getUint8(at + 1) << 8) | (view.getInt8(at) << 16)) / 8388608;
    case 's32':
      return (at) => view.getInt32(at, le) / 2147483648;
    case 'f32':
      return (at) => {
        // NaN for an invalid sample: the caller counts it and reads it as 0.
        const v = view.getFloat32(at, le);
        return Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : Number.NaN;
      };
  }
}

export interface EncodeWavOptions {
  rateHz: number;
  /** Default `s16`. */
  format?: WavSampleFormat;
  /** Write WAVE_FORMAT_EXTENSIBLE instead of the plain fmt chunk. Default false. */
  extensible?: boolean;
  /** Extra chunks written between fmt and data (e.g. a LIST chunk), as [fourcc, body]. */
  extraChunks?: [string, Uint8Array][];
}

const BITS: Readonly<Record<WavSampleFormat, number>> = Object.freeze({ u8: 8, s16: 16, s24: 24, s32: 32, f32: 32 });

/**
 * Encodes one or more channels (equal lengths, values -1..1, clipped) as a RIFF/WAVE file.
 * Integers are rounded to nearest: `round(x * 2^(bits-1))` clamped to the integer range.
 */
export function encodeWav(channels: Float32Array | readonly Float32Array[], options: EncodeWavOptions): Uint8Array {
  const chans = channels instanceof Float32Array ? [channels] : [...channels];
  const format = options.format ?? 's16';
  if (!WAV_SAMPLE_FORMATS.includes(format)) throw new ConfigError('format', format, 'is not a WAV sample format', `use one of: ${WAV_SAMPLE_FORMATS.join(', ')}`);
  if (chans.length < 1 || chans.length > 0xffff) throw new ConfigError('channels', chans.length, 'must be 1..65535 channels', 'pass at least one Float32Array');
  const frames = chans[0]?.length ?? 0;
  if (chans.some((c) => c.length !== frames)) throw new ConfigError('channels', chans.map((c) => c.length), 'channels differ in length', 'pass channels of equal length');
  if (!Number.isInteger(options.rateHz) || options.rateHz < 1 || options.rateHz > 0xffffffff) throw new ConfigError('rateHz', options.rateHz, 'must be a positive integer', 'give the sample rate in Hz');
  const bits = BITS[format];
  const bytesPerSample = bits / 8;
  const blockAlign = bytesPerSample * chans.length;
  const dataBytes = frames * blockAlign;
  const extra = (options.extraChunks ?? []).map(([id, body]) => {
    if (id.length !== 4) throw new ConfigError('extraChunks', id, 'chunk id must be 4 characters', 'use a four-character code');
    return { id, body };
  });
  const fmtSize = options.extensible ? 40 : 16;
  const extraBytes = extra.reduce((n, c) => n + 8 + c.body.length + (c.body.length & 1), 0);
  const total = 12 + 8 + fmtSize + extraBytes + 8 + dataBytes + (dataBytes & 1);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const put4 = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i) & 0xff;
  };
  put4(0, 'RIFF');
  view.setUint32(4, total - 8, true);
  put4(8, 'WAVE');
  put4(12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  const tag = format === 'f32' ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM;
  view.setUint16(20, options.extensible ? WAVE_FORMAT_EXTENSIBLE : tag, true);
  view.setUint16(22, chans.length, true);
  view.setUint32(24, options.rateHz, true);
  view.setUint32(28, options.rateHz * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, bits, true);
  let at = 36;
  if (options.extensible) {
    view.setUint16(36, 22, true); // cbSize
    view.setUint16(38, bits, true); // valid bits
    view.setUint32(40, 0, true); // channel mask: unspecified
    // Sub-format GUID {0000000x-0000-0010-8000-00aa00389b71}
    const guidTail = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
    view.setUint16(44, tag, true);
    out.set(guidTail, 46);
    at = 60;
  }
  for (const c of extra) {
    put4(at, c.id);
    view.setUint32(at + 4, c.body.length, true);
    out.set(c.body, at + 8);
    at += 8 + c.body.length + (c.body.length & 1);
  }
  put4(at, 'data');
  view.setUint32(at + 4, dataBytes, true);
  at += 8;
  const clip = (x: number) => (Number.isFinite(x) ? Math.max(-1, Math.min(1, x)) : 0);
  for (let i = 0; i < frames; i++) {
    for (const ch of chans) {
      const x = clip(ch[i] as number);
      switch (format) {
        case 'u8':
          view.setUint8(at, Math.max(0, Math.min(255, Math.round(x * 128) + 128)));
          break;
        case 's16':
          view.setInt16(at, Math.max(-32768, Math.min(32767, Math.round(x * 32768))), true);
          break;
        case 's24': {
          const v = Math.max(-8388608, Math.min(8388607, Math.round(x * 8388608)));
          view.setUint8(at, v & 0xff);
          view.setUint8(at + 1, (v >> 8) & 0xff);
          view.setUint8(at + 2, (v >> 16) & 0xff);
          break;
        }
        case 's32':
          view.setInt32(at, Math.max(-2147483648, Math.min(2147483647, Math.round(x * 2147483648))), true);
          break;
        case 'f32':
          view.setFloat32(at, x, true);
          break;
      }
      at += bytesPerSample;
    }
  }
  return out;
}

/** Scales samples in [-1, 1) to int16 (x 32768, rounded, clipped): what a stethoscope sends at unit `au`, gain 32768. */
export function toInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round((samples[i] as number) * 32768)));
  return out;
}
