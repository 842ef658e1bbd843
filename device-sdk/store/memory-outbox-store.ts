import { randomUUID } from 'node:crypto';
import { StoreError } from '../errors.js';
import { RECORD_KINDS, type RecordKind } from '../records.js';
import {
  type AppendEntry,
  type AuditEntry,
  DEFAULT_BUDGET_BYTES,
  DEFAULT_RETENTION_MS,
  type EvictionReport,
  type KindStats,
  type OutboxStore,
  type OutboxStoreOptions,
  type RecordFilter,
  ROW_OVERHEAD_BYTES,
  type StoredRecord,
} from './outbox-store.js';
import { auditHash } from './audit.js';
import { wallClockSeqFloor } from './seq-reservation.js';

interface Row extends StoredRecord {
  bytes: number;
}

/**
 * The ledger held in memory: the same contract as `SqliteOutboxStore` without durability across
 * processes. For tests, the simulator and boards without storage to spare.
 */
export class MemoryOutboxStore implements OutboxStore {
  readonly deviceId: string;
  readonly bootId = randomUUID();
  private readonly budgetBytes: number;
  private readonly retentionMs: Readonly<Record<RecordKind, number>>;
  private readonly rows = {} as Record<RecordKind, Row[]>;
  private readonly lastSeq = {} as Record<RecordKind, number>;
  private readonly produced = {} as Record<RecordKind, number>;
  private readonly acked = {} as Record<RecordKind, number>;
  private readonly audit: AuditEntry[] = [];
  private readonly listeners = new Set<(kinds: readonly RecordKind[]) => void>();
  private closed = false;

  constructor(options: OutboxStoreOptions) {
    this.deviceId = options.deviceId;
    this.budgetBytes = options.budgetBytes ?? DEFAULT_BUDGET_BYTES;
    this.retentionMs = { ...DEFAULT_RETENTION_MS, ...options.retentionMs };
    const floor = options.seqFloorClock ? wallClockSeqFloor(options.seqFloorClock.now()) : 0;
    for (const kind of RECORD_KINDS) {
      this.rows[kind] = [];
      this.lastSeq[kind] = floor;
      this.produced[kind] = 0;
      this.acked[kind] = 0;
    }
  }

  private open(operation: string): void {
    if (this.closed) throw new StoreError(operation, 'the ledger is closed');
  }

  append(entries: readonly AppendEntry[]): number[] {
    this.open('append');
    for (const e of entries) {
      if (!(RECORD_KINDS as readonly string[]).includes(e.kind)) {
        throw new StoreError('append', `unknown record kind ${JSON.stringify(e.kind)}; valid kinds: ${RECORD_KINDS.join(', ')}`);
      }
    }
    if (entries.length === 0) return [];
    const kinds = new Set<RecordKind>();
    const seqs = entries.map((e) => {
      const seq = ++this.lastSeq[e.kind];
      this.produced[e.kind] += 1;
      const body = new Uint8Array(e.body);
      this.rows[e.kind].push({ kind: e.kind, seq, bootId: this.bootId, tMs: e.tMs, tag: e.tag ?? '', body, bytes: body.byteLength + ROW_OVERHEAD_BYTES });
      kinds.add(e.kind);
      return seq;
    });
    const changed = [...kinds];
    for (const listener of this.listeners) listener(changed);
    return seqs;
  }

  readAfter(kind: RecordKind, afterSeq: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): StoredRecord[] {
    this.open('readAfter');
    const out: StoredRecord[] = [];
    let total = 0;
    for (const r of this.rows[kind]) {
      if (r.seq <= afterSeq) continue;
      if (out.length >= limit || (out.length > 0 && total + r.body.byteLength > maxBytes)) break;
      total += r.body.byteLength;
      out.push({ kind, seq: r.seq, bootId: r.bootId, tMs: r.tMs, tag: r.tag, body: new Uint8Array(r.body) });
    }
    return out;
  }

  readBefore(kind: RecordKind, beforeSeq: number, limit: number, filter: RecordFilter = {}): StoredRecord[] {
    this.open('readBefore');
    const tags = filter.tags === undefined ? undefined : new Set(filter.tags);
    const held = this.rows[kind].filter((r) => r.seq < beforeSeq && (tags === undefined || tags.has(r.tag)) && (filter.fromTMs === undefined || r.tMs >= filter.fromTMs));
    return held.slice(Math.max(0, held.length - Math.max(0, Math.floor(limit)))).map((r) => ({ kind, seq: r.seq, bootId: r.bootId, tMs: r.tMs, tag: r.tag, body: new Uint8Array(r.body) }));
  }

  raiseSeqFloor(kind: RecordKind, seq: number): boolean {
    this.open('raiseSeqFloor');
    if (!(seq > this.lastSeq[kind])) return false;
    this.lastSeq[kind] = seq;
    return true;
  }

  readMatching(kind: RecordKind, filter: RecordFilter, afterSeq: number, limit: number): StoredRecord[] {
    this.open('readMatching');
    const tags = filter.tags === undefined ? undefined : new Set(filter.tags);
    const out: StoredRecord[] = [];
    for (const r of this.rows[kind]) {
      if (out.length >= limit) break;
      if (r.seq <= afterSeq || (tags !== undefined && !tags.has(r.tag)) || (filter.fromTMs !== undefined && r.tMs < filter.fromTMs)) continue;
      out.push({ kind, seq: r.seq, bootId: r.bootId, tMs: r.tMs, tag: r.tag, body: new Uint8Array(r.body) });
    }
    return out;
  }

  ackedUpTo(kind: RecordKind): number {
    this.open('ackedUpTo');
    return this.acked[kind];
  }

  acknowledge(kind: RecordKind, upToSeq: number): boolean {
    this.open('acknowledge');
    const target = Math.min(upToSeq, this.lastSeq[kind]);
    if (!(target > this.acked[kind])) return false;
    this.acked[kind] = target;
    return true;
  }

  rewind(kind: RecordKind, upToSeq: number): boolean {
    this.open('rewind');
    const target = Math.max(0, upToSeq);
    if (!(target < this.acked[kind])) return false;
    this.acked[kind] = target;
    return true;
  }

  heldFrom(kind: RecordKind): number {
    this.open('heldFrom');
    return this.rows[kind][0]?.seq ?? this.lastSeq[kind] + 1;
  }

  private evict(kind: RecordKind, match: (r: Row) => boolean, needBytes: number): number {
    let freed = 0;
    let removed = 0;
    this.rows[kind] = this.rows[kind].filter((r) => {
      if (freed >= needBytes || !match(r)) return true;
      freed += r.bytes;
      removed += 1;
      return false;
    });
    return removed;
  }

  compact(nowMs: number): Partial<Record<RecordKind, number>> {
    this.open('compact');
    const removed: Partial<Record<RecordKind, number>> = {};
    for (const kind of RECORD_KINDS) {
      const cutoff = nowMs - this.retentionMs[kind];
      const n = this.evict(kind, (r) => r.seq <= this.acked[kind] && r.tMs < cutoff, Number.POSITIVE_INFINITY);
      if (n > 0) removed[kind] = n;
    }
    return removed;
  }

  private usedBytes(): number {
    return RECORD_KINDS.reduce((sum, k) => sum + this.rows[k].reduce((s, r) => s + r.bytes, 0), 0);
  }

  enforceBudget(nowMs: number): EvictionReport {
    this.open('enforceBudget');
    const evicted: Partial<Record<RecordKind, number>> = {};
    const steps: [RecordKind, (r: Row) => boolean][] = [
      ['chunk', (r) => r.tMs < nowMs - this.retentionMs.chunk],
      ['chunk', (r) => r.seq <= this.acked.chunk],
      ['quarantine', (r) => r.seq <= this.acked.quarantine],
      ['reading', (r) => r.seq <= this.acked.reading],
      ['finding', (r) => r.seq <= this.acked.finding],
      ['alert', (r) => r.seq <= this.acked.alert],
      ['chunk', () => true],
    ];
    for (const [kind, match] of steps) {
      const over = this.usedBytes() - this.budgetBytes;
      if (over <= 0) break;
      const n = this.evict(kind, match, over);
      if (n > 0) evicted[kind] = (evicted[kind] ?? 0) + n;
    }
    const bytesUsed = this.usedBytes();
    return { evicted, bytesUsed, budgetBytes: this.budgetBytes, overBudget: bytesUsed > this.budgetBytes };
  }

  stats(): Record<RecordKind, KindStats> {
    this.open('stats');
    const out = {} as Record<RecordKind, KindStats>;
    for (const kind of RECORD_KINDS) {
      const rows = this.rows[kind];
      out[kind] = {
        lastSeq: this.lastSeq[kind],
        produced: this.produced[kind],
        ackedUpTo: this.acked[kind],
        pending: rows.filter((r) => r.seq > this.acked[kind]).length,
        rows: rows.length,
        bytes: rows.reduce((s, r) => s + r.bytes, 0),
      };
    }
    return out;
  }

  appendAudit(entry: { tMs: number; actor: string; action: string; detail: string }): AuditEntry {
    this.open('appendAudit');
    const prevHash = this.audit.at(-1)?.hash ?? '';
    const row = { id: this.audit.length + 1, ...entry, prevHash, hash: auditHash(prevHash, entry) };
    this.audit.push(row);
    return { ...row };
  }

  readAudit(afterId = 0, limit = 1000): AuditEntry[] {
    this.open('readAudit');
    return this.audit.filter((a) => a.id > afterId).slice(0, Math.max(0, limit)).map((a) => ({ ...a }));
  }

  onAppend(listener: (kinds: readonly RecordKind[]) => void): () => void {
    this.open('onAppend');
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }
}
