/**
 * N ingest workers on one edge store through a shared subscription (`EdgeNodeOptions.sharedSubscription`): two
 * EdgeNodes on one data directory against a real Mosquitto, each message to one of them. Before the option every
 * worker subscribed to every uplink and handled each batch (the second time as a replay, acked twice).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { initCaDir, readEdgeTls } from '../../device-sdk/security/pki.js';
import { decodeAck, encodeBody, type WireRecord } from '../../device-sdk/proto/index.js';
import { buildBatch } from '../../device-sdk/sync/batch.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import type { IngestOutcome } from '../../edge/ingest.js';
import { medge } from '../helpers/cli.js';
import { findMosquitto, type MosquittoBroker, startMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const available = systemAvailable('mosquitto', findMosquitto() !== undefined, 'mosquitto');
const dir = mkdtempSync(join(tmpdir(), 'medge-shared-sub-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SITE = 'clinic-3';
const DEVICES = ['dev-1', 'dev-2', 'dev-3'];
const BATCHES = 60;
const PER_BATCH = 10;

function records(deviceId: string, from: number): WireRecord[] {
  return Array.from({ length: PER_BATCH }, (_, i) => {
    const seq = from + i;
    return { seq, bootId: `boot-${deviceId}`, tMs: 1_700_000_000_000 + seq, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90 + (seq % 30), unit: 'mg/dL', tDevice: 1_700_000_000_000 + seq }) };
  });
}

describe('EdgeNode shared subscription', () => {
  it('refuses the option with the embedded broker (aedes has no $share) and a group name MQTT forbids, naming the field', () => {
    expect(() => new EdgeNode({ dataDir: join(dir, 'embedded'), port: 0, sharedSubscription: 'ingest' })).toThrow(ConfigError);
    expect(() => new EdgeNode({ dataDir: join(dir, 'embedded'), brokerUrl: 'mqtt://127.0.0.1:1', sharedSubscription: 'a/b' })).toThrow(
      expect.objectContaining({ field: 'sharedSubscription', value: 'a/b' }),
    );
  });

  it("refuses it with TLS on the one ingest certificate: the workers would share its CN as client id and evict each other behind medge's Mosquitto", async () => {
    // QA: two workers behind `mosquitto-config` (use_username_as_clientid) reconnected 12 times in 7 s, uplinks lost until resent.
    // Workers with their own certificates (--ingest-worker N): test/edge/shared-subscription-tls.test.ts.
    const caDir = join(dir, 'ca');
    await initCaDir(caDir, { site: SITE });
    expect(() => new EdgeNode({ dataDir: join(dir, 'tls'), brokerUrl: 'mqtts://127.0.0.1:1', tls: readEdgeTls(caDir), sharedSubscription: 'ingest' })).toThrow(
      expect.objectContaining({ code: 'config', field: 'sharedSubscription', value: 'ingest' }),
    );
    const cli = await medge(['edge', '--data', join(dir, 'tls'), '--broker', 'mqtts://127.0.0.1:1', '--tls', caDir, '--shared-subscription', 'ingest']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('--shared-subscription with --tls needs --ingest-worker N');
  });

  it.skipIf(!available)('two ingest workers on one store against Mosquitto: every batch handled by exactly one, every record stored once, every batch acked once', async () => {
    const broker: MosquittoBroker = await startMosquitto();
    const dataDir = join(dir, 'edge');
    const workers = [0, 1].map(() => new EdgeNode({ dataDir, brokerUrl: broker.url, sharedSubscription: 'ingest' }));
    const outcomes: IngestOutcome[][] = [[], []];
    workers.forEach((w, i) => (w.onOutcome = (o) => outcomes[i]?.push(o)));
    let device: MqttClient | undefined;
    try {
      for (const w of workers) await w.start();
      expect(workers[0]?.subscription).toBe('$share/ingest/medge/v1/+/+/up/+');
      device = connect(broker.url, { protocolVersion: 4, clientId: 'publisher', clean: true });
      const acks: string[] = [];
      device.on('message', (_topic, payload) => {
        const ack = decodeAck(payload);
        acks.push(`${ack.deviceId}/${ack.upToSeq}`);
      });
      await new Promise<void>((resolve, reject) => device?.on('connect', () => device?.subscribe('medge/v1/+/+/down/ack', { qos: 1 }, (e) => (e ? reject(e) : resolve()))));
      for (let b = 0; b < BATCHES; b++) {
        for (const deviceId of DEVICES) {
          const payload = buildBatch({ deviceId, bootId: `boot-${deviceId}`, kind: 'reading', afterSeq: b * PER_BATCH, ackedUpTo: 0, records: records(deviceId, b * PER_BATCH + 1), sentMs: 0 });
          await device.publishAsync(upTopic(SITE, deviceId, 'reading'), Buffer.from(payload), { qos: 1 });
        }
      }
      const total = BATCHES * DEVICES.length;
      await waitFor(() => acks.length >= total, 'an ack for every batch', 30_000);
      // Let a second delivery, if any, arrive.
      await new Promise((r) => setTimeout(r, 500));
      const handled = outcomes.map((o) => o.length);
      // Each message to one worker: both got some, none got one twice.
      expect(handled[0]).toBeGreaterThan(0);
      expect(handled[1]).toBeGreaterThan(0);
      expect((handled[0] ?? 0) + (handled[1] ?? 0)).toBe(total);
      expect(outcomes.flat().every((o) => o.ok)).toBe(true);
      expect(acks).toHaveLength(total);
      const stats = readEdgeStats(dataDir);
      expect(stats.rejected).toEqual({});
      for (const deviceId of DEVICES) {
        expect(stats.devices[deviceId]).toEqual({ reading: BATCHES * PER_BATCH });
        const audit = workers[0]?.store.audit(deviceId).reading;
        expect(audit).toEqual({ stored: BATCHES * PER_BATCH, minSeq: 1, maxSeq: BATCHES * PER_BATCH, duplicateBodies: 0 });
      }
      // Every batch's ack says the whole run up to it: the last ack of each device covers all its records.
      for (const deviceId of DEVICES) expect(acks).toContain(`${deviceId}/${BATCHES * PER_BATCH}`);
    } finally {
      await device?.endAsync(true);
      for (const w of workers) await w.stop();
      await broker.dispose();
    }
  }, 60_000);
});
