/**
 * A ledger damaged while the runtime runs (pages of the reading and chunk tables overwritten on disk, as
 * a failing card would): before, every flush failed with only a log line, `status()` threw (the status
 * timer's uncaught exception ends `medge run`), and `stop()` failed, losing the records kept in memory.
 */
import { closeSync, openSync, readdirSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../device-sdk/proto/index.js';
import { readAuditEntries, readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { STORAGE_DAMAGED } from '../../firmware/runtime.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('ledger-damaged-running');
const SOURCES = [{ type: 'sim-ecg' }, { type: 'sim-glucose', intervalMs: 1000, corruptRate: 0 }];

/** Overwrites every leaf page of the reading and chunk tables, then writes from another connection so that the runtime's page cache is dropped. */
function damageWhileOpen(ledger: string): void {
  const db = new Database(ledger);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const pages = db.prepare("SELECT pageno FROM dbstat WHERE name IN ('rec_reading', 'rec_chunk') AND pagetype = 'leaf'").pluck().all() as number[];
  const fd = openSync(ledger, 'r+');
  for (const p of pages) writeSync(fd, randomBytes(4096), 0, 4096, (p - 1) * 4096);
  closeSync(fd);
  db.prepare("UPDATE device SET value = value WHERE key = 'device_id'").run();
  db.close();
}

describe('a ledger damaged while the runtime runs', () => {
  it('monitoring goes on, storage-damaged (3) is raised once, and at stop the records kept in memory go to a fresh ledger', async () => {
    const dir = tempDir();
    const run = startOfflineRuntime(dir, 'qa-running', SOURCES);
    for (let t = 0; t < 10_000; t += 1000) run.clock.advance(1000);
    damageWhileOpen(run.ledger);
    const t0 = run.clock.now();
    for (let t = 0; t < 6000; t += 1000) run.clock.advance(1000);
    const raised = run.alerts.filter((a) => a.kind === STORAGE_DAMAGED);
    expect(raised.map((a) => a.severity)).toEqual([3]);
    expect(() => run.runtime.status()).not.toThrow();
    await run.runtime.stop();

    const device = join(dir, 'device');
    expect(readdirSync(device).filter((n) => n.startsWith('ledger-damaged-'))).toHaveLength(1);
    // The glucose readings made after the damage were kept in memory and are in the fresh ledger.
    const after = readLedgerBodies(run.ledger, 'reading')
      .map((r) => decodeBody('reading', r.body))
      .filter((r) => r.sensor === 'glucose-meter' && r.tDevice >= t0);
    expect(after.length).toBeGreaterThanOrEqual(5);
    const alerts = readLedgerBodies(run.ledger, 'alert').map((r) => decodeBody('alert', r.body));
    expect(alerts.filter((a) => a.kind === STORAGE_DAMAGED).map((a) => a.severity).sort()).toEqual([2, 3]);
    expect(readAuditEntries(run.ledger).filter((e) => e.action === 'ledger-damaged')).toHaveLength(1);

    // The next start opens the fresh ledger as it is.
    const next = startOfflineRuntime(dir, 'qa-running', SOURCES);
    next.clock.advance(2000);
    await next.runtime.stop();
    expect(next.alerts.filter((a) => a.kind === STORAGE_DAMAGED)).toEqual([]);
    expect(readdirSync(device).filter((n) => n.startsWith('ledger-damaged-'))).toHaveLength(1);
  });
});
