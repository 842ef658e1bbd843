/**
 * The edge's FHIR R4 read API (JSON): `GET /fhir/Observation?patient=&code=&date=`, `/fhir/Device`,
 * `/fhir/Patient`, `/fhir/DiagnosticReport`, reads by id (`/fhir/Observation/ID`) and
 * `/fhir/metadata`. Answers are searchset Bundles of the same resources `edge export-fhir` writes,
 * read from the edge store read-only on each request. Errors are OperationOutcomes.
 *
 * Search parameters (FHIR search semantics, the subset a hospital system needs here):
 * - `patient`: `Patient/ID` or `ID`;
 * - `code`: `SYSTEM|CODE`, `|CODE`, or `CODE` (any system); comma = OR;
 * - `date`: with prefix `eq` (default, by precision of the value), `ge`, `gt`, `le`, `lt`; repeatable (AND);
 * - `_count`: page size cap (default 1000).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ExportOptions, exportEdgeResources, searchsetBundle } from './export.js';
import type { Resource } from './mapping.js';
import { listenOn } from '../../device-sdk/listen.js';

const TYPES = ['Observation', 'Device', 'Patient', 'DiagnosticReport'] as const;

export interface FhirServerOptions {
  dataDir: string;
  host?: string;
  port?: number;
  export?: ExportOptions;
}

function outcome(severity: 'error' | 'information', code: string, text: string): Resource {
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

/** Applies the supported search parameters; an unsupported one is an error (not silently ignored). */
export function search(resources: readonly Resource[], type: string, params: URLSearchParams): Resource[] | { error: string } {
  let out = resources.filter((r) => r.resourceType === type);
  for (const [name, value] of params) {
    if (name === '_count' || name === '_format') continue;
    if (name === 'patient' || name === 'subject') out = out.filter((r) => matchesPatient(r, value));
    else if (name === 'code') out = out.filter((r) => matchesCode(r, value));
    else if (name === 'date') {
      if (!dateRange(value.replace(/^(eq|ne|gt|lt|ge|le)/, ''))) return { error: `date=${value} is not a FHIR date or dateTime (e.g. ge2026-01-31 or 2026-01-31T10:00:00Z)` };
      out = out.filter((r) => matchesDate(r, value));
    } else if (name === '_id') out = out.filter((r) => value.split(',').includes(r.id));
    else return { error: `search parameter ${name} is not supported on ${type}; supported: patient, code, date, _id, _count` };
  }
  const count = Number(params.get('_count') ?? 1000);
  return out.slice(0, Number.isFinite(count) && count > 0 ? count : 1000);
}

function capabilityStatement(): Resource {
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

export class FhirServer {
  private readonly options: FhirServerOptions;
  private server: Server | undefined;

  constructor(options: FhirServerOptions) {
    this.options = options;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}/fhir`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    try {
      await listenOn(server, this.options.port ?? 0, this.options.host ?? '127.0.0.1', 'the FHIR API');
    } catch (error) {
      this.server = undefined;
      throw error;
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private send(res: ServerResponse, status: number, body: Resource): void {
    res.writeHead(status, { 'content-type': 'application/fhir+json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
      if (req.method !== 'GET') return this.send(res, 405, outcome('error', 'not-supported', `${req.method} is not supported; this edge API is read-only`));
      const parts = url.pathname.replace(/\/+$/, '').split('/').filter(Boolean);
      if (parts[0] !== 'fhir') return this.send(res, 404, outcome('error', 'not-found', `no such path ${url.pathname}; the FHIR API is under /fhir`));
      if (parts[1] === 'metadata' && parts.length === 2) return this.send(res, 200, capabilityStatement());
      const type = parts[1] ?? '';
      if (!(TYPES as readonly string[]).includes(type)) return this.send(res, 404, outcome('error', 'not-supported', `resource type ${type || '(none)'} is not served; served: ${TYPES.join(', ')}`));
      const resources = exportEdgeResources(this.options.dataDir, this.options.export);
      if (parts.length === 3) {
        const found = resources.find((r) => r.resourceType === type && r.id === parts[2]);
        return found ? this.send(res, 200, found) : this.send(res, 404, outcome('error', 'not-found', `${type}/${parts[2]} is not known`));
      }
      if (parts.length !== 2) return this.send(res, 404, outcome('error', 'not-found', `no such path ${url.pathname}`));
      const result = search(resources, type, url.searchParams);
      if ('error' in result) return this.send(res, 400, outcome('error', 'invalid', result.error));
      return this.send(res, 200, searchsetBundle(result, url.toString()));
    } catch (error) {
      return this.send(res, 500, outcome('error', 'exception', (error as Error).message));
    }
  }
}
