import { createLogger, type LogLevel } from '../../device-sdk/log.js';
import type { RecordKind } from '../../device-sdk/records.js';
import { LOG_LEVELS } from '../config.js';
import { MAX_INGEST_WORKERS, readEdgeTls } from '../../device-sdk/security/pki.js';
import { WireKeyring } from '../../device-sdk/security/wire-keys.js';
import { DuplicateReleaseError } from '../../edge/duplicate-device-id.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { edgeDatabasePath, readEdgeStats, type ReleasedDuplicate, releaseStoredDuplicate } from '../../edge/edge-store.js';
import { FhirServer } from '../../edge/fhir/http.js';
import { DEFAULT_MOSQUITTO_PORT, writeMosquittoConfig } from '../../edge/mosquitto-config.js';
import { intFlag, parse, untilSignal, UsageError } from './args.js';
import { conflictsCommand } from './edge-conflicts.js';
import { exportFhirCommand } from './fhir.js';

export const EDGE_USAGE = `Usage: medge edge --data DIR [--port N | --broker URL [--shared-subscription GROUP [--ingest-worker N]] [--dynsec]] [--host ADDR] [--tls CADIR [--sealed-payloads]] [--http PORT] [--log-level LEVEL]
       medge edge stats --data DIR [--json]
       medge edge conflicts (--data DIR | --store FILE) [--device ID] [--kind K] [--json]
       medge edge conflicts resolve (--data DIR | --store FILE) (--id N | --device ID --all [--kind K]) --choice keep-stored|import --operator NAME --reason TEXT
       medge edge duplicates release --data DIR --device ID --operator NAME --reason TEXT [--keep BOOT]
       medge edge export-fhir --data DIR --out FILE [--since TIME] [--waveform-seconds N] [--no-validate]
       medge edge mosquitto-config --tls CADIR --out FILE [--port N] [--host ADDR] [--data DIR] [--dynsec [--dynsec-plugin PATH]]

Runs the regional edge node: an MQTT broker (embedded aedes on --port, default 1883, with --tls
8883, or an external broker given by --broker, e.g. Mosquitto), ingest that validates each batch, commits it to
DIR/edge.sqlite idempotently and then acknowledges it.

--tls CADIR takes a directory written by 'medge ca init'. The embedded broker then listens for MQTT
over TLS only, requires a client certificate from the site CA, and lets each device publish only to
medge/v1/<site>/<CN>/up/<kind> and subscribe only to medge/v1/<site>/<CN>/down/#; refusals are
counted as 'auth' (no, expired or foreign certificate; wrong username) and 'acl' (topic). With
--broker (an mqtts:// URL) the ingest connects with the edge's ingest certificate instead.
With --tls the edge also opens payloads a device sealed with its wire key (written by 'medge
provision'; config edge.payloadEncryption, AES-256-GCM or SM4-CTR+HMAC-SM3); --sealed-payloads
refuses clear payloads from every device that has a wire key (counted as 'auth').

--shared-subscription GROUP (with --broker) subscribes the ingest to $share/GROUP/<uplinks>, so that N
'medge edge' processes with the same GROUP, --broker and --data are N ingest workers on one store, the
broker giving each uplink to one of them (Mosquitto >= 1.6; the embedded aedes has no shared
subscriptions). Each batch is committed in one SQLite transaction, so workers never store a record twice.
With --tls each worker needs its own certificate, as Mosquitto makes a certificate's CN the client id
and closes the older of two connections with one: 'medge ca ingest-workers --ca CADIR --workers N' issues
ingest-1..N (CN medge-edge-ingest-<n>), 'mosquitto-config' (rerun it, then SIGHUP) gives each the ingest's
rights, and --ingest-worker N (1-64) makes this process worker N. Without it --tls is refused (exit status
2). A second worker of the same store under a number already running is refused at start (exit status 1, naming
the holder's pid). A single ingest (no --ingest-worker) whose identity a hung ingest on the same --data still holds
waits up to 30 s, then takes over as before (a warning says the two evict each other if the old one resumes).
At start each worker checks that Mosquitto delivers it uplinks (a probe on its own uplink topic that only its ACL
user block lets it read); a worker started before mosquitto-config was rerun and Mosquitto sent SIGHUP would be
granted its subscription but lose its share of uplinks, so it exits 1 naming that fix instead.
With --tls the group subscribed to is GROUP-<32 hex> (an HMAC under CADIR/ingest-group.key): Mosquitto lets any
client subscribe to $share/GROUP/... and drops the uplinks it routes to a device there, so devices must not
be able to name it. Each worker logs a groupFingerprint at start: it must match on every worker (after a new
key, restart them all). A single ingest never reads the key.

--http PORT serves the stored data as FHIR R4 on http://<host>:PORT/fhir (GET
/fhir/Observation?patient=&code=&date=, /fhir/Device, /fhir/Patient, /fhir/DiagnosticReport,
/fhir/metadata), read-only, the same resources 'export-fhir' writes, paged (_count at most 1000,
_offset, Bundle.link next). A worker thread builds the answers, so the broker never waits for them; a
request not answered within 10 s gets 503 with Retry-After (the export is still being built).

'stats' prints what the edge stored per device and kind, and rejected batches and connections per
reason. It reads the store without disturbing a running edge. 'seq-conflict' counts records kept
apart in the store's conflicts table because their seq was already stored with other content (a
new or restored ledger under an existing deviceId, or two devices with one id): nothing is lost, but
an operator must give one of the devices a new id and reconcile them; 'stats' shows how many are still
open. 'conflicts' lists them and 'conflicts resolve' settles them ('medge edge conflicts --help').
'duplicate-device-id' counts batches of one deviceId that switched back to another boot still
sending (two boards running with one id, evicting each other's MQTT session; a reboot switches once
and is not counted): the boards keep their records, but one of them needs its own id. Once such
switches prove two live boards (4 switches back over at least a minute, by default), the edge
refuses the batches of the boot it heard second ('device-id-in-use'; that board keeps its readings
and alerts until they are stored, but its ledger's 2 GiB budget evicts unacknowledged waveform older
than 24 h: a 4 kHz stethoscope fills it in 3.1 days, ECG 500 Hz x3 in 7.4) until the first has been
silent for 7 days (a board cut off by its link keeps its place; the refused one then takes over as
its replacement) or an operator releases it; 'stats' then names both boots, when each was last
heard, batches refused per boot and, per boot, the kinds and seq ranges stored under the id (the
refused boot's came before the proof and are mixed with the other's).
'duplicates release' records who, when and why in the store. With --keep BOOT (one of the two) that
boot keeps syncing and the other is refused until released again, however long either is silent
(the edge picked the wrong board, or an old board may come back). Without --keep the refused boot's
batches are stored once the incumbent has been silent for 5 min (at once if it already was, as a
replaced board is): while both boards run the other stays refused, so switch it off (or give it its
own id) first. Exit status 1 when the device id has no proven pair or BOOT is not one of its boots;
a store at an older schema is refused (an older edge may run on it): start this build's edge first.

'mosquitto-config' writes a Mosquitto 2.0 config FILE for the same policy (TLS listener on --port,
default ${DEFAULT_MOSQUITTO_PORT}, on --host or all interfaces; require_certificate,
use_identity_as_username, ACL patterns, the ingest user and one per worker certificate in CADIR), with the CA and server certificates, the server key and
the ACL file next to it. --data DIR turns on Mosquitto persistence there. --dynsec also loads Mosquitto's
dynamic security plugin (found in the usual library directories, or --dynsec-plugin PATH; its file
medge-dynsec.json is written next to FILE only when missing) and lets the ingest command it: then
'medge edge --broker URL --tls CADIR --dynsec' closes, within about 2 s, the connection of a device whose
certificate is revoked (medge ca revoke) or expires, and denies it everything until Mosquitto refuses its
handshake (expired: at once; revoked: after this command is rerun and Mosquitto gets SIGHUP). About a second
before, the ingest tells the device why on its ack topic, so that the board raises sync-batches-refused (a board
offline then raises sync-access-refused when its subscriptions are refused on reconnect). If the
plugin does not answer within 5 s (Mosquitto configured without --dynsec), the edge warns once. An existing
medge-dynsec.json is given back to user mosquitto (0600) when run as root. The cost: whoever holds the ingest
certificate can command the plugin (create clients and roles with any rights), see README "Security".`;

export async function edgeCommand(args: string[]): Promise<number> {
  if (args[0] === 'stats') return edgeStats(args.slice(1));
  if (args[0] === 'mosquitto-config') return mosquittoConfig(args.slice(1));
  if (args[0] === 'export-fhir') return exportFhirCommand(args.slice(1));
  if (args[0] === 'conflicts') return conflictsCommand(args.slice(1));
  if (args[0] === 'duplicates') return duplicatesCommand(args.slice(1));
  const { values } = parse(
    args,
    {
      data: { type: 'string' },
      port: { type: 'string' },
      broker: { type: 'string' },
      host: { type: 'string' },
      tls: { type: 'string' },
      http: { type: 'string' },
      'sealed-payloads': { type: 'boolean' },
      'shared-subscription': { type: 'string' },
      'ingest-worker': { type: 'string' },
      dynsec: { type: 'boolean' },
      'log-level': { type: 'string' },
    },
    EDGE_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${EDGE_USAGE}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', EDGE_USAGE);
  if (values.port !== undefined && values.broker !== undefined) throw new UsageError('give either --port (embedded broker) or --broker URL, not both', EDGE_USAGE);
  if (values.broker !== undefined && !/^mqtts?:\/\//.test(values.broker)) {
    throw new UsageError(`--broker must be an mqtt:// or mqtts:// URL, got ${JSON.stringify(values.broker)}`, EDGE_USAGE);
  }
  if (values.tls !== undefined && values.broker !== undefined && !values.broker.startsWith('mqtts://')) {
    throw new UsageError(`--tls with --broker needs an mqtts:// URL, got ${JSON.stringify(values.broker)}`, EDGE_USAGE);
  }
  if (values['shared-subscription'] !== undefined && values.broker === undefined) {
    throw new UsageError('--shared-subscription needs --broker URL: the embedded broker (aedes) has no shared subscriptions', EDGE_USAGE);
  }
  const ingestWorker = intFlag(values['ingest-worker'], '--ingest-worker', EDGE_USAGE, 1, MAX_INGEST_WORKERS);
  if (ingestWorker !== undefined && (values.tls === undefined || values['shared-subscription'] === undefined)) {
    throw new UsageError('--ingest-worker N needs --tls CADIR (it picks the certificate CADIR/ingest-N.crt) and --shared-subscription GROUP (workers share the uplinks)', EDGE_USAGE);
  }
  if (values['shared-subscription'] !== undefined && values.tls !== undefined && ingestWorker === undefined) {
    throw new UsageError(
      "--shared-subscription with --tls needs --ingest-worker N: workers sharing the one ingest certificate get one client id from Mosquitto (mosquitto-config: use_username_as_clientid) and close each other's connections; issue one per worker with 'medge ca ingest-workers --ca CADIR --workers N', rerun 'medge edge mosquitto-config', and start worker n with --ingest-worker n",
      EDGE_USAGE,
    );
  }
  if (values['sealed-payloads'] && values.tls === undefined) throw new UsageError('--sealed-payloads needs --tls CADIR (the wire keys live there)', EDGE_USAGE);
  if (values.dynsec && (values.broker === undefined || values.tls === undefined)) {
    throw new UsageError('--dynsec needs --broker mqtts://... (a Mosquitto configured by mosquitto-config --dynsec) and --tls CADIR', EDGE_USAGE);
  }
  const tls = values.tls === undefined ? undefined : readEdgeTls(values.tls, ingestWorker === undefined ? {} : { ingestWorker });
  const wireKeys = values.tls === undefined ? undefined : new WireKeyring(values.tls);
  const level = values['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`, EDGE_USAGE);
  const logger = createLogger('medge-edge', level as LogLevel);
  const edge = new EdgeNode({
    dataDir: values.data,
    port: intFlag(values.port, '--port', EDGE_USAGE, 0, 65535) ?? (tls ? 8883 : 1883),
    host: values.host ?? '127.0.0.1',
    logger,
    ...(values.broker ? { brokerUrl: values.broker } : {}),
    ...(values['shared-subscription'] === undefined ? {} : { sharedSubscription: values['shared-subscription'] }),
    ...(tls ? { tls } : {}),
    ...(values.dynsec ? { dynsec: true } : {}),
    ...(wireKeys ? { payload: { wireKeys: (id: string) => wireKeys.get(id), requireSealed: values['sealed-payloads'] === true } } : {}),
  });
  const httpPort = intFlag(values.http, '--http', EDGE_USAGE, 0, 65535);
  const fhir = httpPort === undefined ? undefined : new FhirServer({ dataDir: values.data, host: values.host ?? '127.0.0.1', port: httpPort, logger });
  try {
    await edge.start();
    await fhir?.start();
  } catch (error) {
    // Whatever started is stopped, so that the command exits with the error instead of running on.
    await fhir?.stop();
    await edge.stop();
    throw error;
  }
  const mode = tls ? `, mutual TLS for site ${tls.site} as ${edge.ingestIdentity ?? ''}` : '';
  const api = fhir ? `; FHIR R4 at ${fhir.url}` : '';
  process.stderr.write(`medge edge: ${edge.broker ? 'embedded broker' : 'external broker'} at ${edge.url}${mode}; store ${edge.store.path}${api}. Ctrl-C stops.\n`);
  await untilSignal();
  await fhir?.stop();
  await edge.stop();
  return 0;
}

function edgeStats(args: string[]): number {
  const usage = EDGE_USAGE;
  const { values } = parse(args, { data: { type: 'string' }, json: { type: 'boolean' } }, usage);
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', usage);
  const stats = readEdgeStats(values.data);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    return 0;
  }
  const lines = ['device                           kind         stored'];
  for (const [device, kinds] of Object.entries(stats.devices)) {
    for (const [kind, n] of Object.entries(kinds)) lines.push(`${device.padEnd(32)} ${kind.padEnd(12)} ${String(n).padStart(8)}`);
  }
  if (Object.keys(stats.devices).length === 0) lines.push('(no records yet)');
  const rejected = Object.entries(stats.rejected);
  lines.push('', rejected.length === 0 ? 'rejected: none' : `rejected: ${rejected.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  const conflicts = Object.entries(stats.conflicts).flatMap(([device, kinds]) =>
    Object.entries(kinds).map(([kind, n]) => ({ device, kind, n, open: stats.openConflicts[device]?.[kind as RecordKind] ?? 0 })),
  );
  if (conflicts.length > 0) {
    const total = conflicts.reduce((sum, c) => sum + c.n, 0);
    const open = conflicts.reduce((sum, c) => sum + c.open, 0);
    lines.push(
      `SEQ CONFLICTS: ${open} open, ${total - open} resolved (records that reuse a stored seq with other content: a new or restored ledger under an existing deviceId, or two devices with one id; kept in the conflicts table of ${edgeDatabasePath(values.data)}; list them with: medge edge conflicts --data ${values.data}): ${conflicts.map((c) => `${c.device} ${c.kind} ${c.open} open of ${c.n}`).join(', ')}`,
    );
  }
  const duplicates = Object.entries(stats.duplicateDeviceIds).map(([device, d]) => `${device} ${d.count} (boots ${d.bootIds.join(', ')})`);
  if (duplicates.length > 0) {
    lines.push(`DUPLICATE DEVICE IDS (batches alternating between two boards running with one deviceId; they evict each other's MQTT session, give one a new id): ${duplicates.join(', ')}`);
  }
  for (const [device, d] of Object.entries(stats.duplicateDeviceIds)) {
    if (d.refusedBoot === undefined) continue;
    const state = d.releasedMs === undefined ? 'refusing' : `refused until ${new Date(d.releasedMs).toISOString()}`;
    const heard = Object.entries(d.lastHeardMs ?? {}).map(([boot, ms]) => `${boot} last heard ${new Date(ms).toISOString()}`);
    const perBoot = Object.entries(d.refusedByBoot).map(([boot, n]) => `${n} of ${boot}`);
    const hold =
      d.hold === 'kept' ? '; kept by an operator until released again' : d.hold === 'released' ? `; released: ${d.refusedBoot} is stored once ${d.incumbent ?? '?'} has been silent for 5 min` : '';
    const stored = Object.entries(d.storedByBoot).map(
      ([boot, kinds]) =>
        `boot ${boot}: ${Object.entries(kinds).map(([kind, k]) => `${kind} ${k.stored}${k.stored > 0 ? ` (seq ${k.minSeq}-${k.maxSeq})` : ''}${k.conflicts > 0 ? ` + ${k.conflicts} in conflicts` : ''}`).join(', ') || 'none'}`,
    );
    lines.push(
      `  ${device}: ${state} boot ${d.refusedBoot} since ${new Date(d.provenMs ?? 0).toISOString()} (${d.refusedBatches} batches refused${perBoot.length > 0 ? `: ${perBoot.join(', ')}` : ''}; incumbent ${d.incumbent ?? '?'}${hold}${heard.length > 0 ? `; ${heard.join(', ')}` : ''})${d.releasedMs === undefined ? '; the refused board keeps its readings and alerts, its waveform unacknowledged for 24 h may be evicted from its ledger' : ''}; stored under ${device}: ${stored.join('; ')}`,
    );
    const r = d.lastRelease;
    if (r) lines.push(`    released by ${r.operator} at ${new Date(r.releasedMs).toISOString()} (${r.keptBoot === undefined ? 'both boots stored again' : `kept ${r.keptBoot}`}): ${r.reason}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `medge edge duplicates release`: an operator ends (or turns round) the refusal of a device id's proven pair of boots. */
export function duplicatesCommand(args: string[], now: () => number = Date.now): number {
  if (args[0] !== 'release') throw new UsageError(`unknown 'edge duplicates' command ${JSON.stringify(args[0] ?? '')}; the one command is: release`, EDGE_USAGE);
  const { values } = parse(
    args.slice(1),
    { data: { type: 'string' }, device: { type: 'string' }, operator: { type: 'string' }, reason: { type: 'string' }, keep: { type: 'string' } },
    EDGE_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${EDGE_USAGE}\n`);
    return 0;
  }
  if (!values.data || !values.device || values.operator === undefined || values.reason === undefined) {
    throw new UsageError('duplicates release needs --data DIR, --device ID, --operator NAME and --reason TEXT', EDGE_USAGE);
  }
  const at = now();
  let done: ReleasedDuplicate;
  try {
    done = releaseStoredDuplicate(edgeDatabasePath(values.data), values.device, { operator: values.operator, reason: values.reason, ...(values.keep === undefined ? {} : { keep: values.keep }) }, at);
  } catch (error) {
    if (!(error instanceof DuplicateReleaseError)) throw error;
    process.stderr.write(`medge: ${error.message}\n`);
    return 1;
  }
  const ago = (ms: number | null) => (ms === null ? 'never heard' : `last heard ${Math.round((at - ms) / 1000)} s ago`);
  const what =
    values.keep === undefined
      ? `boot ${done.refusedBoot} is stored once boot ${done.incumbent} (${ago(done.incumbentHeardMs)}) has been silent for 5 min; while both boards run ${done.refusedBoot} stays refused: switch the board of ${done.incumbent} off (or give it its own id) first`
      : `boot ${done.incumbent} keeps syncing; boot ${done.refusedBoot} (${ago(done.refusedHeardMs)}) is refused until the pair is released again`;
  process.stdout.write(`released device id ${values.device}: ${what} (recorded in ${edgeDatabasePath(values.data)})\n`);
  return 0;
}

function mosquittoConfig(args: string[]): number {
  const { values } = parse(
    args,
    { tls: { type: 'string' }, out: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, dynsec: { type: 'boolean' }, 'dynsec-plugin': { type: 'string' } },
    EDGE_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${EDGE_USAGE}\n`);
    return 0;
  }
  if (!values.tls || !values.out) throw new UsageError('mosquitto-config needs --tls CADIR and --out FILE', EDGE_USAGE);
  if (values['dynsec-plugin'] !== undefined && !values.dynsec) throw new UsageError('--dynsec-plugin needs --dynsec', EDGE_USAGE);
  const port = intFlag(values.port, '--port', EDGE_USAGE, 1, 65535);
  const written = writeMosquittoConfig({
    tlsDir: values.tls,
    out: values.out,
    ...(port === undefined ? {} : { port }),
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(values.data === undefined ? {} : { dataDir: values.data }),
    ...(values.dynsec ? { dynsec: true } : {}),
    ...(values['dynsec-plugin'] === undefined ? {} : { dynsecPlugin: values['dynsec-plugin'] }),
  });
  process.stdout.write(`wrote ${written.config} for site ${written.site}, with ${written.files.join(', ')}\nrun: mosquitto -c ${written.config}\n`);
  for (const warning of written.warnings) process.stderr.write(`medge: warning: ${warning}\n`);
  return 0;
}
