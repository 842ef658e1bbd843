// Shared helpers of the benchmarks: realistic readings, argument parsing, temp dirs, file system facts.

import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const T0 = 1_750_000_000_000;
const MEALS = ['before-meal', 'after-meal', 'fasting', 'bedtime'];
const SITES = ['finger', 'alternate-site'];

/**
 * The i-th reading of a deterministic mix as a clinic board produces it: glucose-meter readings
 * (with the meter's record number and clock, and meal context), CGM values every 5 minutes, and
 * heart rate from a BLE strap.
 * @param {number} i
 * @returns {import('../../dist/device-sdk/records.js').Reading}
 */
export function reading(i) {
  const t = T0 + i * 1000;
  switch (i % 4) {
    case 0:
      return {
        sensor: 'glucose-meter',
        type: 'glucose',
        value: 70 + ((i * 37) % 180),
        unit: 'mg/dL',
        tDevice: t,
        tMeter: t - 42_000,
        meterRecord: (i >> 2) % 65_536,
        context: { meal: MEALS[(i >> 2) % MEALS.length] ?? 'fasting', sample: SITES[(i >> 3) % SITES.length] ?? 'finger' },
      };
    case 1:
      return { sensor: 'cgm', type: 'glucose', value: 60 + ((i * 13) % 200), unit: 'mg/dL', tDevice: t };
    default:
      return { sensor: 'hr-strap', type: 'heart-rate', value: 55 + ((i * 7) % 70), unit: 'bpm', tDevice: t };
  }
}

/**
 * `--name value` from argv as a number, or `fallback`.
 * @param {string} name
 * @param {number} fallback
 */
export function numberArg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`--${name} needs a positive number, got ${JSON.stringify(process.argv[at + 1])}\n`);
    process.exit(2);
  }
  return value;
}

/**
 * `--name value` from argv as a string, or `fallback`.
 * @param {string} name
 * @param {string} fallback
 */
export function stringArg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : (process.argv[at + 1] ?? fallback);
}

/** @type {string[]} */
const dirs = [];
/** @param {string} prefix */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `medge-bench-${prefix}-`));
  dirs.push(dir);
  return dir;
}
/** @param {string} dir */
export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  const at = dirs.indexOf(dir);
  if (at >= 0) dirs.splice(at, 1);
}
process.once('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const FS_TYPES = new Map([
  [0xef53, 'ext4'],
  [0x01021994, 'tmpfs'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
  [0x65735546, 'fuse'],
]);

/** Where the bench writes its databases and what file system that is (fsync cost depends on it). */
export function tempFsInfo() {
  const dir = tmpdir();
  try {
    const type = statfsSync(dir).type;
    return { dir, fs: FS_TYPES.get(type) ?? `0x${type.toString(16)}` };
  } catch {
    return { dir, fs: 'unknown' };
  }
}

/** @param {string} line */
export function progress(line) {
  process.stderr.write(`${line}\n`);
}

/** @param {number} x @param {number} [digits] */
export function round(x, digits = 0) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
