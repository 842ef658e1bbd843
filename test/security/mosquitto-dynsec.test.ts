/**
 * Mosquitto 2.0 with its dynamic security plugin (`medge edge mosquitto-config --dynsec`) and an ingest that
 * blocks revoked and expired devices (`EdgeNode { dynsec: true }`, `edge/mosquitto-dynsec.ts`). Without the
 * plugin a connected device stays connected past its certificate's revocation or expiry
 * (`mosquitto-open-connections.test.ts`); here its connection is closed within seconds, without SIGHUP or
 * restart, other devices stay connected, and what it reconnects with carries nothing until the operator's
 * SIGHUP makes Mosquitto refuse its handshake. A device re-provisioned afterwards is let through again.
 */
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../device-sdk/records.js';
import { encodeBody } from '../../device-sdk/proto/index.js';
import { initCaDir, provisionDevice, readEdgeTls, readSiteCa, revokeDevice } from '../../device-sdk/security/pki.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { downTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { SYNC_ACCESS_REFUSED, SYNC_BATCHES_REFUSED, Uplink } from '../../device-sdk/sync/uplink.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { DYNSEC_FILE, mosquittoAclText, writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { DYNSEC_BLOCKED_ROLE, DYNSEC_PLUGIN_PATHS } from '../../edge/mosquitto-dynsec.js';
import { medge } from '../helpers/cli.js';
import { findMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { startConfiguredMosquitto, THREE_DEVICES, threeConnectedDevices } from './configured-mosquitto.js';
import { end, publish, readingBatch, subscribe, tlsOptions, tryConnect } from './probe.js';

const SITE = 'ward-dyn';
const mosquitto = findMosquitto();
const dir = mkdtempSync(join(tmpdir(), 'medge-mq-dynsec-'));
chmodSync(dir, 0o755); // Mosquitto reads its files as user mosquitto after dropping root
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Debian and Ubuntu ship the plugin in the mosquitto package (2.0 and later).
const pluginFound = DYNSEC_PLUGIN_PATHS.some((path) => existsSync(path));
describe.skipIf(!systemAvailable('mosquitto with its dynamic security plugin', mosquitto !== undefined && pluginFound, 'mosquitto'))('Mosquitto 2.0 with the dynamic security plugin: revoked and expired devices are disconnected', () => {
  it('writes the plugin lines, the blocked role and the ingest grant; the ACL-file mode is unchanged without dynsec', async () => {
    const caDir = join(dir, 'ca-text');
    await initCaDir(caDir, { site: SITE });
    const plain = writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'text-plain', 'mosquitto.conf') });
    expect(readFileSync(plain.config, 'utf8')).not.toContain('plugin');
    expect(mosquittoAclText(SITE)).not.toContain('$CONTROL');
    const written = writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'text-dynsec', 'mosquitto.conf'), dynsec: true });
    const conf = readFileSync(written.config, 'utf8');
    expect(conf).toMatch(/^plugin .*mosquitto_dynamic_security\.so$/m);
    expect(conf).toContain(`plugin_opt_config_file ${join(dir, 'text-dynsec', DYNSEC_FILE)}`);
    const acl = mosquittoAclText(SITE, true);
    // A grant of the ingest user (after its `user` line), not a pattern every device gets.
    expect(acl.indexOf('\ntopic readwrite $CONTROL/dynamic-security/#\n')).toBeGreaterThan(acl.indexOf('\nuser medge-edge-ingest\n'));
    expect(acl.indexOf('\nuser medge-edge-ingest\n')).toBeGreaterThan(0);
    expect(acl.replace(/^.*\$CONTROL.*\n/gm, '').replace(/^#.*\n/gm, '')).toBe(mosquittoAclText(SITE).replace(/^#.*\n/gm, ''));
    const dynsec = JSON.parse(readFileSync(join(dir, 'text-dynsec', DYNSEC_FILE), 'utf8')) as { clients: unknown[]; roles: { rolename: string }[] };
    expect(dynsec.clients).toEqual([]);
    expect(dynsec.roles.map((r) => r.rolename)).toEqual([DYNSEC_BLOCKED_ROLE]);
    // The plugin's file is the broker's: a rerun (after a revocation) keeps what the plugin wrote there.
    writeFileSync(join(dir, 'text-dynsec', DYNSEC_FILE), '{"kept":true}');
    if (process.getuid?.() === 0) chownSync(join(dir, 'text-dynsec', DYNSEC_FILE), 0, 0);
    chmodSync(join(dir, 'text-dynsec', DYNSEC_FILE), 0o644);
    const rerun = writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'text-dynsec', 'mosquitto.conf'), dynsec: true });
    expect(readFileSync(join(dir, 'text-dynsec', DYNSEC_FILE), 'utf8')).toBe('{"kept":true}');
    // Kept, but handed back to the user Mosquitto runs as (QA: a root-owned 0644 file, so the plugin could not save blocks).
    const file = statSync(join(dir, 'text-dynsec', DYNSEC_FILE));
    const mosquittoUid = statSync(join(dir, 'text-dynsec', 'medge-server.key')).uid;
    if (process.getuid?.() === 0 && mosquittoUid !== 0) {
      expect([file.uid, file.mode & 0o777]).toEqual([mosquittoUid, 0o600]);
    } else {
      expect(rerun.warnings.some((w) => w.includes(DYNSEC_FILE))).toBe(file.uid !== process.getuid?.());
    }
    expect(() => writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'text-bad', 'mosquitto.conf'), dynsec: true, dynsecPlugin: join(dir, 'none.so') })).toThrow(
      expect.objectContaining({ code: 'mosquitto-config', field: 'dynsecPlugin' }),
    );
    // The CLI: `mosquitto-config --dynsec`, and `medge edge --dynsec` only in front of an external broker with --tls.
    const cli = await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', join(dir, 'text-cli', 'mosquitto.conf'), '--dynsec']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(DYNSEC_FILE);
    expect(readFileSync(join(dir, 'text-cli', 'mosquitto.conf'), 'utf8')).toMatch(/^plugin_opt_config_file /m);
    const noBroker = await medge(['edge', '--data', join(dir, 'text-edge'), '--tls', caDir, '--dynsec']);
    expect(noBroker.code).toBe(2);
    expect(noBroker.stderr).toContain('--dynsec needs --broker');
    expect(() => new EdgeNode({ dataDir: join(dir, 'text-edge'), tls: readEdgeTls(caDir), dynsec: true })).toThrow(expect.objectContaining({ code: 'config', field: 'dynsec' }));
  });

  it('tells a connected board why before its connection is closed: the real uplink raises sync-batches-refused (certificate-revoked)', async () => {
    // Before: the kick came first and the reconnect's subscription was refused (SUBACK 128), so the board never read a
    // refusal; QA measured no alert in 15 s and a silent reconnect every <= 30 s.
    const caDir = join(dir, 'ca-board');
    const devices = join(dir, 'ca-board-devices');
    await initCaDir(caDir, { site: SITE });
    await provisionDevice(caDir, { deviceId: 'dev-board', site: SITE, outDir: devices });
    const broker = await startConfiguredMosquitto(dir, caDir, 'ca-board-broker', { dynsec: true });
    const edge = new EdgeNode({ dataDir: join(dir, 'ca-board-edge'), brokerUrl: broker.url, tls: readEdgeTls(caDir), dynsec: true });
    const store = new SqliteOutboxStore(join(dir, 'ca-board-ledger.sqlite'), { deviceId: 'dev-board' });
    const uplink = new Uplink(store, {
      url: broker.url,
      site: SITE,
      mqtt: { ca: readSiteCa(caDir).certPem, cert: readFileSync(join(devices, 'dev-board.crt'), 'utf8'), key: readFileSync(join(devices, 'dev-board.key'), 'utf8'), rejectUnauthorized: true },
      batchMaxRecords: 10,
      ackTimeoutMs: 500,
      backoff: { initialMs: 50, maxMs: 5_000 },
    });
    const T0 = 1_700_000_000_000;
    const readings = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'reading' as const, tMs: T0 + from + i, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: T0 + from + i }) }));
    const alerts: (Alert & { at: number })[] = [];
    uplink.on('alert', (a) => alerts.push({ ...a, at: Date.now() }));
    let lostAt: number | undefined;
    try {
      await edge.start();
      store.append(readings(0, 5));
      uplink.start();
      await waitFor(() => store.stats().reading.pending === 0, 'the first readings delivered');
      uplink.on('state', (state) => {
        if (state !== 'connected') lostAt ??= Date.now();
      });
      const revokedAt = Date.now();
      await revokeDevice(caDir, 'dev-board');
      await waitFor(() => lostAt !== undefined, 'the board disconnected', 5_000);
      await waitFor(() => alerts.length > 0, 'the sync-batches-refused alert', 5_000);
      const alert = alerts[0] as Alert & { at: number };
      process.stdout.write(`mosquitto-dynsec: board alerted ${alert.at - revokedAt} ms and disconnected ${(lostAt as number) - revokedAt} ms after revokeDevice\n`);
      expect(alert).toMatchObject({ kind: SYNC_BATCHES_REFUSED, severity: 2 });
      expect(alert.message).toContain('reason: certificate-revoked');
      expect(alert.message).toContain('re-provision it');
      // Told while still connected, then disconnected; its records stay on the board.
      expect(alert.at).toBeLessThanOrEqual(lostAt as number);
      expect(uplink.refused.reading).toBe('certificate-revoked');
      store.append(readings(5, 5));
      await new Promise((r) => setTimeout(r, 1_000));
      expect(store.stats().reading.pending).toBe(5);
      expect(alerts).toHaveLength(1);
    } finally {
      await uplink.stop();
      store.close();
      await edge.stop();
      await broker.stop();
    }
  }, 30_000);

  it('a board revoked while offline raises sync-access-refused on reconnect (its subscriptions refused); a valid board beside it never does', async () => {
    // Before (QA r2): 15 s after the board came back no alert, 12 "subscribe failed" reconnects, 0 warn/error logs; it
    // alerted (sync-certificate-refused) only after the operator's SIGHUP.
    const caDir = join(dir, 'ca-off');
    const devices = join(dir, 'ca-off-devices');
    await initCaDir(caDir, { site: SITE });
    await provisionDevice(caDir, { deviceId: 'dev-off', site: SITE, outDir: devices });
    await provisionDevice(caDir, { deviceId: 'dev-on', site: SITE, outDir: devices });
    const broker = await startConfiguredMosquitto(dir, caDir, 'ca-off-broker', { dynsec: true });
    const edge = new EdgeNode({ dataDir: join(dir, 'ca-off-edge'), brokerUrl: broker.url, tls: readEdgeTls(caDir), dynsec: true });
    const T0 = 1_700_000_000_000;
    const readings = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'reading' as const, tMs: T0 + from + i, body: encodeBody('reading', { sensor: 'glucose', type: 'glucose', value: 90, unit: 'mg/dL', tDevice: T0 + from + i }) }));
    const board = (deviceId: string) => {
      const store = new SqliteOutboxStore(join(dir, `ca-off-${deviceId}.sqlite`), { deviceId });
      const lines: { level: number; msg: string; subackCode?: number }[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
      const uplink = new Uplink(store, {
        url: broker.url,
        site: SITE,
        mqtt: { ca: readSiteCa(caDir).certPem, cert: readFileSync(join(devices, `${deviceId}.crt`), 'utf8'), key: readFileSync(join(devices, `${deviceId}.key`), 'utf8'), rejectUnauthorized: true },
        batchMaxRecords: 10,
        ackTimeoutMs: 500,
        backoff: { initialMs: 50, maxMs: 5_000 },
        logger,
      });
      const alerts: (Alert & { at: number })[] = [];
      uplink.on('alert', (a) => alerts.push({ ...a, at: Date.now() }));
      const cycles = () => lines.filter((l) => l.msg === 'uplink lost, backing off').length;
      return { store, uplink, alerts, lines, cycles };
    };
    const off = board('dev-off');
    const on = board('dev-on');
    try {
      await edge.start();
      for (const b of [off, on]) {
        b.store.append(readings(0, 5));
        b.uplink.start();
      }
      await waitFor(() => off.store.stats().reading.pending === 0 && on.store.stats().reading.pending === 0, 'the first readings delivered');
      // Powered off, then revoked and blocked: it never reads the edge's refusal notice.
      await off.uplink.stop();
      await revokeDevice(caDir, 'dev-off');
      await waitFor(() => edge.deviceBlocker?.blocked.has('dev-off') === true, 'dev-off blocked', 8_000);
      off.store.append(readings(5, 5));
      const backAt = Date.now();
      off.uplink.start();
      await waitFor(() => off.alerts.length > 0, 'the sync-access-refused alert', 10_000);
      const alert = off.alerts[0] as Alert & { at: number };
      process.stdout.write(`mosquitto-dynsec: board revoked while offline alerted ${alert.at - backAt} ms after it came back, ${off.cycles()} reconnects\n`);
      expect(alert).toMatchObject({ kind: SYNC_ACCESS_REFUSED, severity: 2 });
      expect(alert.message).toContain('certificate may have been revoked');
      expect(off.lines.find((l) => l.level >= 50)).toMatchObject({ subackCode: 128 });
      // Then slow reconnects on the 5 s ceiling (before: 12 in 15 s), one alert, the records on the board.
      const before = off.cycles();
      await new Promise((r) => setTimeout(r, 6_000));
      expect(off.cycles() - before).toBeLessThanOrEqual(2);
      expect(off.alerts).toHaveLength(1);
      expect(off.store.stats().reading.pending).toBe(5);
      // The valid board never raised anything and still delivers.
      on.store.append(readings(5, 5));
      await waitFor(() => on.store.stats().reading.pending === 0, 'dev-on still delivers');
      expect(on.alerts).toEqual([]);
      expect(on.lines.filter((l) => l.subackCode !== undefined)).toEqual([]);
    } finally {
      await off.uplink.stop();
      await on.uplink.stop();
      off.store.close();
      on.store.close();
      await edge.stop();
      await broker.stop();
    }
  }, 45_000);

  it('warns once, naming the fix, when the broker has no dynamic security plugin (configured without --dynsec)', async () => {
    const caDir = join(dir, 'ca-plain');
    await initCaDir(caDir, { site: SITE });
    const broker = await startConfiguredMosquitto(dir, caDir, 'ca-plain-broker');
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const edge = new EdgeNode({ dataDir: join(dir, 'ca-plain-edge'), brokerUrl: broker.url, tls: readEdgeTls(caDir), dynsec: true, logger });
    try {
      await edge.start();
      expect(edge.deviceBlocker?.plugin).toBe('unknown');
      // Before: info logs only, nothing said about the missing plugin.
      await waitFor(() => edge.deviceBlocker?.plugin === 'silent', 'the plugin reported silent', 8_000);
      await new Promise((r) => setTimeout(r, 1_500));
      // The one warning: none about the fresh CA directory's missing issued/ either (before: one a second).
      const warnings = lines.filter((l) => l.level >= 40);
      expect(warnings.map((l) => l.msg)).toEqual([expect.stringContaining('medge edge mosquitto-config --tls CADIR --out FILE --dynsec and restart Mosquitto')]);
    } finally {
      await edge.stop();
      await broker.stop();
    }
  }, 30_000);

  it('closes a revoked and an expired device within seconds without SIGHUP, their reconnects carry nothing, others deliver; a re-provisioned device is let back', async () => {
    // dev-exp's certificate expires 5 s from now.
    const { caDir, caPem, identity, short, notAfterMs, broker, edge, clients, stored, close } = await threeConnectedDevices(dir, SITE, { caName: 'ca', expiresInMs: 5_000, dynsec: true });
    const { url } = broker;
    try {
      const ids = THREE_DEVICES;
      const closedAt: Partial<Record<keyof typeof ids, number>> = {};
      for (const key of Object.keys(ids) as (keyof typeof ids)[]) {
        clients[key].on('close', () => (closedAt[key] ??= Date.now()));
      }

      // Revocation: no config rewrite, no SIGHUP. (Before: the connection stayed open.)
      const revokedAt = Date.now();
      await revokeDevice(caDir, 'dev-rev');
      await waitFor(() => closedAt.rev !== undefined, 'the revoked device disconnected', 5_000).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${broker.log()}`);
      });
      process.stdout.write(`mosquitto-dynsec: revoked device disconnected ${(closedAt.rev as number) - revokedAt} ms after revokeDevice\n`);
      await waitFor(() => closedAt.exp !== undefined, 'the expired device disconnected', Math.max(0, notAfterMs - Date.now()) + 5_000);
      process.stdout.write(`mosquitto-dynsec: expired device disconnected ${(closedAt.exp as number) - notAfterMs} ms after notAfter\n`);
      // The plugin's answers confirm both blocks (they may arrive after the kick).
      await waitFor(() => edge.deviceBlocker?.blocked.size === 2, 'both blocks confirmed', 5_000);
      expect(edge.deviceBlocker?.blocked).toEqual(new Set(['dev-rev', 'dev-exp']));

      // The valid device stayed connected and delivers.
      expect(closedAt.ok).toBeUndefined();
      expect(clients.ok.connected).toBe(true);
      expect(await publish(clients.ok, upTopic(SITE, 'dev-ok', 'reading'), readingBatch('dev-ok', 3, 3))).toBe('acked');
      await waitFor(() => stored('dev-ok') === 6, 'dev-ok still delivers');

      // Before the operator's SIGHUP Mosquitto still holds the old CRL: the revoked device's TLS handshake and
      // CONNECT succeed (Mosquitto never asks the plugin to authenticate a certificate identity), but the
      // blocked role denies its publishes: nothing reaches the ingest, not even to be refused (no auth counted).
      const auth = edge.store.stats().rejected.auth ?? 0;
      const again = await tryConnect(url, tlsOptions(caPem, identity('dev-rev')));
      expect(again.connected).toBe(true);
      if (again.connected) {
        // Its subscription is refused outright (the ACL file alone grants every subscription and filters at delivery).
        expect(await subscribe(again.client, `${downTopic(SITE, 'dev-rev', 'ack').replace(/\/ack$/, '')}/#`)).toEqual([128]);
        await publish(again.client, upTopic(SITE, 'dev-rev', 'reading'), readingBatch('dev-rev', 3, 3));
        expect(await publish(clients.ok, upTopic(SITE, 'dev-ok', 'reading'), readingBatch('dev-ok', 3, 6))).toBe('acked');
        await waitFor(() => stored('dev-ok') === 9, 'dev-ok delivers after the blocked publish');
        await end(again.client);
      }
      expect(stored('dev-rev')).toBe(3);
      expect(stored('dev-exp')).toBe(3);
      expect(edge.store.stats().rejected.auth ?? 0).toBe(auth);
      // The expired certificate is refused at the handshake; the revoked one too once Mosquitto rereads the CRL.
      expect((await tryConnect(url, tlsOptions(caPem, short))).connected).toBe(false);
      broker.reload();
      await new Promise((r) => setTimeout(r, 500));
      expect((await tryConnect(url, tlsOptions(caPem, identity('dev-rev')))).connected, broker.log()).toBe(false);
      // The plugin kept the blocks in its file (owned by the user Mosquitto runs as), for a broker restart.
      const saved = JSON.parse(readFileSync(join(dir, 'ca-broker', DYNSEC_FILE), 'utf8')) as { clients: { username: string; disabled?: boolean }[] };
      expect(saved.clients.map((c) => c.username).sort()).toEqual(['dev-exp', 'dev-rev']);

      // Re-provisioned with a new certificate: the ingest takes it out of the plugin and it delivers again.
      const devices2 = join(dir, 'ca-devices-2');
      await provisionDevice(caDir, { deviceId: 'dev-rev', site: SITE, outDir: devices2 });
      await waitFor(() => !edge.deviceBlocker?.blocked.has('dev-rev'), 'dev-rev unblocked', 5_000);
      const back = await tryConnect(url, tlsOptions(caPem, identity('dev-rev', devices2)));
      if (!back.connected) throw new Error(`re-provisioned device could not connect: ${back.error}\n${broker.log()}`);
      expect(await publish(back.client, upTopic(SITE, 'dev-rev', 'reading'), readingBatch('dev-rev', 3, 3))).toBe('acked');
      await waitFor(() => stored('dev-rev') === 6, 'the re-provisioned device delivers');
      await end(back.client);
      await end(clients.ok);
    } finally {
      await close();
    }
  }, 60_000);
});
