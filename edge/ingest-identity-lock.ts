/**
 * One process per ingest identity on an edge store. Behind Mosquitto as `mosquitto-config` sets it up, the client id
 * of a certificate client is its CN (`use_username_as_clientid`), and a broker closes the older of two connections
 * with one client id: two ingests started with one certificate would close each other's connection at every
 * reconnect, in a loop, losing uplinks until resent. Workers on one store run on one host (SQLite), so the edge takes
 * an operating-system lock per identity in the data directory before it connects. A second ingest worker with the
 * same identity is refused at start; a single ingest (no worker number) waits a bounded time for the lock and then
 * goes on without it, as before workers existed, so that a hung ingest never blocks its replacement (`edge-node.ts`).
 * The holder writes its pid to `<lockPath>.pid` for the others' messages.
 *
 * The lock is SQLite's own (an exclusive lock on `<dataDir>/<identity>.lock`, held from `acquire` until `release`):
 * the kernel drops it when the process dies, also by SIGKILL, so a crashed worker never leaves a stale lock, and
 * SQLite enforces it between connections of one process as well.
 */
import Database from 'better-sqlite3';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedgeError } from '../device-sdk/errors.js';

/** Another ingest of this store holds the identity (code `ingest-identity-in-use`). */
export class IngestIdentityInUseError extends MedgeError {
  /** The certificate CN, i.e. the MQTT client id Mosquitto gives the ingest. */
  readonly identity: string;
  readonly lockPath: string;
  /** The holder's process id, from the sidecar `<lockPath>.pid` (undefined when unreadable). */
  readonly holderPid: number | undefined;
  constructor(identity: string, lockPath: string, holderPid: number | undefined) {
    const holder = holderPid === undefined ? 'another process' : `process ${holderPid}`;
    super(
      'ingest-identity-in-use',
      `${holder} already runs as ingest ${identity} on this edge store (it holds ${lockPath}): two ingests with one certificate would close each other's broker connection in a loop; give each running worker its own number (--ingest-worker 1..N, certificates from medge ca ingest-workers --ca CADIR --workers N), or stop ${holder} first (if it is stopped or hung, kill it)`,
    );
    this.identity = identity;
    this.lockPath = lockPath;
    this.holderPid = holderPid;
  }
}

/** The lock file of `identity` in `dataDir`. */
export function ingestIdentityLockPath(dataDir: string, identity: string): string {
  return join(dataDir, `${identity}.lock`);
}

/** The process id the holder of `lockPath` wrote to its sidecar `<lockPath>.pid`, if readable. */
export function ingestIdentityLockHolder(lockPath: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${lockPath}.pid`, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export class IngestIdentityLock {
  private db: Database.Database | undefined;
  private readonly path: string;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
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
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw new IngestIdentityInUseError(identity, path, ingestIdentityLockHolder(path));
      throw error;
    }
    // The table above cannot be read by others while the lock is held: the pid goes to a sidecar for their messages.
    try {
      writeFileSync(`${path}.pid`, `${process.pid}\n`, { mode: 0o644 });
    } catch {
      // only the messages of others lose the pid
    }
    return new IngestIdentityLock(db, path);
  }

  /** Releases the lock (idempotent). */
  release(): void {
    if (this.db === undefined) return;
    if (ingestIdentityLockHolder(this.path) === process.pid) {
      try {
        unlinkSync(`${this.path}.pid`);
      } catch {
        // already gone
      }
    }
    this.db.close();
    this.db = undefined;
  }
}
