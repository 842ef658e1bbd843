import { resolve } from 'node:path';
import { CA_DIR_FILES, DEFAULT_VALIDITY_DAYS, initCaDir, issueIngestWorkers, MAX_INGEST_WORKERS, PkiError, provisionDevice, revokeDevice } from '../../device-sdk/security/pki.js';
import { intFlag, parse, UsageError } from './args.js';

export const CA_USAGE = `Usage: medge ca init --dir DIR --site SITE [--host NAME ...] [--days N]
       medge ca revoke --ca DIR --device ID
       medge ca ingest-workers --ca DIR --workers N [--days N]

Creates the certificate authority of a site in DIR (mode 0700): ${CA_DIR_FILES.caCert} and ${CA_DIR_FILES.caKey} (the CA; keep
the key off devices and edges), ${CA_DIR_FILES.serverCert}/${CA_DIR_FILES.serverKey} (the edge's TLS server certificate for
localhost, 127.0.0.1, ::1 and every --host name or address), ${CA_DIR_FILES.ingestCert}/${CA_DIR_FILES.ingestKey} (the edge's ingest
client), ${CA_DIR_FILES.site} and an empty ${CA_DIR_FILES.crl}. Keys are ECDSA P-256, written with mode 0600. --days is the
CA's validity (default ${DEFAULT_VALIDITY_DAYS.ca}); the server and ingest certificates get at most ${DEFAULT_VALIDITY_DAYS.server} days.
Validity counts from now but starts 90 days earlier (no earlier than the CA's start), so that a board or
edge whose clock is behind (no real-time clock, booted offline) still accepts the certificates.
Refuses to overwrite an existing CA. 'medge edge --tls DIR' uses the directory.

'revoke' revokes the certificate last issued to device ID and rewrites DIR/${CA_DIR_FILES.crl}, signed by the CA.
A running 'medge edge --tls DIR' reloads it within a second, refuses the device's TLS handshake and closes
its open connection (counted as 'auth'). For Mosquitto, rerun 'medge edge mosquitto-config' and send it
SIGHUP: new handshakes are refused; an open connection stays open, and 'medge edge --broker ... --tls DIR'
refuses its batches (counted as 'auth'), unless both run with --dynsec: then the edge closes it within about a
second through Mosquitto's dynamic security plugin.

'ingest-workers' issues the certificates of ingest workers 1..N (1-64) that DIR does not hold yet:
DIR/ingest-<n>.crt and DIR/ingest-<n>.key (0600), CN medge-edge-ingest-<n>, OU=edge, valid --days (default
${DEFAULT_VALIDITY_DAYS.ingest}, at most until the CA expires). Each worker of 'medge edge --broker URL --tls DIR
--shared-subscription GROUP --ingest-worker n' connects with its own, so Mosquitto gives each its own client
id. Rerun 'medge edge mosquitto-config' and send Mosquitto SIGHUP before starting them: its ACL file grants each the
ingest's rights. A worker is kept only when its certificate and key both exist and match; otherwise it is issued
anew. DIR/ingest-group.key (64 hex, 0600) is written once; after replacing it restart every worker.
New device ids medge-edge-ingest and medge-edge-ingest-* are refused; devices provisioned earlier under
medge-edge-ingest-<name> keep working (only medge-edge-ingest and medge-edge-ingest-1..64 are ingest identities).`;

export const PROVISION_USAGE = `Usage: medge provision --ca DIR --site SITE --device ID --out OUT [--days N]

Issues a device identity signed by the site CA in DIR: OUT/ID.key (mode 0600), OUT/ID.crt
(CN = ID, O = SITE, client authentication; valid --days from now, default ${DEFAULT_VALIDITY_DAYS.device} or until the CA
expires if sooner, starting 90 days back for clocks that are behind; a --days past the CA's expiry is refused), OUT/ca.crt (to verify
the edge) and OUT/ID.wire.key (0600: the payload-encryption key; the edge's copy goes to
DIR/wire-keys/ID.key). ID must be a valid topic segment (1-64 of A-Z a-z 0-9 . _ -) and SITE the CA's site.
Refuses to overwrite an existing identity. Point the runtime config's edge.tls at the three files.`;

/** A refused value given on the command line is a usage error (exit 2); the rest (existing files, missing CA) exit 1. */
async function asUsage<T>(work: Promise<T>, usage: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof PkiError && ['invalid-id', 'reserved-id', 'site-mismatch', 'invalid-input'].includes(error.reason)) throw new UsageError(error.message, usage);
    throw error;
  }
}

export async function caCommand(args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(`${CA_USAGE}\n`);
    return 0;
  }
  if (args[0] === 'revoke') return revokeCommand(args.slice(1));
  if (args[0] === 'ingest-workers') return ingestWorkersCommand(args.slice(1));
  if (args[0] !== 'init') throw new UsageError(args[0] === undefined ? 'ca needs a subcommand' : `unknown ca subcommand ${JSON.stringify(args[0])}; subcommands are: init, revoke, ingest-workers`, CA_USAGE);
  const { values } = parse(args.slice(1), { dir: { type: 'string' }, site: { type: 'string' }, host: { type: 'string', multiple: true }, days: { type: 'string' } }, CA_USAGE);
  if (values.help) {
    process.stdout.write(`${CA_USAGE}\n`);
    return 0;
  }
  if (!values.dir || !values.site) throw new UsageError('--dir DIR and --site SITE are required', CA_USAGE);
  const days = intFlag(values.days, '--days', CA_USAGE, 1, 36_500);
  const hosts = (values.host as unknown as string[] | undefined) ?? [];
  const info = await asUsage(initCaDir(values.dir, { site: values.site, hosts, ...(days === undefined ? {} : { validDays: days }) }), CA_USAGE);
  const dir = resolve(values.dir);
  process.stdout.write(
    `created the CA of site ${info.site} in ${dir} (CA fingerprint ${info.caFingerprint256}); server certificate for ${['localhost', '127.0.0.1', '::1', ...info.hosts].join(', ')}\n` +
      `next: medge provision --ca ${values.dir} --site ${info.site} --device ID --out OUT; medge edge --data DATA --tls ${values.dir}\n`,
  );
  return 0;
}

async function revokeCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ca: { type: 'string' }, device: { type: 'string' } }, CA_USAGE);
  if (values.help) {
    process.stdout.write(`${CA_USAGE}\n`);
    return 0;
  }
  if (!values.ca || values.device === undefined) throw new UsageError('--ca DIR and --device ID are required', CA_USAGE);
  const result = await revokeDevice(values.ca, values.device);
  process.stdout.write(`revoked ${values.device} (serial ${result.revoked.serial}); ${result.crlPath} lists ${result.entries} revoked certificate(s)\n`);
  return 0;
}

async function ingestWorkersCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ca: { type: 'string' }, workers: { type: 'string' }, days: { type: 'string' } }, CA_USAGE);
  if (values.help) {
    process.stdout.write(`${CA_USAGE}\n`);
    return 0;
  }
  if (!values.ca || values.workers === undefined) throw new UsageError('--ca DIR and --workers N are required', CA_USAGE);
  const workers = intFlag(values.workers, '--workers', CA_USAGE, 1, MAX_INGEST_WORKERS) as number;
  const days = intFlag(values.days, '--days', CA_USAGE, 1, 36_500);
  const issued = await asUsage(issueIngestWorkers(values.ca, { workers, ...(days === undefined ? {} : { validDays: days }) }), CA_USAGE);
  for (const w of issued) process.stdout.write(`ingest worker ${w.worker}: ${w.identity} ${w.created ? 'issued' : 'kept (already issued)'}: ${w.certPath}, ${w.keyPath}\n`);
  process.stdout.write(
    `next: medge edge mosquitto-config --tls ${values.ca} --out FILE, then SIGHUP Mosquitto, BEFORE starting the workers (until then Mosquitto grants a new worker its subscription but drops its share of uplinks; a worker checks this at start and exits 1); then medge edge --data DATA --broker mqtts://... --tls ${values.ca} --shared-subscription GROUP --ingest-worker 1..${workers}\n`,
  );
  return 0;
}

export async function provisionCommand(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    { ca: { type: 'string' }, site: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' }, days: { type: 'string' } },
    PROVISION_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${PROVISION_USAGE}\n`);
    return 0;
  }
  if (!values.ca || !values.site || values.device === undefined || !values.out) {
    throw new UsageError('--ca DIR, --site SITE, --device ID and --out OUT are required', PROVISION_USAGE);
  }
  const days = intFlag(values.days, '--days', PROVISION_USAGE, 1, 36_500);
  const result = await asUsage(
    provisionDevice(values.ca, {
      deviceId: values.device,
      site: values.site,
      outDir: values.out,
      ...(days === undefined ? {} : { validDays: days }),
    }),
    PROVISION_USAGE,
  );
  process.stdout.write(
    `provisioned ${values.device} for site ${values.site}: ${result.keyPath} (0600), ${result.certPath} (valid until ${result.info.notAfter.toISOString()}), ${result.caPath}, ${result.wireKeyPath} (0600, payload encryption; the edge's copy is in ${values.ca})\n`,
  );
  return 0;
}
