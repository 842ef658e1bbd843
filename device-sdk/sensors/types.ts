/**
 * The driver seam: how a real (or simulated) device on a real transport becomes records.
 *
 * A driver owns one sensor on one transport: it opens the transport, speaks the device's protocol
 * through the codecs in `../protocols`, and hands the runtime typed records through a
 * `SensorSink`. Bytes that no codec accepts are never dropped: they go to `sink.quarantine` with
 * the transport, the time and the codec's error. Streams that lose samples (corrupted frames,
 * unplug) report the span with `sink.gap`, so a stream's sample indices stay truthful.
 *
 * Drivers are registered by name in `registry.ts`; the runtime config selects one with
 * `{ "type": "device", "sensor": "ecg", "driver": "serial-ecg", "options": { ... } }`, and the
 * options are validated against the driver's JSON schema before anything opens.
 */
import type { SchemaObject } from 'ajv';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { MeterIdentity, MeterRecordBits, Reading, StoredMeterRecord, StreamChunk } from '../records.js';

export const SENSOR_KINDS = ['ecg', 'pcg', 'glucose-meter', 'cgm', 'heart-rate'] as const;
export type SensorKind = (typeof SENSOR_KINDS)[number];

/** Bytes that no codec accepted, kept in quarantine with where and why. */
export interface QuarantineReport {
  sensor: string;
  /** The transport, e.g. `serial:/dev/ttyUSB0`, `ble:AA:BB:..:FF/2a18`, `firmata:/dev/ttyACM0`. */
  transport: string;
  /** The codec's error message. */
  error: string;
  bytes: Uint8Array;
}

/** Samples of a stream that were lost (their frames were corrupted, or the device was unplugged). */
export interface StreamGap {
  sensor: string;
  channel: number;
  /** Index of the first lost sample in the sensor channel's stream. */
  firstSample: number;
  samples: number;
  reason: string;
}

export interface SensorState {
  sensor: string;
  connected: boolean;
  /** Human-readable detail: `connected`, `scanning`, `backfill 120/500`, `reconnecting in 2 s`. */
  detail: string;
}

export interface SensorSink {
  chunk(c: StreamChunk): void;
  reading(r: Reading): void;
  quarantine(q: QuarantineReport): void;
  gap(g: StreamGap): void;
  state(s: SensorState): void;
  /** Something the clinic should know about the device that is no fault of the link (the runtime raises it as an info alert, severity 1). No patient data. */
  notice?(n: SensorNotice): void;
}

/** A driver's notice (`SensorSink.notice`), e.g. `meter-numbering-restarted`. */
export interface SensorNotice {
  sensor: string;
  /** The alert kind. */
  kind: string;
  message: string;
}

/**
 * The CGM records stored before (`DriverDeps.storedCgmRecords`) of one sensor session of one CGM: their places in the
 * session and their content, and the CGM that sent them.
 */
export interface StoredCgmSession {
  /** The session start as stored (`context.sessionStart`); absent when it was not known. */
  sessionStart?: string;
  /** The CGM's serial (`context.meterSerial`) and address (`context.meter`, of the newest), stored when it told its serial. */
  serial?: string;
  address?: string;
  /** Time Offsets (minutes since the session start: the readings' `meterRecord`), in the order stored. */
  offsets: Uint16Array;
  /** The exact value of each (`cgmHeldValue` of the reading's value: mg/dL x 10 + 1), in the same order. */
  values: Uint16Array;
}

/** What the runtime gives a driver. */
export interface DriverDeps {
  clock: Clock;
  logger: Logger;
  /**
   * The newest meter record stored durably for this sensor (`newerMeterRecord` in records.ts, on the
   * driver's `meterRecordBits`: on a 16-bit counter, 0 after 65,535 is newer), for backfill that
   * resumes (e.g. RACP "greater than or equal to" after a disconnect). With `meter` (the meter's identity: its
   * address, `context.meter`, and its serial when it told one, `context.meterSerial`): the newest of that meter's
   * current numbering (records.ts `MeterRecordBook.last`); when nothing of it is stored, the newest of the meter
   * the sensor's last reading came from, whose `meter` and `serial` say whether it was another one
   * (`isSameMeter`). Undefined when none is stored.
   */
  lastMeterRecord(sensor: string, meter?: MeterIdentity): StoredMeterRecord | undefined;
  /**
   * Whether record `record` of `meter` is stored with the meter wall clock `meterClock` (as sent, `context.meterClock`),
   * in any of its numbering epochs (records.ts `MeterRecordBook.holds`): a meter that still holds it holds the memory it
   * was stored from. False for a clock two numbers of the meter were stored with (a clock that does not run). `like`: the
   * record as the meter sends it now (as `meterReadingStored` takes it); given, a glucose meter's record is held only
   * with the same content (value, unit, type, context), so a clock stopped at its factory default that dates record 1 of
   * every numbering alike is not the same memory. Absent: not known (a glucose meter whose newest records are gone is then taken for a reset one).
   */
  meterRecordStored?(sensor: string, meter: MeterIdentity, record: number, meterClock: string, like?: Reading): boolean;
  /**
   * The newest record number of `meter` at or before `record` stored with a meter clock that is a date, in the meter's
   * current numbering (`MeterRecordBook.datedAtOrBefore`): what a meter whose last record has no date is asked for.
   * Absent: not known.
   */
  datedMeterRecordAtOrBefore?(sensor: string, meter: MeterIdentity, record: number): number | undefined;
  /**
   * Whether a meter's record, as the driver would hand it over (`reading.context` names the meter), is stored: by its
   * meter clock when that is a date, else by its content in the meter's current numbering
   * (`MeterRecordBook.holdsAsSent`). Absent: not known (a meter whose last record has no date and no dated record
   * below it is then taken for a reset one when it no longer holds its newest records stored).
   */
  meterReadingStored?(reading: Reading): boolean;
  /**
   * The CGM records stored for `sensor` before this start, by sensor session, the session stored last last
   * (firmware/runtime.ts `storedCgmRecords`: those stored in the 21 days before the newest). A CGM resends its backlog
   * when it reconnects: the driver takes them as handed over, so that a record resent after a restart of the runtime is
   * not stored again. Given once (a second call returns none). Absent: none known (records resent after a restart are stored again).
   */
  storedCgmRecords?(sensor: string): readonly StoredCgmSession[];
  /**
   * The IANA time zone meter clocks are set to (runtime config `timeZone`), for meters whose record
   * times have no zone and that cannot tell their clock (no Current Time Service): see
   * `meter-time.ts` for the precedence. Absent: such times are marked zone-unknown.
   */
  timeZone?: string;
}

export interface SensorDriver {
  readonly sensor: string;
  /** The registered driver name, e.g. `serial-ecg`. */
  readonly driver: string;
  readonly kind: SensorKind;
  readonly rateUnit: 'samples/s' | 'readings/min';
  readonly nominalRate: number;
  /**
   * A driver whose readings carry `meterRecord`: how wide that counter is (records.ts `meterRecordAfter`:
   * when its numbers start again at 0). The runtime orders the sensor's record numbers by it (`lastMeterRecord`,
   * the glucose analysis). Absent: `DEFAULT_METER_RECORD_BITS` (32, never wrapped at 65,536).
   */
  readonly meterRecordBits?: MeterRecordBits;
  /** Starts in the background (connect, subscribe, backfill); reports through `sink`. Never throws for device trouble: it reports state and retries. */
  start(sink: SensorSink): void;
  /** Stops and releases the transport; no sink call happens after the promise resolves. */
  stop(): Promise<void>;
}

export interface DriverDescriptor<Options extends object = Record<string, unknown>> {
  /** Unique name used in configs, e.g. `ble-glucose-meter`. */
  name: string;
  kind: SensorKind;
  /** The transport family: `serial`, `ble`, `firmata`. */
  transport: string;
  description: string;
  /** JSON schema (ajv 8) of `options`; `additionalProperties: false`. */
  optionsSchema: SchemaObject;
  /** Complete defaults merged under the validated options. */
  defaults: Options;
  create(sensor: string, options: Options, deps: DriverDeps): SensorDriver;
}
