import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ledgerPath } from '../../firmware/runtime.js';
import { medge } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('audit');

/** A device data dir whose ledger holds five audit entries. */
function ledgerWithAudit(): string {
  const dir = tempDir();
  const store = new SqliteOutboxStore(ledgerPath(dir), { deviceId: 'audit-1' });
  for (let i = 1; i <= 5; i++) store.appendAudit({ tMs: 1_700_000_000_000 + i, actor: i % 2 ? 'clinician' : 'technician', action: `action-${i}`, detail: `detail ${i}` });
  store.close();
  return dir;
}

function tamper(dir: string, sql: string): void {
  const db = new Database(ledgerPath(dir));
  db.exec(sql);
  db.close();
}

async function verify(dir: string) {
  const r = await medge(['audit', 'verify', '--data', dir, '--json']);
  return { code: r.code, result: JSON.parse(r.stdout) as { ok: boolean; entries: number; firstBreak?: { id: number; reason: string } } };
}

describe('medge audit verify', () => {
  it('accepts an intact chain', async () => {
    const { code, result } = await verify(ledgerWithAudit());
    expect(code).toBe(0);
    expect(result).toMatchObject({ ok: true, entries: 5 });
  });

  it('finds an altered entry', async () => {
    const dir = ledgerWithAudit();
    tamper(dir, "UPDATE audit SET detail = 'nothing happened' WHERE id = 3");
    const { code, result } = await verify(dir);
    expect(code).toBe(1);
    expect(result.firstBreak).toMatchObject({ id: 3, reason: 'altered' });
  });

  it('finds a removed entry', async () => {
    const dir = ledgerWithAudit();
    tamper(dir, 'DELETE FROM audit WHERE id = 2');
    const { result } = await verify(dir);
    expect(result.firstBreak).toMatchObject({ id: 3, reason: 'unlinked' });
  });

  it('finds reordered entries', async () => {
    const dir = ledgerWithAudit();
    // Swap the contents of entries 2 and 4 (each row stays self-consistent, the order changes).
    tamper(
      dir,
      `UPDATE audit SET id = -2 WHERE id = 2; UPDATE audit SET id = 2 WHERE id = 4; UPDATE audit SET id = 4 WHERE id = -2;`,
    );
    const { result } = await verify(dir);
    expect(result.ok).toBe(false);
    expect(result.firstBreak?.id).toBe(2);
  });

  it('reads a ledger while another connection holds it open, without writing to it', async () => {
    const dir = ledgerWithAudit();
    const store = new SqliteOutboxStore(ledgerPath(dir), { deviceId: 'audit-1' }); // the runtime, say
    const rows = () => {
      const db = new Database(ledgerPath(dir), { readonly: true });
      const n = db.prepare('SELECT (SELECT COUNT(*) FROM boots) + (SELECT COUNT(*) FROM audit)').pluck().get();
      db.close();
      return n;
    };
    try {
      const before = rows();
      const { result } = await verify(dir);
      expect(result).toMatchObject({ ok: true, entries: 5 });
      expect(rows()).toBe(before);
    } finally {
      store.close();
    }
  });
});
