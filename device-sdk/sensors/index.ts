export * from './types.js';
export { createDriver, getDriver, listDrivers, resolveDriverOptions } from './registry.js';
