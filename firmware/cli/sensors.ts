import { builtinProbes, detectPort, lineProbe, type DetectReport } from '../../device-sdk/sensors/autodetect.js';
import { listDrivers } from '../../device-sdk/sensors/registry.js';
import { decodeGlucoseLine, GLUCOSE_LINE_CODEC } from '../sources/glucose-line-codec.js';
import { intFlag, parse, UsageError } from './args.js';

export const SENSORS_USAGE = `Usage: medge sensors list [--json]
       medge sensors detect --port PATH [--baud 115200,57600] [--listen MS] [--firmata-wait MS] [--json]

list    the registered drivers: name, sensor kind, transport, description and the options with
        their defaults (what a { "type": "device", "driver": ... } source in the runtime config takes).
detect  probes a serial port and reports which protocol speaks there and which driver reads it:
        listens first (streaming devices, a Firmata board announcing itself, a meter pushing text
        lines), then sends the medge stream IDENTIFY and the Firmata version query. Exit code 0
        when something was recognised, 1 when not. Probe only ports meant for auto-detection: the
        queries are binary another kind of device may misread.`;

export async function sensorsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'list') return list(rest);
  if (sub === 'detect') return detect(rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${SENSORS_USAGE}\n`);
    return 0;
  }
  throw new UsageError(sub === undefined ? 'sensors needs a subcommand' : `unknown sensors subcommand ${JSON.stringify(sub)}; subcommands are: list, detect`, SENSORS_USAGE);
}

function list(args: string[]): number {
  const { values } = parse(args, { json: { type: 'boolean' } }, SENSORS_USAGE);
  if (values.help) {
    process.stdout.write(`${SENSORS_USAGE}\n`);
    return 0;
  }
  const drivers = listDrivers().map((d) => ({ name: d.name, kind: d.kind, transport: d.transport, description: d.description, defaults: d.defaults, required: (d.optionsSchema.required as string[] | undefined) ?? [] }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ drivers }, null, 2)}\n`);
    return 0;
  }
  const lines = drivers.map((d) => `${d.name.padEnd(20)}${d.kind.padEnd(15)}${d.transport.padEnd(9)}${d.description}\n${''.padEnd(20)}options: ${JSON.stringify(d.defaults)}${d.required.length ? ` (required: ${d.required.join(', ')})` : ''}`);
  process.stdout.write(`${'driver'.padEnd(20)}${'kind'.padEnd(15)}${'link'.padEnd(9)}description\n${lines.join('\n')}\n`);
  return 0;
}

async function detect(args: string[]): Promise<number> {
  const { values } = parse(args, { port: { type: 'string' }, baud: { type: 'string' }, listen: { type: 'string' }, 'firmata-wait': { type: 'string' }, json: { type: 'boolean' } }, SENSORS_USAGE);
  if (values.help) {
    process.stdout.write(`${SENSORS_USAGE}\n`);
    return 0;
  }
  if (!values.port) throw new UsageError('--port PATH is required', SENSORS_USAGE);
  const baudRates = values.baud?.split(',').map((b) => intFlag(b.trim(), '--baud', SENSORS_USAGE, 1) as number);
  const listenMs = intFlag(values.listen, '--listen', SENSORS_USAGE, 0, 600_000);
  const firmataWaitMs = intFlag(values['firmata-wait'], '--firmata-wait', SENSORS_USAGE, 0, 600_000);
  const probes = [
    ...builtinProbes(firmataWaitMs === undefined ? {} : { firmataWaitMs }),
    lineProbe({
      name: GLUCOSE_LINE_CODEC,
      driver: undefined,
      detail: 'glucose meter text lines (GLU,...): decoded by the runtime glucose-line codec; no serial driver is registered for it',
      decode: (line) => decodeGlucoseLine(line, 0, 'probe'),
    }),
  ];
  const report = await detectPort(values.port, { probes, ...(baudRates ? { baudRates } : {}), ...(listenMs === undefined ? {} : { listenMs }) });
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${describe(report)}\n`);
  return report.found ? 0 : 1;
}

/**
 * Why a port did not open, said once: the transport's error already starts with the path and "cannot
 * open", and the serial binding's own text repeats both ("Error: No such file or directory, cannot open PATH").
 */
export function openFailure(path: string, error: string | undefined): string {
  if (error === undefined) return 'unknown error';
  return error.replace(`${path}: cannot open: `, '').replace(/^Error: /, '').replace(`, cannot open ${path}`, '');
}

function describe(report: DetectReport): string {
  const f = report.found;
  if (!f) {
    const opened = report.attempts.find((a) => a.step === 'open' && a.outcome === 'error');
    if (opened) return `${report.path}: cannot open: ${openFailure(report.path, opened.error)}`;
    const bytes = Math.max(0, ...report.attempts.map((a) => a.bytesReceived));
    return `${report.path}: nothing recognised (${bytes > 0 ? `${bytes} bytes of an unknown protocol` : 'silent'}; tried ${[...new Set(report.attempts.map((a) => a.baudRate))].join(', ')} baud)`;
  }
  return `${report.path}: ${f.protocol} at ${f.baudRate} baud -> driver ${f.driver ?? '(none)'}\n  ${f.detail}`;
}
