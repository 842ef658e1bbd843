/**
 * Progress of a long CLI job for a person, on stderr: lines `medge <command>: <text>` as `medge ecg
 * eval` writes them, at most one per `intervalMs` (a forced step is always written). Off unless asked
 * for (`--progress`) or stderr is a terminal, so that scripts and tests reading stderr see only the
 * result.
 */
export interface CliProgress {
  /** Reports `text` if the last report is `intervalMs` old, or `force` (the first and last steps). */
  step(text: string, force?: boolean): void;
}

export interface CliProgressOptions {
  /** `--progress` was given. */
  requested: boolean;
  /** Minimum time between two unforced lines. */
  intervalMs?: number;
  stream?: NodeJS.WriteStream;
  now?: () => number;
}

export function createCliProgress(command: string, options: CliProgressOptions): CliProgress {
  const stream = options.stream ?? process.stderr;
  if (!options.requested && stream.isTTY !== true) return { step: () => undefined };
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 1000;
  let last = Number.NEGATIVE_INFINITY;
  return {
    step(text, force = false) {
      const t = now();
      if (!force && t - last < interval) return;
      last = t;
      stream.write(`medge ${command}: ${text}\n`);
    },
  };
}
