import { readFileSync, statSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { type Logger, silentLogger } from '../device-sdk/log.js';
import { type EdgeIdentity, identityFromSubject, identityName, publishProblem, subscribeProblem } from './acl.js';
import { listenOn } from '../device-sdk/listen.js';
import { normalizeSerial, revokedSerials } from '../device-sdk/security/pki.js';

/** TLS material of the embedded broker (PEM). Clients must present a certificate issued by `ca`. */

/** A TLS connection's client certificate, as the broker keeps it to close the connection when the certificate is revoked or expires. */
interface CertifiedConnection {
  serial: string;
  notAfterMs: number;
  name: string;
  clientId: string;
}
export interface BrokerTlsOptions {
  /** The site CA: the only issuer of client certificates the broker accepts. */
  ca: string;
  /** The broker's server certificate and key. */
  cert: string;
  key: string;
  /**
   * The site's CRL file (`medge ca revoke`). Read at start when it exists and again whenever it
   * changes (checked every second): a revoked certificate fails the TLS handshake (counted `auth`),
   * and a connection that was open when its certificate was revoked is closed (counted `auth`).
   * (Expiry needs no CRL: a connection whose certificate expires while open is closed within
   * `CERT_EXPIRY_SWEEP_MS`, counted `auth`.)
   */
  crlPath?: string;
}

/** Why the broker turned a client or a request away: `auth` (who it is) or `acl` (what it asked for). */
export type BrokerRejectReason = 'auth' | 'acl';

export interface BrokerRejection {
  reason: BrokerRejectReason;
  /** What was refused and why (for the log; never parsed). */
  detail: string;
  /** The certificate identity, when the client had one. */
  identity?: string;
  clientId?: string;
}

export interface EmbeddedBrokerOptions {
  port: number;
  host: string;
  /**
   * Mutual TLS: the broker listens for MQTT over TLS only, requires a client certificate from
   * `tls.ca`, and enforces the per-device topic ACLs of `acl.ts`. Needs `site`.
   */
  tls?: BrokerTlsOptions;
  /** The site this broker serves (topic segment and certificate O). Required with `tls`. */
  site?: string;
  /**
   * Called for every refused TLS handshake, CONNECT, PUBLISH or SUBSCRIBE (the edge counts them in
   * its store). Must not throw.
   */
  onReject?: (rejection: BrokerRejection) => void;
  logger: Logger;
}

export const DEFAULT_BROKER_OPTIONS: Readonly<EmbeddedBrokerOptions> = Object.freeze({ port: 1883, host: '127.0.0.1', logger: silentLogger });

/**
 * How often open TLS connections are checked for a client certificate past its notAfter (the
 * handshake checks validity once; a connection may outlive its certificate by at most this).
 */
export const CERT_EXPIRY_SWEEP_MS = 1_000;

/** How long a TLS handshake may take before the connection is dropped (default Node: 120 s). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) on a TCP port. `stop()` drops every connection and
 * forgets every session, as a broker restart without persistence does; `start()` can follow again
 * on the same port (that is how `medge demo --chaos` restarts it).
 *
 * With `tls` it speaks MQTT over TLS only (TLS 1.2 or newer) and every client must present a
 * certificate issued by the site CA; Node refuses the others during the handshake (no certificate,
 * another CA, expired), before any MQTT. After the handshake:
 * - CONNECT: the certificate must name a device of this site (`OU=device, O=<site>`, CN = a valid
 *   device id) or the edge's ingest; an MQTT username, if given, must equal the CN; a client id held
 *   by a connected client of another identity cannot be taken over. Otherwise CONNACK 5.
 * - PUBLISH / SUBSCRIBE: `acl.ts`. A refused PUBLISH closes the connection (MQTT 3.1.1 has no way to
 *   refuse one otherwise); a refused subscription is granted 128 (failure) and the connection stays.
 * - A connection whose client certificate is revoked (CRL reload) or expires while it is open is
 *   closed, counted `auth`.
 * Each refusal is reported once to `onReject`: `auth` for handshakes and CONNECTs, `acl` for the rest.
 */
export class EmbeddedBroker {
  readonly host: string;
  private portValue: number;
  private readonly options: EmbeddedBrokerOptions;
  private readonly log: Logger;
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly identities = new WeakMap<Client, EdgeIdentity>();
  /** Client id → the connection that holds it and its identity (who may take the id over). */
  private readonly owners = new Map<string, { client: Client; name: string }>();
  /** Authenticated TLS connections, the serial and end of validity of their client certificate (closed when it is revoked or expires). */
  private readonly certified = new Map<TLSSocket, CertifiedConnection>();
  /** Serials of the last CRL read (normalised): also refused at CONNECT, for handshakes made under the previous CRL. */
  private revoked = new Set<string>();
  private crlTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private crlStamp = '';

  constructor(options: Partial<EmbeddedBrokerOptions> = {}) {
    this.options = { ...DEFAULT_BROKER_OPTIONS, ...options };
    if (this.options.tls && this.options.site === undefined) throw new RangeError('EmbeddedBroker: tls needs the site it serves (options.site)');
    this.portValue = this.options.port;
    this.host = this.options.host;
    this.log = this.options.logger.child({ component: 'broker' });
  }

  get port(): number {
    return this.portValue;
  }

  /** Where clients connect: `mqtt://` or, with TLS, `mqtts://`. An unspecified address reads as loopback. */
  get url(): string {
    const host = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host;
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${this.portValue}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  get tls(): boolean {
    return this.options.tls !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { tls } = this.options;
    const broker = await Aedes.createBroker(tls ? this.accessControl() : {});
    const crl = tls ? this.readCrl() : undefined;
    const handle = (socket: Socket) => {
      broker.handle(socket);
    };
    // noDelay: MQTT is many small request/response packets; Nagle's algorithm would hold each PUBACK back.
    const server = tls
      ? createTlsServer(
          {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            ...(crl ? { crl } : {}),
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
            handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
          },
          handle,
        )
      : createTcpServer({ noDelay: true }, handle);
    server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    if (tls) {
      // Handshakes Node refused: no certificate, another CA, expired, not a client certificate, not TLS at all.
      server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
        this.reject({ reason: 'auth', detail: `TLS handshake refused from ${socket.remoteAddress ?? '?'}: ${error.code ?? ''} ${error.message}`.trim() });
      });
    }
    try {
      await listenOn(server, this.portValue, this.host, 'the MQTT broker');
    } catch (error) {
      // Nothing may keep the process alive after a failed start.
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      throw error;
    }
    const address = server.address();
    if (address && typeof address === 'object') this.portValue = address.port;
    this.broker = broker;
    this.server = server;
    if (tls) {
      this.expiryTimer = setInterval(() => this.closeExpired(Date.now()), CERT_EXPIRY_SWEEP_MS);
      this.expiryTimer.unref();
    }
    if (tls?.crlPath) {
      const tlsServer = server as ReturnType<typeof createTlsServer>;
      this.crlTimer = setInterval(() => {
        const before = this.crlStamp;
        const next = this.readCrl();
        if (this.crlStamp === before || next === undefined) return;
        let revoked: Set<string> | undefined;
        try {
          revoked = revokedSerials(next, tls.ca);
        } catch (error) {
          this.log.error({ crl: tls.crlPath, err: (error as Error).message }, 'certificate revocation list unusable for open connections');
        }
        try {
          tlsServer.setSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key, crl: next });
          this.log.info({ crl: tls.crlPath }, 'certificate revocation list reloaded');
        } catch (error) {
          // Keep the previous context (and its CRL) rather than drop revocation checking.
          this.log.error({ crl: tls.crlPath, err: (error as Error).message }, 'certificate revocation list unusable; keeping the previous one');
          return;
        }
        // The new context only checks new handshakes: close the connections of revoked certificates.
        if (revoked !== undefined) this.closeRevoked(revoked);
      }, 1_000);
      this.crlTimer.unref();
    }
  }

  /** Closes every open connection whose client certificate serial is in `revoked` (each counted `auth`). */
  private closeRevoked(revoked: Set<string>): void {
    this.revoked = revoked;
    this.closeCertified((held) => (revoked.has(held.serial) ? 'revoked while connected' : undefined));
  }

  /** Closes every open connection whose client certificate's notAfter has passed at `now` (each counted `auth`). */
  private closeExpired(now: number): void {
    this.closeCertified((held) => (held.notAfterMs <= now ? `expired at ${new Date(held.notAfterMs).toISOString()} while connected` : undefined));
  }

  /** Closes (counted `auth`) every certified connection for which `why` gives a reason. */
  private closeCertified(why: (held: CertifiedConnection) => string | undefined): void {
    for (const [conn, held] of this.certified) {
      const reason = why(held);
      if (reason === undefined) continue;
      this.certified.delete(conn);
      this.reject({ reason: 'auth', detail: `certificate serial ${held.serial} of ${held.name} ${reason}; connection closed`, clientId: held.clientId, identity: held.name });
      conn.destroy();
    }
  }

  /** The CRL's text when the file exists (and notes its mtime and size), else undefined. */
  private readCrl(): string | undefined {
    const path = this.options.tls?.crlPath;
    if (!path) return undefined;
    try {
      const st = statSync(path);
      const stamp = `${st.mtimeMs}:${st.size}`;
      const text = readFileSync(path, 'utf8');
      this.crlStamp = stamp;
      return text;
    } catch {
      return undefined;
    }
  }

  private reject(rejection: BrokerRejection): void {
    if (!this.server) return; // connections torn down by stop() are no refusals
    this.log.warn(rejection, `refused (${rejection.reason})`);
    try {
      this.options.onReject?.(rejection);
    } catch (error) {
      this.log.error({ err: (error as Error).message }, 'counting a rejection failed');
    }
  }

  /** The aedes hooks that enforce certificate identities and topic ACLs. */
  private accessControl(): { authenticate: NonNullable<Aedes['authenticate']>; authorizePublish: Aedes['authorizePublish']; authorizeSubscribe: Aedes['authorizeSubscribe'] } {
    const site = this.options.site as string;
    return {
      authenticate: (client, username, _password, done) => {
        const refuse = (detail: string, identity?: string) => {
          this.reject({ reason: 'auth', detail, clientId: client.id, ...(identity === undefined ? {} : { identity }) });
          done(Object.assign(new Error(detail), { returnCode: 5 }) as AuthenticateError, false);
        };
        const conn = client.conn;
        if (!(conn instanceof TLSSocket) || !conn.authorized) return refuse('no verified client certificate');
        const result = identityFromSubject(conn.getPeerCertificate().subject, site);
        if (!result.ok) return refuse(result.problem);
        if (username !== undefined && username !== result.name) {
          return refuse(`MQTT username ${JSON.stringify(String(username).slice(0, 100))} is not the certificate's CN ${JSON.stringify(result.name)}`, result.name);
        }
        const owner = this.owners.get(client.id);
        if (owner && owner.name !== result.name && !owner.client.closed) {
          return refuse(`client id ${JSON.stringify(client.id)} is held by ${owner.name}`, result.name);
        }
        const peer = conn.getPeerCertificate();
        const serial = normalizeSerial(peer.serialNumber);
        if (this.revoked.has(serial)) return refuse(`certificate serial ${serial} is revoked`, result.name);
        // validTo is "Mon DD HH:MM:SS YYYY GMT"; unreadable counts as expired (the handshake checked it once).
        const notAfterMs = Date.parse(peer.valid_to);
        if (!(notAfterMs > Date.now())) return refuse(`certificate serial ${serial} expired at ${Number.isNaN(notAfterMs) ? peer.valid_to : new Date(notAfterMs).toISOString()}`, result.name);
        this.identities.set(client, result.identity);
        this.owners.set(client.id, { client, name: result.name });
        this.certified.set(conn, { serial, notAfterMs, name: result.name, clientId: client.id });
        conn.once('close', () => {
          if (this.owners.get(client.id)?.client === client) this.owners.delete(client.id);
          this.certified.delete(conn);
        });
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        const identity = client ? this.identities.get(client) : undefined;
        const problem = identity ? publishProblem(identity, site, packet.topic, packet.retain) : `no identity may publish to ${JSON.stringify(packet.topic.slice(0, 200))}`;
        if (problem === undefined) return done(null);
        this.reject({ reason: 'acl', detail: problem, ...(client ? { clientId: client.id } : {}), ...(identity ? { identity: identityName(identity) } : {}) });
        done(new Error(problem));
      },
      authorizeSubscribe: (client, subscription, done) => {
        const identity = this.identities.get(client);
        const problem = identity ? subscribeProblem(identity, site, subscription.topic) : `no identity may subscribe to ${JSON.stringify(subscription.topic.slice(0, 200))}`;
        if (problem === undefined) return done(null, subscription);
        this.reject({ reason: 'acl', detail: problem, clientId: client.id, ...(identity ? { identity: identityName(identity) } : {}) });
        done(null, null); // granted 128 (failure); the connection stays
      },
    };
  }

  async stop(): Promise<void> {
    const { server, broker } = this;
    this.server = undefined;
    this.broker = undefined;
    if (this.crlTimer) clearInterval(this.crlTimer);
    this.crlTimer = undefined;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = undefined;
    if (!server || !broker) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.owners.clear();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await closed;
  }
}
