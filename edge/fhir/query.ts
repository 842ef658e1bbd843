/**
 * The FHIR R4 read API's semantics: routing, search parameters and paging, and the answers computed from
 * exported resources in memory (`answerFromResources`). Pure (no I/O). The API's worker thread
 * (`query-worker.ts`) answers from an SQL index of the store instead (`search-index.ts`), with the parsing,
 * paging and answer shapes of this file; `answerFromResources` is the reference its answers are tested
 * against, and what the Devices, Patients and DiagnosticReports it keeps in memory are searched with.
 *
 * Search parameters (FHIR search semantics, the subset a hospital system needs here):
 * - `patient`: `Patient/ID` or `ID`;
 * - `code`: `SYSTEM|CODE`, `|CODE`, or `CODE` (any system); comma = OR;
 * - `date`: with prefix `eq` (default, by precision of the value), `ge`, `gt`, `le`, `lt`; repeatable (AND);
 * - `_count`: page size (default and at most `FHIR_QUERY_DEFAULTS.maxCount`, 1000);
 * - `_offset`: the first match of the page (0-based); `Bundle.link` `next` / `previous` carry it.
 */
import { searchsetBundle } from './export.js';
import { codingsOf, effectiveRange, type Resource } from './mapping.js';

export { codingsOf, effectiveRange };

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

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le';

/** A `date` search value as its prefix (default `eq`) and the instant range of its value (undefined: not a date). */
export function dateParam(param: string): { prefix: DatePrefix; range: [number, number] | undefined } {
  const m = /^(eq|ne|gt|lt|ge|le)?(.+)$/.exec(param);
  return { prefix: (m?.[1] ?? 'eq') as DatePrefix, range: dateRange(m?.[2] ?? '') };
}

export function matchesDate(r: Resource, param: string): boolean {
  const { prefix, range } = dateParam(param);
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

/** The tokens of a `code` search value (comma = OR): `SYSTEM|CODE`, `|CODE` or `CODE`; system undefined = any system. */
export function codeTokens(param: string): { system: string | undefined; code: string }[] {
  return param.split(',').map((token) => {
    const bar = token.indexOf('|');
    const system = bar >= 0 ? token.slice(0, bar) : undefined;
    return { system: system === '' ? undefined : system, code: bar >= 0 ? token.slice(bar + 1) : token };
  });
}

export function matchesCode(r: Resource, param: string): boolean {
  const codings = codingsOf(r);
  return codeTokens(param).some(({ system, code }) => codings.some((c) => c.code === code && (system === undefined ? true : c.system === system)));
}

/** The subject reference a `patient` (or `subject`) search value asks for. */
export const patientReference = (param: string): string => `Patient/${param.startsWith('Patient/') ? param.slice('Patient/'.length) : param}`;

export function matchesPatient(r: Resource, param: string): boolean {
  return (r.subject as { reference?: string } | undefined)?.reference === patientReference(param);
}

/** The error of a date value search() refuses (and any search must): not a FHIR date or dateTime. */
export const dateError = (value: string): string => `date=${value} is not a FHIR date or dateTime (e.g. ge2026-01-31 or 2026-01-31T10:00:00Z)`;

/** The error of a search parameter that is not supported (never silently ignored). */
export const unsupportedParameterError = (name: string, type: string): string => `search parameter ${name} is not supported on ${type}; supported: patient, code, date, _id, _count, _offset`;

/** Search parameters that select the page or the format, not the matches. */
export const PAGING_PARAMETERS: ReadonlySet<string> = new Set(['_count', '_offset', '_format']);

/** Every match of the supported search parameters (paging is `page()`'s); an unsupported one is an error (not silently ignored). */
export function search(resources: readonly Resource[], type: string, params: URLSearchParams): Resource[] | { error: string } {
  let out = resources.filter((r) => r.resourceType === type);
  for (const [name, value] of params) {
    if (PAGING_PARAMETERS.has(name)) continue;
    if (name === 'patient' || name === 'subject') out = out.filter((r) => matchesPatient(r, value));
    else if (name === 'code') out = out.filter((r) => matchesCode(r, value));
    else if (name === 'date') {
      if (!dateParam(value).range) return { error: dateError(value) };
      out = out.filter((r) => matchesDate(r, value));
    } else if (name === '_id') out = out.filter((r) => value.split(',').includes(r.id));
    else return { error: unsupportedParameterError(name, type) };
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


/** Which matches a page holds (`offset`, at most `size`) and the URLs of the pages either side. */
export interface PageWindow {
  offset: number;
  size: number;
  next?: string;
  previous?: string;
}

/** The page `_count` / `_offset` select among `total` matches, and the links to the pages either side (FHIR R4 search, 3.1.1.6 paging). */
export function pageWindow(total: number, url: URL, maxCount = FHIR_QUERY_DEFAULTS.maxCount): PageWindow | { error: string } {
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
  return {
    offset,
    size,
    ...(size > 0 && offset + size < total ? { next: at(offset + size) } : {}),
    ...(size > 0 && offset > 0 ? { previous: at(Math.max(0, offset - size)) } : {}),
  };
}

/** The page `_count` / `_offset` select, and the links to the pages either side (FHIR R4 search, 3.1.1.6 paging). */
export function page(matches: readonly Resource[], url: URL, maxCount = FHIR_QUERY_DEFAULTS.maxCount): { entries: Resource[]; next?: string; previous?: string } | { error: string } {
  const window = pageWindow(matches.length, url, maxCount);
  if ('error' in window) return window;
  const { offset, size, ...links } = window;
  return { entries: matches.slice(offset, offset + size), ...links };
}

export const json = (status: number, resource: Resource): FhirAnswer => ({ status, body: JSON.stringify(resource) });

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

/** The resource type and id (a read) or no id (a search-type) of a URL `answerWithoutResources` let through. */
export function resourcePath(url: URL): { type: string; id: string | undefined } {
  const [, type = '', id] = url.pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  return { type, id };
}

/** The answer to a read of `type/id`: the resource, or a 404 OperationOutcome. */
export const readAnswer = (type: string, id: string, found: Resource | undefined): FhirAnswer =>
  found ? json(200, found) : json(404, outcome('error', 'not-found', `${type}/${id} is not known`));

/** The answer to a search-type: the searchset Bundle of one page, or a 400 for a bad search or paging parameter. */
export function searchAnswer(url: URL, matches: { total: number; page: (offset: number, size: number) => Resource[] } | { error: string }): FhirAnswer {
  if ('error' in matches) return json(400, outcome('error', 'invalid', matches.error));
  const window = pageWindow(matches.total, url);
  if ('error' in window) return json(400, outcome('error', 'invalid', window.error));
  const { offset, size, ...links } = window;
  return json(200, searchsetBundle(matches.page(offset, size), url.toString(), { total: matches.total, ...links }));
}

/** The answer to `GET url` (a read by id or a search-type) given the exported resources, all in memory (`search-index.ts` answers from SQL). */
export function answerFromResources(url: URL, resources: readonly Resource[]): FhirAnswer {
  const early = answerWithoutResources('GET', url);
  if (early) return early;
  const { type, id } = resourcePath(url);
  if (id !== undefined) return readAnswer(type, id, resources.find((r) => r.resourceType === type && r.id === id));
  const matches = search(resources, type, url.searchParams);
  return searchAnswer(url, 'error' in matches ? matches : { total: matches.length, page: (offset, size) => matches.slice(offset, offset + size) });
}
