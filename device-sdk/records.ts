import { METER_TIME_CONTEXT } from './sensors/meter-time.js';

/**
 * The record kinds that the device ledger keeps and the sync layer delivers, in uplink priority
 * order: on a thin link alerts go first and raw waveform last.
 */
export const RECORD_KINDS = ['alert', 'finding', 'reading', 'quarantine', 'chunk'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Kinds that are never evicted while unsynced (see the eviction order in `store/README.md`). */
export const CLINICAL_KINDS: readonly RecordKind[] = Object.freeze(['alert', 'finding', 'reading', 'quarantine']);

export function isRecordKind(value: string): value is RecordKind {
  return (RECORD_KINDS as readonly string[]).includes(value);
}

/** A block of samples of one channel of one sensor. `t0` is the device clock (ms) of the first sample. */
export interface StreamChunk {
  sensor: string;
  channel: number;
  /** Index of the first sample in this sensor channel's stream since the stream started. */
  firstSample: number;
  t0: number;
  rateHz: number;
  /** Physical unit of `samples / gain`, e.g. `mV`. */
  unit: string;
  /** ADC units per physical unit. */
  gain: number;
  samples: Int16Array;
  /**
   * The front end reported electrode contact lost on this channel during these samples (the stream
   * protocol's lead-off mask, §5.1, from a device whose INFO says the mask is meaningful). Absent
   * when it did not, or when it cannot tell: absence is not a report of contact.
   */
  leadOff?: true;
  /** The front end reported a sample of this channel at the ADC limit in this chunk (saturation mask, §5.1). */
  saturated?: true;
}

/** A discrete measurement: glucose, heart rate, ... */
export interface Reading {
  sensor: string;
  /** What was measured, e.g. `glucose`, `heart-rate`. */
  type: string;
  value: number;
  unit: string;
  /** Device clock when the reading was taken or received (ms). */
  tDevice: number;
  /** The meter's own clock (ms), when it reports one. */
  tMeter?: number;
  /** The meter's record number, for backfill and de-duplication. */
  meterRecord?: number;
  /** Free-form context: meal, sample location, ... */
  context?: Record<string, string>;
}

/**
 * Reading context keys of the numbering a meter's record number belongs to (device-sdk/sensors/ble-glucose-meter.ts).
 * `meter`: the meter's Bluetooth address (provenance; a replaced meter under the same sensor name numbers its
 * records from 1 again). `serial`: its serial number (Device Information Serial Number String 0x2A25), when it told
 * one: then the serial, not the address, is the meter (`MeterIdentity`). `epoch`: set when the same meter's numbers
 * were found to have started again (its memory cleared, or it was reset): when that was found (ISO 8601, this
 * device's clock); absent for a meter's first numbering.
 */
export const METER_NUMBERING_CONTEXT = Object.freeze({ meter: 'meter', serial: 'meterSerial', epoch: 'meterEpoch' } as const);

/**
 * A meter as a collector knows it on a link: its Bluetooth address, and its serial number when it told one. The
 * serial is the meter when known (a random address changes with a battery; two meters are told apart by it);
 * without one, the address is.
 */
export interface MeterIdentity {
  address: string;
  serial?: string;
}

/**
 * Whether a stored record's meter (`meter`: its address, `serial`) is `m`: the same serial when both have one, else
 * the same address. So a meter whose address changed is the same by its serial, another meter at the same address is
 * another by its serial, and records stored without a serial (older rows, a meter without one) go by the address.
 */
export function isSameMeter(stored: Pick<StoredMeterRecord, 'meter' | 'serial'>, m: MeterIdentity): boolean {
  if (stored.serial !== undefined && m.serial !== undefined) return stored.serial === m.serial;
  return stored.meter === m.address;
}

/**
 * The numbering of a reading's record number (`METER_NUMBERING_CONTEXT`): the meter (`sn:<serial>` when it told
 * its serial, else its address), then `@epoch` after a restart; undefined when its source names no meter.
 */
export function meterNumbering(r: Pick<Reading, 'context'>): string | undefined {
  const serial = r.context?.[METER_NUMBERING_CONTEXT.serial];
  const meter = serial !== undefined ? `sn:${serial}` : r.context?.[METER_NUMBERING_CONTEXT.meter];
  if (meter === undefined) return undefined;
  const epoch = r.context?.[METER_NUMBERING_CONTEXT.epoch];
  return epoch ? `${meter}@${epoch}` : meter;
}

/**
 * The meter's identity of a reading's record, unique per sensor: its record number, prefixed by its numbering
 * (`meterNumbering`: a replaced or reset meter numbers from 1 again) and by the sensor session start when the
 * meter has sessions (a CGM's time offsets restart with each sensor, `context.sessionStart`). Undefined without
 * a record number.
 */
export function meterRecordId(r: Pick<Reading, 'meterRecord' | 'context'>): string | undefined {
  if (r.meterRecord === undefined) return undefined;
  const prefix = [meterNumbering(r), r.context?.sessionStart].filter((p) => p);
  return [...prefix, String(r.meterRecord)].join('/');
}

/**
 * How many bits a meter's record counter has, which decides when its numbers start again at 0: a Bluetooth
 * glucose meter's Sequence Number (GLS §3.6.1.2) and a CGM's Time Offset are uint16; the serial line meter's
 * record number (firmware/sources/glucose-line-codec.ts) is a uint32 and never starts again at 65,536.
 * The source of the readings says which (`SensorDriver.meterRecordBits`, the simulated sources' own).
 */
export type MeterRecordBits = 16 | 32;

/** The width of a source that does not declare one: a wide counter, not wrapped at 65,536. */
export const DEFAULT_METER_RECORD_BITS: MeterRecordBits = 32;

/**
 * Whether meter record number `candidate` was written after `than` on a counter of `bits` bits, which counts
 * up by one per record and starts again at 0 after 2^bits - 1. Serial number arithmetic (RFC 1982): newer is
 * less than half the range (2^(bits-1)) ahead, modulo 2^bits. So on a Bluetooth meter (16 bits) 0 comes after
 * 65,535 and 65,535 is older than 2 (three records behind it); on a serial meter (32 bits) 3 is older than
 * 65,535 and 70,000 newer. Numbers exactly half the range apart are undefined by that rule: not newer. A number
 * outside 0..2^bits-1 is no record of such a counter (a number stored from another source under the same sensor
 * name): it is never newer, and every record number is newer than it.
 */
export function meterRecordAfter(candidate: number, than: number, bits: MeterRecordBits): boolean {
  const range = 2 ** bits;
  const isRecord = (n: number) => Number.isInteger(n) && n >= 0 && n < range;
  if (!isRecord(candidate)) return false;
  if (!isRecord(than)) return true;
  const ahead = (candidate - than + range) % range;
  return ahead !== 0 && ahead < range / 2;
}

/** The newer of two meter record numbers of a `bits`-bit counter (`meterRecordAfter`); undefined counts as none. */
export function newerMeterRecord(a: number | undefined, b: number | undefined, bits: MeterRecordBits): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return meterRecordAfter(a, b, bits) ? a : b;
}

/** The newest record stored of a meter's numbering (`MeterRecordBook.last`, `DriverDeps.lastMeterRecord`). */
export interface StoredMeterRecord {
  record: number;
  /** The address of the meter it came from (`context.meter`); absent for records stored without one (before meters were told apart). */
  meter?: string;
  /** That meter's serial number (`context.meterSerial`), when it told one. */
  serial?: string;
  /** Its numbering epoch (`context.meterEpoch`); absent for the meter's first numbering. */
  epoch?: string;
  /** Its meter wall clock as sent (`context.meterClock`), when it had one. */
  meterClock?: string;
}

/** One meter of a sensor in a `MeterRecordBook`: the newest record of its current numbering. */
interface BookMeter {
  /** Stable within the book (the key of its `seen` records), whatever address or serial it is found by later. */
  id: number;
  address: string | undefined;
  serial: string | undefined;
  newest: StoredMeterRecord | undefined;
}

/**
 * The newest meter record number stored per sensor and meter, in the order readings are stored: what a
 * meter's backfill resumes from. Each meter (`MeterIdentity`: its serial when it told one, else its address;
 * `isSameMeter`) has its own numbering; a reading of a new epoch of that meter (`context.meterEpoch`) starts it
 * again. A reading with a serial continues the meter of that serial, else the meter stored at its address without
 * a serial (rows stored before serials were read: the serial is then that meter's); a reading without a serial
 * continues the meter last stored at its address. Readings without a meter are one numbering per sensor (other
 * sources, and records stored before meters were told apart). `note` also says whether the same record was stored
 * before, so that a numbering found restarted by mistake stores its dated records once:
 * - a dated record (`context.meterClock`): the same meter, number and meter wall clock, in any epoch (on a sensor known
 *   by content, with the same content too: a meter whose clock stops at its factory default after a clear dates record 1
 *   of every numbering alike; QA round 2: 11 of 240 readings dropped over 12 resets);
 * - on the sensors whose records are known by content (`knownByContent`: the glucose meters), a record without a date
 *   (no meter clock: a meter whose clock was never set) or whose meter clock is no date (one that two numbers of the
 *   meter were stored with: a clock that does not run): the same meter, number and content (value, unit, type and
 *   every context field but the numbering's and the meter time's), in the same epoch only. In another epoch it is
 *   stored: a meter whose memory was cleared numbers from 1 again, and its new record may have the number and value
 *   of an old one (QA re-check: weekly clears of 30 undated readings lost 272 of 1,560 a year when that was taken
 *   for a repeat). So an undated record is stored twice when a numbering is begun by mistake; the driver tells a
 *   meter that deleted its newest records from a reset one before it begins one (`holdsAsSent`).
 * The runtime keeps one, and so does the test harness.
 */
export class MeterRecordBook {
  /** Per sensor, its meters, the one stored last at the end. */
  private readonly meters = new Map<string, BookMeter[]>();
  /**
   * `sensor|meter id|record|meterClock` of every record stored with a meter and a meter clock: the contents stored with
   * it on a sensor known by content (`recordContent`), else `''`.
   */
  private readonly seen = new Map<string, Set<string>>();
  /** `sensor|meter id|record` of every dated record stored with a meter: the epoch and meter clock of each. */
  private readonly dated = new Map<string, { epoch: string | undefined; clock: string }[]>();
  /** `sensor|meter id|meterClock`: the first record number stored with that clock, or null once another number was (a clock that does not run: no date). */
  private readonly clocks = new Map<string, number | null>();
  /** `sensor|meter id|record|content` of every record stored with a meter on a sensor known by content: the epochs it was stored in. */
  private readonly contents = new Map<string, Set<string | undefined>>();
  private nextId = 0;

  /**
   * `bitsOf`: a sensor's record counter width. `knownByContent`: whether a sensor's records without a date are known by
   * their content (the glucose meters; not a CGM, whose readings have no meter clock and would be kept one entry each
   * for the whole run: 40 MB a year at one every 5 min). Default: none.
   */
  constructor(
    private readonly bitsOf: (sensor: string) => MeterRecordBits,
    private readonly knownByContent: (sensor: string) => boolean = () => false,
  ) {}

  /** The meter of `sensor` that `address` and `serial` name (see the class comment); undefined when none is stored. */
  private find(sensor: string, address: string | undefined, serial: string | undefined): BookMeter | undefined {
    const meters = this.meters.get(sensor) ?? [];
    if (serial !== undefined) return meters.find((m) => m.serial === serial) ?? meters.find((m) => m.serial === undefined && address !== undefined && m.address === address);
    if (address === undefined) return meters.find((m) => m.address === undefined && m.serial === undefined);
    return meters.findLast((m) => m.address === address);
  }

  /** Whether `clock` is a date of `meter`'s records: no two numbers of it were stored with that clock. */
  private isDate(sensor: string, meter: BookMeter, clock: string): boolean {
    return this.clocks.get([sensor, meter.id, clock].join('|')) !== null;
  }

  /** Notes a stored reading; false when the same record of the same meter was noted before (see the class comment). */
  note(r: Pick<Reading, 'sensor' | 'meterRecord' | 'context'> & Partial<Pick<Reading, 'value' | 'unit' | 'type'>>): boolean {
    if (r.meterRecord === undefined) return true;
    const address = r.context?.[METER_NUMBERING_CONTEXT.meter];
    const serial = r.context?.[METER_NUMBERING_CONTEXT.serial];
    const epoch = r.context?.[METER_NUMBERING_CONTEXT.epoch];
    const meterClock = r.context?.[METER_TIME_CONTEXT.clock];
    let meters = this.meters.get(r.sensor);
    if (meters === undefined) this.meters.set(r.sensor, (meters = []));
    let meter = this.find(r.sensor, address, serial);
    meter ??= { id: this.nextId++, address, serial, newest: undefined };
    const named = address !== undefined || serial !== undefined;
    const clock = named ? meterClock : undefined;
    if (clock !== undefined) {
      const clockKey = [r.sensor, meter.id, clock].join('|');
      const first = this.clocks.get(clockKey);
      if (first === undefined) this.clocks.set(clockKey, r.meterRecord);
      else if (first !== null && first !== r.meterRecord) this.clocks.set(clockKey, null);
    }
    const content = named && this.knownByContent(r.sensor) ? recordContent(r) : undefined;
    const contentKey = content !== undefined ? [r.sensor, meter.id, r.meterRecord, content].join('|') : undefined;
    const datedContent = content ?? '';
    const seenKey = clock !== undefined ? [r.sensor, meter.id, r.meterRecord, clock].join('|') : undefined;
    if (clock !== undefined && seenKey !== undefined && this.isDate(r.sensor, meter, clock)) {
      if (this.seen.get(seenKey)?.has(datedContent) === true) return false;
    } else if (contentKey !== undefined && this.contents.get(contentKey)?.has(epoch) === true) {
      return false;
    }
    if (clock !== undefined && seenKey !== undefined) {
      this.seen.set(seenKey, (this.seen.get(seenKey) ?? new Set()).add(datedContent));
      const numbered = [r.sensor, meter.id, r.meterRecord].join('|');
      const before = this.dated.get(numbered) ?? [];
      before.push({ epoch, clock });
      this.dated.set(numbered, before);
    }
    if (contentKey !== undefined) this.contents.set(contentKey, (this.contents.get(contentKey) ?? new Set()).add(epoch));
    if (address !== undefined) meter.address = address; // a meter known by its serial may come back at another address
    if (serial !== undefined) meter.serial = serial;
    const previous = meter.newest;
    if (previous === undefined || previous.epoch !== epoch || meterRecordAfter(r.meterRecord, previous.record, this.bitsOf(r.sensor))) {
      const next: StoredMeterRecord = { record: r.meterRecord };
      if (address !== undefined) next.meter = address;
      if (serial !== undefined) next.serial = serial;
      if (epoch !== undefined) next.epoch = epoch;
      if (meterClock !== undefined) next.meterClock = meterClock;
      meter.newest = next;
    }
    // The meter stored last goes to the end.
    const at = meters.indexOf(meter);
    if (at >= 0) meters.splice(at, 1);
    meters.push(meter);
    return true;
  }

  /**
   * Whether record `record` of `meter` on `sensor` is stored with meter wall clock `meterClock` (as sent,
   * `context.meterClock`), in any epoch: a meter still holding it holds the memory it was stored from. False for a
   * clock that is no date (two numbers of the meter were stored with it: a clock that does not run). `like`: the record
   * as the meter sends it now; on a sensor known by content, it is held only with the same content (a meter whose clock
   * stops at its factory default after a clear dates record 1 of every numbering alike).
   */
  holds(sensor: string, meter: MeterIdentity, record: number, meterClock: string, like?: Pick<Reading, 'context'> & Partial<Pick<Reading, 'value' | 'unit' | 'type'>>): boolean {
    const found = this.find(sensor, meter.address, meter.serial);
    return found !== undefined && this.heldDated(sensor, found, record, meterClock, like);
  }

  private heldDated(sensor: string, found: BookMeter, record: number, meterClock: string, like: Parameters<MeterRecordBook['holds']>[4]): boolean {
    if (!this.isDate(sensor, found, meterClock)) return false;
    const contents = this.seen.get([sensor, found.id, record, meterClock].join('|'));
    if (contents === undefined) return false;
    return like === undefined || !this.knownByContent(sensor) || contents.has(recordContent(like));
  }

  /**
   * Whether the meter record `r` (its number, meter clock and content as the driver would hand it over; `context`
   * names the meter) is stored: by its meter clock when that is a date (`holds`), else, on a sensor known by content,
   * with the same content in the meter's current numbering (the epoch of the last reading stored from it).
   */
  holdsAsSent(r: Pick<Reading, 'sensor' | 'meterRecord' | 'context'> & Partial<Pick<Reading, 'value' | 'unit' | 'type'>>): boolean {
    if (r.meterRecord === undefined) return false;
    const found = this.find(r.sensor, r.context?.[METER_NUMBERING_CONTEXT.meter], r.context?.[METER_NUMBERING_CONTEXT.serial]);
    if (found === undefined) return false;
    const meterClock = r.context?.[METER_TIME_CONTEXT.clock];
    if (meterClock !== undefined && this.isDate(r.sensor, found, meterClock)) return this.heldDated(r.sensor, found, r.meterRecord, meterClock, r);
    if (!this.knownByContent(r.sensor)) return false;
    return this.contents.get([r.sensor, found.id, r.meterRecord, recordContent(r)].join('|'))?.has(found.newest?.epoch) === true;
  }

  /**
   * The newest record number of `meter` on `sensor` at or before `record` (on the sensor's counter, `meterRecordAfter`)
   * that is stored with a meter clock that is a date, in the meter's current numbering (the epoch of the last reading
   * stored from it; before: any epoch, and a meter reset once whose newest record was deleted was asked for a record of
   * its old memory and found reset again at every connect); undefined when none is. What a meter whose last record has
   * no date can be asked for, to tell whether it still holds the memory it was stored from (`holds`).
   */
  datedAtOrBefore(sensor: string, meter: MeterIdentity, record: number): number | undefined {
    const found = this.find(sensor, meter.address, meter.serial);
    if (found === undefined) return undefined;
    const epoch = found.newest?.epoch;
    const bits = this.bitsOf(sensor);
    const prefix = `${sensor}|${found.id}|`;
    let best: number | undefined;
    for (const [key, stored] of this.dated) {
      if (!key.startsWith(prefix)) continue;
      if (!stored.some((s) => s.epoch === epoch && this.isDate(sensor, found, s.clock))) continue;
      const n = Number(key.slice(prefix.length));
      if (meterRecordAfter(n, record, bits)) continue;
      if (best === undefined || meterRecordAfter(n, best, bits)) best = n;
    }
    return best;
  }

  /**
   * The newest record of `meter`'s current numbering on `sensor` (the numbering of the last reading stored from
   * it); when nothing of `meter` is stored (or no meter is named), that of the meter the sensor's last reading
   * came from, whose `meter` and `serial` then tell the caller whether it is another meter (`isSameMeter`).
   * Undefined when nothing is stored.
   */
  last(sensor: string, meter?: MeterIdentity): StoredMeterRecord | undefined {
    const found = (meter !== undefined ? this.find(sensor, meter.address, meter.serial) : undefined) ?? this.meters.get(sensor)?.at(-1);
    if (found?.newest === undefined) return undefined;
    // The meter as known now: its last address, and its serial even when its newest record came without one.
    const out: StoredMeterRecord = { ...found.newest };
    if (found.address !== undefined) out.meter = found.address;
    if (found.serial !== undefined) out.serial = found.serial;
    return out;
  }
}

/** The context fields that are not a record's content (`recordContent`): its numbering and its meter time. */
const NOT_CONTENT: ReadonlySet<string> = new Set<string>([...Object.values(METER_NUMBERING_CONTEXT), ...Object.values(METER_TIME_CONTEXT)]);

/**
 * What tells a meter's record from another of the same number without a date: its value, unit, type and context but
 * its numbering (meter, serial, epoch) and its meter time (the clock's conversion changes between connects).
 */
function recordContent(r: Pick<Reading, 'context'> & Partial<Pick<Reading, 'value' | 'unit' | 'type'>>): string {
  const context = Object.entries(r.context ?? {})
    .filter(([k]) => !NOT_CONTENT.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([r.type, r.value, r.unit, context]);
}

/**
 * An output of a model or an algorithm. Decision support, never a diagnosis: it carries its
 * probability, the model that produced it and the quality of the input it saw.
 */
export interface Finding {
  kind: string;
  label: string;
  value?: number;
  probability: number;
  t: number;
  intervalStart?: number;
  intervalEnd?: number;
  /** Sample ranges, beat indices or readings that support the finding. */
  evidence?: string;
  modelId: string;
  modelSha256: string;
  /** 0 (unusable) .. 1 (clean). */
  inputQuality: number;
  qualityFlags?: string[];
  /** The sensor whose signal or readings it is about (the runtime sets it; two ECGs, or a meter and a CGM, are told apart by it). */
  sensor?: string;
}

export type AlertSeverity = 1 | 2 | 3;

/** A finding (or a device condition) that crossed a threshold. Severity 1 info, 2 warning, 3 urgent. */
export interface Alert {
  kind: string;
  severity: AlertSeverity;
  message: string;
  t: number;
  sensor?: string;
  /** Seq of the finding that raised it, when there is one. */
  findingSeq?: number;
}

/**
 * An alert as an analysis raises it, with the finding that raised it (in memory only): the runtime
 * stores that finding first and the alert with its seq as `findingSeq`, so that an alert leads to the
 * probability, model, hash and input quality behind it.
 */
export type RaisedAlert = Alert & { finding?: Finding };

/** Bytes that no codec accepted, kept so that a later driver can parse them. */
export interface Quarantined {
  transport: string;
  source: string;
  t: number;
  error: string;
  bytes: Uint8Array;
}

export interface RecordBodies {
  alert: Alert;
  finding: Finding;
  reading: Reading;
  quarantine: Quarantined;
  chunk: StreamChunk;
}
