/**
 * Ingest workers on a shared subscription with mutual TLS, against a real Mosquitto 2.0 configured by `medge edge
 * mosquitto-config`: each worker connects with its own certificate (`medge ca ingest-workers`, CN
 * `medge-edge-ingest-<n>`), which Mosquitto makes its username and client id, so the workers never evict each other.
 * Devices are real `Uplink`s on SQLite ledgers with their own device certificates; they resend what is not acked.
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { type CertifiedKey, initCaDir, issueIngestWorkers, PkiError, provisionDevice, readEdgeTls, readSiteCa } from '../../device-sdk/security/pki.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { upTopic } from '../../device-sdk/sync/topics.js';
import { Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { EdgeStore, readEdgeStats } from '../../edge/edge-store.js';
import { IngestIdentityInUseError } from '../../edge/ingest-identity-lock.js';
import { MosquittoConfigError, writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { medge, medgeBackground } from '../helpers/cli.js';
import { findMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { startConfiguredMosquitto } from '../security/configured-mosquitto.js';
import { end, publish, readingBatch, subscribe, tlsOptions, tryConnect } from '../security/probe.js';

const available = systemAvailable('mosquitto', findMosquitto() !== undefined, 'mosquitto');
const SITE = 'region-7';
const GROUP = 'ingest';
const DEVICES = ['pump-1', 'pump-2', 'pump-3'];
/** Records each device appends per round, and rounds; worker 2 is killed after KILL_AFTER rounds. */
const PER_ROUND = 10;
const ROUNDS = 60;
const KILL_AFTER = 30;

function readings(from: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const t = 1_700_000_000_000 + (from + i) * 1000;
    return { kind: 'reading' as const, tMs: t, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 80 + ((from + i) % 50), unit: 'mg/dL', tDevice: t }) };
  });
}

/** Batches a worker's debug log says it committed (new records) and answered as replays, and the records committed. */
function workerShare(output: string): { committed: number; replayed: number; records: number } {
  let committed = 0;
  let replayed = 0;
  let records = 0;
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; inserted?: number };
    if (entry.msg === 'batch committed') {
      committed++;
      records += entry.inserted ?? 0;
    } else if (entry.msg === 'replayed batch') replayed++;
  }
  return { committed, replayed, records };
}

describe.skipIf(!available)('shared subscription with --tls on Mosquitto: one certificate per ingest worker (skipped: mosquitto not installed)', () => {
  let dir = '';
  let caDir = '';
  let devicesDir = '';
  let caPem = '';
  const identity = (id: string): CertifiedKey => ({ certPem: readFileSync(join(devicesDir, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(devicesDir, `${id}.key`), 'utf8') });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'medge-shared-tls-'));
    chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
    caDir = join(dir, 'ca');
    devicesDir = join(dir, 'devices');
    await initCaDir(caDir, { site: SITE });
    const issued = await issueIngestWorkers(caDir, { workers: 2 });
    expect(issued.map((w) => [w.identity, w.created])).toEqual([
      ['medge-edge-ingest-1', true],
      ['medge-edge-ingest-2', true],
    ]);
    // Asked again: kept, not reissued.
    expect((await issueIngestWorkers(caDir, { workers: 2 })).every((w) => !w.created)).toBe(true);
    for (const id of DEVICES) await provisionDevice(caDir, { deviceId: id, site: SITE, outDir: devicesDir });
    caPem = readSiteCa(caDir).certPem;
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a device id under an ingest name, and a Mosquitto config for a CA directory that issued one', async () => {
    // Shared workers on the one ingest certificate are refused: test/edge/shared-subscription.test.ts.
    for (const deviceId of ['medge-edge-ingest', 'medge-edge-ingest-1', 'medge-edge-ingest-3', 'medge-edge-ingest-x']) {
      await expect(provisionDevice(caDir, { deviceId, site: SITE, outDir: join(dir, 'impostors') })).rejects.toMatchObject({ reason: 'reserved-id' });
    }
    await expect(provisionDevice(caDir, { deviceId: 'medge-edge-ingest-1', site: SITE, outDir: join(dir, 'impostors') })).rejects.toBeInstanceOf(PkiError);
    // A CA directory that recorded a device under an ingest name (before the names were reserved) gets no Mosquitto config.
    const oldCa = join(dir, 'old-ca');
    await initCaDir(oldCa, { site: SITE });
    await provisionDevice(oldCa, { deviceId: 'pump-9', site: SITE, outDir: join(dir, 'old-devices') });
    copyFileSync(join(oldCa, 'issued', 'pump-9.crt'), join(oldCa, 'issued', 'medge-edge-ingest-2.crt'));
    expect(() => writeMosquittoConfig({ tlsDir: oldCa, out: join(dir, 'old-broker', 'mosquitto.conf') })).toThrow(MosquittoConfigError);
  }, 60_000);

  it('two medge edge --tls workers: both get work, every record stored once; after one is killed mid-run the other stores the rest once', async () => {
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-run');
    const dataDir = join(dir, 'edge-run');
    const worker = (n: number) =>
      medgeBackground(['edge', '--data', dataDir, '--broker', broker.url, '--tls', caDir, '--shared-subscription', GROUP, '--ingest-worker', String(n), '--log-level', 'debug']);
    const workers = [worker(1), worker(2)];
    const ledgers = DEVICES.map((id) => new SqliteOutboxStore(join(dir, `${id}-ledger.sqlite`), { deviceId: id }));
    // Batches the devices sent again after an ack timeout (those the killed worker took with it).
    let resent = 0;
    const deviceLog = pino({ level: 'warn' }, { write: (line: string) => void (resent += (JSON.parse(line) as { resent?: number }).resent ?? 0) });
    const uplinks = ledgers.map(
      (ledger) =>
        new Uplink(ledger, { url: broker.url, site: SITE, mqtt: tlsOptions(caPem, identity(ledger.deviceId)), batchMaxRecords: PER_ROUND, ackTimeoutMs: 1_500, backoff: { initialMs: 50, maxMs: 500 }, logger: deviceLog }),
    );
    try {
      for (const w of workers) await waitFor(() => w.output().includes('ingest worker ACL probe received'), 'a worker subscribed and its ACL probe back', 15_000);
      // One key, one group: every worker logs the same fingerprint of it.
      const fingerprints = workers.map((w) => /"groupFingerprint":"([0-9a-f]{8})"/.exec(w.output())?.[1]);
      expect(fingerprints[0]).toMatch(/^[0-9a-f]{8}$/);
      expect(fingerprints[1]).toBe(fingerprints[0]);
      for (const uplink of uplinks) uplink.start();
      let atKill: ReturnType<typeof workerShare>[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ledgers.forEach((ledger) => ledger.append(readings(round * PER_ROUND, PER_ROUND)));
        if (round === KILL_AFTER - 1) {
          // Both have had work before the kill.
          await waitFor(() => workers.every((w) => workerShare(w.output()).committed > 0), 'both workers committing', 15_000);
          atKill = workers.map((w) => workerShare(w.output()));
          workers[1]?.child.kill('SIGKILL');
        }
        await new Promise((resolve) => setTimeout(resolve, 30)); // devices producing over time, not a measurement
      }
      const total = ROUNDS * PER_ROUND;
      await waitFor(() => ledgers.every((ledger) => ledger.ackedUpTo('reading') === total), 'every record acknowledged', 60_000);
      expect(await workers[1]?.stop()).toBeNull(); // killed: no exit code
      expect(workers[1]?.child.signalCode).toBe('SIGKILL');
      const stats = readEdgeStats(dataDir);
      expect(stats.rejected).toEqual({});
      for (const id of DEVICES) expect(stats.devices[id]).toEqual({ reading: total });
      // Exactly once: every seq 1..total once, no record body twice.
      const store = new EdgeStore(dataDir);
      try {
        for (const id of DEVICES) expect(store.audit(id).reading).toEqual({ stored: total, minSeq: 1, maxSeq: total, duplicateBodies: 0 });
      } finally {
        store.close();
      }
      // Mosquitto never had to close an ingest's connection for another with its client id.
      expect(broker.log()).not.toMatch(/medge-edge-ingest-\d already connected/);
      expect(workers[0]?.child.exitCode).toBeNull(); // the survivor still runs
      // The kernel dropped the killed worker's identity lock: worker 2 starts again.
      const restarted = worker(2);
      workers.push(restarted);
      await waitFor(() => restarted.output().includes('edge ingest subscribed') || restarted.child.exitCode !== null, 'worker 2 restarted', 15_000);
      expect(restarted.output()).toContain('edge ingest subscribed');
      // Stopped (their logs flushed), the running workers' shares are complete; the killed one lost its unwritten log
      // lines, so its share is what the others did not store.
      for (const w of [workers[0], restarted]) expect(await w?.stop()).toBe(0);
      const [first, , again] = workers.map((w) => workerShare(w.output()));
      expect(atKill[0]?.committed).toBeGreaterThan(0);
      expect(atKill[1]?.committed).toBeGreaterThan(0);
      // The survivor took the work after the kill.
      expect(first?.committed).toBeGreaterThan(atKill[0]?.committed ?? 0);
      const killedRecords = DEVICES.length * total - (first?.records ?? 0) - (again?.records ?? 0);
      expect(killedRecords).toBeGreaterThanOrEqual(atKill[1]?.records ?? 0);
      // Figures for the report.
      process.stdout.write(
        `${JSON.stringify({ devices: DEVICES.length, recordsPerDevice: total, worker1: first, worker2Logged: workerShare(workers[1]?.output() ?? ''), worker2Records: killedRecords, atKill, restarted: again, resentBatches: resent })}\n`,
      );
    } finally {
      for (const uplink of uplinks) await uplink.stop();
      for (const ledger of ledgers) ledger.close();
      for (const w of workers) await w.stop();
      await broker.stop();
    }
  }, 120_000);

  it('a second ingest under a running identity is refused at start, before it connects; the first keeps its connection', async () => {
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-twice');
    const dataDir = join(dir, 'edge-twice');
    const first = new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 2 }), sharedSubscription: GROUP });
    const second = new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 2 }), sharedSubscription: GROUP });
    const other = new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 1 }), sharedSubscription: GROUP });
    let sender: Awaited<ReturnType<typeof tryConnect>> | undefined;
    try {
      await first.start();
      await expect(second.start()).rejects.toBeInstanceOf(IngestIdentityInUseError);
      await expect(second.start()).rejects.toMatchObject({ code: 'ingest-identity-in-use', identity: 'medge-edge-ingest-2' });
      // Another worker's identity is free; and a process (the CLI) is refused too, with exit status 1.
      await other.start();
      const cli = await medge(['edge', '--data', dataDir, '--broker', broker.url, '--tls', caDir, '--shared-subscription', GROUP, '--ingest-worker', '2']);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain(`process ${process.pid} already runs as ingest medge-edge-ingest-2 on this edge store`);
      sender = await tryConnect(broker.url, tlsOptions(caPem, identity('pump-2')));
      if (!sender.connected) throw new Error(`pump-2 could not connect: ${sender.error}`);
      for (let b = 0; b < 10; b++) expect(await publish(sender.client, upTopic(SITE, 'pump-2', 'reading'), readingBatch('pump-2', 5, b * 5))).toBe('acked');
      await waitFor(() => first.store.stats().devices['pump-2']?.reading === 50, 'the batches stored');
      expect(broker.log()).not.toMatch(/medge-edge-ingest-\d already connected/);
      // Stopped, the identity is free again.
      await first.stop();
      const again = new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 2 }), sharedSubscription: GROUP });
      await again.start();
      await again.stop();
    } finally {
      await end(sender?.connected ? sender.client : undefined);
      await first.stop().catch(() => undefined);
      await other.stop();
      await broker.stop();
    }
  }, 60_000);

  it('with --dynsec each worker commands the dynamic security plugin under its own identity', async () => {
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-dynsec', { dynsec: true });
    const dataDir = join(dir, 'edge-dynsec');
    const workers = [1, 2].map((n) => new EdgeNode({ dataDir, brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: n }), sharedSubscription: GROUP, dynsec: true }));
    try {
      for (const w of workers) await w.start();
      // Each asked the plugin what it holds at start and got the answer: its grant on $CONTROL/dynamic-security/# works.
      await waitFor(() => workers.every((w) => w.deviceBlocker?.plugin === 'answering'), 'the plugin to answer both workers', 10_000);
    } finally {
      for (const w of workers) await w.stop();
      await broker.stop();
    }
  }, 60_000);

  it('a device certificate cannot act as an ingest worker: no client id takeover, no uplink delivered to it', async () => {
    const broker = await startConfiguredMosquitto(dir, caDir, 'broker-rogue');
    const worker = new EdgeNode({ dataDir: join(dir, 'edge-rogue'), brokerUrl: broker.url, tls: readEdgeTls(caDir, { ingestWorker: 1 }), sharedSubscription: GROUP });
    const handled: string[] = [];
    worker.onOutcome = (o) => handled.push(o.ok ? 'ok' : o.reason);
    let rogue: Awaited<ReturnType<typeof tryConnect>> | undefined;
    let sender: Awaited<ReturnType<typeof tryConnect>> | undefined;
    try {
      await worker.start();
      expect(worker.ingestIdentity).toBe('medge-edge-ingest-1');
      expect(worker.subscription).toMatch(new RegExp(`^\\$share/${GROUP}-[0-9a-f]{32}/medge/v1/${SITE}/\\+/up/\\+$`));
      // pump-3 asks for worker 1's client id and username: Mosquitto takes both from its certificate (CN pump-3).
      rogue = await tryConnect(broker.url, { ...tlsOptions(caPem, identity('pump-3')), clientId: 'medge-edge-ingest-1', username: 'medge-edge-ingest-1' });
      if (!rogue.connected) throw new Error(`pump-3 could not connect: ${rogue.error}`);
      const received: string[] = [];
      rogue.client.on('message', (topic) => received.push(topic));
      const grants = [await subscribe(rogue.client, `$share/${GROUP}/medge/v1/${SITE}/+/up/+`), await subscribe(rogue.client, `medge/v1/${SITE}/+/up/+`)];
      sender = await tryConnect(broker.url, tlsOptions(caPem, identity('pump-1')));
      if (!sender.connected) throw new Error(`pump-1 could not connect: ${sender.error}`);
      const batches = 20;
      for (let b = 0; b < batches; b++) expect(await publish(sender.client, upTopic(SITE, 'pump-1', 'reading'), readingBatch('pump-1', 5, b * 5))).toBe('acked');
      // Every batch reaches the worker at its first sending. Before the group was keyed the rogue's $share/ingest/ took
      // every other one (measured: 10 of 20 handled, Mosquitto dropping those it routed to the rogue, whose ACL denies them).
      await waitFor(() => handled.length === batches, `the worker to handle all ${batches} batches`, 10_000);
      expect(handled.every((h) => h === 'ok')).toBe(true);
      expect(worker.store.stats().devices['pump-1']?.reading).toBe(batches * 5);
      // Mosquitto 2.0 grants the subscriptions (its ACL file does not check them) but delivers nothing to them.
      process.stdout.write(`${JSON.stringify({ rogueGrants: grants, rogueReceived: received.length, workerHandled: handled.length, batches })}\n`);
      expect(received).toEqual([]);
      expect(broker.log()).not.toMatch(/medge-edge-ingest-1 already connected/);
    } finally {
      await end(rogue?.connected ? rogue.client : undefined);
      await end(sender?.connected ? sender.client : undefined);
      await worker.stop();
      await broker.stop();
    }
  }, 60_000);
});
