/**
 * The FHIR R4 read API's answers, computed from the exported resources: routing, search parameters and
 * paging. Pure (no I/O): the HTTP server runs it in a worker thread (`query-worker.ts`) on the resources
 * that worker exports, so that the broker and ingest thread never builds or serialises an export.
 *
 * Search parameters (FHIR search semantics, the subset a hospital system needs here):
 * - `patient`: `Patient/ID` or `ID`;
 * - `code`: `SYSTEM|CODE`, `|CODE`, or `CODE` (any system); comma = OR;
 * - `date`: with prefix `eq` (default, by precision of the value), `ge`, `gt`, `le`, `lt`; repeatable (AND);
 * - `_count`: page size (default and at most `FHIR_QUERY_DEFAULTS.maxCount`, 1000);
 * - `_offset`: the first match of the page (0-based); `Bundle.link` `next` / `previous` carry it.
 */
import { searchsetBundle } from './export.js';
import type { Resource } from './mapping.js';

const TYPES = ['Observation', 'Device', 'Patient', 'DiagnosticReport'] as const;

export const FHIR_QUERY_DEFAULTS = Object.freeze({
  /** Page size when `_count` is absent, and the largest page served (a larger `_count` is lowered to it). */
  maxCount: 1000,
});

/** What the API answers: a status and the JSON text of a resource (a Bundle, a resource or an OperationOutcome). */
export interface FhirAnswer {
  status: number;
  body: string;
}

export function outcome(severity: 'error' | 'information', code: string, text: string): Resource {
  return { resourceType: 'OperationOutcome', id: `oo-${Date.now()}`, issue: [{ severity, code, diagnostics: text }] };
}

/** The instant range a FHIR date(Time) value covers, by its precision. */
export function dateRange(value: string): [number, number] | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, , tz] = m;
  if (h === undefined) {
    const start = Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1);
    const end = d ? start + 86_400_000 : mo ? Date.UTC(Number(y), Number(mo), 1) : Date.UTC(Number(y) + 1, 0, 1);
    return [start, end];
  }
  const start = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${tz ?? 'Z'}`);
  if (Number.isNaN(start)) return undefined;
  return [start, start + (s === undefined ? 60_000 : 1000)];
}

function effectiveRange(r: Resource): [number, number] | undefined {
  const dt = r.effectiveDateTime as string | undefined;
  if (dt) {
    const t = Date.parse(dt);
    return [t, t];
  }
  const p = r.effectivePeriod as { start?: string; end?: string } | undefined;
  if (p?.start) return [Date.parse(p.start), Date.parse(p.end ?? p.start)];
  return undefined;
}

export function matchesDate(r: Resource, param: string): boolean {
  const m = /^(eq|ne|gt|lt|ge|le)?(.+)$/.exec(param);
  const prefix = m?.[1] ?? 'eq';
  const range = dateRange(m?.[2] ?? '');
  const eff = effectiveRange(r);
  if (!range || !eff) return false;
  const [lo, hi] = range;
  const [s, e] = eff;
  switch (prefix) {
    case 'eq':
      return s >= lo && e < hi;
    case 'ne':
      return !(s >= lo && e < hi);
    case 'gt':
      return e >= hi;
    case 'ge':
      return e >= lo;
    case 'lt':
      return s < lo;
    case 'le':
      return s < hi;
    default:
      return false;
  }
}

export function matchesCode(r: Resource, param: string): boolean {
  const codings = ((r.code as { coding?: { system?: string; code?: string }[] } | undefined)?.coding ?? []).concat(
    ((r.component as { code?: { coding?: { system?: string; code?: string }[] } }[] | undefined) ?? []).flatMap((c) => c.code?.coding ?? []),
  );
  return param.split(',').some((token) => {
    const bar = token.indexOf('|');
    const system = bar >= 0 ? token.slice(0, bar) : undefined;
    const code = bar >= 0 ? token.slice(bar + 1) : token;
    return codings.some((c) => c.code === code && (system === undefined || system === '' ? true : c.system === system));
  });
}

export function matchesPatient(r: Resource, param: string): boolean {
  const id = param.startsWith('Patient/') ? param.slice('Patient/'.length) : param;
  const subject = (r.subject as { reference?: string } | undefined)?.reference;
  return subject === `Patient/${id}`;
}

/** Every match of the supported search parameters (paging is `page()`'s); an unsupported one is an error (not silently ignored). */
export function search(resources: readonly Resource[], type: string, params: URLSearchParams): Resource[] | { error: string } {
  let out = resources.filter((r) => r.resourceType === type);
  for (const [name, value] of params) {
    if (name === '_count' || name === '_offset' || name === '_format') continue;
    if (name === 'patient' || name === 'subject') out = out.filter((r) => matchesPatient(r, value));
    else if (name === 'code') out = out.filter((r) => matchesCode(r, value));
    else if (name === 'date') {
      if (!dateRange(value.replace(/^(eq|ne|gt|lt|ge|le)/, ''))) return { error: `date=${value} is not a FHIR date or dateTime (e.g. ge2026-01-31 or 2026-01-31T10:00:00Z)` };
      out = out.filter((r) => matchesDate(r, value));
    } else if (name === '_id') out = out.filter((r) => value.split(',').includes(r.id));
    else return { error: `search parameter ${name} is not supported on ${type}; supported: patient, code, date, _id, _count, _offset` };
  }
  return out;
}

export function capabilityStatement(): Resource {
  return {
    resourceType: 'CapabilityStatement',
    id: 'medge-edge',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'medge edge' },
    fhirVersion: '4.0.0',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        resource: TYPES.map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          searchParam: type === 'Observation' ? ['patient', 'code', 'date'].map((name) => ({ name, type: name === 'date' ? 'date' : name === 'code' ? 'token' : 'reference' })) : [],
        })),
      },
    ],
  };
}


/** The page `_count` / `_offset` select, and the links to the pages either side (FHIR R4 search, 3.1.1.6 paging). */
export function page(matches: readonly Resource[], url: URL, maxCount = FHIR_QUERY_DEFAULTS.maxCount): { entries: Resource[]; next?: string; previous?: string } | { error: string } {
  const countText = url.searchParams.get('_count');
  const offsetText = url.searchParams.get('_offset');
  const count = countText === null ? maxCount : Number(countText);
  const offset = offsetText === null ? 0 : Number(offsetText);
  if (!Number.isInteger(count) || count < 0) return { error: `_count=${countText} is not a whole number >= 0 (e.g. _count=100)` };
  if (!Number.isInteger(offset) || offset < 0) return { error: `_offset=${offsetText} is not a whole number >= 0 (e.g. _offset=1000)` };
  const size = Math.min(count, maxCount);
  const at = (from: number) => {
    const u = new URL(url);
    u.searchParams.set('_count', String(size));
    u.searchParams.set('_offset', String(from));
    return u.toString();
  };
  const entries = matches.slice(offset, offset + size);
  return {
    entries,
    ...(size > 0 && offset + size < matches.length ? { next: at(offset + size) } : {}),
    ...(size > 0 && offset > 0 ? { previous: at(Math.max(0, offset - size)) } : {}),
  };
}

const json = (status: number, resource: Resource): FhirAnswer => ({ status, body: JSON.stringify(resource) });

/** Whether `pathname` is answered without the resources (metadata, unknown paths): the HTTP server answers those itself. */
export function answerWithoutResources(method: string, url: URL): FhirAnswer | undefined {
  if (method !== 'GET') return json(405, outcome('error', 'not-supported', `${method} is not supported; this edge API is read-only`));
  const parts = url.pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  if (parts[0] !== 'fhir') return json(404, outcome('error', 'not-found', `no such path ${url.pathname}; the FHIR API is under /fhir`));
  if (parts[1] === 'metadata' && parts.length === 2) return json(200, capabilityStatement());
  const type = parts[1] ?? '';
  if (!(TYPES as readonly string[]).includes(type)) return json(404, outcome('error', 'not-supported', `resource type ${type || '(none)'} is not served; served: ${TYPES.join(', ')}`));
  if (parts.length !== 2 && parts.length !== 3) return json(404, outcome('error', 'not-found', `no such path ${url.pathname}`));
  return undefined;
}

/** The answer to `GET url` (a read by id or a search-type) given the exported resources. */
export function answerFromResources(url: URL, resources: readonly Resource[]): FhirAnswer {
  const early = answerWithoutResources('GET', url);
  if (early) return early;
  const [, type = '', id] = url.pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  if (id !== undefined) {
    const found = resources.find((r) => r.resourceType === type && r.id === id);
    return found ? json(200, found) : json(404, outcome('error', 'not-found', `${type}/${id} is not known`));
  }
  const matches = search(resources, type, url.searchParams);
  if ('error' in matches) return json(400, outcome('error', 'invalid', matches.error));
  const paged = page(matches, url);
  if ('error' in paged) return json(400, outcome('error', 'invalid', paged.error));
  return json(200, searchsetBundle(paged.entries, url.toString(), { total: matches.length, ...(paged.next ? { next: paged.next } : {}), ...(paged.previous ? { previous: paged.previous } : {}) }));
}
