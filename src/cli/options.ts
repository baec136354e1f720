/** Option parsing and configuration loading shared by the `phalanx` subcommands. */
import { InvalidArgumentError } from 'commander';
import pino, { type Logger } from 'pino';
import {
  type ClusterConfig,
  ConfigError,
  DEFAULT_SERVICE_MODULE,
  loadClusterConfig,
} from '../config/cluster-config.js';
import { type LoadedServiceModule, loadConfiguredService } from '../hosting/service-modules.js';
import { RotatingLogFile } from '../runtime/log-file.js';
import { defaultLogFormat, type LogFormat, loggerOptions, terminalLogger } from './logging.js';

/**
 * Where `phalanx up`, `demo` and the other commands keep the local cluster by default:
 * `$PHALANX_HOME`, or `.phalanx` in the current folder.
 */
export const DEFAULT_DIRECTORY = process.env.PHALANX_HOME ?? '.phalanx';
export const DEFAULT_CONFIG = `${DEFAULT_DIRECTORY}/cluster.json`;

export function integerOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
    }
    return parsed;
  };
}

/** A configuration with the service module it names, loaded and checked against it. */
export interface ServiceClusterConfig {
  readonly config: ClusterConfig;
  readonly service: LoadedServiceModule;
}

/**
 * Loads a configuration for the `phalanx` commands: the file must parse, its service module
 * (`service.module`, the key-value store by default) must load, and the module must accept the
 * configuration (its configProblems), or ConfigError lists every problem.
 */
export async function loadServiceClusterConfig(path: string): Promise<ServiceClusterConfig> {
  const config = await loadClusterConfig(path);
  return { config, service: await loadConfiguredService(config, path) };
}

/** loadServiceClusterConfig, for callers that need the configuration only. */
export async function loadCheckedClusterConfig(path: string): Promise<ClusterConfig> {
  return (await loadServiceClusterConfig(path)).config;
}

/** Loads the configuration and its service (loadServiceClusterConfig) or exits with every problem listed. */
export async function serviceConfigOrExit(path: string): Promise<ServiceClusterConfig> {
  try {
    return await loadServiceClusterConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`phalanx: ${error.message}\n`);
      if (error.problems.some((problem) => problem.startsWith('cannot read'))) {
        process.stderr.write(`(create one with: npx phalanx keygen --dir ${DEFAULT_DIRECTORY})\n`);
      }
      process.exit(2);
    }
    throw error;
  }
}

/** serviceConfigOrExit, for commands that need the configuration only. */
export async function configOrExit(path: string): Promise<ClusterConfig> {
  return (await serviceConfigOrExit(path)).config;
}

/**
 * Refuses, with a clear message, a command that speaks the key-value store's operations (`kv`,
 * `bench`, the live workload) to a cluster configured with another service.
 */
export function requireKvService(config: ClusterConfig, what: string): void {
  if (config.service.module !== DEFAULT_SERVICE_MODULE)
    throw new Error(
      `${what} uses the key-value store, but ${config.source} runs the service ${config.service.module}`,
    );
}

/**
 * Logs of a command on stderr (stdout stays for command output): pretty on a terminal, JSON
 * otherwise, or as `PHALANX_LOG_FORMAT` says.
 */
export function commandLogger(level: string = process.env.PHALANX_LOG_LEVEL ?? 'warn'): Logger {
  return terminalLogger(level, undefined, 2);
}

/**
 * On SIGINT or SIGTERM (once, however many arrive): logs, runs `close`, and exits 0, or 1 with
 * the error logged if closing failed.
 */
/**
 * The logger of a long-running process (replica, guardian): JSON lines to `logFile`, rotated by
 * size (RotatingLogFile: <file>.1 … <file>.4, 8 MiB each), or to stdout in `format`. An
 * exception nothing caught is logged as fatal before the process exits, so the reason is in the
 * log, not only on stderr.
 */
export function processLogger(
  level: string,
  base: Record<string, number>,
  logFile: string | undefined,
  format: LogFormat = defaultLogFormat(1),
): Logger {
  const logger =
    logFile === undefined
      ? terminalLogger(level, base, 1, format)
      : pino(loggerOptions(level, base), RotatingLogFile.open(logFile));
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception; stopping');
    process.exit(70);
  });
  return logger;
}

export function stopOnSignals(logger: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
