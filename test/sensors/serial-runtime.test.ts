/**
 * The serial drivers inside the real runtime, writing to the real SQLite ledger: an ECG on the
 * simulated stream device with 5 % corrupted frames and a Firmata board with alarm outputs.
 * Every sample the device sent intact is stored exactly once; the corrupted frames' bytes are in
 * quarantine with transport `serial:<path>`; an alert the runtime raises lights the board's LED
 * and sounds its buzzer (the runtime's alarm-output hook). Skips without socat unless MEDGE_REQUIRE_SYSTEM=1.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../device-sdk/log.js';
import { decodeBody } from '../../device-sdk/proto/index.js';
import { readLedgerBodies, readLedgerSummary } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { hashPin } from '../../firmware/ui/auth.js';
import { ledgerPath, Runtime } from '../../firmware/runtime.js';
import { renderRuntimeScreen } from '../../firmware/status-screen.js';
import { createFirmataBoard } from '../../simulator/devices/firmata-board.js';
import { arraySource, createStreamDevice, LEAD_OFF_RAIL, type LeadOffSpan } from '../../simulator/devices/stream-device.js';
import { simulatedEcg } from '../helpers/ecg-chunks.js';
import { findSocat, systemAvailable } from '../helpers/pty.js';
import { useTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { testSignal } from './serial-stream.contract.js';

const socatFound = systemAvailable('socat', findSocat() !== undefined, 'socat');
const tempDir = useTempDirs('serial-runtime');

/**
 * 30 s of a 72 /min ECG from the simulated stream device (on each of `channels` leads), electrodes off for
 * `off`, into a runtime with no edge; returns what its ledger holds once every chunk and status-only frame
 * sent is stored.
 */
async function leadOffInRuntime(deviceId: string, off: LeadOffSpan, channels = 1) {
  const dir = tempDir();
  const signal = Int16Array.from(simulatedEcg(30).flatMap((c) => Array.from(c.samples).flatMap((v) => Array<number>(channels).fill(v))));
  const device = await createStreamDevice({ deviceType: 'ecg', channels, rateHz: 360, source: arraySource(signal, channels), speed: 10, startOn: 'identify', faults: { leadOff: [off] } });
  const config = parseRuntimeConfig({ deviceId, dataDir: 'device', edge: { url: 'mqtt://127.0.0.1:1' }, sources: [{ type: 'device', sensor: 'ecg', driver: 'serial-ecg', options: { path: device.hostPath } }] }, dir);
  const runtime = new Runtime(config, { logger: silentLogger });
  runtime.start();
  try {
    await device.ended;
    // Every chunk sent is stored (nothing acknowledges them: no edge).
    await waitFor(() => runtime.status().backlog.chunk === (device.stats.dataFramesSent + device.stats.statusFrames.length) * channels, 'every chunk stored');
  } finally {
    await runtime.stop();
    await device.stop();
  }
  const ledger = ledgerPath(join(dir, 'device'));
  return { signal, ledger, device, chunks: readLedgerBodies(ledger, 'chunk').map((row) => decodeBody('chunk', row.body)) };
}

describe.skipIf(!socatFound)('serial and Firmata drivers in the runtime (needs socat: apt-get install -y socat)', () => {
  it('stores every intact ECG sample exactly once, quarantines the corrupted frames, and drives the alarm outputs on an alert', async () => {
    const dir = tempDir();
    const sets = 360 * 15;
    const signal = testSignal(sets, 1);
    const device = await createStreamDevice({ deviceType: 'ecg', channels: 1, rateHz: 360, source: arraySource(signal), speed: 15, startOn: 'identify', faults: { corruptRate: 0.05, seed: 5 } });
    const board = await createFirmataBoard({ analog: { 0: () => [512, 600, 700] } });
    const config = parseRuntimeConfig(
      {
        deviceId: 'serial-rt-1',
        dataDir: 'device',
        edge: { url: 'mqtt://127.0.0.1:1' },
        sources: [
          { type: 'device', sensor: 'ecg', driver: 'serial-ecg', options: { path: device.hostPath } },
          { type: 'device', sensor: 'ecg-firmata', driver: 'firmata-ecg', options: { path: board.hostPath, alarmPins: { led: 13, buzzer: 8 }, buzzerMs: 100 } },
        ],
      },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    runtime.start();
    try {
      await device.ended;
      await waitFor(() => board.reportingChannels.length === 1, 'the Firmata board streaming');
      runtime.raise({ kind: 'test-alarm', severity: 3, message: 'test alarm', t: Date.now(), sensor: 'ecg' });
      await waitFor(() => board.digitalWrites.some((w) => w.pin === 8 && w.value === 0), 'LED on, buzzer on then off');
      expect(board.digitalWrites.slice(0, 3).map(({ pin, value }) => [pin, value])).toEqual([
        [13, 1],
        [8, 1],
        [8, 0],
      ]);
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await runtime.stop();
      await device.stop();
      await board.stop();
    }
    const ledger = ledgerPath(join(dir, 'device'));
    {
      const seen = new Map<number, number>();
      let duplicates = 0;
      for (const row of readLedgerBodies(ledger, 'chunk')) {
        const chunk = decodeBody('chunk', row.body);
        if (chunk.sensor !== 'ecg') continue;
        chunk.samples.forEach((v, i) => {
          if (seen.has(chunk.firstSample + i)) duplicates += 1;
          seen.set(chunk.firstSample + i, v);
        });
      }
      const stats = device.stats;
      expect(stats.corrupted.length).toBeGreaterThan(3);
      const lost = new Set<number>();
      for (const span of stats.corrupted) for (let i = 0; i < span.samples; i++) lost.add(span.firstSample + i);
      expect(duplicates).toBe(0);
      expect(seen.size).toBe(sets - lost.size);
      for (const [index, value] of seen) expect(value).toBe(signal[index]);
      const quarantined = readLedgerBodies(ledger, 'quarantine').map((row) => decodeBody('quarantine', row.body));
      expect(quarantined.every((q) => q.transport === `serial:${device.hostPath}` && q.source === 'ecg')).toBe(true);
      expect(quarantined.reduce((n, q) => n + q.bytes.length, 0)).toBe(stats.corrupted.reduce((n, s) => n + s.bytes, 0));
      // The test alarm, and the Firmata ECG's 100 Hz (its fastest) reported once as outside the validated 128-360 Hz.
      const alerts = readLedgerBodies(ledger, 'alert').map((row) => decodeBody('alert', row.body));
      expect(alerts.map((a) => [a.kind, a.sensor]).sort()).toEqual([
        ['sample-rate-unvalidated', 'ecg-firmata'],
        ['test-alarm', 'ecg'],
      ]);
      expect(readLedgerSummary(ledger).kinds.alert.produced).toBe(2);
    }
  });

  it('an alert acknowledged on the clinic screen while the Firmata board is unplugged does not sound when it comes back; one not acknowledged does', async () => {
    const dir = tempDir();
    const board = await createFirmataBoard({ analog: { 0: () => [512, 600, 700] } });
    const config = parseRuntimeConfig(
      {
        deviceId: 'serial-rt-ack',
        dataDir: 'device',
        edge: { url: 'mqtt://127.0.0.1:1' },
        ui: { enabled: true, listen: '127.0.0.1:0', users: [{ name: 'nurse', role: 'operator', pinHash: hashPin('1111', { N: 1024 }) }] },
        sources: [{ type: 'device', sensor: 'ecg-firmata', driver: 'firmata-ecg', options: { path: board.hostPath, alarmPins: { led: 13, buzzer: 8 }, alarmMinSeverity: 3, buzzerMs: 300, ledMs: 60_000, staleMs: 400, backoff: { initialMs: 50, maxMs: 300 } } }],
      },
      dir,
    );
    const runtime = new Runtime(config, { logger: silentLogger });
    const ui = new Promise<{ url?: string; error?: string }>((resolve) => runtime.once('ui', resolve));
    const raised: string[] = [];
    runtime.on('alert', (a) => raised.push(`${a.kind}/${a.severity}`));
    runtime.start();
    try {
      const { url } = await ui;
      const login = await fetch(new URL('/api/login', url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'nurse', pin: '1111' }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
      const seqOf = async (kind: string) => {
        const reply = (await (await fetch(new URL('/api/alerts', url), { headers: { Cookie: cookie } })).json()) as { alerts: Array<{ kind: string; seq: number }> };
        return reply.alerts.find((a) => a.kind === kind)?.seq;
      };
      await waitFor(() => board.reportingChannels.length === 1, 'the Firmata board streaming');
      /** Unplugs the board, raises `kinds` (urgent) and acknowledges `ack` on the screen while it is away, and resolves with the writes after the replug. */
      const away = async (kinds: string[], ack: string[]) => {
        const replugged = board.unplug({ downMs: 1200 });
        await waitFor(() => runtime.status().sensors.some((st) => st.sensor === 'ecg-firmata' && !st.connected), 'the runtime to see the board go');
        for (const kind of kinds) runtime.raise({ kind, severity: 3, message: 'test alarm', t: Date.now(), sensor: 'ecg-firmata' });
        for (const kind of ack) {
          let seq: number | undefined;
          await waitFor(async () => (seq = await seqOf(kind)) !== undefined, `${kind} on the clinic screen`);
          const reply = await fetch(new URL(`/api/alerts/${seq}/ack`, url), { method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body: '{}' });
          expect(reply.status).toBe(200);
        }
        await replugged;
        const at = Date.now();
        const writes = () => board.digitalWrites.filter((w) => w.t >= at).map(({ pin, value }) => [pin, value]);
        const resumed = board.stats.analogMessages[0] ?? 0;
        await waitFor(() => (board.stats.analogMessages[0] ?? 0) > resumed + 50, 'streaming again');
        return writes;
      };
      // Acknowledged while away: silent and dark after the replug.
      const first = await away(['test-alarm-acked'], ['test-alarm-acked']);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(first()).toEqual([]);
      expect(board.digitalValue(13)).toBe(0);
      // Two while away, one of them acknowledged: the other sounds (buzzerMs) and lights the LED when the board is back.
      const second = await away(['test-alarm-open', 'test-alarm-acked-2'], ['test-alarm-acked-2']);
      await waitFor(() => second().length >= 3, 'LED on, buzzer on then off');
      expect(second()).toEqual([
        [13, 1],
        [8, 1],
        [8, 0],
      ]);
      expect(raised.filter((r) => r.endsWith('/3'))).toEqual(['test-alarm-acked/3', 'test-alarm-open/3', 'test-alarm-acked-2/3']);
    } finally {
      await runtime.stop();
      await board.stop();
    }
  });

  describe('Firmata alarm outputs latch until acknowledged on the clinic screen, across runtime restarts', () => {
    /** A runtime on `dir` with the clinic screen and the Firmata board's alarm outputs (urgent alerts only); logged in as a nurse. */
    async function clinicRuntime(dir: string, boardPath: string) {
      const config = parseRuntimeConfig(
        {
          deviceId: 'serial-rt-latch',
          dataDir: 'device',
          edge: { url: 'mqtt://127.0.0.1:1' },
          ui: { enabled: true, listen: '127.0.0.1:0', users: [{ name: 'nurse', role: 'operator', pinHash: hashPin('1111', { N: 1024 }) }] },
          sources: [{ type: 'device', sensor: 'ecg-firmata', driver: 'firmata-ecg', options: { path: boardPath, alarmPins: { led: 13, buzzer: 8 }, alarmMinSeverity: 3, buzzerMs: 300, staleMs: 400, backoff: { initialMs: 50, maxMs: 300 } } }],
        },
        dir,
      );
      const runtime = new Runtime(config, { logger: silentLogger });
      const ui = new Promise<{ url?: string; error?: string }>((resolve) => runtime.once('ui', resolve));
      runtime.start();
      const { url } = await ui;
      const login = await fetch(new URL('/api/login', url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'nurse', pin: '1111' }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
      /** Acknowledges the alert of `kind` on the clinic screen (POST /api/alerts/:seq/ack). */
      const ack = async (kind: string) => {
        let seq: number | undefined;
        await waitFor(async () => {
          const reply = (await (await fetch(new URL('/api/alerts', url), { headers: { Cookie: cookie } })).json()) as { alerts: Array<{ kind: string; seq: number }> };
          return (seq = reply.alerts.find((a) => a.kind === kind)?.seq) !== undefined;
        }, `${kind} on the clinic screen`);
        const reply = await fetch(new URL(`/api/alerts/${seq}/ack`, url), { method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body: '{}' });
        expect(reply.status).toBe(200);
      };
      const raise = (kind: string) => runtime.raise({ kind, severity: 3, message: 'test alarm', t: Date.now(), sensor: 'ecg-firmata' });
      return { runtime, ack, raise };
    }

    /** Resolves once the board has streamed `n` more analog values (the driver is connected and its outputs driven). */
    async function streamed(board: Awaited<ReturnType<typeof createFirmataBoard>>, n: number) {
      const from = board.stats.analogMessages[0] ?? 0;
      await waitFor(() => (board.stats.analogMessages[0] ?? 0) > from + n, `${n} more analog values`);
    }

    it('an acknowledgement on the clinic screen silences the buzzer and turns a connected board\'s LED off once no other alert is unacknowledged', async () => {
      // Before: an acknowledgement while the board was connected left the LED lit (for ledMs) and the buzzer sounding.
      const dir = tempDir();
      const board = await createFirmataBoard({ analog: { 0: () => [512, 600, 700] } });
      const { runtime, ack, raise } = await clinicRuntime(dir, board.hostPath);
      try {
        await streamed(board, 20);
        raise('urgent-1');
        raise('urgent-2');
        await waitFor(() => board.digitalValue(13) === 1 && board.digitalWrites.some((w) => w.pin === 8 && w.value === 0), 'LED on, buzzer on then off');
        await ack('urgent-2');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(board.digitalValue(13)).toBe(1); // urgent-1 is still unacknowledged
        await ack('urgent-1');
        await waitFor(() => board.digitalValue(13) === 0, 'the LED off after the last acknowledgement', 3000);
        expect(board.digitalWrites.map(({ pin, value }) => [pin, value])).toEqual([
          [13, 1],
          [8, 1],
          [8, 0],
          [13, 0],
        ]);
      } finally {
        await runtime.stop();
        await board.stop();
      }
    });

    it('after a restart the LED comes back on (and the buzzer sounds) for an urgent alert left unacknowledged, not for an acknowledged one', async () => {
      // Before: the alarm state lived in the driver only; after a restart the LED stayed dark for an unacknowledged urgent alarm.
      const dir = tempDir();
      const board = await createFirmataBoard({ analog: { 0: () => [512, 600, 700] } });
      const writesSince = (t: number) => board.digitalWrites.filter((w) => w.t >= t).map(({ pin, value }) => [pin, value]);
      try {
        const first = await clinicRuntime(dir, board.hostPath);
        await streamed(board, 20);
        first.raise('urgent-open');
        first.raise('urgent-acked');
        await first.ack('urgent-acked');
        await waitFor(() => board.digitalValue(13) === 1, 'LED on');
        await first.runtime.stop();
        await waitFor(() => board.digitalValue(13) === 0, 'the LED off: stopping the runtime darkens the board');

        // Restart: urgent-open is unacknowledged in the ledger and the audit log.
        const restartAt = Date.now();
        const second = await clinicRuntime(dir, board.hostPath);
        await waitFor(() => board.digitalValue(13) === 1 && board.digitalWrites.some((w) => w.pin === 8 && w.value === 0 && w.t >= restartAt), 'LED on, buzzer on then off after the restart');
        expect(writesSince(restartAt)).toEqual([
          [13, 1],
          [8, 1],
          [8, 0],
        ]);
        // The status screen says what the LED shows.
        const screen = () => renderRuntimeScreen({ runtime: second.runtime.status(), edge: { url: 'mqtt://x', stored: {}, rejected: {}, brokerUp: false }, brokerRestarts: 0, runtimeKills: 0, elapsedMs: 1000, phase: 'running' }, { width: 100, color: false, now: Date.now() });
        expect(second.runtime.status().alarmsLatched).toBe(1);
        expect(screen()).toContain('alarm       latched: 1 unacknowledged (acknowledge on the clinic screen)');
        await second.ack('urgent-open');
        await waitFor(() => board.digitalValue(13) === 0, 'the LED off after the acknowledgement');
        expect(second.runtime.status().alarmsLatched).toBe(0);
        expect(screen()).not.toContain('latched');
        await second.runtime.stop();

        // Restart again: everything acknowledged, nothing lights or sounds.
        const againAt = Date.now();
        const third = await clinicRuntime(dir, board.hostPath);
        try {
          await streamed(board, 100);
          await new Promise((resolve) => setTimeout(resolve, 300));
          expect(writesSince(againAt)).toEqual([]);
          expect(board.digitalValue(13)).toBe(0);
        } finally {
          await third.runtime.stop();
        }
      } finally {
        await board.stop();
      }
    });
  });

  it('stores the lead-off the ECG front end reports with the chunks and raises ecg-lead-off at once, nothing urgent, until contact is back', async () => {
    // 30 s of a 72 /min ECG; the electrodes off from 12 s for 6 s (frames of 18 samples: 216 whole frames).
    const off = { fromSample: 12 * 360, samples: 6 * 360 };
    const { signal, ledger, chunks } = await leadOffInRuntime('serial-rt-2', off);
    expect(chunks.reduce((n, c) => n + c.samples.length, 0)).toBe(signal.length);
    const flagged = chunks.filter((c) => c.leadOff);
    expect(flagged.map((c) => c.firstSample)).toEqual(Array.from({ length: off.samples / 18 }, (_, i) => off.fromSample + 18 * i));
    expect(flagged.every((c) => c.saturated && c.samples.every((v) => v === LEAD_OFF_RAIL))).toBe(true);
    expect(chunks.filter((c) => !c.leadOff).some((c) => c.saturated)).toBe(false);
    const alerts = readLedgerBodies(ledger, 'alert').map((row) => decodeBody('alert', row.body));
    expect(alerts.filter((a) => a.severity === 3)).toEqual([]);
    const leadOff = alerts.filter((a) => a.kind === 'ecg-lead-off');
    expect(leadOff).toHaveLength(1);
    expect(leadOff[0]?.message).toMatch(/^ECG front end reports electrode contact lost/);
    // 1 s after the first frame reported off (shorter reports are bridged), not after 2 s of flat signal.
    expect(Math.abs((leadOff[0]?.t as number) - ((flagged[0]?.t0 as number) + 1000))).toBeLessThanOrEqual(1);
    // The heart rate before the electrodes came off and after they were back.
    const rates = readLedgerBodies(ledger, 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'heart-rate');
    expect(rates.filter((r) => r.tDevice < (leadOff[0]?.t as number)).length).toBeGreaterThan(0);
    expect(rates.filter((r) => r.tDevice > (leadOff[0]?.t as number) + 6_000).length).toBeGreaterThan(0);
    for (const r of rates) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });

  it('stores the status-only frames (no samples) a front end sends when the electrodes come off and go back on, and raises one ecg-lead-off', async () => {
    // As above, with a front end that also reports each change at once in a status-only DATA frame, dated to
    // the sample where it happened (5 samples into a frame of 18).
    const off = { fromSample: 12 * 360 + 5, samples: 6 * 360, statusFrames: true };
    // Stored and read back through the wire encoding (protobuf StreamChunk, fields 10 and 11).
    const { signal, ledger, chunks, device } = await leadOffInRuntime('serial-rt-3', off);
    const status = chunks.filter((c) => c.samples.length === 0);
    expect(status.map((c) => [c.firstSample, c.leadOff === true, c.saturated === true])).toEqual([
      [off.fromSample, true, true],
      [off.fromSample + off.samples, false, false],
    ]);
    // Nothing lost or moved by them: every sample stored once, the flagged frames as before.
    expect(chunks.reduce((n, c) => n + c.samples.length, 0)).toBe(signal.length);
    expect(new Set(chunks.filter((c) => c.samples.length > 0).map((c) => c.firstSample)).size).toBe(device.stats.dataFramesSent);
    const alerts = readLedgerBodies(ledger, 'alert').map((row) => decodeBody('alert', row.body));
    expect(alerts.filter((a) => a.severity === 3)).toEqual([]);
    const leadOff = alerts.filter((a) => a.kind === 'ecg-lead-off');
    expect(leadOff).toHaveLength(1);
    // 1 s after the front end's report (at the end of the frame of 50 ms that reaches it), not after the first flagged frame.
    const late = (leadOff[0]?.t as number) - ((status[0]?.t0 as number) + 1000);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(50);
    const rates = readLedgerBodies(ledger, 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'heart-rate');
    expect(rates.filter((r) => r.tDevice > (leadOff[0]?.t as number) + 6_000).length).toBeGreaterThan(0);
    for (const r of rates) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });

  it('raises ecg-secondary-lead-off (severity 2) when the second lead of a two-lead front end comes off, and the heart rate from lead 1 goes on', async () => {
    // Two leads; the electrodes of lead 2 (channel 1) off from 12 s for 6 s.
    const off = { fromSample: 12 * 360, samples: 6 * 360, channels: 0b10 };
    const { ledger, chunks } = await leadOffInRuntime('serial-rt-4', off, 2);
    expect(chunks.filter((c) => c.leadOff).every((c) => c.channel === 1)).toBe(true);
    const alerts = readLedgerBodies(ledger, 'alert').map((row) => decodeBody('alert', row.body));
    expect(alerts.map((a) => [a.kind, a.severity])).toEqual([['ecg-secondary-lead-off', 2]]);
    expect(alerts[0]?.message).toMatch(/lead 2 \(channel 1\).*Heart rate and rhythm alarms come from lead 1 \(channel 0\) and go on/);
    const offAt = chunks.find((c) => c.leadOff)?.t0 as number;
    expect(Math.abs((alerts[0]?.t as number) - (offAt + 1000))).toBeLessThanOrEqual(1);
    const rates = readLedgerBodies(ledger, 'reading').map((row) => decodeBody('reading', row.body)).filter((r) => r.type === 'heart-rate');
    expect(rates.filter((r) => r.tDevice > offAt + 1000 && r.tDevice < offAt + 6000).length).toBeGreaterThan(0);
    for (const r of rates) expect(Math.abs(r.value - 72)).toBeLessThanOrEqual(6);
  });
});
