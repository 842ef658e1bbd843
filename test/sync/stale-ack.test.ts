/**
 * Acks the uplink did not earn in this process, over the embedded aedes broker with a real SQLite
 * ledger and a scripted edge peer (it validates every batch the way the edge does, and chooses what
 * to ack): acks of the previous process arriving after a restart, and an edge watermark that covers
 * seqs of another ledger under the same deviceId.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeAck, encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { downTopic } from '../../device-sdk/sync/topics.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EmbeddedBroker } from '../../edge/broker.js';
import { scriptedEdge } from '../helpers/scripted-edge.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('stale-ack');
const SITE = 'clinic';
const DEV = 'dev-s';
const reading = (i: number) => ({
  kind: 'reading' as const,
  tMs: 1_700_000_000_000 + i,
  body: encodeBody('reading', { sensor: 'hr', type: 'heart-rate', value: 60 + (i % 40), unit: '/min', tDevice: 1_700_000_000_000 + i }),
});

describe('acks the uplink did not earn in this process', () => {
  it.each([
    // The previous process had sent up to 2,000 before it stopped; the edge commits and acks it after the restart.
    { name: 'an ack of the previous process after a restart', firstAck: 2000 },
    // The edge's watermark of this deviceId came from another ledger (new SD card under the same id).
    { name: 'an edge watermark above anything this ledger sent', firstAck: 100_000 },
  ])('$name: every batch stays valid, and nothing unsent is taken as acknowledged', async ({ firstAck }) => {
    const dir = tempDir();
    const broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
    await broker.start();
    // Validates every batch like the edge; answers the first with `firstAck`, the others with their lastSeq.
    const peer = await scriptedEdge(broker.url, SITE, (batch, i) => (i === 0 ? firstAck : batch.lastSeq));
    const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId: DEV });
    store.append(Array.from({ length: 3000 }, (_, i) => reading(i)));
    const uplink = new Uplink(store, { url: broker.url, site: SITE, batchMaxRecords: 100, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
    uplink.start();
    await waitFor(() => uplink.drained || peer.rejected.length > 0, 'drained or a batch rejected');
    await uplink.stop();
    // Before: the first ack raised the watermark to 2,000 while the cursor stood at 400, and the next
    // batch said "ackedUpTo 2000 is above afterSeq 400" (QA saw 444000 / 442000 after a restart).
    expect(peer.rejected).toEqual([]);
    // Every record was sent by this process before it was taken as acknowledged.
    const sent = new Set(peer.batches.flatMap((b) => Array.from({ length: b.lastSeq - b.afterSeq }, (_, i) => b.afterSeq + 1 + i)));
    expect(sent.size).toBe(3000);
    expect(store.stats().reading).toMatchObject({ ackedUpTo: 3000, pending: 0 });
    store.close();
    await peer.close();
    await broker.stop();
  });

  it('an ack naming another boot (another device under the same deviceId, or a previous run) is ignored; one naming this boot counts', async () => {
    const dir = tempDir();
    const broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
    await broker.start();
    // An edge that acks nothing by itself: the batches stay in flight.
    const peer = await scriptedEdge(broker.url, SITE, () => undefined);
    const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId: DEV });
    store.append(Array.from({ length: 50 }, (_, i) => reading(i)));
    const uplink = new Uplink(store, { url: broker.url, site: SITE, batchMaxRecords: 100, window: 4, ackTimeoutMs: 60_000, backoff: { initialMs: 50, maxMs: 200 } });
    uplink.start();
    try {
      await waitFor(() => peer.batches.length === 1, 'the batch published');
      const ack = (bootId: string) => Buffer.from(encodeAck({ deviceId: DEV, kind: 'reading', upToSeq: 50, edgeMs: Date.now(), bootId }));
      // The other board's edge ack covers seqs this one published but the broker never delivered.
      await peer.client.publishAsync(downTopic(SITE, DEV, 'ack'), ack('the-other-board'), { qos: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(store.stats().reading.ackedUpTo).toBe(0);
      await peer.client.publishAsync(downTopic(SITE, DEV, 'ack'), ack(store.bootId), { qos: 1 });
      await waitFor(() => store.stats().reading.ackedUpTo === 50, 'the ack of this boot taken');
    } finally {
      await uplink.stop();
      store.close();
      await peer.close();
      await broker.stop();
    }
  });
});
