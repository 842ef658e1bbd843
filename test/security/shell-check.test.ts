/**
 * The shell check of the security issue, as a person would type it: `medge ca init`, `medge
 * provision` of devices A and B, `medge edge --tls`, then the Mosquitto command-line client:
 * `mosquitto_pub` with A's certificate publishing to B's up/reading topic leaves B with zero stored
 * records and raises `rejected.acl`; `mosquitto_pub` without a client certificate cannot connect.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { upTopic } from '../../device-sdk/sync/topics.js';
import type { EdgeStats } from '../../edge/edge-store.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { readingBatch } from './probe.js';

const run = promisify(execFile);
const MOSQUITTO_PUB = ['/usr/bin/mosquitto_pub', '/usr/local/bin/mosquitto_pub'].find((p) => existsSync(p));
const available = systemAvailable('mosquitto_pub', MOSQUITTO_PUB !== undefined, 'mosquitto-clients');
const SITE = 'shell-site';

async function mosquittoPub(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(MOSQUITTO_PUB as string, args, { timeout: 20_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe.skipIf(!available)('shell check: mosquitto_pub against medge edge --tls (skipped: mosquitto-clients not installed)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medge-shell-'));
  let edge: ReturnType<typeof medgeBackground> | undefined;
  afterAll(async () => {
    if (edge) await edge.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("A's certificate publishing to B's up/reading stores nothing for B and raises rejected.acl; no certificate cannot connect", async () => {
    const ca = join(dir, 'ca');
    const out = join(dir, 'devices');
    const data = join(dir, 'edge');
    for (const args of [
      ['ca', 'init', '--dir', ca, '--site', SITE],
      ['provision', '--ca', ca, '--site', SITE, '--device', 'dev-a', '--out', out],
      ['provision', '--ca', ca, '--site', SITE, '--device', 'dev-b', '--out', out],
    ]) {
      const r = await medge(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    edge = medgeBackground(['edge', '--data', data, '--port', '0', '--tls', ca, '--log-level', 'error']);
    await waitFor(() => edge?.output().includes('Ctrl-C stops') ?? false, 'edge to start', 20_000);
    const port = /at mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(edge.output())?.[1] ?? '';
    expect(port).toMatch(/^\d+$/);
    const stats = async (): Promise<EdgeStats> => {
      const r = await medge(['edge', 'stats', '--data', data, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as EdgeStats;
    };

    // A forged, otherwise valid batch naming B, as B's own uplink would send it.
    const forged = join(dir, 'forged-batch.bin');
    writeFileSync(forged, readingBatch('dev-b', 5));
    const common = ['-h', '127.0.0.1', '-p', port, '--cafile', join(out, 'ca.crt'), '-q', '1', '-t', upTopic(SITE, 'dev-b', 'reading'), '-f', forged];
    await mosquittoPub([...common, '--cert', join(out, 'dev-a.crt'), '--key', join(out, 'dev-a.key'), '-i', 'medge-dev-a']);
    await waitFor(async () => ((await stats()).rejected.acl ?? 0) >= 1, 'rejected.acl to rise', 20_000);
    const after = await stats();
    expect(after.devices['dev-b']).toBeUndefined();
    expect(after.rejected.acl).toBe(1);

    const auth = after.rejected.auth ?? 0;
    const anonymous = await mosquittoPub([...common, '-i', 'nobody']);
    expect(anonymous.code, anonymous.output).not.toBe(0);
    await waitFor(async () => ((await stats()).rejected.auth ?? 0) > auth, 'the refused handshake counted as auth', 20_000);
    expect((await stats()).devices['dev-b']).toBeUndefined();
  });
});
