/**
 * Throttling of clinic screen PIN guesses, per client address first and per user only as a soft guard.
 *
 * - Per client address (IPv4, or the /64 of an IPv6 address): the first `freeFailures` wrong PINs
 *   cost nothing; the failure that reaches `freeFailures` and every one after it blocks that client
 *   (for every user) for `baseDelayMs`, doubling per failure up to `maxDelayMs`. A successful login
 *   from the client clears its count; so does `forgetMs` without a failure. Someone else's failures
 *   at another terminal never block a client.
 * - Per user, against guessing spread over many addresses: once `userMaxFailures` wrong PINs for a
 *   user fall within `userWindowMs` (from all clients), that user's PIN is not checked from clients
 *   that have not logged in as that user within `knownClientMs`, until the window has moved on.
 *   Terminals the user already works at are never refused by this guard.
 *
 * With the defaults (5 free, 1 min doubling to 15 min; 10 per user per 15 min): one client checks
 * 11 PINs in its first hour, 103 in its first day and 4 an hour (96 a day) after that, across all
 * users, so 10,000 PINs take at least 104 days (half of them 52); one client alone never trips the
 * per-user guard (at most 9 failures in 15 min). Many addresses together check at most 40 PINs an
 * hour per user (960 a day: at least 10.4 days for 10,000 PINs).
 */
import { isIPv6 } from 'node:net';
import { ConfigError } from '../../device-sdk/errors.js';

export interface LoginThrottleOptions {
  /** Wrong PINs from one client before any delay. */
  freeFailures: number;
  /** Block after the `freeFailures`-th failure; doubled for each further one. */
  baseDelayMs: number;
  /** The longest block of one client. */
  maxDelayMs: number;
  /** A client's failure count is forgotten after this long without a failure. */
  forgetMs: number;
  /** The per-user guard: this many failures for one user within `userWindowMs`... */
  userMaxFailures: number;
  userWindowMs: number;
  /** ...refuse that user from clients without a successful login as that user within this period. */
  knownClientMs: number;
  /** Clients remembered at most (least recently failed forgotten first). */
  maxClients: number;
}

export const LOGIN_THROTTLE_DEFAULTS: Readonly<LoginThrottleOptions> = Object.freeze({
  freeFailures: 5,
  baseDelayMs: 60_000,
  maxDelayMs: 15 * 60_000,
  forgetMs: 24 * 3_600_000,
  userMaxFailures: 10,
  userWindowMs: 15 * 60_000,
  knownClientMs: 30 * 24 * 3_600_000,
  maxClients: 10_000,
});

/** Why a login attempt is refused before its PIN is checked. */
export interface LoginRefusal {
  /** `client`: this address failed too often; `user`: the per-user guard against distributed guessing. */
  scope: 'client' | 'user';
  retryAfterMs: number;
}

/** A block that a failure has just started (for the audit log). */
export interface LockStarted {
  scope: 'client' | 'user';
  client: string;
  user: string;
  /** Failures of the client (scope client) or of the user within the window (scope user). */
  failures: number;
  durationMs: number;
}

interface ClientState {
  failures: number;
  lastFailureMs: number;
  blockedUntil: number;
}

/** The key failures are counted under: an IPv4 address (also when IPv4-mapped), or the /64 of an IPv6 one. */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') && tail !== '' ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Failure bookkeeping for `SessionManager.login`; all times are `Clock.monotonic()` milliseconds. */
export class LoginThrottle {
  private readonly options: Readonly<LoginThrottleOptions>;
  private readonly clients = new Map<string, ClientState>();
  /** User → monotonic times of its latest failures (at most `userMaxFailures`). */
  private readonly userFailures = new Map<string, number[]>();
  /** `user\0client` → the time of the last successful login. */
  private readonly known = new Map<string, number>();

  constructor(options: Partial<LoginThrottleOptions> = {}) {
    const merged = { ...LOGIN_THROTTLE_DEFAULTS, ...options };
    for (const [field, value] of Object.entries(merged)) {
      const min = field === 'freeFailures' || field === 'userMaxFailures' || field === 'maxClients' ? 1 : 0;
      if (!Number.isInteger(value) || value < min) throw new ConfigError(`loginThrottle.${field}`, value, `is not an integer >= ${min}`, `set ${field} to an integer of at least ${min} or leave it out`);
    }
    this.options = Object.freeze(merged);
  }

  /** Why `client` may not try `user` now, or undefined when the PIN may be checked. */
  check(client: string, user: string, now: number): LoginRefusal | undefined {
    const state = this.clients.get(client);
    if (state !== undefined && state.blockedUntil > now) return { scope: 'client', retryAfterMs: Math.ceil(state.blockedUntil - now) };
    const guardUntil = this.userGuardUntil(user, now);
    if (guardUntil > now && !this.isKnown(client, user, now)) return { scope: 'user', retryAfterMs: Math.ceil(guardUntil - now) };
    return undefined;
  }

  /** Counts a wrong PIN (or unknown user name, `user` then empty) from `client`; returns the blocks it starts. */
  fail(client: string, user: string, now: number): LockStarted[] {
    const o = this.options;
    const started: LockStarted[] = [];
    const previous = this.clients.get(client);
    const failures = previous !== undefined && now - previous.lastFailureMs < o.forgetMs ? previous.failures + 1 : 1;
    const state: ClientState = { failures, lastFailureMs: now, blockedUntil: 0 };
    if (failures >= o.freeFailures) {
      const durationMs = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** Math.min(30, failures - o.freeFailures));
      state.blockedUntil = now + durationMs;
      started.push({ scope: 'client', client, user, failures, durationMs });
    }
    this.clients.delete(client); // re-inserted last: the map's order is least recently failed first
    this.clients.set(client, state);
    if (this.clients.size > o.maxClients) this.clients.delete(this.clients.keys().next().value as string);
    if (user !== '') {
      const wasGuarded = this.userGuardUntil(user, now) > now;
      const times = [...(this.userFailures.get(user) ?? []), now].slice(-o.userMaxFailures);
      this.userFailures.set(user, times);
      const until = this.userGuardUntil(user, now);
      if (!wasGuarded && until > now) started.push({ scope: 'user', client, user, failures: times.length, durationMs: until - now });
    }
    return started;
  }

  /** A successful login: the client's count is cleared and it is known for `user`. */
  succeed(client: string, user: string, now: number): void {
    this.clients.delete(client);
    this.known.set(`${user}\0${client}`, now);
  }

  /** Until when the per-user guard refuses unknown clients (a time in the past when it does not). */
  private userGuardUntil(user: string, now: number): number {
    const times = this.userFailures.get(user);
    if (times === undefined || times.length < this.options.userMaxFailures) return 0;
    const until = (times[0] as number) + this.options.userWindowMs;
    return until > now ? until : 0;
  }

  private isKnown(client: string, user: string, now: number): boolean {
    const at = this.known.get(`${user}\0${client}`);
    return at !== undefined && now - at <= this.options.knownClientMs;
  }
}
