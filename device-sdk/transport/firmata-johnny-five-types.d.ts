// The part of johnny-five 2.x that medge uses (the package ships no types). Only
// `firmata-johnny-five.ts` imports johnny-five; everything else sees the `IoBoard` seam.
declare module 'johnny-five' {
  import { EventEmitter } from 'node:events';

  export interface BoardOptions {
    /** Serial port path, e.g. /dev/ttyACM0; johnny-five opens it with firmata.js. */
    port?: string;
    id?: string;
    repl?: boolean;
    debug?: boolean;
    sigint?: boolean;
    /** ms to wait for "ready" after "connect" (default 10 000). */
    timeout?: number;
  }

  /** The firmata.js instance behind a board. */
  export interface FirmataIo extends EventEmitter {
    readonly isReady: boolean;
    readonly MODES: Readonly<Record<string, number>>;
    readonly firmware: { name?: string; version?: { major: number; minor: number } };
    readonly version: { major?: number; minor?: number };
    readonly analogPins: readonly number[];
    readonly transport: (EventEmitter & { isOpen?: boolean; close(callback?: (error?: Error | null) => void): void; drain?(callback: (error?: Error | null) => void): void }) | undefined;
    reportAnalogPin(pin: number, value: 0 | 1): void;
    /** Sends SYSTEM_RESET (0xFF): StandardFirmata stops reporting and resets its pins. */
    reset(): void;
    removeAllListeners(event?: string): this;
  }

  export class Board extends EventEmitter {
    constructor(options?: BoardOptions);
    readonly id: string;
    readonly isReady: boolean;
    readonly io: FirmataIo;
    readonly MODES: Readonly<Record<string, number>>;
    pinMode(pin: number, mode: number): this;
    digitalWrite(pin: number, value: 0 | 1): this;
    analogRead(pin: number, callback: (value: number) => void): this;
    samplingInterval(ms: number): this;
  }

  const five: { Board: typeof Board };
  export default five;
}
