/**
 * Worker-thread entry of the FHIR API (`http.ts` starts it): keeps its own read-only connection to the
 * edge store (WAL: it reads while the ingest writes), exports the resources, answers each request with
 * `answerFromResources` and posts back the JSON text. The export is kept while the store is unchanged
 * (`PRAGMA data_version` of this connection moves on every commit of another connection), and after a
 * change for `staleFactor` times as long as it took to build: a store of 5 ms of export is answered
 * fresh, one of 15 s may be answered up to 30 s behind the ingest, rather than rebuilt on every request
 * while devices sync (which would answer no request at all). The server ends an idle worker, which frees it.
 *
 * Protocol: in `{ id, url }`, out `{ id, status, body }`; `workerData: { dataDir, export, staleFactor }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openReadOnlyDatabase } from '../../device-sdk/store/sqlite-outbox-store.js';
import { edgeDatabasePath } from '../edge-store.js';
import { type ExportOptions, exportResources } from './export.js';
import type { Resource } from './mapping.js';
import { answerFromResources, type FhirAnswer, outcome } from './query.js';

export interface QueryRequest {
  id: number;
  url: string;
}

export interface QueryReply extends FhirAnswer {
  id: number;
}

const { dataDir, export: exportOptions, staleFactor } = workerData as { dataDir: string; export?: ExportOptions; staleFactor: number };
let db: Database.Database | undefined;
let cached: { version: number; builtAt: number; buildMs: number; resources: Resource[] } | undefined;

function resources(): Resource[] {
  db ??= openReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', `start one with: medge edge --data ${dataDir}`);
  const version = db.pragma('data_version', { simple: true }) as number;
  const now = performance.now();
  if (cached === undefined || (cached.version !== version && now - cached.builtAt >= staleFactor * cached.buildMs)) {
    cached = undefined; // the old export is garbage before the new one is built
    const built = exportResources(db, exportOptions);
    cached = { version, builtAt: performance.now(), buildMs: performance.now() - now, resources: built };
  }
  return cached.resources;
}

parentPort?.on('message', ({ id, url }: QueryRequest) => {
  let answer: FhirAnswer;
  try {
    answer = answerFromResources(new URL(url), resources());
  } catch (error) {
    answer = { status: 500, body: JSON.stringify(outcome('error', 'exception', (error as Error).message)) };
  }
  parentPort?.postMessage({ id, ...answer } satisfies QueryReply);
});
