/**
 * The edge's access policy (`acl.ts`) as a Mosquitto 2.0 configuration: a TLS-only listener that
 * requires a client certificate from the site CA, takes the certificate's CN as the MQTT username
 * (and client id), and an ACL file that lets each device write only its own uplink and read only its
 * own down topics, and the edge's ingest read every uplink and write every down topic of the site. The ingest
 * identities are `medge-edge-ingest` and one `medge-edge-ingest-<n>` per worker certificate the CA directory holds
 * (`medge ca ingest-workers`): workers on a shared subscription each connect under their own CN, hence their own
 * client id, so Mosquitto never hands one worker's session to another. A CA directory whose `issued/` holds a device
 * certificate under an ingest identity (`isIngestIdentity`) is refused (Mosquitto would take it for an ingest).
 *
 * What Mosquitto cannot express and the embedded broker adds: certificate roles (`OU`) and the
 * refusal of retained publishes. The reserved ingest identity is kept from devices at provisioning
 * (`medge provision` refuses it). Mosquitto logs refusals; they are not counted in the edge store.
 *
 * Revocation and expiry: Mosquitto 2.0 checks a certificate in the handshake only and keeps a connection
 * open past its certificate's revocation or expiry (measured with 2.0.11; the edge's ingest then refuses
 * that device's batches, `issued-certificates.ts`). After `medge ca revoke`, running this again copies the
 * new CRL and SIGHUP makes Mosquitto reread it for new handshakes, provided the config it started with
 * named a crlfile (`medge ca init` writes an empty CRL for that; an older CA directory without one needs a
 * restart after its first revocation).
 *
 * With `dynsec` the config also loads Mosquitto's dynamic security plugin, and the ACL file grants the
 * ingest identities `$CONTROL/dynamic-security/#`: the ingest (`--dynsec`) then closes the connections of
 * revoked and expired devices and denies their later ones everything (`mosquitto-dynsec.ts`). The ACL file
 * stays the per-device policy in both modes.
 */
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CA_DIR_FILES, EDGE_INGEST_IDENTITY, ingestWorkerIdentity, isIngestIdentity, listIngestWorkers, readEdgeTls } from '../device-sdk/security/pki.js';
import { TOPIC_ROOT } from '../device-sdk/sync/topics.js';
import { makeDirs } from '../device-sdk/make-dirs.js';
import { MedgeError } from '../device-sdk/errors.js';
import { DYNSEC_PLUGIN_PATHS, dynsecConfigText } from './mosquitto-dynsec.js';

export const DEFAULT_MOSQUITTO_PORT = 8883;

/** The files written next to the config file. */
export const MOSQUITTO_FILES = Object.freeze({ ca: 'medge-ca.crt', cert: 'medge-server.crt', key: 'medge-server.key', acl: 'medge.acl' });

/** The copy of the site's CRL next to the config (only after a revocation). */
const CRL_COPY = 'medge-crl.pem';

/** The dynamic security plugin's file (`dynsec` only), next to the config; the plugin rewrites it. */
export const DYNSEC_FILE = 'medge-dynsec.json';

/** A config that cannot be written as asked (code `mosquitto-config`); `field` names the option to fix. */
export class MosquittoConfigError extends MedgeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('mosquitto-config', message);
    this.field = field;
  }
}

export interface MosquittoConfigInput {
  site: string;
  port: number;
  /** Bind address; all interfaces when undefined. */
  host?: string;
  /** Absolute paths of the files the config names. */
  cafile: string;
  certfile: string;
  keyfile: string;
  aclFile: string;
  /** The site's CRL (absolute), when one was written by `medge ca revoke`. */
  crlFile?: string;
  /** Persistence directory (absolute); no persistence when undefined. */
  persistenceDir?: string;
  /** The dynamic security plugin and its file (absolute), when the ingest is to close revoked devices' connections. */
  dynsec?: { plugin: string; configFile: string };
}

/** `mosquitto.conf` text. Pure. */
export function mosquittoConfigText(input: MosquittoConfigInput): string {
  return [
    `# medge edge broker for site ${input.site}: MQTT over TLS only, one client certificate per device.`,
    '# Written by `medge edge mosquitto-config`; regenerate it rather than edit it.',
    'allow_anonymous false',
    `listener ${input.port}${input.host === undefined ? '' : ` ${input.host}`}`,
    `cafile ${input.cafile}`,
    `certfile ${input.certfile}`,
    `keyfile ${input.keyfile}`,
    'tls_version tlsv1.2',
    ...(input.crlFile === undefined
      ? []
      : ['# Revoked device certificates (medge ca revoke): after a revocation regenerate this config and send Mosquitto SIGHUP.', `crlfile ${input.crlFile}`]),
    'require_certificate true',
    '# The certificate CN is the username (and the client id): the ACL patterns below match it.',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    `acl_file ${input.aclFile}`,
    ...(input.dynsec === undefined
      ? []
      : [
          '# Dynamic security: the ingest blocks devices whose certificate is revoked or expired (closes their connections).',
          '# The ACL file above stays the per-device policy; the plugin holds only blocked devices.',
          `plugin ${input.dynsec.plugin}`,
          `plugin_opt_config_file ${input.dynsec.configFile}`,
        ]),
    '# medge sockets disable Nagle; with it on here, small MQTT packets wait on each other.',
    'set_tcp_nodelay true',
    ...(input.persistenceDir === undefined ? ['persistence false'] : ['persistence true', `persistence_location ${input.persistenceDir.endsWith('/') ? input.persistenceDir : `${input.persistenceDir}/`}`]),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    '',
  ].join('\n');
}

/**
 * The ACL file text. Pure. `%u` is the username, i.e. the certificate CN. The ingest's rights go to `medge-edge-ingest`
 * and to each of `ingestWorkers` (`medge-edge-ingest-<n>`, one user block each: Mosquitto has no rule for a set of
 * usernames). With `dynsec` every ingest identity may also command the dynamic security plugin (and read its answers).
 */
export function mosquittoAclText(site: string, dynsec = false, ingestWorkers: readonly number[] = []): string {
  const base = `${TOPIC_ROOT}/${site}`;
  const ingest = (name: string) => [
    `user ${name}`,
    `topic read ${base}/+/up/#`,
    `topic write ${base}/+/down/#`,
    ...(dynsec ? ['# Blocking devices whose certificate is revoked or expired (dynamic security plugin).', 'topic readwrite $CONTROL/dynamic-security/#'] : []),
  ];
  return [
    `# medge topic ACL for site ${site}. Every device: its own uplink (write) and down topics (read).`,
    `pattern write ${base}/%u/up/#`,
    `pattern read ${base}/%u/down/#`,
    '',
    '# The edge ingest: every uplink of the site (read, also through $share/GROUP/), every down topic (write).',
    ...ingest(EDGE_INGEST_IDENTITY),
    ...ingestWorkers.flatMap((worker) => ['', `# Ingest worker ${worker} (medge edge --shared-subscription GROUP --ingest-worker ${worker}).`, ...ingest(ingestWorkerIdentity(worker))]),
    '',
  ].join('\n');
}

export interface WriteMosquittoConfigOptions {
  /** A `medge ca init` directory. */
  tlsDir: string;
  /** The config file to write; the certificates, key and ACL file go next to it. */
  out: string;
  port?: number;
  host?: string;
  /** Mosquitto's persistence directory (created; owned by the `mosquitto` user when run as root). */
  dataDir?: string;
  /**
   * Load the dynamic security plugin so that `medge edge --broker ... --tls DIR --dynsec` can close the
   * connections of revoked and expired devices. Its file is written only when missing (the plugin owns it).
   */
  dynsec?: boolean;
  /** The plugin (`mosquitto_dynamic_security.so`); found in `DYNSEC_PLUGIN_PATHS` when undefined. */
  dynsecPlugin?: string;
}

export interface WrittenMosquittoConfig {
  site: string;
  config: string;
  files: string[];
  /** Problems Mosquitto would run into (after dropping privileges), for the operator. */
  warnings: string[];
}

/** The device ids `issued/` holds a certificate for (none when it does not exist). */
function issuedNames(issuedDir: string): string[] {
  try {
    return readdirSync(issuedDir)
      .filter((file) => file.endsWith('.crt'))
      .map((file) => file.slice(0, -'.crt'.length));
  } catch {
    return [];
  }
}

/** The `mosquitto` system user, when there is one (Mosquitto started as root drops privileges to it). */
function mosquittoUser(): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'mosquitto' && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: nothing to hand the files to
  }
  return undefined;
}

/** Replaces `path` with `text`; a key never exists with wider permissions than `mode`, not even briefly. */
function writeFile(path: string, text: string, mode: number, owner?: { uid: number; gid: number }): void {
  if (existsSync(path)) unlinkSync(path);
  writeFileSync(path, text, { mode, flag: 'wx' });
  chmodSync(path, mode);
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/**
 * An existing plugin file (kept: it holds the blocks) must stay writable by the user Mosquitto runs as, or the plugin
 * cannot save later blocks and a restarted broker loses them (QA: a root-owned 0644 file). As root it is given to the
 * `mosquitto` user with mode 0600; otherwise a file this user does not own is reported. Returns the warning, if any.
 */
function giveDynsecFileBack(file: string, user: { uid: number; gid: number } | undefined, isRoot: boolean): string | undefined {
  const st = statSync(file);
  if (isRoot && user) {
    if (st.uid !== user.uid || st.gid !== user.gid) chownSync(file, user.uid, user.gid);
    if ((st.mode & 0o777) !== 0o600) chmodSync(file, 0o600);
    return undefined;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && st.uid !== uid) {
    return `${file} is owned by uid ${st.uid}, not by this user (uid ${uid}): if Mosquitto runs as another user than its owner it cannot save blocks there and loses them at restart; chown it to the user Mosquitto runs as (mode 0600)`;
  }
  return undefined;
}

/** Directories on the way to `path` that a user other than their owner cannot traverse. */
function untraversable(path: string, user: { uid: number } | undefined): string[] {
  const blocked: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = statSync(dir);
    if ((st.mode & 0o001) === 0 && st.uid !== user?.uid) blocked.push(dir);
    if (dirname(dir) === dir) break;
  }
  return blocked;
}

/**
 * Writes the Mosquitto config for the site of `tlsDir`: FILE, and next to it the CA and server
 * certificates, the server key (0600, owned by the `mosquitto` user when run as root, so that
 * Mosquitto can read it after dropping privileges) and the ACL file. Overwrites earlier output.
 */
export function writeMosquittoConfig(options: WriteMosquittoConfigOptions): WrittenMosquittoConfig {
  const tls = readEdgeTls(options.tlsDir);
  const ingestWorkers = listIngestWorkers(options.tlsDir);
  // Mosquitto tells an ingest from a device by the CN alone: a device certificate under an ingest identity would be one.
  // Only the real identities count: an older device under medge-edge-ingest-<name> (provisioned before the prefix was
  // reserved for new ids) matches no ingest user block and stays a device.
  const impostors = tls.issuedDir === undefined ? [] : issuedNames(tls.issuedDir).filter((name) => isIngestIdentity(name));
  if (impostors.length > 0) {
    throw new MosquittoConfigError(
      'tlsDir',
      `${join(options.tlsDir, CA_DIR_FILES.issued)} holds device certificates under ingest identities (${impostors.join(', ')}): Mosquitto gives (or, once medge ca ingest-workers issues that worker, would give) them the ingest's rights; revoke them (medge ca revoke --ca ${options.tlsDir} --device ID) and remove issued/ID.crt`,
    );
  }
  const out = resolve(options.out);
  const dir = dirname(out);
  makeDirs(dir);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const user = isRoot ? mosquittoUser() : undefined;
  const path = (name: string) => join(dir, name);
  let dynsecFileWarning: string | undefined;
  const persistenceDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  if (persistenceDir !== undefined) {
    makeDirs(persistenceDir, 0o700);
    if (user) chownSync(persistenceDir, user.uid, user.gid);
  }
  writeFile(path(MOSQUITTO_FILES.ca), tls.ca, 0o644);
  writeFile(path(MOSQUITTO_FILES.cert), tls.cert, 0o644);
  writeFile(path(MOSQUITTO_FILES.key), tls.key, 0o600, user);
  let dynsec: { plugin: string; configFile: string } | undefined;
  if (options.dynsec === true) {
    const plugin = options.dynsecPlugin === undefined ? DYNSEC_PLUGIN_PATHS.find((p) => existsSync(p)) : resolve(options.dynsecPlugin);
    if (plugin === undefined || !existsSync(plugin)) {
      throw new MosquittoConfigError(
        'dynsecPlugin',
        `the Mosquitto dynamic security plugin was not found (${plugin ?? DYNSEC_PLUGIN_PATHS.join(', ')}): install mosquitto 2.0 or name the .so with --dynsec-plugin PATH`,
      );
    }
    dynsec = { plugin, configFile: path(DYNSEC_FILE) };
    // The plugin rewrites its file after each change, as the user Mosquitto runs as: never overwrite it.
    if (!existsSync(dynsec.configFile)) writeFile(dynsec.configFile, dynsecConfigText(), 0o600, user);
    else dynsecFileWarning = giveDynsecFileBack(dynsec.configFile, user, isRoot);
  }
  writeFile(path(MOSQUITTO_FILES.acl), mosquittoAclText(tls.site, dynsec !== undefined, ingestWorkers), 0o644);
  const crl = existsSync(tls.crlPath) ? readFileSync(tls.crlPath, 'utf8') : undefined;
  if (crl !== undefined) writeFile(path(CRL_COPY), crl, 0o644);
  const config = mosquittoConfigText({
    site: tls.site,
    port: options.port ?? DEFAULT_MOSQUITTO_PORT,
    ...(options.host === undefined ? {} : { host: options.host }),
    cafile: path(MOSQUITTO_FILES.ca),
    certfile: path(MOSQUITTO_FILES.cert),
    keyfile: path(MOSQUITTO_FILES.key),
    aclFile: path(MOSQUITTO_FILES.acl),
    ...(crl === undefined ? {} : { crlFile: path(CRL_COPY) }),
    ...(persistenceDir === undefined ? {} : { persistenceDir }),
    ...(dynsec === undefined ? {} : { dynsec }),
  });
  writeFile(out, config, 0o644);
  const warnings: string[] = [];
  if (crl === undefined) {
    warnings.push(`${tls.crlPath} does not exist (a CA directory from before medge ca init wrote an empty CRL): the config names no crlfile, so after the first 'medge ca revoke' rerun this command and restart Mosquitto (SIGHUP will not add one)`);
  }
  if (dynsecFileWarning !== undefined) warnings.push(dynsecFileWarning);
  if (isRoot && user) {
    const blocked = untraversable(path(MOSQUITTO_FILES.key), user);
    if (blocked.length > 0) {
      warnings.push(`the mosquitto user cannot reach ${dir} (no search permission on ${blocked.join(', ')}); chmod o+x them or write the config elsewhere`);
    }
  }
  return { site: tls.site, config: out, files: [...Object.values(MOSQUITTO_FILES), ...(crl === undefined ? [] : [CRL_COPY]), ...(dynsec === undefined ? [] : [DYNSEC_FILE])].map(path), warnings };
}
