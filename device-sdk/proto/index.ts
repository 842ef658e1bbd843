import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { DecodeError } from '../errors.js';
import type { Alert, AlertSeverity, Finding, Quarantined, Reading, RecordBodies, RecordKind, StreamChunk } from '../records.js';

/** The wire schema version this build writes and the only one it accepts. */
export const SCHEMA_VERSION = 1;

/** Path of the committed `.proto` file (shipped next to the compiled module). */
export const PROTO_PATH = fileURLToPath(new URL('./medge.proto', import.meta.url));

const root = protobuf.loadSync(PROTO_PATH);
const T = {
  Batch: root.lookupType('medge.v1.Batch'),
  RecordList: root.lookupType('medge.v1.RecordList'),
  Ack: root.lookupType('medge.v1.Ack'),
  StreamChunk: root.lookupType('medge.v1.StreamChunk'),
  Reading: root.lookupType('medge.v1.Reading'),
  Finding: root.lookupType('medge.v1.Finding'),
  Alert: root.lookupType('medge.v1.Alert'),
  Quarantined: root.lookupType('medge.v1.Quarantined'),
};

export const Compression = Object.freeze({ NONE: 0, DEFLATE: 1 } as const);
export type CompressionCode = (typeof Compression)[keyof typeof Compression];

export interface WireRecord {
  seq: number;
  bootId: string;
  tMs: number;
  body: Uint8Array;
}

export interface BatchMessage {
  schemaVersion: number;
  deviceId: string;
  bootId: string;
  kind: string;
  afterSeq: number;
  firstSeq: number;
  lastSeq: number;
  ackedUpTo: number;
  count: number;
  compression: CompressionCode;
  records: Uint8Array;
  sentMs: number;
  /** Lowest seq of the kind the device still holds; 0 when absent (a device before the field). */
  heldFrom: number;
}

export interface AckMessage {
  schemaVersion: number;
  deviceId: string;
  kind: string;
  upToSeq: number;
  edgeMs: number;
  /** The edge lost records it had acknowledged: the device lowers its watermark to `upToSeq` and resends. */
  rewind: boolean;
  /** The boot of the batch this ack answers; '' from an edge that does not send it. */
  bootId: string;
  /** The lastSeq of the batch this ack answers, which the edge holds; 0 from an edge that does not send it. */
  batchLastSeq: number;
  /** The edge saw this deviceId's batches alternate with another live boot (two boards, one id); false from older edges. */
  otherBootLive: boolean;
  /**
   * The batch had seq conflicts: the highest seq of its kind the edge holds for this deviceId, which the
   * device's later seqs go above; 0 otherwise and from older edges.
   */
  seqFloor: number;
  /**
   * A refusal notice (`REFUSED_REASONS`): the edge refused a batch of this kind and acknowledges nothing;
   * '' in every ordinary ack and from older edges.
   */
  refused: string;
}

/** The reasons an edge names in `Ack.refused` (a device treats any other non-empty value as refused too). */
export const REFUSED_REASONS = Object.freeze(['certificate-revoked', 'certificate-expired', 'key', 'malformed', 'oversize', 'unknown-version', 'device-id-in-use'] as const);
export type RefusedReason = (typeof REFUSED_REASONS)[number];

/** protobufjs yields 64-bit integers as `Long` objects when the `long` package is present. */
function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && 'toNumber' in value) return (value as { toNumber(): number }).toNumber();
  return Number(value ?? 0);
}

function decodeWith(type: protobuf.Type, bytes: Uint8Array, codec: string): Record<string, unknown> {
  try {
    return type.decode(bytes) as unknown as Record<string, unknown>;
  } catch (error) {
    throw new DecodeError(codec, `not a valid ${type.name} message: ${(error as Error).message}`, { cause: error });
  }
}

function checkVersion(message: Record<string, unknown>, codec: string): void {
  const version = num(message.schemaVersion);
  if (version === 0) throw new DecodeError(codec, 'schema_version is missing');
  if (version !== SCHEMA_VERSION) {
    throw new UnknownSchemaVersionError(codec, version);
  }
}

/** A message carries a schema version this build does not speak. */
export class UnknownSchemaVersionError extends DecodeError {
  readonly version: number;
  constructor(codec: string, version: number) {
    super(codec, `schema version ${version} is not supported (this build speaks ${SCHEMA_VERSION})`);
    this.version = version;
  }
}

export function encodeBatch(batch: Omit<BatchMessage, 'schemaVersion' | 'heldFrom'> & { heldFrom?: number }): Uint8Array {
  return T.Batch.encode({ ...batch, schemaVersion: SCHEMA_VERSION }).finish();
}

/** Longest boot id `peekBatchBootId` returns (UTF-8 bytes); a board's is a UUID (36). */
const MAX_PEEKED_BOOT_ID_BYTES = 128;

/**
 * The `boot_id` (field 3) of an encoded Batch that may not decode as a whole (a malformed, oversize or unknown-version
 * batch, refused), for a refusal notice to name the boot it refused: the top-level fields are read in order up to the
 * first one that does not parse. '' when there is none before that, or it is longer than 128 bytes or not UTF-8. Never throws.
 */
export function peekBatchBootId(bytes: Uint8Array): string {
  try {
    const reader = protobuf.Reader.create(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field === 3 && wireType === 2) {
        const raw = reader.bytes();
        if (raw.byteLength > MAX_PEEKED_BOOT_ID_BYTES) return '';
        return new TextDecoder('utf-8', { fatal: true }).decode(raw);
      }
      if (field === 0) return '';
      reader.skipType(wireType);
    }
  } catch {
    // Not protobuf past this point: no boot id before it.
  }
  return '';
}

export function decodeBatch(bytes: Uint8Array): BatchMessage {
  const m = decodeWith(T.Batch, bytes, 'Batch');
  checkVersion(m, 'Batch');
  return {
    schemaVersion: SCHEMA_VERSION,
    deviceId: String(m.deviceId ?? ''),
    bootId: String(m.bootId ?? ''),
    kind: String(m.kind ?? ''),
    afterSeq: num(m.afterSeq),
    firstSeq: num(m.firstSeq),
    lastSeq: num(m.lastSeq),
    ackedUpTo: num(m.ackedUpTo),
    count: num(m.count),
    compression: num(m.compression) as CompressionCode,
    records: (m.records as Uint8Array | undefined) ?? new Uint8Array(0),
    sentMs: num(m.sentMs),
    heldFrom: num(m.heldFrom),
  };
}

export function encodeRecordList(records: readonly WireRecord[]): Uint8Array {
  return T.RecordList.encode({ records }).finish();
}

export function decodeRecordList(bytes: Uint8Array): WireRecord[] {
  const m = decodeWith(T.RecordList, bytes, 'RecordList');
  const list = (m.records as Record<string, unknown>[] | undefined) ?? [];
  return list.map((r) => ({
    seq: num(r.seq),
    bootId: String(r.bootId ?? ''),
    tMs: num(r.tMs),
    body: (r.body as Uint8Array | undefined) ?? new Uint8Array(0),
  }));
}

export function encodeAck(
  ack: Omit<AckMessage, 'schemaVersion' | 'rewind' | 'bootId' | 'batchLastSeq' | 'otherBootLive' | 'seqFloor' | 'refused'> & {
    refused?: string;
    rewind?: boolean;
    bootId?: string;
    batchLastSeq?: number;
    otherBootLive?: boolean;
    seqFloor?: number;
  },
): Uint8Array {
  return T.Ack.encode({ ...ack, schemaVersion: SCHEMA_VERSION }).finish();
}

export function decodeAck(bytes: Uint8Array): AckMessage {
  const m = decodeWith(T.Ack, bytes, 'Ack');
  checkVersion(m, 'Ack');
  return {
    schemaVersion: SCHEMA_VERSION,
    deviceId: String(m.deviceId ?? ''),
    kind: String(m.kind ?? ''),
    upToSeq: num(m.upToSeq),
    edgeMs: num(m.edgeMs),
    rewind: m.rewind === true,
    bootId: String(m.bootId ?? ''),
    batchLastSeq: num(m.batchLastSeq ?? 0),
    otherBootLive: m.otherBootLive === true,
    seqFloor: num(m.seqFloor ?? 0),
    refused: String(m.refused ?? ''),
  };
}

function samplesToBytes(samples: Int16Array): Uint8Array {
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
}

function bytesToSamples(bytes: Uint8Array): Int16Array {
  if (bytes.byteLength % 2 !== 0) throw new DecodeError('StreamChunk', `samples hold ${bytes.byteLength} bytes, not a whole number of int16`);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Int16Array(copy.buffer);
}

/** Encoders and decoders of the record bodies, one per record kind. Decoders throw `DecodeError`. */
export interface BodyCodec<K extends RecordKind> {
  encode(value: RecordBodies[K]): Uint8Array;
  decode(bytes: Uint8Array): RecordBodies[K];
}

const chunkCodec: BodyCodec<'chunk'> = {
  encode: (c: StreamChunk) =>
    T.StreamChunk.encode({
      schemaVersion: SCHEMA_VERSION,
      sensor: c.sensor,
      channel: c.channel,
      firstSample: c.firstSample,
      t0Ms: c.t0,
      rateHz: c.rateHz,
      unit: c.unit,
      gain: c.gain,
      samples: samplesToBytes(c.samples),
      leadOff: c.leadOff === true,
      saturated: c.saturated === true,
    }).finish(),
  decode(bytes) {
    const m = decodeWith(T.StreamChunk, bytes, 'StreamChunk');
    checkVersion(m, 'StreamChunk');
    const chunk: StreamChunk = {
      sensor: String(m.sensor ?? ''),
      channel: num(m.channel),
      firstSample: num(m.firstSample),
      t0: num(m.t0Ms),
      rateHz: num(m.rateHz),
      unit: String(m.unit ?? ''),
      gain: num(m.gain),
      // A chunk with no samples (a front end's status-only report) has no bytes on the wire: protobufjs then
      // gives its default for the field, an empty array, not a Uint8Array.
      samples: bytesToSamples(m.samples instanceof Uint8Array ? m.samples : new Uint8Array(0)),
    };
    if (m.leadOff === true) chunk.leadOff = true;
    if (m.saturated === true) chunk.saturated = true;
    return chunk;
  },
};

const readingCodec: BodyCodec<'reading'> = {
  encode: (r: Reading) =>
    T.Reading.encode({
      schemaVersion: SCHEMA_VERSION,
      sensor: r.sensor,
      type: r.type,
      value: r.value,
      unit: r.unit,
      tDeviceMs: r.tDevice,
      tMeterMs: r.tMeter ?? 0,
      meterRecord: r.meterRecord ?? 0,
      hasMeterRecord: r.meterRecord !== undefined,
      context: r.context ?? {},
    }).finish(),
  decode(bytes) {
    const m = decodeWith(T.Reading, bytes, 'Reading');
    checkVersion(m, 'Reading');
    const reading: Reading = {
      sensor: String(m.sensor ?? ''),
      type: String(m.type ?? ''),
      value: num(m.value),
      unit: String(m.unit ?? ''),
      tDevice: num(m.tDeviceMs),
    };
    const tMeter = num(m.tMeterMs);
    if (tMeter !== 0) reading.tMeter = tMeter;
    if (m.hasMeterRecord) reading.meterRecord = num(m.meterRecord);
    const context = m.context as Record<string, string> | undefined;
    if (context && Object.keys(context).length > 0) reading.context = { ...context };
    return reading;
  },
};

const findingCodec: BodyCodec<'finding'> = {
  encode: (f: Finding) =>
    T.Finding.encode({
      schemaVersion: SCHEMA_VERSION,
      kind: f.kind,
      label: f.label,
      value: f.value ?? 0,
      hasValue: f.value !== undefined,
      probability: f.probability,
      tMs: f.t,
      intervalStartMs: f.intervalStart ?? 0,
      intervalEndMs: f.intervalEnd ?? 0,
      evidence: f.evidence ?? '',
      modelId: f.modelId,
      modelSha256: f.modelSha256,
      inputQuality: f.inputQuality,
      qualityFlags: f.qualityFlags ?? [],
      sensor: f.sensor ?? '',
    }).finish(),
  decode(bytes) {
    const m = decodeWith(T.Finding, bytes, 'Finding');
    checkVersion(m, 'Finding');
    const finding: Finding = {
      kind: String(m.kind ?? ''),
      label: String(m.label ?? ''),
      probability: num(m.probability),
      t: num(m.tMs),
      modelId: String(m.modelId ?? ''),
      modelSha256: String(m.modelSha256 ?? ''),
      inputQuality: num(m.inputQuality),
    };
    if (m.hasValue) finding.value = num(m.value);
    const start = num(m.intervalStartMs);
    const end = num(m.intervalEndMs);
    if (start !== 0 || end !== 0) {
      finding.intervalStart = start;
      finding.intervalEnd = end;
    }
    if (m.evidence) finding.evidence = String(m.evidence);
    const flags = m.qualityFlags as string[] | undefined;
    if (flags && flags.length > 0) finding.qualityFlags = [...flags];
    if (m.sensor) finding.sensor = String(m.sensor);
    return finding;
  },
};

const alertCodec: BodyCodec<'alert'> = {
  encode: (a: Alert) =>
    T.Alert.encode({
      schemaVersion: SCHEMA_VERSION,
      kind: a.kind,
      severity: a.severity,
      message: a.message,
      tMs: a.t,
      sensor: a.sensor ?? '',
      findingSeq: a.findingSeq ?? 0,
    }).finish(),
  decode(bytes) {
    const m = decodeWith(T.Alert, bytes, 'Alert');
    checkVersion(m, 'Alert');
    const severity = num(m.severity);
    if (severity < 1 || severity > 3) throw new DecodeError('Alert', `severity ${severity} is outside 1..3`);
    const alert: Alert = { kind: String(m.kind ?? ''), severity: severity as AlertSeverity, message: String(m.message ?? ''), t: num(m.tMs) };
    if (m.sensor) alert.sensor = String(m.sensor);
    const findingSeq = num(m.findingSeq);
    if (findingSeq !== 0) alert.findingSeq = findingSeq;
    return alert;
  },
};

const quarantineCodec: BodyCodec<'quarantine'> = {
  encode: (q: Quarantined) =>
    T.Quarantined.encode({
      schemaVersion: SCHEMA_VERSION,
      transport: q.transport,
      source: q.source,
      tMs: q.t,
      error: q.error,
      bytes: q.bytes,
    }).finish(),
  decode(bytes) {
    const m = decodeWith(T.Quarantined, bytes, 'Quarantined');
    checkVersion(m, 'Quarantined');
    return {
      transport: String(m.transport ?? ''),
      source: String(m.source ?? ''),
      t: num(m.tMs),
      error: String(m.error ?? ''),
      bytes: new Uint8Array((m.bytes as Uint8Array | undefined) ?? new Uint8Array(0)),
    };
  },
};

/** One body codec per record kind. */
export const bodyCodecs: { readonly [K in RecordKind]: BodyCodec<K> } = Object.freeze({
  alert: alertCodec,
  finding: findingCodec,
  reading: readingCodec,
  quarantine: quarantineCodec,
  chunk: chunkCodec,
});

export function encodeBody<K extends RecordKind>(kind: K, value: RecordBodies[K]): Uint8Array {
  return bodyCodecs[kind].encode(value);
}

export function decodeBody<K extends RecordKind>(kind: K, bytes: Uint8Array): RecordBodies[K] {
  return bodyCodecs[kind].decode(bytes);
}
