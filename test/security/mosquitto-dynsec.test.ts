/**
 * Mosquitto 2.0 with its dynamic security plugin (`medge edge mosquitto-config --dynsec`) and an ingest that
 * blocks revoked and expired devices (`EdgeNode { dynsec: true }`, `edge/mosquitto-dynsec.ts`). Without the
 * plugin a connected device stays connected past its certificate's revocation or expiry
 * (`mosquitto-open-connections.test.ts`); here its connection is closed within seconds, without SIGHUP or
 * restart, other devices stay connected, and what it reconnects with carries nothing until the operator's
 * SIGHUP makes Mosquitto refuse its handshake. A device re-provisioned afterwards is let through again.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCaDir, provisionDevice, revokeDevice } from '../../device-sdk/security/pki.js';
import { downTopic, upTopic } from '../../device-sdk/sync/topics.js';
import { DYNSEC_FILE, mosquittoAclText, writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { DYNSEC_BLOCKED_ROLE, DYNSEC_PLUGIN_PATHS } from '../../edge/mosquitto-dynsec.js';
import { medge } from '../helpers/cli.js';
import { findMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';
import { THREE_DEVICES, threeConnectedDevices } from './configured-mosquitto.js';
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
    writeMosquittoConfig({ tlsDir: caDir, out: join(dir, 'text-dynsec', 'mosquitto.conf'), dynsec: true });
    expect(readFileSync(join(dir, 'text-dynsec', DYNSEC_FILE), 'utf8')).toBe('{"kept":true}');
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
  });

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
