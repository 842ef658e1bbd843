/**
 * The edge's FHIR R4 read API (JSON): `GET /fhir/Observation?patient=&code=&date=`, `/fhir/Device`,
 * `/fhir/Patient`, `/fhir/DiagnosticReport`, reads by id (`/fhir/Observation/ID`) and
 * `/fhir/metadata`. Answers are searchset Bundles of the same resources `edge export-fhir` writes,
 * paged (`_count`, `_offset`, `Bundle.link` next/previous; search parameters: `query.ts`). Errors are
 * OperationOutcomes.
 *
 * The edge runs this server on the thread of its broker and ingest, so that thread never builds an
 * export: every read and search goes to one worker thread (`query-worker.ts`) with its own read-only
 * connection to the store, which answers from a search index of the store in SQL (`search-index.ts`),
 * kept in a file beside the store and brought up to date before each request. What the request
 * thread does per request is parsing the URL and writing the answer's text (at most one page).
 * Instead of queueing without end it answers, with `Retry-After`:
 * - 429 when `maxPending` requests are already with the worker;
 * - 503 when the answer is not ready within `answerTimeoutMs` (the worker carries on, so a retry finds
 *   the index built), or when the worker ran out of `maxWorkerHeapMb` or made no progress for
 *   `exportTimeoutMs` (then it is ended, and the next request starts a new one).
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MedgeError } from '../../device-sdk/errors.js';
import { type Logger, silentLogger } from '../../device-sdk/log.js';
import { listenOn } from '../../device-sdk/listen.js';
import type { ExportOptions } from './export.js';
import { answerWithoutResources, type FhirAnswer, outcome } from './query.js';
import type { QueryEvent, QueryReply, QueryRequest } from './query-worker.js';
import type { FhirIndexEvent } from './search-index.js';

export interface FhirServerLimits {
  /** Requests with the worker at once (answered or timed out but not yet computed); one more is a 429. */
  maxPending: number;
  /** A request not answered within this gets a 503 with Retry-After (the worker goes on building). */
  answerTimeoutMs: number;
  /** The worker is ended when it answers nothing for this long while requests wait. */
  exportTimeoutMs: number;
  /** The worker (and the index it keeps) is ended after this long without requests. */
  idleMs: number;
  /** The worker's JavaScript heap limit: an index beyond it ends the worker (503), not the edge. */
  maxWorkerHeapMb: number;
}

/**
 * Measured with bench/fhir-api.js on a store of 400,000 CGM readings (2 cores): building the search index
 * takes about 4 s (6-10 s while a device syncs), once: it is kept beside the store, and a new worker opens it
 * (`search-index.ts`); then a page 20-70 ms and a read 1-2 ms. 10 s keeps a client from hanging on the first
 * build; 4 GB is far above what the worker holds (the edge process peaked at 380 MB;
 * the whole export it kept before this index peaked at 1.7-2.5 GB).
 */
export const DEFAULT_FHIR_SERVER_LIMITS: Readonly<FhirServerLimits> = Object.freeze({
  maxPending: 8,
  answerTimeoutMs: 10_000,
  exportTimeoutMs: 300_000,
  idleMs: 60_000,
  maxWorkerHeapMb: 4096,
});

export interface FhirServerOptions {
  dataDir: string;
  host?: string;
  port?: number;
  export?: ExportOptions;
  limits?: Partial<FhirServerLimits>;
  /** Where the worker's index rebuilds are logged (one line each, with the reason); default: nowhere. */
  logger?: Logger;
}

/** A FHIR server option is out of range. */
export class FhirConfigError extends MedgeError {
  readonly field: string;
  readonly value: unknown;
  constructor(field: string, value: unknown, fix: string) {
    super('fhir-config', `FHIR server option ${field} = ${String(value)} is invalid: ${fix}`);
    this.field = field;
    this.value = value;
  }
}

/** The worker entry: beside this file when built, else the built copy (tests run the TypeScript sources). */
export function queryWorkerScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'query-worker.js');
  const built = resolve(dirname(here), '../../dist/edge/fhir/query-worker.js');
  if (!existsSync(built)) throw new FhirConfigError('worker', built, 'the FHIR query worker is not built: run npm run build');
  return built;
}

interface Pending {
  /** Undefined once the client got its answer (a 503 at answerTimeoutMs) while the worker still computes. */
  res: ServerResponse | undefined;
  timer: NodeJS.Timeout;
}

export class FhirServer {
  private readonly options: FhirServerOptions;
  private readonly limits: FhirServerLimits;
  private server: Server | undefined;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Armed while requests wait: ends a worker that answers nothing for exportTimeoutMs. */
  private stallTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(options: FhirServerOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_FHIR_SERVER_LIMITS, ...options.limits };
    for (const [field, value] of Object.entries(this.limits)) {
      if (!Number.isInteger(value) || value < 1) throw new FhirConfigError(`limits.${field}`, value, `use a whole number >= 1 (default ${DEFAULT_FHIR_SERVER_LIMITS[field as keyof FhirServerLimits]})`);
    }
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}/fhir`;
  }

  async start(): Promise<void> {
    queryWorkerScript(); // fails here, not at the first request, when the worker is not built
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
    this.endWorker('the FHIR API is stopping');
    clearTimeout(this.idleTimer);
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private send(res: ServerResponse, answer: FhirAnswer, retryAfterS?: number): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(answer.status, {
      'content-type': 'application/fhir+json; charset=utf-8',
      'cache-control': 'no-store',
      ...(retryAfterS === undefined ? {} : { 'retry-after': String(retryAfterS) }),
    });
    res.end(answer.body);
  }

  private unavailable(res: ServerResponse, status: 429 | 503, text: string, retryAfterS: number): void {
    this.send(res, { status, body: JSON.stringify(outcome('error', status === 429 ? 'throttled' : 'transient', text)) }, retryAfterS);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    } catch (error) {
      return this.send(res, { status: 400, body: JSON.stringify(outcome('error', 'invalid', (error as Error).message)) });
    }
    const early = answerWithoutResources(req.method ?? 'GET', url);
    if (early) return this.send(res, early);
    const retryS = Math.ceil(this.limits.answerTimeoutMs / 1000);
    if (this.pending.size >= this.limits.maxPending) {
      return this.unavailable(res, 429, `${this.pending.size} FHIR requests are being answered (at most ${this.limits.maxPending}); retry later`, retryS);
    }
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch (error) {
      return this.unavailable(res, 503, `the FHIR query worker did not start: ${(error as Error).message}`, retryS);
    }
    const id = this.nextId++;
    const timer = setTimeout(() => {
      const p = this.pending.get(id);
      if (p?.res) this.unavailable(p.res, 503, `the answer was not ready within ${this.limits.answerTimeoutMs} ms (the search index of the store is being built); retry`, retryS);
      if (p) p.res = undefined;
    }, this.limits.answerTimeoutMs);
    this.pending.set(id, { res, timer });
    clearTimeout(this.idleTimer);
    if (this.pending.size === 1) this.armStallTimer();
    worker.postMessage({ id, url: url.toString() } satisfies QueryRequest);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(queryWorkerScript(), {
      workerData: { dataDir: this.options.dataDir, export: this.options.export },
      resourceLimits: { maxOldGenerationSizeMb: this.limits.maxWorkerHeapMb },
    });
    worker.unref();
    worker.on('message', (message: QueryReply | QueryEvent) => {
      if ('event' in message) this.onEvent(message.event);
      else this.onReply(message);
    });
    worker.on('error', (error) => {
      if (this.worker === worker) this.endWorker(`the FHIR query worker failed: ${error.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.endWorker(`the FHIR query worker exited (code ${code})`);
    });
    this.worker = worker;
    return worker;
  }

  /** A rebuild of the index from the whole store: logged once, with why (never a record's content). */
  private onEvent(event: FhirIndexEvent): void {
    const logger = (this.options.logger ?? silentLogger).child({ component: 'fhir-index' });
    const fields = { reason: event.reason, ...(event.detail === undefined ? {} : { detail: event.detail }) };
    if (event.reason === 'missing' || event.reason === 'version') logger.info(fields, 'FHIR search index built from the whole store');
    else logger.warn(fields, 'FHIR search index rebuilt from the whole store');
  }

  private onReply({ id, ...answer }: QueryReply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.res) this.send(p.res, answer);
    clearTimeout(this.stallTimer);
    if (this.pending.size > 0) this.armStallTimer();
    else {
      this.idleTimer = setTimeout(() => this.endWorker('idle'), this.limits.idleMs);
      this.idleTimer.unref();
    }
  }

  private armStallTimer(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => this.endWorker(`the FHIR query worker answered nothing for ${this.limits.exportTimeoutMs} ms and was stopped`), this.limits.exportTimeoutMs);
  }

  /** Ends the worker (if any) and answers whatever waits on it with a 503. */
  private endWorker(reason: string): void {
    clearTimeout(this.stallTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (worker) void worker.terminate();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      if (p.res) this.unavailable(p.res, 503, reason, Math.ceil(this.limits.answerTimeoutMs / 1000));
    }
    this.pending.clear();
  }
}
