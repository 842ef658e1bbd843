import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeError, envelopeKeyId, open, seal } from './envelope.js';
import { BULK_MAX_BYTES, GcmBulkCipher } from './gcm-bulk.js';

const key = randomBytes(32);
const keyring = (id: string) => (id === 'dk-test' ? key : undefined);

describe('GcmBulkCipher (AES-256-GCM, batched key stream, GHASH in JavaScript)', () => {
  it('seals envelopes that Node GCM opens, and opens envelopes Node GCM sealed, for any length and AAD', () => {
    const bulk = new GcmBulkCipher('dk-test', key);
    fc.assert(
      fc.property(
        fc.array(fc.record({ plaintext: fc.uint8Array({ maxLength: BULK_MAX_BYTES + 300 }), aad: fc.uint8Array({ maxLength: 40 }) }), { minLength: 1, maxLength: 12 }),
        (items) => {
          const sealed = bulk.sealMany(items);
          sealed.forEach((env, i) => expect(Buffer.from(open(keyring, env, items[i]?.aad))).toEqual(Buffer.from(items[i]?.plaintext ?? [])));
          const native = items.map((it) => seal({ suite: 'aes-256-gcm', keyId: 'dk-test', key }, it.plaintext, it.aad));
          const opened = bulk.openMany(native, items.map((it) => it.aad));
          opened.forEach((p, i) => expect(p).toEqual(Buffer.from(items[i]?.plaintext ?? [])));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never repeats a nonce within a sealer', () => {
    const bulk = new GcmBulkCipher('dk-test', key);
    const envs = bulk.sealMany(Array.from({ length: 2000 }, () => ({ plaintext: Buffer.from('x'), aad: Buffer.alloc(0) })));
    const head = 3 + 'dk-test'.length;
    expect(new Set(envs.map((e) => e.subarray(head, head + 12).toString('hex'))).size).toBe(2000);
  });

  it('refuses a flipped bit anywhere, the wrong AAD and another key, naming the envelope', () => {
    const bulk = new GcmBulkCipher('dk-test', key);
    const [env] = bulk.sealMany([{ plaintext: Buffer.from('glucose 54 mg/dL'), aad: Buffer.from('reading:7') }]) as [Buffer];
    for (let bit = 0; bit < env.length * 8; bit += 7) {
      const bad = Buffer.from(env);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(() => bulk.openMany([bad], [Buffer.from('reading:7')])).toThrow(EnvelopeError);
    }
    expect(() => bulk.openMany([env], [Buffer.from('reading:8')])).toThrow(/envelope 0 .*failed authentication/);
    expect(() => new GcmBulkCipher('dk-other', randomBytes(32)).openMany([env], [Buffer.from('reading:7')])).toThrow(EnvelopeError);
  });
});

describe('GcmBulkCipher with a ledger key id (compact version-2 header)', () => {
  const ledgerKey = randomBytes(32);
  const id = 'dk-0a1b2c3d';
  const ring = (k: string) => (k === id ? ledgerKey : undefined);

  it('writes the 6-byte header, byte-compatible with seal(compactHeader), 8 bytes shorter than version 1', () => {
    const bulk = new GcmBulkCipher(id, ledgerKey);
    const old = new GcmBulkCipher(id, ledgerKey, { compactHeader: false });
    fc.assert(
      fc.property(
        fc.array(fc.record({ plaintext: fc.uint8Array({ maxLength: BULK_MAX_BYTES + 100 }), aad: fc.uint8Array({ maxLength: 20 }) }), { minLength: 1, maxLength: 8 }),
        (items) => {
          const sealed = bulk.sealMany(items);
          const v1 = old.sealMany(items);
          sealed.forEach((env, i) => {
            expect([...env.subarray(0, 6)]).toEqual([2, 1, 0x0a, 0x1b, 0x2c, 0x3d]);
            expect(env.byteLength).toBe((v1[i] as Buffer).byteLength - 8);
            expect(envelopeKeyId(env)).toBe(id);
            expect(Buffer.from(open(ring, env, items[i]?.aad))).toEqual(Buffer.from(items[i]?.plaintext ?? []));
          });
          // Either sealer opens both layouts (ledgers hold version-1 rows written before the compact header).
          const both = [...sealed, ...v1];
          const aads = [...items, ...items].map((it) => it.aad);
          const plains = [...items, ...items].map((it) => Buffer.from(it.plaintext));
          expect(bulk.openMany(both, aads)).toEqual(plains);
          expect(old.openMany(both, aads)).toEqual(plains);
          const native = items.map((it) => seal({ suite: 'aes-256-gcm', keyId: id, key: ledgerKey, compactHeader: true }, it.plaintext, it.aad));
          expect(bulk.openMany(native, items.map((it) => it.aad))).toEqual(items.map((it) => Buffer.from(it.plaintext)));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('authenticates the compact header: another key id or version in it fails', () => {
    const bulk = new GcmBulkCipher(id, ledgerKey);
    const [env] = bulk.sealMany([{ plaintext: Buffer.from('spo2 91 %'), aad: Buffer.from('reading:9') }]) as [Buffer];
    for (let bit = 0; bit < env.length * 8; bit += 3) {
      const bad = Buffer.from(env);
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(() => bulk.openMany([bad], [Buffer.from('reading:9')])).toThrow(EnvelopeError);
      expect(() => open(ring, bad, Buffer.from('reading:9'))).toThrow(EnvelopeError);
    }
  });
});
