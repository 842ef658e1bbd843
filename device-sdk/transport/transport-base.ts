/**
 * The lifecycle every `ByteTransport` implementation shares (internal to `transport/`): states,
 * idempotent open/close, cancellation of pending reads and writes, disconnect bookkeeping. A
 * subclass supplies only the link: `openLink`, `closeLink`, `writeLink`, and reports what the link
 * does through `receive(session, chunk)` and `lost(session, cause)`.
 */
import { EventEmitter } from 'node:events';
import { type ByteTransport, type ByteTransportEvents, type TransportInfo, type TransportState, TransportError } from './byte-transport.js';
import { queueIterator, ReceiveQueue } from './receive-queue.js';

interface PendingWrite {
  reject: (error: TransportError) => void;
}

export abstract class TransportBase extends EventEmitter<ByteTransportEvents> implements ByteTransport {
  readonly info: TransportInfo;
  /** Received bytes not yet read; subclasses read `bufferedBytes` for backpressure. */
  protected readonly queue: ReceiveQueue;
  private stateValue: TransportState = 'closed';
  /** Increments on every `open()`; events of an older session are ignored. */
  private sessionValue = 0;
  private opening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private lostError: TransportError | undefined;
  private readonly pendingWrites = new Set<PendingWrite>();

  protected constructor(info: TransportInfo) {
    super();
    this.info = Object.freeze({ ...info });
    this.queue = new ReceiveQueue(info.path, () => this.receiveQueueChanged());
  }

  get state(): TransportState {
    return this.stateValue;
  }

  get isOpen(): boolean {
    return this.stateValue === 'open';
  }

  /** The current session number (see `receive` and `lost`). */
  protected get session(): number {
    return this.sessionValue;
  }

  /** Opens the device for session `session`. Throw anything: it becomes `open-failed` with it as the cause. */
  protected abstract openLink(session: number): Promise<void>;
  /** Releases the device of the current (or failed) session. Errors are ignored. */
  protected abstract closeLink(): Promise<void>;
  /** Hands `bytes` to the link. Reject with a `TransportError`, or with anything else for `write-failed`. */
  protected abstract writeLink(bytes: Uint8Array): Promise<void>;
  /** Called after received bytes were queued or read; a subclass pauses or resumes its source here. */
  protected receiveQueueChanged(): void {}

  open(): Promise<void> {
    switch (this.stateValue) {
      case 'open':
        return Promise.resolve();
      case 'opening':
        return this.opening as Promise<void>;
      case 'closing':
        return (this.closing as Promise<void>).then(() => this.open());
      case 'disconnected':
        return this.close().then(() => this.open());
      case 'closed':
        break;
    }
    const session = ++this.sessionValue;
    this.stateValue = 'opening';
    this.lostError = undefined;
    const opening = this.openSession(session);
    this.opening = opening;
    void opening.then(
      () => this.opening === opening && (this.opening = undefined),
      () => this.opening === opening && (this.opening = undefined),
    );
    return opening;
  }

  private async openSession(session: number): Promise<void> {
    try {
      await this.openLink(session);
    } catch (error) {
      await this.closeLinkQuietly();
      const canceled = this.stateValue !== 'opening';
      if (!canceled) this.stateValue = 'closed';
      if (canceled) throw new TransportError('closed', this.info.path, 'close() was called before open() finished', { cause: error });
      if (error instanceof TransportError) throw error;
      throw new TransportError('open-failed', this.info.path, `cannot open: ${messageOf(error)}`, { cause: error });
    }
    if (this.stateValue !== 'opening') {
      // close() was called while the device was opening; close() waits for this promise to settle.
      await this.closeLinkQuietly();
      throw new TransportError('closed', this.info.path, 'close() was called before open() finished');
    }
    this.queue.open();
    this.stateValue = 'open';
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.stateValue === 'disconnected') return Promise.reject(this.lostError as TransportError);
    if (this.stateValue !== 'open') return Promise.reject(new TransportError('not-open', this.info.path, `write while the transport is ${this.stateValue}`));
    if (bytes.byteLength === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const pending: PendingWrite = { reject };
      this.pendingWrites.add(pending);
      this.writeLink(bytes).then(
        () => {
          if (this.pendingWrites.delete(pending)) resolve();
        },
        (error: unknown) => {
          if (this.pendingWrites.delete(pending)) reject(this.writeError(error));
        },
      );
    });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.stateValue === 'closed') return Promise.resolve();
    const closing = this.closeSession();
    this.closing = closing;
    void closing.finally(() => this.closing === closing && (this.closing = undefined));
    return closing;
  }

  private async closeSession(): Promise<void> {
    const previous = this.stateValue;
    this.stateValue = 'closing';
    const canceled = new TransportError('closed', this.info.path, 'canceled by close()');
    this.queue.cancel(canceled);
    this.rejectPendingWrites(canceled);
    if (previous === 'opening') {
      // openSession sees the state change, releases the device and rejects open() with `closed`.
      await (this.opening as Promise<void>).catch(() => undefined);
    } else {
      await this.closeLinkQuietly();
    }
    this.stateValue = 'closed';
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array, undefined> {
    return queueIterator(this.queue);
  }

  /** The link delivered bytes in `session`. Ignored unless that session is the current, open one. */
  protected receive(session: number, chunk: Uint8Array): void {
    if (session !== this.sessionValue || this.stateValue !== 'open') return;
    this.queue.push(chunk);
  }

  /**
   * The device of `session` went away. Ignored unless that session is the current, open one
   * (a local close is not a disconnect). Queued bytes stay readable; pending writes reject.
   */
  protected lost(session: number, cause: unknown): void {
    if (session !== this.sessionValue || this.stateValue !== 'open') return;
    const error = new TransportError('disconnected', this.info.path, `device disconnected: ${messageOf(cause)}`, { cause });
    this.stateValue = 'disconnected';
    this.lostError = error;
    this.queue.fail(error);
    this.rejectPendingWrites(error);
    this.emit('disconnect', error);
  }

  /** Maps a `writeLink` rejection to the documented `TransportError`. */
  private writeError(error: unknown): TransportError {
    if (this.stateValue === 'disconnected' && this.lostError) return this.lostError;
    if (error instanceof TransportError) return error;
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return new TransportError('closed', this.info.path, 'canceled by close()', { cause: error });
    return new TransportError('write-failed', this.info.path, `write failed: ${messageOf(error)}`, { cause: error });
  }

  private rejectPendingWrites(error: TransportError): void {
    const pending = [...this.pendingWrites];
    this.pendingWrites.clear();
    for (const write of pending) write.reject(error);
  }

  private async closeLinkQuietly(): Promise<void> {
    try {
      await this.closeLink();
    } catch {
      // The device may already be gone; releasing it is all that is left to do.
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
