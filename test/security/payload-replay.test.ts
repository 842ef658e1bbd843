/**
 * Payload encryption inside TLS (AES-256-GCM and SM4-CTR+HMAC-SM3 with per-device wire keys from
 * `medge provision`), replayed batches, and malformed or oversized payloads, against
 * `medge edge --tls --sealed-payloads` (embedded aedes) in its own process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBody, encodeBody } from '../../device-sdk/proto/index.js';
import { type CertifiedKey, initCaDir, provisionDevice } from '../../device-sdk/security/pki.js';
import { CIPHER_SUITES } from '../../device-sdk/security/envelope.js';
import { loadWireKey, sealPayload, wireKeyPath } from '../../device-sdk/security/wire-keys.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeStore, type EdgeStats, readEdgeStats } from '../../edge/edge-store.js';
import { readTlsFiles } from '../../firmware/runtime.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { end, publish, readingBatch, runRuntimeUntil, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-12';
const dir = mkdtempSync(join(tmpdir(), 'medge-payload-'));
const caDir = join(dir, 'ca');
const devices = join(dir, 'devices');
const edgeData = join(dir, 'edge');
const IDS = ['dev-gcm', 'dev-sm4', 'dev-probe', 'rt-sm4'] as const;

let edge: ReturnType<typeof medgeBackground> | undefined;
let url = '';
let caPem = '';
const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devices, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devices, `${id}.key`), 'utf8') });
const stats = (): EdgeStats => readEdgeStats(edgeData);
const rejected = (reason: string): number => stats().rejected[reason] ?? 0;

beforeAll(async () => {
  await initCaDir(caDir, { site: SITE });
  const [first, ...rest] = IDS;
  const r = await medge(['provision', '--ca', caDir, '--site', SITE, '--device', first, '--out', devices]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`${first}.wire.key`);
  await Promise.all(rest.map((deviceId) => provisionDevice(caDir, { deviceId, site: SITE, outDir: devices })));
  caPem = readFileSync(join(devices, 'ca.crt'), 'utf8');
  edge = medgeBackground(['edge', '--data', edgeData, '--port', '0', '--tls', caDir, '--sealed-payloads', '--log-level', 'error']);
  await waitFor(() => edge?.output().includes('Ctrl-C stops') ?? false, 'edge to start', 20_000);
  url = /at (mqtts:\/\/[^\s,;]+)/.exec(edge.output())?.[1] ?? '';
  expect(url).toMatch(/^mqtts:\/\//);
});

afterAll(async () => {
  if (edge) expect(await edge.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

async function connected(id: string) {
  const c = await tryConnect(url, { ...tlsOptions(caPem, identity(id)), clientId: `medge-${id}` });
  if (!c.connected) throw new Error(`${id} could not connect: ${c.error}`);
  return c.client;
}

/** Publishes and waits until the edge has handled it (a stored count or a rejection count moved). */
async function publishHandled(id: string, topic: string, payload: Uint8Array): Promise<void> {
  const before = JSON.stringify(stats());
  const client = await connected(id);
  try {
    expect(await publish(client, topic, payload)).toBe('acked');
    await waitFor(() => JSON.stringify(stats()) !== before, 'the edge to handle the publish');
  } finally {
    await end(client);
  }
}

describe('payload encryption inside TLS, per-device wire keys', () => {
  it('provision writes the wire key 0600 for the device and the edge', async () => {
    const { statSync } = await import('node:fs');
    expect(statSync(join(devices, 'dev-gcm.wire.key')).mode & 0o777).toBe(0o600);
    expect(statSync(wireKeyPath(caDir, 'dev-gcm')).mode & 0o777).toBe(0o600);
    expect(loadWireKey(join(devices, 'dev-gcm.wire.key'))).toEqual(loadWireKey(wireKeyPath(caDir, 'dev-gcm')));
  });

  it.each([
    ['dev-gcm', CIPHER_SUITES[0]],
    ['dev-sm4', CIPHER_SUITES[1]],
  ] as const)('%s delivers sealed batches (%s) end to end; the edge stores the opened records', async (id, suite) => {
    const store = new SqliteOutboxStore(join(dir, `${id}.sqlite`), { deviceId: id });
    store.append(Array.from({ length: 30 }, (_, i) => ({ kind: 'reading' as const, tMs: i, body: encodeBody('reading', { sensor: 'g', type: 'glucose', value: 90 + i, unit: 'mg/dL', tDevice: i }) })));
    const wireKey = loadWireKey(join(devices, `${id}.wire.key`));
    const sealed: Uint8Array[] = [];
    const uplink = new Uplink(store, {
      url,
      site: SITE,
      mqtt: readTlsFiles({ ca: join(devices, 'ca.crt'), cert: join(devices, `${id}.crt`), key: join(devices, `${id}.key`) }),
      batchMaxRecords: 10,
      backoff: { initialMs: 50, maxMs: 500 },
      sealPayload: (topic, payload) => {
        const out = sealPayload(suite, wireKey, topic, payload);
        sealed.push(out);
        return out;
      },
    });
    try {
      uplink.start();
      await waitFor(() => store.ackedUpTo('reading') === 30, 'all 30 readings acknowledged', 15_000);
    } finally {
      await uplink.stop();
      store.close();
    }
    expect(sealed.length).toBeGreaterThanOrEqual(3);
    for (const s of sealed) expect(s[0]).toBe(0x01); // an envelope, not a protobuf Batch
    expect(stats().devices[id]).toEqual({ reading: 30 });
    const edgeStore = new EdgeStore(edgeData);
    try {
      const values = edgeStore.records(id, 'reading').map((r) => (decodeBody('reading', r.body) as { value: number }).value);
      expect(values).toEqual(Array.from({ length: 30 }, (_, i) => 90 + i));
    } finally {
      edgeStore.close();
    }
  });

  it('medge run with edge.payloadEncryption (SM4) delivers through the edge', async () => {
    const config = join(devices, 'rt-sm4.json');
    await runRuntimeUntil(
      config,
      {
        deviceId: 'rt-sm4',
        site: SITE,
        dataDir: './rt-sm4-data',
        edge: {
          url,
          tls: { ca: 'ca.crt', cert: 'rt-sm4.crt', key: 'rt-sm4.key' },
          payloadEncryption: { suite: 'sm4-ctr-hmac-sm3', keyFile: 'rt-sm4.wire.key' },
          backoff: { initialMs: 50, maxMs: 500 },
        },
        store: { cipher: 'sm4-ctr-hmac-sm3' },
        sources: [{ type: 'sim-hr', intervalMs: 100 }],
        log: { level: 'warn' },
      },
      () => (stats().devices['rt-sm4']?.reading ?? 0) >= 3,
      'runtime readings stored at the edge',
    );
  });

  it('refuses, as auth and storing nothing: a clear payload, a tampered one, one moved to another topic, one sealed with another device\'s key', async () => {
    const own = loadWireKey(join(devices, 'dev-probe.wire.key'));
    const other = loadWireKey(join(devices, 'dev-gcm.wire.key'));
    const topic = upTopic(SITE, 'dev-probe', 'reading');
    const batch = readingBatch('dev-probe', 3, 100);
    const tampered = Buffer.from(sealPayload('aes-256-gcm', own, topic, batch));
    tampered[tampered.length - 40] = (tampered[tampered.length - 40] as number) ^ 0x10;
    const cases: [string, string, Uint8Array][] = [
      ['clear', topic, batch],
      ['tampered', topic, tampered],
      ['moved to the alert topic', upTopic(SITE, 'dev-probe', 'alert'), sealPayload('sm4-ctr-hmac-sm3', own, topic, batch)],
      ["sealed with dev-gcm's key", topic, sealPayload('aes-256-gcm', other, topic, batch)],
    ];
    for (const [what, t, payload] of cases) {
      const auth = rejected('auth');
      await publishHandled('dev-probe', t, payload);
      expect(rejected('auth'), what).toBe(auth + 1);
    }
    expect(stats().devices['dev-probe']).toBeUndefined();
  });
});

describe('replayed batches, malformed and oversized payloads', () => {
  it('a captured sealed publish played again changes nothing and counts replay', async () => {
    const key = loadWireKey(join(devices, 'dev-probe.wire.key'));
    const topic = upTopic(SITE, 'dev-probe', 'reading');
    const captured = sealPayload('aes-256-gcm', key, topic, readingBatch('dev-probe', 4));
    await publishHandled('dev-probe', topic, captured);
    expect(stats().devices['dev-probe']).toEqual({ reading: 4 });
    const edgeStore = new EdgeStore(edgeData);
    const before = edgeStore.records('dev-probe', 'reading');
    edgeStore.close();
    for (let i = 1; i <= 2; i++) {
      const replay = rejected('replay');
      await publishHandled('dev-probe', topic, captured);
      expect(rejected('replay')).toBe(replay + 1);
    }
    // A replay re-sealed for the same range (as a device resending after a lost ack would) is a replay too.
    const replay = rejected('replay');
    await publishHandled('dev-probe', topic, sealPayload('sm4-ctr-hmac-sm3', key, topic, readingBatch('dev-probe', 4)));
    expect(rejected('replay')).toBe(replay + 1);
    expect(stats().devices['dev-probe']).toEqual({ reading: 4 });
    const after = new EdgeStore(edgeData);
    expect(after.records('dev-probe', 'reading')).toEqual(before);
    after.close();
  });

  it('a malformed protobuf and an oversized payload are counted, and the node keeps taking valid batches', async () => {
    const key = loadWireKey(join(devices, 'dev-probe.wire.key'));
    const topic = upTopic(SITE, 'dev-probe', 'reading');
    const malformed = rejected('malformed');
    await publishHandled('dev-probe', topic, sealPayload('aes-256-gcm', key, topic, Uint8Array.of(0x08, 0x01, 0x12, 0xff, 0xff, 0x00)));
    expect(rejected('malformed')).toBe(malformed + 1);
    const oversize = rejected('oversize');
    await publishHandled('dev-probe', topic, sealPayload('aes-256-gcm', key, topic, Buffer.alloc(1024 * 1024 + 1, 7)));
    expect(rejected('oversize')).toBe(oversize + 1);
    await publishHandled('dev-probe', topic, sealPayload('aes-256-gcm', key, topic, readingBatch('dev-probe', 3, 4)));
    expect(stats().devices['dev-probe']).toEqual({ reading: 7 });
  });
});
