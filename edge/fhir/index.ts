export * from './codes.js';
export { type ExportOptions, exportEdgeResources, exportResources, searchsetBundle, transactionBundle, uuidUrn, validateTransactionBundle, writeTransactionBundle } from './export.js';
export { dateRange, FhirServer, type FhirServerOptions, matchesCode, matchesDate, matchesPatient, search } from './http.js';
export * from './mapping.js';
export { type FhirValidationResult, fhirSchemaPath, validateFhir } from './validate.js';
