import { readCaAudit } from '../../device-sdk/security/ca-audit.js';
import { verifyAuditChain } from '../../device-sdk/store/audit.js';
import { readAuditEntries } from '../../device-sdk/store/sqlite-outbox-store.js';
import { ledgerPath } from '../runtime.js';
import { parse, UsageError } from './args.js';

export const AUDIT_USAGE = `Usage: medge audit verify (--data DIR | --ca CADIR) [--json]

Checks the hash-chained audit log of the device ledger in DIR (the runtime's dataDir: starts and
stops, config changes, key creation and rotation, artifacts accepted or refused) or of the CA
directory CADIR (CA creation, provisioning, revocations) and reports the first entry that was
altered, removed or reordered. Exit code 0 when the chain holds, 1 when not.`;

export async function auditCommand(args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  if (args[0] !== 'verify') throw new UsageError(args[0] === undefined ? 'audit needs a subcommand' : `unknown audit subcommand ${JSON.stringify(args[0])}; subcommands are: verify`, AUDIT_USAGE);
  const { values } = parse(args.slice(1), { data: { type: 'string' }, ca: { type: 'string' }, json: { type: 'boolean' } }, AUDIT_USAGE);
  if (values.help) {
    process.stdout.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  if ((values.data === undefined) === (values.ca === undefined)) throw new UsageError('give --data DIR (a device) or --ca CADIR (a CA directory)', AUDIT_USAGE);
  const result = verifyAuditChain(values.ca !== undefined ? readCaAudit(values.ca) : readAuditEntries(ledgerPath(values.data as string)));
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.ok) process.stdout.write(`audit chain holds: ${result.entries} entries, head ${result.head.slice(0, 16)}\n`);
  else process.stdout.write(`audit chain BROKEN at entry ${result.firstBreak?.id} (${result.firstBreak?.reason}): ${result.firstBreak?.message}\n`);
  return result.ok ? 0 : 1;
}
