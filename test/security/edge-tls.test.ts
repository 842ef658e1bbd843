/**
 * Mutual TLS and per-device ACLs at the embedded edge broker (aedes), end to end through the CLI:
 * `medge ca init`, `medge provision`, `medge edge --tls` in the background, real TLS on loopback,
 * adversarial MQTT clients, and `medge edge stats --json` reading the refusal counts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAck, encodeBody } from '../../device-sdk/proto/index.js';
import { type CertifiedKey, createSiteCa, issueDeviceCert, readSiteCa, type SiteCa } from '../../device-sdk/security/pki.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { downTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { type EdgeStats, readEdgeStats } from '../../edge/edge-store.js';
import { readTlsFiles } from '../../firmware/runtime.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { end, publish, runRuntimeUntil, readingBatch, subscribe, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-9';
const dir = mkdtempSync(join(tmpdir(), 'medge-edge-tls-'));
const caDir = join(dir, 'ca');
const devices = join(dir, 'devices');
const edgeData = join(dir, 'edge');

let edge: ReturnType<typeof medgeBackground> | undefined;
let url = '';
let ca: SiteCa;
let caPem = '';
const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devices, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devices, `${id}.key`), 'utf8') });
const stats = (): EdgeStats => readEdgeStats(edgeData);
const rejected = (reason: string): number => stats().rejected[reason] ?? 0;

beforeAll(async () => {
  const init = await medge(['ca', 'init', '--dir', caDir, '--site', SITE]);
  expect(init.code, init.stderr).toBe(0);
  const provisioned = await Promise.all(['dev-a', 'dev-b', 'rt-dev'].map((id) => medge(['provision', '--ca', caDir, '--site', SITE, '--device', id, '--out', devices])));
  for (const r of provisioned) expect(r.code, r.stderr).toBe(0);
  ca = readSiteCa(caDir);
  caPem = ca.certPem;
  edge = medgeBackground(['edge', '--data', edgeData, '--port', '0', '--tls', caDir, '--log-level', 'error']);
  await waitFor(() => edge?.output().includes('Ctrl-C stops') ?? false, 'edge to start', 20_000);
  url = /at (mqtts:\/\/[^\s,;]+)/.exec(edge.output())?.[1] ?? '';
  expect(url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
});

afterAll(async () => {
  if (edge) expect(await edge.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe('medge edge --tls (embedded aedes): mutual TLS and per-device ACLs', () => {
  it('delivers a device\'s records end to end over mqtts: Uplink -> edge commit -> ack', async () => {
    const store = new SqliteOutboxStore(join(dir, 'dev-a-ledger.sqlite'), { deviceId: 'dev-a' });
    store.append(
      Array.from({ length: 40 }, (_, i) => ({ kind: 'reading' as const, tMs: i, body: encodeBody('reading', { sensor: 'g', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: i }) })),
    );
    const mqtt = readTlsFiles({ ca: join(devices, 'ca.crt'), cert: join(devices, 'dev-a.crt'), key: join(devices, 'dev-a.key') });
    const uplink = new Uplink(store, { url, site: SITE, mqtt, batchMaxRecords: 10, backoff: { initialMs: 50, maxMs: 500 } });
    try {
      uplink.start();
      await waitFor(() => store.ackedUpTo('reading') === 40, 'all 40 readings acknowledged over mqtts', 15_000);
      expect(stats().devices['dev-a']).toEqual({ reading: 40 });
    } finally {
      await uplink.stop();
      store.close();
    }
  });

  it('medge run with edge.tls in its config (paths relative to the file) delivers through the TLS edge', async () => {
    const config = join(devices, 'runtime.json');
    await runRuntimeUntil(
      config,
      {
        deviceId: 'rt-dev',
        site: SITE,
        dataDir: './rt-data',
        edge: { url, tls: { ca: 'ca.crt', cert: 'rt-dev.crt', key: 'rt-dev.key' }, backoff: { initialMs: 50, maxMs: 500 } },
        sources: [{ type: 'sim-hr', intervalMs: 100 }],
        log: { level: 'warn' },
      },
      () => (stats().devices['rt-dev']?.reading ?? 0) >= 3,
      'runtime readings stored at the edge',
    );
  });

  it("refuses device A's publish to B's uplink (forged batch naming B): nothing stored for B, counted acl", async () => {
    const acl = rejected('acl');
    const a = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-a' });
    if (!a.connected) throw new Error(`dev-a could not connect: ${a.error}`);
    // aedes answers a refused PUBLISH by closing the connection (MQTT 3.1.1 has no refusal code).
    expect(await publish(a.client, upTopic(SITE, 'dev-b', 'reading'), readingBatch('dev-b'))).toBe('closed');
    await end(a.client);
    await waitFor(() => rejected('acl') === acl + 1, 'the refusal counted as acl');
    expect(stats().devices['dev-b']).toBeUndefined();
  });

  it("refuses A's forged ack to B, A's retained or down-topic publishes, and keeps B's down topic clean", async () => {
    const b = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-b')), clientId: 'medge-dev-b' });
    if (!b.connected) throw new Error(`dev-b could not connect: ${b.error}`);
    const received: string[] = [];
    b.client.on('message', (topic) => received.push(topic));
    expect(await subscribe(b.client, `medge/v1/${SITE}/dev-b/down/#`)).toEqual([1]);
    const acl = rejected('acl');
    const attempts: [string, Uint8Array, boolean][] = [
      [downTopic(SITE, 'dev-b', 'ack'), Buffer.from('forged ack'), false],
      [downTopic(SITE, 'dev-a', 'ack'), Buffer.from('self ack'), false],
      [upTopic(SITE, 'dev-a', 'reading'), readingBatch('dev-a', 1, 1000), true],
      ['$SYS/broker/x', Buffer.from('x'), false],
      [`medge/v1/other-site/dev-a/up/reading`, readingBatch('dev-a', 1, 1000), false],
    ];
    for (const [topic, payload, retain] of attempts) {
      const a = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-a' });
      if (!a.connected) throw new Error(`dev-a could not connect: ${a.error}`);
      expect(await publish(a.client, topic, payload, { retain }), topic).toBe('closed');
      await end(a.client);
    }
    await waitFor(() => rejected('acl') === acl + attempts.length, 'every refusal counted as acl');
    // B itself is still connected and received nothing.
    expect(b.client.connected).toBe(true);
    expect(received).toEqual([]);
    await end(b.client);
  });

  it("refuses A's subscriptions to B's down topic and to other devices' uplinks (granted 128), and keeps A connected", async () => {
    const a = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-a' });
    if (!a.connected) throw new Error(`dev-a could not connect: ${a.error}`);
    const acl = rejected('acl');
    const denied = [`medge/v1/${SITE}/dev-b/down/#`, downTopic(SITE, 'dev-b', 'ack'), `medge/v1/${SITE}/+/down/#`, `medge/v1/${SITE}/+/up/+`, `medge/v1/${SITE}/dev-b/up/reading`, '#', '$SYS/#'];
    for (const topic of denied) expect(await subscribe(a.client, topic), topic).toEqual([128]);
    expect(await subscribe(a.client, `medge/v1/${SITE}/dev-a/down/#`)).toEqual([1]);
    expect(await subscribe(a.client, downTopic(SITE, 'dev-a', 'ack'))).toEqual([1]);
    expect(a.client.connected).toBe(true);
    expect(rejected('acl')).toBe(acl + denied.length);

    // What the subscription is for still works: A's own batch is acknowledged on A's down topic.
    const acks: number[] = [];
    a.client.on('message', (topic, payload) => {
      if (topic === downTopic(SITE, 'dev-a', 'ack')) acks.push(decodeAck(payload).upToSeq);
    });
    expect(await publish(a.client, upTopic(SITE, 'dev-a', 'reading'), readingBatch('dev-a', 2, 40))).toBe('acked');
    await waitFor(() => acks.includes(42), 'ack for the batch A is allowed to send');
    await end(a.client);
  });

  it('refuses clients without a certificate, with an expired one, from another CA, or with the server certificate', async () => {
    const expired = await issueDeviceCert(ca, { deviceId: 'dev-a', site: SITE, notBefore: new Date(Date.now() - 10 * 86_400_000), validDays: 2 });
    const foreignCa = await createSiteCa({ site: SITE }); // same site name, another key: a forged CA
    const foreign = await issueDeviceCert(foreignCa, { deviceId: 'dev-a', site: SITE });
    const server: CertifiedKey = { certPem: readFileSync(join(caDir, 'server.crt'), 'utf8'), keyPem: readFileSync(join(caDir, 'server.key'), 'utf8') };
    const auth = rejected('auth');
    const cases: [string, Awaited<ReturnType<typeof tryConnect>>][] = [
      ['no certificate', await tryConnect(url, { ...tlsOptions(caPem), clientId: 'medge-dev-a' })],
      ['expired certificate', await tryConnect(url, { ...tlsOptions(caPem, expired), clientId: 'medge-dev-a' })],
      ['certificate from another CA', await tryConnect(url, { ...tlsOptions(caPem, foreign), clientId: 'medge-dev-a' })],
      ['server certificate as client', await tryConnect(url, { ...tlsOptions(caPem, server), clientId: 'medge-dev-a' })],
      ['plain MQTT on the TLS port', await tryConnect(url.replace('mqtts://', 'mqtt://'), { clientId: 'medge-dev-a' })],
    ];
    for (const [what, outcome] of cases) {
      if (outcome.connected) await end(outcome.client);
      expect(outcome.connected, what).toBe(false);
    }
    await waitFor(() => rejected('auth') === auth + cases.length, 'each refused handshake counted as auth');
  });

  it("refuses an MQTT username other than the certificate's CN and a takeover of another device's client id", async () => {
    const auth = rejected('auth');
    const spoof = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-a', username: 'dev-b' });
    expect(spoof.connected).toBe(false);
    if (!spoof.connected) expect(spoof.error).toMatch(/Not authorized/i);

    const b = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-b')), clientId: 'medge-dev-b', username: 'dev-b' });
    if (!b.connected) throw new Error(`dev-b could not connect: ${b.error}`);
    const takeover = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-b' });
    if (takeover.connected) await end(takeover.client);
    expect(takeover.connected).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.client.connected).toBe(true);
    // B itself may reconnect under its id (the new session replaces the old one).
    const again = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-b')), clientId: 'medge-dev-b' });
    expect(again.connected).toBe(true);
    if (again.connected) await end(again.client);
    await end(b.client);
    expect(rejected('auth')).toBe(auth + 2);
  });

  it('a device refuses an edge whose certificate its CA did not sign, or that is not for the host it dialled', async () => {
    const foreignCa = await createSiteCa({ site: SITE });
    const outcome = await tryConnect(url, { ...tlsOptions(foreignCa.certPem, identity('dev-a')), clientId: 'medge-dev-a' });
    expect(outcome.connected).toBe(false);
    if (!outcome.connected) expect(outcome.error).toMatch(/self.signed|unable to verify|certificate/i);
    const wrongHost = await tryConnect(url, { ...tlsOptions(caPem, identity('dev-a')), clientId: 'medge-dev-a', servername: 'edge.elsewhere.example' });
    expect(wrongHost.connected).toBe(false);
    if (!wrongHost.connected) expect(wrongHost.error).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('medge edge stats --json shows the acl and auth counts while the edge runs', async () => {
    const r = await medge(['edge', 'stats', '--data', edgeData, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as EdgeStats;
    expect(out.devices['dev-a']).toEqual({ reading: 42 });
    expect(out.devices['dev-b']).toBeUndefined();
    expect(out.rejected.acl).toBe(1 + 5 + 7);
    // 5 refused handshakes, 1 username, 1 client-id takeover (each counted exactly above), plus
    // whatever the edge saw of the handshakes that the devices themselves broke off.
    expect(out.rejected.auth).toBeGreaterThanOrEqual(7);
    expect(Object.keys(out.rejected).sort()).toEqual(['acl', 'auth']);
  });
});
