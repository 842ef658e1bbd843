import { appendFileSync, mkdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { medge } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('sign');

describe('medge keys gen-signing, sign, verify', () => {
  it('signs an artifact directory, verifies it, and refuses it after a byte changes', async () => {
    const keys = join(tempDir(), 'keys');
    const gen = await medge(['keys', 'gen-signing', '--out', keys]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(statSync(join(keys, 'signing.key')).mode & 0o777).toBe(0o600);

    const dir = tempDir();
    mkdirSync(join(dir, 'weights'));
    writeFileSync(join(dir, 'model.json'), '{"modelTopology":{}}');
    writeFileSync(join(dir, 'weights', 'group1-shard1of1.bin'), Buffer.from([1, 2, 3]));
    const signed = await medge(['sign', '--key', join(keys, 'signing.key'), '--dir', dir, '--id', 'demo-model', '--version', '0.1.0']);
    expect(signed.code, signed.stderr).toBe(0);

    const ok = await medge(['verify', '--pub', join(keys, 'signing.pub'), '--dir', dir, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, id: 'demo-model', version: '0.1.0', files: 2 });

    appendFileSync(join(dir, 'weights', 'group1-shard1of1.bin'), Buffer.from([0]));
    const bad = await medge(['verify', '--pub', join(keys, 'signing.pub'), '--dir', dir, '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, reason: 'hash-mismatch', file: 'weights/group1-shard1of1.bin' });
  });

  it('refuses a symbolic link added after signing, and names unusable key files', async () => {
    const keys = join(tempDir(), 'keys');
    expect((await medge(['keys', 'gen-signing', '--out', keys])).code).toBe(0);
    const dir = tempDir();
    writeFileSync(join(dir, 'model.json'), '{}');
    expect((await medge(['sign', '--key', join(keys, 'signing.key'), '--dir', dir, '--id', 'm', '--version', '1'])).code).toBe(0);
    symlinkSync('/etc/hostname', join(dir, 'extra.bin'));
    const linked = await medge(['verify', '--pub', join(keys, 'signing.pub'), '--dir', dir, '--json']);
    expect(linked.code).toBe(1);
    expect(JSON.parse(linked.stdout)).toMatchObject({ ok: false, reason: 'extra-file', file: 'extra.bin', message: expect.stringContaining('symbolic link') });

    unlinkSync(join(dir, 'extra.bin'));
    // The artifact directory itself may be a link (a models directory on a data partition): that is not refused.
    const linkedRoot = join(tempDir(), 'linked-model');
    symlinkSync(dir, linkedRoot);
    expect((await medge(['verify', '--pub', join(keys, 'signing.pub'), '--dir', linkedRoot])).code).toBe(0);
    const garbage = join(tempDir(), 'garbage.key');
    writeFileSync(garbage, 'not a key\n');
    for (const [args, message] of [
      [['sign', '--key', join(keys, 'nope.key'), '--dir', dir], /--key .*nope\.key does not exist/],
      [['sign', '--key', keys, '--dir', dir], /--key .* is a directory/],
      [['sign', '--key', garbage, '--dir', dir, '--id', 'm', '--version', '1'], /--key .*garbage\.key is not an Ed25519 private key in PEM/],
      [['sign', '--key', join(keys, 'signing.key'), '--dir', join(dir, 'nope')], /--dir .* is not a directory/],
      [['verify', '--pub', garbage, '--dir', dir], /--pub .*garbage\.key is not an Ed25519 public key in PEM/],
    ] as const) {
      const r = await medge([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('unexpected error');
    }
  });

  it('will not overwrite an existing signing key', async () => {
    const keys = join(tempDir(), 'keys');
    expect((await medge(['keys', 'gen-signing', '--out', keys])).code).toBe(0);
    const again = await medge(['keys', 'gen-signing', '--out', keys]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');
  });
});
