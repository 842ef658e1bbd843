import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { CertificateProblem } from './issued-certificates.js';
import { DYNSEC_BLOCKED_ROLE, type DynsecCommand, MosquittoDeviceBlocker } from './mosquitto-dynsec.js';

const dir = mkdtempSync(join(tmpdir(), 'medge-dynsec-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A blocker over `issued` (device ids; no issued/ at all when undefined) whose problems the test sets, on a clock the test moves. */
function setUp(name: string, issued: string[] | undefined) {
  const issuedDir = join(dir, name);
  if (issued) {
    mkdirSync(issuedDir);
    for (const id of issued) writeFileSync(join(issuedDir, `${id}.crt`), '');
  }
  const problems = new Map<string, CertificateProblem>();
  const sent: DynsecCommand[][] = [];
  const told: string[] = [];
  const lines: LogLine[] = [];
  let now = 0;
  const blocker = new MosquittoDeviceBlocker({
    issuedDir,
    certificateProblem: (id) => problems.get(id),
    publish: (payload) => sent.push((JSON.parse(payload) as { commands: DynsecCommand[] }).commands) > 0,
    notify: (id, problem) => told.push(`${id}:${problem.reason}`),
    clock: { monotonic: () => now, setTimeout: () => ({ id: 0 }), clearTimeout: () => undefined },
    logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
  });
  const answer = (responses: unknown[]) => blocker.handleResponse(Buffer.from(JSON.stringify({ responses })));
  const warnings = () => lines.filter((l) => l.level >= 40);
  return { issuedDir, blocker, problems, sent, told, lines, warnings, answer, advance: (ms: number) => (now += ms) };
}

const summary = (commands: DynsecCommand[][]) => commands.map((c) => c.map((x) => `${x.command}:${String(x.username ?? x.rolename)}`));

describe('MosquittoDeviceBlocker', () => {
  it('tells a device why once its certificate has a problem, blocks it noticeMs later, resends only after retryMs without an answer, and unblocks it when valid again', () => {
    const t = setUp('flow', ['dev-a', 'dev-b']);
    t.blocker.sweep();
    expect(t.sent).toEqual([]);
    t.problems.set('dev-a', { reason: 'certificate-revoked', message: '' });
    t.blocker.sweep();
    // Told first (once blocked it can read nothing), not blocked yet.
    expect(t.told).toEqual(['dev-a:certificate-revoked']);
    expect(t.sent).toEqual([]);
    t.advance(999);
    t.blocker.sweep();
    expect(t.sent).toEqual([]);
    t.advance(1);
    t.blocker.sweep();
    t.blocker.sweep();
    expect(summary(t.sent)).toEqual([
      ['createRole:medge-blocked', 'addRoleACL:medge-blocked', 'addRoleACL:medge-blocked', 'addRoleACL:medge-blocked', 'createClient:dev-a', 'addClientRole:dev-a', 'disableClient:dev-a'],
    ]);
    expect(t.sent[0]?.[4]).toMatchObject({ roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] });
    t.advance(5_000);
    t.blocker.sweep();
    expect(t.sent).toHaveLength(2); // no answer within retryMs: sent again, not told again
    expect(t.told).toHaveLength(1);
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
    // Revoked again later: told again.
    t.problems.set('dev-a', { reason: 'certificate-expired', message: '' });
    t.blocker.sweep();
    expect(t.told).toEqual(['dev-a:certificate-revoked', 'dev-a:certificate-expired']);
  });

  it('blocks a revoked device provisioned under medge-edge-ingest-<name> before the prefix was reserved, never an ingest identity', () => {
    const t = setUp('legacy-names', ['medge-edge-ingest-cart', 'medge-edge-ingest-2', 'medge-edge-ingest']);
    const revoked: CertificateProblem = { reason: 'certificate-revoked', message: '' };
    for (const id of ['medge-edge-ingest-cart', 'medge-edge-ingest-2', 'medge-edge-ingest']) t.problems.set(id, revoked);
    t.blocker.sweep();
    t.advance(1_000);
    t.blocker.sweep();
    expect(t.told).toEqual(['medge-edge-ingest-cart:certificate-revoked']);
    expect(summary(t.sent).map((c) => c.filter((x) => x.startsWith('disableClient')))).toEqual([['disableClient:medge-edge-ingest-cart']]);
  });

  it('reblock tells the device again and blocks it at the sweep noticeMs later, not at once', () => {
    const t = setUp('reblock', ['dev-a']);
    t.blocker.start();
    t.answer([{ command: 'listClients', data: { clients: [{ username: 'dev-a', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] }] } }]);
    t.problems.set('dev-a', { reason: 'certificate-revoked', message: '' });
    t.blocker.sweep();
    expect(t.sent).toHaveLength(1); // held blocked already: nothing
    t.blocker.reblock('dev-a'); // its batch got through: the plugin lost the block
    expect(t.told).toEqual(['dev-a:certificate-revoked']);
    expect(t.sent).toHaveLength(1);
    t.blocker.reblock('dev-a');
    expect(t.told).toHaveLength(1);
    t.advance(1_000);
    t.blocker.sweep();
    expect(summary(t.sent.slice(1)).map((c) => c.at(-1))).toEqual(['disableClient:dev-a']);
    t.blocker.stop();
  });

  it('learns the devices the plugin holds blocked, warns about clients, roles and groups medge did not create, and survives answers it cannot read', () => {
    const t = setUp('list', ['dev-a', 'dev-c']);
    t.blocker.start();
    expect(t.sent[0]?.map((c) => c.command)).toEqual(['listClients', 'listRoles', 'listGroups']);
    for (const bad of ['', 'not json', '{"responses":3}', '{"responses":[null,7,{"command":"disableClient"}]}']) expect(() => t.blocker.handleResponse(Buffer.from(bad))).not.toThrow();
    const before = t.warnings().length;
    t.answer([
      { command: 'listClients', correlationData: 'medge-list', data: { clients: [{ username: 'dev-a', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] }, { username: 'admin', roles: [{ rolename: 'admin' }] }, { username: 'dev-gone', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }] }, { username: 'dev-x', roles: [{ rolename: DYNSEC_BLOCKED_ROLE }], groups: [{ groupname: 'g' }] }] } },
      { command: 'listRoles', correlationData: 'medge-list', data: { roles: [DYNSEC_BLOCKED_ROLE, 'admin'] } },
      { command: 'listGroups', correlationData: 'medge-list', data: { groups: [] } },
    ]);
    expect([...t.blocker.blocked].sort()).toEqual(['dev-a', 'dev-gone']);
    expect(t.blocker.plugin).toBe('answering');
    const foreign = t.warnings().slice(before);
    expect(foreign.map((l) => [l.msg.slice(0, 47), l.clients ?? l.roles])).toEqual([
      ['the dynamic security plugin holds clients medge', ['admin', 'dev-x']],
      ['the dynamic security plugin holds roles medge d', ['admin']],
    ]);
    // dev-a has a valid certificate now: unblocked; dev-gone has no issued certificate: left blocked.
    t.blocker.sweep();
    expect(t.sent.slice(1)).toEqual([[{ command: 'deleteClient', username: 'dev-a', correlationData: 'dev-a' }]]);
    t.blocker.stop();
  });

  it('warns once, naming the fix, when the plugin answers nothing within retryMs, and says when it answers again', () => {
    const t = setUp('silent', ['dev-a']);
    t.blocker.start();
    expect(t.blocker.plugin).toBe('unknown');
    for (let i = 0; i < 4; i += 1) {
      t.advance(1_000);
      t.blocker.sweep();
    }
    expect(t.warnings()).toEqual([]);
    t.advance(1_000);
    t.blocker.sweep();
    expect(t.blocker.plugin).toBe('silent');
    expect(t.warnings().map((l) => l.msg)).toEqual([expect.stringContaining('medge edge mosquitto-config --tls CADIR --out FILE --dynsec and restart Mosquitto')]);
    expect(t.sent.map((c) => c[0]?.command)).toEqual(['listClients', 'listClients']); // asked again
    for (let i = 0; i < 20; i += 1) {
      t.advance(1_000);
      t.blocker.sweep();
    }
    expect(t.warnings()).toHaveLength(1);
    t.answer([{ command: 'listClients', data: { clients: [] } }]);
    expect(t.blocker.plugin).toBe('answering');
    expect(t.warnings().at(-1)?.msg).toContain('answers now');
    // It listed, then stops answering (a broker restarted without the plugin): the unconfirmed block says so.
    t.problems.set('dev-a', { reason: 'certificate-expired', message: '' });
    t.blocker.sweep();
    t.advance(1_000);
    t.blocker.sweep();
    expect(t.sent.at(-1)?.at(-1)?.command).toBe('disableClient');
    t.advance(5_000);
    t.blocker.sweep();
    expect(t.blocker.plugin).toBe('silent');
    expect(t.warnings().at(-1)?.why).toBe('no answer to the commands for dev-a within 5000 ms');
    t.blocker.stop();
  });

  it('says nothing while the CA directory has no issued/ yet, and warns once about an unreadable one', () => {
    const t = setUp('fresh', undefined);
    for (let i = 0; i < 5; i += 1) t.blocker.sweep();
    expect(t.warnings()).toEqual([]);
    writeFileSync(t.issuedDir, 'not a directory');
    for (let i = 0; i < 5; i += 1) t.blocker.sweep();
    expect(t.warnings().map((l) => l.msg)).toEqual(['issued certificates unreadable']);
  });
});
