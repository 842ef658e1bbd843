import { existsSync, readFileSync, statSync } from 'node:fs';
import { signArtifactDir, verifyArtifactDir } from '../../device-sdk/security/artifact-files.js';
import { ArtifactVerificationError } from '../../device-sdk/security/signing.js';
import { parse, UsageError } from './args.js';

export const SIGN_USAGE = `Usage: medge sign --key FILE --dir DIR [--id ID] [--version V]

Hashes every file of the artifact directory DIR (a model or an update bundle) and writes
DIR/medge-manifest.json with the sha256 of each file and an Ed25519 signature over the manifest.
--key is an Ed25519 private key in PEM (medge keys gen-signing makes one).`;

export const VERIFY_USAGE = `Usage: medge verify --pub FILE [--pub FILE ...] --dir DIR [--json]

Checks DIR/medge-manifest.json: signed by one of the given public keys, signature valid, every file
present with its sha256, no file outside the manifest. Exit 0 when valid, 1 when not.`;

/** Reads a key file named on the command line; a missing or unreadable one is a usage error. */
function readKey(path: string, flag: string, usage: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? (error as Error).message})`;
    throw new UsageError(`${flag} ${path} ${why}`, usage);
  }
}

/** A key that OpenSSL cannot use (not PEM, the wrong kind, damaged): a usage error naming the flag. */
function keyProblem(error: unknown, flag: string, paths: string, expected: string, usage: string): never {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('ERR_OSSL') || code.startsWith('ERR_CRYPTO') || code === 'ERR_INVALID_ARG_VALUE') {
    throw new UsageError(`${flag} ${paths} is not ${expected} (${(error as Error).message})`, usage);
  }
  throw error;
}

export async function signCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { key: { type: 'string' }, dir: { type: 'string' }, id: { type: 'string' }, version: { type: 'string' } }, SIGN_USAGE);
  if (values.help) {
    process.stdout.write(`${SIGN_USAGE}\n`);
    return 0;
  }
  if (!values.key || !values.dir) throw new UsageError('--key FILE and --dir DIR are required', SIGN_USAGE);
  const key = readKey(values.key, '--key', SIGN_USAGE);
  if (!existsSync(values.dir) || !statSync(values.dir).isDirectory()) throw new UsageError(`--dir ${values.dir} is not a directory`, SIGN_USAGE);
  let manifest;
  try {
    manifest = signArtifactDir(values.dir, key, {
      ...(values.id ? { id: values.id } : {}),
      ...(values.version ? { version: values.version } : {}),
    });
  } catch (error) {
    keyProblem(error, '--key', values.key, 'an Ed25519 private key in PEM (medge keys gen-signing makes one)', SIGN_USAGE);
  }
  process.stdout.write(`signed ${manifest.id}@${manifest.version}: ${Object.keys(manifest.files).length} files, key ${manifest.signature?.keyId}\n`);
  return 0;
}

export async function verifyCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { pub: { type: 'string', multiple: true }, dir: { type: 'string' }, json: { type: 'boolean' } }, VERIFY_USAGE);
  if (values.help) {
    process.stdout.write(`${VERIFY_USAGE}\n`);
    return 0;
  }
  const pubs = (values.pub as unknown as string[] | undefined) ?? [];
  if (pubs.length === 0 || !values.dir) throw new UsageError('--pub FILE (one or more) and --dir DIR are required', VERIFY_USAGE);
  const keys = pubs.map((p) => readKey(p, '--pub', VERIFY_USAGE));
  if (!existsSync(values.dir) || !statSync(values.dir).isDirectory()) throw new UsageError(`--dir ${values.dir} is not a directory`, VERIFY_USAGE);
  try {
    const { manifest, keyId } = verifyArtifactDir(values.dir, keys);
    const ok = { ok: true, id: manifest.id, version: manifest.version, keyId, files: Object.keys(manifest.files).length };
    process.stdout.write(values.json ? `${JSON.stringify(ok)}\n` : `valid: ${manifest.id}@${manifest.version}, ${ok.files} files, key ${keyId}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ArtifactVerificationError)) keyProblem(error, '--pub', pubs.join(', '), 'an Ed25519 public key in PEM', VERIFY_USAGE);
    const bad = { ok: false, reason: error.reason, file: error.file, message: error.message };
    process.stdout.write(values.json ? `${JSON.stringify(bad)}\n` : `INVALID (${error.reason}): ${error.message}\n`);
    return 1;
  }
}
