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
export { FhirSearchIndex } from './search-index.js';
export * from './mapping.js';
export { type FhirValidationResult, fhirSchemaPath, validateFhir } from './validate.js';
