import { type Clock, systemClock } from '../clock.js';
import { encodeBody } from '../proto/index.js';
import type { RecordBodies, RecordKind } from '../records.js';
import type { AppendEntry, OutboxStore } from './outbox-store.js';

export interface LedgerOptions {
  /** Buffered records are committed at least this often (ms). */
  flushIntervalMs: number;
  /** ... or as soon as this many are buffered. */
  maxBuffered: number;
  clock: Clock;
  /** Called when a timed flush fails (disk full, I/O). The records stay buffered and the flush is retried. */
  onFlushError: (error: unknown) => void;
}

export const DEFAULT_LEDGER_OPTIONS: Readonly<LedgerOptions> = Object.freeze({
  flushIntervalMs: 200,
  maxBuffered: 1000,
  clock: systemClock,
  onFlushError: () => undefined,
});

/** Which field of each kind names its tag (the sensor or type it came from). */
function tagOf<K extends RecordKind>(kind: K, value: RecordBodies[K]): string {
  switch (kind) {
    case 'chunk':
    case 'reading':
      return (value as RecordBodies['chunk' | 'reading']).sensor;
    case 'finding':
    case 'alert':
      return (value as RecordBodies['finding' | 'alert']).kind;
    default:
      return (value as RecordBodies['quarantine']).source;
  }
}

/**
 * The typed write API of the device ledger. Records are encoded at once (bad values fail at the
 * caller) and committed in batched transactions off the hot path: every `flushIntervalMs` or
 * `maxBuffered` records. Alerts skip the buffer: `addAlert` returns after the alert (and everything
 * buffered before it) is durable, because a local alarm must never depend on a timer.
 */
export class Ledger {
  readonly store: OutboxStore;
  private readonly options: LedgerOptions;
  private buffer: AppendEntry[] = [];
  /** Alerts that could not be stored when raised: told their seq by the flush that stores them. */
  private readonly whenStored = new Map<AppendEntry, (seq: number) => void>();
  private timer: ReturnType<Clock['setTimeout']> | undefined;

  constructor(store: OutboxStore, options: Partial<LedgerOptions> = {}) {
    this.store = store;
    this.options = { ...DEFAULT_LEDGER_OPTIONS, ...options };
  }

  /** Buffers a record; it is durable after the next flush. */
  add<K extends RecordKind>(kind: K, value: RecordBodies[K]): void {
    this.buffer.push({ kind, tMs: this.options.clock.now(), body: encodeBody(kind, value), tag: tagOf(kind, value) });
    if (this.buffer.length >= this.options.maxBuffered) this.flushOrRetry();
    else this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.flushOrRetry();
    }, this.options.flushIntervalMs);
  }

  /** A flush on the hot path or a timer never throws: a failure is reported and retried later. */
  private flushOrRetry(): void {
    try {
      this.flush();
    } catch (error) {
      this.options.onFlushError(error);
      this.arm();
    }
  }

  /**
   * Stores an alert durably before returning its seq. When the store refuses, the alert stays buffered,
   * the error is thrown, and `onStored` (when given) is called with its seq by the later flush that stores it:
   * what an acknowledgement of it will name.
   */
  addAlert(alert: RecordBodies['alert'], onStored?: (seq: number) => void): number {
    const entry: AppendEntry = { kind: 'alert', tMs: this.options.clock.now(), body: encodeBody('alert', alert), tag: alert.kind };
    this.buffer.push(entry);
    try {
      return this.flush().at(-1) as number;
    } catch (error) {
      if (onStored) this.whenStored.set(entry, onStored);
      throw error;
    }
  }

  /**
   * Stores the finding that raised an alert, then the alert with the finding's seq as `findingSeq`,
   * both durably before returning the alert's seq. When the store refuses, both stay buffered (the
   * alert without the link) and the error is thrown, as `addAlert` does.
   */
  addAlertWithFinding(alert: RecordBodies['alert'], finding: RecordBodies['finding'], onStored?: (seq: number) => void): number {
    this.buffer.push({ kind: 'finding', tMs: this.options.clock.now(), body: encodeBody('finding', finding), tag: finding.kind });
    let findingSeq: number;
    try {
      findingSeq = this.flush().at(-1) as number;
    } catch (error) {
      const entry: AppendEntry = { kind: 'alert', tMs: this.options.clock.now(), body: encodeBody('alert', alert), tag: alert.kind };
      this.buffer.push(entry);
      if (onStored) this.whenStored.set(entry, onStored);
      throw error;
    }
    return this.addAlert({ ...alert, findingSeq }, onStored);
  }

  /**
   * Commits everything buffered in one transaction; returns the seqs assigned, in order. When the
   * store refuses (disk full, I/O error), the records stay buffered, in order, and the error is thrown.
   */
  flush(): number[] {
    if (this.timer !== undefined) {
      this.options.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.length === 0) return [];
    const entries = this.buffer;
    this.buffer = [];
    let seqs: number[];
    try {
      seqs = this.store.append(entries);
    } catch (error) {
      this.buffer = entries.concat(this.buffer);
      throw error;
    }
    if (this.whenStored.size > 0) this.tellStored(entries, seqs);
    return seqs;
  }

  /** Tells the alerts stored late (`addAlert`'s `onStored`) their seqs; a listener's error never fails the flush. */
  private tellStored(entries: readonly AppendEntry[], seqs: readonly number[]): void {
    entries.forEach((entry, i) => {
      const onStored = this.whenStored.get(entry);
      if (!onStored) return;
      this.whenStored.delete(entry);
      try {
        onStored(seqs[i] as number);
      } catch {
        // the record is durable; telling a listener is best effort
      }
    });
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Removes and returns every buffered (not yet durable) record, in order: to store them elsewhere. */
  takeBuffered(): AppendEntry[] {
    const entries = this.buffer;
    this.buffer = [];
    this.whenStored.clear();
    return entries;
  }

  /** Drops the buffered (not yet durable) records of `kind`, e.g. raw waveform when the disk is full; returns how many. */
  dropBuffered(kind: RecordKind): number {
    const before = this.buffer.length;
    this.buffer = this.buffer.filter((e) => e.kind !== kind);
    for (const e of this.whenStored.keys()) if (e.kind === kind) this.whenStored.delete(e);
    return before - this.buffer.length;
  }
}
