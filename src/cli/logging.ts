/**
 * How Phalanx processes write their logs: JSON lines for machines (log files, pipes, log
 * shippers) and one readable line per event for a person at a terminal. Both carry ISO 8601
 * times (UTC), so a line read in a file, a terminal or a log store names the same instant.
 */
import { isatty } from 'node:tty';
import { InvalidArgumentError } from 'commander';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The `--log-format` option's parser: refuses anything but the two formats, naming them. */
export function parseLogFormat(value: string): LogFormat {
  const format = LOG_FORMATS.find((known) => known === value);
  if (format === undefined)
    throw new InvalidArgumentError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, got "${value}"`);
  return format;
}

/**
 * The format a terminal stream gets when nobody chose: pretty on a terminal, JSON otherwise
 * (a pipe into a log shipper or a file must stay machine-readable).
 */
export function defaultLogFormat(fileDescriptor: 1 | 2): LogFormat {
  const chosen = process.env.PHALANX_LOG_FORMAT;
  if (chosen !== undefined && chosen !== '') return parseLogFormat(chosen);
  return isatty(fileDescriptor) ? 'pretty' : 'json';
}

/** Options every Phalanx logger shares: ISO times, and no pid or host name on every line. */
export function loggerOptions(level: string, base: Record<string, number> | undefined): LoggerOptions {
  return { level, base: base ?? null, timestamp: pino.stdTimeFunctions.isoTime };
}

/**
 * A destination on a terminal stream (1 stdout, 2 stderr) in `format`. Pretty lines are written
 * synchronously, so a line logged just before the process exits is not lost, and each event is
 * one line: time, level, message, then its fields as compact JSON.
 */
export function terminalDestination(fileDescriptor: 1 | 2, format: LogFormat): DestinationStream {
  if (format === 'json') return pino.destination({ dest: fileDescriptor, sync: true });
  return pretty({
    destination: fileDescriptor,
    sync: true,
    colorize: isatty(fileDescriptor),
    singleLine: true,
    translateTime: 'UTC:yyyy-mm-dd"T"HH:MM:ss.l"Z"',
    // An error shows as its message on the event's line; its stack stays in JSON logs and log
    // files, where whoever debugs reads it.
    messageFormat: '{msg}{if err.message}: {err.message}{end}',
    ignore: 'pid,hostname,err',
  });
}

/** A logger writing to a terminal stream in `format`. */
export function terminalLogger(
  level: string,
  base: Record<string, number> | undefined,
  fileDescriptor: 1 | 2,
  format: LogFormat = defaultLogFormat(fileDescriptor),
): Logger {
  return pino(loggerOptions(level, base), terminalDestination(fileDescriptor, format));
}
