import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCaDir, issueDeviceCert, provisionDevice, readEdgeTls, readSiteCa, revokeDevice } from '../device-sdk/security/pki.js';
import { createIssuedCertificateCheck } from './issued-certificates.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'medge-issued-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createIssuedCertificateCheck (the ingest behind Mosquitto)', () => {
  it('refuses a device whose latest issued certificate is revoked or expired, follows CRL and re-provisioning, ignores unknown devices', async () => {
    const caDir = join(dir, 'ca');
    await initCaDir(caDir, { site: 'ward-i' });
    for (const deviceId of ['lost', 'fine']) await provisionDevice(caDir, { deviceId, site: 'ward-i', outDir: join(dir, 'out') });
    const tls = readEdgeTls(caDir);
    let now = Date.now();
    const check = createIssuedCertificateCheck({ ca: tls.ca, issuedDir: tls.issuedDir as string, crlPath: tls.crlPath, now: () => now });
    expect(check('lost')).toBeUndefined();
    expect(check('never-provisioned')).toBeUndefined();

    const { revoked } = await revokeDevice(caDir, 'lost');
    expect(check('lost')).toEqual({ reason: 'certificate-revoked', message: `the certificate of lost (serial ${revoked.serial.toLowerCase().replace(/^0+/, '')}) is revoked; its batches are refused` });
    expect(check('fine')).toBeUndefined();

    // Re-provisioned under the same id (a new certificate recorded in issued/): accepted again.
    writeFileSync(join(caDir, 'issued', 'lost.crt'), (await issueDeviceCert(readSiteCa(caDir), { deviceId: 'lost', site: 'ward-i' })).certPem);
    expect(check('lost')).toBeUndefined();

    // Expiry by the edge's clock.
    now += 900 * DAY;
    expect(check('fine')).toMatchObject({ reason: 'certificate-expired', message: expect.stringMatching(/^the certificate of fine \(serial [0-9a-f]+\) expired at \d{4}-/) as unknown });
  });
});
