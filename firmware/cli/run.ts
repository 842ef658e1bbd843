import { createLogger } from '../../device-sdk/log.js';
import { loadRuntimeConfig } from '../config.js';
import { Runtime } from '../runtime.js';
import { parse, untilSignal, UsageError } from './args.js';

export const RUN_USAGE = `Usage: medge run --config FILE

Runs the device runtime: sensors -> ledger -> local alarms, and the uplink to the edge.
The config file is JSON; see README.md ("Runtime config") for every field and its default.

Options:
  --config FILE   runtime config (JSON)
  -h, --help      this text`;

/** Messages `medge demo` (or any supervisor) may send over the IPC channel. */
export type SupervisorMessage = { type: 'stop-sources' } | { type: 'shutdown' };
/** Messages the runtime sends back. */
export type RuntimeMessage =
  | { type: 'ready'; bootId: string }
  | { type: 'status'; status: ReturnType<Runtime['status']> }
  | { type: 'sources-stopped' }
  | { type: 'ui'; url?: string; error?: string };

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' } }, RUN_USAGE);
  if (values.help) {
    process.stdout.write(`${RUN_USAGE}\n`);
    return 0;
  }
  if (!values.config) throw new UsageError('--config FILE is required', RUN_USAGE);
  const config = loadRuntimeConfig(values.config);
  const logger = createLogger('medge-runtime', config.log.level);
  const runtime = new Runtime(config, { logger });
  const send = (message: RuntimeMessage) => {
    if (process.send && process.connected) process.send(message);
  };
  runtime.on('status', (status) => send({ type: 'status', status }));
  runtime.on('ui', (ui) => {
    send({ type: 'ui', ...ui });
    if (!process.send) process.stderr.write(ui.url ? `medge run: clinic screen at ${ui.url}\n` : `medge run: clinic screen not available: ${ui.error}\n`);
  });
  runtime.start();
  send({ type: 'ready', bootId: runtime.bootId });
  // The runtime's own timers are unref'd (a library must not hold a process open); the device must
  // run until it is told to stop, also offline with nothing else pending (edge unreachable: the
  // uplink waits out a long backoff on an unref'd timer and the process used to exit, code 0).
  const keepAlive = setInterval(() => undefined, 60_000);

  const supervisorDone = new Promise<void>((resolve) => {
    process.on('message', (message: SupervisorMessage) => {
      if (message?.type === 'stop-sources') {
        runtime.stopSources().then(
          () => {
            send({ type: 'sources-stopped' });
            send({ type: 'status', status: runtime.status() });
          },
          (error: unknown) => logger.error({ err: (error as Error).message }, 'stopping the sources failed'),
        );
      } else if (message?.type === 'shutdown') resolve();
    });
    process.on('disconnect', () => resolve());
  });
  await Promise.race([untilSignal(), process.send ? supervisorDone : new Promise(() => undefined)]);
  try {
    await runtime.stop();
  } finally {
    // A stop that failed (the store refused its last writes) must still let the process end.
    clearInterval(keepAlive);
    logger.flush();
  }
  if (process.connected) process.disconnect();
  return 0;
}
