import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DecodeError } from '../errors.js';
import {
  type BatchMessage,
  bodyCodecs,
  Compression,
  decodeBatch,
  decodeRecordList,
  encodeBatch,
  encodeRecordList,
  UnknownSchemaVersionError,
  type WireRecord,
} from '../proto/index.js';
import type { RecordKind } from '../records.js';
import type { ParsedUpTopic } from './topics.js';

export interface BatchLimits {
  /** Largest MQTT payload accepted (bytes, as received). */
  maxPayloadBytes: number;
  /** Largest record list after decompression (guards against deflate bombs). */
  maxRecordsBytes: number;
  maxRecords: number;
}

export const DEFAULT_BATCH_LIMITS: Readonly<BatchLimits> = Object.freeze({
  maxPayloadBytes: 1024 * 1024,
  maxRecordsBytes: 16 * 1024 * 1024,
  maxRecords: 20_000,
});

/** Record lists shorter than this are sent uncompressed: deflate would not pay for itself. */
export const COMPRESS_ABOVE_BYTES = 256;

export interface BuildBatchInput {
  deviceId: string;
  bootId: string;
  kind: RecordKind;
  afterSeq: number;
  ackedUpTo: number;
  /** Lowest seq of the kind the device still holds (`OutboxStore.heldFrom`); omitted: the field is absent. */
  heldFrom?: number;
  records: readonly WireRecord[];
  sentMs: number;
  /** zlib level 1..9 (default 6). */
  level?: number;
}

/** Encodes a batch covering (afterSeq, last record's seq]; deflates the record list when it is worth it. */
export function buildBatch(input: BuildBatchInput): Uint8Array {
  const first = input.records[0];
  const last = input.records.at(-1);
  if (!first || !last) throw new RangeError('a batch holds at least one record');
  const list = encodeRecordList(input.records);
  const compress = list.byteLength > COMPRESS_ABOVE_BYTES;
  return encodeBatch({
    deviceId: input.deviceId,
    bootId: input.bootId,
    kind: input.kind,
    afterSeq: input.afterSeq,
    firstSeq: first.seq,
    lastSeq: last.seq,
    ackedUpTo: input.ackedUpTo,
    count: input.records.length,
    compression: compress ? Compression.DEFLATE : Compression.NONE,
    records: compress ? deflateRawSync(list, { level: input.level ?? 6 }) : list,
    sentMs: input.sentMs,
    ...(input.heldFrom === undefined ? {} : { heldFrom: input.heldFrom }),
  });
}

export type RejectReason = 'malformed' | 'oversize' | 'unknown-version';

/** A received batch failed validation; `reason` is what the edge counts it under. */
export class BatchRejectedError extends DecodeError {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string, options?: { cause?: unknown }) {
    super('Batch', message, options);
    this.reason = reason;
  }
}

export interface ReceivedBatch {
  header: Omit<BatchMessage, 'records'>;
  records: WireRecord[];
}

/**
 * Decodes and checks a batch received on an uplink topic: size limits, schema version, that the
 * topic and the payload agree, that seqs are strictly increasing inside (afterSeq, lastSeq], and
 * that every record body decodes as its kind. Throws `BatchRejectedError` and nothing else.
 */
export function openBatch(payload: Uint8Array, topic: ParsedUpTopic, limits: BatchLimits = DEFAULT_BATCH_LIMITS): ReceivedBatch {
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw new BatchRejectedError('oversize', `payload of ${payload.byteLength} bytes exceeds ${limits.maxPayloadBytes}`);
  }
  let batch: BatchMessage;
  try {
    batch = decodeBatch(payload);
  } catch (error) {
    if (error instanceof UnknownSchemaVersionError) throw new BatchRejectedError('unknown-version', error.message, { cause: error });
    throw new BatchRejectedError('malformed', (error as Error).message, { cause: error });
  }
  const { records: packed, ...header } = batch;
  const fail = (message: string): never => {
    throw new BatchRejectedError('malformed', message);
  };
  if (header.deviceId !== topic.deviceId) fail(`deviceId ${JSON.stringify(header.deviceId)} does not match the topic's ${topic.deviceId}`);
  if (header.kind !== topic.kind) fail(`kind ${JSON.stringify(header.kind)} does not match the topic's ${topic.kind}`);
  for (const field of ['afterSeq', 'firstSeq', 'lastSeq', 'ackedUpTo', 'heldFrom'] as const) {
    if (!Number.isSafeInteger(header[field]) || header[field] < 0) fail(`${field} ${header[field]} is not a seq`);
  }
  // The device sends from its cursor, which never falls below its acknowledged watermark.
  if (header.ackedUpTo > header.afterSeq) fail(`ackedUpTo ${header.ackedUpTo} is above afterSeq ${header.afterSeq}`);
  // The device reads the batch from what it holds.
  if (header.heldFrom > header.firstSeq) fail(`heldFrom ${header.heldFrom} is above firstSeq ${header.firstSeq}`);
  if (header.count > limits.maxRecords) throw new BatchRejectedError('oversize', `${header.count} records exceed ${limits.maxRecords}`);

  let list: Uint8Array = packed;
  if (header.compression === Compression.DEFLATE) {
    try {
      list = inflateRawSync(packed, { maxOutputLength: limits.maxRecordsBytes });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new BatchRejectedError('oversize', `records inflate beyond ${limits.maxRecordsBytes} bytes`, { cause: error });
      throw new BatchRejectedError('malformed', `records do not inflate: ${(error as Error).message}`, { cause: error });
    }
  } else if (header.compression !== Compression.NONE) {
    fail(`unknown compression ${header.compression}`);
  } else if (list.byteLength > limits.maxRecordsBytes) {
    throw new BatchRejectedError('oversize', `records of ${list.byteLength} bytes exceed ${limits.maxRecordsBytes}`);
  }

  let records: WireRecord[];
  try {
    records = decodeRecordList(list);
  } catch (error) {
    throw new BatchRejectedError('malformed', (error as Error).message, { cause: error });
  }
  if (records.length === 0 || records.length !== header.count) fail(`count says ${header.count} records, the list holds ${records.length}`);
  if (records[0]?.seq !== header.firstSeq || records.at(-1)?.seq !== header.lastSeq) fail('firstSeq/lastSeq do not match the records');
  if (!(header.afterSeq < header.firstSeq)) fail(`afterSeq ${header.afterSeq} is not below firstSeq ${header.firstSeq}`);
  const codec = bodyCodecs[topic.kind];
  let previous = header.afterSeq;
  for (const r of records) {
    if (!Number.isSafeInteger(r.seq) || r.seq <= previous) fail(`seq ${r.seq} does not follow ${previous}`);
    previous = r.seq;
    try {
      codec.decode(r.body);
    } catch (error) {
      throw new BatchRejectedError('malformed', `record ${r.seq}: ${(error as Error).message}`, { cause: error });
    }
  }
  return { header, records };
}
