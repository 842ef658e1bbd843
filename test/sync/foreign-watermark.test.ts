/**
 * A ledger whose seqs lie below the edge's watermark for its deviceId, with no seq conflict: a new SD card
 * whose clock is behind the time the old card's ledger was opened at (a Raspberry Pi has no RTC; offline it
 * boots on the image's or fake-hwclock's time), so the wall-clock floor puts the new seqs far below the old
 * card's and none of them clashes. The edge's watermark (`Ack.upToSeq`) then covers the old card's seqs, far
 * above anything this ledger sent, and says nothing about this ledger's batches in flight. Real SQLite
 * ledgers, a real edge node (ingest + SQLite store) behind an aedes broker that loses one batch on its way
 * to the ingest after it PUBACKed it (what a broker restarted with in-memory persistence does).
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { openFloorLedger } from '../helpers/floor-ledger.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('foreign-watermark');
const DEV = 'dev-w';
const SITE = 'clinic';
const T = 1_765_000_000_000;
const DAY = 24 * 60 * 60_000;

const reading = (ledger: string, i: number) => ({
  kind: 'reading' as const,
  tMs: T + i,
  body: encodeBody('reading', { sensor: 'glucose', type: `glucose-${ledger}`, value: 80 + (i % 50), unit: 'mg/dL', tDevice: T + i }),
});
const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

const openLedger = (dir: string, clockMs: number): SqliteOutboxStore => openFloorLedger(dir, DEV, clockMs);

/** Runs an uplink (window 4 x 50) until the edge has acknowledged everything the ledger holds, then compacts it. */
async function syncAndCompact(store: SqliteOutboxStore, url: string): Promise<void> {
  const uplink = new Uplink(store, { url, site: SITE, batchMaxRecords: 50, window: 4, ackTimeoutMs: 1500, backoff: { initialMs: 50, maxMs: 200 } });
  uplink.start();
  await waitFor(() => uplink.drained, 'uplink drained', 20_000);
  await uplink.stop();
  store.compact(Date.now() + DAY);
}

describe('a ledger below the edge watermark of another ledger under its deviceId', () => {
  it.each([
    // No clash: the edge's watermark (the old card's T * 1000 + 300) is above anything this ledger sent.
    { name: 'clock 30 days behind (no seq clashes)', clockMs: T - 30 * DAY, conflicts: 0 },
    // The clock reads the old ledger's start: all 200 seqs clash (acks with seqFloor, upToSeq = the batch's lastSeq).
    { name: "clock at the old ledger's start (seq clashes)", clockMs: T, conflicts: 200 },
  ])('$name: a batch lost between broker and ingest is sent again, not taken as acknowledged by the next batch\'s ack', async ({ clockMs, conflicts }) => {
    const dir = tempDir();
    // Drops, once armed, the first reading batch on its way to the ingest (the publisher has its PUBACK).
    let dropArmed = false;
    const dropped: string[] = [];
    const aedes = await Aedes.createBroker({
      authorizeForward: (_client, packet) => {
        if (dropArmed && packet.topic.endsWith(`/${DEV}/up/reading`)) {
          dropArmed = false;
          dropped.push(packet.topic);
          return null;
        }
        return packet;
      },
    });
    const server: Server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), brokerUrl: url, port: 0 });
    await edge.start();
    const sync = (store: SqliteOutboxStore) => syncAndCompact(store, url);
    try {
      // The old card, its clock right: 300 readings at seqs T * 1000 + 1..300, synced and compacted.
      const a = openLedger(join(dir, 'card-a'), T);
      const aRecords = Array.from({ length: 300 }, (_, i) => reading('a', i));
      a.append(aRecords);
      await sync(a);
      a.close();

      // The new card boots offline with its clock behind: seqs clockMs * 1000 + 1..200.
      const b = openLedger(join(dir, 'card-b'), clockMs);
      const bRecords = Array.from({ length: 200 }, (_, i) => reading('b', i));
      b.append(bRecords);
      dropArmed = true;
      await sync(b);
      b.close();

      expect(dropped).toHaveLength(1);
      const held = edge.store.records(DEV, 'reading', 0, 10_000).map((r) => sha(r.body));
      const kept = edge.store.conflicts(DEV, 'reading').map((r) => sha(r.body));
      const missing = bRecords.filter((r) => !held.includes(sha(r.body)) && !kept.includes(sha(r.body))).length;
      // Before: the ack of the second batch (upToSeq the old card's T * 1000 + 300, or with clashes that
      // batch's lastSeq) acknowledged the lost first batch with it; the device compacted it: 50 of the 200
      // records never reached the edge, neither stored nor kept as conflicts.
      expect({ missing, conflicts: kept.length, stored: held.length }).toEqual({ missing: 0, conflicts, stored: 500 - conflicts });
      expect(held.slice(0, 300)).toEqual(conflicts === 0 ? bRecords.concat(aRecords).slice(0, 300).map((r) => sha(r.body)) : aRecords.map((r) => sha(r.body)));
    } finally {
      await edge.stop();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 30_000);

  it('no clash: the edge still sends seqFloor, and the records made after its ack go above the old card\'s seqs', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const sync = (store: SqliteOutboxStore) => syncAndCompact(store, edge.url);
    try {
      const a = openLedger(join(dir, 'card-a'), T);
      a.append(Array.from({ length: 300 }, (_, i) => reading('a', i)));
      await sync(a);
      a.close();
      const aTop = T * 1000 + 300;

      const b = openLedger(join(dir, 'card-b'), T - 30 * DAY);
      b.append(Array.from({ length: 100 }, (_, i) => reading('b', i)));
      await sync(b);
      b.append(Array.from({ length: 100 }, (_, i) => reading('b', 100 + i)));
      await sync(b);

      // Before: no seqFloor without a clash, the new card's seqs stayed below the old card's for good
      // ((T - 30 d) * 1000 + 101..200), where the edge's watermark cannot see its gaps.
      const seqs = edge.store.records(DEV, 'reading', 0, 10_000).map((r) => r.seq);
      expect(seqs.filter((q) => q > aTop)).toEqual(Array.from({ length: 100 }, (_, i) => aTop + 1 + i));
      expect(seqs).toHaveLength(500);
      expect(b.readAudit().filter((e) => e.action === 'sync-seqs-raised')).toHaveLength(1);
      expect(edge.store.conflicts(DEV, 'reading')).toHaveLength(0);
      b.close();
    } finally {
      await edge.stop();
    }
  }, 30_000);
});
