// A throw-away Mosquitto broker for tests and benchmarks. Plain ESM JavaScript (typed by
// mosquitto.d.ts next to it) so that `bench/` can run it without a build step; the vitest helper
// `test/helpers/mosquitto.ts` re-exports it, so there is one implementation.
//
// Facts checked against Mosquitto 2.0.11 (Debian):
// - Started as root it drops privileges to the `mosquitto` user after reading its config. The
//   config is read as root, so only files opened later (persistence, log files) must be reachable
//   by that user: the temp dir is chowned to it. `user root` is also accepted (it keeps root and
//   logs "Mosquitto should not be run as root/administrator"); it is used only when no `mosquitto`
//   user exists.
// - `max_inflight_messages 0` is valid in 2.0 and means "no maximum"; `max_queued_messages 100000`
//   is valid.

import { spawn } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin'];
const READY_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;

/** @param {string} path */
function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Path of the `mosquitto` broker binary: PATH first, then /usr/sbin and /usr/local/sbin.
 * @param {string} [name] binary name (default `mosquitto`; `mosquitto_pub` etc. work too)
 * @returns {string | undefined}
 */
export function findMosquitto(name = 'mosquitto') {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Whether a system dependency a test needs is present. Found: true. Missing: throws when
 * MEDGE_REQUIRE_SYSTEM=1 (CI images that must run everything), otherwise false so that the caller
 * can `it.skipIf(!available)` with a reason.
 * @param {string} name what is needed, e.g. `mosquitto`
 * @param {boolean} found
 * @param {string} [pkg] Debian package that provides it (default: `name`)
 * @returns {boolean}
 */
export function systemAvailable(name, found, pkg = name) {
  if (found) return true;
  if (process.env.MEDGE_REQUIRE_SYSTEM === '1') {
    throw new Error(`${name} is required (MEDGE_REQUIRE_SYSTEM=1) but was not found; install it: apt-get install -y ${pkg}`);
  }
  return false;
}

/** @returns {Promise<number>} a port that was free a moment ago on 127.0.0.1 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = address && typeof address === 'object' ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the port of a probe listener'))));
    });
  });
}

/**
 * @param {number} port
 * @returns {Promise<boolean>} whether 127.0.0.1:port accepts a TCP connection
 */
function canConnect(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** @returns {{ uid: number, gid: number } | undefined} the `mosquitto` system user, when there is one */
function mosquittoUser() {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'mosquitto' && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: not a Linux box we know how to handle; fall through
  }
  return undefined;
}

/**
 * @param {number} port
 * @param {boolean} asRootUser
 * @param {readonly string[]} extraConfig
 * @param {string} dir
 */
function configText(port, asRootUser, extraConfig, dir) {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'max_queued_messages 100000',
    'max_inflight_messages 0',
    // Without it every small PUBACK waits on Nagle's algorithm (the figure medge documents for Mosquitto sites).
    'set_tcp_nodelay true',
    ...(asRootUser ? ['user root'] : []),
    ...extraConfig.map((line) => line.replaceAll('{dir}', dir)),
    '',
  ].join('\n');
}

/** @type {Set<() => void>} */
const liveBrokers = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const cleanup of liveBrokers) cleanup();
  });
}

/**
 * Starts a Mosquitto broker on 127.0.0.1 with a config in a fresh temp dir and resolves once the
 * port accepts TCP connections.
 * @param {import('./mosquitto.js').StartMosquittoOptions} [options]
 * @returns {Promise<import('./mosquitto.js').MosquittoBroker>}
 */
export async function startMosquitto(options = {}) {
  const binary = options.binary ?? findMosquitto();
  if (!binary) throw new Error('mosquitto was not found in PATH, /usr/sbin or /usr/local/sbin; install it: apt-get install -y mosquitto');
  const extraConfig = options.extraConfig ?? [];
  const dir = mkdtempSync(join(tmpdir(), 'medge-mosquitto-'));
  chmodSync(dir, 0o755);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const dropTo = isRoot ? mosquittoUser() : undefined;
  if (dropTo) chownSync(dir, dropTo.uid, dropTo.gid);
  const asRootUser = isRoot && !dropTo;
  const confPath = join(dir, 'mosquitto.conf');

  /** @type {import('node:child_process').ChildProcess | undefined} */
  let child;
  /** @type {Promise<void>} */
  let exited = Promise.resolve();
  let port = options.port ?? 0;
  let stderrTail = '';
  let removed = false;

  const cleanupSync = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!removed) {
      removed = true;
      rmSync(dir, { recursive: true, force: true });
    }
  };
  liveBrokers.add(cleanupSync);
  installExitHook();

  /** Spawns on `port` and waits for it to accept connections; rejects with stderr if it dies first. */
  const launch = async () => {
    // Something else listening there would answer the readiness probe in mosquitto's place.
    if (await canConnect(port)) throw new Error(`port ${port} on 127.0.0.1 is already in use (address already in use); cannot start mosquitto there`);
    writeFileSync(confPath, configText(port, asRootUser, extraConfig, dir), { mode: 0o644 });
    stderrTail = '';
    const proc = spawn(binary, ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    // A broker someone forgot to stop must not keep the test or bench process alive: the exit hook kills it.
    proc.unref();
    /** @type {import('node:net').Socket | null} */ (proc.stderr)?.unref();
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
    });
    exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    let died = false;
    exited.then(() => {
      died = true;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (died) throw new Error(`mosquitto exited (code ${proc.exitCode}, signal ${proc.signalCode}) before listening on port ${port}: ${stderrTail.trim()}`);
      if (await canConnect(port)) {
        if (died) continue;
        return;
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`mosquitto did not accept connections on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms: ${stderrTail.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  /** @param {NodeJS.Signals} signal */
  const halt = async (signal) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  // A port picked here can be taken by someone else before mosquitto binds it: retry with another.
  const attempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    if (options.port === undefined) port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      const inUse = /address already in use/i.test(String(/** @type {Error} */ (error).message));
      if (!inUse || attempt >= attempts) {
        cleanupSync();
        liveBrokers.delete(cleanupSync);
        throw error;
      }
    }
  }

  return {
    get url() {
      return `mqtt://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return child?.pid ?? -1;
    },
    dir,
    get stderr() {
      return stderrTail;
    },
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      await launch();
    },
    async dispose() {
      await halt('SIGTERM');
      cleanupSync();
      liveBrokers.delete(cleanupSync);
    },
  };
}
