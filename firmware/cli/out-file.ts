import { accessSync, constants, realpathSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './args.js';

/** A file an `--out` must not replace, and the rest of the refusal after `--out OUT ` when it names it. */
export interface KeptFile {
  file: string;
  refusal: string;
}

export function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** The path with its directory's symbolic links resolved (the file itself need not exist). */
function canonical(path: string): string {
  const dir = dirname(resolve(path));
  return join(statOrUndefined(dir) ? realpathSync(dir) : dir, basename(resolve(path)));
}

/**
 * Checks a command's `--out` before any work, as a usage error (exit 2): its directory exists; it is
 * none of `keep` (by path with links resolved, or by inode when both exist); it is not a directory, a
 * device or another non-regular file; and it is not a read-only file. Replacing another writable file
 * is allowed. `example` is a file name suggested inside a directory given as `--out`.
 */
export function checkOutFile(out: string, options: { keep: readonly KeptFile[]; example: string; usage: string }): void {
  const refuse = (message: string): never => {
    throw new UsageError(`--out ${out}${message}`, options.usage);
  };
  const dirStat = statOrUndefined(dirname(resolve(out)));
  if (!dirStat) refuse(`: the directory ${dirname(out)} does not exist; create it first (mkdir -p) or write elsewhere`);
  else if (!dirStat.isDirectory()) refuse(`: ${dirname(out)} is not a directory`);
  const target = canonical(out);
  const targetStat = statOrUndefined(out);
  for (const kept of options.keep) {
    const keptStat = statOrUndefined(kept.file);
    const same = canonical(kept.file) === target || (keptStat !== undefined && targetStat !== undefined && keptStat.dev === targetStat.dev && keptStat.ino === targetStat.ino);
    if (same) refuse(` ${kept.refusal}`);
  }
  if (!targetStat) return;
  if (targetStat.isDirectory()) refuse(` is a directory: give the path of the file to write, e.g. --out ${join(out, options.example)}`);
  if (!targetStat.isFile()) refuse(' exists and is not a regular file; give a file name');
  // Write permission bits, not only access(2): root may write anywhere, but a 0444 file says "keep".
  let writable = (targetStat.mode & 0o222) !== 0;
  try {
    accessSync(out, constants.W_OK);
  } catch {
    writable = false;
  }
  if (!writable) {
    refuse(
      ` exists and is read-only (mode ${(targetStat.mode & 0o777).toString(8).padStart(4, '0')}); refusing to replace it: choose another file, or make it writable first if it is really to be replaced`,
    );
  }
}
