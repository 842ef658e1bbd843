/**
 * Two boards under one deviceId must not mix their records at the edge, end to end: two real SQLite ledgers,
 * two uplinks, the embedded aedes broker, and the edge's ingest (one, or two worker processes that each get half
 * of the batches, as on a shared subscription, each with its own connection to the one SQLite edge store). Once the
 * edge has proven two live boots, it stores only the incumbent's batches; the other board's are refused
 * (`Ack.refused` `device-id-in-use`), stay on that board, which raises `sync-batches-refused`, and reach the
 * edge once the incumbent board has been given its own id. Before: both boards' records stored, mixed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../device-sdk/records.js';
import { decodeBatch, encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { UP_WILDCARD } from '../../device-sdk/sync/topics.js';
import { SYNC_BATCHES_REFUSED, Uplink } from '../../device-sdk/sync/uplink.js';
import { EmbeddedBroker } from '../../edge/broker.js';
import type { DuplicateDeviceIdOptions } from '../../edge/duplicate-device-id.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { EdgeStore, readEdgeStats } from '../../edge/edge-store.js';
import { edgeStatsText as statsText } from '../helpers/edge-stats-text.js';
import { requireBuild, ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('device-id-refused');
const DEV = 'dev-twin';
const T0 = 1_700_000_000_000;
/** Scaled down for a test: proven after 4 switches back spanning 2 s; a boot silent for 4 s is gone, a proven one's place held 4 s (7 days by default). */
const WATCH: Partial<DuplicateDeviceIdOptions> = { proofSwitchBacks: 4, proofSpanMs: 2_000, windowMs: 4_000, holdMs: 4_000 };
const NOTICE = { repeatMs: 500 };

const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

interface Board {
  name: string;
  store: SqliteOutboxStore;
  uplink: Uplink;
  alerts: Alert[];
  bodies: string[];
}

function board(dir: string, name: string, url: string): Board {
  const store = new SqliteOutboxStore(join(dir, name, 'ledger.sqlite'), { deviceId: DEV });
  const uplink = new Uplink(store, { url, site: 'clinic', batchMaxRecords: 50, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 1000 } });
  const b: Board = { name, store, uplink, alerts: [], bodies: [] };
  uplink.on('alert', (a) => b.alerts.push(a));
  return b;
}

/** Readings tagged with the board that made them, so that bodies of two boards never coincide. */
function append(b: Board, from: number, n: number): void {
  const records = Array.from({ length: n }, (_, i) => {
    const t = T0 + from + i;
    return { kind: 'reading' as const, tMs: t, body: encodeBody('reading', { sensor: 'glucose', type: `glucose-${b.name}`, value: 80 + (i % 50), unit: 'mg/dL', tDevice: t }) };
  });
  b.store.append(records);
  b.bodies.push(...records.map((r) => sha(r.body)));
}

/** An edge: its broker URL, a store to read, and how to stop it. */
interface Edge {
  url: string;
  dataDir: string;
  store: EdgeStore;
  stop: () => Promise<void>;
}

async function singleIngest(dataDir: string): Promise<Edge> {
  const edge = new EdgeNode({ dataDir, port: 0, duplicateDeviceId: WATCH, payload: { refusalNotice: NOTICE } });
  await edge.start();
  return { url: edge.url, dataDir, store: edge.store, stop: () => edge.stop() };
}

/**
 * Two ingest workers, each in its own process with its own EdgeStore (SQLite connection) on one data directory,
 * each handling half of the uplink messages: what a shared subscription ($share/...) does. aedes 1.2 has no shared
 * subscriptions (and Mosquitto is not on every test machine), so each worker takes the messages whose payload
 * hash falls to it (`test/helpers/ingest-worker.mjs`, the built code). The test reads through a third connection.
 */
async function twoWorkerProcesses(dataDir: string): Promise<Edge> {
  requireBuild();
  const broker = new EmbeddedBroker({ port: 0 });
  await broker.start();
  // The store (and its migrations) exist before the workers open it.
  const store = new EdgeStore(dataDir);
  const workers = [0, 1].map((i) =>
    spawn(process.execPath, [join(ROOT, 'test', 'helpers', 'ingest-worker.mjs'), broker.url, dataDir, String(i), '2', JSON.stringify(WATCH), JSON.stringify(NOTICE)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.stdout.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
    w.on('exit', (code) => reject(new Error(`ingest worker exited with ${code}`)));
  })));
  return {
    url: broker.url,
    dataDir,
    store,
    stop: async () => {
      await Promise.all(workers.map((w) => new Promise((resolve) => {
        w.on('exit', resolve);
        w.kill('SIGTERM');
      })));
      await broker.stop();
      store.close();
    },
  };
}

describe('two boards under one deviceId (aedes, two real ledgers)', () => {
  it.each([
    ['one ingest', singleIngest],
    ['two ingest worker processes on one store', twoWorkerProcesses],
  ])("%s: the edge stores only the incumbent's records once two live boots are proven; the other's are refused, kept on its board (alert raised), and delivered once the id is fixed", async (_name, startEdge) => {
    const dir = tempDir();
    const edge = await startEdge(join(dir, 'edge'));
    const boards = [board(dir, 'a', edge.url), board(dir, 'b', edge.url)] as [Board, Board];
    for (const b of boards) append(b, 0, 100);
    for (const b of boards) b.uplink.start();
    // Both boards keep measuring while they evict each other's MQTT session, until the edge has proven it.
    let i = 100;
    const proven = () => readEdgeStats(edge.dataDir).duplicateDeviceIds[DEV]?.refusedBoot;
    const measure = setInterval(() => {
      for (const b of boards) append(b, i, 10);
      i += 10;
    }, 250);
    try {
      await waitFor(() => proven() !== undefined, 'two live boots proven', 40_000);
      const stats = readEdgeStats(edge.dataDir).duplicateDeviceIds[DEV];
      const incumbent = boards.find((b) => b.store.bootId === stats?.incumbent) as Board;
      const intruder = boards.find((b) => b.store.bootId === stats?.refusedBoot) as Board;
      expect(new Set([incumbent.name, intruder.name])).toEqual(new Set(['a', 'b']));
      // What the intruder got stored before the proof (mixed with the incumbent's) is findable: boot, kind, count, seq range.
      // Both ledgers were created in the same few ms: their seqs may clash, and the later record of a clash is kept in conflicts.
      const ofIntruder = () => [...edge.store.records(DEV, 'reading', 0, 1_000_000), ...edge.store.conflicts(DEV, 'reading')].filter((r) => r.bootId === intruder.store.bootId);
      const storedBefore = ofIntruder();
      const listed = stats?.storedByBoot[intruder.store.bootId]?.reading;
      expect((listed?.stored ?? 0) + (listed?.conflicts ?? 0)).toBe(storedBefore.length);
      await waitFor(() => intruder.alerts.some((a) => a.kind === SYNC_BATCHES_REFUSED), 'the intruder\'s sync-batches-refused alert', 30_000);
      // Both keep running and measuring for 3 s more: the incumbent's records are stored, the intruder's not one more.
      const incumbentStored = () => edge.store.records(DEV, 'reading', 0, 1_000_000).filter((r) => r.bootId === incumbent.store.bootId).length;
      const before = incumbentStored();
      await new Promise((r) => setTimeout(r, 3_000));
      clearInterval(measure);
      await waitFor(() => incumbent.uplink.drained, 'the incumbent drained while the intruder runs', 30_000);
      expect(incumbentStored()).toBeGreaterThan(before);
      expect(ofIntruder()).toHaveLength(storedBefore.length);
      expect(intruder.uplink.refused).toEqual({ reading: 'device-id-in-use' });
      const refusedAlert = intruder.alerts.find((a) => a.kind === SYNC_BATCHES_REFUSED);
      expect(refusedAlert).toMatchObject({ severity: 2 });
      expect(refusedAlert?.message).toContain('reason: device-id-in-use');
      expect(refusedAlert?.message).toContain('Give each board its own device id and certificate');
      expect(incumbent.alerts.filter((a) => a.kind === SYNC_BATCHES_REFUSED)).toEqual([]);
      // Kept on its board: every record of the intruder is at the edge or still pending in its ledger.
      const onBoard = new Set(intruder.store.readAfter('reading', intruder.store.ackedUpTo('reading'), 1_000_000).map((r) => sha(r.body)));
      const atEdgeBefore = new Set(storedBefore.map((r) => sha(r.body)));
      expect(onBoard.size).toBeGreaterThan(0);
      expect(intruder.bodies.filter((h) => !onBoard.has(h) && !atEdgeBefore.has(h))).toEqual([]);
      const text = await statsText(edge.dataDir);
      expect(text).toContain(`${DEV}: refusing boot ${intruder.store.bootId}`);
      expect(text).toContain(`boot ${intruder.store.bootId}: reading ${listed?.stored ?? 0}`);

      // The id is fixed: the incumbent board is re-provisioned under an id of its own (here: it leaves this id).
      // Once it has been silent for the hold, the other board's records are taken.
      await incumbent.uplink.stop();
      await waitFor(() => intruder.uplink.drained, 'the other board drained once the incumbent left the id', 40_000);
      expect(intruder.uplink.refused).toEqual({});
      const atEdge = new Set([...edge.store.records(DEV, 'reading', 0, 1_000_000).map((r) => sha(r.body)), ...edge.store.conflicts(DEV, 'reading').map((r) => sha(r.body))]);
      expect([...incumbent.bodies, ...intruder.bodies].filter((h) => !atEdge.has(h))).toEqual([]);
      const after = readEdgeStats(edge.dataDir);
      expect(after.rejected['device-id-in-use']).toBeGreaterThan(0);
      expect(after.duplicateDeviceIds[DEV]?.releasedMs).toEqual(expect.any(Number));
    } finally {
      clearInterval(measure);
      for (const b of boards) await b.uplink.stop();
      for (const b of boards) b.store.close();
      await edge.stop();
    }
  }, 150_000);

  it('a lone board rebooted twice, with the old boot\'s last batch published again after each reboot (a late QoS-1 redelivery), is never refused', async () => {
    const dir = tempDir();
    const edge = await singleIngest(join(dir, 'edge'));
    // A raw copy of every uplink payload, to publish an old boot's batch again after the reboot.
    const spy = connect(edge.url, { protocolVersion: 4, clientId: 'spy', clean: true });
    const captured: { topic: string; payload: Buffer; bootId: string }[] = [];
    spy.on('message', (topic, payload) => captured.push({ topic, payload, bootId: decodeBatch(payload).bootId }));
    await new Promise<void>((resolve) => spy.on('connect', () => spy.subscribe(UP_WILDCARD, { qos: 1 }, () => resolve())));
    const noticed: string[] = [];
    let a = board(dir, 'a', edge.url);
    const alerts: Alert[] = [];
    try {
      for (let boot = 0; boot < 3; boot++) {
        const current = a.store.bootId;
        a.uplink.on('alert', (x) => alerts.push(x));
        append(a, boot * 1000, 200);
        a.uplink.start();
        // The old boot's batches arrive again, late, between the new boot's, for 3 s (longer than proofSpanMs).
        const old = captured.filter((c) => c.bootId !== current);
        for (let k = 0; k < 6 && old.length > 0; k++) {
          const late = old[old.length - 1 - (k % old.length)] as (typeof old)[number];
          spy.publish(late.topic, late.payload, { qos: 1 });
          append(a, boot * 1000 + 200 + k * 10, 10);
          await new Promise((r) => setTimeout(r, 500));
        }
        await waitFor(() => a.uplink.drained, `boot ${boot} drained`, 30_000);
        noticed.push(...Object.values(a.uplink.refused));
        await a.uplink.stop();
        a.store.close();
        // The reboot: the same ledger file, a new process (boot id).
        a = board(dir, 'a', edge.url);
      }
      expect(alerts).toEqual([]);
      expect(noticed).toEqual([]);
      const stats = readEdgeStats(edge.dataDir);
      expect(stats.rejected['device-id-in-use']).toBeUndefined();
      expect(stats.duplicateDeviceIds[DEV]?.refusedBoot).toBeUndefined();
    } finally {
      await spy.endAsync(true);
      a.store.close();
      await edge.stop();
    }
  }, 120_000);
});
