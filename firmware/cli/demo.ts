import { chooseDemoDevices, Demo, DEMO_UI_USERS, type DemoDevices, type DemoResult } from '../demo.js';
import { renderRuntimeScreen } from '../status-screen.js';
import { intFlag, parse, untilSignal } from './args.js';

export const DEMO_USAGE = `Usage: medge demo [--seconds N] [--json] [--chaos] [--data DIR] [--seed N] [--in-process] [--ui HOST:PORT | --no-ui]

Starts an edge node, the device runtime and simulated devices, and shows a live status screen.
Ctrl-C stops it cleanly. The devices are those of simulator/scenarios/demo.yaml on real transports
(an ECG front end and a stethoscope on pseudo-terminals, a heart-rate strap, a glucose meter and a
CGM on a simulated BlueZ on a private D-Bus), read by the runtime's drivers; without socat,
dbus-daemon or the shared recordings the demo says so and uses in-process generators instead.

Options:
  --seconds N   run N seconds, drain the backlog, stop, and report
  --json        print the report as one JSON object on stdout (no status screen)
  --chaos       restart the broker and SIGKILL the runtime at random moments
  --data DIR    keep the data (DIR/device, DIR/edge) instead of a temporary directory
  --seed N      seed of the simulated signals and the chaos schedule (default 1)
  --in-process  use the in-process generators even when the simulator can run
  --ui ADDR     address of the clinic screen (default 127.0.0.1:8080; port 0 picks a free one)
  --no-ui       no clinic screen

Clinic screen demo PINs: ${DEMO_UI_USERS.map((u) => `${u.name} ${u.pin}`).join(', ')}.`;

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      seconds: { type: 'string' },
      json: { type: 'boolean' },
      chaos: { type: 'boolean' },
      data: { type: 'string' },
      seed: { type: 'string' },
      'in-process': { type: 'boolean' },
      ui: { type: 'string' },
      'no-ui': { type: 'boolean' },
    },
    DEMO_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  const seconds = intFlag(values.seconds, '--seconds', DEMO_USAGE, 1, 86_400);
  const json = values.json === true;
  const tty = process.stdout.isTTY === true && !json;
  const notes: string[] = [];
  let lastLine = 0;
  let screenLine = '';
  const pins = DEMO_UI_USERS.map((u) => `${u.name} ${u.pin}`).join(', ');
  const devices: DemoDevices = values['in-process'] === true ? { kind: 'in-process', reason: '--in-process was given' } : chooseDemoDevices();
  // Always said, also with --json (on stderr): which devices the numbers come from.
  process.stderr.write(
    devices.kind === 'simulator'
      ? `medge demo: devices: simulator (${devices.scenario.devices.map((d) => `${d.sensor} on ${d.transport}`).join(', ')})\n`
      : `medge demo: devices: in-process generators, because ${devices.reason}\n`,
  );
  const demo = new Demo({
    ...(devices.kind === 'simulator' ? { scenario: { scenario: devices.scenario, speed: 1 } } : {}),
    chaos: values.chaos === true,
    seed: intFlag(values.seed, '--seed', DEMO_USAGE) ?? 1,
    ...(seconds !== undefined ? { seconds } : {}),
    ...(values.data !== undefined ? { dataDir: values.data } : {}),
    ui: values['no-ui'] === true ? false : (values.ui ?? '127.0.0.1:8080'),
    onUi: (ui) => {
      screenLine = ui.url ? `clinic screen at ${ui.url} (demo PINs: ${pins})` : `clinic screen not available: ${ui.error}`;
      if (!tty) process.stderr.write(`medge demo: ${screenLine}\n`);
    },
    onNote: (text) => {
      notes.push(text);
      if (!tty && !json) process.stderr.write(`medge demo: ${text}\n`);
    },
    onStatus: (status) => {
      if (json) return;
      if (tty) {
        const screen = renderRuntimeScreen(status, { width: Math.min(process.stdout.columns ?? 80, 100), color: true, now: Date.now() });
        const recent = notes.slice(-3).map((n) => `  ${n}`);
        process.stdout.write(`\x1b[H\x1b[2J${screen}\n${screenLine ? `  ${screenLine}\n` : ''}${recent.join('\n')}\n  Ctrl-C stops.\n`);
      } else if (status.elapsedMs - lastLine >= 5_000) {
        lastLine = status.elapsedMs;
        const r = status.runtime;
        const backlog = r ? Object.values(r.backlog).reduce((a, b) => a + b, 0) : 0;
        const stored = Object.values(status.edge.stored).reduce((a, b) => a + (b ?? 0), 0);
        process.stderr.write(
          `medge demo: ${Math.round(status.elapsedMs / 1000)} s, link ${r?.link ?? 'starting'}, backlog ${backlog}, edge stored ${stored}` +
            `${r?.lastAlert ? `, last alert ${r.lastAlert.kind}` : ''}\n`,
        );
      }
    },
  });
  if (!json) process.stderr.write(`medge demo: data in ${demo.dataDir}; edge and runtime starting\n`);
  const interrupted = untilSignal().then(() => {
    if (!json) process.stderr.write('\nmedge demo: stopping (draining the backlog; Ctrl-C again to quit at once)\n');
  });
  let result: DemoResult;
  try {
    result = await demo.run(interrupted);
  } finally {
    if (values.data === undefined) demo.cleanup();
  }
  if (json) {
    const { dataDir: _dir, ...report } = result;
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`${formatReport(result, values.data !== undefined)}\n`);
  }
  return result.drained ? 0 : 1;
}

function formatReport(r: DemoResult, kept: boolean): string {
  const rows = Object.keys(r.produced).map(
    (k) =>
      `  ${k.padEnd(11)} produced ${String(r.produced[k as keyof typeof r.produced]).padStart(7)}  acked ${String(r.acked[k as keyof typeof r.acked]).padStart(7)}  at edge ${String(r.edgeStored[k as keyof typeof r.edgeStored]).padStart(7)}`,
  );
  return [
    'medge demo report',
    ...rows,
    `  duplicates at edge ${r.duplicatesAtEdge}, missing at edge ${r.missingAtEdge}, quarantined ${r.quarantined}`,
    `  broker restarts ${r.brokerRestarts}, runtime kills ${r.runtimeKills}, backlog ${r.drained ? 'drained' : 'NOT drained'}`,
    kept ? `  data kept in ${r.dataDir}` : '  (temporary data removed; use --data DIR to keep it)',
  ].join('\n');
}
