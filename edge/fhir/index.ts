export * from './codes.js';
export {
  type ExportedObservation,
  type ExportFileOptions,
  type ExportFileResult,
  type ExportFrame,
  type ExportOptions,
  exportEdgeResources,
  exportResources,
  observationReader,
  type RecordLocator,
  scanExport,
  searchsetBundle,
  transactionBundle,
  uuidUrn,
  validateTransactionBundle,
  writeEdgeExport,
  writeTransactionBundle,
} from './export.js';
export { DEFAULT_FHIR_SERVER_LIMITS, FhirConfigError, FhirServer, type FhirServerLimits, type FhirServerOptions } from './http.js';
export { answerFromResources, dateRange, FHIR_QUERY_DEFAULTS, matchesCode, matchesDate, matchesPatient, page, pageWindow, search } from './query.js';
export {
  FHIR_INDEX_VERSION,
  FhirIndexError,
  type FhirIndexEvent,
  type FhirIndexRebuildReason,
  type FhirIndexRefresh,
  type FhirIndexSettings,
  FhirSearchIndex,
  fhirIndexPath,
} from './search-index.js';
export * from './mapping.js';
export { type FhirValidationResult, fhirSchemaPath, validateFhir } from './validate.js';
