// Shared by the BLE driver contract tests: a recording sink and the driver deps the runtime gives
// (lastMeterRecord tracked like firmware/runtime.ts does), fast timings for the simulated BlueZ.
import { systemClock } from '../../device-sdk/clock.js';
import { silentLogger } from '../../device-sdk/log.js';
import { MeterRecordBook, type Reading } from '../../device-sdk/records.js';
import type { DriverDeps, QuarantineReport, SensorNotice, SensorSink, SensorState } from '../../device-sdk/sensors/types.js';
import { GLS_SEQUENCE_NUMBER_BITS } from '../../device-sdk/sensors/ble-glucose-meter.js';

export interface RecordingSink extends SensorSink {
  readings: Reading[];
  quarantined: QuarantineReport[];
  states: SensorState[];
  notices: SensorNotice[];
}

export function recordingSink(): RecordingSink {
  const sink: RecordingSink = {
    readings: [],
    quarantined: [],
    states: [],
    notices: [],
    chunk: () => {
      throw new Error('a BLE driver sent a waveform chunk');
    },
    reading: (r) => sink.readings.push(r),
    quarantine: (q) => sink.quarantined.push(q),
    gap: () => {
      throw new Error('a BLE driver reported a stream gap');
    },
    state: (s) => sink.states.push(s),
    notice: (n) => sink.notices.push(n),
  };
  return sink;
}

/**
 * Deps whose `lastMeterRecord` is what firmware/runtime.ts keeps (a `MeterRecordBook`) of `stored` (records stored
 * before, without a meter: as from before meters were told apart) and of every reading the sink received, with the
 * runtime's configured `timeZone`.
 */
export function driverDeps(sink: RecordingSink, stored: Record<string, number> = {}, timeZone?: string): DriverDeps {
  const book = new MeterRecordBook(() => GLS_SEQUENCE_NUMBER_BITS, () => true);
  for (const [sensor, meterRecord] of Object.entries(stored)) book.note({ sensor, meterRecord });
  let noted = 0;
  const catchUp = () => {
    for (; noted < sink.readings.length; noted++) book.note(sink.readings[noted] as Reading);
  };
  return {
    clock: systemClock,
    logger: silentLogger,
    ...(timeZone !== undefined ? { timeZone } : {}),
    lastMeterRecord: (sensor, meter) => {
      catchUp();
      return book.last(sensor, meter);
    },
    meterRecordStored: (sensor, meter, record, meterClock, like) => {
      catchUp();
      return book.holds(sensor, meter, record, meterClock, like);
    },
    datedMeterRecordAtOrBefore: (sensor, meter, record) => {
      catchUp();
      return book.datedAtOrBefore(sensor, meter, record);
    },
    meterReadingStored: (reading) => {
      catchUp();
      return book.holdsAsSent(reading);
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
