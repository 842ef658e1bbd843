import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: creates `path` and its missing parents, one level at a time, and returns the first
 * directory it created (undefined when `path` already was a directory). Node's own recursive
 * `mkdirSync` spins for ever where the kernel refuses a new directory with ENOENT under a parent that
 * exists (`/proc`, `/sys`): here that is the ENOENT of the level it could not create. A file in the
 * way fails as `mkdir` does: EEXIST when it is `path` itself, ENOTDIR when it is a parent.
 */
export function makeDirs(path: string, mode?: number): string | undefined {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch (error) {
      // ENOTDIR: a file further up, found on the way up.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
    }
    if (isDir === true) break;
    if (isDir === false) {
      // What mkdir(2) gives for a file in the way: EEXIST for the path itself, ENOTDIR for a parent.
      const [code, errno, text] = p === resolve(path) ? ['EEXIST', -17, 'file already exists'] : ['ENOTDIR', -20, 'not a directory'];
      throw Object.assign(new Error(`${code}: ${text}, mkdir '${p}'`), { code, errno, syscall: 'mkdir', path: p });
    }
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, mode === undefined ? undefined : { mode });
    } catch (error) {
      // Another process made it in the meantime.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw error;
    }
  }
  return missing[0];
}
