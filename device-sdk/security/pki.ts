/**
 * Site PKI: one certificate authority per site, an edge server certificate, the edge's own ingest
 * client certificate and one client certificate per device. Mutual TLS between devices and the edge
 * rests on it (see `edge/acl.ts` for what each identity may do once connected).
 *
 * Certificates are built by `@peculiar/x509` (no hand-written ASN.1) over Node's WebCrypto; keys are
 * ECDSA P-256, signatures ECDSA with SHA-256. The functions above the "files" line are pure over PEM
 * strings; the file layer below keeps the CA directory layout (`ca.crt`, `ca.key`, `server.crt`,
 * `server.key`, `ingest.crt`, `ingest.key`, `site.json`; per ingest worker `ingest-<n>.crt`, `ingest-<n>.key` and once
 * `ingest-group.key`) and writes every private key with mode 0600.
 *
 * Identities, all signed by the site CA:
 * - CA:      `CN=medge site <site> CA, O=medge`, basicConstraints CA (path length 0), keyCertSign + cRLSign.
 * - server:  `CN=medge edge <site>, O=<site>, OU=edge`, serverAuth, SAN DNS/IP: localhost, 127.0.0.1, ::1 + hosts.
 * - ingest:  `CN=medge-edge-ingest, O=<site>, OU=edge`, clientAuth: the edge's ingest client.
 * - ingest worker n: `CN=medge-edge-ingest-<n>, O=<site>, OU=edge`, clientAuth (`ingest-<n>.crt`, `medge ca
 *   ingest-workers`): one per ingest worker on a shared subscription, so that each has its own MQTT identity.
 * - device:  `CN=<deviceId>, O=<site>, OU=device`, clientAuth. The CN is the MQTT identity.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { createHmac, createPrivateKey, randomBytes, verify, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { appendCaAudit } from './ca-audit.js';
import { issueWireKey } from './wire-keys.js';
import { MedgeError } from '../errors.js';
import { isTopicSegment } from '../sync/topics.js';
import { makeDirs } from '../make-dirs.js';

let x509Module: Promise<typeof X509> | undefined;

/**
 * `@peculiar/x509` takes about 0.6 s to load, so it is loaded on first use only: `medge run` and
 * `medge edge` never issue certificates. `reflect-metadata` must be in place before it loads (its
 * dependency injection needs it); Node's WebCrypto is its crypto provider.
 */
function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Module;
}

/** The CN of the edge's own ingest client. No device may be provisioned under it, nor under `<it>-<anything>`. */
export const EDGE_INGEST_IDENTITY = 'medge-edge-ingest';

/** Ingest workers a CA directory can issue certificates to (`ingest-1` ... `ingest-64`). */
export const MAX_INGEST_WORKERS = 64;

/** The CN of ingest worker `worker` (1 to `MAX_INGEST_WORKERS`): `medge-edge-ingest-<worker>`. */
export function ingestWorkerIdentity(worker: number): string {
  checkWorker(worker);
  return `${EDGE_INGEST_IDENTITY}-${worker}`;
}

/** Whether `name` is an ingest identity: `medge-edge-ingest` or `medge-edge-ingest-<1..64>`. */
export function isIngestIdentity(name: string): boolean {
  if (name === EDGE_INGEST_IDENTITY) return true;
  const m = /^medge-edge-ingest-([1-9][0-9]?)$/.exec(name);
  return m !== null && Number(m[1]) <= MAX_INGEST_WORKERS;
}

function checkWorker(worker: number): void {
  if (!Number.isInteger(worker) || worker < 1 || worker > MAX_INGEST_WORKERS) {
    throw new PkiError('invalid-input', `an ingest worker is a whole number from 1 to ${MAX_INGEST_WORKERS}, got ${worker}`);
  }
}

/** OU of certificates by role: the broker tells the edge's own identities from devices by it. */
export const CERT_ROLES = Object.freeze({ device: 'device', edge: 'edge' } as const);
export type CertRole = (typeof CERT_ROLES)[keyof typeof CERT_ROLES];

/** Validity in days of what `createSiteCa` and the `issue*` functions make, unless told otherwise. */
export const DEFAULT_VALIDITY_DAYS = Object.freeze({ ca: 3650, server: 825, ingest: 825, device: 825 });

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * How far before "now" what this module issues starts being valid, unless told otherwise (`notBefore`):
 * the CA certificate, and the CRL's thisUpdate and every leaf certificate back to this or to the CA's own
 * notBefore, whichever is later (nothing is valid before its issuer, so going further back gains nothing).
 * Validity still ends `validDays` after issuance, not after the backdated start.
 *
 * Why 90 days: a board without a real-time clock (Raspberry Pi) that boots offline starts from the time
 * it last saved (fake-hwclock, systemd-timesyncd) or from its OS build time, hours to weeks behind, and
 * stays there until it reaches the edge, which it can only do over TLS. OpenSSL checks every certificate
 * of the chain (the CA too) and the edge's CRL against the local clock, so with the former 1 h a board
 * whose clock was more than an hour behind a newly made CA or server certificate could not connect at all,
 * and an edge whose clock was behind refused a new device certificate, or every client once a new CRL's
 * thisUpdate was ahead of it. A board stored for a season is covered; a clock further behind (a board
 * with no saved time boots in 1970 or at its image's build date) is not, and the device runtime says so
 * with a `sync-clock-invalid` alert instead of retrying silently.
 *
 * What it costs: a certificate is valid for up to 90 days before it was made. Nobody held its key then,
 * so nothing could have used it; revocation (CRL) and expiry (notAfter) are unchanged. notBefore no longer
 * dates the issuance: the CA directory's audit log (`ca-audit.ts`) and `site.json` do. This is a private
 * site CA; the public-CA rules that limit backdating to 48 h do not apply to it.
 */
export const BACKDATE_MS = 90 * DAY_MS;
const ALGORITHM = Object.freeze({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' });
/** Names every server certificate carries so that local clients (the ingest, tests) can verify it. */
export const LOCAL_HOSTS: readonly string[] = Object.freeze(['localhost', '127.0.0.1', '::1']);

export type PkiFailure = 'invalid-id' | 'reserved-id' | 'exists' | 'missing' | 'site-mismatch' | 'invalid-ca' | 'invalid-input';

/** A PKI operation was refused or its input is unusable. Callers branch on `reason`. */
export class PkiError extends MedgeError {
  readonly reason: PkiFailure;
  /** The file concerned, when there is one. */
  readonly file: string | undefined;
  constructor(reason: PkiFailure, message: string, file?: string) {
    super('pki', message);
    this.reason = reason;
    this.file = file;
  }
}

/** A certificate and its private key (PKCS#8), both PEM. */
export interface CertifiedKey {
  certPem: string;
  keyPem: string;
}

/** A site's certificate authority: what signs every other certificate of the site. */
export interface SiteCa extends CertifiedKey {
  site: string;
}

export interface CreateSiteCaOptions {
  site: string;
  validDays?: number;
  /** Start of validity, validity then ends `validDays` later (default: now minus `BACKDATE_MS`, ending `validDays` after now). */
  notBefore?: Date;
}

export interface ServerCertOptions {
  /** DNS names or IP addresses besides localhost, 127.0.0.1 and ::1. */
  hosts?: readonly string[];
  validDays?: number;
  notBefore?: Date;
}

export interface DeviceCertOptions {
  deviceId: string;
  site: string;
  validDays?: number;
  /**
   * Start of validity, validity then ends `validDays` later. Default: now minus `BACKDATE_MS` or the
   * CA's notBefore, whichever is later, ending `validDays` after now.
   */
  notBefore?: Date;
}

export interface EdgeClientCertOptions {
  validDays?: number;
  notBefore?: Date;
  /** An ingest worker (1 to `MAX_INGEST_WORKERS`): CN `medge-edge-ingest-<worker>` instead of `medge-edge-ingest`. */
  worker?: number;
}

/** What `describeCertificate` reads from a certificate. Subject fields are undefined when absent. */
export interface CertificateInfo {
  subject: { CN: string | undefined; O: string | undefined; OU: string | undefined };
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** Colon-separated SHA-256 of the DER certificate, as OpenSSL prints it. */
  fingerprint256: string;
  /** `DNS:localhost, IP Address:127.0.0.1, ...` (server certificates), or undefined. */
  subjectAltName: string | undefined;
}

/**
 * Why a NEW device id cannot be provisioned, or undefined when it can. Reserves the whole `medge-edge-ingest-` prefix,
 * not only the identities issued today (Mosquitto tells an ingest from a device by the CN alone). Certificates issued
 * before the prefix was reserved are judged by `deviceIdentityProblem`, which refuses only the real ingest identities.
 */
export function deviceIdProblem(deviceId: string): { reason: 'invalid-id' | 'reserved-id'; message: string } | undefined {
  const problem = deviceIdentityProblem(deviceId);
  if (problem) return problem;
  if (deviceId.startsWith(`${EDGE_INGEST_IDENTITY}-`)) {
    return { reason: 'reserved-id', message: `device id ${JSON.stringify(deviceId)} is reserved for the edge's ingest clients (${EDGE_INGEST_IDENTITY}, ${EDGE_INGEST_IDENTITY}-<n>); choose another` };
  }
  return undefined;
}

/**
 * Why an ALREADY ISSUED device certificate with CN `deviceId` cannot act as a device, or undefined when it can: an
 * invalid topic segment, or a real ingest identity (`isIngestIdentity`). A device provisioned before the prefix
 * `medge-edge-ingest-` was reserved for new ids (e.g. `medge-edge-ingest-cart`) keeps working.
 */
export function deviceIdentityProblem(deviceId: string): { reason: 'invalid-id' | 'reserved-id'; message: string } | undefined {
  if (!isTopicSegment(deviceId)) {
    return { reason: 'invalid-id', message: `device id ${JSON.stringify(deviceId)} is not a valid topic segment: use 1-64 of A-Z a-z 0-9 . _ -` };
  }
  if (isIngestIdentity(deviceId)) {
    return { reason: 'reserved-id', message: `device id ${JSON.stringify(deviceId)} is reserved: it is an edge ingest identity (${EDGE_INGEST_IDENTITY}, ${EDGE_INGEST_IDENTITY}-<1..${MAX_INGEST_WORKERS}>); choose another` };
  }
  return undefined;
}

function checkSite(site: string): void {
  if (!isTopicSegment(site)) throw new PkiError('invalid-id', `site ${JSON.stringify(site)} is not a valid topic segment: use 1-64 of A-Z a-z 0-9 . _ -`);
}

function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 36_500) throw new PkiError('invalid-input', `validity must be a whole number of days from 1 to 36500, got ${days}`);
}

/** A random positive 128-bit serial number (RFC 5280 allows up to 20 octets; the top bit is cleared). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/**
 * Backdated start (`BACKDATE_MS`, no earlier than `floor`, the issuer's notBefore) of something issued at `now`.
 */
function backdatedStart(now: Date, floor?: Date): Date {
  const start = now.getTime() - BACKDATE_MS;
  return new Date(floor === undefined ? start : Math.max(start, floor.getTime()));
}

/**
 * Validity of a certificate issued now: from `notBefore` for `days` when it is given, else from the
 * backdated start (`backdatedStart`, floored at `floor`) until `days` after now.
 */
function validity(notBefore: Date | undefined, days: number, floor?: Date): { notBefore: Date; notAfter: Date } {
  checkDays(days);
  if (notBefore !== undefined) return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) };
  const now = new Date();
  return { notBefore: backdatedStart(now, floor), notAfter: new Date(now.getTime() + days * DAY_MS) };
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKeyPem(x509: typeof X509, key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

async function importKeyPem(x509: typeof X509, pem: string, what: string): Promise<webcrypto.CryptoKey> {
  try {
    const [der] = x509.PemConverter.decode(pem);
    if (!der) throw new Error('no PEM block');
    return await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
  } catch (error) {
    throw new PkiError('invalid-ca', `${what} is not an ECDSA P-256 private key in PKCS#8 PEM: ${(error as Error).message}`);
  }
}

function toPem(cert: X509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

function name(cn: string, o: string, ou?: string): X509.JsonName {
  return [{ CN: [cn] }, { O: [o] }, ...(ou === undefined ? [] : [{ OU: [ou] }])];
}

/** Extended key usages (RFC 5280 4.2.1.12). */
const EKU = Object.freeze({ serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' });

/** Creates a site CA: a fresh ECDSA P-256 key and a self-signed CA certificate. */
export async function createSiteCa(options: CreateSiteCaOptions): Promise<SiteCa> {
  checkSite(options.site);
  const times = validity(options.notBefore, options.validDays ?? DEFAULT_VALIDITY_DAYS.ca);
  const x509 = await loadX509();
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: name(`medge site ${options.site} CA`, 'medge'),
    ...times,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { site: options.site, certPem: toPem(cert), keyPem: await exportKeyPem(x509, keys.privateKey) };
}

interface LeafSpec {
  subject: X509.JsonName;
  days: number;
  /** `days` was asked for (not a default): past the CA's end it is refused, a default is cut to it. */
  explicitDays: boolean;
  notBefore: Date | undefined;
  usage: string;
  san?: X509.JsonGeneralNames;
}

async function issueLeaf(ca: SiteCa, spec: LeafSpec): Promise<CertifiedKey> {
  const x509 = await loadX509();
  let caCert: X509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(ca.certPem);
  } catch (error) {
    throw new PkiError('invalid-ca', `the CA certificate is not a PEM X.509 certificate: ${(error as Error).message}`);
  }
  const times = validity(spec.notBefore, spec.days, caCert.notBefore);
  // A certificate cannot be trusted past its issuer's expiry: refuse an asked-for validity that would look
  // longer. A default, or less than a day over (a CA made moments earlier with the same --days), is cut to the CA's end.
  if (times.notAfter > caCert.notAfter && (!spec.explicitDays || times.notAfter.getTime() - caCert.notAfter.getTime() < DAY_MS)) times.notAfter = caCert.notAfter;
  if (times.notAfter > caCert.notAfter) {
    const room = Math.floor((caCert.notAfter.getTime() - (spec.notBefore ?? new Date()).getTime()) / DAY_MS);
    throw new PkiError('invalid-input', `${spec.days} days would outlive the site CA, which is valid until ${caCert.notAfter.toISOString().slice(0, 10)}: use --days ${Math.max(1, room)} or less, or renew the CA`);
  }
  const caKey = await importKeyPem(x509, ca.keyPem, 'the CA key');
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: spec.subject,
    issuer: caCert.subjectName,
    ...times,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([spec.usage]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      ...(spec.san ? [new x509.SubjectAlternativeNameExtension(spec.san)] : []),
    ],
  });
  // A CA key that does not belong to the CA certificate would issue certificates nobody accepts.
  if (!(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }))) {
    throw new PkiError('invalid-ca', 'the CA key does not belong to the CA certificate');
  }
  return { certPem: toPem(cert), keyPem: await exportKeyPem(x509, keys.privateKey) };
}

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The edge's TLS server certificate: SAN localhost, 127.0.0.1, ::1 and every given host (DNS name or IP). */
export async function issueServerCert(ca: SiteCa, options: ServerCertOptions = {}): Promise<CertifiedKey> {
  const hosts = [...new Set([...LOCAL_HOSTS, ...(options.hosts ?? [])])];
  for (const host of hosts) {
    if (isIP(host) === 0 && !DNS_NAME.test(host)) throw new PkiError('invalid-input', `host ${JSON.stringify(host)} is neither a DNS name nor an IP address`);
  }
  return issueLeaf(ca, {
    subject: name(`medge edge ${ca.site}`, ca.site, CERT_ROLES.edge),
    days: options.validDays ?? DEFAULT_VALIDITY_DAYS.server,
    explicitDays: options.validDays !== undefined,
    notBefore: options.notBefore,
    usage: EKU.serverAuth,
    san: hosts.map((value) => ({ type: isIP(value) === 0 ? 'dns' : 'ip', value })),
  });
}

/** The client certificate of the edge's own ingest (CN `medge-edge-ingest`), or of ingest worker `options.worker` (CN `medge-edge-ingest-<worker>`). */
export async function issueEdgeClientCert(ca: SiteCa, options: EdgeClientCertOptions = {}): Promise<CertifiedKey> {
  return issueLeaf(ca, {
    subject: name(options.worker === undefined ? EDGE_INGEST_IDENTITY : ingestWorkerIdentity(options.worker), ca.site, CERT_ROLES.edge),
    days: options.validDays ?? DEFAULT_VALIDITY_DAYS.ingest,
    explicitDays: options.validDays !== undefined,
    notBefore: options.notBefore,
    usage: EKU.clientAuth,
  });
}

/** A device's client certificate: CN = device id (its MQTT identity), O = site. */
export async function issueDeviceCert(ca: SiteCa, options: DeviceCertOptions): Promise<CertifiedKey> {
  const problem = deviceIdProblem(options.deviceId);
  if (problem) throw new PkiError(problem.reason, problem.message);
  checkSite(options.site);
  if (options.site !== ca.site) {
    throw new PkiError('site-mismatch', `site ${JSON.stringify(options.site)} does not match the CA's site ${JSON.stringify(ca.site)}`);
  }
  return issueLeaf(ca, {
    subject: name(options.deviceId, options.site, CERT_ROLES.device),
    days: options.validDays ?? DEFAULT_VALIDITY_DAYS.device,
    explicitDays: options.validDays !== undefined,
    notBefore: options.notBefore,
    usage: EKU.clientAuth,
  });
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/** Reads the fields medge relies on. A subject field given more than once reads as undefined. */
export function describeCertificate(pem: string): CertificateInfo {
  let cert: NodeX509Certificate;
  try {
    cert = new NodeX509Certificate(pem);
  } catch (error) {
    throw new PkiError('invalid-input', `not a PEM X.509 certificate: ${(error as Error).message}`);
  }
  const subject = subjectFields(cert.subject);
  return {
    subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCa: cert.ca,
    fingerprint256: cert.fingerprint256,
    subjectAltName: cert.subjectAltName,
  };
}

/** Parses Node's multi-line `subject` text (`CN=x\nO=y`); repeated fields read as undefined. */
function subjectFields(text: string): CertificateInfo['subject'] {
  const fields = new Map<string, string | string[]>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at < 0) continue;
    const key = line.slice(0, at);
    const value = line.slice(at + 1);
    const seen = fields.get(key);
    fields.set(key, seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]);
  }
  return { CN: single(fields.get('CN')), O: single(fields.get('O')), OU: single(fields.get('OU')) };
}

/** True when `certPem` is signed by `caPem` and valid at `at` (default now). */
export function isIssuedBy(certPem: string, caPem: string, at: Date = new Date()): boolean {
  const cert = new NodeX509Certificate(certPem);
  const ca = new NodeX509Certificate(caPem);
  const t = at.getTime();
  return cert.checkIssued(ca) && cert.verify(ca.publicKey) && new Date(cert.validFrom).getTime() <= t && t <= new Date(cert.validTo).getTime();
}

// ---- files -------------------------------------------------------------------------------------

/** The files of a CA directory (`medge ca init --dir DIR`). Keys are 0600; the directory is 0700. */
export const CA_DIR_FILES = Object.freeze({
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  ingestCert: 'ingest.crt',
  ingestKey: 'ingest.key',
  site: 'site.json',
  /** Certificate revocation list (PEM): empty from `medge ca init`, rewritten by `medge ca revoke`; honoured by the edge and Mosquitto (`crlfile`). */
  crl: 'crl.pem',
  /** Every device certificate issued (`issued/<id>.crt`), so that it can be revoked by device id. */
  issued: 'issued',
  /** The revoked serials (`revoked.json`), from which the CRL is regenerated. */
  revoked: 'revoked.json',
});

/** `site.json` of a CA directory. */
export interface SiteInfo {
  site: string;
  /** Names in the server certificate besides localhost, 127.0.0.1 and ::1. */
  hosts: string[];
  createdAt: string;
  caFingerprint256: string;
}

/** What an edge needs for mutual TLS: the site, the CA to trust, its server and ingest identities. */
export interface EdgeTlsMaterial {
  site: string;
  /** CA certificate (PEM): the only issuer of client and server certificates the edge trusts. */
  ca: string;
  /** Server certificate and key (PEM). */
  cert: string;
  key: string;
  /** The ingest client's certificate and key (PEM). */
  ingestCert: string;
  ingestKey: string;
  /** Where the CA directory's CRL is (or will be, after the first `medge ca revoke`): the edge reloads it when it changes. */
  crlPath: string;
  /**
   * The CA directory's record of device certificates (`issued/`): behind an external broker the ingest refuses
   * the batches of a device whose latest certificate there is revoked or expired (`edge/issued-certificates.ts`).
   */
  issuedDir?: string;
  /** The ingest group key (`INGEST_GROUP_KEY_FILE`), once `issueIngestWorkers` has written it: TLS workers derive their shared subscription group from it. */
  ingestGroupKey?: string;
}

export interface InitCaDirOptions {
  site: string;
  hosts?: readonly string[];
  /** Validity of the CA; the server and ingest certificates get at most `DEFAULT_VALIDITY_DAYS.server`. */
  validDays?: number;
}

function writeNew(path: string, text: string, mode: number): void {
  try {
    writeFileSync(path, text, { mode, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new PkiError('exists', `${path} already exists; refusing to overwrite it`, path);
    throw error;
  }
  chmodSync(path, mode); // the umask may have narrowed or the file system widened it
}

/** Writes `text` to `path` through a temporary file (fsynced, `mode`) renamed over it, then fsyncs the directory. */
function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    chmodSync(tmp, mode); // the umask may have narrowed it
    renameSync(tmp, path);
  } catch (error) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw error;
  }
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function readText(path: string, what: string, fix = 'create a CA with: medge ca init --dir DIR --site SITE'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new PkiError('missing', `cannot read ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}); ${fix}`, path);
  }
}

/**
 * Creates a CA directory: a site CA, the edge server certificate and the ingest client certificate.
 * Refuses when the directory already holds any of its files (a CA is never overwritten).
 */
export async function initCaDir(dir: string, options: InitCaDirOptions): Promise<SiteInfo> {
  checkSite(options.site);
  for (const file of Object.values(CA_DIR_FILES)) {
    const path = join(dir, file);
    if (existsSync(path)) throw new PkiError('exists', `${path} already exists: ${dir} already holds a CA; refusing to overwrite it (choose another --dir)`, path);
  }
  const caDays = options.validDays ?? DEFAULT_VALIDITY_DAYS.ca;
  checkDays(caDays);
  const leafDays = Math.min(caDays, DEFAULT_VALIDITY_DAYS.server);
  const hosts = [...new Set(options.hosts ?? [])];
  const ca = await createSiteCa({ site: options.site, validDays: caDays });
  const server = await issueServerCert(ca, { hosts, validDays: leafDays });
  const ingest = await issueEdgeClientCert(ca, { validDays: leafDays });
  const info: SiteInfo = { site: options.site, hosts, createdAt: new Date().toISOString(), caFingerprint256: describeCertificate(ca.certPem).fingerprint256 };
  makeDirs(dir, 0o700);
  const f = CA_DIR_FILES;
  writeNew(join(dir, f.caKey), ca.keyPem, 0o600);
  writeNew(join(dir, f.caCert), ca.certPem, 0o644);
  writeNew(join(dir, f.serverKey), server.keyPem, 0o600);
  writeNew(join(dir, f.serverCert), server.certPem, 0o644);
  writeNew(join(dir, f.ingestKey), ingest.keyPem, 0o600);
  writeNew(join(dir, f.ingestCert), ingest.certPem, 0o644);
  writeNew(join(dir, f.site), `${JSON.stringify(info, null, 2)}\n`, 0o644);
  // An empty CRL from the start: Mosquitto rereads a crlfile on SIGHUP only if its config named one when it started.
  await writeCrl(dir, ca, [], new Date());
  appendCaAudit(dir, { action: 'ca-init', detail: `site ${info.site}: CA ${info.caFingerprint256}; server certificate for ${[...LOCAL_HOSTS, ...hosts].join(', ')}` });
  return info;
}

/** Reads `site.json` of a CA directory. */
export function readSiteInfo(dir: string): SiteInfo {
  const path = join(dir, CA_DIR_FILES.site);
  let info: Partial<SiteInfo>;
  try {
    info = JSON.parse(readText(path, 'the site file')) as Partial<SiteInfo>;
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError('invalid-ca', `${path} is not valid JSON: ${(error as Error).message}`, path);
  }
  if (typeof info.site !== 'string' || !isTopicSegment(info.site)) throw new PkiError('invalid-ca', `${path} names no valid "site"`, path);
  return { site: info.site, hosts: Array.isArray(info.hosts) ? info.hosts : [], createdAt: String(info.createdAt ?? ''), caFingerprint256: String(info.caFingerprint256 ?? '') };
}

/** Loads the CA (certificate, key, site) of a CA directory, checking that they belong together. */
export function readSiteCa(dir: string): SiteCa {
  const { site } = readSiteInfo(dir);
  const certPem = readText(join(dir, CA_DIR_FILES.caCert), 'the CA certificate');
  const keyPem = readText(join(dir, CA_DIR_FILES.caKey), 'the CA key');
  const info = describeCertificate(certPem);
  if (!info.isCa || info.subject.CN !== `medge site ${site} CA`) {
    throw new PkiError('invalid-ca', `${join(dir, CA_DIR_FILES.caCert)} is not the CA of site ${JSON.stringify(site)} (subject CN ${JSON.stringify(info.subject.CN)})`);
  }
  return { site, certPem, keyPem };
}

/**
 * The CA directory's ingest group key (`ingest-group.key`, 0600, written by `issueIngestWorkers`): ingest workers with TLS
 * subscribe under a shared subscription group derived from it (`edge-node.ts`). Mosquitto 2.0's ACL file does not check
 * subscriptions, and a shared group hands each message to one member and drops it when that member may not read it: a
 * device joining the group by its plain name would take its share of uplinks away from the workers (measured: 10 of 20).
 */
export const INGEST_GROUP_KEY_FILE = 'ingest-group.key';

/** The certificate and key files of ingest worker `worker` in a CA directory (`ingest-<worker>.crt`, `.key`). */
export function ingestWorkerFiles(worker: number): { cert: string; key: string } {
  checkWorker(worker);
  return { cert: `ingest-${worker}.crt`, key: `ingest-${worker}.key` };
}

/** The ingest workers a CA directory holds a certificate for (`ingest-<n>.crt`), ascending. */
export function listIngestWorkers(dir: string): number[] {
  const workers: number[] = [];
  for (const file of readdirSync(dir)) {
    const m = /^ingest-([1-9][0-9]?)\.crt$/.exec(file);
    if (m && Number(m[1]) <= MAX_INGEST_WORKERS) workers.push(Number(m[1]));
  }
  return workers.sort((a, b) => a - b);
}

export interface IssuedIngestWorker {
  worker: number;
  /** Its CN and MQTT identity, `medge-edge-ingest-<worker>`. */
  identity: string;
  certPath: string;
  keyPath: string;
  /** False when the CA directory held it already, certificate and matching key (kept, not reissued). */
  created: boolean;
}

/**
 * Issues the certificates of ingest workers 1 to `workers` that the CA directory does not hold yet (`ingest-<n>.crt`,
 * `ingest-<n>.key` 0600; CN `medge-edge-ingest-<n>`, OU=edge), for `medge edge --shared-subscription GROUP --tls DIR
 * --ingest-worker N`. A worker is kept only when its certificate and key both exist and belong together; otherwise the pair
 * is issued anew (each file written atomically: temporary file, fsync, rename). The group key is written (64 hex, 0600,
 * atomically) when missing, and a malformed one is refused. Their validity is the ingest's (`DEFAULT_VALIDITY_DAYS.ingest`, at most the CA's).
 */
export async function issueIngestWorkers(dir: string, options: { workers: number; validDays?: number }): Promise<IssuedIngestWorker[]> {
  checkWorker(options.workers);
  if (options.validDays !== undefined) checkDays(options.validDays);
  const ca = readSiteCa(dir);
  const keyPath = join(dir, INGEST_GROUP_KEY_FILE);
  if (existsSync(keyPath)) readIngestGroupKey(dir);
  else writeAtomic(keyPath, `${randomBytes(32).toString('hex')}\n`, 0o600);
  const result: IssuedIngestWorker[] = [];
  for (let worker = 1; worker <= options.workers; worker++) {
    const files = ingestWorkerFiles(worker);
    const certPath = join(dir, files.cert);
    const workerKeyPath = join(dir, files.key);
    const identity = ingestWorkerIdentity(worker);
    if (workerPairIntact(certPath, workerKeyPath)) {
      result.push({ worker, identity, certPath, keyPath: workerKeyPath, created: false });
      continue;
    }
    const issued = await issueEdgeClientCert(ca, { worker, ...(options.validDays === undefined ? {} : { validDays: options.validDays }) });
    // Key first: a crash in between leaves a cert that does not match its key, which the next run reissues.
    writeAtomic(workerKeyPath, issued.keyPem, 0o600);
    writeAtomic(certPath, issued.certPem, 0o644);
    const info = describeCertificate(issued.certPem);
    appendCaAudit(dir, { action: 'ingest-worker', detail: `ingest worker ${worker} (${identity}) of site ${ca.site}: certificate serial ${info.serialNumber}, valid until ${info.notAfter.toISOString()}` });
    result.push({ worker, identity, certPath, keyPath: workerKeyPath, created: true });
  }
  return result;
}

/** Whether a worker's certificate and key both exist, parse, and belong together. */
function workerPairIntact(certPath: string, keyPath: string): boolean {
  try {
    return new NodeX509Certificate(readFileSync(certPath)).checkPrivateKey(createPrivateKey(readFileSync(keyPath)));
  } catch {
    return false;
  }
}

/**
 * The CA directory's ingest group key (`INGEST_GROUP_KEY_FILE`): exactly 64 hex characters (a trailing newline allowed).
 * Throws `PkiError` 'missing' when unreadable, 'invalid-ca' when malformed, each with the fix.
 */
export function readIngestGroupKey(dir: string): string {
  const path = join(dir, INGEST_GROUP_KEY_FILE);
  const fix = `run medge ca ingest-workers --ca ${dir} --workers N (it writes the key when missing), then restart every ingest worker: workers derive their shared group from the key and all must use the same one`;
  const key = readText(path, 'the ingest group key', fix).trim();
  if (!/^[0-9a-f]{64}$/i.test(key)) {
    throw new PkiError('invalid-ca', `the ingest group key ${path} must be exactly 64 hex characters, found ${key.length} characters${/^[0-9a-f]*$/i.test(key) ? '' : ' with non-hex ones'}; remove it and ${fix}`, path);
  }
  return key.toLowerCase();
}

/** The shared subscription group ingest workers with TLS subscribe under: `<group>-<HMAC-SHA256 of group under key, 32 hex>`. */
export function keyedIngestGroup(group: string, key: string): string {
  return `${group}-${createHmac('sha256', key).update(group).digest('hex').slice(0, 32)}`;
}

/**
 * Loads what `medge edge --tls DIR` needs from a CA directory (the CA key is not read). With `ingestWorker` the ingest
 * client identity is that worker's (`ingest-<n>.crt`, `issueIngestWorkers`) instead of `ingest.crt`, and the ingest group
 * key is read (`readIngestGroupKey`, required then). A single ingest never reads the key.
 */
export function readEdgeTls(dir: string, options: { ingestWorker?: number } = {}): EdgeTlsMaterial {
  const { site } = readSiteInfo(dir);
  const f = CA_DIR_FILES;
  const worker = options.ingestWorker === undefined ? undefined : ingestWorkerFiles(options.ingestWorker);
  const workerFix = `issue it with: medge ca ingest-workers --ca ${dir} --workers ${options.ingestWorker ?? 1}`;
  return {
    site,
    ca: readText(join(dir, f.caCert), 'the CA certificate'),
    cert: readText(join(dir, f.serverCert), 'the server certificate'),
    key: readText(join(dir, f.serverKey), 'the server key'),
    ingestCert: worker ? readText(join(dir, worker.cert), 'the ingest worker certificate', workerFix) : readText(join(dir, f.ingestCert), 'the ingest certificate'),
    ingestKey: worker ? readText(join(dir, worker.key), 'the ingest worker key', workerFix) : readText(join(dir, f.ingestKey), 'the ingest key'),
    crlPath: join(dir, f.crl),
    issuedDir: join(dir, f.issued),
    ...(worker ? { ingestGroupKey: readIngestGroupKey(dir) } : {}),
  };
}

export interface ProvisionOptions {
  deviceId: string;
  site: string;
  /** Where `<deviceId>.key` (0600), `<deviceId>.crt` and `ca.crt` are written. */
  outDir: string;
  validDays?: number;
}

export interface ProvisionResult {
  keyPath: string;
  certPath: string;
  caPath: string;
  /** The device's payload (wire) key, 0600; the edge's copy is in the CA directory (`wire-keys.ts`). */
  wireKeyPath: string;
  info: CertificateInfo;
}

/**
 * Issues a device identity from a CA directory. Refuses an invalid or reserved device id, a site
 * other than the CA's, and an existing key or certificate for the device in `outDir`.
 */
export async function provisionDevice(caDir: string, options: ProvisionOptions): Promise<ProvisionResult> {
  const problem = deviceIdProblem(options.deviceId);
  if (problem) throw new PkiError(problem.reason, problem.message);
  const ca = readSiteCa(caDir);
  if (options.site !== ca.site) {
    throw new PkiError('site-mismatch', `--site ${JSON.stringify(options.site)} does not match the site of the CA in ${caDir} (${JSON.stringify(ca.site)})`);
  }
  const keyPath = join(options.outDir, `${options.deviceId}.key`);
  const certPath = join(options.outDir, `${options.deviceId}.crt`);
  const caPath = join(options.outDir, 'ca.crt');
  const wirePath = join(options.outDir, `${options.deviceId}.wire.key`);
  for (const path of [keyPath, certPath, wirePath]) {
    if (existsSync(path)) throw new PkiError('exists', `${path} already exists; refusing to overwrite a device identity (remove it first to re-provision)`, path);
  }
  if (existsSync(caPath) && readFileSync(caPath, 'utf8') !== ca.certPem) {
    throw new PkiError('exists', `${caPath} holds a different CA certificate; refusing to overwrite it (use another --out)`, caPath);
  }
  const device = await issueDeviceCert(ca, { deviceId: options.deviceId, site: options.site, ...(options.validDays === undefined ? {} : { validDays: options.validDays }) });
  makeDirs(options.outDir, 0o700);
  writeNew(keyPath, device.keyPem, 0o600);
  writeNew(certPath, device.certPem, 0o644);
  if (!existsSync(caPath)) writeNew(caPath, ca.certPem, 0o644);
  const wireKey = issueWireKey(caDir, options.deviceId, wirePath);
  makeDirs(join(caDir, CA_DIR_FILES.issued), 0o700);
  writeFileSync(join(caDir, CA_DIR_FILES.issued, `${options.deviceId}.crt`), device.certPem, { mode: 0o644 });
  const info = describeCertificate(device.certPem);
  appendCaAudit(caDir, {
    action: 'provision',
    detail: `device ${options.deviceId} of site ${options.site}: certificate serial ${info.serialNumber}, valid until ${info.notAfter.toISOString()}; wire key ${wireKey.keyId}; written to ${options.outDir}`,
  });
  return { keyPath, certPath, caPath, wireKeyPath: wirePath, info };
}

export interface RevokedEntry {
  deviceId: string;
  /** Hexadecimal serial number of the revoked certificate. */
  serial: string;
  revokedAt: string;
}

export interface RevokeResult {
  revoked: RevokedEntry;
  /** Every serial the CRL now lists. */
  entries: number;
  crlPath: string;
}

/**
 * Writes the CA directory's CRL (`crl.pem`), signed by the CA, listing `list`; returns its path. Written
 * atomically: a reader (the edge, Mosquitto on SIGHUP) never sees half a CRL.
 */
async function writeCrl(caDir: string, ca: SiteCa, list: readonly RevokedEntry[], now: Date): Promise<string> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    // Backdated like certificates: an edge (or Mosquitto) whose clock is behind thisUpdate would refuse every client.
    thisUpdate: backdatedStart(now, caCert.notBefore),
    entries: list.map((e) => ({ serialNumber: e.serial, revocationDate: new Date(e.revokedAt), reason: x509.X509CrlReason.keyCompromise })),
    signingAlgorithm: ALGORITHM,
    signingKey: await importKeyPem(x509, ca.keyPem, 'the CA key'),
  });
  const crlPath = join(caDir, CA_DIR_FILES.crl);
  // OpenSSL (Node's tls, Mosquitto) reads the RFC 7468 label "X509 CRL", not "CRL".
  const pem = crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----');
  writeFileSync(`${crlPath}.tmp`, `${pem}\n`, { mode: 0o644 });
  chmodSync(`${crlPath}.tmp`, 0o644);
  renameSync(`${crlPath}.tmp`, crlPath);
  return crlPath;
}

/**
 * Revokes the certificate issued to `deviceId` (the latest `medge provision` recorded in
 * `issued/`) and rewrites the CA directory's CRL, signed by the CA, listing every revoked serial.
 * The CRL has no nextUpdate (OpenSSL would refuse every client once it passed); a revocation is
 * permanent. The edge (`medge edge --tls`) reloads the CRL when the file changes; Mosquitto rereads its
 * copy (`crlfile`, from `medge edge mosquitto-config`) on SIGHUP after `mosquitto-config` is run again,
 * if its config named a crlfile when it started (CA directories from `initCaDir` have an empty CRL from the start).
 */
export async function revokeDevice(caDir: string, deviceId: string, now = new Date()): Promise<RevokeResult> {
  const ca = readSiteCa(caDir);
  const issuedPath = join(caDir, CA_DIR_FILES.issued, `${deviceId}.crt`);
  if (!existsSync(issuedPath)) throw new PkiError('missing', `no certificate issued to ${JSON.stringify(deviceId)} is recorded in ${join(caDir, CA_DIR_FILES.issued)}`, issuedPath);
  const x509 = await loadX509();
  const cert = new x509.X509Certificate(readFileSync(issuedPath, 'utf8'));
  const revokedPath = join(caDir, CA_DIR_FILES.revoked);
  const list: RevokedEntry[] = existsSync(revokedPath) ? (JSON.parse(readFileSync(revokedPath, 'utf8')) as RevokedEntry[]) : [];
  let entry = list.find((e) => e.serial === cert.serialNumber);
  if (!entry) {
    entry = { deviceId, serial: cert.serialNumber, revokedAt: now.toISOString() };
    list.push(entry);
  }
  writeFileSync(`${revokedPath}.tmp`, `${JSON.stringify(list, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${revokedPath}.tmp`, revokedPath);
  const crlPath = await writeCrl(caDir, ca, list, now);
  appendCaAudit(caDir, { action: 'revoke', detail: `device ${deviceId}: certificate serial ${entry.serial} revoked; the CRL lists ${list.length}` });
  return { revoked: entry, entries: list.length, crlPath };
}

/** A certificate serial as hex digits in lower case without leading zeros (Node and `@peculiar/x509` spell them differently). */
export function normalizeSerial(serial: string): string {
  return serial.replace(/[^0-9a-fA-F]/g, '').toLowerCase().replace(/^0+(?=.)/, '');
}

/** One DER element: its tag, and where its contents start and end in `der`. */
interface DerElement {
  tag: number;
  start: number;
  end: number;
  /** Where the element (header included) starts and ends. */
  outerStart: number;
}

function derAt(der: Buffer, offset: number, limit: number): DerElement {
  if (offset + 2 > limit) throw new PkiError('invalid-input', `the CRL's DER ends inside an element at byte ${offset}`);
  const tag = der[offset] as number;
  let length = der[offset + 1] as number;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || start + octets > limit) throw new PkiError('invalid-input', `the CRL's DER has a bad length at byte ${offset}`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[start + i] as number);
    start += octets;
  }
  if (start + length > limit) throw new PkiError('invalid-input', `the CRL's DER element at byte ${offset} runs past its end`);
  return { tag, start, end: start + length, outerStart: offset };
}

function derChildren(der: Buffer, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = derAt(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/**
 * The serials a CRL (PEM, as `revokeDevice` writes it) lists, normalised by `normalizeSerial`, after
 * checking that `caPem` signed it. Read with a small DER walker over RFC 5280 section 5.1 (`@peculiar/x509`
 * 2.x returns no entries for the CRLs its own generator writes). Throws `PkiError` (`invalid-input`)
 * for a CRL that does not parse or that the CA did not sign.
 */
export function revokedSerials(crlPem: string, caPem: string): Set<string> {
  const base64 = /-----BEGIN (?:X509 )?CRL-----([A-Za-z0-9+/=\s]+)-----END (?:X509 )?CRL-----/.exec(crlPem)?.[1];
  if (base64 === undefined) throw new PkiError('invalid-input', 'the CRL is not a PEM "X509 CRL"');
  const der = Buffer.from(base64.replace(/\s/g, ''), 'base64');
  const list = derAt(der, 0, der.length);
  const [tbs, algorithm, signature] = derChildren(der, list);
  if (tbs?.tag !== 0x30 || algorithm?.tag !== 0x30 || signature?.tag !== 0x03) throw new PkiError('invalid-input', 'the CRL is not a CertificateList');
  const caKey = new NodeX509Certificate(caPem).publicKey;
  // The signature BIT STRING starts with its count of unused bits (0).
  if (!verify('sha256', der.subarray(tbs.outerStart, tbs.end), caKey, der.subarray(signature.start + 1, signature.end))) {
    throw new PkiError('invalid-input', 'the CRL is not signed by the site CA');
  }
  // TBSCertList: version?, signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?, [0] extensions?
  const fields = derChildren(der, tbs);
  let i = fields[0]?.tag === 0x02 ? 4 : 3;
  if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) i += 1; // nextUpdate (UTCTime or GeneralizedTime)
  const revoked = fields[i]?.tag === 0x30 ? fields[i] : undefined;
  const serials = new Set<string>();
  for (const entry of revoked === undefined ? [] : derChildren(der, revoked)) {
    const serial = derChildren(der, entry)[0];
    if (serial?.tag !== 0x02) throw new PkiError('invalid-input', 'a CRL entry has no serial number');
    serials.add(normalizeSerial(der.subarray(serial.start, serial.end).toString('hex')));
  }
  return serials;
}
