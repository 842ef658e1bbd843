/**
 * A serialport binding wrapper that replaces the read and write loops of bindings-cpp's Unix ports
 * (Linux, macOS) to fix two failures seen with serialport 13.0.0 / bindings-cpp 13.0.0 on this
 * project's socat pty pairs; everything else is delegated to the wrapped port.
 *
 * 1. Hang-up: when a tty is hung up (USB adapter unplugged, pty master closed) the kernel makes
 *    every further `read()` return 0 bytes. bindings-cpp's `unixRead` retries a zero-byte read at
 *    once, forever: no error, no `close`, a thread-pool thread and a growing promise chain busy until
 *    the port is closed (serialport/bindings-cpp#162; fix proposed in #164). Measured: after SIGKILL
 *    of socat, an end whose read was waiting in the poller fails with "bad file descriptor" (libuv
 *    reports POLLERR as EBADF), but an end whose read ran after the hang-up spun and never reported
 *    anything. Here 0 bytes mean end-of-file: the read rejects with a `HangupError`
 *    (`disconnect: true`) and `SerialPortStream` closes the port with a `DisconnectedError`. In raw
 *    mode with VMIN=1 and O_NONBLOCK, "no data yet" is EAGAIN, never 0.
 * 2. Full-duplex starvation: bindings-cpp's native `Poller.poll(flags)` calls `uv_poll_start` with
 *    only the new flags, so a write waiting for "writable" stops the watch for "readable" (and vice
 *    versa). With both directions saturated on a pty pair each side's write waits on the other
 *    side's read: a deadlock (3 of 25 runs of 1 MiB each way). Here one watcher owns the poller and
 *    always asks for the union of what the pending read and write wait for.
 *
 * Ports that are not bindings-cpp Unix ports (no numeric `fd` and `poller`: Windows, `MockBinding`)
 * are returned unchanged.
 */
import { read as fsRead, write as fsWrite } from 'node:fs';
// The package's ESM entry has no types; its CommonJS types are the same interfaces.
import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from '@serialport/bindings-interface' with { 'resolution-mode': 'require' };

/** libuv poll flags as bindings-cpp's `Poller` takes them. */
const UV_READABLE = 0b01;
const UV_WRITABLE = 0b10;

/** The parts of bindings-cpp's `Poller` used here: `poll(flags)` and its events (a plain EventEmitter `on`). */
interface PollerLike {
  poll(flags: number): void;
  on(event: 'readable' | 'writable', listener: (error: Error | null) => void): unknown;
}

/** The parts of bindings-cpp's `LinuxPortBinding` / `DarwinPortBinding` used here. */
interface UnixPort extends BindingPortInterface {
  fd: number | null;
  readonly poller: PollerLike;
}

function isUnixPort(port: BindingPortInterface): port is UnixPort {
  const candidate = port as Partial<UnixPort>;
  return typeof candidate.fd === 'number' && typeof candidate.poller?.poll === 'function' && typeof candidate.poller.on === 'function';
}

/** A read found the terminal hung up. Flagged `disconnect: true` like bindings-cpp's own disconnect errors. */
export class HangupError extends Error {
  readonly disconnect = true;
  readonly code = 'EOF';
  readonly path: string;
  constructor(path: string) {
    super('read returned 0 bytes: the terminal was hung up (device unplugged)');
    this.name = 'HangupError';
    this.path = path;
  }
}

/** The port was closed under a pending read or write (serialport treats `canceled` as no disconnect). */
class CanceledError extends Error {
  readonly canceled = true;
  constructor() {
    super('Port is not open');
  }
}

const RETRY_CODES: ReadonlySet<string> = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

function isRetry(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRY_CODES.has(code);
}

/** Wraps `binding` so that its Unix ports detect hang-ups and never starve a read behind a write (see the module comment). */
export function withUnixIoFixes(binding: BindingInterface): BindingInterface {
  return {
    list: () => binding.list(),
    async open(options: OpenOptions): Promise<BindingPortInterface> {
      const port = await binding.open(options);
      return isUnixPort(port) ? new UnixIoPort(port) : port;
    },
  };
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

class UnixIoPort implements BindingPortInterface {
  private readWaiter: Waiter | undefined;
  private writeWaiter: Waiter | undefined;
  private writing: Promise<void> = Promise.resolve();
  private pollerFailed = false;

  constructor(private readonly inner: UnixPort) {
    inner.poller.on('readable', (error) => this.wake('read', error));
    inner.poller.on('writable', (error) => this.wake('write', error));
  }

  get openOptions(): Required<OpenOptions> {
    return this.inner.openOptions;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (buffer.length < offset + length) throw new Error('buffer is too small');
    for (;;) {
      const fd = this.openFd();
      try {
        const bytesRead = await new Promise<number>((resolve, reject) => fsRead(fd, buffer, offset, length, null, (error, n) => (error ? reject(error) : resolve(n))));
        if (bytesRead === 0) throw new HangupError(this.inner.openOptions.path);
        return { buffer, bytesRead };
      } catch (error) {
        if (!isRetry(error)) throw error;
        await this.wait('read');
      }
    }
  }

  write(buffer: Buffer): Promise<void> {
    const operation = this.writeAll(buffer);
    this.writing = operation.catch(() => undefined);
    return operation;
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buffer.length) {
      const fd = this.openFd();
      try {
        offset += await new Promise<number>((resolve, reject) => fsWrite(fd, buffer, offset, buffer.length - offset, (error, n) => (error ? reject(error) : resolve(n))));
      } catch (error) {
        if (!isRetry(error)) throw error;
        await this.wait('write');
      }
    }
  }

  close(): Promise<void> {
    // Stopping the poller emits a canceled error to both events: pending waits reject with it.
    return this.inner.close();
  }

  async drain(): Promise<void> {
    await this.writing;
    return this.inner.drain();
  }

  update(options: UpdateOptions): Promise<void> {
    return this.inner.update(options);
  }

  set(options: SetOptions): Promise<void> {
    return this.inner.set(options);
  }

  get(): Promise<PortStatus> {
    return this.inner.get();
  }

  getBaudRate(): Promise<{ baudRate: number }> {
    return this.inner.getBaudRate();
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  private openFd(): number {
    const fd = this.inner.fd;
    if (!this.inner.isOpen || fd === null) throw new CanceledError();
    return fd;
  }

  private wait(kind: 'read' | 'write'): Promise<void> {
    if (this.pollerFailed) return Promise.reject(new CanceledError());
    return new Promise<void>((resolve, reject) => {
      if (kind === 'read') this.readWaiter = { resolve, reject };
      else this.writeWaiter = { resolve, reject };
      this.repoll();
    });
  }

  private wake(kind: 'read' | 'write', error: Error | null): void {
    const waiter = kind === 'read' ? this.readWaiter : this.writeWaiter;
    if (kind === 'read') this.readWaiter = undefined;
    else this.writeWaiter = undefined;
    if (error) {
      // POLLERR/POLLHUP (the device went away) or the poller stopped by close(): it polls no more.
      this.pollerFailed = true;
      waiter?.reject(error);
      return;
    }
    waiter?.resolve();
    // The native poller has just re-armed itself with every flag it was ever given except the one
    // that fired; watch exactly what is still awaited instead (0 stops watching).
    this.repoll();
  }

  private repoll(): void {
    if (this.pollerFailed || !this.inner.isOpen) return;
    this.inner.poller.poll((this.readWaiter ? UV_READABLE : 0) | (this.writeWaiter ? UV_WRITABLE : 0));
  }
}
