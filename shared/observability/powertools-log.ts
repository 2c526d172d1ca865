import { Logger } from '@aws-lambda-powertools/logger';
import { LOG_SERVICE, type Log, type LogFields, type LogLevel, levelFromEnv } from './log.ts';

/**
 * The {@link Log} port on Powertools Logger, for Lambda: JSON lines with
 * `level`, `message`, `timestamp`, `service`, the X-Ray trace id and, in
 * each invocation's child, `function_request_id`.
 *
 * @example
 * ```ts
 * const log = powertoolsLog();
 * log.child({ function_request_id: context.awsRequestId }).info('task completed', { taskKey: 'a' });
 * ```
 */
export function powertoolsLog(options: { readonly level?: LogLevel; readonly logger?: Logger } = {}): Log {
  const level = options.level ?? levelFromEnv();
  const logger =
    options.logger ?? new Logger({ serviceName: LOG_SERVICE, logLevel: level === 'SILENT' ? 'SILENT' : level });
  const make = (keys: LogFields): Log => ({
    debug: (m, f) => logger.debug(m, { ...keys, ...f }),
    info: (m, f) => logger.info(m, { ...keys, ...f }),
    warn: (m, f) => logger.warn(m, { ...keys, ...f }),
    error: (m, f) => logger.error(m, { ...keys, ...f }),
    child: (more) => make({ ...keys, ...more }),
    addContext: (context) => logger.addContext(context),
  });
  return make({});
}
