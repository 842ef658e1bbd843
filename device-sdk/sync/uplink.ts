import { EventEmitter } from 'node:events';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { decodeAck } from '../proto/index.js';
import { type Alert, RECORD_KINDS, type RecordKind } from '../records.js';
import type { OutboxStore } from '../store/outbox-store.js';
import { SEQ_FLOOR_LIMIT } from '../store/seq-reservation.js';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { buildBatch } from './batch.js';
import {
  type CertificateClockError,
  type CertificateRefusedError,
  diagnoseClockFailure,
  diagnoseRefusedCertificate,
  isClockFailureCode,
  peerValidity,
  pemList,
} from './tls-clock.js';
import { downTopic, isTopicSegment, upTopic } from './topics.js';

export type UplinkState = 'connecting' | 'connected' | 'backoff' | 'offline';

export interface UplinkOptions {
  /** Broker URL, `mqtt://host:port` or `mqtts://...`. */
  url: string;
  site: string;
  batchMaxRecords: number;
  batchMaxBytes: number;
  /** Batches published and not yet acknowledged, at most. */
  window: number;
  /**
   * A batch not acknowledged this long after it could be on its way is sent again (the edge
   * de-duplicates): counted from when it was published or from the last sign of progress on the link
   * (a PUBACK or an ack), whichever is later, plus its own transmission time at `slowLinkBytesPerSec`
   * until the broker has PUBACKed it. A window queued on a thin link therefore does not time out.
   */
  ackTimeoutMs: number;
  /** The slowest link a batch's transmission time is allowed for (bytes/s); see `ackTimeoutMs`. */
  slowLinkBytesPerSec: number;
  backoff: BackoffOptions;
  /**
   * A connection up at least this long (and at least twice `backoff.maxMs`) is stable: only then does
   * the reconnect backoff start again from `backoff.initialMs`, and the count of short sessions end.
   */
  stableSessionMs: number;
  /**
   * Connections in a row that the broker closed before they were stable, without an error on this side,
   * that make the uplink take its MQTT session as taken over by another board with this deviceId: it
   * then raises `sync-device-id-in-use` and reconnects with the full `backoff.maxMs` ceiling.
   */
  takeoverAfter: number;
  /** `sync-device-id-in-use` is raised at most once this long (ms) while the takeovers go on. */
  takeoverAlertRepeatMs: number;
  /**
   * TLS connections in a row that the edge closes after TCP connected and before any CONNACK, without a
   * reason this side can see (how a Node TLS edge refuses a client certificate), that make the uplink raise
   * `sync-clock-invalid` or `sync-certificate-refused` (`tls-clock.ts`). Only for `mqtts://`.
   */
  refusedHandshakesBeforeAlert: number;
  /**
   * Connections in a row whose subscription to this board's own ack topic the broker refuses (SUBACK 0x80, or an
   * MQTT 5 reason of 0x80 and above) that make the uplink raise `sync-access-refused` and reconnect every half to
   * whole `backoff.maxMs`: how Mosquitto's dynamic security plugin answers a board the edge blocked while it was
   * offline (`edge/mosquitto-dynsec.ts`).
   */
  refusedSubscriptionsBeforeAlert: number;
  /** How often acknowledged records past retention are compacted (ms). */
  compactIntervalMs: number;
  /** zlib level of batch compression: 1 is fastest, 9 smallest (metered links). */
  compressionLevel: number;
  /** Extra MQTT.js options (TLS material). Reconnection and sessions are the uplink's own. */
  mqtt: Partial<IClientOptions>;
  /**
   * Payload encryption inside TLS: seals each encoded batch for its topic before it is published
   * (`security/wire-keys.ts` `sealPayload`). Undefined: batches go out as encoded.
   */
  sealPayload?: (topic: string, payload: Uint8Array) => Uint8Array;
  clock: Clock;
  random: () => number;
  logger: Logger;
}

export const DEFAULT_UPLINK_OPTIONS: Readonly<Omit<UplinkOptions, 'url'>> = Object.freeze({
  site: 'default',
  batchMaxRecords: 2000,
  batchMaxBytes: 256 * 1024,
  window: 16,
  ackTimeoutMs: 10_000,
  slowLinkBytesPerSec: 4096,
  backoff: DEFAULT_BACKOFF,
  stableSessionMs: 60_000,
  takeoverAfter: 3,
  takeoverAlertRepeatMs: 3_600_000,
  refusedHandshakesBeforeAlert: 3,
  refusedSubscriptionsBeforeAlert: 3,
  compactIntervalMs: 5_000,
  compressionLevel: 6,
  mqtt: {},
  clock: systemClock,
  random: Math.random,
  logger: silentLogger,
});

/**
 * MQTT is many small packets each awaiting a small answer (PUBLISH/PUBACK, batch/ack): with Nagle's
 * algorithm on, each waits for the previous one's ACK. Measured here: 47% of a drain spent idle.
 */
export function disableNagle(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined;
  stream?.setNoDelay?.(true);
}

interface InFlight {
  kind: RecordKind;
  afterSeq: number;
  lastSeq: number;
  sentAt: number;
  /** Bytes published. */
  bytes: number;
  /** The broker PUBACKed it: it is off the link. */
  transmitted: boolean;
  /** An ack named it (`batchLastSeq`): the edge holds it, ahead of a gap while the ack is below it. */
  held: boolean;
}

/**
 * A board takes its short sessions for takeovers by another board under its deviceId only if, within this
 * long (ms), an ack said the edge sees its batches alternate with another live boot (`otherBootLive`) or an ack
 * for another boot came on its ack topic (the edge acks the other board's batches there). An edge older than
 * these fields gives no such sign: the alert is not raised (the backoff still grows).
 */
const OTHER_BOOT_WINDOW_MS = 10 * 60_000;

/** The alert (severity 2) of a board whose MQTT session another board with its deviceId keeps taking over. */
export const SYNC_DEVICE_ID_IN_USE = 'sync-device-id-in-use';

/**
 * The alert (severity 1, info) of a board that moved its seqs above those the edge holds from another ledger
 * under its deviceId (`Ack.seqFloor`), and the audit action recorded each time it does.
 */
export const SYNC_SEQS_RAISED = 'sync-seqs-raised';

/** The alert (severity 2) of a board whose batches the edge refuses and says why (`Ack.refused`). */
export const SYNC_BATCHES_REFUSED = 'sync-batches-refused';

/**
 * The alert (severity 2) of a board whose subscription to its own ack topic the broker keeps refusing: its
 * certificate was revoked or its access removed while it was offline, so it never read the edge's refusal notice.
 */
export const SYNC_ACCESS_REFUSED = 'sync-access-refused';

/** What a board's alert says to do about each reason the edge names in `Ack.refused`. */
const REFUSED_FIXES: Readonly<Record<string, string>> = Object.freeze({
  'certificate-revoked': "this board's certificate was revoked: re-provision it (medge provision) and install the new certificate",
  'certificate-expired': "this board's certificate has expired: re-provision it (medge provision) and install the new certificate",
  key: "the edge cannot open this board's payloads with its wire key (missing, different, or the edge requires sealed payloads): re-provision it (medge provision) so that the board and the edge hold the same wire key (config edge.payloadEncryption)",
  malformed: "the edge cannot read this board's batches: bring the board software and the edge to matching medge versions",
  oversize: "this board's batches are larger than the edge accepts: lower edge.batchMaxRecords / edge.batchMaxBytes in the board config",
  'unknown-version': "the edge does not speak this board's wire format version: bring the board software and the edge to matching medge versions",
  'device-id-in-use':
    "another board is running under this board's device id, and the edge stores that board's records and refuses this board's so that two patients' data do not mix under one id. Give each board its own device id and certificate (deviceId in the board config, medge provision): re-provision the other board, whose records are at the edge, and keep this board's id and data directory (its records exist only here: its readings and alerts are kept until the edge stores them, but its waveform unacknowledged for 24 h may be evicted once its ledger is full, within days for a stethoscope or ECG); the edge takes them once the edge's operator releases the id (medge edge duplicates release), or by itself once the other board has been silent under this id for 7 days",
});

export interface UplinkEvents {
  state: [UplinkState];
  ack: [{ kind: RecordKind; upToSeq: number }];
  drained: [];
  /**
   * A `sync-device-id-in-use`, `sync-seqs-raised`, `sync-batches-refused`, `sync-access-refused`, `sync-clock-invalid` or `sync-certificate-refused` alert for
   * the runtime to store and raise locally (the uplink stores no alert itself).
   */
  alert: [Alert];
}

/**
 * Delivers the ledger to the edge. It publishes only what the store holds, never from MQTT.js's
 * in-memory queue: each connection is a fresh client with its own session, MQTT.js's reconnect is
 * off, and after a disconnect the uplink resumes from the store's acknowledged watermark.
 *
 * Order of work on every turn: the highest-priority kind with unsent records (alert, finding,
 * reading, quarantine, chunk), one batch at a time, while fewer than `window` batches await their
 * ack. A record leaves the outbox only through `store.acknowledge` on an `Ack` from the edge. An
 * `Ack` with `rewind` (the edge lost records it had acknowledged) lowers the watermark with
 * `store.rewind` and sending resumes from it.
 */
export class Uplink extends EventEmitter<UplinkEvents> {
  private readonly store: OutboxStore;
  private readonly options: UplinkOptions;
  private readonly log: Logger;
  /** The last pump could not read the ledger (logged once). */
  private readFailing = false;
  private client: MqttClient | undefined;
  private stateValue: UplinkState = 'offline';
  private attempt = 0;
  private readonly cursor = {} as Record<RecordKind, number>;
  /**
   * Highest seq of each kind this uplink has published (the acknowledged watermark at start). An ack
   * is taken only up to it: the edge's watermark of a deviceId can cover seqs another ledger under the
   * same id sent (new or restored ledger, two devices with one id), and acks of a previous process can
   * arrive after a restart.
   */
  private readonly sentUpTo = {} as Record<RecordKind, number>;
  private readonly exhausted = {} as Record<RecordKind, boolean>;
  private inFlight: InFlight[] = [];
  private retryTimer: ClockTimer | undefined;
  private ackTimer: ClockTimer | undefined;
  private lastCompact = 0;
  /** Monotonic time of the last PUBACK or ack on the current connection. */
  private lastProgress = 0;
  private running = false;
  /** Monotonic time the current connection became `connected`. */
  private connectedAt: number | undefined;
  /** Connections in a row the broker closed before they were stable (see `takeoverAfter`). */
  private shortSessions = 0;
  /** Monotonic time of the last sign of another board under this deviceId (`OTHER_BOOT_WINDOW_MS`). */
  private otherBootAt: number | undefined;
  /** Monotonic time of the last `sync-device-id-in-use` alert. */
  private takeoverAlertAt: number | undefined;
  private unsubscribeStore: (() => void) | undefined;
  /** A `sync-seqs-raised` alert was emitted (once per uplink; every raise is audited). */
  private seqsRaisedAlerted = false;
  /** Kinds whose last word from the edge was a refusal notice (`Ack.refused`), with its reason; cleared by an ack of the kind. */
  private readonly refusedKinds = new Map<RecordKind, string>();
  /** Reasons a `sync-batches-refused` alert was emitted for since `start`. */
  private readonly refusedAlerted = new Set<string>();
  /**
   * The TLS condition reported since the last successful connection (reported once until then): a TLS error
   * code of `isClockFailureCode`, or `refused` (`refusedHandshakesBeforeAlert`).
   */
  private tlsProblemKey: string | undefined;
  private tlsProblemValue: CertificateClockError | CertificateRefusedError | undefined;
  /** What the current connection got to: TCP connected, CONNACK, an error that explains its end. */
  private handshake = { tcpUp: false, connacked: false, explained: false };
  /** Connections in a row that ended after TCP connected and before CONNACK with no error that explains it. */
  private refusedHandshakes = 0;
  /** Connections in a row whose ack subscription the broker refused (`refusedSubscriptionsBeforeAlert`). */
  private refusedSubscriptions = 0;
  /** A `sync-access-refused` alert was raised and no subscription has been granted since. */
  private accessRefusedAlerted = false;
  lastAckMs: number | undefined;

  constructor(store: OutboxStore, options: Partial<UplinkOptions> & { url: string }) {
    super();
    this.store = store;
    this.options = { ...DEFAULT_UPLINK_OPTIONS, ...options, backoff: { ...DEFAULT_UPLINK_OPTIONS.backoff, ...options.backoff } };
    if (!isTopicSegment(this.options.site)) throw new ConfigError('site', this.options.site, 'is not a valid topic segment', 'use 1-64 of A-Z a-z 0-9 . _ -');
    if (!isTopicSegment(store.deviceId)) throw new ConfigError('deviceId', store.deviceId, 'is not a valid topic segment', 'use 1-64 of A-Z a-z 0-9 . _ -');
    this.log = this.options.logger.child({ component: 'uplink' });
    for (const kind of RECORD_KINDS) this.sentUpTo[kind] = store.ackedUpTo(kind);
    this.resetCursors();
  }

  get state(): UplinkState {
    return this.stateValue;
  }

  /**
   * Why TLS to the edge fails, when a certificate is outside its validity by this board's clock
   * (`sync-clock-invalid`) or the edge keeps refusing this board's certificate (`sync-certificate-refused`);
   * undefined once a connection succeeds again.
   */
  get tlsProblem(): CertificateClockError | CertificateRefusedError | undefined {
    return this.tlsProblemValue;
  }

  /** Why the edge refuses the batches of each kind it last refused (`Ack.refused`); a kind leaves it at its next ack. */
  get refused(): Partial<Record<RecordKind, string>> {
    return Object.fromEntries(this.refusedKinds);
  }

  /** True when the edge has acknowledged every record the store has produced. */
  get drained(): boolean {
    const stats = this.store.stats();
    return RECORD_KINDS.every((k) => stats[k].pending === 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.refusedAlerted.clear();
    this.unsubscribeStore = this.store.onAppend((kinds) => {
      for (const k of kinds) this.exhausted[k] = false;
      this.pump();
    });
    this.connect();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribeStore?.();
    this.clearTimers();
    const client = this.client;
    this.client = undefined;
    this.setState('offline');
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  private setState(state: UplinkState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private clearTimers(): void {
    if (this.retryTimer) this.options.clock.clearTimeout(this.retryTimer);
    if (this.ackTimer) this.options.clock.clearTimeout(this.ackTimer);
    this.retryTimer = undefined;
    this.ackTimer = undefined;
  }

  private resetCursors(): void {
    for (const kind of RECORD_KINDS) {
      this.cursor[kind] = this.store.ackedUpTo(kind);
      this.exhausted[kind] = false;
    }
    this.inFlight = [];
  }

  /**
   * After a (re)connect each kind sends again its newest acknowledged record it still holds, in a batch with
   * `heldFrom`: an edge restored from an older backup learns of its gap and answers `rewind` even for a kind
   * with nothing new to send (QA: alerts an edge restore lost stayed missing at the edge until the next
   * alert, and an idle device's 28,001 readings for more than 126 s). An edge that holds it counts a replay:
   * one record per kind and connection.
   */
  private resendNewestAcked(): void {
    for (const kind of RECORD_KINDS) {
      const acked = this.store.ackedUpTo(kind);
      if (acked >= 1 && this.store.heldFrom(kind) <= acked) {
        this.cursor[kind] = acked - 1;
        this.exhausted[kind] = false;
      }
    }
  }

  private connect(): void {
    if (!this.running) return;
    this.setState('connecting');
    const { site } = this.options;
    const deviceId = this.store.deviceId;
    const client = mqttConnect(this.options.url, {
      ...this.options.mqtt,
      protocolVersion: 4,
      clientId: `medge-${deviceId}`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      keepalive: 15,
      queueQoSZero: false,
    });
    this.client = client;
    const handshake = { tcpUp: false, connacked: false, explained: false };
    this.handshake = handshake;
    const lost = (why: string) => () => this.onLost(client, why);
    client.stream?.once('connect', () => (handshake.tcpUp = true));
    client.on('close', lost('closed'));
    client.on('error', (error: Error & { code?: unknown }) => {
      // A CONNACK refusal (numeric code) or this side's refusal of the edge's chain explains the end; a reset does not.
      if (typeof error.code === 'number' || isClockFailureCode(error.code)) handshake.explained = true;
      if (isClockFailureCode(error.code)) this.noteClockFailure(error.code);
      // While a reported TLS condition lasts, its reconnects log at debug level only.
      else this.log[this.tlsProblemKey === undefined ? 'warn' : 'debug']({ err: error.message }, 'mqtt error');
      this.onLost(client, 'error');
    });
    client.on('message', (topic, payload) => {
      try {
        this.onMessage(topic, payload);
      } catch (error) {
        // A ledger that cannot be written (damaged while running): the ack is taken again from the next one.
        this.log.error({ topic, err: (error as Error).message }, 'ack not applied to the ledger');
      }
    });
    client.on('connect', () => {
      handshake.connacked = true;
      this.refusedHandshakes = 0;
      disableNagle(client);
      client.subscribe(downTopic(site, deviceId, 'ack'), { qos: 1 }, (error, _granted, suback) => {
        if (client !== this.client) return;
        // MQTT.js passes the SUBACK (3.1.1 return codes, MQTT 5 reason codes) with the error it makes of a refusal.
        const code = (suback?.granted as unknown[] | undefined)?.find((g): g is number => typeof g === 'number' && g >= 0x80);
        if (error && code !== undefined) this.noteRefusedSubscription(code);
        if (error) return this.onLost(client, 'subscribe failed');
        if (this.accessRefusedAlerted) this.log.info({ refusals: this.refusedSubscriptions }, 'the broker grants this board\'s subscriptions again');
        this.refusedSubscriptions = 0;
        this.accessRefusedAlerted = false;
        this.connectedAt = this.options.clock.monotonic();
        this.lastProgress = 0;
        if (this.tlsProblemKey !== undefined) this.log.info({ problem: this.tlsProblemKey }, 'TLS to the edge works again');
        this.tlsProblemKey = undefined;
        this.tlsProblemValue = undefined;
        this.resetCursors();
        this.resendNewestAcked();
        this.setState('connected');
        this.log.info({ url: this.options.url }, 'uplink connected');
        this.pump();
      });
    });
  }

  private onLost(client: MqttClient, why: string): void {
    if (client !== this.client) return;
    this.client = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    client.end(true);
    this.inFlight = [];
    if (this.ackTimer) this.options.clock.clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.running) return;
    this.noteSessionEnd(why);
    this.noteHandshakeEnd();
    const { backoff, random } = this.options;
    // Refused access lasts until someone acts: at least half the ceiling between attempts (full jitter alone gave 5 in 6 s).
    const delay = this.accessRefusedAlerted ? Math.floor(backoff.maxMs / 2 + (random() * backoff.maxMs) / 2) : backoffDelay(this.attempt, backoff, random);
    this.attempt += 1;
    this.log[this.tlsProblemKey === undefined ? 'info' : 'debug']({ why, retryInMs: delay, attempt: this.attempt }, 'uplink lost, backing off');
    this.setState('backoff');
    this.retryTimer = this.options.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  /**
   * This board refused the edge's chain because a certificate is outside its validity by this board's clock
   * (`tls-clock.ts`): diagnosed, logged and raised as `sync-clock-invalid` once per condition (TLS error
   * code) until a connection succeeds again; the reconnects in between log at debug level only. Before, each
   * reconnect logged "mqtt error: certificate is not yet valid" as a warning (14 in 1.5 s with a 50-200 ms
   * backoff) and nothing was raised.
   */
  private noteClockFailure(code: string): void {
    if (this.tlsProblemKey === code) return;
    this.tlsProblemKey = code;
    void this.raiseClockFailure(code);
  }

  private async raiseClockFailure(code: string): Promise<void> {
    const o = this.options;
    // The edge's certificate is not at hand when this board refused it: one unverified handshake reads its window.
    const peer = await peerValidity(o.url, { ca: o.mqtt.ca, cert: o.mqtt.cert, key: o.mqtt.key });
    if (!this.running || this.tlsProblemKey !== code) return;
    const problem = diagnoseClockFailure({ code, deviceClockMs: o.clock.now(), caPems: pemList(o.mqtt.ca), ...(peer ? { peer } : {}) });
    if (problem) this.raiseTlsProblem(problem);
  }

  /**
   * A TLS connection that the edge closed after TCP connected and before CONNACK, with no error that says why:
   * how a Node TLS edge (the embedded aedes broker) refuses a client certificate, sending no TLS alert. After
   * `refusedHandshakesBeforeAlert` in a row, this board's own certificate and clock say which alert to raise
   * (`diagnoseRefusedCertificate`), once until a connection succeeds. Before, such a board logged only
   * "uplink lost, backing off" on every reconnect and raised nothing.
   */
  private noteHandshakeEnd(): void {
    const h = this.handshake;
    if (!this.options.url.startsWith('mqtts:') || !h.tcpUp || h.connacked || h.explained) return;
    this.refusedHandshakes += 1;
    if (this.refusedHandshakes < this.options.refusedHandshakesBeforeAlert || this.tlsProblemKey !== undefined) return;
    this.tlsProblemKey = 'refused';
    this.raiseTlsProblem(diagnoseRefusedCertificate(pemList(this.options.mqtt.cert)[0], this.options.clock.now(), this.refusedHandshakes));
  }

  /**
   * The broker refused this board's subscription to its own ack topic (`code`: SUBACK 0x80, or an MQTT 5 reason of
   * 0x80 and above): Mosquitto's dynamic security plugin answers so a board the edge blocked (revoked or expired
   * certificate) while it was offline, which therefore never read the edge's `Ack.refused` notice; TLS and CONNECT
   * still succeed until the broker rereads its CRL. After `refusedSubscriptionsBeforeAlert` connections in a row,
   * one `sync-access-refused` alert until a subscription is granted again (none when the edge already said why,
   * `Ack.refused`: its `sync-batches-refused` names the fix), and reconnects every half to whole
   * `backoff.maxMs`. Before, such a board reconnected every <= 5 s with info logs only and raised nothing
   * (QA: 12 "subscribe failed" cycles in 15 s, no alert, until the operator's SIGHUP).
   */
  private noteRefusedSubscription(code: number): void {
    const o = this.options;
    this.refusedSubscriptions += 1;
    if (this.refusedSubscriptions < o.refusedSubscriptionsBeforeAlert) {
      this.log.warn({ subackCode: code, refusals: this.refusedSubscriptions }, 'the broker refused this board\'s ack subscription');
      return;
    }
    this.attempt = Math.max(this.attempt, Math.ceil(Math.log2(o.backoff.maxMs / o.backoff.initialMs)));
    if (this.accessRefusedAlerted) return;
    this.accessRefusedAlerted = true;
    const topic = downTopic(o.site, this.store.deviceId, 'ack');
    // The edge already said why (`Ack.refused`, e.g. certificate-revoked before the block): its alert names the fix.
    const told = [...this.refusedKinds.values()];
    if (told.length > 0) {
      this.log.error({ subackCode: code, topic, refusals: this.refusedSubscriptions, refused: told }, 'the broker keeps refusing this board\'s subscriptions, as the edge said it would; retrying slowly');
      return;
    }
    this.log.error({ alert: SYNC_ACCESS_REFUSED, subackCode: code, topic, refusals: this.refusedSubscriptions }, 'the broker keeps refusing this board\'s subscriptions; retrying slowly (alert raised)');
    this.emit('alert', {
      kind: SYNC_ACCESS_REFUSED,
      severity: 2,
      t: o.clock.now(),
      message:
        `The edge broker refuses this board's subscriptions (${this.refusedSubscriptions} connections in a row, answer 0x${code.toString(16)}): ` +
        `its certificate may have been revoked or its access removed, so records no longer leave the board. ` +
        `Re-provision it (medge provision) and install the new certificate, or call the device maker. ` +
        `Records stay on the board until the edge accepts them; the board keeps trying, slowly.`,
    });
  }

  /** Logs (once) and raises as an alert (severity 2) a diagnosed TLS problem; no patient data, certificates and clocks only. */
  private raiseTlsProblem(problem: CertificateClockError | CertificateRefusedError): void {
    this.tlsProblemValue = problem;
    const fields = 'certificate' in problem ? { certificate: problem.certificate, validity: problem.validity, suspect: problem.suspect, tlsCode: problem.tlsCode } : { refusals: problem.refusals };
    this.log.error(
      {
        alert: problem.code,
        ...fields,
        deviceClock: new Date(problem.deviceClockMs).toISOString(),
        notBefore: problem.window?.notBefore.toISOString(),
        notAfter: problem.window?.notAfter.toISOString(),
      },
      'TLS to the edge fails on a certificate; retrying with backoff (alert raised)',
    );
    this.emit('alert', { kind: problem.code, severity: 2, t: this.options.clock.now(), message: problem.message });
  }

  /**
   * Backoff and takeover bookkeeping when a connection ends. Two boards with one deviceId use one MQTT
   * client id, and a broker closes the older session when the other connects: neither aedes nor
   * Mosquitto 2.0 sends the evicted MQTT 3.1.1 client a reason (Mosquitto 2.0.11 sends no DISCONNECT 142
   * to MQTT 5 clients either; aedes speaks no MQTT 5), so the signal is the broker closing connections
   * that had just come up, again and again. QA saw 30 s of such takeovers: the backoff restarted from
   * `initialMs` on every connect, and the boards reconnected and resent hundreds of times.
   */
  private noteSessionEnd(why: string): void {
    const o = this.options;
    const upFor = this.connectedAt === undefined ? undefined : o.clock.monotonic() - this.connectedAt;
    this.connectedAt = undefined;
    if (upFor === undefined) return;
    // A takeover session lasts until the other board reconnects, at most `backoff.maxMs` after it was evicted.
    if (upFor >= Math.max(o.stableSessionMs, 2 * o.backoff.maxMs)) {
      this.attempt = 0;
      this.shortSessions = 0;
      return;
    }
    if (why !== 'closed') return;
    this.shortSessions += 1;
    if (this.shortSessions < o.takeoverAfter) return;
    // Reconnect with the full ceiling: the other board then gets long turns, and both sync, slowly.
    this.attempt = Math.max(this.attempt, Math.ceil(Math.log2(o.backoff.maxMs / o.backoff.initialMs)));
    const now = o.clock.monotonic();
    // Short sessions alone are also what a broker restarted again and again, or a link that keeps dropping, gives
    // (a broker restarted 4 times, each within a minute of the connect, raised the alert). Another board is
    // named only on the edge's word (`OTHER_BOOT_WINDOW_MS`).
    if (this.otherBootAt === undefined || now - this.otherBootAt > OTHER_BOOT_WINDOW_MS) {
      this.log.warn({ shortSessions: this.shortSessions }, 'the broker keeps closing the connection shortly after it opens; reconnecting with the full backoff');
      return;
    }
    if (this.takeoverAlertAt !== undefined && now - this.takeoverAlertAt < o.takeoverAlertRepeatMs) return;
    this.takeoverAlertAt = now;
    const deviceId = this.store.deviceId;
    this.log.error({ deviceId, shortSessions: this.shortSessions }, 'the broker keeps closing this board\'s session: another board is most likely using its device id');
    this.emit('alert', {
      kind: SYNC_DEVICE_ID_IN_USE,
      severity: 2,
      t: o.clock.now(),
      message:
        `Another board seems to use this board's device id "${deviceId}": the edge has closed ${this.shortSessions} connections in a row ` +
        `shortly after they opened, as it does when a second board connects under the same id. This board keeps its readings, alerts and ` +
        `findings until the edge confirms them; waveform the edge has not confirmed within 24 h may be deleted once the board's storage is ` +
        `full (within days for a stethoscope or ECG). Once the edge is sure two boards are running, it stores only the records of the board it ` +
        `heard first and refuses the other's, which stay on that board (records it stored before are listed for review). ` +
        `Sync is slowed down until this stops. ` +
        `Ask the device maker or technician to give each board its own device id (deviceId in the board's config).`,
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    let ack: ReturnType<typeof decodeAck>;
    try {
      ack = decodeAck(payload);
    } catch (error) {
      this.log.warn({ topic, err: (error as Error).message }, 'ignoring an undecodable ack');
      return;
    }
    if (ack.deviceId !== this.store.deviceId || !(RECORD_KINDS as readonly string[]).includes(ack.kind)) {
      this.log.warn({ topic, deviceId: ack.deviceId, kind: ack.kind }, 'ignoring an ack for another device or kind');
      return;
    }
    if (ack.otherBootLive) this.otherBootAt = this.options.clock.monotonic();
    if (ack.bootId !== '' && ack.bootId !== this.store.bootId) {
      this.otherBootAt = this.options.clock.monotonic();
      // A batch of this device's previous run, or of another device under the same deviceId (QA: two boards
      // with one id each took the other's acks for batches the broker had dropped; 4 records acked, never stored).
      this.log.debug({ kind: ack.kind, upToSeq: ack.upToSeq }, 'ignoring an ack for another boot');
      return;
    }
    const kind = ack.kind as RecordKind;
    if (ack.refused !== '') {
      this.noteRefused(kind, ack.refused);
      return;
    }
    if (this.refusedKinds.delete(kind)) {
      this.log.info({ kind }, 'the edge takes this kind of batches again');
      // Its deadline was the slow one: set again for the normal one.
      if (this.ackTimer) this.options.clock.clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    for (const f of this.inFlight) if (f.kind === kind && f.lastSeq === ack.batchLastSeq) f.held = true;
    // Before the watermark moves: records appended from here on get seqs above the other ledger's.
    if (ack.seqFloor > 0) this.raiseSeqFloor(kind, ack.seqFloor);
    if (ack.rewind && this.store.rewind(kind, ack.upToSeq)) {
      this.log.warn({ kind, upToSeq: ack.upToSeq }, 'the edge lost records it had acknowledged; sending them again');
      this.cursor[kind] = this.store.ackedUpTo(kind);
      this.exhausted[kind] = false;
      this.inFlight = this.inFlight.filter((f) => f.kind !== kind);
    }
    if (this.store.acknowledge(kind, this.earnedUpTo(kind, ack))) this.emit('ack', { kind, upToSeq: this.store.ackedUpTo(kind) });
    this.lastAckMs = this.options.clock.now();
    this.lastProgress = this.options.clock.monotonic();
    const acked = this.store.ackedUpTo(kind);
    // An ack of batches sent before an ack timeout reset the cursor: never send from below the watermark.
    this.cursor[kind] = Math.max(this.cursor[kind], acked);
    this.inFlight = this.inFlight.filter((f) => f.kind !== kind || f.lastSeq > acked);
    const now = this.options.clock.monotonic();
    if (now - this.lastCompact >= this.options.compactIntervalMs) {
      this.lastCompact = now;
      this.store.compact(this.options.clock.now());
    }
    this.pump();
    if (this.inFlight.length === 0 && this.drained) this.emit('drained');
  }

  /**
   * How far an ack may move the watermark of `kind`: its `upToSeq` up to what this process sent (`sentUpTo`),
   * or, when the edge's watermark is not this ledger's, over the batches the edge named as held (`batchLastSeq`:
   * it holds each whole) in an unbroken run from the watermark, whatever `upToSeq` says (with seq clashes the
   * edge clamps it to the batch it answers, which would leave each later held batch to its ack timeout). The edge's watermark is another ledger's when it is above anything this
   * process sent or the batch reused seqs (`seqFloor`): a new SD card whose clock is behind the old card's
   * ledger start, so its seqs lie below the old card's with no clash, or a restored ledger. The edge then takes
   * every batch of this ledger as contiguous and cannot tell that an earlier one never reached it (lost
   * between broker and ingest); QA: the ack of the second batch of a window acknowledged the lost first one
   * with it, and its 50 records were compacted on the device, never stored at the edge. An older edge names no
   * batch (`batchLastSeq` 0): its watermark is taken up to what was sent, as before.
   */
  private earnedUpTo(kind: RecordKind, ack: { upToSeq: number; batchLastSeq: number; seqFloor: number }): number {
    const sent = this.sentUpTo[kind];
    if (ack.batchLastSeq === 0 || (ack.upToSeq <= sent && ack.seqFloor === 0)) return Math.min(ack.upToSeq, sent);
    let upTo = this.store.ackedUpTo(kind);
    const batches = this.inFlight.filter((f) => f.kind === kind).sort((x, y) => x.afterSeq - y.afterSeq);
    for (const f of batches) {
      if (f.lastSeq <= upTo) continue;
      if (!f.held || f.afterSeq > upTo) break;
      upTo = f.lastSeq;
    }
    return upTo;
  }

  /**
   * The edge holds seqs of `kind` up to `seqFloor` from another ledger under this deviceId (a new SD card,
   * a ledger restored from a backup, on a clock too far behind for the wall-clock floor to clear them):
   * the store moves its next seq above it. Records made before keep their seqs (they may be at the edge
   * already; it keeps them as conflicts). Every raise is audited; one info alert per uplink.
   */
  private raiseSeqFloor(kind: RecordKind, seqFloor: number): void {
    if (!Number.isSafeInteger(seqFloor) || seqFloor > SEQ_FLOOR_LIMIT) {
      this.log.warn({ kind, seqFloor }, 'ignoring a seq floor beyond the exact range of seqs');
      return;
    }
    if (!this.store.raiseSeqFloor(kind, seqFloor)) return;
    const o = this.options;
    const detail = `${kind}: seqs from here on above ${seqFloor}, the highest the edge holds from another ledger under device id ${this.store.deviceId} (new SD card or restored ledger); records made before keep their seqs (those that clash are seq conflicts at the edge)`;
    this.store.appendAudit({ tMs: o.clock.now(), actor: 'uplink', action: SYNC_SEQS_RAISED, detail });
    this.log.warn({ kind, seqFloor }, 'the edge holds these seqs from another ledger under this device id; later records go above them');
    if (this.seqsRaisedAlerted) return;
    this.seqsRaisedAlerted = true;
    this.emit('alert', {
      kind: SYNC_SEQS_RAISED,
      severity: 1,
      t: o.clock.now(),
      message:
        `The edge already held records under this board's device id "${this.store.deviceId}" with the numbers this board was using or above them ` +
        `(a new SD card or a ledger restored from a backup, and a board clock that was behind). New records are numbered above them from now on. ` +
        `Records made before this stay as they are; the edge keeps any that clash for review (medge edge conflicts). Nothing is lost.`,
    });
  }

  /**
   * The edge refused a batch of `kind` and said why (`Ack.refused`): nothing is acknowledged, the records stay.
   * Until an ack of the kind comes, at most one batch of it is in flight and it is sent again on the slow
   * schedule (`backoff.maxMs` instead of `ackTimeoutMs`); one `sync-batches-refused` alert per reason per `start`.
   * Before, such a board got nothing from the edge, resent on every ack timeout indefinitely and raised nothing.
   */
  private noteRefused(kind: RecordKind, reason: string): void {
    const o = this.options;
    if (this.refusedKinds.get(kind) !== reason) this.log.error({ kind, refused: reason }, 'the edge refuses this kind of batches; records stay on the board, resending slowly');
    this.refusedKinds.set(kind, reason);
    if (this.refusedAlerted.has(reason)) return;
    this.refusedAlerted.add(reason);
    const fix = REFUSED_FIXES[reason] ?? 'bring the board software and the edge to matching medge versions, or ask the edge operator (medge edge stats)';
    this.emit('alert', {
      kind: SYNC_BATCHES_REFUSED,
      severity: 2,
      t: o.clock.now(),
      message:
        `The edge refuses this board's records (reason: ${reason}), so they no longer leave the board: ${fix}. ` +
        `Records stay on the board until the edge accepts them; the board keeps trying, slowly.`,
    });
  }

  /**
   * Publishes batches while the window has room (`pumpWindow`). A ledger that cannot be read (damaged
   * while running) is logged once until a read succeeds again and never thrown into the store's append
   * listener or the MQTT client's event handlers: what is unsent stays in the ledger.
   */
  private pump(): void {
    try {
      this.pumpWindow();
      this.readFailing = false;
    } catch (error) {
      if (!this.readFailing) this.log.error({ err: (error as Error).message }, 'cannot read the ledger; sending paused until it can be read');
      this.readFailing = true;
    }
  }

  /** Publishes batches while the window has room. Synchronous: reads, encodes and hands to the socket. */
  private pumpWindow(): void {
    const client = this.client;
    if (!client || this.stateValue !== 'connected') return;
    const o = this.options;
    while (this.inFlight.length < o.window) {
      // A kind the edge refuses has one batch at a time on the wire (`noteRefused`).
      const kind = RECORD_KINDS.find((k) => !this.exhausted[k] && !(this.refusedKinds.has(k) && this.inFlight.some((f) => f.kind === k)));
      if (kind === undefined) break;
      const afterSeq = this.cursor[kind];
      const rows = this.store.readAfter(kind, afterSeq, o.batchMaxRecords, o.batchMaxBytes);
      if (rows.length === 0) {
        this.exhausted[kind] = true;
        continue;
      }
      const sent = this.publish(client, kind, afterSeq, rows);
      this.cursor[kind] = sent.lastSeq;
      this.inFlight.push(sent);
    }
    this.armAckTimer();
  }

  /** Encodes the records `(afterSeq, last row]` of `kind` as a batch and publishes it; returns its in-flight entry. */
  private publish(client: MqttClient, kind: RecordKind, afterSeq: number, rows: ReturnType<OutboxStore['readAfter']>): InFlight {
    const o = this.options;
    const lastSeq = (rows.at(-1) as (typeof rows)[number]).seq;
    const payload = buildBatch({
      deviceId: this.store.deviceId,
      bootId: this.store.bootId,
      kind,
      afterSeq,
      // A batch starts at or above the acknowledged watermark, except the newest acked record sent again after a connect.
      ackedUpTo: Math.min(this.store.ackedUpTo(kind), afterSeq),
      heldFrom: this.store.heldFrom(kind),
      records: rows,
      sentMs: o.clock.now(),
      level: o.compressionLevel,
    });
    this.sentUpTo[kind] = Math.max(this.sentUpTo[kind], lastSeq);
    const topic = upTopic(o.site, this.store.deviceId, kind);
    const wire = o.sealPayload ? o.sealPayload(topic, payload) : payload;
    const sent: InFlight = { kind, afterSeq, lastSeq, sentAt: o.clock.monotonic(), bytes: wire.byteLength, transmitted: false, held: false };
    client.publish(topic, Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), { qos: 1 }, (error) => {
      if (error) return this.onLost(client, `publish failed: ${error.message}`);
      if (client !== this.client) return;
      sent.transmitted = true;
      this.lastProgress = o.clock.monotonic();
      // The oldest batch is across: its deadline drops its transmission allowance (16 s for 64 KiB at 4 KiB/s), so the timer
      // is set again. Before, a batch lost at the edge was sent again only when the allowance had run out.
      if (this.inFlight[0] === sent && this.ackTimer) {
        o.clock.clearTimeout(this.ackTimer);
        this.ackTimer = undefined;
        this.armAckTimer();
      }
    });
    return sent;
  }

  /**
   * After an ack timeout: sends again the batch that timed out (the oldest in flight), and every later one
   * the broker has PUBACKed that no ack said the edge holds; each with the same records as before, from
   * no lower than the watermark. Not sent again: batches the edge holds ahead of a gap (its ack names them;
   * the ack that fills the gap covers them), and batches not yet PUBACKed (still crossing this connection:
   * TCP delivers them or the connection fails, and every reconnect resends from the watermark). Nothing
   * leaves `inFlight` without an ack covering it, and whatever reaches its head is sent again when it times
   * out, so a batch the edge loses after saying it holds it (edge store restored) is still resent.
   * Before, the uplink sent the whole window again from the watermark: on QA's thin link 1.73x the payload.
   */
  private resendTimedOut(client: MqttClient): void {
    const o = this.options;
    let resent = 0;
    const kept: InFlight[] = [];
    for (const [i, f] of this.inFlight.entries()) {
      if (i > 0 && (f.held || !f.transmitted)) {
        kept.push(f);
        continue;
      }
      const afterSeq = Math.max(f.afterSeq, this.store.ackedUpTo(f.kind));
      const rows = this.store.readAfter(f.kind, afterSeq, o.batchMaxRecords, o.batchMaxBytes).filter((r) => r.seq <= f.lastSeq);
      // Acknowledged meanwhile: nothing left of it to send.
      if (rows.length === 0) continue;
      kept.push(this.publish(client, f.kind, afterSeq, rows));
      resent += 1;
    }
    this.log.warn({ kind: this.inFlight[0]?.kind, lastSeq: this.inFlight[0]?.lastSeq, inFlight: this.inFlight.length, resent }, 'ack timeout; sending the timed-out batches again');
    this.inFlight = kept;
  }

  /** When the oldest batch in flight has waited too long for its ack (see `ackTimeoutMs`). */
  private ackDeadline(head: InFlight): number {
    const o = this.options;
    const transmission = head.transmitted ? 0 : (head.bytes * 1000) / o.slowLinkBytesPerSec;
    const timeout = this.refusedKinds.has(head.kind) ? Math.max(o.ackTimeoutMs, o.backoff.maxMs) : o.ackTimeoutMs;
    return Math.max(head.sentAt, this.lastProgress) + timeout + transmission;
  }

  /** If the oldest batch in flight is past its ack deadline, send it again (and see `resendTimedOut`). */
  private armAckTimer(): void {
    if (this.ackTimer || this.inFlight.length === 0) return;
    const oldest = this.inFlight[0] as InFlight;
    const wait = Math.max(0, this.ackDeadline(oldest) - this.options.clock.monotonic());
    this.ackTimer = this.options.clock.setTimeout(() => {
      this.ackTimer = undefined;
      const head = this.inFlight[0];
      if (!head) return;
      if (this.options.clock.monotonic() >= this.ackDeadline(head)) {
        if (this.client && this.stateValue === 'connected') this.resendTimedOut(this.client);
        this.pump();
      } else {
        this.armAckTimer();
      }
    }, wait);
  }
}
