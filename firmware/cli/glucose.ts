import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import type { BackendName } from '../../device-sdk/inference/backend.js';
import { CGM_CSV_MAX_BYTES, CgmCsvError, type CgmRow, cgmCsvTooLarge, checkGlucoseRange, checkUnitMix, decodeCgmCsv, EITHER_UNIT_BELOW, GLUCOSE_RANGE_MG_DL, GLUCOSE_UNITS, type GlucoseUnit, MG_DL_PER_MMOL_L, mgdlLike, mmolLike, parseCgmCsv, rowsInMgDl, tracesById, unitUndecidable } from '../../device-sdk/signal/glucose/csv.js';
import { sensorFaults } from '../../device-sdk/signal/glucose/faults.js';
import { decodeForecast, FORECAST_SPEC, forecastFeatures } from '../../device-sdk/signal/glucose/forecast.js';
import { detectorFeatures, detectorProbability, hypoAlertStates } from '../../device-sdk/signal/glucose/hypo-detector.js';
import { type CgmMetrics, cgmMetrics } from '../../device-sdk/signal/glucose/metrics.js';
import type { GlucosePoint } from '../../device-sdk/signal/glucose/types.js';
import { defaultGlucoseModelDir, type GlucoseForecaster, loadGlucoseForecaster } from '../glucose-monitor.js';
import { DataError, parse, UsageError } from './args.js';
import { checkOutFile } from './out-file.js';
import { type CliProgress, createCliProgress } from './progress.js';
import { OS_PROBLEMS } from './system-errors.js';

export const GLUCOSE_USAGE = `Usage: medge glucose predict --csv IN --out OUT.csv [--units mg/dL|mmol/L] [--horizon 30] [--model DIR] [--backend wasm|cpu|tensorflow] [--progress]
       medge glucose report --csv IN [--units mg/dL|mmol/L] [--id ID] [--json] [--progress]

predict  forecasts glucose 30 minutes ahead at every row of IN (columns id,time,gl in mg/dL, any
         sampling, gaps allowed) and writes OUT (a file, not IN itself; its directory must exist) with the columns id,time,gl,pred_gl,hypo_alert:
         pred_gl is the forecast for time + 30 min from the subject's readings up to time only;
         hypo_alert is 1 where the predicted-hypoglycaemia alert is on: the model's detector
         estimates the probability that an event (< 70 mg/dL for >= 15 min) starts 10 to 60 min
         later, and the device's alert logic (threshold with hysteresis; never at a reading below
         70 mg/dL nor during an ongoing event) turns it on, from readings up to time only.
         Where the last 30 minutes are not covered without a gap, pred_gl is the last reading
         (persistence) and hypo_alert 0; rows without a glucose value get empty fields.
         The model is models/glucose-forecast/artifact unless --model DIR.
IN       time: YYYY-MM-DD HH:MM[:SS] or ISO 8601 (T, fractions, Z or +HH:MM), or epoch milliseconds;
         gl: a number, or NA, NaN, null or empty for a missing reading. Refused with the line number: any
         other time (slash dates, dates with the year last, AM/PM), a row with more or fewer fields than
         the header (a decimal comma: write 5.3, not 5,3), a value that is not a positive number (Low/High:
         write the sensor's limit or NA) or is outside ${GLUCOSE_RANGE_MG_DL[0]}-${GLUCOSE_RANGE_MG_DL[1]} mg/dL (no meter or CGM
         reports one), and two different readings of a subject at one time (local times without an offset
         repeat an hour at the autumn clock change; an exact duplicate row is one reading). Also refused:
         a file that is not UTF-8 text (Latin-1: re-save as UTF-8, e.g. iconv -f latin1 -t utf-8), a
         header naming a column twice, and times with and without a UTC offset in one file. A file without
         readings is refused.
--units  the unit of gl in IN, and of gl and pred_gl in OUT and mean and SD in the report (default
         mg/dL; medge computes in mg/dL, 1 mmol/L = 18.016 mg/dL). A file of 3 or more values that cannot be
         mg/dL (median < 25, all < 35) is refused without --units mmol/L rather than read as hypoglycaemia,
         and one that cannot be mmol/L (median > 25, highest > 35 mmol/L) is refused with it. One or
         two readings all below 35 (a severe low in mg/dL, a high in mmol/L) need --units. Per subject,
         readings that can only be the other unit are refused naming the first line (all of a subject's
         readings; in mg/dL one below 35 with a fraction among whole numbers, or one that would be a change faster than
         10 mg/dL/min but continues the trace as mmol/L; in mmol/L one of 35 or more): split the file.
         In mg/dL a reading below 35 that the nearest higher reading before or after it does not show
         to be a real low (reachable as mg/dL at 10 mg/dL/min, not as mmol/L) is refused too: convert
         it if it is mmol/L, or write NA.
--progress  progress on stderr (the default when stderr is a terminal).
report   the international consensus CGM metrics (Battelino 2019) per subject: time in ranges,
         mean, SD, CV, GMI, data sufficiency (the share of the subject's period, first reading to the
         end of the last, covered by readings; the consensus asks for >= 70 % of 14 days),
         hypoglycaemic events (level 1 < 70, level 2 < 54 mg/dL, >= 15 min), and sensor-fault flags
         (gaps, flat lines, compression lows, sensor limits).

Decision support for review by a clinician, not a diagnosis.`;

export async function glucoseCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'predict') return predict(rest);
  if (sub === 'report') return report(rest);
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`${GLUCOSE_USAGE}\n`);
    return 0;
  }
  throw new UsageError(sub === undefined ? 'glucose needs a subcommand' : `unknown glucose subcommand ${JSON.stringify(sub)}; subcommands are: predict, report`, GLUCOSE_USAGE);
}

/**
 * The rows of a CGM CSV in mg/dL, and the unit they were given in (`--units`, default mg/dL). A --units
 * value that is not a unit is a command-line error (`UsageError`, exit 2), checked first; everything else
 * it refuses is about the file, a `DataError` (exit 1, the message without the usage): values that look
 * like the other unit, a value no device reports, a file without readings, a file it cannot read or parse.
 */
function readRows(path: string, units: string | undefined, progress: CliProgress): { rows: readonly CgmRow[]; unit: GlucoseUnit } {
  if (units !== undefined && !(GLUCOSE_UNITS as readonly string[]).includes(units)) throw new UsageError(`--units must be one of ${GLUCOSE_UNITS.join(', ')} (got ${JSON.stringify(units)})`, GLUCOSE_USAGE);
  const unit = (units ?? 'mg/dL') as GlucoseUnit;
  const rows = parseRows(path, progress);
  const values = rows.map((r) => r.gl);
  const short = units === undefined ? unitUndecidable(values) : undefined;
  if (short) {
    throw new DataError(
      `${path}: ${short.length === 1 ? 'one reading' : `${short.length} readings`} (${short.join(', ')}), all below ${EITHER_UNIT_BELOW}: that is a severe low in mg/dL or a high in mmol/L, and too few readings to tell which; give --units mg/dL or --units mmol/L`,
    );
  }
  const mmol = unit === 'mg/dL' ? mmolLike(values) : undefined;
  if (mmol) {
    throw new DataError(
      `${path}: the gl values look like mmol/L, not mg/dL (median ${mmol.median}, highest ${mmol.max}; a CGM reads 40-400 mg/dL): give --units mmol/L, or convert the file to mg/dL`,
    );
  }
  const mgdl = unit === 'mmol/L' ? mgdlLike(values) : undefined;
  if (mgdl) {
    throw new DataError(
      `${path}: the gl values look like mg/dL, not mmol/L (median ${mgdl.median}, highest ${mgdl.max}; a CGM reads 2.2-22.2 mmol/L, a meter at most 33.3): leave out --units mmol/L (mg/dL is the default), or convert the file to mmol/L`,
    );
  }
  try {
    checkGlucoseRange(rows, unit);
    checkUnitMix(rows, unit);
  } catch (error) {
    if (error instanceof CgmCsvError) throw new DataError(`${path}: ${error.message}`, { cause: error });
    throw error;
  }
  if (!values.some(Number.isFinite)) {
    throw new DataError(`${path}: no glucose readings (${rows.length === 0 ? 'only a header' : `all ${rows.length} rows are NA or empty`}): nothing to ${rows.length === 0 ? 'analyse' : 'analyse; check the gl column'}`);
  }
  return { rows: rowsInMgDl(rows, unit), unit };
}

/**
 * The bytes of a CGM CSV file, or `CgmCsvError` naming the line where `CGM_CSV_MAX_BYTES` falls when it is larger:
 * then only that much is read (a file over 2 GiB cannot be read in one piece; before, it was refused with a bare
 * ERR_FS_FILE_TOO_LARGE, and a 600 MB file was read whole to be refused).
 */
function readWhole(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size <= CGM_CSV_MAX_BYTES) return readFileSync(fd);
    const head = Buffer.allocUnsafe(CGM_CSV_MAX_BYTES);
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n === 0) break;
      got += n;
    }
    throw cgmCsvTooLarge(head.subarray(0, got), size);
  } finally {
    closeSync(fd);
  }
}

function parseRows(path: string, progress: CliProgress): CgmRow[] {
  let bytes: Uint8Array;
  try {
    bytes = readWhole(path);
    progress.step(`reading ${path} (${(bytes.length / 1e6).toFixed(1)} MB)`, true);
  } catch (error) {
    if (error instanceof CgmCsvError) throw new DataError(`${path}: ${error.message}`, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new DataError(`cannot read ${path}: ${OS_PROBLEMS[code] ?? code} (${code})`, { cause: error });
  }
  try {
    return parseCgmCsv(decodeCgmCsv(bytes), { onProgress: (line, fraction) => progress.step(`reading ${path}: line ${line} (${Math.round(fraction * 100)} %)`) });
  } catch (error) {
    if (error instanceof CgmCsvError) throw new DataError(`${path}: ${error.message}`, { cause: error });
    throw error;
  }
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Readings per model call of `predict` (one subject of months at 1-min sampling is ~10^5). */
const PREDICT_BATCH = 8192;
/** `predict` writes its output in pieces of about this many characters instead of one string of the file. */
const WRITE_CHUNK_CHARS = 1 << 20;

/** Indices of the rows with a reading (not NA), per subject in first-seen order. */
function subjectRows(rows: readonly CgmRow[]): Map<string, number[]> {
  const by = new Map<string, number[]>();
  rows.forEach((r, k) => {
    if (!Number.isFinite(r.gl)) return;
    let list = by.get(r.id);
    if (list === undefined) by.set(r.id, (list = []));
    list.push(k);
  });
  return by;
}

/**
 * The trace of the rows `indices` of one subject (as `tracesById` makes it: sorted by time, an exact
 * duplicate row is one point; `parseCgmCsv` refused conflicting ones), and the trace point of each row.
 */
function traceOf(rows: readonly CgmRow[], indices: readonly number[]): { trace: GlucosePoint[]; pointOf: Int32Array } {
  const order = indices.map((_, k) => k).sort((x, y) => (rows[indices[x] as number] as CgmRow).t - (rows[indices[y] as number] as CgmRow).t || x - y);
  const trace: GlucosePoint[] = [];
  const pointOf = new Int32Array(indices.length).fill(-1);
  for (const k of order) {
    const r = rows[indices[k] as number] as CgmRow;
    if (trace.length === 0 || (trace[trace.length - 1] as GlucosePoint).t !== r.t) trace.push({ t: r.t, gl: r.gl });
    pointOf[k] = trace.length - 1;
  }
  return { trace, pointOf };
}

async function predict(args: string[]): Promise<number> {
  const { values } = parse(args, { csv: { type: 'string' }, out: { type: 'string' }, units: { type: 'string' }, horizon: { type: 'string' }, model: { type: 'string' }, backend: { type: 'string' }, progress: { type: 'boolean' } }, GLUCOSE_USAGE);
  if (values.help) {
    process.stdout.write(`${GLUCOSE_USAGE}\n`);
    return 0;
  }
  if (!values.csv || !values.out) throw new UsageError('--csv IN and --out OUT.csv are required', GLUCOSE_USAGE);
  checkOutFile(values.out, { keep: [{ file: values.csv, refusal: 'is the input file: it would be overwritten; write the forecast to another file' }], example: 'forecast.csv', usage: GLUCOSE_USAGE });
  if (values.horizon !== undefined && Number(values.horizon) !== FORECAST_SPEC.horizonMin) throw new UsageError(`--horizon: the model forecasts ${FORECAST_SPEC.horizonMin} minutes ahead only (got ${JSON.stringify(values.horizon)})`, GLUCOSE_USAGE);
  // TF.js loads only for this subcommand (every other medge command starts without it).
  const { BACKENDS, InferenceError, initBackend, layersModelFromFiles, tf } = await import('../../device-sdk/inference/index.js');
  const backend = (values.backend ?? 'wasm') as BackendName;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')} (got ${JSON.stringify(values.backend)})`, GLUCOSE_USAGE);
  const progress = createCliProgress('glucose predict', { requested: values.progress === true });
  const { rows, unit } = readRows(values.csv, values.units, progress);
  // Output in the input's unit: mg/dL as computed, mmol/L converted back.
  const inUnit = (mgdl: number, digits: number) => (unit === 'mg/dL' ? mgdl.toFixed(digits) : String(Math.round((mgdl / MG_DL_PER_MMOL_L) * 100) / 100));
  const glText = (mgdl: number) => (unit === 'mg/dL' ? String(mgdl) : inUnit(mgdl, 2));
  // One load (the runtime's): the manifest read and every file checked against its sha256 once; the
  // detector and its alert policy from it, and the forecast's TF.js model from the same checked bytes.
  const dir = values.model ?? defaultGlucoseModelDir();
  let forecaster: GlucoseForecaster;
  try {
    forecaster = loadGlucoseForecaster(dir);
  } catch (error) {
    throw new InferenceError(`${dir}: ${(error as Error).message}`, { cause: error });
  }
  await initBackend(backend);
  const model = await layersModelFromFiles(forecaster.forecastFiles.topology, forecaster.forecastFiles.weights);
  const subjects = subjectRows(rows);
  const readings = [...subjects.values()].reduce((n, list) => n + list.length, 0);
  progress.step(`read ${rows.length} rows of ${subjects.size} subjects from ${values.csv}`, true);
  // Per input row: pred_gl (mg/dL; NaN where there is none) and hypo_alert. Typed arrays, not a map per
  // subject and time: 2.1 M rows held ~1.5 GB as objects.
  const predGl = new Float64Array(rows.length).fill(Number.NaN);
  const alert = new Uint8Array(rows.length);
  const F = FORECAST_SPEC.features;
  let done = 0;
  let doneRows = 0;
  for (const [, indices] of subjects) {
    // The subject's trace: sorted by time, one point per time (an exact duplicate row is one reading);
    // `pointOf[k]` is the trace point of row `indices[k]`.
    const { trace, pointOf } = traceOf(rows, indices);
    const probs = new Float64Array(trace.length).fill(Number.NaN);
    // Where the model cannot run: persistence (the reading itself) and no alert.
    const predAt = Float64Array.from(trace, (p) => p.gl);
    // The model runs on batches of up to PREDICT_BATCH readings, so that a long subject needs no more memory.
    const feats = new Float32Array(Math.min(PREDICT_BATCH, trace.length) * F);
    const batch: number[] = [];
    const flush = () => {
      const out = tf.tidy(() => (model.predict(tf.tensor2d(feats.subarray(0, batch.length * F), [batch.length, F])) as { dataSync(): Float32Array }).dataSync());
      batch.forEach((i, r) => {
        const p = trace[i] as GlucosePoint;
        const fc = decodeForecast(p.gl, [out[2 * r] as number, out[2 * r + 1] as number]);
        predAt[i] = fc.predGl;
        const x = detectorFeatures(trace, i, feats.subarray(r * F, r * F + F), fc);
        probs[i] = detectorProbability(forecaster.detector.predict(x)[0] as number);
      });
      batch.length = 0;
    };
    for (let i = 0; i < trace.length; i++) {
      const f = forecastFeatures(trace, i);
      if (f === undefined) continue;
      feats.set(f, batch.length * F);
      batch.push(i);
      if (batch.length === PREDICT_BATCH) flush();
    }
    if (batch.length > 0) flush();
    // The alert logic runs over every reading (it follows events also where the model cannot run); it is
    // reported only where the model ran.
    const on = hypoAlertStates(trace, probs, forecaster.policy);
    indices.forEach((row, k) => {
      const i = pointOf[k] as number;
      predGl[row] = predAt[i] as number;
      alert[row] = Number.isNaN(probs[i] as number) ? 0 : (on[i] as number);
    });
    done++;
    doneRows += indices.length;
    progress.step(`${done}/${subjects.size} subjects (${doneRows}/${readings} readings)`, done === subjects.size);
  }
  let alerts = 0;
  try {
    const fd = openSync(values.out, 'w');
    try {
      let chunk = 'id,time,gl,pred_gl,hypo_alert\n';
      rows.forEach((r, k) => {
        const has = Number.isFinite(r.gl) && !Number.isNaN(predGl[k] as number);
        if (has) alerts += alert[k] as number;
        chunk += `${[csvField(r.id), csvField(r.time), Number.isFinite(r.gl) ? glText(r.gl) : '', has ? inUnit(predGl[k] as number, 1) : '', has ? String(alert[k]) : ''].join(',')}\n`;
        if (chunk.length >= WRITE_CHUNK_CHARS) {
          writeSync(fd, chunk);
          chunk = '';
        }
      });
      writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw new UsageError(`cannot write ${values.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, GLUCOSE_USAGE);
  }
  process.stderr.write(`medge glucose predict: ${rows.length} rows, ${subjects.size} subjects, ${alerts} rows with a predicted-hypoglycaemia alert; model ${forecaster.modelId} (${forecaster.sha256.slice(0, 12)}) on ${backend}; written to ${values.out}${unit === 'mg/dL' ? '' : ' (gl and pred_gl in mmol/L)'}\n`);
  return 0;
}

export interface SubjectReport extends Omit<CgmMetrics, 'events'> {
  id: string;
  faults: Record<string, number>;
}

export function subjectReport(id: string, trace: readonly GlucosePoint[]): SubjectReport {
  const { events: _events, ...m } = cgmMetrics(trace);
  const faults: Record<string, number> = { gap: 0, 'flat-line': 0, 'compression-low': 0, 'sensor-limit': 0 };
  for (const f of sensorFaults(trace)) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
  return { id, ...m, faults };
}

function report(args: string[]): number {
  const { values } = parse(args, { csv: { type: 'string' }, units: { type: 'string' }, id: { type: 'string' }, json: { type: 'boolean' }, progress: { type: 'boolean' } }, GLUCOSE_USAGE);
  if (values.help) {
    process.stdout.write(`${GLUCOSE_USAGE}\n`);
    return 0;
  }
  if (!values.csv) throw new UsageError('--csv IN is required', GLUCOSE_USAGE);
  const progress = createCliProgress('glucose report', { requested: values.progress === true });
  const { rows, unit } = readRows(values.csv, values.units, progress);
  const traces = tracesById(rows);
  progress.step(`read ${rows.length} rows of ${traces.size} subjects from ${values.csv}`, true);
  if (values.id !== undefined && !traces.has(values.id)) throw new DataError(`no readings of subject ${JSON.stringify(values.id)} in ${values.csv}`);
  // Mean and SD in the input's unit (the rest are percentages and counts).
  const reports = [...traces]
    .filter(([id, t]) => (values.id === undefined || id === values.id) && t.length > 0)
    .map(([id, t], k, all) => {
      const r = subjectReport(id, t);
      progress.step(`${k + 1}/${all.length} subjects`, k + 1 === all.length);
      return r;
    })
    .map((r) => (unit === 'mg/dL' ? r : { ...r, mean: r.mean / MG_DL_PER_MMOL_L, sd: r.sd / MG_DL_PER_MMOL_L }));
  if (values.json) {
    // One reading covers no period: its sufficiency is not a number (the table prints '-').
    const subjects = reports.map((r) => (r.readings < 2 ? { ...r, dataSufficiency: null } : r));
    process.stdout.write(`${JSON.stringify({ units: unit, subjects })}\n`);
    return 0;
  }
  const cols: [string, number, (r: SubjectReport) => string][] = [
    ['id', 14, (r) => r.id],
    ['days', 6, (r) => r.days.toFixed(1)],
    ['suff%', 6, (r) => (r.readings < 2 ? '-' : r.dataSufficiency.toFixed(0))],
    ['mean', 6, (r) => r.mean.toFixed(unit === 'mg/dL' ? 0 : 1)],
    ['SD', 5, (r) => r.sd.toFixed(unit === 'mg/dL' ? 0 : 1)],
    ['CV%', 5, (r) => r.cv.toFixed(1)],
    ['GMI%', 5, (r) => r.gmi.toFixed(1)],
    ['TIR%', 6, (r) => r.tir.toFixed(1)],
    ['<70%', 5, (r) => r.tbr70.toFixed(1)],
    ['<54%', 5, (r) => r.tbr54.toFixed(1)],
    ['>180%', 6, (r) => r.tar180.toFixed(1)],
    ['>250%', 6, (r) => r.tar250.toFixed(1)],
    ['hypo1', 5, (r) => String(r.hypoEventsLevel1)],
    ['hypo2', 5, (r) => String(r.hypoEventsLevel2)],
    ['gaps', 5, (r) => String(r.faults.gap)],
    ['flat', 5, (r) => String(r.faults['flat-line'])],
    ['compr', 5, (r) => String(r.faults['compression-low'])],
  ];
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(cols[i]![1]) : c.padStart(cols[i]![1]))).join(' ');
  const lines = [fmt(cols.map((c) => c[0])), ...reports.map((r) => fmt(cols.map((c) => c[2](r))))];
  lines.push(
    unit === 'mg/dL'
      ? 'Consensus CGM metrics (Battelino et al. 2019): targets TIR > 70 %, < 70 below 4 %, < 54 below 1 %, CV <= 36 %; 14 days with >= 70 % data recommended.'
      : 'Mean and SD in mmol/L. Consensus CGM metrics (Battelino et al. 2019): targets TIR (3.9-10.0 mmol/L) > 70 %, < 3.9 below 4 %, < 3.0 below 1 %, CV <= 36 %; 14 days with >= 70 % data recommended.',
  );
  lines.push('suff% is the share of the subject\'s own period (days: first reading to the end of the last) covered by readings, not of 14 days.');
  const short = reports.filter((r) => r.readings < 2);
  if (short.length > 0) lines.push(`Not enough data for these metrics: ${short.map((r) => `${r.id} (${r.readings} reading)`).join(', ')}.`);
  lines.push('Decision support for review by a clinician, not a diagnosis.');
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
