/**
 * Edge ingest against a real EdgeStore on disk: commit then ack, idempotent redelivery, cumulative
 * acks over out-of-order batches, rejections counted by reason, and a fuzz test of `handle`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { type AckMessage, Compression, decodeAck, decodeBatch, encodeBody, PROTO_PATH, type WireRecord } from '../../device-sdk/proto/index.js';
import type { RecordBodies, RecordKind } from '../../device-sdk/records.js';
import { type BatchLimits, buildBatch, DEFAULT_BATCH_LIMITS, type RejectReason } from '../../device-sdk/sync/batch.js';
import { downTopic, parseUpTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { sealPayload, type WireKey } from '../../device-sdk/security/wire-keys.js';
import { EDGE_MIGRATIONS, EdgeStore, readEdgeStats, releaseStoredDuplicate } from '../../edge/edge-store.js';
import { runMigrations } from '../../device-sdk/store/migrations.js';
import { duplicatesCommand } from '../../firmware/cli/edge.js';
import { Ingest, type IngestOptions, type IngestOutcome } from '../../edge/ingest.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const SITE = 'clinic-7';
const DEV = 'dev-42';
const BOOT = 'boot-aaaa';
const T0 = 1_700_000_000_000;
const REASONS: readonly (RejectReason | 'replay')[] = ['malformed', 'oversize', 'unknown-version', 'replay'];

const dirs: string[] = [];
const stores: EdgeStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Harness {
  dir: string;
  store: EdgeStore;
  ingest: Ingest;
  acks: { topic: string; ack: AckMessage }[];
  /** Refusal notices (`Ack.refused` set), kept apart from the acks. */
  notices: { topic: string; ack: AckMessage }[];
  /** Called inside publishAck, before the ack is recorded (to look at the store at that moment). */
  onPublish?: () => void;
}

function setup(limits: Partial<BatchLimits> = {}, options: IngestOptions = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'medge-ingest-'));
  dirs.push(dir);
  const store = new EdgeStore(dir);
  stores.push(store);
  const h: Harness = { dir, store, acks: [], notices: [], ingest: undefined as unknown as Ingest };
  h.ingest = new Ingest(
    store,
    (topic, payload) => {
      h.onPublish?.();
      const ack = decodeAck(payload);
      (ack.refused === '' ? h.acks : h.notices).push({ topic, ack });
    },
    silentLogger,
    limits,
    options,
  );
  return h;
}

function sampleBody<K extends RecordKind>(kind: K, seq: number): RecordBodies[K] {
  const bodies: { [P in RecordKind]: RecordBodies[P] } = {
    alert: { kind: 'hypo', severity: 3, message: `glucose low #${seq}`, t: T0 + seq },
    finding: { kind: 'af', label: 'possible AF', probability: 0.5, t: T0 + seq, modelId: 'ecg-af', modelSha256: 'ab'.repeat(32), inputQuality: 0.9 },
    reading: { sensor: 'glucose', type: 'glucose', value: 80 + (seq % 40), unit: 'mg/dL', tDevice: T0 + seq },
    quarantine: { transport: 'serial', source: '/dev/ttyUSB0', t: T0 + seq, error: 'bad checksum', bytes: Uint8Array.of(seq & 0xff, 1, 2) },
    chunk: {
      sensor: 'ecg',
      channel: 0,
      firstSample: seq * 64,
      t0: T0 + seq,
      rateHz: 250,
      unit: 'mV',
      gain: 200,
      samples: Int16Array.from({ length: 64 }, (_, i) => (i * seq) % 2000),
    },
  };
  return bodies[kind] as RecordBodies[K];
}

function wire(kind: RecordKind, seqs: readonly number[]): WireRecord[] {
  return seqs.map((seq) => ({ seq, bootId: BOOT, tMs: T0 + seq, body: encodeBody(kind, sampleBody(kind, seq)) }));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function batch(
  kind: RecordKind,
  afterSeq: number,
  seqs: readonly number[],
  options: { ackedUpTo?: number; heldFrom?: number; deviceId?: string; records?: WireRecord[]; bootId?: string } = {},
): Uint8Array {
  return buildBatch({
    deviceId: options.deviceId ?? DEV,
    bootId: options.bootId ?? BOOT,
    kind,
    afterSeq,
    ackedUpTo: options.ackedUpTo ?? 0,
    ...(options.heldFrom === undefined ? {} : { heldFrom: options.heldFrom }),
    records: options.records ?? wire(kind, seqs),
    sentMs: T0,
  });
}

const topic = (kind: RecordKind, deviceId = DEV) => upTopic(SITE, deviceId, kind);

// The wire schema itself, to craft messages this build would never send.
const BatchType = protobuf.loadSync(PROTO_PATH).lookupType('medge.v1.Batch');
/** Decodes an encoded Batch generically, overwrites fields (camelCase names), and re-encodes it. */
function patchBatch(payload: Uint8Array, patch: Record<string, unknown>): Uint8Array {
  const message = BatchType.toObject(BatchType.decode(payload), { defaults: true });
  return BatchType.encode(BatchType.fromObject({ ...message, ...patch })).finish();
}

function expectOk(outcome: IngestOutcome) {
  if (!outcome.ok) throw new Error(`expected ok, got ${outcome.reason}: ${outcome.message}`);
  return outcome.result;
}

describe('Ingest on a real EdgeStore', () => {
  it('commits a valid batch, then publishes exactly one ack with upToSeq = lastSeq on the down/ack topic', () => {
    const h = setup();
    const records = wire('reading', range(1, 5));
    let committedAtPublish: number | undefined;
    h.onPublish = () => {
      // A second connection already sees the records when the ack goes out: ack after commit.
      committedAtPublish = readEdgeStats(h.dir).devices[DEV]?.reading;
    };
    const result = expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, [], { records })));
    expect(result).toEqual({ inserted: 5, redelivered: 0, conflicts: [], upToSeq: 5, replay: false, rewind: false, assumed: 0, seqFloor: 0 });
    expect(committedAtPublish).toBe(5);
    expect(h.acks).toHaveLength(1);
    expect(h.acks[0]?.topic).toBe('medge/v1/clinic-7/dev-42/down/ack');
    expect(h.acks[0]?.topic).toBe(downTopic(SITE, DEV, 'ack'));
    expect(h.acks[0]?.ack).toMatchObject({ schemaVersion: 1, deviceId: DEV, kind: 'reading', upToSeq: 5 });
    const stored = h.store.records(DEV, 'reading');
    expect(stored.map((r) => [r.seq, r.bootId, r.tMs, Buffer.from(r.body).toString('hex')])).toEqual(
      records.map((r) => [r.seq, r.bootId, r.tMs, Buffer.from(r.body).toString('hex')]),
    );
    // readEdgeStats opens its own read-only connection while the EdgeStore is still open.
    expect(readEdgeStats(h.dir)).toEqual({ devices: { [DEV]: { reading: 5 } }, rejected: {}, conflicts: {}, openConflicts: {}, duplicateDeviceIds: {} });
  });

  it('accepts a deflated batch', () => {
    const h = setup();
    const payload = batch('chunk', 0, range(1, 40));
    expect(decodeBatch(payload).compression).toBe(Compression.DEFLATE);
    expect(expectOk(h.ingest.handle(topic('chunk'), payload))).toEqual({ inserted: 40, redelivered: 0, conflicts: [], upToSeq: 40, replay: false, rewind: false, assumed: 0, seqFloor: 0 });
    expect(h.store.audit(DEV).chunk).toEqual({ stored: 40, minSeq: 1, maxSeq: 40, duplicateBodies: 0 });
  });

  it('refuses a replayed batch as replay (nothing written, counted), still acks its watermark, and takes an overlapping one', () => {
    const h = setup();
    const payload = batch('alert', 0, range(1, 4));
    expectOk(h.ingest.handle(topic('alert'), payload));
    expect(h.ingest.handle(topic('alert'), payload)).toMatchObject({ ok: false, reason: 'replay' });
    expect(readEdgeStats(h.dir).rejected).toEqual({ replay: 1 });
    // Overlapping: (2, 6] after (0, 4].
    expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 2, range(3, 6))))).toEqual({ inserted: 2, redelivered: 2, conflicts: [], upToSeq: 6, replay: false, rewind: false, assumed: 0, seqFloor: 0 });
    expect(h.acks.map((a) => a.ack.upToSeq)).toEqual([4, 4, 6]);
    expect(h.store.audit(DEV).alert).toEqual({ stored: 6, minSeq: 1, maxSeq: 6, duplicateBodies: 0 });
    expect(readEdgeStats(h.dir).devices[DEV]).toEqual({ alert: 6 });
  });

  describe('a seq reused with other content (new or restored ledger under this deviceId, two devices with one id)', () => {
    /** The records of another ledger under DEV: same seqs, its own boot, other bodies. */
    const other = (kind: RecordKind, seqs: readonly number[]): WireRecord[] =>
      seqs.map((seq) => ({ seq, bootId: 'boot-bbbb', tMs: T0 + seq, body: encodeBody(kind, sampleBody(kind, seq + 1000)) }));

    it('keeps it in conflicts and counts it in the commit, then acks no further than the batch', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('alert'), batch('alert', 0, range(1, 10))));
      const reused = other('alert', range(1, 4));
      const result = expectOk(h.ingest.handle(topic('alert'), batch('alert', 0, [], { records: reused })));
      expect(result).toEqual({ inserted: 0, redelivered: 0, conflicts: [1, 2, 3, 4], upToSeq: 4, replay: false, rewind: false, assumed: 0, seqFloor: 10 });
      // The ack goes out after the conflicts are committed, and covers only what this ledger sent; it tells
      // the device the highest seq held here, for its later seqs to go above.
      expect(h.acks.at(-1)?.ack).toMatchObject({ upToSeq: 4, seqFloor: 10 });
      expect(h.acks[0]?.ack.seqFloor).toBe(0);
      expect(h.store.conflicts(DEV, 'alert').map((r) => [r.seq, r.bootId, Buffer.from(r.body).toString('hex')])).toEqual(
        reused.map((r) => [r.seq, r.bootId, Buffer.from(r.body).toString('hex')]),
      );
      // The first ledger's records stay what they were.
      expect(h.store.records(DEV, 'alert').map((r) => r.bootId)).toEqual(Array(10).fill(BOOT));
      expect(readEdgeStats(h.dir)).toMatchObject({ rejected: { 'seq-conflict': 4 }, conflicts: { [DEV]: { alert: 4 } } });
    });

    it('a conflict resent after a lost ack is kept once and acked again no further than the batch', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 10))));
      const payload = batch('reading', 0, [], { records: other('reading', range(1, 3)) });
      expectOk(h.ingest.handle(topic('reading'), payload));
      expect(h.ingest.handle(topic('reading'), payload)).toMatchObject({ ok: false, reason: 'replay' });
      expect(h.acks.map((a) => a.ack.upToSeq)).toEqual([10, 3, 3]);
      // The floor goes with the resent conflicts' ack too: the first one may have been the ack lost.
      expect(h.acks.map((a) => a.ack.seqFloor)).toEqual([0, 10, 10]);
      expect(h.store.conflicts(DEV, 'reading')).toHaveLength(3);
      expect(readEdgeStats(h.dir).rejected).toEqual({ 'seq-conflict': 3, replay: 1 });
    });

    it('a batch mixing reused, resent and new seqs: each kind of record where it belongs', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('finding'), batch('finding', 0, range(1, 4))));
      const records = [...wire('finding', [3]), ...other('finding', [4]), ...wire('finding', [5, 6])];
      expect(expectOk(h.ingest.handle(topic('finding'), batch('finding', 2, [], { records })))).toEqual({
        inserted: 2,
        redelivered: 1,
        conflicts: [4],
        upToSeq: 6,
        replay: false,
        rewind: false,
        assumed: 0,
        seqFloor: 6,
      });
      expect(h.store.audit(DEV).finding).toEqual({ stored: 6, minSeq: 1, maxSeq: 6, duplicateBodies: 0 });
    });

    it('a body, boot or time that differs is a conflict; an identical record is a resend', () => {
      const h = setup();
      const [stored] = wire('quarantine', [1]) as [WireRecord];
      expectOk(h.ingest.handle(topic('quarantine'), batch('quarantine', 0, [], { records: [stored] })));
      const variants: WireRecord[] = [{ ...stored, bootId: 'boot-cccc' }, { ...stored, tMs: stored.tMs + 1 }, { ...stored, body: encodeBody('quarantine', sampleBody('quarantine', 2)) }];
      for (const v of variants) expect(expectOk(h.ingest.handle(topic('quarantine'), batch('quarantine', 0, [], { records: [v] }))).conflicts).toEqual([1]);
      expect(h.ingest.handle(topic('quarantine'), batch('quarantine', 0, [], { records: [{ ...stored, body: Uint8Array.from(stored.body) }] }))).toMatchObject({
        ok: false,
        reason: 'replay',
      });
      expect(h.store.conflicts(DEV, 'quarantine')).toHaveLength(3);
    });

    it('compares the opened bodies of sealed payloads: a batch sealed again (new nonce) is a resend', () => {
      const dir = mkdtempSync(join(tmpdir(), 'medge-ingest-'));
      dirs.push(dir);
      const store = new EdgeStore(dir);
      stores.push(store);
      const wireKey: WireKey = { keyId: 'w-000000000001', key: new Uint8Array(32).fill(7) };
      const ingest = new Ingest(store, () => undefined, silentLogger, {}, { wireKeys: () => wireKey, requireSealed: true });
      const plain = batch('reading', 0, range(1, 5));
      const first = sealPayload('aes-256-gcm', wireKey, topic('reading'), plain);
      const again = sealPayload('aes-256-gcm', wireKey, topic('reading'), plain);
      expect(Buffer.compare(first, again)).not.toBe(0);
      expectOk(ingest.handle(topic('reading'), first));
      expect(ingest.handle(topic('reading'), again)).toMatchObject({ ok: false, reason: 'replay' });
      expect(readEdgeStats(dir).rejected).toEqual({ replay: 1 });
    });
  });

  it('holds the ack at the last contiguous seq while a gap is open, then jumps to the end when it is filled', () => {
    const h = setup();
    const ack = () => h.acks.at(-1)?.ack.upToSeq;
    expectOk(h.ingest.handle(topic('finding'), batch('finding', 0, range(1, 5))));
    expect(ack()).toBe(5);
    expect(expectOk(h.ingest.handle(topic('finding'), batch('finding', 15, range(16, 20)))).upToSeq).toBe(5);
    expect(expectOk(h.ingest.handle(topic('finding'), batch('finding', 10, range(11, 15)))).upToSeq).toBe(5);
    expect(ack()).toBe(5);
    expect(expectOk(h.ingest.handle(topic('finding'), batch('finding', 5, range(6, 10)))).upToSeq).toBe(20);
    expect(ack()).toBe(20);
    expect(h.acks).toHaveLength(4);
    expect(h.store.audit(DEV).finding).toEqual({ stored: 20, minSeq: 1, maxSeq: 20, duplicateBodies: 0 });
  });

  it('acks 0 when the second range arrives first, and the end of both once the first arrives', () => {
    const h = setup();
    expect(expectOk(h.ingest.handle(topic('reading'), batch('reading', 3, range(4, 6)))).upToSeq).toBe(0);
    expect(expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 3)))).upToSeq).toBe(6);
    expect(h.acks.map((a) => a.ack.upToSeq)).toEqual([0, 6]);
    // Each ack names the batch it answers: the first says the edge holds (3, 6] ahead of the gap.
    expect(h.acks.map((a) => a.ack.batchLastSeq)).toEqual([6, 3]);
    // Acks are per kind: another kind of the same device starts from 0.
    expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 1, [2]))).upToSeq).toBe(0);
  });

  it("advances the watermark to the device's ackedUpTo when it is above the edge's", () => {
    const h = setup();
    // The device compacted 1..20 after an earlier edge acked them; this edge never saw them.
    expect(expectOk(h.ingest.handle(topic('reading'), batch('reading', 20, range(21, 25), { ackedUpTo: 20 }))).upToSeq).toBe(25);
    // ackedUpTo alone moves the watermark even when the batch itself is ahead of a gap.
    expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 12, range(13, 14), { ackedUpTo: 10 }))).upToSeq).toBe(10);
    expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 10, range(11, 12), { ackedUpTo: 10 }))).upToSeq).toBe(14);
    // A lower ackedUpTo never pulls it back.
    expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 14, [15], { ackedUpTo: 3 }))).upToSeq).toBe(15);
  });

  describe('an edge that lost records it had acknowledged (store restored from an older backup)', () => {
    it('takes ackedUpTo as covered only below heldFrom, and acks what it holds with rewind', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 400))));
      // The device was acked up to 550 by the lost store and holds everything from 1.
      const result = expectOk(h.ingest.handle(topic('reading'), batch('reading', 550, range(551, 650), { ackedUpTo: 550, heldFrom: 1 })));
      expect(result).toMatchObject({ inserted: 100, upToSeq: 400, rewind: true, assumed: 0 });
      expect(h.acks.at(-1)?.ack).toMatchObject({ upToSeq: 400, rewind: true });
      // The device rewinds to 400 and sends (400, 550] again: the gap closes over the pending (550, 650].
      expect(expectOk(h.ingest.handle(topic('reading'), batch('reading', 400, range(401, 550), { ackedUpTo: 400, heldFrom: 1 })))).toMatchObject({
        upToSeq: 650,
        rewind: false,
      });
      expect(h.acks.at(-1)?.ack).toMatchObject({ upToSeq: 650, rewind: false });
      expect(h.store.audit(DEV).reading).toEqual({ stored: 650, minSeq: 1, maxSeq: 650, duplicateBodies: 0 });
    });

    it('what the device no longer holds is taken as delivered (and said so); the rest is asked for again', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('alert'), batch('alert', 0, range(1, 10))));
      // The device compacted 1..19 and holds 20.. ; the restored edge holds up to 10.
      const result = expectOk(h.ingest.handle(topic('alert'), batch('alert', 30, range(31, 32), { ackedUpTo: 30, heldFrom: 20 })));
      expect(result).toMatchObject({ upToSeq: 19, rewind: true, assumed: 9 });
      expect(expectOk(h.ingest.handle(topic('alert'), batch('alert', 19, range(20, 30), { ackedUpTo: 19, heldFrom: 20 })))).toMatchObject({ upToSeq: 32, rewind: false, assumed: 0 });
    });

    it('a device that does not send heldFrom (older build) keeps the old behaviour: no rewind', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 400))));
      expect(expectOk(h.ingest.handle(topic('reading'), batch('reading', 550, range(551, 650), { ackedUpTo: 550 })))).toMatchObject({ upToSeq: 650, rewind: false, assumed: 150 });
      expect(h.acks.at(-1)?.ack.rewind).toBe(false);
    });

    it('a replay that starts at or below the watermark extends it (batches stored ahead of a gap, sent again)', () => {
      const h = setup();
      expectOk(h.ingest.handle(topic('finding'), batch('finding', 0, range(1, 5))));
      // Stored, but ahead of a gap at 6 that the device's records do not fill (it never held 6: afterSeq 5).
      expect(expectOk(h.ingest.handle(topic('finding'), batch('finding', 6, range(7, 9), { ackedUpTo: 5, heldFrom: 1 }))).upToSeq).toBe(5);
      expect(h.ingest.handle(topic('finding'), batch('finding', 5, range(7, 9), { ackedUpTo: 5, heldFrom: 1 }))).toMatchObject({ ok: false, reason: 'replay' });
      expect(h.acks.at(-1)?.ack.upToSeq).toBe(9);
    });

    it('rejects a batch whose heldFrom is above its firstSeq (the device reads batches from what it holds)', () => {
      const h = setup();
      expect(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 5), { heldFrom: 2 }))).toMatchObject({ ok: false, reason: 'malformed' });
      expect(h.acks).toEqual([]);
    });
  });

  it('rejects a batch whose ackedUpTo is above its afterSeq (2^64 - 1 here) and never lets an ack go backwards', () => {
    const h = setup();
    const outcomes = [
      h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 5))),
      h.ingest.handle(topic('reading'), patchBatch(batch('reading', 5, [6]), { ackedUpTo: '18446744073709551615' })),
      h.ingest.handle(topic('reading'), batch('reading', 6, [7], { ackedUpTo: 5 })),
      // The device times out and resends from its watermark: (5, 6] fills the gap.
      h.ingest.handle(topic('reading'), batch('reading', 5, [6], { ackedUpTo: 5 })),
    ];
    expect(outcomes[1]).toMatchObject({ ok: false, reason: 'malformed' });
    const acked = h.acks.map((a) => a.ack.upToSeq);
    // What is published is what was committed: 7 waits for 6, which only the rejected batch carried.
    expect(acked).toEqual([5, 5, 7]);
    expect(readEdgeStats(h.dir).rejected).toEqual({ malformed: 1 });
  });

  describe('rejections, counted by reason in readEdgeStats(dir).rejected', () => {
    const valid = () => batch('reading', 0, range(1, 3));
    const cases: { name: string; reason: RejectReason; topic?: string; payload: () => Uint8Array; limits?: Partial<BatchLimits> }[] = [
      { name: 'a downlink topic', reason: 'malformed', topic: downTopic(SITE, DEV, 'ack'), payload: valid },
      { name: 'another topic version', reason: 'malformed', topic: `medge/v2/${SITE}/${DEV}/up/reading`, payload: valid },
      { name: 'an unknown kind in the topic', reason: 'malformed', topic: `medge/v1/${SITE}/${DEV}/up/vitals`, payload: valid },
      { name: 'a wildcard in the topic', reason: 'malformed', topic: `medge/v1/${SITE}/+/up/reading`, payload: valid },
      { name: 'an extra topic level', reason: 'malformed', topic: `medge/v1/${SITE}/${DEV}/up/reading/x`, payload: valid },
      { name: 'a garbage payload', reason: 'malformed', payload: () => Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff) },
      // Cut inside the length-delimited records field (cutting only the trailing sent_ms would leave a valid proto3 message).
      { name: 'a truncated batch', reason: 'malformed', payload: () => valid().subarray(0, Math.floor(valid().byteLength / 2)) },
      { name: 'schema_version 2', reason: 'unknown-version', payload: () => patchBatch(valid(), { schemaVersion: 2 }) },
      { name: 'no schema_version', reason: 'malformed', payload: () => patchBatch(valid(), { schemaVersion: 0 }) },
      { name: 'a payload over maxPayloadBytes', reason: 'oversize', payload: valid, limits: { maxPayloadBytes: valid().byteLength - 1 } },
      {
        name: 'a deflate bomb that inflates past maxRecordsBytes',
        reason: 'oversize',
        payload: () =>
          patchBatch(valid(), { compression: Compression.DEFLATE, records: deflateRawSync(Buffer.alloc(DEFAULT_BATCH_LIMITS.maxRecordsBytes + 1024)) }),
      },
      { name: 'an uncompressed list over maxRecordsBytes', reason: 'oversize', payload: valid, limits: { maxRecordsBytes: 16 } },
      { name: 'more records than maxRecords', reason: 'oversize', payload: valid, limits: { maxRecords: 2 } },
      {
        name: 'records that do not inflate',
        reason: 'malformed',
        payload: () => patchBatch(valid(), { compression: Compression.DEFLATE, records: Uint8Array.of(0xff, 0, 1) }),
      },
      { name: 'an unknown compression', reason: 'malformed', payload: () => patchBatch(valid(), { compression: 7 }) },
      { name: 'a deviceId that is not the topic device', reason: 'malformed', topic: topic('reading', 'dev-43'), payload: valid },
      { name: 'a kind that is not the topic kind', reason: 'malformed', topic: topic('alert'), payload: valid },
      { name: 'a count that disagrees with the records', reason: 'malformed', payload: () => patchBatch(valid(), { count: 4 }) },
      { name: 'lastSeq that disagrees with the records', reason: 'malformed', payload: () => patchBatch(valid(), { lastSeq: 9 }) },
      { name: 'afterSeq not below firstSeq', reason: 'malformed', payload: () => patchBatch(valid(), { afterSeq: 1 }) },
      { name: 'a repeated seq', reason: 'malformed', payload: () => batch('reading', 0, [1, 2, 2, 3]) },
      { name: 'decreasing seqs', reason: 'malformed', payload: () => batch('reading', 0, [1, 3, 2, 4]) },
      {
        name: 'a body that is not a Reading',
        reason: 'malformed',
        payload: () =>
          batch('reading', 0, [], { records: [...wire('reading', [1]), { seq: 2, bootId: BOOT, tMs: T0, body: Uint8Array.of(0xff, 0xff, 0xff) }] }),
      },
      {
        name: 'an alert with severity 9',
        reason: 'malformed',
        payload: () =>
          batch('alert', 0, [], { records: [{ seq: 1, bootId: BOOT, tMs: T0, body: encodeBody('alert', { ...sampleBody('alert', 1), severity: 9 as 3 }) }] }),
        topic: topic('alert'),
      },
      { name: 'an empty record list', reason: 'malformed', payload: () => patchBatch(valid(), { records: new Uint8Array(0), count: 0 }) },
    ];

    it.each(cases)('$name → $reason, no ack, nothing stored', ({ reason, topic: t, payload, limits }) => {
      const h = setup(limits);
      const outcome = h.ingest.handle(t ?? topic('reading'), payload());
      expect(outcome).toMatchObject({ ok: false, reason });
      expect(h.acks).toEqual([]);
      // The device the topic names is told why (nothing acknowledged); a topic that names none gets nothing.
      const where = parseUpTopic(t ?? topic('reading'));
      expect(h.notices).toEqual(
        where ? [{ topic: downTopic(SITE, where.deviceId, 'ack'), ack: expect.objectContaining({ deviceId: where.deviceId, kind: where.kind, upToSeq: 0, batchLastSeq: 0, refused: reason }) as unknown }] : [],
      );
      expect(readEdgeStats(h.dir)).toEqual({ devices: {}, rejected: { [reason]: 1 }, conflicts: {}, openConflicts: {}, duplicateDeviceIds: {} });
    });

    it('the oversize payload is otherwise valid: the same bytes pass under the default limits', () => {
      const h = setup();
      expect(expectOk(h.ingest.handle(topic('reading'), valid())).inserted).toBe(3);
    });

    it('adds up rejections of every reason next to accepted batches', () => {
      const h = setup({ maxPayloadBytes: 4096 });
      for (const c of cases.filter((x) => !x.limits)) h.ingest.handle(c.topic ?? topic('reading'), c.payload());
      expectOk(h.ingest.handle(topic('reading'), valid()));
      h.ingest.handle(topic('reading'), new Uint8Array(5000));
      const expected: Record<string, number> = {};
      for (const c of cases.filter((x) => !x.limits)) expected[c.reason] = (expected[c.reason] ?? 0) + 1;
      expected.oversize = (expected.oversize ?? 0) + 1;
      expect(readEdgeStats(h.dir)).toEqual({ devices: { [DEV]: { reading: 3 } }, rejected: expected, conflicts: {}, openConflicts: {}, duplicateDeviceIds: {} });
      expect(h.acks).toHaveLength(1);
    });
  });

  it('never throws on 3000 random or mutated payloads: each is committed and acked, or rejected with a known reason', () => {
    // A payload limit inside the range of the random payloads, so that every reason is reachable.
    const h = setup({ maxPayloadBytes: 640 });
    const bases: { kind: RecordKind; payload: Uint8Array }[] = [
      { kind: 'reading', payload: batch('reading', 0, range(1, 3)) },
      { kind: 'alert', payload: batch('alert', 4, range(5, 6), { ackedUpTo: 4 }) },
      { kind: 'chunk', payload: batch('chunk', 0, range(1, 3)) },
      { kind: 'quarantine', payload: batch('quarantine', 0, [1]) },
      { kind: 'finding', payload: batch('finding', 0, range(1, 6)) },
    ];
    expect(decodeBatch(bases[2]?.payload ?? new Uint8Array(0)).compression).toBe(Compression.DEFLATE);
    const randomBytes = fc.record({
      kind: fc.constantFrom<RecordKind>('reading', 'alert', 'chunk'),
      payload: fc.oneof(
        { weight: 9, arbitrary: fc.uint8Array({ maxLength: 600 }) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 600, maxLength: 900 }) },
      ),
    });
    const mutated = fc
      .record({
        base: fc.constantFrom(...bases),
        flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
        cut: fc.option(fc.nat(), { nil: undefined }),
      })
      .map(({ base, flips, cut }) => {
        const bytes = Uint8Array.from(base.payload);
        for (const [at, mask] of flips) bytes[at % bytes.byteLength] = (bytes[at % bytes.byteLength] as number) ^ mask;
        return { kind: base.kind, payload: cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.byteLength + 1)) };
      });
    const tally: Record<string, number> = {};
    let accepted = 0;
    let conflicts = 0;
    fc.assert(
      fc.property(
        fc.oneof(randomBytes, mutated),
        fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string() }),
        (input, weirdTopic) => {
          const acksBefore = h.acks.length;
          let outcome: IngestOutcome | undefined;
          expect(() => {
            outcome = h.ingest.handle(weirdTopic ?? topic(input.kind), input.payload);
          }).not.toThrow();
          if (outcome?.ok) {
            accepted += 1;
            // A flipped byte in a body that still decodes reuses a stored seq with other content.
            conflicts += outcome.result.conflicts.length;
            expect(h.acks.length).toBe(acksBefore + 1);
            expect(h.acks.at(-1)?.ack).toMatchObject({ kind: input.kind, upToSeq: outcome.result.upToSeq });
          } else {
            expect(REASONS).toContain(outcome?.reason);
            // A replay changes nothing but is acked again (the device may have lost the first ack).
            expect(h.acks.length).toBe(acksBefore + (outcome?.reason === 'replay' ? 1 : 0));
            tally[outcome?.reason ?? '?'] = (tally[outcome?.reason ?? '?'] ?? 0) + 1;
          }
        },
      ),
      { seed: 42, numRuns: 3000 },
    );
    // The fuzz reached both sides (and every reason), and the counters agree with the outcomes.
    expect(accepted).toBeGreaterThan(0);
    expect(Object.keys(tally).sort()).toEqual([...REASONS].sort());
    // Mutated boot ids alternate under one deviceId, which also counts duplicate-device-id (not an outcome).
    const counted = Object.fromEntries(Object.entries(readEdgeStats(h.dir).rejected).filter(([reason]) => reason !== 'duplicate-device-id'));
    expect(counted).toEqual(conflicts > 0 ? { ...tally, 'seq-conflict': conflicts } : tally);
  });

  it('counts duplicate-device-id when batches of one deviceId alternate between two live boots, never for a reboot, and logs once per 10 min', () => {
    const h = setup();
    const clock = new VirtualClock();
    const logged: { deviceId: string; bootIds: string[]; switches: number }[] = [];
    const logger = { ...silentLogger, child: () => ({ ...silentLogger, error: (o: unknown) => void logged.push(o as (typeof logged)[number]) }) } as unknown as typeof silentLogger;
    // Counting and logging only: a proof of two live boots (and the refusals after it) is tested below.
    const ingest = new Ingest(h.store, () => undefined, logger, {}, { clock, duplicateDeviceId: { proofSwitchBacks: Number.POSITIVE_INFINITY } });
    let seq = 0;
    const send = (bootId: string, deviceId = DEV) => {
      const seqs = range(seq + 1, seq + 5);
      ingest.handle(topic('reading', deviceId), batch('reading', seq, seqs, { bootId, deviceId }));
      seq += 5;
      clock.advance(1000);
    };
    // A reboot: the old boot never comes back. Another device alternating with nothing is not counted either.
    for (const boot of ['boot-1', 'boot-1', 'boot-2', 'boot-2', 'boot-3']) send(boot);
    send('boot-x', 'dev-other');
    expect(readEdgeStats(h.dir).duplicateDeviceIds).toEqual({});
    // Two boards: boot-3 and boot-4 alternate. The first switch (3 -> 4) looks like a reboot; each switch back counts.
    for (const boot of ['boot-4', 'boot-3', 'boot-4', 'boot-4', 'boot-3']) send(boot);
    let stats = readEdgeStats(h.dir);
    expect(stats.duplicateDeviceIds).toEqual({
      [DEV]: { count: 3, bootIds: ['boot-4', 'boot-3'], firstMs: expect.any(Number), lastMs: clock.now() - 1000, refusedBatches: 0, refusedByBoot: {}, storedByBoot: expect.any(Object) },
    });
    expect(stats.rejected['duplicate-device-id']).toBe(3);
    expect(logged).toEqual([expect.objectContaining({ deviceId: DEV, bootIds: ['boot-4', 'boot-3'], switches: 1 })]);
    // Alternating once a minute: one more log line once 10 min have passed, with every switch since the first.
    for (let k = 0; k < 10; k++) {
      clock.advance(59_000);
      send(k % 2 === 0 ? 'boot-4' : 'boot-3');
    }
    stats = readEdgeStats(h.dir);
    expect(stats.duplicateDeviceIds[DEV]?.count).toBe(13);
    expect(logged).toHaveLength(2);
    expect(logged.reduce((n, l) => n + l.switches, 0)).toBe(13);
    // A boot silent for more than 5 min is taken as gone: boot-4 coming back after that is not a switch back.
    clock.advance(6 * 60_000);
    send('boot-3');
    send('boot-4');
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]?.count).toBe(13);
  });
});

describe('two live boots under one deviceId: the edge stops storing the intruder (state in the store, shared by ingest workers)', () => {
  /** Reading records made by boot `boot`. */
  const bootRecords = (boot: string, seqs: number[]) => wire('reading', seqs).map((r) => ({ ...r, bootId: boot }));
  /** A sender of 5-record reading batches of one boot (records carry that boot id) through `ingest`, on `clock`. */
  function sender(ingest: () => Ingest, clock: VirtualClock) {
    let seq = 0;
    const sent: Record<string, number[]> = {};
    const outcomes: { bootId: string; seqs: number[]; outcome: IngestOutcome }[] = [];
    const payloads: Record<string, Uint8Array[]> = {};
    const send = (bootId: string, stepMs = 20_000, payload?: Uint8Array) => {
      const seqs = range(seq + 1, seq + 5);
      const bytes = payload ?? batch('reading', seq, seqs, { bootId, records: bootRecords(bootId, seqs) });
      if (!payload) {
        seq += 5;
        (sent[bootId] ??= []).push(...seqs);
        (payloads[bootId] ??= []).push(bytes);
      }
      const outcome = ingest().handle(topic('reading'), bytes);
      outcomes.push({ bootId, seqs, outcome });
      clock.advance(stepMs);
      return outcome;
    };
    return { send, sent, outcomes, payloads };
  }
  const storedOf = (h: Harness, bootId: string) => h.store.records(DEV, 'reading', 0, 100_000).filter((r) => r.bootId === bootId).map((r) => r.seq);

  it('after 4 switches back over a minute refuses the intruding boot (Ack.refused naming it), keeps the incumbent, lists what the intruder stored before, and takes it again once the incumbent is silent for the hold (5 min here)', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock, duplicateDeviceId: { holdMs: 5 * 60_000 } });
    const s = sender(() => h.ingest, clock);
    // boot-a first; boot-b appears 20 s later and they alternate every 20 s: switches back at 40, 60, 80 and 100 s.
    for (const boot of ['boot-a', 'boot-b', 'boot-a', 'boot-b', 'boot-a', 'boot-b']) expect(s.send(boot).ok).toBe(true);
    let stats = readEdgeStats(h.dir);
    expect(stats.duplicateDeviceIds[DEV]).toMatchObject({ count: 4, incumbent: 'boot-a', refusedBoot: 'boot-b', refusedBatches: 0 });
    const beforeProof = [...(s.sent['boot-b'] ?? [])];
    // From now on boot-b's batches are refused: nothing of them stored, a notice names the refused boot.
    for (let k = 0; k < 10; k++) {
      const b = s.send('boot-b', 10_000);
      expect(b).toMatchObject({ ok: false, reason: 'device-id-in-use' });
      expect(s.send('boot-a', 10_000).ok).toBe(true);
    }
    expect(storedOf(h, 'boot-b')).toEqual(beforeProof);
    expect(storedOf(h, 'boot-a')).toEqual(s.sent['boot-a']);
    // One notice a minute per kind and reason: 200 s of refusals give 4 (at 0, 60, 120, 180 s).
    expect(h.notices.map((n) => n.ack)).toEqual(Array.from({ length: 4 }, () => expect.objectContaining({ refused: 'device-id-in-use', bootId: 'boot-b', upToSeq: 0, kind: 'reading' })));
    // Every ack to the incumbent names its own boot and says another boot is live.
    expect(h.acks.slice(-10).map((a) => [a.ack.bootId, a.ack.otherBootLive])).toEqual(Array.from({ length: 10 }, () => ['boot-a', true]));
    stats = readEdgeStats(h.dir);
    expect(stats.rejected['device-id-in-use']).toBe(10);
    // The incumbent's first batch after the proving one was a fifth switch back; refused batches are none.
    expect(stats.duplicateDeviceIds[DEV]).toMatchObject({ count: 5, refusedBatches: 10, provenMs: expect.any(Number) });
    expect(stats.duplicateDeviceIds[DEV]?.releasedMs).toBeUndefined();
    // The intruder's records stored before the proof are findable: its boot id, kind, count and seq range.
    expect(stats.duplicateDeviceIds[DEV]?.storedByBoot['boot-b']).toEqual({ reading: { stored: beforeProof.length, minSeq: Math.min(...beforeProof), maxSeq: Math.max(...beforeProof), conflicts: 0 } });
    // The incumbent board is given its own id: silent here. boot-b keeps being refused for the 5 min window, then is stored.
    // Its last batch came 10 s before the first of these: refused up to 280 s, stored at 310 s.
    for (let k = 0; k < 10; k++) expect(s.send('boot-b', 30_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(s.send('boot-b', 30_000).ok).toBe(true);
    expect(s.send('boot-b', 30_000).ok).toBe(true);
    stats = readEdgeStats(h.dir);
    expect(stats.duplicateDeviceIds[DEV]?.releasedMs).toEqual(expect.any(Number));
    expect(stats.duplicateDeviceIds[DEV]?.refusedBatches).toBe(20);
    // Its refused batches, sent again, are stored now: nothing lost.
    for (const payload of s.payloads['boot-b'] ?? []) h.ingest.handle(topic('reading'), payload);
    expect(storedOf(h, 'boot-b')).toEqual(s.sent['boot-b']);
  });

  /** boot-a and boot-b alternate every 20 s until proven (boot-a the incumbent). */
  const prove = (s: ReturnType<typeof sender>) => {
    for (const boot of ['boot-a', 'boot-b', 'boot-a', 'boot-b', 'boot-a', 'boot-b']) expect(s.send(boot).ok).toBe(true);
  };

  it('keeps a proven incumbent\'s place while its link is down for 6 h (the refused board sending all along) and while both are cut off for 2 h', () => {
    // Before, the incumbent silent for 5 min lost its place: the refused board's batches were stored from then on.
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    const beforeProof = [...(s.sent['boot-b'] ?? [])];
    for (let k = 0; k < 360; k++) expect(s.send('boot-b', 60_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(storedOf(h, 'boot-b')).toEqual(beforeProof);
    // The clinic's board is back: stored, and its acks say another boot is live (boot-b was heard within 5 min).
    expect(s.send('boot-a', 60_000).ok).toBe(true);
    expect(h.acks.at(-1)?.ack).toMatchObject({ bootId: 'boot-a', otherBootLive: true });
    expect(s.send('boot-b', 60_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    // The village link is down for both for 2 h; the refused board gets through first: still refused.
    clock.advance(2 * 3_600_000);
    expect(s.send('boot-b', 60_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(s.send('boot-a', 60_000).ok).toBe(true);
    expect(storedOf(h, 'boot-b')).toEqual(beforeProof);
    expect(storedOf(h, 'boot-a')).toEqual(s.sent['boot-a']);
    // Once boot-b has been silent for the window, the incumbent's acks no longer say another boot is live.
    clock.advance(6 * 60_000);
    expect(s.send('boot-a').ok).toBe(true);
    expect(h.acks.at(-1)?.ack).toMatchObject({ bootId: 'boot-a', otherBootLive: false });
    const stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats).toMatchObject({ incumbent: 'boot-a', refusedBoot: 'boot-b', refusedBatches: 362 });
    expect(stats?.releasedMs).toBeUndefined();
  });

  it('a proven incumbent silent for the hold (7 days) is taken as replaced: the refused board takes over, and nothing it kept is lost', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    const lastOfA = clock.now() - 40_000;
    // boot-b sends every hour; refused while boot-a's last batch is less than 7 days old.
    let refused = 0;
    while (clock.now() - lastOfA <= 7 * 24 * 3_600_000) {
      expect(s.send('boot-b', 3_600_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
      refused += 1;
    }
    expect(refused).toBe(168);
    expect(s.send('boot-b').ok).toBe(true);
    for (const payload of s.payloads['boot-b'] ?? []) h.ingest.handle(topic('reading'), payload);
    expect(storedOf(h, 'boot-b')).toEqual(s.sent['boot-b']);
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]?.releasedMs).toEqual(expect.any(Number));
  });

  it('an operator releases a proven pair (both stored again, or --keep the refused boot: the sides turn round), recorded in the store; refused without a proof or for another boot', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    expect(s.send('boot-b')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    const release = (keep?: string) => releaseStoredDuplicate(join(h.dir, 'edge.sqlite'), DEV, { operator: 'ops-1', reason: 'board 2 is the clinic\'s', ...(keep ? { keep } : {}) }, clock.now());
    expect(() => release('boot-c')).toThrow(expect.objectContaining({ problem: 'unknown-boot', deviceId: DEV }));
    expect(() => releaseStoredDuplicate(join(h.dir, 'edge.sqlite'), DEV, { operator: ' ', reason: 'x' }, clock.now())).toThrow(expect.objectContaining({ problem: 'bad-release' }));
    // --keep boot-b: boot-b is stored from now on, boot-a refused (the ingest's own connection sees it at its next batch).
    release('boot-b');
    expect(s.send('boot-b').ok).toBe(true);
    expect(s.send('boot-a')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    let stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats).toMatchObject({ incumbent: 'boot-b', refusedBoot: 'boot-a', lastRelease: { operator: 'ops-1', incumbent: 'boot-a', refusedBoot: 'boot-b', keptBoot: 'boot-b' } });
    expect(stats?.releasedMs).toBeUndefined();
    // Released without --keep: boot-a is stored once boot-b (heard 20 s before) has been silent for the window (5 min).
    h.store.releaseDuplicate(DEV, { operator: 'ops-2', reason: 'board 1 re-provisioned' }, clock.now());
    expect(s.send('boot-a', 5 * 60_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]).toMatchObject({ hold: 'released', incumbent: 'boot-b', refusedBoot: 'boot-a' });
    expect(s.send('boot-a').ok).toBe(true);
    stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats?.releasedMs).toEqual(expect.any(Number));
    expect(stats?.lastRelease).toEqual({ operator: 'ops-2', reason: 'board 1 re-provisioned', releasedMs: expect.any(Number), incumbent: 'boot-b', refusedBoot: 'boot-a' });
    // Nothing proven now: the CLI says so and exits 1.
    expect(() => release()).toThrow(expect.objectContaining({ problem: 'not-proven' }));
    const err = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(duplicatesCommand(['release', '--data', h.dir, '--device', DEV, '--operator', 'ops-3', '--reason', 'again'], () => clock.now())).toBe(1);
    } finally {
      process.stderr.write = err;
    }
    const db = new Database(join(h.dir, 'edge.sqlite'));
    expect(() => db.exec('DELETE FROM duplicate_releases')).toThrow(/final/);
    db.close();
  });

  it('an operator\'s --keep lasts until released again: the old board powered up 8 days later is refused from its first batch; the stats charge each boot its own refusals and say when each was last heard', () => {
    // QA re-check: the proof lapsed with the 7-day hold while the old board was silent; powered up on day 8 it had
    // 80,000 records stored under the id before it was proven again.
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    for (let k = 0; k < 3; k++) expect(s.send('boot-b')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    const beforeKeep = [...(s.sent['boot-a'] ?? [])];
    const lastOfA = clock.now() - 5 * 20_000;
    expect(h.store.releaseDuplicate(DEV, { operator: 'ops', reason: 'boot-b is the replacement', keep: 'boot-b' }, clock.now())).toMatchObject({ incumbent: 'boot-b', refusedBoot: 'boot-a', refusedHeardMs: lastOfA });
    // boot-b syncs hourly for 8 days; boot-a is off.
    for (let k = 0; k < 8 * 24; k++) expect(s.send('boot-b', 3_600_000).ok).toBe(true);
    for (let k = 0; k < 20; k++) expect(s.send('boot-a', 1_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(storedOf(h, 'boot-a')).toEqual(beforeKeep);
    const stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats).toMatchObject({ incumbent: 'boot-b', refusedBoot: 'boot-a', hold: 'kept', refusedBatches: 23, refusedByBoot: { 'boot-b': 3, 'boot-a': 20 } });
    expect(stats?.lastHeardMs).toEqual({ 'boot-b': clock.now() - 20 * 1_000 - 3_600_000, 'boot-a': clock.now() - 1_000 });
  });

  it('a --keep on a proof past its 7-day hold (nothing heard since) makes it stand: the other boot is refused', () => {
    // QA re-check: it exited 0 saying the other boot is refused, and that boot's next batch was stored.
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    const beforeKeep = [...(s.sent['boot-a'] ?? [])];
    clock.advance(8 * 24 * 3_600_000);
    h.store.releaseDuplicate(DEV, { operator: 'ops', reason: 'boot-b is the clinic board', keep: 'boot-b' }, clock.now());
    expect(s.send('boot-a')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(s.send('boot-b').ok).toBe(true);
    expect(s.send('boot-a')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(storedOf(h, 'boot-a')).toEqual(beforeKeep);
  });

  it('a release without --keep while both boards run stores none of the refused board\'s backlog; once the incumbent is silent for 5 min its batches are stored, and the CLI says so', () => {
    // QA re-check: the refused board's backlog was stored until the pair was proven again (79,950 records in 80 s).
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    prove(s);
    const beforeRelease = [...(s.sent['boot-b'] ?? [])];
    expect(s.send('boot-a', 1_000).ok).toBe(true);
    const out = process.stdout.write;
    let printed = '';
    process.stdout.write = ((chunk: string) => ((printed += chunk), true)) as typeof process.stdout.write;
    try {
      expect(duplicatesCommand(['release', '--data', h.dir, '--device', DEV, '--operator', 'ops', '--reason', 'board b re-provisioned (not yet)'], () => clock.now())).toBe(0);
    } finally {
      process.stdout.write = out;
    }
    expect(printed).toContain('boot boot-b is stored once boot boot-a (last heard 1 s ago) has been silent for 5 min; while both boards run boot-b stays refused: switch the board of boot-a off');
    // 80 s: boot-b drains its backlog once a second, boot-a sends every 20 s.
    for (let t = 0; t < 80; t++) {
      expect(s.send('boot-b', 1_000)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
      if (t % 20 === 19) expect(s.send('boot-a', 0).ok).toBe(true);
    }
    expect(storedOf(h, 'boot-b')).toEqual(beforeRelease);
    // boot-a is switched off: boot-b refused up to 5 min after boot-a's last batch (at 0, 10, ..., 300 s), then stored.
    let refused = 0;
    while (!s.send('boot-b', 10_000).ok) refused += 1;
    expect(refused).toBe(31);
    const stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats?.releasedMs).toEqual(expect.any(Number));
    expect(stats?.lastRelease).toMatchObject({ operator: 'ops', incumbent: 'boot-a', refusedBoot: 'boot-b' });
  });

  it('a release refuses a store at an older schema (an older edge may run on it) without migrating it, and says a blank operator name is blank', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-release-old-'));
    try {
      const db = new Database(join(dir, 'edge.sqlite'));
      db.pragma('journal_mode = WAL');
      runMigrations(db, EDGE_MIGRATIONS.slice(0, 6));
      db.close();
      expect(() => releaseStoredDuplicate(join(dir, 'edge.sqlite'), DEV, { operator: 'ops', reason: 'x' }, T0)).toThrow(/schema version 6, older than this build's 7: an older edge may be running on it/);
      const after = new Database(join(dir, 'edge.sqlite'), { readonly: true });
      expect(after.pragma('user_version', { simple: true })).toBe(6);
      after.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    prove(sender(() => h.ingest, clock));
    expect(() => h.store.releaseDuplicate(DEV, { operator: ' ', reason: 'x' }, clock.now())).toThrow("the operator's name is blank");
    expect(() => h.store.releaseDuplicate(DEV, { operator: 'ops', reason: '\t' }, clock.now())).toThrow('the reason is blank');
  });

  it('never refuses a rebooted board, with late batches of the old boot (one not yet stored, and QoS-1 redeliveries) arriving between the new boot\'s for 5 min', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    for (let k = 0; k < 5; k++) s.send('boot-old', 10_000);
    // The batch the old boot published last, delayed (its first delivery reaches the ingest after the reboot).
    const late = batch('reading', 1000, range(1001, 1005), { bootId: 'boot-old', records: bootRecords('boot-old', range(1001, 1005)) });
    s.send('boot-new', 5_000);
    expect(s.send('boot-old', 5_000, late).ok).toBe(true);
    const old = s.payloads['boot-old'] ?? [];
    for (let k = 0; k < 30; k++) {
      expect(s.send('boot-new', 5_000).ok).toBe(true);
      // Redeliveries of the old boot's batches, already stored: replays.
      expect(s.send('boot-old', 5_000, old[k % old.length])).toMatchObject({ ok: false, reason: 'replay' });
    }
    const stats = readEdgeStats(h.dir);
    expect(stats.rejected['device-id-in-use']).toBeUndefined();
    expect(stats.duplicateDeviceIds[DEV]?.refusedBoot).toBeUndefined();
    expect(stats.duplicateDeviceIds[DEV]?.count ?? 0).toBeLessThanOrEqual(2);
    expect(h.notices).toEqual([]);
    expect(storedOf(h, 'boot-new')).toEqual(s.sent['boot-new']);
  });

  it('never refuses a rebooted board whose new boot resends the old boot\'s unacknowledged records, even with 3 late new batches of the old boot over 2 min', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    for (let k = 0; k < 3; k++) s.send('boot-old', 10_000);
    // Three batches of the old boot still in flight at the reboot (its window), delivered late one by one.
    const late = [1000, 1005, 1010].map((after) => batch('reading', after, range(after + 1, after + 5), { bootId: 'boot-old', records: bootRecords('boot-old', range(after + 1, after + 5)) }));
    // The new boot's first batch: the first of the ledger's unacknowledged records, made by the old boot (its next
    // batches would carry the rest, but the old boot's late ones get there first and are not replays).
    expect(s.send('boot-new', 5_000, batch('reading', 1000, range(1001, 1005), { bootId: 'boot-new', records: bootRecords('boot-old', range(1001, 1005)) })).ok).toBe(true);
    for (const payload of late) {
      s.send('boot-old', 30_000, payload);
      expect(s.send('boot-new', 30_000).ok).toBe(true);
    }
    for (let k = 0; k < 3; k++) expect(s.send('boot-new', 30_000).ok).toBe(true);
    const stats = readEdgeStats(h.dir);
    expect(stats.rejected['device-id-in-use']).toBeUndefined();
    expect(stats.duplicateDeviceIds).toEqual({});
    expect(h.notices).toEqual([]);
  });

  it('proves a copy of a live board\'s ledger (a backup restored on a spare board): the original, marked gone by the copy\'s first batch, keeps sending', () => {
    // QA re-check: the copy's first batch resends the original's unacknowledged records, so the original was taken
    // for a rebooted board's old boot, and each of its batches renewed that mark: 20 min of two live boards
    // alternating went uncounted (the watch before the store counted 119 switches).
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    for (let k = 0; k < 3; k++) s.send('boot-orig', 10_000);
    const unacked = range(1016, 1020);
    expect(s.send('boot-copy', 10_000, batch('reading', 1015, unacked, { bootId: 'boot-copy', records: bootRecords('boot-orig', unacked) })).ok).toBe(true);
    for (let k = 0; k < 30; k++) {
      s.send('boot-copy', 10_000);
      s.send('boot-orig', 10_000);
    }
    const stats = readEdgeStats(h.dir);
    expect(stats.duplicateDeviceIds[DEV]?.refusedBoot).toEqual(expect.any(String));
    expect(stats.rejected['device-id-in-use']).toBeGreaterThan(0);
  });

  it('a proven pair keeps its sides across reboots: a new boot that resends its old boot\'s records takes its place (refused, or stored)', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    for (const boot of ['boot-a', 'boot-b', 'boot-a', 'boot-b', 'boot-a', 'boot-b']) s.send(boot);
    expect(s.send('boot-b')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    // Board b reboots: its new boot resends the refused records made by boot-b, and is refused at once.
    const refused = s.outcomes.at(-1)?.seqs ?? [];
    const b2 = batch('reading', refused[0] as number - 1, refused, { bootId: 'boot-b2', records: bootRecords('boot-b', refused) });
    expect(s.send('boot-b2', 20_000, b2)).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(s.send('boot-b2')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    // Board a reboots: its new boot resends a record of boot-a, is stored, and b2 stays refused.
    const last = (s.sent['boot-a'] ?? []).slice(-1);
    expect(s.send('boot-a2', 20_000, batch('reading', last[0] as number - 1, last, { bootId: 'boot-a2', records: bootRecords('boot-a', last) }))).toMatchObject({ ok: false, reason: 'replay' });
    expect(s.send('boot-a2').ok).toBe(true);
    expect(s.send('boot-b2')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
    expect(s.send('boot-a2').ok).toBe(true);
    expect(storedOf(h, 'boot-b2')).toEqual([]);
    const stats = readEdgeStats(h.dir).duplicateDeviceIds[DEV];
    expect(stats).toMatchObject({ incumbent: 'boot-a2', refusedBoot: 'boot-b2', refusedBatches: 4 });
    expect(stats?.releasedMs).toBeUndefined();
    expect(Object.keys(stats?.storedByBoot ?? {}).sort()).toEqual(['boot-a', 'boot-a2', 'boot-b', 'boot-b2']);
  });

  it('two ingest workers on one store (each its own SQLite connection), one getting only boot-a\'s batches and the other only boot-b\'s, prove it and refuse boot-b', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const second = new EdgeStore(h.dir);
    stores.push(second);
    const notices: AckMessage[] = [];
    const worker2 = new Ingest(second, (_t, payload) => void (decodeAck(payload).refused !== '' && notices.push(decodeAck(payload))), silentLogger, {}, { clock });
    let next: 'a' | 'b' = 'a';
    const s = sender(() => (next === 'a' ? h.ingest : worker2), clock);
    const send = (boot: 'a' | 'b') => {
      next = boot;
      return s.send(`boot-${boot}`);
    };
    for (const boot of ['a', 'b', 'a', 'b', 'a', 'b'] as const) expect(send(boot).ok).toBe(true);
    for (let k = 0; k < 5; k++) {
      expect(send('b')).toMatchObject({ ok: false, reason: 'device-id-in-use' });
      expect(send('a').ok).toBe(true);
    }
    // Refusals every 40 s for 200 s, one notice a minute: at 0, 80 and 160 s.
    expect(notices).toEqual(Array.from({ length: 3 }, () => expect.objectContaining({ refused: 'device-id-in-use', bootId: 'boot-b' })));
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]).toMatchObject({ count: 5, incumbent: 'boot-a', refusedBoot: 'boot-b', refusedBatches: 5 });
  });

  it('edge stats read a store of schema 4 (no boot watch, no refusal columns) read-only', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock, duplicateDeviceId: { proofSwitchBacks: Number.POSITIVE_INFINITY } });
    const s = sender(() => h.ingest, clock);
    for (const boot of ['boot-a', 'boot-b', 'boot-a']) s.send(boot);
    const db = new Database(join(h.dir, 'edge.sqlite'));
    db.exec(`DROP TABLE boot_watch; ALTER TABLE duplicate_device_ids DROP COLUMN incumbent; ALTER TABLE duplicate_device_ids DROP COLUMN refused_boot;
      ALTER TABLE duplicate_device_ids DROP COLUMN proven_ms; ALTER TABLE duplicate_device_ids DROP COLUMN released_ms; ALTER TABLE duplicate_device_ids DROP COLUMN refused; ALTER TABLE duplicate_device_ids DROP COLUMN involved; PRAGMA user_version = 4;`);
    db.close();
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]).toMatchObject({ count: 1, refusedBatches: 0, storedByBoot: { 'boot-a': { reading: { stored: 10, conflicts: 0 } } } });
  });

  it('edge stats list the records per boot from counts each commit keeps (no scan per boot), equal to a count of the rows, redeliveries and conflicts not counted; an older store is backfilled', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock, duplicateDeviceId: { proofSwitchBacks: Number.POSITIVE_INFINITY } });
    const s = sender(() => h.ingest, clock);
    for (const boot of ['boot-a', 'boot-b', 'boot-a', 'boot-b', 'boot-c', 'boot-a']) s.send(boot);
    // A batch of boot-c resending records of boot-b and boot-a (a reboot), one of them sent again (redelivered).
    const mixed = [...bootRecords('boot-b', [31, 32]), ...bootRecords('boot-a', [33])];
    expectOk(h.ingest.handle(topic('reading'), batch('reading', 30, [31, 32, 33], { bootId: 'boot-c', records: mixed })));
    h.ingest.handle(topic('reading'), batch('reading', 30, [31, 32, 33], { bootId: 'boot-c', records: mixed }));
    // A record reusing a stored seq with other content: kept as a conflict, not in records.
    h.ingest.handle(topic('reading'), batch('reading', 0, [1], { bootId: 'boot-c', records: bootRecords('boot-z', [1]).map((r) => ({ ...r, tMs: 1 })) }));
    const db = new Database(join(h.dir, 'edge.sqlite'));
    const scanned = () => db.prepare('SELECT boot_id, kind, COUNT(*) AS stored, MIN(seq) AS min_seq, MAX(seq) AS max_seq FROM records WHERE device_id = ? GROUP BY boot_id, kind ORDER BY boot_id').all(DEV);
    const kept = () => db.prepare('SELECT boot_id, kind, stored, min_seq, max_seq FROM boot_records WHERE device_id = ? ORDER BY boot_id').all(DEV);
    expect(kept()).toEqual(scanned());
    const byBoot = readEdgeStats(h.dir).duplicateDeviceIds[DEV]?.storedByBoot;
    expect(byBoot?.['boot-b']).toEqual({ reading: { stored: 12, minSeq: 6, maxSeq: 32, conflicts: 0 } });
    // The per-boot listing reads the kept counts through their key, not the records.
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT kind, stored FROM boot_records WHERE device_id = 'd' AND boot_id = 'b' ORDER BY kind").all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/SEARCH boot_records USING PRIMARY KEY/);
    // A store written before the counts: backfilled when opened.
    db.exec('DROP TABLE boot_records; DROP INDEX conflicts_device_boot; PRAGMA user_version = 6;');
    db.close();
    new EdgeStore(h.dir).close();
    expect(readEdgeStats(h.dir).duplicateDeviceIds[DEV]?.storedByBoot).toEqual(byBoot);
  });

  it('a damaged boot watch row starts the watch afresh instead of failing the batch', () => {
    const clock = new VirtualClock();
    const h = setup({}, { clock });
    const s = sender(() => h.ingest, clock);
    s.send('boot-a');
    const db = new Database(join(h.dir, 'edge.sqlite'));
    db.prepare("UPDATE boot_watch SET state = '{not json' WHERE device_id = ?").run(DEV);
    db.close();
    expect(s.send('boot-a').ok).toBe(true);
    expect(s.send('boot-b').ok).toBe(true);
  });
});

describe('seqs from the wall-clock floor (about 1.8e15, above 2^32) on the wire and in the edge store', () => {
  it('stay exact through Batch, SQLite and the ack, up to the largest floor a device accepts', () => {
    const h = setup();
    const floor = 1_765_000_000_000_000;
    const seqs = [floor + 1, floor + 2, floor + 3];
    expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, seqs, { heldFrom: floor + 1 })));
    expect(h.store.records(DEV, 'reading').map((r) => r.seq)).toEqual(seqs);
    // Another ledger reusing them: the ack's floor is the highest seq held, exactly.
    const reused = seqs.slice(0, 2).map((seq) => ({ seq, bootId: 'boot-bbbb', tMs: T0, body: encodeBody('reading', sampleBody('reading', seq % 1000)) }));
    expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, [], { records: reused, heldFrom: floor + 1 })));
    expect(h.acks.map((a) => [a.ack.upToSeq, a.ack.seqFloor, a.ack.batchLastSeq])).toEqual([
      [floor + 3, 0, floor + 3],
      [floor + 2, floor + 3, floor + 2],
    ]);
    // The largest seq floor a device takes (SEQ_FLOOR_LIMIT = 2^53 - 2^40) and 2^53 - 1 decode exactly.
    const AckType = protobuf.loadSync(PROTO_PATH).lookupType('medge.v1.Ack');
    for (const n of [2 ** 53 - 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const bytes = AckType.encode({ schemaVersion: 1, deviceId: DEV, kind: 'reading', upToSeq: n, seqFloor: n }).finish();
      expect(decodeAck(bytes)).toMatchObject({ upToSeq: n, seqFloor: n });
    }
    // An ack of an edge before the field: 0, which changes nothing on the device.
    expect(decodeAck(AckType.encode({ schemaVersion: 1, deviceId: DEV, kind: 'reading', upToSeq: 5 }).finish()).seqFloor).toBe(0);
    // Nor is it a refusal notice.
    expect(decodeAck(AckType.encode({ schemaVersion: 1, deviceId: DEV, kind: 'reading', upToSeq: 5 }).finish()).refused).toBe('');
  });

  describe('refusal notices (Ack.refused)', () => {
    it('tells a revoked device why, at most once a minute per kind and reason, and only that device', () => {
      const clock = new VirtualClock();
      const h = setup({}, { clock, certificateProblem: (id) => (id === 'dev-lost' ? { reason: 'certificate-revoked', message: `the certificate of ${id} is revoked` } : undefined) });
      for (let i = 0; i < 5; i += 1) {
        expect(h.ingest.handle(topic('reading', 'dev-lost'), batch('reading', 0, range(1, 5), { deviceId: 'dev-lost' }))).toMatchObject({ ok: false, reason: 'auth' });
        clock.advance(10_000);
      }
      h.ingest.handle(topic('alert', 'dev-lost'), batch('alert', 0, range(1, 2), { deviceId: 'dev-lost' }));
      expectOk(h.ingest.handle(topic('reading'), batch('reading', 0, range(1, 5))));
      expect(h.notices.map((n) => [n.topic, n.ack.kind, n.ack.refused, n.ack.upToSeq])).toEqual([
        [downTopic(SITE, 'dev-lost', 'ack'), 'reading', 'certificate-revoked', 0],
        [downTopic(SITE, 'dev-lost', 'ack'), 'alert', 'certificate-revoked', 0],
      ]);
      expect(h.acks.map((a) => [a.topic, a.ack.upToSeq])).toEqual([[downTopic(SITE, DEV, 'ack'), 5]]);
      // A minute after the first notice: told again.
      clock.advance(10_000);
      h.ingest.handle(topic('reading', 'dev-lost'), batch('reading', 0, range(1, 5), { deviceId: 'dev-lost' }));
      expect(h.notices).toHaveLength(3);
      expect(readEdgeStats(h.dir).rejected).toEqual({ auth: 7 });
    });

    it('names the boot it refused whatever the reason, as far as the payload says it (a sealed one that does not open: none)', () => {
      // Before, only device-id-in-use named the boot: another board under the id, or this board's next boot, took a
      // notice about a malformed batch of another boot for its own (slow resends and a sync-batches-refused alert).
      const wireKey: WireKey = { keyId: 'w-000000000001', key: new Uint8Array(32).fill(7) };
      const other: WireKey = { keyId: 'w-000000000002', key: new Uint8Array(32).fill(8) };
      const h = setup({}, { wireKeys: (id) => (id === 'dev-sealed' ? wireKey : undefined), requireSealed: true, certificateProblem: (id) => (id === 'dev-lost' ? { reason: 'certificate-revoked', message: 'revoked' } : undefined) });
      const notices = () => h.notices.map((n) => [n.ack.kind, n.ack.refused, n.ack.bootId]);
      // Malformed: the header decodes, the records do not match it.
      h.ingest.handle(topic('reading'), patchBatch(batch('reading', 0, range(1, 5), { bootId: 'boot-m' }), { count: 9 }));
      // Malformed: not a Batch past its first fields (the records field cut short).
      const cut = batch('alert', 0, range(1, 5), { bootId: 'boot-cut' });
      h.ingest.handle(topic('alert'), cut.subarray(0, cut.byteLength - 3));
      // Unknown version, and a deviceId that does not match the topic.
      h.ingest.handle(topic('finding'), patchBatch(batch('finding', 0, range(1, 2), { bootId: 'boot-v' }), { schemaVersion: 99 }));
      h.ingest.handle(topic('chunk'), batch('chunk', 0, range(1, 2), { bootId: 'boot-d', deviceId: 'dev-else' }));
      // Oversize: more records than the limit.
      const big = setup({ maxRecords: 3 });
      big.ingest.handle(topic('reading'), batch('reading', 0, range(1, 5), { bootId: 'boot-o' }));
      // A revoked certificate, a clear payload where sealed ones are required, a sealed one under another key.
      h.ingest.handle(topic('reading', 'dev-lost'), batch('reading', 0, range(1, 5), { deviceId: 'dev-lost', bootId: 'boot-r' }));
      h.ingest.handle(topic('reading', 'dev-sealed'), batch('reading', 0, range(1, 5), { deviceId: 'dev-sealed', bootId: 'boot-c' }));
      h.ingest.handle(topic('alert', 'dev-sealed'), sealPayload('aes-256-gcm', other, topic('alert', 'dev-sealed'), batch('alert', 0, range(1, 5), { deviceId: 'dev-sealed', bootId: 'boot-s' })));
      // A sealed one that opens but holds a malformed batch: named.
      h.ingest.handle(topic('finding', 'dev-sealed'), sealPayload('aes-256-gcm', wireKey, topic('finding', 'dev-sealed'), patchBatch(batch('finding', 0, range(1, 5), { deviceId: 'dev-sealed', bootId: 'boot-sm' }), { count: 9 })));
      expect(notices()).toEqual([
        ['reading', 'malformed', 'boot-m'],
        ['alert', 'malformed', 'boot-cut'],
        ['finding', 'unknown-version', 'boot-v'],
        ['chunk', 'malformed', 'boot-d'],
        ['reading', 'certificate-revoked', 'boot-r'],
        ['reading', 'key', 'boot-c'],
        ['alert', 'key', ''],
        ['finding', 'malformed', 'boot-sm'],
      ]);
      expect(big.notices.map((n) => [n.ack.refused, n.ack.bootId])).toEqual([['oversize', 'boot-o']]);
      // Random bytes name no boot.
      h.ingest.handle(topic('quarantine'), Uint8Array.of(0xff, 0xff, 0xff, 0x01, 0x1a, 0x05));
      expect(h.notices.at(-1)?.ack).toMatchObject({ kind: 'quarantine', refused: 'malformed', bootId: '' });
    });

    it('names a payload that does not open under the device\'s wire key `key`', () => {
      const wireKey: WireKey = { keyId: 'w-000000000001', key: new Uint8Array(32).fill(7) };
      const other: WireKey = { keyId: 'w-000000000002', key: new Uint8Array(32).fill(8) };
      const h = setup({}, { wireKeys: () => wireKey, requireSealed: true });
      expect(h.ingest.handle(topic('reading'), sealPayload('aes-256-gcm', other, topic('reading'), batch('reading', 0, range(1, 5))))).toMatchObject({ ok: false, reason: 'auth' });
      expect(h.ingest.handle(topic('finding'), batch('finding', 0, range(1, 5)))).toMatchObject({ ok: false, reason: 'auth' });
      expect(h.notices.map((n) => [n.ack.kind, n.ack.refused])).toEqual([
        ['reading', 'key'],
        ['finding', 'key'],
      ]);
    });
  });
});
