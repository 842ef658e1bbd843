import { createHash, randomBytes } from 'node:crypto';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { type Logger, silentLogger } from '../device-sdk/log.js';
import { ConfigError, MedgeError } from '../device-sdk/errors.js';
import { CA_DIR_FILES, describeCertificate, EDGE_INGEST_IDENTITY, type EdgeTlsMaterial, INGEST_GROUP_KEY_FILE, isIngestIdentity, keyedIngestGroup } from '../device-sdk/security/pki.js';
import type { BatchLimits } from '../device-sdk/sync/batch.js';
import { TOPIC_ROOT, UP_WILDCARD } from '../device-sdk/sync/topics.js';
import { disableNagle } from '../device-sdk/sync/uplink.js';
import { siteUpWildcard } from './acl.js';
import { EmbeddedBroker } from './broker.js';
import type { DuplicateDeviceIdOptions } from './duplicate-device-id.js';
import { EdgeStore } from './edge-store.js';
import { Ingest, type IngestOptions, type IngestOutcome } from './ingest.js';
import { IngestIdentityInUseError, IngestIdentityLock, ingestIdentityLockHolder, ingestIdentityLockPath } from './ingest-identity-lock.js';
import { type CertificateProblem, createIssuedCertificateCheck } from './issued-certificates.js';
import { DYNSEC_CONTROL_TOPIC, DYNSEC_RESPONSE_TOPIC, MosquittoDeviceBlocker } from './mosquitto-dynsec.js';

export interface EdgeNodeOptions {
  dataDir: string;
  /** An external broker to subscribe to (Mosquitto, a cluster). Without it an embedded aedes broker runs. */
  brokerUrl?: string;
  /** Port of the embedded broker (0 picks a free one). */
  port: number;
  host: string;
  limits: Partial<BatchLimits>;
  /** Extra MQTT.js options for the ingest client. */
  mqtt: Partial<IClientOptions>;
  /**
   * Mutual TLS (`readEdgeTls(dir)` of a `medge ca init` directory). The embedded broker then speaks
   * MQTT over TLS only, requires client certificates from the site CA and enforces per-device topic
   * ACLs, counting refusals as `auth` and `acl`; the ingest client authenticates with the edge's
   * ingest certificate (also to an external broker) and subscribes to its site's uplinks only.
   */
  tls?: EdgeTlsMaterial;
  /** Payload encryption inside TLS: the devices' wire keys (`WireKeyring` of the CA directory) and whether clear payloads are refused. */
  payload?: IngestOptions;
  /** When two live boots under one device id are proven and the intruder's batches refused (`duplicate-device-id.ts`). */
  duplicateDeviceId?: Partial<DuplicateDeviceIdOptions>;
  /**
   * A shared subscription group: the ingest subscribes to `$share/<group>/<its filter>`, so that N edge nodes with this
   * group, the same `brokerUrl` and the same `dataDir` (each its own SQLite connection) are N ingest workers, the broker
   * giving each uplink message to one of them (Mosquitto >= 1.6, MQTT 3.1.1 and 5 clients; any MQTT 5 broker). Only with
   * `brokerUrl`: the embedded aedes 1.2 has no shared subscriptions (moscajs/aedes#228), a `$share/` filter there would
   * match no uplink. Each worker's client id is then its own (`medge-edge-ingest-<pid>-<8 hex>`). With `tls` each worker
   * needs its own ingest certificate (`readEdgeTls(dir, { ingestWorker: n })`, CN `medge-edge-ingest-<n>`, issued by
   * `issueIngestWorkers`): Mosquitto as `mosquitto-config` sets it up takes the certificate's CN as the client id
   * (`use_username_as_clientid`), so workers sharing `ingest.crt` would close each other's connections; that is refused.
   */
  sharedSubscription?: string;
  /**
   * A single ingest (no `sharedSubscription`) behind an external broker with `tls` whose identity lock another process
   * holds (a hung or stopped ingest on the same data directory) waits this long for it, then goes on without it: Mosquitto
   * gives the connection to the newer client, and the older one, if it ever wakes, will evict it in turn. Workers are
   * refused at once instead.
   */
  identityLockWaitMs: number;
  /**
   * Ingest workers with `tls` behind an external broker check at start that the broker delivers uplinks to them: each
   * publishes a probe on its own uplink topic (`medge/v1/<site>/<its CN>/up/${ACL_PROBE_KIND}`, which Mosquitto's ACL
   * pattern lets it write) and reads it back, which Mosquitto delivers only when the worker's user block grants it every
   * uplink of the site. A worker started before `mosquitto-config` was rerun and Mosquitto reloaded would otherwise be
   * granted its shared subscription and silently lose its share of uplinks. Not received within this time: start fails.
   */
  aclProbeTimeoutMs: number;
  /**
   * With `brokerUrl` and `tls` (a CA directory with `issued/`): the broker is a Mosquitto 2.0 configured by
   * `medge edge mosquitto-config --dynsec`, and the ingest blocks devices whose latest certificate is revoked or
   * expired through its dynamic security plugin, closing their open connections (`mosquitto-dynsec.ts`); each
   * device is told why (`Ack.refused`) about a second before. Off by default.
   */
  dynsec?: boolean;
  logger: Logger;
}

/** The ingest's client id: per process, and with a shared subscription per worker (a broker closes the older of two sessions with one id). */
/** The uplink kind of an ingest worker's ACL probe: no record kind, never handed to the store. */
export const ACL_PROBE_KIND = 'medge-acl-probe';

function ingestClientId(shared: boolean): string {
  return shared ? `medge-edge-ingest-${process.pid}-${randomBytes(4).toString('hex')}` : `medge-edge-ingest-${process.pid}`;
}

/**
 * Checks a shared subscription group name (MQTT 5 4.8.2: no '/', '+' or '#'; at least one character), that it has an
 * external broker and, with TLS, an ingest worker's own certificate (`ingestIdentity`, the CN of `tls.ingestCert`).
 */
function checkSharedSubscription(group: string | undefined, brokerUrl: string | undefined, ingestIdentity: string | undefined, groupKey: string | undefined): void {
  if (group === undefined) return;
  if (!/^[^/+#\u0000]{1,64}$/u.test(group)) {
    throw new ConfigError('sharedSubscription', group, "a shared subscription group is 1 to 64 characters without '/', '+', '#' or NUL", 'give a plain name, e.g. ingest');
  }
  if (brokerUrl === undefined) {
    throw new ConfigError(
      'sharedSubscription',
      group,
      'the embedded broker (aedes 1.2) has no shared subscriptions: the $share/ filter would match no uplink',
      'run the workers against an external broker that has them (--broker mqtt://..., Mosquitto >= 1.6), or run one ingest',
    );
  }
  if (ingestIdentity === EDGE_INGEST_IDENTITY) {
    throw new ConfigError(
      'sharedSubscription',
      group,
      `with TLS each worker needs its own ingest certificate: workers sharing ${CA_DIR_FILES.ingestCert} (CN ${EDGE_INGEST_IDENTITY}) get one client id from Mosquitto as medge edge mosquitto-config sets it up (use_username_as_clientid) and close each other's connections`,
      'issue one certificate per worker (medge ca ingest-workers --ca CADIR --workers N), rerun medge edge mosquitto-config and give each worker its own (--ingest-worker 1..N; tls from readEdgeTls(CADIR, { ingestWorker }))',
    );
  }
  if (ingestIdentity !== undefined && groupKey === undefined) {
    throw new ConfigError(
      'sharedSubscription',
      group,
      `with TLS the workers' group is derived from the CA directory's ${INGEST_GROUP_KEY_FILE}, and there is none: a group devices can name is one a device certificate can join, taking uplinks away from the workers (Mosquitto does not check subscriptions against its ACL file)`,
      'run medge ca ingest-workers --ca CADIR --workers N (it writes the key), then restart every worker with tls from readEdgeTls(CADIR, { ingestWorker }): all must derive the group from the same key',
    );
  }
}

/** The CN of an ingest certificate (PEM); a worker's (`shared`) must be an ingest identity, a single ingest's may be any. */
function ingestIdentityOf(certPem: string, shared: boolean): string | undefined {
  const cn = describeCertificate(certPem).subject.CN;
  if (shared && (cn === undefined || !isIngestIdentity(cn))) {
    throw new ConfigError('tls.ingestCert', cn, `an ingest worker's certificate must name ${EDGE_INGEST_IDENTITY}-<n>`, 'use a worker certificate of medge ca ingest-workers (readEdgeTls(CADIR, { ingestWorker }))');
  }
  return cn;
}

export const DEFAULT_EDGE_OPTIONS: Readonly<Omit<EdgeNodeOptions, 'dataDir'>> = Object.freeze({
  port: 1883,
  host: '127.0.0.1',
  identityLockWaitMs: 30_000,
  aclProbeTimeoutMs: 5_000,
  limits: {},
  mqtt: {},
  logger: silentLogger,
});

/**
 * The regional edge node: an MQTT broker (embedded or external), an ingest client subscribed to
 * every device's uplink, and the edge store. Acks go out only after the batch is committed.
 */
export class EdgeNode {
  readonly store: EdgeStore;
  readonly broker: EmbeddedBroker | undefined;
  private readonly options: EdgeNodeOptions;
  private readonly log: Logger;
  private client: MqttClient | undefined;
  private readonly ingest: Ingest;
  /** Blocks revoked and expired devices on Mosquitto (`dynsec`). */
  readonly deviceBlocker: MosquittoDeviceBlocker | undefined;
  /** Called after each message is handled (tests and the demo watch it). */
  onOutcome: ((outcome: IngestOutcome) => void) | undefined;
  /** With `tls`: the CN of the ingest certificate (`medge-edge-ingest`, `medge-edge-ingest-<n>` for worker n, or a custom one's for a single ingest). */
  readonly ingestIdentity: string | undefined;
  /** Held while connected to an external broker with `tls`: one process per ingest identity on this store. */
  private identityLock: IngestIdentityLock | undefined;

  constructor(options: Partial<EdgeNodeOptions> & { dataDir: string }) {
    this.options = { ...DEFAULT_EDGE_OPTIONS, ...options };
    this.ingestIdentity = this.options.tls ? ingestIdentityOf(this.options.tls.ingestCert, this.options.sharedSubscription !== undefined) : undefined;
    checkSharedSubscription(this.options.sharedSubscription, this.options.brokerUrl, this.ingestIdentity, this.options.tls?.ingestGroupKey);
    this.log = this.options.logger.child({ component: 'edge' });
    this.store = new EdgeStore(this.options.dataDir);
    const { tls } = this.options;
    this.broker = this.options.brokerUrl
      ? undefined
      : new EmbeddedBroker({
          port: this.options.port,
          host: this.options.host,
          logger: this.options.logger,
          ...(tls
            ? {
                tls: { ca: tls.ca, cert: tls.cert, key: tls.key, crlPath: tls.crlPath },
                site: tls.site,
                // The store is closed only after the broker has stopped, so this never writes to a closed store.
                onReject: (rejection) => this.store.countRejected(rejection.reason),
              }
            : {}),
        });
    const externalTls = this.options.brokerUrl && tls?.issuedDir ? { ...tls, issuedDir: tls.issuedDir } : undefined;
    if (this.options.dynsec === true && !externalTls) {
      throw new ConfigError(
        'dynsec',
        true,
        this.options.brokerUrl === undefined ? 'dynsec commands the dynamic security plugin of an external Mosquitto; the embedded broker closes revoked devices itself' : 'dynsec needs the CA directory (tls with issuedDir) to know which devices are revoked or expired',
        'give brokerUrl (--broker mqtts://...) of a Mosquitto configured by medge edge mosquitto-config --dynsec and tls from readEdgeTls(CADIR) (--tls CADIR), or drop dynsec',
      );
    }
    const issuedCheck = externalTls ? createIssuedCertificateCheck({ ca: externalTls.ca, issuedDir: externalTls.issuedDir, crlPath: externalTls.crlPath, now: () => Date.now() }) : undefined;
    const site = externalTls?.site;
    this.deviceBlocker =
      this.options.dynsec === true && externalTls && issuedCheck && site !== undefined
        ? new MosquittoDeviceBlocker({
            issuedDir: externalTls.issuedDir,
            certificateProblem: issuedCheck,
            // A command lost here is sent again after the blocker's retry time.
            publish: (payload) => {
              if (!this.client?.connected) return false;
              this.client.publish(DYNSEC_CONTROL_TOPIC, payload, { qos: 1 });
              return true;
            },
            // Once blocked, the device can read nothing: it learns why from this notice, as from a refused batch.
            notify: (deviceId, problem) => this.ingest.announceRefusal(site, deviceId, problem.reason),
            logger: this.options.logger,
          })
        : undefined;
    const certificateProblem =
      issuedCheck === undefined
        ? undefined
        : (deviceId: string): CertificateProblem | undefined => {
            const problem = issuedCheck(deviceId);
            // The broker let a blocked device's batch through: block it again.
            if (problem) this.deviceBlocker?.reblock(deviceId);
            return problem;
          };
    this.ingest = new Ingest(
      this.store,
      (topic, payload) => {
        // An ack lost here is harmless: the device times out, resends, and the edge acks again.
        if (this.client?.connected) this.client.publish(topic, payload, { qos: 1 });
      },
      this.log,
      this.options.limits,
      {
        ...this.options.payload,
        duplicateDeviceId: { ...this.options.payload?.duplicateDeviceId, ...this.options.duplicateDeviceId },
        // An external broker (Mosquitto) keeps connections open past revocation and expiry: the ingest refuses their batches.
        ...(certificateProblem ? { certificateProblem } : {}),
      },
    );
  }

  get url(): string {
    return this.options.brokerUrl ?? (this.broker as EmbeddedBroker).url;
  }

  /**
   * The ingest's subscription: every site's uplinks, or with TLS only those of its own site (its ACL); `$share/<group>/`
   * before it with `sharedSubscription`, where with TLS the group is `<sharedSubscription>-<HMAC of it under the CA
   * directory's ingest group key, 32 hex>`: only holders of the CA directory can name it, so no device joins it.
   */
  get subscription(): string {
    const { tls, sharedSubscription: group } = this.options;
    const filter = tls ? siteUpWildcard(tls.site) : UP_WILDCARD;
    if (group === undefined) return filter;
    const key = tls?.ingestGroupKey;
    return `$share/${key === undefined ? group : keyedIngestGroup(group, key)}/${filter}`;
  }

  async start(): Promise<void> {
    await this.broker?.start();
    const { tls } = this.options;
    // Behind Mosquitto the identity is the client id: a second ingest with it would evict this one in a loop.
    if (this.options.brokerUrl !== undefined && this.ingestIdentity !== undefined && isIngestIdentity(this.ingestIdentity)) {
      try {
        this.identityLock ??= await this.takeIdentityLock(this.ingestIdentity);
      } catch (error) {
        await this.stop();
        throw error;
      }
    }
    const shared = this.options.sharedSubscription;
    if (shared !== undefined && tls?.ingestGroupKey !== undefined) {
      // Every worker must print the same: one that differs was started with another ingest-group.key.
      const fingerprint = createHash('sha256').update(keyedIngestGroup(shared, tls.ingestGroupKey)).digest('hex').slice(0, 8);
      this.log.info({ group: shared, identity: this.ingestIdentity, groupFingerprint: fingerprint }, 'ingest worker group (the fingerprint must match on every worker)');
    }
    const client = mqttConnect(this.url, {
      ...this.options.mqtt,
      ...(tls ? { ca: tls.ca, cert: tls.ingestCert, key: tls.ingestKey, rejectUnauthorized: true } : {}),
      protocolVersion: 4,
      clientId: ingestClientId(this.options.sharedSubscription !== undefined),
      clean: true,
      reconnectPeriod: 500,
      connectTimeout: 5_000,
      keepalive: 15,
    });
    this.client = client;
    let subscribed: () => void = () => undefined;
    let refused: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      subscribed = resolve;
      refused = reject;
    });
    client.on('connect', () => {
      disableNagle(client);
      client.subscribe(this.subscription, { qos: 1 }, (error, granted) => {
        // MQTT.js reports a SUBACK carrying 128 (failure) as an error with the packet attached.
        const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet?.granted;
        if (suback?.includes(128) || granted?.some((g) => g.qos === 128)) {
          // Retrying cannot help: the broker's ACL does not grant the ingest its subscription.
          this.log.error({ topic: this.subscription, url: this.url }, 'ingest subscription refused by the broker');
          refused(new MedgeError('edge', `the broker at ${this.url} refused the ingest subscription ${this.subscription} (check its ACL for ${this.ingestIdentity ?? EDGE_INGEST_IDENTITY}; for an ingest worker rerun medge edge mosquitto-config after medge ca ingest-workers)`));
        } else if (error) this.log.error({ err: error.message }, 'ingest subscription failed');
        else {
          this.log.info({ url: this.url }, 'edge ingest subscribed');
          subscribed();
        }
      });
      if (this.deviceBlocker) {
        client.subscribe(DYNSEC_RESPONSE_TOPIC, { qos: 1 }, (error, granted) => {
          const suback = (error as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet?.granted;
          // Refused: the broker's ACL does not grant the ingest $CONTROL/dynamic-security/# (a config written without --dynsec).
          if (suback?.includes(128) || granted?.some((g) => g.qos === 128)) this.deviceBlocker?.pluginSilent(`the broker refused the subscription to ${DYNSEC_RESPONSE_TOPIC}`);
          else if (error) this.log.error({ err: error.message }, 'dynamic security response subscription failed');
        });
      }
    });
    client.on('error', (error) => this.log.warn({ err: error.message }, 'ingest mqtt error'));
    client.on('message', (topic, payload) => {
      if (topic === DYNSEC_RESPONSE_TOPIC) {
        this.deviceBlocker?.handleResponse(payload);
        return;
      }
      const parts = topic.split('/');
      if (parts[5] === ACL_PROBE_KIND && isIngestIdentity(parts[3] ?? '')) {
        // A worker's ACL probe (this one's, or another's through the shared group): never device data.
        this.onProbe?.(topic, payload);
        return;
      }
      const outcome = this.ingest.handle(topic, payload);
      this.onOutcome?.(outcome);
    });
    // Ready once the broker has granted the subscription: nothing published after this goes unheard.
    try {
      await ready;
      if (shared !== undefined && tls && this.options.brokerUrl !== undefined && this.ingestIdentity !== undefined) await this.probeAcl(client, tls.site, this.ingestIdentity);
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.deviceBlocker?.start();
  }

  private onProbe: ((topic: string, payload: Buffer) => void) | undefined;

  /**
   * The identity lock of this ingest. A worker is refused at once when another process holds it; a single ingest
   * waits up to `identityLockWaitMs` (a hung ingest must not block its replacement) and then goes on without it.
   */
  private async takeIdentityLock(identity: string): Promise<IngestIdentityLock | undefined> {
    const path = ingestIdentityLockPath(this.options.dataDir, identity);
    const deadline = Date.now() + this.options.identityLockWaitMs;
    let told = false;
    for (;;) {
      try {
        return IngestIdentityLock.acquire(this.options.dataDir, identity);
      } catch (error) {
        if (!(error instanceof IngestIdentityInUseError) || this.options.sharedSubscription !== undefined) throw error;
        if (!told) {
          this.log.warn({ identity, holderPid: ingestIdentityLockHolder(path), waitMs: this.options.identityLockWaitMs }, 'another process holds this ingest identity on this store; waiting for it to exit');
          told = true;
        }
        if (Date.now() >= deadline) {
          this.log.warn(
            { identity, holderPid: ingestIdentityLockHolder(path) },
            'going on without the identity lock: the broker closes the older connection with this client id, so if the other ingest resumes the two will evict each other; stop it',
          );
          return undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(1, deadline - Date.now()))));
      }
    }
  }

  /**
   * Publishes a probe on this worker's own uplink topic and waits for it on a plain subscription to that topic: Mosquitto
   * delivers it only when the worker's ACL user block (written by `mosquitto-config` once its certificate exists) lets
   * it read the site's uplinks. Refused with code `ingest-acl-missing` when it does not arrive within `aclProbeTimeoutMs`.
   */
  private async probeAcl(client: MqttClient, site: string, identity: string): Promise<void> {
    const topic = `${TOPIC_ROOT}/${site}/${identity}/up/${ACL_PROBE_KIND}`;
    const nonce = randomBytes(16).toString('hex');
    let timer: NodeJS.Timeout | undefined;
    let resend: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.onProbe = (t, payload) => {
          if (t === topic && payload.toString() === nonce) resolve();
        };
        client.subscribe(topic, { qos: 1 }, (error) => {
          if (error) return reject(new MedgeError('ingest-acl-missing', `the broker at ${this.url} refused the ACL probe subscription ${topic}: ${error.message}`));
          const send = () => client.publish(topic, nonce, { qos: 1 });
          send();
          resend = setInterval(send, 1_000);
        });
        timer = setTimeout(() => {
          this.log.error({ identity, topic }, 'the broker does not deliver uplinks to this ingest worker: rerun medge edge mosquitto-config and SIGHUP Mosquitto');
          reject(
            new MedgeError(
              'ingest-acl-missing',
              `the broker at ${this.url} granted ${identity} its shared subscription but did not deliver its ACL probe within ${this.options.aclProbeTimeoutMs} ms: its ACL file has no user block for ${identity}, so Mosquitto would drop this worker's share of uplinks. Rerun medge edge mosquitto-config --tls CADIR --out FILE (after medge ca ingest-workers) and send Mosquitto SIGHUP, then start this worker again`,
            ),
          );
        }, this.options.aclProbeTimeoutMs);
      });
      this.log.info({ identity }, 'ingest worker ACL probe received: the broker delivers uplinks to this worker');
    } finally {
      clearTimeout(timer);
      clearInterval(resend);
      this.onProbe = undefined;
      client.unsubscribe(topic);
    }
  }

  /** Stops the embedded broker (all connections drop). For fault injection. */
  async stopBroker(): Promise<void> {
    await this.broker?.stop();
  }

  async startBroker(): Promise<void> {
    await this.broker?.start();
  }

  async stop(): Promise<void> {
    this.deviceBlocker?.stop();
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true).catch(() => undefined);
    this.identityLock?.release();
    this.identityLock = undefined;
    await this.broker?.stop();
    this.store.close();
  }
}
