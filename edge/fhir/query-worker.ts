/**
 * Worker-thread entry of the FHIR API (`http.ts` starts it): keeps its own read-only connection to the
 * edge store (WAL: it reads while the ingest writes) and a search index of it (`search-index.ts`: the
 * Observations' search fields in SQL, the few other resources in memory), answers each request from that
 * index and posts back the JSON text. The HTTP side has already answered what needs no store (metadata,
 * unknown paths, methods other than GET), so the worker does not check those again. The index is kept
 * while the store is unchanged (`PRAGMA data_version` of this connection moves on every commit of another
 * connection), and after a change for `staleFactor` times as long as it took to build, rather than rebuilt
 * on every request while devices sync. Pages are read from the store at request time, so the records of a
 * page are always current; only which records match may lag. The server ends an idle worker, which frees it.
 *
 * Protocol: in `{ id, url }`, out `{ id, status, body }`; `workerData: { dataDir, export, staleFactor }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openReadOnlyDatabase } from '../../device-sdk/store/sqlite-outbox-store.js';
import { edgeDatabasePath } from '../edge-store.js';
import type { ExportOptions } from './export.js';
import { type FhirAnswer, outcome } from './query.js';
import { FhirSearchIndex } from './search-index.js';

export interface QueryRequest {
  id: number;
  url: string;
}

export interface QueryReply extends FhirAnswer {
  id: number;
}

const { dataDir, export: exportOptions, staleFactor } = workerData as { dataDir: string; export?: ExportOptions; staleFactor: number };
let db: Database.Database | undefined;
let cached: { version: number; builtAt: number; buildMs: number; index: FhirSearchIndex } | undefined;

function searchIndex(): FhirSearchIndex {
  db ??= openReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', `start one with: medge edge --data ${dataDir}`);
  const version = db.pragma('data_version', { simple: true }) as number;
  const now = performance.now();
  if (cached === undefined || (cached.version !== version && now - cached.builtAt >= staleFactor * cached.buildMs)) {
    cached?.index.close(); // the old index is gone before the new one is built
    cached = undefined;
    const index = new FhirSearchIndex(db, exportOptions);
    cached = { version, builtAt: performance.now(), buildMs: performance.now() - now, index };
  }
  return cached.index;
}

parentPort?.on('message', ({ id, url }: QueryRequest) => {
  let answer: FhirAnswer;
  try {
    answer = searchIndex().answer(new URL(url));
  } catch (error) {
    answer = { status: 500, body: JSON.stringify(outcome('error', 'exception', (error as Error).message)) };
  }
  parentPort?.postMessage({ id, ...answer } satisfies QueryReply);
});
