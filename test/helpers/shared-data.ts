import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The project workspace's reference data, read in place: CI clones the repository with shared/ beside
 * it. MEDGE_SHARED_DATA points elsewhere (a checkout in another place).
 */
export const SHARED_DATA = process.env.MEDGE_SHARED_DATA ?? join(import.meta.dirname, '..', '..', '..', 'shared', 'data');
export const MITDB = join(SHARED_DATA, 'mitdb');
export const NSTDB = join(SHARED_DATA, 'nstdb');

/**
 * Whether suites over `dir` run: yes when it exists, and also when MEDGE_REQUIRE_SYSTEM=1 (so that a
 * missing folder fails in CI instead of skipping). Use with `describe.skipIf(!sharedDataRuns(dir))`.
 */
export function sharedDataRuns(dir: string): boolean {
  return existsSync(dir) || process.env.MEDGE_REQUIRE_SYSTEM === '1';
}

/** The suffix for a suite title that says why it was skipped. */
export function missingNote(dir: string): string {
  return existsSync(dir) ? '' : ` (${dir} is missing: put shared/ beside the repository; MEDGE_REQUIRE_SYSTEM=1 makes this a failure)`;
}
