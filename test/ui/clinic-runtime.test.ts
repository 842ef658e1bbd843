// The clinic screen inside the device runtime: `Runtime` starts it when `ui.enabled`, serves data the
// runtime stored, keeps running (alarms first) when the address is taken, and closes it on stop.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../device-sdk/log.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { Runtime } from '../../firmware/runtime.js';
import { hashPin } from '../../firmware/ui/auth.js';
import { freePort } from '../helpers/mosquitto.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const tempDir = useTempDirs('ui-runtime');
const users = [{ name: 'nurse', role: 'operator', pinHash: hashPin('1111', { N: 1024 }) }];
const running: Runtime[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

async function runtimeWith(listen: string) {
  const dir = tempDir();
  const edgePort = await freePort(); // nothing listens there: the link stays down, the screen works offline
  const config = parseRuntimeConfig(
    {
      deviceId: 'ui-rt',
      dataDir: join(dir, 'data'),
      edge: { url: `mqtt://127.0.0.1:${edgePort}` },
      sources: [{ type: 'sim-glucose', intervalMs: 100, corruptRate: 0 }],
      statusIntervalMs: 200,
      ui: { enabled: true, listen, users },
    },
    dir,
  );
  const runtime = new Runtime(config, { logger: createLogger('test', 'silent') });
  const ui = new Promise<{ url?: string; error?: string }>((resolve) => runtime.once('ui', resolve));
  runtime.start();
  running.push(runtime);
  return { runtime, ui: await ui };
}

describe('clinic screen in the runtime', () => {
  it('serves what the runtime stores while the edge is unreachable, and closes on stop', async () => {
    const { runtime, ui } = await runtimeWith('127.0.0.1:0');
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const url = ui.url as string;
    const login = await fetch(new URL('/api/login', url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'nurse', pin: '1111' }) });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    let readings: unknown[] = [];
    await waitFor(async () => {
      const reply = await fetch(new URL('/api/history?kind=reading&type=glucose', url), { headers: { Cookie: cookie } });
      readings = ((await reply.json()) as { readings: unknown[] }).readings;
      return readings.length >= 3;
    }, 'glucose readings through the screen');
    expect(readings[0]).toMatchObject({ sensor: 'glucose-meter', type: 'glucose', unit: 'mg/dL' });
    await waitFor(async () => {
      const reply = await fetch(new URL('/api/status', url), { headers: { Cookie: cookie } });
      const { status } = (await reply.json()) as { status: { link: string } | null };
      return status !== null && status.link !== 'connected';
    }, 'a status with the link down');
    await runtime.stop();
    running.splice(0);
    await expect(fetch(url)).rejects.toThrow();
  });

  it('keeps running without the screen when its address is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { runtime, ui } = await runtimeWith(`127.0.0.1:${port}`);
      expect(ui.error).toMatch(/EADDRINUSE/);
      await waitFor(() => runtime.status().produced.reading > 0, 'readings stored without the screen');
    } finally {
      blocker.close();
    }
  });
});
