// The simulated glucose meter's RACP server, checked from the collector side over the real bus:
// what the BLE drivers rely on the peer to do (shared/specs/ble-health-profiles.md §3.5).
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeGlucoseMeasurement } from '../../device-sdk/protocols/ble/glucose.js';
import { decodeRacpResponse, encodeRacpRequest, type RacpRequestFields, type RacpResponse } from '../../device-sdk/protocols/ble/racp.js';
import { type GattLink, NodeBleConnector } from '../../device-sdk/transport/ble.js';
import { SimGlucoseMeter } from '../../simulator/bluez/index.js';
import { dbusDaemonAvailable, useSimulatedBluez } from '../helpers/dbus.js';
import { waitFor } from '../helpers/wait.js';

const METER = 'C0:FF:EE:00:00:01';

interface Collector {
  link: GattLink;
  sequences: number[];
  responses: RacpResponse[];
  request(r: RacpRequestFields): Promise<RacpResponse>;
}

async function collector(link: GattLink): Promise<Collector> {
  const c: Collector = {
    link,
    sequences: [],
    responses: [],
    async request(r) {
      const n = c.responses.length;
      await link.write(0x1808, 0x2a52, encodeRacpRequest(r));
      await waitFor(() => c.responses.length > n, `the answer to ${JSON.stringify(r)}`);
      return c.responses[n] as RacpResponse;
    },
  };
  await link.subscribe(0x1808, 0x2a18, (b) => c.sequences.push(decodeGlucoseMeasurement(b).sequenceNumber), { dedupe: false });
  await link.subscribe(0x1808, 0x2a34, () => undefined);
  await link.subscribe(0x1808, 0x2a52, (b) => c.responses.push(decodeRacpResponse(b)), { dedupe: false });
  return c;
}

const code = (name: string, request: number) => ({ opCode: 'response-code', requestOpCode: { code: request, name: expect.any(String) }, responseCode: { code: expect.any(Number), name } });

describe.skipIf(!dbusDaemonAvailable())('simulated glucose meter RACP over the simulated BlueZ (needs dbus-daemon: apt-get install -y dbus-daemon)', () => {
  const bluezWith = useSimulatedBluez();

  it('answers count, filtered reports, delete and abort as GLS specifies', async () => {
    const meter = new SimGlucoseMeter({ address: METER, storedRecords: 40, faults: { notifyDelayMs: 2 } });
    const bluez = await bluezWith([meter]);
    const connector = new NodeBleConnector({ address: METER, dbusAddress: bluez.address, discoveryPollMs: 20, logger: silentLogger });
    try {
      const link = await connector.connect();
      // Without RACP indications enabled a write is refused: ATT error 0x81 (GLS: CCCD improperly configured), as BlueZ reports it.
      await expect(link.write(0x1808, 0x2a52, encodeRacpRequest({ opCode: 'report-stored-records', operator: 'all' }))).rejects.toMatchObject({
        code: 'gatt-failed',
        attError: 0x81,
        message: expect.stringContaining('Operation failed with ATT error: 0x81'),
      });
      const c = await collector(link);
      expect(await c.request({ opCode: 'report-number-of-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: 31 } })).toEqual({
        opCode: 'number-of-stored-records-response',
        count: 10,
      });
      expect(await c.request({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 5, to: 8 } })).toMatchObject(code('success', 1));
      expect(c.sequences).toEqual([5, 6, 7, 8]);
      expect(await c.request({ opCode: 'report-stored-records', operator: 'last' })).toMatchObject(code('success', 1));
      expect(c.sequences.at(-1)).toBe(40);
      expect(await c.request({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: 41 } })).toMatchObject(code('no-records-found', 1));
      expect(await c.request({ opCode: 'delete-stored-records', operator: 'less-or-equal', filter: { type: 'sequence-number', value: 10 } })).toMatchObject(code('success', 2));
      expect(meter.records).toHaveLength(30);
      // Abort a running transfer: it stops early and the abort is answered with success.
      c.sequences.length = 0;
      await link.write(0x1808, 0x2a52, encodeRacpRequest({ opCode: 'report-stored-records', operator: 'all' }));
      await waitFor(() => c.sequences.length >= 3, 'the transfer to start');
      // A request while it runs: the write is refused with ATT error 0x80, procedure already in progress (GLS 1.0).
      await expect(c.request({ opCode: 'report-stored-records', operator: 'all' })).rejects.toMatchObject({ code: 'gatt-failed', attError: 0x80 });
      expect(meter.stats.busy).toBe(1);
      expect(await c.request({ opCode: 'abort-operation' })).toMatchObject(code('success', 3));
      await waitFor(() => meter.stats.aborted === 1, 'the aborted transfer');
      expect(c.sequences.length).toBeLessThan(30);
      // A malformed request (operator "all" with an operand) is answered, not ignored.
      const before = c.responses.length;
      await link.write(0x1808, 0x2a52, Uint8Array.of(0x01, 0x01, 0x01));
      await waitFor(() => c.responses.length === before + 1, 'the answer to the malformed request');
      expect(c.responses.at(-1)).toMatchObject({ opCode: 'response-code', requestOpCode: { code: 1 } });
      expect((c.responses.at(-1) as { responseCode: { name: string } }).responseCode.name).not.toBe('success');
      expect(meter.lastError).toBeUndefined();
    } finally {
      await connector.close();
    }
  }, 30_000);

  it('answers what it does not claim as GLS specifies (04 operator, 09 filter type not supported), and tells its Device Information', async () => {
    const meter = new SimGlucoseMeter({
      address: METER,
      storedRecords: 12,
      racpOperators: ['all', 'greater-or-equal', 'last'],
      racpFilterTypes: ['sequence-number'],
      deviceInformation: { manufacturer: 'Acme Diagnostics', model: 'GM-7', serial: 'GM7-004211', firmware: '3.1' },
    });
    const bluez = await bluezWith([meter]);
    const connector = new NodeBleConnector({ address: METER, dbusAddress: bluez.address, discoveryPollMs: 20, logger: silentLogger });
    try {
      const link = await connector.connect();
      // DIS 0x180A: the strings as UTF-8 bytes, no terminator.
      expect(Buffer.from(await link.read(0x180a, 0x2a25)).toString('hex')).toBe('474d372d303034323131'); // "GM7-004211"
      expect(Buffer.from(await link.read(0x180a, 0x2a29)).toString('utf8')).toBe('Acme Diagnostics');
      expect(Buffer.from(await link.read(0x180a, 0x2a24)).toString('utf8')).toBe('GM-7');
      expect(Buffer.from(await link.read(0x180a, 0x2a26)).toString('utf8')).toBe('3.1');
      const c = await collector(link);
      // 01 04 01 05 00 05 00 (within range 5..5): 06 00 01 04, no record.
      expect(await c.request({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 5, to: 5 } })).toMatchObject(code('operator-not-supported', 1));
      expect(await c.request({ opCode: 'report-number-of-stored-records', operator: 'first' })).toMatchObject(code('operator-not-supported', 4));
      // 01 03 02 <Date Time> (user-facing time ≥ ...): 06 00 01 09.
      const time = { year: 2026, month: 1, day: 1, hours: 0, minutes: 0, seconds: 0 };
      expect(await c.request({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'user-facing-time', value: time } })).toMatchObject(code('operand-not-supported', 1));
      expect(c.sequences).toEqual([]);
      expect(await c.request({ opCode: 'report-stored-records', operator: 'greater-or-equal', filter: { type: 'sequence-number', value: 11 } })).toMatchObject(code('success', 1));
      expect(c.sequences).toEqual([11, 12]);
      expect(meter.stats.reports).toEqual({ 'within-range': 1, 'greater-or-equal': 2 });
      expect(meter.lastError).toBeUndefined();
    } finally {
      await connector.close();
    }
  }, 30_000);

  it('answers a within-range request for one record with that record, and a range from above its to with 05 (invalid operand)', async () => {
    const meter = new SimGlucoseMeter({ address: METER, storedRecords: 12 });
    const bluez = await bluezWith([meter]);
    const connector = new NodeBleConnector({ address: METER, dbusAddress: bluez.address, discoveryPollMs: 20, logger: silentLogger });
    try {
      const c = await collector(await connector.connect());
      expect(await c.request({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 7, to: 7 } })).toMatchObject(code('success', 1));
      expect(c.sequences).toEqual([7]);
      expect(await c.request({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 13, to: 13 } })).toMatchObject(code('no-records-found', 1));
      expect(await c.request({ opCode: 'report-stored-records', operator: 'within-range', filter: { type: 'sequence-number', from: 9, to: 8 } })).toMatchObject(code('invalid-operand', 1));
      expect(c.sequences).toEqual([7]);
      expect(meter.lastError).toBeUndefined();
    } finally {
      await connector.close();
    }
  }, 30_000);
});
