/**
 * A real Mosquitto started with the config `medge edge mosquitto-config` writes for a CA directory, for the
 * suites about what Mosquitto does with certificates (revocation, expiry, the dynamic security plugin).
 */
import type { MqttClient } from 'mqtt';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CertifiedKey, initCaDir, issueDeviceCert, provisionDevice, readEdgeTls, readSiteCa } from '../../device-sdk/security/pki.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { findMosquitto, freePort } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { publish, readingBatch, tlsOptions, tryConnect } from './probe.js';

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Mosquitto on a free port with the config written for `caDir` into `dir/brokerDir` (`dir` must be
 * traversable by user mosquitto), listening. `dynsec`: the dynamic security plugin too.
 */
export async function startConfiguredMosquitto(dir: string, caDir: string, brokerDir: string, options: { dynsec?: boolean } = {}) {
  const mosquitto = findMosquitto();
  if (mosquitto === undefined) throw new Error('mosquitto is not installed');
  const port = await freePort();
  const conf = join(dir, brokerDir, 'mosquitto.conf');
  const write = () => writeMosquittoConfig({ tlsDir: caDir, out: conf, port, host: '127.0.0.1', ...(options.dynsec === true ? { dynsec: true } : {}) });
  write();
  chmodSync(join(dir, brokerDir), 0o755);
  let log = '';
  const proc: ChildProcess = spawn(mosquitto, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  const broker = {
    port,
    conf,
    proc,
    url: `mqtts://127.0.0.1:${port}`,
    log: () => log,
    /** Rewrites the config (the new CRL) and makes Mosquitto reread it, as an operator does after `medge ca revoke`. */
    reload: () => {
      write();
      proc.kill('SIGHUP');
    },
    stop: async () => {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    },
  };
  await waitFor(() => listening(port), 'mosquitto to listen', 10_000, 50).catch((error: unknown) => {
    proc.kill('SIGTERM');
    throw new Error(`${(error as Error).message}\n${log}`);
  });
  return broker;
}

const DAY_MS = 86_400_000;
/** The three devices of `threeConnectedDevices`: one to revoke, one whose certificate expires, one that stays valid. */
export const THREE_DEVICES = Object.freeze({ rev: 'dev-rev', exp: 'dev-exp', ok: 'dev-ok' });
type DeviceKey = keyof typeof THREE_DEVICES;

/**
 * A CA directory for `site` in `dir/caName` with dev-rev and dev-ok provisioned and dev-exp issued a certificate
 * that expires `expiresInMs` from now; Mosquitto configured for it, an edge ingest behind it, the three devices
 * connected and each with a first batch of 3 readings stored. `close()` stops the edge and the broker.
 */
export async function threeConnectedDevices(dir: string, site: string, options: { caName: string; expiresInMs: number; dynsec?: boolean }) {
  const caDir = join(dir, options.caName);
  const devices = join(dir, `${options.caName}-devices`);
  await initCaDir(caDir, { site });
  for (const deviceId of [THREE_DEVICES.rev, THREE_DEVICES.ok]) await provisionDevice(caDir, { deviceId, site, outDir: devices });
  const identity = (id: string, from = devices): CertifiedKey => ({ certPem: readFileSync(join(from, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(from, `${id}.key`), 'utf8') });
  const caPem = readSiteCa(caDir).certPem;
  // Recorded as issued, as `medge provision` records it.
  const short = await issueDeviceCert(readSiteCa(caDir), { deviceId: THREE_DEVICES.exp, site, validDays: 1, notBefore: new Date(Date.now() + options.expiresInMs - DAY_MS) });
  writeFileSync(join(caDir, 'issued', `${THREE_DEVICES.exp}.crt`), short.certPem);
  const notAfterMs = Date.parse(new X509Certificate(short.certPem).validTo);
  const dynsec = options.dynsec === true;
  const broker = await startConfiguredMosquitto(dir, caDir, `${options.caName}-broker`, { dynsec });
  const edge = new EdgeNode({ dataDir: join(dir, `${options.caName}-edge`), brokerUrl: broker.url, tls: readEdgeTls(caDir), dynsec });
  const close = async () => {
    await edge.stop();
    await broker.stop();
  };
  try {
    await edge.start();
    const stored = (id: string) => edge.store.stats().devices[id]?.reading ?? 0;
    const clients = {} as Record<DeviceKey, MqttClient>;
    for (const [key, id] of Object.entries(THREE_DEVICES) as [DeviceKey, string][]) {
      const c = await tryConnect(broker.url, tlsOptions(caPem, key === 'exp' ? short : identity(id)));
      if (!c.connected) throw new Error(`${id} could not connect: ${c.error}\n${broker.log()}`);
      clients[key] = c.client;
      expect(await publish(c.client, upTopic(site, id, 'reading'), readingBatch(id, 3, 0))).toBe('acked');
    }
    await waitFor(() => Object.values(THREE_DEVICES).every((id) => stored(id) === 3), 'the first batches stored');
    return { caDir, caPem, identity, short, notAfterMs, broker, edge, clients, stored, close };
  } catch (error) {
    await close();
    throw error;
  }
}
