import { describe, expect, it } from 'vitest';
import { type EdgeIdentity, identityFromSubject, publishProblem, siteUpWildcard, subscribeProblem } from './acl.js';
import { mosquittoAclText, mosquittoConfigText } from './mosquitto-config.js';

const SITE = 'ward-3';
const A: EdgeIdentity = { role: 'device', deviceId: 'dev-a' };
const INGEST: EdgeIdentity = { role: 'ingest', name: 'medge-edge-ingest' };
const WORKER_2: EdgeIdentity = { role: 'ingest', name: 'medge-edge-ingest-2' };

describe('identityFromSubject', () => {
  it('reads a device and the ingest from their certificate subjects', () => {
    expect(identityFromSubject({ CN: 'dev-a', O: SITE, OU: 'device' }, SITE)).toEqual({ ok: true, identity: A, name: 'dev-a' });
    expect(identityFromSubject({ CN: 'medge-edge-ingest', O: SITE, OU: 'edge' }, SITE)).toEqual({ ok: true, identity: INGEST, name: 'medge-edge-ingest' });
    expect(identityFromSubject({ CN: 'medge-edge-ingest-2', O: SITE, OU: 'edge' }, SITE)).toEqual({ ok: true, identity: WORKER_2, name: 'medge-edge-ingest-2' });
  });

  it.each(['medge-edge-ingest-cart', 'medge-edge-ingest-0', 'medge-edge-ingest-65', 'medge-edge-ingest-01'])(
    'accepts a device certificate issued under %s before new ids with the prefix were refused (no ingest identity)',
    (CN) => {
      expect(identityFromSubject({ CN, O: SITE, OU: 'device' }, SITE)).toEqual({ ok: true, identity: { role: 'device', deviceId: CN }, name: CN });
    },
  );

  it.each([
    ['no certificate', undefined],
    ['another site', { CN: 'dev-a', O: 'ward-4', OU: 'device' }],
    ['two CNs', { CN: ['dev-a', 'dev-b'], O: SITE, OU: 'device' }],
    ['no OU', { CN: 'dev-a', O: SITE }],
    ['a device claiming the ingest identity', { CN: 'medge-edge-ingest', O: SITE, OU: 'device' }],
    ['a device claiming an ingest worker identity', { CN: 'medge-edge-ingest-1', O: SITE, OU: 'device' }],
    ['a device claiming the last ingest worker identity', { CN: 'medge-edge-ingest-64', O: SITE, OU: 'device' }],
    ['an edge certificate for no worker', { CN: 'medge-edge-ingest-65', O: SITE, OU: 'edge' }],
    ['an edge certificate for worker 0', { CN: 'medge-edge-ingest-0', O: SITE, OU: 'edge' }],
    ['the server certificate', { CN: `medge edge ${SITE}`, O: SITE, OU: 'edge' }],
    ['a CN that is no topic segment', { CN: 'dev/a', O: SITE, OU: 'device' }],
    ['a wildcard CN', { CN: '+', O: SITE, OU: 'device' }],
    ['an unknown role', { CN: 'dev-a', O: SITE, OU: 'admin' }],
  ])('refuses %s', (_what, subject) => {
    expect(identityFromSubject(subject, SITE).ok).toBe(false);
  });
});

describe('publishProblem', () => {
  it.each([
    [A, `medge/v1/${SITE}/dev-a/up/reading`, false, true],
    [A, `medge/v1/${SITE}/dev-a/up/chunk`, false, true],
    [A, `medge/v1/${SITE}/dev-a/up/reading`, true, false], // retained
    [A, `medge/v1/${SITE}/dev-b/up/reading`, false, false],
    [A, `medge/v1/${SITE}/dev-a/down/ack`, false, false],
    [A, `medge/v1/${SITE}/dev-b/down/ack`, false, false],
    [A, `medge/v1/ward-4/dev-a/up/reading`, false, false],
    [A, `medge/v1/${SITE}/dev-a/up/reading/more`, false, false],
    [A, `medge/v1/${SITE}/dev-a/up/`, false, false],
    [A, `medge/v2/${SITE}/dev-a/up/reading`, false, false],
    [A, '$SYS/broker/x', false, false],
    [INGEST, `medge/v1/${SITE}/dev-a/down/ack`, false, true],
    [INGEST, `medge/v1/${SITE}/dev-a/up/reading`, false, false],
    [INGEST, `medge/v1/ward-4/dev-a/down/ack`, false, false],
  ] as const)('%j -> %s (retain %s): allowed %s', (identity, topic, retain, allowed) => {
    expect(publishProblem(identity, SITE, topic, retain) === undefined).toBe(allowed);
  });
});

describe('subscribeProblem', () => {
  it.each([
    [A, `medge/v1/${SITE}/dev-a/down/#`, true],
    [A, `medge/v1/${SITE}/dev-a/down/+`, true],
    [A, `medge/v1/${SITE}/dev-a/down/ack`, true],
    [A, `medge/v1/${SITE}/dev-b/down/#`, false],
    [A, `medge/v1/${SITE}/+/down/#`, false],
    [A, `medge/v1/${SITE}/dev-a/up/+`, false],
    [A, `medge/v1/${SITE}/dev-a/#`, false],
    [A, `medge/v1/${SITE}/#`, false],
    [A, '#', false],
    [A, '$SYS/#', false],
    [A, `$share/g/medge/v1/${SITE}/dev-a/down/#`, false],
    [INGEST, siteUpWildcard(SITE), true],
    [INGEST, `medge/v1/${SITE}/+/up/#`, true],
    [INGEST, `medge/v1/${SITE}/dev-a/up/reading`, true],
    [INGEST, 'medge/v1/+/+/up/+', false],
    [INGEST, `medge/v1/${SITE}/+/down/#`, false],
    [INGEST, '#', false],
    [WORKER_2, siteUpWildcard(SITE), true],
    [WORKER_2, `medge/v1/${SITE}/+/down/#`, false],
  ] as const)('%j -> %s: allowed %s', (identity, filter, allowed) => {
    expect(subscribeProblem(identity, SITE, filter) === undefined).toBe(allowed);
  });
});

describe('the same policy for Mosquitto', () => {
  it('states per-device patterns and the ingest user in the ACL file', () => {
    expect(mosquittoAclText(SITE).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      `pattern write medge/v1/${SITE}/%u/up/#`,
      `pattern read medge/v1/${SITE}/%u/down/#`,
      'user medge-edge-ingest',
      `topic read medge/v1/${SITE}/+/up/#`,
      `topic write medge/v1/${SITE}/+/down/#`,
    ]);
  });

  it('gives each ingest worker the ingest rights under its own user, and the dynamic security grant with dynsec', () => {
    const lines = mosquittoAclText(SITE, true, [1, 2]).split('\n').filter((l) => l && !l.startsWith('#'));
    const rights = [`topic read medge/v1/${SITE}/+/up/#`, `topic write medge/v1/${SITE}/+/down/#`, 'topic readwrite $CONTROL/dynamic-security/#'];
    expect(lines).toEqual([
      `pattern write medge/v1/${SITE}/%u/up/#`,
      `pattern read medge/v1/${SITE}/%u/down/#`,
      'user medge-edge-ingest',
      ...rights,
      'user medge-edge-ingest-1',
      ...rights,
      'user medge-edge-ingest-2',
      ...rights,
    ]);
  });

  it('requires certificates and takes the CN as the username on a TLS-only listener', () => {
    const text = mosquittoConfigText({ site: SITE, port: 8883, cafile: '/c/ca', certfile: '/c/crt', keyfile: '/c/key', aclFile: '/c/acl' });
    const lines = text.split('\n');
    for (const line of ['allow_anonymous false', 'listener 8883', 'cafile /c/ca', 'certfile /c/crt', 'keyfile /c/key', 'require_certificate true', 'use_identity_as_username true', 'acl_file /c/acl', 'set_tcp_nodelay true', 'persistence false']) {
      expect(lines, line).toContain(line);
    }
    expect(lines.filter((l) => l.startsWith('listener'))).toHaveLength(1);
    const persistent = mosquittoConfigText({ site: SITE, port: 1, host: '127.0.0.1', cafile: 'a', certfile: 'b', keyfile: 'c', aclFile: 'd', persistenceDir: '/var/lib/m' });
    expect(persistent).toContain('listener 1 127.0.0.1\n');
    expect(persistent).toContain('persistence_location /var/lib/m/\n');
  });
});
