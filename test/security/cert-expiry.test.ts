/**
 * Certificate expiry while connected: the TLS handshake checks validity only once, so the embedded
 * edge must close a connection when its client certificate's notAfter passes (counted auth, like
 * revocation), and keep the other devices' connections.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertifiedKey, initCaDir, issueDeviceCert, readEdgeTls, readSiteCa } from '../../device-sdk/security/pki.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { CERT_EXPIRY_SWEEP_MS } from '../../edge/broker.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { waitFor } from '../helpers/wait.js';
import { end, expectStillDelivers, publish, readingBatch, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-exp';
const DAY_MS = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'medge-exp-'));
const caDir = join(dir, 'ca');
let caPem = '';

beforeAll(async () => {
  await initCaDir(caDir, { site: SITE });
  caPem = readFileSync(join(caDir, 'ca.crt'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A device certificate that expires `inMs` from now (validity is whole days: start it a day minus that before). */
function expiringIn(deviceId: string, inMs: number): Promise<CertifiedKey> {
  return issueDeviceCert(readSiteCa(caDir), { deviceId, site: SITE, validDays: 1, notBefore: new Date(Date.now() + inMs - DAY_MS) });
}

describe('certificate expiry', () => {
  it('closes the open connection of a device whose certificate expires while connected: counted auth, the other device keeps delivering', async () => {
    const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0, tls: readEdgeTls(caDir) });
    await edge.start();
    try {
      const shortLived = await expiringIn('dev-short', 3_000);
      const longLived = await issueDeviceCert(readSiteCa(caDir), { deviceId: 'dev-long', site: SITE });
      const short = await tryConnect(edge.url, { ...tlsOptions(caPem, shortLived), clientId: 'medge-dev-short' });
      const long = await tryConnect(edge.url, { ...tlsOptions(caPem, longLived), clientId: 'medge-dev-long' });
      if (!short.connected || !long.connected) throw new Error('devices could not connect');
      expect(await publish(short.client, upTopic(SITE, 'dev-short', 'reading'), readingBatch('dev-short', 3, 0))).toBe('acked');
      await waitFor(() => (edge.store.stats().devices['dev-short']?.reading ?? 0) === 3, 'the first batch stored');
      const auth = edge.store.stats().rejected.auth ?? 0;
      const notAfterMs = Date.parse(new X509Certificate(shortLived.certPem).validTo);
      // Before the fix the connection stayed open past notAfter and its publishes were stored.
      await waitFor(() => !short.client.connected, 'the edge to close the expired connection', 8_000, 20);
      const lateMs = Date.now() - notAfterMs;
      expect(lateMs).toBeGreaterThanOrEqual(0);
      expect(lateMs).toBeLessThan(CERT_EXPIRY_SWEEP_MS + 500);
      expect(edge.store.stats().rejected.auth ?? 0).toBe(auth + 1);
      expect(edge.store.stats().devices['dev-short']?.reading).toBe(3);
      // Reconnecting with the expired certificate fails the handshake.
      expect((await tryConnect(edge.url, { ...tlsOptions(caPem, shortLived), clientId: 'medge-dev-short' })).connected).toBe(false);
      await expectStillDelivers(edge, long.client, SITE, 'dev-long');
      await end(short.client);
      await end(long.client);
    } finally {
      await edge.stop();
      edge.store.close();
    }
  }, 30_000);
});
