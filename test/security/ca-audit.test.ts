/** The CA directory's audit log: CA creation, provisioning and revocation, checked by `medge audit verify --ca`. */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { caAuditPath, readCaAudit } from '../../device-sdk/security/ca-audit.js';
import { initCaDir, provisionDevice, revokeDevice } from '../../device-sdk/security/pki.js';
import { medge } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('ca-audit');

describe('CA audit log', () => {
  it('records ca-init, provision and revoke in a hash chain that medge audit verify --ca checks, and detects an altered entry', async () => {
    const dir = tempDir();
    const ca = join(dir, 'ca');
    await initCaDir(ca, { site: 'ward-a' });
    const provisioned = await provisionDevice(ca, { deviceId: 'dev-1', site: 'ward-a', outDir: join(dir, 'out') });
    await revokeDevice(ca, 'dev-1');
    const entries = readCaAudit(ca);
    expect(entries.map((e) => e.action)).toEqual(['ca-init', 'provision', 'revoke']);
    expect(entries[1]?.detail).toContain(`serial ${provisioned.info.serialNumber}`);
    const ok = await medge(['audit', 'verify', '--ca', ca, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, entries: 3 });

    const db = new Database(caAuditPath(ca));
    db.prepare("UPDATE audit SET detail = 'device dev-2 of site ward-a' WHERE action = 'provision'").run();
    db.close();
    const broken = await medge(['audit', 'verify', '--ca', ca, '--json']);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, firstBreak: { id: 2, reason: 'altered' } });
    expect((await medge(['audit', 'verify', '--ca', ca, '--data', dir])).code).toBe(2);
  });
});
