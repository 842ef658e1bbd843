/**
 * A private D-Bus message bus for the simulated BlueZ: a real `dbus-daemon` listening on a unix
 * socket in a fresh temporary directory, allowing everything to everyone (it is reachable only
 * through that socket, which belongs to this user).
 *
 * Contract:
 * - `startPrivateDbus()` resolves once the daemon printed its address (it is then accepting
 *   connections), or rejects with a `MedgeError` code `dbus-daemon` when the program is missing or
 *   exits first.
 * - The address is always `unix:path=...` (node-ble's dbus-next cannot use `unix:abstract=` on
 *   Node 20 without the optional native `usocket`).
 * - `stop()` terminates the daemon it started (by pid, never by name) and removes the directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MedgeError } from '../../device-sdk/errors.js';

export interface PrivateDbus {
  /** `unix:path=<dir>/bus,guid=...`: hand it to node-ble (driver option `dbusAddress`) or dbus-next. */
  readonly address: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The `dbus-daemon` program on PATH, or undefined. */
export function findDbusDaemon(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v dbus-daemon'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

function config(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`;
}

export async function startPrivateDbus(program = findDbusDaemon() ?? 'dbus-daemon'): Promise<PrivateDbus> {
  const dir = mkdtempSync(join(tmpdir(), 'medge-dbus-'));
  const configFile = join(dir, 'bus.conf');
  writeFileSync(configFile, config(join(dir, 'bus')));
  const child = spawn(program, [`--config-file=${configFile}`, '--nofork', '--print-address=1', '--nopidfile'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let onExit: ((code: number | null) => void) | undefined;
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      rmSync(dir, { recursive: true, force: true });
      reject(new MedgeError('dbus-daemon', `cannot start a private dbus-daemon (${program}): ${why}; install it: apt-get install -y dbus-daemon`));
    };
    child.once('error', (e) => fail(e.message));
    onExit = (code) => fail(`exited with ${code}: ${stderr.trim()}`);
    child.once('exit', onExit);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(line.trim());
    });
  });
  if (onExit) child.removeListener('exit', onExit);
  child.stdout.removeAllListeners('data');
  child.stdout.resume();
  let stopped = false;
  return {
    address,
    pid: child.pid ?? -1,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
