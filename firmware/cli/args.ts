import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MedgeError } from '../../device-sdk/errors.js';

/** A command line that cannot be acted on. Exit code 2, with the usage of the command. */
export class UsageError extends MedgeError {
  readonly usage: string;
  constructor(message: string, usage: string) {
    super('usage', message);
    this.usage = usage;
  }
}

/**
 * Input a command was pointed at that it cannot use: a file's contents, a record's files, a subject
 * not in the data. Exit code 1 with the message only: the command line was right, the usage would not
 * help (README: 2 is for a bad command line or config).
 */
export class DataError extends MedgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('data', message, options);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `--flag -5` as `--flag=-5` for a string option followed by a negative number: parseArgs takes the
 * value for a flag and calls it ambiguous, where the command's own check says what the value must be.
 */
function negativeValuesJoined(args: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    const option = arg.startsWith('--') && !arg.includes('=') ? options[arg.slice(2)] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${arg}=${next}`);
      i += 1;
    } else out.push(arg);
  }
  return out;
}

/** Strict `parseArgs`: unknown flags and stray positionals become a `UsageError` naming them. */
export type ParsedValues<O extends Options> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean };

export function parse<O extends Options>(args: string[], options: O, usage: string, positionals = 0): { values: ParsedValues<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: negativeValuesJoined(args, options), options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`, usage);
    return { values: parsed.values as ParsedValues<O>, positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message, usage);
  }
}

/** A non-negative integer flag, or a `UsageError` naming the flag and the value. */
export function intFlag(value: string | undefined, flag: string, usage: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, usage);
  return n;
}

/** Resolves when the process receives SIGINT or SIGTERM; a second signal exits at once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.once(signal, () => process.exit(130));
      resolve(signal);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}
