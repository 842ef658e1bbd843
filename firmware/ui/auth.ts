/**
 * Who may do what on the clinic screen: PIN hashes, sessions and the role permissions the server
 * enforces on every request (the browser only hides what the server would refuse anyway).
 *
 * PINs are stored as salted scrypt hashes `scrypt$N$r$p$salt$hash` (salt and hash base64). A PIN
 * is checked in constant time. Wrong PINs are throttled per client address with an escalating delay,
 * and per user only against terminals the user has not logged in from (`login-throttle.ts`: a
 * 4-digit PIN has only 10,000 values, and a LAN client must not lock staff out). Sessions are random 256-bit tokens held in
 * memory (a restart logs everyone out) that expire after an idle period.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { ConfigError } from '../../device-sdk/errors.js';
import type { UiRole, UiUserConfig } from '../config.js';
import { type LockStarted, type LoginRefusal, LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

/** What a request may do. Each API route names the one permission it needs. */
export const PERMISSIONS = ['view-status', 'view-config', 'view-audit', 'view-patient-data', 'ack-alerts'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Least privilege per role. A technician maintains the device (configuration, health, the audit
 * log) and sees no patient data; an operator watches the live data and acknowledges alerts; a
 * clinician may do everything.
 */
export const ROLE_PERMISSIONS: Readonly<Record<UiRole, readonly Permission[]>> = Object.freeze({
  technician: Object.freeze(['view-status', 'view-config', 'view-audit'] as const),
  operator: Object.freeze(['view-status', 'view-patient-data', 'ack-alerts'] as const),
  clinician: Object.freeze([...PERMISSIONS]),
});

export function can(role: UiRole, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

export interface PinHashParams {
  /** scrypt CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  keyLength: number;
  saltLength: number;
}

/** scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB of memory per check). */
export const PIN_HASH_PARAMS: Readonly<PinHashParams> = Object.freeze({ N: 16_384, r: 8, p: 1, keyLength: 32, saltLength: 16 });

/** PINs are 4-12 digits. */
export const PIN_PATTERN = /^[0-9]{4,12}$/;

/** The checked PIN, its parameters and a fresh salt; throws `ConfigError` for a PIN that is not 4-12 digits. */
function prepare(pin: string, params: Partial<PinHashParams>): { cost: { N: number; r: number; p: number; maxmem: number }; keyLength: number; salt: Buffer } {
  if (!PIN_PATTERN.test(pin)) throw new ConfigError('pin', '(hidden)', 'is not 4 to 12 digits', 'choose a PIN of 4 to 12 digits (0-9)');
  const { N, r, p, keyLength, saltLength } = { ...PIN_HASH_PARAMS, ...params };
  return { cost: { N, r, p, maxmem: 256 * N * r }, keyLength, salt: randomBytes(saltLength) };
}

function format(cost: { N: number; r: number; p: number }, salt: Buffer, hash: Buffer): string {
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Hashes a PIN with a fresh random salt; throws `ConfigError` for a PIN that is not 4-12 digits. */
export function hashPin(pin: string, params: Partial<PinHashParams> = {}): string {
  const { cost, keyLength, salt } = prepare(pin, params);
  return format(cost, salt, scryptSync(pin, salt, keyLength, cost));
}

/** `hashPin` on the libuv thread pool, for callers that have other work to overlap with it. */
export async function hashPinAsync(pin: string, params: Partial<PinHashParams> = {}): Promise<string> {
  const { cost, keyLength, salt } = prepare(pin, params);
  const hash = await new Promise<Buffer>((resolve, reject) => scrypt(pin, salt, keyLength, cost, (error, key) => (error ? reject(error) : resolve(key))));
  return format(cost, salt, hash);
}

/** True when `pin` matches `pinHash`. A malformed hash never matches. */
export function verifyPin(pin: string, pinHash: string): boolean {
  const parts = pinHash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((v) => Number.isInteger(v) && v > 0) || N > 1_048_576 || (N & (N - 1)) !== 0) return false;
  const salt = Buffer.from(parts[4] as string, 'base64');
  const expected = Buffer.from(parts[5] as string, 'base64');
  if (expected.length < 16) return false;
  const actual = scryptSync(pin, salt, expected.length, { N, r, p, maxmem: 256 * N * r });
  return timingSafeEqual(actual, expected);
}

export interface Session {
  token: string;
  user: string;
  role: UiRole;
  /** `role/name`: the actor of every audit entry written for this session. */
  actor: string;
  createdMs: number;
  lastSeenMs: number;
}

/**
 * A refused login. `locked`: the PIN was not checked (`lockedBy` says whether this client or the
 * per-user guard); `lockStarted` lists the blocks this failure began, for the audit log.
 */
export interface LoginFailure {
  ok: false;
  reason: 'unknown-user' | 'wrong-pin' | 'locked';
  retryAfterMs?: number;
  lockedBy?: LoginRefusal['scope'];
  lockStarted?: LockStarted[];
}

export type LoginResult = { ok: true; session: Session } | LoginFailure;

/** Users, login checks with throttling, and the live sessions. */
export class SessionManager {
  private readonly users: ReadonlyMap<string, UiUserConfig>;
  private readonly sessions = new Map<string, Session>();
  private readonly throttle: LoginThrottle;
  private readonly idleMs: number;
  private readonly clock: Clock;

  constructor(users: readonly UiUserConfig[], options: { idleMs: number; clock?: Clock; throttle?: Partial<LoginThrottleOptions> }) {
    this.users = new Map(users.map((u) => [u.name, u]));
    this.throttle = new LoginThrottle(options.throttle);
    this.idleMs = options.idleMs;
    this.clock = options.clock ?? systemClock;
  }

  hasUser(name: string): boolean {
    return this.users.has(name);
  }

  /** Names and roles for the login screen (no hashes). */
  listUsers(): { name: string; role: UiRole }[] {
    return [...this.users.values()].map((u) => ({ name: u.name, role: u.role }));
  }

  /** Checks `pin` for user `name` from `client` (a `clientKey`), unless throttling refuses the attempt first. */
  login(name: string, pin: string, client: string): LoginResult {
    const now = this.clock.monotonic();
    const user = this.users.get(name);
    const refusal = this.throttle.check(client, user === undefined ? '' : name, now);
    if (refusal !== undefined) return { ok: false, reason: 'locked', retryAfterMs: refusal.retryAfterMs, lockedBy: refusal.scope };
    if (user === undefined || !verifyPin(pin, user.pinHash)) {
      const lockStarted = this.throttle.fail(client, user === undefined ? '' : name, now);
      const blocked = lockStarted.find((l) => l.scope === 'client');
      if (blocked !== undefined) return { ok: false, reason: 'locked', retryAfterMs: blocked.durationMs, lockedBy: 'client', lockStarted };
      const failure: LoginFailure = { ok: false, reason: user === undefined ? 'unknown-user' : 'wrong-pin' };
      return lockStarted.length === 0 ? failure : { ...failure, lockStarted };
    }
    this.throttle.succeed(client, name, now);
    const session: Session = {
      token: randomBytes(32).toString('base64url'),
      user: user.name,
      role: user.role,
      actor: `${user.role}/${user.name}`,
      createdMs: now,
      lastSeenMs: now,
    };
    this.sessions.set(session.token, session);
    return { ok: true, session };
  }

  /** The live session of a token, refreshing its idle timer; undefined when unknown or expired. */
  touch(token: string | undefined): Session | undefined {
    if (token === undefined) return undefined;
    const session = this.sessions.get(token);
    if (session === undefined) return undefined;
    const now = this.clock.monotonic();
    if (now - session.lastSeenMs > this.idleMs) {
      this.sessions.delete(token);
      return undefined;
    }
    session.lastSeenMs = now;
    return session;
  }

  /** Like `touch`, without counting as activity (a live stream must not keep a screen logged in). */
  peek(token: string): Session | undefined {
    const session = this.sessions.get(token);
    if (session === undefined) return undefined;
    if (this.clock.monotonic() - session.lastSeenMs > this.idleMs) {
      this.sessions.delete(token);
      return undefined;
    }
    return session;
  }

  logout(token: string): void {
    this.sessions.delete(token);
  }

  clear(): void {
    this.sessions.clear();
  }
}
