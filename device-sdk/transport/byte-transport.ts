/**
 * The byte-link seam (STYLE items 1-2): every serial port, BLE UART, Firmata serial bridge and the
 * in-memory link of the tests and the simulator is a `ByteTransport`. Drivers and framers see only
 * this interface; the composition root picks the implementation. Modelled on serialport's
 * `@serialport/bindings-interface` (`BindingPortInterface`): reads are pulled, in-progress reads and
 * writes are canceled on close, any other I/O failure is a disconnect.
 *
 * Lifecycle (`state`):
 *
 * ```
 *   closed --open()--> opening --ok--> open --close()--> closing --> closed
 *                         |             |
 *                         |             +--device went away--> disconnected --close()/open()--> ...
 *                         +--fails--> closed  (open() rejects with code 'open-failed')
 * ```
 *
 * A transport can be opened again after `close()` or after a disconnect (a device replugged at the
 * same path). `TransportSupervisor` does that for you with backoff; see `supervisor.ts`.
 */
import { MedgeError } from '../errors.js';

/** What kind of link a transport is. */
export type TransportKind = 'serial' | 'ble' | 'firmata' | 'memory';

export const TRANSPORT_KINDS: readonly TransportKind[] = Object.freeze(['serial', 'ble', 'firmata', 'memory']);

export type TransportState = 'closed' | 'opening' | 'open' | 'closing' | 'disconnected';

/** Where a transport leads. Never changes over the life of a transport object. */
export interface TransportInfo {
  readonly kind: TransportKind;
  /** Device path (`/dev/ttyUSB0`, a pty link), BLE address, or a memory pair's end name. */
  readonly path: string;
}

/**
 * Machine-readable reasons of a `TransportError`:
 * - `open-failed`: `open()` could not open the device (absent, busy, no permission). `cause` holds the OS error.
 * - `not-open`: a read or write while the transport is `closed`, `opening` or `closing`.
 * - `disconnected`: the device went away (unplug, link loss); `disconnected` is true.
 * - `write-failed`: the OS refused a write while the link otherwise looked healthy.
 * - `closed`: the operation was canceled by a local `close()`; `canceled` is true.
 */
export type TransportErrorCode = 'open-failed' | 'not-open' | 'disconnected' | 'write-failed' | 'closed';

export const TRANSPORT_ERROR_CODES: readonly TransportErrorCode[] = Object.freeze(['open-failed', 'not-open', 'disconnected', 'write-failed', 'closed']);

export interface TransportErrorOptions {
  /** The device went away; set for every `disconnected` error. Defaults to `code === 'disconnected'`. */
  disconnected?: boolean;
  /** A local `close()` canceled the operation. Defaults to `code === 'closed'`. */
  canceled?: boolean;
  /** The OS or library error behind this one. */
  cause?: unknown;
}

/**
 * The one error type a `ByteTransport` rejects with. Branch on `code`, `disconnected` and `canceled`,
 * never on the message. `path` names the transport it came from.
 */
export class TransportError extends MedgeError {
  declare readonly code: TransportErrorCode;
  readonly path: string;
  readonly disconnected: boolean;
  readonly canceled: boolean;
  constructor(code: TransportErrorCode, path: string, message: string, options: TransportErrorOptions = {}) {
    super(code, `${path}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = path;
    this.disconnected = options.disconnected ?? code === 'disconnected';
    this.canceled = options.canceled ?? code === 'closed';
  }
}

/** True when `error` is a `TransportError` that a local `close()` caused (nothing to report). */
export function isCanceled(error: unknown): boolean {
  return error instanceof TransportError && error.canceled;
}

/** Events of a `ByteTransport` (Node `EventEmitter` style). */
export interface ByteTransportEvents {
  /**
   * The device went away while the transport was open (unplug, power loss, BLE link loss). Emitted
   * once per session, after the state became `disconnected`; never for a local `close()`. The error
   * has `code: 'disconnected'` and `disconnected: true`, with the OS error as `cause`.
   */
  disconnect: [error: TransportError];
}

/**
 * A bidirectional byte link to one device.
 *
 * Incoming bytes are pulled with an async iterator (`for await (const chunk of transport)`):
 * - Ordering: chunks arrive in the order the device sent them, each byte exactly once, with no gaps
 *   and no duplicates. Chunk boundaries mean nothing: a framer must handle split and merged frames.
 * - One consumer: the transport keeps one queue of received chunks. Any number of iterators may be
 *   taken, but each chunk goes to exactly one `next()` call, in the order the calls were made.
 * - Backpressure: received bytes are queued until read. While more than the implementation's
 *   high-water mark (64 KiB unless documented otherwise) is queued, the transport stops taking bytes
 *   from the OS / peer: a serial device then sees its OS buffer fill (and is flow-controlled or loses
 *   bytes, as a real UART would); a memory pair's `write()` waits. A disconnect is noticed no later
 *   than when reading resumes.
 * - `next()` while the transport is not open rejects with `not-open`.
 * - Close: `close()` rejects every pending `next()` with `TransportError { code: 'closed', canceled: true }`
 *   and discards queued bytes that were not read (serialport's "in progress reads error with
 *   `canceled: true`"). A driver loop treats `canceled` as a normal end.
 * - Disconnect: bytes received before the disconnect are still delivered first; after them every
 *   `next()` rejects with `TransportError { code: 'disconnected', disconnected: true }` until the
 *   transport is closed or opened again.
 * - `return()` (a `break` out of `for await`) ends only that iterator; it does not close the transport,
 *   and unread bytes stay queued for the next iterator.
 * - A reopened transport starts with an empty queue; iterators taken earlier keep working.
 */
export interface ByteTransport extends AsyncIterable<Uint8Array> {
  readonly info: TransportInfo;
  readonly state: TransportState;
  /** `state === 'open'`. */
  readonly isOpen: boolean;

  /**
   * Opens the link. Resolves when bytes can be written and read. Rejects with `open-failed` (device
   * absent, busy, permissions; OS error as `cause`), or with `closed` (`canceled: true`) when `close()`
   * was called before the open finished. Already open: resolves at once. While opening: the same
   * promise. While closing: opens after the close finished. From `disconnected`: releases the old
   * session and opens the device again (a replug at the same path).
   */
  open(): Promise<void>;

  /**
   * Queues `bytes` for sending; writes are sent in call order. Resolves when the bytes were handed to
   * the OS (serial) or to the peer's link (memory): not when the device has received them. The caller
   * may reuse `bytes` once the promise settled. Zero bytes resolve at once when open.
   * Rejects with `TransportError`:
   * - `not-open` when the transport is not open (including before `open()` and after `close()`);
   * - `disconnected` (`disconnected: true`) when the device went away before or while writing;
   * - `closed` (`canceled: true`) when `close()` was called before the write was handed over;
   * - `write-failed` for any other OS refusal.
   */
  write(bytes: Uint8Array): Promise<void>;

  /**
   * Closes the link and releases the device. Pending reads and writes reject with `closed`
   * (`canceled: true`); no `disconnect` event follows. Idempotent: resolves at once when already
   * closed, and shares the promise while closing. Never rejects: a device that is already gone is
   * simply released.
   */
  close(): Promise<void>;

  /** Incoming bytes; see the interface comment for ordering, backpressure, close and disconnect. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array, undefined>;

  on<E extends keyof ByteTransportEvents>(event: E, listener: (...args: ByteTransportEvents[E]) => void): this;
  once<E extends keyof ByteTransportEvents>(event: E, listener: (...args: ByteTransportEvents[E]) => void): this;
  off<E extends keyof ByteTransportEvents>(event: E, listener: (...args: ByteTransportEvents[E]) => void): this;
}
