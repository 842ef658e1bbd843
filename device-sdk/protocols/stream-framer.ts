/**
 * Finds medge stream frames (v1, `device-sdk/protocols/README.md`) in a serial byte stream.
 *
 * Transport chunks arrive split and merged at arbitrary points; `StreamFramer.push` takes each
 * chunk and returns what it completed: frames, garbage (bytes skipped while resynchronising, with
 * the reason, for quarantine) and gaps in the sender's frame counter.
 *
 * Accounting: the bytes of all `frame.raw` and `garbage.bytes`, concatenated in event order, are
 * exactly the bytes pushed, minus `bufferedBytes` (still undecided); after `flush()` exactly the
 * bytes pushed. Nothing is dropped silently.
 *
 * Resynchronisation (README §3.2): a candidate frame starts at a sync word `A5 4D` with a valid
 * header CRC-16 and a length within the maximum; it is a frame when its CRC-32 matches. When a
 * candidate fails at any step, the framer skips exactly one byte and scans again, so an intact
 * frame is found even when it starts inside the bytes a damaged frame claimed. A frame still
 * incomplete is not waited for when a complete intact frame already starts inside the bytes it
 * announced (a device that reset mid-frame, or a cut vendor frame announcing 4 KB): its bytes up to
 * that frame are garbage (`truncated`) at once, so the frames after a cut one are not held back until
 * the cut one's length has passed (QA: 3.6 s of a 360 Hz ECG; 16 s at 128 Hz).
 */
import { ConfigError } from '../errors.js';
import {
  decodeCheckedFrame,
  readFrameHeader,
  STREAM_FRAME_FLAGS,
  STREAM_HEADER_BYTES,
  STREAM_MAX_BODY_BYTES,
  STREAM_SYNC,
  STREAM_TRAILER_BYTES,
  streamFrameCrc,
  type StreamFrame,
  StreamFrameError,
  type StreamFrameHeader,
  frameTypeName,
} from './stream-frame.js';

export interface StreamFramerOptions {
  /**
   * Largest frame body accepted, in bytes (0..4096, default 4096, the v1 maximum). A header whose
   * length field is larger is treated as a false start: the framer resynchronises instead of
   * waiting for (and buffering) that many bytes.
   */
  maxBodyBytes: number;
}

export const DEFAULT_STREAM_FRAMER_OPTIONS: Readonly<StreamFramerOptions> = Object.freeze({ maxBodyBytes: STREAM_MAX_BODY_BYTES });

/** A complete, intact, decoded frame and its exact bytes. Vendor frames come here too: skip them by `frame.kind`. */
export interface StreamFrameEvent {
  type: 'frame';
  frame: StreamFrame;
  raw: Uint8Array;
}

/**
 * Bytes that are not a decodable frame, with the reason (`error.reason`): noise or a partial frame
 * (`sync`, `header-crc`), a damaged frame (`crc`, `length`), an intact frame this decoder cannot
 * read (`version`, `type`, `format`, `value`: `bytes` is then exactly that frame), or the tail
 * left at `flush()` (`truncated`). For quarantine; never to be dropped.
 */
export interface StreamGarbageEvent {
  type: 'garbage';
  bytes: Uint8Array;
  error: StreamFrameError;
}

/**
 * The sender's frame counter jumped: `missingFrames = (gotSeq - expectedSeq) mod 65536` frames were
 * lost (or damaged beyond recognition) before the frame that follows this event. Not reported for
 * the first frame seen or for a frame with the seq-reset flag.
 */
export interface StreamGapEvent {
  type: 'gap';
  expectedSeq: number;
  gotSeq: number;
  missingFrames: number;
}

export type StreamFramerEvent = StreamFrameEvent | StreamGarbageEvent | StreamGapEvent;

const INITIAL_CAPACITY = 16 * 1024;

/**
 * A stateful frame finder for one direction of one link: one instance per port and direction.
 * Memory: at most about two maximum frames are held between calls (`bufferedBytes`).
 */
export class StreamFramer {
  readonly options: Readonly<StreamFramerOptions>;
  readonly #maxFrameBytes: number;
  #buf = new Uint8Array(INITIAL_CAPACITY);
  /** Pending bytes are `#buf[#start, #end)`; `[#start, #scan)` is a garbage run not yet emitted. */
  #start = 0;
  #scan = 0;
  #end = 0;
  #runError: StreamFrameError | undefined;
  #expectedSeq: number | undefined;

  constructor(options: Partial<StreamFramerOptions> = {}) {
    const merged = { ...DEFAULT_STREAM_FRAMER_OPTIONS, ...options };
    const max = merged.maxBodyBytes;
    if (!Number.isInteger(max) || max < 0 || max > STREAM_MAX_BODY_BYTES) {
      throw new ConfigError('maxBodyBytes', max, `must be an integer in 0..${STREAM_MAX_BODY_BYTES}`, `omit it for the v1 maximum (${STREAM_MAX_BODY_BYTES})`);
    }
    this.options = Object.freeze(merged);
    this.#maxFrameBytes = STREAM_HEADER_BYTES + max + STREAM_TRAILER_BYTES;
  }

  /** Bytes pushed but not yet returned in any event. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** The seq the next frame should carry, once a frame has been seen. */
  get expectedSeq(): number | undefined {
    return this.#expectedSeq;
  }

  /** Takes the next transport chunk (any size, including empty) and returns the events it completed, in stream order. */
  push(bytes: Uint8Array): StreamFramerEvent[] {
    this.#append(bytes);
    return this.#process(false);
  }

  /**
   * Ends the stream (port closed): frames still complete in the buffer are returned, everything
   * else as garbage (`truncated` for an unfinished frame). Sequence tracking is kept, so frames
   * missed while a port was closed are reported as a gap after it reopens.
   */
  flush(): StreamFramerEvent[] {
    return this.#process(true);
  }

  #append(bytes: Uint8Array): void {
    const pending = this.#end - this.#start;
    if (this.#end + bytes.length > this.#buf.length) {
      const needed = pending + bytes.length;
      if (needed <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#scan -= this.#start;
      this.#start = 0;
      this.#end = pending;
    }
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  #process(final: boolean): StreamFramerEvent[] {
    const end = this.#end;
    const buf = this.#buf.subarray(0, end);
    const maxBody = this.options.maxBodyBytes;
    const maxFrameBytes = this.#maxFrameBytes;
    const events: StreamFramerEvent[] = [];
    let runStart = this.#start;
    let pos = this.#scan;
    let runError = this.#runError;

    const emitRun = (): void => {
      if (pos > runStart) events.push({ type: 'garbage', bytes: buf.slice(runStart, pos), error: runError ?? noFrameStart() });
      runStart = pos;
      runError = undefined;
    };
    /**
     * Classifies `[pos, to)` as garbage; `newRun` starts a separate garbage event for a distinct
     * failure. A run is emitted in pieces of at most one maximum frame, so neither the buffer nor
     * a quarantine row grows without bound on a stream of noise.
     */
    const skip = (to: number, error: () => StreamFrameError, newRun: boolean): void => {
      if (newRun) emitRun();
      runError ??= error();
      while (to - runStart >= maxFrameBytes) {
        const continued: StreamFrameError | undefined = runError;
        pos = runStart + maxFrameBytes;
        emitRun();
        runError = continued;
      }
      pos = to;
    };

    while (pos < end) {
      const p = findSync(buf, pos, end);
      if (p > pos) skip(p, noFrameStart, false);
      if (p >= end) break;
      if (end - p < STREAM_HEADER_BYTES) {
        if (!final) break;
        skip(p + 1, () => new StreamFrameError('truncated', `the stream ended ${end - p} bytes into a possible frame header`), true);
        continue;
      }
      const header = readFrameHeader(buf, p);
      if (!header) {
        skip(p + 1, () => new StreamFrameError('header-crc', 'a sync word whose header CRC-16 does not match: not a frame start'), false);
        continue;
      }
      if (header.bodyLength > maxBody) {
        skip(p + 1, () => new StreamFrameError('length', `length field ${header.bodyLength} exceeds the maximum body of ${maxBody} bytes (${describe(header)})`, header), true);
        continue;
      }
      const total = STREAM_HEADER_BYTES + header.bodyLength + STREAM_TRAILER_BYTES;
      if (end - p < total) {
        const inside = completeFrameWithin(buf, p + 1, end, maxBody);
        if (inside !== undefined) {
          // A device that resets mid-frame starts afresh: its next frames come inside the bytes the cut frame announced.
          skip(inside, () => new StreamFrameError('truncated', `a frame cut after ${inside - p} bytes: a complete frame starts inside the ${total} bytes it announced (${describe(header)})`, header), true);
          continue;
        }
        if (!final) break;
        skip(p + 1, () => new StreamFrameError('truncated', `the stream ended ${end - p} bytes into a ${total}-byte frame (${describe(header)})`, header), true);
        continue;
      }
      const crcAt = p + total - STREAM_TRAILER_BYTES;
      if (streamFrameCrc(buf, p, crcAt) !== readCrc32(buf, crcAt)) {
        skip(p + 1, () => new StreamFrameError('crc', `frame CRC-32 mismatch: a damaged frame or a false start (${describe(header)})`, header), true);
        continue;
      }
      emitRun();
      const raw = buf.slice(p, p + total);
      this.#trackSeq(header, events);
      try {
        events.push({ type: 'frame', frame: decodeCheckedFrame(raw, header), raw });
      } catch (error) {
        if (!(error instanceof StreamFrameError)) throw error;
        events.push({ type: 'garbage', bytes: raw, error });
      }
      pos = p + total;
      runStart = pos;
    }

    if (final) emitRun();
    this.#start = runStart;
    this.#scan = pos;
    this.#runError = runError;
    const pending = this.#end - this.#start;
    if (this.#buf.length > INITIAL_CAPACITY * 4 && pending <= INITIAL_CAPACITY) {
      // A large push grew the buffer; give the memory back once the pending bytes are small again.
      const small = new Uint8Array(INITIAL_CAPACITY);
      small.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = small;
    } else if (pending > 0) {
      return events;
    }
    this.#scan -= this.#start;
    this.#start = 0;
    this.#end = pending;
    return events;
  }

  #trackSeq(header: StreamFrameHeader, events: StreamFramerEvent[]): void {
    const expected = this.#expectedSeq;
    if (expected !== undefined && (header.flags & STREAM_FRAME_FLAGS.seqReset) === 0 && header.seq !== expected) {
      events.push({ type: 'gap', expectedSeq: expected, gotSeq: header.seq, missingFrames: (header.seq - expected) & 0xffff });
    }
    this.#expectedSeq = (header.seq + 1) & 0xffff;
  }
}

/**
 * The first index in `[from, end)` where a frame could start: a sync word, or a first sync byte
 * as the last byte (its second byte is still to come). `end` when there is none.
 */
function findSync(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  for (;;) {
    i = buf.indexOf(STREAM_SYNC[0], i);
    if (i < 0 || i >= end) return end;
    if (i + 1 >= end || buf[i + 1] === STREAM_SYNC[1]) return i;
    i++;
  }
}

/**
 * The start of the first complete, intact frame (valid header CRC-16, length within `maxBody`, CRC-32
 * matching) in `[from, end)`, or undefined. A frame still being received cannot contain one unless its
 * body embeds a whole frame with both checksums right, which v1 senders never do (README §3.2).
 */
function completeFrameWithin(buf: Uint8Array, from: number, end: number, maxBody: number): number | undefined {
  for (let q = findSync(buf, from, end); end - q >= STREAM_HEADER_BYTES; q = findSync(buf, q + 1, end)) {
    const header = readFrameHeader(buf, q);
    if (!header || header.bodyLength > maxBody) continue;
    const crcAt = q + STREAM_HEADER_BYTES + header.bodyLength;
    if (crcAt + STREAM_TRAILER_BYTES > end) continue;
    if (streamFrameCrc(buf, q, crcAt) === readCrc32(buf, crcAt)) return q;
  }
  return undefined;
}

/** The little-endian CRC-32 trailer at `at`. */
function readCrc32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

function noFrameStart(): StreamFrameError {
  return new StreamFrameError('sync', 'bytes that do not start a frame (no sync word a5 4d)');
}

function describe(h: StreamFrameHeader): string {
  return `v${h.version} ${frameTypeName(h.type)} frame, seq ${h.seq}, body ${h.bodyLength} bytes`;
}
