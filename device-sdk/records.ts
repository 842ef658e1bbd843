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
 * `meter`: the meter's identity (its Bluetooth address): a replaced meter under the same sensor name numbers its
 * records from 1 again. `epoch`: set when the same meter's numbers were found to have started again (its memory
 * cleared, or it was reset): when that was found (ISO 8601, this device's clock); absent for a meter's first numbering.
 */
export const METER_NUMBERING_CONTEXT = Object.freeze({ meter: 'meter', epoch: 'meterEpoch' } as const);

/** The numbering of a reading's record number (`METER_NUMBERING_CONTEXT`): `meter` or `meter@epoch`; undefined when its source names no meter. */
export function meterNumbering(r: Pick<Reading, 'context'>): string | undefined {
  const meter = r.context?.[METER_NUMBERING_CONTEXT.meter];
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
  /** The meter it came from (`context.meter`); absent for records stored without one (before meters were told apart). */
  meter?: string;
  /** Its numbering epoch (`context.meterEpoch`); absent for the meter's first numbering. */
  epoch?: string;
  /** Its meter wall clock as sent (`context.meterClock`), when it had one. */
  meterClock?: string;
}

/**
 * The newest meter record number stored per sensor and meter, in the order readings are stored: what a
 * meter's backfill resumes from. Each meter (`context.meter`) has its own numbering; a reading of a new
 * epoch of that meter (`context.meterEpoch`) starts it again. Readings without a meter are one numbering
 * per sensor (other sources, and records stored before meters were told apart). `note` also says whether
 * the same record, by meter, number and meter wall clock, was stored before (in any epoch): a numbering
 * found restarted by mistake stores nothing twice. The runtime keeps one, and so does the test harness.
 */
export class MeterRecordBook {
  /** Per sensor, per meter ('' = none), the newest record of its current numbering. */
  private readonly newest = new Map<string, Map<string, StoredMeterRecord>>();
  /** Per sensor, the meter of the last reading stored. */
  private readonly lastMeter = new Map<string, string>();
  /** `sensor|meter|record|meterClock` of every record stored with a meter and a meter clock. */
  private readonly seen = new Set<string>();

  constructor(private readonly bitsOf: (sensor: string) => MeterRecordBits) {}

  /** Notes a stored reading; false when the same record of the same meter (number and meter clock) was noted before. */
  note(r: Pick<Reading, 'sensor' | 'meterRecord' | 'context'>): boolean {
    if (r.meterRecord === undefined) return true;
    const meter = r.context?.[METER_NUMBERING_CONTEXT.meter];
    const epoch = r.context?.[METER_NUMBERING_CONTEXT.epoch];
    const meterClock = r.context?.[METER_TIME_CONTEXT.clock];
    if (meter !== undefined && meterClock !== undefined) {
      const key = [r.sensor, meter, r.meterRecord, meterClock].join('|');
      if (this.seen.has(key)) return false;
      this.seen.add(key);
    }
    let meters = this.newest.get(r.sensor);
    if (meters === undefined) this.newest.set(r.sensor, (meters = new Map()));
    const previous = meters.get(meter ?? '');
    if (previous === undefined || previous.epoch !== epoch || meterRecordAfter(r.meterRecord, previous.record, this.bitsOf(r.sensor))) {
      const next: StoredMeterRecord = { record: r.meterRecord };
      if (meter !== undefined) next.meter = meter;
      if (epoch !== undefined) next.epoch = epoch;
      if (meterClock !== undefined) next.meterClock = meterClock;
      meters.set(meter ?? '', next);
    }
    this.lastMeter.set(r.sensor, meter ?? '');
    return true;
  }

  /**
   * The newest record of `meter`'s current numbering on `sensor` (the numbering of the last reading stored from
   * it); when nothing of `meter` is stored (or no meter is named), that of the meter the sensor's last reading
   * came from, whose `meter` then tells the caller whether it is another meter. Undefined when nothing is stored.
   */
  last(sensor: string, meter?: string): StoredMeterRecord | undefined {
    const meters = this.newest.get(sensor);
    if (meters === undefined) return undefined;
    return (meter !== undefined ? meters.get(meter) : undefined) ?? meters.get(this.lastMeter.get(sensor) ?? '');
  }
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
