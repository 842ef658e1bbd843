// Resident memory of the device runtime (`medge run`), connected to an edge node:
// idle (no sources) and with the demo's simulated sources. Prints JSON on stdout.
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeNode } from '../dist/edge/index.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'medge.js');
const settleMs = Number(process.env.MEDGE_BENCH_SETTLE_MS ?? 10_000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
  return { rssMiB: Math.round((kb / 1024) * 10) / 10, peakMiB: Math.round((hwm / 1024) * 10) / 10 };
}

async function measure(dir, edgeUrl, name, sources) {
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({ deviceId: `rss-${name}`, dataDir: join(dir, name), edge: { url: edgeUrl }, sources, log: { level: 'warn' } }));
  const child = fork(BIN, ['run', '--config', config], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let link = 'unknown';
  child.on('message', (m) => {
    if (m.type === 'status') link = m.status.link;
  });
  await sleep(settleMs);
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssMiB(child.pid));
    await sleep(200);
  }
  child.send({ type: 'shutdown' });
  await new Promise((r) => child.on('exit', r));
  const rss = samples.map((s) => s.rssMiB).sort((a, b) => a - b);
  return { rssMiB: rss[Math.floor(rss.length / 2)], peakMiB: Math.max(...samples.map((s) => s.peakMiB)), link, settledMs: settleMs };
}

const dir = mkdtempSync(join(tmpdir(), 'medge-bench-rss-'));
const edge = new EdgeNode({ dataDir: join(dir, 'edge'), port: 0 });
try {
  await edge.start();
  const idle = await measure(dir, edge.url, 'idle', []);
  const withSources = await measure(dir, edge.url, 'sources', [{ type: 'sim-ecg' }, { type: 'sim-pcg' }, { type: 'sim-hr' }, { type: 'sim-glucose', intervalMs: 1000 }]);
  process.stdout.write(`${JSON.stringify({ 'runtime-rss': { idle, withSimSources: withSources, targetIdleMiB: 120 } })}\n`);
} finally {
  await edge.stop();
  rmSync(dir, { recursive: true, force: true });
}
