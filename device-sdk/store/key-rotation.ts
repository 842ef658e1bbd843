import { existsSync } from 'node:fs';
import { StoreError } from '../errors.js';
import { RECORD_KINDS, type RecordKind } from '../records.js';
import type { DeviceKey } from '../security/device-key.js';
import type { CipherSuite } from '../security/envelope.js';
import { LedgerKeyring, reencryptBatch, rowsNotUnder } from './ledger-keys.js';
import { appendAuditEntry, DEVICE_MIGRATIONS, openDatabase, rotateLedgerKey } from './sqlite-outbox-store.js';

export interface KeyRotationOptions {
  /** Suite of the new data key; default: the suite of the active key. */
  suite?: CipherSuite;
  /** Rows re-sealed per transaction: small, so the runtime's appends never wait long for the lock. */
  batchRows: number;
  /** Pause between batches (ms), leaving the write lock to the runtime. */
  pauseMs: number;
  /** Who rotates, for the audit log. */
  actor: string;
  now: () => number;
  /**
   * VACUUM after re-sealing: rewrites the file so that no byte of a plaintext or retired-key era
   * survives in free space. Holds the write lock for the whole rewrite (a running runtime's writes
   * wait, and retry after its busy timeout).
   */
  vacuum: boolean;
}

export const DEFAULT_KEY_ROTATION_OPTIONS: Readonly<KeyRotationOptions> = Object.freeze({ batchRows: 200, pauseMs: 2, actor: 'cli', now: Date.now, vacuum: false });

export interface KeyRotationReport {
  keyId: string;
  previous: string | undefined;
  suite: CipherSuite;
  /** Rows moved to the new key, per kind (plaintext rows of an unmigrated ledger included). */
  reencrypted: Record<RecordKind, number>;
  /** Rows not under the new key when it finished: 0 unless rows arrived under another rotation meanwhile. */
  remaining: Record<RecordKind, number>;
  transactions: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Rotates the data key of the ledger at `path` from a process other than the runtime (which may be
 * running: SQLite WAL, IMMEDIATE transactions, busy timeout), then re-seals every older row under
 * the new key in small transactions. Both steps are recorded in the ledger's audit log.
 */
export async function rotateLedgerKeys(path: string, deviceKey: DeviceKey, options: Partial<KeyRotationOptions> = {}): Promise<KeyRotationReport> {
  const o = { ...DEFAULT_KEY_ROTATION_OPTIONS, ...options };
  if (!existsSync(path)) throw new StoreError('open', `no ledger at ${path}; start the runtime once (medge run) to create it`);
  const db = openDatabase(path, DEVICE_MIGRATIONS, 'ledger');
  try {
    const keyring = new LedgerKeyring(db, deviceKey);
    const suite = o.suite ?? keyring.activeSuite() ?? 'aes-256-gcm';
    const { keyId, previous } = rotateLedgerKey(db, keyring, suite, o.now(), o.actor, 'medge keys rotate');
    const reencrypted = Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;
    let transactions = 1;
    for (const kind of RECORD_KINDS) {
      let cursor = 0;
      for (;;) {
        const r = reencryptBatch(db, keyring, kind, cursor, o.batchRows);
        transactions += 1;
        reencrypted[kind] += r.moved;
        cursor = r.lastSeq;
        if (r.done) break;
        await sleep(o.pauseMs);
      }
    }
    const remaining = rowsNotUnder(db, keyId);
    const total = RECORD_KINDS.reduce((n, k) => n + reencrypted[k], 0);
    appendAuditEntry(db, { tMs: o.now(), actor: o.actor, action: 'key-reencrypt', detail: `${total} rows re-sealed under ${keyId}${previous ? ` (from ${previous} and older)` : ''}` });
    if (o.vacuum) {
      db.exec('VACUUM');
      appendAuditEntry(db, { tMs: o.now(), actor: o.actor, action: 'vacuum', detail: 'ledger file rewritten after re-sealing' });
    }
    return { keyId, previous, suite, reencrypted, remaining, transactions: transactions + 1 };
  } finally {
    db.close();
  }
}
