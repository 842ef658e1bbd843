/**
 * Per-device topic ACLs of the edge broker, as pure functions over the identity a client proved
 * with its certificate. The embedded broker (`broker.ts`) calls them from its aedes hooks; the
 * Mosquitto config that `mosquitto-config.ts` writes states the same policy in Mosquitto's terms.
 *
 * - A device (certificate `OU=device`, CN = device id) may publish only to
 *   `medge/v1/<site>/<CN>/up/<kind>` (never retained) and subscribe only to
 *   `medge/v1/<site>/<CN>/down/#`, `.../down/+` or one exact `.../down/<what>`.
 * - The edge's ingest client (certificate `OU=edge`, CN `medge-edge-ingest`, or `medge-edge-ingest-<n>` for ingest
 *   worker n on a shared subscription) may subscribe to any
 *   device's uplink of its site (`medge/v1/<site>/+/up/+` and narrower) and publish to any device's
 *   down topics (`medge/v1/<site>/<deviceId>/down/<what>`).
 * Anything else is refused.
 */
import { CERT_ROLES, deviceIdentityProblem, isIngestIdentity } from '../device-sdk/security/pki.js';
import { isTopicSegment, TOPIC_ROOT } from '../device-sdk/sync/topics.js';

/** Who a connected client is, as its certificate says. */
export type EdgeIdentity = { role: 'device'; deviceId: string } | { role: 'ingest'; name: string };

/** The subject of a peer certificate as Node's `getPeerCertificate()` gives it. */
export interface PeerSubject {
  CN?: string | string[] | undefined;
  O?: string | string[] | undefined;
  OU?: string | string[] | undefined;
}

export type IdentityResult = { ok: true; identity: EdgeIdentity; name: string } | { ok: false; problem: string };

/** The MQTT identity (username, topic segment) of an identity. */
export function identityName(identity: EdgeIdentity): string {
  return identity.role === 'device' ? identity.deviceId : identity.name;
}

/**
 * The identity a verified client certificate carries at an edge of `site`, or why it carries none.
 * Each of CN, O and OU must appear exactly once; O must be the site.
 */
export function identityFromSubject(subject: PeerSubject | undefined, site: string): IdentityResult {
  if (!subject) return { ok: false, problem: 'no client certificate' };
  const { CN, O, OU } = subject;
  if (typeof CN !== 'string' || typeof O !== 'string' || typeof OU !== 'string') {
    return { ok: false, problem: 'the certificate subject must carry exactly one CN, O and OU' };
  }
  if (O !== site) return { ok: false, problem: `the certificate is for site ${JSON.stringify(O)}, this edge serves ${JSON.stringify(site)}` };
  if (OU === CERT_ROLES.edge && isIngestIdentity(CN)) return { ok: true, identity: { role: 'ingest', name: CN }, name: CN };
  if (OU === CERT_ROLES.device) {
    const problem = deviceIdentityProblem(CN);
    if (problem) return { ok: false, problem: problem.message };
    return { ok: true, identity: { role: 'device', deviceId: CN }, name: CN };
  }
  return { ok: false, problem: `certificate role OU=${JSON.stringify(OU)} with CN ${JSON.stringify(CN)} is not a client identity` };
}

function split(topic: string, site: string): string[] | undefined {
  const parts = topic.split('/');
  if (parts.length !== 6 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[2] !== site) return undefined;
  return parts;
}

/** Why `identity` may not publish to `topic`, or undefined when it may. */
export function publishProblem(identity: EdgeIdentity, site: string, topic: string, retain = false): string | undefined {
  const parts = split(topic, site);
  const denied = `${identityName(identity)} may not publish to ${JSON.stringify(topic.slice(0, 200))}`;
  if (!parts) return denied;
  const [, , , owner = '', direction, what = ''] = parts;
  if (!isTopicSegment(what)) return denied;
  if (identity.role === 'device') {
    if (owner !== identity.deviceId || direction !== 'up') return denied;
    if (retain) return `${identity.deviceId} may not publish retained messages`;
    return undefined;
  }
  return direction === 'down' && isTopicSegment(owner) ? undefined : denied;
}

/** Why `identity` may not subscribe to `filter`, or undefined when it may. */
export function subscribeProblem(identity: EdgeIdentity, site: string, filter: string): string | undefined {
  const parts = split(filter, site);
  const denied = `${identityName(identity)} may not subscribe to ${JSON.stringify(filter.slice(0, 200))}`;
  if (!parts) return denied;
  const [, , , owner = '', direction, what = ''] = parts;
  const lastOk = what === '#' || what === '+' || isTopicSegment(what);
  if (!lastOk) return denied;
  if (identity.role === 'device') return owner === identity.deviceId && direction === 'down' ? undefined : denied;
  return direction === 'up' && (owner === '+' || isTopicSegment(owner)) ? undefined : denied;
}

/** The ingest's subscription at an edge of `site` (what `subscribeProblem` grants it). */
export function siteUpWildcard(site: string): string {
  return `${TOPIC_ROOT}/${site}/+/up/+`;
}
