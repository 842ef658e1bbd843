/**
 * The ingest's check of a device's certificate when the broker is external (Mosquitto).
 *
 * Mosquitto 2.0.11 checks a client certificate only during the TLS handshake. Measured
 * (`test/security/mosquitto-open-connections.test.ts`): a connection whose certificate expires while it
 * is open stays open and its publishes are delivered; so does one whose certificate is revoked, even after
 * `medge edge mosquitto-config` is run again and Mosquitto gets SIGHUP (which makes it refuse new
 * handshakes with that certificate). Mosquitto has no way to close a client by certificate (only by username,
 * through its dynamic security plugin: `mosquitto-dynsec.ts`, which uses this check), and the ingest
 * does not see who published a message. It does know the device: Mosquitto's ACL (`pattern write
 * .../%u/up/#`, username = certificate CN) lets a device publish only under its own id. So the ingest
 * refuses (counted `auth`, not acknowledged) the batches of a device whose certificate, as the CA
 * directory last issued it (`issued/<id>.crt`, `medge provision`), is revoked (the CRL) or expired, and tells
 * that device why (`Ack.refused`: `certificate-revoked` / `certificate-expired`, `edge/ingest.ts`).
 *
 * Limits: the CA directory records only the latest certificate of each device. A device re-provisioned
 * after a revocation is accepted again, also on a connection that still uses the revoked certificate; a
 * device never provisioned from this CA directory is not checked (the handshake was). The embedded broker
 * needs none of this: it knows each connection's certificate and closes it (`edge/broker.ts`).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { normalizeSerial, revokedSerials } from '../device-sdk/security/pki.js';

export interface IssuedCertificatesOptions {
  /** The CA certificate (PEM) that must have signed the CRL. */
  ca: string;
  /** `issued/` of the CA directory. */
  issuedDir: string;
  /** The CA directory's CRL (may not exist). */
  crlPath: string;
  /** Wall clock (ms) for expiry. */
  now: () => number;
}

interface Cached<T> {
  stamp: string;
  value: T;
}

function stampOf(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.mtimeMs}:${st.size}`;
  } catch {
    return undefined;
  }
}

/** Why the ingest refuses a device's batches because of its certificate: `reason` is what the device is told (`Ack.refused`). */
export interface CertificateProblem {
  reason: 'certificate-revoked' | 'certificate-expired';
  message: string;
}

/**
 * Returns a check for the ingest: why a device's batches must be refused (its latest issued certificate
 * is revoked or expired), or undefined. Files are read again only when they change (mtime and size).
 */
export function createIssuedCertificateCheck(options: IssuedCertificatesOptions): (deviceId: string) => CertificateProblem | undefined {
  let crl: Cached<Set<string>> | undefined;
  const certs = new Map<string, Cached<{ serial: string; notAfterMs: number } | undefined>>();
  const revoked = (): Set<string> => {
    const stamp = stampOf(options.crlPath);
    if (stamp === undefined) return new Set();
    if (crl?.stamp !== stamp) {
      // An unusable CRL keeps the previous one (as the embedded broker does).
      try {
        crl = { stamp, value: revokedSerials(readFileSync(options.crlPath, 'utf8'), options.ca) };
      } catch {
        crl = { stamp, value: crl?.value ?? new Set() };
      }
    }
    return crl.value;
  };
  const issued = (deviceId: string) => {
    const path = join(options.issuedDir, `${deviceId}.crt`);
    const stamp = stampOf(path);
    if (stamp === undefined) return undefined;
    let cached = certs.get(deviceId);
    if (cached?.stamp !== stamp) {
      let value: { serial: string; notAfterMs: number } | undefined;
      try {
        const cert = new X509Certificate(readFileSync(path, 'utf8'));
        value = { serial: normalizeSerial(cert.serialNumber), notAfterMs: Date.parse(cert.validTo) };
      } catch {
        value = undefined;
      }
      cached = { stamp, value };
      certs.set(deviceId, cached);
    }
    return cached.value;
  };
  return (deviceId) => {
    const cert = issued(deviceId);
    if (!cert) return undefined;
    if (revoked().has(cert.serial)) return { reason: 'certificate-revoked', message: `the certificate of ${deviceId} (serial ${cert.serial}) is revoked; its batches are refused` };
    if (cert.notAfterMs <= options.now()) {
      return { reason: 'certificate-expired', message: `the certificate of ${deviceId} (serial ${cert.serial}) expired at ${new Date(cert.notAfterMs).toISOString()}; its batches are refused` };
    }
    return undefined;
  };
}
