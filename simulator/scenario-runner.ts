/**
 * Runs the device side of a scenario: starts one simulated peer per scenario device on its real
 * transport (a socat pty pair for serial stream devices, the simulated BlueZ on a private D-Bus for
 * BLE peripherals), feeds them from the scenario's sources, and applies the timed faults.
 *
 * The runner knows nothing of the runtime under test: it hands back `runtimeSources` (the
 * `{ type: 'device', sensor, driver, options }` entries that point the runtime's drivers at the
 * peers) and what it sent (`expected()`), so that a caller (`medge sim`, `medge demo`) can start
 * the REAL runtime on them and check the runtime's ledger against what the devices sent.
 *
 * Lifecycle: `startScenarioPeers()` creates the peers (BLE peripherals are advertising, stream
 * devices wait); `start()` starts the signals and the fault schedule (call it once the runtime has
 * opened its devices); `finished` resolves when every stream source has ended and every value
 * series was notified; `stop()` releases everything (ptys, D-Bus, timers).
 */
import { type Clock, type ClockTimer, systemClock } from '../device-sdk/clock.js';
import { type AcquisitionStart, createStreamDevice, type LostSpan, type SimStreamDevice, type StreamDeviceStats, type UnplugOptions } from './devices/stream-device.js';
import { streamDeviceFaults } from './faults.js';
import { findSocat } from './pty.js';
import type { Scenario, ScenarioDevice } from './scenario.js';
import { createSampleSource, createValueSeries } from './scenario-sources.js';
import { type BlePeerSet, startBlePeers } from './scenario-ble.js';
import { SimulatorUnavailableError } from './scenario-errors.js';

export { SimulatorUnavailableError };

/** A runtime config source entry (`firmware/config.ts` DeviceSourceConfig, as written in a file). */
export interface RuntimeDeviceSource {
  type: 'device';
  sensor: string;
  driver: string;
  options: Record<string, unknown>;
}

export interface ScenarioRunOptions {
  /** Signal seconds per wall second. */
  speed: number;
  clock?: Clock;
  /** Progress for a person. */
  onNote?: (text: string) => void;
}

/** What a stream device was asked to send, and what it lost on the way (by its own account). */
export interface StreamExpectation {
  sensor: string;
  kind: 'ecg' | 'pcg';
  channels: number;
  rateHz: number;
  /** Sample sets in the replayed span (per channel). */
  samplesPerChannel: number;
  /** Frames damaged on the wire (their bytes reach the host and fail its checks). */
  corrupted: LostSpan[];
  truncated: LostSpan[];
  droppedWhileUnplugged: LostSpan[];
  /** Where the device's sample counter (re)started: the first acquisition, then one per power cycle. */
  acquisitions: AcquisitionStart[];
  /** The device skipped its counter (a declared device-side loss): counter values without samples. */
  counterJumps: StreamDeviceStats['counterJumps'];
  unplugs: number;
  vendorFramesSent: number;
  /** DATA frames the device sent with lead-off bits (electrodes taken off: `faults.leadOff`), whatever their fate on the wire. */
  leadOff?: StreamDeviceStats['leadOff'];
  stats: StreamDeviceStats;
}

/** A record a meter held (sequence number, its clock's time as sent, value). */
export interface MeterRecordExpectation {
  sequenceNumber: number;
  /** Time the meter reports for it (ms UTC, clock faults included). */
  meterTimeMs: number;
  mgdl: number;
}

export interface ValueExpectation {
  sensor: string;
  kind: 'glucose-meter' | 'cgm' | 'heart-rate';
  /** Glucose meter: the stored records. */
  records: MeterRecordExpectation[];
  /** CGM / strap: distinct measurements notified. */
  sent: number;
  /** Extra copies of notifications the duplicate fault sent. */
  duplicatesSent: number;
  /** Link drops the peer caused (faults). */
  linkDrops: number;
}

export interface ScenarioExpectations {
  streams: StreamExpectation[];
  values: ValueExpectation[];
}

export interface ScenarioPeers {
  readonly runtimeSources: RuntimeDeviceSource[];
  /** Starts the signals and the fault schedule. */
  start(): void;
  /** Resolves when every finite source was sent. */
  readonly finished: Promise<void>;
  expected(): ScenarioExpectations;
  stop(): Promise<void>;
}

/** Real time a buffering device waits before its cable is pulled, so that the bytes in flight reach the host. */
export const PAUSE_DRAIN_MS = 3_000;

/**
 * Pulls the cable right after the device finished a frame (inside its `frame` event, before it
 * builds the next one), so that a buffering device never has a frame half-way out when the link
 * goes: the loss then is exactly what the mode says.
 */
function unplugBetweenFrames(peer: SimStreamDevice, options: UnplugOptions): Promise<void> {
  if (peer.stats.ended) return peer.unplug(options);
  return new Promise<void>((resolve, reject) => {
    const onFrame = () => {
      peer.off('frame', onFrame);
      peer.unplug(options).then(resolve, reject);
    };
    peer.on('frame', onFrame);
  });
}

interface StreamPeer {
  device: ScenarioDevice;
  peer: SimStreamDevice;
  samplesPerChannel: number;
  channels: number;
  rateHz: number;
}

export async function startScenarioPeers(scenario: Scenario, options: ScenarioRunOptions): Promise<ScenarioPeers> {
  const clock = options.clock ?? systemClock;
  const speed = options.speed;
  const note = options.onNote ?? (() => undefined);
  if (scenario.devices.some((d) => d.transport === 'serial') && findSocat() === undefined) {
    throw new SimulatorUnavailableError('socat', 'install it (apt-get install socat) to run serial devices on pseudo-terminals');
  }
  const streams: StreamPeer[] = [];
  const timers: ClockTimer[] = [];
  const busy: Promise<unknown>[] = [];
  let ble: BlePeerSet | undefined;
  const stopAll = async () => {
    for (const t of timers) clock.clearTimeout(t);
    await Promise.allSettled(busy);
    await Promise.allSettled(streams.map((s) => s.peer.stop()));
    await ble?.stop();
  };
  try {
    for (const [i, d] of scenario.devices.entries()) {
      if (d.transport !== 'serial' || (d.kind !== 'ecg' && d.kind !== 'pcg')) continue;
      const source = createSampleSource(d.source, `devices[${i}].source`, scenario.durationS);
      const pull = (n: number) => {
        const b = source.read(n);
        return b.length > 0 ? b : undefined;
      };
      const peer = await createStreamDevice({
        deviceType: d.kind,
        channels: source.channels,
        rateHz: source.rateHz,
        unit: source.unit,
        gain: source.gain,
        samplesPerFrame: Math.max(1, Math.round((source.rateHz * d.frameMs) / 1000)),
        source: pull,
        speed,
        clock,
        faults: streamDeviceFaults(d.serialFaults, scenario.seed * 31 + i, source.rateHz),
        unplugMode: d.serialFaults.unplug[0]?.mode ?? 'pause',
        start: false,
      });
      streams.push({ device: d, peer, samplesPerChannel: source.length, channels: source.channels, rateHz: source.rateHz });
      note(`${d.sensor}: ${d.kind} on ${peer.hostPath} replaying ${source.name}`);
    }
    const bleDevices = scenario.devices.filter((d) => d.transport === 'ble');
    if (bleDevices.length > 0) {
      ble = await startBlePeers(bleDevices, { seed: scenario.seed, speed, clock, ...(scenario.durationS !== undefined ? { durationS: scenario.durationS } : {}), values: (d) => createValueSeries(d, scenario.seed * 31 + scenario.devices.indexOf(d)), note });
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const runtimeSources: RuntimeDeviceSource[] = scenario.devices.map((d) => {
    const s = streams.find((x) => x.device === d);
    // A stethoscope driver takes only frames at its configured rate: configured as a technician would,
    // for the recording's (a 2 kHz recording was all quarantined by the 4 kHz default).
    const base = s ? { path: s.peer.hostPath, ...(s.device.kind === 'pcg' ? { rateHz: s.rateHz } : {}) } : (ble?.driverOptions(d) ?? {});
    return { type: 'device', sensor: d.sensor, driver: d.driver, options: { ...base, ...d.driverOptions } };
  });

  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  let started = false;

  const at = (signalS: number, fn: () => Promise<unknown> | void) => {
    timers.push(
      clock.setTimeout(() => {
        const p = Promise.resolve()
          .then(fn)
          .catch((error: unknown) => note(`fault failed: ${(error as Error).message}`));
        busy.push(p);
      }, (signalS * 1000) / speed),
    );
  };

  return {
    runtimeSources,
    finished,
    start() {
      if (started) return;
      started = true;
      const ends: Promise<unknown>[] = [];
      for (const s of streams) {
        busy.push(s.peer.start());
        ends.push(s.peer.ended);
        for (const u of s.device.serialFaults.unplug) {
          at(u.atS, async () => {
            note(`${s.device.sensor}: unplugged for ${u.downS} s of signal (${u.mode})`);
            // A device that buffers ('pause') is unplugged once the host has read what was in flight
            // (the pty and socat buffers hold up to tens of kB when the runtime lags): the wait costs
            // wall time, not samples. 'drop' and 'reset' pull the cable at once, losing what is in flight.
            await unplugBetweenFrames(s.peer, { downMs: (u.downS * 1000) / speed, mode: u.mode, drainMs: u.mode === 'pause' ? PAUSE_DRAIN_MS : 50 });
            note(`${s.device.sensor}: plugged back in`);
          });
        }
        for (const j of s.device.serialFaults.counterJumps) at(j.atS, () => s.peer.jumpCounter(j.samples));
      }
      if (ble) {
        ble.start(at);
        ends.push(ble.finished);
      }
      void Promise.all(ends).then(async () => {
        await Promise.allSettled(busy);
        resolveFinished();
      });
    },
    expected() {
      return {
        streams: streams.map((s) => {
          const stats = s.peer.stats;
          return {
            sensor: s.device.sensor,
            kind: s.device.kind as 'ecg' | 'pcg',
            channels: s.channels,
            rateHz: s.rateHz,
            samplesPerChannel: s.samplesPerChannel,
            corrupted: stats.corrupted,
            truncated: stats.truncated,
            droppedWhileUnplugged: stats.droppedWhileUnplugged,
            acquisitions: stats.acquisitions,
            counterJumps: stats.counterJumps,
            unplugs: stats.unplugs,
            vendorFramesSent: stats.vendorFramesSent,
            leadOff: stats.leadOff,
            stats,
          };
        }),
        values: ble?.expected() ?? [],
      };
    },
    stop: stopAll,
  };
}

