// The clinic screen's server over real HTTP on loopback with a real SQLite ledger: PIN login and
// lockout, least privilege per role enforced by the server, session cookies, origin and host
// checks, alert acknowledgement into the hash-chained audit log, live data over SSE per role,
// the config section, the PIN hash CLI and the two dictionaries.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, Finding, Reading, StreamChunk } from '../../device-sdk/records.js';
import { Ledger } from '../../device-sdk/store/ledger.js';
import { SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { verifyAuditChain } from '../../device-sdk/store/audit.js';
import { ConfigErrors, parseRuntimeConfig, type RuntimeConfig } from '../../firmware/config.js';
import type { RuntimeStatus } from '../../firmware/status.js';
import { hashPin, SessionManager, verifyPin } from '../../firmware/ui/auth.js';
import { panelOf } from '../../firmware/ui/clinic-data.js';
import { ClinicServer, parseListen, UNACKNOWLEDGED_SHOWN } from '../../firmware/ui/server.js';
import { BIN, ROOT, requireBuild } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';
import { VirtualClock } from '../helpers/virtual-clock.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('ui');
/** Cheap scrypt for tests (the verifier reads N from the hash). */
const FAST = { N: 1024 };
const USERS = [
  { name: 'nurse', role: 'operator', pinHash: hashPin('1111', FAST) },
  { name: 'dr-li', role: 'clinician', pinHash: hashPin('2222', FAST) },
  { name: 'tech', role: 'technician', pinHash: hashPin('3333', FAST) },
];

const STATUS: RuntimeStatus = {
  deviceId: 'ui-test',
  bootId: 'b',
  uptimeMs: 1000,
  link: 'offline',
  sensors: [{ sensor: 'ecg', source: 'sim-ecg', connected: true, rate: 360, rateUnit: 'samples/s' }],
  produced: { alert: 1, finding: 1, reading: 2, quarantine: 0, chunk: 2 },
  backlog: { alert: 1, finding: 1, reading: 2, quarantine: 0, chunk: 2 },
  quarantined: 0,
  lastAlert: { kind: 'hypoglycaemia-level-1', severity: 2, message: 'Glucose reading 62 mg/dL is below 70 mg/dL', t: 1 },
  storage: { bytesUsed: 1000, budgetBytes: 1_000_000, overBudget: false },
};

const open: { server: ClinicServer; store: SqliteOutboxStore }[] = [];
afterEach(async () => {
  for (const { server, store } of open.splice(0)) {
    await server.stop();
    store.close();
  }
});

function glucose(value: number, t: number): Reading {
  return { sensor: 'glucose-meter', type: 'glucose', value, unit: 'mg/dL', tDevice: t };
}
const ALERT: Alert = { kind: 'hypoglycaemia-level-1', severity: 2, message: 'Glucose reading 62 mg/dL is below 70 mg/dL; review by a clinician.', t: 5, sensor: 'glucose-meter' };
const FINDING: Finding = { kind: 'glucose-trend', label: 'falling', value: -1.5, probability: 1, t: 4, modelId: 'rule:glucose-trend@1', modelSha256: 'ab', inputQuality: 1 };
function ecgChunk(firstSample: number): StreamChunk {
  return { sensor: 'ecg', channel: 0, firstSample, t0: 1000 + firstSample, rateHz: 360, unit: 'mV', gain: 200, samples: Int16Array.from({ length: 90 }, (_, i) => (i % 30) * 10) };
}
function pcgChunk(firstSample: number): StreamChunk {
  return { sensor: 'pcg', channel: 0, firstSample, t0: 1000 + firstSample / 4, rateHz: 4000, unit: 'au', gain: 1, samples: Int16Array.from({ length: 2000 }, (_, i) => Math.round(1000 * Math.sin(i / 5))) };
}

async function startServer(options: { seed?: boolean; dir?: string } = {}) {
  const dir = options.dir ?? tempDir();
  const config: RuntimeConfig = parseRuntimeConfig(
    { deviceId: 'ui-test', dataDir: dir, statusIntervalMs: 200, ui: { enabled: true, listen: '127.0.0.1:0', users: USERS } },
    dir,
  );
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId: 'ui-test' });
  const ledger = new Ledger(store, { clock });
  if (options.seed !== false) {
    ledger.add('reading', glucose(120, 1));
    ledger.add('reading', glucose(62, 2));
    ledger.add('finding', FINDING);
    ledger.add('chunk', ecgChunk(0));
    ledger.add('chunk', pcgChunk(0));
    ledger.addAlert(ALERT);
  }
  const server = new ClinicServer({ config, store, status: () => STATUS, clock });
  const url = await server.start();
  open.push({ server, store });
  return { server, store, ledger, url, clock, dir };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** `from`: the client's source address (any 127.0.0.0/8 address on Linux), to play several terminals. */
function call(url: string, path: string, options: { method?: string; cookie?: string; body?: unknown; headers?: Record<string, string>; from?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      new URL(path, url),
      {
        method: options.method ?? 'GET',
        ...(options.from ? { localAddress: options.from } : {}),
        headers: {
          ...(options.cookie ? { Cookie: options.cookie } : {}),
          ...(text === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }),
          ...options.headers,
        },
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data ? (JSON.parse(data) as Record<string, unknown>) : {} }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

async function loginAs(url: string, user: string, pin: string): Promise<string> {
  const reply = await call(url, '/api/login', { method: 'POST', body: { user, pin } });
  expect(reply.status).toBe(200);
  const cookie = (reply.headers['set-cookie'] as string[])[0] as string;
  return cookie.split(';')[0] as string;
}

/** Reads an SSE stream; `events()` gives the event names received so far. */
function stream(url: string, cookie: string) {
  const events: { event: string; data: unknown }[] = [];
  let buffer = '';
  let status = 0;
  const req = request(new URL('/api/events', url), { headers: { Cookie: cookie } }, (res) => {
    status = res.statusCode ?? 0;
    res.on('data', (d: Buffer) => {
      buffer += d.toString();
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) as unknown });
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  let ended = false;
  req.on('response', (res) => res.on('end', () => (ended = true)));
  return { events, status: () => status, ended: () => ended, close: () => req.destroy() };
}

describe('PIN hashes and sessions', () => {
  it('hashes with a fresh salt, verifies only the right PIN, refuses malformed hashes and PINs', () => {
    const a = hashPin('123456', FAST);
    const b = hashPin('123456', FAST);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(verifyPin('123456', a)).toBe(true);
    expect(verifyPin('123457', a)).toBe(false);
    expect(verifyPin('123456', 'scrypt$1000$8$1$abc$def')).toBe(false);
    expect(verifyPin('123456', 'plain')).toBe(false);
    expect(() => hashPin('12a4')).toThrow(/4 to 12 digits/);
    expect(() => hashPin('123')).toThrow(/4 to 12 digits/);
  });

  it('blocks a client after repeated wrong PINs and ends idle sessions', () => {
    const clock = new VirtualClock();
    const sessions = new SessionManager(USERS as never, { idleMs: 60_000, clock });
    for (let i = 1; i < 5; i++) expect(sessions.login('nurse', '0000', 'a')).toEqual({ ok: false, reason: 'wrong-pin' });
    expect(sessions.login('nurse', '0000', 'a')).toMatchObject({ ok: false, reason: 'locked', lockedBy: 'client', retryAfterMs: 60_000 });
    expect(sessions.login('nurse', '1111', 'a')).toMatchObject({ ok: false, reason: 'locked', lockedBy: 'client' });
    clock.advance(60_001);
    const ok = sessions.login('nurse', '1111', 'a');
    expect(ok.ok).toBe(true);
    const token = ok.ok ? ok.session.token : '';
    expect(sessions.touch(token)?.actor).toBe('operator/nurse');
    clock.advance(59_000);
    expect(sessions.touch(token)).toBeDefined();
    clock.advance(60_001);
    expect(sessions.touch(token)).toBeUndefined();
    expect(sessions.login('nobody', '1111', 'a')).toEqual({ ok: false, reason: 'unknown-user' });
  });
});

describe('clinic screen server', () => {
  it('serves the page and its assets with a strict content security policy, and lists users without hashes', async () => {
    const { url } = await startServer({ seed: false });
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // nothing from another host
    for (const asset of ['/static/app.js', '/static/i18n.js', '/static/charts.js', '/static/style.css']) expect((await fetch(new URL(asset, url))).status).toBe(200);
    expect((await fetch(new URL('/static/../server.ts', url))).status).toBe(404);
    const users = await call(url, '/api/users');
    expect(users.body.users).toEqual(USERS.map((u) => ({ name: u.name, role: u.role })));
    expect(JSON.stringify(users.body)).not.toContain('scrypt');
  });

  it('logs in with a PIN into an HttpOnly SameSite=Strict cookie and audits logins, failures and logouts', async () => {
    const { url, store } = await startServer({ seed: false });
    expect((await call(url, '/api/session')).status).toBe(401);
    const wrong = await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '9999' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('wrong-pin');
    const reply = await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' } });
    expect(reply.status).toBe(200);
    const setCookie = (reply.headers['set-cookie'] as string[])[0] as string;
    expect(setCookie).toMatch(/^medge_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//);
    const cookie = setCookie.split(';')[0] as string;
    expect((await call(url, '/api/session', { cookie })).body).toMatchObject({ user: 'nurse', role: 'operator', actor: 'operator/nurse' });
    expect((await call(url, '/api/logout', { method: 'POST', cookie, body: {} })).status).toBe(200);
    expect((await call(url, '/api/session', { cookie })).status).toBe(401);
    const audit = store.readAudit();
    expect(audit.map((e) => [e.actor, e.action])).toEqual([
      ['?/nurse', 'ui-login-failed'],
      ['operator/nurse', 'ui-login'],
      ['operator/nurse', 'ui-logout'],
    ]);
    expect(JSON.stringify(audit)).not.toContain('9999');
  });

  it('enforces least privilege per role on the server and audits each access and each refusal', async () => {
    const { url, store } = await startServer();
    const routes: [string, string][] = [
      ['GET', '/api/status'],
      ['GET', '/api/config'],
      ['GET', '/api/audit'],
      ['GET', '/api/history?kind=reading&type=glucose'],
      ['GET', '/api/history?kind=finding'],
      ['GET', '/api/alerts'],
      ['GET', '/api/pcg?seconds=1'],
      ['POST', '/api/alerts/1/ack'],
    ];
    const expected: Record<string, number[]> = {
      tech: [200, 200, 200, 403, 403, 403, 403, 403],
      nurse: [200, 403, 403, 200, 200, 200, 200, 200],
      'dr-li': [200, 200, 200, 200, 200, 200, 200, 409],
    };
    const pins: Record<string, string> = { nurse: '1111', 'dr-li': '2222', tech: '3333' };
    for (const user of ['tech', 'nurse', 'dr-li']) {
      const cookie = await loginAs(url, user, pins[user] as string);
      const statuses: number[] = [];
      for (const [method, path] of routes) statuses.push((await call(url, path, { method, cookie, ...(method === 'POST' ? { body: {} } : {}) })).status);
      expect(statuses, user).toEqual(expected[user]);
    }
    for (const [method, path] of routes) expect((await call(url, path, { method, ...(method === 'POST' ? { body: {} } : {}) })).status).toBe(401);

    const tech = await loginAs(url, 'tech', '3333');
    const status = await call(url, '/api/status', { cookie: tech });
    expect(status.body.status).toMatchObject({ deviceId: 'ui-test', link: 'offline' });
    expect(JSON.stringify(status.body)).not.toContain('62 mg/dL'); // the last alert's text is patient data
    const config = await call(url, '/api/config', { cookie: tech });
    expect(JSON.stringify(config.body)).not.toContain('scrypt');

    const audit = store.readAudit();
    expect(audit.filter((e) => e.action === 'ui-denied' && e.actor === 'technician/tech').map((e) => e.detail)).toContain('GET /api/history needs view-patient-data');
    expect(audit.filter((e) => e.actor === 'operator/nurse').map((e) => e.action)).toEqual(
      expect.arrayContaining(['ui-login', 'ui-view-status', 'ui-view-history', 'ui-view-alerts', 'ui-view-pcg', 'alert-ack', 'ui-denied']),
    );
    expect(verifyAuditChain(audit).ok).toBe(true);
  });

  it('returns decoded history: glucose readings, findings with their panel, the last PCG recording', async () => {
    const { url } = await startServer();
    const cookie = await loginAs(url, 'dr-li', '2222');
    const readings = await call(url, '/api/history?kind=reading&type=glucose&limit=1', { cookie });
    expect(readings.body.readings).toEqual([{ ...glucose(62, 2), seq: 2 }]);
    const findings = await call(url, '/api/history?kind=finding&panel=glucose', { cookie });
    expect(findings.body.findings).toEqual([{ ...FINDING, seq: 1, panel: 'glucose' }]);
    const pcg = await call(url, '/api/pcg?seconds=5', { cookie });
    expect(pcg.body.sensor).toBe('pcg');
    const chunks = pcg.body.chunks as { signal: string; samples: number[]; rateHz: number }[];
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ signal: 'pcg', rateHz: 4000 });
    expect(chunks[0]?.samples).toHaveLength(2000);
    expect((await call(url, '/api/history?kind=quarantine', { cookie })).status).toBe(400);
    expect((await call(url, '/api/history?kind=reading&limit=99999', { cookie })).status).toBe(400);
  });

  it('refuses requests from another origin or for another host name', async () => {
    const { url } = await startServer({ seed: false });
    const cross = await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' }, headers: { Origin: 'http://evil.example' } });
    expect(cross.status).toBe(403);
    const rebound = await call(url, '/api/users', { headers: { Host: 'evil.example:8080' } });
    expect(rebound.status).toBe(421);
    const form = await call(url, '/api/login', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
  });

  it('acknowledges an alert once into the audit log, and a new server instance still knows it', async () => {
    const { url, store, dir, server } = await startServer();
    const cookie = await loginAs(url, 'nurse', '1111');
    const alerts = await call(url, '/api/alerts', { cookie });
    expect(alerts.body.alerts).toEqual([{ ...ALERT, seq: 1 }]);
    const ack = await call(url, '/api/alerts/1/ack', { method: 'POST', cookie, body: {} });
    expect(ack.status).toBe(200);
    expect(ack.body.alert).toMatchObject({ seq: 1, ack: { actor: 'operator/nurse' } });
    const again = await call(url, '/api/alerts/1/ack', { method: 'POST', cookie, body: {} });
    expect(again.status).toBe(409);
    expect((again.body.alert as { ack: unknown }).ack).toEqual((ack.body.alert as { ack: unknown }).ack);
    expect((await call(url, '/api/alerts/99/ack', { method: 'POST', cookie, body: {} })).status).toBe(404);
    const rows = store.readAudit().filter((e) => e.action === 'alert-ack');
    expect(rows.map((e) => [e.actor, e.detail])).toEqual([['operator/nurse', 'alert 1 hypoglycaemia-level-1 severity 2']]);

    await server.stop();
    open.splice(open.findIndex((o) => o.server === server), 1);
    store.close();
    const second = await startServer({ seed: false, dir });
    const cookie2 = await loginAs(second.url, 'dr-li', '2222');
    const after = await call(second.url, '/api/alerts', { cookie: cookie2 });
    expect(after.body.alerts).toEqual([{ ...ALERT, seq: 1, ack: (ack.body.alert as { ack: unknown }).ack }]);
  });

  it('lists an unacknowledged urgent alert however many newer alerts followed it, and counts those it does not list', async () => {
    const { url, ledger } = await startServer();
    // seq 1 is the seeded severity-2 alert; seq 2 an urgent one; then 150 information alerts.
    ledger.addAlert({ kind: 'ventricular-run', severity: 3, message: 'Sustained ventricular run suspected', t: 6, sensor: 'ecg' });
    for (let i = 0; i < 150; i++) ledger.addAlert({ kind: 'sample-rate-unvalidated', severity: 1, message: `info ${i}`, t: 7 + i, sensor: 'ecg' });
    const cookie = await loginAs(url, 'nurse', '1111');
    const first = await call(url, '/api/alerts?limit=100', { cookie });
    const seqs = (first.body.alerts as { seq: number }[]).map((a) => a.seq);
    expect(seqs.slice(0, 2)).toEqual([1, 2]);
    expect(seqs).toHaveLength(152); // the newest 100 and the 52 older unacknowledged ones
    expect(first.body.unacknowledged).toEqual({ total: 152, shown: 152 });
    expect((await call(url, '/api/alerts/2/ack', { method: 'POST', cookie, body: {} })).status).toBe(200);
    const second = await call(url, '/api/alerts?limit=100', { cookie });
    expect((second.body.alerts as { seq: number }[]).map((a) => a.seq)).not.toContain(2);
    expect(second.body.unacknowledged).toEqual({ total: 151, shown: 151 });
    // Beyond UNACKNOWLEDGED_SHOWN the most severe are listed and the rest only counted.
    for (let i = 0; i < UNACKNOWLEDGED_SHOWN; i++) ledger.addAlert({ kind: 'sample-rate-unvalidated', severity: 1, message: `more ${i}`, t: 200 + i, sensor: 'ecg' });
    const many = await call(url, '/api/alerts?limit=10', { cookie });
    expect(many.body.unacknowledged).toEqual({ total: 151 + UNACKNOWLEDGED_SHOWN, shown: UNACKNOWLEDGED_SHOWN });
    expect((many.body.alerts as { seq: number }[])[0]?.seq).toBe(1); // the severity-2 alert, the most severe still open
  });

  it('streams live records to roles that may see patient data, and only status to a technician', async () => {
    const { url, ledger } = await startServer({ seed: false });
    const operator = stream(url, await loginAs(url, 'nurse', '1111'));
    const technician = stream(url, await loginAs(url, 'tech', '3333'));
    await waitFor(() => operator.events.some((e) => e.event === 'status') && technician.events.some((e) => e.event === 'status'), 'status events');
    ledger.add('chunk', ecgChunk(0));
    ledger.add('chunk', pcgChunk(0));
    ledger.add('reading', glucose(99, 10));
    ledger.add('finding', FINDING);
    ledger.addAlert(ALERT);
    await waitFor(() => operator.events.some((e) => e.event === 'alert'), 'the live alert');
    const kinds = operator.events.map((e) => e.event);
    expect(kinds).toEqual(expect.arrayContaining(['chunk', 'reading', 'finding', 'alert']));
    const chunks = operator.events.filter((e) => e.event === 'chunk').map((e) => e.data as { signal: string; samples: number[] });
    expect(chunks.map((c) => c.signal)).toEqual(['ecg']); // PCG is fetched on demand, not streamed
    expect(chunks[0]?.samples).toEqual(Array.from(ecgChunk(0).samples));
    const statusCount = technician.events.length;
    await waitFor(() => technician.events.length > statusCount + 1, 'more technician status events');
    expect(new Set(technician.events.map((e) => e.event))).toEqual(new Set(['status']));
    expect(JSON.stringify(technician.events)).not.toContain('mg/dL');
    operator.close();
    technician.close();
  });
});

describe('clinic screen PIN throttling', () => {
  const wrong = (url: string, from: string, pin: string, user = 'nurse') => call(url, '/api/login', { method: 'POST', body: { user, pin }, from });

  it('blocks a guessing client with a doubling delay while the same user logs in at another terminal', async () => {
    const { url, clock, store } = await startServer({ seed: false });
    const attacker = '127.0.0.2';
    for (let i = 0; i < 4; i++) expect((await wrong(url, attacker, `400${i}`)).status).toBe(401);
    const fifth = await wrong(url, attacker, '4004');
    expect([fifth.status, fifth.body]).toEqual([429, { error: 'locked', retryAfterMs: 60_000 }]);
    expect((await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' }, from: '127.0.0.1' })).status).toBe(200);
    expect((await wrong(url, attacker, '1111')).status).toBe(429); // the right PIN is not even checked
    expect(fifth.headers['retry-after']).toBe('60');
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      clock.advance(60_000 * 15);
      const reply = await wrong(url, attacker, `410${i}`);
      expect(reply.status).toBe(429);
      delays.push(reply.body.retryAfterMs as number);
    }
    expect(delays).toEqual([120_000, 240_000, 480_000, 900_000, 900_000, 900_000]);
    const locks = store.readAudit().filter((e) => e.action === 'ui-login-locked');
    expect(locks.map((e) => [e.actor, e.detail])).toContainEqual(['?/nurse', 'client 127.0.0.2 blocked 60 s after 5 wrong PINs']);
    expect(locks).toHaveLength(7);
    for (const entry of store.readAudit()) expect(`${entry.actor} ${entry.detail}`).not.toMatch(/\b(4[01]0\d|1111)\b/); // no PIN in the audit log
    expect(verifyAuditChain(store.readAudit()).ok).toBe(true);
  });

  it('lets one client check 103 PINs in its first day across all users, then 4 an hour', async () => {
    const { url, clock } = await startServer({ seed: false });
    const dayMs = 24 * 3_600_000;
    let guesses = 0;
    const start = clock.monotonic();
    while (clock.monotonic() - start < dayMs) {
      const reply = await wrong(url, '127.0.0.3', String(4000 + (guesses % 6000)), ['nurse', 'dr-li', 'tech'][guesses % 3]);
      guesses++;
      if (reply.status === 429) clock.advance(reply.body.retryAfterMs as number);
      else expect(reply.status).toBe(401);
    }
    expect(guesses).toBe(103);
  }, 120_000);

  it('refuses a user from new addresses while many addresses guess it, never from a terminal it logged in at', async () => {
    const { url, clock, store } = await startServer({ seed: false });
    await loginAs(url, 'nurse', '1111'); // 127.0.0.1: the nurse's own terminal
    for (let i = 0; i < 10; i++) expect((await wrong(url, `127.0.1.${i % 5}`, `50${String(i).padStart(2, '0')}`)).status).toBe(401);
    const refused = await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' }, from: '127.0.2.1' });
    expect(refused.status).toBe(429);
    expect(refused.body.retryAfterMs).toBe(15 * 60_000);
    expect((await call(url, '/api/login', { method: 'POST', body: { user: 'dr-li', pin: '2222' }, from: '127.0.2.1' })).status).toBe(200);
    expect((await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' }, from: '127.0.0.1' })).status).toBe(200);
    const guard = store.readAudit().filter((e) => e.action === 'ui-login-user-guard');
    expect(guard.map((e) => e.actor)).toEqual(['?/nurse']);
    clock.advance(15 * 60_000);
    expect((await call(url, '/api/login', { method: 'POST', body: { user: 'nurse', pin: '1111' }, from: '127.0.2.1' })).status).toBe(200);
  });
});

describe('clinic screen sessions', () => {
  it('closes a live stream when its session has been idle too long: watching is not activity', async () => {
    const { url, clock } = await startServer({ seed: false });
    const cookie = await loginAs(url, 'nurse', '1111');
    const live = stream(url, cookie);
    await waitFor(() => live.events.some((e) => e.event === 'status'), 'a status event');
    clock.advance(14 * 60_000);
    await waitFor(() => live.events.filter((e) => e.event === 'status').length >= 3, 'more status events');
    expect(live.ended()).toBe(false);
    clock.advance(2 * 60_000); // 16 min since the login, the last request
    await waitFor(() => live.ended(), 'the stream to close');
    expect((await call(url, '/api/session', { cookie })).status).toBe(401);
    live.close();
  });
});

describe('ui config', () => {
  it('defaults to off on 127.0.0.1:8080 and refuses an enabled screen without users, bad addresses and bad hashes', () => {
    const config = parseRuntimeConfig({ deviceId: 'd', dataDir: '.' }, '/tmp');
    expect(config.ui).toEqual({ enabled: false, listen: '127.0.0.1:8080', users: [], sessionIdleMinutes: 15, language: 'en' });
    const fields = (input: unknown) => {
      try {
        parseRuntimeConfig(input, '/tmp');
        return [];
      } catch (error) {
        return (error as ConfigErrors).problems.map((p) => p.field);
      }
    };
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { enabled: true } })).toEqual(['ui.users']);
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { listen: 'localhost' } })).toEqual(['ui.listen']);
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { listen: '127.0.0.1:70000' } })).toEqual(['ui.listen']);
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { users: [{ name: 'a', role: 'operator', pinHash: '1234' }] } })).toEqual(['ui.users[0].pinHash']);
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { users: [{ name: 'a', role: 'boss', pinHash: USERS[0]?.pinHash }] } })).toEqual(['ui.users[0].role']);
    expect(fields({ deviceId: 'd', dataDir: '.', ui: { users: [USERS[0], USERS[0]] } })).toEqual(['ui.users[1].name']);
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
  });

  it('`medge ui pin-hash` prints a hash of the PIN read from stdin', async () => {
    requireBuild();
    const child = spawn(process.execPath, [BIN, 'ui', 'pin-hash'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.end('246810\n');
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    const hash = out.trim();
    expect(verifyPin('246810', hash)).toBe(true);
    expect(parseRuntimeConfig({ deviceId: 'd', dataDir: '.', ui: { enabled: true, users: [{ name: 'n', role: 'operator', pinHash: hash }] } }, '/tmp').ui.users[0]?.pinHash).toBe(hash);
  });
});

describe('page strings', () => {
  it('has every key in both dictionaries, and every key the page uses exists', async () => {
    const dir = join(ROOT, 'firmware', 'ui', 'static');
    const { DICTIONARIES } = (await import(pathToFileURL(join(dir, 'i18n.js')).href)) as { DICTIONARIES: Record<string, Record<string, string>> };
    const en = Object.keys(DICTIONARIES.en ?? {}).sort();
    expect(Object.keys(DICTIONARIES['zh-CN'] ?? {}).sort()).toEqual(en);
    for (const [key, text] of Object.entries(DICTIONARIES['zh-CN'] ?? {})) if (!key.startsWith('lang.')) expect(text, key).not.toBe(DICTIONARIES.en?.[key]);
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    const app = readFileSync(join(dir, 'app.js'), 'utf8');
    const used = [...html.matchAll(/data-i18n(?:-label)?="([^"]+)"/g), ...app.matchAll(/\bt\('([^'$]+)'/g)].map((m) => m[1] as string);
    expect(used.length).toBeGreaterThan(50);
    for (const key of used) expect(en, key).toContain(key);
    // The templated keys: severities, roles, link states, record kinds, trend labels, analyses.
    for (const key of [
      'severity.1',
      'severity.2',
      'severity.3',
      'role.operator',
      'role.clinician',
      'role.technician',
      'device.link.backoff',
      'kind.chunk',
      'glucose.trend.falling-fast',
      'device.analysis.ecg',
      'device.analysis.glucose',
      'device.analysis.pcg',
      'alert.analysis-degraded',
    ]) {
      expect(en).toContain(key);
    }
  });

  it('routes finding kinds to their panels', () => {
    expect(panelOf('ecg-rate')).toBe('ecg');
    expect(panelOf('af')).toBe('ecg');
    expect(panelOf('afib-episode')).toBe('ecg');
    expect(panelOf('beat-class')).toBe('ecg');
    expect(panelOf('pcg-screening')).toBe('pcg');
    expect(panelOf('heart-sound')).toBe('pcg');
    expect(panelOf('glucose-forecast')).toBe('glucose');
    expect(panelOf('cgm-metrics')).toBe('glucose');
    expect(panelOf('storage')).toBe('other');
  });
});
