export { type AuditBreak, type AuditVerification, auditHash, verifyAuditChain } from './audit.js';
export { DEFAULT_KEY_ROTATION_OPTIONS, type KeyRotationOptions, type KeyRotationReport, rotateLedgerKeys } from './key-rotation.js';
export { DEFAULT_LEDGER_OPTIONS, Ledger, type LedgerOptions } from './ledger.js';
export { LEDGER_TABLES, type LedgerEncryption, LedgerKeyring, recordAad, reencryptBatch, rowsNotUnder } from './ledger-keys.js';
export { checkLedgerFile, corruptCode, DAMAGE_REPORT_FILE, DAMAGED_LEDGER_DIR_PREFIX, type LedgerDamage, type LedgerDamageCause, openLedgerRecovering } from './ledger-recovery.js';
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
  type RecordFilter,
  ROW_OVERHEAD_BYTES,
  type StoredRecord,
} from './outbox-store.js';
export { DEFAULT_SEQ_RESERVATION_OPTIONS, SEQ_RESERVATION_FILE, SeqReservation, type SeqReservationOptions, seqReservationPath } from './seq-reservation.js';
export { appendAuditEntry, applyDurablePragmas, DEVICE_MIGRATIONS, type LedgerSummary, openDatabase, readAuditEntries, readLedgerSummary, type LedgerRow, rotateLedgerKey, SqliteOutboxStore, type SqliteOutboxStoreOptions, withReadOnlyDatabase } from './sqlite-outbox-store.js';
