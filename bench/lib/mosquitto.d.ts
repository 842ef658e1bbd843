// Types of bench/lib/mosquitto.js (the one implementation; test/helpers/mosquitto.ts re-exports it).

export interface StartMosquittoOptions {
  /** Port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Broker binary (default: `findMosquitto()`). */
  binary?: string;
  /** Extra lines appended to the generated mosquitto.conf; `{dir}` is replaced by the temp dir, e.g. `persistence true`, `persistence_location {dir}/`. */
  extraConfig?: readonly string[];
}

export interface MosquittoBroker {
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Pid of the current broker process (changes on `restart()`). */
  readonly pid: number;
  /** Temp dir holding `mosquitto.conf`; owned by the `mosquitto` user when started as root. Removed by `dispose()` or at process exit. */
  readonly dir: string;
  /** Last 4 kB of the broker's stderr (errors only). */
  readonly stderr: string;
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then waits for the process to exit. */
  kill(): Promise<void>;
  /** Stops the broker if it is running, then starts it again on the same port and config. */
  restart(): Promise<void>;
  /** Stops the broker and removes its temp dir. */
  dispose(): Promise<void>;
}

/** Path of the `mosquitto` binary (or of `name`, e.g. `mosquitto_pub`): PATH, then /usr/sbin and /usr/local/sbin. */
export function findMosquitto(name?: string): string | undefined;

/**
 * Found: true. Not found: throws when MEDGE_REQUIRE_SYSTEM=1 ("<name> is required (MEDGE_REQUIRE_SYSTEM=1)
 * but was not found; install it: apt-get install -y <pkg>"), otherwise false (then skip with a reason).
 */
export function systemAvailable(name: string, found: boolean, pkg?: string): boolean;

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number>;

/** Starts Mosquitto with a generated config in a temp dir; resolves once the port accepts TCP connections (5 s timeout). */
export function startMosquitto(options?: StartMosquittoOptions): Promise<MosquittoBroker>;
