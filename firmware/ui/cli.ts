/**
 * `medge ui pin-hash`: prints the salted scrypt hash of a PIN for the `ui.users[].pinHash` field of
 * the runtime config. The PIN is read from stdin (one line) so that it stays out of the shell
 * history and the process list.
 */
import { UsageError, parse } from '../cli/args.js';
import { hashPin } from './auth.js';

export const UI_USAGE = `Usage: medge ui pin-hash < pin.txt

Reads a PIN (4-12 digits) from the first line of stdin and prints its salted scrypt hash, for the
"pinHash" of a user in the runtime config:

  "ui": { "enabled": true, "listen": "127.0.0.1:8080",
          "users": [{ "name": "nurse-1", "role": "operator", "pinHash": "<printed hash>" }] }

Roles: operator (live data, acknowledges alerts), clinician (everything), technician
(configuration, health and the audit log; no patient data).`;

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).includes(10)) break;
  }
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
}

export async function uiCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${UI_USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'pin-hash') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; subcommands are: pin-hash`, UI_USAGE);
  const { values } = parse(rest, {}, UI_USAGE);
  if (values.help) {
    process.stdout.write(`${UI_USAGE}\n`);
    return 0;
  }
  if (process.stdin.isTTY) process.stderr.write('PIN (4-12 digits), then Enter: ');
  const pin = await readStdinLine();
  process.stdout.write(`${hashPin(pin)}\n`);
  return 0;
}
