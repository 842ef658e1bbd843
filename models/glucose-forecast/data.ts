/**
 * The CGM reference data for training and evaluating the forecast: `cgm/hall2018.csv` and
 * `cgm/colas2019.zip` (one CSV inside, read with a minimal zip reader: stored or deflated entries,
 * no zip64, no encryption) from the shared data directory. Subjects are prefixed with their dataset
 * (`hall:`, `colas:`) because the two number their people independently.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { MedgeError } from '../../device-sdk/errors.js';
import { parseCgmCsv, tracesById } from '../../device-sdk/signal/glucose/csv.js';
import type { GlucosePoint } from '../../device-sdk/signal/glucose/types.js';

export interface Subject {
  id: string;
  dataset: 'hall2018' | 'colas2019';
  trace: GlucosePoint[];
}

/** The entries of a zip archive (name -> bytes). */
export function readZip(bytes: Uint8Array): Map<string, Buffer> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new MedgeError('zip', 'not a zip archive (no end of central directory record)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let k = 0; k < count; k++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new MedgeError('zip', `bad central directory entry at ${p}`);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new MedgeError('zip', `bad local header of ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + compressed);
    if (method === 0) out.set(name, Buffer.from(data));
    else if (method === 8) out.set(name, inflateRawSync(data));
    else throw new MedgeError('zip', `${name}: compression method ${method} is not supported`);
  }
  return out;
}

function subjects(dataset: Subject['dataset'], prefix: string, csv: string): Subject[] {
  return [...tracesById(parseCgmCsv(csv))].map(([id, trace]) => ({ id: `${prefix}:${id}`, dataset, trace }));
}

/** Both CGM datasets of `dataDir` (the shared `data` directory). */
export function loadCgmSubjects(dataDir: string): Subject[] {
  const cgm = join(dataDir, 'cgm');
  const hall = subjects('hall2018', 'hall', readFileSync(join(cgm, 'hall2018.csv'), 'utf8'));
  const entries = readZip(readFileSync(join(cgm, 'colas2019.zip')));
  const csv = [...entries].find(([name]) => name.endsWith('.csv'));
  if (!csv) throw new MedgeError('zip', 'colas2019.zip holds no .csv file');
  return [...hall, ...subjects('colas2019', 'colas', csv[1].toString('utf8'))];
}

/**
 * The subject-wise split: in each dataset, subjects ordered by sha256(seed + id) and the first
 * `testFraction` of them held out. Deterministic, independent of file order.
 */
export function splitSubjects(all: readonly Subject[], seed: number, testFraction: number): { train: Subject[]; test: Subject[] } {
  const key = (s: Subject) => createHash('sha256').update(`${seed}:${s.id}`).digest('hex');
  const train: Subject[] = [];
  const test: Subject[] = [];
  for (const dataset of ['hall2018', 'colas2019'] as const) {
    const ds = all.filter((s) => s.dataset === dataset).sort((a, b) => (key(a) < key(b) ? -1 : 1));
    const nTest = Math.round(ds.length * testFraction);
    test.push(...ds.slice(0, nTest));
    train.push(...ds.slice(nTest));
  }
  return { train, test };
}

/** `k` folds of subjects for cross-validation: per dataset, subjects in sha256(seed + id) order dealt round-robin. */
export function subjectFolds(all: readonly Subject[], seed: number, k: number): Subject[][] {
  const key = (s: Subject) => createHash('sha256').update(`${seed}:${s.id}`).digest('hex');
  const folds: Subject[][] = Array.from({ length: k }, () => []);
  for (const dataset of ['hall2018', 'colas2019'] as const) {
    all
      .filter((s) => s.dataset === dataset)
      .sort((a, b) => (key(a) < key(b) ? -1 : 1))
      .forEach((s, i) => (folds[i % k] as Subject[]).push(s));
  }
  return folds;
}
