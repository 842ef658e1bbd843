// Runs every benchmark in its own Node process and prints their JSON objects merged into one.
//
//   node bench/run.js                  all of BENCHES that exist
//   node bench/run.js sync-drain ...   only those named
//
// Each bench prints one JSON object on stdout (progress on stderr, passed through here with a
// prefix). A bench that exits non-zero, or prints no JSON object, fails the run: its entry becomes
// `{ "error": ... }` and this script exits 1 after printing the merged object.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** In order; a bench whose file does not exist (yet) is skipped silently. */
const BENCHES = ['store-ingest', 'sync-drain', 'idle-rss', 'ecg-pipeline', 'glucose-forecast', 'pcg-classify', 'serial-stream', 'ble-backfill', 'cgm-recall', 'cgm-resend-judge', 'fhir-api', 'fhir-index-refresh', 'edge-stats-by-boot'];

/**
 * @param {string} name
 * @returns {Promise<{ ok: boolean, result: Record<string, unknown> }>}
 */
function runBench(name) {
  const file = join(here, `${name}.js`);
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [file], { cwd: join(here, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) process.stderr.write(`[${name}] ${line}\n`);
    });
    child.on('error', (error) => resolve({ ok: false, result: { [name]: { error: `could not start: ${error.message}` } } }));
    child.on('close', (code, signal) => {
      if (pending) process.stderr.write(`[${name}] ${pending}\n`);
      const seconds = Math.round(performance.now() - started) / 1000;
      /** @type {unknown} */
      let parsed;
      const text = stdout.trim();
      try {
        parsed = JSON.parse(text);
      } catch {
        // Tolerate stray lines before the JSON object: take the last line that parses as an object.
        for (const line of text.split('\n').reverse()) {
          try {
            parsed = JSON.parse(line);
            break;
          } catch {
            // keep looking
          }
        }
      }
      const isObject = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed);
      const ok = code === 0 && isObject;
      process.stderr.write(`[${name}] ${ok ? 'done' : 'FAILED'} in ${seconds} s (exit ${code ?? signal})\n`);
      if (isObject) {
        const result = /** @type {Record<string, unknown>} */ (parsed);
        if (!ok) {
          for (const [key, value] of Object.entries(result)) {
            if (value && typeof value === 'object' && !('error' in value)) {
              /** @type {Record<string, unknown>} */ (value).error = `bench exited with ${code ?? signal}`;
            } else if (!value || typeof value !== 'object') result[key] = { value, error: `bench exited with ${code ?? signal}` };
          }
        }
        resolve({ ok, result });
      } else {
        resolve({ ok: false, result: { [name]: { error: `exited with ${code ?? signal} without a JSON object on stdout`, stdout: text.slice(-500) } } });
      }
    });
  });
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !existsSync(join(here, `${n}.js`)));
if (unknown.length > 0) {
  process.stderr.write(`no such bench: ${unknown.join(', ')} (benches: ${BENCHES.join(', ')})\n`);
  process.exit(2);
}
const names = wanted.length > 0 ? wanted : BENCHES.filter((n) => existsSync(join(here, `${n}.js`)));

/** @type {Record<string, unknown>} */
const merged = {};
let failed = 0;
for (const name of names) {
  process.stderr.write(`[${name}] running node bench/${name}.js\n`);
  const { ok, result } = await runBench(name);
  if (!ok) failed += 1;
  Object.assign(merged, result);
}
process.stdout.write(`${JSON.stringify(merged, null, 2)}\n`);
if (failed > 0) {
  process.stderr.write(`${failed} of ${names.length} benches failed\n`);
  process.exitCode = 1;
}
