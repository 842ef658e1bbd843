/**
 * A ledger larger than `FULL_CHECK_AT_START_MAX_BYTES` is not read page by page before monitoring starts
 * (on an SD card a 2 GiB ledger would hold the bedside back for about a minute at every boot): its full
 * `quick_check` runs in a worker thread once the runtime runs, and a bad page found there is handled like
 * damage found by a write: `storage-damaged` (3), and at stop the file is moved aside into a fresh ledger.
 */
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { checkLedgerFile, DAMAGED_LEDGER_DIR_PREFIX, FULL_CHECK_AT_START_MAX_BYTES } from '../../device-sdk/store/ledger-recovery.js';
import { readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { STORAGE_DAMAGED } from '../../firmware/runtime.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('ledger-damaged-large');
const DEV = 'qa-store-large';
const SOURCES = [{ type: 'sim-ecg' }, { type: 'sim-glucose', intervalMs: 1000, corruptRate: 0 }];

describe('a damaged ledger too large to check before monitoring starts', () => {
  it('starts monitoring at once; the background check finds the bad page: storage-damaged (3), moved aside at stop', async () => {
    const dir = tempDir();
    const first = startOfflineRuntime(dir, DEV, SOURCES);
    for (let t = 0; t < 10_000; t += 1000) first.clock.advance(1000);
    await first.runtime.stop();
    const before = readLedgerSummary(first.ledger);
    // Grow the file past the limit with pages the runtime never reads, then break one of them.
    const db = new Database(first.ledger);
    db.exec('CREATE TABLE padding (b BLOB)');
    const insert = db.prepare('INSERT INTO padding (b) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 80; i++) insert.run(randomBytes(1024 * 1024));
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const bytes = statSync(first.ledger).size;
    expect(bytes).toBeGreaterThan(FULL_CHECK_AT_START_MAX_BYTES);
    const fd = openSync(first.ledger, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, Math.floor(bytes / 4096 / 2) * 4096);
    closeSync(fd);
    // The checks at start do not read that page; the full check does.
    expect(checkLedgerFile(first.ledger)).toBeUndefined();
    expect(checkLedgerFile(first.ledger, Number.POSITIVE_INFINITY)?.code).toBe('quick-check');

    const run = startOfflineRuntime(dir, DEV, SOURCES);
    expect(run.alerts.filter((a) => a.kind === STORAGE_DAMAGED)).toEqual([]);
    for (let t = 0; t < 3000; t += 1000) run.clock.advance(1000);
    await waitFor(() => run.alerts.some((a) => a.kind === STORAGE_DAMAGED), 'the background check reports the bad page', 30_000);
    const raised = run.alerts.filter((a) => a.kind === STORAGE_DAMAGED);
    expect(raised.map((a) => a.severity)).toEqual([3]);
    expect(raised[0]?.message).toContain('quick-check');
    for (let t = 0; t < 3000; t += 1000) run.clock.advance(1000);
    await run.runtime.stop();
    const moved = readdirSync(join(dir, 'device')).filter((n) => n.startsWith(DAMAGED_LEDGER_DIR_PREFIX));
    expect(moved).toHaveLength(1);
    // The fresh ledger continues above the old seqs.
    const after = readLedgerSummary(run.ledger);
    expect(after.kinds.reading.lastSeq).toBeGreaterThan(before.kinds.reading.lastSeq);
  }, 60_000);
});
