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
 * The meter's identity of a reading's record, unique per sensor: its record number, prefixed by the
 * sensor session start when the meter has sessions (a CGM's time offsets restart with each sensor,
 * `context.sessionStart`). Undefined without a record number.
 */
export function meterRecordId(r: Pick<Reading, 'meterRecord' | 'context'>): string | undefined {
  if (r.meterRecord === undefined) return undefined;
  const session = r.context?.sessionStart;
  return session ? `${session}/${r.meterRecord}` : String(r.meterRecord);
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
