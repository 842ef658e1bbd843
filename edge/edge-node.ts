import { createHmac, randomBytes } from 'node:crypto';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { type Logger, silentLogger } from '../device-sdk/log.js';
import { ConfigError, MedgeError } from '../device-sdk/errors.js';
import { CA_DIR_FILES, describeCertificate, EDGE_INGEST_IDENTITY, type EdgeTlsMaterial, INGEST_GROUP_KEY_FILE, isIngestIdentity } from '../device-sdk/security/pki.js';
import type { BatchLimits } from '../device-sdk/sync/batch.js';
import { UP_WILDCARD } from '../device-sdk/sync/topics.js';
import { disableNagle } from '../device-sdk/sync/uplink.js';
import { siteUpWildcard } from './acl.js';
import { EmbeddedBroker } from './broker.js';
import type { DuplicateDeviceIdOptions } from './duplicate-device-id.js';
import { EdgeStore } from './edge-store.js';
import { Ingest, type IngestOptions, type IngestOutcome } from './ingest.js';
import { IngestIdentityLock } from './ingest-identity-lock.js';
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
   * With `brokerUrl` and `tls` (a CA directory with `issued/`): the broker is a Mosquitto 2.0 configured by
   * `medge edge mosquitto-config --dynsec`, and the ingest blocks devices whose latest certificate is revoked or
   * expired through its dynamic security plugin, closing their open connections (`mosquitto-dynsec.ts`); each
   * device is told why (`Ack.refused`) about a second before. Off by default.
   */
  dynsec?: boolean;
  logger: Logger;
}

/** The ingest's client id: per process, and with a shared subscription per worker (a broker closes the older of two sessions with one id). */
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
      'run medge ca ingest-workers --ca CADIR --workers N (it writes the key) and start the workers with tls from readEdgeTls(CADIR, { ingestWorker })',
    );
  }
}

/** The CN of an ingest certificate (PEM). */
function ingestIdentityOf(certPem: string): string {
  const cn = describeCertificate(certPem).subject.CN;
  if (cn === undefined || !isIngestIdentity(cn)) {
    throw new ConfigError('tls.ingestCert', cn, `the ingest certificate must name ${EDGE_INGEST_IDENTITY} or ${EDGE_INGEST_IDENTITY}-<n>`, 'use the ingest certificate of a medge ca init directory (readEdgeTls)');
  }
  return cn;
}

export const DEFAULT_EDGE_OPTIONS: Readonly<Omit<EdgeNodeOptions, 'dataDir'>> = Object.freeze({
  port: 1883,
  host: '127.0.0.1',
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
  /** With `tls`: the CN of the ingest certificate (`medge-edge-ingest`, or `medge-edge-ingest-<n>` for worker n). */
  readonly ingestIdentity: string | undefined;
  /** Held while connected to an external broker with `tls`: one process per ingest identity on this store. */
  private identityLock: IngestIdentityLock | undefined;

  constructor(options: Partial<EdgeNodeOptions> & { dataDir: string }) {
    this.options = { ...DEFAULT_EDGE_OPTIONS, ...options };
    this.ingestIdentity = this.options.tls ? ingestIdentityOf(this.options.tls.ingestCert) : undefined;
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
    return `$share/${key === undefined ? group : `${group}-${createHmac('sha256', key).update(group).digest('hex').slice(0, 32)}`}/${filter}`;
  }

  async start(): Promise<void> {
    await this.broker?.start();
    const { tls } = this.options;
    // Behind Mosquitto the identity is the client id: a second ingest with it would evict this one in a loop.
    if (this.options.brokerUrl !== undefined && this.ingestIdentity !== undefined) {
      try {
        this.identityLock ??= IngestIdentityLock.acquire(this.options.dataDir, this.ingestIdentity);
      } catch (error) {
        await this.stop();
        throw error;
      }
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
      const outcome = this.ingest.handle(topic, payload);
      this.onOutcome?.(outcome);
    });
    // Ready once the broker has granted the subscription: nothing published after this goes unheard.
    try {
      await ready;
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.deviceBlocker?.start();
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
