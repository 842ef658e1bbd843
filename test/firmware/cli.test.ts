import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'medge-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('medge CLI', () => {
  it('lists the commands for an unknown one and exits 2', async () => {
    const r = await medge(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"; commands are: demo, run, edge');
  });

  it('prints the help of every command for --help and exits 0', async () => {
    const top = await medge(['--help']);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1] as string);
    expect(commands).toEqual(expect.arrayContaining(['ecg', 'audit', 'keys', 'pcg']));
    // ecg, audit and keys used to take --help for an unknown subcommand (exit 2).
    const results = await Promise.all(commands.map(async (c) => ({ c, r: await medge([c, '--help']) })));
    for (const { c, r } of results) {
      expect(r.code, `medge ${c} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout, `medge ${c} --help`).toContain(`medge ${c}`);
      expect(r.stderr, `medge ${c} --help`).toBe('');
    }
  });

  it('rejects an unknown flag with the usage of the command', async () => {
    const r = await medge(['demo', '--second', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--second'");
    expect(r.stderr).toContain('Usage: medge demo');
  });

  it('medge run names the field, the value and the fix of a bad config', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ deviceId: 'clinic-01', dataDir: 'data', edge: { window: 1000 } }));
    const r = await medge(['run', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/edge\.window/);
    expect(r.stderr).toContain('1000');
    expect(r.stderr).toMatch(/Fix: .*64/);
  });

  it('medge edge stats --json reads a running edge', async () => {
    const data = join(dir, 'edge');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const edge = medgeBackground(['edge', '--data', data, '--port', String(port), '--log-level', 'warn']);
    try {
      await waitFor(() => edge.output().includes('Ctrl-C stops'), 'edge to start', 15_000);
      const store = new SqliteOutboxStore(join(dir, 'device', 'ledger.sqlite'), { deviceId: 'cli-dev' });
      store.append(
        Array.from({ length: 25 }, (_, i) => ({
          kind: 'reading' as const,
          tMs: i,
          body: encodeBody('reading', { sensor: 'g', type: 'glucose', value: 100 + i, unit: 'mg/dL', tDevice: i }),
        })),
      );
      const uplink = new Uplink(store, { url: `mqtt://127.0.0.1:${port}`, site: 'clinic' });
      uplink.start();
      await waitFor(() => store.ackedUpTo('reading') === 25, 'readings acked');
      await uplink.stop();
      store.close();
      const r = await medge(['edge', 'stats', '--data', data, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ devices: { 'cli-dev': { reading: 25 } }, rejected: {} });
    } finally {
      expect(await edge.stop()).toBe(0);
    }
  });

  it('medge edge stats on a directory without a store says how to start one', async () => {
    const r = await medge(['edge', 'stats', '--data', join(dir, 'nothing-here'), '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('medge edge --data');
  });
});
