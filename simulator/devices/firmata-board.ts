/**
 * A simulated Arduino Uno running StandardFirmata (protocol 2.x) on the device end of a pty pair,
 * that johnny-five drives unmodified (`new Board({ port: board.hostPath, repl: false, debug: false })`).
 * It plays an AD8232-style analog ECG on its analog pins (10-bit ADC values) and records what the
 * host writes to its digital pins (alarm LED, buzzer).
 *
 * Written from the Firmata protocol documentation (firmata/protocol: protocol.md, capability and
 * analog mapping queries, sampling interval), not from the host library.
 *
 * ## API
 *
 * ```ts
 * import { createFirmataBoard, ecgToAdc } from './simulator/devices/firmata-board.js';
 *
 * const board = await createFirmataBoard({
 *   analog: { 0: (n) => nextAdcValues(n) },    // A0: pull n 10-bit values (0..1023); or an (async) iterable
 *   speed: 1,
 * });
 * // johnny-five: new Board({ port: board.hostPath, repl: false, debug: false, sigint: false })
 * // driver config: { driver: 'firmata-ecg', options: { path: board.hostPath, pin: 0 } }
 * board.digitalWrites;              // [{ pin: 13, value: 1, t }, ...] as the host wrote them
 * board.pinModes;                   // Map pin -> mode the host set
 * await board.unplug({ downMs: 500 });
 * await board.stop();
 * ```
 *
 * Behaviour:
 * - Board model: 20 pins (D0-D13, A0-A5 = pins 14-19), analog channel n on pin 14 + n; capability
 *   response as an Uno (digital in/out/pullup everywhere, PWM 8-bit on 3, 5, 6, 9, 10, 11, servo,
 *   ANALOG 10-bit on 14-19).
 * - Until the host sends its first byte after a (re)plug, the board announces itself every
 *   `announceMs` (REPORT_VERSION 2.5 and the QUERY_FIRMWARE reply `StandardFirmata.ino`), as an
 *   Arduino does after the reset that opening its port causes; bytes written while nobody has the
 *   host end open are lost, as on a real port. Queries are answered at any time: REPORT_VERSION (0xF9),
 *   QUERY_FIRMWARE, CAPABILITY_QUERY, ANALOG_MAPPING_QUERY, PIN_STATE_QUERY; SYSTEM_RESET (0xFF)
 *   stops all reporting.
 * - REPORT_ANALOG (0xC0 | channel, 1/0) starts/stops reporting a channel; SAMPLING_INTERVAL sysex
 *   (0x7A, LSB, MSB) sets the interval (default 19 ms, as StandardFirmata; ignored with
 *   `samplingIntervalCommand: false`, a firmware without it). Each interval, every
 *   reporting channel sends one ANALOG_MESSAGE (0xE0 | channel, 7-bit LSB, MSB) with the next value
 *   of its source; a channel without a source reads `idleValue` (512, an AD8232's mid-rail).
 *   `speed` divides the interval in real time (speed 10 plays ten samples per interval).
 *   Values are due from `clock.monotonic()`: a late timer sends the ones due since. These two
 *   commands (and SYSTEM_RESET) take effect in arrival order after the values due before they
 *   arrived, as StandardFirmata's loop() reads serial input between sampling intervals; a new
 *   interval restarts the schedule from the instant the command arrived.
 * - Sources: `AnalogSource` is a pull `(n) => Uint16Array | number[] | undefined` or an (async)
 *   iterable of blocks; values are clamped to 0..1023. The end of a source leaves the pin at its
 *   last value (the recording ended; the board keeps reporting); `ended(channel)` resolves then.
 * - A source is the live signal at the pin (the patient's ECG), one value per sampling interval. It
 *   starts when the host first enables reporting on its channel (so a host reads it from its first
 *   value) and from then on goes on in real time whether or not its values reach the host: values
 *   due while the board is unplugged, rebooting, in the host's handshake or not reporting the channel
 *   are consumed and counted in `stats.samplesDropped`, at the interval the signal was last sampled
 *   at (a reboot resets the board's interval, not the patient). So the values the host missed
 *   across a replug are those of the whole time between its last value and its first one after,
 *   as with a real Arduino, which resets when its port opens and samples again only once the host
 *   has re-enabled reporting.
 * - Digital writes: DIGITAL_MESSAGE (0x90 | port, LSB, MSB) and SET_DIGITAL_PIN_VALUE (0xF5) are
 *   recorded per changed pin in `digitalWrites` ({ pin, value, t: clock.now() }); SET_PIN_MODE
 *   (0xF4) in `pinModes`. Events `'digital'` and `'mode'` fire for each.
 * - `unplug({ downMs })`: kills socat (both ends hang up, links removed), waits `downMs` on the
 *   clock, recreates the pty at the same paths and announces itself again; reporting state and the
 *   sampling interval are reset (a USB-powered Arduino reboots). Samples due while unplugged, and
 *   after the replug until the host enables reporting again, are consumed and counted in
 *   `stats.samplesDropped` (the recording goes on).
 * - `stats`: `analogMessages` per channel, `samplesDropped`, `bytesWritten`, `bytesReceived`,
 *   `commands` (host messages parsed), `unplugs`, `announcements`.
 */
import { EventEmitter } from 'node:events';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { ConfigError } from '../../device-sdk/errors.js';
import { isCanceled } from '../../device-sdk/transport/byte-transport.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { createPtyPair, type PtyPair } from '../pty.js';
import { ClockSleeper, definedOnly } from './device-timers.js';

/** Pull up to `n` ADC values (0..1023); `undefined` or empty = end of recording. */
export type AnalogPull = (n: number) => ArrayLike<number> | undefined | Promise<ArrayLike<number> | undefined>;
export type AnalogSource = AnalogPull | AsyncIterable<ArrayLike<number>> | Iterable<ArrayLike<number>>;

export const FIRMATA = Object.freeze({
  DIGITAL_MESSAGE: 0x90,
  ANALOG_MESSAGE: 0xe0,
  REPORT_ANALOG: 0xc0,
  REPORT_DIGITAL: 0xd0,
  SET_PIN_MODE: 0xf4,
  SET_DIGITAL_PIN_VALUE: 0xf5,
  REPORT_VERSION: 0xf9,
  SYSTEM_RESET: 0xff,
  START_SYSEX: 0xf0,
  END_SYSEX: 0xf7,
  QUERY_FIRMWARE: 0x79,
  CAPABILITY_QUERY: 0x6b,
  CAPABILITY_RESPONSE: 0x6c,
  ANALOG_MAPPING_QUERY: 0x69,
  ANALOG_MAPPING_RESPONSE: 0x6a,
  PIN_STATE_QUERY: 0x6d,
  PIN_STATE_RESPONSE: 0x6e,
  SAMPLING_INTERVAL: 0x7a,
  STRING_DATA: 0x71,
} as const);

/** Pin modes (Firmata): input 0, output 1, analog 2, pwm 3, servo 4, pullup 0x0B. */
export const FIRMATA_PIN_MODES = Object.freeze({ INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, SERVO: 4, PULLUP: 0x0b } as const);

export interface FirmataBoardOptions {
  /** Sources per analog channel (0 = A0). */
  analog: Readonly<Record<number, AnalogSource>>;
  /** Real-time divisor of the sampling interval. */
  speed: number;
  /** Value of an analog channel that has no source (0..1023). */
  idleValue: number;
  /** Sampling interval before the host sets one (StandardFirmata: 19 ms). */
  samplingIntervalMs: number;
  /** Announcement period until the host speaks (real ms on the clock). */
  announceMs: number;
  firmwareName: string;
  version: { major: number; minor: number };
  /** false: a firmware without the SAMPLING_INTERVAL sysex, which ignores the host's interval and keeps `samplingIntervalMs`. */
  samplingIntervalCommand: boolean;
  clock: Clock;
  /** Use this pty pair (its `a` end); one is created and closed by `stop()` when absent. */
  pty: PtyPair | undefined;
}

export const DEFAULT_FIRMATA_BOARD_OPTIONS = Object.freeze({
  analog: Object.freeze({}),
  speed: 1,
  idleValue: 512,
  samplingIntervalMs: 19,
  announceMs: 100,
  firmwareName: 'StandardFirmata.ino',
  version: Object.freeze({ major: 2, minor: 5 }),
  samplingIntervalCommand: true,
  clock: systemClock,
  pty: undefined,
});

export interface DigitalWrite {
  pin: number;
  value: 0 | 1;
  /** `clock.now()` when the board received it. */
  t: number;
}

export interface FirmataBoardStats {
  analogMessages: Record<number, number>;
  samplesDropped: number;
  bytesWritten: number;
  bytesReceived: number;
  commands: number;
  unplugs: number;
  announcements: number;
}

interface FirmataBoardEvents {
  digital: [DigitalWrite];
  mode: [pin: number, mode: number];
  error: [Error];
}

const PIN_COUNT = 20;
const FIRST_ANALOG_PIN = 14;
const ANALOG_CHANNELS = 6;
const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);

/** AD8232-style front end into a 10-bit ADC: `adc = round(mid + mV × gain)`, clamped to 0..1023. */
export function ecgToAdc(samples: ArrayLike<number>, options: { gainPerMv?: number; mid?: number; inputGain?: number } = {}): Uint16Array {
  // 1 mV at the electrodes × 1100 (AD8232 total gain) = 1.1 V; 3.3 V = 1023 counts: 341 counts/mV.
  const gain = options.gainPerMv ?? 341;
  const mid = options.mid ?? 512;
  const inputGain = options.inputGain ?? 1;
  const out = new Uint16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(0, Math.min(1023, Math.round(mid + (samples[i]! / inputGain) * gain)));
  return out;
}

export async function createFirmataBoard(input: Partial<FirmataBoardOptions> = {}): Promise<SimFirmataBoard> {
  const ownPty = input.pty === undefined;
  const pty = input.pty ?? (await createPtyPair());
  const board = new SimFirmataBoard({ ...input, pty }, ownPty);
  try {
    await board.start();
  } catch (error) {
    await board.stop();
    throw error;
  }
  return board;
}

interface Channel {
  reporting: boolean;
  /** The host has enabled reporting once: the signal goes on in real time from then on. */
  live: boolean;
  value: number;
  pull: ((n: number) => Promise<ArrayLike<number> | undefined>) | undefined;
  buffer: number[];
  ended: boolean;
  resolveEnded: () => void;
  endedPromise: Promise<void>;
}

export class SimFirmataBoard extends EventEmitter<FirmataBoardEvents> {
  readonly options: Readonly<FirmataBoardOptions>;
  readonly digitalWrites: DigitalWrite[] = [];
  readonly pinModes = new Map<number, number>();
  private readonly ownPty: boolean;
  private readonly clock: Clock;
  private readonly channels: Channel[] = [];
  private readonly pinValues = new Uint8Array(PIN_COUNT);
  private transport: SerialTransport | undefined;
  private reader: Promise<void> | undefined;
  private ticker: Promise<void> | undefined;
  private readonly sleeper: ClockSleeper;
  private running = false;
  private plugged = false;
  private announcing = false;
  private lastAnnounce = -Infinity;
  private intervalMs: number;
  /** The sampling schedule: values are due every `scheduleMs / speed` from `origin`. */
  private scheduleMs: number;
  private origin = 0;
  private produced = 0;
  /** Host commands that change sampling, applied by the sampling loop in order (`sampling()`). */
  private readonly samplingCommands: Array<{ at: number; apply: (at: number) => void }> = [];
  private parse: number[] = [];
  private inSysex = false;
  private writeChain: Promise<void> = Promise.resolve();
  private readonly counters: FirmataBoardStats = { analogMessages: {}, samplesDropped: 0, bytesWritten: 0, bytesReceived: 0, commands: 0, unplugs: 0, announcements: 0 };

  constructor(input: Partial<FirmataBoardOptions>, ownPty = false) {
    super();
    const options: FirmataBoardOptions = { ...DEFAULT_FIRMATA_BOARD_OPTIONS, ...definedOnly(input) };
    if (!options.pty) throw new ConfigError('pty', undefined, 'the board needs a pty pair', 'use createFirmataBoard()');
    if (!(options.speed > 0)) throw new ConfigError('speed', options.speed, 'must be a positive number', 'pass 1 for real time');
    for (const key of Object.keys(options.analog)) {
      const ch = Number(key);
      if (!Number.isInteger(ch) || ch < 0 || ch >= ANALOG_CHANNELS) throw new ConfigError(`analog.${key}`, key, `is not an analog channel 0..${ANALOG_CHANNELS - 1}`, 'use 0 for A0');
    }
    this.options = Object.freeze(options);
    this.ownPty = ownPty;
    this.clock = options.clock;
    this.sleeper = new ClockSleeper(options.clock);
    this.intervalMs = options.samplingIntervalMs;
    this.scheduleMs = options.samplingIntervalMs;
    for (let ch = 0; ch < ANALOG_CHANNELS; ch++) {
      const source = options.analog[ch];
      let resolveEnded!: () => void;
      const endedPromise = new Promise<void>((resolve) => (resolveEnded = resolve));
      this.channels.push({ reporting: false, live: false, value: options.idleValue, pull: source === undefined ? undefined : toPull(source), buffer: [], ended: source === undefined, resolveEnded, endedPromise });
      if (source === undefined) resolveEnded();
    }
  }

  /** The path johnny-five (the host) opens. */
  get hostPath(): string {
    return this.options.pty!.b;
  }

  get pty(): PtyPair {
    return this.options.pty!;
  }

  /** The current sampling interval (ms) the host set, or the default. */
  get samplingIntervalMs(): number {
    return this.intervalMs;
  }

  /** Channels the host asked to report. */
  get reportingChannels(): number[] {
    return this.channels.flatMap((c, i) => (c.reporting ? [i] : []));
  }

  get stats(): FirmataBoardStats {
    return { ...this.counters, analogMessages: { ...this.counters.analogMessages } };
  }

  /** Resolves when the source of `channel` has ended. */
  ended(channel: number): Promise<void> {
    return this.channels[channel]?.endedPromise ?? Promise.resolve();
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.plugIn();
    this.origin = this.clock.monotonic();
    this.ticker = this.tick().catch((error: unknown) => {
      this.emit('error', error as Error);
    });
  }

  async unplug(options: { downMs?: number; drainMs?: number } = {}): Promise<void> {
    if (!this.plugged) throw new ConfigError('state', 'unplugged', 'the board is already unplugged', 'await the previous unplug()');
    this.plugged = false;
    await this.writeChain;
    await new Promise((resolve) => setTimeout(resolve, options.drainMs ?? 20));
    this.counters.unplugs += 1;
    await this.pty.kill();
    await this.closePort();
    await this.sleeper.sleep(options.downMs ?? 1000);
    if (!this.running) return;
    await this.pty.replug();
    // The board reboots; the signal at its pin goes on at the interval it was sampled at.
    this.resetReporting();
    await this.plugIn();
    this.sleeper.wakeAll();
  }

  async stop(): Promise<void> {
    if (!this.running && !this.transport) {
      if (this.ownPty) await this.options.pty?.close();
      return;
    }
    this.running = false;
    this.sleeper.wakeAll();
    await this.ticker;
    await this.writeChain.catch(() => undefined);
    await this.closePort();
    await this.reader;
    if (this.ownPty) await this.options.pty?.close();
  }

  // ---- link ----------------------------------------------------------------------------------

  private async plugIn(): Promise<void> {
    const transport = new SerialTransport({ path: this.pty.a, baudRate: 57_600 });
    await transport.open();
    this.transport = transport;
    this.plugged = true;
    this.announcing = true;
    this.lastAnnounce = -Infinity;
    this.parse = [];
    this.inSysex = false;
    this.reader = this.readLoop(transport);
  }

  private async closePort(): Promise<void> {
    const t = this.transport;
    this.transport = undefined;
    await t?.close();
  }

  private resetReporting(): void {
    for (const c of this.channels) c.reporting = false;
    this.intervalMs = this.options.samplingIntervalMs;
  }

  private write(bytes: number[]): void {
    const transport = this.transport;
    if (!transport || !this.plugged) return;
    const data = Uint8Array.from(bytes);
    this.writeChain = this.writeChain.then(async () => {
      try {
        await transport.write(data);
        this.counters.bytesWritten += data.length;
      } catch (error) {
        if (!isCanceled(error) && !(error as { disconnected?: boolean }).disconnected && this.plugged) this.emit('error', error as Error);
      }
    });
  }

  private async readLoop(transport: SerialTransport): Promise<void> {
    try {
      for await (const chunk of transport) {
        this.counters.bytesReceived += chunk.length;
        for (const byte of chunk) this.onByte(byte);
      }
    } catch {
      // closed or unplugged
    }
  }

  // ---- host → board --------------------------------------------------------------------------

  private onByte(byte: number): void {
    if (this.inSysex) {
      if (byte === FIRMATA.END_SYSEX) {
        this.inSysex = false;
        this.onSysex(this.parse);
        this.parse = [];
      } else if (byte >= 0x80) {
        // A command byte inside a sysex: the sysex was cut; start over with this byte.
        this.inSysex = false;
        this.parse = [];
        this.onByte(byte);
      } else {
        this.parse.push(byte);
      }
      return;
    }
    if (byte >= 0x80) {
      this.parse = [byte];
      if (byte === FIRMATA.START_SYSEX) {
        this.inSysex = true;
        this.parse = [];
        return;
      }
    } else {
      if (this.parse.length === 0) return; // a data byte without a command: ignored, as StandardFirmata does
      this.parse.push(byte);
    }
    const command = this.parse[0]!;
    const type = command < 0xf0 ? command & 0xf0 : command;
    const needed = type === FIRMATA.REPORT_VERSION || type === FIRMATA.SYSTEM_RESET ? 1 : type === FIRMATA.REPORT_ANALOG || type === FIRMATA.REPORT_DIGITAL ? 2 : 3;
    if (this.parse.length < needed) return;
    const [, a = 0, b = 0] = this.parse;
    this.parse = [];
    this.hostSpoke();
    switch (type) {
      case FIRMATA.REPORT_VERSION:
        this.write([FIRMATA.REPORT_VERSION, this.options.version.major, this.options.version.minor]);
        break;
      case FIRMATA.SYSTEM_RESET:
        this.sampling(() => this.resetReporting());
        break;
      case FIRMATA.REPORT_ANALOG: {
        const channel = this.channels[command & 0x0f];
        if (channel) {
          this.sampling((at) => {
            channel.reporting = a !== 0;
            if (!channel.reporting) return;
            channel.live = true;
            // After a reboot the board samples at its own interval until the host sets one.
            if (this.scheduleMs !== this.intervalMs) this.reschedule(at, this.intervalMs);
          });
        }
        break;
      }
      case FIRMATA.REPORT_DIGITAL:
        break;
      case FIRMATA.SET_PIN_MODE:
        this.pinModes.set(a, b);
        this.emit('mode', a, b);
        break;
      case FIRMATA.SET_DIGITAL_PIN_VALUE:
        this.setPin(a, b ? 1 : 0);
        break;
      case FIRMATA.DIGITAL_MESSAGE: {
        const port = command & 0x0f;
        const mask = a | (b << 7);
        for (let bit = 0; bit < 8; bit++) {
          const pin = port * 8 + bit;
          if (pin >= PIN_COUNT) break;
          const mode = this.pinModes.get(pin);
          if (mode !== FIRMATA_PIN_MODES.OUTPUT) continue; // only output pins are driven
          this.setPin(pin, (mask >> bit) & 1 ? 1 : 0);
        }
        break;
      }
      default:
        break; // analog writes, extended commands: not used by this board
    }
  }

  private setPin(pin: number, value: 0 | 1): void {
    if (pin >= PIN_COUNT || this.pinValues[pin] === value) return;
    this.pinValues[pin] = value;
    const write = { pin, value, t: this.clock.now() };
    this.digitalWrites.push(write);
    this.emit('digital', write);
  }

  private onSysex(data: number[]): void {
    this.hostSpoke();
    const [command, ...rest] = data;
    switch (command) {
      case FIRMATA.QUERY_FIRMWARE:
        this.write(this.firmwareReply());
        break;
      case FIRMATA.CAPABILITY_QUERY:
        this.write([FIRMATA.START_SYSEX, FIRMATA.CAPABILITY_RESPONSE, ...capabilities(), FIRMATA.END_SYSEX]);
        break;
      case FIRMATA.ANALOG_MAPPING_QUERY: {
        const map: number[] = [];
        for (let pin = 0; pin < PIN_COUNT; pin++) map.push(pin >= FIRST_ANALOG_PIN ? pin - FIRST_ANALOG_PIN : 0x7f);
        this.write([FIRMATA.START_SYSEX, FIRMATA.ANALOG_MAPPING_RESPONSE, ...map, FIRMATA.END_SYSEX]);
        break;
      }
      case FIRMATA.PIN_STATE_QUERY: {
        const pin = rest[0] ?? 0;
        this.write([FIRMATA.START_SYSEX, FIRMATA.PIN_STATE_RESPONSE, pin, this.pinModes.get(pin) ?? 0, this.pinValues[pin] ?? 0, FIRMATA.END_SYSEX]);
        break;
      }
      case FIRMATA.SAMPLING_INTERVAL: {
        const ms = (rest[0] ?? 0) | ((rest[1] ?? 0) << 7);
        if (ms > 0 && this.options.samplingIntervalCommand) {
          this.sampling((at) => {
            this.intervalMs = ms;
            this.reschedule(at, ms);
          });
        }
        break;
      }
      default:
        break;
    }
  }

  /**
   * A host command that changes sampling: the sampling loop applies it after sending (or dropping)
   * the values due before it arrived, so no value is sent under a state it was not sampled in.
   */
  private sampling(apply: (at: number) => void): void {
    this.samplingCommands.push({ at: this.clock.monotonic(), apply });
    this.sleeper.wakeAll();
  }

  /**
   * The schedule goes on at `ms` from `at` (after the values due by then): the interval under way
   * ends at the same fraction of the new one, so the signal has no burst, hole or phase jump (a real
   * board keeps its sampling timer running across the command).
   */
  private reschedule(at: number, ms: number): void {
    const oldPeriod = this.scheduleMs / this.options.speed;
    const period = ms / this.options.speed;
    const remaining = Math.min(1, Math.max(0, (this.origin + (this.produced + 1) * oldPeriod - at) / oldPeriod));
    this.origin = at + (remaining - 1) * period;
    this.produced = 0;
    this.scheduleMs = ms;
  }

  private hostSpoke(): void {
    this.counters.commands += 1;
    this.announcing = false;
  }

  private firmwareReply(): number[] {
    const out: number[] = [FIRMATA.START_SYSEX, FIRMATA.QUERY_FIRMWARE, this.options.version.major, this.options.version.minor];
    for (const ch of Buffer.from(this.options.firmwareName, 'ascii')) out.push(ch & 0x7f, (ch >> 7) & 0x7f);
    out.push(FIRMATA.END_SYSEX);
    return out;
  }

  // ---- board → host --------------------------------------------------------------------------

  private async tick(): Promise<void> {
    while (this.running) {
      for (let command = this.samplingCommands.shift(); command; command = this.samplingCommands.shift()) {
        await this.sampleUntil(command.at);
        command.apply(command.at);
      }
      const now = this.clock.monotonic();
      if (this.plugged && this.announcing && now - this.lastAnnounce >= this.options.announceMs) {
        this.lastAnnounce = now;
        this.counters.announcements += 1;
        this.write([FIRMATA.REPORT_VERSION, this.options.version.major, this.options.version.minor, ...this.firmwareReply()]);
      }
      await this.sampleUntil(now);
      if (this.samplingCommands.length > 0) continue;
      const period = this.scheduleMs / this.options.speed;
      const nextDue = this.origin + (this.produced + 1) * period;
      const wait = Math.max(1, Math.min(nextDue - this.clock.monotonic(), this.announcing ? this.options.announceMs : Infinity));
      await this.sleeper.sleep(wait);
    }
  }

  /** The sampling intervals due by `t` on the schedule. */
  private async sampleUntil(t: number): Promise<void> {
    const due = Math.floor((t - this.origin) / (this.scheduleMs / this.options.speed));
    const n = due - this.produced;
    if (n <= 0) return;
    this.produced = due;
    await this.emitSamples(n);
  }

  /** `n` sampling intervals: every reporting channel sends `n` values (pulled from its source). */
  private async emitSamples(n: number): Promise<void> {
    const out: number[] = [];
    for (let ch = 0; ch < ANALOG_CHANNELS; ch++) {
      const channel = this.channels[ch]!;
      const sent = channel.reporting && this.plugged;
      // A source starts when the host first listens; from then on (and while unplugged) it goes on in real time.
      const consuming = channel.pull !== undefined && !channel.ended && (sent || channel.live || !this.plugged);
      const values = consuming ? await this.take(channel, n) : [];
      if (!sent) {
        this.counters.samplesDropped += values.length;
        continue;
      }
      for (let i = 0; i < n; i++) {
        if (i < values.length) channel.value = values[i]!;
        const v = Math.max(0, Math.min(1023, Math.round(channel.value)));
        out.push(FIRMATA.ANALOG_MESSAGE | ch, v & 0x7f, (v >> 7) & 0x7f);
      }
      this.counters.analogMessages[ch] = (this.counters.analogMessages[ch] ?? 0) + n;
    }
    if (out.length > 0) this.write(out);
  }

  private async take(channel: Channel, n: number): Promise<number[]> {
    while (channel.buffer.length < n && !channel.ended) {
      const block = await channel.pull!(n - channel.buffer.length);
      if (!block || block.length === 0) {
        channel.ended = true;
        channel.resolveEnded();
        break;
      }
      for (let i = 0; i < block.length; i++) channel.buffer.push(block[i]!);
    }
    return channel.buffer.splice(0, n);
  }
}

/** Capability response body: per pin, (mode, resolution) pairs then 0x7F. */
function capabilities(): number[] {
  const out: number[] = [];
  for (let pin = 0; pin < PIN_COUNT; pin++) {
    out.push(FIRMATA_PIN_MODES.INPUT, 1, FIRMATA_PIN_MODES.OUTPUT, 1, FIRMATA_PIN_MODES.PULLUP, 1);
    if (PWM_PINS.has(pin)) out.push(FIRMATA_PIN_MODES.PWM, 8, FIRMATA_PIN_MODES.SERVO, 14);
    if (pin >= FIRST_ANALOG_PIN) out.push(FIRMATA_PIN_MODES.ANALOG, 10);
    out.push(0x7f);
  }
  return out;
}

function toPull(source: AnalogSource): (n: number) => Promise<ArrayLike<number> | undefined> {
  if (typeof source === 'function') return async (n) => source(n);
  const iterator: AsyncIterator<ArrayLike<number>> | Iterator<ArrayLike<number>> =
    Symbol.asyncIterator in source ? (source as AsyncIterable<ArrayLike<number>>)[Symbol.asyncIterator]() : (source as Iterable<ArrayLike<number>>)[Symbol.iterator]();
  return async () => {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  };
}
