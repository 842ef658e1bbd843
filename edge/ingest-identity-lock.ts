/**
 * One process per ingest identity on an edge store. Behind Mosquitto as `mosquitto-config` sets it up, the client id
 * of a certificate client is its CN (`use_username_as_clientid`), and a broker closes the older of two connections
 * with one client id: two ingests started with one certificate would close each other's connection at every
 * reconnect, in a loop, losing uplinks until resent. Workers on one store run on one host (SQLite), so the edge takes
 * an operating-system lock per identity in the data directory before it connects, and a second ingest with the
 * same identity is refused at start instead.
 *
 * The lock is SQLite's own (an exclusive lock on `<dataDir>/<identity>.lock`, held from `acquire` until `release`):
 * the kernel drops it when the process dies, also by SIGKILL, so a crashed worker never leaves a stale lock, and
 * SQLite enforces it between connections of one process as well.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { MedgeError } from '../device-sdk/errors.js';

/** Another ingest of this store holds the identity (code `ingest-identity-in-use`). */
export class IngestIdentityInUseError extends MedgeError {
  /** The certificate CN, i.e. the MQTT client id Mosquitto gives the ingest. */
  readonly identity: string;
  readonly lockPath: string;
  constructor(identity: string, lockPath: string) {
    super(
      'ingest-identity-in-use',
      `another ingest of this edge store runs as ${identity} (it holds ${lockPath}): two ingests with one certificate would close each other's broker connection in a loop; give each worker its own certificate (medge ca ingest-workers --ca CADIR --workers N, then --ingest-worker 1..N)`,
    );
    this.identity = identity;
    this.lockPath = lockPath;
  }
}

/** The lock file of `identity` in `dataDir`. */
export function ingestIdentityLockPath(dataDir: string, identity: string): string {
  return join(dataDir, `${identity}.lock`);
}

export class IngestIdentityLock {
  private db: Database.Database | undefined;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Takes the lock of `identity` on the store in `dataDir` (which must exist), or throws `IngestIdentityInUseError` at once. */
  static acquire(dataDir: string, identity: string): IngestIdentityLock {
    const path = ingestIdentityLockPath(dataDir, identity);
    const db = new Database(path, { timeout: 0 });
    try {
      // In exclusive locking mode the lock taken by the first write is kept until the connection closes.
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, started_ms INTEGER NOT NULL)');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare('INSERT OR REPLACE INTO holder (id, pid, started_ms) VALUES (1, ?, ?)').run(process.pid, Date.now());
      db.exec('COMMIT');
    } catch (error) {
      db.close();
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw new IngestIdentityInUseError(identity, path);
      throw error;
    }
    return new IngestIdentityLock(db);
  }

  /** Releases the lock (idempotent). */
  release(): void {
    this.db?.close();
    this.db = undefined;
  }
}
