/**
 * `medge ca init`, `medge provision` and `medge edge mosquitto-config` as an operator runs them:
 * files, modes, certificate subjects, exit codes, and what they refuse.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { medge } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'medge-pki-cli-'));
const caDir = join(dir, 'ca');
const out = join(dir, 'devices');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const mode = (path: string) => statSync(path).mode & 0o777;
const cert = (path: string) => new X509Certificate(readFileSync(path));

beforeAll(async () => {
  const r = await medge(['ca', 'init', '--dir', caDir, '--site', 'ward-1', '--host', 'edge.ward-1.example', '--host', '10.20.0.2', '--days', '1000']);
  expect(r.code, r.stderr).toBe(0);
});

describe('medge ca init', () => {
  it('writes the CA, the edge server and ingest certificates, keys 0600', () => {
    for (const key of ['ca.key', 'server.key', 'ingest.key']) expect(mode(join(caDir, key)), key).toBe(0o600);
    const ca = cert(join(caDir, 'ca.crt'));
    expect(ca.subject).toBe('CN=medge site ward-1 CA\nO=medge');
    expect(ca.ca).toBe(true);
    // --days counts from issuance; validity starts 90 days earlier (BACKDATE_MS: boards whose clock is behind).
    expect(Math.abs(new Date(ca.validTo).getTime() - Date.now() - 1000 * 86_400_000)).toBeLessThan(120_000);
    expect(Math.abs(new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime() - 1090 * 86_400_000)).toBeLessThanOrEqual(1_000);
    const server = cert(join(caDir, 'server.crt'));
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:edge.ward-1.example, IP Address:10.20.0.2');
    expect(cert(join(caDir, 'ingest.crt')).subject).toBe('CN=medge-edge-ingest\nO=ward-1\nOU=edge');
    expect(JSON.parse(readFileSync(join(caDir, 'site.json'), 'utf8'))).toMatchObject({ site: 'ward-1', hosts: ['edge.ward-1.example', '10.20.0.2'] });
  });

  it('refuses to overwrite an existing CA (exit 1, files untouched) and a bad site (exit 2)', async () => {
    const before = readFileSync(join(caDir, 'ca.key'), 'utf8');
    const [again, badSite, noSite] = await Promise.all([
      medge(['ca', 'init', '--dir', caDir, '--site', 'ward-1']),
      medge(['ca', 'init', '--dir', join(dir, 'ca-bad'), '--site', 'ward/1']),
      medge(['ca', 'init', '--dir', join(dir, 'ca-none')]),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');
    expect(readFileSync(join(caDir, 'ca.key'), 'utf8')).toBe(before);
    expect(badSite.code).toBe(2);
    expect(badSite.stderr).toContain('not a valid topic segment');
    expect(noSite.code).toBe(2);
    expect(noSite.stderr).toContain('Usage: medge ca init');
  });
});

describe('medge provision', () => {
  it('writes OUT/ID.key (0600), OUT/ID.crt (CN = ID, signed by the site CA) and OUT/ca.crt', async () => {
    const r = await medge(['provision', '--ca', caDir, '--site', 'ward-1', '--device', 'ecg_07.b', '--out', out, '--days', '30']);
    expect(r.code, r.stderr).toBe(0);
    expect(mode(join(out, 'ecg_07.b.key'))).toBe(0o600);
    const device = cert(join(out, 'ecg_07.b.crt'));
    const ca = cert(join(out, 'ca.crt'));
    expect(device.subject).toBe('CN=ecg_07.b\nO=ward-1\nOU=device');
    expect(device.checkIssued(ca) && device.verify(ca.publicKey)).toBe(true);
    expect(ca.fingerprint256).toBe(cert(join(caDir, 'ca.crt')).fingerprint256);
    expect(device.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(Math.abs(new Date(device.validTo).getTime() - Date.now() - 30 * 86_400_000)).toBeLessThan(120_000);
    expect(Math.abs(new Date(device.validTo).getTime() - new Date(device.validFrom).getTime() - 120 * 86_400_000)).toBeLessThanOrEqual(1_000);
  });

  it('refuses bad or reserved device ids and another site (exit 2), and re-provisioning (exit 1)', async () => {
    const run = (device: string, site = 'ward-1') => medge(['provision', '--ca', caDir, '--site', site, '--device', device, '--out', out]);
    // Every other invalid id (wildcards, empty, too long, non-ASCII) is refused the same way: pki.test.ts.
    const [slash, reserved, reservedWorker, otherSite, again] = await Promise.all([run('a/b'), run('medge-edge-ingest'), run('medge-edge-ingest-2'), run('dev-9', 'ward-2'), run('ecg_07.b')]);
    expect(slash.code).toBe(2);
    expect(slash.stderr).toContain('not a valid topic segment');
    for (const r of [reserved, reservedWorker]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('reserved');
    }
    expect(otherSite.code).toBe(2);
    expect(otherSite.stderr).toContain('does not match the site of the CA');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');
  });

  it('refuses a device certificate that would outlive the site CA (exit 2), and says how long it may be', async () => {
    // The CA is valid for 1000 days (beforeAll).
    const r = await medge(['provision', '--ca', caDir, '--site', 'ward-1', '--device', 'long-lived', '--out', out, '--days', '5000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/5000 days would outlive the site CA, which is valid until \d{4}-\d\d-\d\d: use --days (999|1000) or less/);
  });

  it("cuts the default validity to the CA's end under a CA with less time left than the default", async () => {
    const shortCa = join(dir, 'short-ca');
    expect((await medge(['ca', 'init', '--dir', shortCa, '--site', 'ward-9', '--days', '100'])).code).toBe(0);
    const r = await medge(['provision', '--ca', shortCa, '--site', 'ward-9', '--device', 'dev-1', '--out', join(dir, 'short-out')]);
    expect(r.code, r.stderr).toBe(0);
    expect(cert(join(dir, 'short-out', 'dev-1.crt')).validTo).toBe(cert(join(shortCa, 'ca.crt')).validTo);
  });
});

describe('medge ca ingest-workers', () => {
  it('issues one certificate per worker (CN medge-edge-ingest-<n>, OU=edge, key 0600) and the group key once, keeps what exists, and mosquitto-config grants each', async () => {
    const first = await medge(['ca', 'ingest-workers', '--ca', caDir, '--workers', '2']);
    expect(first.code, first.stderr).toBe(0);
    const ca = cert(join(caDir, 'ca.crt'));
    for (const n of [1, 2]) {
      expect(mode(join(caDir, `ingest-${n}.key`))).toBe(0o600);
      const worker = cert(join(caDir, `ingest-${n}.crt`));
      expect(worker.subject).toBe(`CN=medge-edge-ingest-${n}\nO=ward-1\nOU=edge`);
      expect(worker.checkIssued(ca) && worker.verify(ca.publicKey)).toBe(true);
    }
    expect(mode(join(caDir, 'ingest-group.key'))).toBe(0o600);
    const groupKey = readFileSync(join(caDir, 'ingest-group.key'), 'utf8');
    expect(groupKey).toMatch(/^[0-9a-f]{64}\n$/);
    const cert1 = readFileSync(join(caDir, 'ingest-1.crt'), 'utf8');
    const more = await medge(['ca', 'ingest-workers', '--ca', caDir, '--workers', '3']);
    expect(more.code, more.stderr).toBe(0);
    expect(more.stdout).toContain('ingest worker 1: medge-edge-ingest-1 kept');
    expect(more.stdout).toContain('ingest worker 3: medge-edge-ingest-3 issued');
    expect(readFileSync(join(caDir, 'ingest-1.crt'), 'utf8')).toBe(cert1);
    expect(readFileSync(join(caDir, 'ingest-group.key'), 'utf8')).toBe(groupKey);
    const [zero, tooMany] = await Promise.all([medge(['ca', 'ingest-workers', '--ca', caDir, '--workers', '0']), medge(['ca', 'ingest-workers', '--ca', caDir, '--workers', '65'])]);
    expect(zero.code).toBe(2);
    expect(tooMany.code).toBe(2);
    const conf = join(dir, 'mosquitto-workers', 'medge.conf');
    expect((await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', conf])).code).toBe(0);
    const acl = readFileSync(join(dir, 'mosquitto-workers', 'medge.acl'), 'utf8');
    for (const user of ['medge-edge-ingest', 'medge-edge-ingest-1', 'medge-edge-ingest-2', 'medge-edge-ingest-3']) expect(acl).toContain(`\nuser ${user}\ntopic read medge/v1/ward-1/+/up/#\n`);
    // A worker the CA directory has no certificate for: exit 1, naming the command that issues it.
    const missing = await medge(['edge', '--data', join(dir, 'edge'), '--broker', 'mqtts://127.0.0.1:1', '--tls', caDir, '--shared-subscription', 'ingest', '--ingest-worker', '4']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('medge ca ingest-workers');
  });
});

describe('medge edge --tls and mosquitto-config', () => {
  it('writes the Mosquitto config with the certificates, a 0600 key Mosquitto can read, and the ACL', async () => {
    const conf = join(dir, 'mosquitto', 'medge.conf');
    const r = await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', conf, '--port', '8884']);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(conf, 'utf8');
    expect(text).toContain('listener 8884\n');
    expect(text).toContain('require_certificate true\n');
    expect(text).toContain('use_identity_as_username true\n');
    expect(text).toContain(`acl_file ${join(dir, 'mosquitto', 'medge.acl')}\n`);
    expect(readFileSync(join(dir, 'mosquitto', 'medge-ca.crt'), 'utf8')).toBe(readFileSync(join(caDir, 'ca.crt'), 'utf8'));
    const key = join(dir, 'mosquitto', 'medge-server.key');
    expect(mode(key)).toBe(0o600);
    expect(readFileSync(join(dir, 'mosquitto', 'medge.acl'), 'utf8')).toContain('pattern write medge/v1/ward-1/%u/up/#\n');
    // Regenerating replaces the files.
    expect((await medge(['edge', 'mosquitto-config', '--tls', caDir, '--out', conf])).code).toBe(0);
    expect(readFileSync(conf, 'utf8')).toContain('listener 8883\n');
  });

  it('refuses --tls with a plain mqtt:// broker and a directory that is no CA', async () => {
    const [plain, missing] = await Promise.all([
      medge(['edge', '--data', join(dir, 'edge'), '--broker', 'mqtt://127.0.0.1:1883', '--tls', caDir]),
      medge(['edge', '--data', join(dir, 'edge'), '--port', '0', '--tls', join(dir, 'nothing')]),
    ]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('mqtts://');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('medge ca init');
  });
});
