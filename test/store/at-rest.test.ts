/**
 * Encryption at rest of the device ledger on real SQLite files: what lands on disk, what a moved or
 * altered ciphertext does, keys, migration of a plaintext (schema 1) ledger, and rotation from a
 * second connection while the first keeps appending.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../device-sdk/errors.js';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import { RECORD_KINDS, type RecordKind } from '../../device-sdk/records.js';
import { createDeviceKey, DeviceKeyError, loadDeviceKey, loadOrCreateDeviceKey } from '../../device-sdk/security/device-key.js';
import { CIPHER_SUITES, envelopeKeyId } from '../../device-sdk/security/envelope.js';
import { verifyAuditChain } from '../../device-sdk/store/audit.js';
import { rotateLedgerKeys } from '../../device-sdk/store/key-rotation.js';
import { LedgerKeyring, rowsNotUnder } from '../../device-sdk/store/ledger-keys.js';
import { applyDurablePragmas, DEVICE_MIGRATIONS, readLedgerBodies, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { runMigrations } from '../../device-sdk/store/migrations.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('at-rest');
const T0 = 1_700_000_000_000;
/** A reading whose clear text is easy to spot in raw bytes. */
const MARK = 'PATIENT-GLUCOSE-MARKER';
const reading = (i: number) => ({
  kind: 'reading' as const,
  tMs: T0 + i,
  tag: 'glucose',
  body: encodeBody('reading', { sensor: 'glucose', type: MARK, value: 90 + i, unit: 'mg/dL', tDevice: T0 + i }),
});

function rawFiles(path: string): Buffer {
  return Buffer.concat([path, `${path}-wal`].map((p) => {
    try {
      return readFileSync(p);
    } catch {
      return Buffer.alloc(0);
    }
  }));
}

function values(store: SqliteOutboxStore, kind: RecordKind = 'reading'): number[] {
  return store.readAfter(kind, 0, 1_000_000).map((r) => (decodeBody('reading', r.body) as { value: number }).value);
}

describe.each(CIPHER_SUITES)('ledger encrypted at rest with %s', (suite) => {
  it('stores no clear body on disk (file and WAL), each row naming its key id, and gives the bodies back', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite, deviceKey } });
    store.append(Array.from({ length: 50 }, (_, i) => reading(i)));
    expect(values(store)).toEqual(Array.from({ length: 50 }, (_, i) => 90 + i));
    expect(rawFiles(path).includes(MARK)).toBe(false);
    const raw = new Database(path, { readonly: true });
    const rows = raw.prepare('SELECT key_id, body FROM rec_reading').all() as { key_id: string; body: Buffer }[];
    raw.close();
    expect(rows).toHaveLength(50);
    for (const r of rows) expect(envelopeKeyId(r.body)).toBe(r.key_id);
    store.close();
    // The unencrypted ledger, for contrast, holds the marker in clear.
    const plain = new SqliteOutboxStore(join(dir, 'plain.sqlite'), { deviceId: 'dev-1' });
    plain.append([reading(0)]);
    plain.close();
    expect(rawFiles(join(dir, 'plain.sqlite')).includes(MARK)).toBe(true);
  });

  it('refuses a ciphertext moved to another row, and an altered one, with StoreError decrypt', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const encryption = { suite, deviceKey: createDeviceKey(join(dir, 'device.key')) };
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption });
    store.append([reading(1), reading(2)]);
    const raw = new Database(path);
    const second = raw.prepare('SELECT body FROM rec_reading WHERE seq = 2').pluck().get() as Buffer;
    raw.prepare('UPDATE rec_reading SET body = ? WHERE seq = 1').run(second);
    raw.close();
    expect(() => store.readAfter('reading', 0, 10)).toThrow(StoreError);
    // The row left in place still opens.
    expect(store.readAfter('reading', 1, 10).map((r) => (decodeBody('reading', r.body) as { value: number }).value)).toEqual([92]);
    const raw2 = new Database(path);
    const body = raw2.prepare('SELECT body FROM rec_reading WHERE seq = 2').pluck().get() as Buffer;
    body[body.length - 20] = (body[body.length - 20] as number) ^ 1;
    raw2.prepare('UPDATE rec_reading SET body = ? WHERE seq = 2').run(body);
    raw2.close();
    try {
      store.readAfter('reading', 1, 10);
      expect.unreachable('an altered body must not open');
    } catch (error) {
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).operation).toBe('decrypt');
    }
    store.close();
  });
});

describe('device key and data keys', () => {
  it('creates the device key 0600 once, refuses a group-readable or malformed one, and refuses the ledger without or with another key', () => {
    const dir = tempDir();
    const keyPath = join(dir, 'device.key');
    const first = loadOrCreateDeviceKey(keyPath);
    expect(first.created).toBe(true);
    expect(loadOrCreateDeviceKey(keyPath)).toEqual({ deviceKey: first.deviceKey, created: false });
    const path = join(dir, 'ledger.sqlite');
    new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey: first.deviceKey } }).close();
    expect(() => new SqliteOutboxStore(path, { deviceId: 'dev-1' })).toThrow(/encrypted at rest/);
    const other = createDeviceKey(join(dir, 'other.key'));
    expect(() => new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey: other } })).toThrow(/wrapped by device key/);
    chmodSync(keyPath, 0o640);
    expect(() => loadDeviceKey(keyPath)).toThrow(DeviceKeyError);
    writeFileSync(join(dir, 'bad.key'), 'not a key\n', { mode: 0o600 });
    expect(() => loadDeviceKey(join(dir, 'bad.key'))).toThrow(/not a medge device key/);
  });

  it('migrates a schema-1 plaintext ledger: rows stay readable, re-sealing moves them all, seqs continue', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const v1 = new Database(path);
    applyDurablePragmas(v1);
    runMigrations(v1, DEVICE_MIGRATIONS.slice(0, 1));
    v1.prepare("INSERT INTO device (key, value) VALUES ('device_id', 'dev-1')").run();
    v1.prepare("INSERT INTO boots (boot_id, started_ms) VALUES ('old-boot', 1)").run();
    const insert = v1.prepare('INSERT INTO rec_reading (boot_no, t_ms, tag, bytes, body) VALUES (1, ?, ?, ?, ?)');
    for (let i = 0; i < 600; i++) insert.run(T0 + i, 'glucose', 64, reading(i).body);
    v1.close();
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    expect(values(store)).toHaveLength(600);
    expect(store.append([reading(600)])).toEqual([601]);
    let steps = 0;
    while (!store.reencryptStep(100).done) steps += 1;
    expect(steps).toBeGreaterThanOrEqual(6);
    expect(values(store)).toEqual(Array.from({ length: 601 }, (_, i) => 90 + i));
    store.close();
    const raw = new Database(path);
    raw.pragma('wal_checkpoint(TRUNCATE)');
    expect(raw.prepare('SELECT COUNT(*) FROM rec_reading WHERE key_id IS NULL').pluck().get()).toBe(0);
    // secure_delete zeroes deleted cells, but B-tree rebalancing can leave old bytes in a page's
    // unused area: only VACUUM (medge keys rotate --vacuum) guarantees no clear residue.
    raw.exec('VACUUM');
    raw.close();
    expect(rawFiles(path).includes(MARK)).toBe(false);
  });

  it('rotation from a second connection while the first appends: new records use the new key, old ones move, none lost, audited', async () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    let n = 0;
    const add = (count: number) => {
      for (const kind of RECORD_KINDS) {
        if (kind === 'reading') store.append(Array.from({ length: count }, () => reading(n++)));
      }
    };
    add(500);
    const before = store.keyring?.activeKeyId();
    const appending = setInterval(() => add(20), 1);
    const report = await rotateLedgerKeys(path, deviceKey, { batchRows: 50, pauseMs: 1, actor: 'test' });
    clearInterval(appending);
    add(5);
    expect(report.previous).toBe(before);
    expect(report.reencrypted.reading).toBeGreaterThanOrEqual(500);
    expect(store.keyring?.activeKeyId()).toBe(report.keyId);
    const raw = new Database(path, { readonly: true });
    expect(rowsNotUnder(raw, report.keyId)).toEqual({ alert: 0, finding: 0, reading: 0, quarantine: 0, chunk: 0 });
    raw.close();
    expect(values(store)).toEqual(Array.from({ length: n }, (_, i) => 90 + i));
    expect(store.stats().reading.lastSeq).toBe(n);
    const audit = store.readAudit();
    expect(audit.map((e) => e.action)).toEqual(['key-create', 'key-rotate', 'key-reencrypt']);
    expect(verifyAuditChain(audit).ok).toBe(true);
    // The keyring of a fresh connection unwraps both the retired and the active key.
    const check = new Database(path, { readonly: true });
    const keyring = new LedgerKeyring(check, deviceKey);
    expect(keyring.activeSuite()).toBe('aes-256-gcm');
    check.close();
    store.close();
  });
});

describe('readLedgerBodies', () => {
  it('opens 40,000 sealed rows in linear time (a copy of the index list per row took 20 s)', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    const n = 40_000;
    for (let i = 0; i < n; i += 5000) store.append(Array.from({ length: 5000 }, (_, j) => reading(i + j)));
    store.close();
    const started = performance.now();
    const rows = readLedgerBodies(path, 'reading', { deviceKey });
    const elapsedMs = performance.now() - started;
    expect(rows).toHaveLength(n);
    expect(rows.map((r) => (decodeBody('reading', r.body) as { value: number }).value)).toEqual(Array.from({ length: n }, (_, i) => 90 + i));
    // Measured: 0.27 s now, 20.4 s before (quadratic); the bound leaves room for a slow runner.
    expect(elapsedMs).toBeLessThan(5000);
  }, 60_000);
});
