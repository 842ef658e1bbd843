/**
 * A simulated Bluetooth glucose meter (Glucose Service 0x1808): stored records served through the
 * Record Access Control Point, with the faults a collector must survive.
 *
 * Characteristics: 0x2A18 Glucose Measurement (notify), 0x2A34 Glucose Measurement Context
 * (notify), 0x2A51 Glucose Feature (read), 0x2A52 RACP (write + indicate). Encoded with the codecs in
 * device-sdk/protocols/ble (GLS 1.0 §3; byte layouts in shared/specs/ble-health-profiles.md §3.2-3.5).
 *
 * The meter's clock is a wall clock set to `timeZone` (IANA, default UTC; DST followed as a meter set by
 * the patient would be): record Base Times are that wall clock, no zone, as GLS sends them. With
 * `currentTimeService` (default on) the meter also offers the Current Time Service 0x1805: Current Time
 * 0x2A2B (read: its clock now, the clock faults included, with 1/256 s; notify: when `setClock` sets it) and, with
 * `localTimeInformation` (default on), Local Time Information 0x2A0F (the zone's UTC offset now, as
 * time zone + DST). The wall clock is computed here from the zone with `Intl` (UTC → local, the
 * direction a clock shows), not with the collector's local → UTC conversion.
 *
 * RACP (GLS §3.6 / shared spec §3.5) as served here:
 * - `report-stored-records` with operators all, ≤, ≥, within range, first, last; filter sequence
 *   number (0x01) or user-facing time (0x02, the record's base time + offset). Matching records are
 *   notified in sequence order (each 0x2A18, then 0x2A34 when it has a context), then the indication
 *   `06 00 01 01`; nothing matching: `06 00 01 06`.
 * - `report-number-of-stored-records`: `05 00 <uint16>`. `delete-stored-records`: removes, `06 00 02 01`.
 * - `abort-operation`: stops a transfer after the record being sent; answered `06 00 03 01`.
 * - A request other than abort while a procedure runs (from the write until its last indication, and after a link
 *   loss for `faults.busyAfterDisconnectMs`): the write is refused with ATT error 0x80 "procedure already in
 *   progress" (GLS 1.0 application error; `protocols/ble/att-error.ts`), which the simulated BlueZ reports as
 *   `org.bluez.Error.Failed` "Operation failed with ATT error: 0x80" as BlueZ does; with `racpBusyAnswer:
 *   'response-code'`, the way some meters do instead: `06 00 <op> 08` (procedure not completed). A malformed
 *   request: the response value the codec's `RacpRequestError` names. A write while RACP indications are off:
 *   ATT error 0x81 (GLS: Client Characteristic Configuration Descriptor improperly configured).
 *
 * - Operators and filter types the meter does not claim (`racpOperators`, `racpFilterTypes`; default all six
 *   operators and both Glucose filter types): `06 00 <op> 04` (operator not supported) and `06 00 <op> 09`
 *   (operand not supported: GLS answers a filter type it does not support so), as a meter that implements
 *   only part of RACP does. Within range matches `from ≤ key ≤ to`, inclusive (shared spec §3.5); a range whose
 *   from is above its to is an invalid operand (`06 00 <op> 05`).
 *
 * Device Information Service 0x180A (`deviceInformation`; `false` leaves the service out): Manufacturer Name
 * 0x2A29, Model Number 0x2A24, Serial Number 0x2A25 and Firmware Revision 0x2A26 (read, UTF-8 text, DIS 1.1);
 * a field set to undefined is left out of the GATT table. By default the serial is `SGM-` and the address's
 * hex digits, so two simulated meters differ by serial as they do by address. `faults.serialNumberRefused`
 * fails the serial read with an error reply.
 *
 * `clearMemory()`: the memory cleared or the meter reset; its record numbers start again at 1. `deleteRecords()`:
 * records deleted on the meter (from its menu, or a full memory): its counter goes on (GLS §3.6.1.2: the next record
 * is numbered after the last one written, not after the last one kept), as after a RACP delete.
 *
 * Faults (`meter.faults`, mutable at any time):
 * - `disconnectAfterRecords`: entries consumed in order, each by the next transfer that has at least that
 *   many records to send: the link drops after that many records of it were notified (the completion
 *   indication is never sent). A shorter transfer (one record asked for by number, the last record) is
 *   not cut and leaves the entry to the next.
 * - `duplicateEvery`: every n-th notification is sent twice. `notifyDelayMs`, `responseDelayMs`: a slow meter.
 * - `reorderEvery`: every n-th record of a transfer is sent after the record that follows it (a meter
 *   that sends its memory order, not its numbering).
 * - `racpUnanswered`: report requests with these operators get no answer at all (a broken meter).
 * - `serialNumberReads`: the next Serial Number String reads answer these strings, one each, in order (a
 *   corrupted or flaky read; `SIM_SERIAL_REFUSED`: that read refused); then the meter's own serial again.
 * - `clockSkewMs`: the meter clock is off by this much for every record; `clockJump`: from record
 *   `atSequence` on, the meter clock is off by a further `byMs` (someone set the clock); the Current
 *   Time shows both. `currentTimeRaw`: the Current Time read answers these bytes instead;
 *   `currentTimeRefused`: it fails with an error reply.
 */
import { mulberry32 } from '../../device-sdk/random.js';
import { scaledValue } from '../../device-sdk/protocols/ieee11073.js';
import {
  encodeGlucoseFeature,
  encodeGlucoseMeasurement,
  encodeGlucoseMeasurementContext,
  GLUCOSE_FEATURE_UUID,
  GLUCOSE_MEASUREMENT_CONTEXT_UUID,
  GLUCOSE_MEASUREMENT_UUID,
  type GlucoseMealName,
} from '../../device-sdk/protocols/ble/glucose.js';
import { decodeRacpRequest, encodeRacpResponse, RACP_UUID, type RacpOperatorName, type RacpRequest, RacpRequestError } from '../../device-sdk/protocols/ble/racp.js';
import type { DeviceInformation } from '../../device-sdk/protocols/ble/device-information.js';
import { DecodeError } from '../../device-sdk/errors.js';
import { RACP_CCCD_IMPROPERLY_CONFIGURED, RACP_PROCEDURE_ALREADY_IN_PROGRESS } from '../../device-sdk/protocols/ble/att-error.js';
import { bluezAttErrorReply } from './dbus-objects.js';
import type { BleDateTimeFields } from '../../device-sdk/protocols/ble/date-time.js';
import { CURRENT_TIME_SERVICE_UUID, CURRENT_TIME_UUID, encodeCurrentTime, encodeLocalTimeInformation, LOCAL_TIME_INFORMATION_UUID } from '../../device-sdk/protocols/ble/current-time.js';
import type { SimServiceSpec } from './bluez.js';
import { delay, SimPeripheralBase, type SimPeripheralFaults, type SimSerialNumberFaults, simDeviceInformationService } from './peripheral.js';

export const GLUCOSE_SERVICE_UUID = 0x1808;

const MEAL_CODES: Readonly<Record<GlucoseMealName, number>> = Object.freeze({ preprandial: 1, postprandial: 2, fasting: 3, casual: 4, bedtime: 5 });

export interface SimGlucoseRecord {
  /** uint16 record number on the meter. */
  sequenceNumber: number;
  /** True time of the measurement (ms, UTC); what the meter reports adds the clock faults. */
  timeMs: number;
  mgPerDl: number;
  /** When set, a Glucose Measurement Context with the meal follows the measurement. */
  meal?: GlucoseMealName;
  /** Carbohydrate in grams (sent in the context, as kg per the SIG definition). */
  carbohydrateGrams?: number;
  /** Sent without a date: Base Time all zero (year 0, not known; GLS §3.106), as a meter whose clock was never set. */
  undated?: boolean;
}

export interface SimGlucoseMeterFaults extends SimPeripheralFaults, SimSerialNumberFaults {
  disconnectAfterRecords: number[];
  clockSkewMs: number;
  clockJump: { atSequence: number; byMs: number } | undefined;
  /** Slow meter: wait this long before each RACP indication (ms). */
  responseDelayMs: number;
  /** Every n-th record of a transfer is sent after the one that follows it (0 = in sequence order). */
  reorderEvery: number;
  /** A Current Time read answers these bytes instead of the clock (bad-bytes tests). */
  currentTimeRaw: Uint8Array | undefined;
  /** A Current Time read fails (an error reply, as a meter that shows its clock to bonded collectors only). */
  currentTimeRefused: boolean;
  /** RACP report requests with these operators are never answered (no record, no indication): a broken meter. */
  racpUnanswered: SimRacpOperator[];
  /**
   * After a link loss the meter takes its procedure for still running this long (ms; 0 = it stops at once): a RACP
   * request other than abort on the next link is refused as "already in progress" (`racpBusyAnswer`) until an
   * abort or the time is up.
   */
  busyAfterDisconnectMs: number;
}

/** RACP report/count operators (all but null) and Glucose filter types. */
export type SimRacpOperator = Exclude<RacpOperatorName, 'null'>;
export type SimRacpFilterType = 'sequence-number' | 'user-facing-time';

export interface SimGlucoseMeterOptions {
  address: string;
  name: string;
  /** Records stored at start; when absent, `storedRecords` are generated. */
  records?: readonly SimGlucoseRecord[];
  storedRecords: number;
  seed: number;
  /** Time of the first generated record (ms, UTC). */
  firstRecordMs: number;
  /** Time between generated records. */
  recordIntervalMs: number;
  /** Every n-th generated record carries a context (meal); 0 = none. */
  contextEvery: number;
  /** The meter sends base time and this offset (minutes), as meters with a user-set clock do. */
  timeOffsetMinutes: number;
  /** The zone the meter's clock is set to (IANA name). */
  timeZone: string;
  /** Offer the Current Time Service (Current Time 0x2A2B). */
  currentTimeService: boolean;
  /** With the Current Time Service, also Local Time Information 0x2A0F. */
  localTimeInformation: boolean;
  /** The Device Information Service strings (a field set to undefined is left out); false: no such service. Default: see the module comment. */
  deviceInformation: DeviceInformation | false;
  /** The RACP operators the meter supports (report, delete, count); others are answered "operator not supported". */
  racpOperators: readonly SimRacpOperator[];
  /** The RACP filter types the meter supports; others are answered "operand not supported". */
  racpFilterTypes: readonly SimRacpFilterType[];
  /** How a request during a procedure is refused: an ATT error 0x80 to the write (GLS 1.0), or `06 00 <op> 08` (procedure not completed). */
  racpBusyAnswer: 'att-error' | 'response-code';
  faults: Partial<SimGlucoseMeterFaults>;
}

export const DEFAULT_SIM_GLUCOSE_METER_OPTIONS: Readonly<Omit<SimGlucoseMeterOptions, 'address' | 'records' | 'faults' | 'deviceInformation'>> = Object.freeze({
  name: 'medge sim glucose meter',
  storedRecords: 0,
  seed: 1,
  firstRecordMs: Date.UTC(2026, 0, 1, 7, 0, 0),
  recordIntervalMs: 4 * 3600_000,
  contextEvery: 3,
  timeOffsetMinutes: 0,
  timeZone: 'UTC',
  currentTimeService: true,
  localTimeInformation: true,
  racpOperators: Object.freeze(['all', 'less-or-equal', 'greater-or-equal', 'within-range', 'first', 'last'] as const),
  racpFilterTypes: Object.freeze(['sequence-number', 'user-facing-time'] as const),
  racpBusyAnswer: 'att-error',
});

/** The Device Information a simulated meter at `address` tells unless given another. */
export function defaultSimMeterInformation(address: string): DeviceInformation {
  return { manufacturer: 'medge simulated devices', model: 'SGM-1', serial: `SGM-${address.replace(/:/g, '').toUpperCase()}`, firmware: '1.4.2' };
}

export interface SimGlucoseMeterStats {
  /** RACP report-stored-records procedures started. */
  transfers: number;
  /** Transfers that ended with the completion indication. */
  completed: number;
  /** Transfers cut by a `disconnectAfterRecords` fault. */
  cut: number;
  /** Transfers stopped by an abort request. */
  aborted: number;
  /** RACP requests refused as "procedure already in progress" (ATT 0x80 or `06 00 <op> 08`). */
  busy: number;
  /** Glucose Measurement records notified (duplicates of the fault not counted). */
  recordsSent: number;
  /** RACP report-stored-records requests by operator (answered with records or not). */
  reports: Partial<Record<SimRacpOperator, number>>;
}

const MEALS: readonly GlucoseMealName[] = ['preprandial', 'postprandial', 'fasting', 'casual', 'bedtime'];

function dateTimeFields(ms: number): BleDateTimeFields {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hours: d.getUTCHours(), minutes: d.getUTCMinutes(), seconds: d.getUTCSeconds() };
}

/** What a clock set to `zone` shows at the instant `utcMs`, as ms whose UTC fields are that wall clock (ms kept). */
function wallClockIn(zone: string, utcMs: number): number {
  const parts: Record<string, number> = {};
  const format = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  for (const p of format.formatToParts(new Date(utcMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day as number, parts.hour as number, parts.minute as number, parts.second as number) + (((utcMs % 1000) + 1000) % 1000);
}

/** A RACP filter value as compared with a record: a sequence number, or a user-facing time's instant (NaN when incomplete). */
function rangeKey(v: unknown): number {
  return typeof v === 'number' ? v : ((v as { epochMs?: number }).epochMs ?? Number.NaN);
}

export class SimGlucoseMeter extends SimPeripheralBase {
  readonly services: readonly SimServiceSpec[];
  readonly faults: SimGlucoseMeterFaults;
  readonly stats: SimGlucoseMeterStats = { transfers: 0, completed: 0, cut: 0, aborted: 0, busy: 0, recordsSent: 0, reports: {} };
  private readonly options: Omit<SimGlucoseMeterOptions, 'faults' | 'deviceInformation'>;
  /** What the Device Information Service tells (see `deviceInformation`); false: no such service. */
  readonly deviceInformation: Readonly<DeviceInformation> | false;
  private readonly stored: SimGlucoseRecord[];
  /** The number of the last record written (the counter: deleting records does not set it back; `clearMemory` does). */
  private lastWritten: number;
  private transfer: { abort: boolean } | undefined;
  /** RACP procedures written and not yet answered by their last indication. */
  private procedures = 0;
  /** Until when (ms, this process's clock) a procedure cut by a link loss still counts as running (`busyAfterDisconnectMs`). */
  private staleUntil = 0;
  /** The last error of a RACP procedure (a bug in the simulator, not a fault): tests assert it stays undefined. */
  lastError: unknown;

  constructor(options: Partial<SimGlucoseMeterOptions> & { address: string }) {
    const o = { ...DEFAULT_SIM_GLUCOSE_METER_OPTIONS, ...options };
    super(o.address, o.name);
    this.options = o;
    this.faults = {
      duplicateEvery: 0,
      notifyDelayMs: 0,
      disconnectAfterRecords: [],
      clockSkewMs: 0,
      clockJump: undefined,
      responseDelayMs: 0,
      reorderEvery: 0,
      currentTimeRaw: undefined,
      currentTimeRefused: false,
      serialNumberRefused: false,
      racpUnanswered: [],
      serialNumberReads: [],
      busyAfterDisconnectMs: 0,
      ...options.faults,
    };
    this.deviceInformation = options.deviceInformation === false ? false : Object.freeze({ ...(options.deviceInformation ?? defaultSimMeterInformation(o.address)) });
    const dis = this.deviceInformation;
    this.stored = options.records ? options.records.map((r) => ({ ...r })) : this.generate(o.storedRecords);
    this.lastWritten = this.stored.at(-1)?.sequenceNumber ?? 0;
    this.services = [
      {
        uuid: GLUCOSE_SERVICE_UUID,
        characteristics: [
          { uuid: GLUCOSE_MEASUREMENT_UUID, flags: ['notify'] },
          { uuid: GLUCOSE_MEASUREMENT_CONTEXT_UUID, flags: ['notify'] },
          // low battery, malfunction, sample size, strip insertion, strip type, result high/low, temperature, read interrupt, time fault
          { uuid: GLUCOSE_FEATURE_UUID, flags: ['read'], onRead: () => encodeGlucoseFeature({ bits: 0x02ff }) },
          { uuid: RACP_UUID, flags: ['write', 'indicate'], onWrite: (bytes) => this.onRacpWrite(bytes) },
        ],
      },
      ...(o.currentTimeService
        ? [
            {
              uuid: CURRENT_TIME_SERVICE_UUID,
              characteristics: [
                // CTS 1.1 §3.1: Current Time is read and notify (a notification when the clock is set: `setClock`).
                { uuid: CURRENT_TIME_UUID, flags: ['read', 'notify'] as const, onRead: () => this.currentTimeBytes() },
                ...(o.localTimeInformation ? [{ uuid: LOCAL_TIME_INFORMATION_UUID, flags: ['read'] as const, onRead: () => this.localTimeBytes() }] : []),
              ],
            },
          ]
        : []),
      ...(dis !== false ? [simDeviceInformationService(dis, () => this.faults.serialNumberRefused, () => this.faults.serialNumberReads.shift())] : []),
    ];
  }

  /** The meter clock's present error against true time (ms): the skew, and a clock jump once set. */
  private clockErrorNow(): number {
    return this.faults.clockSkewMs + (this.faults.clockJump?.byMs ?? 0);
  }

  /** What the meter's clock shows now (ms whose UTC fields are its wall clock). */
  meterClockNow(nowMs: number = Date.now()): number {
    return wallClockIn(this.options.timeZone, nowMs + this.clockErrorNow());
  }

  /** Current Time 0x2A2B: the meter's wall clock now, with day of week, 1/256 s and the adjust reason (bit 0 manual update). */
  private currentTimeBytes(adjustReasonBits = 0): Uint8Array {
    if (this.faults.currentTimeRefused) throw new Error('Insufficient Authentication');
    if (this.faults.currentTimeRaw !== undefined) return Uint8Array.from(this.faults.currentTimeRaw);
    const wall = this.meterClockNow();
    const day = new Date(wall).getUTCDay();
    return encodeCurrentTime({ dateTime: dateTimeFields(wall), dayOfWeek: day === 0 ? 7 : day, fractions256: Math.floor(((wall % 1000) * 256) / 1000), adjustReason: { bits: adjustReasonBits } });
  }

  /**
   * The patient sets the meter's clock: from now on (and for the records measured from now on) it is off true
   * time by `errorMs` (0: right; it replaces a `clockJump`). A collector that enabled notifications on Current Time is notified, with the
   * adjust reason "manual update" (CTS 1.1 §3.1); true when it was. Records measured before keep their times.
   */
  async setClock(errorMs: number): Promise<boolean> {
    const next = (this.lastWritten + 1) & 0xffff;
    this.faults.clockJump = { atSequence: next, byMs: errorMs - this.faults.clockSkewMs };
    return this.notifyCurrentTime(1);
  }

  /** Notifies Current Time now (e.g. after `setClock`, or a time sync with `adjustReasonBits` 2, external reference); false when notifications are off. */
  notifyCurrentTime(adjustReasonBits = 0): Promise<boolean> {
    return this.isNotifying(CURRENT_TIME_UUID) ? this.notify(CURRENT_TIME_UUID, this.currentTimeBytes(adjustReasonBits)) : Promise.resolve(false);
  }

  /** Local Time Information 0x2A0F: the zone's UTC offset now, as standard time (15-min units) + DST. */
  private localTimeBytes(): Uint8Array {
    const now = Date.now();
    const offsetMin = Math.round((wallClockIn(this.options.timeZone, now) - now) / 60_000);
    // Standard time is the smaller of the offsets in January and July; the rest now is DST.
    const year = new Date(now).getUTCFullYear();
    const jan = Date.UTC(year, 0, 1);
    const jul = Date.UTC(year, 6, 1);
    const standard = Math.min(Math.round((wallClockIn(this.options.timeZone, jan) - jan) / 60_000), Math.round((wallClockIn(this.options.timeZone, jul) - jul) / 60_000));
    const dst = offsetMin - standard;
    return encodeLocalTimeInformation({ timeZone: Math.round(standard / 15), dstOffset: dst === 0 ? 0 : dst === 30 ? 2 : dst === 60 ? 4 : dst === 120 ? 8 : 255 });
  }

  private generate(n: number): SimGlucoseRecord[] {
    const random = mulberry32(this.options.seed);
    const out: SimGlucoseRecord[] = [];
    for (let i = 0; i < n; i++) out.push(this.makeRecord(i + 1, this.options.firstRecordMs + i * this.options.recordIntervalMs, random));
    return out;
  }

  private makeRecord(sequenceNumber: number, timeMs: number, random: () => number): SimGlucoseRecord {
    const mgPerDl = Math.round(70 + random() * 160);
    const r: SimGlucoseRecord = { sequenceNumber, timeMs: Math.floor(timeMs / 1000) * 1000, mgPerDl };
    const every = this.options.contextEvery;
    if (every > 0 && sequenceNumber % every === 0) {
      r.meal = MEALS[sequenceNumber % MEALS.length] as GlucoseMealName;
      r.carbohydrateGrams = 20 + Math.round(random() * 60);
    }
    return r;
  }

  /** The records the meter holds, in sequence order (copies). */
  get records(): SimGlucoseRecord[] {
    return this.stored.map((r) => ({ ...r }));
  }

  /**
   * The meter's memory cleared, or the meter reset (a battery pulled, a factory reset from its menu): every
   * stored record is gone and the record numbers start again, the next `addRecord` being number 1. The
   * address stays; a replaced meter is another `SimGlucoseMeter` with its own address.
   */
  clearMemory(): void {
    this.stored.length = 0;
    this.lastWritten = 0;
  }

  /** Records deleted on the meter (from its menu, or to make room): gone from its memory; the next record is still numbered after the last one written. */
  deleteRecords(...sequenceNumbers: number[]): void {
    const gone = new Set(sequenceNumbers);
    for (let i = this.stored.length - 1; i >= 0; i--) if (gone.has((this.stored[i] as SimGlucoseRecord).sequenceNumber)) this.stored.splice(i, 1);
  }

  /** A new measurement on the meter: the next sequence number, now (or `timeMs`). Returns it. */
  addRecord(input: { mgPerDl: number; timeMs?: number; meal?: GlucoseMealName; carbohydrateGrams?: number; undated?: boolean }): SimGlucoseRecord {
    this.lastWritten = (this.lastWritten + 1) & 0xffff;
    const record: SimGlucoseRecord = { sequenceNumber: this.lastWritten, timeMs: Math.floor((input.timeMs ?? Date.now()) / 1000) * 1000, mgPerDl: input.mgPerDl };
    if (input.undated === true) record.undated = true;
    if (input.meal !== undefined) record.meal = input.meal;
    if (input.carbohydrateGrams !== undefined) record.carbohydrateGrams = input.carbohydrateGrams;
    this.stored.push(record);
    return record;
  }

  /** The time the meter reports for `record`: its wall clock in its zone, faults applied (ms whose UTC fields are that wall clock). */
  meterTimeOf(record: SimGlucoseRecord): number {
    const jump = this.faults.clockJump;
    return wallClockIn(this.options.timeZone, record.timeMs + this.faults.clockSkewMs + (jump && record.sequenceNumber >= jump.atSequence ? jump.byMs : 0));
  }

  /**
   * The UTC time (ms) a collector without a configured zone should give `record`: with the Current
   * Time Service, its wall clock less the meter clock's present offset from true time (zone, DST and
   * clock faults as they are now); without it, the wall clock read as UTC (zone unknown).
   */
  collectorTimeOf(record: SimGlucoseRecord, nowMs: number = Date.now()): number {
    const wall = this.meterTimeOf(record);
    return this.options.currentTimeService ? wall - (this.meterClockNow(nowMs) - nowMs) : wall;
  }

  /** The 0x2A18 bytes of `record` (and 0x2A34 bytes when it has a context). */
  encodeRecord(record: SimGlucoseRecord): { measurement: Uint8Array; context?: Uint8Array } {
    const hasContext = record.meal !== undefined || record.carbohydrateGrams !== undefined;
    const offset = this.options.timeOffsetMinutes;
    const measurement = encodeGlucoseMeasurement({
      sequenceNumber: record.sequenceNumber,
      baseTime: record.undated === true ? { year: 0, month: 0, day: 0, hours: 0, minutes: 0, seconds: 0 } : dateTimeFields(this.meterTimeOf(record) - offset * 60_000),
      ...(offset !== 0 && record.undated !== true ? { timeOffsetMinutes: offset } : {}),
      units: 'kg/L',
      // mg/dL = kg/L x 100,000: an integer mg/dL is mantissa mg/dL, exponent -5 (0xB078 for 120).
      concentration: { value: { kind: 'number', value: scaledValue(Math.round(record.mgPerDl), -5), mantissa: Math.round(record.mgPerDl), exponent: -5 }, type: { code: 1 }, sampleLocation: { code: 1 } },
      contextFollows: hasContext,
    });
    if (!hasContext) return { measurement };
    const context = encodeGlucoseMeasurementContext({
      sequenceNumber: record.sequenceNumber,
      medicationUnits: 'kg',
      ...(record.carbohydrateGrams !== undefined
        ? { carbohydrate: { id: { code: 1 }, amount: { kind: 'number' as const, value: scaledValue(Math.round(record.carbohydrateGrams), -3), mantissa: Math.round(record.carbohydrateGrams), exponent: -3 } } }
        : {}),
      ...(record.meal !== undefined ? { meal: { code: MEAL_CODES[record.meal] } } : {}),
    });
    return { measurement, context };
  }

  onDisconnect(): void {
    if (this.procedures > 0 && this.faults.busyAfterDisconnectMs > 0) this.staleUntil = Date.now() + this.faults.busyAfterDisconnectMs;
    if (this.transfer) this.transfer.abort = true;
  }

  /** Whether a RACP procedure runs (GLS §3.6.2: from the request until its last indication; see `busyAfterDisconnectMs`). */
  private get procedureRunning(): boolean {
    return this.procedures > 0 || this.transfer !== undefined || Date.now() < this.staleUntil;
  }

  private async indicate(bytes: Uint8Array): Promise<void> {
    await delay(this.faults.responseDelayMs);
    await this.notify(RACP_UUID, bytes);
  }

  private respond(requestOpCode: number, responseCode: number): Promise<void> {
    return this.indicate(encodeRacpResponse({ opCode: 'response-code', requestOpCode: { code: requestOpCode }, responseCode: { code: responseCode } }));
  }

  private onRacpWrite(bytes: Uint8Array): void {
    if (!this.isNotifying(RACP_UUID)) throw bluezAttErrorReply(RACP_CCCD_IMPROPERLY_CONFIGURED.glucose);
    const abort = bytes[0] === 3;
    if (!abort && this.procedureRunning) {
      this.stats.busy += 1;
      if (this.options.racpBusyAnswer === 'att-error') throw bluezAttErrorReply(RACP_PROCEDURE_ALREADY_IN_PROGRESS.glucose);
      setImmediate(() => void this.respond(bytes[0] ?? 0, 8).catch((error: unknown) => (this.lastError = error)));
      return;
    }
    if (!abort) this.procedures += 1;
    // Answer after the write response, as a meter does.
    setImmediate(
      () =>
        void this.handleRacp(bytes)
          .catch((error: unknown) => (this.lastError = error))
          .finally(() => {
            if (!abort) this.procedures -= 1;
          }),
    );
  }

  private async handleRacp(bytes: Uint8Array): Promise<void> {
    let request: RacpRequest;
    try {
      request = decodeRacpRequest(bytes, { service: 'glucose' });
    } catch (error) {
      if (error instanceof RacpRequestError) return this.respond(error.requestOpCode, error.responseCode);
      if (error instanceof DecodeError) return this.respond(bytes[0] ?? 0, 2);
      throw error;
    }
    if (request.opCode === 'abort-operation') {
      this.staleUntil = 0;
      if (this.transfer) this.transfer.abort = true;
      return this.respond(3, 1);
    }
    const opCode = { 'report-stored-records': 1, 'delete-stored-records': 2, 'report-number-of-stored-records': 4 }[request.opCode];
    if (request.opCode === 'report-stored-records') this.stats.reports[request.operator] = (this.stats.reports[request.operator] ?? 0) + 1;
    if (request.opCode === 'report-stored-records' && this.faults.racpUnanswered.includes(request.operator)) return;
    // What this meter claims (GLS §3.6.2 / shared spec §3.5 response values): an operator it does not do is
    // "operator not supported" (4), a filter type it does not do "operand not supported" (9).
    if (!this.options.racpOperators.includes(request.operator)) return this.respond(opCode, 4);
    if ('filter' in request && !this.options.racpFilterTypes.includes(request.filter.type as SimRacpFilterType)) return this.respond(opCode, 9);
    if (request.operator === 'within-range' && !(rangeKey(request.filter.from) <= rangeKey(request.filter.to))) return this.respond(opCode, 5);
    const selected = this.select(request);
    if (request.opCode === 'report-number-of-stored-records') return this.indicate(encodeRacpResponse({ opCode: 'number-of-stored-records-response', count: selected.length }));
    if (request.opCode === 'delete-stored-records') {
      const gone = new Set(selected.map((r) => r.sequenceNumber));
      for (let i = this.stored.length - 1; i >= 0; i--) if (gone.has((this.stored[i] as SimGlucoseRecord).sequenceNumber)) this.stored.splice(i, 1);
      return this.respond(2, selected.length > 0 ? 1 : 6);
    }
    if (selected.length === 0) return this.respond(1, 6);
    await this.sendRecords(selected);
  }

  private async sendRecords(selected: readonly SimGlucoseRecord[]): Promise<void> {
    const records = [...selected];
    const every = this.faults.reorderEvery;
    for (let i = every - 1; every > 0 && i + 1 < records.length; i += every) [records[i], records[i + 1]] = [records[i + 1] as SimGlucoseRecord, records[i] as SimGlucoseRecord];
    const transfer = { abort: false };
    this.transfer = transfer;
    this.stats.transfers += 1;
    const next = this.faults.disconnectAfterRecords[0];
    const cutAfter = next !== undefined && records.length >= next ? this.faults.disconnectAfterRecords.shift() : undefined;
    try {
      let sent = 0;
      for (const record of records) {
        if (transfer.abort) break;
        if (cutAfter !== undefined && sent >= cutAfter) {
          this.stats.cut += 1;
          await this.dropLink();
          return;
        }
        const { measurement, context } = this.encodeRecord(record);
        if (!(await this.notify(GLUCOSE_MEASUREMENT_UUID, measurement))) return; // link gone or notifications off
        if (context) await this.notify(GLUCOSE_MEASUREMENT_CONTEXT_UUID, context);
        sent += 1;
        this.stats.recordsSent += 1;
      }
      if (transfer.abort) {
        this.stats.aborted += 1;
        return;
      }
      if (cutAfter !== undefined && sent >= cutAfter) {
        this.stats.cut += 1;
        await this.dropLink();
        return;
      }
      this.stats.completed += 1;
      await this.respond(1, 1);
    } finally {
      this.transfer = undefined;
    }
  }

  private select(request: Exclude<RacpRequest, { opCode: 'abort-operation' }>): SimGlucoseRecord[] {
    const all = [...this.stored].sort((a, b) => a.sequenceNumber - b.sequenceNumber);
    const key = (r: SimGlucoseRecord, type: string) => (type === 'sequence-number' ? r.sequenceNumber : this.meterTimeOf(r));
    const num = rangeKey;
    switch (request.operator) {
      case 'all':
        return all;
      case 'first':
        return all.slice(0, 1);
      case 'last':
        return all.slice(-1);
      case 'less-or-equal':
        return all.filter((r) => key(r, request.filter.type) <= num(request.filter.value));
      case 'greater-or-equal':
        return all.filter((r) => key(r, request.filter.type) >= num(request.filter.value));
      case 'within-range':
        return all.filter((r) => key(r, request.filter.type) >= num(request.filter.from) && key(r, request.filter.type) <= num(request.filter.to));
    }
  }
}
