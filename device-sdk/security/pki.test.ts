import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CA_DIR_FILES,
  createSiteCa,
  describeCertificate,
  EDGE_INGEST_IDENTITY,
  initCaDir,
  isIssuedBy,
  issueDeviceCert,
  issueEdgeClientCert,
  issueServerCert,
  BACKDATE_MS,
  PkiError,
  provisionDevice,
  readEdgeTls,
  readSiteCa,
  revokeDevice,
  type SiteCa,
} from './pki.js';

const DAY = 24 * 60 * 60 * 1000;
const dir = mkdtempSync(join(tmpdir(), 'medge-pki-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PkiError);
    return error as PkiError;
  }
  throw new Error('expected a PkiError');
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** openssl's own verdict on a chain, when openssl is installed (it is a second, independent X.509 implementation). */
function opensslVerify(caPem: string, certPem: string, purpose: 'sslclient' | 'sslserver', at?: Date): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const ca = join(dir, `v-ca-${Math.random()}.pem`);
  const cert = join(dir, `v-cert-${Math.random()}.pem`);
  writeFileSync(ca, caPem);
  writeFileSync(cert, certPem);
  try {
    const attime = at === undefined ? [] : ['-attime', String(Math.floor(at.getTime() / 1000))];
    return execFileSync('openssl', ['verify', '-purpose', purpose, ...attime, '-CAfile', ca, cert], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return `failed: ${stdout ?? ''}${stderr ?? String(error)}`;
  }
}

describe('site PKI over PEM strings', () => {
  let ca: SiteCa;
  beforeAll(async () => {
    ca = await createSiteCa({ site: 'ward-3' });
  });

  it('makes a self-signed ECDSA P-256 CA named after the site', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.subject).toBe('CN=medge site ward-3 CA\nO=medge');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const text = execText(ca.certPem);
    if (text) {
      expect(text).toMatch(/CA:TRUE, pathlen:0/);
      expect(text).toMatch(/Certificate Sign, CRL Sign/);
    }
  });

  it('issues a server certificate for localhost, 127.0.0.1, ::1 and the given hosts', async () => {
    const server = await issueServerCert(ca, { hosts: ['edge.ward-3.example', '10.0.0.2'] });
    const cert = new X509Certificate(server.certPem);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:edge.ward-3.example, IP Address:10.0.0.2');
    expect(cert.checkHost('edge.ward-3.example')).toBe('edge.ward-3.example');
    expect(cert.checkIP('10.0.0.2')).toBe('10.0.0.2');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.ca).toBe(false);
    expect(isIssuedBy(server.certPem, ca.certPem)).toBe(true);
    const verdict = opensslVerify(ca.certPem, server.certPem, 'sslserver');
    if (verdict !== undefined) expect(verdict).toMatch(/: OK$/);
    expect((await refusal(issueServerCert(ca, { hosts: ['not a host'] }))).reason).toBe('invalid-input');
  });

  it('issues a device certificate: CN = device id, O = site, clientAuth, signed by the CA', async () => {
    const device = await issueDeviceCert(ca, { deviceId: 'ecg-07', site: 'ward-3' });
    const info = describeCertificate(device.certPem);
    expect(info.subject).toEqual({ CN: 'ecg-07', O: 'ward-3', OU: 'device' });
    expect(info.isCa).toBe(false);
    expect(new X509Certificate(device.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(isIssuedBy(device.certPem, ca.certPem)).toBe(true);
    // Valid 825 days from issuance; it starts with the CA (backdated, see the next test).
    expect(Math.abs(info.notAfter.getTime() - Date.now() - 825 * DAY)).toBeLessThan(60_000);
    expect(Math.abs(info.notBefore.getTime() - (Date.now() - 90 * DAY))).toBeLessThan(60_000);
    const verdict = opensslVerify(ca.certPem, device.certPem, 'sslclient');
    if (verdict !== undefined) expect(verdict).toMatch(/: OK$/);
    // A client certificate is no server certificate (and the other way round).
    const asServer = opensslVerify(ca.certPem, device.certPem, 'sslserver');
    if (asServer !== undefined) expect(asServer).toMatch(/^failed/);
  });

  it('backdates 90 days for clocks that are behind: the CA by BACKDATE_MS, each leaf to the later of that and the CA\'s start', async () => {
    expect(BACKDATE_MS).toBe(90 * DAY);
    const now = Date.now();
    const near = (t: Date, expected: number) => expect(Math.abs(t.getTime() - expected)).toBeLessThan(60_000);
    near(describeCertificate(ca.certPem).notBefore, now - 90 * DAY);
    const server = await issueServerCert(ca);
    const device = await issueDeviceCert(ca, { deviceId: 'behind', site: 'ward-3' });
    for (const pem of [server.certPem, device.certPem]) near(describeCertificate(pem).notBefore, now - 90 * DAY);
    // OpenSSL, as a board whose clock is 60 days behind runs it, accepts the chain made just now; with the former
    // 1 h backdating it refused it ("certificate is not yet valid"). 100 days behind is still refused.
    for (const [pem, purpose] of [[server.certPem, 'sslserver'], [device.certPem, 'sslclient']] as const) {
      const behind60 = opensslVerify(ca.certPem, pem, purpose, new Date(now - 60 * DAY));
      if (behind60 !== undefined) expect(behind60).toMatch(/: OK$/);
      const behind100 = opensslVerify(ca.certPem, pem, purpose, new Date(now - 100 * DAY));
      if (behind100 !== undefined) expect(behind100).toMatch(/not yet valid/);
    }
    // Under a CA older than 90 days a leaf starts 90 days back, not at the CA's start; either way it ends 825 days after issuance.
    const oldCa = await createSiteCa({ site: 'ward-3', notBefore: new Date(now - 400 * DAY) });
    const leaf = describeCertificate((await issueDeviceCert(oldCa, { deviceId: 'late', site: 'ward-3' })).certPem);
    near(leaf.notBefore, now - 90 * DAY);
    near(leaf.notAfter, now + 825 * DAY);
    // A CA that starts later (one made before this policy, backdated 1 h): a leaf starts with it, nothing is valid before its issuer.
    const youngCa = await createSiteCa({ site: 'ward-3', notBefore: new Date(now - 3_600_000) });
    const young = describeCertificate((await issueDeviceCert(youngCa, { deviceId: 'young', site: 'ward-3' })).certPem);
    expect(young.notBefore).toEqual(describeCertificate(youngCa.certPem).notBefore);
    near(young.notAfter, now + 825 * DAY);
  });

  it('gives every certificate its own key and serial number', async () => {
    const a = await issueDeviceCert(ca, { deviceId: 'a', site: 'ward-3' });
    const b = await issueDeviceCert(ca, { deviceId: 'a', site: 'ward-3' });
    expect(a.keyPem).not.toBe(b.keyPem);
    expect(describeCertificate(a.certPem).serialNumber).not.toBe(describeCertificate(b.certPem).serialNumber);
  });

  it('issues a certificate valid in the past only (for tests of expiry)', async () => {
    const notBefore = new Date(Date.now() - 10 * DAY);
    const expired = await issueDeviceCert(ca, { deviceId: 'old', site: 'ward-3', notBefore, validDays: 2 });
    expect(isIssuedBy(expired.certPem, ca.certPem)).toBe(false);
    expect(isIssuedBy(expired.certPem, ca.certPem, new Date(Date.now() - 9 * DAY))).toBe(true);
  });

  it('refuses device ids that are no topic segment, the ingest identity, and another site', async () => {
    for (const deviceId of ['', 'a/b', 'a+', '#', 'x'.repeat(65), 'é']) {
      expect((await refusal(issueDeviceCert(ca, { deviceId, site: 'ward-3' }))).reason).toBe('invalid-id');
    }
    expect((await refusal(issueDeviceCert(ca, { deviceId: EDGE_INGEST_IDENTITY, site: 'ward-3' }))).reason).toBe('reserved-id');
    expect((await refusal(issueDeviceCert(ca, { deviceId: 'a', site: 'ward-4' }))).reason).toBe('site-mismatch');
    expect((await refusal(createSiteCa({ site: 'a b' }))).reason).toBe('invalid-id');
    expect((await refusal(issueDeviceCert(ca, { deviceId: 'a', site: 'ward-3', validDays: 0 }))).reason).toBe('invalid-input');
  });

  it("refuses to issue with a CA key that is not the CA certificate's", async () => {
    const other = await createSiteCa({ site: 'ward-3' });
    const error = await refusal(issueDeviceCert({ ...ca, keyPem: other.keyPem }, { deviceId: 'a', site: 'ward-3' }));
    expect(error.reason).toBe('invalid-ca');
  });

  it('issues the ingest identity as an edge client certificate', async () => {
    const ingest = await issueEdgeClientCert(ca);
    expect(describeCertificate(ingest.certPem).subject).toEqual({ CN: EDGE_INGEST_IDENTITY, O: 'ward-3', OU: 'edge' });
    expect(new X509Certificate(ingest.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  });
});

function execText(pem: string): string | undefined {
  try {
    return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
  } catch {
    return undefined;
  }
}

describe('CA directory files', () => {
  it('writes the CA directory with private keys 0600 and refuses to overwrite it', async () => {
    const caDir = join(dir, 'ca');
    const info = await initCaDir(caDir, { site: 'ward-3', hosts: ['edge.local'] });
    expect(info.site).toBe('ward-3');
    expect(mode(caDir)).toBe(0o700);
    for (const key of [CA_DIR_FILES.caKey, CA_DIR_FILES.serverKey, CA_DIR_FILES.ingestKey]) expect(mode(join(caDir, key)), key).toBe(0o600);
    for (const cert of [CA_DIR_FILES.caCert, CA_DIR_FILES.serverCert, CA_DIR_FILES.ingestCert]) expect(mode(join(caDir, cert)), cert).toBe(0o644);
    expect(JSON.parse(readFileSync(join(caDir, CA_DIR_FILES.site), 'utf8'))).toMatchObject({ site: 'ward-3', hosts: ['edge.local'] });
    const tls = readEdgeTls(caDir);
    expect(isIssuedBy(tls.cert, tls.ca)).toBe(true);
    expect(isIssuedBy(tls.ingestCert, tls.ca)).toBe(true);
    expect(new X509Certificate(tls.cert).checkHost('edge.local')).toBe('edge.local');
    expect(readSiteCa(caDir).site).toBe('ward-3');

    const before = readFileSync(join(caDir, CA_DIR_FILES.caKey), 'utf8');
    expect((await refusal(initCaDir(caDir, { site: 'ward-3' }))).reason).toBe('exists');
    expect(readFileSync(join(caDir, CA_DIR_FILES.caKey), 'utf8')).toBe(before);
  });

  it('provisions a device: ID.key 0600, ID.crt and ca.crt; refuses re-provisioning and another site', async () => {
    const caDir = join(dir, 'ca2');
    await initCaDir(caDir, { site: 'ward-5' });
    const out = join(dir, 'out');
    const result = await provisionDevice(caDir, { deviceId: 'glucose-1', site: 'ward-5', outDir: out });
    expect(result.keyPath).toBe(join(out, 'glucose-1.key'));
    expect(mode(result.keyPath)).toBe(0o600);
    expect(readFileSync(result.caPath, 'utf8')).toBe(readFileSync(join(caDir, CA_DIR_FILES.caCert), 'utf8'));
    expect(isIssuedBy(readFileSync(result.certPath, 'utf8'), readFileSync(result.caPath, 'utf8'))).toBe(true);
    expect(result.info.subject.CN).toBe('glucose-1');

    expect((await refusal(provisionDevice(caDir, { deviceId: 'glucose-1', site: 'ward-5', outDir: out }))).reason).toBe('exists');
    expect((await refusal(provisionDevice(caDir, { deviceId: 'glucose-2', site: 'ward-6', outDir: out }))).reason).toBe('site-mismatch');
    expect((await refusal(provisionDevice(caDir, { deviceId: 'a/b', site: 'ward-5', outDir: out }))).reason).toBe('invalid-id');
    expect(existsSync(join(out, 'glucose-2.key'))).toBe(false);
    // A second device in the same directory shares the CA file.
    await provisionDevice(caDir, { deviceId: 'glucose-2', site: 'ward-5', outDir: out });
    // ... but a directory holding another CA's certificate is not overwritten.
    const other = join(dir, 'ca3');
    await initCaDir(other, { site: 'ward-5' });
    expect((await refusal(provisionDevice(other, { deviceId: 'glucose-3', site: 'ward-5', outDir: out }))).reason).toBe('exists');
    expect((await refusal(provisionDevice(join(dir, 'nothing'), { deviceId: 'x', site: 'ward-5', outDir: out }))).reason).toBe('missing');
  });

  it("dates the CRL's thisUpdate back like the certificates: an edge whose clock is 60 days behind still takes it", async () => {
    const caDir = join(dir, 'ca-crl');
    await initCaDir(caDir, { site: 'ward-7' });
    await provisionDevice(caDir, { deviceId: 'lost', site: 'ward-7', outDir: join(dir, 'out-crl') });
    const { crlPath } = await revokeDevice(caDir, 'lost');
    const caStart = describeCertificate(readFileSync(join(caDir, CA_DIR_FILES.caCert), 'utf8')).notBefore;
    let lastUpdate: string;
    try {
      lastUpdate = execFileSync('openssl', ['crl', '-in', crlPath, '-noout', '-lastupdate'], { encoding: 'utf8' }).trim();
    } catch {
      return; // no openssl here: nothing independent to read the CRL with
    }
    // OpenSSL prints e.g. "lastUpdate=Sep  8 07:30:00 2026 GMT" (the CRL's thisUpdate): 90 days back, and never before the CA.
    const thisUpdate = new Date(lastUpdate.replace(/^lastUpdate=/, '')).getTime();
    expect(Math.abs(thisUpdate - (Date.now() - 90 * DAY))).toBeLessThan(60_000);
    expect(thisUpdate).toBeGreaterThanOrEqual(caStart.getTime());
  });
});
