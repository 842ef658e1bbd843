/**
 * RIFF/WAVE PCM codec, pure (no I/O): the container of digital stethoscope recordings (PASCAL,
 * PhysioNet 2016) that the simulator replays and the heart-sound analytics read.
 *
 * Spec: Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0" (1991), RIFF
 * and the `fmt ` / `data` chunks; WAVE_FORMAT_EXTENSIBLE (0xFFFE) from Microsoft's
 * "Multiple channel audio data and WAVE files" (2007).
 * - A file is `RIFF <size:u32le> WAVE` then chunks `<id:4> <size:u32le> <body>`, each body padded
 *   to an even length (the pad byte is not counted in `size`). Unknown chunks (`LIST`, `fact`, ...)
 *   are skipped.
 * - `fmt ` body: format tag u16 (1 = PCM, 0xFFFE = extensible with a PCM sub-format GUID at offset
 *   24), channels u16, sample rate u32, byte rate u32, block align u16, bits per sample u16.
 * - Samples are interleaved frames. 8-bit PCM is UNSIGNED (128 = zero); 16, 24 and 32-bit are
 *   signed two's complement little-endian.
 *
 * Accepted: PCM 8/16/24/32-bit, any rate, 1..8 channels. A `data` chunk whose declared size runs
 * past the end of the file (a recorder that stopped before rewriting the header) is read up to the
 * last whole frame and reported with `truncated: true`. Anything else throws `WavError`
 * (a `DecodeError`, codec `wav`) with a machine-readable `reason`.
 */
import { DecodeError } from '../errors.js';

export const WAV_CODEC = 'wav';
export const WAV_FORMAT_PCM = 0x0001;
export const WAV_FORMAT_EXTENSIBLE = 0xfffe;
export const WAV_BITS = [8, 16, 24, 32] as const;
export type WavBits = (typeof WAV_BITS)[number];
export const WAV_MAX_CHANNELS = 8;

export type WavErrorReason = 'riff' | 'chunk' | 'fmt' | 'format' | 'bits' | 'channels' | 'rate' | 'no-data';

export class WavError extends DecodeError {
  readonly reason: WavErrorReason;
  constructor(reason: WavErrorReason, message: string) {
    super(WAV_CODEC, `${reason}: ${message}`);
    this.reason = reason;
  }
}

export interface WavAudio {
  sampleRate: number;
  bitsPerSample: WavBits;
  /** One array per channel, each sample scaled to [-1, 1): value / 2^(bits-1) (8-bit: (value - 128) / 128). */
  channels: Float32Array[];
  /** Frames (samples per channel). */
  frames: number;
  /** The `data` chunk claimed more bytes than the file holds. */
  truncated: boolean;
}

/** KSDATAFORMAT_SUBTYPE_PCM: 00000001-0000-0010-8000-00aa00389b71, as stored (first 3 fields little-endian). */
const PCM_SUBFORMAT = [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0, bytes[at + 3] ?? 0);
}

interface Fmt {
  channels: number;
  sampleRate: number;
  bits: WavBits;
  blockAlign: number;
}

function parseFmt(view: DataView, at: number, size: number): Fmt {
  if (size < 16) throw new WavError('fmt', `fmt chunk has ${size} bytes, needs at least 16`);
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bits = view.getUint16(at + 14, true);
  if (tag === WAV_FORMAT_EXTENSIBLE) {
    if (size < 40) throw new WavError('fmt', `extensible fmt chunk has ${size} bytes, needs 40`);
    const guid = new Uint8Array(view.buffer, view.byteOffset + at + 24, 16);
    if (!PCM_SUBFORMAT.every((b, i) => guid[i] === b)) throw new WavError('format', 'extensible sub-format is not PCM (float and compressed audio are not supported)');
    tag = WAV_FORMAT_PCM;
  }
  if (tag !== WAV_FORMAT_PCM) throw new WavError('format', `format tag 0x${tag.toString(16).padStart(4, '0')} is not PCM (1) or extensible PCM (0xfffe)`);
  if (!(WAV_BITS as readonly number[]).includes(bits)) throw new WavError('bits', `${bits} bits per sample; supported: ${WAV_BITS.join(', ')}`);
  if (channels < 1 || channels > WAV_MAX_CHANNELS) throw new WavError('channels', `${channels} channels; supported: 1..${WAV_MAX_CHANNELS}`);
  if (sampleRate < 1) throw new WavError('rate', 'sample rate 0');
  const expectedAlign = channels * (bits / 8);
  if (blockAlign !== expectedAlign) throw new WavError('fmt', `block align ${blockAlign} does not match ${channels} channels x ${bits} bits (${expectedAlign})`);
  return { channels, sampleRate, bits: bits as WavBits, blockAlign };
}

/** Decodes a whole WAV file. Throws `WavError` for anything that is not PCM WAVE as described above. */
export function decodeWav(bytes: Uint8Array): WavAudio {
  if (bytes.length < 12 || fourcc(bytes, 0) !== 'RIFF' || fourcc(bytes, 8) !== 'WAVE') throw new WavError('riff', 'not a RIFF/WAVE file (expected "RIFF" .... "WAVE")');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 12;
  let fmt: Fmt | undefined;
  while (at + 8 <= bytes.length) {
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (body + size > bytes.length) throw new WavError('chunk', `fmt chunk claims ${size} bytes, file ends first`);
      fmt = parseFmt(view, body, size);
    } else if (id === 'data') {
      if (!fmt) throw new WavError('fmt', 'data chunk before any fmt chunk');
      const available = Math.min(size, bytes.length - body);
      const frames = Math.floor(available / fmt.blockAlign);
      return { sampleRate: fmt.sampleRate, bitsPerSample: fmt.bits, frames, truncated: available < size, channels: deinterleave(view, body, frames, fmt) };
    }
    at = body + size + (size & 1);
  }
  throw new WavError(fmt ? 'no-data' : 'fmt', fmt ? 'no data chunk' : 'no fmt chunk');
}

function deinterleave(view: DataView, at: number, frames: number, fmt: Fmt): Float32Array[] {
  const out = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
  const width = fmt.bits / 8;
  const scale = 2 ** (fmt.bits - 1);
  let p = at;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < fmt.channels; c++) {
      let v: number;
      if (fmt.bits === 8) v = view.getUint8(p) - 128;
      else if (fmt.bits === 16) v = view.getInt16(p, true);
      else if (fmt.bits === 24) v = ((view.getUint8(p) | (view.getUint8(p + 1) << 8) | (view.getUint8(p + 2) << 16)) << 8) >> 8;
      else v = view.getInt32(p, true);
      (out[c] as Float32Array)[i] = v / scale;
      p += width;
    }
  }
  return out;
}

export interface EncodeWavOptions {
  sampleRate: number;
  bitsPerSample: WavBits;
}

/**
 * Encodes channels of samples in [-1, 1) as a canonical PCM WAV (44-byte header). Values are
 * rounded to the nearest step and clipped to the format's range. All channels must have the same length.
 */
export function encodeWav(channels: readonly Float32Array[], options: EncodeWavOptions): Uint8Array {
  const { sampleRate, bitsPerSample: bits } = options;
  const n = channels.length;
  if (n < 1 || n > WAV_MAX_CHANNELS) throw new WavError('channels', `${n} channels; supported: 1..${WAV_MAX_CHANNELS}`);
  if (!(WAV_BITS as readonly number[]).includes(bits)) throw new WavError('bits', `${bits} bits per sample; supported: ${WAV_BITS.join(', ')}`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff) throw new WavError('rate', `sample rate ${sampleRate}`);
  const frames = channels[0]?.length ?? 0;
  if (channels.some((c) => c.length !== frames)) throw new WavError('channels', 'channels differ in length');
  const width = bits / 8;
  const dataBytes = frames * n * width;
  const out = new Uint8Array(44 + dataBytes + (dataBytes & 1));
  const view = new DataView(out.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  view.setUint32(4, out.length - 8, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, WAV_FORMAT_PCM, true);
  view.setUint16(22, n, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * n * width, true);
  view.setUint16(32, n * width, true);
  view.setUint16(34, bits, true);
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  const scale = 2 ** (bits - 1);
  let p = 44;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < n; c++) {
      const x = (channels[c] as Float32Array)[i] as number;
      const v = Math.max(-scale, Math.min(scale - 1, Math.round((Number.isFinite(x) ? x : 0) * scale)));
      if (bits === 8) view.setUint8(p, v + 128);
      else if (bits === 16) view.setInt16(p, v, true);
      else if (bits === 24) {
        view.setUint8(p, v & 0xff);
        view.setUint8(p + 1, (v >> 8) & 0xff);
        view.setUint8(p + 2, (v >> 16) & 0xff);
      } else view.setInt32(p, v, true);
      p += width;
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
