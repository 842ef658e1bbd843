/**
 * The Firmata pin seam (STYLE items 1-2): a microcontroller running Firmata, seen as analog inputs
 * and digital outputs. The ECG driver `firmata-ecg` reads an AD8232-style front end on an analog
 * pin and drives an alarm LED and a buzzer through it. The implementation through johnny-five is
 * `firmata-johnny-five.ts`; only the composition root (the driver's default factory) picks it.
 *
 * Lifecycle: `closed --open()--> open --close()--> closed`, and `open --device went away-->
 * disconnected` (event `disconnect`, once per session). An `IoBoard` object is one session: after
 * a disconnect or a close, make a new one (johnny-five boards cannot be reopened).
 */
import type { TransportError, TransportInfo } from './byte-transport.js';

export interface IoBoardEvents {
  /**
   * The board went away while open: the port hung up or closed, or no analog value arrived for
   * the stale timeout while a channel was reporting. `code: 'disconnected'`. Never for `close()`.
   */
  disconnect: [error: TransportError];
}

export interface IoBoardFirmware {
  /** Firmware name from QUERY_FIRMWARE, e.g. `StandardFirmata.ino`. */
  name: string;
  /** Firmata protocol version from REPORT_VERSION, e.g. `2.5`. */
  protocol: string;
}

export interface IoBoard {
  readonly info: TransportInfo;
  /** Resolved once open: what the board said it runs. */
  readonly firmware: IoBoardFirmware | undefined;
  readonly isOpen: boolean;
  /**
   * Opens the port and completes the Firmata handshake (version, firmware, capabilities, analog
   * mapping). Rejects with `TransportError` `open-failed` when the port cannot be opened or the
   * board does not answer within the ready timeout (the port is released again).
   */
  open(): Promise<void>;
  /** Sets the board's sampling interval (ms, >= 10 with firmata.js), i.e. the analog sample rate. */
  setSamplingInterval(ms: number): void;
  /**
   * Starts reporting analog channel `channel` (A0 = 0): `listener` gets every value the board
   * sends (0..1023 on a 10-bit ADC), one per sampling interval, in order.
   */
  analogRead(channel: number, listener: (value: number) => void): void;
  /** Makes `pin` a digital output (once) and drives it high (1) or low (0). */
  digitalWrite(pin: number, value: 0 | 1): void;
  /** Releases the port. Idempotent, never rejects; no `disconnect` follows. */
  close(): Promise<void>;
  on<E extends keyof IoBoardEvents>(event: E, listener: (...args: IoBoardEvents[E]) => void): this;
  off<E extends keyof IoBoardEvents>(event: E, listener: (...args: IoBoardEvents[E]) => void): this;
}

export interface IoBoardOptions {
  /** Serial port of the board, e.g. `/dev/ttyACM0`. */
  path: string;
  /** How long `open()` waits for the handshake. An Arduino resets when its port opens (~2 s). */
  readyTimeoutMs: number;
  /** No analog value for this long while reporting = the board is gone. 0 disables the watchdog. */
  staleMs: number;
}

/** Makes a new board session for a path. */
export type IoBoardFactory = (options: IoBoardOptions) => IoBoard;
