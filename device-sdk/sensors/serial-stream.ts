/**
 * Drivers `serial-ecg` and `serial-stethoscope`: an ECG front end or a digital stethoscope speaking
 * the medge serial stream protocol v1 (`../protocols/README.md`, sections cited as §n) over a
 * serial port (USB CDC, FTDI, on-board UART).
 *
 * Steps (STYLE item 11): `open` (the `TransportSupervisor` keeps the port open and reopens it after
 * an unplug, with backoff) → `identify` (IDENTIFY, INFO expected within `identifyTimeoutMs`, sent
 * again up to `identifyAttempts` times, §6.3; DATA frames are self-describing, so streaming never
 * waits for it) → `stream` → `close`.
 *
 * What reaches the sink:
 * - `chunk`: one `StreamChunk` per channel and DATA frame (§5), `firstSample` = the stream index:
 *   the device's sample counter unwrapped past 2^32 (§5.4). The first frame seen anchors the
 *   index at the device's counter; after a CLOCK_RESET the index continues where it stood, so a
 *   sensor's indices never go back. `t0` is the board clock (ms) of the first sample, anchored when
 *   a counter origin is first seen and advanced by the nominal rate.
 *   A status-only DATA frame (no samples, §5.1) gives zero-sample chunks that carry its flags
 *   (`onStatus`), at the index of the sample it is dated to, without moving the stream's counters.
 *   A chunk carries `leadOff` / `saturated` when its channel's bit is set in the frame's lead-off /
 *   saturation mask and the INFO frame of this session announced that mask as meaningful
 *   (capabilities bit 0 / 1, §6.2); DATA frames before that INFO (and after a reconnect, until the
 *   device has identified itself again) carry no flags.
 * - `gap`: samples that never arrived: the jump between the index expected and the next DATA
 *   frame's index, one per channel, with `reason` `corrupted` (bytes were quarantined since the
 *   last DATA frame), `disconnected` (the port was reopened meanwhile), `frames-lost` (a seq jump
 *   without either) or `device-skip` (a counter jump without a seq jump: the device lost them).
 * - `quarantine`: every byte the framer did not accept as a decodable frame (noise, damaged and cut
 *   frames, frames of another version or a reserved type), with `transport` `serial:<path>`, plus
 *   intact DATA frames this driver will not store (another device type, or a sample rate other than
 *   `rateHz` when it is set). Vendor frames are skipped, not quarantined (§7), and counted.
 * - `state`: `opening`, `connected`, `connected: <vendor> <model> fw <firmware>`, `reconnecting`.
 *
 * Every byte received is accounted for (`stats`): `bytesReceived = bytesFramed + bytesQuarantined
 * + bytesBuffered`, where `bytesFramed` counts the stored, vendor, INFO and other intact frames.
 */
import type { Clock, ClockTimer } from '../clock.js';
import type { Logger } from '../log.js';
import { encodeFrame, frameToChunks, STREAM_CODEC, type StreamDataFrame, type StreamFrame, type StreamInfoFrame } from '../protocols/stream-frame.js';
import { StreamFramer, type StreamFramerEvent } from '../protocols/stream-framer.js';
import { type ByteTransport, isCanceled } from '../transport/byte-transport.js';
import { SerialTransport } from '../transport/serial-transport.js';
import { TransportSupervisor } from '../transport/supervisor.js';
import type { DriverDeps, DriverDescriptor, SensorDriver, SensorKind, SensorSink } from './types.js';

export interface SerialStreamOptions {
  /** Device path, e.g. `/dev/ttyACM0`, `/dev/serial/by-id/...`. */
  path: string;
  baudRate: number;
  /** Send IDENTIFY after every open (§6.1). */
  identify: boolean;
  identifyTimeoutMs: number;
  identifyAttempts: number;
  /** Only DATA frames at this nominal rate are stored (others are quarantined); `null` accepts any. */
  rateHz: number | null;
  /** Reopen delays after an unplug or a failed open (exponential, full jitter). */
  backoff: { initialMs: number; maxMs: number };
}

const SCHEMA_PROPERTIES = {
  path: { type: 'string', minLength: 1, examples: ['/dev/ttyACM0'] },
  baudRate: { type: 'integer', minimum: 1200, maximum: 4_000_000, examples: [115200] },
  identify: { type: 'boolean' },
  identifyTimeoutMs: { type: 'integer', minimum: 10, maximum: 10_000 },
  identifyAttempts: { type: 'integer', minimum: 1, maximum: 10 },
  rateHz: { type: ['number', 'null'], exclusiveMinimum: 0 },
  backoff: {
    type: 'object',
    properties: { initialMs: { type: 'integer', minimum: 1 }, maxMs: { type: 'integer', minimum: 1 } },
    required: ['initialMs', 'maxMs'],
    additionalProperties: false,
  },
} as const;

const OPTIONS_SCHEMA = { type: 'object', properties: SCHEMA_PROPERTIES, required: ['path'], additionalProperties: false };

const COMMON_DEFAULTS = {
  path: '',
  baudRate: 115_200,
  identify: true,
  identifyTimeoutMs: 250,
  identifyAttempts: 3,
  backoff: Object.freeze({ initialMs: 100, maxMs: 5_000 }),
};

export const DEFAULT_SERIAL_ECG_OPTIONS: Readonly<SerialStreamOptions> = Object.freeze({ ...COMMON_DEFAULTS, rateHz: null });
/** The stethoscope streams PCM at 4 kHz, what the heart-sound analysis expects. */
export const DEFAULT_SERIAL_STETHOSCOPE_OPTIONS: Readonly<SerialStreamOptions> = Object.freeze({ ...COMMON_DEFAULTS, rateHz: 4000 });

/** Byte and frame accounting of one driver (all sessions). */
export interface SerialStreamStats {
  bytesReceived: number;
  /** Bytes of intact frames that were not quarantined (DATA stored, INFO, vendor, IDENTIFY). */
  bytesFramed: number;
  bytesQuarantined: number;
  /** Received but not yet classified (the framer's buffer). */
  bytesBuffered: number;
  dataFrames: number;
  infoFrames: number;
  vendorFrames: number;
  vendorBytes: number;
  quarantineRecords: number;
  /** Frames the seq counter says were lost (§4.1). */
  lostFrames: number;
  /** Samples (per channel) reported in gaps. */
  gapSamples: number;
  /** Samples (per channel) delivered in chunks. */
  samples: number;
  /** Status-only DATA frames (no samples, §5.1) after the stream's first frame: also counted in `dataFrames`. */
  statusFrames: number;
  sessions: number;
  identifySent: number;
}

/** The identity a device reported in INFO (§6.2). */
export type StreamDeviceIdentity = Omit<StreamInfoFrame, 'kind' | 'seq' | 'seqReset'>;

type GapCause = 'corrupted' | 'disconnected' | 'frames-lost';

/**
 * Bytes left undecided in the framer (an unfinished frame) after this long without a new byte are taken
 * as a frame cut short (a device that stopped or reset mid-frame): what they hold is stored or
 * quarantined now instead of waiting for bytes that may never come (QA: 24 frames behind a cut one
 * stayed in memory until shutdown; a power cut meanwhile lost them).
 */
export const SERIAL_IDLE_FLUSH_MS = 1000;

export class SerialStreamDriver implements SensorDriver {
  readonly sensor: string;
  readonly driver: string;
  readonly kind: SensorKind;
  readonly rateUnit = 'samples/s' as const;
  readonly nominalRate: number;
  readonly options: Readonly<SerialStreamOptions>;
  readonly transportName: string;
  private readonly expectedType: 'ecg' | 'pcg';
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly framer = new StreamFramer();
  private readonly counters: Omit<SerialStreamStats, 'bytesBuffered'> = {
    bytesReceived: 0,
    bytesFramed: 0,
    bytesQuarantined: 0,
    dataFrames: 0,
    infoFrames: 0,
    vendorFrames: 0,
    vendorBytes: 0,
    quarantineRecords: 0,
    lostFrames: 0,
    gapSamples: 0,
    samples: 0,
    statusFrames: 0,
    sessions: 0,
    identifySent: 0,
  };
  private supervisor: TransportSupervisor<SerialTransport> | undefined;
  private sink: SensorSink | undefined;
  private sessions = new Set<Promise<void>>();
  private stopped = false;
  private identity: StreamDeviceIdentity | undefined;
  private hostSeq = 0;
  private identifyTimer: ClockTimer | undefined;
  private idleTimer: ClockTimer | undefined;
  /** Clock time of the last byte received (`armIdleFlush`). */
  private lastByteAt = 0;
  // Stream index bookkeeping (§5.4).
  private expectedDevice: number | undefined;
  private offset = 0;
  private nextIndex: number | undefined;
  private anchor: { t: number; index: number; rateHz: number } | undefined;
  private gapCause: GapCause | undefined;

  constructor(driver: string, kind: 'ecg' | 'pcg', sensor: string, options: SerialStreamOptions, deps: DriverDeps) {
    this.driver = driver;
    this.kind = kind;
    this.expectedType = kind;
    this.sensor = sensor;
    this.options = Object.freeze({ ...options, backoff: { ...options.backoff } });
    this.nominalRate = options.rateHz ?? (kind === 'ecg' ? 360 : 4000);
    this.transportName = `serial:${options.path}`;
    this.clock = deps.clock;
    this.log = deps.logger.child({ driver, sensor, path: options.path });
  }

  /** Byte and frame accounting so far. */
  get stats(): SerialStreamStats {
    return { ...this.counters, bytesBuffered: this.framer.bufferedBytes };
  }

  /** What the device said it is (INFO), once it did. */
  get deviceIdentity(): StreamDeviceIdentity | undefined {
    return this.identity;
  }

  start(sink: SensorSink): void {
    if (this.supervisor || this.stopped) return;
    this.sink = sink;
    const { path, baudRate, backoff } = this.options;
    const supervisor = new TransportSupervisor(() => new SerialTransport({ path, baudRate }), { clock: this.clock, logger: this.log, backoff });
    this.supervisor = supervisor;
    supervisor.on('open', (transport) => {
      const session = this.session(transport).catch((error: unknown) => this.log.error({ err: error }, 'session failed'));
      this.sessions.add(session);
      void session.finally(() => this.sessions.delete(session));
    });
    supervisor.on('retry', ({ attempt, delayMs }) => this.state(false, `reconnecting in ${delayMs} ms (attempt ${attempt})`));
    this.state(false, 'opening');
    supervisor.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearIdentifyTimer();
    this.clearIdleTimer();
    await this.supervisor?.stop();
    await Promise.all([...this.sessions]);
    if (this.sink) this.handle(this.framer.flush());
    this.sink?.state({ sensor: this.sensor, connected: false, detail: 'stopped' });
    this.sink = undefined;
  }

  private state(connected: boolean, detail: string): void {
    if (!this.stopped) this.sink?.state({ sensor: this.sensor, connected, detail });
  }

  private async session(transport: SerialTransport): Promise<void> {
    this.counters.sessions += 1;
    if (this.counters.sessions > 1) this.gapCause = 'disconnected';
    this.identity = undefined;
    this.state(true, 'connected');
    if (this.options.identify) this.sendIdentify(transport, 1);
    try {
      for await (const chunk of transport) {
        this.counters.bytesReceived += chunk.length;
        this.lastByteAt = this.clock.now();
        this.handle(this.framer.push(chunk));
        if (this.framer.bufferedBytes > 0 && !this.idleTimer) this.armIdleFlush(SERIAL_IDLE_FLUSH_MS);
      }
    } catch (error) {
      if (!isCanceled(error)) this.log.warn({ err: (error as Error).message }, 'serial link lost');
    }
    this.clearIdentifyTimer();
    this.clearIdleTimer();
    if (this.stopped) return;
    // The port is gone: what is left in the framer is a cut frame or noise, quarantined now.
    this.handle(this.framer.flush());
    this.state(false, 'disconnected');
  }

  private sendIdentify(transport: ByteTransport, attempt: number): void {
    const frame = encodeFrame({ kind: 'identify', seq: this.hostSeq, seqReset: this.counters.identifySent === 0 });
    this.hostSeq = (this.hostSeq + 1) & 0xffff;
    this.counters.identifySent += 1;
    transport.write(frame).catch((error: unknown) => {
      if (!isCanceled(error)) this.log.debug({ err: (error as Error).message }, 'IDENTIFY not sent');
    });
    this.clearIdentifyTimer();
    if (attempt >= this.options.identifyAttempts) return;
    this.identifyTimer = this.clock.setTimeout(() => {
      this.identifyTimer = undefined;
      if (!this.identity && transport.isOpen && !this.stopped) this.sendIdentify(transport, attempt + 1);
    }, this.options.identifyTimeoutMs);
  }

  private clearIdentifyTimer(): void {
    if (this.identifyTimer) this.clock.clearTimeout(this.identifyTimer);
    this.identifyTimer = undefined;
  }

  /**
   * Flushes the framer once no byte has come for `SERIAL_IDLE_FLUSH_MS`. One timer, armed when bytes are
   * left in the framer and none is armed; when it fires early (bytes came since), it re-arms for the rest
   * of the quiet time instead of being re-armed on every transport chunk.
   */
  private armIdleFlush(afterMs: number): void {
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      if (this.stopped || !this.sink || this.framer.bufferedBytes === 0) return;
      const quietMs = this.clock.now() - this.lastByteAt;
      if (quietMs >= 0 && quietMs < SERIAL_IDLE_FLUSH_MS) this.armIdleFlush(SERIAL_IDLE_FLUSH_MS - quietMs);
      else this.handle(this.framer.flush());
    }, afterMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /**
   * Hands the framer's events on. What the sink does with one (storage, analysis) never ends the session:
   * an exception there is logged and the next event is handled (QA: one frame whose rate the analysis
   * refused ended the link for good, and every later frame was lost).
   */
  private handle(events: StreamFramerEvent[]): void {
    for (const event of events) {
      try {
        this.handleOne(event);
      } catch (error) {
        this.log.error({ err: error instanceof Error ? error.message : String(error), event: event.type }, 'a stream event could not be handed on; streaming goes on');
      }
    }
  }

  private handleOne(event: StreamFramerEvent): void {
    switch (event.type) {
      case 'gap':
        this.counters.lostFrames += event.missingFrames;
        this.gapCause ??= 'frames-lost';
        return;
      case 'garbage':
        this.quarantine(event.bytes, event.error.message);
        this.gapCause = this.gapCause === 'disconnected' ? 'disconnected' : 'corrupted';
        return;
      case 'frame':
        this.onFrame(event.frame, event.raw);
        return;
    }
  }

  private quarantine(bytes: Uint8Array, error: string): void {
    this.counters.bytesQuarantined += bytes.length;
    this.counters.quarantineRecords += 1;
    this.sink?.quarantine({ sensor: this.sensor, transport: this.transportName, error, bytes });
  }

  private onFrame(frame: StreamFrame, raw: Uint8Array): void {
    switch (frame.kind) {
      case 'data':
        this.onData(frame, raw);
        return;
      case 'info':
        this.counters.bytesFramed += raw.length;
        this.counters.infoFrames += 1;
        this.onInfo(frame);
        return;
      case 'vendor':
        // §7: not an error, not garbage, not a gap.
        this.counters.bytesFramed += raw.length;
        this.counters.vendorFrames += 1;
        this.counters.vendorBytes += raw.length;
        return;
      case 'identify':
        this.counters.bytesFramed += raw.length;
        return;
    }
  }

  private onInfo(info: StreamInfoFrame): void {
    const { deviceType, channelCount, capabilities, vendor, model, firmware, serial } = info;
    this.identity = { deviceType, channelCount, capabilities, vendor, model, firmware, serial };
    this.clearIdentifyTimer();
    if (deviceType !== this.expectedType) {
      this.log.warn({ deviceType, expected: this.expectedType }, 'the device is not what this driver reads; its DATA frames go to quarantine');
      this.state(true, `wrong device: ${String(deviceType)} on ${this.driver}`);
      return;
    }
    this.log.info({ vendor, model, firmware, channelCount }, 'device identified');
    this.state(true, `connected: ${vendor} ${model} fw ${firmware}`);
  }

  private onData(frame: StreamDataFrame, raw: Uint8Array): void {
    if (frame.deviceType !== this.expectedType) {
      this.quarantine(raw, `${STREAM_CODEC}: device-type: ${this.driver} reads ${this.expectedType} frames; this DATA frame is from a ${String(frame.deviceType)} device`);
      return;
    }
    if (this.options.rateHz !== null && Math.fround(this.options.rateHz) !== frame.rateHz) {
      this.quarantine(raw, `${STREAM_CODEC}: rate: ${this.driver} is configured for ${this.options.rateHz} Hz; this DATA frame is at ${frame.rateHz} Hz`);
      return;
    }
    this.counters.bytesFramed += raw.length;
    this.counters.dataFrames += 1;
    const perChannel = frame.channels[0]?.length ?? 0;
    // The masks count only once this session's INFO has said they are meaningful (§6.2).
    const capabilities = this.identity?.capabilities ?? 0;
    if (perChannel === 0 && this.expectedDevice !== undefined && !frame.clockReset) {
      this.onStatus(frame, capabilities);
      return;
    }
    const index = this.streamIndex(frame);
    const expected = this.nextIndex;
    if (expected !== undefined && index > expected) {
      const samples = index - expected;
      const reason = this.gapCause ?? 'device-skip';
      this.counters.gapSamples += samples;
      for (let channel = 0; channel < frame.channels.length; channel++) this.sink?.gap({ sensor: this.sensor, channel, firstSample: expected, samples, reason });
    }
    this.gapCause = undefined;
    this.nextIndex = index + perChannel;
    if (!this.anchor || this.anchor.rateHz !== frame.rateHz) this.anchor = { t: this.clock.now() - (perChannel * 1000) / frame.rateHz, index, rateHz: frame.rateHz };
    const t0 = timeAt(this.anchor, index);
    this.counters.samples += perChannel;
    for (const chunk of frameToChunks(frame, this.sensor, { firstSample: index, t0, capabilities })) this.sink?.chunk(chunk);
  }

  /**
   * A status-only DATA frame (no samples, §5.1): a front end reporting that a lead came off or is back
   * (or saturation) between its sample frames. Its masks reach the sink as one zero-sample chunk per
   * channel (`frameToChunks`), at the stream index and time of the sample it is dated to, rather than
   * being applied to the samples that follow: the masks mean "during this frame" (§5.1), so the next
   * frame's own mask says what its samples had, and a report kept as it came stays true when no sample
   * follows (a front end that stops sampling while the electrodes are off, an unplug) and dates the change
   * to its sample, not to the next frame. It moves no counter: its index may fall inside the next frame (or
   * the last one), which is neither a gap nor a counter going back. (The first frame of a stream, or one
   * with CLOCK_RESET, sets the origin as any DATA frame does.)
   */
  private onStatus(frame: StreamDataFrame, capabilities: number): void {
    this.counters.statusFrames += 1;
    const expected = this.expectedDevice as number;
    const index = Math.max(0, expected + counterDelta(frame.firstSample, expected) + this.offset);
    const t0 = this.anchor?.rateHz === frame.rateHz ? timeAt(this.anchor, index) : this.clock.now();
    for (const chunk of frameToChunks(frame, this.sensor, { firstSample: index, t0, capabilities })) this.sink?.chunk(chunk);
  }

  /** Maps the frame's uint32 counter to the sensor's stream index (§5.4): unwrapped, never going back. */
  private streamIndex(frame: StreamDataFrame): number {
    const perChannel = frame.channels[0]?.length ?? 0;
    let device: number;
    if (this.expectedDevice === undefined) {
      device = frame.firstSample;
      this.offset = 0;
    } else if (frame.clockReset) {
      device = frame.firstSample;
      this.offset = (this.nextIndex ?? 0) - device;
      this.anchor = undefined;
    } else {
      const delta = counterDelta(frame.firstSample, this.expectedDevice);
      if (delta < 0) {
        // The counter went back without CLOCK_RESET (§5.4 violation): start a new origin after the last index.
        this.log.warn({ firstSample: frame.firstSample, expected: this.expectedDevice % 2 ** 32 }, 'sample counter went back without CLOCK_RESET');
        device = frame.firstSample;
        this.offset = (this.nextIndex ?? 0) - device;
        this.anchor = undefined;
      } else {
        device = this.expectedDevice + delta;
      }
    }
    this.expectedDevice = device + perChannel;
    return device + this.offset;
  }
}

/** Signed distance (int32) from the expected position `expected` (unwrapped) to a frame's uint32 counter `firstSample` (§5.4). */
function counterDelta(firstSample: number, expected: number): number {
  return ((firstSample - (expected % 2 ** 32) + 2 ** 32) % 2 ** 32) | 0;
}

/** Board time (ms) of stream index `index` by the anchor of its counter origin. */
function timeAt(anchor: { t: number; index: number; rateHz: number }, index: number): number {
  return Math.round(anchor.t + ((index - anchor.index) * 1000) / anchor.rateHz);
}

function descriptor(name: string, kind: 'ecg' | 'pcg', defaults: Readonly<SerialStreamOptions>, description: string): DriverDescriptor<SerialStreamOptions> {
  return Object.freeze({
    name,
    kind,
    transport: 'serial',
    description,
    optionsSchema: OPTIONS_SCHEMA,
    defaults,
    create: (sensor: string, options: SerialStreamOptions, deps: DriverDeps) => new SerialStreamDriver(name, kind, sensor, options, deps),
  });
}

export const SERIAL_ECG_DRIVER = descriptor('serial-ecg', 'ecg', DEFAULT_SERIAL_ECG_OPTIONS, 'ECG front end on a serial port, medge stream protocol v1 (device type 0x01)');
export const SERIAL_STETHOSCOPE_DRIVER = descriptor(
  'serial-stethoscope',
  'pcg',
  DEFAULT_SERIAL_STETHOSCOPE_OPTIONS,
  'digital stethoscope on a serial port, medge stream protocol v1 (device type 0x02), PCM at 4 kHz',
);
