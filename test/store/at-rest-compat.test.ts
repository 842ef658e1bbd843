/**
 * The ledger's compact envelopes (version-2 header) and the ledgers written before them: rows sealed
 * with the version-1 header (what older builds wrote) still open, re-seal on rotation, and batched
 * multi-row inserts keep every kind's seqs and bodies in order.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../device-sdk/errors.js';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import type { RecordKind } from '../../device-sdk/records.js';
import { createDeviceKey } from '../../device-sdk/security/device-key.js';
import { envelopeKeyId, seal, unwrapKey } from '../../device-sdk/security/envelope.js';
import { rotateLedgerKeys } from '../../device-sdk/store/key-rotation.js';
import { recordAad } from '../../device-sdk/store/ledger-keys.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('at-rest-compat');
const T0 = 1_700_000_000_000;
const reading = (i: number) => ({
  kind: 'reading' as const,
  tMs: T0 + i,
  tag: 'glucose',
  body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: T0 + i }),
});
const finding = (i: number) => ({
  kind: 'finding' as const,
  tMs: T0 + i,
  tag: 'trend',
  body: encodeBody('finding', { kind: 'trend', label: `f${i}`, probability: 0.5, t: T0 + i, modelId: 'm', modelSha256: 'ab', inputQuality: 1 }),
});

function values(store: SqliteOutboxStore): number[] {
  return store.readAfter('reading', 0, 1_000_000).map((r) => (decodeBody('reading', r.body) as { value: number }).value);
}

describe('compact ledger envelopes', () => {
  it('seals new rows with the 6-byte header (34 bytes over the body) and opens rows older builds sealed with the version-1 header, before and after rotation', async () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    const entries = Array.from({ length: 150 }, (_, i) => reading(i));
    store.append(entries);

    const raw = new Database(path);
    const { key_id: keyId, wrapped } = raw.prepare("SELECT d.key_id, d.wrapped FROM data_keys d JOIN device v ON v.key = 'active_data_key' AND v.value = d.key_id").get() as {
      key_id: string;
      wrapped: Buffer;
    };
    const rows = raw.prepare('SELECT seq, key_id, body FROM rec_reading ORDER BY seq').all() as { seq: number; key_id: string; body: Buffer }[];
    for (const r of rows) {
      expect(r.body[0]).toBe(2);
      expect(r.body.byteLength).toBe((entries[r.seq - 1]?.body.byteLength ?? 0) + 34);
      expect(envelopeKeyId(r.body)).toBe(r.key_id);
    }
    // Rewrite every other row as an older build sealed it: version-1 header, same key, same AAD.
    const dataKey = unwrapKey((id) => (id === deviceKey.keyId ? deviceKey.key : undefined), wrapped);
    const update = raw.prepare('UPDATE rec_reading SET body = ? WHERE seq = ?');
    for (const r of rows.filter((x) => x.seq % 2 === 0)) {
      const v1 = seal({ suite: 'aes-256-gcm', keyId, key: dataKey }, entries[r.seq - 1]?.body ?? new Uint8Array(0), recordAad('reading', r.seq));
      expect(v1[0]).toBe(1);
      update.run(v1, r.seq);
    }
    raw.close();
    expect(values(store)).toEqual(entries.map((_, i) => 90 + i));
    store.close();

    const report = await rotateLedgerKeys(path, deviceKey, { batchRows: 40, pauseMs: 1, actor: 'test' });
    expect(report.keyId).not.toBe(keyId);
    const after = new Database(path, { readonly: true });
    const moved = after.prepare('SELECT key_id, body FROM rec_reading').all() as { key_id: string; body: Buffer }[];
    after.close();
    expect(moved).toHaveLength(150);
    for (const r of moved) {
      expect(r.key_id).toBe(report.keyId);
      expect(r.body[0]).toBe(2);
    }
    const reopened = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    expect(values(reopened)).toEqual(entries.map((_, i) => 90 + i));
    reopened.close();
  });

  it('a tampered version-1 row is still refused', () => {
    const dir = tempDir();
    const path = join(dir, 'ledger.sqlite');
    const deviceKey = createDeviceKey(join(dir, 'device.key'));
    const store = new SqliteOutboxStore(path, { deviceId: 'dev-1', encryption: { suite: 'aes-256-gcm', deviceKey } });
    store.append([reading(0)]);
    const raw = new Database(path);
    const { key_id: keyId, wrapped } = raw.prepare('SELECT key_id, wrapped FROM data_keys').get() as { key_id: string; wrapped: Buffer };
    const dataKey = unwrapKey((id) => (id === deviceKey.keyId ? deviceKey.key : undefined), wrapped);
    const v1 = Buffer.from(seal({ suite: 'aes-256-gcm', keyId, key: dataKey }, reading(0).body, recordAad('reading', 2)));
    raw.prepare('UPDATE rec_reading SET body = ? WHERE seq = 1').run(v1);
    raw.close();
    // Sealed for seq 2, stored at seq 1: the AAD does not match.
    expect(() => store.readAfter('reading', 0, 10)).toThrow(StoreError);
    store.close();
  });

  it('an append of interleaved kinds, more than one multi-row insert of each, keeps per-kind seqs, times and bodies in order', () => {
    const dir = tempDir();
    for (const encryption of [undefined, { suite: 'aes-256-gcm' as const, deviceKey: createDeviceKey(join(dir, 'device.key')) }]) {
      const store = new SqliteOutboxStore(join(dir, `${encryption ? 'sealed' : 'clear'}.sqlite`), { deviceId: 'dev-1', ...(encryption ? { encryption } : {}) });
      const entries = Array.from({ length: 301 }, (_, i) => (i % 3 === 0 ? finding(i) : reading(i)));
      const seqs = store.append(entries);
      const expected: Record<RecordKind, number> = { alert: 0, finding: 0, reading: 0, quarantine: 0, chunk: 0 };
      expect(seqs).toEqual(entries.map((e) => ++expected[e.kind]));
      for (const kind of ['reading', 'finding'] as const) {
        const mine = entries.filter((e) => e.kind === kind);
        const stored = store.readAfter(kind, 0, 1000);
        expect(stored.map((r) => r.seq)).toEqual(mine.map((_, i) => i + 1));
        expect(stored.map((r) => r.tMs)).toEqual(mine.map((e) => e.tMs));
        expect(stored.map((r) => Buffer.from(r.body).toString('hex'))).toEqual(mine.map((e) => Buffer.from(e.body).toString('hex')));
      }
      // The next append continues each kind's seqs.
      expect(store.append([reading(999), finding(999)])).toEqual([expected.reading + 1, expected.finding + 1]);
      store.close();
    }
  });
});
