import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../device-sdk/errors.js';
import { ConfigErrors, DEFAULT_RUNTIME_CONFIG, loadRuntimeConfig, parseRuntimeConfig, parseSourceConfig } from './config.js';

const minimal = { deviceId: 'clinic-01', dataDir: './data' };

function problemOf(input: unknown): ConfigErrors {
  try {
    parseRuntimeConfig(input, '/etc/medge');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigErrors);
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigErrors;
  }
  throw new Error('expected a ConfigErrors');
}

describe('parseRuntimeConfig', () => {
  it('applies the defaults', () => {
    const config = parseRuntimeConfig(minimal, '/etc/medge');
    expect(config).toEqual({
      deviceId: 'clinic-01',
      site: 'default',
      dataDir: '/etc/medge/data',
      edge: {
        url: 'mqtt://127.0.0.1:1883',
        batchMaxRecords: 2000,
        batchMaxBytes: 262_144,
        window: 16,
        ackTimeoutMs: 10_000,
        slowLinkBytesPerSec: 4096,
        backoff: { initialMs: 250, maxMs: 30_000 },
      },
      store: { budgetBytes: 2 * 1024 ** 3, chunkRetentionHours: 24, recordRetentionDays: 90, cipher: 'aes-256-gcm' },
      sources: [],
      artifacts: { trustedKeys: [] },
      log: { level: 'info' },
      statusIntervalMs: 1000,
      ui: { enabled: false, listen: '127.0.0.1:8080', users: [], sessionIdleMinutes: 15, language: 'en' },
      inference: { requestTimeoutMs: 5000, startTimeoutMs: 60_000, closeTimeoutMs: 2000, restartDelaysMs: [60_000, 600_000, 3_600_000] },
    });
    expect(config.edge).not.toBe(DEFAULT_RUNTIME_CONFIG.edge);
    expect(Object.isFrozen(DEFAULT_RUNTIME_CONFIG.edge.backoff)).toBe(true);
  });

  it('merges partial sections and fills source defaults per type', () => {
    const config = parseRuntimeConfig(
      { ...minimal, edge: { window: 2, backoff: { maxMs: 5000 } }, sources: [{ type: 'sim-glucose', intervalMs: 1000 }, { type: 'sim-ecg' }] },
      '/x',
    );
    expect(config.edge.window).toBe(2);
    expect(config.edge.batchMaxRecords).toBe(2000);
    expect(config.edge.backoff).toEqual({ initialMs: 250, maxMs: 5000 });
    expect(config.sources).toEqual([
      { type: 'sim-glucose', sensor: 'glucose-meter', intervalMs: 1000, corruptRate: 0.05, periodReadings: 48 },
      { type: 'sim-ecg', sensor: 'ecg', rateHz: 360, chunkMs: 1000, heartRateBpm: 72, noiseMv: 0.02 },
    ]);
  });

  it('never mutates its input', () => {
    const input = { ...minimal, edge: { window: 4 }, sources: [{ type: 'sim-hr' }] };
    const before = structuredClone(input);
    const config = parseRuntimeConfig(Object.freeze(input), '/x');
    expect(input).toEqual(before);
    config.edge.url = 'mqtt://changed';
    expect(input).toEqual(before);
    expect(DEFAULT_RUNTIME_CONFIG.edge.url).toBe('mqtt://127.0.0.1:1883');
  });

  it('resolves a relative dataDir against baseDir and keeps an absolute one', () => {
    expect(parseRuntimeConfig({ ...minimal, dataDir: '../var/data' }, '/etc/medge').dataDir).toBe('/etc/var/data');
    expect(parseRuntimeConfig({ ...minimal, dataDir: '/srv/medge' }, '/etc/medge').dataDir).toBe('/srv/medge');
  });

  it('names a missing required field with an example', () => {
    const error = problemOf({ dataDir: '/d' });
    expect(error.field).toBe('deviceId');
    expect(error.value).toBeUndefined();
    expect(error.fix).toBe('add "deviceId": "clinic-01"');
  });

  it('names an unknown property and lists the valid ones', () => {
    const error = problemOf({ ...minimal, edge: { windw: 4 } });
    expect(error.field).toBe('edge.windw');
    expect(error.value).toBe(4);
    expect(error.fix).toContain('valid properties here are: url, batchMaxRecords, batchMaxBytes, window, ackTimeoutMs, slowLinkBytesPerSec, backoff');
    expect(problemOf({ ...minimal, colour: true }).fix).toMatch(/^remove it; valid properties here are: deviceId, site,/);
  });

  it('names an out-of-range integer with its range', () => {
    for (const window of [0, 65, 2.5]) {
      const error = problemOf({ ...minimal, edge: { window } });
      expect(error.field).toBe('edge.window');
      expect(error.value).toBe(window);
      expect(error.fix).toMatch(/^use an integer between 1 and 64/);
    }
  });

  it('takes the inference deadlines and restarts (a slower board), and names a value out of range', () => {
    const config = parseRuntimeConfig({ ...minimal, inference: { requestTimeoutMs: 20_000, restartDelaysMs: [] } }, '/x');
    expect(config.inference).toEqual({ requestTimeoutMs: 20_000, startTimeoutMs: 60_000, closeTimeoutMs: 2000, restartDelaysMs: [] });
    expect(config.inference.restartDelaysMs).not.toBe(DEFAULT_RUNTIME_CONFIG.inference.restartDelaysMs);
    for (const [field, value] of [
      ['requestTimeoutMs', 50],
      ['startTimeoutMs', 0],
      ['closeTimeoutMs', 1.5],
      ['requestTimeoutMs', '5000'],
    ] as const) {
      const error = problemOf({ ...minimal, inference: { [field]: value } });
      expect(error.field).toBe(`inference.${field}`);
      expect(error.value).toBe(value);
    }
    expect(problemOf({ ...minimal, inference: { restartDelaysMs: [500] } }).field).toBe('inference.restartDelaysMs[0]');
    expect(problemOf({ ...minimal, inference: { restartDelaysMs: Array(11).fill(60_000) } })).toMatchObject({ field: 'inference.restartDelaysMs', problem: 'has 11 entries', fix: 'keep at most 10' });
    expect(problemOf({ ...minimal, inference: { deadlineMs: 10 } }).fix).toMatch(/requestTimeoutMs/);
  });

  it('takes edge.slowLinkBytesPerSec and names a value outside 256 B/s .. 1 Gbit/s with the range', () => {
    expect(parseRuntimeConfig({ ...minimal, edge: { slowLinkBytesPerSec: 1200 } }, '/x').edge.slowLinkBytesPerSec).toBe(1200);
    for (const slowLinkBytesPerSec of [0, 255, 125_000_001, 1.5, '4096']) {
      const error = problemOf({ ...minimal, edge: { slowLinkBytesPerSec } });
      expect(error.field).toBe('edge.slowLinkBytesPerSec');
      expect(error.value).toBe(slowLinkBytesPerSec);
      expect(error.fix).toMatch(/^use an integer between 256 and 125000000/);
    }
  });

  it('names an unknown enum value and lists the valid ones', () => {
    const error = problemOf({ ...minimal, log: { level: 'verbose' } });
    expect(error.field).toBe('log.level');
    expect(error.value).toBe('verbose');
    expect(error.fix).toBe('use one of: trace, debug, info, warn, error, fatal, silent');
  });

  it('names a bad source type by its index', () => {
    const error = problemOf({ ...minimal, sources: [{ type: 'sim-ecg' }, { type: 'sim-spo2' }] });
    expect(error.field).toBe('sources[1].type');
    expect(error.value).toBe('sim-spo2');
    expect(error.fix).toBe('use one of: sim-ecg, sim-pcg, sim-glucose, sim-hr, device');
  });

  it('checks type-specific source options', () => {
    const error = problemOf({ ...minimal, sources: [{ type: 'sim-glucose', corruptRate: 2 }] });
    expect(error.field).toBe('sources[0].corruptRate');
    expect(error.value).toBe(2);
    expect(error.fix).toMatch(/^use a number between 0 and 1/);
    expect(problemOf({ ...minimal, sources: [{ type: 'sim-hr', rateHz: 360 }] }).field).toBe('sources[0].rateHz');
  });

  it('rejects bad names, URLs and non-objects', () => {
    expect(problemOf({ ...minimal, deviceId: 'has space' })).toMatchObject({ field: 'deviceId', value: 'has space' });
    expect(problemOf({ ...minimal, edge: { url: 'http://edge' } })).toMatchObject({ field: 'edge.url', value: 'http://edge' });
    expect(problemOf({ ...minimal, store: { chunkRetentionHours: 0 } }).fix).toMatch(/^use a number greater than 0/);
    expect(problemOf([1, 2])).toMatchObject({ field: '(root)', value: [1, 2] });
  });

  it('checks fields against each other', () => {
    const error = problemOf({ ...minimal, edge: { backoff: { initialMs: 5000, maxMs: 1000 } } });
    expect(error).toMatchObject({ field: 'edge.backoff.maxMs', value: 1000 });
    expect(problemOf({ ...minimal, sources: [{ type: 'sim-ecg' }, { type: 'sim-ecg' }] }).field).toBe('sources[1].sensor');
  });

  it("takes the clinic's IANA time zone for meter clocks and names a value that is not one", () => {
    expect(parseRuntimeConfig({ ...minimal, timeZone: 'Africa/Nairobi' }, '/etc/medge').timeZone).toBe('Africa/Nairobi');
    expect(parseRuntimeConfig(minimal, '/etc/medge').timeZone).toBeUndefined();
    const error = problemOf({ ...minimal, timeZone: '+03:00' });
    expect(error).toMatchObject({ field: 'timeZone', value: '+03:00', problem: 'is not an IANA time zone name known to this runtime' });
    expect(error.fix).toMatch(/Africa\/Nairobi/);
    expect(problemOf({ ...minimal, timeZone: 3 }).field).toBe('timeZone');
  });

  it('resolves edge.tls paths against baseDir and requires an mqtts:// url with them', () => {
    const tls = { ca: 'certs/ca.crt', cert: '/srv/pki/clinic-01.crt', key: '../keys/clinic-01.key' };
    const config = parseRuntimeConfig({ ...minimal, edge: { url: 'mqtts://edge.local:8883', tls } }, '/etc/medge');
    expect(config.edge.tls).toEqual({ ca: '/etc/medge/certs/ca.crt', cert: '/srv/pki/clinic-01.crt', key: '/etc/keys/clinic-01.key' });
    expect(config.edge.url).toBe('mqtts://edge.local:8883');
    expect(parseRuntimeConfig(minimal, '/x').edge).not.toHaveProperty('tls');

    const plain = problemOf({ ...minimal, edge: { url: 'mqtt://edge.local:8883', tls } });
    expect(plain).toMatchObject({ field: 'edge.url', value: 'mqtt://edge.local:8883' });
    expect(plain.fix).toContain('"mqtts://edge.local:8883"');
    expect(problemOf({ ...minimal, edge: { url: 'mqtts://e', tls: { ca: 'a', cert: 'b' } } })).toMatchObject({ field: 'edge.tls.key', fix: 'add "key": "./certs/clinic-01.key"' });
    expect(problemOf({ ...minimal, edge: { url: 'mqtts://e', tls: { ...tls, passphrase: 'x' } } }).field).toBe('edge.tls.passphrase');
    expect(problemOf({ ...minimal, edge: { url: 'mqtts://e', tls: { ...tls, ca: '' } } }).field).toBe('edge.tls.ca');
  });

  it('collects every problem; the first one is the error itself', () => {
    const error = problemOf({ deviceId: 'x y', dataDir: '/d', edge: { window: 0 }, log: { level: 'loud' } });
    expect(error.problems.map((p) => p.field)).toEqual(['deviceId', 'edge.window', 'log.level']);
    expect(error.problems[0]).toMatchObject({ field: error.field, value: error.value, fix: error.fix });
    expect(error.code).toBe('config');
  });
});

describe('parseSourceConfig', () => {
  it('fills defaults and rejects unknown types', () => {
    expect(parseSourceConfig({ type: 'sim-hr' })).toEqual({ type: 'sim-hr', sensor: 'hr-strap', intervalMs: 1000, runProbability: 0.02 });
    expect(() => parseSourceConfig({ type: 'nope' })).toThrow(ConfigError);
  });
});

describe('loadRuntimeConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medge-config-'));

  it('reads a file and resolves dataDir against its directory', () => {
    const file = join(dir, 'runtime.json');
    writeFileSync(file, JSON.stringify(minimal));
    expect(loadRuntimeConfig(file).dataDir).toBe(join(dir, 'data'));
  });

  it('names the file when it is missing or not JSON', () => {
    const missing = join(dir, 'missing.json');
    expect(() => loadRuntimeConfig(missing)).toThrow(expect.objectContaining({ field: '--config', value: missing, message: expect.stringContaining(missing) }));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "deviceId": "a", }');
    expect(() => loadRuntimeConfig(broken)).toThrow(expect.objectContaining({ field: '--config', value: broken }));
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ ...minimal, statusIntervalMs: 'fast' }));
    expect(() => loadRuntimeConfig(invalid)).toThrow(expect.objectContaining({ field: 'statusIntervalMs', file: invalid }));
  });

  it('refuses a config nested deeper than any real one, instead of overflowing the stack in validation', () => {
    const deep = join(dir, 'deep.json');
    writeFileSync(deep, `{"deviceId":"a","dataDir":"data","sources":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    expect(() => loadRuntimeConfig(deep)).toThrow(expect.objectContaining({ field: '--config', message: expect.stringContaining('more than 32 levels deep') }));
    // The README's layout is far from the limit.
    const normal = join(dir, 'normal.json');
    writeFileSync(normal, JSON.stringify({ ...minimal, edge: { backoff: { initialMs: 100 } }, ui: { users: [{ name: 'n', role: 'operator', pinHash: 'x' }] } }));
    expect(() => loadRuntimeConfig(normal)).not.toThrow(expect.objectContaining({ message: expect.stringContaining('levels deep') }));
  });
});

describe('device sources', () => {
  it('names an unknown driver by the source index and lists what is known', () => {
    const input = { deviceId: 'd', dataDir: '/tmp/x', sources: [{ type: 'sim-ecg' }, { type: 'device', sensor: 'meter', driver: 'no-such-driver' }] };
    const error = (() => {
      try {
        parseRuntimeConfig(input, '/');
      } catch (e) {
        return e as ConfigErrors;
      }
      throw new Error('expected a ConfigErrors');
    })();
    expect(error.field).toBe('sources[1].driver');
    expect(error.value).toBe('no-such-driver');
    expect(error.problem).toBe('is not a known driver');
  });

  it('names each wrong driver option by its own field and value, with a fix, as for the rest of the config', () => {
    // QA: "sources[0].options: must NOT have additional properties (got {...the whole options...}). Fix: <the driver's JSON schema>",
    // one problem per source, the misspelt option and the string "60000" unnamed, "alarmPins.buzzer ... (got {...})".
    const input = {
      deviceId: 'd',
      dataDir: '/tmp/x',
      sources: [
        { type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options: { pollIntervalMs: '60000', adress: 'C0:FF:EE:00:00:01' } },
        { type: 'device', sensor: 'ecg', driver: 'firmata-ecg', options: { path: '/dev/ttyACM0', alarmPins: { buzzer: 200 } } },
      ],
    };
    let error: ConfigErrors | undefined;
    try {
      parseRuntimeConfig(input, '/');
    } catch (e) {
      error = e as ConfigErrors;
    }
    expect(error?.problems.map((p) => [p.field, p.value, p.problem, p.fix])).toEqual([
      ['sources[0].options.adress', 'C0:FF:EE:00:00:01', 'unknown property (driver ble-glucose-meter)', expect.stringMatching(/^rename it to "address"; valid properties here are: address, /)],
      ['sources[0].options.pollIntervalMs', '60000', 'must be integer (driver ble-glucose-meter)', 'use an integer between 0 and 86400000'],
      ['sources[1].options.alarmPins.buzzer', 200, 'must be <= 127 (driver firmata-ecg)', 'use an integer between 0 and 127'],
    ]);
    // Valid options are merged over the driver's defaults.
    const ok = parseRuntimeConfig({ ...input, sources: [{ type: 'device', sensor: 'meter', driver: 'ble-glucose-meter', options: { pollIntervalMs: 5000 } }] }, '/');
    expect(ok.sources[0]).toMatchObject({ options: { pollIntervalMs: 5000, racpTimeoutMs: 15_000 } });
  });

  it('requires the sensor and driver of a device source', () => {
    expect(() => parseRuntimeConfig({ deviceId: 'd', dataDir: '/tmp/x', sources: [{ type: 'device', sensor: 'meter' }] }, '/')).toThrow(/driver/);
  });
});
