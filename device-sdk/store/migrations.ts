import type Database from 'better-sqlite3';
import { StoreError } from '../errors.js';

export interface Migration {
  /** 1, 2, 3, ... in order; stored in `PRAGMA user_version` once applied. */
  version: number;
  name: string;
  up(db: Database.Database): void;
}

/** Throws `StoreError` when the database's schema is newer than the newest migration this build has. */
export function assertSchemaVersion(db: Database.Database, migrations: readonly Migration[]): { current: number; latest: number } {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length === 0 ? 0 : (migrations[migrations.length - 1] as Migration).version;
  if (current > latest) {
    throw new StoreError('migrate', `database schema version ${current} is newer than this build knows (${latest}); upgrade medge`);
  }
  return { current, latest };
}

/**
 * Applies every migration newer than the database's `user_version`, each in its own IMMEDIATE transaction
 * together with the version bump, so a crash leaves the database at a whole version. The version is read
 * again inside each transaction: processes opening one database at once (ingest workers on a shared
 * subscription) wait for the write lock (busy timeout) and find the migration done, instead of running it
 * twice (QA: 3 of 4 workers exited with "table boot_records already exists"). A database newer than this
 * build is refused rather than guessed at.
 */
export function runMigrations(db: Database.Database, migrations: readonly Migration[], waitMs = 0): number {
  const { current, latest } = assertSchemaVersion(db, migrations);
  if (current >= latest) return latest;
  // Another process's migration may take longer than the usual busy timeout (migration 7 of the edge store
  // backfills from every record: 3.7 s at 1M rows here): a database that several processes open at once (the
  // edge store: `MIGRATION_WAIT_MS`) waits for it up to `waitMs`. Others keep their busy timeout (the device
  // ledger at boot: 5 s, then a typed error rather than a silent wait; QA re-check).
  const busyTimeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.max(busyTimeout, waitMs)}`);
  try {
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.transaction(() => {
        // Another connection may have applied it while this one waited for the lock.
        if ((db.pragma('user_version', { simple: true }) as number) >= m.version) return;
        m.up(db);
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    }
  } finally {
    db.pragma(`busy_timeout = ${busyTimeout}`);
  }
  return latest;
}

/** How long a connection to the edge store waits for another one's migration (ms; `runMigrations`' `waitMs`). */
export const MIGRATION_WAIT_MS = 5 * 60_000;
