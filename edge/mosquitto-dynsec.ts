/**
 * Closing a revoked or expired device's open connection on Mosquitto 2.0, through its dynamic security
 * plugin (`medge edge mosquitto-config --dynsec`, `medge edge --broker ... --tls DIR --dynsec`).
 *
 * Measured with Mosquitto 2.0.11 (`test/security/mosquitto-dynsec.test.ts`, `/work/exp/dynsec`):
 * - `disableClient` on `$CONTROL/dynamic-security/v1` closes every connection whose username is the
 *   client's (`mosquitto_kick_client_by_username`), also when the username is a certificate CN
 *   (`use_identity_as_username`), within milliseconds. The client must exist in the plugin first
 *   (`createClient` without a password).
 * - A disabled client is NOT refused at its next CONNECT: with `use_identity_as_username` Mosquitto
 *   never asks the plugin to authenticate (no username/password check runs). What refuses it is the TLS
 *   handshake: an expired certificate always, a revoked one once Mosquitto has reread the CRL
 *   (`mosquitto-config` again, then SIGHUP). Until then the role given here, which denies every publish,
 *   subscription and delivery (the plugin answers before the ACL file), leaves the reconnected device a
 *   connection that carries nothing.
 * - The plugin's ACLs in 2.0.11 have no `%u` substitution, so they cannot state "each device its own
 *   topics" in one rule; the per-device policy stays in the ACL file (checked for every client the plugin
 *   has no explicit rule for), and the plugin holds only blocked devices.
 *
 * The ingest sends the commands (its identity is granted `$CONTROL/dynamic-security/#` in the ACL file):
 * `MosquittoDeviceBlocker` looks at every device the CA directory issued a certificate to (`issued/`) once
 * per `sweepMs` and blocks those whose latest certificate is revoked or expired; a device re-provisioned with
 * a valid certificate is deleted from the plugin again (which also closes its connections once). Each device is
 * told why (the ingest's `Ack.refused` on its ack topic) `noticeMs` before its block: once blocked, its
 * subscription is refused and it can read nothing (QA: the board raised nothing and reconnected silently).
 *
 * The cost: the ingest's grant on `$CONTROL/dynamic-security/#` lets whoever holds its certificate create clients,
 * roles and groups with any rights; `start()` warns about those medge does not make.
 */
import { readdirSync } from 'node:fs';
import { type Clock, type ClockTimer, systemClock } from '../device-sdk/clock.js';
import { type Logger, silentLogger } from '../device-sdk/log.js';
import { deviceIdentityProblem } from '../device-sdk/security/pki.js';
import type { CertificateProblem } from './issued-certificates.js';

/** The topic the dynamic security plugin takes commands on, and the one it answers on. */
export const DYNSEC_CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_CONTROL_TOPIC}/response`;

/** The plugin role of blocked devices: every publish, subscription and delivery denied. */
export const DYNSEC_BLOCKED_ROLE = 'medge-blocked';

const BLOCKED_ROLE_DESCRIPTION = 'medge: revoked or expired certificate';
const BLOCKED_ROLE_ACLS = Object.freeze(['publishClientSend', 'publishClientReceive', 'subscribePattern'].map((acltype) => Object.freeze({ acltype, topic: '#', priority: 0, allow: false })));

/** Where distributions install the plugin (Debian/Ubuntu per architecture, Alpine, source builds). */
export const DYNSEC_PLUGIN_PATHS: readonly string[] = Object.freeze([
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
]);

/**
 * The plugin's initial configuration: no clients (every device is governed by the ACL file), the blocked
 * role, and default access that lets the ACL file decide. Pure. The plugin rewrites this file on each change.
 */
export function dynsecConfigText(): string {
  return `${JSON.stringify(
    {
      defaultACLAccess: { publishClientSend: false, publishClientReceive: true, subscribe: false, unsubscribe: true },
      clients: [],
      groups: [],
      roles: [{ rolename: DYNSEC_BLOCKED_ROLE, textdescription: BLOCKED_ROLE_DESCRIPTION, acls: BLOCKED_ROLE_ACLS }],
    },
    null,
    2,
  )}\n`;
}

export interface DynsecCommand {
  command: string;
  [field: string]: unknown;
}

/** Commands that close `deviceId`'s connections and deny everything to its later ones. Pure. */
export function blockCommands(deviceId: string): DynsecCommand[] {
  const role = { rolename: DYNSEC_BLOCKED_ROLE };
  return [
    // The role, in case the plugin's file lacks it (written by hand or by another tool); each fails harmlessly when it exists.
    { command: 'createRole', rolename: DYNSEC_BLOCKED_ROLE, textdescription: BLOCKED_ROLE_DESCRIPTION, correlationData: deviceId },
    ...BLOCKED_ROLE_ACLS.map((acl) => ({ command: 'addRoleACL', rolename: DYNSEC_BLOCKED_ROLE, ...acl, correlationData: deviceId })),
    // Fails with "Client already exists" when it does; the next command then gives it the role.
    { command: 'createClient', username: deviceId, roles: [role], correlationData: deviceId },
    { command: 'addClientRole', username: deviceId, rolename: DYNSEC_BLOCKED_ROLE, correlationData: deviceId },
    // Closes its open connections (also when it was disabled already).
    { command: 'disableClient', username: deviceId, correlationData: deviceId },
  ];
}

/** Commands that hand `deviceId` back to the ACL file (closing its connections once). Pure. */
export function unblockCommands(deviceId: string): DynsecCommand[] {
  return [{ command: 'deleteClient', username: deviceId, correlationData: deviceId }];
}

interface DynsecResponse {
  command?: unknown;
  error?: unknown;
  correlationData?: unknown;
  data?: { clients?: unknown; roles?: unknown; groups?: unknown };
}

/** What the blocker knows of the plugin: `unknown` until its first answer or `retryMs`, `silent` when nothing answers (no plugin, or no grant). */
export type DynsecPluginState = 'unknown' | 'answering' | 'silent';

/** The fix named when the plugin does not answer. */
export const DYNSEC_SILENT_FIX =
  'the broker is not a Mosquitto configured for --dynsec (no dynamic security plugin, or no grant of $CONTROL/dynamic-security/# to the ingest): run medge edge mosquitto-config --tls CADIR --out FILE --dynsec and restart Mosquitto; until then revoked and expired devices stay connected (their batches are still refused)';

export interface MosquittoDeviceBlockerOptions {
  /** `issued/` of the CA directory: the devices looked at. */
  issuedDir: string;
  /** Why a device must be blocked (`createIssuedCertificateCheck`), or undefined. */
  certificateProblem: (deviceId: string) => CertificateProblem | undefined;
  /**
   * Publishes a command payload on `DYNSEC_CONTROL_TOPIC` (QoS 1); false when it could not be sent (not connected). The caller
   * subscribes to `DYNSEC_RESPONSE_TOPIC` and passes answers to `handleResponse`.
   */
  publish: (payload: string) => boolean;
  /**
   * Tells the device why before it is blocked (the ingest's refusal notice, `Ack.refused`, on its ack topic): once blocked, it can read
   * nothing. The block follows `noticeMs` later.
   */
  notify: (deviceId: string, problem: CertificateProblem) => void;
  /** How long after the notice the device is blocked (for the notice to be delivered first). */
  noticeMs: number;
  /** How often the issued certificates are looked at. */
  sweepMs: number;
  /** A block not confirmed by the plugin within this time is sent again; a plugin that has not answered within it is reported (`plugin`). */
  retryMs: number;
  clock: Pick<Clock, 'monotonic' | 'setTimeout' | 'clearTimeout'>;
  logger: Logger;
}

export const DEFAULT_DEVICE_BLOCKER_OPTIONS: Readonly<Pick<MosquittoDeviceBlockerOptions, 'notify' | 'noticeMs' | 'sweepMs' | 'retryMs' | 'clock' | 'logger'>> = Object.freeze({
  notify: () => undefined,
  noticeMs: 1_000,
  sweepMs: 1_000,
  retryMs: 5_000,
  clock: systemClock,
  logger: silentLogger,
});

const LIST_CORRELATION = 'medge-list';

/** The commands `start()` sends: what the plugin holds (to unblock re-provisioned devices and report entries medge did not make). */
function listCommands(): DynsecCommand[] {
  return [
    { command: 'listClients', verbose: true, count: -1, offset: 0, correlationData: LIST_CORRELATION },
    { command: 'listRoles', verbose: false, count: -1, offset: 0, correlationData: LIST_CORRELATION },
    { command: 'listGroups', verbose: false, count: -1, offset: 0, correlationData: LIST_CORRELATION },
  ];
}

/**
 * Keeps Mosquitto's dynamic security plugin in step with the CA directory: devices whose latest issued
 * certificate is revoked or expired are told why (`notify`), then blocked `noticeMs` later (connections closed,
 * later ones carry nothing), devices blocked earlier and issued a valid certificate since are unblocked. `start()`
 * asks the plugin what it holds (`listClients`, `listRoles`, `listGroups`), so a restarted ingest unblocks
 * re-provisioned devices too, and warns about clients, roles and groups medge does not make (anyone holding the
 * ingest certificate can add them). A plugin that answers nothing within `retryMs` is reported once, at warn,
 * naming the fix. Commands are sent only while `publish` can send them; a lost one is sent again after `retryMs`.
 */
export class MosquittoDeviceBlocker {
  private readonly options: MosquittoDeviceBlockerOptions;
  private readonly log: Logger;
  /** Devices the plugin confirmed blocked. */
  private readonly blockedSet = new Set<string>();
  /** Commands sent and not yet confirmed: device id -> monotonic time sent. */
  private readonly pending = new Map<string, number>();
  /** Devices told why and not yet unblocked: device id -> monotonic time told. */
  private readonly noticed = new Map<string, number>();
  private timer: ClockTimer | undefined;
  private running = false;
  private pluginState: DynsecPluginState = 'unknown';
  /** Monotonic time the plugin was last asked to list what it holds, while it has not answered. */
  private listSentAt: number | undefined;
  private listAnswered = false;
  /** The last reason `issuedDir` was unreadable (logged once per reason). */
  private issuedProblem: string | undefined;

  constructor(options: Partial<MosquittoDeviceBlockerOptions> & Pick<MosquittoDeviceBlockerOptions, 'issuedDir' | 'certificateProblem' | 'publish'>) {
    this.options = { ...DEFAULT_DEVICE_BLOCKER_OPTIONS, ...options };
    this.log = this.options.logger.child({ component: 'mosquitto-dynsec' });
  }

  /** Devices the plugin has confirmed blocked. */
  get blocked(): ReadonlySet<string> {
    return this.blockedSet;
  }

  /** Whether the plugin answers: `silent` means revoked devices are not disconnected (`DYNSEC_SILENT_FIX`). */
  get plugin(): DynsecPluginState {
    return this.pluginState;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.list();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private list(): void {
    if (this.options.publish(JSON.stringify({ commands: listCommands() }))) this.listSentAt = this.options.clock.monotonic();
  }

  /**
   * The plugin cannot be reached (`why`: no answer within `retryMs`, or the broker refused the ingest's subscription to
   * `DYNSEC_RESPONSE_TOPIC`): warned once, `plugin` becomes `silent`.
   */
  pluginSilent(why: string): void {
    if (this.pluginState === 'silent') return;
    this.pluginState = 'silent';
    this.log.warn({ why }, `the dynamic security plugin does not answer: ${DYNSEC_SILENT_FIX}`);
  }

  private schedule(): void {
    this.timer = this.options.clock.setTimeout(() => {
      if (!this.running) return;
      this.sweep();
      this.schedule();
    }, this.options.sweepMs);
  }

  /** Looks at every issued certificate once and sends the notices and commands needed. Never throws. */
  sweep(): void {
    const now = this.options.clock.monotonic();
    if (this.running && !this.listAnswered) {
      if (this.listSentAt !== undefined && now - this.listSentAt >= this.options.retryMs) {
        this.pluginSilent(`no answer to listClients within ${this.options.retryMs} ms`);
        this.listSentAt = undefined;
      }
      // Asked (again) while unanswered: a broker restarted with the plugin is noticed.
      if (this.listSentAt === undefined) this.list();
    }
    let names: string[];
    try {
      names = readdirSync(this.options.issuedDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const message = (error as Error).message;
      // A CA directory that has issued nothing yet has no issued/: nothing to block, nothing to say.
      if (this.issuedProblem !== message) this.log[code === 'ENOENT' ? 'debug' : 'warn']({ dir: this.options.issuedDir, err: message }, 'issued certificates unreadable');
      this.issuedProblem = message;
      return;
    }
    this.issuedProblem = undefined;
    const issued = new Set<string>();
    for (const name of names) {
      if (!name.endsWith('.crt')) continue;
      const deviceId = name.slice(0, -'.crt'.length);
      if (deviceIdentityProblem(deviceId)) continue; // never block an ingest identity; an older device under medge-edge-ingest-<name> is a device
      issued.add(deviceId);
    }
    for (const deviceId of new Set([...issued, ...this.blockedSet, ...this.noticed.keys()])) {
      const problem = issued.has(deviceId) ? this.options.certificateProblem(deviceId) : undefined;
      if (!problem) this.noticed.delete(deviceId);
      const sent = this.pending.get(deviceId);
      if (sent !== undefined && now - sent < this.options.retryMs) continue;
      if (sent !== undefined) this.pluginSilent(`no answer to the commands for ${deviceId} within ${this.options.retryMs} ms`);
      if (problem && !this.blockedSet.has(deviceId)) {
        const told = this.noticed.get(deviceId);
        if (told === undefined) {
          this.tell(deviceId, problem, now);
          continue;
        }
        if (now - told < this.options.noticeMs) continue;
        this.pending.set(deviceId, now);
        this.log[this.pluginState === 'silent' ? 'debug' : 'info']({ deviceId, reason: problem.reason }, 'blocking device on the broker');
        this.options.publish(JSON.stringify({ commands: blockCommands(deviceId) }));
      } else if (!problem && this.blockedSet.has(deviceId) && issued.has(deviceId)) {
        this.pending.set(deviceId, now);
        this.log.info({ deviceId }, 'unblocking re-provisioned device on the broker');
        this.options.publish(JSON.stringify({ commands: unblockCommands(deviceId) }));
      }
    }
  }

  private tell(deviceId: string, problem: CertificateProblem, now: number): void {
    this.noticed.set(deviceId, now);
    this.log.info({ deviceId, reason: problem.reason, blockInMs: this.options.noticeMs }, 'telling the device why before blocking it on the broker');
    try {
      this.options.notify(deviceId, problem);
    } catch (error) {
      this.log.warn({ deviceId, err: (error as Error).message }, 'the device could not be told before blocking');
    }
  }

  /**
   * Blocks the device again (the ingest received a batch from a device it refuses: the broker let it
   * through, so a command was lost or the plugin restarted without its file). The device is told first
   * (the ingest refuses the batch with its own notice too); the block follows `noticeMs` later, at a sweep.
   */
  reblock(deviceId: string): void {
    if (!this.running) return;
    const now = this.options.clock.monotonic();
    const sent = this.pending.get(deviceId);
    if (sent !== undefined && now - sent < this.options.retryMs) return;
    const told = this.noticed.get(deviceId);
    if (told !== undefined && !this.blockedSet.has(deviceId)) return; // being told: the sweep blocks it
    this.blockedSet.delete(deviceId);
    const problem = this.options.certificateProblem(deviceId);
    if (problem) this.tell(deviceId, problem, now);
  }

  /** An answer of the plugin (`DYNSEC_RESPONSE_TOPIC`). Unparseable answers are logged and ignored. */
  handleResponse(payload: Uint8Array): void {
    let responses: DynsecResponse[];
    try {
      const parsed = JSON.parse(Buffer.from(payload).toString('utf8')) as { responses?: unknown };
      if (!Array.isArray(parsed.responses)) throw new Error('no responses array');
      responses = parsed.responses as DynsecResponse[];
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'unreadable dynamic security response');
      return;
    }
    if (this.pluginState !== 'answering') {
      if (this.pluginState === 'silent') this.log.warn('the dynamic security plugin answers now: revoked and expired devices are disconnected again');
      this.pluginState = 'answering';
    }
    for (const r of responses) {
      if (typeof r !== 'object' || r === null) continue;
      const deviceId = typeof r.correlationData === 'string' ? r.correlationData : undefined;
      const error = typeof r.error === 'string' ? r.error : undefined;
      if (r.command === 'listClients' || r.command === 'listRoles' || r.command === 'listGroups') {
        this.listSentAt = undefined;
        this.listAnswered = true;
        if (error) this.log.warn({ command: r.command, err: error }, 'the dynamic security plugin did not list what it holds');
        else this.handleList(r);
      } else if (deviceId === undefined) {
        continue;
      } else if (r.command === 'disableClient') {
        this.pending.delete(deviceId);
        if (error) this.log.error({ deviceId, err: error }, 'the broker did not block the device');
        else this.blockedSet.add(deviceId);
      } else if (r.command === 'deleteClient') {
        this.pending.delete(deviceId);
        if (error && error !== 'Client not found') this.log.error({ deviceId, err: error }, 'the broker did not unblock the device');
        else this.blockedSet.delete(deviceId);
      }
    }
  }

  /** The plugin's lists: blocked devices are learned; clients, roles and groups medge does not make are reported. */
  private handleList(r: DynsecResponse): void {
    const foreign = (what: string, names: string[]) => {
      if (names.length === 0) return;
      this.log.warn(
        { [what]: names.slice(0, 20), count: names.length },
        `the dynamic security plugin holds ${what} medge did not create: they can give a connection rights beyond the ACL file (the ingest certificate can create them); remove them unless the broker's operator made them`,
      );
    };
    if (r.command === 'listClients' && Array.isArray(r.data?.clients)) {
      const others: string[] = [];
      for (const c of r.data.clients as ({ username?: unknown; roles?: unknown; groups?: unknown } | null)[]) {
        if (typeof c?.username !== 'string') continue;
        const roles = Array.isArray(c.roles) ? (c.roles as ({ rolename?: unknown } | null)[]) : [];
        const groups = Array.isArray(c.groups) ? c.groups : [];
        const ours = roles.length > 0 && roles.every((role) => role?.rolename === DYNSEC_BLOCKED_ROLE) && groups.length === 0;
        if (ours) this.blockedSet.add(c.username);
        else others.push(c.username);
      }
      foreign('clients', others);
    } else if (r.command === 'listRoles' && Array.isArray(r.data?.roles)) {
      foreign('roles', (r.data.roles as unknown[]).map((role) => (typeof role === 'string' ? role : String((role as { rolename?: unknown } | null)?.rolename))).filter((name) => name !== DYNSEC_BLOCKED_ROLE));
    } else if (r.command === 'listGroups' && Array.isArray(r.data?.groups)) {
      foreign('groups', (r.data.groups as unknown[]).map((group) => (typeof group === 'string' ? group : String((group as { groupname?: unknown } | null)?.groupname))));
    }
  }
}
