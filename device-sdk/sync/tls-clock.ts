/**
 * TLS failures caused by a clock: a certificate of the link that is not yet valid or has expired by the
 * device's clock, or by the edge's. A board without a real-time clock that boots offline can be hours to
 * weeks behind, and it cannot reach the edge (which would tell it the time) until TLS succeeds.
 *
 * How it shows on the device (measured against the embedded aedes edge, Node 22 / OpenSSL 3):
 * - This board verifies the edge's chain (site CA, edge server certificate) against its own clock and
 *   refuses it: Node reports `CERT_NOT_YET_VALID` or `CERT_HAS_EXPIRED` (OpenSSL checks every certificate
 *   of the chain, the CA too). `diagnoseClockFailure` explains it.
 * - The edge verifies this board's certificate against the edge's clock and refuses it. The Node TLS server
 *   closes the connection without sending the TLS alert that would say why: under TLS 1.3 this side sees
 *   its handshake finish and then the connection end before any CONNACK, under TLS 1.2 `ECONNRESET` during
 *   the handshake. A revoked certificate or one from another CA looks the same. `diagnoseRefusedCertificate`
 *   explains it from this board's own certificate: outside its validity by this board's clock, it is a
 *   clock or validity problem (`CertificateClockError`); within it, the edge refuses it for a reason this
 *   board cannot see, its clock being the first suspect (`CertificateRefusedError`).
 *
 * Only certificates and clocks are named (no patient data).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MedgeError } from '../errors.js';

/** The alert kind (severity 2) of a board that cannot sync because a certificate is outside its validity by one of the clocks. */
export const SYNC_CLOCK_INVALID = 'sync-clock-invalid';

/**
 * The alert kind (severity 2) of a board whose certificate the edge keeps refusing although it is valid by
 * this board's clock: the edge's clock is outside its validity, or it was revoked, or the edge has another CA.
 */
export const SYNC_CERTIFICATE_REFUSED = 'sync-certificate-refused';

/** Which certificate is outside its validity by this board's clock: the site CA, the edge's server certificate, or this board's own. */
export type ClockCertificate = 'ca' | 'edge' | 'device';
/** What the certificate's window says about this board's clock. */
export type ClockValidity = 'not-yet-valid' | 'expired';
/**
 * What is most likely wrong: this board's clock (behind a certificate's start; ahead of an edge
 * certificate's end, unless that certificate really expired), or this board's certificate itself (it
 * expired, or it starts after this board's clock and the edge's).
 */
export type ClockSuspect = 'device-clock' | 'device-clock-or-expired' | 'certificate';

/** A validity window as a certificate states it. */
export interface ValidityWindow {
  notBefore: Date;
  notAfter: Date;
}

/**
 * The link's TLS failed because a certificate is outside its validity by one of the clocks (code
 * `sync-clock-invalid`). Callers branch on the fields; the message is for people (it ends with the fix).
 */
export class CertificateClockError extends MedgeError {
  readonly certificate: ClockCertificate;
  readonly validity: ClockValidity;
  readonly suspect: ClockSuspect;
  /** The device clock (ms since the epoch) when the failure was diagnosed. */
  readonly deviceClockMs: number;
  /** The certificate's validity, when this board could read it. */
  readonly window: ValidityWindow | undefined;
  /** Node's error code of the TLS failure, or `refused` when the edge closed the connection without one. */
  readonly tlsCode: string;
  constructor(fields: { certificate: ClockCertificate; validity: ClockValidity; suspect: ClockSuspect; deviceClockMs: number; window: ValidityWindow | undefined; tlsCode: string }) {
    super(SYNC_CLOCK_INVALID, clockMessage(fields));
    this.certificate = fields.certificate;
    this.validity = fields.validity;
    this.suspect = fields.suspect;
    this.deviceClockMs = fields.deviceClockMs;
    this.window = fields.window;
    this.tlsCode = fields.tlsCode;
  }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const CERT_NAMES: Readonly<Record<ClockCertificate, string>> = Object.freeze({ ca: "the site CA's certificate", edge: "the edge's server certificate", device: "this board's certificate" });

function clockMessage(f: { certificate: ClockCertificate; validity: ClockValidity; suspect: ClockSuspect; deviceClockMs: number; window: ValidityWindow | undefined }): string {
  const cert = CERT_NAMES[f.certificate];
  const window = f.window ? ` (valid from ${iso(f.window.notBefore.getTime())} to ${iso(f.window.notAfter.getTime())})` : '';
  const clock = `this board's clock says ${iso(f.deviceClockMs)}`;
  const what =
    f.certificate === 'device'
      ? `the edge refuses ${cert}${window}, which is ${f.validity === 'expired' ? 'expired' : 'not yet valid'} by this board's clock too: ${clock}`
      : `${cert}${window} is ${f.validity === 'expired' ? 'expired' : 'not yet valid'} by this board's clock: ${clock}`;
  const fix: Record<ClockSuspect, string> = {
    'device-clock': "This board's clock is behind: set its date and time (or connect it to a time source); sync resumes by itself.",
    'device-clock-or-expired':
      "If this board's clock is ahead, set its date and time; if it is right, the certificate has expired and the site technician must renew it. Sync resumes by itself once fixed.",
    certificate:
      f.validity === 'expired'
        ? "This board's certificate has expired: ask the site technician to provision a new one (medge provision)."
        : "This board's certificate starts after this board's clock: set this board's date and time, or ask the site technician to provision a new certificate.",
  };
  return `Cannot sync with the edge: ${what}. No records are lost: this board keeps all of them until the edge confirms them. ${fix[f.suspect]}`;
}

/** Node's codes for a certificate of the edge's chain outside its validity by this board's clock. */
const LOCAL_VERIFY_CODES: Readonly<Record<string, 'not-yet-valid' | 'expired'>> = Object.freeze({ CERT_NOT_YET_VALID: 'not-yet-valid', CERT_HAS_EXPIRED: 'expired' });

/** True for the TLS error codes `diagnoseClockFailure` explains. */
export function isClockFailureCode(code: unknown): code is string {
  return typeof code === 'string' && code in LOCAL_VERIFY_CODES;
}

/** PEM certificates of an MQTT.js / Node TLS `ca` or `cert` option (string, Buffer or arrays of them). */
export function pemList(value: unknown): string[] {
  const items = Array.isArray(value) ? (value as unknown[]) : value === undefined ? [] : [value];
  const pems: string[] = [];
  for (const item of items) {
    const text = typeof item === 'string' ? item : Buffer.isBuffer(item) ? item.toString('utf8') : '';
    for (const block of text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) pems.push(block);
  }
  return pems;
}

/** The validity window of a PEM certificate, or undefined when it does not parse. */
export function windowOf(pem: string): ValidityWindow | undefined {
  try {
    const cert = new X509Certificate(pem);
    return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
  } catch {
    return undefined;
  }
}

function outside(window: ValidityWindow, atMs: number): 'not-yet-valid' | 'expired' | undefined {
  if (atMs < window.notBefore.getTime()) return 'not-yet-valid';
  if (atMs > window.notAfter.getTime()) return 'expired';
  return undefined;
}

export interface ClockFailureInput {
  /** Node's error code of the TLS failure. */
  code: string;
  /** The device clock (`Clock.now()`). */
  deviceClockMs: number;
  /** The trusted CA certificates (PEM), as the TLS options hold them. */
  caPems: readonly string[];
  /** The edge's server certificate window, when it could be read (`peerValidity`). */
  peer?: ValidityWindow;
}

/** Explains this board's refusal of the edge's chain (a code `isClockFailureCode` accepts); undefined for any other code. */
export function diagnoseClockFailure(input: ClockFailureInput): CertificateClockError | undefined {
  const { code, deviceClockMs } = input;
  const local = LOCAL_VERIFY_CODES[code];
  if (local === undefined) return undefined;
  const suspect = (state: ClockValidity): ClockSuspect => (state === 'expired' ? 'device-clock-or-expired' : 'device-clock');
  // The CA is at hand; otherwise it is the edge's certificate.
  for (const pem of input.caPems) {
    const window = windowOf(pem);
    const state = window && outside(window, deviceClockMs);
    if (window && state) return new CertificateClockError({ certificate: 'ca', validity: state, suspect: suspect(state), deviceClockMs, window, tlsCode: code });
  }
  return new CertificateClockError({ certificate: 'edge', validity: local, suspect: suspect(local), deviceClockMs, window: input.peer, tlsCode: code });
}

/**
 * The edge keeps refusing this board's certificate (`refusals` connections in a row closed during or right
 * after the TLS handshake, before any CONNACK) although it is valid by this board's clock (code
 * `sync-certificate-refused`). The edge does not say why: its clock outside `window`, a revocation, or a CA
 * other than the one that issued it.
 */
export class CertificateRefusedError extends MedgeError {
  readonly deviceClockMs: number;
  readonly window: ValidityWindow | undefined;
  readonly refusals: number;
  constructor(deviceClockMs: number, window: ValidityWindow | undefined, refusals: number) {
    const valid = window ? ` (valid from ${iso(window.notBefore.getTime())} to ${iso(window.notAfter.getTime())})` : '';
    super(
      SYNC_CERTIFICATE_REFUSED,
      `Cannot sync with the edge: it closed ${refusals} connections in a row during the TLS handshake, refusing this board's certificate${valid}, ` +
        `which is valid by this board's clock (${iso(deviceClockMs)}). No records are lost: this board keeps all of them until the edge confirms them. ` +
        `Ask the site technician to check, in this order: the edge's date and time (a clock outside that window refuses the certificate), ` +
        `whether this board's certificate was revoked (medge ca revoke), and whether the edge uses the site CA that issued it.`,
    );
    this.deviceClockMs = deviceClockMs;
    this.window = window;
    this.refusals = refusals;
  }
}

/** Explains an edge that keeps closing the TLS connection before CONNACK, from this board's own certificate and clock. */
export function diagnoseRefusedCertificate(ownCertPem: string | undefined, deviceClockMs: number, refusals: number): CertificateClockError | CertificateRefusedError {
  const window = ownCertPem === undefined ? undefined : windowOf(ownCertPem);
  const state = window && outside(window, deviceClockMs);
  if (state === undefined) return new CertificateRefusedError(deviceClockMs, window, refusals);
  return new CertificateClockError({ certificate: 'device', validity: state, suspect: 'certificate', deviceClockMs, window, tlsCode: 'refused' });
}

/**
 * Reads the validity of the server certificate at `url` (`mqtts://host:port`) with one TLS handshake that
 * does not verify it (only to name its window in a diagnosis; nothing is sent over it). Undefined when the
 * handshake does not get that far within `timeoutMs`.
 */
export function peerValidity(url: string, tls: { ca?: unknown; cert?: unknown; key?: unknown }, timeoutMs = 5_000): Promise<ValidityWindow | undefined> {
  return new Promise((resolve) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      resolve(undefined);
      return;
    }
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({
      host,
      port: Number(parsed.port || 8883),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(tls as object),
      rejectUnauthorized: false,
    });
    const done = (window: ValidityWindow | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(window);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const notBefore = Date.parse(peer.valid_from);
      const notAfter = Date.parse(peer.valid_to);
      done(Number.isNaN(notBefore) || Number.isNaN(notAfter) ? undefined : { notBefore: new Date(notBefore), notAfter: new Date(notAfter) });
    });
    socket.once('error', () => done(undefined));
  });
}
