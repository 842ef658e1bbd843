// Shared by the BLE driver contract tests: a recording sink and the driver deps the runtime gives
// (lastMeterRecord tracked like firmware/runtime.ts does), fast timings for the simulated BlueZ.
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import { newerMeterRecord, type Reading } from '../../device-sdk/records.js';
import type { DriverDeps, QuarantineReport, SensorSink, SensorState } from '../../device-sdk/sensors/types.js';
import { GLS_SEQUENCE_NUMBER_BITS } from '../../device-sdk/sensors/ble-glucose-meter.js';

export interface RecordingSink extends SensorSink {
  readings: Reading[];
  quarantined: QuarantineReport[];
  states: SensorState[];
}

export function recordingSink(): RecordingSink {
  const sink: RecordingSink = {
    readings: [],
    quarantined: [],
    states: [],
    chunk: () => {
      throw new Error('a BLE driver sent a waveform chunk');
    },
    reading: (r) => sink.readings.push(r),
    quarantine: (q) => sink.quarantined.push(q),
    gap: () => {
      throw new Error('a BLE driver reported a stream gap');
    },
    state: (s) => sink.states.push(s),
  };
  return sink;
}

/** Deps whose `lastMeterRecord` is the newest record the sink received (as firmware/runtime.ts keeps it) (plus `stored`, records stored before), with the runtime's configured `timeZone`. */
export function driverDeps(sink: RecordingSink, stored: Record<string, number> = {}, timeZone?: string): DriverDeps {
  return {
    clock: systemClock,
    logger: silentLogger,
    ...(timeZone !== undefined ? { timeZone } : {}),
    lastMeterRecord: (sensor) => {
      let best = stored[sensor];
      for (const r of sink.readings) if (r.sensor === sensor && r.meterRecord !== undefined) best = newerMeterRecord(r.meterRecord, best, GLS_SEQUENCE_NUMBER_BITS);
      return best;
    },
  };
}

/** Driver options for the simulated BlueZ: short polls and backoff so reconnects take milliseconds. */
export function fastBleOptions(dbusAddress: string, address: string) {
  return {
    address,
    dbusAddress,
    discoveryTimeoutMs: 10_000,
    discoveryPollMs: 20,
    connectTimeoutMs: 10_000,
    operationTimeoutMs: 10_000,
    dedupeWindowMs: 2_000,
    backoff: { initialMs: 20, maxMs: 200 },
  };
}
