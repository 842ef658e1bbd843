/**
 * The BLE half of a scenario: one simulated peripheral per BLE device (glucose meter, CGM,
 * heart-rate strap) on the simulated BlueZ (`bluez/`), fed from the device's value series, with
 * the scenario's faults set on the peripheral's fault hooks.
 *
 * - Glucose meter: holds `storedRecords` records at the start (values from the series, repeated
 *   when it is shorter; sequence numbers 1..N, times from the series after a fixed origin); the runtime's driver backfills them
 *   through RACP. `disconnectAfterRecords` cuts the 1st, 2nd, ... transfer. `measurements` add a
 *   record at the meter clock's present at their signal time (the driver finds it at its next poll).
 *   `meterClock` sets the zone of the meter's clock and whether it offers the Current Time Service; the
 *   expected record times are the UTC times a runtime without a configured zone derives
 *   (`SimGlucoseMeter.collectorTimeOf`: by the Current Time, or the wall clock read as UTC without it).
 * - CGM and strap: one notification per series value at the series' pace divided by the speed. A
 *   value the peripheral cannot send (link down, notifications not enabled yet) is retried every
 *   50 ms, as a CGM keeps its readings until a collector is there; values after the scenario's
 *   `durationS` are not sent; the link drops of `dropLinkAtS` are applied on the clock.
 * - CGM `replaceSensorAtS`: the first value at or after each of these signal times is the first of a
 *   new sensor (`SimCgm.replaceSensor`): its session starts then and its time offsets count from 0.
 */
import type { Clock } from '../device-sdk/clock.js';
import { findDbusDaemon, SimCgm, SimGlucoseMeter, SimHeartRateStrap, type SimulatedBluez, startSimulatedBluez } from './bluez/index.js';
import { glucoseMeterFaults } from './faults.js';
import type { ScenarioDevice } from './scenario.js';
import type { MeterRecordExpectation, ValueExpectation } from './scenario-runner.js';
import { SimulatorUnavailableError } from './scenario-errors.js';
import { type GlucoseSeries, takeSamples } from './sources/glucose-series.js';

/** Time of the first stored meter record (ms UTC): fixed, so that a scenario reproduces byte for byte. */
export const METER_FIRST_RECORD_MS = Date.UTC(2026, 0, 1, 7, 0, 0);

export interface BlePeerSet {
  /** Options that point the device's driver at its peripheral. */
  driverOptions(device: ScenarioDevice): Record<string, unknown>;
  /** Starts the notifications and schedules timed faults through `at(signalS, fn)`. */
  start(at: (signalS: number, fn: () => Promise<unknown> | void) => void): void;
  readonly finished: Promise<void>;
  expected(): ValueExpectation[];
  stop(): Promise<void>;
}

interface Peer {
  device: ScenarioDevice;
  series: GlucoseSeries;
  meter?: SimGlucoseMeter;
  cgm?: SimCgm;
  strap?: SimHeartRateStrap;
  sent: number;
  linkDrops: number;
}


export async function startBlePeers(
  devices: readonly ScenarioDevice[],
  options: { seed: number; speed: number; clock: Clock; values: (d: ScenarioDevice) => GlucoseSeries; note: (text: string) => void; durationS?: number },
): Promise<BlePeerSet> {
  if (findDbusDaemon() === undefined) throw new SimulatorUnavailableError('dbus-daemon', 'install it (apt-get install dbus) to run BLE devices on a private D-Bus');
  const peers: Peer[] = devices.map((device) => {
    const series = options.values(device);
    const peer: Peer = { device, series, sent: 0, linkDrops: 0 };
    const faults = device.bleFaults;
    if (device.kind === 'glucose-meter') {
      const n = device.storedRecords;
      const samples = takeSamples(series, n);
      const records = samples.map((s, i) => ({ sequenceNumber: i + 1, timeMs: METER_FIRST_RECORD_MS + s.tMs, mgPerDl: Math.round(s.mgdl) }));
      peer.meter = new SimGlucoseMeter({
        address: device.address,
        records,
        faults: glucoseMeterFaults(faults),
        seed: options.seed,
        timeZone: device.meterClock.timeZone,
        currentTimeService: device.meterClock.currentTimeService,
      });
    } else if (device.kind === 'cgm') {
      peer.cgm = new SimCgm({ address: device.address, intervalMinutes: Math.max(1, Math.round(series.periodMs / 60_000)), faults: { duplicateEvery: faults.duplicateEvery, notifyDelayMs: faults.notifyDelayMs } });
    } else {
      peer.strap = new SimHeartRateStrap({ address: device.address, faults: { duplicateEvery: faults.duplicateEvery, notifyDelayMs: faults.notifyDelayMs } });
    }
    return peer;
  });
  const bluez: SimulatedBluez = await startSimulatedBluez({ devices: peers.map((p) => (p.meter ?? p.cgm ?? p.strap) as SimGlucoseMeter | SimCgm | SimHeartRateStrap) });
  for (const p of peers) options.note(`${p.device.sensor}: ${p.device.kind} at ${p.device.address} on the simulated BlueZ, ${p.meter ? `${p.meter.records.length} stored records` : `${p.series.samples.length} values`} from ${p.series.name}`);
  let stopping = false;
  /** Sleeps that `stop()` cuts short. */
  const sleepers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  const loops: Promise<void>[] = [];

  /** Notifies each value of a CGM or strap at its time; retries while the peripheral cannot send. */
  const stream = async (p: Peer): Promise<void> => {
    const origin = options.clock.monotonic();
    const endMs = options.durationS === undefined ? Infinity : options.durationS * 1000;
    const replacements = [...p.device.bleFaults.replaceSensorAtS];
    /** Signal time at which the CGM's current sensor session started. */
    let sessionOriginMs = 0;
    const firstSessionStartMs = p.cgm?.sessionStartMs ?? 0;
    for (const s of p.series.samples) {
      if (s.tMs > endMs) break;
      if (p.cgm && replacements.length > 0 && s.tMs >= (replacements[0] as number) * 1000) {
        while (replacements.length > 0 && s.tMs >= (replacements[0] as number) * 1000) replacements.shift();
        sessionOriginMs = s.tMs;
        p.cgm.replaceSensor({ startMs: firstSessionStartMs + s.tMs });
        options.note(`${p.device.sensor}: sensor replaced (a new session from t=${Math.round(s.tMs / 1000)} s)`);
      }
      const due = origin + s.tMs / options.speed;
      const wait = due - options.clock.monotonic();
      if (wait > 0) await sleep(wait);
      if (stopping) return;
      for (;;) {
        if (stopping) return;
        const ok = p.cgm ? (await p.cgm.measure({ mgPerDl: Math.round(s.mgdl), timeOffset: Math.round((s.tMs - sessionOriginMs) / 60_000) })) !== undefined : await (p.strap as SimHeartRateStrap).measure({ bpm: Math.round(s.mgdl) });
        if (ok) break;
        await sleep(50);
      }
      p.sent += 1;
    }
  };

  return {
    driverOptions(device) {
      return { dbusAddress: bluez.address, address: device.address };
    },
    start(at) {
      for (const p of peers) {
        for (const t of p.device.bleFaults.dropLinkAtS) {
          at(t, async () => {
            const peripheral = p.meter ?? p.cgm ?? p.strap;
            if (!peripheral?.connected) return;
            p.linkDrops += 1;
            options.note(`${p.device.sensor}: link dropped by the device`);
            await peripheral.dropLink();
          });
        }
        const meter = p.meter;
        if (meter) {
          for (const m of p.device.measurements) {
            at(m.atS, () => {
              const record = meter.addRecord({ mgPerDl: m.mgPerDl, timeMs: options.clock.now() });
              options.note(`${p.device.sensor}: the patient measures ${m.mgPerDl} mg/dL (record ${record.sequenceNumber})`);
            });
          }
        } else loops.push(stream(p));
      }
      void Promise.all(loops).then(() => resolveFinished());
    },
    finished,
    expected() {
      return peers.map((p): ValueExpectation => {
        const peripheral = p.meter ?? p.cgm ?? p.strap;
        const records: MeterRecordExpectation[] = p.meter ? p.meter.records.map((r) => ({ sequenceNumber: r.sequenceNumber, meterTimeMs: p.meter!.collectorTimeOf(r), mgdl: r.mgPerDl })) : [];
        return {
          sensor: p.device.sensor,
          kind: p.device.kind as ValueExpectation['kind'],
          records,
          sent: p.meter ? records.length : p.sent,
          duplicatesSent: peripheral?.duplicatesSent ?? 0,
          linkDrops: p.linkDrops + (p.meter?.stats.cut ?? 0),
        };
      });
    },
    async stop() {
      stopping = true;
      for (const wake of [...sleepers]) wake();
      await Promise.allSettled(loops);
      await bluez.stop();
    },
  };
}
