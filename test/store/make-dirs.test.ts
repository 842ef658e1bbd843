// `makeDirs` (mkdir -p) creates each missing level and fails fast where Node's recursive mkdirSync
// spins: under /proc the kernel answers ENOENT for a new directory although its parent exists.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirs } from '../../device-sdk/make-dirs.js';
import { medge } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('make-dirs');

describe('makeDirs', () => {
  it('creates the missing levels with the mode asked for and returns the first one it created', () => {
    const dir = tempDir();
    expect(makeDirs(join(dir, 'a', 'b', 'c'), 0o700)).toBe(join(dir, 'a'));
    for (const p of ['a', 'a/b', 'a/b/c']) expect(statSync(join(dir, p)).mode & 0o777, p).toBe(0o700);
    expect(makeDirs(join(dir, 'a', 'b', 'c'))).toBeUndefined();
    expect(makeDirs(join(dir, 'a', 'b', 'd'))).toBe(join(dir, 'a', 'b', 'd'));
    mkdirSync(join(dir, 'e'));
    expect(makeDirs(join(dir, 'e'))).toBeUndefined();
  });

  it('fails on a file in the way as mkdir does (ENOTDIR for a parent, EEXIST for the path) with the path of the file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'f'), '');
    expect(() => makeDirs(join(dir, 'f', 'g'))).toThrow(expect.objectContaining({ code: 'ENOTDIR', syscall: 'mkdir', path: join(dir, 'f') }));
    expect(existsSync(join(dir, 'f', 'g'))).toBe(false);
    expect(() => makeDirs(join(dir, 'f'))).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'mkdir', path: join(dir, 'f') }));
  });

  it.runIf(existsSync('/proc/self'))('fails at once under /proc, where the kernel refuses new directories', async () => {
    expect(() => makeDirs('/proc/medge-test/data')).toThrow(expect.objectContaining({ code: 'ENOENT', path: '/proc/medge-test' }));
    // The runtime used Node's recursive mkdirSync there and never returned.
    const dir = tempDir();
    const config = join(dir, 'proc.json');
    writeFileSync(config, JSON.stringify({ deviceId: 'clinic-01', dataDir: '/proc/medge-test/data' }));
    const run = await medge(['run', '--config', config], { timeoutMs: 30_000 });
    expect(run.signal).toBeNull();
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/dataDir: cannot be created or written \(ENOENT at \/proc\/medge-test\) \(got "\/proc\/medge-test\/data"\)/);
  }, 40_000);
});
