/**
 * The two layers that keep a new or restored ledger under an existing deviceId from reusing seqs, end to
 * end over the embedded aedes broker with real SQLite ledgers (and their seq reservation files) and a real
 * edge store:
 * 1. the wall-clock floor: a ledger opened at device time t hands out seqs above t * 1000;
 * 2. for a clock too far behind for that (a Raspberry Pi has no RTC), the edge's `Ack.seqFloor`: once the
 *    edge sees a seq conflict it tells the device the highest seq it holds, and the device's later seqs go
 *    above it. Records made before that stay seq conflicts at the edge; none made after it is one.
 * Before these layers every record of the new ledger that reused a seq was a conflict (`seq-reuse.test.ts`).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { Alert } from '../../device-sdk/records.js';
import { SEQ_RESERVATION_FILE } from '../../device-sdk/store/seq-reservation.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { SYNC_SEQS_RAISED, Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { openFloorLedger } from '../helpers/floor-ledger.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('seq-floor');
const DEV = 'dev-1';
/** Real time of the card swap or restore in these tests (device clocks are set relative to it). */
const T = 1_765_000_000_000;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** A reading tagged with the ledger that produced it, so that bodies of two ledgers never coincide. */
function reading(ledger: string, i: number) {
  return { kind: 'reading' as const, tMs: T + i, body: encodeBody('reading', { sensor: 'glucose', type: `glucose-${ledger}`, value: 80 + (i % 50), unit: 'mg/dL', tDevice: T + i }) };
}

const readings = (ledger: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => reading(ledger, from + i));
const sha = (body: Uint8Array) => createHash('sha256').update(body).digest('hex');

/** The ledger of a data directory as the runtime opens it (`openFloorLedger`), for DEV. */
const openLedger = (dir: string, clockMs: number): SqliteOutboxStore => openFloorLedger(dir, DEV, clockMs);

interface Link {
  uplink: Uplink;
  alerts: Alert[];
  /** Resolves on the first ack of a reading batch. */
  firstAck: Promise<void>;
}

function link(store: SqliteOutboxStore, edge: EdgeNode): Link {
  const uplink = new Uplink(store, { url: edge.url, site: 'clinic', batchMaxRecords: 50, window: 4, ackTimeoutMs: 2000, backoff: { initialMs: 50, maxMs: 200 } });
  const alerts: Alert[] = [];
  uplink.on('alert', (a) => alerts.push(a));
  const firstAck = new Promise<void>((resolve) => uplink.on('ack', ({ kind }) => kind === 'reading' && resolve()));
  uplink.start();
  return { uplink, alerts, firstAck };
}

async function drain(l: Link): Promise<void> {
  await waitFor(() => l.uplink.drained, 'uplink drained');
}

/** Runs an uplink until the edge has acknowledged everything the ledger holds, then compacts what it may. */
async function syncAndCompact(store: SqliteOutboxStore, edge: EdgeNode): Promise<Alert[]> {
  const l = link(store, edge);
  await drain(l);
  await l.uplink.stop();
  store.compact(Date.now() + DAY);
  return l.alerts;
}

/** Body hashes of DEV's readings the edge holds in records, and those it kept as conflicts. */
function edgeHolds(edge: EdgeNode): { records: string[]; conflicts: string[] } {
  return {
    records: edge.store.records(DEV, 'reading', 0, 1_000_000).map((r) => sha(r.body)),
    conflicts: edge.store.conflicts(DEV, 'reading').map((r) => sha(r.body)),
  };
}

const hashes = (entries: readonly { body: Uint8Array }[]) => entries.map((e) => sha(e.body));
const raisedAudit = (store: SqliteOutboxStore) => store.readAudit().filter((e) => e.action === SYNC_SEQS_RAISED);

/** Runs `fn` with an edge node (embedded aedes, SQLite store) in a fresh temp dir, and stops it. */
async function withEdge(fn: (dir: string, edge: EdgeNode) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
  await edge.start();
  try {
    await fn(dir, edge);
  } finally {
    await edge.stop();
  }
}

/** The edge holds exactly `expected` (in order) and no conflict; the device had nothing to jump over: no audit entry, no alert. */
function expectConflictFree(dir: string, edge: EdgeNode, expected: readonly { body: Uint8Array }[], device: SqliteOutboxStore, alerts: readonly Alert[]): void {
  const held = edgeHolds(edge);
  expect({ conflicts: held.conflicts.length, stored: held.records.length }).toEqual({ conflicts: 0, stored: expected.length });
  expect(held.records).toEqual(hashes(expected));
  expect(readEdgeStats(join(dir, 'edge')).rejected['seq-conflict'] ?? 0).toBe(0);
  expect({ alerts: alerts.length, audited: raisedAudit(device).length }).toEqual({ alerts: 0, audited: 0 });
}

/** The old card: a ledger opened with its clock at `clockMs` that made 300 readings, all synced and compacted. */
async function oldCard(dir: string, edge: EdgeNode, clockMs: number) {
  const a = openLedger(join(dir, 'card-a'), clockMs);
  const records = readings('a', 300);
  a.append(records);
  await syncAndCompact(a, edge);
  a.close();
  return records;
}

describe('a new SD card under an existing deviceId after 300 synced records', () => {
  it('clock right: none of the new card\'s records is a seq conflict', async () => {
    await withEdge(async (dir, edge) => {
      const aRecords = await oldCard(dir, edge, T - 2 * DAY);

      // A fresh data directory, the same deviceId, the board's clock right (set by NTP or the edge).
      const b = openLedger(join(dir, 'card-b'), T);
      const bRecords = readings('b', 200);
      b.append(bRecords);
      const alerts = await syncAndCompact(b, edge);

      expectConflictFree(dir, edge, [...aRecords, ...bRecords], b, alerts);
      expect(b.stats().reading).toMatchObject({ produced: 200, pending: 0, rows: 0 });
      b.close();
    });
  });

  it('clock 3 days back: only the records made before the first ack are seq conflicts, none made after it', async () => {
    await withEdge(async (dir, edge) => {
      // The old card's ledger was opened 3 days ago, its clock right then.
      const aRecords = await oldCard(dir, edge, T - 3 * DAY);

      // The new card boots offline with its clock 3 days behind: it reads the time the old ledger was
      // opened at, so the wall-clock floor puts both ledgers' seqs at the same place.
      const b = openLedger(join(dir, 'card-b'), T - 3 * DAY);
      const beforeAck = readings('b', 60);
      b.append(beforeAck);
      const l = link(b, edge);
      await l.firstAck;
      const afterAck = readings('b', 140, 60);
      b.append(afterAck);
      await drain(l);
      await l.uplink.stop();

      const held = edgeHolds(edge);
      expect({ conflicts: held.conflicts.length, stored: held.records.length }).toEqual({ conflicts: 60, stored: 440 });
      expect(held.conflicts).toEqual(hashes(beforeAck));
      expect(held.records).toEqual([...hashes(aRecords), ...hashes(afterAck)]);
      // Every record made after the first ack is above the old card's seqs.
      const aTop = (T - 3 * DAY) * 1000 + 300;
      const afterSeqs = edge.store.records(DEV, 'reading', aTop, 1000).map((r) => r.seq);
      expect(afterSeqs).toEqual(Array.from({ length: 140 }, (_, i) => aTop + 1 + i));
      // The jump is audited, and raised once as an info alert.
      expect(raisedAudit(b)).toHaveLength(1);
      expect(raisedAudit(b)[0]?.detail).toContain(`above ${aTop}`);
      expect(l.alerts.map((x) => [x.kind, x.severity])).toEqual([[SYNC_SEQS_RAISED, 1]]);
      expect(b.stats().reading).toMatchObject({ produced: 200, pending: 0 });
      b.close();
    });
  });
});

describe('a ledger restored from an older backup (its seq reservation with it)', () => {
  /**
   * The device makes 100 records, is backed up (ledger and reservation), restarted at `T - 1 h`, syncs them,
   * makes 100 more that reach the edge, and is then restored from the backup and started with its clock
   * reading `restoredClockMs`. Returns the records of each phase.
   */
  async function restoreScenario(dir: string, edge: EdgeNode, restoredClockMs: number) {
    const devDir = join(dir, 'dev');
    const path = join(devDir, 'ledger.sqlite');
    let store = openLedger(devDir, T - 2 * 60 * MINUTE);
    const first = readings('before', 100);
    store.append(first);
    store.close();
    for (const file of ['ledger.sqlite', SEQ_RESERVATION_FILE]) copyFileSync(join(devDir, file), join(dir, `backup-${file}`));
    store = openLedger(devDir, T - 60 * MINUTE);
    await syncAndCompact(store, edge);
    const lost = readings('lost', 100, 100);
    store.append(lost);
    await syncAndCompact(store, edge);
    store.close();

    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    for (const file of ['ledger.sqlite', SEQ_RESERVATION_FILE]) copyFileSync(join(dir, `backup-${file}`), join(devDir, file));
    store = openLedger(devDir, restoredClockMs);
    return { store, first, lost };
  }

  it('clock right: the records made after the restore are no seq conflicts, the resent ones stay replays', async () => {
    await withEdge(async (dir, edge) => {
      const { store, first, lost } = await restoreScenario(dir, edge, T);
      const after = readings('after', 150, 200);
      store.append(after);
      const alerts = await syncAndCompact(store, edge);

      expectConflictFree(dir, edge, [...first, ...lost, ...after], store, alerts);
      // The 100 records of the backup that had been sent before are resent unchanged: replays, stored once.
      expect(readEdgeStats(join(dir, 'edge')).rejected.replay).toBeGreaterThanOrEqual(1);
      store.close();
    });
  });

  it('clock back at the time of the last start before the restore: only the records made before the edge\'s ack are seq conflicts', async () => {
    await withEdge(async (dir, edge) => {
      // The clock reads what it read when the lost records were made (a Pi without RTC restores its clock
      // from a file on the card: the one restored with the backup).
      const { store, first, lost } = await restoreScenario(dir, edge, T - 60 * MINUTE);
      const beforeAck = readings('after', 60, 200);
      store.append(beforeAck);
      const alerts = await syncAndCompact(store, edge);
      const afterAck = readings('after', 90, 260);
      store.append(afterAck);
      alerts.push(...(await syncAndCompact(store, edge)));

      const held = edgeHolds(edge);
      expect({ conflicts: held.conflicts.length, stored: held.records.length }).toEqual({ conflicts: 60, stored: 290 });
      expect(held.conflicts).toEqual(hashes(beforeAck));
      expect(held.records).toEqual(hashes([...first, ...lost, ...afterAck]));
      expect(raisedAudit(store)).toHaveLength(1);
      expect(alerts.map((x) => [x.kind, x.severity])).toEqual([[SYNC_SEQS_RAISED, 1]]);
      store.close();
    });
  });
});
