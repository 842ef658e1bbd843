/**
 * Mosquitto 2.0 and certificates that stop being valid while a device is connected. Measured here (2.0.11):
 * Mosquitto checks a client certificate only in the TLS handshake, so the connection of a device whose
 * certificate expires, or is revoked (CRL rewritten by `medge edge mosquitto-config`, then SIGHUP), stays
 * open and its publishes reach the ingest. SIGHUP does make Mosquitto reread the CRL for new handshakes, as
 * long as its config named a crlfile when it started (`medge ca init` now writes an empty CRL, so it does).
 * What medge adds: the edge's ingest refuses (counted `auth`, no ack) the batches of a device whose
 * certificate, as the CA directory last issued it, is revoked or expired (`edge/issued-certificates.ts`),
 * and tells that device why (`Ack.refused`), so that a real uplink raises `sync-batches-refused`.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CertifiedKey, initCaDir, provisionDevice, readEdgeTls, readSiteCa, revokeDevice } from '../../device-sdk/security/pki.js';
import type { Alert } from '../../device-sdk/records.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { SYNC_BATCHES_REFUSED, Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { findMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { startConfiguredMosquitto, threeConnectedDevices } from './configured-mosquitto.js';
import { end, publish, readingBatch, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-mq';
const mosquitto = findMosquitto();
const dir = mkdtempSync(join(tmpdir(), 'medge-mq-open-'));
chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!systemAvailable('mosquitto', mosquitto !== undefined, 'mosquitto'))('Mosquitto 2.0: certificates revoked or expired while connected', () => {
  it('keeps the connections open, but the ingest refuses their batches (auth) and SIGHUP refuses new handshakes; other devices deliver', async () => {
    // dev-exp's certificate expires 4 s from now.
    const { caDir, caPem, identity, short, notAfterMs, broker, edge, clients, stored, close } = await threeConnectedDevices(dir, SITE, { caName: 'ca', expiresInMs: 4_000 });
    expect(readFileSync(broker.conf, 'utf8')).toMatch(/^crlfile .*medge-crl\.pem$/m); // from the start: SIGHUP can reload it
    const { url } = broker;
    try {
      // Revoke dev-rev, give Mosquitto the new CRL (config rewritten, SIGHUP), and let dev-exp's certificate expire.
      await revokeDevice(caDir, 'dev-rev');
      broker.reload();
      await new Promise((r) => setTimeout(r, Math.max(1_500, notAfterMs - Date.now() + 1_000)));
      const auth = edge.store.stats().rejected.auth ?? 0;

      // Measured: Mosquitto keeps both connections open and accepts their publishes.
      expect(clients.exp.connected).toBe(true);
      expect(clients.rev.connected).toBe(true);
      expect(await publish(clients.exp, upTopic(SITE, 'dev-exp', 'reading'), readingBatch('dev-exp', 3, 3))).toBe('acked');
      expect(await publish(clients.rev, upTopic(SITE, 'dev-rev', 'reading'), readingBatch('dev-rev', 3, 3))).toBe('acked');
      // The ingest refuses them: counted auth, nothing stored. (Before: both batches were stored, 6 readings each.)
      await waitFor(() => (edge.store.stats().rejected.auth ?? 0) >= auth + 2, 'the ingest to refuse both batches', 10_000);
      // dev-ok's batch, sent after, is stored: the refused ones had their turn before it.
      expect(await publish(clients.ok, upTopic(SITE, 'dev-ok', 'reading'), readingBatch('dev-ok', 3, 3))).toBe('acked');
      await waitFor(() => stored('dev-ok') === 6, 'dev-ok still delivers');
      expect(stored('dev-exp')).toBe(3);
      expect(stored('dev-rev')).toBe(3);

      // New handshakes: the revoked certificate is refused after SIGHUP (the CRL was reread), the expired one too.
      expect((await tryConnect(url, tlsOptions(caPem, identity('dev-rev')))).connected, broker.log()).toBe(false);
      expect((await tryConnect(url, tlsOptions(caPem, short))).connected).toBe(false);
      for (const c of Object.values(clients)) await end(c);
    } finally {
      await close();
    }
  }, 60_000);

  it('tells a revoked board why its batches are refused: its uplink keeps the records and raises sync-batches-refused', async () => {
    const caDir = join(dir, 'ca-notice');
    const devices = join(dir, 'devices-notice');
    await initCaDir(caDir, { site: SITE });
    await provisionDevice(caDir, { deviceId: 'dev-gone', site: SITE, outDir: devices });
    const identity: CertifiedKey = { certPem: readFileSync(join(devices, 'dev-gone.crt'), 'utf8'), keyPem: readFileSync(join(devices, 'dev-gone.key'), 'utf8') };
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-notice');
    const edge = new EdgeNode({ dataDir: join(dir, 'edge-notice'), brokerUrl: broker.url, tls: readEdgeTls(caDir) });
    const store = new SqliteOutboxStore(join(dir, 'dev-gone-ledger.sqlite'), { deviceId: 'dev-gone' });
    const uplink = new Uplink(store, { url: broker.url, site: SITE, mqtt: tlsOptions(readSiteCa(caDir).certPem, identity), batchMaxRecords: 10, ackTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 5_000 } });
    const alerts: Alert[] = [];
    uplink.on('alert', (a) => alerts.push(a));
    const readings = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ kind: 'reading' as const, tMs: 1_700_000_000_000 + from + i, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: 1_700_000_000_000 + from + i }) }));
    try {
      await edge.start();
      store.append(readings(0, 5));
      uplink.start();
      await waitFor(() => store.stats().reading.pending === 0, 'the first readings delivered', 10_000);

      await revokeDevice(caDir, 'dev-gone');
      broker.reload();
      store.append(readings(5, 5));
      await waitFor(() => alerts.length > 0, 'the sync-batches-refused alert', 10_000).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${broker.log()}`);
      });
      expect(alerts[0]).toMatchObject({ kind: SYNC_BATCHES_REFUSED, severity: 2 });
      expect(alerts[0]?.message).toContain('reason: certificate-revoked');
      expect(alerts[0]?.message).toContain('re-provision it (medge provision)');
      expect(uplink.refused).toEqual({ reading: 'certificate-revoked' });
      // Still connected (Mosquitto keeps the connection), nothing acknowledged, the records stay on the board.
      expect(uplink.state).toBe('connected');
      expect(store.stats().reading.pending).toBe(5);
      expect(edge.store.stats().devices['dev-gone']?.reading).toBe(5);
      expect(edge.store.stats().rejected.auth ?? 0).toBeGreaterThanOrEqual(1);
    } finally {
      await uplink.stop();
      store.close();
      await edge.stop();
      edge.store.close();
      await broker.stop();
    }
  }, 60_000);
});
