import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import { loadScenario } from '../../simulator/scenario.js';
import { buildScenarioReport, countReadings, type ScenarioReport } from '../../simulator/scenario-report.js';
import { Demo } from '../demo.js';
import { packageRoot } from '../package-root.js';
import { intFlag, parse, untilSignal, UsageError } from './args.js';

export const SIM_USAGE = `Usage: medge sim --scenario FILE [--speed N] [--json] [--data DIR] [--out DIR] [--timeout S]

Runs a scenario against the real device runtime: the scenario's simulated devices speak their real
protocols on real transports (serial stream devices on socat pseudo-terminals, BLE peripherals on a
simulated BlueZ on a private D-Bus), the runtime ('medge run', a child process) reads them through
its drivers, an embedded edge node takes the uplink. When every source has ended the runtime
drains, stops, and the report is computed from the runtime's ledger against what the devices sent.

Options:
  --scenario FILE  scenario file (YAML or JSON), e.g. simulator/scenarios/clinic-day.yaml
  --speed N        signal seconds per second (default 1 = real time; 60 = an hour a minute)
  --json           print the report as one JSON object on stdout
  --data DIR       where the scenario's recordings are (default: shared/data beside the package)
  --out DIR        keep the device ledger, edge store and logs in DIR (a new or empty directory)
  --timeout S      give up after S seconds of wall time (default 900): the run drains, reports,
                   and fails the invariant ranToTheEnd

Exit code 0 when every invariant held, 1 when one did not, 2 for a bad command line or scenario.`;

function defaultDataDir(): string {
  return resolve(packageRoot(), '..', 'shared', 'data');
}

export async function simCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { scenario: { type: 'string' }, speed: { type: 'string' }, json: { type: 'boolean' }, data: { type: 'string' }, out: { type: 'string' }, timeout: { type: 'string' } }, SIM_USAGE);
  if (values.help) {
    process.stdout.write(`${SIM_USAGE}\n`);
    return 0;
  }
  if (!values.scenario) throw new UsageError('--scenario FILE is required', SIM_USAGE);
  const speed = values.speed === undefined ? 1 : Number(values.speed);
  if (!(speed > 0) || speed > 10_000) throw new UsageError(`--speed must be a number > 0 and <= 10000, got ${JSON.stringify(values.speed)}`, SIM_USAGE);
  if (values.out !== undefined && existsSync(join(values.out, 'device'))) throw new UsageError(`--out ${values.out} already holds a run (device/); use a new directory`, SIM_USAGE);
  const timeoutS = intFlag(values.timeout, '--timeout', SIM_USAGE, 1, 86_400) ?? 900;
  const scenario = loadScenario(values.scenario, { dataDir: resolve(values.data ?? defaultDataDir()) });
  const json = values.json === true;
  const note = (text: string) => {
    if (!json) process.stderr.write(`medge sim: ${text}\n`);
  };
  const started = Date.now();
  const demo = new Demo({
    scenario: { scenario, speed },
    deviceId: `sim-${scenario.name}`.slice(0, 64),
    statusIntervalMs: 250,
    drainTimeoutMs: 120_000,
    ...(values.out !== undefined ? { dataDir: values.out } : {}),
    onNote: note,
  });
  note(`scenario ${scenario.name}: ${scenario.devices.length} devices at speed ${speed}; data in ${demo.dataDir}`);
  let signal = false;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const interrupted = Promise.race([
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        note(`--timeout ${timeoutS} s reached before the sources ended: stopping`);
        resolve();
      }, timeoutS * 1000);
    }),
    untilSignal().then(() => {
      signal = true;
      note('interrupted: stopping (draining the backlog)');
    }),
    demo.devicesFinished.then(async () => {
      note('every source has ended; waiting for the runtime to store the rest');
      await settle(demo.ledgerPath, demo);
    }),
  ]);
  let report: ScenarioReport;
  try {
    const result = await demo.run(interrupted);
    const expected = demo.deviceExpectations;
    if (!expected) throw new Error('the scenario devices never started');
    report = buildScenarioReport({
      scenario: scenario.name,
      speed,
      ledger: demo.ledgerPath,
      expected,
      unexpectedExits: result.runtimeRestarts,
      plannedStarts: 1,
      edge: { drained: result.drained, missingAtEdge: result.missingAtEdge, duplicatesAtEdge: result.duplicatesAtEdge },
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    });
  } finally {
    clearTimeout(timer);
    if (values.out === undefined) demo.cleanup();
  }
  if (signal || timedOut) report.invariants.ranToTheEnd = false;
  report.ok = Object.values(report.invariants).every(Boolean);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
  return report.ok ? 0 : 1;
}

/**
 * Waits until the runtime has stored what the devices sent: every meter's records (by count of
 * readings) and no ledger growth for 2 s; at most 60 s.
 */
async function settle(ledger: string, demo: Demo): Promise<void> {
  const deadline = Date.now() + 60_000;
  const meterTargets = (demo.deviceExpectations?.values ?? []).filter((v) => v.kind === 'glucose-meter');
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const summary = readLedgerSummary(ledger);
    const total = RECORD_KINDS.reduce((a, k) => a + summary.kinds[k].produced, 0);
    if (total !== last) {
      last = total;
      stableSince = Date.now();
    }
    const metersDone = meterTargets.every((m) => countReadings(ledger, m.sensor) >= m.records.length);
    if (metersDone && Date.now() - stableSince >= 2_000) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function formatReport(r: ScenarioReport): string {
  const lines = [
    `medge sim report: ${r.scenario} at speed ${r.speed} (${r.wallSeconds} s) - ${r.ok ? 'every invariant held' : 'INVARIANTS FAILED'}`,
    ...Object.entries(r.invariants).map(([k, ok]) => `  ${ok ? 'ok  ' : 'FAIL'} ${k}`),
    `  meter records stored once: ${r.meterRecords} of ${r.meterRecordsExpected}`,
    `  ECG samples: expected ${r.ecgSamplesExpected}, stored ${r.ecgSamplesStored}, in gaps ${r.ecgGapSamples}`,
    `  quarantined frames ${r.quarantinedFrames}, CGM duplicates suppressed ${r.cgmDuplicatesSuppressed}, runtime restarts ${r.runtimeRestarts}`,
  ];
  for (const s of r.streams) {
    const causes = Object.entries(s.gapsByCause)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    lines.push(`  ${s.sensor}: ${s.samplesStored}/${s.samplesExpected} samples, ${s.gapCount} gaps (${causes || 'no cause'}; ${s.unexplainedGaps} unexplained), ${s.samplesLostAtRestart} lost at ${s.acquisitions.length - 1} restarts, ${s.duplicateSamples} duplicates`);
    if (s.leadOffFrames > 0 || s.leadOffSamplesUnexplained > 0) {
      lines.push(`    lead-off: ${s.leadOffFrames} frames sent with the lead-off bit; ${s.leadOffSamplesFlagged} samples stored flagged, ${s.leadOffSamplesUnflagged} stored unflagged, ${s.leadOffSamplesUnexplained} flagged with no injected lead-off`);
    }
    lines.push(`    damaged frames ${s.framesDamaged}: ${s.damagedFramesInQuarantine} in ${s.quarantinedRecords} quarantine records (${s.quarantineRecordsWithSeveralFrames.length} hold several), ${s.damagedFramesNotInQuarantine.length} not in quarantine; ${s.quarantinedBytesOfNoDamagedFrame} quarantined bytes of no damaged frame`);
  }
  for (const m of r.meters) lines.push(`  ${m.sensor}: ${m.storedOnce}/${m.expected} records once; missing ${m.missing.length}, duplicated ${m.duplicated.length}, wrong time ${m.wrongTime.length}, link drops ${m.linkDrops}`);
  for (const n of r.notifying) lines.push(`  ${n.sensor}: ${n.stored} stored of ${n.sent} sent; duplicates sent ${n.duplicatesSent}, stored ${n.duplicatesStored}`);
  return lines.join('\n');
}
