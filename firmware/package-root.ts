import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The medge package directory, found from this module whether it runs from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'medge') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the medge package directory');
    dir = parent;
  }
}

/** The `medge` executable script. */
export function medgeBin(): string {
  return join(packageRoot(), 'bin', 'medge.js');
}

/** The medge package version (the runtime's firmware version on a board image). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
