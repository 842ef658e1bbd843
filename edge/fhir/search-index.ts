/**
 * The FHIR API's searches in SQL. Built once per store version by the query worker (`query-worker.ts`):
 * one pass over the store (`scanExport`) writes, for every Observation, the fields a search looks at
 * (id, subject, effective instants, codings) and the locator of its record into a private SQLite database
 * (a temporary file, not the edge store: the worker's connection to that is read-only), indexed by id,
 * subject and date; codings are stored once per distinct set. A reading's fields are taken from the
 * decoded record without mapping it to FHIR (`readingSearchFields`). A search is then a COUNT and a page (`ORDER BY ord LIMIT/OFFSET`, `ord` being the
 * Observation's place in the export) in SQL, and only the rows of the page are read from the store and
 * mapped to FHIR again (`observationReader`); a read by id is an index lookup and one row. Devices,
 * Patients and DiagnosticReports (one per device or session) stay in memory and are searched as before.
 *
 * The answers are those `answerFromResources` gives on the whole export (same matches, order, `total`,
 * links): `test/fhir/search-index.test.ts` compares them on a real store.
 */
import Database from 'better-sqlite3';
import { type ExportOptions, observationReader, type RecordLocator, scanExport } from './export.js';
import type { Resource } from './mapping.js';
import {
  codeTokens,
  dateError,
  dateParam,
  type FhirAnswer,
  PAGING_PARAMETERS,
  patientReference,
  readAnswer,
  resourcePath,
  search,
  searchAnswer,
  unsupportedParameterError,
} from './query.js';

/** A WHERE clause over `fhir_observation` and its arguments. */
interface Where {
  sql: string;
  args: (string | number)[];
}

/** SQL of a `date` condition: the same comparisons as `matchesDate` on (eff_lo, eff_hi). */
function dateWhere(value: string): Where | undefined {
  const { prefix, range } = dateParam(value);
  if (!range) return undefined;
  const [lo, hi] = range;
  switch (prefix) {
    case 'eq':
      return { sql: 'eff_lo >= ? AND eff_hi < ?', args: [lo, hi] };
    case 'ne':
      return { sql: 'NOT coalesce(eff_lo >= ? AND eff_hi < ?, 0)', args: [lo, hi] };
    case 'gt':
      return { sql: 'eff_hi >= ?', args: [hi] };
    case 'ge':
      return { sql: 'eff_hi >= ?', args: [lo] };
    case 'lt':
      return { sql: 'eff_lo < ?', args: [lo] };
    case 'le':
      return { sql: 'eff_lo < ?', args: [hi] };
  }
}

export class FhirSearchIndex {
  private readonly index: Database.Database;
  private readonly read: (at: RecordLocator) => Resource | undefined;
  /** Devices (and models), Patients and DiagnosticReports, in export order. */
  private readonly others: Resource[];
  private readonly locatorById: Database.Statement;
  /** Observations indexed. */
  readonly observations: number;

  /** Scans `store` (an open edge database) once and indexes its Observations. */
  constructor(store: Database.Database, options: ExportOptions = {}) {
    this.index = new Database(''); // a private temporary database: on disk when it outgrows its cache
    this.index.pragma('journal_mode = OFF');
    this.index.pragma('synchronous = OFF');
    // Codings are stored once per distinct set (a store of CGM readings has one): `code_set` of an Observation.
    this.index.exec(`CREATE TABLE fhir_observation (ord INTEGER PRIMARY KEY, id TEXT NOT NULL, subject TEXT, eff_lo INTEGER, eff_hi INTEGER, code_set INTEGER NOT NULL, source TEXT NOT NULL, row_id INTEGER NOT NULL);
      CREATE TABLE fhir_code_set (code_set INTEGER NOT NULL, system TEXT, code TEXT NOT NULL);`);
    const addObservation = this.index.prepare('INSERT INTO fhir_observation VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const addCode = this.index.prepare('INSERT INTO fhir_code_set VALUES (?, ?, ?)');
    const codeSets = new Map<string, number>();
    const codeSetOf = (codings: { system?: string; code?: string }[]): number => {
      const key = JSON.stringify(codings.map((c) => [c.system, c.code]));
      let id = codeSets.get(key);
      if (id === undefined) {
        id = codeSets.size;
        codeSets.set(key, id);
        for (const c of codings) if (typeof c.code === 'string') addCode.run(id, c.system ?? null, c.code);
      }
      return id;
    };
    // NaN (an unparsable instant) is stored as NULL: it fails every comparison, as it does in matchesDate.
    const instant = (t: number | undefined) => (t === undefined || Number.isNaN(t) ? null : t);
    let ord = 0;
    this.index.exec('BEGIN');
    const frame = scanExport(store, options, (obs) => {
      const { id, subject, effective, codings } = obs.searchFields();
      addObservation.run(ord, id, subject ?? null, instant(effective?.[0]), instant(effective?.[1]), codeSetOf(codings), obs.at.table, obs.at.rowId);
      ord += 1;
    });
    this.index.exec(`CREATE INDEX fhir_observation_id ON fhir_observation (id);
      CREATE INDEX fhir_observation_subject ON fhir_observation (subject, ord);
      CREATE INDEX fhir_observation_date ON fhir_observation (eff_lo, eff_hi);
      CREATE INDEX fhir_code_set_code ON fhir_code_set (code, system);
      COMMIT;
      ANALYZE;`);
    this.observations = ord;
    this.others = [...frame.devices, ...frame.patients, ...frame.reports];
    this.read = observationReader(store);
    this.locatorById = this.index.prepare('SELECT source AS "table", row_id AS rowId FROM fhir_observation WHERE id = ? ORDER BY ord LIMIT 1');
  }

  /** Frees the index (its temporary file goes with it). */
  close(): void {
    this.index.close();
  }

  /** The answer to `GET url`, a read or search-type the HTTP side let through (`answerWithoutResources`). */
  answer(url: URL): FhirAnswer {
    const { type, id } = resourcePath(url);
    if (type !== 'Observation') {
      if (id !== undefined) return readAnswer(type, id, this.others.find((r) => r.resourceType === type && r.id === id));
      const matches = search(this.others, type, url.searchParams);
      return searchAnswer(url, 'error' in matches ? matches : { total: matches.length, page: (offset, size) => matches.slice(offset, offset + size) });
    }
    if (id !== undefined) {
      const at = this.locatorById.get(id) as RecordLocator | undefined;
      return readAnswer(type, id, at === undefined ? undefined : this.read(at));
    }
    const where = this.where(url.searchParams);
    if ('error' in where) return searchAnswer(url, where);
    const total = (this.index.prepare(`SELECT count(*) AS n FROM fhir_observation WHERE ${where.sql}`).get(...where.args) as { n: number }).n;
    const page = (offset: number, size: number): Resource[] =>
      (this.index.prepare(`SELECT source AS "table", row_id AS rowId FROM fhir_observation WHERE ${where.sql} ORDER BY ord LIMIT ? OFFSET ?`).all(...where.args, size, offset) as RecordLocator[]).map((at) => {
        const found = this.read(at);
        if (found === undefined) throw new Error(`the store no longer holds the record of an indexed Observation (${at.table} ${at.rowId})`);
        return found;
      });
    return searchAnswer(url, { total, page });
  }

  /** The search parameters as one WHERE clause (AND of each), or the error `search()` gives for them. */
  where(params: URLSearchParams): Where | { error: string } {
    const parts: Where[] = [];
    for (const [name, value] of params) {
      if (PAGING_PARAMETERS.has(name)) continue;
      if (name === 'patient' || name === 'subject') parts.push({ sql: 'subject = ?', args: [patientReference(value)] });
      else if (name === 'code') {
        const tokens = codeTokens(value);
        const any = tokens.map((t) => (t.system === undefined ? 'code = ?' : '(code = ? AND system = ?)')).join(' OR ');
        parts.push({ sql: `code_set IN (SELECT code_set FROM fhir_code_set WHERE ${any})`, args: tokens.flatMap((t) => (t.system === undefined ? [t.code] : [t.code, t.system])) });
      } else if (name === 'date') {
        const date = dateWhere(value);
        if (!date) return { error: dateError(value) };
        parts.push(date);
      } else if (name === '_id') {
        const ids = value.split(',');
        parts.push({ sql: `id IN (${ids.map(() => '?').join(', ')})`, args: ids });
      } else return { error: unsupportedParameterError(name, 'Observation') };
    }
    return parts.length === 0 ? { sql: '1', args: [] } : { sql: parts.map((p) => `(${p.sql})`).join(' AND '), args: parts.flatMap((p) => p.args) };
  }
}
