/**
 * Certificate revocation: `medge ca revoke` writes a CRL signed by the site CA; the embedded edge
 * reloads it while running and refuses the revoked device's handshake (counted auth), and a real
 * Mosquitto configured by `medge edge mosquitto-config` (crlfile) refuses it too. Other devices
 * keep connecting.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertifiedKey, initCaDir, normalizeSerial, PkiError, provisionDevice, readEdgeTls, revokeDevice, revokedSerials } from '../../device-sdk/security/pki.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { medge } from '../helpers/cli.js';
import { findMosquitto, freePort, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { end, expectStillDelivers, publish, readingBatch, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-crl';
const dir = mkdtempSync(join(tmpdir(), 'medge-crl-'));
chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
const caDir = join(dir, 'ca');
const devices = join(dir, 'devices');
const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devices, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devices, `${id}.key`), 'utf8') });
let caPem = '';

async function connects(url: string, id: string): Promise<boolean> {
  const outcome = await tryConnect(url, { ...tlsOptions(caPem, identity(id)), clientId: `medge-${id}` });
  if (outcome.connected) await end(outcome.client);
  return outcome.connected;
}

beforeAll(async () => {
  await initCaDir(caDir, { site: SITE });
  for (const deviceId of ['dev-lost', 'dev-ok', 'dev-stolen', 'dev-near']) await provisionDevice(caDir, { deviceId, site: SITE, outDir: devices });
  caPem = readFileSync(join(devices, 'ca.crt'), 'utf8');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('certificate revocation', () => {
  it('the running aedes edge reloads the CRL: the revoked device is refused (auth), the other still connects', async () => {
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0, tls: readEdgeTls(caDir) });
    await edge.start();
    try {
      expect(await connects(edge.url, 'dev-lost')).toBe(true);
      const revoke = await medge(['ca', 'revoke', '--ca', caDir, '--device', 'dev-lost']);
      expect(revoke.code, revoke.stderr).toBe(0);
      expect(revoke.stdout).toMatch(/revoked dev-lost \(serial [0-9a-f]+\).*1 revoked/);
      const auth = edge.store.stats().rejected.auth ?? 0;
      await waitFor(async () => !(await connects(edge.url, 'dev-lost')), 'the edge to refuse the revoked certificate', 15_000, 200);
      expect(edge.store.stats().rejected.auth ?? 0).toBeGreaterThan(auth);
      expect(await connects(edge.url, 'dev-ok')).toBe(true);
      // Revoking again is idempotent; an unknown device is refused.
      expect((await medge(['ca', 'revoke', '--ca', caDir, '--device', 'dev-lost'])).stdout).toMatch(/1 revoked/);
      expect((await medge(['ca', 'revoke', '--ca', caDir, '--device', 'dev-never'])).code).toBe(1);
    } finally {
      await edge.stop();
      edge.store.close();
    }
  });

  it('closes the open connection of a device revoked while connected: its next publish is not stored, counted auth', async () => {
    const edge = new EdgeNode({ dataDir: join(dir, 'edge-open'), port: 0, tls: readEdgeTls(caDir) });
    await edge.start();
    try {
      const stolen = await tryConnect(edge.url, { ...tlsOptions(caPem, identity('dev-stolen')), clientId: 'medge-dev-stolen' });
      const near = await tryConnect(edge.url, { ...tlsOptions(caPem, identity('dev-near')), clientId: 'medge-dev-near' });
      if (!stolen.connected || !near.connected) throw new Error('devices could not connect');
      expect(await publish(stolen.client, upTopic(SITE, 'dev-stolen', 'reading'), readingBatch('dev-stolen', 3, 0))).toBe('acked');
      await waitFor(() => (edge.store.stats().devices['dev-stolen']?.reading ?? 0) === 3, 'the first batch stored');
      const auth = edge.store.stats().rejected.auth ?? 0;
      expect((await medge(['ca', 'revoke', '--ca', caDir, '--device', 'dev-stolen'])).code).toBe(0);
      // Before the fix the connection stayed open and a batch published 3 s later was stored (6 readings).
      await waitFor(() => !stolen.client.connected, 'the edge to close the revoked connection', 5_000, 50);
      expect(edge.store.stats().rejected.auth ?? 0).toBeGreaterThan(auth);
      expect(await connects(edge.url, 'dev-stolen')).toBe(false);
      expect(edge.store.stats().devices['dev-stolen']?.reading).toBe(3);
      // Another device's connection stays up and keeps delivering.
      await expectStillDelivers(edge, near.client, SITE, 'dev-near');
      await end(stolen.client);
      await end(near.client);
    } finally {
      await edge.stop();
      edge.store.close();
    }
  });

  it('reads the serials of a CRL signed by the site CA, as Node spells them, and refuses one signed by another CA', async () => {
    const result = await revokeDevice(caDir, 'dev-lost');
    const crl = readFileSync(result.crlPath, 'utf8');
    const serials = revokedSerials(crl, caPem);
    expect(serials.has(normalizeSerial(new X509Certificate(identity('dev-lost').certPem).serialNumber))).toBe(true);
    expect(serials.has(normalizeSerial(new X509Certificate(identity('dev-ok').certPem).serialNumber))).toBe(false);
    const other = join(dir, 'other-ca');
    await initCaDir(other, { site: SITE });
    expect(() => revokedSerials(crl, readFileSync(join(other, 'ca.crt'), 'utf8'))).toThrow(PkiError);
    expect(() => revokedSerials('not a crl', caPem)).toThrow(PkiError);
  });

  const mosquitto = findMosquitto();
  it.skipIf(!systemAvailable('mosquitto', mosquitto !== undefined, 'mosquitto'))('Mosquitto with the generated crlfile refuses the revoked device and accepts the other', async () => {
    const conf = join(dir, 'broker', 'mosquitto.conf');
    mkdirSync(join(dir, 'broker'), { mode: 0o755 });
    const port = await freePort();
    const written = await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', conf, '--port', String(port), '--host', '127.0.0.1']);
    expect(written.code, written.stderr).toBe(0);
    expect(readFileSync(conf, 'utf8')).toMatch(/^crlfile .*medge-crl\.pem$/m);
    let log = '';
    const proc: ChildProcess = spawn(mosquitto as string, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const s = createConnection({ host: '127.0.0.1', port }, () => {
              s.destroy();
              resolve(true);
            });
            s.once('error', () => resolve(false));
          }),
        'mosquitto to listen',
        10_000,
        50,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${log}`);
      });
      const url = `mqtts://127.0.0.1:${port}`;
      expect(await connects(url, 'dev-ok'), log).toBe(true);
      expect(await connects(url, 'dev-lost')).toBe(false);
    } finally {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
  });
});
