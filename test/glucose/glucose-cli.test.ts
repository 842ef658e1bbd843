import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCgmCsv, tracesById } from '../../device-sdk/signal/glucose/csv.js';
import { cgmMetrics } from '../../device-sdk/signal/glucose/metrics.js';
import { medge, ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tempDir = useTempDirs('glucose-cli');
const MODEL_DIR = join(ROOT, 'models', 'glucose-forecast', 'artifact');

/**
 * Two subjects, 8 h each: A falls at 1 mg/dL/min from hour 3 into a low (below 70 from 4 h 20) (jittered 4-6 min sampling, a 40-min
 * gap, an NA row); B is steady with meals. Deterministic.
 */
function fixtureRows(): string[] {
  const rows: string[] = [];
  const stamp = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  const t0 = Date.UTC(2024, 2, 1, 20, 0, 0);
  let t = t0;
  for (let k = 0; t < t0 + 8 * 3_600_000; k++) {
    const h = (t - t0) / 3_600_000;
    const gl = Math.round(h < 3 ? 150 + 6 * Math.sin(k / 3) : h < 5 ? Math.max(55, 150 - 60 * (h - 3)) : 55 + 30 * (h - 5));
    const inGap = h > 2 && h < 2 + 40 / 60;
    if (!inGap) rows.push(`"A",${stamp(t)},${k === 30 ? 'NA' : gl}`);
    t += (4 + (k % 3)) * 60_000;
  }
  for (let k = 0; k < 96; k++) rows.push(`"B",${stamp(t0 + k * 300_000)},${Math.round(110 + 40 * Math.max(0, Math.sin(k / 8)))}`);
  return rows;
}

function writeCsv(dir: string, name: string, rows: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `"id","time","gl"\n${rows.join('\n')}\n`);
  return path;
}

function readOut(path: string): string[][] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

describe('medge glucose predict', () => {
  it('writes id,time,gl,pred_gl,hypo_alert for every input row, and changing later rows changes no earlier prediction', async () => {
    const dir = tempDir();
    const rows = fixtureRows();
    const input = writeCsv(dir, 'in.csv', rows);
    // Same data, but from 04:00 on subject A's later readings are 50 mg/dL higher and the last hour is missing.
    const cut = '2024-03-02 00:00:00';
    const altered = rows
      .filter((r) => !(r.startsWith('"A"') && r.split(',')[1]! > '2024-03-02 03:00:00'))
      .map((r) => {
        const [id, time, gl] = r.split(',');
        return id === '"A"' && time! > cut && gl !== 'NA' ? `${id},${time},${Number(gl) + 50}` : r;
      });
    const input2 = writeCsv(dir, 'in2.csv', altered);
    const [r1, r2] = await Promise.all([medge(['glucose', 'predict', '--csv', input, '--horizon', '30', '--out', join(dir, 'out.csv')]), medge(['glucose', 'predict', '--csv', input2, '--out', join(dir, 'out2.csv'), '--backend', 'cpu'])]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    const out = readOut(join(dir, 'out.csv'));
    expect(out[0]).toEqual(['id', 'time', 'gl', 'pred_gl', 'hypo_alert']);
    expect(out).toHaveLength(rows.length + 1);
    const body = out.slice(1);
    // Input order and fields are kept.
    expect(body.map((r) => `${r[0]},${r[1]},${r[2] === '' ? 'NA' : r[2]}`)).toEqual(rows.map((r) => r.replace(/^"(\w)"/, '$1')));
    for (const r of body) {
      if (r[2] === '') expect([r[3], r[4]]).toEqual(['', '']);
      else {
        expect(Number.isFinite(Number(r[3]))).toBe(true);
        expect(['0', '1']).toContain(r[4]);
      }
    }
    // The first readings have no 30-minute history: persistence, no alert.
    expect(Number(body[0]![3])).toBe(Number(body[0]![2]));
    // Subject A falls into a low: some alert before it, none while the reading is already below 70.
    const a = body.filter((r) => r[0] === 'A' && r[2] !== '');
    expect(a.some((r) => r[4] === '1')).toBe(true);
    expect(a.filter((r) => Number(r[2]) < 70).every((r) => r[4] === '0')).toBe(true);
    // No look-ahead: every row up to the cut is identical in both outputs.
    const out2 = readOut(join(dir, 'out2.csv')).slice(1);
    const upToCut = (rs: string[][]) => rs.filter((r) => r[0] === 'B' || r[1]! <= cut).map((r) => r.join(','));
    expect(upToCut(out2)).toEqual(upToCut(body));
    // ... while the altered rows after it do change (the comparison can fail).
    const before = new Map(body.map((r) => [`${r[0]},${r[1]}`, r[3]]));
    expect(out2.some((r) => r[0] === 'A' && r[1]! > cut && r[2] !== '' && before.get(`${r[0]},${r[1]}`) !== r[3])).toBe(true);
  }, 60_000);

  it('refuses a model whose forecast or detector file was altered (exit 1, nothing written)', async () => {
    const dir = tempDir();
    const input = writeCsv(dir, 'in.csv', fixtureRows().slice(0, 20));
    const altered = (file: string) => {
      const model = join(dir, `model-${file}`);
      cpSync(MODEL_DIR, model, { recursive: true });
      const bytes = readFileSync(join(model, file));
      bytes[bytes.length - 1] = (bytes[bytes.length - 1]! + 1) % 256;
      writeFileSync(join(model, file), bytes);
      return model;
    };
    const runs = await Promise.all(['weights.bin', 'detector.bin'].map((file) => medge(['glucose', 'predict', '--csv', input, '--out', join(dir, `${file}.csv`), '--model', altered(file)])));
    for (const [k, file] of ['weights.bin', 'detector.bin'].entries()) {
      expect(runs[k]!.code, runs[k]!.stderr).toBe(1);
      expect(runs[k]!.stderr).toContain(`${file} does not match its sha256 in medge-model.json`);
      expect(existsSync(join(dir, `${file}.csv`))).toBe(false);
    }
  }, 60_000);

  it('refuses another horizon (exit 2), and a file without the id,time,gl columns as a data error (exit 1)', async () => {
    const dir = tempDir();
    const input = writeCsv(dir, 'in.csv', fixtureRows().slice(0, 10));
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'subject,when,value\n1,2,3\n');
    const [h, c] = await Promise.all([medge(['glucose', 'predict', '--csv', input, '--horizon', '60', '--out', join(dir, 'o.csv')]), medge(['glucose', 'predict', '--csv', bad, '--out', join(dir, 'o.csv')])]);
    expect(h.code).toBe(2);
    expect(h.stderr).toMatch(/30 minutes ahead only/);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/id,time,gl/);
  }, 60_000);
});

describe('medge glucose report', () => {
  it('prints the consensus metrics per subject as JSON and as a table, and filters by --id', async () => {
    const dir = tempDir();
    const input = writeCsv(dir, 'in.csv', fixtureRows());
    const [json, table, missing] = await Promise.all([
      medge(['glucose', 'report', '--csv', input, '--json']),
      medge(['glucose', 'report', '--csv', input, '--id', 'B']),
      medge(['glucose', 'report', '--csv', input, '--id', 'C']),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { subjects: { id: string; tir: number; tbr70: number; mean: number; cv: number; gmi: number; hypoEventsLevel1: number; faults: Record<string, number> }[] };
    const traces = tracesById(parseCgmCsv(readFileSync(input, 'utf8')));
    expect(report.subjects.map((s) => s.id)).toEqual(['A', 'B']);
    for (const s of report.subjects) {
      const m = cgmMetrics(traces.get(s.id)!);
      expect(s).toMatchObject({ tir: m.tir, tbr70: m.tbr70, mean: m.mean, cv: m.cv, gmi: m.gmi, hypoEventsLevel1: m.hypoEventsLevel1 });
    }
    expect(report.subjects[0]!.hypoEventsLevel1).toBe(1);
    expect(report.subjects[0]!.faults.gap).toBe(1);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^id\s+days\s+suff%\s+mean.*TIR%.*<70%.*<54%.*>180%.*>250%.*hypo1/);
    expect(lines.filter((l) => /^(A|B)\s/.test(l)).map((l) => l[0])).toEqual(['B']);
    expect(table.stdout).toMatch(/not a diagnosis/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no readings of subject "C"/);
    expect(missing.stderr).not.toContain('Usage:');
  }, 60_000);
});

describe('glucose units', () => {
  it('refuses mmol/L values read as mg/dL, and with --units mmol/L gives the mg/dL results in mmol/L', async () => {
    const dir = tempDir();
    const rows = fixtureRows();
    const mg = writeCsv(dir, 'mg.csv', rows);
    // The same readings in mmol/L, as exported by a meter in most of Europe and Asia (2 decimals).
    const mmol = writeCsv(
      dir,
      'mmol.csv',
      rows.map((r) => {
        const [id, time, gl] = r.split(',');
        return gl === 'NA' ? r : `${id},${time},${(Number(gl) / 18.016).toFixed(2)}`;
      }),
    );
    const [refused, refusedPredict, mgJson, mmolJson, mgOut, mmolOut, badUnit] = await Promise.all([
      medge(['glucose', 'report', '--csv', mmol]),
      medge(['glucose', 'predict', '--csv', mmol, '--out', join(dir, 'x.csv')]),
      medge(['glucose', 'report', '--csv', mg, '--json']),
      medge(['glucose', 'report', '--csv', mmol, '--units', 'mmol/L', '--json']),
      medge(['glucose', 'predict', '--csv', mg, '--out', join(dir, 'mg-out.csv')]),
      medge(['glucose', 'predict', '--csv', mmol, '--units', 'mmol/L', '--out', join(dir, 'mmol-out.csv')]),
      medge(['glucose', 'report', '--csv', mg, '--units', 'mg/dl']),
    ]);
    // Read as mg/dL these would all be level 2 hypoglycaemia: refused, with the way out named.
    for (const r of [refused, refusedPredict]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/look like mmol\/L.*--units mmol\/L/);
    }
    expect(existsSync(join(dir, 'x.csv'))).toBe(false);
    expect(badUnit.code).toBe(2);
    expect(badUnit.stderr).toMatch(/--units must be one of mg\/dL, mmol\/L/);
    type Report = { units: string; subjects: { id: string; tir: number; tbr70: number; mean: number; sd: number; hypoEventsLevel1: number }[] };
    const a = JSON.parse(mgJson.stdout) as Report;
    const b = JSON.parse(mmolJson.stdout) as Report;
    expect([a.units, b.units]).toEqual(['mg/dL', 'mmol/L']);
    a.subjects.forEach((s, i) => {
      const t = b.subjects[i]!;
      expect(t.id).toBe(s.id);
      expect(t.mean).toBeCloseTo(s.mean / 18.016, 1);
      expect(t.sd).toBeCloseTo(s.sd / 18.016, 1);
      expect(Math.abs(t.tir - s.tir)).toBeLessThanOrEqual(2);
      expect(t.hypoEventsLevel1).toBe(s.hypoEventsLevel1);
    });
    expect(mgOut.code, mgOut.stderr).toBe(0);
    expect(mmolOut.code, mmolOut.stderr).toBe(0);
    expect(mmolOut.stderr).toMatch(/in mmol\/L/);
    const [x, y] = [readOut(join(dir, 'mg-out.csv')), readOut(join(dir, 'mmol-out.csv'))];
    expect(y.length).toBe(x.length);
    let compared = 0;
    for (let i = 1; i < x.length; i++) {
      const [p, q] = [x[i]!, y[i]!];
      expect(q[4]).toBe(p[4]);
      if (p[3] === '') continue;
      compared++;
      // 2-decimal mmol/L input is within 0.09 mg/dL of the mg/dL input: the forecasts agree to a few tenths of a mg/dL.
      expect(Math.abs(Number(q[3]) * 18.016 - Number(p[3]))).toBeLessThan(1);
    }
    expect(compared).toBeGreaterThan(100);
  }, 60_000);
});

describe('glucose input that is not glucose readings is refused (exit 1, without the usage) with the line and a fix', () => {
  /** `n` rows of subject A every 5 min from 2024-03-01 20:00 with values `gl(i)`. */
  function every5(n: number, gl: (i: number) => string | number, id = 'A'): string[] {
    const t0 = Date.UTC(2024, 2, 1, 20, 0, 0);
    return Array.from({ length: n }, (_, i) => `"${id}",${new Date(t0 + i * 300_000).toISOString().replace('T', ' ').slice(0, 19)},${gl(i)}`);
  }

  it('refuses mg/dL read as mmol/L, impossible values, conflicting duplicates and garbage times', async () => {
    const dir = tempDir();
    const steady = every5(40, (i) => 93 + (i % 11));
    const files = {
      mgdl: writeCsv(dir, 'mgdl.csv', steady),
      huge: writeCsv(dir, 'huge.csv', every5(21, (i) => (i === 10 ? '1e308' : 100))),
      inf: writeCsv(dir, 'inf.csv', every5(21, (i) => (i === 10 ? 'Infinity' : 100))),
      negative: writeCsv(dir, 'negative.csv', every5(21, (i) => (i === 10 ? -50 : 100))),
      zero: writeCsv(dir, 'zero.csv', every5(21, (i) => (i === 10 ? 0 : 100))),
      high: writeCsv(dir, 'high.csv', every5(21, (i) => (i === 10 ? 1500 : 100))),
      // 20 readings at 93-103 and 20 at 40 with the same times: one of each pair is wrong.
      conflict: writeCsv(dir, 'conflict.csv', [...every5(20, (i) => 93 + (i % 11)), ...every5(20, () => 40)]),
      garbage: writeCsv(dir, 'garbage.csv', every5(10, () => 100).map((r, i) => (i === 3 ? '"A",notadate-3 03:42:12,100' : r))),
      day: writeCsv(dir, 'day.csv', ['"A",2014-02-30 10:00:00,100']),
      seconds: writeCsv(dir, 'seconds.csv', ['"A",1704067500,100']),
    };
    const report = (file: string, ...more: string[]) => medge(['glucose', 'report', '--csv', file, ...more]);
    const [mgAsMmol, huge, inf, negative, zero, high, conflict, conflictPredict, garbage, day, seconds] = await Promise.all([
      report(files.mgdl, '--units', 'mmol/L'),
      report(files.huge),
      report(files.inf),
      report(files.negative),
      report(files.zero),
      report(files.high),
      report(files.conflict),
      medge(['glucose', 'predict', '--csv', files.conflict, '--out', join(dir, 'conflict-out.csv')]),
      report(files.garbage),
      report(files.day),
      report(files.seconds),
    ]);
    const refused = (r: { code: number | null; stderr: string }, pattern: RegExp) => {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).not.toContain('Usage:');
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
    };
    refused(mgAsMmol, /look like mg\/dL, not mmol\/L \(median 98, highest 103.*leave out --units mmol\/L/);
    refused(huge, /line 12: subject "[^"]+": glucose 1e\+308 mg\/dL is outside 10-1000 mg\/dL/);
    refused(inf, /line 12: unreadable glucose "Infinity"/);
    refused(negative, /line 12: glucose "-50" is not positive.*NA/);
    refused(zero, /line 12: glucose "0" is not positive/);
    refused(high, /line 12: subject "[^"]+": glucose 1500 mg\/dL is outside 10-1000 mg\/dL/);
    refused(conflict, /line 22: subject "A" has two different readings at "2024-03-01 20:00:00": 40 here and 93 on line 2/);
    refused(conflictPredict, /line 22: .*two different readings/);
    expect(existsSync(join(dir, 'conflict-out.csv'))).toBe(false);
    refused(garbage, /line 5: unreadable time "notadate-3 03:42:12": write times as YYYY-MM-DD HH:MM\[:SS\]/);
    refused(day, /line 2: unreadable time "2014-02-30 10:00:00"/);
    refused(seconds, /line 2: time "1704067500" looks like epoch seconds.*multiply by 1000/);
  }, 60_000);

  it('refuses a short meter log in mmol/L given without --units', async () => {
    const dir = tempDir();
    // Nine meter readings of 11-22 mmol/L were reported as "mean 16, 100 % below 54 mg/dL", exit 0.
    const meter = writeCsv(dir, 'meter.csv', every5(9, (i) => [11, 22, 14.2, 18, 12.5, 20.1, 16, 13, 19.4][i]!));
    const [mgdl, asMmol] = await Promise.all([medge(['glucose', 'report', '--csv', meter]), medge(['glucose', 'report', '--csv', meter, '--units', 'mmol/L', '--json'])]);
    expect(mgdl.code, mgdl.stderr).toBe(1);
    expect(mgdl.stderr).toMatch(/look like mmol\/L, not mg\/dL \(median 16, highest 22.*give --units mmol\/L/);
    expect(mgdl.stdout).toBe('');
    expect(asMmol.code, asMmol.stderr).toBe(0);
    expect((JSON.parse(asMmol.stdout) as { subjects: { mean: number }[] }).subjects[0]!.mean).toBeCloseTo(16.24, 1);
  }, 60_000);

  it('refuses a predict --out that is an existing directory before the model runs', async () => {
    const dir = tempDir();
    const outDir = join(dir, 'out');
    mkdirSync(outDir);
    const input = writeCsv(dir, 'in.csv', every5(20, () => 100));
    // A model directory that does not exist: the --out refusal has to come first.
    const toDir = await medge(['glucose', 'predict', '--csv', input, '--out', outDir, '--model', join(dir, 'no-model')]);
    expect(toDir.code, toDir.stderr).toBe(2);
    expect(toDir.stderr).toMatch(/--out .*out is a directory: give the path of the file to write, e.g. --out .*forecast\.csv/);
    expect(toDir.stderr).not.toMatch(/no-model|EISDIR|unexpected error|\n\s+at /);
    // A read-only earlier forecast is kept (writeFileSync as root would have replaced it).
    const kept = join(dir, 'kept.csv');
    writeFileSync(kept, 'keep me');
    chmodSync(kept, 0o444);
    const toKept = await medge(['glucose', 'predict', '--csv', input, '--out', kept]);
    expect(toKept.code, toKept.stderr).toBe(2);
    expect(toKept.stderr).toContain(`--out ${kept} exists and is read-only (mode 0444); refusing to replace it`);
    expect(readFileSync(kept, 'utf8')).toBe('keep me');
  }, 60_000);

  it('reads an exact duplicate row as one reading; mmol/L values near the bounds are accepted', async () => {
    const dir = tempDir();
    const rows = every5(20, (i) => 93 + (i % 11));
    const [once, twice, lowMmol] = await Promise.all([
      medge(['glucose', 'report', '--csv', writeCsv(dir, 'once.csv', rows), '--json']),
      medge(['glucose', 'report', '--csv', writeCsv(dir, 'twice.csv', [...rows, ...rows]), '--json']),
      medge(['glucose', 'report', '--csv', writeCsv(dir, 'low.csv', every5(20, (i) => (i === 5 ? '1.1' : '5.5'))), '--units', 'mmol/L', '--json']),
    ]);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toBe(once.stdout);
    expect(lowMmol.code, lowMmol.stderr).toBe(0);
    expect((JSON.parse(lowMmol.stdout) as { subjects: { tbr54: number }[] }).subjects[0]!.tbr54).toBe(5);
  }, 60_000);

  it('refuses a file without readings, an --out that is the input or in a missing directory; a single reading has no sufficiency', async () => {
    const dir = tempDir();
    const input = writeCsv(dir, 'in.csv', every5(20, () => 100));
    const before = readFileSync(input, 'utf8');
    const header = writeCsv(dir, 'header.csv', []);
    const allNa = writeCsv(dir, 'na.csv', every5(5, () => 'NA'));
    const one = writeCsv(dir, 'one.csv', every5(1, () => 100));
    const [h, hp, na, same, sameDotted, missingDir, single, unreadable] = await Promise.all([
      medge(['glucose', 'report', '--csv', header]),
      medge(['glucose', 'predict', '--csv', header, '--out', join(dir, 'h-out.csv')]),
      medge(['glucose', 'report', '--csv', allNa, '--json']),
      medge(['glucose', 'predict', '--csv', input, '--out', input]),
      medge(['glucose', 'predict', '--csv', input, '--out', join(dir, '.', '..', basename(dir), 'in.csv')]),
      medge(['glucose', 'predict', '--csv', input, '--out', join(dir, 'nodir', 'x.csv')]),
      medge(['glucose', 'report', '--csv', one]),
      medge(['glucose', 'predict', '--csv', join(dir, 'absent.csv'), '--out', join(dir, 'a-out.csv')]),
    ]);
    for (const r of [h, hp]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/no glucose readings \(only a header\)/);
      expect(r.stderr).not.toMatch(/Usage:/);
    }
    // A CSV that cannot be read is a data error too: the message without the usage.
    expect(unreadable.code, unreadable.stderr).toBe(1);
    expect(unreadable.stderr).toMatch(/cannot read .*absent\.csv: .*\(ENOENT\)/);
    expect(unreadable.stderr).not.toMatch(/Usage:/);
    expect(h.stdout).toBe('');
    expect(na.code).toBe(1);
    expect(na.stderr).toMatch(/no glucose readings \(all 5 rows are NA or empty\)/);
    for (const r of [same, sameDotted]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/is the input file: it would be overwritten/);
    }
    expect(readFileSync(input, 'utf8')).toBe(before);
    expect(missingDir.code, missingDir.stderr).toBe(2);
    expect(missingDir.stderr).toMatch(/the directory .*nodir does not exist/);
    expect(missingDir.stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(single.code, single.stderr).toBe(0);
    expect(single.stdout).toMatch(/^A\s+0\.0\s+-\s+100\s/m);
    expect(single.stdout).toMatch(/Not enough data for these metrics: A \(1 reading\)/);
    expect(single.stdout).toMatch(/suff% is the share of the subject's own period/);
    const singleJson = await medge(['glucose', 'report', '--csv', one, '--json']);
    expect(singleJson.code, singleJson.stderr).toBe(0);
    const [subject] = (JSON.parse(singleJson.stdout) as { subjects: { readings: number; dataSufficiency: number | null }[] }).subjects;
    expect(subject).toMatchObject({ readings: 1, dataSufficiency: null });
  }, 60_000);

  it('asks for --units when one or two readings could be either unit', async () => {
    const dir = tempDir();
    // 12.5 and 14 mmol/L (225 and 252 mg/dL) were read as 12.5 and 14 mg/dL: a severe low instead of a high.
    const two = writeCsv(dir, 'two.csv', every5(2, (i) => [12.5, 14][i]!));
    const oneHigh = writeCsv(dir, 'one-high.csv', every5(1, () => 40));
    const [bare, predictBare, asMmol, asMgdl, high] = await Promise.all([
      medge(['glucose', 'report', '--csv', two]),
      medge(['glucose', 'predict', '--csv', two, '--out', join(dir, 'two-out.csv')]),
      medge(['glucose', 'report', '--csv', two, '--units', 'mmol/L', '--json']),
      medge(['glucose', 'report', '--csv', two, '--units', 'mg/dL', '--json']),
      medge(['glucose', 'report', '--csv', oneHigh, '--json']),
    ]);
    for (const r of [bare, predictBare]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/2 readings \(12\.5, 14\), all below 35: .*give --units mg\/dL or --units mmol\/L/);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(join(dir, 'two-out.csv'))).toBe(false);
    const mean = (r: { stdout: string }) => (JSON.parse(r.stdout) as { subjects: { mean: number }[] }).subjects[0]!.mean;
    expect(asMmol.code, asMmol.stderr).toBe(0);
    expect(mean(asMmol)).toBeCloseTo(13.25, 2);
    expect(asMgdl.code, asMgdl.stderr).toBe(0);
    expect(mean(asMgdl)).toBeCloseTo(13.25, 2);
    // 40 cannot be mmol/L (720 mg/dL would be, but only as a meter's extreme): read as mg/dL as before.
    expect(high.code, high.stderr).toBe(0);
    expect(mean(high)).toBe(40);
  }, 60_000);
});
