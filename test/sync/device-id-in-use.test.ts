/**
 * Two boards configured with one deviceId, end to end: two real SQLite ledgers, two uplinks, the
 * embedded aedes broker and the edge store. Both use the MQTT client id `medge-<deviceId>`, so each
 * connection evicts the other's. The boards must say so (a `sync-device-id-in-use` alert), stop
 * thrashing (reconnects back off to `backoff.maxMs`), and lose nothing; the edge must count the
 * alternating boots as `duplicate-device-id` and show them in `medge edge stats`.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../device-sdk/records.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { edgeStatsText as statsText } from '../helpers/edge-stats-text.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('device-id-in-use');
const DEV = 'dev-twin';
const T0 = 1_700_000_000_000;
const RUN_MS = 8_000;

/** A reading tagged with the board that made it, so that bodies of two boards never coincide. */
function reading(board: string, i: number) {
  const t = T0 + i;
  return { kind: 'reading' as const, tMs: t, body: encodeBody('reading', { sensor: 'glucose', type: `glucose-${board}`, value: 80 + (i % 50), unit: 'mg/dL', tDevice: t }) };
}

const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

interface Board {
  store: SqliteOutboxStore;
  uplink: Uplink;
  connects: number;
  alerts: Alert[];
  bodies: string[];
}

function board(dir: string, name: string, url: string): Board {
  const store = new SqliteOutboxStore(join(dir, name, 'ledger.sqlite'), { deviceId: DEV });
  const uplink = new Uplink(store, { url, site: 'clinic', batchMaxRecords: 50, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 1000 } });
  const b: Board = { store, uplink, connects: 0, alerts: [], bodies: [] };
  uplink.on('state', (s) => (s === 'connected' ? (b.connects += 1) : undefined));
  uplink.on('alert', (a) => b.alerts.push(a));
  return b;
}

function append(b: Board, name: string, from: number, n: number): void {
  const records = Array.from({ length: n }, (_, i) => reading(name, from + i));
  b.store.append(records);
  b.bodies.push(...records.map((r) => sha(r.body)));
}


describe('two boards with one deviceId', () => {
  it('each raises sync-device-id-in-use once and backs off; the edge counts duplicate-device-id; every record of both boards reaches the edge', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const a = board(dir, 'a', edge.url);
    const b = board(dir, 'b', edge.url);
    append(a, 'a', 0, 200);
    append(b, 'b', 0, 200);
    a.uplink.start();
    b.uplink.start();
    // Both boards keep measuring while they fight over the session.
    const started = Date.now();
    let i = 200;
    while (Date.now() - started < RUN_MS) {
      await new Promise((r) => setTimeout(r, 500));
      append(a, 'a', i, 10);
      append(b, 'b', i, 10);
      i += 10;
    }
    // Before: the backoff restarted from initialMs at every connect, 50 ms here. Measured on the
    // previous code in these 8 s: see the commit message. Now it grows to maxMs (1 s): at most about 2 connects a second.
    for (const x of [a, b]) {
      expect(x.connects).toBeLessThan(40);
      expect(x.alerts).toHaveLength(1);
      expect(x.alerts[0]).toMatchObject({ kind: 'sync-device-id-in-use', severity: 2 });
      expect(x.alerts[0]?.message).toContain(`device id "${DEV}"`);
      expect(x.alerts[0]?.message).toContain('keeps its readings, alerts and findings until the edge confirms them; waveform the edge has not confirmed within 24 h may be deleted');
    }
    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.duplicateDeviceIds[DEV]?.count).toBeGreaterThanOrEqual(2);
    expect(new Set(stats.duplicateDeviceIds[DEV]?.bootIds)).toEqual(new Set([a.store.bootId, b.store.bootId]));
    expect(stats.rejected['duplicate-device-id']).toBe(stats.duplicateDeviceIds[DEV]?.count);
    const text = await statsText(join(dir, 'edge'));
    expect(text).toMatch(new RegExp(`DUPLICATE DEVICE IDS .*: ${DEV} \\d+ \\(boots `));

    // One board is given another id (here: switched off); the other then drains alone, and so on.
    await b.uplink.stop();
    await waitFor(() => a.uplink.drained, 'board a drained alone', 30_000);
    await a.uplink.stop();
    b.uplink.start();
    await waitFor(() => b.uplink.drained, 'board b drained alone', 30_000);
    await b.uplink.stop();
    // Nothing lost: every body of both boards is at the edge, in records or kept apart in conflicts.
    const atEdge = new Set([...edge.store.records(DEV, 'reading', 0, 1_000_000).map((r) => sha(r.body)), ...edge.store.conflicts(DEV, 'reading').map((r) => sha(r.body))]);
    expect([...a.bodies, ...b.bodies].filter((h) => !atEdge.has(h))).toEqual([]);
    a.store.close();
    b.store.close();
    await edge.stop();
  }, 90_000);

  it('a lone board across an edge broker restart raises nothing, and the edge counts no duplicate', async () => {
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const a = board(dir, 'a', edge.url);
    append(a, 'a', 0, 300);
    a.uplink.start();
    await waitFor(() => a.store.ackedUpTo('reading') >= 100, 'first readings acked');
    await edge.stopBroker();
    await new Promise((r) => setTimeout(r, 300));
    await edge.startBroker();
    await waitFor(() => a.uplink.drained, 'drained after the restart');
    await a.uplink.stop();
    // The same ledger restarted (a reboot: a new boot id, the old one never comes back).
    a.store.close();
    const again = board(dir, 'a', edge.url);
    append(again, 'a', 300, 100);
    again.uplink.start();
    await waitFor(() => again.uplink.drained, 'drained after the reboot');
    await again.uplink.stop();
    expect([...a.alerts, ...again.alerts]).toEqual([]);
    const stats = readEdgeStats(join(dir, 'edge'));
    expect(stats.duplicateDeviceIds).toEqual({});
    expect(stats.rejected['duplicate-device-id']).toBeUndefined();
    expect(await statsText(join(dir, 'edge'))).not.toContain('DUPLICATE DEVICE IDS');
    again.store.close();
    await edge.stop();
  }, 60_000);

  it('a lone board whose edge broker restarts 4 times, each within a minute of the board connecting, raises nothing', async () => {
    // A broker killed and restarted (or an edge link that drops) closes the connection as a takeover does; the
    // reconnect then fails at least once while the broker is down, which a takeover never does.
    const dir = tempDir();
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
    await edge.start();
    const a = board(dir, 'a', edge.url);
    append(a, 'a', 0, 100);
    a.uplink.start();
    for (let k = 0; k < 4; k++) {
      await waitFor(() => a.connects === k + 1, `connection ${k + 1}`, 20_000);
      await new Promise((r) => setTimeout(r, 500));
      await edge.stopBroker();
      await new Promise((r) => setTimeout(r, 300));
      await edge.startBroker();
      append(a, 'a', 100 + 10 * k, 10);
    }
    await waitFor(() => a.connects === 5 && a.uplink.drained, 'connected again and drained after the restarts', 30_000);
    await a.uplink.stop();
    expect(a.connects).toBeGreaterThanOrEqual(5);
    expect(a.alerts).toEqual([]);
    a.store.close();
    await edge.stop();
  }, 60_000);
});
