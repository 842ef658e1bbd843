/**
 * `IoBoard` through johnny-five (`new Board({ port: path, repl: false, debug: false, sigint: false })`),
 * which opens the port with firmata.js and serialport. johnny-five is imported on first open, so
 * processes without Firmata boards never load it.
 *
 * What johnny-five and firmata.js do and how this maps it:
 * - firmata.js waits for the board's REPORT_VERSION (an Arduino sends it after the reset that
 *   opening the port causes), asks for the firmware, capabilities and analog mapping, then johnny-five
 *   emits `ready`: `open()` resolves. Its own errors (`error` events) before that reject `open()`.
 * - Analog values come through `board.analogRead(channel, cb)` raw, one per sampling interval
 *   (johnny-five's `Sensor` would median-filter them). firmata.js refuses intervals below 10 ms.
 * - A port that closes, or a `disconnect`, is a disconnect. On a hung-up pty or a dead USB port
 *   serialport 8 (firmata.js's) may neither error nor close, so a watchdog also declares the board
 *   gone when no analog value arrived for `staleMs` while a channel reports.
 */
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { Board } from 'johnny-five';
import { TransportError, type TransportInfo } from './byte-transport.js';
import type { IoBoard, IoBoardEvents, IoBoardFirmware, IoBoardOptions } from './firmata.js';

export const DEFAULT_IO_BOARD_OPTIONS: Readonly<Omit<IoBoardOptions, 'path'>> = Object.freeze({ readyTimeoutMs: 10_000, staleMs: 2_000 });

type BoardClass = typeof Board;
let boardClass: Promise<BoardClass> | undefined;

function loadBoard(): Promise<BoardClass> {
  boardClass ??= import('johnny-five').then((m) => m.default.Board);
  return boardClass;
}

export class JohnnyFiveBoard extends EventEmitter<IoBoardEvents> implements IoBoard {
  readonly info: TransportInfo;
  private readonly options: IoBoardOptions;
  private board: Board | undefined;
  private firmwareValue: IoBoardFirmware | undefined;
  private open_ = false;
  private closed = false;
  private lost_ = false;
  private lastValueAt = 0;
  private reporting = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly outputs = new Set<number>();

  constructor(options: Partial<IoBoardOptions> & { path: string }) {
    super();
    this.options = { ...DEFAULT_IO_BOARD_OPTIONS, ...options };
    this.info = Object.freeze({ kind: 'firmata', path: options.path });
  }

  get firmware(): IoBoardFirmware | undefined {
    return this.firmwareValue;
  }

  get isOpen(): boolean {
    return this.open_;
  }

  async open(): Promise<void> {
    const path = this.options.path;
    // johnny-five would otherwise report a missing port only through its own logging.
    if (!existsSync(path)) throw new TransportError('open-failed', path, `cannot open: ${path} does not exist`);
    const Board = await loadBoard();
    if (this.closed) throw new TransportError('closed', path, 'closed before the board was ready');
    const board = new Board({ port: path, repl: false, debug: false, sigint: false, timeout: this.options.readyTimeoutMs });
    this.board = board;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no Firmata handshake within ${this.options.readyTimeoutMs} ms`)), this.options.readyTimeoutMs);
        timer.unref();
        board.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
        board.on('error', (event: { message?: string } | Error) => {
          clearTimeout(timer);
          reject(new Error(event?.message ?? 'johnny-five error'));
        });
        board.on('fail', (event: { message?: string }) => {
          clearTimeout(timer);
          reject(new Error(event?.message ?? 'johnny-five failure'));
        });
      });
    } catch (error) {
      await this.release();
      throw new TransportError('open-failed', path, `cannot open: ${(error as Error).message}`, { cause: error });
    }
    if (this.closed) {
      await this.release();
      throw new TransportError('closed', path, 'closed before the board was ready');
    }
    const io = board.io;
    const version = io.version;
    this.firmwareValue = { name: io.firmware?.name ?? 'unknown', protocol: `${version.major ?? '?'}.${version.minor ?? '?'}` };
    this.open_ = true;
    for (const event of ['close', 'disconnect'] as const) board.on(event, () => this.lost(`the port ${event === 'close' ? 'closed' : 'disconnected'}`));
    io.transport?.on('close', () => this.lost('the port closed'));
    if (this.options.staleMs > 0) {
      this.watchdog = setInterval(() => {
        if (this.reporting > 0 && Date.now() - this.lastValueAt > this.options.staleMs) this.lost(`no analog value for ${this.options.staleMs} ms`);
      }, Math.max(50, Math.floor(this.options.staleMs / 4)));
      this.watchdog.unref();
    }
  }

  setSamplingInterval(ms: number): void {
    this.requireOpen().samplingInterval(ms);
  }

  analogRead(channel: number, listener: (value: number) => void): void {
    const board = this.requireOpen();
    this.reporting += 1;
    this.lastValueAt = Date.now();
    board.analogRead(channel, (value: number) => {
      if (!this.open_) return;
      this.lastValueAt = Date.now();
      listener(value);
    });
  }

  digitalWrite(pin: number, value: 0 | 1): void {
    const board = this.requireOpen();
    if (!this.outputs.has(pin)) {
      board.pinMode(pin, board.MODES.OUTPUT ?? 1);
      this.outputs.add(pin);
    }
    board.digitalWrite(pin, value);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.release();
  }

  private requireOpen(): Board {
    if (!this.open_ || !this.board) throw new TransportError('not-open', this.info.path, 'the board is not open');
    return this.board;
  }

  private lost(reason: string): void {
    if (!this.open_ || this.closed || this.lost_) return;
    this.lost_ = true;
    const error = new TransportError('disconnected', this.info.path, `board disconnected: ${reason}`);
    void this.release().then(() => this.emit('disconnect', error));
  }

  /** Stops listening and closes the port (firmata.js's serialport). */
  private async release(): Promise<void> {
    this.open_ = false;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    const board = this.board;
    this.board = undefined;
    if (!board) return;
    const io = board.io as Board['io'] | undefined;
    board.removeAllListeners();
    // Keep a listener: a late error from a dead port must never be unhandled.
    board.on('error', () => undefined);
    io?.removeAllListeners?.();
    io?.on?.('error', () => undefined);
    const transport = io?.transport;
    if (transport) {
      transport.removeAllListeners('data');
      transport.on('error', () => undefined);
      if (transport.isOpen) {
        // Let the last writes (an alarm output switched off at stop) leave before the port closes.
        if (transport.drain) await new Promise<void>((resolve) => transport.drain!(() => resolve()));
        await new Promise<void>((resolve) => transport.close(() => resolve()));
      }
    }
  }
}

/** The default `IoBoardFactory`: johnny-five. */
export function createJohnnyFiveBoard(options: Partial<IoBoardOptions> & { path: string }): IoBoard {
  return new JohnnyFiveBoard(options);
}
