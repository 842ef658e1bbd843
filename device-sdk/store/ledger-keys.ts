/**
 * Encryption at rest of the device ledger.
 *
 * Every record body is sealed (`security/envelope.ts` layout, so it carries its key id) under the
 * ledger's active data key, with the record's kind and seq as associated data: a ciphertext moved
 * to another row or table fails authentication. Data keys (32 random bytes) live in `data_keys`
 * wrapped by the device key (`security/device-key.ts`); `device.active_data_key` names the key new
 * records use. Suites: `aes-256-gcm` (default; batched by `GcmBulkCipher`) or `sm4-ctr-hmac-sm3`.
 *
 * Rotation (`rotateDataKey`, `medge keys rotate`) may run in another process while the runtime
 * writes: it commits a new active key in one transaction; every append transaction reads the
 * active key id inside its own (IMMEDIATE) transaction, so no record is sealed under a key after
 * its successor became active. `reencryptBatch` then moves older rows to the new key a few hundred
 * at a time, each batch its own transaction and each row updated only if it still holds the
 * ciphertext it read (a row compacted meanwhile is simply gone). Rows with `key_id` NULL are
 * plaintext from before migration 2; the same re-encryption seals them.
 * Retired keys stay wrapped in `data_keys` (a reader may still hold a row read before it moved).
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import type { RecordKind } from '../records.js';
import type { DeviceKey } from '../security/device-key.js';
import { type CipherSuite, DATA_KEY_BYTES, EnvelopeError, open, seal, unwrapKey, wrapKey } from '../security/envelope.js';
import { type BulkItem, GcmBulkCipher } from '../security/gcm-bulk.js';

/** The ledger table of each record kind. */
export const LEDGER_TABLES: Readonly<Record<RecordKind, string>> = Object.freeze({
  alert: 'rec_alert',
  finding: 'rec_finding',
  reading: 'rec_reading',
  quarantine: 'rec_quarantine',
  chunk: 'rec_chunk',
});

const KIND_CODE: Readonly<Record<RecordKind, number>> = Object.freeze({ alert: 1, finding: 2, reading: 3, quarantine: 4, chunk: 5 });

/** Length of a record's associated data. */
export const RECORD_AAD_BYTES = 9;

/** Writes the associated data of a record body (kind code, seq as 64-bit big-endian) to out[at, at + 9). */
export function writeRecordAad(out: Buffer, at: number, kind: RecordKind, seq: number): void {
  out[at] = KIND_CODE[kind];
  out.writeUInt32BE(Math.floor(seq / 0x100000000), at + 1);
  out.writeUInt32BE(seq >>> 0, at + 5);
}

/** Associated data of a record body: its kind and seq (9 bytes). */
export function recordAad(kind: RecordKind, seq: number): Buffer {
  const aad = Buffer.allocUnsafe(RECORD_AAD_BYTES);
  writeRecordAad(aad, 0, kind, seq);
  return aad;
}

/** Options of an encrypted ledger. */
export interface LedgerEncryption {
  suite: CipherSuite;
  deviceKey: DeviceKey;
}

interface DataKey {
  keyId: string;
  suite: CipherSuite;
  key: Uint8Array;
  bulk?: GcmBulkCipher;
}

/** The data keys of one ledger connection, unwrapped on first use and cached. */
export class LedgerKeyring {
  readonly deviceKey: DeviceKey;
  private readonly db: Database.Database;
  private readonly cache = new Map<string, DataKey>();
  private readonly getActive: Database.Statement;
  private readonly getKey: Database.Statement;

  constructor(db: Database.Database, deviceKey: DeviceKey) {
    this.db = db;
    this.deviceKey = deviceKey;
    this.getActive = db.prepare("SELECT value FROM device WHERE key = 'active_data_key'").pluck();
    this.getKey = db.prepare('SELECT suite, kek_id, wrapped FROM data_keys WHERE key_id = ?');
  }

  /** The key id new records are sealed under (read from the database: another process may have rotated). */
  activeKeyId(): string | undefined {
    return this.getActive.get() as string | undefined;
  }

  activeSuite(): CipherSuite | undefined {
    const id = this.activeKeyId();
    return id === undefined ? undefined : this.key(id).suite;
  }

  private key(keyId: string): DataKey {
    const cached = this.cache.get(keyId);
    if (cached) return cached;
    const row = this.getKey.get(keyId) as { suite: CipherSuite; kek_id: string; wrapped: Buffer } | undefined;
    if (!row) throw new StoreError('decrypt', `data key ${keyId} is not in the ledger`);
    let key: Uint8Array;
    try {
      key = unwrapKey((id) => (id === this.deviceKey.keyId ? this.deviceKey.key : undefined), row.wrapped);
    } catch (error) {
      throw new StoreError('decrypt', `data key ${keyId} is wrapped by device key ${row.kek_id}, which the given device key (${this.deviceKey.keyId}) is not: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const entry: DataKey = { keyId, suite: row.suite, key, ...(row.suite === 'aes-256-gcm' ? { bulk: new GcmBulkCipher(keyId, key) } : {}) };
    this.cache.set(keyId, entry);
    return entry;
  }

  /** Creates a data key, wraps it under the device key and makes it active. Call inside a write transaction. */
  createActive(suite: CipherSuite, nowMs: number): string {
    const keyId = `dk-${randomBytes(4).toString('hex')}`;
    const key = randomBytes(DATA_KEY_BYTES);
    const wrapped = wrapKey({ suite, keyId: this.deviceKey.keyId, key: this.deviceKey.key }, key);
    const previous = this.activeKeyId();
    this.db.prepare('INSERT INTO data_keys (key_id, suite, kek_id, wrapped, created_ms) VALUES (?, ?, ?, ?, ?)').run(keyId, suite, this.deviceKey.keyId, wrapped, nowMs);
    if (previous !== undefined) this.db.prepare('UPDATE data_keys SET retired_ms = ? WHERE key_id = ? AND retired_ms IS NULL').run(nowMs, previous);
    this.db.prepare("INSERT INTO device (key, value) VALUES ('active_data_key', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(keyId);
    return keyId;
  }

  /** Seals `plaintexts[i]` under key `keyId` with `aads[i]`. */
  sealMany(keyId: string, items: readonly BulkItem[]): Buffer[] {
    const k = this.key(keyId);
    if (k.bulk) return k.bulk.sealMany(items);
    return items.map((item) => Buffer.from(seal({ suite: k.suite, keyId, key: k.key }, item.plaintext, item.aad)));
  }

  /** Opens envelopes all sealed under `keyId`. Throws `StoreError` (`decrypt`) naming the key. */
  openMany(keyId: string, envelopes: readonly Uint8Array[], aads: readonly Uint8Array[]): Buffer[] {
    const k = this.key(keyId);
    try {
      if (k.bulk) return k.bulk.openMany(envelopes, aads);
      return envelopes.map((env, i) => Buffer.from(open((id) => (id === keyId ? k.key : undefined), env, aads[i])));
    } catch (error) {
      if (error instanceof EnvelopeError) throw new StoreError('decrypt', `a record under data key ${keyId} cannot be opened: ${error.message}`, { cause: error });
      throw error;
    }
  }
}

/** How many rows of each kind are not under the active key (plaintext rows included). */
export function rowsNotUnder(db: Database.Database, keyId: string): Record<RecordKind, number> {
  const out = {} as Record<RecordKind, number>;
  for (const [kind, table] of Object.entries(LEDGER_TABLES) as [RecordKind, string][]) {
    out[kind] = db.prepare(`SELECT COUNT(*) FROM ${table} WHERE key_id IS NULL OR key_id != ?`).pluck().get(keyId) as number;
  }
  return out;
}

/**
 * Re-seals up to `limit` rows of `kind` with seq > `afterSeq` that are not under the active key, in
 * one IMMEDIATE transaction. Returns how many rows it moved and the highest seq it looked at (the
 * cursor of the next call; `done` when nothing was left past it).
 */
export function reencryptBatch(db: Database.Database, keyring: LedgerKeyring, kind: RecordKind, afterSeq: number, limit: number): { moved: number; lastSeq: number; done: boolean } {
  const table = LEDGER_TABLES[kind];
  return db
    .transaction(() => {
      const active = keyring.activeKeyId();
      if (active === undefined) throw new StoreError('reencrypt', 'the ledger has no active data key');
      const rows = db
        .prepare(`SELECT seq, key_id, body FROM ${table} WHERE seq > ? AND (key_id IS NULL OR key_id != ?) ORDER BY seq LIMIT ?`)
        .all(afterSeq, active, limit) as { seq: number; key_id: string | null; body: Buffer }[];
      if (rows.length === 0) return { moved: 0, lastSeq: afterSeq, done: true };
      const plain: Buffer[] = new Array(rows.length);
      const byKey = new Map<string, number[]>();
      rows.forEach((r, i) => {
        if (r.key_id === null) plain[i] = r.body;
        else byKey.set(r.key_id, [...(byKey.get(r.key_id) ?? []), i]);
      });
      for (const [keyId, indexes] of byKey) {
        const opened = keyring.openMany(
          keyId,
          indexes.map((i) => (rows[i] as { body: Buffer }).body),
          indexes.map((i) => recordAad(kind, (rows[i] as { seq: number }).seq)),
        );
        indexes.forEach((i, j) => (plain[i] = opened[j] as Buffer));
      }
      const sealed = keyring.sealMany(
        active,
        rows.map((r, i) => ({ plaintext: plain[i] as Buffer, aad: recordAad(kind, r.seq) })),
      );
      const update = db.prepare(`UPDATE ${table} SET body = ?, key_id = ? WHERE seq = ? AND key_id IS ?`);
      let moved = 0;
      rows.forEach((r, i) => {
        moved += update.run(sealed[i], active, r.seq, r.key_id).changes;
      });
      return { moved, lastSeq: (rows.at(-1) as { seq: number }).seq, done: rows.length < limit };
    })
    .immediate();
}
