import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { MedgeError } from '../errors.js';

/** The file every signed artifact directory (model, update bundle) carries. */
export const MANIFEST_FILE = 'medge-manifest.json';

export interface ArtifactManifest {
  /** e.g. `ecg-beats`, `firmware-update`. */
  id: string;
  version: string;
  /** Relative path (forward slashes) → sha256 hex of its bytes. Every file of the artifact but the manifest. */
  files: Record<string, string>;
  /** Anything else the artifact type needs (model input spec, labels, ...). Signed with the rest. */
  meta?: Record<string, unknown>;
  signature?: { alg: 'ed25519'; keyId: string; value: string };
}

export type VerifyFailure = 'unsigned' | 'bad-signature' | 'unknown-key' | 'missing-file' | 'extra-file' | 'hash-mismatch' | 'malformed';

/** An artifact is not signed, wrongly signed or tampered with. Callers keep running the previous one. */
export class ArtifactVerificationError extends MedgeError {
  readonly reason: VerifyFailure;
  readonly file: string | undefined;
  constructor(reason: VerifyFailure, message: string, file?: string) {
    super('artifact-verification', message);
    this.reason = reason;
    this.file = file;
  }
}

/** Deterministic JSON: keys sorted at every level, no whitespace. What the signature covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Key id: the first 16 hex digits of the sha256 of the raw 32-byte public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return sha256Hex(der.subarray(der.length - 32)).slice(0, 16);
}

export function generateSigningKeyPair(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

function payload(manifest: ArtifactManifest): Buffer {
  const { signature: _signature, ...signed } = manifest;
  return Buffer.from(canonicalJson(signed));
}

/** Returns the manifest with an Ed25519 signature over its canonical JSON (without the signature field). */
export function signManifest(manifest: ArtifactManifest, privatePem: string): ArtifactManifest {
  const key = createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') throw new ArtifactVerificationError('malformed', `signing key is ${key.asymmetricKeyType}, not ed25519`);
  const value = sign(null, payload(manifest), key).toString('base64');
  return { ...manifest, signature: { alg: 'ed25519', keyId: keyIdOf(createPublicKey(key)), value } };
}

/**
 * Verifies a manifest against trusted public keys and the artifact's files as they are now.
 * `files` maps every relative path found in the artifact (but the manifest) to its bytes.
 * Throws `ArtifactVerificationError` naming the first problem; returns the signing key id.
 */
export function verifyArtifact(manifest: ArtifactManifest, files: ReadonlyMap<string, Uint8Array>, trustedPublicPems: readonly string[]): string {
  const sig = manifest.signature;
  if (!sig) throw new ArtifactVerificationError('unsigned', `${manifest.id}@${manifest.version} is not signed`);
  if (sig.alg !== 'ed25519') throw new ArtifactVerificationError('malformed', `signature algorithm ${JSON.stringify(sig.alg)} is not ed25519`);
  const key = trustedPublicPems.map((pem) => createPublicKey(pem)).find((k) => keyIdOf(k) === sig.keyId);
  if (!key) throw new ArtifactVerificationError('unknown-key', `signed by key ${sig.keyId}, which is not among the ${trustedPublicPems.length} trusted keys`);
  if (!verify(null, payload(manifest), key, Buffer.from(sig.value, 'base64'))) {
    throw new ArtifactVerificationError('bad-signature', `the signature of ${manifest.id}@${manifest.version} does not match its manifest`);
  }
  for (const [name, expected] of Object.entries(manifest.files)) {
    const bytes = files.get(name);
    if (!bytes) throw new ArtifactVerificationError('missing-file', `${name} is listed in the manifest but missing`, name);
    if (sha256Hex(bytes) !== expected) throw new ArtifactVerificationError('hash-mismatch', `${name} does not match its sha256 in the manifest`, name);
  }
  for (const name of files.keys()) {
    if (!Object.hasOwn(manifest.files, name)) throw new ArtifactVerificationError('extra-file', `${name} is in the artifact but not in the signed manifest`, name);
  }
  return sig.keyId;
}
