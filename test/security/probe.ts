/**
 * Adversarial MQTT clients for the security suites: raw MQTT.js connections with chosen TLS
 * material, client ids and usernames, and forged batches that the edge would store if a broker let
 * them through (the batch names the victim device, as its own uplink would).
 */
import { type IClientOptions, type ISubscriptionGrant, type MqttClient, connect as mqttConnect } from 'mqtt';
import { writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import type { CertifiedKey } from '../../device-sdk/security/pki.js';
import { buildBatch } from '../../device-sdk/sync/batch.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import type { EdgeNode } from '../../edge/edge-node.js';
import type { RuntimeConfigInput } from '../../firmware/config.js';
import { medgeBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

export type ConnectOutcome = { connected: true; client: MqttClient } | { connected: false; error: string };

/**
 * Connects once (no reconnection). Resolves when the broker accepts the MQTT session, or with the
 * reason when the TLS handshake or CONNECT is refused or the connection closes first.
 */
export function tryConnect(url: string, options: Partial<IClientOptions>, timeoutMs = 5_000): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const client = mqttConnect(url, { protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs, ...options });
    let done = false;
    const finish = (outcome: ConnectOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!outcome.connected) {
        client.removeAllListeners();
        client.on('error', () => undefined);
        client.end(true);
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ connected: false, error: 'timeout' }), timeoutMs + 1_000);
    client.once('connect', () => finish({ connected: true, client }));
    client.once('error', (error: Error & { code?: string | number }) => finish({ connected: false, error: `${error.code ?? ''} ${error.message}`.trim() }));
    client.once('close', () => finish({ connected: false, error: 'closed before CONNACK' }));
  });
}

/** MQTT.js TLS options for an identity issued by `ca`. */
export function tlsOptions(caPem: string, identity?: CertifiedKey): Partial<IClientOptions> {
  return { ca: caPem, rejectUnauthorized: true, ...(identity ? { cert: identity.certPem, key: identity.keyPem } : {}) };
}

/** Subscribes at QoS 1 and resolves with the granted QoS per topic as the SUBACK gives it (128: refused). */
export function subscribe(client: MqttClient, topic: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      // MQTT.js reports a SUBACK with a failure code as an error that carries the packet.
      const suback = (error as (Error & { packet?: { granted?: (number | object)[] } }) | null)?.packet?.granted;
      if (suback) resolve(suback.map((g) => (typeof g === 'number' ? g : -1)));
      else if (error) reject(error);
      else resolve((granted ?? []).map((g: ISubscriptionGrant) => g.qos));
    });
  });
}

/** Publishes at QoS 1; resolves `acked` on PUBACK, `closed` when the broker drops the connection instead. */
export function publish(client: MqttClient, topic: string, payload: Uint8Array, options: { retain?: boolean } = {}): Promise<'acked' | 'closed'> {
  return new Promise((resolve) => {
    const onClose = () => resolve('closed');
    client.once('close', onClose);
    client.publish(topic, Buffer.from(payload), { qos: 1, retain: options.retain ?? false }, (error) => {
      client.off('close', onClose);
      resolve(error ? 'closed' : 'acked');
    });
  });
}

/** A valid batch of `count` readings from `deviceId`, seq 1..count. */
export function readingBatch(deviceId: string, count = 3, afterSeq = 0): Uint8Array {
  const records = Array.from({ length: count }, (_, i) => {
    const seq = afterSeq + i + 1;
    const t = 1_700_000_000_000 + seq;
    return { seq, bootId: 'boot-probe', tMs: t, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 100 + seq, unit: 'mg/dL', tDevice: t }) };
  });
  return buildBatch({ deviceId, bootId: 'boot-probe', kind: 'reading', afterSeq, ackedUpTo: afterSeq, records, sentMs: Date.now() });
}

/** Asserts that `deviceId`'s open connection is up and that a batch of 2 readings it publishes is stored (its first). */
export async function expectStillDelivers(edge: EdgeNode, client: MqttClient, site: string, deviceId: string): Promise<void> {
  expect(client.connected).toBe(true);
  expect(await publish(client, upTopic(site, deviceId, 'reading'), readingBatch(deviceId, 2, 0))).toBe('acked');
  await waitFor(() => (edge.store.stats().devices[deviceId]?.reading ?? 0) === 2, `${deviceId} still delivers`);
}

export async function end(client: MqttClient | undefined): Promise<void> {
  if (client) await client.endAsync(true).catch(() => undefined);
}

/**
 * Runs `medge run --config FILE` with `config` (written to FILE) until `stored()` holds, then stops
 * it and expects a clean exit; on a timeout the runtime's output goes to stderr.
 */
export async function runRuntimeUntil(file: string, config: RuntimeConfigInput, stored: () => boolean, what: string): Promise<void> {
  writeFileSync(file, JSON.stringify(config));
  const runtime = medgeBackground(['run', '--config', file]);
  try {
    await waitFor(stored, what, 20_000);
  } catch (error) {
    process.stderr.write(`runtime output:\n${runtime.output().slice(-3000)}\n`);
    throw error;
  } finally {
    expect(await runtime.stop()).toBe(0);
  }
}
