/**
 * The upgrade path of a single-ingest site to a release with ingest workers: devices provisioned earlier under
 * `medge-edge-ingest-<name>` keep working, a single `--tls` edge does not need the workers' group key, a hung single
 * ingest does not block its replacement, a custom ingest certificate still starts, and a worker started before
 * Mosquitto's ACL names it refuses to run instead of silently losing its share of uplinks.
 * Real components: SQLite stores, the embedded broker over TLS, a real Mosquitto configured by mosquitto-config.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { type CertifiedKey, initCaDir, INGEST_GROUP_KEY_FILE, issueIngestWorkers, PkiError, readEdgeTls, readSiteCa, type SiteCa } from '../../device-sdk/security/pki.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { MosquittoConfigError, writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { findMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { startConfiguredMosquitto } from '../security/configured-mosquitto.js';
import { end, publish, readingBatch, tlsOptions, tryConnect } from '../security/probe.js';

const SITE = 'ward-9';
const LEGACY = 'medge-edge-ingest-cart';
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * A client certificate signed by the site CA with any CN and OU, as releases before the `medge-edge-ingest-` prefix
 * was reserved issued for a device id like `medge-edge-ingest-cart` (today's provisioning refuses such ids), or as an
 * operator's own ingest certificate. Written to `issued/<CN>.crt` for devices, as provisioning did.
 */
async function olderCertificate(caDir: string, ca: SiteCa, cn: string, ou: 'device' | 'edge'): Promise<CertifiedKey> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const [caDer] = x509.PemConverter.decode(ca.keyPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', caDer as ArrayBuffer, ALG, false, ['sign']);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    subject: [{ CN: [cn] }, { O: [ca.site] }, { OU: [ou] }],
    issuer: caCert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2']),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  const keyPem = `${x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY')}\n`;
  const certPem = `${cert.toString('pem')}\n`;
  if (ou === 'device') {
    mkdirSync(join(caDir, 'issued'), { recursive: true });
    writeFileSync(join(caDir, 'issued', `${cn}.crt`), certPem);
  }
  return { certPem, keyPem };
}

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function capture() {
  const lines: LogLine[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }) };
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'medge-ingest-upgrade-'));
  chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('upgrading a single-ingest site (embedded broker, CA directory files)', () => {
  it('the embedded broker with --tls stores a device provisioned earlier as medge-edge-ingest-cart, and refuses a device certificate under a worker identity', async () => {
    const caDir = join(dir, 'ca-embedded');
    await initCaDir(caDir, { site: SITE });
    const ca = readSiteCa(caDir);
    const cart = await olderCertificate(caDir, ca, LEGACY, 'device');
    const impostor = await olderCertificate(join(dir, 'elsewhere'), ca, 'medge-edge-ingest-3', 'device');
    const edge = new EdgeNode({ dataDir: join(dir, 'edge-embedded'), port: 0, tls: readEdgeTls(caDir) });
    let device: Awaited<ReturnType<typeof tryConnect>> | undefined;
    try {
      await edge.start();
      device = await tryConnect(edge.url, tlsOptions(ca.certPem, cart));
      if (!device.connected) throw new Error(`${LEGACY} could not connect: ${device.error}`);
      for (let b = 0; b < 10; b++) expect(await publish(device.client, upTopic(SITE, LEGACY, 'reading'), readingBatch(LEGACY, 1, b))).toBe('acked');
      await waitFor(() => edge.store.stats().devices[LEGACY]?.reading === 10, `the 10 readings of ${LEGACY} stored`);
      expect(edge.store.stats().rejected).toEqual({});
      const refused = await tryConnect(edge.url, tlsOptions(ca.certPem, impostor));
      if (refused.connected) await end(refused.client);
      expect(refused.connected).toBe(false);
    } finally {
      await end(device?.connected ? device.client : undefined);
      await edge.stop();
    }
  }, 60_000);

  it('mosquitto-config accepts a CA directory that issued medge-edge-ingest-cart and refuses one that issued a device under a worker identity', async () => {
    const caDir = join(dir, 'ca-config');
    await initCaDir(caDir, { site: SITE });
    await olderCertificate(caDir, readSiteCa(caDir), LEGACY, 'device');
    const written = writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'config-ok', 'mosquitto.conf') });
    const acl = written.files.find((f) => f.endsWith('.acl')) ?? '';
    expect(readFileSync(acl, 'utf8')).toContain('user medge-edge-ingest\n');
    expect(readFileSync(acl, 'utf8')).not.toContain(`user ${LEGACY}`);
    await olderCertificate(caDir, readSiteCa(caDir), 'medge-edge-ingest-7', 'device');
    expect(() => writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'config-refused', 'mosquitto.conf') })).toThrow(MosquittoConfigError);
    expect(() => writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'config-refused', 'mosquitto.conf') })).toThrow(/\(medge-edge-ingest-7\)/);
  }, 60_000);

  it('a single --tls edge never reads ingest-group.key; a worker needs it, 64 hex, and is told to restart every worker after a new one', async () => {
    const caDir = join(dir, 'ca-key');
    await initCaDir(caDir, { site: SITE });
    await issueIngestWorkers(caDir, { workers: 1 });
    const keyPath = join(caDir, INGEST_GROUP_KEY_FILE);
    expect(readFileSync(keyPath, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    // Unreadable (a directory in its place: root reads any file mode).
    unlinkSync(keyPath);
    mkdirSync(keyPath);
    const single = new EdgeNode({ dataDir: join(dir, 'edge-key'), port: 0, tls: readEdgeTls(caDir) });
    await single.start();
    await single.stop();
    expect(() => readEdgeTls(caDir, { ingestWorker: 1 })).toThrow(PkiError);
    expect(() => readEdgeTls(caDir, { ingestWorker: 1 })).toThrow(/restart every ingest worker/);
    rmSync(keyPath, { recursive: true });
    // Malformed: refused by the workers and by ingest-workers alike, never silently replaced.
    writeFileSync(keyPath, `${'a'.repeat(63)}\n`, { mode: 0o600 });
    expect(() => readEdgeTls(caDir, { ingestWorker: 1 })).toThrow(/exactly 64 hex characters, found 63/);
    await expect(issueIngestWorkers(caDir, { workers: 1 })).rejects.toMatchObject({ reason: 'invalid-ca' });
    writeFileSync(keyPath, `${'g'.repeat(64)}\n`);
    expect(() => readEdgeTls(caDir, { ingestWorker: 1 })).toThrow(/non-hex/);
    expect(readEdgeTls(caDir).ingestGroupKey).toBeUndefined();
  }, 60_000);

  it('ingest-workers reissues a worker whose certificate was deleted or whose key does not match it, and keeps an intact one', async () => {
    const caDir = join(dir, 'ca-reissue');
    await initCaDir(caDir, { site: SITE });
    await issueIngestWorkers(caDir, { workers: 3 });
    const third = readFileSync(join(caDir, 'ingest-3.crt'), 'utf8');
    unlinkSync(join(caDir, 'ingest-2.crt'));
    writeFileSync(join(caDir, 'ingest-1.key'), readFileSync(join(caDir, 'ingest-3.key')), { mode: 0o600 });
    const again = await issueIngestWorkers(caDir, { workers: 3 });
    expect(again.map((w) => [w.worker, w.created])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(readFileSync(join(caDir, 'ingest-3.crt'), 'utf8')).toBe(third);
    for (const n of [1, 2, 3]) {
      const cert = new X509Certificate(readFileSync(join(caDir, `ingest-${n}.crt`)));
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(caDir, `ingest-${n}.key`))))).toBe(true);
      expect(statSync(join(caDir, `ingest-${n}.key`)).mode & 0o777).toBe(0o600);
    }
    expect(readdirSync(caDir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 60_000);

  it('a custom ingest certificate (CN not an ingest name) starts a single ingest as before; a worker must carry a worker identity', async () => {
    const caDir = join(dir, 'ca-custom');
    await initCaDir(caDir, { site: SITE });
    await issueIngestWorkers(caDir, { workers: 1 });
    const custom = await olderCertificate(caDir, readSiteCa(caDir), 'site-ingest', 'edge');
    const tls = { ...readEdgeTls(caDir, { ingestWorker: 1 }), ingestCert: custom.certPem, ingestKey: custom.keyPem };
    const single = new EdgeNode({ dataDir: join(dir, 'edge-custom'), brokerUrl: 'mqtts://127.0.0.1:1', tls });
    expect(single.ingestIdentity).toBe('site-ingest');
    await single.stop();
    expect(() => new EdgeNode({ dataDir: join(dir, 'edge-custom'), brokerUrl: 'mqtts://127.0.0.1:1', tls, sharedSubscription: 'ingest' })).toThrow(ConfigError);
  }, 60_000);
});

const available = systemAvailable('mosquitto', findMosquitto() !== undefined, 'mosquitto');

describe.skipIf(!available)('upgrading a single-ingest site behind Mosquitto (skipped: mosquitto not installed)', () => {
  it('a frozen single ingest does not block its replacement on the same --data: it waits, names the holder pid, takes over and stores (a medge-edge-ingest-cart device too)', async () => {
    const caDir = join(dir, 'ca-frozen');
    await initCaDir(caDir, { site: SITE });
    const ca = readSiteCa(caDir);
    const cart = await olderCertificate(caDir, ca, LEGACY, 'device');
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-frozen');
    const dataDir = join(dir, 'edge-frozen');
    const old = medgeBackground(['edge', '--data', dataDir, '--broker', broker.url, '--tls', caDir]);
    const log = capture();
    let replacement: EdgeNode | undefined;
    let device: Awaited<ReturnType<typeof tryConnect>> | undefined;
    try {
      await waitFor(() => old.output().includes('edge ingest subscribed'), 'the first ingest subscribed', 15_000);
      old.child.kill('SIGSTOP');
      replacement = new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir), identityLockWaitMs: 1_000, logger: log.logger });
      await replacement.start();
      const waited = log.lines.find((l) => l.msg.startsWith('another process holds this ingest identity'));
      expect(waited).toMatchObject({ level: 40, identity: 'medge-edge-ingest', holderPid: old.child.pid });
      expect(log.lines.some((l) => l.msg.startsWith('going on without the identity lock'))).toBe(true);
      device = await tryConnect(broker.url, tlsOptions(ca.certPem, cart));
      if (!device.connected) throw new Error(`${LEGACY} could not connect: ${device.error}`);
      for (let b = 0; b < 10; b++) expect(await publish(device.client, upTopic(SITE, LEGACY, 'reading'), readingBatch(LEGACY, 1, b))).toBe('acked');
      const store = replacement.store;
      await waitFor(() => store.stats().devices[LEGACY]?.reading === 10, `the 10 readings of ${LEGACY} stored by the replacement`, 15_000);
    } finally {
      await end(device?.connected ? device.client : undefined);
      old.child.kill('SIGKILL');
      await old.stop();
      await replacement?.stop();
      await broker.stop();
    }
  }, 90_000);

  it('a worker started before mosquitto-config names it refuses to run (exit 1, naming the fix); after the rerun and SIGHUP it starts', async () => {
    const caDir = join(dir, 'ca-stale-acl');
    await initCaDir(caDir, { site: SITE });
    // Mosquitto configured for the single ingest; the workers' certificates come later.
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-stale-acl');
    await issueIngestWorkers(caDir, { workers: 1 });
    const dataDir = join(dir, 'edge-stale-acl');
    const worker = () => new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 1 }), sharedSubscription: 'ingest', aclProbeTimeoutMs: 3_000 });
    let started: EdgeNode | undefined;
    try {
      await expect(worker().start()).rejects.toMatchObject({ code: 'ingest-acl-missing' });
      const cli = await medge(['edge', '--data', dataDir, '--broker', broker.url, '--tls', caDir, '--shared-subscription', 'ingest', '--ingest-worker', '1']);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain('Rerun medge edge mosquitto-config');
      broker.reload(); // the operator's fix: config rewritten with the worker's user block, SIGHUP
      await waitFor(
        async () => {
          const w = worker();
          try {
            await w.start();
            started = w;
            return true;
          } catch {
            return false;
          }
        },
        'the worker to start after the reload',
        20_000,
        200,
      );
      expect(started?.store.stats().rejected).toEqual({});
    } finally {
      await started?.stop();
      await broker.stop();
    }
  }, 90_000);
});
