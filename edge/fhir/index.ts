export * from './codes.js';
export { type ExportOptions, exportEdgeResources, exportResources, searchsetBundle, transactionBundle, uuidUrn, validateTransactionBundle, writeTransactionBundle } from './export.js';
export { DEFAULT_FHIR_SERVER_LIMITS, FhirConfigError, FhirServer, type FhirServerLimits, type FhirServerOptions } from './http.js';
export { answerFromResources, dateRange, FHIR_QUERY_DEFAULTS, matchesCode, matchesDate, matchesPatient, page, search } from './query.js';
export * from './mapping.js';
export { type FhirValidationResult, fhirSchemaPath, validateFhir } from './validate.js';
