/**
 * Worker-thread entry of the FHIR API (`http.ts` starts it): keeps its own read-only connection to the
 * edge store (WAL: it reads while the ingest writes) and the search index of it (`search-index.ts`: kept in
 * `edge-fhir-index.sqlite` beside the store, so a new worker or a restarted edge opens it instead of reading
 * the whole store again). Before each request the index takes in what the store gained since its watermark
 * (nothing to do when the store is unchanged: `PRAGMA data_version`), then answers, and the JSON text is
 * posted back. The HTTP side has already answered what needs no store (metadata, unknown paths, methods
 * other than GET), so the worker does not check those again. A page that names a row the store no longer
 * holds, or an index found damaged, makes the index be rebuilt and the request answered again, once.
 *
 * Protocol: in `{ id, url }`, out `{ id, status, body }` and `{ event }` (an index rebuild, for the log);
 * `workerData: { dataDir, export }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openReadOnlyDatabase } from '../../device-sdk/store/sqlite-outbox-store.js';
import { edgeDatabasePath } from '../edge-store.js';
import type { ExportOptions } from './export.js';
import { type FhirAnswer, outcome } from './query.js';
import { FhirIndexError, type FhirIndexEvent, FhirSearchIndex, fhirIndexPath, isCorruptionError } from './search-index.js';

export interface QueryRequest {
  id: number;
  url: string;
}

export interface QueryReply extends FhirAnswer {
  id: number;
}

/** Something the worker reports for the log (not an answer). */
export interface QueryEvent {
  event: FhirIndexEvent;
}

const { dataDir, export: exportOptions } = workerData as { dataDir: string; export?: ExportOptions };
let db: Database.Database | undefined;
let index: FhirSearchIndex | undefined;

function searchIndex(): FhirSearchIndex {
  db ??= openReadOnlyDatabase(edgeDatabasePath(dataDir), 'edge store', `start one with: medge edge --data ${dataDir}`);
  if (index === undefined) index = new FhirSearchIndex(db, exportOptions, { path: fhirIndexPath(dataDir), onEvent: (event) => parentPort?.postMessage({ event } satisfies QueryEvent) });
  else index.refresh();
  return index;
}

/** Whether the index (not the store) is damaged: SQLite's own check of the index file. */
const indexDamaged = (error: unknown): boolean => index !== undefined && isCorruptionError(error) && !index.healthy();

function answer(url: URL): FhirAnswer {
  try {
    return searchIndex().answer(url);
  } catch (error) {
    if (index !== undefined && (error instanceof FhirIndexError || indexDamaged(error))) {
      index.rebuild(error instanceof FhirIndexError ? error.reason : 'corrupt', (error as Error).message);
      return index.answer(url);
    }
    throw error;
  }
}

parentPort?.on('message', ({ id, url }: QueryRequest) => {
  let reply: FhirAnswer;
  try {
    reply = answer(new URL(url));
  } catch (error) {
    reply = { status: 500, body: JSON.stringify(outcome('error', 'exception', (error as Error).message)) };
  }
  parentPort?.postMessage({ id, ...reply } satisfies QueryReply);
});
