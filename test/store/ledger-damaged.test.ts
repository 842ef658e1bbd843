/**
 * A damaged device ledger (QA L1: random bytes, a corrupt header, a truncated file, one bad page in the
 * middle) with the real runtime on real SQLite files: before, `new Runtime` threw and `medge run` exited
 * 1, so nothing was monitored. Now the file is moved aside, a fresh ledger starts with seqs above the old
 * ones, the unacknowledged records still readable are restored, and `storage-damaged` (2) is raised.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { DAMAGED_LEDGER_DIR_PREFIX, DAMAGE_REPORT_FILE, type LedgerDamage } from '../../device-sdk/store/ledger-recovery.js';
import { SEQ_RESERVATION_FILE } from '../../device-sdk/store/seq-reservation.js';
import { readAuditEntries, readLedgerBodies, readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { STORAGE_DAMAGED } from '../../firmware/runtime.js';
import { startOfflineRuntime } from '../helpers/offline-runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('ledger-damaged');
const DEV = 'qa-store';
const SOURCES = [{ type: 'sim-ecg' }, { type: 'sim-glucose', intervalMs: 1000, corruptRate: 0 }];

/** Runs the runtime offline for `ms` of virtual time and stops it (the ledger is checkpointed on close). */
async function produce(dir: string, ms: number) {
  const run = startOfflineRuntime(dir, DEV, SOURCES);
  for (let t = 0; t < ms; t += 1000) run.clock.advance(1000);
  await run.runtime.stop();
  return run;
}

function overwrite(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
}

/** The highest seq a ledger handed out per kind (0: none; its last seq is then only the wall-clock floor of its start). */
function lastSeqs(ledger: string): Record<RecordKind, number> {
  const s = readLedgerSummary(ledger);
  return Object.fromEntries(RECORD_KINDS.map((k) => [k, s.kinds[k].produced > 0 ? s.kinds[k].lastSeq : 0])) as Record<RecordKind, number>;
}

/** Damages the ledger of a runtime that ran 20 s, starts the runtime again and checks it monitors on a fresh ledger. */
async function restartOnDamaged(damage: (ledger: string) => void) {
  const dir = tempDir();
  const first = await produce(dir, 20_000);
  const before = lastSeqs(first.ledger);
  const readings = readLedgerBodies(first.ledger, 'reading');
  expect(before.chunk).toBeGreaterThan(10);
  damage(first.ledger);

  const run = startOfflineRuntime(dir, DEV, SOURCES);
  for (let t = 0; t < 5000; t += 1000) run.clock.advance(1000);
  const raised = run.alerts.filter((a) => a.kind === STORAGE_DAMAGED);
  expect(raised).toHaveLength(1);
  expect(raised[0]?.severity).toBe(2);
  // Still monitoring: readings and ECG chunks keep being stored.
  const during = readLedgerSummary(run.ledger);
  expect(during.kinds.chunk.rows).toBeGreaterThanOrEqual(3);
  await run.runtime.stop();

  const device = join(dir, 'device');
  const moved = readdirSync(device).filter((n) => n.startsWith(DAMAGED_LEDGER_DIR_PREFIX));
  expect(moved).toHaveLength(1);
  const folder = join(device, moved[0] as string);
  expect(readdirSync(folder)).toContain('ledger.sqlite');
  const report = JSON.parse(readFileSync(join(folder, DAMAGE_REPORT_FILE), 'utf8')) as LedgerDamage;
  expect(raised[0]?.message).toContain(folder);
  const after = readLedgerSummary(run.ledger);
  // No seq reuse: every seq of the fresh ledger's new records is above every seq the old one handed out.
  for (const kind of RECORD_KINDS) expect(report.seqFloor[kind]).toBeGreaterThanOrEqual(before[kind]);
  for (const kind of ['chunk', 'reading', 'alert'] as const) {
    const seqs = readLedgerBodies(run.ledger, kind).map((r) => r.seq).filter((s) => s > report.seqFloor[kind]);
    expect(seqs.length).toBeGreaterThan(0);
    expect(after.kinds[kind].lastSeq).toBeGreaterThan(before[kind]);
  }
  const audit = readAuditEntries(run.ledger).filter((e) => e.action === 'ledger-damaged');
  expect(audit).toHaveLength(1);
  expect(audit[0]?.detail).toContain(folder);
  return { dir, folder, report, before, readings, ledger: run.ledger };
}

describe('a damaged ledger: the runtime keeps monitoring on a fresh ledger', () => {
  it('random bytes instead of a ledger (QA store.sh corrupt)', async () => {
    const { report } = await restartOnDamaged((ledger) => writeFileSync(ledger, randomBytes(20_000)));
    expect(report.code).toBe('SQLITE_NOTADB');
    // Nothing of the file is readable: the floor comes from the seq reservation alone.
    expect(Object.values(report.restored).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('a corrupt header (first 100 bytes overwritten)', async () => {
    const { report } = await restartOnDamaged((ledger) => overwrite(ledger, 0, randomBytes(100)));
    expect(report.code).toBe('SQLITE_NOTADB');
  });

  it('a file truncated to half its size (QA store.sh truncated)', async () => {
    const { report, before } = await restartOnDamaged((ledger) => truncateSync(ledger, Math.floor(statSync(ledger).size / 2)));
    expect(report.code).toMatch(/^SQLITE_CORRUPT|quick-check/);
    for (const kind of RECORD_KINDS) expect(report.seqFloor[kind]).toBeGreaterThanOrEqual(before[kind]);
  });

  it('one page in the middle overwritten (QA corrupt-mid.sh): readable unacknowledged records are restored with their seqs', async () => {
    const { report, readings, ledger } = await restartOnDamaged((path) => {
      const pages = Math.floor(statSync(path).size / 4096);
      overwrite(path, Math.floor(pages / 2) * 4096, randomBytes(4096));
    });
    expect(report.code).toMatch(/^SQLITE_CORRUPT|quick-check/);
    // Offline: nothing was acknowledged, so every reading still readable in the damaged file is restored unchanged.
    const restored = new Map(readLedgerBodies(ledger, 'reading').filter((r) => r.seq <= report.seqFloor.reading).map((r) => [r.seq, r.body.toString('hex')]));
    expect(restored.size).toBeGreaterThan(0);
    expect(restored.size).toBe(report.restored.reading ?? 0);
    for (const r of readings) if (restored.has(r.seq)) expect(restored.get(r.seq)).toBe(r.body.toString('hex'));
  });

  it('the seq reservation costs one write per 4096 records of a kind and survives the ledger', async () => {
    const dir = tempDir();
    const first = await produce(dir, 10_000);
    const reserved = JSON.parse(readFileSync(join(dir, 'device', SEQ_RESERVATION_FILE), 'utf8')) as { reserved: Record<RecordKind, number> };
    const seqs = lastSeqs(first.ledger);
    for (const kind of RECORD_KINDS) expect(reserved.reserved[kind]).toBeGreaterThanOrEqual(seqs[kind]);
    // One reservation so far: the first chunk's seq (above the wall-clock floor of the start) plus a block.
    expect(reserved.reserved.chunk).toBe((readLedgerBodies(first.ledger, 'chunk')[0]?.seq ?? 0) + 4096);
    // A healthy ledger opens as it was: no folder, no alert, seqs continue without a gap.
    const run = startOfflineRuntime(dir, DEV, SOURCES);
    run.clock.advance(3000);
    await run.runtime.stop();
    expect(run.alerts.filter((a) => a.kind === STORAGE_DAMAGED)).toEqual([]);
    expect(readdirSync(join(dir, 'device')).some((n) => n.startsWith(DAMAGED_LEDGER_DIR_PREFIX))).toBe(false);
    expect(readLedgerBodies(run.ledger, 'chunk').map((r) => r.seq)).toContain(seqs.chunk + 1);
  });

  it('a ledger that is sound but another device’s is still refused (not moved aside)', async () => {
    const dir = tempDir();
    await produce(dir, 2000);
    expect(() => startOfflineRuntime(dir, 'other-device', SOURCES)).toThrow(/belongs to device qa-store/);
    expect(existsSync(join(dir, 'device', 'ledger.sqlite'))).toBe(true);
    expect(readdirSync(join(dir, 'device')).some((n) => n.startsWith(DAMAGED_LEDGER_DIR_PREFIX))).toBe(false);
    const db = new Database(join(dir, 'device', 'ledger.sqlite'), { readonly: true });
    expect(db.pragma('quick_check', { simple: true })).toBe('ok');
    db.close();
  });
});
