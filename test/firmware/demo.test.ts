import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import type { DemoResult } from '../../firmware/demo.js';
import { medge, ROOT } from '../helpers/cli.js';

type Report = Omit<DemoResult, 'dataDir'>;

describe('medge demo --chaos --json', () => {
  it('delivers every record exactly once through broker restarts and runtime SIGKILLs', async () => {
    const run = await medge(['demo', '--seconds', '12', '--chaos', '--json', '--seed', '7'], { timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0] as string) as Report;
    expect(report.brokerRestarts).toBeGreaterThanOrEqual(2);
    expect(report.runtimeKills).toBeGreaterThanOrEqual(1);
    expect(report.drained).toBe(true);
    for (const kind of RECORD_KINDS) {
      expect(report.edgeStored[kind], kind).toBe(report.produced[kind]);
      expect(report.acked[kind], kind).toBe(report.produced[kind]);
    }
    // Every sensor produced something, so the invariants above are not vacuous.
    for (const kind of ['reading', 'chunk'] as const) expect(report.produced[kind], kind).toBeGreaterThan(5);
    expect(report.produced.finding).toBeGreaterThan(0);
    expect(report.duplicatesAtEdge, JSON.stringify(report)).toBe(0);
    expect(report.missingAtEdge, JSON.stringify(report)).toBe(0);
    expect(report.quarantined).toBe(report.produced.quarantine);
  });

  it('--data DIR keeps the ledger and the edge store, and a second run resumes from them (given as a relative path)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-demo-data-'));
    try {
      const first = await medge(['demo', '--seconds', '3', '--json', '--data', dir], { timeoutMs: 60_000 });
      expect(first.code, first.stderr).toBe(0);
      const a = JSON.parse(first.stdout) as Report;
      // Relative to the working directory (the CLI runs in ROOT): resolved once, not again against the runtime's config file.
      const second = await medge(['demo', '--seconds', '3', '--json', '--data', relative(ROOT, dir), '--seed', '2'], { timeoutMs: 60_000 });
      expect(second.code, second.stderr).toBe(0);
      const b = JSON.parse(second.stdout) as Report;
      for (const kind of RECORD_KINDS) {
        expect(b.produced[kind], kind).toBeGreaterThanOrEqual(a.produced[kind]);
        expect(b.edgeStored[kind], kind).toBe(b.produced[kind]);
      }
      expect(b.produced.chunk).toBeGreaterThan(a.produced.chunk);
      expect(b.duplicatesAtEdge).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops with the runtime log when the device runtime cannot start, leaving nothing running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-demo-fail-'));
    try {
      writeFileSync(join(dir, 'device'), ''); // a file where the runtime's data directory should be
      const run = await medge(['demo', '--seconds', '3', '--json', '--in-process', '--no-ui', '--data', dir], { timeoutMs: 30_000 });
      expect(run.signal).toBeNull(); // it exited on its own, not killed at the timeout
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/the device runtime exited before it was ready \(code 2/);
      expect(run.stderr).toMatch(/dataDir: is a file, not a directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
