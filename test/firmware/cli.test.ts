import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { readAuditEntries, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
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

  it('says what a negative number given to a flag must be, instead of calling the argument ambiguous', async () => {
    const [seconds, from, speed] = await Promise.all([
      medge(['demo', '--seconds', '-1']),
      medge(['ecg', 'eval', '--data', dir, '--from', '-5']),
      medge(['sim', '--scenario', join(dir, 'none.yaml'), '--speed', '-3']),
    ]);
    for (const r of [seconds, from, speed]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/ambiguous/);
    }
    expect(seconds.stderr).toContain('--seconds must be an integer from 1 to 86400, got "-1"');
    expect(from.stderr).toContain('--from must be a number of seconds >= 0, got "-5"');
    expect(speed.stderr).toContain('--speed must be a number > 0 and <= 10000, got "-3"');
  });

  it('medge sensors detect says once why a port does not open', async () => {
    const r = await medge(['sensors', 'detect', '--port', '/dev/medge-nonexistent']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe('/dev/medge-nonexistent: cannot open: No such file or directory');
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

  it('medge run keeps running offline until it is stopped, and then records its stop', async () => {
    // An edge nobody listens on, with a backoff longer than any other timer of the runtime: the
    // process used to run out of referenced handles during the wait and exit by itself (code 0,
    // no 'stop' in the audit log) about 10 s after the start.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    const file = join(dir, 'offline.json');
    const data = join(dir, 'offline-data');
    writeFileSync(file, JSON.stringify({ deviceId: 'clinic-offline', dataDir: data, edge: { url: `mqtt://127.0.0.1:${port}`, backoff: { initialMs: 8000, maxMs: 8000 } } }));
    const run = medgeBackground(['run', '--config', file]);
    try {
      await waitFor(() => run.output().includes('uplink lost, backing off'), 'the uplink to give up its first attempt', 30_000);
      await new Promise((resolve) => setTimeout(resolve, 16_000));
      expect(run.child.exitCode, run.output().slice(-600)).toBeNull();
    } finally {
      expect(await run.stop()).toBe(0);
    }
    expect(readAuditEntries(join(data, 'ledger.sqlite')).map((e) => e.action)).toContain('stop');
  }, 60_000);

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
      expect(JSON.parse(r.stdout)).toEqual({ devices: { 'cli-dev': { reading: 25 } }, rejected: {}, conflicts: {}, openConflicts: {}, duplicateDeviceIds: {} });
    } finally {
      expect(await edge.stop()).toBe(0);
    }
  });

  it('medge edge exits with a typed error when its port is taken, instead of a stack trace and running on', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const mqtt = await medge(['edge', '--data', join(dir, 'busy-mqtt'), '--port', String(port)], { timeoutMs: 20_000 });
      expect(mqtt.signal).toBeNull();
      expect(mqtt.code).toBe(1);
      expect(mqtt.stderr).toContain(`the MQTT broker cannot listen on 127.0.0.1:${port}: the port is in use by another process`);
      expect(mqtt.stderr).not.toContain('unexpected error');
      const http = await medge(['edge', '--data', join(dir, 'busy-http'), '--port', '0', '--http', String(port)], { timeoutMs: 20_000 });
      expect(http.signal).toBeNull();
      expect(http.code).toBe(1);
      expect(http.stderr).toContain(`the FHIR API cannot listen on 127.0.0.1:${port}`);
    } finally {
      busy.close();
    }
  });

  it('reports what the OS or SQLite refused in one line, without a stack', async () => {
    const notDb = join(dir, 'not-a-store');
    mkdirSync(notDb, { recursive: true });
    writeFileSync(join(notDb, 'edge.sqlite'), 'this is not a database\n'.repeat(100));
    const stats = await medge(['edge', 'stats', '--data', notDb]);
    expect(stats.code).toBe(1);
    expect(stats.stderr).toMatch(/^medge: file is not a database \(SQLITE_NOTADB\): the file is not a medge data store/);
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const ca = await medge(['ca', 'init', '--dir', file, '--site', 'x']);
    expect(ca.code).toBe(1);
    expect(ca.stderr).toBe(`medge: cannot mkdir ${file}: already exists (EEXIST)\n`);
  });

  it('medge edge stats on a directory without a store says how to start one', async () => {
    const r = await medge(['edge', 'stats', '--data', join(dir, 'nothing-here'), '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('medge edge --data');
  });
});
