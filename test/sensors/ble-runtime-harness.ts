// Shared by the tests that run the runtime with a `ble-glucose-meter` source against the simulated BlueZ: the
// config of one meter, running a runtime until a condition holds, and what its ledger stored.
import { decodeBody } from '../../device-sdk/proto/index.js';
import { silentLogger } from '../../device-sdk/log.js';
import type { Alert, Reading } from '../../device-sdk/records.js';
import { readLedgerBodies } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig, type RuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { waitFor } from '../helpers/wait.js';

/** The readings (without the runtime's own `device-info`) or the alerts stored in a data directory's ledger, in order. */
export function storedInLedger<K extends 'reading' | 'alert'>(dataDir: string, kind: K): K extends 'reading' ? Reading[] : Alert[] {
  const bodies = readLedgerBodies(ledgerPath(dataDir), kind).map((row) => decodeBody(kind, row.body));
  return (kind === 'reading' ? (bodies as Reading[]).filter((r) => r.type !== 'device-info') : bodies) as K extends 'reading' ? Reading[] : Alert[];
}

/** An offline runtime (data in `dir`/device) with one meter `meter`; without `address`, the first meter advertising the Glucose Service. */
export function meterRuntimeConfig(dir: string, dbusAddress: string, address?: string): RuntimeConfig {
  const options = { dbusAddress, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 }, pollIntervalMs: 0, ...(address !== undefined ? { address } : {}) };
  return parseRuntimeConfig(
    {
      deviceId: 'ble-clinic-1',
      dataDir: 'device',
      edge: { url: 'mqtt://127.0.0.1:1' }, // offline: nothing listens
      log: { level: 'silent' },
      sources: [{ type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options }],
    },
    dir,
  );
}

/** An offline runtime (data in `dir`/device) with one CGM `cgm`, found by its service. */
export function cgmRuntimeConfig(dir: string, dbusAddress: string): RuntimeConfig {
  return parseRuntimeConfig(
    {
      deviceId: 'ble-clinic-1',
      dataDir: 'device',
      edge: { url: 'mqtt://127.0.0.1:1' }, // offline: nothing listens
      log: { level: 'silent' },
      sources: [{ type: 'device', sensor: 'cgm', driver: 'ble-cgm', options: { dbusAddress, discoveryPollMs: 20, backoff: { initialMs: 20, maxMs: 200 } } }],
    },
    dir,
  );
}

/** The Device Information strings of a simulated CGM with serial `serial`. */
export function cgmDeviceInformation(serial: string) {
  return { manufacturer: 'medge simulated devices', model: 'SCGM-1', serial, firmware: '2.0.1' };
}

/** Runs a runtime until `done` holds (at most 20 s), then stops it. */
export async function runRuntimeUntil(config: RuntimeConfig, done: () => boolean, what: string): Promise<void> {
  const runtime = new Runtime(config, { logger: silentLogger });
  runtime.start();
  try {
    await waitFor(done, what, 20_000);
  } finally {
    await runtime.stop();
  }
}

/** Runs a runtime with `config` while `body` runs, then stops it. */
export async function withRuntime(config: RuntimeConfig, body: () => Promise<void>): Promise<void> {
  const runtime = new Runtime(config, { logger: silentLogger });
  runtime.start();
  try {
    await body();
  } finally {
    await runtime.stop();
  }
}
