/**
 * `ble-glucose-meter`: a Bluetooth glucose meter (Glucose Service 0x1808, GLS 1.0) read through
 * the Record Access Control Point, with backfill that resumes after a disconnect.
 *
 * Steps per connection: identify the meter (Device Information Service 0x180A when offered: Manufacturer
 * Name 0x2A29, Model Number 0x2A24, Serial Number 0x2A25, Firmware Revision 0x2A26; see "Numbering") →
 * read the meter's clock (Current Time Service 0x1805: Current Time 0x2A2B and
 * Local Time Information 0x2A0F, when offered; see "Meter time" below) → read Glucose Feature 0x2A51 (logged) → enable notifications on Glucose
 * Measurement 0x2A18 and Glucose Measurement Context 0x2A34 and indications on RACP 0x2A52 (GLS
 * §3.6: all three before any RACP request) → when a record of this meter's numbering is stored (n), check the
 * meter still holds it: "report stored records" within range n..n (`01 04 01 <n> <n>`, see "Numbering") →
 * RACP "report number of stored records" with the filter
 * below (`05 00 <n>`: the progress `backfill 120/500` in the sensor state) → "report stored records": `01 01` (all) when no
 * record of this meter's numbering is stored yet, else `01 03 01 <n+1>` (sequence number ≥ the last stored
 * record + 1, GLS §3.6.2 / shared spec §3.5) → records arrive as 0x2A18 (+ 0x2A34) notifications, then
 * the response code indication `06 00 01 01` (or `06 00 01 06`, none) → when that brought nothing new,
 * "report stored records: last" (`01 06`, see "Numbering" below) → every `pollIntervalMs` ask
 * again for newer records (reading the meter's clock again first), until the link is lost; then reconnect with backoff and resume.
 * A request the meter refuses because a procedure of its own still runs (ATT error 0x80 to the write, GLS 1.0, or the
 * response `06 00 <op> 08`, procedure not completed) is aborted (`03 00`) and asked once again (`meterBusy`).
 *
 * Exactly once: a record is handed to the sink only when its sequence number is newer than the newest
 * record stored for the sensor (`deps.lastMeterRecord`, which the runtime keeps durable) or handed over
 * on this driver before the transfer began, and was not handed over in this transfer; duplicates (a
 * retransmitted notification, a record sent again after a resume) are counted in `duplicates` and
 * dropped. A record that arrives after a higher-numbered one of the same transfer (out of order) is
 * stored. A measurement whose context (flag bit 4) has not arrived when the link drops is NOT handed
 * over: the resumed transfer sends it again with its context. Sequence numbers increase by one per
 * record (GLS §3.6.1.2) and are a uint16 that starts again at 0 after 65,535 (`meterRecordBits` 16):
 * "newer" is `meterRecordAfter` (records.ts) on 16 bits, less than 32,768 ahead modulo 65,536, so record 0
 * follows 65,535 and 65,535 is older than 2; the resume request after a wrap is `≥ last + 1` again (the
 * records from before the wrap that still match it are dropped as duplicates).
 *
 * Numbering: record numbers belong to one meter (records.ts `MeterIdentity`): its serial number when the
 * meter tells one (Device Information, read at each connect), else its address. No Device Information
 * Service, a refused or empty serial, or a placeholder serial (`isPlaceholderSerial`: `0000000000`, `N/A`, ...; two
 * meters answering one were taken for one, 10 of the second's 12 records never fetched): not an error, the address is
 * the meter (logged once per address; the serial is never logged, being a device identifier that the logs do not
 * need); at an address where a serial is known a meter answering a placeholder (or an empty serial, or no text) at
 * every read is another meter there, a new numbering epoch: all its records asked for, a notice (`anotherMeterAtAddress`;
 * QA round 2: taken for the known meter, a replacement without "within range" had 10 of 12 records never fetched, under
 * the old serial; the same meter answering it at a connect has its records fetched again, its dated ones stored once). Another serial
 * than the one known at the address is believed once read twice in any order (`identifyPeripheral`, shared with the
 * CGM; without two alike the meter known there): a read that gives the known serial back is a corrupted read of the
 * same meter (before: taken for another meter, all its records stored again). Each reading's context names
 * it (`meter`: the link's address, `meterSerial`; `METER_NUMBERING_CONTEXT`), and "stored" above means stored
 * from this meter in its present numbering (`deps.lastMeterRecord(sensor, meter)`). Another meter than the one
 * the sensor's last record came from (replaced under the same sensor name, in the config or by auto-detection:
 * another serial, or without serials another address) is asked for all its records; the same serial at another
 * address (a random address renewed with a battery) is the same meter. The same meter with its memory cleared,
 * or reset, numbers from 1 again. Two checks find it (`numberingRestarted`), each asking for one record (one
 * notification, not handed over): at connect, the floor record itself (within range n..n): missing, or with
 * another meter wall clock as sent, or, without a usable date (none, one that does not run, or one stored with another
 * content: a clock stopped at its factory default), not stored by content with the 4 below it (`sameContent`: a cleared
 * meter refilled past the floor); and after every transfer that brought nothing new, the meter's last record:
 * numbered before the floor, or the floor's number with another meter wall clock as sent (a clock set since
 * does not change what was sent). A last record numbered before the floor that is stored with the same meter wall
 * clock (`DriverDeps.meterRecordStored`) is the same memory whose newest records were deleted on the meter (a full
 * memory, its menu): no new numbering, and the connect-time check asks for that record while the floor stays. A last
 * record without a date (or whose clock does not run: one time stored for two numbers) is compared by the newest record
 * of this numbering stored with a date below it (`datedMeterRecordAtOrBefore`, asked for within range k..k); none
 * such: by content, it and the 4 records below it (`DriverDeps.meterReadingStored`, within range), all stored as sent:
 * the same memory (`heldBelowFloor`). A lost link or a busy meter during those requests decides nothing. Otherwise a
 * new numbering. Either starts a new epoch (`meterEpoch`: when it was found, this device's
 * clock) and asks for all records again. The first check also finds a reset meter that already holds more
 * records than the floor's number; a meter that refuses it (op code, operator or filter type not supported)
 * is not asked again by this driver and is left to the second. A floor stored before meters were named is not
 * checked at connect.
 * The first record handed over of a new meter or epoch comes with one `meter-numbering-restarted` notice
 * (`SensorSink.notice`; an info alert). The runtime drops a record of the same meter, number and meter
 * clock as one stored, and an undated record of the same meter, number and content in the same epoch (records.ts
 * `MeterRecordBook`): an epoch begun by mistake stores its undated records again, never loses a new one.
 * Not told apart: a reset meter that holds more records than the old floor, on a meter that refuses
 * "within range" (its records above the floor are taken as newer ones of the old numbering, those below
 * are not asked for).
 *
 * Readings: type `glucose`, mg/dL (mol/L converted: mmol/L × 18.0156), `meterRecord` = sequence
 * number, `tMeter` = base time + time offset (GLS §3.106 Base Time, §3.107 Time Offset) converted to
 * UTC, `tDevice` = this device's clock at reception; context: the meter time (`meterClock`, the wall
 * clock as sent, and how it was converted), sample type and location, sensor status flags, and when a
 * Glucose Measurement Context joined: meal, carbohydrate (g), tester, health, exercise, medication, HbA1c.
 *
 * Meter time (`meter-time.ts`): the Base Time is the meter's local wall clock without a zone. By
 * precedence: (1) the meter's Current Time, read on each connect and again before each poll (a clock
 * set or switched to DST while connected applies to the records read after it; a meter that notifies its
 * Current Time when it is set wakes the poll: the records it held are read by the clock before, and the
 * notified clock applies to those read after them): record times are converted by the
 * offset between the meter's clock and this device's clock (zone, DST and drift at once; with a
 * configured zone, the drift is removed and the zone's DST rules applied per record); (2) the
 * runtime's configured zone (`DriverDeps.timeZone`) when the meter has no Current Time Service or its
 * Current Time is unusable (date not known, or undecodable: quarantined); (3) neither: the wall clock
 * read as UTC, marked `meterTimeBasis: zone-unknown`. In a zone, a wall time in the hour repeated when
 * summer time ends is placed by this record's order and arrival (`MeterTimePlacement`: the time of the
 * record handed over before it, the request of the last completed transfer, and now).
 * A measurement without a usable concentration (absent, NaN, NRes, ±INF) and undecodable bytes go to
 * quarantine.
 */
import { DecodeError, MedgeError } from '../errors.js';
import {
  decodeGlucoseFeature,
  decodeGlucoseMeasurement,
  decodeGlucoseMeasurementContext,
  GLUCOSE_FEATURE_UUID,
  GLUCOSE_MEASUREMENT_CONTEXT_UUID,
  GLUCOSE_MEASUREMENT_UUID,
  type GlucoseMeasurement,
  type GlucoseMeasurementContext,
} from '../protocols/ble/glucose.js';
import { RACP_PROCEDURE_ALREADY_IN_PROGRESS } from '../protocols/ble/att-error.js';
import { decodeRacpResponse, encodeRacpRequest, RACP_UUID, type RacpRequestFields, type RacpResponse } from '../protocols/ble/racp.js';
import { CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID, decodeCurrentTime, decodeLocalTimeInformation, LOCAL_TIME_INFORMATION_UUID, type LocalTimeInformation } from '../protocols/ble/current-time.js';
import { finiteValue } from '../protocols/ieee11073.js';
import { isSameMeter, METER_NUMBERING_CONTEXT, type MeterIdentity, meterRecordAfter, newerMeterRecord, type Reading, type StoredMeterRecord } from '../records.js';
import { isPlaceholderSerial } from '../protocols/ble/device-information.js';
import { BleError, type GattLink } from '../transport/ble.js';
import { BLE_CONNECTION_SCHEMA_PROPERTIES, type BleConnectionOptions, BleDriverBase, DEFAULT_BLE_CONNECTION_OPTIONS, type GattConnectorFactory, identifyPeripheral, type SerialRules } from './ble-common.js';
import { METER_TIME_CONTEXT, type MeterClock, meterClockFromCurrentTime, meterClockWithoutCurrentTime, meterTime, type MeterTimePlacement, meterWallClockText, sameMeterClock } from './meter-time.js';
import type { DriverDeps, DriverDescriptor } from './types.js';

export const GLUCOSE_SERVICE_UUID = 0x1808;
/** A Glucose Measurement's Sequence Number is a uint16 (GLS §3.6.1.2). */
export const GLS_SEQUENCE_NUMBER_BITS = 16;

export interface BleGlucoseMeterOptions extends BleConnectionOptions {
  /** Ask the meter for newer records this often while connected (0 = only once per connection). */
  pollIntervalMs: number;
  /** A RACP procedure fails when nothing (record or response) arrives for this long. */
  racpTimeoutMs: number;
}

export const DEFAULT_BLE_GLUCOSE_METER_OPTIONS: Readonly<BleGlucoseMeterOptions> = Object.freeze({
  ...DEFAULT_BLE_CONNECTION_OPTIONS,
  pollIntervalMs: 60_000,
  racpTimeoutMs: 15_000,
});

const MMOL_TO_MG_PER_DL = 18.0156;
/** A re-read of the meter's Current Time within this of the last one is the same clock (whole-second rounding of a read that takes milliseconds). */
const CLOCK_REREAD_TOLERANCE_MS = 1000;
/**
 * The meter's reading of serial reads that do not settle it (`identifyPeripheral`) at an address where a serial is
 * known: other serials, none twice, are that meter (a replacement is found by its numbering: "within range", the
 * records' content); a refused read is the address, as before; a placeholder is no serial: another meter at the
 * address (`anotherMeterAtAddress`).
 */
const METER_SERIAL_RULES: Readonly<SerialRules> = Object.freeze({ unconfirmed: 'known', unread: 'none' });
/**
 * Records compared at most, by content, when the meter's last record is before the floor, has no date and no dated
 * record is stored below it (`heldBelowFloor`): it and those just below it.
 */
const COMPARED_RECORDS = 5;
/** The sensor state's backfill progress is updated every this many records. */
const PROGRESS_EVERY = 50;
/** The info alert (`SensorSink.notice`) raised with the first record of a meter whose numbers started again. */
export const METER_NUMBERING_RESTARTED = Object.freeze({
  kind: 'meter-numbering-restarted',
  message: 'glucose meter record numbers restarted: replaced or reset; records fetched from its first one',
});

interface Pending {
  measurement: GlucoseMeasurement;
  bytes: Uint8Array;
}

/** A record as it arrived: its measurement, bytes and context. */
interface Received {
  measurement: GlucoseMeasurement;
  bytes: Uint8Array;
  context: GlucoseMeasurementContext | undefined;
}

/** What arrived while a check asked for one record (`numberingRestarted`): the record asked for, and any others the meter sent with it. */
interface Probe {
  kind: 'floor' | 'last';
  /** The record number asked for (`floor`). */
  target: number | undefined;
  found: Received | undefined;
  others: Received[];
}

/** What one RACP procedure ended with; `busy`: the meter refused the write, a procedure of its own still running (`racp`). */
type RacpOutcome = { kind: 'response'; response: RacpResponse } | { kind: 'lost' } | { kind: 'timeout' } | { kind: 'busy'; error: BleError };

/** A record's meter wall clock as sent (`meterWallClockText`), or undefined when it has no date. */
function wallClockOf(m: GlucoseMeasurement): string | undefined {
  return m.measuredAtMs !== undefined ? meterWallClockText(m.measuredAtMs) : undefined;
}

/**
 * Whether the meter said a procedure of its own still runs (a transfer from before a reconnect): the write refused with
 * ATT error 0x80 "procedure already in progress" (GLS 1.0; `protocols/ble/att-error.ts`), or, as some meters answer
 * instead, the response code "procedure not completed" (`06 00 <op> 08`). Either is aborted and asked again.
 */
function meterBusy(outcome: RacpOutcome): boolean {
  return outcome.kind === 'busy' || (outcome.kind === 'response' && outcome.response.opCode === 'response-code' && outcome.response.responseCode.name === 'procedure-not-completed');
}

/** RACP response values of a meter that does not do a request (GLS §3.6.2.x; shared spec §3.5): op code, operator or filter type not supported, or the request taken as invalid. */
const RACP_REQUEST_REFUSED: ReadonlySet<string> = new Set(['op-code-not-supported', 'invalid-operator', 'operator-not-supported', 'invalid-operand', 'operand-not-supported']);

export class BleGlucoseMeterDriver extends BleDriverBase<BleGlucoseMeterOptions> {
  readonly driver = 'ble-glucose-meter';
  readonly kind = 'glucose-meter' as const;
  readonly rateUnit = 'readings/min' as const;
  readonly nominalRate = 0;
  readonly meterRecordBits = GLS_SEQUENCE_NUMBER_BITS;
  /** Records dropped as already stored (duplicate notifications, records sent again). */
  duplicates = 0;
  /** Records handed to the sink. */
  records = 0;
  /** RACP transfers completed (response code success or no records). */
  transfers = 0;
  /** The newest record handed over on this driver (of the present numbering), and its meter wall clock as sent. */
  private highest: number | undefined;
  private highestClock: string | undefined;
  /** Records at or before this one were stored before the current transfer began; `handed`: those handed over since. `floorClock`: its meter wall clock as sent. */
  private floor: number | undefined;
  private floorClock: string | undefined;
  /**
   * Whether the floor is a record that named its meter (handed over here, or stored with `context.meter`). A floor
   * stored before meters were told apart may be another meter's or gone from this one's memory: it is not checked
   * for at connect, since a new epoch would fetch again records that the runtime cannot match with those rows.
   */
  private floorOfMeter = false;
  /** The meter on the link (its address, and its serial when it told one: records.ts `MeterIdentity`) and the epoch of its numbering (`METER_NUMBERING_CONTEXT`). */
  private meter: MeterIdentity | undefined;
  private epoch: string | undefined;
  /**
   * A meter whose newest records stored are gone from it (deleted on the meter: a full memory, its menu) while it
   * still holds an older one stored, `record` with the same meter wall clock `clock`: the same numbering. Its
   * connect-time check asks for that record instead of the floor while the floor is still `floor` (meter: `meterKey`).
   */
  private heldBelow: { key: string; epoch: string | undefined; floor: number; record: number; clock: string | undefined } | undefined;
  /** Meters (serial, else address) that refused the "within range" check of the stored floor record: not asked again by this driver. */
  private floorCheckRefused = new Set<string>();
  /** Meters (address) whose Device Information Service was found absent or unreadable: logged once. */
  private disMissingLogged = new Set<string>();
  /** Set when the records to come start a new numbering: told once (`METER_NUMBERING_RESTARTED`) with the first of them. */
  private restartNotice: 'replaced' | 'reset' | undefined;
  /** While a check asks for one record (`numberingRestarted`): what arrived, instead of handing it over (`floor`: the record asked for; others counted). */
  private probe: Probe | undefined;
  /**
   * The records the checks brought when they showed a new numbering (the meter's last record, and those asked for
   * to compare: `heldBelowFloor`), in number order: each handed over in the transfer of the new numbering when it
   * comes to its place, unless that transfer brought it (the link drops a notification equal to one received less
   * than `dedupeWindowMs` ago, and these were: QA re-check, a cleared meter's new records 1 and 2 were never stored).
   */
  private heldRecords: Received[] = [];
  /** What `heldBelowFloor` received, for `heldRecords`. */
  private compared: Received[] = [];
  private handed = new Set<number>();
  /** A transfer was asked for and has not ended with the meter's response (the link dropped, or it timed out). */
  private transferCut = false;
  private pending: Pending | undefined;
  private activity: (() => void) | undefined;
  private response: ((r: RacpResponse) => void) | undefined;
  private current: GattLink | undefined;
  /** How this connection's record times become UTC (read on connect, again before each poll). */
  private meterClock: MeterClock = { basis: 'zone-unknown' };
  /** Per Current Time Service characteristic, the bytes last quarantined on this connection (the same value re-read before every poll is not quarantined again). */
  private clockQuarantined = new Map<number, string>();
  /** The transfer in progress: records handed over before it, and how many the meter announced. */
  private progress: { before: number; expected: number | undefined } | undefined;
  /** The meter time of the last record handed over, and when the last completed transfer was requested (this device's clock): they place a wall time repeated at a DST change. */
  private lastRecordTime: number | undefined;
  private lastTransferAt: number | undefined;
  /** The meter's Local Time Information as last read (converts a notified Current Time). */
  private localTime: LocalTimeInformation | undefined;
  /** A clock the meter notified (Current Time), applied once the records it held are read (`applyNotifiedClock`). */
  private notifiedClock: MeterClock | undefined;
  /** Wakes the poll loop's wait when the meter notifies its clock. */
  private wakeForClock: (() => void) | undefined;

  constructor(sensor: string, options: BleGlucoseMeterOptions, deps: DriverDeps, connectorFactory?: GattConnectorFactory) {
    super(sensor, GLUCOSE_SERVICE_UUID, options, deps, connectorFactory);
  }

  /** The newest record stored of this meter's present numbering; undefined when none is (or what is stored is another meter's, or its former numbering's). */
  private storedRecord(): StoredMeterRecord | undefined {
    const stored = this.deps.lastMeterRecord(this.sensor, this.meter);
    if (stored?.meter === undefined || this.meter === undefined) return stored; // none, or stored before meters were told apart: taken as this meter's
    return isSameMeter(stored, this.meter) && stored.epoch === this.epoch ? stored : undefined;
  }

  /** The newest record number stored or handed over, or undefined. */
  private lastRecord(): number | undefined {
    return newerMeterRecord(this.storedRecord()?.record, this.highest, this.meterRecordBits);
  }

  /**
   * The meter on a new link: its numbering as stored. Another meter than the one the sensor's last record came
   * from (the clinic replaced it: another serial, or without serials another address, under the same sensor name)
   * numbers its records anew, from its first one. The same serial at another address is the same meter.
   */
  private adoptMeter(meter: MeterIdentity): void {
    const address = meter.address;
    if (this.meter === undefined || !isSameMeter({ meter: this.meter.address, ...(this.meter.serial !== undefined ? { serial: this.meter.serial } : {}) }, meter)) {
      this.highest = undefined;
      this.highestClock = undefined;
      // A notice (and a reset's new epoch) still to be told belongs to the meter that was on the link: an empty
      // meter told nothing, and a reset meter's is found again when it is back.
      this.restartNotice = undefined;
    }
    this.meter = meter;
    const stored = this.deps.lastMeterRecord(this.sensor, meter);
    if (stored?.meter !== undefined && isSameMeter(stored, meter)) {
      // A reset found on an earlier link whose first record is not stored yet keeps its new epoch.
      if (this.restartNotice !== 'reset') this.epoch = stored.epoch;
      return;
    }
    this.epoch = undefined;
    if (stored?.meter === undefined) return;
    this.restartNotice ??= 'replaced';
    this.deps.logger.warn({ sensor: this.sensor, address, previous: stored.meter }, 'another glucose meter under this sensor: its records are fetched from its first one');
  }

  /** Whether record `seq` was stored before this transfer or handed over in it. */
  private isKnown(seq: number): boolean {
    return (this.floor !== undefined && !meterRecordAfter(seq, this.floor, this.meterRecordBits)) || this.handed.has(seq);
  }

  /** A new transfer (or connection): what is stored now is the floor; out-of-order records above it are new. */
  private newTransfer(): void {
    // A transfer cut after the meter sent records out of order (1, 2, 4, then the link dropped): the next one
    // resumes after the last record with none missing below it (2), not after the highest (4), whose "after 4"
    // never asked for 3 again (QA); the records above the gap stay known and are dropped when they come again.
    const contiguous = this.transferCut ? this.contiguousHanded() : undefined;
    if (contiguous !== undefined && this.highest !== undefined && contiguous !== this.highest) {
      const above = [...this.handed].filter((seq) => meterRecordAfter(seq, contiguous, this.meterRecordBits));
      this.floor = contiguous;
      this.floorClock = undefined;
      this.handed = new Set(above);
      return;
    }
    const stored = this.storedRecord();
    this.floor = newerMeterRecord(stored?.record, this.highest, this.meterRecordBits);
    this.floorClock = this.floor === undefined ? undefined : this.floor === this.highest ? this.highestClock : stored?.meterClock;
    this.floorOfMeter = this.floor !== undefined && (this.floor === this.highest || stored?.meter !== undefined);
    this.handed = new Set();
  }

  /**
   * The newest record handed over in this numbering with none missing between it and the floor (from the lowest
   * handed over on a first transfer); undefined when nothing was handed over.
   */
  private contiguousHanded(): number | undefined {
    if (this.handed.size === 0) return undefined;
    const modulus = 2 ** this.meterRecordBits;
    let at = this.floor ?? (Math.min(...this.handed) + modulus - 1) % modulus;
    for (let n = 0; n < this.handed.size && this.handed.has((at + 1) % modulus); n++) at = (at + 1) % modulus;
    return at;
  }

  protected async session(link: GattLink): Promise<void> {
    const log = this.deps.logger;
    this.pending = undefined; // a measurement awaiting its context when the last link dropped is sent again
    this.heldRecords = []; // the new link's transfer brings them again
    this.current = link;
    const { identity, placeholderWhereSerialKnown } = await this.identify(link);
    this.adoptMeter(identity);
    if (placeholderWhereSerialKnown) this.anotherMeterAtAddress(link);
    this.newTransfer();
    this.meterClock = await this.readMeterClock(link);
    if (link.hasCharacteristic(GLUCOSE_SERVICE_UUID, GLUCOSE_FEATURE_UUID)) {
      const bytes = await link.read(GLUCOSE_SERVICE_UUID, GLUCOSE_FEATURE_UUID);
      try {
        log.info({ sensor: this.sensor, address: link.address, features: decodeGlucoseFeature(bytes).bits }, 'glucose meter features');
      } catch (error) {
        this.quarantine(link, GLUCOSE_FEATURE_UUID, bytes, error);
      }
    }
    await link.subscribe(GLUCOSE_SERVICE_UUID, GLUCOSE_MEASUREMENT_UUID, (b) => this.onMeasurement(link, b));
    if (link.hasCharacteristic(GLUCOSE_SERVICE_UUID, GLUCOSE_MEASUREMENT_CONTEXT_UUID)) {
      await link.subscribe(GLUCOSE_SERVICE_UUID, GLUCOSE_MEASUREMENT_CONTEXT_UUID, (b) => this.onContext(link, b));
    }
    await link.subscribe(GLUCOSE_SERVICE_UUID, RACP_UUID, (b) => this.onRacp(link, b), { dedupe: false });
    // Does the meter still hold the newest record stored of it, as stored? A reset meter that already holds more
    // records than that number would otherwise hand over its records above it as newer ones of the old numbering.
    if (this.floorOfMeter && !this.floorCheckRefused.has(meterKey(this.meter as MeterIdentity))) await this.numberingRestarted(link, 'floor');
    await this.subscribeCurrentTime(link);
    let first = true;
    while (link.connected && !this.isStopped) {
      // The link may stay up for hours: the meter's clock can be set, or change for DST, in between.
      // Each poll converts its records by the clock as it is now (read just before the RACP request), unless the
      // meter notified a new clock: then the records it held are read first, by the clock before (`onCurrentTime`).
      if (!first && this.notifiedClock === undefined) await this.refreshMeterClock(link);
      first = false;
      await this.backfill(link);
      this.applyNotifiedClock(link);
      if (this.options.pollIntervalMs <= 0) return;
      const woken = new Promise<'clock'>((resolve) => {
        this.wakeForClock = () => resolve('clock');
        if (this.notifiedClock !== undefined) resolve('clock'); // notified during the transfer's last moments
      });
      const next = await Promise.race([link.lost.then(() => 'lost' as const), this.sleep(this.options.pollIntervalMs).then(() => 'poll' as const), woken]);
      this.wakeForClock = undefined;
      if (next === 'lost') return;
    }
  }

  /**
   * Enables notifications of the meter's Current Time (CTS 1.1 §3.1: a meter notifies it when its clock is set,
   * adjust reason "manual update", or synchronised). A meter that refuses (no notify property): not an error, its
   * clock is read before each poll as before.
   */
  private async subscribeCurrentTime(link: GattLink): Promise<void> {
    this.notifiedClock = undefined;
    if (!link.hasCharacteristic(CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID)) return;
    try {
      await link.subscribe(CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID, (bytes) => this.onCurrentTime(link, bytes), { dedupe: false });
    } catch (error) {
      if (!link.connected || !(error instanceof BleError) || error.code === 'disconnected') throw error;
      this.deps.logger.debug({ sensor: this.sensor, address: link.address, err: error.message }, 'glucose meter does not notify its Current Time');
    }
  }

  /**
   * A Current Time notification: the meter's clock was set (or synchronised). The records the meter holds were
   * written by the clock before, so the poll loop is woken to read them by that clock, and the notified clock
   * applies to the records read after them (`applyNotifiedClock`). With `pollIntervalMs` 0 (one transfer per
   * connection) nothing more is read on the link: the next connection reads the clock anew. Undecodable bytes
   * go to quarantine (once per connection); a Current Time whose date is not known is not a clock.
   */
  private onCurrentTime(link: GattLink, bytes: Uint8Array): void {
    let clock: MeterClock | undefined;
    try {
      clock = meterClockFromCurrentTime(decodeCurrentTime(bytes), this.deps.clock.now(), this.localTime, this.deps.timeZone);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.quarantineClock(link, CURRENT_TIME_UUID, bytes, error);
      return;
    }
    if (clock === undefined) return;
    this.notifiedClock = clock;
    this.wakeForClock?.();
  }

  /** After the transfer of the records written before a notified clock change: the notified clock converts those read from now on. */
  private applyNotifiedClock(link: GattLink): void {
    const next = this.notifiedClock;
    if (next === undefined) return;
    this.notifiedClock = undefined;
    if (sameMeterClock(this.meterClock, next, CLOCK_REREAD_TOLERANCE_MS)) return;
    this.deps.logger.warn({ sensor: this.sensor, address: link.address, previous: this.meterClock, meterTime: next }, 'glucose meter clock set (Current Time notified): records read from now on are converted by the new clock');
    this.meterClock = next;
  }

  /**
   * Who the meter on the link is (`identifyPeripheral`): its address, and its serial number when it tells one that is
   * no placeholder. Without the service, with the serial refused, empty or a placeholder, the address is the meter
   * (logged once per address). At an address where a serial is known (the meter last on this driver's link there, else
   * the meter whose records were stored last from there) by `METER_SERIAL_RULES`: another serial is believed once a
   * re-read gives it again; a placeholder (or empty, or no text) at every read is another meter there
   * (`placeholderWhereSerialKnown`, see `anotherMeterAtAddress`).
   * Logged: manufacturer, model and firmware; never the serial.
   */
  private async identify(link: GattLink): Promise<{ identity: MeterIdentity; placeholderWhereSerialKnown: boolean }> {
    const log = { sensor: this.sensor, logger: this.deps.logger, noSerialLogged: this.disMissingLogged };
    const names = { device: 'glucose meter', it: 'the meter', withoutSerial: 'the meter is known by its address' };
    const known = this.serialKnownAt(link.address);
    const { identity, info, noSerial } = await identifyPeripheral(link, names, log, (characteristic, bytes, error) => this.quarantine(link, characteristic, bytes, error), known !== undefined ? { serial: known, where: 'at this address', ...METER_SERIAL_RULES } : undefined);
    const { manufacturer, model, firmware } = info;
    if (identity.serial !== undefined && (this.meter?.serial !== identity.serial || this.meter.address !== link.address)) {
      this.deps.logger.info({ sensor: this.sensor, address: link.address, manufacturer, model, firmware }, 'glucose meter identified by its serial number');
    }
    return { identity, placeholderWhereSerialKnown: noSerial === 'answered' && known !== undefined && !isPlaceholderSerial(known) };
  }

  /**
   * The serial of the meter known at `address`: the meter last on this driver's link there (none when it told none),
   * else the one whose records were stored last from there.
   */
  private serialKnownAt(address: string): string | undefined {
    if (this.meter?.address === address) return this.meter.serial;
    const stored = this.deps.lastMeterRecord(this.sensor, { address });
    return stored?.meter === address ? stored.serial : undefined;
  }

  /**
   * A meter that answered a placeholder (or an empty serial, or no text) at an address where a serial is known: another
   * meter, known by its address, its numbering a new epoch there, so that all its records are asked for and a notice is
   * sent (QA round 2: taken for the meter known there, a replacement without "within range" had 10 of its 12 records
   * never fetched, no notice, its records stored under the old meter's serial). The same meter answering a placeholder
   * at one connect has its records fetched again: the runtime does not store a dated record of an address twice (an
   * undated one is stored again in the new epoch).
   */
  private anotherMeterAtAddress(link: GattLink): void {
    this.epoch = new Date(this.deps.clock.now()).toISOString();
    this.highest = undefined;
    this.highestClock = undefined;
    this.restartNotice ??= 'replaced';
    this.deps.logger.warn({ sensor: this.sensor, address: link.address, epoch: this.epoch }, 'glucose meter answering no serial where one was known: taken for another meter, its records fetched from its first one');
  }

  /**
   * Reads the meter's clock again before a poll of a connection that stays up. A clock that changed
   * (set by the patient, a DST switch, or a basis change such as a refused read) is logged with the
   * old and the new conversion; records read from now on use the new one (and say so in their context).
   */
  private async refreshMeterClock(link: GattLink): Promise<void> {
    if (!link.hasCharacteristic(CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID)) return; // nothing that can change
    const previous = this.meterClock;
    const next = await this.readMeterClock(link, true);
    if (sameMeterClock(previous, next, CLOCK_REREAD_TOLERANCE_MS)) return; // the same clock: every record of the connection keeps one offset
    this.meterClock = next;
    this.deps.logger.warn({ sensor: this.sensor, address: link.address, previous, meterTime: next }, 'glucose meter clock changed while connected: newer records are converted by the new clock');
  }

  /**
   * The meter's clock by the precedence of `meter-time.ts`: its Current Time, the configured zone, or
   * unknown. `again`: a re-read on a connection already read (no log unless the caller finds a change,
   * and a Current Time that cannot be decoded is quarantined once per connection).
   */
  private async readMeterClock(link: GattLink, again = false): Promise<MeterClock> {
    const log = this.deps.logger;
    const fallback = meterClockWithoutCurrentTime(this.deps.timeZone);
    if (!again) this.clockQuarantined = new Map();
    if (!link.hasCharacteristic(CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID)) {
      log.info({ sensor: this.sensor, address: link.address, meterTime: fallback }, 'glucose meter without a Current Time Service');
      return fallback;
    }
    const before = this.deps.clock.now();
    const bytes = await this.readOptional(link, CURRENT_TIME_UUID, again);
    // The device's clock when the meter read its own: the middle of the read.
    const deviceNow = Math.round((before + this.deps.clock.now()) / 2);
    let local: LocalTimeInformation | undefined;
    const lti = link.hasCharacteristic(CURRENT_TIME_SERVICE_UUID, LOCAL_TIME_INFORMATION_UUID) ? await this.readOptional(link, LOCAL_TIME_INFORMATION_UUID, again) : undefined;
    if (lti !== undefined) {
      try {
        local = decodeLocalTimeInformation(lti);
        this.localTime = local;
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        this.quarantineClock(link, LOCAL_TIME_INFORMATION_UUID, lti, error);
      }
    }
    let clock: MeterClock | undefined;
    if (bytes !== undefined) {
      try {
        clock = meterClockFromCurrentTime(decodeCurrentTime(bytes), deviceNow, local, this.deps.timeZone);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        this.quarantineClock(link, CURRENT_TIME_UUID, bytes, error);
      }
    }
    if (again) return clock ?? fallback;
    if (clock === undefined) log.warn({ sensor: this.sensor, address: link.address, meterTime: fallback }, "glucose meter's Current Time is not usable");
    else log.info({ sensor: this.sensor, address: link.address, meterTime: clock }, 'glucose meter clock read');
    return clock ?? fallback;
  }

  /**
   * Quarantines an undecodable Current Time Service value, unless it is the value last quarantined of that
   * characteristic on this connection (it is read before every poll). Other bytes are kept (QA re-check: only the
   * first undecodable notification of a connection was kept, and later, different ones were dropped).
   */
  private quarantineClock(link: GattLink, characteristic: number, bytes: Uint8Array, error: DecodeError): void {
    const hex = Buffer.from(bytes).toString('hex');
    if (this.clockQuarantined.get(characteristic) === hex) return;
    this.clockQuarantined.set(characteristic, hex);
    this.quarantine(link, characteristic, bytes, error);
  }

  /**
   * Reads a Current Time Service characteristic; a refused read (e.g. a meter that shows its clock to
   * bonded collectors only) is logged (on the first read of a connection) and gives undefined, so the
   * records are still read. A lost link rejects.
   */
  private async readOptional(link: GattLink, characteristic: number, again: boolean): Promise<Uint8Array | undefined> {
    try {
      return await link.read(CURRENT_TIME_SERVICE_UUID, characteristic);
    } catch (error) {
      if (!link.connected || !(error instanceof BleError) || error.code === 'disconnected') throw error;
      if (!again) this.deps.logger.warn({ sensor: this.sensor, address: link.address, characteristic: characteristic.toString(16), err: error.message }, 'glucose meter refused a Current Time Service read');
      return undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.deps.clock.setTimeout(resolve, ms));
  }

  /** One "report stored records" procedure from the last stored record on. */
  private async backfill(link: GattLink): Promise<void> {
    this.newTransfer();
    this.transferCut = true;
    const last = this.floor;
    const request: RacpRequestFields =
      last === undefined || last >= 0xffff
        ? { opCode: 'report-stored-records', operator: 'all' }
        : { opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: last + 1 } };
    const before = this.records;
    // How many to expect (RACP op 4 with the same filter): the sensor state shows `backfill 120/500`.
    const count = await this.racp(link, { ...request, opCode: 'report-number-of-stored-records' } as RacpRequestFields);
    if (count.kind === 'lost') return;
    const expected = count.kind === 'response' && count.response.opCode === 'number-of-stored-records-response' ? count.response.count : undefined;
    this.progress = { before, expected };
    this.setDetail(`backfill 0/${expected ?? '?'}`);
    let requestedAt = this.deps.clock.now();
    let outcome = await this.racp(link, request);
    if (meterBusy(outcome)) {
      // A transfer from before a reconnect is still running on the meter: abort it, then ask again.
      await this.racp(link, { opCode: 'abort-operation' });
      requestedAt = this.deps.clock.now();
      outcome = await this.racp(link, request);
    }
    this.progress = undefined;
    if (outcome.kind === 'busy') throw outcome.error; // still busy after the abort: the link is dropped and tried again
    if (outcome.kind === 'lost') return; // the pending measurement is dropped; the resumed transfer repeats it
    if (outcome.kind === 'timeout') {
      this.flushPending();
      throw new BleError('timeout', link.address, 'RACP report stored records', `no record or response within ${this.options.racpTimeoutMs} ms`);
    }
    this.flushPending();
    const held = this.heldRecords;
    this.heldRecords = [];
    for (const h of held) if (!this.isKnown(h.measurement.sequenceNumber)) this.emit(link, h.measurement, h.bytes, h.context);
    const r = outcome.response;
    if (r.opCode === 'response-code' && (r.responseCode.name === 'success' || r.responseCode.name === 'no-records-found')) {
      this.transferCut = false;
      this.transfers += 1;
      this.lastTransferAt = requestedAt; // every record numbered after those it reported was written after this
      this.setDetail(`${this.records - before} new records, ${this.records} this run, ${this.duplicates} duplicates dropped`);
      this.deps.logger.info({ sensor: this.sensor, newRecords: this.records - before, duplicates: this.duplicates, last: this.lastRecord() }, 'glucose meter backfill complete');
      // Nothing new: were the meter's numbers started again below the floor (memory cleared, reset)? Then its
      // records are fetched again from its first one, in a new epoch.
      if (this.handed.size === 0 && this.floor !== undefined && (await this.numberingRestarted(link, 'last'))) await this.backfill(link);
      return;
    }
    throw new MedgeError('racp', `${this.driver} ${this.sensor}: the meter refused the RACP request: ${JSON.stringify(r)}`);
  }

  /**
   * Whether the meter's record numbers started again (its memory cleared, or it was reset): asks for one record and
   * compares it with the floor (the newest record stored of this meter's numbering, or handed over). Two checks:
   * - `floor`, on connect before any transfer: RACP report stored records, operator within range (4), filter
   *   sequence number, floor..floor (`01 04 01 <n> <n>`; GLS §3.6.2.1 / shared spec §3.5). The record sent with
   *   another meter wall clock than stored is a new numbering, and so is one without a usable date (no clock, or one not
   *   stored so with this content) whose content and the 4 below it are not all stored (`sameContent`); the record missing (`06 00 01 06`) is one when the
   *   `last` check below says so (a meter that deleted its record n, or answers the range wrongly, is not reset). This finds a reset
   *   meter that already holds more records than the floor's number, whose records above it `≥ floor + 1` would
   *   take for newer ones of the old numbering. A meter that refuses the request (op code, operator or filter type
   *   not supported, invalid operator or operand) is not asked again by this driver: `last` after an empty
   *   transfer is then its only check, as before.
   * - `last`, after a transfer that brought nothing new: operator last (`01 06`). A last record whose number is
   *   before the floor (the meter no longer has the records stored from it), or that has the floor's number but
   *   another meter wall clock, is a new numbering.
   * Wall clocks are compared as sent, so a clock set or a DST change since does not count. A new numbering begins a
   * new epoch (`context.meterEpoch`) and true is returned. No answer to compare (nothing found by `last`, a refusal,
   * a lost link): false (`last` is asked again after the next transfer that brings nothing). A `floor` check
   * unanswered within `racpTimeoutMs` counts as refused; an unanswered `last` rejects (`BleError` timeout).
   */
  private async numberingRestarted(link: GattLink, check: 'floor' | 'last'): Promise<boolean> {
    const floor = this.floor as number;
    this.compared = [];
    const meter = this.meter as MeterIdentity;
    // A meter known to have lost its newest records is asked for the newest it still holds (`heldBelow`).
    const below = this.heldBelow;
    const checked = below !== undefined && below.key === meterKey(meter) && below.epoch === this.epoch && below.floor === floor ? below : { record: floor, clock: this.floorClock };
    const request: RacpRequestFields =
      check === 'floor'
        ? { opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: checked.record, to: checked.record } }
        : { opCode: 'report-stored-records', operator: 'last' };
    const probe: Probe = { kind: check, target: check === 'floor' ? checked.record : undefined, found: undefined, others: [] };
    const outcome = await this.askProbe(link, request, probe);
    if (outcome.kind === 'busy') throw outcome.error;
    if (outcome.kind === 'lost') return false;
    const code = outcome.kind === 'response' && outcome.response.opCode === 'response-code' ? outcome.response.responseCode.name : undefined;
    if (check === 'floor' && (outcome.kind === 'timeout' || (code !== undefined && RACP_REQUEST_REFUSED.has(code)))) {
      // A meter that does not do it (or never answers it: then the backfill's request aborts what may still run).
      this.floorCheckRefused.add(meterKey(this.meter as MeterIdentity));
      this.deps.logger.info({ sensor: this.sensor, address: link.address, response: code ?? 'none' }, 'glucose meter does not report a record by number (RACP within range): a reset is found only after a transfer that brings nothing new');
      return false;
    }
    if (outcome.kind === 'timeout') throw new BleError('timeout', link.address, 'RACP report last record', `no record or response within ${this.options.racpTimeoutMs} ms`);
    const found = probe.found;
    let behind = false;
    let another: boolean;
    if (check === 'floor') {
      // Record `floor` is gone: a reset meter holding fewer records, or one that deleted it (a full memory, a delete
      // from its menu) or answers the range wrongly. Only its last record tells: before the floor, a new numbering.
      if (found === undefined && probe.others.length === 0 && code === 'no-records-found') return this.numberingRestarted(link, 'last');
      else if (found === undefined) return this.handOver(link, probe.others); // something else came: nothing to compare
      else {
        const clock = wallClockOf(found.measurement);
        another = checked.clock !== undefined && clock !== undefined && clock !== checked.clock;
        // No date to tell it by (no clock, or one that does not run or that another record of this number was stored
        // with: a clock stopped at its factory default): compared by content, it and those below it (`sameContent`). A
        // cleared meter refilled past the floor had its new records taken for the old ones (QA round 2: 5 of 6 lost).
        if (!another && this.deps.meterReadingStored !== undefined && (clock === undefined || this.storedAs(checked.record, clock, found) === undefined)) {
          const same = await this.sameContent(link, found);
          if (same === 'unanswered') return false;
          another = !same;
        }
      }
    } else {
      if (found === undefined) return false;
      const last = found.measurement;
      const meterClock = wallClockOf(last);
      behind = meterRecordAfter(floor, last.sequenceNumber, this.meterRecordBits);
      another = last.sequenceNumber === floor && this.floorClock !== undefined && meterClock !== undefined && meterClock !== this.floorClock;
      // Its last record (or, when that has no date, the newest dated one stored below it) still on the meter with
      // the same wall clock: the same memory, whose records after it were deleted on the meter (a full memory, its
      // menu). Not a new numbering; checked by that record from now on.
      const held = behind ? await this.heldBelowFloor(link, found) : undefined;
      if (held === 'unanswered') return false; // asked again after the next transfer that brings nothing
      if (held !== undefined) {
        if (below?.record !== held.record) {
          this.deps.logger.info({ sensor: this.sensor, address: link.address, floor, onMeter: last.sequenceNumber, held: held.record }, 'glucose meter no longer holds its newest records stored (deleted on the meter): the same numbering');
        }
        this.heldBelow = { key: meterKey(meter), epoch: this.epoch, floor, ...held };
        behind = false;
      }
    }
    if (!behind && !another) return this.handOver(link, probe.others);
    const brought = [...this.compared, ...(found !== undefined ? [found] : [])];
    this.heldRecords = brought
      .filter((r, i) => brought.findIndex((o) => o.measurement.sequenceNumber === r.measurement.sequenceNumber) === i)
      .sort(this.byRecordNumber);
    this.epoch = new Date(this.deps.clock.now()).toISOString();
    this.highest = undefined;
    this.highestClock = undefined;
    this.restartNotice ??= 'reset';
    this.deps.logger.warn(
      { sensor: this.sensor, address: link.address, floor, check, onMeter: found?.measurement.sequenceNumber ?? null, epoch: this.epoch },
      'glucose meter record numbers restarted (memory cleared or reset): records fetched from its first one',
    );
    return true;
  }

  /** `record` with `clock` when it is stored so (`DriverDeps.meterRecordStored`), else undefined. */
  private storedAs(record: number, clock: string, received?: Received): { record: number; clock: string } | undefined {
    const like = received !== undefined ? this.asReading(received) : undefined;
    return this.deps.meterRecordStored?.(this.sensor, this.meter as MeterIdentity, record, clock, like) === true ? { record, clock } : undefined;
  }

  /**
   * For the meter's last record `last`, numbered before the floor: the record that shows the meter still holds the
   * memory stored from it (its newest records deleted on the meter), with the clock to check it by at connect (undefined:
   * by its number only); undefined when none does (a new numbering); `unanswered` when the meter did not answer (the
   * link was lost, or it stayed busy: asked again after the next transfer that brings nothing). By precedence:
   * - `last` itself, stored with the meter clock it has (a clock that is a date: `DriverDeps.meterRecordStored`);
   * - else, when it has another date stored: none;
   * - else the newest record stored with a date below it in this numbering (`datedMeterRecordAtOrBefore`), asked for
   *   (within range k..k) and found with the clock it was stored with;
   * - else (no date to compare: a clock never set, or one that does not run) `last` and the records just below it,
   *   `COMPARED_RECORDS` in all (within range), each stored as sent (`DriverDeps.meterReadingStored`: its content in
   *   this numbering). One record alone is not enough: a cleared meter's new record can have the number and value of
   *   an old one (QA re-check: new 110/97/130 after old 110/95/130, records 1 and 3 alike).
   * A meter that does not do "within range" (or does not answer it) has nothing compared: none.
   */
  private async heldBelowFloor(link: GattLink, last: Received): Promise<{ record: number; clock: string | undefined } | 'unanswered' | undefined> {
    const meter = this.meter as MeterIdentity;
    const seq = last.measurement.sequenceNumber;
    const clock = wallClockOf(last.measurement);
    const as = clock !== undefined ? this.storedAs(seq, clock, last) : undefined;
    if (as !== undefined) return as;
    const dated = this.deps.datedMeterRecordAtOrBefore?.(this.sensor, meter, seq);
    if (dated === seq || this.floorCheckRefused.has(meterKey(meter))) return undefined;
    if (dated !== undefined) {
      const answer = await this.askRange(link, dated, dated);
      if (typeof answer === 'string') return answer === 'refused' ? undefined : answer;
      this.compared.push(...(answer.found !== undefined ? [answer.found] : []), ...answer.others);
      // Sent ("success") but not delivered: the link dropped it as a repeat of the one received just before (the
      // connect-time check asked for it): nothing to compare now (QA: a false reset at each later connect).
      if (answer.found === undefined && answer.code === 'success') return 'unanswered';
      const at = answer.found?.measurement.measuredAtMs;
      return at !== undefined && answer.found !== undefined ? this.storedAs(dated, meterWallClockText(at), answer.found) : undefined;
    }
    const same = await this.sameContent(link, last);
    return same === 'unanswered' ? same : same ? { record: seq, clock: undefined } : undefined;
  }

  /**
   * Whether `last` and the records just below it on the meter, `COMPARED_RECORDS` in all (asked for within range), are
   * each stored as sent (`DriverDeps.meterReadingStored`: its content in this numbering): how a record without a usable
   * date is told from a cleared meter's new one. False when that is not known (no such dependency); `unanswered` when
   * the meter did not answer, false when it refused.
   */
  private async sameContent(link: GattLink, last: Received): Promise<boolean | 'unanswered'> {
    const seq = last.measurement.sequenceNumber;
    const stored = this.deps.meterReadingStored;
    if (stored === undefined) return false;
    const compared: Received[] = [last];
    const from = Math.max(0, seq - (COMPARED_RECORDS - 1));
    if (from < seq) {
      const answer = await this.askRange(link, from, seq - 1);
      if (typeof answer === 'string') return answer === 'refused' ? false : answer;
      // Those of the range only (a meter may answer with every record from `from` on); the link drops a record it
      // delivered less than `dedupeWindowMs` ago: not compared.
      for (const r of [answer.found, ...answer.others]) if (r !== undefined && r.measurement.sequenceNumber >= from && r.measurement.sequenceNumber < seq) compared.push(r);
      this.compared.push(...compared.slice(1));
    }
    const readings = compared.map((r) => this.asReading(r)).filter((r): r is Reading => r !== undefined);
    const same = readings.length > 0 && readings.every((r) => stored(r));
    this.deps.logger.debug({ sensor: this.sensor, address: link.address, last: seq, compared: readings.length, same }, 'glucose meter records without a date compared with those stored');
    return same;
  }

  /**
   * Asks for the records `from..to` (within range) without handing them over; `to` is `found`, the others apart. A
   * busy meter is aborted and asked once again; busy again: `unanswered`, and so is a lost link. A refusal or no
   * answer within `racpTimeoutMs`: `refused`, and the meter is not asked "within range" again by this driver.
   */
  private async askRange(link: GattLink, from: number, to: number): Promise<(Probe & { code: string | undefined }) | 'unanswered' | 'refused'> {
    const probe: Probe = { kind: 'floor', target: to, found: undefined, others: [] };
    // Busy: before, taken for a missing record (QA: a notice and every record fetched again).
    const outcome = await this.askProbe(link, { opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from, to } }, probe);
    if (outcome.kind === 'lost' || meterBusy(outcome)) return 'unanswered';
    const code = outcome.kind === 'response' && outcome.response.opCode === 'response-code' ? outcome.response.responseCode.name : undefined;
    if (outcome.kind === 'timeout' || (code !== undefined && RACP_REQUEST_REFUSED.has(code))) {
      this.floorCheckRefused.add(meterKey(this.meter as MeterIdentity));
      this.deps.logger.info({ sensor: this.sensor, address: link.address, response: code ?? 'none' }, 'glucose meter does not report a record by number (RACP within range)');
      return 'refused';
    }
    return { ...probe, code };
  }

  /**
   * Writes a check's request, what arrives kept in `probe` (`emit`) instead of handed over. A meter busy with a
   * procedure of its own (a transfer from before a reconnect) is aborted and asked once again.
   */
  private async askProbe(link: GattLink, request: RacpRequestFields, probe: Probe): Promise<RacpOutcome> {
    const ask = async (): Promise<RacpOutcome> => {
      this.probe = probe;
      try {
        const outcome = await this.racp(link, request);
        if (outcome.kind === 'response') this.flushPending();
        return outcome;
      } finally {
        this.probe = undefined;
        this.pending = undefined;
      }
    };
    const outcome = await ask();
    if (!meterBusy(outcome)) return outcome;
    await this.racp(link, { opCode: 'abort-operation' });
    probe.found = undefined;
    probe.others = [];
    return ask();
  }

  /** A record received by a check as the reading it would be handed over as (its meter time as sent only); undefined without a usable concentration. */
  private asReading(r: Received): Reading | undefined {
    const m = r.measurement;
    const mgPerDl = usableMgPerDl(m);
    if (mgPerDl === undefined) return undefined;
    const clock = wallClockOf(m);
    return this.reading(m, r.context, mgPerDl, this.deps.clock.now(), clock !== undefined ? { [METER_TIME_CONTEXT.clock]: clock } : {});
  }

  /** The reading record `m` (with its context `c`) is handed over as: `emit` and, for the content checks, `asReading`. */
  private reading(m: GlucoseMeasurement, c: GlucoseMeasurementContext | undefined, mgPerDl: number, tDevice: number, timeContext: Record<string, string> | undefined): Reading {
    return {
      sensor: this.sensor,
      type: 'glucose',
      value: Math.round(mgPerDl * 10) / 10,
      unit: 'mg/dL',
      tDevice,
      meterRecord: m.sequenceNumber,
      context: { ...timeContext, ...glucoseContext(m, c), ...this.numberingContext() },
    };
  }

  /** Orders received records by their number on the meter's counter (which may wrap). */
  private readonly byRecordNumber = (a: Received, b: Received): number => (meterRecordAfter(a.measurement.sequenceNumber, b.measurement.sequenceNumber, this.meterRecordBits) ? 1 : -1);

  /**
   * Records a meter sent with the `floor` check's answer besides the one asked for (some answer "within range n..n" with
   * every record from n on), when the numbering goes on: handed over now, in number order. Dropped, they were lost: the
   * link drops the transfer's copies of them as repeats within `dedupeWindowMs`, and a meter that drops the link
   * between polls sent them again only with the next check (QA: a 45 mg/dL record never stored over 5 connects).
   * Returns false (the numbering did not restart).
   */
  private handOver(link: GattLink, others: readonly Received[]): false {
    const ordered = [...others].sort(this.byRecordNumber);
    for (const r of ordered) if (!this.isKnown(r.measurement.sequenceNumber)) this.emit(link, r.measurement, r.bytes, r.context);
    return false;
  }

  /** Writes a RACP request and waits for its response (an inactivity timeout: every record received restarts it). */
  private async racp(link: GattLink, request: RacpRequestFields): Promise<RacpOutcome> {
    const o = this.options;
    const done = new Promise<RacpOutcome>((resolve) => {
      let timer = this.deps.clock.setTimeout(() => resolve({ kind: 'timeout' }), o.racpTimeoutMs);
      this.activity = () => {
        this.deps.clock.clearTimeout(timer);
        timer = this.deps.clock.setTimeout(() => resolve({ kind: 'timeout' }), o.racpTimeoutMs);
      };
      this.response = (response) => {
        this.deps.clock.clearTimeout(timer);
        resolve({ kind: 'response', response });
      };
      void link.lost.then(() => {
        this.deps.clock.clearTimeout(timer);
        resolve({ kind: 'lost' });
      });
    });
    try {
      await link.write(GLUCOSE_SERVICE_UUID, RACP_UUID, encodeRacpRequest(request), 'request');
    } catch (error) {
      if (!link.connected) return { kind: 'lost' };
      if (error instanceof BleError && error.attError === RACP_PROCEDURE_ALREADY_IN_PROGRESS.glucose) return { kind: 'busy', error };
      throw error;
    }
    try {
      return await done;
    } finally {
      this.activity = undefined;
      this.response = undefined;
    }
  }

  private onRacp(link: GattLink, bytes: Uint8Array): void {
    let response: RacpResponse;
    try {
      response = decodeRacpResponse(bytes);
    } catch (error) {
      this.quarantine(link, RACP_UUID, bytes, error);
      return;
    }
    if (this.response) this.response(response);
    else this.deps.logger.warn({ sensor: this.sensor, response }, 'RACP indication without a request in progress');
  }

  private onMeasurement(link: GattLink, bytes: Uint8Array): void {
    this.activity?.();
    let m: GlucoseMeasurement;
    try {
      m = decodeGlucoseMeasurement(bytes);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.quarantine(link, GLUCOSE_MEASUREMENT_UUID, bytes, error);
      return;
    }
    if (this.pending?.measurement.sequenceNumber === m.sequenceNumber) {
      this.duplicates += 1; // the same record again while its context is awaited
      return;
    }
    this.flushPending();
    if (m.contextFollows) this.pending = { measurement: m, bytes: Uint8Array.from(bytes) };
    else this.emit(link, m, bytes, undefined);
  }

  private onContext(link: GattLink, bytes: Uint8Array): void {
    this.activity?.();
    let c: GlucoseMeasurementContext;
    try {
      c = decodeGlucoseMeasurementContext(bytes);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.quarantine(link, GLUCOSE_MEASUREMENT_CONTEXT_UUID, bytes, error);
      return;
    }
    const p = this.pending;
    if (p && p.measurement.sequenceNumber === c.sequenceNumber) {
      this.pending = undefined;
      this.emit(link, p.measurement, p.bytes, c);
      return;
    }
    if (this.isKnown(c.sequenceNumber)) return; // the context of a record already stored, sent again
    this.quarantine(link, GLUCOSE_MEASUREMENT_CONTEXT_UUID, bytes, new DecodeError('ble-glucose-measurement-context', `context of record ${c.sequenceNumber} without its measurement`));
  }

  /** A measurement whose context never came is handed over without one. */
  private flushPending(): void {
    const p = this.pending;
    this.pending = undefined;
    const link = this.current;
    if (p && link) this.emit(link, p.measurement, p.bytes, undefined);
  }

  private emit(link: GattLink, m: GlucoseMeasurement, bytes: Uint8Array, c: GlucoseMeasurementContext | undefined): void {
    if (this.isStopped || !this.sink) return;
    const seq = m.sequenceNumber;
    if (this.probe) {
      // `last` keeps what came (one record); `floor` the record asked for, and keeps the others apart.
      const received = { measurement: m, bytes: Uint8Array.from(bytes), context: c };
      if (this.probe.kind === 'floor' && seq !== this.probe.target) this.probe.others.push(received);
      else this.probe.found = received;
      return;
    }
    // The records a check brought before this transfer: each handed over in its place (the link dropped its copy as a
    // repeat), or by this very record when the meter sent it again.
    for (let held = this.heldRecords[0]; held !== undefined; held = this.heldRecords[0]) {
      const n = held.measurement.sequenceNumber;
      if (n !== seq && !meterRecordAfter(seq, n, this.meterRecordBits)) break;
      this.heldRecords.shift();
      if (n !== seq && !this.isKnown(n)) this.emit(link, held.measurement, held.bytes, held.context);
    }
    if (this.isKnown(seq)) {
      this.duplicates += 1;
      return;
    }
    const conc = m.concentration;
    const mgPerDl = usableMgPerDl(m);
    this.handed.add(seq);
    const wall = wallClockOf(m);
    if (this.highest === undefined || meterRecordAfter(seq, this.highest, this.meterRecordBits)) {
      this.highest = seq;
      this.highestClock = wall;
    }
    if (mgPerDl === undefined) {
      this.quarantine(link, GLUCOSE_MEASUREMENT_UUID, bytes, new DecodeError('ble-glucose-measurement', `record ${seq} has no usable glucose concentration (${conc ? conc.value.kind : 'absent'})`));
      return;
    }
    const tDevice = this.deps.clock.now();
    const placement: MeterTimePlacement = { receivedAtMs: tDevice };
    if (this.lastRecordTime !== undefined) placement.previousRecordMs = this.lastRecordTime;
    if (this.lastTransferAt !== undefined) placement.lastTransferMs = this.lastTransferAt;
    const time = m.measuredAtMs !== undefined ? meterTime(m.measuredAtMs, this.meterClock, placement) : undefined;
    this.lastRecordTime = time?.tMeter;
    const reading = this.reading(m, c, mgPerDl, tDevice, time?.context);
    if (time !== undefined) reading.tMeter = time.tMeter;
    this.records += 1;
    if (this.restartNotice !== undefined) {
      this.restartNotice = undefined;
      this.sink.notice?.({ sensor: this.sensor, ...METER_NUMBERING_RESTARTED });
    }
    this.sink.reading(reading);
    const p = this.progress;
    if (p && (this.records - p.before) % PROGRESS_EVERY === 0) this.setDetail(`backfill ${this.records - p.before}/${p.expected ?? '?'}`);
  }

  /** The reading context of this record's numbering: the meter, and the epoch after a restart. */
  private numberingContext(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.meter !== undefined) out[METER_NUMBERING_CONTEXT.meter] = this.meter.address;
    if (this.meter?.serial !== undefined) out[METER_NUMBERING_CONTEXT.serial] = this.meter.serial;
    if (this.epoch !== undefined) out[METER_NUMBERING_CONTEXT.epoch] = this.epoch;
    return out;
  }
}

/** A measurement's concentration in mg/dL (mol/L converted), undefined when it has none usable (absent, NaN, NRes, ±INF). */
function usableMgPerDl(m: GlucoseMeasurement): number | undefined {
  const conc = m.concentration;
  const mgPerDl = conc?.mgPerDl ?? (conc?.mmolPerL !== undefined ? conc.mmolPerL * MMOL_TO_MG_PER_DL : undefined);
  return conc === undefined || mgPerDl === undefined || finiteValue(conc.value) === undefined ? undefined : mgPerDl;
}

/** The key a driver remembers a meter by: its serial when it told one, else its address. */
function meterKey(meter: MeterIdentity): string {
  return meter.serial !== undefined ? `sn:${meter.serial}` : meter.address;
}

/** The reading context of a measurement and its optional Glucose Measurement Context. */
export function glucoseContext(m: GlucoseMeasurement, c: GlucoseMeasurementContext | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.concentration) {
    out.sampleType = m.concentration.type.name;
    out.sampleLocation = m.concentration.sampleLocation.name;
  }
  if (m.sensorStatus && m.sensorStatus.bits !== 0) {
    out.sensorStatus = Object.entries(m.sensorStatus)
      .filter(([k, v]) => k !== 'bits' && v === true)
      .map(([k]) => k)
      .join(',');
  }
  if (!c) return out;
  if (c.meal) out.meal = c.meal.name;
  if (c.carbohydrate) {
    out.carbohydrate = c.carbohydrate.id.name;
    if (c.carbohydrate.grams !== undefined) out.carbohydrateGrams = String(c.carbohydrate.grams);
  }
  if (c.testerHealth) {
    out.tester = c.testerHealth.tester.name;
    out.health = c.testerHealth.health.name;
  }
  if (c.exercise) {
    out.exerciseSeconds = String(c.exercise.durationSeconds);
    out.exerciseIntensityPercent = String(c.exercise.intensityPercent);
  }
  if (c.medication) {
    out.medication = c.medication.id.name;
    if (c.medication.milligrams !== undefined) out.medicationMg = String(c.medication.milligrams);
    if (c.medication.millilitres !== undefined) out.medicationMl = String(c.medication.millilitres);
  }
  if (c.hba1c) {
    const v = finiteValue(c.hba1c);
    if (v !== undefined) out.hba1cPercent = String(v);
  }
  return out;
}

export const BLE_GLUCOSE_METER_DRIVER: DriverDescriptor<BleGlucoseMeterOptions> = {
  name: 'ble-glucose-meter',
  kind: 'glucose-meter',
  transport: 'ble',
  description: 'Bluetooth glucose meter (Glucose Service 0x1808): RACP backfill that resumes after a disconnect, each record stored once',
  optionsSchema: {
    type: 'object',
    properties: {
      ...BLE_CONNECTION_SCHEMA_PROPERTIES,
      pollIntervalMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
      racpTimeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 },
    },
    additionalProperties: false,
  },
  defaults: DEFAULT_BLE_GLUCOSE_METER_OPTIONS,
  create: (sensor, options, deps) => new BleGlucoseMeterDriver(sensor, options, deps),
};
