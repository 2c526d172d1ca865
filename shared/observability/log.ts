/**
 * The `Log` port: structured log lines, one JSON object each, with the same
 * keys on Lambda (Powertools Logger, see `powertools-log.ts`) and locally
 * ({@link jsonLog}). Fields are correlation keys and sizes: a caller never
 * passes a payload, a secret or an API key.
 */

import type { Context } from 'aws-lambda';

/** Levels, lowest first. `SILENT` logs nothing. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The values a log line may carry: scalars only, so no object (a payload) slips in whole. */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A log whose every line also carries `keys` (e.g. the Lambda request id of one invocation). */
  child(keys: LogFields): Log;
  /**
   * On Lambda (one invocation at a time per process): every line of this log
   * and its children carries the invocation's context from now on (request
   * id, function name, cold start). Absent where invocations run side by side.
   */
  addContext?(context: Context): void;
}

/** Name of the service in every line (Powertools' `service` key). */
export const LOG_SERVICE = 'sayiir';

/**
 * The level from the environment: `LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`
 * (set by Lambda's advanced logging controls), else `INFO`. An unknown value
 * fails loudly rather than silencing the logs.
 *
 * @example
 * ```ts
 * levelFromEnv({ LOG_LEVEL: 'debug' }); // 'DEBUG'
 * ```
 */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const raw = (env.LOG_LEVEL || env.AWS_LAMBDA_LOG_LEVEL || 'INFO').toUpperCase();
  const level = raw === 'WARNING' ? 'WARN' : raw === 'TRACE' ? 'DEBUG' : raw === 'CRITICAL' ? 'ERROR' : raw;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${raw}'`);
  }
  return level as LogLevel;
}

/** Options of {@link jsonLog}. */
export interface JsonLogOptions {
  /** @default levelFromEnv() */
  readonly level?: LogLevel;
  /** Where each line goes (without its newline). @default a write to stdout */
  readonly write?: (line: string) => void;
  /**
   * `pretty`: one short readable line (time, level, message, then
   * `key=value`s), for a person at a terminal. The keys are the same.
   * @default 'json'
   */
  readonly format?: 'json' | 'pretty';
  /** Keys of every line. */
  readonly keys?: LogFields;
  /** @default Date.now */
  readonly now?: () => number;
}

const rank = (l: LogLevel): number => LOG_LEVELS.indexOf(l);

const COLORS: Record<string, string> = { DEBUG: '\x1b[90m', INFO: '\x1b[36m', WARN: '\x1b[33m', ERROR: '\x1b[31m' };

/**
 * The local log: the line shape of Powertools Logger (`level`, `message`,
 * `timestamp`, `service`, then the fields), as JSON lines, or pretty.
 *
 * @example
 * ```ts
 * const log = jsonLog({ level: 'INFO' });
 * log.info('task completed', { workflow: 'orders', taskKey: 'charge', attempt: 1 });
 * // {"level":"INFO","message":"task completed","timestamp":"…","service":"sayiir","workflow":"orders",…}
 * ```
 */
export function jsonLog(options: JsonLogOptions = {}): Log {
  const min = rank(options.level ?? levelFromEnv());
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? Date.now;
  const format = options.format ?? 'json';
  const make = (keys: LogFields): Log => {
    const emit = (level: LogLevel, message: string, fields?: LogFields) => {
      if (rank(level) < min) return;
      const timestamp = new Date(now()).toISOString();
      const all = { ...keys, ...fields };
      if (format === 'pretty') {
        const pairs = Object.entries(all)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`);
        write(`${timestamp.slice(11, 23)} ${COLORS[level]}${level.padEnd(5)}\x1b[0m ${message} ${pairs.join(' ')}`);
        return;
      }
      write(JSON.stringify({ level, message, timestamp, service: LOG_SERVICE, ...all }));
    };
    return {
      debug: (m, f) => emit('DEBUG', m, f),
      info: (m, f) => emit('INFO', m, f),
      warn: (m, f) => emit('WARN', m, f),
      error: (m, f) => emit('ERROR', m, f),
      child: (more) => make({ ...keys, ...more }),
    };
  };
  return make(options.keys ?? {});
}

/** A log that writes nothing. */
export const silentLog: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLog,
};
