/**
 * A device that reuses seqs, end to end over the embedded aedes broker with real SQLite ledgers and a
 * real edge store: a new ledger under an existing deviceId (SD card replaced) and a ledger restored
 * from an older copy. Every record either ledger produced must end up at the edge, in `records` or
 * kept apart in `conflicts`, before the device is told it may compact it.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { RecordKind } from '../../device-sdk/records.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('seq-reuse');
const DEV = 'dev-1';
const T0 = 1_700_000_000_000;

/** A reading tagged with the ledger that produced it, so that bodies of two ledgers never coincide. */
function reading(ledger: string, i: number) {
  const t = T0 + i;
  return { kind: 'reading' as const, tMs: t, body: encodeBody('reading', { sensor: 'glucose', type: `glucose-${ledger}`, value: 80 + (i % 50), unit: 'mg/dL', tDevice: t }) };
}

function alert(ledger: string, i: number) {
  return { kind: 'alert' as const, tMs: T0 + i, body: encodeBody('alert', { kind: `hypo-${ledger}`, severity: 3, message: 'glucose low', t: T0 + i }) };
}

const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

function openLedger(path: string): SqliteOutboxStore {
  return new SqliteOutboxStore(path, { deviceId: DEV, retentionMs: { reading: 0, alert: 0 } });
}

/** Runs an uplink until the edge has acknowledged everything the ledger holds, then compacts what it may. */
async function syncAndCompact(store: SqliteOutboxStore, edge: EdgeNode): Promise<void> {
  const uplink = new Uplink(store, { url: edge.url, site: 'clinic', batchMaxRecords: 50, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
  uplink.start();
  await waitFor(() => uplink.drained, 'uplink drained');
  await uplink.stop();
  store.compact(Date.now() + 1);
}

/** Body hashes per kind and seq the edge holds for DEV, in records and in conflicts. */
function edgeHolds(edge: EdgeNode, kind: RecordKind): { records: Map<number, string>; conflicts: string[] } {
  const records = new Map(edge.store.records(DEV, kind, 0, 1_000_000).map((r) => [r.seq, sha(r.body)]));
  return { records, conflicts: edge.store.conflicts(DEV, kind).map((r) => sha(r.body)) };
}

describe('a device that reuses seqs loses nothing at the edge', () => {
  it('a new ledger under an existing deviceId: its records are kept in conflicts and counted before they are acked', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const a = openLedger(join(dir, 'a', 'ledger.sqlite'));
    const aBodies = [...Array.from({ length: 300 }, (_, i) => reading('a', i)), alert('a', 0)];
    a.append(aBodies);
    await syncAndCompact(a, edge);
    a.close();

    // The SD card is replaced: a new ledger, the same deviceId, seqs from 1 again.
    const b = openLedger(join(dir, 'b', 'ledger.sqlite'));
    const bBodies = [...Array.from({ length: 276 }, (_, i) => reading('b', i)), alert('b', 0)];
    b.append(bBodies);
    await syncAndCompact(b, edge);
    // The device was told everything is committed and compacted it.
    expect(b.stats().reading).toMatchObject({ ackedUpTo: 276, pending: 0, rows: 0 });
    b.close();

    const readings = edgeHolds(edge, 'reading');
    expect([...readings.records.values()]).toEqual(aBodies.filter((e) => e.kind === 'reading').map((e) => sha(e.body)));
    expect(readings.conflicts).toEqual(bBodies.filter((e) => e.kind === 'reading').map((e) => sha(e.body)));
    expect(edgeHolds(edge, 'alert').conflicts).toEqual([sha((bBodies.at(-1) as { body: Uint8Array }).body)]);
    expect(edge.store.conflicts(DEV, 'reading').map((r) => r.seq)).toEqual(Array.from({ length: 276 }, (_, i) => i + 1));
    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.rejected['seq-conflict']).toBe(277);
    expect(stats.conflicts).toEqual({ [DEV]: { alert: 1, reading: 276 } });
    await edge.stop();
  });

  it('a ledger restored from an older copy: records made after the restore are kept, true resends stay replays', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const path = join(dir, 'dev', 'ledger.sqlite');
    let store = openLedger(path);
    const first = Array.from({ length: 100 }, (_, i) => reading('before', i));
    store.append(first);
    // A copy taken while nothing is acknowledged yet: after the restore the device resends 1..100.
    store.close();
    copyFileSync(path, join(dir, 'backup.sqlite'));
    store = openLedger(path);
    await syncAndCompact(store, edge);
    const lost = Array.from({ length: 100 }, (_, i) => reading('lost', 100 + i));
    store.append(lost);
    await syncAndCompact(store, edge);
    store.close();

    // The operator restores the older copy (what the corrupt-database message advises).
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    copyFileSync(join(dir, 'backup.sqlite'), path);
    store = openLedger(path);
    const after = Array.from({ length: 150 }, (_, i) => reading('after', 100 + i));
    store.append(after);
    await syncAndCompact(store, edge);
    expect(store.stats().reading).toMatchObject({ ackedUpTo: 250, pending: 0, rows: 0 });
    store.close();

    const readings = edgeHolds(edge, 'reading');
    expect([...readings.records.keys()]).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    // 1..100 resent unchanged: stored once, no conflict. 101..200 made twice: the first kept in records, the second in conflicts.
    expect([...readings.records.values()]).toEqual([...first, ...lost, ...after.slice(100)].map((e) => sha(e.body)));
    expect(readings.conflicts).toEqual(after.slice(0, 100).map((e) => sha(e.body)));
    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.rejected['seq-conflict']).toBe(100);
    expect(stats.rejected.replay).toBeGreaterThanOrEqual(1);
    await edge.stop();
  });
});
