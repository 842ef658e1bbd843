import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { join, relative, resolve, sep } from 'node:path';
import { type ArtifactManifest, ArtifactVerificationError, MANIFEST_FILE, sha256Hex, signManifest, verifyArtifact } from './signing.js';

/**
 * Every file under `dir` except the manifest, by relative path with forward slashes. An artifact holds
 * regular files and directories only: a symbolic link (which could point anywhere, and be re-pointed
 * after signing) or any other kind of entry is refused as `extra-file`.
 */
export function readArtifactFiles(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      const rel = relative(dir, full).split(sep).join('/');
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        if (rel !== MANIFEST_FILE) out.set(rel, readFileSync(full));
      } else {
        throw new ArtifactVerificationError('extra-file', `${full} is ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; an artifact holds regular files only`, rel);
      }
    }
  };
  walk(dir);
  return out;
}

export function readManifest(dir: string): ArtifactManifest {
  let manifest: ArtifactManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as ArtifactManifest;
  } catch (error) {
    throw new ArtifactVerificationError('unsigned', `${join(dir, MANIFEST_FILE)} is missing or not JSON: ${(error as Error).message}`);
  }
  if (typeof manifest?.id !== 'string' || typeof manifest.version !== 'string' || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new ArtifactVerificationError('malformed', `${join(dir, MANIFEST_FILE)} lacks id, version or files`);
  }
  return manifest;
}

/** Hashes every file of `dir`, signs, and writes `medge-manifest.json` (keeping `meta` of an existing manifest). */
export function signArtifactDir(dir: string, privatePem: string, identity: { id?: string; version?: string }): ArtifactManifest {
  let previous: ArtifactManifest | undefined;
  try {
    previous = readManifest(dir);
  } catch {
    previous = undefined;
  }
  const id = identity.id ?? previous?.id;
  const version = identity.version ?? previous?.version;
  if (!id || !version) throw new ArtifactVerificationError('malformed', `no id/version for ${dir}: pass --id and --version, or keep them in an existing ${MANIFEST_FILE}`);
  const files = Object.fromEntries([...readArtifactFiles(dir)].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, bytes]) => [name, sha256Hex(bytes)]));
  const manifest = signManifest({ id, version, files, ...(previous?.meta ? { meta: previous.meta } : {}) }, privatePem);
  writeFileSync(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * The `--sign-key` of a training script, checked before the run: the resolved path of a readable
 * Ed25519 private key, so that a wrong path or a public key fails now rather than after the training.
 */
export function signingKeyFile(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const file = resolve(path);
  const key = createPrivateKey(readFileSync(file, 'utf8'));
  if (key.asymmetricKeyType !== 'ed25519') throw new ArtifactVerificationError('malformed', `--sign-key ${file} is a ${key.asymmetricKeyType ?? 'unknown'} key, not an Ed25519 private key (medge keys gen-signing makes one)`);
  return file;
}

/**
 * The end of a training script: signs the artifact it wrote with the private key in `keyFile` (the
 * scripts' `--sign-key`), or, without one, returns why the runtime will refuse it and how to sign it.
 * Returns the line to print.
 */
export function signTrainedArtifact(dir: string, keyFile: string | undefined, identity: { id: string; version: string }): string {
  if (keyFile === undefined) {
    return `${dir} is not signed, and the runtime loads only signed models: pass --sign-key FILE, or run medge sign --key FILE --dir ${dir} --id ${identity.id} --version ${identity.version}`;
  }
  const signed = signArtifactDir(dir, readFileSync(keyFile, 'utf8'), identity);
  return `signed ${signed.id}@${signed.version}: ${Object.keys(signed.files).length} files, key ${signed.signature?.keyId}`;
}

/** Verifies an artifact directory as it is on disk. Throws `ArtifactVerificationError`. */
export function verifyArtifactDir(dir: string, trustedPublicPems: readonly string[]): { manifest: ArtifactManifest; keyId: string } {
  const manifest = readManifest(dir);
  return { manifest, keyId: verifyArtifact(manifest, readArtifactFiles(dir), trustedPublicPems) };
}
