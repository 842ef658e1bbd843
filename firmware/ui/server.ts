/**
 * The clinic screen: a small node:http server inside the device runtime. It serves the page and its
 * assets from `static/` (all local: the page works with no network) and a JSON API with live
 * updates over Server-Sent Events.
 *
 * Access control is enforced here, not in the browser: each route needs one permission of the
 * session's role (`auth.ts`). Sessions are HttpOnly, SameSite=Strict cookies; state-changing
 * requests must come from the page's own origin, and the Host header must name the listening
 * address (no DNS rebinding). Every data access is written to the ledger's audit log with the
 * actor `role/name` and the action; details never carry patient identifiers.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { ConfigError } from '../../device-sdk/errors.js';
import type { Logger } from '../../device-sdk/log.js';
import type { OutboxStore } from '../../device-sdk/store/outbox-store.js';
import { verifyAuditChain } from '../../device-sdk/store/audit.js';
import type { RuntimeConfig, UiConfig } from '../config.js';
import type { RuntimeStatus } from '../status.js';
import { can, type Permission, ROLE_PERMISSIONS, type Session, SessionManager } from './auth.js';
import { clientKey } from './login-throttle.js';
import { type AlertView, ClinicData, type LiveRecord, panelOf, signalOf, chunkView } from './clinic-data.js';
import { listenOn } from '../../device-sdk/listen.js';

/** What the clinic screen needs from the runtime. */
export interface ClinicServerDeps {
  /** The runtime's config (the technician's configuration view shows it, without PIN hashes). */
  config: RuntimeConfig;
  /** The device ledger: history, live tail, audit log. */
  store: OutboxStore;
  /** The latest status the runtime reported (never triggers a new measurement). */
  status: () => RuntimeStatus | undefined;
  clock?: Clock;
  logger?: Logger;
  /** Directory of the page's files; defaults to `static/` next to this module. */
  staticDir?: string;
  /** Called once an alert is newly acknowledged (after the audit log has it), with its ledger seq: the runtime's alarm outputs stop counting it as active. */
  onAcknowledged?: (seq: number) => void;
}

export const SESSION_COOKIE = 'medge_session';

/** `GET /api/alerts` returns at most this many unacknowledged alerts (most severe first) besides the newest ones, and counts the rest. */
export const UNACKNOWLEDGED_SHOWN = 500;

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

/** Files the page may load: one explicit list, nothing else is read from disk. */
const STATIC_FILES: Readonly<Record<string, string>> = Object.freeze({
  '/': 'index.html',
  '/index.html': 'index.html',
  '/static/app.js': 'app.js',
  '/static/i18n.js': 'i18n.js',
  '/static/charts.js': 'charts.js',
  '/static/style.css': 'style.css',
  '/favicon.ico': 'favicon.svg',
  '/static/favicon.svg': 'favicon.svg',
});

const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
});

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
});

/** `host:port` → the parts `listen()` takes (brackets of an IPv6 literal removed). */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) throw new ConfigError('ui.listen', listen, 'is not a host:port address', 'use e.g. "127.0.0.1:8080" or "[::1]:8080"');
  return { host: (match[1] ?? match[2]) as string, port };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

async function readJson(req: IncomingMessage, maxBytes = 4096): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, 'body-too-large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'bad-json');
  }
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `bad-${name}`);
  return n;
}

interface SseClient {
  res: ServerResponse;
  session: Session;
  patientData: boolean;
  /** Waveform is dropped (never queued) while the socket is congested. */
  congested: boolean;
}

/**
 * The clinic screen server. `start()` listens on `config.ui.listen` and resolves with the URL;
 * `stop()` closes live streams and the listener. Sessions live in memory.
 */
export class ClinicServer {
  private readonly ui: UiConfig;
  private readonly deps: ClinicServerDeps;
  private readonly clock: Clock;
  private readonly sessions: SessionManager;
  private readonly data: ClinicData;
  private readonly staticDir: string;
  private readonly clients = new Set<SseClient>();
  private server: Server | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private allowedHosts = new Set<string>();
  url: string | undefined;

  constructor(deps: ClinicServerDeps) {
    this.deps = deps;
    this.ui = deps.config.ui;
    this.clock = deps.clock ?? systemClock;
    this.sessions = new SessionManager(this.ui.users, { idleMs: this.ui.sessionIdleMinutes * 60_000, clock: this.clock });
    this.data = new ClinicData(deps.store);
    this.staticDir = deps.staticDir ?? STATIC_DIR;
  }

  async start(): Promise<string> {
    const { host, port } = parseListen(this.ui.listen);
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.fail(res, error));
    });
    await listenOn(server, port, host, 'the clinic screen');
    this.server = server;
    const address = server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${shown}:${address.port}/`;
    const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
    this.allowedHosts = new Set([`${shown}:${address.port}`, `${host}:${address.port}`, ...(loopback ? [`localhost:${address.port}`, `127.0.0.1:${address.port}`, `[::1]:${address.port}`] : [])]);
    this.statusTimer = setInterval(() => this.pushStatus(), Math.max(250, this.deps.config.statusIntervalMs));
    this.statusTimer.unref();
    this.deps.logger?.info({ url: this.url, users: this.ui.users.length }, 'clinic screen listening');
    return this.url;
  }

  async stop(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.data.stop();
    for (const client of this.clients) client.res.end();
    this.clients.clear();
    this.sessions.clear();
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private audit(session: Session | undefined, action: string, detail = ''): number {
    return this.deps.store.appendAudit({ tMs: this.clock.now(), actor: session?.actor ?? 'anonymous', action, detail }).id;
  }

  private fail(res: ServerResponse, error: unknown): void {
    if (error instanceof HttpError) {
      if (!res.headersSent) this.json(res, error.status, { error: error.code });
      else res.end();
      return;
    }
    this.deps.logger?.error({ err: (error as Error).message }, 'clinic screen request failed');
    if (!res.headersSent) this.json(res, 500, { error: 'internal' });
    else res.end();
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  /** The request's session with `permission`, or an HttpError (401 without a session, 403 without the permission). */
  private require(req: IncomingMessage, permission: Permission): Session {
    const session = this.sessions.touch(cookieOf(req, SESSION_COOKIE));
    if (session === undefined) throw new HttpError(401, 'login-required');
    if (!can(session.role, permission)) {
      this.audit(session, 'ui-denied', `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname} needs ${permission}`);
      throw new HttpError(403, 'forbidden');
    }
    return session;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.allowedHosts.has(req.headers.host ?? '')) throw new HttpError(421, 'wrong-host');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) throw new HttpError(403, 'cross-origin');
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'json-only');
    }
    const path = url.pathname;
    if (method === 'GET' && STATIC_FILES[path] !== undefined) return this.serveStatic(res, STATIC_FILES[path]);
    if (!path.startsWith('/api/')) throw new HttpError(404, 'not-found');
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /api/users':
        return this.json(res, 200, { users: this.sessions.listUsers(), language: this.ui.language, deviceId: this.deps.config.deviceId });
      case 'POST /api/login':
        return this.login(req, res);
      case 'POST /api/logout': {
        const token = cookieOf(req, SESSION_COOKIE);
        const session = this.sessions.touch(token);
        if (token !== undefined) this.sessions.logout(token);
        if (session) this.audit(session, 'ui-logout');
        for (const client of this.clients) if (client.session.token === token) client.res.end();
        return this.json(res, 200, { ok: true }, { 'Set-Cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
      }
      case 'GET /api/session': {
        const session = this.require(req, 'view-status');
        return this.json(res, 200, this.sessionView(session));
      }
      case 'GET /api/status': {
        const session = this.require(req, 'view-status');
        this.audit(session, 'ui-view-status');
        return this.json(res, 200, { status: this.statusFor(session) ?? null });
      }
      case 'GET /api/config': {
        const session = this.require(req, 'view-config');
        this.audit(session, 'ui-view-config');
        const { users, ...ui } = this.deps.config.ui;
        return this.json(res, 200, { config: { ...this.deps.config, ui: { ...ui, users: users.map((u) => ({ name: u.name, role: u.role })) } } });
      }
      case 'GET /api/audit': {
        const session = this.require(req, 'view-audit');
        const limit = intParam(url, 'limit', 50, 1, 500);
        this.audit(session, 'ui-view-audit', `last ${limit}`);
        const entries = this.data.recentAudit(limit);
        const chain = verifyAuditChain(this.deps.store.readAudit(0, Number.MAX_SAFE_INTEGER));
        return this.json(res, 200, { entries, chain: { ok: chain.ok, entries: chain.entries, head: chain.head, ...(chain.firstBreak ? { firstBreak: chain.firstBreak } : {}) } });
      }
      case 'GET /api/events':
        return this.events(req, res);
      case 'GET /api/history':
        return this.history(req, res, url);
      case 'GET /api/alerts': {
        const session = this.require(req, 'view-patient-data');
        const limit = intParam(url, 'limit', 50, 1, 500);
        this.audit(session, 'ui-view-alerts', `last ${limit} and unacknowledged`);
        // The newest alerts, plus every unacknowledged one however many newer alerts followed it.
        const open = this.data.unacknowledged(UNACKNOWLEDGED_SHOWN);
        const newest = this.data.recent('alert', limit).map((r) => this.data.alertView(r.seq, r.value));
        const bySeq = new Map([...open.alerts, ...newest].map((a) => [a.seq, a]));
        const alerts = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
        return this.json(res, 200, { alerts, unacknowledged: { total: open.total, shown: alerts.filter((a) => a.ack === undefined).length } });
      }
      case 'GET /api/pcg':
        return this.pcg(req, res, url);
      default: {
        const ack = /^\/api\/alerts\/(\d+)\/ack$/.exec(path);
        if (method === 'POST' && ack) return this.acknowledge(req, res, Number(ack[1]));
        throw new HttpError(404, 'not-found');
      }
    }
  }

  private sessionView(session: Session): unknown {
    return { user: session.user, role: session.role, actor: session.actor, permissions: ROLE_PERMISSIONS[session.role], deviceId: this.deps.config.deviceId };
  }

  private async serveStatic(res: ServerResponse, file: string): Promise<void> {
    let body: Buffer;
    try {
      body = await readFile(join(this.staticDir, file));
    } catch {
      throw new HttpError(404, 'not-found');
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length });
    res.end(body);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const user = typeof body.user === 'string' ? body.user : '';
    const pin = typeof body.pin === 'string' ? body.pin : '';
    const result = this.sessions.login(user, pin, clientKey(req.socket.remoteAddress));
    if (!result.ok) {
      // The name is a staff login name (config), never a patient identifier; unknown names are not echoed.
      // A refusal while locked is not audited (the PIN was not checked; a LAN client could flood the log): the lock itself is.
      const actor = this.sessions.hasUser(user) ? `?/${user}` : 'anonymous';
      if (result.lockedBy === undefined || result.lockStarted !== undefined) {
        this.deps.store.appendAudit({ tMs: this.clock.now(), actor, action: 'ui-login-failed', detail: result.lockStarted === undefined ? result.reason : 'wrong-pin' });
      }
      for (const lock of result.lockStarted ?? []) {
        const seconds = Math.ceil(lock.durationMs / 1000);
        const detail =
          lock.scope === 'client'
            ? `client ${lock.client} blocked ${seconds} s after ${lock.failures} wrong PINs`
            : `${lock.failures} wrong PINs for this user from all clients within the guard window: clients it has not logged in from refused for ${seconds} s`;
        this.deps.store.appendAudit({ tMs: this.clock.now(), actor, action: lock.scope === 'client' ? 'ui-login-locked' : 'ui-login-user-guard', detail });
        this.deps.logger?.warn({ scope: lock.scope, client: lock.client, failures: lock.failures, seconds }, 'clinic screen login locked');
      }
      const status = result.reason === 'locked' ? 429 : 401;
      return this.json(res, status, { error: result.reason, ...(result.retryAfterMs ? { retryAfterMs: result.retryAfterMs } : {}) }, result.retryAfterMs ? { 'Retry-After': String(Math.ceil(result.retryAfterMs / 1000)) } : {});
    }
    this.audit(result.session, 'ui-login');
    this.json(res, 200, this.sessionView(result.session), {
      'Set-Cookie': `${SESSION_COOKIE}=${result.session.token}; HttpOnly; SameSite=Strict; Path=/`,
    });
  }

  /** Status for a role: without the permission to see patient data, the last alert's text is left out. */
  private statusFor(session: Session): RuntimeStatus | undefined {
    const status = this.deps.status();
    if (status === undefined || can(session.role, 'view-patient-data')) return status;
    const { lastAlert: _hidden, ...rest } = status;
    return rest;
  }

  private events(req: IncomingMessage, res: ServerResponse): void {
    const session = this.require(req, 'view-status');
    const patientData = can(session.role, 'view-patient-data');
    this.audit(session, 'ui-view-live', patientData ? 'status, ecg, readings, findings, alerts' : 'status');
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const client: SseClient = { res, session, patientData, congested: false };
    this.clients.add(client);
    res.on('drain', () => (client.congested = false));
    const status = this.statusFor(session);
    if (status) this.send(client, 'status', status);
    if (patientData && this.unsubscribe === undefined) this.unsubscribe = this.data.subscribe((record) => this.broadcast(record));
    req.on('close', () => {
      this.clients.delete(client);
      if (![...this.clients].some((c) => c.patientData)) {
        this.unsubscribe?.();
        this.unsubscribe = undefined;
      }
    });
  }

  private send(client: SseClient, event: string, data: unknown): void {
    const ok = client.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (!ok) client.congested = true;
  }

  private broadcast(record: LiveRecord): void {
    if (record.kind === 'chunk' && record.value.signal !== 'ecg') return; // PCG is fetched on demand (/api/pcg)
    for (const client of this.clients) {
      if (!client.patientData) continue;
      if (record.kind === 'chunk' && client.congested) continue;
      this.send(client, record.kind, record.value);
    }
  }

  /** Every status interval: the status to every stream; streams of expired (idle) sessions are closed. */
  private pushStatus(): void {
    for (const client of this.clients) {
      if (this.sessions.peek(client.session.token) === undefined) {
        client.res.end();
        this.clients.delete(client);
        continue;
      }
      const status = this.statusFor(client.session);
      if (status) this.send(client, 'status', status);
      else client.res.write(': waiting for the runtime\n\n');
    }
  }

  private history(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const session = this.require(req, 'view-patient-data');
    const kind = url.searchParams.get('kind') ?? 'reading';
    const limit = intParam(url, 'limit', 200, 1, 2000);
    const type = url.searchParams.get('type');
    const panel = url.searchParams.get('panel');
    if (kind === 'reading') {
      this.audit(session, 'ui-view-history', `reading ${type ?? 'all'} last ${limit}`);
      const rows = this.data.recent('reading', limit, (r) => type === null || r.type === type);
      return this.json(res, 200, { readings: rows.map((r) => ({ ...r.value, seq: r.seq })) });
    }
    if (kind === 'finding') {
      this.audit(session, 'ui-view-history', `finding ${panel ?? 'all'} last ${limit}`);
      const rows = this.data.recent('finding', limit, (f) => panel === null || panelOf(f.kind) === panel);
      return this.json(res, 200, { findings: rows.map((r) => this.data.findingView(r.seq, r.value)) });
    }
    if (kind === 'chunk') {
      this.audit(session, 'ui-view-history', `ecg last ${limit} chunks`);
      const rows = this.data.recent('chunk', limit, (c) => signalOf(c) === 'ecg', 2000);
      return this.json(res, 200, { chunks: rows.map((r) => chunkView(r.seq, r.value)) });
    }
    throw new HttpError(400, 'bad-kind');
  }

  /** The last `seconds` of phonocardiogram from the ledger, with the heart-sound findings of that time. */
  private pcg(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const session = this.require(req, 'view-patient-data');
    const seconds = intParam(url, 'seconds', 5, 1, 30);
    this.audit(session, 'ui-view-pcg', `last ${seconds} s`);
    // 64 chunks cover the longest request (30 s) at chunk lengths of 0.5 s and more.
    const recent = this.data.recent('chunk', 64, (c) => signalOf(c) === 'pcg', 2000);
    const sensor = recent.at(-1)?.value.sensor;
    const chunks = recent.filter((r) => r.value.sensor === sensor);
    const end = chunks.at(-1);
    const wanted: typeof chunks = [];
    if (end) {
      const endMs = end.value.t0 + (end.value.samples.length * 1000) / end.value.rateHz;
      for (let i = chunks.length - 1; i >= 0; i--) {
        const c = chunks[i] as (typeof chunks)[number];
        if (c.value.t0 < endMs - seconds * 1000) break;
        wanted.unshift(c);
      }
    }
    const findings = this.data.recent('finding', 20, (f) => panelOf(f.kind) === 'pcg').map((r) => this.data.findingView(r.seq, r.value));
    return this.json(res, 200, { sensor: sensor ?? null, chunks: wanted.map((r) => chunkView(r.seq, r.value)), findings });
  }

  private async acknowledge(req: IncomingMessage, res: ServerResponse, seq: number): Promise<void> {
    const session = this.require(req, 'ack-alerts');
    await readJson(req);
    const alert: AlertView | undefined = this.data.alert(seq);
    if (alert === undefined) throw new HttpError(404, 'no-such-alert');
    const { ack, already } = this.data.acknowledge(alert, session.actor, this.clock.now());
    const updated = { ...alert, ack };
    if (!already) {
      this.deps.onAcknowledged?.(alert.seq);
      for (const client of this.clients) if (client.patientData) this.send(client, 'alert', updated);
    }
    return this.json(res, already ? 409 : 200, { alert: updated, already });
  }
}
