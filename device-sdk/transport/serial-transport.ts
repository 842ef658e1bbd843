/**
 * `ByteTransport` over serialport 13 (`SerialPortStream` + a binding): USB CDC / FTDI / CP210x
 * adapters, on-board UARTs and, in tests and the simulator, socat pseudo-terminals.
 *
 * Each `open()` constructs a fresh port object (`autoOpen: false`) from the injected class, so a
 * reopen after an unplug never inherits the state of a dead stream. The class defaults to
 * serialport's `SerialPort` (native bindings, loaded on first open); tests and boards pass
 * `SerialPortMock`, a custom binding, or a look-alike class.
 *
 * Disconnects: serialport closes the port itself when a read or write fails with anything but a
 * cancellation, and emits `close` with a `DisconnectedError` (`disconnected: true`). On Linux, with
 * the pty master gone (socat killed), a read waiting in the poller fails with "bad file descriptor"
 * within a few ms; a read issued after the hang-up returns 0 bytes, which serialport 13 retries
 * forever, so the binding is wrapped with `withUnixIoFixes` (see `unix-io-binding.ts`).
 * Every `close` that this transport did not ask for, and every I/O error flagged `disconnect` or
 * with code EIO/ENXIO/EBADF/ENODEV/EPIPE, becomes `disconnect`. serialport closes the port after
 * any failed write, so a `write-failed` rejection is followed by `disconnect`.
 *
 * Backpressure: incoming data is taken in flowing mode; while more than `highWaterMark` bytes are
 * unread the port is paused (serialport stops reading the fd, the OS buffer fills), and it resumes
 * below half of it.
 */
// The package's ESM entry has no types; its CommonJS types are the same interface.
import type { BindingInterface } from '@serialport/bindings-interface' with { 'resolution-mode': 'require' };
import { ConfigError } from '../errors.js';
import type { ByteTransport } from './byte-transport.js';
import { TransportError } from './byte-transport.js';
import { messageOf, TransportBase } from './transport-base.js';
import { withUnixIoFixes } from './unix-io-binding.js';

/** Options a `SerialPortClass` is constructed with: serialport's `SerialPort` and `SerialPortMock` accept these. */
export interface SerialPortConstructorOptions {
  path: string;
  baudRate: number;
  autoOpen: false;
  highWaterMark: number;
  /** Only when `SerialTransportOptions.binding` was given: replaces the class's own binding. */
  binding?: BindingInterface;
}

/** The part of serialport's `SerialPortStream` this transport uses. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(callback: (error: Error | null) => void): void;
  close(callback: (error: Error | null) => void): void;
  write(chunk: Buffer, callback: (error: Error | null | undefined) => void): boolean;
  pause(): unknown;
  resume(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: (error?: Error | null) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/** A port class such as serialport's `SerialPort` or `SerialPortMock`; its static `binding`, when present, is the one it uses by default. */
export type SerialPortClass = (new (options: SerialPortConstructorOptions) => SerialPortLike) & { readonly binding?: BindingInterface };

export interface SerialTransportOptions {
  /** Device path, e.g. `/dev/ttyUSB0`, `/dev/serial/by-id/...`, or a socat pty link. */
  path: string;
  /** Line rate in bits/s. Pseudo-terminals accept any rate and do not enforce it. */
  baudRate: number;
  /** Port class to construct on every `open()`. `undefined`: serialport's `SerialPort`. */
  SerialPort: SerialPortClass | undefined;
  /** A serialport binding to use instead of the class's own (e.g. `MockBinding`, a custom binding). */
  binding: BindingInterface | undefined;
  /** Unread bytes above which reading pauses; also serialport's stream buffer size. */
  highWaterMark: number;
  /**
   * Wrap the binding with `withUnixIoFixes` (`unix-io-binding.ts`): a hung-up tty becomes a
   * disconnect instead of serialport's endless zero-byte read retry, and a blocked write no longer
   * stops the watch for incoming bytes. Turn off only to observe the raw binding.
   */
  unixIoFixes: boolean;
}

export const DEFAULT_SERIAL_TRANSPORT_OPTIONS: Readonly<Omit<SerialTransportOptions, 'path'>> = Object.freeze({
  baudRate: 115_200,
  SerialPort: undefined,
  binding: undefined,
  highWaterMark: 64 * 1024,
  unixIoFixes: true,
});

/** OS error codes that mean the device is gone rather than a bad request. */
const DISCONNECT_CODES: ReadonlySet<string> = new Set(['EIO', 'ENXIO', 'EBADF', 'ENODEV', 'EPIPE']);

/** True when a serialport/bindings error means the device went away. */
export function isDisconnectError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { disconnected?: unknown; disconnect?: unknown; code?: unknown; canceled?: unknown };
  if (e.canceled === true) return false;
  return e.disconnected === true || e.disconnect === true || (typeof e.code === 'string' && DISCONNECT_CODES.has(e.code));
}

export class SerialTransport extends TransportBase implements ByteTransport {
  private readonly options: SerialTransportOptions;
  private port: SerialPortLike | undefined;
  private paused = false;

  constructor(options: Partial<SerialTransportOptions> & { path: string }) {
    super({ kind: 'serial', path: options.path });
    this.options = { ...DEFAULT_SERIAL_TRANSPORT_OPTIONS, ...options };
    const { path, baudRate, highWaterMark } = this.options;
    if (typeof path !== 'string' || path.length === 0) throw new ConfigError('path', path, 'must be a non-empty device path', 'pass e.g. /dev/ttyUSB0');
    if (!Number.isInteger(baudRate) || baudRate <= 0) throw new ConfigError('baudRate', baudRate, 'must be a positive integer', 'pass the device line rate, e.g. 115200');
    if (!Number.isInteger(highWaterMark) || highWaterMark < 1024) throw new ConfigError('highWaterMark', highWaterMark, 'must be an integer >= 1024', 'pass a byte count, e.g. 65536');
  }

  /** The line rate this transport opens the port with. */
  get baudRate(): number {
    return this.options.baudRate;
  }

  protected async openLink(session: number): Promise<void> {
    const PortClass = this.options.SerialPort ?? (await loadSerialPort());
    const portOptions: SerialPortConstructorOptions = { path: this.options.path, baudRate: this.options.baudRate, autoOpen: false, highWaterMark: this.options.highWaterMark };
    const binding = this.options.binding ?? PortClass.binding;
    if (binding) portOptions.binding = this.options.unixIoFixes ? withUnixIoFixes(binding) : binding;
    const port = new PortClass(portOptions);
    // Kept for the life of the object: a late error from a dead stream must never be unhandled.
    port.on('error', (error) => {
      if (port === this.port && isDisconnectError(error)) this.lost(session, error);
    });
    this.port = port;
    this.paused = false;
    await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    port.on('close', (error) => {
      // serialport emits `close` with a DisconnectedError after a failed read or write; a closed
      // port we did not close is a disconnect either way. lost() ignores our own close.
      if (port === this.port) this.lost(session, error ?? new Error('port closed unexpectedly'));
    });
    port.on('data', (chunk) => this.receive(session, chunk));
  }

  protected async closeLink(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (!port) return;
    port.removeAllListeners('data');
    port.removeAllListeners('close');
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  protected writeLink(bytes: Uint8Array): Promise<void> {
    const port = this.port;
    if (!port) return Promise.reject(new TransportError('not-open', this.info.path, 'no port'));
    const session = this.session;
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new Promise((resolve, reject) => {
      port.write(buffer, (error) => {
        if (!error) return resolve();
        if (isDisconnectError(error)) {
          this.lost(session, error);
          reject(new TransportError('disconnected', this.info.path, `device disconnected: ${messageOf(error)}`, { cause: error }));
          return;
        }
        reject(error);
      });
    });
  }

  protected override receiveQueueChanged(): void {
    const port = this.port;
    if (!port) return;
    const buffered = this.queue.bufferedBytes;
    if (!this.paused && buffered >= this.options.highWaterMark) {
      this.paused = true;
      port.pause();
    } else if (this.paused && buffered < this.options.highWaterMark / 2) {
      this.paused = false;
      port.resume();
    }
  }
}

let defaultSerialPort: Promise<SerialPortClass> | undefined;

/** serialport's `SerialPort`, imported on first use so that processes without serial links never load the native addon. */
function loadSerialPort(): Promise<SerialPortClass> {
  defaultSerialPort ??= import('serialport').then((module): SerialPortClass => module.SerialPort);
  return defaultSerialPort;
}
