import { join } from 'node:path';
import { silentLogger } from '../../device-sdk/log.js';
import type { Alert } from '../../device-sdk/records.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { VirtualClock } from './virtual-clock.js';

/**
 * A runtime on a virtual clock with its data in `dir/device` and an edge nobody listens on (offline),
 * started, with the alerts it raises collected. Advance `clock` to run it; `await runtime.stop()` at the end.
 */
export function startOfflineRuntime(dir: string, deviceId: string, sources: unknown[], more: Record<string, unknown> = {}): { runtime: Runtime; clock: VirtualClock; alerts: Alert[]; ledger: string } {
  const config = parseRuntimeConfig({ deviceId, dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources, ...more }, dir);
  const clock = new VirtualClock();
  const runtime = new Runtime(config, { logger: silentLogger, clock });
  const alerts: Alert[] = [];
  runtime.on('alert', (a) => alerts.push(a));
  runtime.start();
  return { runtime, clock, alerts, ledger: ledgerPath(join(dir, 'device')) };
}
