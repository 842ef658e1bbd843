import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreError } from '../errors.js';
import { RECORD_KINDS, type RecordKind } from '../records.js';

/** File name of the seq reservation, in the data directory next to the ledger (never moved with it). */
export const SEQ_RESERVATION_FILE = 'ledger-seq.json';

export interface SeqReservationOptions {
  /** Seqs reserved ahead per kind with each write: one write (2 fsyncs) per this many records of a kind. */
  blockSize: number;
}

export const DEFAULT_SEQ_RESERVATION_OPTIONS: Readonly<SeqReservationOptions> = Object.freeze({ blockSize: 4096 });

/**
 * Seqs per millisecond of device time in the wall-clock seq floor: a ledger opened at device time `t` (ms)
 * hands out seqs above `t * SEQ_FLOOR_PER_MS`. Another ledger under the same device id (a new SD card, a
 * copy restored from a backup) that was opened earlier on a clock that was right then is below it unless
 * it made more than this many records of a kind per ms since it was opened.
 */
export const SEQ_FLOOR_PER_MS = 1000;

/**
 * Highest device time (ms) the floor follows: 8e12 ms (year 2223), so a floor stays below 8e15 and seqs
 * counted up from it stay exact in a double (2^53 = 9.007e15) for another 1e15 records. A clock past it
 * (a glitched RTC) gives no floor at all rather than one that could leave the safe range.
 */
export const SEQ_FLOOR_MAX_CLOCK_MS = 8e12;

/**
 * The wall-clock seq floor at device time `nowMs`: `floor(nowMs) * SEQ_FLOOR_PER_MS`, or 0 when the clock
 * reads no plausible time (not finite, not positive, past `SEQ_FLOOR_MAX_CLOCK_MS`).
 */
export function wallClockSeqFloor(nowMs: number): number {
  if (!Number.isFinite(nowMs) || nowMs <= 0 || nowMs > SEQ_FLOOR_MAX_CLOCK_MS) return 0;
  return Math.floor(nowMs) * SEQ_FLOOR_PER_MS;
}

/**
 * Highest seq a ledger is moved above on the edge's word (`raiseSeqFloor`): 2^53 - 2^40, so that seqs
 * stay exact in a double for another 2^40 records. A higher floor is refused.
 */
export const SEQ_FLOOR_LIMIT = Number.MAX_SAFE_INTEGER - 2 ** 40;

/** Where the seq reservation of the ledger at `ledgerFile` lives. */
export function seqReservationPath(ledgerFile: string): string {
  return join(dirname(ledgerFile), SEQ_RESERVATION_FILE);
}

/**
 * The highest seq per kind the ledger of a data directory may have handed out, kept outside the SQLite
 * file so that a fresh ledger (the old one damaged, lost or deleted) starts above every seq the old one
 * could have used, even when nothing of the old file is readable.
 *
 * Contract: `cover(kind, seq)` returns only once a bound of at least `seq` is durable (written to a
 * temporary file, fsync'd, renamed over the old one, directory fsync'd): the store calls it inside the
 * append transaction, before the commit, so no committed seq is ever above the durable bound. Bounds
 * only grow. An unreadable file reads as no bounds (`damaged` says so) and is rewritten on the next
 * reservation.
 */
export class SeqReservation {
  readonly path: string;
  private readonly options: SeqReservationOptions;
  private readonly bounds: Record<RecordKind, number>;
  /** The file existed but could not be read or parsed (it is rewritten by the next reservation). */
  readonly damaged: string | undefined;
  /** Writes made by this process (each: 2 fsyncs). */
  writes = 0;

  constructor(path: string, options: Partial<SeqReservationOptions> = {}) {
    this.path = path;
    this.options = { ...DEFAULT_SEQ_RESERVATION_OPTIONS, ...options };
    this.bounds = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.damaged = (error as Error).message;
    }
    if (text === undefined) return;
    try {
      const parsed = JSON.parse(text) as { reserved?: Record<string, unknown> };
      for (const kind of RECORD_KINDS) {
        const n = parsed.reserved?.[kind];
        if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) this.bounds[kind] = n;
      }
    } catch (error) {
      this.damaged = `not JSON: ${(error as Error).message}`;
    }
  }

  /** The reserved bound of `kind`: no seq above it was ever committed (0: none reserved). */
  bound(kind: RecordKind): number {
    return this.bounds[kind];
  }

  /** Makes a bound of at least `seq` for `kind` durable, reserving `blockSize` more while at it. */
  cover(kind: RecordKind, seq: number): void {
    if (seq <= this.bounds[kind]) return;
    this.write({ ...this.bounds, [kind]: seq + this.options.blockSize });
  }

  /** Raises the bounds to at least `floors` (never lowers one). */
  raise(floors: Partial<Record<RecordKind, number>>): void {
    const next = { ...this.bounds };
    let changed = false;
    for (const kind of RECORD_KINDS) {
      const floor = floors[kind] ?? 0;
      if (floor > next[kind]) {
        next[kind] = floor;
        changed = true;
      }
    }
    if (changed || this.damaged !== undefined) this.write(next);
  }

  private write(bounds: Record<RecordKind, number>): void {
    const tmp = `${this.path}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeFileSync(fd, `${JSON.stringify({ reserved: bounds })}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      const dir = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (error) {
      throw new StoreError('append', `cannot reserve seqs in ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    Object.assign(this.bounds, bounds);
    this.writes += 1;
  }
}
