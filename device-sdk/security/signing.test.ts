import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ArtifactManifest, ArtifactVerificationError, canonicalJson, generateSigningKeyPair, sha256Hex, signManifest, verifyArtifact } from './signing.js';

const enc = (s: string) => new TextEncoder().encode(s);

function artifact() {
  const files = new Map<string, Uint8Array>([
    ['model.json', enc('{"format":"layers-model"}')],
    ['group1-shard1of1.bin', Uint8Array.of(1, 2, 3, 4, 250)],
  ]);
  const manifest: ArtifactManifest = {
    id: 'ecg-beats',
    version: '1.0.0',
    files: Object.fromEntries([...files].map(([n, b]) => [n, sha256Hex(b)])),
    meta: { labels: ['N', 'S', 'V', 'F', 'Q'] },
  };
  return { files, manifest };
}

function failure(fn: () => unknown): ArtifactVerificationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ArtifactVerificationError) return error;
    throw error;
  }
  throw new Error('expected an ArtifactVerificationError');
}

describe('artifact signatures (Ed25519 over the canonical manifest)', () => {
  const key = generateSigningKeyPair();
  const other = generateSigningKeyPair();

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
  });

  it('refuses an unsigned file whose name is an Object.prototype member (constructor, toString, __proto__)', () => {
    const { files, manifest } = artifact();
    const signed = signManifest(manifest, key.privatePem);
    for (const name of ['constructor', 'toString', '__proto__', 'valueOf']) {
      const tampered = new Map(files).set(name, enc('not signed'));
      const error = failure(() => verifyArtifact(signed, tampered, [key.publicPem]));
      expect([error.reason, error.file]).toEqual(['extra-file', name]);
    }
  });

  it('verifies a signed artifact and names the key', () => {
    const { files, manifest } = artifact();
    const signed = signManifest(manifest, key.privatePem);
    expect(signed.signature?.keyId).toBe(key.keyId);
    expect(verifyArtifact(signed, files, [other.publicPem, key.publicPem])).toBe(key.keyId);
  });

  it('refuses an unsigned manifest', () => {
    const { files, manifest } = artifact();
    expect(failure(() => verifyArtifact(manifest, files, [key.publicPem])).reason).toBe('unsigned');
  });

  it('refuses a signature by a key that is not trusted', () => {
    const { files, manifest } = artifact();
    expect(failure(() => verifyArtifact(signManifest(manifest, other.privatePem), files, [key.publicPem])).reason).toBe('unknown-key');
  });

  it('refuses a manifest changed after signing (version, meta, a file hash)', () => {
    const { files, manifest } = artifact();
    const signed = signManifest(manifest, key.privatePem);
    for (const tampered of [
      { ...signed, version: '1.0.1' },
      { ...signed, meta: { labels: ['N'] } },
      { ...signed, files: { ...signed.files, 'model.json': sha256Hex('x') } },
    ]) {
      expect(failure(() => verifyArtifact(tampered, files, [key.publicPem])).reason).toBe('bad-signature');
    }
  });

  it('refuses changed, missing and extra files', () => {
    const { files, manifest } = artifact();
    const signed = signManifest(manifest, key.privatePem);
    const changed = new Map(files).set('group1-shard1of1.bin', Uint8Array.of(1, 2, 3, 4, 251));
    expect(failure(() => verifyArtifact(signed, changed, [key.publicPem]))).toMatchObject({ reason: 'hash-mismatch', file: 'group1-shard1of1.bin' });
    const missing = new Map(files);
    missing.delete('model.json');
    expect(failure(() => verifyArtifact(signed, missing, [key.publicPem]))).toMatchObject({ reason: 'missing-file', file: 'model.json' });
    const extra = new Map(files).set('backdoor.js', enc('1'));
    expect(failure(() => verifyArtifact(signed, extra, [key.publicPem]))).toMatchObject({ reason: 'extra-file', file: 'backdoor.js' });
  });

  it('refuses to sign with a key that is not Ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(failure(() => signManifest(artifact().manifest, rsa)).reason).toBe('malformed');
  });
});
