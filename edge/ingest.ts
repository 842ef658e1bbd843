import { type Clock, systemClock } from '../device-sdk/clock.js';
import type { Logger } from '../device-sdk/log.js';
import { openPayload, SEALED_PAYLOAD_MARK, type WireKey } from '../device-sdk/security/wire-keys.js';
import { encodeAck, peekBatchBootId, type RefusedReason } from '../device-sdk/proto/index.js';
import { type BatchLimits, BatchRejectedError, DEFAULT_BATCH_LIMITS, openBatch } from '../device-sdk/sync/batch.js';
import { downTopic, type ParsedUpTopic, parseUpTopic } from '../device-sdk/sync/topics.js';
import { DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS, DEVICE_ID_IN_USE, type DuplicateDeviceIdOptions } from './duplicate-device-id.js';
import type { CommitResult, EdgeStore, WatchedCommit } from './edge-store.js';
import type { CertificateProblem } from './issued-certificates.js';
import { RECORD_KINDS } from '../device-sdk/records.js';

export type IngestOutcome = { ok: true; deviceId: string; result: CommitResult } | { ok: false; reason: string; message: string };

export type AckPublisher = (topic: string, payload: Buffer) => void;

export interface RefusalNoticeOptions {
  /** A refusal notice (`Ack.refused`) goes to a device at most once this long (ms) per kind and reason. */
  repeatMs: number;
  /** (device, kind, reason) entries remembered at most; past it, expired ones are dropped and new ones get no notice until room is made. */
  maxTracked: number;
}

export const DEFAULT_REFUSAL_NOTICE: Readonly<RefusalNoticeOptions> = Object.freeze({ repeatMs: 60_000, maxTracked: 10_000 });

export interface IngestOptions {
  /**
   * The wire key of a device (`WireKeyring.get`), for payload encryption inside TLS. A sealed payload
   * that does not open under the key of the device its topic names (tampered, another device's,
   * moved to another topic) is refused as `auth`. Without it payloads are taken in clear only.
   */
  wireKeys?: (deviceId: string) => WireKey | undefined;
  /** Refuse (as `auth`) clear payloads from devices that have a wire key. */
  requireSealed?: boolean;
  /**
   * Why a device's batches must be refused (as `auth`, not acknowledged; the device is told the `reason`) because of its certificate, or
   * undefined: behind an external broker that keeps connections open past revocation and expiry
   * (`issued-certificates.ts`).
   */
  certificateProblem?: (deviceId: string) => CertificateProblem | undefined;
  /** Rate limit of the refusal notices (`Ack.refused`) sent to the device a refused batch came from. */
  refusalNotice?: Partial<RefusalNoticeOptions>;
  /** Time of the duplicate device id watch (`now`: it is kept in the store, shared by ingest workers) and of the refusal notices' rate limit. */
  clock?: Pick<Clock, 'now' | 'monotonic'>;
  /** When two live boots under one device id are proven, and when they are forgotten (`duplicate-device-id.ts`). */
  duplicateDeviceId?: Partial<DuplicateDeviceIdOptions>;
}

/**
 * Validates an uplink message, commits it, and only then publishes the acknowledgement. Anything
 * wrong with a message is counted under a reason and logged; nothing received can throw out of here.
 */
export class Ingest {
  private readonly store: EdgeStore;
  private readonly publishAck: AckPublisher;
  private readonly log: Logger;
  private readonly limits: BatchLimits;
  private readonly wireKeys: IngestOptions['wireKeys'];
  private readonly requireSealed: boolean;
  private readonly certificateProblem: IngestOptions['certificateProblem'];
  private readonly clock: Pick<Clock, 'now' | 'monotonic'>;
  private readonly duplicates: DuplicateDeviceIdOptions;
  private readonly refusalNotice: RefusalNoticeOptions;
  /** Monotonic time of the last refusal notice per `site/deviceId/kind/reason`. */
  private readonly noticeAt = new Map<string, number>();

  constructor(store: EdgeStore, publishAck: AckPublisher, log: Logger, limits: Partial<BatchLimits> = {}, options: IngestOptions = {}) {
    this.store = store;
    this.publishAck = publishAck;
    this.log = log.child({ component: 'ingest' });
    this.limits = { ...DEFAULT_BATCH_LIMITS, ...limits };
    this.wireKeys = options.wireKeys;
    this.requireSealed = options.requireSealed === true;
    this.certificateProblem = options.certificateProblem;
    this.clock = options.clock ?? systemClock;
    this.duplicates = { ...DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS, ...options.duplicateDeviceId };
    this.refusalNotice = { ...DEFAULT_REFUSAL_NOTICE, ...options.refusalNotice };
  }

  /** The batch bytes of a payload: opened with the device's wire key when it has one. Returns a refusal otherwise. */
  private unseal(topic: string, deviceId: string, payload: Uint8Array): Uint8Array | { reason: string; message: string; notice: RefusedReason } {
    if (!this.wireKeys) return payload;
    let key: WireKey | undefined;
    try {
      key = this.wireKeys(deviceId);
    } catch (error) {
      return { reason: 'auth', message: `the wire key of ${deviceId} is unusable at this edge: ${(error as Error).message}`, notice: 'key' };
    }
    const sealed = payload[0] === SEALED_PAYLOAD_MARK;
    if (!key) return sealed ? { reason: 'auth', message: `sealed payload from ${deviceId}, which has no wire key at this edge`, notice: 'key' } : payload;
    if (!sealed) return this.requireSealed ? { reason: 'auth', message: `clear payload from ${deviceId}, which must seal its payloads with its wire key`, notice: 'key' } : payload;
    if (payload.byteLength > this.limits.maxPayloadBytes) return { reason: 'oversize', message: `payload of ${payload.byteLength} bytes exceeds ${this.limits.maxPayloadBytes}`, notice: 'oversize' };
    try {
      return openPayload(key, topic, payload);
    } catch (error) {
      return { reason: 'auth', message: `sealed payload does not open under the wire key of ${deviceId}: ${(error as Error).message}`, notice: 'key' };
    }
  }

  handle(topic: string, payload: Uint8Array): IngestOutcome {
    const where = parseUpTopic(topic);
    if (!where) return this.reject('malformed', `topic ${JSON.stringify(topic.slice(0, 200))} is not medge/v1/<site>/<deviceId>/up/<kind>`, topic);
    const certificate = this.certificateProblem?.(where.deviceId);
    const bytes = this.unseal(topic, where.deviceId, payload);
    // The boot a refusal names (`Ack.boot_id`): read from the batch's header as far as it parses; a sealed payload that
    // does not open under the device's key names none (its boot id is inside the ciphertext).
    const bootOf = () => (bytes instanceof Uint8Array ? peekBatchBootId(bytes) : payload[0] === SEALED_PAYLOAD_MARK ? '' : peekBatchBootId(payload));
    if (certificate !== undefined) return this.reject('auth', certificate.message, topic, { where, reason: certificate.reason, bootId: bootOf() });
    if (!(bytes instanceof Uint8Array)) return this.reject(bytes.reason, bytes.message, topic, { where, reason: bytes.notice, bootId: bootOf() });
    let batch: ReturnType<typeof openBatch>;
    try {
      batch = openBatch(bytes, where, this.limits);
    } catch (error) {
      if (error instanceof BatchRejectedError) return this.reject(error.reason, error.message, topic, { where, reason: error.reason, bootId: bootOf() });
      return this.reject('malformed', (error as Error).message, topic, { where, reason: 'malformed', bootId: bootOf() });
    }
    const { header, records } = batch;
    let watched: WatchedCommit;
    try {
      watched = this.store.commitFromBoot(
        {
          site: where.site,
          deviceId: where.deviceId,
          kind: where.kind,
          bootId: header.bootId,
          afterSeq: header.afterSeq,
          lastSeq: header.lastSeq,
          ackedUpTo: header.ackedUpTo,
          heldFrom: header.heldFrom,
          records,
        },
        this.duplicates,
        this.clock.now(),
      );
    } catch (error) {
      // Not the device's fault (disk full, I/O): no ack, so the device keeps the batch and resends.
      this.log.error({ err: (error as Error).message, deviceId: where.deviceId, kind: where.kind }, 'commit failed; not acknowledging');
      return { ok: false, reason: 'store', message: (error as Error).message };
    }
    if (watched.refused) {
      return this.reject(
        DEVICE_ID_IN_USE,
        `two live boards use device id ${where.deviceId}: batches of boot ${header.bootId} are refused while boot ${watched.incumbent} (the incumbent) keeps syncing; the refused board keeps its records`,
        topic,
        { where, reason: DEVICE_ID_IN_USE, bootId: header.bootId },
      );
    }
    const { result } = watched;
    this.logBoots(where.deviceId, watched);
    if (result.conflicts.length > 0) {
      // Kept in `conflicts` and counted in the commit's transaction, so acknowledging them loses nothing.
      this.log.error(
        { deviceId: where.deviceId, kind: where.kind, bootId: header.bootId, conflicts: result.conflicts.length, firstSeq: result.conflicts[0], lastSeq: result.conflicts.at(-1), seqFloor: result.seqFloor },
        'seq conflict: records reuse seqs stored with other content (a new or restored ledger under this deviceId, or two devices with one id); kept in the conflicts table; the ack tells the device to make its later seqs above seqFloor',
      );
    }
    // Acked even when it was a replay: a device whose ack was lost gets its watermark again.
    const ids = { deviceId: where.deviceId, kind: where.kind };
    if (result.rewind) {
      this.log.warn({ ...ids, ackedUpTo: header.ackedUpTo, upToSeq: result.upToSeq }, 'this edge holds less than it acknowledged (store restored?); asking the device to send the rest again');
    }
    if (result.assumed > 0) {
      this.log.warn({ ...ids, assumed: result.assumed, upToSeq: result.upToSeq }, "records this edge never stored taken as delivered on the device's acknowledged watermark; the device no longer holds them");
    }
    const ack = encodeAck({ ...ids, upToSeq: result.upToSeq, edgeMs: Date.now(), rewind: result.rewind, bootId: header.bootId, batchLastSeq: header.lastSeq, otherBootLive: watched.otherBootLive, seqFloor: result.seqFloor });
    this.publishAck(downTopic(where.site, where.deviceId, 'ack'), Buffer.from(ack));
    if (result.replay) {
      // Counted in the commit's own transaction.
      const message = `every record of (${header.afterSeq}, ${header.lastSeq}] is already stored; nothing changed`;
      this.log.info({ deviceId: where.deviceId, kind: where.kind, afterSeq: header.afterSeq, lastSeq: header.lastSeq }, 'replayed batch');
      return { ok: false, reason: 'replay', message };
    }
    this.log.debug({ deviceId: where.deviceId, kind: where.kind, ...result }, 'batch committed');
    return { ok: true, deviceId: where.deviceId, result };
  }

  /**
   * Logs (at most once per `logRepeatMs` per device, across ingest workers) batches of a deviceId that alternate
   * between two live boots, and the proof that makes the edge refuse the intruding boot's batches from then on.
   */
  private logBoots(deviceId: string, watched: Extract<WatchedCommit, { refused: false }>): void {
    const { switched, proven } = watched;
    if (proven) {
      this.log.error(
        { deviceId, incumbent: proven.incumbent, refusedBoot: proven.intruder, switchBacks: proven.switchBacks, spanMs: proven.spanMs },
        "duplicate device id proven: two boards are running under this deviceId; the other boot's batches are refused from now on (its board keeps its records and raises sync-batches-refused) until the incumbent is silent for the hold (7 days by default; a board cut off by its link keeps its place) or an operator releases it (medge edge duplicates release); give each board its own deviceId and certificate. Records of the refused boot stored before are listed by medge edge stats",
      );
    }
    if (switched?.toLog === undefined) return;
    this.log.error(
      { deviceId, bootIds: switched.bootIds, switches: switched.toLog },
      "duplicate device id: batches of this deviceId alternate between two running boards, which evict each other's MQTT session; give one board its own deviceId (their records are kept, seq reuse in the conflicts table)",
    );
  }

  /**
   * Counts and logs a refused batch. With `notice` (the topic parsed, so the edge knows the device: behind
   * Mosquitto or the embedded broker with `--tls` the ACL lets a device publish only under its own id) it also
   * tells that device on its ack topic why (`Ack.refused`, `upToSeq` 0: nothing acknowledged), at most once
   * per `refusalNotice.repeatMs` per device, kind, reason and boot. The notice names only the device's own id, the
   * kind, the reason and the boot refused, whatever the reason (another board under the id, or the board's next boot,
   * reads the same ack topic and ignores a notice for another boot; '' only when the payload did not say: a sealed one
   * that does not open, or bytes that are not a Batch). Before, a refused device got nothing and resent on every ack
   * timeout indefinitely.
   */
  private reject(reason: string, message: string, topic: string, notice?: { where: ParsedUpTopic; reason: RefusedReason; bootId?: string }): IngestOutcome {
    this.store.countRejected(reason);
    this.log.warn({ reason, topic: topic.slice(0, 200), err: message }, 'batch rejected');
    if (notice) this.sendRefusalNotice(notice.where, notice.reason, notice.bootId ?? '');
    return { ok: false, reason, message };
  }

  /**
   * Tells `deviceId` of `site` that its batches of every kind are refused for `refused` (`Ack.refused`, boot '': whichever
   * boot reads it), before any batch of it arrives: the dynamic security blocker (`mosquitto-dynsec.ts`) calls it just
   * before it closes the device's connection, after which the device can read nothing. Same rate limit as the
   * notices of refused batches; nothing is counted.
   */
  announceRefusal(site: string, deviceId: string, refused: RefusedReason): void {
    for (const kind of RECORD_KINDS) this.sendRefusalNotice({ site, deviceId, kind }, refused, '');
  }

  private sendRefusalNotice(where: ParsedUpTopic, refused: RefusedReason, bootId: string): void {
    const key = `${where.site}/${where.deviceId}/${where.kind}/${refused}/${bootId}`;
    const now = this.clock.monotonic();
    const last = this.noticeAt.get(key);
    if (last !== undefined && now - last < this.refusalNotice.repeatMs) return;
    if (last === undefined && this.noticeAt.size >= this.refusalNotice.maxTracked) {
      for (const [k, at] of this.noticeAt) if (now - at >= this.refusalNotice.repeatMs) this.noticeAt.delete(k);
      if (this.noticeAt.size >= this.refusalNotice.maxTracked) return;
    }
    this.noticeAt.set(key, now);
    const ack = encodeAck({ deviceId: where.deviceId, kind: where.kind, upToSeq: 0, edgeMs: this.clock.now(), refused, bootId });
    this.publishAck(downTopic(where.site, where.deviceId, 'ack'), Buffer.from(ack));
  }
}
