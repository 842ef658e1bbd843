/**
 * A simulated serial ECG or stethoscope: the device end of a pseudo-terminal pair, speaking the
 * medge serial stream protocol v1 (`device-sdk/protocols/README.md`, section numbers below refer to
 * it) from a sample source, with scriptable faults. The board under test opens the other end with
 * the real `SerialTransport` and the real drivers (`serial-ecg`, `serial-stethoscope`).
 *
 * The peer is written from the protocol specification: it uses the frame codec (`encodeFrame`,
 * checked against the spec's hex vectors) and the framer only to read IDENTIFY, never driver code.
 *
 * ## API
 *
 * ```ts
 * import { createStreamDevice } from './simulator/devices/stream-device.js';
 *
 * const device = await createStreamDevice({
 *   deviceType: 'ecg', channels: 2, rateHz: 360, unit: 'mV', gain: 200,
 *   source: (n) => nextInterleavedBlock(n),   // or an (async) iterable of Int16Array blocks
 *   speed: 60,                                 // 1 = real time
 *   faults: { corruptRate: 0.05, seed: 7 },
 * });
 * // driver config: { driver: 'serial-ecg', options: { path: device.hostPath } }
 * await device.unplug({ downMs: 2000 });       // socat killed, links removed, recreated after 2 s
 * device.stats;                                // frames sent, corrupted spans, ... (below)
 * await device.stop();                         // stops streaming, closes the pty (if it made it)
 * ```
 *
 * - `createStreamDevice(options)` makes a pty pair with socat (or uses `options.pty`), opens the
 *   device end (`pty.a`) and starts streaming at once; `hostPath` (`pty.b`) is what the driver opens.
 *   Pass `start: false` to call `start()` later; `startOn: 'identify'` holds the recording until the
 *   host's first IDENTIFY (the drivers send one on every open), so no sample is written before the
 *   host listens (bytes written to a pty nobody has open are lost, as on a real port). `path` instead of `pty` drives an existing port
 *   (a real UART, an existing pty); unplug then needs the `pty`.
 * - Source: `StreamSampleSource` is either a pull callback `(samplesPerChannel) => Int16Array |
 *   undefined` (sync or async) or an (async) iterable of `Int16Array` blocks. Samples are
 *   interleaved (`s0c0 s0c1 … s1c0 …`); any block length that is a whole number of sample sets.
 *   `undefined` or the end of the iterable ends the recording: the last partial frame is sent, then
 *   `ended` resolves and `'end'` is emitted; the device stays plugged in (it answers IDENTIFY).
 * - Timing: frames are due from `clock.monotonic()` (the injected `Clock`, default the system
 *   clock): sample `i` is due at `i / (rateHz × (1 + clockSkewPpm/1e6) × speed)` s after start; a
 *   late timer sends the frames due since, never drifts.
 * - First frame: INFO with SEQ_RESET (§6.2), then DATA frames with CLOCK_RESET on the first one
 *   (§4.1); the sample counter starts at `startSample` (default 0) and wraps at 2^32 on the wire.
 *   Every IDENTIFY received is answered with INFO between two frames (§6.1).
 * - Faults (`StreamDeviceFaults`, seeded with `faults.seed`, so a seed reproduces the schedule):
 *   - `corruptRate`: per DATA frame, probability that one byte of it is XORed with a non-zero value
 *     (the frame is lost: its CRC fails); the span is recorded in `stats.corrupted`.
 *   - `truncateRate`: per DATA frame, probability that only a prefix (1 .. length-1 bytes) is sent
 *     (a device reset mid-frame); recorded in `stats.truncated`.
 *   - `vendorFrameRate`: per DATA frame, probability that an unknown vendor frame (type `vendorType`,
 *     default 0xC1, 3..16 random bytes) is sent before it. Not a loss: a host skips it (§7).
 *   - `clockSkewPpm`: the device's real sample rate is `rateHz × (1 + ppm/1e6)` while its frames
 *     claim `rateHz` (a crystal off by that much).
 *   - `slowBytesPerSecond`: writes are paced to this byte rate, in pieces of `writeChunkBytes`
 *     (default 16): a slow UART or a device that trickles its frames.
 *   - `writeChunkBytes` alone: frames are written in pieces of this size (split frames on the wire).
 *   - `leadOff`: `LeadOffSpan[]`, electrodes off for spans of the recording: the DATA frames holding
 *     them carry the lead-off bit of the channels (§5.1) and the samples a front end sends then (at
 *     the positive rail with the saturation bit, or at baseline); recorded in `stats.leadOff`.
 *   - `jumpCounter(samples)`: the device's sample counter skips forward (a device-side loss, §5.4):
 *     a host sees a sample gap without a seq gap. Recorded in `stats.counterJumps`.
 *   - `unplug({ downMs, drainMs, mode })`: stops writing, waits `drainMs` (default 50 ms, real time,
 *     so the bytes in flight reach the host), kills socat (both ends hang up, the links vanish, as
 *     udev removes /dev/ttyUSB0), waits `downMs` on the clock, starts socat again at the same paths
 *     and reopens the device end. `mode` (default `unplugMode`):
 *     - `'drop'` (default): the device kept acquiring while unplugged; the frames due meanwhile are
 *       consumed from the source, numbered, and never sent: `stats.droppedWhileUnplugged`. The host
 *       sees a seq and sample gap.
 *     - `'pause'`: the recording pauses while unplugged and resumes where it stopped: no sample is
 *       lost, the counters continue (a device that buffers). With `awaitHost` (default) it resumes
 *       only when the host's IDENTIFY shows its port is open again.
 *     - `'reset'`: power cycle: like `'drop'`, then the device restarts with INFO + SEQ_RESET and its
 *       sample counter at 0 with CLOCK_RESET.
 * - Counters (`stats`, a snapshot): `framesSent` (every frame written whole: intact, corrupted,
 *   INFO, vendor; not the truncated ones),
 *   `dataFramesSent` (intact DATA frames), `samplesSent` (per channel, in intact DATA frames),
 *   `infoFramesSent`, `vendorFramesSent`, `identifyReceived`, `bytesWritten`, `unplugs`,
 *   `corrupted` / `truncated` / `droppedWhileUnplugged`: `LostSpan[]` `{ seq, firstSample, samples,
 *   sourceIndex, bytes, digest? }` where `firstSample` is the device counter (unwrapped), `sourceIndex`
 *   the index of the span's first sample set in the source and `digest` (damaged frames) the
 *   `frameDigest` of the bytes written; `counterJumps` (`{ atSample, samples, sourceIndex,
 *   acquisition }`); `acquisitions` (`{ sourceIndex, firstSample }`: where the counter started, the
 *   first entry and one per `'reset'`); `leadOff` (`LeadOffFrame[]`: DATA frames built with lead-off
 *   bits); `sourceSamples` (sample sets taken from the source); `ended`.
 * - Events: `'frame'` (`SentFrameInfo` for every DATA frame: intact, corrupted, truncated or
 *   dropped), `'end'`, `'error'` (a write that failed for another reason than an unplug).
 *
 * Everything is released by `stop()`: timers, the device's port, socat (when the device made the pty).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { ConfigError } from '../../device-sdk/errors.js';
import { mulberry32, type Random } from '../../device-sdk/random.js';
import { encodeFrame, type StreamDataFrame, type StreamInfoFrame, type StreamUnit, STREAM_MAX_BODY_BYTES, STREAM_DATA_HEADER_BYTES } from '../../device-sdk/protocols/stream-frame.js';
import { StreamFramer } from '../../device-sdk/protocols/stream-framer.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { isCanceled } from '../../device-sdk/transport/byte-transport.js';
import { createPtyPair, type PtyPair } from '../pty.js';
import { ClockSleeper, definedOnly } from './device-timers.js';

/** Pull `samplesPerChannel` sample sets (interleaved); fewer is fine, `undefined` or empty = end of recording. */
export type SamplePull = (samplesPerChannel: number) => Int16Array | undefined | Promise<Int16Array | undefined>;
/** Where a simulated device's samples come from: a pull callback or an (async) iterable of interleaved blocks. */
export type StreamSampleSource = SamplePull | AsyncIterable<Int16Array> | Iterable<Int16Array>;

export type UnplugMode = 'drop' | 'pause' | 'reset';

export interface StreamDeviceFaults {
  /** Probability per DATA frame of one damaged byte (0..1). */
  corruptRate: number;
  /** Probability per DATA frame that only a prefix is sent (0..1). */
  truncateRate: number;
  /** Probability per DATA frame that a vendor frame is sent before it (0..1). */
  vendorFrameRate: number;
  /** Vendor frame type code, 0x80..0xFF. */
  vendorType: number;
  /** Real sample rate = nominal × (1 + ppm/1e6). */
  clockSkewPpm: number;
  /** Pace writes to this many bytes per second (real time); 0 = as fast as the link takes them. */
  slowBytesPerSecond: number;
  /** Write frames in pieces of this many bytes; 0 = whole frames (16 when `slowBytesPerSecond` is set). */
  writeChunkBytes: number;
  /** Seed of the fault schedule. */
  seed: number;
  /** Electrodes off for these spans of the recording (below). */
  leadOff: readonly LeadOffSpan[];
}

/**
 * Electrodes off the patient for `samples` sample sets of the recording from source sample set
 * `fromSample`, on the channels of the `channels` mask (default all). What an ECG front end sends
 * then: its input is pulled to a rail by the lead-off bias (`'rail'`, the default: samples at the
 * positive ADC limit, 32767, so the frame's saturation bit is set too) or its output sits at
 * mid-scale (`'baseline'`: 0), and every DATA frame holding such a sample has the channel's bit in
 * its lead-off mask (§5.1). The mask means something to a host only when INFO announces it
 * (`info.capabilities` with `STREAM_CAPABILITIES.leadOff`, as the ECG default does).
 * With `statusFrames`, the front end also reports each change at once, as one whose lead-off comparator
 * raises an interrupt does: a status-only DATA frame (no samples, §5.1) dated to the sample set where
 * the electrodes come off (the span's bits set, and the saturation bits at the rail) and one dated to
 * where they are back on (those bits clear), each sent before the DATA frame holding that sample set;
 * recorded in `stats.statusFrames`.
 */
export interface LeadOffSpan {
  fromSample: number;
  samples: number;
  channels?: number;
  level?: 'rail' | 'baseline';
  statusFrames?: boolean;
}

/** A status-only DATA frame sent for a lead-off change (`LeadOffSpan.statusFrames`). */
export interface StatusFrameInfo {
  seq: number;
  /** The source sample set it is dated to, and the device counter (unwrapped) there: its `firstSample`. */
  sourceIndex: number;
  firstSample: number;
  leadOff: number;
  saturated: number;
}

/** A DATA frame built with lead-off bits set (whatever then happened to it on the wire). */
export interface LeadOffFrame {
  seq: number;
  /** Index of the frame's first sample set in the source. */
  sourceIndex: number;
  samples: number;
  /** The frame's lead-off mask. */
  channels: number;
}

/** The positive ADC limit of an int16 front end: what a lead pulled to the rail reads. */
export const LEAD_OFF_RAIL = 32767;

export const DEFAULT_STREAM_DEVICE_FAULTS: Readonly<StreamDeviceFaults> = Object.freeze({
  corruptRate: 0,
  truncateRate: 0,
  vendorFrameRate: 0,
  vendorType: 0xc1,
  clockSkewPpm: 0,
  slowBytesPerSecond: 0,
  writeChunkBytes: 0,
  seed: 1,
  leadOff: Object.freeze([]) as readonly LeadOffSpan[],
});

export interface StreamDeviceInfo {
  vendor: string;
  model: string;
  firmware: string;
  serial: string;
  /** `STREAM_CAPABILITIES` bits. */
  capabilities: number;
}

export interface StreamDeviceOptions {
  deviceType: 'ecg' | 'pcg';
  channels: number;
  /** Nominal sample rate (Hz), what the frames claim. */
  rateHz: number;
  unit: StreamUnit;
  /** ADC units per unit. */
  gain: number;
  /** Sample sets per DATA frame; default 50 ms worth (at least 1). */
  samplesPerFrame: number | undefined;
  source: StreamSampleSource;
  /** Playback speed: 1 = real time, 60 = a minute per second. */
  speed: number;
  /** The device's sample counter at the first sample (uint32). */
  startSample: number;
  info: StreamDeviceInfo;
  faults: Partial<StreamDeviceFaults>;
  /** Default mode of `unplug()`. */
  unplugMode: UnplugMode;
  clock: Clock;
  /** A pty pair to use (its `a` end); one is created (and closed by `stop()`) when both this and `path` are absent. */
  pty: PtyPair | undefined;
  /** An existing port to open instead of a pty pair's `a` end. */
  path: string | undefined;
  baudRate: number;
  /** Start streaming in `createStreamDevice` (default true). */
  start: boolean;
  /**
   * `'immediate'`: stream as soon as started (bytes written before the host opens its end are lost,
   * as on a real port). `'identify'`: open the port and wait for the host's first IDENTIFY, then
   * stream from the first sample (exact accounting in scenarios).
   */
  startOn: 'immediate' | 'identify';
}

export const DEFAULT_STREAM_DEVICE_OPTIONS = Object.freeze({
  samplesPerFrame: undefined,
  speed: 1,
  startSample: 0,
  unplugMode: 'drop' as UnplugMode,
  clock: systemClock,
  pty: undefined,
  path: undefined,
  baudRate: 115_200,
  start: true,
  startOn: 'immediate' as 'immediate' | 'identify',
});

/** A DATA frame's samples that did not reach the host intact. */
export interface LostSpan {
  seq: number;
  /** The device's sample counter at the first sample (unwrapped: may exceed 2^32 - 1). */
  firstSample: number;
  /** Sample sets (per channel). */
  samples: number;
  /** Index of the first sample set in the source. */
  sourceIndex: number;
  /** Bytes written for it (0 when dropped while unplugged). */
  bytes: number;
  /** Damaged frames: `frameDigest` of the bytes written, to find them in the host's quarantine. */
  digest?: string;
}

/** An acquisition start: the sample counter restarted (CLOCK_RESET, §4.1) before source sample set `sourceIndex`. */
export interface AcquisitionStart {
  sourceIndex: number;
  /** The counter at that sample set. */
  firstSample: number;
}

/** A fingerprint of bytes written (SHA-256, first 16 hex digits): finds a damaged frame among quarantined bytes. */
export function frameDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

export interface SentFrameInfo extends LostSpan {
  fate: 'intact' | 'corrupted' | 'truncated' | 'dropped';
}

export interface StreamDeviceStats {
  framesSent: number;
  dataFramesSent: number;
  samplesSent: number;
  infoFramesSent: number;
  vendorFramesSent: number;
  identifyReceived: number;
  bytesWritten: number;
  unplugs: number;
  sourceSamples: number;
  corrupted: LostSpan[];
  truncated: LostSpan[];
  droppedWhileUnplugged: LostSpan[];
  /** `sourceIndex`: the first source sample set numbered after the jump; `acquisition`: index in `acquisitions`. */
  counterJumps: Array<{ atSample: number; samples: number; sourceIndex: number; acquisition: number }>;
  /** The first acquisition, then one per power cycle (`unplug` in `'reset'` mode). */
  acquisitions: AcquisitionStart[];
  /** DATA frames with lead-off bits (`faults.leadOff`). */
  leadOff: LeadOffFrame[];
  /** Status-only DATA frames sent (`LeadOffSpan.statusFrames`), also counted in `framesSent`. */
  statusFrames: StatusFrameInfo[];
  ended: boolean;
}

export interface UnplugOptions {
  /** Time unplugged, on the device's clock. Default 1000 ms. */
  downMs?: number;
  /** Real time to let bytes in flight reach the host before the link is cut. Default 50 ms. */
  drainMs?: number;
  mode?: UnplugMode;
  /**
   * After the replug, write nothing until the host sends IDENTIFY (the drivers do on every open),
   * so no frame is written before the host's port is open again: in `'drop'` and `'reset'` modes
   * the frames due meanwhile count as dropped, in `'pause'` mode the recording stays held.
   * Default true; false writes at once (frames written before the host reopens are lost unrecorded).
   */
  awaitHost?: boolean;
}

interface StreamDeviceEvents {
  frame: [SentFrameInfo];
  end: [];
  error: [Error];
}

const DEFAULT_INFO: Readonly<Record<'ecg' | 'pcg', StreamDeviceInfo>> = Object.freeze({
  ecg: Object.freeze({ vendor: 'medge-sim', model: 'SIM-ECG', firmware: '1.0.0', serial: 'SIM-ECG-0001', capabilities: 0b0111 }),
  pcg: Object.freeze({ vendor: 'medge-sim', model: 'SIM-STETH', firmware: '1.0.0', serial: 'SIM-PCG-0001', capabilities: 0b0110 }),
});

export type StreamDeviceOptionsInput = Pick<StreamDeviceOptions, 'deviceType' | 'channels' | 'rateHz' | 'source'> &
  Partial<Omit<StreamDeviceOptions, 'deviceType' | 'channels' | 'rateHz' | 'source' | 'info'>> & { info?: Partial<StreamDeviceInfo> };

/** Creates the pty (unless given), opens the device end and (by default) starts streaming. */
export async function createStreamDevice(input: StreamDeviceOptionsInput): Promise<SimStreamDevice> {
  const ownPty = input.pty === undefined && input.path === undefined;
  const pty = input.pty ?? (ownPty ? await createPtyPair() : undefined);
  const device = new SimStreamDevice({ ...input, pty }, ownPty);
  try {
    if (input.start ?? DEFAULT_STREAM_DEVICE_OPTIONS.start) await device.start();
  } catch (error) {
    await device.stop();
    throw error;
  }
  return device;
}

export class SimStreamDevice extends EventEmitter<StreamDeviceEvents> {
  readonly options: Readonly<StreamDeviceOptions>;
  readonly faults: Readonly<StreamDeviceFaults>;
  readonly samplesPerFrame: number;
  /** Resolves when the source has ended and its last frame was sent (or dropped). */
  readonly ended: Promise<void>;
  private readonly ownPty: boolean;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly pull: (n: number) => Promise<Int16Array | undefined>;
  private transport: SerialTransport | undefined;
  private readonly framer = new StreamFramer();
  private readonly counters: StreamDeviceStats = {
    framesSent: 0,
    dataFramesSent: 0,
    samplesSent: 0,
    infoFramesSent: 0,
    vendorFramesSent: 0,
    identifyReceived: 0,
    bytesWritten: 0,
    unplugs: 0,
    sourceSamples: 0,
    corrupted: [],
    truncated: [],
    droppedWhileUnplugged: [],
    counterJumps: [],
    acquisitions: [],
    leadOff: [],
    statusFrames: [],
    ended: false,
  };
  private seq = 0;
  private seqReset = true;
  private clockReset = true;
  /** Device sample counter, unwrapped. */
  private counter: number;
  /** Sample sets due/produced since the schedule origin. */
  private produced = 0;
  private origin = 0;
  private running = false;
  private stopping = false;
  private plugged = false;
  /** Set while the recording is held (not consumed, schedule frozen): unplugged in 'pause' mode, or waiting for the host. */
  private pausedAt: number | undefined;
  /** Until the host's next IDENTIFY: nothing is written (DATA frames due are dropped unless held). */
  private awaitingHost = false;
  private pendingInfo = 0;
  private loop: Promise<void> | undefined;
  private reader: Promise<void> | undefined;
  private readonly sleeper: ClockSleeper;
  private writeChain: Promise<void> = Promise.resolve();
  private resolveEnded!: () => void;

  constructor(input: StreamDeviceOptionsInput, ownPty = false) {
    super();
    const deviceType = input.deviceType;
    const options: StreamDeviceOptions = {
      ...DEFAULT_STREAM_DEVICE_OPTIONS,
      unit: deviceType === 'ecg' ? 'mV' : 'au',
      gain: deviceType === 'ecg' ? 200 : 32_768,
      ...definedOnly(input),
      info: { ...DEFAULT_INFO[deviceType], ...input.info },
      faults: { ...input.faults },
    } as StreamDeviceOptions;
    if (deviceType !== 'ecg' && deviceType !== 'pcg') throw new ConfigError('deviceType', deviceType, "must be 'ecg' or 'pcg'", "use 'ecg' for an ECG front end, 'pcg' for a stethoscope");
    if (!Number.isInteger(options.channels) || options.channels < 1 || options.channels > 32) throw new ConfigError('channels', options.channels, 'must be an integer in 1..32', 'pass the channel count, e.g. 2');
    if (!(options.rateHz > 0) || !Number.isFinite(options.rateHz)) throw new ConfigError('rateHz', options.rateHz, 'must be a positive number', 'pass the sample rate, e.g. 360');
    if (!(options.speed > 0) || !Number.isFinite(options.speed)) throw new ConfigError('speed', options.speed, 'must be a positive number', 'pass 1 for real time');
    if (!options.pty && !options.path) throw new ConfigError('path', options.path, 'needs a pty pair or a port path', 'use createStreamDevice() to make a pty pair');
    const maxPerFrame = Math.floor((STREAM_MAX_BODY_BYTES - STREAM_DATA_HEADER_BYTES) / (2 * options.channels));
    const spf = options.samplesPerFrame ?? Math.max(1, Math.round(options.rateHz / 20));
    if (!Number.isInteger(spf) || spf < 1 || spf > maxPerFrame) throw new ConfigError('samplesPerFrame', spf, `must be an integer in 1..${maxPerFrame} for ${options.channels} channels`, 'pass about 50 ms of samples');
    const faults = { ...DEFAULT_STREAM_DEVICE_FAULTS, ...options.faults };
    for (const key of ['corruptRate', 'truncateRate', 'vendorFrameRate'] as const) {
      const p = faults[key];
      if (!(p >= 0 && p <= 1)) throw new ConfigError(`faults.${key}`, p, 'must be a probability in 0..1', 'pass e.g. 0.05');
    }
    if (!Number.isInteger(faults.vendorType) || faults.vendorType < 0x80 || faults.vendorType > 0xff) throw new ConfigError('faults.vendorType', faults.vendorType, 'must be a vendor frame type 0x80..0xff', 'omit it for 0xc1');
    const allChannels = options.channels === 32 ? 0xffffffff : (1 << options.channels) - 1;
    faults.leadOff = faults.leadOff.map((span, i) => {
      const at = `faults.leadOff[${i}]`;
      if (!Number.isInteger(span.fromSample) || span.fromSample < 0) throw new ConfigError(`${at}.fromSample`, span.fromSample, 'must be a sample set index >= 0', 'pass where the electrodes come off, e.g. 3600');
      if (!Number.isInteger(span.samples) || span.samples < 1) throw new ConfigError(`${at}.samples`, span.samples, 'must be a positive integer', 'pass how many sample sets they stay off, e.g. 1800');
      const channels = span.channels ?? allChannels;
      if (!Number.isInteger(channels) || channels <= 0 || (channels & ~allChannels) !== 0) throw new ConfigError(`${at}.channels`, channels, `must be a non-empty channel mask of the ${options.channels} channels`, 'omit it for all channels, or pass e.g. 0b1');
      const level = span.level ?? 'rail';
      if (level !== 'rail' && level !== 'baseline') throw new ConfigError(`${at}.level`, level, "must be 'rail' or 'baseline'", "omit it for 'rail'");
      return Object.freeze({ fromSample: span.fromSample, samples: span.samples, channels: channels >>> 0, level, statusFrames: span.statusFrames === true });
    });
    this.options = Object.freeze(options);
    this.faults = Object.freeze(faults);
    this.samplesPerFrame = spf;
    this.ownPty = ownPty;
    this.clock = options.clock;
    this.sleeper = new ClockSleeper(options.clock);
    this.random = mulberry32(faults.seed);
    this.counter = options.startSample;
    this.counters.acquisitions.push({ sourceIndex: 0, firstSample: options.startSample });
    this.pull = toPull(options.source, options.channels);
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /** The path the host (driver) opens: the pty's other end. Undefined when driving an existing `path`. */
  get hostPath(): string | undefined {
    return this.options.pty?.b;
  }

  /** The path this device writes to. */
  get devicePath(): string {
    return this.options.path ?? this.options.pty!.a;
  }

  get pty(): PtyPair | undefined {
    return this.options.pty;
  }

  /** A snapshot of the counters. */
  get stats(): StreamDeviceStats {
    const c = this.counters;
    return {
      ...c,
      corrupted: [...c.corrupted],
      truncated: [...c.truncated],
      droppedWhileUnplugged: [...c.droppedWhileUnplugged],
      counterJumps: [...c.counterJumps],
      acquisitions: [...c.acquisitions],
      leadOff: [...c.leadOff],
      statusFrames: [...c.statusFrames],
    };
  }

  /** True while the device end is open (not unplugged). */
  get isPlugged(): boolean {
    return this.plugged;
  }

  /** Opens the device end and starts streaming (INFO first). */
  async start(): Promise<void> {
    if (this.running) return;
    if (this.stopping) throw new ConfigError('state', 'stopped', 'the device was stopped', 'create a new device');
    this.running = true;
    await this.plugIn();
    this.origin = this.clock.monotonic();
    if (this.options.startOn === 'identify') {
      this.hold();
      this.awaitingHost = true;
    }
    this.loop = this.run().catch((error: unknown) => {
      this.emit('error', error as Error);
    });
  }

  /** Skips the device's sample counter forward by `samples` (a device-side loss, §5.4). */
  jumpCounter(samples: number): void {
    if (!Number.isInteger(samples) || samples < 1) throw new ConfigError('samples', samples, 'must be a positive integer', 'pass the number of sample sets to skip');
    this.counters.counterJumps.push({ atSample: this.counter, samples, sourceIndex: this.counters.sourceSamples, acquisition: this.counters.acquisitions.length - 1 });
    this.counter += samples;
  }

  /** Unplugs the device (socat killed, links removed) and plugs it back after `downMs`. */
  async unplug(options: UnplugOptions = {}): Promise<void> {
    const pty = this.options.pty;
    if (!pty) throw new ConfigError('pty', undefined, 'unplug needs the device on a pty pair', 'create the device with createStreamDevice() or pass `pty`');
    if (!this.plugged) throw new ConfigError('state', 'unplugged', 'the device is already unplugged', 'await the previous unplug()');
    const mode = options.mode ?? this.options.unplugMode;
    this.plugged = false;
    if (mode === 'pause') this.hold();
    await this.writeChain;
    await new Promise((resolve) => setTimeout(resolve, options.drainMs ?? 50));
    this.counters.unplugs += 1;
    await pty.kill();
    await this.closePort();
    await this.sleep(options.downMs ?? 1000);
    if (this.stopping) return;
    await pty.replug();
    if (mode === 'reset') {
      this.seq = 0;
      this.seqReset = true;
      this.clockReset = true;
      this.counter = 0;
      this.counters.acquisitions.push({ sourceIndex: this.counters.sourceSamples, firstSample: 0 });
    }
    await this.plugIn();
    if (options.awaitHost ?? true) this.awaitingHost = true;
    else if (mode === 'pause') this.resume();
    this.wakeAll();
  }

  /** Stops streaming and releases the port, timers and (when the device made it) the pty pair. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.running = false;
    this.wakeAll();
    await this.loop;
    await this.writeChain.catch(() => undefined);
    await this.closePort();
    await this.reader;
    if (this.ownPty) await this.options.pty?.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  private async plugIn(): Promise<void> {
    const transport = new SerialTransport({ path: this.devicePath, baudRate: this.options.baudRate });
    await transport.open();
    this.transport = transport;
    this.plugged = true;
    this.reader = this.readLoop(transport);
    if (this.seqReset) this.pendingInfo += 1;
  }

  private async closePort(): Promise<void> {
    const t = this.transport;
    this.transport = undefined;
    await t?.close();
  }

  /** Reads what the host sends: answers IDENTIFY with INFO (§6.1), ignores everything else. */
  private async readLoop(transport: SerialTransport): Promise<void> {
    try {
      for await (const chunk of transport) {
        for (const event of this.framer.push(chunk)) {
          if (event.type === 'frame' && event.frame.kind === 'identify') {
            this.counters.identifyReceived += 1;
            this.pendingInfo += 1;
            if (this.awaitingHost) {
              this.awaitingHost = false;
              this.resume();
            }
            this.wakeAll();
          }
        }
      }
    } catch {
      // closed or unplugged: the port is reopened by unplug()
    }
  }

  private hold(): void {
    this.pausedAt ??= this.clock.monotonic();
  }

  /** Continues a held recording where it stopped: the schedule shifts by the time held. */
  private resume(): void {
    if (this.pausedAt === undefined) return;
    this.origin += this.clock.monotonic() - this.pausedAt;
    this.pausedAt = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return this.sleeper.sleep(ms);
  }

  private wakeAll(): void {
    this.sleeper.wakeAll();
  }

  private effectiveRate(): number {
    return this.options.rateHz * (1 + this.faults.clockSkewPpm / 1e6) * this.options.speed;
  }

  private async run(): Promise<void> {
    const spf = this.samplesPerFrame;
    for (;;) {
      if (!this.running) return;
      if (this.plugged) await this.sendPendingInfo();
      if (this.pausedAt !== undefined) {
        await this.sleep(1000);
        continue;
      }
      const elapsed = this.clock.monotonic() - this.origin;
      const due = Math.floor((elapsed * this.effectiveRate()) / 1000);
      if (due < this.produced + spf) {
        const waitMs = Math.max(1, ((this.produced + spf) * 1000) / this.effectiveRate() - elapsed);
        await this.sleep(waitMs);
        continue;
      }
      const block = await this.pull(spf);
      if (!block || block.length === 0) break;
      this.counters.sourceSamples += block.length / this.options.channels;
      await this.sendData(block);
      this.produced += block.length / this.options.channels;
      if (block.length / this.options.channels < spf) break;
    }
    this.counters.ended = true;
    await this.writeChain.catch(() => undefined);
    this.resolveEnded();
    this.emit('end');
    // Still plugged in: keep answering IDENTIFY until stopped.
    while (this.running) {
      if (this.plugged) await this.sendPendingInfo();
      await this.sleep(1000);
    }
  }

  private nextSeq(): { seq: number; seqReset: boolean } {
    const out = { seq: this.seq, seqReset: this.seqReset };
    this.seq = (this.seq + 1) & 0xffff;
    this.seqReset = false;
    return out;
  }

  private async sendPendingInfo(): Promise<void> {
    while (this.pendingInfo > 0 && this.plugged && !this.awaitingHost) {
      this.pendingInfo -= 1;
      const info = this.options.info;
      const frame: StreamInfoFrame = { kind: 'info', ...this.nextSeq(), deviceType: this.options.deviceType, channelCount: this.options.channels, ...info };
      if (await this.write(encodeFrame(frame))) {
        this.counters.framesSent += 1;
        this.counters.infoFramesSent += 1;
      }
    }
  }

  private async sendData(interleaved: Int16Array): Promise<void> {
    const channels = this.options.channels;
    const n = interleaved.length / channels;
    const perChannel = Array.from({ length: channels }, () => new Int16Array(n));
    for (let i = 0, k = 0; i < n; i++) for (let c = 0; c < channels; c++, k++) perChannel[c]![i] = interleaved[k]!;
    const sourceIndex = this.counters.sourceSamples - n;
    const { leadOff, saturated } = this.electrodesOff(perChannel, sourceIndex);
    const firstSample = this.counter;
    this.counter += n;
    // Fault draws happen for every frame, plugged or not, so a seed gives the same schedule.
    const vendor = this.random() < this.faults.vendorFrameRate;
    const corrupt = this.random() < this.faults.corruptRate;
    const truncate = !corrupt && this.random() < this.faults.truncateRate;
    const r1 = this.random();
    const r2 = this.random();
    if (!this.plugged || this.awaitingHost) {
      // Unplugged ('drop', 'reset'), or replugged but the host has not reopened: acquired, numbered, never sent.
      const span = { seq: this.nextSeq().seq, firstSample, samples: n, sourceIndex, bytes: 0 };
      this.counters.droppedWhileUnplugged.push(span);
      this.emit('frame', { ...span, fate: 'dropped' });
      return;
    }
    await this.sendStatusFrames(sourceIndex, n, firstSample);
    if (vendor) {
      const body = new Uint8Array(3 + Math.floor(r1 * 14));
      for (let i = 0; i < body.length; i++) body[i] = Math.floor(this.random() * 256);
      if (await this.write(encodeFrame({ kind: 'vendor', ...this.nextSeq(), type: this.faults.vendorType, body }))) {
        this.counters.framesSent += 1;
        this.counters.vendorFramesSent += 1;
      }
    }
    const frame = this.dataFrame(firstSample, this.clockReset, { leadOff, saturated }, perChannel);
    if (leadOff !== 0) this.counters.leadOff.push({ seq: frame.seq, sourceIndex, samples: n, channels: leadOff });
    this.clockReset = false;
    let bytes = encodeFrame(frame);
    let fate: SentFrameInfo['fate'] = 'intact';
    if (corrupt) {
      bytes = new Uint8Array(bytes);
      const at = Math.floor(r1 * bytes.length);
      bytes[at] = bytes[at]! ^ (1 + Math.floor(r2 * 255));
      fate = 'corrupted';
    } else if (truncate) {
      bytes = bytes.subarray(0, 1 + Math.floor(r1 * (bytes.length - 1)));
      fate = 'truncated';
    }
    const span: LostSpan = { seq: frame.seq, firstSample, samples: n, sourceIndex, bytes: bytes.length, ...(fate === 'intact' ? {} : { digest: frameDigest(bytes) }) };
    if (!(await this.write(bytes))) {
      // The link went away under the write: the frame never (fully) left.
      this.counters.droppedWhileUnplugged.push({ seq: span.seq, firstSample, samples: n, sourceIndex, bytes: 0 });
      this.emit('frame', { ...span, fate: 'dropped' });
      return;
    }
    if (fate === 'corrupted') {
      this.counters.framesSent += 1;
      this.counters.corrupted.push(span);
    } else if (fate === 'truncated') this.counters.truncated.push(span);
    else {
      this.counters.framesSent += 1;
      this.counters.dataFramesSent += 1;
      this.counters.samplesSent += n;
    }
    this.emit('frame', { ...span, fate });
  }

  /** A DATA frame with the next seq, its first sample at device counter `firstSample` (unwrapped). */
  private dataFrame(firstSample: number, clockReset: boolean, masks: { leadOff: number; saturated: number }, channels: Int16Array[]): StreamDataFrame {
    const { deviceType, unit, rateHz, gain } = this.options;
    return { kind: 'data', ...this.nextSeq(), deviceType, sampleFormat: 'int16le', unit, rateHz, gain, firstSample: firstSample % 2 ** 32, clockReset, ...masks, channels };
  }

  /**
   * The status-only DATA frames (`LeadOffSpan.statusFrames`) of the lead-off changes in the source sample
   * sets `sourceIndex` .. `sourceIndex + n - 1`, whose first is at device counter `firstSample`.
   */
  private async sendStatusFrames(sourceIndex: number, n: number, firstSample: number): Promise<void> {
    const changes = new Set<number>();
    for (const span of this.faults.leadOff) {
      if (!span.statusFrames) continue;
      for (const at of [span.fromSample, span.fromSample + span.samples]) if (at >= sourceIndex && at < sourceIndex + n) changes.add(at);
    }
    for (const at of [...changes].sort((a, b) => a - b)) {
      // The masks at sample set `at`: what a one-sample frame there would carry, without its sample.
      const { leadOff, saturated } = this.electrodesOff([new Int16Array(1)], at);
      const empty = Array.from({ length: this.options.channels }, () => new Int16Array(0));
      const frame = this.dataFrame(firstSample + at - sourceIndex, false, { leadOff, saturated }, empty);
      if (await this.write(encodeFrame(frame))) {
        this.counters.framesSent += 1;
        this.counters.statusFrames.push({ seq: frame.seq, sourceIndex: at, firstSample: firstSample + at - sourceIndex, leadOff: frame.leadOff, saturated: frame.saturated });
      }
    }
  }

  /**
   * Applies `faults.leadOff` to a frame's samples (source sample sets from `sourceIndex`): the
   * samples of a span take its level, and the frame's masks get the span's channels.
   */
  private electrodesOff(perChannel: Int16Array[], sourceIndex: number): { leadOff: number; saturated: number } {
    let leadOff = 0;
    let saturated = 0;
    const n = perChannel[0]?.length ?? 0;
    for (const span of this.faults.leadOff) {
      const from = Math.max(span.fromSample, sourceIndex);
      const to = Math.min(span.fromSample + span.samples, sourceIndex + n);
      if (from >= to) continue;
      const channels = span.channels ?? 0;
      const value = span.level === 'baseline' ? 0 : LEAD_OFF_RAIL;
      perChannel.forEach((samples, c) => {
        if (((channels >>> c) & 1) === 1) samples.fill(value, from - sourceIndex, to - sourceIndex);
      });
      leadOff |= channels;
      if (value === LEAD_OFF_RAIL) saturated |= channels;
    }
    return { leadOff: leadOff >>> 0, saturated: saturated >>> 0 };
  }

  /** Writes a frame (paced when slow); false when the port was closed or unplugged meanwhile. */
  private write(bytes: Uint8Array): Promise<boolean> {
    const result = this.writeChain.then(async () => {
      const transport = this.transport;
      if (!transport || !this.plugged) return false;
      const { slowBytesPerSecond, writeChunkBytes } = this.faults;
      const piece = writeChunkBytes > 0 ? writeChunkBytes : slowBytesPerSecond > 0 ? 16 : bytes.length;
      try {
        for (let at = 0; at < bytes.length; at += piece) {
          const part = bytes.subarray(at, at + piece);
          await transport.write(part);
          this.counters.bytesWritten += part.length;
          if (slowBytesPerSecond > 0) await new Promise((resolve) => setTimeout(resolve, (part.length * 1000) / slowBytesPerSecond));
        }
        return true;
      } catch (error) {
        if (isCanceled(error) || !this.plugged || (error as { disconnected?: boolean }).disconnected) return false;
        this.emit('error', error as Error);
        return false;
      }
    });
    this.writeChain = result.then(() => undefined);
    return result;
  }
}

/** Turns any `StreamSampleSource` into an async pull of up to `n` sample sets. */
function toPull(source: StreamSampleSource, channels: number): (n: number) => Promise<Int16Array | undefined> {
  const check = (block: Int16Array): Int16Array => {
    if (block.length % channels !== 0) throw new ConfigError('source', block.length, `a block must hold whole sample sets of ${channels} channels`, 'interleave the channels: s0c0 s0c1 ... s1c0 ...');
    return block;
  };
  if (typeof source === 'function') {
    return async (n) => {
      const block = await source(n);
      return block === undefined ? undefined : check(block);
    };
  }
  const iterator: AsyncIterator<Int16Array> | Iterator<Int16Array> =
    Symbol.asyncIterator in source ? (source as AsyncIterable<Int16Array>)[Symbol.asyncIterator]() : (source as Iterable<Int16Array>)[Symbol.iterator]();
  let pending = new Int16Array(0);
  let done = false;
  return async (n) => {
    const want = n * channels;
    while (!done && pending.length < want) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      const block = check(next.value);
      const merged = new Int16Array(pending.length + block.length);
      merged.set(pending);
      merged.set(block, pending.length);
      pending = merged;
    }
    if (pending.length === 0) return undefined;
    const out = pending.slice(0, want);
    pending = pending.subarray(want);
    return out;
  };
}

/** A helper for tests and scenarios: a pull source over a fixed interleaved recording. */
export function arraySource(samples: Int16Array, channels = 1): SamplePull {
  let at = 0;
  return (n) => {
    if (at >= samples.length) return undefined;
    const out = samples.subarray(at, at + n * channels);
    at += out.length;
    return out;
  };
}
