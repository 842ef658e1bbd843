import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedgeError } from '../../device-sdk/errors.js';
import { DEVICE_KEY_FILE, loadDeviceKey } from '../../device-sdk/security/device-key.js';
import { CIPHER_SUITES, type CipherSuite } from '../../device-sdk/security/envelope.js';
import { generateSigningKeyPair } from '../../device-sdk/security/signing.js';
import { rotateLedgerKeys } from '../../device-sdk/store/key-rotation.js';
import { ledgerPath } from '../runtime.js';
import { parse, UsageError } from './args.js';
import { makeDirs } from '../../device-sdk/make-dirs.js';

export const KEYS_USAGE = `Usage: medge keys gen-signing --out DIR
       medge keys rotate --data DIR [--device-key FILE] [--suite SUITE] [--vacuum] [--json]

'gen-signing' writes an Ed25519 key pair for signing artifacts: DIR/signing.key (mode 0600, keep it
off devices) and DIR/signing.pub (install it on devices as a trusted key).

'rotate' makes a new data key the active key of the device ledger in DIR (the runtime's dataDir),
wrapped by the device key (DIR/${DEVICE_KEY_FILE}, or --device-key FILE as the config's
store.deviceKeyFile says), then re-seals every older record under it in small transactions. The
runtime may keep running meanwhile: it seals its next records under the new key. --suite
(${CIPHER_SUITES.join(' or ')}) changes the cipher; default: the current one. Both steps go to the
ledger's audit log. --vacuum then rewrites the file so that no clear or old-key residue stays in
free pages (it holds the write lock meanwhile: the runtime's writes wait).`;

export async function keysCommand(args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(`${KEYS_USAGE}\n`);
    return 0;
  }
  if (args[0] === 'rotate') return rotate(args.slice(1));
  if (args[0] !== 'gen-signing') {
    throw new UsageError(args[0] === undefined ? 'keys needs a subcommand' : `unknown keys subcommand ${JSON.stringify(args[0])}; subcommands are: gen-signing, rotate`, KEYS_USAGE);
  }
  const { values } = parse(args.slice(1), { out: { type: 'string' } }, KEYS_USAGE);
  if (values.help) {
    process.stdout.write(`${KEYS_USAGE}\n`);
    return 0;
  }
  if (!values.out) throw new UsageError('--out DIR is required', KEYS_USAGE);
  makeDirs(values.out);
  const pair = generateSigningKeyPair();
  const keyPath = join(values.out, 'signing.key');
  if (existsSync(keyPath) || existsSync(join(values.out, 'signing.pub'))) {
    throw new MedgeError('exists', `${values.out} already holds a signing key; refusing to overwrite it (choose another --out)`);
  }
  writeFileSync(keyPath, pair.privatePem, { mode: 0o600, flag: 'wx' });
  chmodSync(keyPath, 0o600);
  writeFileSync(join(values.out, 'signing.pub'), pair.publicPem, { flag: 'wx' });
  process.stdout.write(`wrote ${keyPath} (0600) and ${join(values.out, 'signing.pub')}; key id ${pair.keyId}\n`);
  return 0;
}

async function rotate(args: string[]): Promise<number> {
  const { values } = parse(args, { data: { type: 'string' }, 'device-key': { type: 'string' }, suite: { type: 'string' }, vacuum: { type: 'boolean' }, json: { type: 'boolean' } }, KEYS_USAGE);
  if (values.help) {
    process.stdout.write(`${KEYS_USAGE}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', KEYS_USAGE);
  if (values.suite !== undefined && !(CIPHER_SUITES as readonly string[]).includes(values.suite)) {
    throw new UsageError(`--suite must be one of ${CIPHER_SUITES.join(', ')}, got ${JSON.stringify(values.suite)}`, KEYS_USAGE);
  }
  const deviceKey = loadDeviceKey(values['device-key'] ?? join(values.data, DEVICE_KEY_FILE));
  const started = Date.now();
  const report = await rotateLedgerKeys(ledgerPath(values.data), deviceKey, {
    ...(values.suite === undefined ? {} : { suite: values.suite as CipherSuite }),
    vacuum: values.vacuum === true,
  });
  const ms = Date.now() - started;
  const moved = Object.values(report.reencrypted).reduce((a, b) => a + b, 0);
  if (values.json) process.stdout.write(`${JSON.stringify({ ...report, ms })}\n`);
  else {
    process.stdout.write(
      `active data key ${report.keyId} (${report.suite})${report.previous ? `, replacing ${report.previous}` : ''}; ${moved} records re-sealed in ${report.transactions} transactions, ${ms} ms\n`,
    );
  }
  return 0;
}
