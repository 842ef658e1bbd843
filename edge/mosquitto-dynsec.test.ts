import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CertificateProblem } from './issued-certificates.js';
import { DYNSEC_BLOCKED_ROLE, type DynsecCommand, MosquittoDeviceBlocker } from './mosquitto-dynsec.js';

const dir = mkdtempSync(join(tmpdir(), 'medge-dynsec-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A blocker over `issued` (device ids) whose problems the test sets, on a clock the test moves. */
function setUp(name: string, issued: string[]) {
  const issuedDir = join(dir, name);
  mkdirSync(issuedDir);
  for (const id of issued) writeFileSync(join(issuedDir, `${id}.crt`), '');
  const problems = new Map<string, CertificateProblem>();
  const sent: DynsecCommand[][] = [];
  let now = 0;
  const blocker = new MosquittoDeviceBlocker({
    issuedDir,
    certificateProblem: (id) => problems.get(id),
    publish: (payload) => sent.push((JSON.parse(payload) as { commands: DynsecCommand[] }).commands),
    clock: { monotonic: () => now, setTimeout: () => ({ id: 0 }), clearTimeout: () => undefined },
  });
  const answer = (responses: unknown[]) => blocker.handleResponse(Buffer.from(JSON.stringify({ responses })));
  return { issuedDir, blocker, problems, sent, answer, advance: (ms: number) => (now += ms) };
}

describe('MosquittoDeviceBlocker', () => {
  it('blocks a device once its certificate has a problem, resends only after retryMs without an answer, and unblocks it when valid again', () => {
    const t = setUp('flow', ['dev-a', 'dev-b']);
    t.blocker.sweep();
    expect(t.sent).toEqual([]);
    t.problems.set('dev-a', { reason: 'certificate-revoked', message: '' });
    t.blocker.sweep();
    t.blocker.sweep();
    expect(t.sent.map((c) => c.map((x) => `${x.command}:${String(x.username ?? x.rolename)}`))).toEqual([
      ['createRole:medge-blocked', 'addRoleACL:medge-blocked', 'addRoleACL:medge-blocked', 'addRoleACL:medge-blocked', 'createClient:dev-a', 'addClientRole:dev-a', 'disableClient:dev-a'],
    ]);
    expect(t.sent[0]?.[4]).toMatchObject({ roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] });
    t.advance(5_000);
    t.blocker.sweep();
    expect(t.sent).toHaveLength(2); // no answer within retryMs: sent again
    t.answer([{ command: 'createClient', error: 'Client already exists', correlationData: 'dev-a' }, { command: 'addClientRole', correlationData: 'dev-a' }, { command: 'disableClient', correlationData: 'dev-a' }]);
    expect([...t.blocker.blocked]).toEqual(['dev-a']);
    t.advance(60_000);
    t.blocker.sweep();
    expect(t.sent).toHaveLength(2); // confirmed: nothing more
    t.problems.delete('dev-a'); // re-provisioned
    t.blocker.sweep();
    expect(t.sent[2]).toEqual([{ command: 'deleteClient', username: 'dev-a', correlationData: 'dev-a' }]);
    t.answer([{ command: 'deleteClient', correlationData: 'dev-a' }]);
    expect(t.blocker.blocked.size).toBe(0);
  });

  it('learns the devices the plugin holds blocked from listClients, and survives answers it cannot read', () => {
    const t = setUp('list', ['dev-a', 'dev-c']);
    t.blocker.start();
    expect(t.sent[0]?.[0]?.command).toBe('listClients');
    for (const bad of ['', 'not json', '{"responses":3}', '{"responses":[null,7,{"command":"disableClient"}]}']) expect(() => t.blocker.handleResponse(Buffer.from(bad))).not.toThrow();
    t.answer([{ command: 'listClients', data: { clients: [{ username: 'dev-a', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] }, { username: 'admin', roles: [{ rolename: 'admin' }] }, { username: 'dev-gone', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] }] } }]);
    expect([...t.blocker.blocked].sort()).toEqual(['dev-a', 'dev-gone']);
    // dev-a has a valid certificate now: unblocked; dev-gone has no issued certificate: left blocked.
    t.blocker.sweep();
    expect(t.sent.slice(1)).toEqual([[{ command: 'deleteClient', username: 'dev-a', correlationData: 'dev-a' }]]);
    t.blocker.stop();
  });
});
