/**
 * The driver registry: one explicit list of the drivers medge ships, looked up by name.
 * Add a driver by appending its descriptor to `BUILTIN_DRIVERS` in `drivers.ts`.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigError } from '../errors.js';
import { BUILTIN_DRIVERS } from './drivers.js';
import type { DriverDeps, DriverDescriptor, SensorDriver } from './types.js';

const ajv = new Ajv({ allErrors: true, useDefaults: false });
const validators = new Map<string, ValidateFunction>();

/** Descriptors of any option type (`create` is a method, so its parameter is compared bivariantly). */
type AnyDescriptor = DriverDescriptor<object>;

function byName(): Map<string, AnyDescriptor> {
  return new Map(BUILTIN_DRIVERS.map((d) => [d.name, d]));
}

export function listDrivers(): readonly AnyDescriptor[] {
  return BUILTIN_DRIVERS;
}

/** The descriptor of `name`, or a `ConfigError` listing the known drivers. */
export function getDriver(name: string, field = 'driver'): AnyDescriptor {
  const d = byName().get(name);
  if (!d) {
    const known = listDrivers().map((x) => x.name);
    throw new ConfigError(field, name, 'is not a known driver', known.length > 0 ? `use one of: ${known.join(', ')}` : 'no drivers are registered in this build');
  }
  return d;
}

/** Validates `options` against the driver's schema and merges them over its defaults. */
export function resolveDriverOptions(name: string, options: unknown, field = 'options'): object {
  const d = getDriver(name);
  let validate = validators.get(name);
  if (!validate) {
    validate = ajv.compile(d.optionsSchema);
    validators.set(name, validate);
  }
  const input = options ?? {};
  if (!validate(input)) {
    const e = validate.errors?.[0];
    const path = e?.instancePath ? `${field}${e.instancePath.replaceAll('/', '.')}` : field;
    throw new ConfigError(path, input, `${e?.message ?? 'is invalid'} (driver ${name})`, `see the options of driver ${name}: ${JSON.stringify(d.optionsSchema.properties ?? {})}`);
  }
  return { ...d.defaults, ...(input as object) };
}

export function createDriver(name: string, sensor: string, options: unknown, deps: DriverDeps): SensorDriver {
  return getDriver(name).create(sensor, resolveDriverOptions(name, options), deps);
}
