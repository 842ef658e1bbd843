import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedgeError } from '../../device-sdk/errors.js';
import { packageRoot } from '../package-root.js';
import { UsageError } from './args.js';
import { systemProblem } from './system-errors.js';

/**
 * Each command's module is imported only when that command runs: `medge run` on a board does not load
 * TF.js, the edge or the PKI code (the runtime's idle RSS is measured by bench/idle-rss.js).
 */
const COMMANDS: Readonly<Record<string, { load: () => Promise<(args: string[]) => Promise<number>>; summary: string }>> = Object.freeze({
  demo: { load: async () => (await import('./demo.js')).demoCommand, summary: 'edge node + simulated devices + device runtime, with a live status screen' },
  run: { load: async () => (await import('./run.js')).runCommand, summary: 'the device runtime (--config FILE)' },
  edge: { load: async () => (await import('./edge.js')).edgeCommand, summary: "the regional edge node; 'edge stats' reads its store" },
  sensors: { load: async () => (await import('./sensors.js')).sensorsCommand, summary: "'sensors list' shows the drivers; 'sensors detect --port PATH' probes a serial port" },
  sim: { load: async () => (await import('./sim.js')).simCommand, summary: 'run a scenario of simulated devices against the real runtime; JSON report from its ledger' },
  ecg: { load: async () => (await import('./ecg.js')).ecgCommand, summary: "'ecg annotate' and 'ecg eval' run the ECG pipeline (QRS, beat classes, AF) over WFDB records" },
  glucose: { load: async () => (await import('./glucose.js')).glucoseCommand, summary: "'glucose predict' forecasts 30 min ahead with hypo alerts; 'glucose report' gives the consensus CGM metrics" },
  pcg: { load: async () => (await import('./pcg.js')).pcgCommand, summary: "'pcg classify' screens heart-sound WAV recordings (normal, abnormal, unreadable)" },
  audit: { load: async () => (await import('./audit.js')).auditCommand, summary: "'audit verify' checks the device ledger's hash-chained audit log" },
  sign: { load: async () => (await import('./sign.js')).signCommand, summary: 'sign an artifact directory (model, update bundle) with Ed25519' },
  verify: { load: async () => (await import('./sign.js')).verifyCommand, summary: "check an artifact directory's signature and file hashes" },
  keys: { load: async () => (await import('./keys.js')).keysCommand, summary: "'keys rotate' rotates the ledger's data key; 'keys gen-signing' makes an Ed25519 signing key pair" },
  ca: { load: async () => (await import('./pki.js')).caCommand, summary: "'ca init' creates a site CA and the edge's TLS certificates; 'ca revoke' revokes a device" },
  provision: { load: async () => (await import('./pki.js')).provisionCommand, summary: "issue a device's client certificate from the site CA" },
  ui: { load: async () => (await import('../ui/cli.js')).uiCommand, summary: "'ui pin-hash' hashes a clinic screen PIN for the runtime config" },
});

const USAGE = `Usage: medge <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

'medge <command> --help' describes a command.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`medge ${version}\n`);
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) throw new UsageError(`unknown command ${JSON.stringify(command)}; commands are: ${Object.keys(COMMANDS).join(', ')}`, USAGE);
  return (await entry.load())(rest);
}

/**
 * The exit status when the reader of stdout or stderr goes away before the command has written
 * everything (`medge pcg classify *.wav --json | head -1`): what the reader did not take is not an
 * error of the input, but the output is incomplete, so the command does not report success (README "CLI").
 */
const OUTPUT_CLOSED_EXIT_CODE = 1;

// A closed pipe is an 'error' event on the stream; without a listener Node throws it with its stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(OUTPUT_CLOSED_EXIT_CODE);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`medge: ${error.message}\n\n${error.usage}\n`);
      process.exitCode = 2;
    } else if (error instanceof MedgeError) {
      process.stderr.write(`medge: ${error.message}\n`);
      process.exitCode = error.code === 'config' ? 2 : 1;
    } else if (systemProblem(error) !== undefined) {
      // The OS or SQLite refused something the command was pointed at: the message, without a stack.
      process.stderr.write(`medge: ${systemProblem(error)}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`medge: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
