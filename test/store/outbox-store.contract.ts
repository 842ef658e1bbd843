/**
 * The `OutboxStore` contract suite (STYLE item 4): one suite, run against every implementation.
 * Each `it` names the clause of the contract in `device-sdk/store/outbox-store.ts` it checks.
 *
 * `open(options)` returns a fresh, empty ledger. When the implementation persists, `reopen()` closes
 * the current instance (if still open) and opens the same ledger again with the same options,
 * returning the new instance; `cleanup()` closes whatever instance is open and removes its storage.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreError } from '../../device-sdk/errors.js';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { auditHash } from '../../device-sdk/store/audit.js';
import { type AppendEntry, type OutboxStore, type OutboxStoreOptions, ROW_OVERHEAD_BYTES } from '../../device-sdk/store/outbox-store.js';
import { SEQ_FLOOR_PER_MS, wallClockSeqFloor } from '../../device-sdk/store/seq-reservation.js';

export interface OutboxStoreHarness {
  store: OutboxStore;
  reopen?: () => OutboxStore;
  cleanup: () => void;
}

/** Device time of the first record in these tests (ms). */
const T0 = 1_700_000_000_000;
const DAY = 24 * 3600_000;
/** Large enough for every read in these tests. */
const ALL = 1_000_000;

/** A body of `size` bytes whose content identifies `mark`, so that mixed-up records are visible. */
function body(size: number, mark = 0): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (mark * 31 + i * 7 + 1) & 0xff;
  return b;
}

function entry(kind: RecordKind, options: { size?: number; mark?: number; tMs?: number; tag?: string } = {}): AppendEntry {
  const e: AppendEntry = { kind, tMs: options.tMs ?? T0, body: body(options.size ?? 8, options.mark ?? 0) };
  if (options.tag !== undefined) e.tag = options.tag;
  return e;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function seqsOf(store: OutboxStore, kind: RecordKind, afterSeq = 0): number[] {
  return store.readAfter(kind, afterSeq, ALL).map((r) => r.seq);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, it returned');
}

function expectStoreError(fn: () => unknown, operation: string): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe('store');
  expect((error as StoreError).operation).toBe(operation);
}

/** Bytes the budget charges for a row with a body of `size` bytes. */
const rowBytes = (size: number) => size + ROW_OVERHEAD_BYTES;

/** `persistent`: the implementation survives a reopen (its harness provides `reopen`); only then are the reopen clauses registered. */
export function describeOutboxStoreContract(name: string, open: (opts: OutboxStoreOptions) => OutboxStoreHarness, persistent: boolean): void {
  describe(`OutboxStore contract: ${name}`, () => {
    const harnesses: OutboxStoreHarness[] = [];
    afterEach(() => {
      for (const h of harnesses.splice(0)) h.cleanup();
    });
    function make(options: Partial<OutboxStoreOptions> = {}): OutboxStoreHarness {
      const h = open({ deviceId: 'dev-contract', ...options });
      harnesses.push(h);
      return h;
    }

    describe('identity', () => {
      it('exposes the deviceId it was opened with and a bootId that every record it stores carries', () => {
        const { store } = make({ deviceId: 'dev-identity' });
        expect(store.deviceId).toBe('dev-identity');
        expect(store.bootId).toMatch(/\S/);
        store.append([entry('reading'), entry('alert')]);
        expect(store.readAfter('reading', 0, 10)[0]?.bootId).toBe(store.bootId);
        expect(store.readAfter('alert', 0, 10)[0]?.bootId).toBe(store.bootId);
      });
    });

    describe('append', () => {
      it('assigns each entry the next seq of its kind, starting at 1, independently per kind', () => {
        const { store } = make();
        expect(store.append([entry('reading'), entry('alert'), entry('reading'), entry('chunk'), entry('alert'), entry('reading')])).toEqual([
          1, 1, 2, 1, 2, 3,
        ]);
        expect(store.append([entry('finding'), entry('reading'), entry('quarantine')])).toEqual([1, 4, 1]);
        expect(store.append([entry('chunk')])).toEqual([2]);
        expect(seqsOf(store, 'reading')).toEqual([1, 2, 3, 4]);
        expect(seqsOf(store, 'alert')).toEqual([1, 2]);
        expect(seqsOf(store, 'chunk')).toEqual([1, 2]);
        expect(seqsOf(store, 'finding')).toEqual([1]);
        expect(seqsOf(store, 'quarantine')).toEqual([1]);
      });

      it('returns [] for an empty call and assigns nothing', () => {
        const { store } = make();
        expect(store.append([])).toEqual([]);
        expect(store.append([entry('alert')])).toEqual([1]);
      });

      it('keeps body, tMs and tag byte for byte (tag defaults to the empty string)', () => {
        const { store } = make();
        const big = body(70_000, 9);
        store.append([
          { kind: 'chunk', tMs: T0 + 123, body: big, tag: 'ecg' },
          { kind: 'chunk', tMs: T0 - 5, body: new Uint8Array(0) },
          { kind: 'reading', tMs: 0, body: Uint8Array.of(0, 255, 0, 1), tag: 'glucose' },
        ]);
        const chunks = store.readAfter('chunk', 0, 10);
        expect(chunks.map((r) => [r.kind, r.seq, r.tMs, r.tag, hex(r.body)])).toEqual([
          ['chunk', 1, T0 + 123, 'ecg', hex(big)],
          ['chunk', 2, T0 - 5, '', ''],
        ]);
        const [reading] = store.readAfter('reading', 0, 10);
        expect(reading).toMatchObject({ kind: 'reading', seq: 1, tMs: 0, tag: 'glucose' });
        expect(hex(reading?.body ?? new Uint8Array(1))).toBe('00ff0001');
      });

      it('keeps the bytes it was given even if the caller reuses its buffer afterwards', () => {
        const { store } = make();
        const b = body(16, 3);
        const original = hex(b);
        store.append([{ kind: 'reading', tMs: T0, body: b }]);
        b.fill(0xee);
        expect(hex(store.readAfter('reading', 0, 1)[0]?.body ?? new Uint8Array(0))).toBe(original);
      });

      it('keeps the stored bytes even if a reader mutates a body it was given', () => {
        const { store } = make();
        store.append([entry('reading', { size: 16, mark: 4 })]);
        const original = hex(body(16, 4));
        const first = store.readAfter('reading', 0, 1)[0];
        first?.body.fill(0);
        expect(hex(store.readAfter('reading', 0, 1)[0]?.body ?? new Uint8Array(0))).toBe(original);
      });

      it.each([0, 1, 2])('is atomic: an unknown kind at position %i throws StoreError and stores nothing, consumes no seq, notifies nobody', (position) => {
        const { store } = make();
        store.append([entry('reading'), entry('reading'), entry('alert')]);
        const listener = vi.fn();
        store.onAppend(listener);
        const before = store.stats();
        const entries: AppendEntry[] = [entry('reading', { mark: 1 }), entry('alert', { mark: 1 })];
        entries.splice(position, 0, { kind: 'vital-sign' as RecordKind, tMs: T0, body: body(4) });
        expectStoreError(() => store.append(entries), 'append');
        expect(store.stats()).toEqual(before);
        expect(seqsOf(store, 'reading')).toEqual([1, 2]);
        expect(seqsOf(store, 'alert')).toEqual([1]);
        expect(listener).not.toHaveBeenCalled();
        // "the next seq of its kind": the failed call left no gap behind it.
        expect(store.append([entry('alert', { mark: 2 }), entry('reading', { mark: 2 })])).toEqual([2, 3]);
        expect(store.readAfter('reading', 2, 10).map((r) => hex(r.body))).toEqual([hex(body(8, 2))]);
      });

      it('seqs strictly increase per kind and never repeat, across deletions (and reopens when the store persists)', () => {
        const probe = make();
        const canReopen = probe.reopen !== undefined;
        type Op = { t: 'append'; kinds: RecordKind[] } | { t: 'drop'; kind: RecordKind } | { t: 'reopen' };
        const kindArb = fc.constantFrom(...RECORD_KINDS);
        const opArb: fc.Arbitrary<Op> = fc.oneof(
          { weight: 4, arbitrary: fc.array(kindArb, { minLength: 1, maxLength: 12 }).map((kinds): Op => ({ t: 'append', kinds })) },
          { weight: 2, arbitrary: kindArb.map((kind): Op => ({ t: 'drop', kind })) },
          { weight: canReopen ? 1 : 0, arbitrary: fc.constant<Op>({ t: 'reopen' }) },
        );
        fc.assert(
          fc.property(fc.array(opArb, { minLength: 1, maxLength: 14 }), (ops) => {
            const h = open({ deviceId: 'dev-seq', retentionMs: { alert: 0, finding: 0, reading: 0, quarantine: 0, chunk: 0 } });
            let store = h.store;
            try {
              const produced = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
              const held = Object.fromEntries(RECORD_KINDS.map((k) => [k, [] as number[]])) as Record<RecordKind, number[]>;
              for (const op of ops) {
                if (op.t === 'append') {
                  const seqs = store.append(op.kinds.map((kind, i) => entry(kind, { mark: i })));
                  const expected = op.kinds.map((kind) => ++produced[kind]);
                  expect(seqs).toEqual(expected);
                  op.kinds.forEach((kind, i) => {
                    held[kind].push(seqs[i] as number);
                  });
                } else if (op.t === 'drop') {
                  // Acknowledge everything of the kind, then compact it away (retention 0, records in the past).
                  store.acknowledge(op.kind, Number.MAX_SAFE_INTEGER);
                  store.compact(T0 + DAY);
                  held[op.kind] = [];
                } else if (h.reopen) {
                  store = h.reopen();
                }
              }
              const stats = store.stats();
              for (const kind of RECORD_KINDS) {
                expect(stats[kind].lastSeq).toBe(produced[kind]);
                expect(seqsOf(store, kind)).toEqual(held[kind]);
              }
              // One more of each kind: strictly above everything ever assigned.
              const next = store.append(RECORD_KINDS.map((kind) => entry(kind)));
              expect(next).toEqual(RECORD_KINDS.map((kind) => produced[kind] + 1));
            } finally {
              h.cleanup();
            }
          }),
          { seed: 42, numRuns: 30 },
        );
      });

      it('does not reuse the seqs of records removed by the budget', () => {
        const { store } = make({ budgetBytes: 0 });
        store.append([entry('chunk'), entry('chunk'), entry('chunk')]);
        expect(store.enforceBudget(T0).evicted).toEqual({ chunk: 3 });
        expect(store.stats().chunk).toMatchObject({ rows: 0, lastSeq: 3 });
        expect(store.append([entry('chunk')])).toEqual([4]);
      });
    });

    describe('readAfter', () => {
      it('returns held records of that kind with seq > afterSeq in ascending order, at most `limit`', () => {
        const { store } = make();
        for (let i = 0; i < 4; i++) store.append([entry('reading', { mark: i }), entry('chunk', { mark: 100 + i }), entry('reading', { mark: 10 + i })]);
        expect(seqsOf(store, 'reading')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(seqsOf(store, 'reading', 5)).toEqual([6, 7, 8]);
        expect(store.readAfter('reading', 2, 3).map((r) => r.seq)).toEqual([3, 4, 5]);
        expect(store.readAfter('reading', 0, 1).map((r) => r.seq)).toEqual([1]);
        expect(store.readAfter('reading', 0, 0)).toEqual([]);
        expect(store.readAfter('reading', 8, 10)).toEqual([]);
        expect(store.readAfter('alert', 0, 10)).toEqual([]);
        expect(store.readAfter('chunk', 3, 10).map((r) => [r.kind, r.seq, hex(r.body)])).toEqual([['chunk', 4, hex(body(8, 103))]]);
        expect(store.readAfter('reading', 0, 10).map((r) => hex(r.body))).toEqual([0, 10, 1, 11, 2, 12, 3, 13].map((m) => hex(body(8, m))));
      });

      it('stops at maxBytes of body in total, but returns at least one record however large', () => {
        const { store } = make();
        store.append([entry('chunk', { size: 100 }), entry('chunk', { size: 100 }), entry('chunk', { size: 100 }), entry('chunk', { size: 5000 })]);
        expect(store.readAfter('chunk', 0, 10, 300).map((r) => r.seq)).toEqual([1, 2, 3]);
        expect(store.readAfter('chunk', 0, 10, 299).map((r) => r.seq)).toEqual([1, 2]);
        expect(store.readAfter('chunk', 0, 10, 200).map((r) => r.seq)).toEqual([1, 2]);
        expect(store.readAfter('chunk', 0, 10, 199).map((r) => r.seq)).toEqual([1]);
        expect(store.readAfter('chunk', 0, 10, 1).map((r) => r.seq)).toEqual([1]);
        expect(store.readAfter('chunk', 0, 10, 0).map((r) => r.seq)).toEqual([1]);
        expect(store.readAfter('chunk', 2, 10, 200).map((r) => r.seq)).toEqual([3]);
        const [huge, ...rest] = store.readAfter('chunk', 3, 10, 10);
        expect(rest).toEqual([]);
        expect(huge?.seq).toBe(4);
        expect(huge?.body.byteLength).toBe(5000);
      });

      it('fills up to both limits, in seq order, over held records with gaps (model-checked)', () => {
        const recordArb = fc.record({ size: fc.integer({ min: 0, max: 300 }), old: fc.boolean() });
        fc.assert(
          fc.property(
            fc.array(recordArb, { minLength: 1, maxLength: 25 }),
            fc.nat(30),
            fc.nat(30),
            fc.nat(30),
            fc.option(fc.nat(2500), { nil: undefined }),
            (records, ackTo, afterSeq, limit, maxBytes) => {
              const h = open({ deviceId: 'dev-read', retentionMs: { reading: 1000 } });
              try {
                const { store } = h;
                store.append(
                  records.flatMap((r, i) => [
                    entry('reading', { size: r.size, mark: i, tMs: r.old ? T0 : T0 + 5000 }),
                    entry('alert', { size: 3, mark: 50 + i }),
                  ]),
                );
                store.acknowledge('reading', ackTo);
                store.compact(T0 + 5000);
                const held = records
                  .map((r, i) => ({ seq: i + 1, size: r.size, mark: i, old: r.old }))
                  .filter((r) => !(r.seq <= ackTo && r.old))
                  .filter((r) => r.seq > afterSeq);
                const expected: typeof held = [];
                let total = 0;
                for (const r of held) {
                  if (expected.length >= limit) break;
                  if (maxBytes !== undefined && expected.length > 0 && total + r.size > maxBytes) break;
                  total += r.size;
                  expected.push(r);
                }
                const got = store.readAfter('reading', afterSeq, limit, maxBytes);
                expect(got.map((r) => [r.kind, r.seq, hex(r.body)])).toEqual(expected.map((r) => ['reading', r.seq, hex(body(r.size, r.mark))]));
              } finally {
                h.cleanup();
              }
            },
          ),
          { seed: 42, numRuns: 60 },
        );
      });
    });

    describe('readMatching', () => {
      it('returns the held records of those tags stored at or after fromTMs, in seq order, after afterSeq, at most `limit`', () => {
        const { store } = make({ retentionMs: { reading: 1000 } });
        // 12 readings: tags a, b, c in turn, stored 1 s apart from T0.
        store.append(Array.from({ length: 12 }, (_, i) => entry('reading', { mark: i, tag: 'abc'[i % 3] as string, tMs: T0 + i * 1000 })));
        store.append([entry('alert', { mark: 99, tag: 'a', tMs: T0 + 20_000 })]);
        const seqs = (filter: Parameters<OutboxStore['readMatching']>[1], afterSeq = 0, limit = ALL) => store.readMatching('reading', filter, afterSeq, limit).map((r) => r.seq);
        expect(seqs({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        expect(seqs({ tags: ['a'] })).toEqual([1, 4, 7, 10]);
        expect(seqs({ tags: ['c', 'a'] })).toEqual([1, 3, 4, 6, 7, 9, 10, 12]);
        expect(seqs({ tags: [] })).toEqual([]);
        expect(seqs({ tags: ['z'] })).toEqual([]);
        expect(seqs({ fromTMs: T0 + 8000 })).toEqual([9, 10, 11, 12]);
        expect(seqs({ tags: ['b'], fromTMs: T0 + 4000 })).toEqual([5, 8, 11]);
        expect(seqs({ tags: ['a', 'b'] }, 4, 3)).toEqual([5, 7, 8]);
        expect(seqs({ tags: ['a'] }, 0, 0)).toEqual([]);
        // Bodies, times and tags as stored; other kinds apart.
        expect(store.readMatching('reading', { tags: ['c'], fromTMs: T0 + 10_000 }, 0, ALL).map((r) => [r.kind, r.seq, r.tMs, r.tag, hex(r.body)])).toEqual([['reading', 12, T0 + 11_000, 'c', hex(body(8, 11))]]);
        expect(store.readMatching('alert', { tags: ['a'] }, 0, ALL).map((r) => [r.kind, r.seq, hex(r.body)])).toEqual([['alert', 1, hex(body(8, 99))]]);
        // Only held records: compacted ones are gone.
        store.acknowledge('reading', 6);
        store.compact(T0 + 60_000);
        expect(seqs({ tags: ['a'] })).toEqual([7, 10]);
      });

      it('answers as readAfter filtered by tag and stored time (model-checked)', () => {
        fc.assert(
          fc.property(
            fc.array(fc.record({ tag: fc.constantFrom('', 'x', 'y', 'z'), dt: fc.integer({ min: -5, max: 5 }) }), { minLength: 1, maxLength: 30 }),
            fc.option(fc.subarray(['', 'x', 'y', 'z']), { nil: undefined }),
            fc.option(fc.integer({ min: -6, max: 6 }), { nil: undefined }),
            fc.nat(31),
            fc.nat(31),
            (records, tags, from, afterSeq, limit) => {
              const h = open({ deviceId: 'dev-match' });
              try {
                h.store.append(records.map((r, i) => entry('reading', { mark: i, tag: r.tag, tMs: T0 + r.dt })));
                const fromTMs = from === undefined ? undefined : T0 + from;
                const expected = h.store
                  .readAfter('reading', afterSeq, ALL)
                  .filter((r) => (tags === undefined || tags.includes(r.tag)) && (fromTMs === undefined || r.tMs >= fromTMs))
                  .slice(0, limit);
                const filter = { ...(tags === undefined ? {} : { tags }), ...(fromTMs === undefined ? {} : { fromTMs }) };
                expect(h.store.readMatching('reading', filter, afterSeq, limit).map((r) => [r.seq, r.tag, r.tMs, hex(r.body)])).toEqual(expected.map((r) => [r.seq, r.tag, r.tMs, hex(r.body)]));
              } finally {
                h.cleanup();
              }
            },
          ),
          { seed: 7, numRuns: 60 },
        );
      });
    });

    describe('acknowledge', () => {
      it('raises the watermark monotonically: a lower or equal value is ignored and returns false', () => {
        const { store } = make();
        store.append([1, 2, 3, 4, 5].map(() => entry('reading')));
        expect(store.ackedUpTo('reading')).toBe(0);
        expect(store.acknowledge('reading', 3)).toBe(true);
        expect(store.ackedUpTo('reading')).toBe(3);
        expect(store.acknowledge('reading', 2)).toBe(false);
        expect(store.ackedUpTo('reading')).toBe(3);
        expect(store.acknowledge('reading', 3)).toBe(false);
        expect(store.acknowledge('reading', 0)).toBe(false);
        expect(store.ackedUpTo('reading')).toBe(3);
        expect(store.acknowledge('reading', 4)).toBe(true);
        expect(store.ackedUpTo('reading')).toBe(4);
      });

      it('clamps a value above the last assigned seq to it', () => {
        const { store } = make();
        store.append([entry('finding'), entry('finding')]);
        expect(store.acknowledge('finding', 1000)).toBe(true);
        expect(store.ackedUpTo('finding')).toBe(2);
        // Already at lastSeq: clamped to 2 again, which is not a raise.
        expect(store.acknowledge('finding', 1001)).toBe(false);
        // Nothing produced yet: clamped to 0, nothing to raise.
        expect(store.acknowledge('alert', 50)).toBe(false);
        expect(store.ackedUpTo('alert')).toBe(0);
        // Records appended later are not acknowledged by the earlier, clamped call.
        store.append([entry('finding')]);
        expect(store.stats().finding).toMatchObject({ lastSeq: 3, ackedUpTo: 2, pending: 1 });
      });

      it('is per kind and deletes nothing', () => {
        const { store } = make();
        store.append([entry('reading'), entry('reading'), entry('alert'), entry('alert')]);
        expect(store.acknowledge('reading', 2)).toBe(true);
        expect(store.ackedUpTo('alert')).toBe(0);
        expect(seqsOf(store, 'reading')).toEqual([1, 2]);
        expect(store.stats().reading).toMatchObject({ ackedUpTo: 2, pending: 0, rows: 2 });
        expect(store.stats().alert).toMatchObject({ ackedUpTo: 0, pending: 2, rows: 2 });
      });
    });

    describe('rewind', () => {
      it('lowers the watermark (never below 0); a higher or equal value is ignored; rows above it are pending and kept from compaction', () => {
        const { store } = make({ retentionMs: { reading: 0 } });
        store.append([1, 2, 3, 4, 5].map((i) => entry('reading', { tMs: T0 + i })));
        store.acknowledge('reading', 5);
        expect(store.rewind('reading', 5)).toBe(false);
        expect(store.rewind('reading', 9)).toBe(false);
        expect(store.rewind('reading', 2)).toBe(true);
        expect(store.stats().reading).toMatchObject({ ackedUpTo: 2, pending: 3, rows: 5 });
        store.compact(T0 + DAY);
        expect(seqsOf(store, 'reading')).toEqual([3, 4, 5]);
        expect(store.rewind('reading', -4)).toBe(true);
        expect(store.ackedUpTo('reading')).toBe(0);
        expect(store.rewind('reading', 0)).toBe(false);
        // Raised again by acknowledge, as usual.
        expect(store.acknowledge('reading', 5)).toBe(true);
      });

      if (persistent) {
        it('is durable across a reopen', () => {
          const h = make();
          h.store.append([entry('alert'), entry('alert'), entry('alert')]);
          h.store.acknowledge('alert', 3);
          h.store.rewind('alert', 1);
          const again = (h.reopen as () => OutboxStore)();
          expect(again.stats().alert).toMatchObject({ ackedUpTo: 1, pending: 2 });
        });
      }
    });

    describe('heldFrom', () => {
      it('is the lowest seq held, or lastSeq + 1 when none is', () => {
        const { store } = make({ retentionMs: { finding: 0 } });
        expect(store.heldFrom('finding')).toBe(1);
        store.append([1, 2, 3, 4].map((i) => entry('finding', { tMs: T0 + i })));
        expect(store.heldFrom('finding')).toBe(1);
        store.acknowledge('finding', 2);
        store.compact(T0 + DAY);
        expect(store.heldFrom('finding')).toBe(3);
        store.acknowledge('finding', 4);
        store.compact(T0 + DAY);
        expect(store.heldFrom('finding')).toBe(5);
        expect(store.heldFrom('alert')).toBe(1);
      });
    });

    describe('compact', () => {
      it('deletes acknowledged records older than their kind retention, and nothing else', () => {
        const { store } = make({ retentionMs: { reading: 1000, alert: 10_000 } });
        // readings at T0, T0+100, ..., T0+900; alerts likewise.
        store.append(Array.from({ length: 10 }, (_, i) => entry('reading', { tMs: T0 + i * 100, mark: i })));
        store.append(Array.from({ length: 10 }, (_, i) => entry('alert', { tMs: T0 + i * 100, mark: i })));
        store.append(Array.from({ length: 3 }, () => entry('chunk', { tMs: T0 - 10 * DAY })));
        store.acknowledge('reading', 7);
        store.acknowledge('alert', 10);
        // Cut-off for readings: T0+1500-1000 = T0+500. Acked and older: seqs 1..5 (tMs < T0+500).
        // seq 6 is exactly at the cut-off (not older), 7 is younger, 8..10 are not acknowledged.
        // Alerts: retention 10 s, nothing is older. Chunks: far past retention but not acknowledged.
        expect(store.compact(T0 + 1500)).toEqual({ reading: 5 });
        expect(seqsOf(store, 'reading')).toEqual([6, 7, 8, 9, 10]);
        expect(seqsOf(store, 'alert')).toHaveLength(10);
        expect(seqsOf(store, 'chunk')).toEqual([1, 2, 3]);
        expect(store.stats().reading).toMatchObject({ rows: 5, lastSeq: 10, ackedUpTo: 7, pending: 3, bytes: 5 * rowBytes(8) });
        // Much later, all acked readings and alerts are past retention; unacked ones stay.
        expect(store.compact(T0 + DAY)).toEqual({ reading: 2, alert: 10 });
        expect(seqsOf(store, 'reading')).toEqual([8, 9, 10]);
        expect(store.compact(T0 + DAY)).toEqual({});
      });

      it('uses the default retention of each kind when none is given', () => {
        const { store } = make();
        store.append([entry('chunk', { tMs: T0 }), entry('reading', { tMs: T0 })]);
        store.acknowledge('chunk', 1);
        store.acknowledge('reading', 1);
        // Two days later: past the 24 h chunk retention, well within the 90 day clinical retention.
        expect(store.compact(T0 + 2 * DAY)).toEqual({ chunk: 1 });
        expect(seqsOf(store, 'reading')).toEqual([1]);
        expect(store.compact(T0 + 91 * DAY)).toEqual({ reading: 1 });
      });
    });

    describe('enforceBudget', () => {
      // Every row is charged 100 bytes (36 of body + the fixed overhead).
      const SIZE = 100 - ROW_OVERHEAD_BYTES;
      const NOW = T0 + 10 * DAY;
      /**
       * chunk 1,2: recent, acknowledged; chunk 3,4: past the 1 s chunk retention, unacknowledged;
       * chunk 5,6: recent, unacknowledged. reading 1,2 acked + 3 pending; alert 1 acked + 2 pending;
       * finding 1 pending; quarantine 1 acked + 2 pending. 14 rows, 1400 bytes, 400 of them protected.
       */
      function populate(budgetBytes: number): OutboxStore {
        const { store } = make({ budgetBytes, retentionMs: { chunk: 1000 } });
        store.append([
          entry('chunk', { size: SIZE, tMs: NOW }),
          entry('chunk', { size: SIZE, tMs: NOW }),
          entry('chunk', { size: SIZE, tMs: NOW - 5000 }),
          entry('chunk', { size: SIZE, tMs: NOW - 5000 }),
          entry('chunk', { size: SIZE, tMs: NOW }),
          entry('chunk', { size: SIZE, tMs: NOW }),
        ]);
        // Clinical records are old: age alone must never make an unacknowledged one evictable.
        const old = NOW - 300 * DAY;
        store.append([
          ...[1, 2, 3].map(() => entry('reading', { size: SIZE, tMs: old })),
          ...[1, 2].map(() => entry('alert', { size: SIZE, tMs: old })),
          entry('finding', { size: SIZE, tMs: old }),
          ...[1, 2].map(() => entry('quarantine', { size: SIZE, tMs: old })),
        ]);
        store.acknowledge('chunk', 2);
        store.acknowledge('reading', 2);
        store.acknowledge('alert', 1);
        store.acknowledge('quarantine', 1);
        return store;
      }
      const PROTECTED = { reading: [3], alert: [2], finding: [1], quarantine: [2] };

      function held(store: OutboxStore): Record<RecordKind, number[]> {
        return Object.fromEntries(RECORD_KINDS.map((k) => [k, seqsOf(store, k)])) as Record<RecordKind, number[]>;
      }

      it('does nothing while the ledger fits its budget', () => {
        const store = populate(1400);
        expect(store.enforceBudget(NOW)).toEqual({ evicted: {}, bytesUsed: 1400, budgetBytes: 1400, overBudget: false });
        expect(held(store).chunk).toEqual([1, 2, 3, 4, 5, 6]);
      });

      it('evicts raw waveform past its retention first (acknowledged or not)', () => {
        const store = populate(1200);
        expect(store.enforceBudget(NOW)).toEqual({ evicted: { chunk: 2 }, bytesUsed: 1200, budgetBytes: 1200, overBudget: false });
        expect(held(store).chunk).toEqual([1, 2, 5, 6]);
        expect(held(store).reading).toEqual([1, 2, 3]);
      });

      it('then acknowledged raw waveform', () => {
        const store = populate(1000);
        expect(store.enforceBudget(NOW)).toEqual({ evicted: { chunk: 4 }, bytesUsed: 1000, budgetBytes: 1000, overBudget: false });
        expect(held(store)).toEqual({ chunk: [5, 6], reading: [1, 2, 3], alert: [1, 2], finding: [1], quarantine: [1, 2] });
      });

      it('then acknowledged clinical records in the documented order: quarantined bytes, readings, findings, alerts', () => {
        const store = populate(700);
        expect(store.enforceBudget(NOW)).toEqual({
          evicted: { chunk: 4, quarantine: 1, reading: 2 },
          bytesUsed: 700,
          budgetBytes: 700,
          overBudget: false,
        });
        expect(held(store)).toEqual({ chunk: [5, 6], reading: [3], alert: [1, 2], finding: [1], quarantine: [2] });
      });

      it('evicts every acknowledged clinical record before any unacknowledged waveform', () => {
        const store = populate(600);
        expect(store.enforceBudget(NOW)).toEqual({
          evicted: { chunk: 4, quarantine: 1, reading: 2, alert: 1 },
          bytesUsed: 600,
          budgetBytes: 600,
          overBudget: false,
        });
        expect(held(store)).toEqual({ chunk: [5, 6], ...PROTECTED });
      });

      it('then unacknowledged raw waveform, oldest first', () => {
        const store = populate(500);
        expect(store.enforceBudget(NOW)).toEqual({
          evicted: { chunk: 5, reading: 2, alert: 1, quarantine: 1 },
          bytesUsed: 500,
          budgetBytes: 500,
          overBudget: false,
        });
        expect(held(store)).toEqual({ chunk: [6], ...PROTECTED });
      });

      it('never evicts an unacknowledged alert, finding, reading or quarantined record: reports overBudget instead', () => {
        const store = populate(0);
        const report = store.enforceBudget(NOW);
        expect(report).toEqual({ evicted: { chunk: 6, reading: 2, alert: 1, quarantine: 1 }, bytesUsed: 400, budgetBytes: 0, overBudget: true });
        expect(held(store)).toEqual({ chunk: [], ...PROTECTED });
        // Calling again changes nothing.
        expect(store.enforceBudget(NOW + DAY)).toEqual({ evicted: {}, bytesUsed: 400, budgetBytes: 0, overBudget: true });
        expect(held(store)).toEqual({ chunk: [], ...PROTECTED });
        const stats = store.stats();
        expect(RECORD_KINDS.reduce((n, k) => n + stats[k].bytes, 0)).toBe(400);
        expect(stats.chunk).toMatchObject({ rows: 0, bytes: 0, lastSeq: 6, ackedUpTo: 2, pending: 0 });
      });

      it('keeps the eviction order and the never-evict rule for any population (model-checked)', () => {
        const kindArb = fc.constantFrom(...RECORD_KINDS);
        const rowArb = fc.record({ kind: kindArb, expired: fc.boolean() });
        fc.assert(
          fc.property(
            fc.array(rowArb, { minLength: 1, maxLength: 30 }),
            fc.record({ alert: fc.nat(10), finding: fc.nat(10), reading: fc.nat(10), quarantine: fc.nat(10), chunk: fc.nat(10) }),
            fc.nat(3200),
            (rows, ackTo, budgetBytes) => {
              const h = open({ deviceId: 'dev-budget', budgetBytes, retentionMs: { chunk: 1000 } });
              try {
                const { store } = h;
                store.append(rows.map((r) => entry(r.kind, { size: SIZE, tMs: r.expired ? NOW - 5000 : NOW })));
                for (const kind of RECORD_KINDS) store.acknowledge(kind, ackTo[kind]);
                const acked = Object.fromEntries(RECORD_KINDS.map((k) => [k, store.ackedUpTo(k)])) as Record<RecordKind, number>;
                // Classify every row with its seq, by step of the documented eviction order (store/README.md).
                const order = ['expired-chunk', 'acked-chunk', 'acked-quarantine', 'acked-reading', 'acked-finding', 'acked-alert', 'chunk'] as const;
                const counter = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
                const all = rows.map((r) => {
                  const seq = ++counter[r.kind];
                  const isAcked = seq <= acked[r.kind];
                  let cls: (typeof order)[number] | 'protected';
                  if (r.kind === 'chunk') cls = r.expired ? 'expired-chunk' : isAcked ? 'acked-chunk' : 'chunk';
                  else cls = isAcked ? `acked-${r.kind}` : 'protected';
                  return { kind: r.kind, seq, cls };
                });
                const before = all.length * 100;
                const report = store.enforceBudget(NOW);
                const remaining = new Set(RECORD_KINDS.flatMap((k) => seqsOf(store, k).map((s) => `${k}:${s}`)));
                const gone = all.filter((r) => !remaining.has(`${r.kind}:${r.seq}`));
                const kept = all.filter((r) => remaining.has(`${r.kind}:${r.seq}`));
                const stats = store.stats();
                const used = RECORD_KINDS.reduce((n, k) => n + stats[k].bytes, 0);

                expect(used).toBe(kept.length * 100);
                expect(report.bytesUsed).toBe(used);
                expect(report.budgetBytes).toBe(budgetBytes);
                expect(report.overBudget).toBe(used > budgetBytes);
                const evictedTotal = Object.values(report.evicted).reduce((n, v) => n + (v ?? 0), 0);
                expect(evictedTotal).toBe(gone.length);
                for (const kind of RECORD_KINDS) expect(report.evicted[kind] ?? 0).toBe(gone.filter((r) => r.kind === kind).length);
                // Never: unacknowledged clinical records.
                expect(gone.filter((r) => r.cls === 'protected')).toEqual([]);
                // Nothing evicted when it already fitted; otherwise it stops as soon as it fits.
                if (before <= budgetBytes) expect(gone).toEqual([]);
                else if (!report.overBudget) expect(used).toBeGreaterThan(budgetBytes - 100);
                // Over budget only when nothing evictable is left.
                if (report.overBudget) expect(kept.filter((r) => r.cls !== 'protected')).toEqual([]);
                // The order: a class is touched only when every earlier class is gone.
                order.forEach((cls, i) => {
                  if (gone.some((r) => r.cls === cls)) {
                    for (const earlier of order.slice(0, i)) expect(kept.filter((r) => r.cls === earlier)).toEqual([]);
                  }
                });
                // Within a kind, the oldest seqs go first.
                for (const kind of RECORD_KINDS) {
                  for (const cls of order) {
                    const seqs = all.filter((r) => r.kind === kind && r.cls === cls);
                    const goneSeqs = seqs.filter((r) => !remaining.has(`${kind}:${r.seq}`)).map((r) => r.seq);
                    expect(goneSeqs).toEqual(seqs.slice(0, goneSeqs.length).map((r) => r.seq));
                  }
                }
              } finally {
                h.cleanup();
              }
            },
          ),
          { seed: 42, numRuns: 60 },
        );
      });
    });

    describe('stats', () => {
      it('starts at zero for every kind', () => {
        const { store } = make();
        const zero = { lastSeq: 0, produced: 0, ackedUpTo: 0, pending: 0, rows: 0, bytes: 0 };
        expect(store.stats()).toEqual(Object.fromEntries(RECORD_KINDS.map((k) => [k, zero])));
      });

      it('reports lastSeq, ackedUpTo, pending, rows and the bytes charged to the budget', () => {
        const { store } = make({ retentionMs: { reading: 0 } });
        store.append([entry('reading', { size: 10 }), entry('reading', { size: 20 }), entry('reading', { size: 30 }), entry('alert', { size: 0 })]);
        store.append([entry('reading', { size: 40 })]);
        store.acknowledge('reading', 2);
        expect(store.stats()).toMatchObject({
          reading: { lastSeq: 4, ackedUpTo: 2, pending: 2, rows: 4, bytes: rowBytes(10) + rowBytes(20) + rowBytes(30) + rowBytes(40) },
          alert: { lastSeq: 1, ackedUpTo: 0, pending: 1, rows: 1, bytes: rowBytes(0) },
          chunk: { lastSeq: 0, ackedUpTo: 0, pending: 0, rows: 0, bytes: 0 },
        });
        store.compact(T0 + 1);
        expect(store.stats().reading).toEqual({ lastSeq: 4, produced: 4, ackedUpTo: 2, pending: 2, rows: 2, bytes: rowBytes(30) + rowBytes(40) });
      });
    });

    describe('seq floor (seqFloorClock, raiseSeqFloor) and readBefore', () => {
      /** A device clock that reads `ms`. */
      const at = (ms: number) => ({ now: () => ms });

      it('with seqFloorClock the first seq of every kind is above the wall-clock floor; produced counts records, lastSeq does not', () => {
        const { store } = make({ seqFloorClock: at(T0) });
        const floor = T0 * SEQ_FLOOR_PER_MS;
        expect(wallClockSeqFloor(T0)).toBe(floor);
        expect(store.append([entry('reading'), entry('reading'), entry('alert')])).toEqual([floor + 1, floor + 2, floor + 1]);
        expect(store.stats().reading).toMatchObject({ lastSeq: floor + 2, produced: 2, rows: 2 });
        expect(store.stats().chunk).toMatchObject({ lastSeq: floor, produced: 0 });
        expect(store.heldFrom('reading')).toBe(floor + 1);
        expect(store.heldFrom('chunk')).toBe(floor + 1);
        // Exact in a double: the seqs survive reading back.
        expect(seqsOf(store, 'reading')).toEqual([floor + 1, floor + 2]);
      });

      it('raiseSeqFloor moves later seqs above the floor, keeps the earlier records and their seqs, and never lowers', () => {
        const { store } = make({ retentionMs: { reading: 0 } });
        store.append([entry('reading', { mark: 1 }), entry('reading', { mark: 2 })]);
        const floor = 1_765_000_000_000_300;
        expect(store.raiseSeqFloor('reading', floor)).toBe(true);
        expect(store.raiseSeqFloor('reading', floor)).toBe(false);
        expect(store.raiseSeqFloor('reading', 10)).toBe(false);
        expect(store.stats().reading).toMatchObject({ lastSeq: floor, produced: 2, rows: 2 });
        expect(store.append([entry('reading', { mark: 3 }), entry('alert')])).toEqual([floor + 1, 1]);
        expect(store.readAfter('reading', 0, 10).map((r) => [r.seq, hex(r.body)])).toEqual([
          [1, hex(body(8, 1))],
          [2, hex(body(8, 2))],
          [floor + 1, hex(body(8, 3))],
        ]);
        // A batch spanning the jump is acknowledged, compacted and held from as any other.
        expect(store.acknowledge('reading', floor + 1)).toBe(true);
        expect(store.stats().reading.pending).toBe(0);
        store.compact(T0 + DAY);
        expect(store.heldFrom('reading')).toBe(floor + 2);
      });

      it('readBefore returns the newest held records below a seq, in ascending order, across gaps', () => {
        const { store } = make();
        store.append([1, 2, 3].map((mark) => entry('finding', { mark })));
        store.raiseSeqFloor('finding', 1_000_000_000);
        store.append([4, 5].map((mark) => entry('finding', { mark })));
        expect(store.readBefore('finding', 1_000_000_003, 3).map((r) => [r.seq, hex(r.body)])).toEqual([
          [3, hex(body(8, 3))],
          [1_000_000_001, hex(body(8, 4))],
          [1_000_000_002, hex(body(8, 5))],
        ]);
        expect(store.readBefore('finding', 1_000_000_001, 10).map((r) => r.seq)).toEqual([1, 2, 3]);
        expect(store.readBefore('finding', 1, 10)).toEqual([]);
        expect(store.readBefore('finding', 2_000_000_000, 0)).toEqual([]);
      });

      it('readBefore with a filter returns the newest held records of those tags stored at or after fromTMs below a seq', () => {
        const { store } = make({ retentionMs: { reading: 1000 } });
        // 12 readings: tags a, b, c in turn, stored 1 s apart from T0.
        store.append(Array.from({ length: 12 }, (_, i) => entry('reading', { mark: i, tag: 'abc'[i % 3] as string, tMs: T0 + i * 1000 })));
        const seqs = (filter: Parameters<OutboxStore['readMatching']>[1], beforeSeq = ALL, limit = ALL) => store.readBefore('reading', beforeSeq, limit, filter).map((r) => r.seq);
        expect(seqs({ tags: ['a'] }, ALL, 2)).toEqual([7, 10]);
        expect(seqs({ tags: ['a'] }, 10, 2)).toEqual([4, 7]);
        expect(seqs({ tags: ['c', 'a'] }, 12, 3)).toEqual([7, 9, 10]);
        expect(seqs({ tags: [] })).toEqual([]);
        expect(seqs({ tags: ['b'], fromTMs: T0 + 4000 })).toEqual([5, 8, 11]);
        expect(seqs({ fromTMs: T0 + 9000 }, ALL, 2)).toEqual([11, 12]);
        expect(seqs({}, 4)).toEqual([1, 2, 3]);
        expect(store.readBefore('reading', ALL, 1, { tags: ['b'] }).map((r) => [r.kind, r.seq, r.tMs, r.tag, hex(r.body)])).toEqual([['reading', 11, T0 + 10_000, 'b', hex(body(8, 10))]]);
        // Only held records: compacted ones are gone.
        store.acknowledge('reading', 6);
        store.compact(T0 + 60_000);
        expect(seqs({ tags: ['a'] })).toEqual([7, 10]);
      });
    });

    describe('onAppend', () => {
      it('calls every listener once per committed append with the kinds it stored; unsubscribing stops it', () => {
        const { store } = make();
        const a = vi.fn();
        const b = vi.fn();
        const offA = store.onAppend(a);
        store.onAppend(b);
        store.append([entry('reading'), entry('chunk'), entry('reading')]);
        expect(a).toHaveBeenCalledTimes(1);
        expect([...((a.mock.calls[0]?.[0] ?? []) as RecordKind[])].sort()).toEqual(['chunk', 'reading']);
        expect(b).toHaveBeenCalledTimes(1);
        offA();
        store.append([entry('alert')]);
        expect(a).toHaveBeenCalledTimes(1);
        expect(b).toHaveBeenCalledTimes(2);
        expect(b.mock.calls[1]?.[0]).toEqual(['alert']);
      });

      it('calls listeners after the commit: they see the records, and a throwing listener cannot undo them', () => {
        const { store } = make();
        const seen: [number, number[]][] = [];
        store.onAppend(() => {
          seen.push([store.stats().finding.lastSeq, seqsOf(store, 'finding')]);
        });
        store.append([entry('finding'), entry('finding')]);
        const offThrowing = store.onAppend(() => {
          throw new Error('listener failure');
        });
        try {
          store.append([entry('finding'), entry('finding')]);
        } catch {
          // Whether append reports a listener's failure is not part of the contract; the records must stay.
        }
        offThrowing();
        expect(seen).toEqual([
          [2, [1, 2]],
          [4, [1, 2, 3, 4]],
        ]);
        expect(seqsOf(store, 'finding')).toEqual([1, 2, 3, 4]);
        expect(store.append([entry('finding')])).toEqual([5]);
      });

      it('lets a listener append to the store it listens to', () => {
        const { store } = make();
        let done = false;
        store.onAppend((kinds) => {
          if (done || !kinds.includes('finding')) return;
          done = true;
          store.append([entry('alert')]);
        });
        expect(store.append([entry('finding')])).toEqual([1]);
        expect(seqsOf(store, 'alert')).toEqual([1]);
      });
    });

    describe('audit log', () => {
      // An implementation may log its own events (an encrypted ledger its key creation) before the caller's.
      const own = (store: OutboxStore) => store.readAudit().at(-1);
      const fields = (i: number) => ({ tMs: T0 + i, actor: i % 2 ? 'clinician:7' : 'system', action: `action-${i}`, detail: i === 2 ? '' : `detail\n${i}` });

      it('chains entries: prevHash of entry n+1 is the hash of entry n, and each hash recomputes from its fields', () => {
        const { store } = make();
        const start = own(store);
        const written = [0, 1, 2, 3].map((i) => store.appendAudit(fields(i)));
        expect(written.map((e) => e.id)).toEqual([...written.map((e) => e.id)].sort((x, y) => x - y));
        expect(new Set(written.map((e) => e.id)).size).toBe(4);
        const read = store.readAudit(start?.id ?? 0);
        expect(read).toEqual(written);
        expect(read[0]?.prevHash).toBe(start?.hash ?? '');
        read.forEach((e, i) => {
          expect(e).toMatchObject(fields(i));
          expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
          expect(e.hash).toBe(auditHash(e.prevHash, fields(i)));
          if (i > 0) expect(e.prevHash).toBe(read[i - 1]?.hash);
        });
        // Same fields twice still give different hashes: the chain makes each one unique.
        const again = store.appendAudit(fields(0));
        expect(again.hash).not.toBe(written[0]?.hash);
        expect(again.prevHash).toBe(written[3]?.hash);
      });

      it('pages with afterId and limit', () => {
        const { store } = make();
        const written = [0, 1, 2, 3, 4].map((i) => store.appendAudit(fields(i)));
        const ids = written.map((e) => e.id);
        expect(store.readAudit(written[1]!.id).map((e) => e.id)).toEqual(ids.slice(2));
        expect(store.readAudit(written[1]!.id, 2).map((e) => e.id)).toEqual(ids.slice(2, 4));
        expect(store.readAudit(ids[0]! - 1, 1).map((e) => e.id)).toEqual(ids.slice(0, 1));
        expect(store.readAudit(written[4]!.id)).toEqual([]);
      });

      it('cannot be rewritten through the entries it returns', () => {
        const { store } = make();
        const start = own(store)?.id ?? 0;
        const first = store.appendAudit(fields(0));
        const original = { ...first };
        first.hash = '0'.repeat(64);
        first.detail = 'rewritten';
        const listed = store.readAudit(start);
        if (listed[0]) listed[0].action = 'rewritten';
        const second = store.appendAudit(fields(1));
        const [e0, e1] = store.readAudit(start);
        expect(e0).toEqual(original);
        expect(second.prevHash).toBe(original.hash);
        expect(e1?.hash).toBe(auditHash(original.hash, fields(1)));
      });
    });

    describe('after close()', () => {
      const calls: [string, (s: OutboxStore) => unknown][] = [
        ['append', (s) => s.append([entry('reading')])],
        ['readAfter', (s) => s.readAfter('reading', 0, 10)],
        ['readMatching', (s) => s.readMatching('reading', { tags: ['x'] }, 0, 10)],
        ['readBefore', (s) => s.readBefore('reading', 10, 10)],
        ['raiseSeqFloor', (s) => s.raiseSeqFloor('reading', 1000)],
        ['ackedUpTo', (s) => s.ackedUpTo('reading')],
        ['acknowledge', (s) => s.acknowledge('reading', 1)],
        ['compact', (s) => s.compact(T0)],
        ['enforceBudget', (s) => s.enforceBudget(T0)],
        ['stats', (s) => s.stats()],
        ['appendAudit', (s) => s.appendAudit({ tMs: T0, actor: 'a', action: 'b', detail: 'c' })],
        ['readAudit', (s) => s.readAudit()],
      ];
      it.each(calls)('%s throws StoreError', (operation, call) => {
        const { store } = make();
        store.append([entry('reading')]);
        store.close();
        expectStoreError(() => call(store), operation);
      });

      it('onAppend throws StoreError', () => {
        const { store } = make();
        store.close();
        expectStoreError(() => store.onAppend(() => {}), 'onAppend');
      });

      it('does not call listeners registered before close', () => {
        const { store } = make();
        const listener = vi.fn();
        store.onAppend(listener);
        store.close();
        expect(() => store.append([entry('alert')])).toThrow(StoreError);
        expect(listener).not.toHaveBeenCalled();
      });
    });

    if (persistent) describe('across reopen (persistent implementations)', () => {
      it('keeps records, seqs, watermarks and the audit chain; new records carry the new bootId', () => {
        const h = make({ retentionMs: { reading: 0 } });
        const reopen = h.reopen as () => OutboxStore;
        let store = h.store;
        store.append([entry('reading', { mark: 1 }), entry('reading', { mark: 2 }), entry('alert', { mark: 3 }), entry('chunk', { size: 500 })]);
        store.acknowledge('reading', 2);
        store.acknowledge('chunk', 1);
        const audit = store.appendAudit({ tMs: T0, actor: 'system', action: 'boot', detail: '' });
        const firstBoot = store.bootId;
        const statsBefore = store.stats();

        store = reopen();
        expect(store.bootId).not.toBe(firstBoot);
        expect(store.stats()).toEqual(statsBefore);
        expect(store.ackedUpTo('reading')).toBe(2);
        expect(store.acknowledge('reading', 1)).toBe(false);
        expect(store.readAfter('reading', 0, 10).map((r) => [r.seq, r.bootId, hex(r.body)])).toEqual([
          [1, firstBoot, hex(body(8, 1))],
          [2, firstBoot, hex(body(8, 2))],
        ]);
        expect(store.append([entry('reading'), entry('alert')])).toEqual([3, 2]);
        expect(store.readAfter('reading', 2, 10)[0]?.bootId).toBe(store.bootId);
        const next = store.appendAudit({ tMs: T0 + 1, actor: 'system', action: 'boot', detail: '' });
        expect(next.prevHash).toBe(audit.hash);
        expect(next.id).toBeGreaterThan(audit.id);
      });

      it('with seqFloorClock every reopen starts above the floor of its clock, or goes on from its own seqs when the clock is behind them', () => {
        let clockMs = T0;
        const h = make({ seqFloorClock: { now: () => clockMs } });
        const reopen = h.reopen as () => OutboxStore;
        let store = h.store;
        expect(store.append([entry('reading')])).toEqual([T0 * 1000 + 1]);
        clockMs = T0 + 60_000;
        store = reopen();
        expect(store.append([entry('reading'), entry('reading')])).toEqual([(T0 + 60_000) * 1000 + 1, (T0 + 60_000) * 1000 + 2]);
        // The clock three days back (no RTC): the floor is below the ledger's own seqs, which go on.
        clockMs = T0 - 3 * DAY;
        store = reopen();
        expect(store.append([entry('reading')])).toEqual([(T0 + 60_000) * 1000 + 3]);
        expect(store.stats().reading).toMatchObject({ produced: 4, rows: 4 });
        // A raised floor is kept across a reopen.
        store.raiseSeqFloor('reading', (T0 + DAY) * 1000);
        store = reopen();
        expect(store.append([entry('reading')])).toEqual([(T0 + DAY) * 1000 + 1]);
      });

      it('never reuses seqs of records deleted before the restart', () => {
        const h = make({ retentionMs: { reading: 0, chunk: 0 } });
        const reopen = h.reopen as () => OutboxStore;
        let store = h.store;
        store.append([entry('reading'), entry('reading'), entry('reading'), entry('chunk')]);
        store.acknowledge('reading', 3);
        store.acknowledge('chunk', 1);
        expect(store.compact(T0 + DAY)).toEqual({ reading: 3, chunk: 1 });
        expect(store.stats().reading.rows).toBe(0);
        store = reopen();
        expect(store.stats().reading).toMatchObject({ lastSeq: 3, ackedUpTo: 3, rows: 0, pending: 0 });
        expect(store.append([entry('reading'), entry('chunk')])).toEqual([4, 2]);
        store = reopen();
        expect(store.append([entry('reading')])).toEqual([5]);
      });
    });
  });
}
