/**
 * A device whose ledger is damaged after it synced, end to end over the embedded aedes broker with a real
 * edge store: the fresh ledger continues above every seq the old one handed out, the unacknowledged records
 * still readable in the damaged file are restored with their seqs and boot id, and the edge ends with every
 * record of the fresh ledger and no seq conflict (a fresh ledger from seq 1 gave one conflict per record:
 * `seq-reuse.test.ts`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { loadOrCreateDeviceKey } from '../../device-sdk/security/device-key.js';
import { openLedgerRecovering } from '../../device-sdk/store/ledger-recovery.js';
import type { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('ledger-damaged-sync');
const DEV = 'dev-damaged';
const T0 = 1_700_000_000_000;

function reading(i: number) {
  const t = T0 + i;
  return { kind: 'reading' as const, tMs: t, tag: 'glucose', body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 80 + (i % 50), unit: 'mg/dL', tDevice: t, context: { note: `reading ${i}` } }) };
}

function alert(i: number) {
  return { kind: 'alert' as const, tMs: T0 + i, tag: 'hypo', body: encodeBody('alert', { kind: 'hypo', severity: 3, message: `glucose low ${i}`, t: T0 + i }) };
}

const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

function open(dir: string) {
  const { deviceKey } = loadOrCreateDeviceKey(join(dir, 'device.key'));
  return openLedgerRecovering(join(dir, 'ledger.sqlite'), { deviceId: DEV, encryption: { suite: 'aes-256-gcm', deviceKey }, nowMs: Date.now() });
}

async function sync(store: SqliteOutboxStore, edge: EdgeNode): Promise<void> {
  const uplink = new Uplink(store, { url: edge.url, site: 'clinic', batchMaxRecords: 50, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
  uplink.start();
  await waitFor(() => uplink.drained, 'uplink drained');
  await uplink.stop();
}

/** Overwrites the first leaf page of `table` (its lowest seqs) with random bytes. */
function damageFirstLeaf(path: string, table: string): number {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const page = db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path LIMIT 1").pluck().get(table) as number;
  const size = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(size), 0, size, (page - 1) * size);
  closeSync(fd);
  return page;
}

describe('a damaged ledger syncs cleanly from a fresh one', () => {
  it('synced records, then a bad page: the fresh ledger continues above the old seqs, unacked records restored, 0 conflicts', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const device = join(dir, 'device');
    const first = open(device);
    expect(first.damage).toBeUndefined();
    const a = first.store;
    const oldBoot = a.bootId;
    a.append([...Array.from({ length: 300 }, (_, i) => reading(i)), alert(0)]);
    await sync(a, edge);
    expect(a.stats().reading.ackedUpTo).toBe(300);
    // Made while the link was down: not at the edge yet.
    const unacked = Array.from({ length: 50 }, (_, i) => reading(300 + i));
    a.append(unacked);
    a.close();

    damageFirstLeaf(join(device, 'ledger.sqlite'), 'rec_reading');
    const second = open(device);
    const damage = second.damage;
    expect(damage?.code).toMatch(/^(SQLITE_CORRUPT\w*|quick-check)$/);
    expect(damage?.restored).toEqual({ reading: 50 });
    const b = second.store;
    expect(b.heldFrom('reading')).toBe(301);
    const fresh = [...Array.from({ length: 200 }, (_, i) => reading(1000 + i)), alert(1)];
    const seqs = b.append(fresh);
    expect(Math.min(...seqs.slice(0, 200))).toBeGreaterThan(350);
    expect(seqs.at(-1)).toBeGreaterThan(1);
    await sync(b, edge);
    expect(b.stats().reading).toMatchObject({ pending: 0 });

    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.rejected['seq-conflict'] ?? 0).toBe(0);
    expect(stats.conflicts).toEqual({});
    // Everything of the fresh ledger is at the edge, under its seqs, with the body and boot id it has there.
    const held = b.readAfter('reading', 0, 10_000);
    expect(held).toHaveLength(250);
    const atEdge = new Map(edge.store.records(DEV, 'reading', 0, 10_000).map((r) => [r.seq, r]));
    expect(atEdge.size).toBe(300 + 250);
    for (const r of held) {
      expect(sha(atEdge.get(r.seq)?.body ?? new Uint8Array())).toBe(sha(r.body));
      expect(atEdge.get(r.seq)?.bootId).toBe(r.seq <= 350 ? oldBoot : b.bootId);
    }
    expect(held.slice(0, 50).map((r) => sha(r.body))).toEqual(unacked.map((e) => sha(e.body)));
    expect(edge.store.records(DEV, 'alert', 0, 100).map((r) => r.seq)).toEqual([1, seqs.at(-1)]);
    b.close();
    await edge.stop();
  });

  it('nothing of the old file readable: the seq reservation alone keeps the fresh ledger above the synced seqs', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const device = join(dir, 'device');
    const a = open(device).store;
    a.append(Array.from({ length: 120 }, (_, i) => reading(i)));
    await sync(a, edge);
    a.close();
    const fd = openSync(join(device, 'ledger.sqlite'), 'r+');
    writeSync(fd, randomBytes(100), 0, 100, 0);
    closeSync(fd);

    const { store: b, damage } = open(device);
    expect(damage?.code).toBe('SQLITE_NOTADB');
    expect(damage?.readableMaxSeq).toEqual({});
    b.append(Array.from({ length: 80 }, (_, i) => reading(500 + i)));
    await sync(b, edge);
    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.rejected['seq-conflict'] ?? 0).toBe(0);
    const seqs = edge.store.records(DEV, 'reading', 0, 10_000).map((r) => r.seq);
    expect(seqs).toHaveLength(200);
    expect(seqs.slice(120).every((s) => s > 120)).toBe(true);
    expect(b.stats().reading.ackedUpTo).toBe(b.stats().reading.lastSeq);
    b.close();
    await edge.stop();
  });
});
