// Pseudo-terminal pairs for the simulator's serial devices and for serial tests: socat joins two
// ptys, and serialport opens the slave ends through the symlinks socat creates. What a driver sees
// is real serialport on real terminals; the simulated device holds the other end.
//
//   const pair = await createPtyPair();   // pair.a for the device, pair.b for the driver
//   await pair.kill(); await pair.replug(); // unplug / replug at the same paths
//   await pair.close();
//
// Tests import it through test/helpers/pty.ts, which adds `systemAvailable` (skip without socat).
//
// Facts checked against socat 1.7.4.4 on Linux 6.x:
// - `socat -d -d` prints "PTY is /dev/pts/N" for each end, then "starting data transfer loop" once
//   it forwards bytes; the links exist before that line.
// - SIGTERM: socat removes its links and exits 143. SIGKILL: the links stay behind, dangling (their
//   /dev/pts/N is gone and may be reused by the next pty), so `kill()` removes them, as udev removes
//   /dev/ttyUSB0 on unplug. A new socat overwrites existing links.
// - After SIGKILL both slave ends see the hang-up at once: serialport's poller reports "bad file
//   descriptor", its read fails and the port closes with a DisconnectedError.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const READY_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 5_000;

/** socat processes still running, killed when the process exits so none is left behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Path of the `socat` binary: PATH, then /usr/bin and /usr/local/bin. */
export function findSocat(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'socat');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface CreatePtyPairOptions {
  /** Directory for the links `a` and `b`; a temp dir (removed by `close()`) when omitted. */
  dir?: string;
  /** socat binary (default `findSocat()`). */
  binary?: string;
}

export interface PtyPair {
  /** Link to one pty end: open it with serialport. */
  readonly a: string;
  /** Link to the other end. */
  readonly b: string;
  readonly dir: string;
  /** Pid of the current socat (changes on `replug()`); undefined while unplugged. */
  readonly pid: number | undefined;
  /** Last 4 kB of socat's stderr (its -d -d notices). */
  readonly stderr: string;
  /** Unplug: SIGKILL socat, wait for it to exit, remove the dangling links. Both ends see the hang-up. */
  kill(): Promise<void>;
  /** Replug: start a new socat at the same links (after `kill()`); resolves once bytes flow. */
  replug(): Promise<void>;
  /** SIGTERM socat (if running), wait for it to exit, remove the links and the temp dir if it made one. */
  close(): Promise<void>;
}

/** Starts `socat -d -d pty,raw,echo=0,link=DIR/a pty,raw,echo=0,link=DIR/b`; resolves once both links exist and socat forwards bytes. */
export async function createPtyPair(options: CreatePtyPairOptions = {}): Promise<PtyPair> {
  const binary = options.binary ?? findSocat();
  if (!binary) throw new Error('socat was not found; install it: apt-get install -y socat');
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'medge-pty-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  let child: ChildProcess | undefined;
  let stderr = '';

  const start = async (): Promise<void> => {
    rmSync(a, { force: true });
    rmSync(b, { force: true });
    stderr = '';
    const proc = spawn(binary, ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    let ready = false;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-4096);
      if (text.includes('starting data transfer loop')) ready = true;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(ready && existsSync(a) && existsSync(b))) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`socat exited (${proc.exitCode ?? proc.signalCode}) before the ptys were ready: ${stderr}`);
      if (Date.now() > deadline) {
        await stop(proc, 'SIGKILL');
        throw new Error(`socat did not create ${a} and ${b} within ${READY_TIMEOUT_MS} ms: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  await start();
  return {
    a,
    b,
    dir,
    get pid() {
      return child?.pid;
    },
    get stderr() {
      return stderr;
    },
    async kill() {
      const proc = child;
      child = undefined;
      if (proc) await stop(proc, 'SIGKILL');
      rmSync(a, { force: true });
      rmSync(b, { force: true });
    },
    async replug() {
      if (child) throw new Error('replug() while socat is running: kill() it first');
      await start();
    },
    async close() {
      const proc = child;
      child = undefined;
      if (proc) await stop(proc, 'SIGTERM');
      rmSync(a, { force: true });
      rmSync(b, { force: true });
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends `signal` and waits for the exit (SIGKILL after 5 s). */
async function stop(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
