/** Option parsing and configuration loading shared by the `phalanx` subcommands. */
import { InvalidArgumentError } from 'commander';
import pino, { type Logger } from 'pino';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  type ClusterConfig,
  ConfigError,
  DEFAULT_SERVICE_MODULE,
  loadClusterConfig,
  locateConfigProblems,
  MAX_CONFIG_FILE_BYTES,
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

/**
 * The allowed range of a numeric option, with its unit: every numeric option of every command
 * takes one of the named ranges below, so an implausible value (`--timeout 1`) is refused with the
 * range in words instead of being tried.
 */
export interface OptionRange {
  readonly min: number;
  readonly max: number;
  /** Printed after the bounds: 'ms', 's', 'bytes', 'MB'; '' for a plain count. */
  readonly unit: '' | 'ms' | 's' | 'bytes' | 'MB';
}

/**
 * Every numeric option's range, by what it means. Where a command-line value ends up in the
 * configuration file, its range is the one the configuration accepts (src/config/cluster-config.ts).
 */
export const OPTION_RANGES = {
  /** `kv --timeout`: below 100 ms not even a connection to a quorum completes; 10 min is a hung cluster. */
  clientTimeoutMs: { min: 100, max: 600_000, unit: 'ms' },
  /** `status --timeout`: the wait for each admin port. */
  adminTimeoutMs: { min: 100, max: 60_000, unit: 'ms' },
  /** `kv list --limit`: a list result holds at most KV_LIMITS.maxListResults entries. */
  listLimit: { min: 1, max: 1000, unit: '' },
  /** f of a configuration: n = 3f + 2k + 1 must stay within LIMITS.maxReplicas (64). */
  faultsTolerated: { min: 0, max: 21, unit: '' },
  /** k of a configuration. */
  recoveringAtOnce: { min: 0, max: 21, unit: '' },
  /** n of a configuration: at most LIMITS.maxReplicas. */
  replicaCount: { min: 1, max: 64, unit: '' },
  /** `--id` of a replica or guardian: 0 … LIMITS.maxReplicas − 1. */
  replicaId: { min: 0, max: 63, unit: '' },
  /** `keygen --base-port`: the guardian admin ports (base + 300 + i) must fit below 65536. */
  basePort: { min: 1, max: 65_000, unit: '' },
  /** A listening port; 0 lets the system choose a free one. */
  listenPort: { min: 0, max: 65_535, unit: '' },
  /** `keygen --bench-clients`. */
  benchClientPrincipals: { min: 0, max: 1000, unit: '' },
  /** T_D, as `recovery.recoveryBoundMs` accepts it. */
  recoveryBoundMs: { min: 100, max: 86_400_000, unit: 'ms' },
  /** T_P, up to a month. */
  periodMs: { min: 100, max: 31 * 86_400_000, unit: 'ms' },
  /** Throwaway bench clusters on one machine: f and k stay small. */
  benchFaultsTolerated: { min: 0, max: 5, unit: '' },
  benchRecoveringAtOnce: { min: 0, max: 5, unit: '' },
  /** Closed-loop bench clients (one key file each, `keygen --bench-clients`). */
  benchClients: { min: 1, max: 1000, unit: '' },
  benchRequests: { min: 1, max: 100_000_000, unit: '' },
  benchWarmupRequests: { min: 0, max: 10_000_000, unit: '' },
  benchWarmupSeconds: { min: 0, max: 3600, unit: 's' },
  /** Bench request and reply values: at most one KV value (1 MiB). */
  benchValueBytes: { min: 0, max: 1_000_000, unit: 'bytes' },
  /** `bench recovery`. */
  benchStateMb: { min: 1, max: 4096, unit: 'MB' },
  benchRecoveryBoundMs: { min: 1000, max: 600_000, unit: 'ms' },
  benchRecoveryClients: { min: 1, max: 64, unit: '' },
  benchBaselineMs: { min: 1000, max: 600_000, unit: 'ms' },
  benchRecoverySlots: { min: 1, max: 6, unit: '' },
  benchTargetSeconds: { min: 1, max: 3600, unit: 's' },
  /** `demo`: when the intruder first strikes, and how often after. */
  firstIntrusionSeconds: { min: 1, max: 3600, unit: 's' },
  intrusionEverySeconds: { min: 5, max: 3600, unit: 's' },
  /** bench --metrics-linger: how long the client metrics stay served after the result. */
  metricsLingerMs: { min: 0, max: 3_600_000, unit: 'ms' },
} as const satisfies Record<string, OptionRange>;

function withUnit(value: number, unit: OptionRange['unit']): string {
  return unit === '' ? String(value) : `${value} ${unit}`;
}

/** "must be between 100 ms and 600000 ms", the words every range refusal uses. */
export function rangeText(range: OptionRange): string {
  return `between ${withUnit(range.min, range.unit)} and ${withUnit(range.max, range.unit)}`;
}

/**
 * Why `text` is not an acceptable value of `flag`, or null when it is: a decimal integer
 * (no fractions, exponents or hex) within the range.
 */
export function rangeProblem(flag: string, range: OptionRange, text: string): string | null {
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed)))
    return `${flag} must be a whole number ${rangeText(range)}, got ${JSON.stringify(text)}`;
  const value = Number(trimmed);
  if (value < range.min || value > range.max) return `${flag} must be ${rangeText(range)}, got ${value}`;
  return null;
}

/** A commander parser for a numeric option: refuses values outside `range` (exit status 2). */
export function rangedOption(flag: string, range: OptionRange): (value: string) => number {
  return (value: string) => {
    const problem = rangeProblem(flag, range, value);
    if (problem !== null) throw new InvalidArgumentError(problem);
    return Number(value.trim());
  };
}

/** Exit status of every usage error: a bad option, a bad configuration file. */
export const USAGE_EXIT_CODE = 2;

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
  try {
    return { config, service: await loadConfiguredService(config, path) };
  } catch (error) {
    if (!(error instanceof ConfigError) || extname(path) !== '.json') throw error;
    // The service's own problems (e.g. a client's keyspaces) get a line and column too.
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw error;
    }
    throw text.length > MAX_CONFIG_FILE_BYTES ? error : locateConfigProblems(error, text);
  }
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
      process.exit(USAGE_EXIT_CODE);
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
