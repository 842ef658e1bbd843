/**
 * The medge serial stream protocol, v1: frame codec (pure, no I/O).
 *
 * The wire format is specified in `device-sdk/protocols/README.md`; section numbers in comments
 * (`§4.2`) refer to it. This file turns one complete frame into a typed `StreamFrame` and back;
 * finding frames in a byte stream (split and merged chunks, resynchronisation) is the job of
 * `StreamFramer` in `stream-framer.ts`.
 *
 * Every frame: `A5 4D | version | type | body length u16 | seq u16 | flags | 00 | header CRC-16 |
 * body | CRC-32`, all integers little-endian.
 */
import { DecodeError } from '../errors.js';
import type { StreamChunk } from '../records.js';
import { crc16Ibm3740, crc32IsoHdlc } from './crc.js';

/** The `codec` of every `DecodeError` this protocol throws. */
export const STREAM_CODEC = 'medge-stream';

/** The protocol version this codec writes and reads (§4.1 byte 2). */
export const STREAM_PROTOCOL_VERSION = 1;

/** The two sync bytes that start every frame (§3). */
export const STREAM_SYNC: readonly [number, number] = Object.freeze([0xa5, 0x4d]) as readonly [number, number];

/** Bytes of the common header, header CRC included (§4.1). */
export const STREAM_HEADER_BYTES = 12;
/** Bytes of the trailing frame CRC-32 (§4.3). */
export const STREAM_TRAILER_BYTES = 4;
/** Largest body a v1 frame may carry (§4.1). A larger length field is a framing error. */
export const STREAM_MAX_BODY_BYTES = 4096;
/** Largest complete v1 frame. */
export const STREAM_MAX_FRAME_BYTES = STREAM_HEADER_BYTES + STREAM_MAX_BODY_BYTES + STREAM_TRAILER_BYTES;
/** Bytes of the DATA sub-header that precedes the samples (§5.1). */
export const STREAM_DATA_HEADER_BYTES = 24;
/** Most channels a DATA frame may carry (the lead-off and saturation masks are 32 bits). */
export const STREAM_MAX_CHANNELS = 32;

/** Frame type codes (§4.2). 0x00 and 0x04-0x7F are reserved; 0x80-0xFF are vendor-specific. */
export const STREAM_FRAME_TYPES = Object.freeze({ data: 0x01, info: 0x02, identify: 0x03 } as const);
/** First and last vendor-specific frame type: receivers skip these frames, they are not errors (§4.2). */
export const VENDOR_FRAME_TYPE_MIN = 0x80;
export const VENDOR_FRAME_TYPE_MAX = 0xff;

/** Bits of the common header's flags byte (§4.1 byte 8). Bits 2-7 are reserved: sent as 0, ignored on receipt. */
export const STREAM_FRAME_FLAGS = Object.freeze({
  /** The sender's seq counter restarted at this frame (power-up, reset): not a gap. */
  seqReset: 0x01,
  /** DATA frames: the sample counter restarted; `firstSample` counts from a new origin. */
  clockReset: 0x02,
} as const);

/** Device type codes (§5.1). 0x00 and 0x03-0x7F are reserved; 0x80-0xFF are vendor-defined. */
export const STREAM_DEVICE_TYPES = Object.freeze({ ecg: 0x01, pcg: 0x02 } as const);
/**
 * The device that produced a frame: `ecg`, `pcg` (phonocardiogram: digital stethoscope), or a
 * vendor-defined code 0x80-0xFF.
 */
export type StreamDeviceType = keyof typeof STREAM_DEVICE_TYPES | number;

/** Unit codes (§5.2): the physical unit of `sample / gain`. 0x05-0xFF are reserved. */
export const STREAM_UNITS = Object.freeze({ au: 0x00, mV: 0x01, uV: 0x02, V: 0x03, Pa: 0x04 } as const);
/** `au` is arbitrary units (uncalibrated, e.g. stethoscope audio); the others are UCUM codes. */
export type StreamUnit = keyof typeof STREAM_UNITS;

/**
 * Sample format codes (§5.3). v1 defines `int16le` only; 0x02 (int24 LE, packed) and 0x03 (int24
 * LE in an int32) are reserved for a later version and rejected with reason `format`.
 */
export const STREAM_SAMPLE_FORMATS = Object.freeze({ int16le: 0x01 } as const);
export type StreamSampleFormat = keyof typeof STREAM_SAMPLE_FORMATS;
/** Reserved sample format codes that a v1 decoder recognises by name in its error message. */
const RESERVED_SAMPLE_FORMATS: Readonly<Record<number, string>> = Object.freeze({ 0x02: 'int24le (packed)', 0x03: 'int24le in int32' });

/** INFO capability bits (§6.2). Unknown bits are kept on decode: later devices may set them. */
export const STREAM_CAPABILITIES = Object.freeze({
  /** DATA frames carry a meaningful lead-off mask. */
  leadOff: 1 << 0,
  /** DATA frames carry a meaningful saturation mask. */
  saturation: 1 << 1,
  /** The device sends vendor-specific frames (0x80-0xFF). */
  vendorFrames: 1 << 2,
  /** The device can stream int24 samples (reserved for a later protocol version). */
  int24: 1 << 3,
} as const);

// ---- frames ----------------------------------------------------------------------------------

interface StreamFrameBase {
  /** The sender's frame counter, 0..65535, one per frame of any type, wrapping to 0 (§4.1). */
  seq: number;
  /** The seq counter restarted at this frame: a receiver reports no gap (§4.1 flag bit 0). */
  seqReset: boolean;
}

/** Samples from the device (§5). */
export interface StreamDataFrame extends StreamFrameBase {
  kind: 'data';
  deviceType: StreamDeviceType;
  sampleFormat: StreamSampleFormat;
  unit: StreamUnit;
  /** Nominal sample rate (Hz), a float32 on the wire. */
  rateHz: number;
  /** ADC units per `unit`, a float32 on the wire: `physical = sample / gain`. */
  gain: number;
  /** Index of the first sample of this frame on the device's sample counter (uint32, wraps). */
  firstSample: number;
  /** The sample counter restarted: `firstSample` counts from a new origin (§4.1 flag bit 1). */
  clockReset: boolean;
  /** Bit c set: channel c had lead-off (electrode contact lost) during this frame. uint32. */
  leadOff: number;
  /** Bit c set: channel c had at least one sample at the ADC limit in this frame. uint32. */
  saturated: number;
  /** One array per channel (1..32), all the same length (0 or more samples). */
  channels: Int16Array[];
}

/** Who the device is: the answer to IDENTIFY, also sent unprompted after power-up (§6). */
export interface StreamInfoFrame extends StreamFrameBase {
  kind: 'info';
  deviceType: StreamDeviceType;
  /** Channels in the device's DATA frames (0..32). */
  channelCount: number;
  /** `STREAM_CAPABILITIES` bits (uint32). */
  capabilities: number;
  vendor: string;
  model: string;
  firmware: string;
  serial: string;
}

/** Host to device: "send an INFO frame" (§6.1). Any body bytes are ignored (a later revision may add fields). */
export interface StreamIdentifyFrame extends StreamFrameBase {
  kind: 'identify';
}

/** A vendor-specific frame (type 0x80-0xFF). Receivers that do not know the vendor skip it. */
export interface StreamVendorFrame extends StreamFrameBase {
  kind: 'vendor';
  /** 0x80..0xFF. */
  type: number;
  body: Uint8Array;
}

export type StreamFrame = StreamDataFrame | StreamInfoFrame | StreamIdentifyFrame | StreamVendorFrame;
export type StreamFrameKind = StreamFrame['kind'];

/** The common header fields of a frame (§4.1). */
export interface StreamFrameHeader {
  version: number;
  type: number;
  bodyLength: number;
  seq: number;
  flags: number;
}

// ---- errors ----------------------------------------------------------------------------------

/**
 * Why bytes are not a frame this codec accepts:
 * - `sync`: no sync word where a frame should start;
 * - `header-crc`: a sync word, but the header CRC-16 does not match (not a frame start);
 * - `length`: the byte count disagrees with the length field, or the length field exceeds the maximum;
 * - `crc`: the frame CRC-32 does not match (the frame was damaged);
 * - `version`: an intact frame of another protocol version;
 * - `type`: an intact frame of a reserved frame type;
 * - `format`: an intact DATA frame in a sample format this version does not decode (int24);
 * - `value`: an intact frame with a field out of range (unknown unit, zero channels, bad UTF-8, ...);
 * - `truncated`: the stream ended inside a frame (framer only).
 */
export type StreamFrameErrorReason = 'sync' | 'header-crc' | 'length' | 'crc' | 'version' | 'type' | 'format' | 'value' | 'truncated';

/** A `DecodeError` (codec `medge-stream`) with a machine-readable reason. Callers branch on `reason`. */
export class StreamFrameError extends DecodeError {
  readonly reason: StreamFrameErrorReason;
  /** The common header, when one with a valid header CRC was read. */
  readonly header: StreamFrameHeader | undefined;
  constructor(reason: StreamFrameErrorReason, message: string, header?: StreamFrameHeader) {
    super(STREAM_CODEC, `${reason}: ${message}`);
    this.reason = reason;
    this.header = header;
  }
}

// ---- CRCs (§4.3) -----------------------------------------------------------------------------

/** The header check, CRC-16/IBM-3740 (`crc.ts`): check value 0x29B1. */
export const streamHeaderCrc = crc16Ibm3740;

/** The frame check, CRC-32/ISO-HDLC (`crc.ts`): check value 0xCBF43926. */
export const streamFrameCrc = crc32IsoHdlc;

// ---- common header ---------------------------------------------------------------------------

/**
 * Reads the common header at `offset` when a sync word and a valid header CRC are there; returns
 * `undefined` otherwise (also when fewer than 12 bytes are available). Does not check the length
 * against a maximum, the version or the type: those are decisions of the caller.
 */
export function readFrameHeader(bytes: Uint8Array, offset = 0): StreamFrameHeader | undefined {
  if (bytes.length - offset < STREAM_HEADER_BYTES) return undefined;
  if (bytes[offset] !== STREAM_SYNC[0] || bytes[offset + 1] !== STREAM_SYNC[1]) return undefined;
  const crc = bytes[offset + 10]! | (bytes[offset + 11]! << 8);
  if (streamHeaderCrc(bytes, offset, offset + 10) !== crc) return undefined;
  return {
    version: bytes[offset + 2]!,
    type: bytes[offset + 3]!,
    bodyLength: bytes[offset + 4]! | (bytes[offset + 5]! << 8),
    seq: bytes[offset + 6]! | (bytes[offset + 7]! << 8),
    flags: bytes[offset + 8]!,
  };
}

/** A readable name of a frame type code, for messages. */
export function frameTypeName(type: number): string {
  for (const [name, code] of Object.entries(STREAM_FRAME_TYPES)) if (code === type) return name;
  if (type >= VENDOR_FRAME_TYPE_MIN) return `vendor 0x${hex2(type)}`;
  return `reserved 0x${hex2(type)}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function describe(h: StreamFrameHeader): string {
  return `v${h.version} ${frameTypeName(h.type)} frame, seq ${h.seq}, body ${h.bodyLength} bytes`;
}

// ---- decode ----------------------------------------------------------------------------------

/**
 * Decodes exactly one complete frame. Throws `StreamFrameError` (a `DecodeError`, codec
 * `medge-stream`) with a `reason`; checks run in the order sync, header CRC, length, CRC,
 * version, type, then the fields of the body, so a damaged frame reports `crc`, never a
 * misleading field error.
 */
export function decodeFrame(bytes: Uint8Array): StreamFrame {
  if (bytes.length < STREAM_HEADER_BYTES + STREAM_TRAILER_BYTES) {
    throw new StreamFrameError('length', `${bytes.length} bytes cannot hold a frame (at least ${STREAM_HEADER_BYTES + STREAM_TRAILER_BYTES})`);
  }
  if (bytes[0] !== STREAM_SYNC[0] || bytes[1] !== STREAM_SYNC[1]) {
    throw new StreamFrameError('sync', `frame starts with ${hex2(bytes[0]!)} ${hex2(bytes[1]!)}, not the sync word a5 4d`);
  }
  const header = readFrameHeader(bytes, 0);
  if (!header) throw new StreamFrameError('header-crc', 'the header CRC-16 (bytes 10-11) does not match bytes 0-9');
  if (header.bodyLength > STREAM_MAX_BODY_BYTES) {
    throw new StreamFrameError('length', `length field ${header.bodyLength} exceeds the maximum body of ${STREAM_MAX_BODY_BYTES} bytes`, header);
  }
  const total = STREAM_HEADER_BYTES + header.bodyLength + STREAM_TRAILER_BYTES;
  if (bytes.length !== total) {
    throw new StreamFrameError('length', `${bytes.length} bytes, but the length field makes a ${total}-byte frame (${describe(header)})`, header);
  }
  const crcAt = total - STREAM_TRAILER_BYTES;
  const crc = (bytes[crcAt]! | (bytes[crcAt + 1]! << 8) | (bytes[crcAt + 2]! << 16) | (bytes[crcAt + 3]! << 24)) >>> 0;
  if (streamFrameCrc(bytes, 0, crcAt) !== crc) throw new StreamFrameError('crc', `frame CRC-32 mismatch in a ${describe(header)}`, header);
  return decodeCheckedFrame(bytes, header);
}

/**
 * Decodes a frame whose sync, header CRC, length and frame CRC the caller has verified (the
 * framer does, so it need not compute the CRC twice). Checks version, type and body fields.
 * @internal Use `decodeFrame` unless you are a framer.
 */
export function decodeCheckedFrame(bytes: Uint8Array, header: StreamFrameHeader): StreamFrame {
  if (header.version !== STREAM_PROTOCOL_VERSION) {
    throw new StreamFrameError('version', `protocol version ${header.version}; this decoder reads version ${STREAM_PROTOCOL_VERSION} (${describe(header)})`, header);
  }
  const base = { seq: header.seq, seqReset: (header.flags & STREAM_FRAME_FLAGS.seqReset) !== 0 };
  const body = bytes.subarray(STREAM_HEADER_BYTES, STREAM_HEADER_BYTES + header.bodyLength);
  switch (header.type) {
    case STREAM_FRAME_TYPES.data:
      return decodeData(body, header, base);
    case STREAM_FRAME_TYPES.info:
      return decodeInfo(body, header, base);
    case STREAM_FRAME_TYPES.identify:
      return { kind: 'identify', ...base };
    default:
      if (header.type >= VENDOR_FRAME_TYPE_MIN) return { kind: 'vendor', ...base, type: header.type, body: new Uint8Array(body) };
      throw new StreamFrameError(
        'type',
        `frame type 0x${hex2(header.type)} is reserved (v1 defines data 0x01, info 0x02, identify 0x03, and vendor 0x80-0xff) (${describe(header)})`,
        header,
      );
  }
}

function decodeDeviceType(code: number, header: StreamFrameHeader): StreamDeviceType {
  if (code === STREAM_DEVICE_TYPES.ecg) return 'ecg';
  if (code === STREAM_DEVICE_TYPES.pcg) return 'pcg';
  if (code >= 0x80) return code;
  throw new StreamFrameError('value', `device type 0x${hex2(code)} is reserved (valid: ecg 0x01, pcg 0x02, vendor 0x80-0xff)`, header);
}

function decodeData(body: Uint8Array, header: StreamFrameHeader, base: { seq: number; seqReset: boolean }): StreamDataFrame {
  if (body.length < STREAM_DATA_HEADER_BYTES) {
    throw new StreamFrameError('length', `a data frame body needs at least ${STREAM_DATA_HEADER_BYTES} bytes, got ${body.length}`, header);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const deviceType = decodeDeviceType(body[0]!, header);
  const channelCount = body[1]!;
  const formatCode = body[2]!;
  const unitCode = body[3]!;
  if (formatCode !== STREAM_SAMPLE_FORMATS.int16le) {
    const reserved = RESERVED_SAMPLE_FORMATS[formatCode];
    throw new StreamFrameError(
      'format',
      reserved
        ? `sample format 0x${hex2(formatCode)} (${reserved}) is reserved for a later version; v1 decodes int16le 0x01`
        : `unknown sample format 0x${hex2(formatCode)} (v1 decodes int16le 0x01)`,
      header,
    );
  }
  if (channelCount < 1 || channelCount > STREAM_MAX_CHANNELS) {
    throw new StreamFrameError('value', `channel count ${channelCount} is outside 1..${STREAM_MAX_CHANNELS}`, header);
  }
  const unit = unitName(unitCode);
  if (unit === undefined) {
    throw new StreamFrameError('value', `unit code 0x${hex2(unitCode)} is reserved (valid: ${Object.entries(STREAM_UNITS).map(([n, c]) => `${n} ${c}`).join(', ')})`, header);
  }
  const rateHz = view.getFloat32(4, true);
  const gain = view.getFloat32(8, true);
  if (!(Number.isFinite(rateHz) && rateHz > 0)) throw new StreamFrameError('value', `sample rate ${rateHz} Hz is not a positive finite number`, header);
  if (!(Number.isFinite(gain) && gain > 0)) throw new StreamFrameError('value', `gain ${gain} is not a positive finite number`, header);
  const firstSample = view.getUint32(12, true);
  const leadOff = view.getUint32(16, true);
  const saturated = view.getUint32(20, true);
  const unused = channelCount === 32 ? 0 : ~((1 << channelCount) - 1) >>> 0;
  if ((leadOff & unused) !== 0 || (saturated & unused) !== 0) {
    throw new StreamFrameError('value', `lead-off or saturation bits are set for channels beyond the ${channelCount} channels of the frame`, header);
  }
  const sampleBytes = body.length - STREAM_DATA_HEADER_BYTES;
  const stride = channelCount * 2;
  if (sampleBytes % stride !== 0) {
    throw new StreamFrameError('length', `${sampleBytes} sample bytes are not a whole number of ${channelCount}-channel int16 sample sets`, header);
  }
  const perChannel = sampleBytes / stride;
  const channels: Int16Array[] = [];
  for (let c = 0; c < channelCount; c++) {
    const out = new Int16Array(perChannel);
    let at = STREAM_DATA_HEADER_BYTES + 2 * c;
    for (let i = 0; i < perChannel; i++, at += stride) out[i] = ((body[at]! | (body[at + 1]! << 8)) << 16) >> 16;
    channels.push(out);
  }
  return {
    kind: 'data',
    ...base,
    deviceType,
    sampleFormat: 'int16le',
    unit,
    rateHz,
    gain,
    firstSample,
    clockReset: (header.flags & STREAM_FRAME_FLAGS.clockReset) !== 0,
    leadOff,
    saturated,
    channels,
  };
}

const UNIT_BY_CODE: ReadonlyMap<number, StreamUnit> = new Map(Object.entries(STREAM_UNITS).map(([name, code]) => [code, name as StreamUnit]));

function unitName(code: number): StreamUnit | undefined {
  return UNIT_BY_CODE.get(code);
}

const INFO_FIXED_BYTES = 8;
const INFO_STRINGS = ['vendor', 'model', 'firmware', 'serial'] as const;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function decodeInfo(body: Uint8Array, header: StreamFrameHeader, base: { seq: number; seqReset: boolean }): StreamInfoFrame {
  if (body.length < INFO_FIXED_BYTES + INFO_STRINGS.length) {
    throw new StreamFrameError('length', `an info frame body needs at least ${INFO_FIXED_BYTES + INFO_STRINGS.length} bytes, got ${body.length}`, header);
  }
  const deviceType = decodeDeviceType(body[0]!, header);
  const channelCount = body[1]!;
  if (channelCount > STREAM_MAX_CHANNELS) throw new StreamFrameError('value', `channel count ${channelCount} is outside 0..${STREAM_MAX_CHANNELS}`, header);
  const capabilities = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(4, true);
  const strings: string[] = [];
  let at = INFO_FIXED_BYTES;
  for (const name of INFO_STRINGS) {
    const len = body[at];
    if (len === undefined || at + 1 + len > body.length) {
      throw new StreamFrameError('length', `the ${name} string runs past the end of the ${body.length}-byte info body`, header);
    }
    try {
      strings.push(utf8Decoder.decode(body.subarray(at + 1, at + 1 + len)));
    } catch {
      throw new StreamFrameError('value', `the ${name} string is not valid UTF-8`, header);
    }
    at += 1 + len;
  }
  // Bytes after the four strings are ignored: a later revision of v1 may append fields (§6.2).
  const [vendor = '', model = '', firmware = '', serial = ''] = strings;
  return { kind: 'info', ...base, deviceType, channelCount, capabilities, vendor, model, firmware, serial };
}

// ---- encode ----------------------------------------------------------------------------------

/**
 * Encodes one frame. Throws `RangeError` (naming the field and the valid range) for a frame that
 * v1 cannot carry. `rateHz` and `gain` are written as float32: decode returns `Math.fround` of them.
 */
export function encodeFrame(frame: StreamFrame): Uint8Array {
  checkUint('seq', frame.seq, 0xffff);
  let flags = frame.seqReset ? STREAM_FRAME_FLAGS.seqReset : 0;
  let type: number;
  let body: Uint8Array;
  switch (frame.kind) {
    case 'data':
      type = STREAM_FRAME_TYPES.data;
      body = encodeData(frame);
      if (frame.clockReset) flags |= STREAM_FRAME_FLAGS.clockReset;
      break;
    case 'info':
      type = STREAM_FRAME_TYPES.info;
      body = encodeInfo(frame);
      break;
    case 'identify':
      type = STREAM_FRAME_TYPES.identify;
      body = new Uint8Array(0);
      break;
    case 'vendor':
      if (!Number.isInteger(frame.type) || frame.type < VENDOR_FRAME_TYPE_MIN || frame.type > VENDOR_FRAME_TYPE_MAX) {
        throw new RangeError(`vendor frame type must be an integer in 0x80..0xff, got ${String(frame.type)}`);
      }
      type = frame.type;
      body = frame.body;
      break;
    default:
      throw new RangeError(`unknown frame kind ${JSON.stringify((frame as { kind?: unknown }).kind)} (valid: data, info, identify, vendor)`);
  }
  if (body.length > STREAM_MAX_BODY_BYTES) {
    throw new RangeError(`a ${frame.kind} frame body of ${body.length} bytes exceeds the maximum of ${STREAM_MAX_BODY_BYTES}; send fewer samples per frame`);
  }
  const out = new Uint8Array(STREAM_HEADER_BYTES + body.length + STREAM_TRAILER_BYTES);
  out[0] = STREAM_SYNC[0];
  out[1] = STREAM_SYNC[1];
  out[2] = STREAM_PROTOCOL_VERSION;
  out[3] = type;
  out[4] = body.length & 0xff;
  out[5] = body.length >>> 8;
  out[6] = frame.seq & 0xff;
  out[7] = frame.seq >>> 8;
  out[8] = flags;
  out[9] = 0;
  const hcrc = streamHeaderCrc(out, 0, 10);
  out[10] = hcrc & 0xff;
  out[11] = hcrc >>> 8;
  out.set(body, STREAM_HEADER_BYTES);
  const crcAt = STREAM_HEADER_BYTES + body.length;
  const crc = streamFrameCrc(out, 0, crcAt);
  out[crcAt] = crc & 0xff;
  out[crcAt + 1] = (crc >>> 8) & 0xff;
  out[crcAt + 2] = (crc >>> 16) & 0xff;
  out[crcAt + 3] = crc >>> 24;
  return out;
}

function checkUint(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${field} must be an integer in 0..${max}, got ${String(value)}`);
}

function encodeDeviceType(deviceType: StreamDeviceType): number {
  if (typeof deviceType === 'number') {
    if (!Number.isInteger(deviceType) || deviceType < 0x80 || deviceType > 0xff) {
      throw new RangeError(`deviceType must be 'ecg', 'pcg' or a vendor code in 0x80..0xff, got ${String(deviceType)}`);
    }
    return deviceType;
  }
  const code = (STREAM_DEVICE_TYPES as Readonly<Record<string, number>>)[deviceType];
  if (code === undefined) throw new RangeError(`deviceType must be 'ecg', 'pcg' or a vendor code in 0x80..0xff, got ${JSON.stringify(deviceType)}`);
  return code;
}

function encodeData(frame: StreamDataFrame): Uint8Array {
  const channelCount = frame.channels.length;
  if (channelCount < 1 || channelCount > STREAM_MAX_CHANNELS) throw new RangeError(`a data frame carries 1..${STREAM_MAX_CHANNELS} channels, got ${channelCount}`);
  const perChannel = frame.channels[0]!.length;
  if (frame.channels.some((c) => c.length !== perChannel)) {
    throw new RangeError(`all channels of a data frame hold the same number of samples, got ${frame.channels.map((c) => c.length).join(', ')}`);
  }
  if (frame.sampleFormat !== 'int16le') throw new RangeError(`sampleFormat must be 'int16le' in v1, got ${JSON.stringify(frame.sampleFormat)}`);
  const unitCode = (STREAM_UNITS as Readonly<Record<string, number>>)[frame.unit];
  if (unitCode === undefined) throw new RangeError(`unit must be one of ${Object.keys(STREAM_UNITS).join(', ')}, got ${JSON.stringify(frame.unit)}`);
  const rate = Math.fround(frame.rateHz);
  const gain = Math.fround(frame.gain);
  if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError(`rateHz must be a positive finite float32, got ${String(frame.rateHz)}`);
  if (!(Number.isFinite(gain) && gain > 0)) throw new RangeError(`gain must be a positive finite float32, got ${String(frame.gain)}`);
  checkUint('firstSample', frame.firstSample, 0xffffffff);
  checkUint('leadOff', frame.leadOff, 0xffffffff);
  checkUint('saturated', frame.saturated, 0xffffffff);
  const unused = channelCount === 32 ? 0 : ~((1 << channelCount) - 1) >>> 0;
  if ((frame.leadOff & unused) !== 0 || (frame.saturated & unused) !== 0) {
    throw new RangeError(`leadOff and saturated may only set bits 0..${channelCount - 1} for a ${channelCount}-channel frame`);
  }
  const body = new Uint8Array(STREAM_DATA_HEADER_BYTES + channelCount * perChannel * 2);
  const view = new DataView(body.buffer);
  body[0] = encodeDeviceType(frame.deviceType);
  body[1] = channelCount;
  body[2] = STREAM_SAMPLE_FORMATS.int16le;
  body[3] = unitCode;
  view.setFloat32(4, rate, true);
  view.setFloat32(8, gain, true);
  view.setUint32(12, frame.firstSample, true);
  view.setUint32(16, frame.leadOff, true);
  view.setUint32(20, frame.saturated, true);
  const stride = channelCount * 2;
  for (let c = 0; c < channelCount; c++) {
    const samples = frame.channels[c]!;
    let at = STREAM_DATA_HEADER_BYTES + 2 * c;
    for (let i = 0; i < perChannel; i++, at += stride) {
      const s = samples[i]!;
      body[at] = s & 0xff;
      body[at + 1] = (s >> 8) & 0xff;
    }
  }
  return body;
}

function encodeInfo(frame: StreamInfoFrame): Uint8Array {
  checkUint('channelCount', frame.channelCount, STREAM_MAX_CHANNELS);
  checkUint('capabilities', frame.capabilities, 0xffffffff);
  const strings = INFO_STRINGS.map((name) => {
    const bytes = utf8Encoder.encode(frame[name]);
    if (bytes.length > 255) throw new RangeError(`info ${name} is ${bytes.length} UTF-8 bytes; the maximum is 255`);
    return bytes;
  });
  const body = new Uint8Array(INFO_FIXED_BYTES + strings.reduce((n, s) => n + 1 + s.length, 0));
  body[0] = encodeDeviceType(frame.deviceType);
  body[1] = frame.channelCount;
  new DataView(body.buffer).setUint32(4, frame.capabilities, true);
  let at = INFO_FIXED_BYTES;
  for (const s of strings) {
    body[at] = s.length;
    body.set(s, at + 1);
    at += 1 + s.length;
  }
  return body;
}

// ---- to stream chunks ------------------------------------------------------------------------

export interface FrameToChunksOptions {
  /**
   * Index of the frame's first sample in the sensor's stream, when the caller keeps an unwrapped
   * counter (the wire counter is uint32 and wraps). Default: `frame.firstSample`.
   */
  firstSample?: number;
  /**
   * Device clock (ms) of the frame's first sample. Default: the sender's sample clock,
   * `round(firstSample * 1000 / rateHz)` ms since its counter origin; a driver that maps the
   * device's counter to the board clock passes its own value.
   */
  t0?: number;
  /**
   * The `STREAM_CAPABILITIES` of the device's INFO frame (§6.2), which say whether the masks mean
   * anything: the lead-off mask is read only with `leadOff`, the saturation mask only with
   * `saturation`. Default 0: a device that has not said so (no INFO yet) reports neither.
   */
  capabilities?: number;
}

/**
 * One `StreamChunk` per channel of a DATA frame, channel numbers 0..n-1 in wire order, each with
 * the frame's rate, gain and unit. The chunk of channel c has `leadOff: true` when bit c of the
 * frame's lead-off mask is set and `options.capabilities` says the mask is meaningful, likewise
 * `saturated: true`; both are absent otherwise. A status-only frame (no samples, §5.1) gives one
 * zero-sample chunk per channel carrying those flags (its report: a lead off or back on) when
 * `options.capabilities` announces a mask, and no chunks when it does not (it then says nothing).
 */
export function frameToChunks(frame: StreamDataFrame, sensor: string, options: FrameToChunksOptions = {}): StreamChunk[] {
  const perChannel = frame.channels[0]?.length ?? 0;
  const capabilities = options.capabilities ?? 0;
  if (perChannel === 0 && (capabilities & (STREAM_CAPABILITIES.leadOff | STREAM_CAPABILITIES.saturation)) === 0) return [];
  const firstSample = options.firstSample ?? frame.firstSample;
  const t0 = options.t0 ?? Math.round((firstSample * 1000) / frame.rateHz);
  const leadOff = (capabilities & STREAM_CAPABILITIES.leadOff) !== 0 ? frame.leadOff : 0;
  const saturated = (capabilities & STREAM_CAPABILITIES.saturation) !== 0 ? frame.saturated : 0;
  return frame.channels.map((samples, channel) => ({
    sensor,
    channel,
    firstSample,
    t0,
    rateHz: frame.rateHz,
    unit: frame.unit,
    gain: frame.gain,
    samples,
    ...(((leadOff >>> channel) & 1) === 1 ? { leadOff: true as const } : {}),
    ...(((saturated >>> channel) & 1) === 1 ? { saturated: true as const } : {}),
  }));
}
