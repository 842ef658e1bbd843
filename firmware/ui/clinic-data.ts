/**
 * What the clinic screen reads from the device ledger: recent records (newest last), the live tail
 * of new records, alert acknowledgements (kept in the hash-chained audit log, so that who
 * acknowledged what, and when, is tamper-evident) and the audit log itself.
 *
 * Records are decoded here into plain JSON for the browser. Waveform chunks are classified by what
 * they carry: `mV` is ECG; any other unit sampled at 1 kHz or more is a phonocardiogram (PCG).
 */
import { decodeBody } from '../../device-sdk/proto/index.js';
import type { Alert, Finding, Reading, RecordKind, StreamChunk } from '../../device-sdk/records.js';
import type { AuditEntry, OutboxStore } from '../../device-sdk/store/outbox-store.js';

export interface ChunkView {
  seq: number;
  sensor: string;
  signal: 'ecg' | 'pcg' | 'other';
  t0: number;
  rateHz: number;
  unit: string;
  gain: number;
  firstSample: number;
  samples: number[];
}

export type ReadingView = Reading & { seq: number };
export type FindingView = Finding & { seq: number; panel: Panel };
export type AlertView = Alert & { seq: number; ack?: AckView };

export interface AckView {
  actor: string;
  tMs: number;
  auditId: number;
}

/** Which screen panel a finding belongs to, from its kind (`ecg-rate`, `pcg-screening`, `glucose-trend`, ...). */
export type Panel = 'ecg' | 'pcg' | 'glucose' | 'other';

export function panelOf(kind: string): Panel {
  const k = kind.toLowerCase();
  if (/^(ecg|beat|af|afib|rhythm|qrs|heart-rate|hr)\b|arrhythm|atrial/.test(k)) return 'ecg';
  if (/^(pcg|heart-sound|stethoscope|murmur|s1|s2)\b/.test(k)) return 'pcg';
  if (/^(glucose|cgm|hypo|hyper|bg)\b/.test(k)) return 'glucose';
  return 'other';
}

export function signalOf(chunk: Pick<StreamChunk, 'unit' | 'rateHz'>): ChunkView['signal'] {
  if (chunk.unit === 'mV') return 'ecg';
  return chunk.rateHz >= 1000 ? 'pcg' : 'other';
}

export function chunkView(seq: number, c: StreamChunk): ChunkView {
  return {
    seq,
    sensor: c.sensor,
    signal: signalOf(c),
    t0: c.t0,
    rateHz: c.rateHz,
    unit: c.unit,
    gain: c.gain,
    firstSample: c.firstSample,
    samples: Array.from(c.samples),
  };
}

/** Audit action of an alert acknowledgement; its detail starts with `alert <seq>`. */
export const ACK_ACTION = 'alert-ack';

/** The seq of the alert an audit entry acknowledges, or undefined when it is no acknowledgement. */
export function acknowledgedSeq(e: AuditEntry): number | undefined {
  if (e.action !== ACK_ACTION) return undefined;
  const seq = Number(/^alert (\d+)/.exec(e.detail)?.[1]);
  return Number.isInteger(seq) ? seq : undefined;
}

/**
 * The alerts stored at or after `fromTMs` (ledger time) that the audit log has no acknowledgement
 * for, oldest first: what is still to be acknowledged after a restart.
 */
export function unacknowledgedAlerts(store: OutboxStore, fromTMs: number): { seq: number; alert: Alert }[] {
  const page = 1000;
  const acked = new Set<number>();
  for (let after = 0; ; ) {
    const entries = store.readAudit(after, page);
    for (const e of entries) {
      const seq = acknowledgedSeq(e);
      if (seq !== undefined) acked.add(seq);
      after = e.id;
    }
    if (entries.length < page) break;
  }
  const out: { seq: number; alert: Alert }[] = [];
  for (let after = 0; ; ) {
    const rows = store.readMatching('alert', { fromTMs }, after, page);
    for (const row of rows) if (!acked.has(row.seq)) out.push({ seq: row.seq, alert: decodeBody('alert', row.body) });
    if (rows.length < page) return out;
    after = rows.at(-1)!.seq;
  }
}

export type LiveRecord =
  | { kind: 'chunk'; value: ChunkView }
  | { kind: 'reading'; value: ReadingView }
  | { kind: 'finding'; value: FindingView }
  | { kind: 'alert'; value: AlertView };

const LIVE_KINDS = ['alert', 'finding', 'reading', 'chunk'] as const satisfies readonly RecordKind[];

/** Reads the ledger for the clinic screen. One instance per server; not shared across stores. */
export class ClinicData {
  private readonly store: OutboxStore;
  private readonly acks = new Map<number, AckView>();
  private auditCursor = 0;
  private readonly cursors = new Map<RecordKind, number>();
  private unsubscribe: (() => void) | undefined;
  private pending = false;
  private readonly listeners = new Set<(record: LiveRecord) => void>();
  /** Severity of every alert not yet acknowledged, by seq, from the start of the ledger up to `openCursor`. */
  private readonly open = new Map<number, number>();
  private openCursor = 0;

  constructor(store: OutboxStore) {
    this.store = store;
    this.refreshAcks();
  }

  /** Reads audit entries added since the last call and picks up acknowledgements. */
  private refreshAcks(): void {
    for (;;) {
      const page = this.store.readAudit(this.auditCursor, 1000);
      for (const e of page) this.noteAudit(e);
      if (page.length < 1000) return;
    }
  }

  private noteAudit(e: AuditEntry): void {
    this.auditCursor = Math.max(this.auditCursor, e.id);
    const seq = acknowledgedSeq(e);
    if (seq !== undefined && !this.acks.has(seq)) this.acks.set(seq, { actor: e.actor, tMs: e.tMs, auditId: e.id });
  }

  private lastSeq(kind: RecordKind): number {
    return this.store.stats()[kind].lastSeq;
  }

  /**
   * The newest `limit` records of `kind` that pass `keep`, oldest first. Pages backwards through at most
   * `scanLimit` held records (`readBefore`: seqs have gaps, where records were compacted or evicted and
   * where the ledger's seqs jumped to the wall-clock floor at a start).
   */
  recent<K extends 'reading' | 'finding' | 'alert' | 'chunk'>(
    kind: K,
    limit: number,
    keep: (value: ReturnType<typeof decodeBody<K>>, seq: number) => boolean = () => true,
    scanLimit = 20_000,
  ): { seq: number; value: ReturnType<typeof decodeBody<K>> }[] {
    const out: { seq: number; value: ReturnType<typeof decodeBody<K>> }[] = [];
    let before = this.lastSeq(kind) + 1;
    let scanned = 0;
    const page = 500;
    while (out.length < limit && scanned < scanLimit) {
      const rows = this.store.readBefore(kind, before, Math.min(page, scanLimit - scanned));
      if (rows.length === 0) break;
      scanned += rows.length;
      const matched: { seq: number; value: ReturnType<typeof decodeBody<K>> }[] = [];
      for (const row of rows) {
        const value = decodeBody(kind, row.body);
        if (keep(value, row.seq)) matched.push({ seq: row.seq, value });
      }
      out.unshift(...matched.slice(Math.max(0, matched.length - (limit - out.length))));
      before = (rows[0] as { seq: number }).seq;
    }
    return out;
  }

  findingView(seq: number, f: Finding): FindingView {
    return { ...f, seq, panel: panelOf(f.kind) };
  }

  alertView(seq: number, a: Alert): AlertView {
    this.refreshAcks();
    const ack = this.acks.get(seq);
    return { ...a, seq, ...(ack === undefined ? {} : { ack }) };
  }

  /** The alert stored with `seq`, or undefined. */
  alert(seq: number): AlertView | undefined {
    const [row] = this.store.readAfter('alert', seq - 1, 1);
    if (row === undefined || row.seq !== seq) return undefined;
    return this.alertView(seq, decodeBody('alert', row.body));
  }

  ackOf(seq: number): AckView | undefined {
    this.refreshAcks();
    return this.acks.get(seq);
  }

  /**
   * The alerts nobody has acknowledged, however old: the `max` most severe (newest first within a
   * severity), oldest first, and how many there are in all. Each call reads only the alerts stored
   * since the last one; the set is kept in memory as seq and severity.
   */
  unacknowledged(max: number): { alerts: AlertView[]; total: number } {
    this.refreshAcks();
    for (;;) {
      const rows = this.store.readAfter('alert', this.openCursor, 500);
      for (const row of rows) {
        this.openCursor = row.seq;
        if (!this.acks.has(row.seq)) this.open.set(row.seq, decodeBody('alert', row.body).severity);
      }
      if (rows.length < 500) break;
    }
    for (const seq of this.open.keys()) if (this.acks.has(seq)) this.open.delete(seq);
    const wanted = [...this.open].sort((a, b) => b[1] - a[1] || b[0] - a[0]);
    const alerts: AlertView[] = [];
    for (const [seq] of wanted) {
      if (alerts.length >= max) break;
      const alert = this.alert(seq);
      if (alert === undefined) this.open.delete(seq); // evicted or compacted since
      else alerts.push(alert);
    }
    return { alerts: alerts.sort((a, b) => a.seq - b.seq), total: this.open.size };
  }

  /** Records an acknowledgement in the audit log (once per alert) and returns it. */
  acknowledge(alert: AlertView, actor: string, tMs: number): { ack: AckView; already: boolean } {
    const existing = this.ackOf(alert.seq);
    if (existing !== undefined) return { ack: existing, already: true };
    const entry = this.store.appendAudit({ tMs, actor, action: ACK_ACTION, detail: `alert ${alert.seq} ${alert.kind} severity ${alert.severity}` });
    this.noteAudit(entry);
    return { ack: this.acks.get(alert.seq) as AckView, already: false };
  }

  /** The newest `limit` audit entries, oldest first. */
  recentAudit(limit: number): AuditEntry[] {
    this.refreshAcks();
    const from = Math.max(0, this.auditCursor - limit);
    return this.store.readAudit(from, limit);
  }

  /** Live records as they are committed to the ledger. The first listener starts tailing; the last one stops it. */
  subscribe(listener: (record: LiveRecord) => void): () => void {
    this.listeners.add(listener);
    if (this.unsubscribe === undefined) {
      for (const kind of LIVE_KINDS) this.cursors.set(kind, this.lastSeq(kind));
      this.unsubscribe = this.store.onAppend(() => this.schedule());
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Appends are reported inside the writer's call: read them on the next turn, coalesced. */
  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (this.unsubscribe !== undefined) this.drain();
    });
  }

  private drain(): void {
    for (const kind of LIVE_KINDS) {
      let cursor = this.cursors.get(kind) ?? 0;
      for (;;) {
        const rows = this.store.readAfter(kind, cursor, 500);
        for (const row of rows) {
          cursor = row.seq;
          const record = this.live(kind, row.seq, row.body);
          for (const listener of this.listeners) listener(record);
        }
        if (rows.length < 500) break;
      }
      this.cursors.set(kind, cursor);
    }
  }

  private live(kind: (typeof LIVE_KINDS)[number], seq: number, body: Uint8Array): LiveRecord {
    switch (kind) {
      case 'chunk':
        return { kind, value: chunkView(seq, decodeBody('chunk', body)) };
      case 'reading':
        return { kind, value: { ...decodeBody('reading', body), seq } };
      case 'finding':
        return { kind, value: this.findingView(seq, decodeBody('finding', body)) };
      default:
        return { kind, value: this.alertView(seq, decodeBody('alert', body)) };
    }
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
