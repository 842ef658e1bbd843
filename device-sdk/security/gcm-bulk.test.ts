import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeError, open, seal } from './envelope.js';
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
