export { type AuditBreak, type AuditVerification, auditHash, verifyAuditChain } from './audit.js';
export { DEFAULT_LEDGER_OPTIONS, Ledger, type LedgerOptions } from './ledger.js';
export { MemoryOutboxStore } from './memory-outbox-store.js';
export { assertSchemaVersion, type Migration, runMigrations } from './migrations.js';
export {
  type AppendEntry,
  type AuditEntry,
  DEFAULT_BUDGET_BYTES,
  DEFAULT_RETENTION_MS,
  type EvictionReport,
  type KindStats,
  type OutboxStore,
  type OutboxStoreOptions,
  ROW_OVERHEAD_BYTES,
  type StoredRecord,
} from './outbox-store.js';
export { applyDurablePragmas, DEVICE_MIGRATIONS, type LedgerSummary, openDatabase, readAuditEntries, readLedgerSummary, SqliteOutboxStore, withReadOnlyDatabase } from './sqlite-outbox-store.js';
