import type { Clock } from '../clock.js';
import type { RecordKind } from '../records.js';

/** One record to append: its kind, the device time it was stored at, and its encoded body. */
export interface AppendEntry {
  kind: RecordKind;
  tMs: number;
  /** Encoded body (`device-sdk/proto` body codec of `kind`). The store keeps it byte for byte. */
  body: Uint8Array;
  /** Short indexable label (sensor or type), e.g. `ecg`, `glucose`. Never a patient identifier. */
  tag?: string;
}

export interface StoredRecord {
  kind: RecordKind;
  seq: number;
  /** Boot of the runtime process that stored the record. */
  bootId: string;
  tMs: number;
  tag: string;
  body: Uint8Array;
}

export interface KindStats {
  /**
   * Highest seq ever assigned for the kind, or the floor the next one goes above (0 when none). Not a
   * count: seqs skip (wall-clock floor, `raiseSeqFloor`, a fresh ledger above the reservation); see `produced`.
   */
  lastSeq: number;
  /** Records of the kind this ledger has appended, ever (records copied in by `restore` are not counted). */
  produced: number;
  /** Highest seq the edge acknowledged as committed. */
  ackedUpTo: number;
  /** Rows held with seq > ackedUpTo. */
  pending: number;
  /** Rows held, acknowledged or not. */
  rows: number;
  /** Bytes charged to the disk budget for the rows held. */
  bytes: number;
}

export interface EvictionReport {
  /** Rows removed per kind by this call. */
  evicted: Partial<Record<RecordKind, number>>;
  bytesUsed: number;
  budgetBytes: number;
  /** Still over budget after evicting everything the eviction order allows. */
  overBudget: boolean;
}

export interface AuditEntry {
  id: number;
  tMs: number;
  actor: string;
  action: string;
  detail: string;
  /** sha256 hex of the previous entry's hash and this entry's fields: a tamper-evident chain. */
  hash: string;
  prevHash: string;
}

export interface OutboxStoreOptions {
  deviceId: string;
  /** Bytes the ledger may use for records (row bodies plus a fixed per-row overhead). */
  budgetBytes?: number;
  /** How long acknowledged records stay on the device after the edge committed them, per kind (ms). */
  retentionMs?: Partial<Record<RecordKind, number>>;
  /**
   * The device clock of the wall-clock seq floor: when the store opens (new or existing ledger), the next
   * seq of each kind is above `wallClockSeqFloor(clock.now())` (`seq-reservation.ts`) if its own last seq is
   * not already. Undefined: no floor (seqs count from 1; tests that check seqs).
   */
  seqFloorClock?: Pick<Clock, 'now'>;
}

/** Which records `OutboxStore.readMatching` (and `readBefore` when given) returns: by tag, and stored at or after a time. */
export interface RecordFilter {
  /** Tags (sensor, alert kind, ...) to return; every tag when absent, none when empty. */
  tags?: readonly string[];
  /** Device time (ms) the records were stored at, at least (`StoredRecord.tMs`). */
  fromTMs?: number;
}

/**
 * The device ledger, which is also the sync outbox: a record is removed only after the edge
 * acknowledged it (or, for raw waveform only, by the budget's eviction order).
 *
 * Contract (test/store/outbox-store.contract.ts runs it against every implementation):
 * - `append` is atomic and durable on return: all entries or none. It assigns each entry the next
 *   seq of its kind. Seqs of a kind strictly increase and never repeat for the life of the store,
 *   across restarts, crashes and deletions. They may skip: with `seqFloorClock` a store starts at the
 *   wall-clock floor when it opens, and `raiseSeqFloor` moves the next seq up.
 * - `readAfter(kind, afterSeq, limit, maxBytes)` returns held records with seq > afterSeq in
 *   ascending seq order, at most `limit` of them and at most `maxBytes` of body in total (but at
 *   least one record when any is held, however large).
 * - `readBefore(kind, beforeSeq, limit, filter?)` returns the newest `limit` held records with seq < beforeSeq (of
 *   those that match `filter` as in `readMatching`, when given), in ascending seq order (for paging backwards across
 *   seq gaps; the newest records of a sensor without opening the older ones nor the other sensors').
 * - `readMatching(kind, filter, afterSeq, limit)` returns, in the same order, the held records with seq >
 *   afterSeq whose tag is one of `filter.tags` (any tag when absent) and that were stored at or after
 *   `filter.fromTMs` (their `tMs`; any time when absent), at most `limit` of them. The bodies of the others
 *   are never opened (the runtime's start reads a day of a few sensors from a ledger of months).
 * - `acknowledge(kind, upToSeq)` durably raises the acknowledged watermark; a lower or equal value
 *   is ignored (returns false). Records are not deleted by it; `compact` does that.
 * - `rewind(kind, upToSeq)` durably lowers the acknowledged watermark to `upToSeq` (at least 0): the
 *   edge lost records it had acknowledged (its store was restored from an older backup). Records
 *   above it are pending again, so `compact` keeps them and the uplink sends them again. A higher or
 *   equal value is ignored (returns false).
 * - `heldFrom(kind)` is the lowest seq of the kind still held, or `lastSeq + 1` when none is: every
 *   record below it was compacted or evicted.
 * - `raiseSeqFloor(kind, seq)` durably makes every later seq of `kind` above `seq` (the edge holds `seq` from
 *   another ledger under this device id); records already stored keep theirs. Returns false (nothing
 *   changed) when the last seq handed out is at or above it already.
 * - `compact(now)` deletes acknowledged records older than their kind's retention.
 * - `enforceBudget(now)` evicts in the documented order until the ledger fits its budget. It never
 *   evicts an unacknowledged alert, finding, reading or quarantined record.
 * - Listeners given to `onAppend` are called after the commit, never inside it.
 * - Methods throw `StoreError` after `close()`.
 */
export interface OutboxStore {
  readonly deviceId: string;
  readonly bootId: string;
  append(entries: readonly AppendEntry[]): number[];
  readAfter(kind: RecordKind, afterSeq: number, limit: number, maxBytes?: number): StoredRecord[];
  readBefore(kind: RecordKind, beforeSeq: number, limit: number, filter?: RecordFilter): StoredRecord[];
  readMatching(kind: RecordKind, filter: RecordFilter, afterSeq: number, limit: number): StoredRecord[];
  raiseSeqFloor(kind: RecordKind, seq: number): boolean;
  ackedUpTo(kind: RecordKind): number;
  acknowledge(kind: RecordKind, upToSeq: number): boolean;
  rewind(kind: RecordKind, upToSeq: number): boolean;
  heldFrom(kind: RecordKind): number;
  compact(nowMs: number): Partial<Record<RecordKind, number>>;
  enforceBudget(nowMs: number): EvictionReport;
  stats(): Record<RecordKind, KindStats>;
  appendAudit(entry: { tMs: number; actor: string; action: string; detail: string }): AuditEntry;
  readAudit(afterId?: number, limit?: number): AuditEntry[];
  onAppend(listener: (kinds: readonly RecordKind[]) => void): () => void;
  close(): void;
}

/** Fixed bytes charged per row on top of its body (index entries, columns, page overhead). */
export const ROW_OVERHEAD_BYTES = 64;

export const DEFAULT_RETENTION_MS: Readonly<Record<RecordKind, number>> = Object.freeze({
  alert: 90 * 24 * 3600_000,
  finding: 90 * 24 * 3600_000,
  reading: 90 * 24 * 3600_000,
  quarantine: 90 * 24 * 3600_000,
  chunk: 24 * 3600_000,
});

export const DEFAULT_BUDGET_BYTES = 2 * 1024 ** 3;
