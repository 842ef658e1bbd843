import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CIPHER_SUITES, EnvelopeError, envelopeKeyId, open, seal, unwrapKey, wrapKey } from './envelope.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('known-answer tests of the primitives', () => {
  it('SM4 block cipher, GB/T 32907-2016 example 1', () => {
    const key = hex('01234567 89abcdef fedcba98 76543210');
    const cipher = createCipheriv('sm4-ecb', key, null).setAutoPadding(false);
    expect(Buffer.concat([cipher.update(key), cipher.final()]).toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
  });

  it('SM3 hash, GB/T 32905-2016 examples 1 and 2', () => {
    expect(createHash('sm3').update('abc').digest('hex')).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
    expect(createHash('sm3').update('abcd'.repeat(16)).digest('hex')).toBe('debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732');
  });

  it('AES-256-GCM, test case 16 of the GCM specification (McGrew & Viega)', () => {
    const cipher = createCipheriv('aes-256-gcm', hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'), hex('cafebabefacedbaddecaf888'));
    cipher.setAAD(hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'));
    const ct = Buffer.concat([
      cipher.update(hex('d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39')),
      cipher.final(),
    ]);
    expect(ct.toString('hex')).toBe('522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662');
    expect(cipher.getAuthTag().toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
  });
});

describe.each(CIPHER_SUITES)('envelope %s', (suite) => {
  const key = randomBytes(32);
  const k = { suite, keyId: 'dk-2026-11', key };
  const keyring = (id: string) => (id === 'dk-2026-11' ? key : undefined);
  const aad = Buffer.from('reading:seq:42');

  it('round-trips any plaintext and names its key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (plain) => {
        const env = seal(k, plain, aad);
        expect(envelopeKeyId(env)).toBe('dk-2026-11');
        expect(Buffer.from(open(keyring, env, aad)).equals(Buffer.from(plain))).toBe(true);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('encrypts the same plaintext differently each time', () => {
    const plain = Buffer.from('glucose 54 mg/dL');
    expect(Buffer.from(seal(k, plain)).equals(Buffer.from(seal(k, plain)))).toBe(false);
  });

  it('detects any flipped bit, a wrong AAD and an unknown key', () => {
    const env = seal(k, Buffer.from('heart rate 72'), aad);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: env.byteLength * 8 - 1 }), (bit) => {
        const bad = Buffer.from(env);
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(() => open(keyring, bad, aad)).toThrow(EnvelopeError);
      }),
      { seed: 42, numRuns: 300 },
    );
    expect(() => open(keyring, env, Buffer.from('reading:seq:43'))).toThrow(expect.objectContaining({ reason: 'auth' }));
    expect(() => open(() => undefined, env, aad)).toThrow(expect.objectContaining({ reason: 'unknown-key' }));
  });

  it('throws only EnvelopeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        try {
          open(keyring, bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(EnvelopeError);
        }
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('wraps a data key under a device key', () => {
    const deviceKey = { suite, keyId: 'device-1', key: randomBytes(32) };
    const dataKey = randomBytes(32);
    const wrapped = wrapKey(deviceKey, dataKey);
    expect(Buffer.from(unwrapKey((id) => (id === 'device-1' ? deviceKey.key : undefined), wrapped)).equals(dataKey)).toBe(true);
    // A wrapped key is not a data envelope: different AAD.
    expect(() => open((id) => (id === 'device-1' ? deviceKey.key : undefined), wrapped)).toThrow(EnvelopeError);
  });
});
