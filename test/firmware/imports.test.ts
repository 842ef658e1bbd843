// What a command loads: the CLI imports a command's module only when it runs, and the device runtime
// without ECG or heart-sound sources never loads TF.js (its models run in inference workers). This is
// what keeps `medge run` within its idle memory target (bench/idle-rss.js).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ledgerPath } from '../../firmware/runtime.js';
import { BIN, requireBuild, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('imports');
const HOOK = join(ROOT, 'test', 'helpers', 'import-log.mjs');

/** Runs `medge ARGS` with the import log, until `done(stderr)` or exit; returns the module URLs it resolved. */
async function importsOf(args: string[], done?: (stderr: string) => boolean): Promise<string[]> {
  requireBuild();
  const log = join(tempDir(), 'imports.log');
  writeFileSync(log, '');
  const child = spawn(process.execPath, ['--import', HOOK, BIN, ...args], { cwd: ROOT, env: { ...process.env, MEDGE_IMPORT_LOG: log }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  if (done) {
    await waitFor(() => done(stderr) || child.exitCode !== null, 'the command to get going', 30_000);
    child.kill('SIGTERM');
  }
  await exited;
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

const loaded = (urls: string[], part: string) => urls.filter((u) => u.includes(part));

describe('what a command loads', () => {
  it('medge verify --help loads neither TF.js, the runtime nor the other commands', async () => {
    const urls = await importsOf(['verify', '--help']);
    expect(loaded(urls, '/dist/firmware/cli/sign.js')).not.toEqual([]);
    expect(loaded(urls, '@tensorflow')).toEqual([]);
    expect(loaded(urls, '/dist/firmware/runtime.js')).toEqual([]);
    expect(loaded(urls, '/dist/firmware/cli/pcg.js')).toEqual([]);
  });

  it('medge run with glucose and heart-rate sources analyses and stores readings without loading TF.js', async () => {
    const dir = tempDir();
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ deviceId: 'imports-1', dataDir: 'data', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'sim-hr', intervalMs: 100 }, { type: 'sim-glucose', intervalMs: 100 }] }),
    );
    // The glucose forecast (a pure-JS dense network) loads before the runtime starts; then glucose readings reach the ledger.
    const ledger = ledgerPath(join(dir, 'data'));
    const urls = await importsOf(['run', '--config', config], (stderr) => /"msg":"runtime starting"/.test(stderr) && existsSync(ledger) && readLedgerSummary(ledger).kinds.reading.rows >= 20);
    expect(loaded(urls, '/dist/firmware/runtime.js')).not.toEqual([]);
    expect(loaded(urls, '/dist/firmware/glucose-monitor.js')).not.toEqual([]);
    expect(loaded(urls, '@tensorflow')).toEqual([]);
  });
});
