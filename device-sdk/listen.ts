import type { Server } from 'node:net';
import { MedgeError } from './errors.js';

/** A server could not listen on its address. `reason` is the OS error code (EADDRINUSE, EACCES, ...). */
export class ListenError extends MedgeError {
  readonly reason: string;
  constructor(what: string, host: string, port: number, reason: string, cause: unknown) {
    const known = LISTEN_PROBLEMS[reason];
    super('listen', `${what} cannot listen on ${host}:${port}: ${known ? `${known[0]} (${reason}). Fix: ${known[1]}` : reason}`, { cause });
    this.reason = reason;
  }
}

const LISTEN_PROBLEMS: Record<string, [problem: string, fix: string]> = {
  EADDRINUSE: ['the port is in use by another process', 'stop that process or choose another port'],
  EACCES: ['permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)', 'choose a port above 1023'],
  EADDRNOTAVAIL: ['this machine has no such address', 'use 127.0.0.1, 0.0.0.0 or one of its own addresses'],
  ENOTFOUND: ['the host name does not resolve', 'use an IP address or a known host name'],
  EAI_AGAIN: ['the host name does not resolve', 'use an IP address or a known host name'],
};

/** `server.listen(port, host)` as a promise; a failure is a `ListenError` naming `what`, the address and a fix. */
export function listenOn(server: Server, port: number, host: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(new ListenError(what, host, port, error.code ?? error.message, error));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}
