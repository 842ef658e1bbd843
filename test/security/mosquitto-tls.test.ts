/**
 * The same identity and topic policy on a real Mosquitto 2.0, configured by
 * `medge edge mosquitto-config`: TLS only, client certificates from the site CA, CN as username,
 * ACL patterns. The edge ingest (`medge edge --broker mqtts://... --tls`) uses its own certificate.
 *
 * Mosquitto counts refusals in its log, not in the edge store, so refusals are asserted by what a
 * client observes: connections that never get a CONNACK, publishes that never reach the edge (and,
 * over MQTT 5, a PUBACK with reason 135), subscriptions that never deliver. Mosquitto 2.0 grants a
 * subscription its ACL denies (it filters at delivery), so "refused" here means "nothing delivered".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAck, encodeBody } from '../../device-sdk/proto/index.js';
import { type CertifiedKey, createSiteCa, initCaDir, issueDeviceCert, provisionDevice, readSiteCa, type SiteCa } from '../../device-sdk/security/pki.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { downTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { findMosquitto, freePort, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { end, publish, readingBatch, subscribe, tlsOptions, tryConnect } from './probe.js';

const mosquitto = findMosquitto();
const available = systemAvailable('mosquitto', mosquitto !== undefined, 'mosquitto');
const SITE = 'ward-11';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe.skipIf(!available)('Mosquitto 2.0 with medge edge mosquitto-config (skipped: mosquitto not installed)', () => {
  let dir = '';
  let caDir = '';
  let devices = '';
  let edgeData = '';
  let url = '';
  let ca: SiteCa;
  let broker: ChildProcess | undefined;
  let brokerLog = '';
  let edge: ReturnType<typeof medgeBackground> | undefined;
  const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devices, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devices, `${id}.key`), 'utf8') });
  const stored = (id: string) => readEdgeStats(edgeData).devices[id];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'medge-mosquitto-tls-'));
    chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
    caDir = join(dir, 'ca');
    devices = join(dir, 'devices');
    edgeData = join(dir, 'edge');
    await initCaDir(caDir, { site: SITE });
    await Promise.all(['dev-a', 'dev-b'].map((deviceId) => provisionDevice(caDir, { deviceId, site: SITE, outDir: devices })));
    ca = readSiteCa(caDir);
    const conf = join(dir, 'broker', 'mosquitto.conf');
    mkdirSync(join(dir, 'broker'), { mode: 0o755 });
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const written = await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', conf, '--port', String(port), '--host', '127.0.0.1']);
      expect(written.code, written.stderr).toBe(0);
      expect(written.stderr).not.toContain('warning');
      brokerLog = '';
      const proc = spawn(mosquitto as string, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (chunk: string) => (brokerLog = (brokerLog + chunk).slice(-20_000)));
      broker = proc;
      const deadline = Date.now() + 5_000;
      while (proc.exitCode === null && !(await accepts(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (proc.exitCode === null && (await accepts(port))) {
        url = `mqtts://127.0.0.1:${port}`;
        break;
      }
      proc.kill('SIGKILL');
      if (attempt >= 3 || !/address already in use/i.test(brokerLog)) throw new Error(`mosquitto did not start with the generated config:\n${brokerLog}`);
    }
    edge = medgeBackground(['edge', '--data', edgeData, '--broker', url, '--tls', caDir, '--log-level', 'warn']);
    await waitFor(() => edge?.output().includes('Ctrl-C stops') ?? false, 'edge ingest subscribed through Mosquitto', 20_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nedge: ${edge?.output()}\nmosquitto: ${brokerLog}`);
    });
  });

  afterAll(async () => {
    if (edge) expect(await edge.stop()).toBe(0);
    if (broker && broker.exitCode === null) {
      const exited = new Promise((r) => broker?.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("delivers a device's records end to end over mqtts: Uplink -> Mosquitto -> edge ingest -> ack", async () => {
    const store = new SqliteOutboxStore(join(dir, 'dev-a-ledger.sqlite'), { deviceId: 'dev-a' });
    store.append(
      Array.from({ length: 30 }, (_, i) => ({ kind: 'reading' as const, tMs: i, body: encodeBody('reading', { sensor: 'g', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: i }) })),
    );
    const uplink = new Uplink(store, { url, site: SITE, mqtt: tlsOptions(ca.certPem, identity('dev-a')), batchMaxRecords: 10, backoff: { initialMs: 50, maxMs: 500 } });
    try {
      uplink.start();
      await waitFor(() => store.ackedUpTo('reading') === 30, 'all 30 readings acknowledged through Mosquitto', 15_000);
      expect(stored('dev-a')).toEqual({ reading: 30 });
    } finally {
      await uplink.stop();
      store.close();
    }
  });

  it("drops device A's forged batch on B's uplink: never reaches the edge (MQTT 5: PUBACK 135)", async () => {
    const a = await tryConnect(url, tlsOptions(ca.certPem, identity('dev-a')));
    if (!a.connected) throw new Error(`dev-a could not connect: ${a.error}\n${brokerLog}`);
    const acks: number[] = [];
    a.client.on('message', (topic, payload) => {
      if (topic === downTopic(SITE, 'dev-a', 'ack')) acks.push(decodeAck(payload).upToSeq);
    });
    await subscribe(a.client, downTopic(SITE, 'dev-a', 'ack'));
    // MQTT 3.1.1: Mosquitto acknowledges and discards. A's own batch, sent after on the same
    // connection, is delivered in order: once its ack is back, the forged one had its chance.
    expect(await publish(a.client, upTopic(SITE, 'dev-b', 'reading'), readingBatch('dev-b'))).toBe('acked');
    expect(await publish(a.client, upTopic(SITE, 'dev-a', 'reading'), readingBatch('dev-a', 2, 30))).toBe('acked');
    await waitFor(() => acks.includes(32), "the edge's ack of A's own batch");
    expect(stored('dev-b')).toBeUndefined();
    expect(stored('dev-a')).toEqual({ reading: 32 });
    await end(a.client);

    const a5 = await tryConnect(url, { ...tlsOptions(ca.certPem, identity('dev-a')), protocolVersion: 5 });
    if (!a5.connected) throw new Error(`dev-a (MQTT 5) could not connect: ${a5.error}`);
    const refused = await new Promise<number | undefined>((resolve) => {
      a5.client.publish(upTopic(SITE, 'dev-b', 'reading'), Buffer.from(readingBatch('dev-b')), { qos: 1 }, (error) => resolve((error as (Error & { code?: number }) | undefined)?.code));
    });
    expect(refused).toBe(135); // Not authorized
    await end(a5.client);
    expect(stored('dev-b')).toBeUndefined();
  });

  it("delivers nothing of B's down topic (or any uplink) to A, and nothing A forges to B", async () => {
    const a = await tryConnect(url, tlsOptions(ca.certPem, identity('dev-a')));
    const b = await tryConnect(url, tlsOptions(ca.certPem, identity('dev-b')));
    if (!a.connected || !b.connected) throw new Error(`could not connect: ${JSON.stringify([a.connected, b.connected])}\n${brokerLog}`);
    const seenByA: string[] = [];
    const seenByB: number[] = [];
    a.client.on('message', (topic) => seenByA.push(topic));
    b.client.on('message', (topic, payload) => {
      if (topic === downTopic(SITE, 'dev-b', 'ack')) seenByB.push(decodeAck(payload).upToSeq);
    });
    for (const topic of [`medge/v1/${SITE}/dev-b/down/#`, downTopic(SITE, 'dev-b', 'ack'), `medge/v1/${SITE}/+/up/+`, '#']) await subscribe(a.client, topic);
    await subscribe(b.client, `medge/v1/${SITE}/dev-b/down/#`);
    // A forges an ack for B (it would make B delete records the edge never stored) ...
    expect(await publish(a.client, downTopic(SITE, 'dev-b', 'ack'), Buffer.from('forged'))).toBe('acked');
    // ... then B sends its first batch, and the edge acknowledges it on B's down topic.
    expect(await publish(b.client, upTopic(SITE, 'dev-b', 'reading'), readingBatch('dev-b', 3))).toBe('acked');
    await waitFor(() => seenByB.length > 0, "the edge's ack to B");
    await new Promise((r) => setTimeout(r, 200));
    expect(seenByB).toEqual([3]); // the forged message never arrived (it would have come first)
    expect(seenByA).toEqual([]); // neither B's ack nor B's uplink reached A
    expect(stored('dev-b')).toEqual({ reading: 3 });
    await end(a.client);
    await end(b.client);
  });

  it('refuses clients without a certificate, with an expired one, from another CA, and plain MQTT', async () => {
    const expired = await issueDeviceCert(ca, { deviceId: 'dev-a', site: SITE, notBefore: new Date(Date.now() - 10 * 86_400_000), validDays: 2 });
    const foreign = await issueDeviceCert(await createSiteCa({ site: SITE }), { deviceId: 'dev-a', site: SITE });
    const cases: [string, Awaited<ReturnType<typeof tryConnect>>][] = [
      ['no certificate', await tryConnect(url, tlsOptions(ca.certPem))],
      ['expired certificate', await tryConnect(url, tlsOptions(ca.certPem, expired))],
      ['certificate from another CA', await tryConnect(url, tlsOptions(ca.certPem, foreign))],
      ['plain MQTT on the TLS port', await tryConnect(url.replace('mqtts://', 'mqtt://'), {}, 2_000)],
    ];
    for (const [what, outcome] of cases) {
      if (outcome.connected) await end(outcome.client);
      expect(outcome.connected, `${what} (mosquitto log:\n${brokerLog.slice(-2000)})`).toBe(false);
    }
    // Mosquitto is still serving the devices that belong.
    const a = await tryConnect(url, tlsOptions(ca.certPem, identity('dev-a')));
    expect(a.connected).toBe(true);
    if (a.connected) await end(a.client);
  });
});
