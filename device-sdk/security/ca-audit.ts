/**
 * The audit log of a CA directory (`audit.sqlite`): provisioning, revocations and the CA's creation,
 * hash-chained like the device ledger's (`store/audit.ts`), so `medge audit verify --ca DIR` reports
 * the first altered, removed or reordered entry. The CA directory lives on the provisioning
 * machine, not on devices: this is where "who was given an identity, when" is kept.
 */
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { AuditEntry } from '../store/outbox-store.js';
import type { Migration } from '../store/migrations.js';
import { appendAuditEntry, openDatabase, readAuditEntries } from '../store/sqlite-outbox-store.js';

export const CA_AUDIT_FILE = 'audit.sqlite';

const CA_AUDIT_MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'CA audit log',
    up: (db: Database.Database) => {
      db.exec(`CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, t_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`);
    },
  },
]);

export function caAuditPath(caDir: string): string {
  return join(caDir, CA_AUDIT_FILE);
}

/** Appends one entry to the CA directory's audit log (created on first use). */
export function appendCaAudit(caDir: string, entry: { action: string; detail: string; actor?: string; tMs?: number }): AuditEntry {
  const db = openDatabase(caAuditPath(caDir), CA_AUDIT_MIGRATIONS, 'CA audit log');
  try {
    return appendAuditEntry(db, { tMs: entry.tMs ?? Date.now(), actor: entry.actor ?? (process.env.USER || 'medge'), action: entry.action, detail: entry.detail });
  } finally {
    db.close();
  }
}

/** Every entry of a CA directory's audit log in id order (read-only). */
export function readCaAudit(caDir: string): AuditEntry[] {
  return readAuditEntries(caAuditPath(caDir));
}
