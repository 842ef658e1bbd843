import { createLogger, type LogLevel } from '../../device-sdk/log.js';
import { EdgeNode } from '../../edge/edge-node.js';
import { readEdgeStats } from '../../edge/edge-store.js';
import { intFlag, parse, untilSignal, UsageError } from './args.js';

export const EDGE_USAGE = `Usage: medge edge --data DIR [--port N | --broker URL] [--host ADDR] [--log-level LEVEL]
       medge edge stats --data DIR [--json]

Runs the regional edge node: an MQTT broker (embedded aedes on --port, default 1883, or an external
broker given by --broker, e.g. Mosquitto), ingest that validates each batch, commits it to
DIR/edge.sqlite idempotently and then acknowledges it.

'stats' prints what the edge stored per device and kind, and rejected batches per reason. It reads
the store without disturbing a running edge.`;

export async function edgeCommand(args: string[]): Promise<number> {
  if (args[0] === 'stats') return edgeStats(args.slice(1));
  const { values } = parse(
    args,
    { data: { type: 'string' }, port: { type: 'string' }, broker: { type: 'string' }, host: { type: 'string' }, 'log-level': { type: 'string' } },
    EDGE_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${EDGE_USAGE}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', EDGE_USAGE);
  if (values.port !== undefined && values.broker !== undefined) throw new UsageError('give either --port (embedded broker) or --broker URL, not both', EDGE_USAGE);
  if (values.broker !== undefined && !/^mqtts?:\/\//.test(values.broker)) {
    throw new UsageError(`--broker must be an mqtt:// or mqtts:// URL, got ${JSON.stringify(values.broker)}`, EDGE_USAGE);
  }
  const logger = createLogger('medge-edge', (values['log-level'] ?? 'info') as LogLevel);
  const edge = new EdgeNode({
    dataDir: values.data,
    port: intFlag(values.port, '--port', EDGE_USAGE, 0, 65535) ?? 1883,
    host: values.host ?? '127.0.0.1',
    logger,
    ...(values.broker ? { brokerUrl: values.broker } : {}),
  });
  await edge.start();
  process.stderr.write(`medge edge: ${edge.broker ? 'embedded broker' : 'external broker'} at ${edge.url}; store ${edge.store.path}. Ctrl-C stops.\n`);
  await untilSignal();
  await edge.stop();
  return 0;
}

function edgeStats(args: string[]): number {
  const usage = EDGE_USAGE;
  const { values } = parse(args, { data: { type: 'string' }, json: { type: 'boolean' } }, usage);
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError('--data DIR is required', usage);
  const stats = readEdgeStats(values.data);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    return 0;
  }
  const lines = ['device                           kind         stored'];
  for (const [device, kinds] of Object.entries(stats.devices)) {
    for (const [kind, n] of Object.entries(kinds)) lines.push(`${device.padEnd(32)} ${kind.padEnd(12)} ${String(n).padStart(8)}`);
  }
  if (Object.keys(stats.devices).length === 0) lines.push('(no records yet)');
  const rejected = Object.entries(stats.rejected);
  lines.push('', rejected.length === 0 ? 'rejected: none' : `rejected: ${rejected.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
