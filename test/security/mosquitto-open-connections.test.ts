/**
 * Mosquitto 2.0 and certificates that stop being valid while a device is connected. Measured here (2.0.11):
 * Mosquitto checks a client certificate only in the TLS handshake, so the connection of a device whose
 * certificate expires, or is revoked (CRL rewritten by `medge edge mosquitto-config`, then SIGHUP), stays
 * open and its publishes reach the ingest. SIGHUP does make Mosquitto reread the CRL for new handshakes, as
 * long as its config named a crlfile when it started (`medge ca init` now writes an empty CRL, so it does).
 * What medge adds: the edge's ingest refuses (counted `auth`, no ack) the batches of a device whose
 * certificate, as the CA directory last issued it, is revoked or expired (`edge/issued-certificates.ts`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CertifiedKey, initCaDir, issueDeviceCert, provisionDevice, readEdgeTls, readSiteCa, revokeDevice } from '../../device-sdk/security/pki.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { findMosquitto, freePort, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { end, publish, readingBatch, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-mq';
const DAY_MS = 86_400_000;
const mosquitto = findMosquitto();
const dir = mkdtempSync(join(tmpdir(), 'medge-mq-open-'));
chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe.skipIf(!systemAvailable('mosquitto', mosquitto !== undefined, 'mosquitto'))('Mosquitto 2.0: certificates revoked or expired while connected', () => {
  it('keeps the connections open, but the ingest refuses their batches (auth) and SIGHUP refuses new handshakes; other devices deliver', async () => {
    const caDir = join(dir, 'ca');
    const devices = join(dir, 'devices');
    await initCaDir(caDir, { site: SITE });
    for (const deviceId of ['dev-rev', 'dev-ok']) await provisionDevice(caDir, { deviceId, site: SITE, outDir: devices });
    const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devices, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devices, `${id}.key`), 'utf8') });
    // A certificate that expires 4 s from now, recorded as issued (what `medge provision` records).
    const short = await issueDeviceCert(readSiteCa(caDir), { deviceId: 'dev-exp', site: SITE, validDays: 1, notBefore: new Date(Date.now() + 4_000 - DAY_MS) });
    writeFileSync(join(caDir, 'issued', 'dev-exp.crt'), short.certPem);
    const notAfterMs = Date.parse(new X509Certificate(short.certPem).validTo);

    const port = await freePort();
    const conf = join(dir, 'broker', 'mosquitto.conf');
    writeMosquittoConfig({ tlsDir: caDir, out: conf, port, host: '127.0.0.1' });
    chmodSync(join(dir, 'broker'), 0o755);
    expect(readFileSync(conf, 'utf8')).toMatch(/^crlfile .*medge-crl\.pem$/m); // from the start: SIGHUP can reload it
    let log = '';
    const proc: ChildProcess = spawn(mosquitto as string, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    const url = `mqtts://127.0.0.1:${port}`;
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), brokerUrl: url, tls: readEdgeTls(caDir) });
    try {
      await waitFor(() => listening(port), 'mosquitto to listen', 10_000, 50).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${log}`);
      });
      await edge.start();
      const stored = (id: string) => edge.store.stats().devices[id]?.reading ?? 0;
      const clients = {
        exp: await tryConnect(url, tlsOptions(readSiteCa(caDir).certPem, short)),
        rev: await tryConnect(url, tlsOptions(readSiteCa(caDir).certPem, identity('dev-rev'))),
        ok: await tryConnect(url, tlsOptions(readSiteCa(caDir).certPem, identity('dev-ok'))),
      };
      if (!clients.exp.connected || !clients.rev.connected || !clients.ok.connected) throw new Error(`devices could not connect\n${log}`);
      const ids = { exp: 'dev-exp', rev: 'dev-rev', ok: 'dev-ok' } as const;
      for (const [key, id] of Object.entries(ids) as [keyof typeof ids, string][]) {
        const c = clients[key];
        if (c.connected) expect(await publish(c.client, upTopic(SITE, id, 'reading'), readingBatch(id, 3, 0))).toBe('acked');
      }
      await waitFor(() => Object.values(ids).every((id) => stored(id) === 3), 'the first batches stored');

      // Revoke dev-rev, give Mosquitto the new CRL (config rewritten, SIGHUP), and let dev-exp's certificate expire.
      await revokeDevice(caDir, 'dev-rev');
      writeMosquittoConfig({ tlsDir: caDir, out: conf, port, host: '127.0.0.1' });
      proc.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, Math.max(1_500, notAfterMs - Date.now() + 1_000)));
      const auth = edge.store.stats().rejected.auth ?? 0;

      // Measured: Mosquitto keeps both connections open and accepts their publishes.
      expect(clients.exp.client.connected).toBe(true);
      expect(clients.rev.client.connected).toBe(true);
      expect(await publish(clients.exp.client, upTopic(SITE, 'dev-exp', 'reading'), readingBatch('dev-exp', 3, 3))).toBe('acked');
      expect(await publish(clients.rev.client, upTopic(SITE, 'dev-rev', 'reading'), readingBatch('dev-rev', 3, 3))).toBe('acked');
      // The ingest refuses them: counted auth, nothing stored. (Before: both batches were stored, 6 readings each.)
      await waitFor(() => (edge.store.stats().rejected.auth ?? 0) >= auth + 2, 'the ingest to refuse both batches', 10_000);
      // dev-ok's batch, sent after, is stored: the refused ones had their turn before it.
      expect(await publish(clients.ok.client, upTopic(SITE, 'dev-ok', 'reading'), readingBatch('dev-ok', 3, 3))).toBe('acked');
      await waitFor(() => stored('dev-ok') === 6, 'dev-ok still delivers');
      expect(stored('dev-exp')).toBe(3);
      expect(stored('dev-rev')).toBe(3);

      // New handshakes: the revoked certificate is refused after SIGHUP (the CRL was reread), the expired one too.
      expect((await tryConnect(url, tlsOptions(readSiteCa(caDir).certPem, identity('dev-rev')))).connected, log).toBe(false);
      expect((await tryConnect(url, tlsOptions(readSiteCa(caDir).certPem, short))).connected).toBe(false);
      for (const c of Object.values(clients)) if (c.connected) await end(c.client);
    } finally {
      await edge.stop();
      edge.store.close();
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
