/**
 * Signed artifacts in the runtime: `loadVerifiedArtifact` and the `ArtifactSlot` that keeps the
 * previous good artifact when a candidate is unsigned, wrongly signed, signed by an unknown key,
 * tampered with, or fails to load; and the runtime's slot, which audits every offer.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { ArtifactSlot, loadVerifiedArtifact, readTrustedKeys } from '../../device-sdk/security/artifact-slot.js';
import { signArtifactDir } from '../../device-sdk/security/artifact-files.js';
import { ArtifactVerificationError, generateSigningKeyPair, MANIFEST_FILE } from '../../device-sdk/security/signing.js';
import { verifyAuditChain } from '../../device-sdk/store/audit.js';
import { readAuditEntries } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ConfigError } from '../../device-sdk/errors.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('artifact');
const maker = generateSigningKeyPair();
const stranger = generateSigningKeyPair();

/** A small "model": model.json naming its weights, and the weights. */
function writeModel(dir: string, version: string, weights: number[]): string {
  mkdirSync(join(dir, 'weights'), { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', weightsManifest: [{ paths: ['weights/group1.bin'] }] }));
  writeFileSync(join(dir, 'weights', 'group1.bin'), Buffer.from(Float32Array.from(weights).buffer));
  signArtifactDir(dir, maker.privatePem, { id: 'ecg-beats', version });
  return dir;
}

/** What a model loader would build: the weights decoded from the verified bytes. */
const load = (a: { files: ReadonlyMap<string, Uint8Array> }) => {
  const bytes = a.files.get('weights/group1.bin');
  if (!bytes) throw new Error('weights missing');
  return Array.from(new Float32Array(Uint8Array.from(bytes).buffer));
};

describe('loadVerifiedArtifact', () => {
  it('returns the verified bytes; the loader never rereads the directory', () => {
    const dir = writeModel(join(tempDir(), 'm'), '1.0.0', [1, 2, 3]);
    const artifact = loadVerifiedArtifact(dir, [maker.publicPem]);
    writeFileSync(join(dir, 'weights', 'group1.bin'), Buffer.from(Float32Array.of(9, 9, 9).buffer)); // swapped after the check
    expect(load(artifact)).toEqual([1, 2, 3]);
    expect(artifact.manifest.version).toBe('1.0.0');
  });

  it.each([
    ['unsigned', (dir: string) => rmSync(join(dir, MANIFEST_FILE))],
    ['hash-mismatch', (dir: string) => writeFileSync(join(dir, 'weights', 'group1.bin'), Buffer.from(Float32Array.of(1, 2, 4).buffer))],
    ['extra-file', (dir: string) => writeFileSync(join(dir, 'weights', 'group2.bin'), 'x')],
    ['missing-file', (dir: string) => rmSync(join(dir, 'model.json'))],
    [
      'bad-signature',
      (dir: string) => {
        const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as { version: string };
        manifest.version = '9.9.9';
        writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
      },
    ],
    ['unknown-key', (dir: string) => signArtifactDir(dir, stranger.privatePem, {})],
  ] as const)('refuses %s with ArtifactVerificationError', (reason, spoil) => {
    const dir = writeModel(join(tempDir(), 'm'), '1.0.0', [1, 2, 3]);
    spoil(dir);
    try {
      loadVerifiedArtifact(dir, [maker.publicPem]);
      expect.unreachable('a spoiled artifact must be refused');
    } catch (error) {
      expect(error).toBeInstanceOf(ArtifactVerificationError);
      expect((error as ArtifactVerificationError).reason).toBe(reason);
    }
  });

  it('refuses everything when no key is trusted', () => {
    const dir = writeModel(join(tempDir(), 'm'), '1.0.0', [1]);
    expect(() => loadVerifiedArtifact(dir, [])).toThrow(/no trusted signing keys/);
  });
});

describe('ArtifactSlot', () => {
  it('keeps the previous good artifact when a tampered, unsigned or failing one is offered, and swaps on a good one', async () => {
    const root = tempDir();
    const disposed: number[][] = [];
    const slot = new ArtifactSlot({ name: 'ecg-beats', trustedKeys: [maker.publicPem], load, dispose: (v) => disposed.push(v) });
    const v1 = writeModel(join(root, 'v1'), '1.0.0', [1, 2, 3]);
    expect(await slot.offer(v1)).toMatchObject({ accepted: true, manifest: { version: '1.0.0' } });

    const tampered = join(root, 'v2-tampered');
    writeModel(tampered, '2.0.0', [4, 5, 6]);
    writeFileSync(join(tampered, 'weights', 'group1.bin'), Buffer.from(Float32Array.of(6, 6, 6).buffer));
    expect(await slot.offer(tampered)).toMatchObject({ accepted: false, reason: 'hash-mismatch', kept: { version: '1.0.0' } });
    expect(slot.current?.value).toEqual([1, 2, 3]);

    const unsigned = join(root, 'v2-unsigned');
    cpSync(writeModel(join(root, 'v2-src'), '2.0.0', [4, 5, 6]), unsigned, { recursive: true });
    rmSync(join(unsigned, MANIFEST_FILE));
    expect(await slot.offer(unsigned)).toMatchObject({ accepted: false, reason: 'unsigned' });

    const failing = new ArtifactSlot({ name: 'x', trustedKeys: [maker.publicPem], load: () => Promise.reject(new Error('bad tensor shape')) });
    expect(await failing.offer(v1)).toMatchObject({ accepted: false, reason: 'load-failed', kept: undefined });
    expect(failing.current).toBeUndefined();

    expect(slot.current?.manifest.version).toBe('1.0.0');
    expect(disposed).toEqual([]);
    expect(await slot.offer(join(root, 'v2-src'))).toMatchObject({ accepted: true, previous: { version: '1.0.0' } });
    expect(slot.current?.value).toEqual([4, 5, 6]);
    expect(disposed).toEqual([[1, 2, 3]]);
  });

  it('readTrustedKeys refuses a missing file and a key that is not Ed25519', () => {
    const dir = tempDir();
    expect(() => readTrustedKeys([join(dir, 'nope.pub')])).toThrow(ConfigError);
    writeFileSync(join(dir, 'rsa.pub'), 'not a pem');
    expect(() => readTrustedKeys([join(dir, 'rsa.pub')])).toThrow(/not an Ed25519 public key/);
  });
});

describe('Runtime.artifactSlot', () => {
  it('uses the config trusted keys, refuses a tampered model keeping the previous one, and audits both offers', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'signing.pub'), maker.publicPem);
    const config = parseRuntimeConfig(
      { deviceId: 'art-1', dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, artifacts: { trustedKeys: ['signing.pub'] }, log: { level: 'silent' } },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    runtime.start();
    try {
      const slot = runtime.artifactSlot('ecg-beats', load);
      const good = writeModel(join(dir, 'models', 'good'), '1.0.0', [1, 2]);
      expect((await slot.offer(good)).accepted).toBe(true);
      const bad = writeModel(join(dir, 'models', 'bad'), '1.1.0', [3, 4]);
      writeFileSync(join(bad, 'model.json'), '{"format":"tampered"}');
      expect(await slot.offer(bad)).toMatchObject({ accepted: false, reason: 'hash-mismatch' });
      expect(slot.current?.value).toEqual([1, 2]);
    } finally {
      await runtime.stop();
    }
    const audit = readAuditEntries(ledgerPath(join(dir, 'device')));
    expect(verifyAuditChain(audit).ok).toBe(true);
    const actions = audit.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['config', 'key-create', 'device-key-create', 'artifact-accept', 'artifact-refuse']));
    expect(audit.find((e) => e.action === 'artifact-refuse')?.detail).toMatch(/hash-mismatch.*keeps ecg-beats@1\.0\.0/);
  });
});
