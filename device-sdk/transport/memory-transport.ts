/**
 * Two `ByteTransport`s joined by an in-memory wire: unit tests, the simulator's virtual devices and
 * anything else that needs a link without hardware. Implements the contract of `byte-transport.ts`
 * (checked by `test/transport/byte-transport.contract.ts`) plus fault hooks: a delivery delay on an
 * injected clock, chunk splitting, and unplug/replug of the wire.
 *
 * Wire model: a write is handed over in pieces as the peer has room (at most `highWaterMark` bytes
 * unread or in flight to it; a blocked write resumes when half of that is free), like an OS buffer;
 * `write()` resolves once all of its bytes were handed over. Each handed-over piece arrives `delayMs` later, cut into the chunks `split` returns.
 * Bytes written while the peer is not open are lost, as on a cable with nothing listening.
 */
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { Random } from '../random.js';
import { TransportError } from './byte-transport.js';
import { TransportBase } from './transport-base.js';

export interface MemoryTransportPairOptions {
  /** `info.path` of the two ends. */
  names: readonly [string, string];
  /** Each write reaches the peer this many ms (on `clock`) after it was handed over; 0: on the next microtask. */
  delayMs: number;
  /**
   * Cuts every handed-over piece of a write into the chunks the peer receives (their concatenation
   * must be the input); `undefined`: one chunk per piece. See `randomSplitter`.
   */
  split: ((bytes: Uint8Array) => Uint8Array[]) | undefined;
  /** Bytes an end may hold unread plus in flight to it; writes to it wait for room beyond that. */
  highWaterMark: number;
  clock: Clock;
}

export const DEFAULT_MEMORY_TRANSPORT_PAIR_OPTIONS: Readonly<MemoryTransportPairOptions> = Object.freeze({
  names: Object.freeze(['memory:a', 'memory:b']) as readonly [string, string],
  delayMs: 0,
  split: undefined,
  highWaterMark: 64 * 1024,
  clock: systemClock,
});

export interface MemoryTransportPair {
  readonly a: MemoryTransport;
  readonly b: MemoryTransport;
  /** False between `disconnect()` and `reconnect()`. */
  readonly connected: boolean;
  /**
   * Unplugs the wire: every open end becomes `disconnected` and emits `disconnect`; bytes in flight
   * are lost; `open()` rejects with `open-failed` until `reconnect()`. No-op when already unplugged.
   */
  disconnect(): void;
  /** Plugs the wire back in: `open()` works again. Ends stay closed or disconnected until opened. */
  reconnect(): void;
}

/** Creates two connected, closed ends. Open both before writing. */
export function createMemoryTransportPair(options: Partial<MemoryTransportPairOptions> = {}): MemoryTransportPair {
  const merged: MemoryTransportPairOptions = { ...DEFAULT_MEMORY_TRANSPORT_PAIR_OPTIONS, ...options };
  validate(merged);
  const wire: Wire = { connected: true, options: merged };
  const a = new MemoryTransport(wire, merged.names[0]);
  const b = new MemoryTransport(wire, merged.names[1]);
  a.peer = b;
  b.peer = a;
  return {
    a,
    b,
    get connected() {
      return wire.connected;
    },
    disconnect() {
      if (!wire.connected) return;
      wire.connected = false;
      a.unplug();
      b.unplug();
    },
    reconnect() {
      wire.connected = true;
    },
  };
}

/**
 * A `split` that cuts every write into chunks of 1..`maxChunk` bytes, sizes drawn from `random`
 * (seed it, e.g. `mulberry32(7)`, for a reproducible run).
 */
export function randomSplitter(random: Random, maxChunk: number): (bytes: Uint8Array) => Uint8Array[] {
  if (!Number.isInteger(maxChunk) || maxChunk < 1) throw new ConfigError('maxChunk', maxChunk, 'must be an integer >= 1', 'pass the largest chunk size in bytes, e.g. 64');
  return (bytes) => {
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < bytes.byteLength; ) {
      const size = 1 + Math.floor(random() * maxChunk);
      chunks.push(bytes.subarray(offset, offset + size));
      offset += size;
    }
    return chunks;
  };
}

interface Wire {
  connected: boolean;
  readonly options: MemoryTransportPairOptions;
}

interface WaitingWrite {
  /** Bytes of the write not yet handed over (a private copy). */
  rest: Uint8Array;
  resolve: () => void;
  reject: (error: TransportError) => void;
}

interface InFlight {
  chunks: Uint8Array[];
  bytes: number;
  /** The peer's session the bytes were sent into; a reopened peer does not receive them. */
  session: number;
  dueAt: number;
}

/** One end of a `createMemoryTransportPair()` wire. */
export class MemoryTransport extends TransportBase {
  /** @internal set by `createMemoryTransportPair` */
  peer!: MemoryTransport;
  private readonly wire: Wire;
  /** Outgoing writes waiting for room at the peer. */
  private readonly waiting: WaitingWrite[] = [];
  /** Outgoing bytes handed over, not yet delivered. */
  private readonly inFlight: InFlight[] = [];
  private inFlightBytes = 0;
  private timer: ClockTimer | undefined;
  private microtaskQueued = false;

  /** @internal use `createMemoryTransportPair()` */
  constructor(wire: Wire, path: string) {
    super({ kind: 'memory', path });
    this.wire = wire;
  }

  protected async openLink(): Promise<void> {
    await Promise.resolve();
    if (!this.wire.connected) throw new Error('memory wire is unplugged (call reconnect())');
  }

  protected async closeLink(): Promise<void> {
    // Writes not yet handed over die with the session; bytes in flight still arrive.
    const canceled = new TransportError('closed', this.info.path, 'canceled by close()');
    for (const write of this.waiting.splice(0)) write.reject(canceled);
    this.peer.pump();
  }

  protected writeLink(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ rest: bytes.slice(), resolve, reject });
      this.pump();
    });
  }

  protected override receiveQueueChanged(): void {
    // Room at this end may let the peer's waiting writes through.
    this.peer.pump();
  }

  /** @internal Hands waiting writes over, byte-granular, while the peer has room. */
  pump(): void {
    const peer = this.peer;
    const { highWaterMark, delayMs, split, clock } = this.wire.options;
    while (this.waiting.length > 0) {
      const write = this.waiting[0] as WaitingWrite;
      if (peer.state !== 'open') {
        this.waiting.shift();
        write.resolve();
        continue;
      }
      const room = highWaterMark - peer.queue.bufferedBytes - this.inFlightBytes;
      // Hand over the whole rest if it fits, else wait for half the window (fewer, larger pieces).
      if (room < Math.min(write.rest.byteLength, Math.ceil(highWaterMark / 2))) break;
      const piece = write.rest.subarray(0, room);
      write.rest = write.rest.subarray(piece.byteLength);
      this.inFlight.push({ chunks: split ? split(piece) : [piece], bytes: piece.byteLength, session: peer.session, dueAt: clock.monotonic() + delayMs });
      this.inFlightBytes += piece.byteLength;
      if (write.rest.byteLength === 0) {
        this.waiting.shift();
        write.resolve();
      }
    }
    this.scheduleDelivery();
  }

  /** @internal The wire was unplugged. */
  unplug(): void {
    const error = new TransportError('disconnected', this.info.path, 'memory wire unplugged');
    for (const write of this.waiting.splice(0)) write.reject(error);
    this.inFlight.length = 0;
    this.inFlightBytes = 0;
    if (this.timer) this.wire.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.lost(this.session, new Error('memory wire unplugged'));
  }

  private scheduleDelivery(): void {
    const head = this.inFlight[0];
    if (!head || this.timer || this.microtaskQueued) return;
    const clock = this.wire.options.clock;
    if (this.wire.options.delayMs <= 0) {
      this.microtaskQueued = true;
      queueMicrotask(() => {
        this.microtaskQueued = false;
        this.deliver(false);
      });
      return;
    }
    this.timer = clock.setTimeout(
      () => {
        this.timer = undefined;
        this.deliver(true);
      },
      Math.max(0, head.dueAt - clock.monotonic()),
    );
  }

  /** Delivers what is due; `timerFired`: the head is due even if the clock reads a hair early. */
  private deliver(timerFired: boolean): void {
    const now = this.wire.options.clock.monotonic();
    let first = timerFired;
    while (this.inFlight.length > 0) {
      const head = this.inFlight[0] as InFlight;
      if (!first && head.dueAt > now) break;
      first = false;
      this.inFlight.shift();
      this.inFlightBytes -= head.bytes;
      for (const chunk of head.chunks) this.peer.receive(head.session, chunk);
    }
    this.pump();
  }
}

function validate(options: MemoryTransportPairOptions): void {
  if (!Number.isFinite(options.delayMs) || options.delayMs < 0) throw new ConfigError('delayMs', options.delayMs, 'must be a finite number >= 0', 'pass 0 for next-microtask delivery or a delay in ms');
  if (!Number.isInteger(options.highWaterMark) || options.highWaterMark < 1) throw new ConfigError('highWaterMark', options.highWaterMark, 'must be an integer >= 1', 'pass a byte count, e.g. 65536');
  if (options.names.length !== 2 || options.names[0] === options.names[1]) throw new ConfigError('names', options.names, 'must be two different names', "pass e.g. ['sim:ecg', 'driver:ecg']");
}
