/** What an OS error code means, in words, for messages about a path a command was given. */
export const OS_PROBLEMS: Readonly<Record<string, string>> = Object.freeze({
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, a file was expected',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  // Node's own: readFile of a file over 2 GiB (a buffer's limit), which has no syscall or path.
  ERR_FS_FILE_TOO_LARGE: 'the file is 2 GiB or larger, more than medge reads in one piece',
});

const SQLITE_PROBLEMS: Readonly<Record<string, string>> = Object.freeze({
  SQLITE_NOTADB: 'the file is not a medge data store; check the --data path',
  SQLITE_CORRUPT: 'the data store is damaged; restore an edge store from a copy (a device ledger is moved aside and replaced by the next medge run: device-sdk/store/README.md)',
  SQLITE_BUSY: 'another process holds the data store locked; retry, or stop that process',
  SQLITE_READONLY: 'the data store is read-only; check its permissions',
  SQLITE_FULL: 'the disk is full',
  SQLITE_CANTOPEN: 'the data store cannot be opened; check the --data path and its permissions',
});

/**
 * A one-line description of an error the OS or SQLite raised on a path or file a command was given
 * (no stack: the input is wrong, not the program), or undefined for anything else.
 */
export function systemProblem(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException & { dest?: string };
  if (typeof e?.code !== 'string') return undefined;
  if (e.name === 'SqliteError') {
    // Only the errors a wrong or damaged file explains; anything else (a schema bug) keeps its stack.
    const sqlite = SQLITE_PROBLEMS[e.code];
    return sqlite === undefined ? undefined : `${e.message} (${e.code}): ${sqlite}`;
  }
  const what = OS_PROBLEMS[e.code];
  if (what === undefined || typeof e.syscall !== 'string' || typeof e.path !== 'string') return undefined;
  return `cannot ${e.syscall} ${e.path}${e.dest ? ` -> ${e.dest}` : ''}: ${what} (${e.code})`;
}
