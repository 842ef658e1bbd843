import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedgeError } from '../../device-sdk/errors.js';
import { packageRoot } from '../package-root.js';
import { UsageError } from './args.js';
import { auditCommand } from './audit.js';
import { demoCommand } from './demo.js';
import { ecgCommand } from './ecg.js';
import { glucoseCommand } from './glucose.js';
import { edgeCommand } from './edge.js';
import { pcgCommand } from './pcg.js';
import { caCommand, provisionCommand } from './pki.js';
import { runCommand } from './run.js';
import { sensorsCommand } from './sensors.js';
import { uiCommand } from '../ui/cli.js';
import { keysCommand } from './keys.js';
import { signCommand, verifyCommand } from './sign.js';
import { simCommand } from './sim.js';

const COMMANDS: Readonly<Record<string, { run: (args: string[]) => Promise<number>; summary: string }>> = Object.freeze({
  demo: { run: demoCommand, summary: 'edge node + simulated devices + device runtime, with a live status screen' },
  run: { run: runCommand, summary: 'the device runtime (--config FILE)' },
  edge: { run: edgeCommand, summary: "the regional edge node; 'edge stats' reads its store" },
  sensors: { run: sensorsCommand, summary: "'sensors list' shows the drivers; 'sensors detect --port PATH' probes a serial port" },
  sim: { run: simCommand, summary: 'run a scenario of simulated devices against the real runtime; JSON report from its ledger' },
  ecg: { run: ecgCommand, summary: "'ecg annotate' and 'ecg eval' run the ECG pipeline (QRS, beat classes, AF) over WFDB records" },
  glucose: { run: glucoseCommand, summary: "'glucose predict' forecasts 30 min ahead with hypo alerts; 'glucose report' gives the consensus CGM metrics" },
  pcg: { run: pcgCommand, summary: "'pcg classify' screens heart-sound WAV recordings (normal, abnormal, unreadable)" },
  audit: { run: auditCommand, summary: "'audit verify' checks the device ledger's hash-chained audit log" },
  sign: { run: signCommand, summary: 'sign an artifact directory (model, update bundle) with Ed25519' },
  verify: { run: verifyCommand, summary: "check an artifact directory's signature and file hashes" },
  keys: { run: keysCommand, summary: "'keys rotate' rotates the ledger's data key; 'keys gen-signing' makes an Ed25519 signing key pair" },
  ca: { run: caCommand, summary: "'ca init' creates a site CA and the edge's TLS certificates; 'ca revoke' revokes a device" },
  provision: { run: provisionCommand, summary: "issue a device's client certificate from the site CA" },
  ui: { run: uiCommand, summary: "'ui pin-hash' hashes a clinic screen PIN for the runtime config" },
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
  return entry.run(rest);
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
    } else {
      process.stderr.write(`medge: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
