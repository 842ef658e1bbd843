/**
 * A simulated glucose meter that pushes one text line per reading over a serial pty, in the line
 * format of `firmware/sources/glucose-line-codec.ts` (written here from that format, not with the
 * codec):
 *
 *     GLU,<record>,<ISO-8601 meter time>,<mg/dL>,mg/dL,<meal>*<XOR checksum, 2 hex>\r\n
 *
 * ```ts
 * const meter = await createGlucoseLineMeter({ intervalMs: 200, firstRecord: 1 });
 * // the host opens meter.hostPath; meter.linesSent counts the lines
 * await meter.stop();
 * ```
 * Readings follow a slow sine around 110 mg/dL; meter time starts at `meterTimeOrigin` and advances
 * 5 minutes per record. It only talks, it never listens (what such meters do).
 */
import { type Clock, systemClock } from '../../device-sdk/clock.js';
import { SerialTransport } from '../../device-sdk/transport/serial-transport.js';
import { createPtyPair, type PtyPair } from '../pty.js';
import { ClockSleeper, definedOnly } from './device-timers.js';

export interface GlucoseLineMeterOptions {
  intervalMs: number;
  firstRecord: number;
  meterTimeOrigin: number;
  clock: Clock;
  pty: PtyPair | undefined;
}

export const DEFAULT_GLUCOSE_LINE_METER_OPTIONS = Object.freeze({ intervalMs: 1000, firstRecord: 1, meterTimeOrigin: Date.UTC(2025, 0, 1, 8), clock: systemClock, pty: undefined });

/** One line of the format above. */
export function glucoseLine(record: number, tMeter: number, mgdl: number, meal: string): string {
  const body = `GLU,${record},${new Date(tMeter).toISOString()},${Math.round(mgdl)},mg/dL,${meal}`;
  let sum = 0;
  for (const ch of Buffer.from(body, 'ascii')) sum ^= ch;
  return `${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}\r\n`;
}

export async function createGlucoseLineMeter(input: Partial<GlucoseLineMeterOptions> = {}): Promise<SimGlucoseLineMeter> {
  const ownPty = input.pty === undefined;
  const pty = input.pty ?? (await createPtyPair());
  const meter = new SimGlucoseLineMeter({ ...DEFAULT_GLUCOSE_LINE_METER_OPTIONS, ...definedOnly(input), pty }, ownPty);
  await meter.start();
  return meter;
}

export class SimGlucoseLineMeter {
  linesSent = 0;
  private readonly transport: SerialTransport;
  private readonly sleeper: ClockSleeper;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly options: GlucoseLineMeterOptions & { pty: PtyPair },
    private readonly ownPty: boolean,
  ) {
    this.transport = new SerialTransport({ path: options.pty.a });
    this.sleeper = new ClockSleeper(options.clock);
  }

  get hostPath(): string {
    return this.options.pty.b;
  }

  async start(): Promise<void> {
    await this.transport.open();
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper.wakeAll();
    await this.loop;
    await this.transport.close();
    if (this.ownPty) await this.options.pty.close();
  }

  private async run(): Promise<void> {
    const meals = ['fasting', 'preprandial', 'postprandial', 'unknown'];
    for (let i = 0; this.running; i++) {
      const line = glucoseLine(this.options.firstRecord + i, this.options.meterTimeOrigin + i * 300_000, 110 + 40 * Math.sin(i / 8), meals[i % meals.length]!);
      try {
        await this.transport.write(Buffer.from(line, 'ascii'));
        this.linesSent += 1;
      } catch {
        return;
      }
      await this.sleeper.sleep(this.options.intervalMs);
    }
  }
}
