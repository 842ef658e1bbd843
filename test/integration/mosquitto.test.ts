import { fork } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RECORD_KINDS } from '../../device-sdk/records.js';
import { readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { EdgeStore, readEdgeStats } from '../../edge/edge-store.js';
import type { RuntimeMessage } from '../../firmware/cli/run.js';
import { BIN, medgeBackground, requireBuild } from '../helpers/cli.js';
import { findMosquitto, type MosquittoBroker, startMosquitto, systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const available = systemAvailable('mosquitto', findMosquitto() !== undefined, 'mosquitto');
const dir = mkdtempSync(join(tmpdir(), 'medge-mosquitto-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!available)('delivery through Mosquitto (skipped: mosquitto not installed)', () => {
  it('keeps edgeStored == produced == acked with no duplicates when the broker is SIGKILLed mid-stream', async () => {
    requireBuild();
    const broker: MosquittoBroker = await startMosquitto();
    const edgeDir = join(dir, 'edge');
    const edge = medgeBackground(['edge', '--data', edgeDir, '--broker', broker.url, '--log-level', 'warn']);
    const configPath = join(dir, 'runtime.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        deviceId: 'mosq-dev-1',
        site: 'ci',
        dataDir: join(dir, 'device'),
        edge: { url: broker.url, ackTimeoutMs: 2_000, backoff: { initialMs: 100, maxMs: 1_000 }, batchMaxRecords: 50 },
        sources: [
          { type: 'sim-ecg', chunkMs: 100 },
          { type: 'sim-hr', intervalMs: 200 },
          { type: 'sim-glucose', intervalMs: 300, corruptRate: 0.1 },
        ],
        log: { level: 'warn' },
        statusIntervalMs: 500,
      }),
    );
    const logPath = join(dir, 'runtime.log');
    const logFd = openSync(logPath, 'a');
    const runtime = fork(BIN, ['run', '--config', configPath], { stdio: ['ignore', logFd, logFd, 'ipc'] });
    closeSync(logFd);
    let sourcesStopped = false;
    runtime.on('message', (m: RuntimeMessage) => {
      if (m.type === 'sources-stopped') sourcesStopped = true;
    });
    const runtimeExit = new Promise<number | null>((resolve) => runtime.on('exit', (code) => resolve(code)));
    const stored = () => Object.values(readEdgeStats(edgeDir).devices['mosq-dev-1'] ?? {}).reduce((a, b) => a + (b ?? 0), 0);
    try {
      await waitFor(() => {
        try {
          return stored() > 30;
        } catch {
          return false; // the edge has not created its store yet
        }
      }, 'first records at the edge');
      for (let round = 0; round < 2; round++) {
        const before = stored();
        await broker.kill();
        await new Promise((r) => setTimeout(r, 700));
        await broker.restart();
        await waitFor(() => stored() > before + 20, `records flowing again after broker kill ${round + 1}`);
      }
      runtime.send({ type: 'stop-sources' });
      await waitFor(() => sourcesStopped, 'sources stopped');
      const ledger = join(dir, 'device', 'ledger.sqlite');
      await waitFor(() => RECORD_KINDS.every((k) => readLedgerSummary(ledger).kinds[k].pending === 0), 'backlog drained', 30_000);
      runtime.send({ type: 'shutdown' });
      expect(await runtimeExit).toBe(0);

      const summary = readLedgerSummary(ledger);
      const edgeStats = readEdgeStats(edgeDir).devices['mosq-dev-1'] ?? {};
      expect(summary.kinds.chunk.produced).toBeGreaterThan(20);
      expect(summary.kinds.reading.produced).toBeGreaterThan(10);
      expect(summary.kinds.quarantine.produced).toBeGreaterThan(0);
      for (const kind of RECORD_KINDS) {
        if (summary.kinds[kind].produced > 0) expect(summary.kinds[kind].ackedUpTo, kind).toBe(summary.kinds[kind].lastSeq);
        expect(edgeStats[kind] ?? 0, kind).toBe(summary.kinds[kind].produced);
      }
      expect(await edge.stop()).toBe(0);
      const store = new EdgeStore(edgeDir);
      const audit = store.audit('mosq-dev-1');
      store.close();
      for (const kind of RECORD_KINDS) {
        const a = audit[kind];
        const { produced, lastSeq } = summary.kinds[kind];
        if (produced === 0) continue;
        // One run: its seqs count up from the wall-clock floor without a gap.
        expect(a, kind).toMatchObject({ stored: produced, minSeq: lastSeq - produced + 1, maxSeq: lastSeq, duplicateBodies: 0 });
      }
    } catch (error) {
      process.stderr.write(`runtime log:\n${readFileSync(logPath, 'utf8').slice(-4000)}\nedge output:\n${edge.output().slice(-2000)}\n`);
      throw error;
    } finally {
      if (runtime.exitCode === null) runtime.kill('SIGKILL');
      await edge.stop();
      await broker.dispose();
    }
  });
});
