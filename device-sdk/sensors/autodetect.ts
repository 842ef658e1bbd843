/**
 * Probing-based auto-detection on a serial port: which protocol speaks there, and which registered
 * driver reads it.
 *
 * For each baud rate (`baudRates`, in order) the port is opened and:
 * 1. `listen`: everything the device sends by itself for `listenMs` is collected: a streaming medge
 *    device (DATA/INFO frames), a Firmata board announcing itself after its reset, a meter pushing
 *    text lines. Every probe looks at it.
 * 2. `query`: the probes that have a question send it in turn and wait for their answer: medge
 *    stream IDENTIFY (§6.3 of `../protocols/README.md`: up to `identifyAttempts` times,
 *    `identifyTimeoutMs` each), then the Firmata REPORT_VERSION + QUERY_FIRMWARE (`firmataWaitMs`:
 *    an Arduino reboots when its port opens and answers ~2 s later).
 * The first probe that recognises the bytes wins; the port is closed again either way.
 *
 * Only ports configured for auto-detection may be probed: the queries are binary that another kind
 * of device may misread (README §6.3).
 *
 * Probes are pure recognisers over the bytes received so far (`PortProbe`); the built-in ones are
 * the medge stream protocol and Firmata. Text-line protocols are added with `lineProbe` by the
 * composition root, which owns their codecs (e.g. the glucose line codec of `firmware/sources`).
 */
import { type Clock, systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { encodeFrame, type StreamDataFrame, type StreamInfoFrame } from '../protocols/stream-frame.js';
import { StreamFramer } from '../protocols/stream-framer.js';
import { isCanceled } from '../transport/byte-transport.js';
import { SerialTransport } from '../transport/serial-transport.js';

/** What a probe recognised. */
export interface ProbeMatch {
  /** The protocol, e.g. `medge-stream`, `firmata`, `glucose-line`. */
  protocol: string;
  /** The registered driver that reads it, or `undefined` when none does (see `detail`). */
  driver: string | undefined;
  /** Human-readable: the device's identity or why no driver fits. */
  detail: string;
  /** Machine-readable identity fields (vendor, model, firmware, device type, ...). */
  identity: Record<string, string | number>;
}

export interface PortProbe {
  readonly name: string;
  /** Bytes that ask a device of this protocol to answer; absent for protocols that only listen. */
  readonly query?: () => Uint8Array;
  /** How long to wait for an answer to one query. */
  readonly answerMs?: number;
  /** How many times to send the query. */
  readonly attempts?: number;
  /** Looks at every byte received since the port opened; returns a match once it recognises them. */
  recognise(received: Uint8Array): ProbeMatch | undefined;
}

export interface DetectOptions {
  /** Line rates to try, in order (a pty ignores the rate). */
  baudRates: number[];
  listenMs: number;
  identifyTimeoutMs: number;
  identifyAttempts: number;
  firmataWaitMs: number;
  /** Probes in priority order; default `builtinProbes(options)`. Add `lineProbe(...)` for text protocols. */
  probes: PortProbe[] | undefined;
  clock: Clock;
}

export const DEFAULT_DETECT_OPTIONS: Readonly<DetectOptions> = Object.freeze({
  baudRates: [115_200, 57_600],
  listenMs: 300,
  identifyTimeoutMs: 250,
  identifyAttempts: 3,
  firmataWaitMs: 2_500,
  probes: undefined,
  clock: systemClock,
});

export interface DetectAttempt {
  baudRate: number;
  step: 'open' | 'listen' | string;
  outcome: 'match' | 'silent' | 'unrecognised' | 'error';
  bytesReceived: number;
  error?: string;
}

export interface DetectReport {
  path: string;
  /** The match, or `undefined` when no probe recognised the port. */
  found: (ProbeMatch & { baudRate: number; probe: string }) | undefined;
  attempts: DetectAttempt[];
}

// ---- built-in probes -------------------------------------------------------------------------

const STREAM_DRIVERS: Readonly<Record<string, string>> = Object.freeze({ ecg: 'serial-ecg', pcg: 'serial-stethoscope' });

/** The medge serial stream protocol v1: an INFO frame identifies the device; a DATA frame says its type. */
export function streamProbe(options: { answerMs?: number; attempts?: number } = {}): PortProbe {
  let hostSeq = 0;
  return {
    name: 'medge-stream',
    answerMs: options.answerMs ?? DEFAULT_DETECT_OPTIONS.identifyTimeoutMs,
    attempts: options.attempts ?? DEFAULT_DETECT_OPTIONS.identifyAttempts,
    query: () => {
      const frame = encodeFrame({ kind: 'identify', seq: hostSeq, seqReset: hostSeq === 0 });
      hostSeq = (hostSeq + 1) & 0xffff;
      return frame;
    },
    recognise(received) {
      const framer = new StreamFramer();
      let info: StreamInfoFrame | undefined;
      let data: StreamDataFrame | undefined;
      let otherVersion: number | undefined;
      let intact = 0;
      for (const event of [...framer.push(received), ...framer.flush()]) {
        if (event.type === 'frame') {
          intact += 1;
          if (event.frame.kind === 'info') info ??= event.frame;
          if (event.frame.kind === 'data') data ??= event.frame;
        } else if (event.type === 'garbage' && event.error.reason === 'version') {
          otherVersion ??= event.error.header?.version;
        }
      }
      const deviceType = info?.deviceType ?? data?.deviceType;
      if (deviceType !== undefined) {
        const type = String(deviceType);
        const driver = STREAM_DRIVERS[type];
        const identity: Record<string, string | number> = { deviceType: type };
        if (info) Object.assign(identity, { vendor: info.vendor, model: info.model, firmware: info.firmware, serial: info.serial, channels: info.channelCount });
        if (data) Object.assign(identity, { rateHz: data.rateHz, channels: data.channels.length, unit: data.unit });
        const who = info ? `${info.vendor} ${info.model} fw ${info.firmware} (serial ${info.serial})` : `a ${type} device (no INFO yet)`;
        return {
          protocol: 'medge-stream',
          driver,
          detail: driver ? `medge stream v1: ${who}` : `medge stream v1: ${who}; device type ${type} has no driver`,
          identity,
        };
      }
      if (otherVersion !== undefined) {
        return { protocol: 'medge-stream', driver: undefined, detail: `medge stream protocol version ${otherVersion}: not supported by this host (v1)`, identity: { version: otherVersion } };
      }
      if (intact > 0) return undefined; // vendor frames only: a medge device, keep asking for INFO
      return undefined;
    },
  };
}

const REPORT_VERSION = 0xf9;
const START_SYSEX = 0xf0;
const END_SYSEX = 0xf7;
const QUERY_FIRMWARE = 0x79;

/** Firmata 2.x: a REPORT_VERSION (`F9 major minor`), with the firmware name when the board sent it. */
export function firmataProbe(options: { answerMs?: number } = {}): PortProbe {
  return {
    name: 'firmata',
    answerMs: options.answerMs ?? DEFAULT_DETECT_OPTIONS.firmataWaitMs,
    attempts: 1,
    query: () => Uint8Array.of(REPORT_VERSION, START_SYSEX, QUERY_FIRMWARE, END_SYSEX),
    recognise(received) {
      let version: string | undefined;
      for (let i = 0; i + 2 < received.length; i++) {
        const major = received[i + 1]!;
        const minor = received[i + 2]!;
        if (received[i] === REPORT_VERSION && major >= 2 && major < 0x10 && minor < 0x80) {
          version = `${major}.${minor}`;
          break;
        }
      }
      if (version === undefined) return undefined;
      const name = firmwareName(received);
      const identity: Record<string, string | number> = { protocol: version };
      if (name) identity.firmware = name;
      return {
        protocol: 'firmata',
        driver: 'firmata-ecg',
        detail: `Firmata ${version}${name ? `, firmware ${name}` : ''}: an analog ECG front end on it is read by firmata-ecg`,
        identity,
      };
    },
  };
}

/** The name in a QUERY_FIRMWARE reply (`F0 79 major minor name as 7-bit pairs F7`), if one was received. */
function firmwareName(received: Uint8Array): string | undefined {
  for (let i = 0; i + 1 < received.length; i++) {
    if (received[i] !== START_SYSEX || received[i + 1] !== QUERY_FIRMWARE) continue;
    const end = received.indexOf(END_SYSEX, i);
    if (end < 0) return undefined;
    const chars: number[] = [];
    for (let k = i + 4; k + 1 < end; k += 2) chars.push(received[k]! | (received[k + 1]! << 7));
    return String.fromCharCode(...chars);
  }
  return undefined;
}

/**
 * A text-line protocol: recognised when at least `minLines` complete lines (`\n`-terminated)
 * decode with `decode` (which throws for a line it does not accept). Listens only.
 */
export function lineProbe(options: { name: string; driver: string | undefined; detail: string; decode: (line: Uint8Array) => unknown; minLines?: number }): PortProbe {
  const minLines = options.minLines ?? 1;
  return {
    name: options.name,
    recognise(received) {
      let ok = 0;
      let start = 0;
      for (let i = 0; i < received.length; i++) {
        if (received[i] !== 0x0a) continue;
        const line = received.subarray(start, i + 1);
        start = i + 1;
        try {
          options.decode(line);
          ok += 1;
        } catch {
          // not this protocol's line
        }
      }
      return ok >= minLines ? { protocol: options.name, driver: options.driver, detail: options.detail, identity: { lines: ok } } : undefined;
    },
  };
}

/** The probes medge knows without help, in priority order. */
export function builtinProbes(options: Partial<Pick<DetectOptions, 'identifyTimeoutMs' | 'identifyAttempts' | 'firmataWaitMs'>> = {}): PortProbe[] {
  return [
    streamProbe({ answerMs: options.identifyTimeoutMs, attempts: options.identifyAttempts }),
    firmataProbe({ answerMs: options.firmataWaitMs }),
  ];
}

// ---- detection -------------------------------------------------------------------------------

/** Probes the serial port at `path`. Never throws for device trouble: a port that cannot be opened is an attempt with outcome `error`. */
export async function detectPort(path: string, input: Partial<DetectOptions> = {}): Promise<DetectReport> {
  const options: DetectOptions = { ...DEFAULT_DETECT_OPTIONS, ...input };
  if (typeof path !== 'string' || path.length === 0) throw new ConfigError('port', path, 'must be a serial device path', 'pass e.g. /dev/ttyUSB0');
  if (options.baudRates.length === 0 || options.baudRates.some((b) => !Number.isInteger(b) || b <= 0)) {
    throw new ConfigError('baudRates', options.baudRates, 'must be positive integers', 'pass e.g. 115200,57600');
  }
  const attempts: DetectAttempt[] = [];
  for (const baudRate of options.baudRates) {
    const probes = options.probes ?? builtinProbes(options);
    const transport = new SerialTransport({ path, baudRate });
    try {
      await transport.open();
    } catch (error) {
      attempts.push({ baudRate, step: 'open', outcome: 'error', bytesReceived: 0, error: (error as Error).message });
      return { path, found: undefined, attempts };
    }
    let received = new Uint8Array(0);
    let arrived: (() => void) | undefined;
    const reading = (async () => {
      try {
        for await (const chunk of transport) {
          const merged = new Uint8Array(received.length + chunk.length);
          merged.set(received);
          merged.set(chunk, received.length);
          received = merged;
          arrived?.();
        }
      } catch (error) {
        if (!isCanceled(error)) arrived?.();
      }
    })();
    /** Waits up to `ms` for some probe to recognise the bytes; checks again whenever bytes arrive. */
    const waitForMatch = async (ms: number): Promise<{ probe: PortProbe; match: ProbeMatch } | undefined> => {
      const deadline = options.clock.monotonic() + ms;
      for (;;) {
        for (const probe of probes) {
          const match = probe.recognise(received);
          if (match) return { probe, match };
        }
        const left = deadline - options.clock.monotonic();
        if (left <= 0 || !transport.isOpen) return undefined;
        await new Promise<void>((resolve) => {
          const timer = options.clock.setTimeout(() => resolve(), left);
          arrived = () => {
            options.clock.clearTimeout(timer);
            resolve();
          };
        });
        arrived = undefined;
      }
    };
    let found: { probe: PortProbe; match: ProbeMatch; step: string } | undefined;
    try {
      const listened = await waitForMatch(options.listenMs);
      if (listened) found = { ...listened, step: 'listen' };
      attempts.push({ baudRate, step: 'listen', outcome: listened ? 'match' : received.length > 0 ? 'unrecognised' : 'silent', bytesReceived: received.length });
      for (const probe of probes) {
        if (found || !probe.query) continue;
        for (let attempt = 0; attempt < (probe.attempts ?? 1) && !found && transport.isOpen; attempt++) {
          await transport.write(probe.query());
          const answered = await waitForMatch(probe.answerMs ?? 250);
          if (answered) found = { ...answered, step: `query ${probe.name}` };
        }
        attempts.push({ baudRate, step: `query ${probe.name}`, outcome: found ? 'match' : received.length > 0 ? 'unrecognised' : 'silent', bytesReceived: received.length });
      }
    } catch (error) {
      attempts.push({ baudRate, step: 'query', outcome: 'error', bytesReceived: received.length, error: (error as Error).message });
    } finally {
      await transport.close();
      await reading;
    }
    if (found) return { path, found: { ...found.match, baudRate, probe: found.probe.name }, attempts };
  }
  return { path, found: undefined, attempts };
}
