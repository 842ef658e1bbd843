/**
 * `medge keys rotate` against the ledger of a running `medge demo` (the runtime in its own process,
 * writing through WAL): two rotations, the second switching the cipher to SM4, and every
 * invariant of the foundation issue still holds at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import { rowsNotUnder } from '../../device-sdk/store/ledger-keys.js';
import { readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import type { DemoResult } from '../../firmware/demo.js';
import { BIN, medge, requireBuild, ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

type Report = Omit<DemoResult, 'dataDir'>;

describe('medge keys rotate during medge demo --json', () => {
  it('keeps produced == acked == edgeStored per kind and no duplicates, with every row under the last key', async () => {
    requireBuild();
    const dir = mkdtempSync(join(tmpdir(), 'medge-rotate-demo-'));
    try {
      const device = join(dir, 'device');
      const demo = spawn(process.execPath, [BIN, 'demo', '--seconds', '10', '--json', '--data', dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      demo.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => demo.on('close', (code) => resolve(code)));
      const ledger = join(device, 'ledger.sqlite');
      const chunks = () => {
        try {
          return readLedgerSummary(ledger).kinds.chunk.produced;
        } catch {
          return 0; // not created or not migrated yet
        }
      };
      await waitFor(() => existsSync(ledger) && chunks() > 5, 'the runtime has stored records', 30_000);

      const first = await medge(['keys', 'rotate', '--data', device, '--json'], { timeoutMs: 60_000 });
      expect(first.code, first.stderr).toBe(0);
      const r1 = JSON.parse(first.stdout) as { keyId: string; previous: string; reencrypted: Record<string, number> };
      expect(r1.previous).toMatch(/^dk-/);
      expect(Object.values(r1.reencrypted).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      await waitFor(() => chunks() > 20, 'the runtime stores more records after the rotation', 30_000);
      const second = await medge(['keys', 'rotate', '--data', device, '--suite', 'sm4-ctr-hmac-sm3', '--json'], { timeoutMs: 60_000 });
      expect(second.code, second.stderr).toBe(0);
      const r2 = JSON.parse(second.stdout) as { keyId: string; previous: string; suite: string };
      expect(r2.previous).toBe(r1.keyId);
      expect(r2.suite).toBe('sm4-ctr-hmac-sm3');

      expect(await exited, stderr).toBe(0);
      const report = JSON.parse(stdout.trim()) as Report;
      expect(report.drained).toBe(true);
      for (const kind of RECORD_KINDS) {
        expect(report.edgeStored[kind], kind).toBe(report.produced[kind]);
        expect(report.acked[kind], kind).toBe(report.produced[kind]);
      }
      // Every sensor produced something, so the invariants above are not vacuous.
      for (const kind of ['reading', 'chunk'] as const) expect(report.produced[kind], kind).toBeGreaterThan(5);
      expect(report.produced.finding).toBeGreaterThan(0);
      expect(report.duplicatesAtEdge).toBe(0);
      expect(report.missingAtEdge).toBe(0);

      // The runtime sealed its later records under the SM4 key: nothing is left under the older ones.
      const db = new Database(ledger, { readonly: true });
      const active = db.prepare("SELECT value FROM device WHERE key = 'active_data_key'").pluck().get() as string;
      expect(active).toBe(r2.keyId);
      expect(Object.values(rowsNotUnder(db, active)).reduce((a, b) => a + b, 0)).toBe(0);
      db.close();
      const audit = await medge(['audit', 'verify', '--data', device, '--json']);
      expect(audit.code, audit.stdout).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
