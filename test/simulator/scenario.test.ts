import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { streamDeviceFaults } from '../../simulator/faults.js';
import { loadScenario, parseScenario, ScenarioError } from '../../simulator/scenario.js';

const DATA = '/nonexistent-data';
const dir = mkdtempSync(join(tmpdir(), 'medge-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ecg = { sensor: 'ecg', kind: 'ecg', transport: 'serial', source: { type: 'wfdb', record: 'mitdb/208' } };

function problems(input: unknown): { field: string; problem: string; fix: string }[] {
  try {
    parseScenario(input, { dataDir: DATA });
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioError);
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ScenarioError).problems];
  }
  throw new Error('expected a ScenarioError');
}

describe('scenario files', () => {
  it('fills in defaults: driver by kind and transport, data-relative paths, faults, generated MACs', () => {
    const s = parseScenario(
      {
        name: 'x',
        devices: [
          { ...ecg, faults: { corruptRate: 0.05, unplug: [{ atS: 60 }] } },
          { sensor: 'meter', kind: 'glucose-meter', transport: 'ble', source: { type: 'cgm-csv', file: 'cgm/hall2018.csv' }, storedRecords: 500, faults: { disconnectAfterRecords: [10, 20] } },
        ],
      },
      { dataDir: DATA },
    );
    expect(s.seed).toBe(1);
    expect(s.durationS).toBeUndefined();
    const [a, b] = s.devices;
    expect(a).toMatchObject({ driver: 'serial-ecg', frameMs: 50, source: { type: 'wfdb', record: `${DATA}/mitdb/208` } });
    expect(a?.serialFaults).toMatchObject({ corruptRate: 0.05, truncateRate: 0, unplug: [{ atS: 60, downS: 1, mode: 'pause' }] });
    expect(b).toMatchObject({ driver: 'ble-glucose-meter', address: 'C0:FF:EE:00:00:02', storedRecords: 500 });
    expect(b?.bleFaults.disconnectAfterRecords).toEqual([10, 20]);
    expect(b?.bleFaults.replaceSensorAtS).toEqual([]);
  });

  it('takes the CGM sensor replacements in signal order', () => {
    const s = parseScenario(
      { name: 'x', devices: [{ sensor: 'cgm', kind: 'cgm', transport: 'ble', source: { type: 'constant', value: 110, periodS: 60, count: 60 }, faults: { replaceSensorAtS: [2700, 1200] } }] },
      { dataDir: DATA },
    );
    expect(s.devices[0]?.bleFaults.replaceSensorAtS).toEqual([1200, 2700]);
    const p = problems({ name: 'x', devices: [{ sensor: 'cgm', kind: 'cgm', transport: 'ble', source: { type: 'constant', value: 110, periodS: 60, count: 1 }, faults: { replaceSensorAtS: [-5] } }] });
    expect(p[0]).toMatchObject({ field: 'devices[0].faults.replaceSensorAtS[0]' });
  });

  it('takes a glucose meter\'s live measurements, and refuses them on other devices', () => {
    const meter = { sensor: 'meter', kind: 'glucose-meter', transport: 'ble', source: { type: 'constant', value: 110, periodS: 60, count: 5 }, storedRecords: 5 };
    const s = parseScenario({ name: 'x', devices: [{ ...meter, measurements: [{ atS: 8, mgPerDl: 292 }] }] }, { dataDir: DATA });
    expect(s.devices[0]?.measurements).toEqual([{ atS: 8, mgPerDl: 292 }]);
    expect(parseScenario({ name: 'x', devices: [meter] }, { dataDir: DATA }).devices[0]?.measurements).toEqual([]);
    expect(problems({ name: 'x', devices: [{ ...ecg, measurements: [{ atS: 1, mgPerDl: 100 }] }] })[0]).toMatchObject({ field: 'devices[0].measurements', problem: 'is for glucose meters, not ecg' });
  });

  it('takes electrodes off an ECG for spans of signal, as sample ranges of the recording, and refuses them on a stethoscope', () => {
    const s = parseScenario({ name: 'x', devices: [{ ...ecg, faults: { leadOff: [{ atS: 30, durationS: 5, level: 'baseline' }, { atS: 10, durationS: 2, channels: 2 }] } }] }, { dataDir: DATA });
    const faults = s.devices[0]!.serialFaults;
    expect(faults.leadOff).toEqual([
      { atS: 10, durationS: 2, channels: 2 },
      { atS: 30, durationS: 5, level: 'baseline' },
    ]);
    expect(streamDeviceFaults(faults, 1, 360).leadOff).toEqual([
      { fromSample: 3600, samples: 720, channels: 2 },
      { fromSample: 10_800, samples: 1800, level: 'baseline' },
    ]);
    const pcg = { sensor: 'pcg', kind: 'pcg', transport: 'serial', source: { type: 'wav', file: 'x.wav' } };
    expect(problems({ name: 'x', devices: [{ ...pcg, faults: { leadOff: [{ atS: 1, durationS: 1 }] } }] })[0]).toMatchObject({ field: 'devices[0].faults.leadOff', problem: 'takes electrodes off an ECG front end; a pcg device has none' });
    expect(problems({ name: 'x', devices: [{ ...ecg, faults: { leadOff: [{ atS: 1, durationS: 0 }] } }] })[0]).toMatchObject({ field: 'devices[0].faults.leadOff[0].durationS' });
  });

  it("takes a glucose meter's clock zone and Current Time Service (default UTC, offered), and refuses them elsewhere or with an unknown zone", () => {
    const meter = { sensor: 'meter', kind: 'glucose-meter', transport: 'ble', source: { type: 'constant', value: 110, periodS: 60, count: 5 }, storedRecords: 5 };
    expect(parseScenario({ name: 'x', devices: [meter] }, { dataDir: DATA }).devices[0]?.meterClock).toEqual({ timeZone: 'UTC', currentTimeService: true });
    const s = parseScenario({ name: 'x', devices: [{ ...meter, meterClock: { timeZone: 'America/New_York', currentTimeService: false } }] }, { dataDir: DATA });
    expect(s.devices[0]?.meterClock).toEqual({ timeZone: 'America/New_York', currentTimeService: false });
    expect(problems({ name: 'x', devices: [{ ...meter, meterClock: { timeZone: 'EST+5' } }] })[0]).toMatchObject({ field: 'devices[0].meterClock.timeZone', problem: 'is not an IANA time zone name' });
    expect(problems({ name: 'x', devices: [{ ...ecg, meterClock: { timeZone: 'UTC' } }] })[0]).toMatchObject({ field: 'devices[0].meterClock' });
  });

  it('names the field, the value and a fix for each problem', () => {
    const p = problems({
      name: 'bad name!',
      devices: [
        { ...ecg, faults: { corruptRate: 1.5, unplugg: [] } },
        { sensor: 'cgm', kind: 'cgm', transport: 'ble', source: { type: 'mp3', file: 'x' } },
        { sensor: 'hr', kind: 'heart-rate', transport: 'ble' },
      ],
    });
    const byField = Object.fromEntries(p.map((x) => [x.field, x]));
    expect(byField.name?.problem).toMatch(/is not 1-64 of/);
    expect(byField['devices[1].source.type']?.fix).toMatch(/wfdb, wav, cgm-csv, uva-padova, constant/);
    expect(byField['devices[2].source']?.problem).toBe('is required');
  });

  it('checks faults against the device transport', () => {
    const p = problems({ name: 'x', devices: [{ ...ecg, faults: { corruptRate: 1.5, unplugg: [] } }] });
    expect(p.map((x) => x.field)).toEqual(['devices[0].faults.unplugg', 'devices[0].faults.corruptRate']);
    expect(p[0]?.fix).toMatch(/valid properties here are: corruptRate, truncateRate/);
    expect(p[1]?.fix).toMatch(/a probability between 0 and 1/);
    const ble = problems({ name: 'x', devices: [{ sensor: 'm', kind: 'glucose-meter', transport: 'ble', source: { type: 'constant', value: 100, periodS: 1, count: 1 }, faults: { corruptRate: 0.1 } }] });
    expect(ble[0]).toMatchObject({ field: 'devices[0].faults.corruptRate', problem: 'unknown property' });
  });

  it('refuses a source that cannot feed the device, a device no simulator speaks, and two devices with one sensor name', () => {
    const p = problems({
      name: 'x',
      devices: [
        { ...ecg, source: { type: 'cgm-csv', file: 'a.csv' } },
        { sensor: 'ecg', kind: 'glucose-meter', transport: 'serial', source: { type: 'constant', value: 1, periodS: 1, count: 1 } },
      ],
    });
    expect(p.map((x) => x.field)).toEqual(['devices[0].source.type', 'devices[1].sensor', 'devices[1].transport']);
    expect(p[2]?.fix).toBe('use transport ble');
  });

  it('reads YAML files and reports syntax errors and unreadable files as config errors', () => {
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, 'name: y\ndevices:\n  - { sensor: ecg, kind: ecg, transport: serial, source: { type: wfdb, record: /abs/100 } }\n');
    expect(loadScenario(ok, { dataDir: DATA }).devices[0]?.source).toEqual({ type: 'wfdb', record: '/abs/100' });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: [unclosed\n');
    expect(() => loadScenario(bad, { dataDir: DATA })).toThrow(/is not valid YAML\/JSON/);
    expect(() => loadScenario(join(dir, 'missing.yaml'), { dataDir: DATA })).toThrow(/cannot read the file \(ENOENT\)/);
    const badField = join(dir, 'field.yaml');
    writeFileSync(badField, 'name: y\nseed: -1\ndevices: []\n');
    expect(() => loadScenario(badField, { dataDir: DATA })).toThrow(/field\.yaml: seed: must be >= 0 \(got -1\)\. Fix: use an integer >= 0/);
  });

  it('the committed clinic-day scenario is valid', () => {
    const s = loadScenario(join(import.meta.dirname, '..', '..', 'simulator', 'scenarios', 'clinic-day.yaml'), { dataDir: DATA });
    expect(s.devices.map((d) => `${d.sensor}:${d.driver}`)).toEqual(['ecg:serial-ecg', 'stethoscope:serial-stethoscope', 'glucose-meter:ble-glucose-meter', 'cgm:ble-cgm']);
    expect(s.devices[0]?.serialFaults.corruptRate).toBe(0.05);
    expect(s.devices[0]?.serialFaults.unplug).toHaveLength(1);
    expect(s.devices[2]?.storedRecords).toBe(500);
    expect(s.devices[2]?.bleFaults.disconnectAfterRecords).toHaveLength(2);
    expect(s.devices[3]?.bleFaults.duplicateEvery).toBeGreaterThan(0);
  });
});
