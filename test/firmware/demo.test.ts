import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import type { DemoResult } from '../../firmware/demo.js';
import { medge } from '../helpers/cli.js';

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

  it('--data DIR keeps the ledger and the edge store, and a second run resumes from them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medge-demo-data-'));
    try {
      const first = await medge(['demo', '--seconds', '3', '--json', '--data', dir], { timeoutMs: 60_000 });
      expect(first.code, first.stderr).toBe(0);
      const a = JSON.parse(first.stdout) as Report;
      const second = await medge(['demo', '--seconds', '3', '--json', '--data', dir, '--seed', '2'], { timeoutMs: 60_000 });
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
});
