import type { Logger } from '../device-sdk/log.js';
import { encodeAck } from '../device-sdk/proto/index.js';
import { type BatchLimits, BatchRejectedError, DEFAULT_BATCH_LIMITS, openBatch } from '../device-sdk/sync/batch.js';
import { downTopic, parseUpTopic } from '../device-sdk/sync/topics.js';
import type { CommitResult, EdgeStore } from './edge-store.js';

export type IngestOutcome = { ok: true; deviceId: string; result: CommitResult } | { ok: false; reason: string; message: string };

export type AckPublisher = (topic: string, payload: Buffer) => void;

/**
 * Validates an uplink message, commits it, and only then publishes the acknowledgement. Anything
 * wrong with a message is counted under a reason and logged; nothing received can throw out of here.
 */
export class Ingest {
  private readonly store: EdgeStore;
  private readonly publishAck: AckPublisher;
  private readonly log: Logger;
  private readonly limits: BatchLimits;

  constructor(store: EdgeStore, publishAck: AckPublisher, log: Logger, limits: Partial<BatchLimits> = {}) {
    this.store = store;
    this.publishAck = publishAck;
    this.log = log.child({ component: 'ingest' });
    this.limits = { ...DEFAULT_BATCH_LIMITS, ...limits };
  }

  handle(topic: string, payload: Uint8Array): IngestOutcome {
    const where = parseUpTopic(topic);
    if (!where) return this.reject('malformed', `topic ${JSON.stringify(topic.slice(0, 200))} is not medge/v1/<site>/<deviceId>/up/<kind>`, topic);
    let batch: ReturnType<typeof openBatch>;
    try {
      batch = openBatch(payload, where, this.limits);
    } catch (error) {
      if (error instanceof BatchRejectedError) return this.reject(error.reason, error.message, topic);
      return this.reject('malformed', (error as Error).message, topic);
    }
    const { header, records } = batch;
    let result: CommitResult;
    try {
      result = this.store.commit({
        site: where.site,
        deviceId: where.deviceId,
        kind: where.kind,
        bootId: header.bootId,
        afterSeq: header.afterSeq,
        lastSeq: header.lastSeq,
        ackedUpTo: header.ackedUpTo,
        records,
      });
    } catch (error) {
      // Not the device's fault (disk full, I/O): no ack, so the device keeps the batch and resends.
      this.log.error({ err: (error as Error).message, deviceId: where.deviceId, kind: where.kind }, 'commit failed; not acknowledging');
      return { ok: false, reason: 'store', message: (error as Error).message };
    }
    const ack = encodeAck({ deviceId: where.deviceId, kind: where.kind, upToSeq: result.upToSeq, edgeMs: Date.now() });
    this.publishAck(downTopic(where.site, where.deviceId, 'ack'), Buffer.from(ack));
    this.log.debug({ deviceId: where.deviceId, kind: where.kind, ...result }, 'batch committed');
    return { ok: true, deviceId: where.deviceId, result };
  }

  private reject(reason: string, message: string, topic: string): IngestOutcome {
    this.store.countRejected(reason);
    this.log.warn({ reason, topic: topic.slice(0, 200), err: message }, 'batch rejected');
    return { ok: false, reason, message };
  }
}
