/**
 * Ingest workers started at once on an edge store that needs migrating (an upgrade restarts them all): each opens
 * the store and runs the migrations. QA re-check: 3 of 4 exited 1 with "table boot_records already exists" (the
 * version was read outside a deferred transaction, so every worker ran migration 7). Real processes, a real file.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runMigrations } from '../../device-sdk/store/migrations.js';
import { EDGE_MIGRATIONS, edgeDatabasePath } from '../../edge/edge-store.js';
import { requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('edge-migration-race');
const DIST_STORE = fileURLToPath(new URL('../../dist/edge/edge-store.js', import.meta.url));
const WORKERS = 6;

/** Opens the edge store in `dir` in a new process (as `medge edge` does) and exits 0, or 1 with the error on stderr. */
function openInProcess(dir: string): Promise<{ code: number | null; stderr: string }> {
  const script = `const { EdgeStore } = await import(${JSON.stringify(DIST_STORE)});
try { new EdgeStore(${JSON.stringify(dir)}).close(); } catch (e) { console.error(e.message); process.exit(1); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('edge store migrations', () => {
  it('processes that open a store needing migration at once all open it, and each migration runs once', async () => {
    requireBuild();
    const dir = tempDir();
    // A store of the build before `boot_records` (version 6) with 200,000 records: migration 7 backfills from them.
    const db = new Database(edgeDatabasePath(dir));
    db.pragma('journal_mode = WAL');
    runMigrations(db, EDGE_MIGRATIONS.slice(0, 6));
    const insert = db.prepare("INSERT INTO records (device_id, kind, seq, site, boot_id, t_ms, received_ms, body) VALUES (?, 'reading', ?, 'clinic-7', ?, ?, ?, ?)");
    const body = Buffer.alloc(40, 7);
    db.transaction(() => {
      for (let i = 1; i <= 200_000; i++) insert.run(`dev-${i % 8}`, i, `boot-${i % 16}`, i, i, body);
    })();
    db.close();

    const results = await Promise.all(Array.from({ length: WORKERS }, () => openInProcess(dir)));

    expect(results.map((r) => r.stderr.trim())).toEqual(Array(WORKERS).fill(''));
    expect(results.map((r) => r.code)).toEqual(Array(WORKERS).fill(0));
    const after = new Database(edgeDatabasePath(dir), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(EDGE_MIGRATIONS.length);
    // Backfilled once, not once per worker.
    expect(after.prepare('SELECT SUM(stored) FROM boot_records').pluck().get()).toBe(200_000);
    after.close();
  });
});
