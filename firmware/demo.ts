import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MedgeError } from '../device-sdk/errors.js';
import { mulberry32 } from '../device-sdk/random.js';
import { RECORD_KINDS, type RecordKind } from '../device-sdk/records.js';
import { readLedgerSummary } from '../device-sdk/store/sqlite-outbox-store.js';
import { EdgeNode } from '../edge/edge-node.js';
import type { RuntimeConfigInput, SourceConfigInput, UiRole, UiUserConfig } from './config.js';
import type { RuntimeMessage, SupervisorMessage } from './cli/run.js';
import { findDbusDaemon } from '../simulator/bluez/dbus-daemon.js';
import { findSocat } from '../simulator/pty.js';
import { loadScenario, type Scenario } from '../simulator/scenario.js';
import { type ScenarioExpectations, type ScenarioPeers, startScenarioPeers } from '../simulator/scenario-runner.js';
import { medgeBin, packageRoot } from './package-root.js';
import { ledgerPath } from './runtime.js';
import { hashPinAsync } from './ui/auth.js';
import type { DemoStatus, RuntimeStatus } from './status.js';
import { makeDirs } from '../device-sdk/make-dirs.js';

export interface DemoOptions {
  /** Run this long, then drain and stop. Without it the demo runs until `stop()` (Ctrl-C). */
  seconds?: number;
  /** Restart the broker and SIGKILL the runtime at random moments. */
  chaos: boolean;
  /** Keep data here (device ledger in DIR/device, edge store in DIR/edge) instead of a temporary directory. */
  dataDir?: string;
  seed: number;
  /** Longest wait for the backlog to drain after the run (ms). */
  drainTimeoutMs: number;
  /**
   * The runtime's sources. Default: the simulated devices of `simulator/scenarios/demo.yaml` on real
   * transports when socat, dbus-daemon and the shared recordings are there, else the in-process
   * generators (`IN_PROCESS_DEMO_SOURCES`), with a note saying why.
   */
  sources?: SourceConfigInput[];
  /**
   * Simulated devices on real transports (ptys, private D-Bus) from a scenario: the runtime's
   * sources become drivers pointed at them, the devices start once the runtime has opened them, and
   * `devicesFinished` resolves when their sources end. Overrides `sources`.
   */
  scenario?: { scenario: Scenario; speed: number };
  /** Device id of the runtime (default `DEMO_DEVICE_ID`). */
  deviceId?: string;
  /** Runtime status interval (ms). */
  statusIntervalMs?: number;
  /** Called about once a second with what the screen shows. */
  onStatus?: (status: DemoStatus) => void;
  /** Progress and problems for a person (stderr). */
  onNote?: (text: string) => void;
  /** Address of the clinic screen (`host:port`, port 0 for a free one); `false` turns it off. */
  ui: string | false;
  /** Called with the clinic screen's URL each time the runtime (re)starts it. */
  onUi?: (ui: { url?: string; error?: string }) => void;
}

export const DEFAULT_DEMO_OPTIONS: Readonly<Omit<DemoOptions, 'seconds' | 'dataDir'>> = Object.freeze({ chaos: false, seed: 1, drainTimeoutMs: 60_000, ui: '127.0.0.1:8080' });

/**
 * The demo's clinic screen users and their PINs. Demo only: these PINs are public. A real device
 * gets its users from its config, with hashes from `medge ui pin-hash`.
 */
export const DEMO_UI_USERS: readonly Readonly<{ name: string; role: UiRole; pin: string }>[] = Object.freeze([
  Object.freeze({ name: 'operator', role: 'operator' as const, pin: '1111' }),
  Object.freeze({ name: 'clinician', role: 'clinician' as const, pin: '2222' }),
  Object.freeze({ name: 'technician', role: 'technician' as const, pin: '3333' }),
]);

export interface DemoResult {
  /** Records the device stored, per kind (`KindStats.produced`; seqs are no count). */
  produced: Record<RecordKind, number>;
  /** Of those, the ones the edge acknowledged (produced minus pending). */
  acked: Record<RecordKind, number>;
  edgeStored: Record<RecordKind, number>;
  /** Records stored at the edge whose body is byte-identical to another stored record of the device. */
  duplicatesAtEdge: number;
  /** Records produced on the device that the edge does not hold. */
  missingAtEdge: number;
  quarantined: number;
  brokerRestarts: number;
  runtimeKills: number;
  /** Runtime processes that exited without being asked to (each was restarted). */
  runtimeRestarts: number;
  drained: boolean;
  dataDir: string;
}

/** The in-process stand-ins (no device protocol except the glucose text line), used when the simulator cannot run. */
export const IN_PROCESS_DEMO_SOURCES: readonly SourceConfigInput[] = Object.freeze([
  { type: 'sim-ecg', chunkMs: 250 },
  { type: 'sim-pcg', chunkMs: 500 },
  { type: 'sim-hr' },
  { type: 'sim-glucose', intervalMs: 1_000, periodReadings: 30, corruptRate: 0.08 },
]);

/** What `medge demo` reads: simulated devices on real transports, or the in-process stand-ins and why. */
export type DemoDevices = { kind: 'simulator'; scenario: Scenario } | { kind: 'in-process'; reason: string };

/**
 * The devices of the demo: `simulator/scenarios/demo.yaml` (serial devices on socat ptys, BLE
 * peripherals on a simulated BlueZ on a private D-Bus) when socat, dbus-daemon and the shared
 * recordings (`dataDir`, default `shared/data` beside the package) are there; otherwise the
 * in-process generators, with the reason.
 */
export function chooseDemoDevices(dataDir = resolve(packageRoot(), '..', 'shared', 'data')): DemoDevices {
  if (findSocat() === undefined) return { kind: 'in-process', reason: 'socat is not installed (apt-get install socat), so no serial device can run on a pseudo-terminal' };
  if (findDbusDaemon() === undefined) return { kind: 'in-process', reason: 'dbus-daemon is not installed (apt-get install dbus), so the simulated BlueZ cannot run' };
  const needed = [join(dataDir, 'mitdb', '208.hea'), join(dataDir, 'pcg', 'pascal-b'), join(dataDir, 'glucose-sim', 'vpatient_params.csv')];
  const missing = needed.find((p) => !existsSync(p));
  if (missing !== undefined) return { kind: 'in-process', reason: `the recordings the simulated devices replay are missing (${missing})` };
  try {
    return { kind: 'simulator', scenario: loadScenario(join(packageRoot(), 'simulator', 'scenarios', 'demo.yaml'), { dataDir }) };
  } catch (error) {
    return { kind: 'in-process', reason: `the demo scenario does not load: ${(error as Error).message}` };
  }
}

export const DEMO_DEVICE_ID = 'demo-clinic-01';
export const DEMO_SITE = 'demo';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for `promise` at most `ms`; the timer is cleared either way so it never holds the process open. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** The last `lines` lines of a log file (for an error message), indented; empty when it cannot be read. */
function logTail(path: string, lines = 5): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n');
  } catch {
    return '';
  }
}

/**
 * `medge demo`: an edge node in this process, the device runtime as a child process (so that chaos
 * can SIGKILL it), simulated sensors inside the runtime, and a status screen. With `seconds` it runs
 * that long, drains the backlog and reports the delivery invariants.
 */
export class Demo {
  readonly dataDir: string;
  private readonly options: DemoOptions;
  private readonly temporary: boolean;
  private readonly edge: EdgeNode;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> = Promise.resolve();
  private withSources = true;
  private lastStatus: RuntimeStatus | undefined;
  private sourcesStopped: (() => void) | undefined;
  private brokerRestarts = 0;
  private runtimeKills = 0;
  private runtimeRestarts = 0;
  private sources: SourceConfigInput[];
  private peers: ScenarioPeers | undefined;
  private expectations: ScenarioExpectations | undefined;
  private resolveDevicesFinished!: () => void;
  private resolveDevicesStarted!: () => void;
  /** Resolves when the scenario's devices have started (at once without a scenario). */
  private readonly devicesStarted: Promise<void> = new Promise((resolve) => (this.resolveDevicesStarted = resolve));
  /** Resolves when the scenario's devices have sent everything (never without a scenario). */
  readonly devicesFinished: Promise<void> = new Promise((resolve) => (this.resolveDevicesFinished = resolve));
  private readonly deviceId: string;
  private phase: DemoStatus['phase'] = 'running';
  private readonly startedAt = Date.now();
  private stopping = false;
  /** The runtime has reported ready at least once; before that, an exit is a failure to start, not a crash to restart. */
  private everReady = false;
  private fail: (error: Error) => void = () => undefined;
  /** Rejects when the runtime cannot start (a config or storage error): the demo then stops with its log's last lines. */
  private readonly failed: Promise<never> = new Promise<never>((_, reject) => {
    this.fail = reject;
  });
  private chaosTimers: NodeJS.Timeout[] = [];
  private chaosBusy: Promise<void>[] = [];
  private logFd: number;
  private edgeStopped = false;
  private readonly random: () => number;
  private uiUsers: UiUserConfig[] | undefined;

  constructor(options: Partial<DemoOptions> = {}) {
    this.options = { ...DEFAULT_DEMO_OPTIONS, ...options };
    this.sources = [...(options.sources ?? IN_PROCESS_DEMO_SOURCES)];
    this.deviceId = options.deviceId ?? DEMO_DEVICE_ID;
    // Awaited in races only; a failure outside one must not be an unhandled rejection.
    this.failed.catch(() => undefined);
    this.temporary = options.dataDir === undefined;
    // Absolute: the runtime's config file lives inside it, and a config's relative paths resolve against the config's directory.
    this.dataDir = options.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'medge-demo-')) : resolve(options.dataDir);
    makeDirs(join(this.dataDir, 'logs'));
    this.logFd = openSync(join(this.dataDir, 'logs', 'runtime.log'), 'a');
    this.edge = new EdgeNode({ dataDir: join(this.dataDir, 'edge'), port: 0 });
    this.random = mulberry32(this.options.seed);
  }

  private note(text: string): void {
    this.options.onNote?.(text);
  }

  private writeConfig(withSources: boolean): string {
    const config: RuntimeConfigInput = {
      deviceId: this.deviceId,
      site: DEMO_SITE,
      dataDir: join(this.dataDir, 'device'),
      edge: { url: this.edge.url, ackTimeoutMs: 3_000, backoff: { initialMs: 100, maxMs: 2_000 } },
      sources: withSources ? this.sources : [],
      log: { level: 'info' },
      statusIntervalMs: this.options.statusIntervalMs ?? 1_000,
    };
    if (this.options.ui !== false && this.uiUsers !== undefined) config.ui = { enabled: true, listen: this.options.ui, users: this.uiUsers };
    const path = join(this.dataDir, withSources ? 'runtime.json' : 'runtime-drain.json');
    writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
    return path;
  }

  private runtimeReady: (() => void) | undefined;

  private spawnRuntime(): void {
    const config = this.writeConfig(this.withSources);
    // Own process group: a terminal's Ctrl-C reaches the demo only, which then drains and stops the runtime itself.
    const child = fork(medgeBin(), ['run', '--config', config], { stdio: ['ignore', this.logFd, this.logFd, 'ipc'], detached: true });
    this.child = child;
    child.on('message', (message: RuntimeMessage) => {
      if (message.type === 'ready') {
        this.everReady = true;
        this.runtimeReady?.();
      }
      if (message.type === 'status') this.lastStatus = message.status;
      else if (message.type === 'sources-stopped') this.sourcesStopped?.();
      else if (message.type === 'ui') this.options.onUi?.({ ...(message.url ? { url: message.url } : {}), ...(message.error ? { error: message.error } : {}) });
    });
    this.childExit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (!this.stopping && !this.everReady) {
          const log = join(this.dataDir, 'logs', 'runtime.log');
          this.fail(new MedgeError('demo', `the device runtime exited before it was ready (code ${code}, signal ${signal}); its log ${log} ends:\n${logTail(log)}`));
        } else if (!this.stopping && signal !== 'SIGKILL') {
          this.runtimeRestarts += 1;
          this.note(`runtime exited unexpectedly (code ${code}, signal ${signal}); restarting (see ${join(this.dataDir, 'logs', 'runtime.log')})`);
          setTimeout(() => {
            if (!this.stopping && !this.child) this.spawnRuntime();
          }, 1_000).unref();
        }
        resolve();
      });
    });
  }

  private send(message: SupervisorMessage): void {
    if (this.child?.connected) this.child.send(message);
  }

  async start(): Promise<void> {
    const sim = this.options.scenario;
    if (sim) {
      this.peers = await startScenarioPeers(sim.scenario, { speed: sim.speed, onNote: (text) => this.note(text) });
      this.sources = this.peers.runtimeSources;
    }
    // The demo users' PIN hashes are computed on the thread pool while the edge starts.
    const users =
      this.options.ui === false || this.uiUsers !== undefined
        ? Promise.resolve(this.uiUsers)
        : Promise.all(DEMO_UI_USERS.map(async (u) => ({ name: u.name, role: u.role, pinHash: await hashPinAsync(u.pin) })));
    try {
      const [, hashed] = await Promise.all([this.edge.start(), users]);
      this.uiUsers = hashed;
    } catch (error) {
      await this.stopPeers();
      throw error;
    }
    const ready = new Promise<void>((resolve) => {
      this.runtimeReady = resolve;
    });
    this.spawnRuntime();
    if (this.peers) void this.startDevicesWhenOpened(this.peers);
    else this.resolveDevicesStarted();
    // The run's clock starts when the runtime has opened its ledger and started its sources, so a
    // slow start (a loaded board, a cold disk) does not eat into a `--seconds` run.
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
    if ((await Promise.race([ready, timeout, this.failed])) === 'timeout') this.note('the runtime has not reported ready after 60 s; running anyway (see the runtime log)');
    this.runtimeReady = undefined;
    if (this.options.chaos) this.planChaos();
  }

  /** Starts the simulated devices once the runtime reports every device sensor connected (or after 20 s, with a note). */
  private async startDevicesWhenOpened(peers: ScenarioPeers): Promise<void> {
    // Stream devices need the host's port open; BLE peripherals wait for the collector themselves.
    const sensors = peers.runtimeSources.filter((s) => s.driver.startsWith('serial-')).map((s) => s.sensor);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = this.lastStatus;
      const open = status !== undefined && sensors.every((name) => status.sensors.find((x) => x.sensor === name)?.connected === true);
      if (open || this.stopping || this.phase !== 'running') break;
      if (Date.now() > deadline) {
        const waiting = sensors.filter((name) => status?.sensors.find((x) => x.sensor === name)?.connected !== true);
        this.note(`devices start although the runtime has not opened ${waiting.join(', ')} after 20 s`);
        break;
      }
      await sleep(100);
    }
    this.resolveDevicesStarted();
    if (this.stopping || this.phase !== 'running') return;
    peers.start();
    await peers.finished;
    this.resolveDevicesFinished();
  }

  /** What the simulated devices sent (after the run). */
  get deviceExpectations(): ScenarioExpectations | undefined {
    return this.expectations ?? this.peers?.expected();
  }

  /** Chaos events, stratified over the run so that a short run still gets >= 2 broker restarts and >= 1 kill. */
  private planChaos(): void {
    const totalMs = (this.options.seconds ?? 60) * 1000;
    const restarts = Math.max(2, Math.round(totalMs / 10_000));
    const kills = Math.max(1, Math.round(totalMs / 20_000));
    const at = (i: number, n: number, from: number, to: number) => totalMs * (from + ((to - from) * (i + this.random())) / n);
    for (let i = 0; i < restarts; i++) this.schedule(at(i, restarts, 0.1, 0.85), () => this.restartBroker(300 + this.random() * 1_200));
    for (let i = 0; i < kills; i++) this.schedule(at(i, kills, 0.2, 0.8), () => this.killRuntime(200 + this.random() * 600));
    if (this.options.seconds === undefined) this.schedule(totalMs, async () => this.planChaos());
  }

  private schedule(delayMs: number, fn: () => Promise<void>): void {
    const timer = setTimeout(() => {
      if (this.phase === 'running') this.chaosBusy.push(fn());
    }, delayMs);
    this.chaosTimers.push(timer);
  }

  private async restartBroker(downMs: number): Promise<void> {
    await this.edge.stopBroker();
    this.brokerRestarts += 1;
    this.note(`chaos: broker stopped for ${Math.round(downMs)} ms`);
    await sleep(downMs);
    await this.edge.startBroker();
  }

  private async killRuntime(downMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    this.runtimeKills += 1;
    this.note(`chaos: runtime SIGKILLed; restarting in ${Math.round(downMs)} ms`);
    await this.childExit;
    await sleep(downMs);
    if (!this.stopping) this.spawnRuntime();
  }

  /** The runtime's last status report, once it sent one. */
  get runtimeStatus(): RuntimeStatus | undefined {
    return this.lastStatus;
  }

  /** The device ledger file (read it read-only while the runtime runs). */
  get ledgerPath(): string {
    return ledgerPath(join(this.dataDir, 'device'));
  }

  status(): DemoStatus {
    const stats = this.edge.store.stats();
    const status: DemoStatus = {
      edge: { url: this.edge.url, stored: stats.devices[this.deviceId] ?? {}, rejected: stats.rejected, brokerUp: this.edge.broker?.running ?? true },
      brokerRestarts: this.brokerRestarts,
      runtimeKills: this.runtimeKills,
      elapsedMs: Date.now() - this.startedAt,
      phase: this.phase,
    };
    if (this.lastStatus) status.runtime = this.lastStatus;
    if (this.options.seconds !== undefined) status.totalMs = this.options.seconds * 1000;
    return status;
  }

  /** Runs until `seconds` pass (or `interrupted` resolves), drains, stops, and returns the invariants. */
  async run(interrupted: Promise<unknown> = new Promise(() => undefined)): Promise<DemoResult> {
    let ticker: NodeJS.Timeout | undefined;
    try {
      await this.start();
      ticker = setInterval(() => this.options.onStatus?.(this.status()), 1_000);
      // With simulated devices the N seconds are seconds of device data: they count once the devices run.
      await Promise.race([this.devicesStarted, interrupted, this.failed]);
      await Promise.race([this.options.seconds === undefined ? interrupted : within(interrupted, this.options.seconds * 1000), this.failed]);
      return await this.finish();
    } catch (error) {
      // Whatever failed, nothing may be left running: the process must be able to exit with the error.
      await this.abort();
      throw error;
    } finally {
      clearInterval(ticker);
    }
  }

  /** Stops the simulated devices once (finish, a failed start and abort may all ask). */
  private async stopPeers(): Promise<void> {
    const peers = this.peers;
    this.peers = undefined;
    await peers?.stop();
  }

  /** Stops the edge once. */
  private async stopEdge(): Promise<void> {
    if (this.edgeStopped) return;
    this.edgeStopped = true;
    await this.edge.stop();
  }

  /** Closes the runtime log once (closing a descriptor twice could close a file that reused its number). */
  private closeLog(): void {
    if (this.logFd < 0) return;
    const fd = this.logFd;
    this.logFd = -1;
    closeSync(fd);
  }

  /** Stops the runtime, the simulated devices and the edge after a failure (each step best-effort). */
  private async abort(): Promise<void> {
    for (const t of this.chaosTimers) clearTimeout(t);
    const steps: (() => Promise<unknown> | void)[] = [() => this.stopRuntime(), () => this.stopPeers(), () => this.stopEdge(), () => this.closeLog()];
    for (const step of steps) {
      try {
        await step();
      } catch {
        // Already stopped or closed.
      }
    }
  }

  private async finish(): Promise<DemoResult> {
    this.phase = 'draining';
    for (const t of this.chaosTimers) clearTimeout(t);
    await Promise.all(this.chaosBusy);
    if (this.edge.broker && !this.edge.broker.running) await this.edge.startBroker();
    this.withSources = false;
    if (!this.child) this.spawnRuntime();
    const stopped = new Promise<void>((resolve) => {
      this.sourcesStopped = resolve;
    });
    this.send({ type: 'stop-sources' });
    await within(stopped, 5_000);
    const path = ledgerPath(join(this.dataDir, 'device'));
    const deadline = Date.now() + this.options.drainTimeoutMs;
    let drained = false;
    while (Date.now() < deadline) {
      const summary = readLedgerSummary(path);
      if (RECORD_KINDS.every((k) => summary.kinds[k].pending === 0)) {
        drained = true;
        break;
      }
      await sleep(200);
    }
    if (!drained) this.note(`backlog not drained within ${this.options.drainTimeoutMs} ms`);
    this.phase = 'stopping';
    await this.stopRuntime();
    try {
      return this.result(drained);
    } finally {
      if (this.peers) {
        this.expectations = this.peers.expected();
        await this.stopPeers();
      }
      await this.stopEdge();
      this.closeLog();
    }
  }

  private result(drained: boolean): DemoResult {
    const summary = readLedgerSummary(ledgerPath(join(this.dataDir, 'device')));
    const audit = this.edge.store.audit(this.deviceId);
    const produced = {} as Record<RecordKind, number>;
    const acked = {} as Record<RecordKind, number>;
    const edgeStored = {} as Record<RecordKind, number>;
    let duplicatesAtEdge = 0;
    let missingAtEdge = 0;
    for (const kind of RECORD_KINDS) {
      produced[kind] = summary.kinds[kind].produced;
      acked[kind] = summary.kinds[kind].produced - summary.kinds[kind].pending;
      edgeStored[kind] = audit[kind]?.stored ?? 0;
      duplicatesAtEdge += audit[kind]?.duplicateBodies ?? 0;
      missingAtEdge += Math.max(0, produced[kind] - edgeStored[kind]);
    }
    return {
      produced,
      acked,
      edgeStored,
      duplicatesAtEdge,
      missingAtEdge,
      quarantined: produced.quarantine,
      brokerRestarts: this.brokerRestarts,
      runtimeKills: this.runtimeKills,
      runtimeRestarts: this.runtimeRestarts,
      drained,
      dataDir: this.dataDir,
    };
  }

  /** Stops the runtime gracefully (SIGKILL after 10 s). */
  private async stopRuntime(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child) {
      this.send({ type: 'shutdown' });
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await this.childExit;
      clearTimeout(killer);
    }
  }

  /** Removes the data directory if it was temporary. */
  cleanup(): void {
    if (this.temporary) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
