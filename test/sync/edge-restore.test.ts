/**
 * An edge store restored from an older backup, end to end over the embedded aedes broker with a real
 * SQLite ledger and real edge store files: the device still holds what the edge lost, and sync must
 * refill the gap so that every record ends up at the edge exactly once.
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { edgeDatabasePath } from '../../edge/edge-store.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('edge-restore');
const DEV = 'dev-r';
const T0 = 1_700_000_000_000;

const reading = (i: number) => ({
  kind: 'reading' as const,
  tMs: T0 + i,
  body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 80 + (i % 50), unit: 'mg/dL', tDevice: T0 + i }),
});
const alert = (i: number) => ({ kind: 'alert' as const, tMs: T0 + i, body: encodeBody('alert', { kind: 'hypo', severity: 3, message: `low #${i}`, t: T0 + i }) });
const produce = (from: number, n: number) => [...Array.from({ length: n }, (_, i) => reading(from + i)), ...Array.from({ length: n / 50 }, (_, i) => alert(from + i))];
const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

function startUplink(store: SqliteOutboxStore, url: string): Uplink {
  const uplink = new Uplink(store, { url, site: 'clinic', batchMaxRecords: 40, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
  uplink.start();
  return uplink;
}

/**
 * A device syncs 400 readings (and 8 alerts) to an edge, the edge store is backed up, 300 more readings (and 6
 * alerts) are acked, then the edge's disk fails and its store is restored from the backup. Returns the device
 * store and the restarted edge (holding only what the backup had); the uplink is stopped.
 */
async function edgeRestoredFromBackup(dir: string): Promise<{ store: SqliteOutboxStore; edge: EdgeNode }> {
  const edgeDir = join(dir, 'edge');
  let edge = new EdgeNode({ dataDir: edgeDir, port: 0 });
  await edge.start();
  // Default retention (90 days): the device keeps acknowledged records.
  const store = new SqliteOutboxStore(join(dir, 'device', 'ledger.sqlite'), { deviceId: DEV });
  store.append(produce(0, 400));
  const uplink = startUplink(store, edge.url);
  await waitFor(() => uplink.drained, 'first 400 readings acked');
  // The nightly backup, taken through SQLite's online backup from a second connection.
  const backup = join(dir, 'edge-backup.sqlite');
  const live = new Database(edgeDatabasePath(edgeDir), { readonly: true });
  await live.backup(backup);
  live.close();
  store.append(produce(400, 300));
  await waitFor(() => uplink.drained, '700 readings acked');
  expect(store.stats().reading.ackedUpTo).toBe(700);
  await uplink.stop();
  await edge.stop();
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${edgeDatabasePath(edgeDir)}${suffix}`, { force: true });
  const restored = new Database(backup);
  await restored.backup(edgeDatabasePath(edgeDir));
  restored.close();
  edge = new EdgeNode({ dataDir: edgeDir, port: 0 });
  await edge.start();
  expect(edge.store.audit(DEV).reading).toMatchObject({ stored: 400, maxSeq: 400 });
  expect(edge.store.audit(DEV).alert).toMatchObject({ stored: 8, maxSeq: 8 });
  return { store, edge };
}

/** Device ledger and edge store agree by kind, seq and body hash; nothing twice, nothing apart. */
function expectSameRecords(store: SqliteOutboxStore, edge: EdgeNode): void {
  for (const kind of RECORD_KINDS) {
    const device = store.readAfter(kind, 0, 1_000_000).map((r) => [r.seq, sha(r.body)]);
    const atEdge = edge.store.records(DEV, kind, 0, 1_000_000).map((r) => [r.seq, sha(r.body)]);
    expect(atEdge, kind).toEqual(device);
    expect(edge.store.conflicts(DEV, kind), kind).toEqual([]);
  }
}

describe('edge store restored from an older backup', () => {
  it('the device sends again what the edge lost: every record ends up at the edge exactly once', async () => {
    const { store, edge } = await edgeRestoredFromBackup(tempDir());
    // The device keeps producing.
    store.append(produce(700, 100));
    const uplink = startUplink(store, edge.url);
    await waitFor(() => uplink.drained && edge.store.audit(DEV).reading?.stored === 800, 'the edge holds all 800 readings', 30_000);
    await uplink.stop();
    expectSameRecords(store, edge);
    expect(store.stats().reading).toMatchObject({ lastSeq: 800, ackedUpTo: 800, pending: 0, rows: 800 });
    expect(store.stats().alert).toMatchObject({ lastSeq: 16, ackedUpTo: 16, pending: 0 });
    store.close();
    await edge.stop();
  });

  it('an idle device: a kind with nothing new to send gets its lost records back too, after the reconnect', async () => {
    const { store, edge } = await edgeRestoredFromBackup(tempDir());
    // Nothing new is produced: before, nothing was sent and the 6 alerts and 300 readings stayed missing.
    const uplink = startUplink(store, edge.url);
    await waitFor(() => edge.store.audit(DEV).reading?.stored === 700 && edge.store.audit(DEV).alert?.stored === 14, 'the edge holds all 700 readings and 14 alerts', 30_000);
    await waitFor(() => uplink.drained, 'drained');
    await uplink.stop();
    expectSameRecords(store, edge);
    expect(store.stats().alert).toMatchObject({ lastSeq: 14, ackedUpTo: 14, pending: 0 });
    store.close();
    await edge.stop();
  });
});
