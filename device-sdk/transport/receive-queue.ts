/**
 * The receive side every `ByteTransport` implementation shares (internal to `transport/`): a FIFO
 * of received chunks and a FIFO of waiting readers, with the close and disconnect semantics that
 * `byte-transport.ts` documents. One place, so every implementation behaves the same.
 */
import { TransportError } from './byte-transport.js';

type Waiter = {
  resolve: (result: IteratorResult<Uint8Array, undefined>) => void;
  reject: (error: TransportError) => void;
};

type Mode =
  /** Not open: `next()` rejects with `not-open`. */
  | { kind: 'idle' }
  | { kind: 'open' }
  /** The link failed: queued chunks are still delivered, then `next()` rejects with `error`. */
  | { kind: 'failed'; error: TransportError };

export class ReceiveQueue {
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  private readonly waiters: Waiter[] = [];
  private mode: Mode = { kind: 'idle' };
  private buffered = 0;

  /**
   * @param path names the transport in `not-open` errors
   * @param onChange called after bytes were queued or taken (backpressure decisions), never re-entrantly from `next()`'s caller
   */
  constructor(
    private readonly path: string,
    private readonly onChange: () => void = () => undefined,
  ) {}

  /** Bytes received and not yet read. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Starts a new session: empty queue, reads wait for bytes. */
  open(): void {
    this.clear();
    this.mode = { kind: 'open' };
  }

  /** Hands `chunk` to the oldest waiting reader, or queues it. Ignored unless open. */
  push(chunk: Uint8Array): void {
    if (this.mode.kind !== 'open' || chunk.byteLength === 0) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    this.onChange();
  }

  /** The link failed: readers get what is queued, then `error`. */
  fail(error: TransportError): void {
    if (this.mode.kind !== 'open') return;
    this.mode = { kind: 'failed', error };
    // Waiters exist only while the queue is empty, so nothing is overtaken.
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /** A local close: pending readers reject with `error` (canceled), unread bytes are discarded. */
  cancel(error: TransportError): void {
    this.mode = { kind: 'idle' };
    this.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  next(): Promise<IteratorResult<Uint8Array, undefined>> {
    if (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head] as Uint8Array;
      this.chunks[this.head] = EMPTY;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.chunks.length) {
        this.chunks.splice(0, this.head);
        this.head = 0;
      }
      this.buffered -= chunk.byteLength;
      queueMicrotask(this.onChange);
      return Promise.resolve({ value: chunk, done: false });
    }
    switch (this.mode.kind) {
      case 'idle':
        return Promise.reject(new TransportError('not-open', this.path, 'read while the transport is not open'));
      case 'failed':
        return Promise.reject(this.mode.error);
      case 'open':
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
  }

  private clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.buffered = 0;
  }
}

const EMPTY = new Uint8Array(0);

/** An async iterator over `queue` whose `return()` ends only itself (see `ByteTransport`). */
export function queueIterator(queue: ReceiveQueue): AsyncIterableIterator<Uint8Array, undefined> {
  let done = false;
  const iterator: AsyncIterableIterator<Uint8Array, undefined> = {
    next: () => (done ? Promise.resolve({ value: undefined, done: true }) : queue.next()),
    return: () => {
      done = true;
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
