/**
 * `phalanx guardian`: the trusted timely subsystem of one replica host. It runs the replica as
 * its child, rejuvenates it on the schedule and when it misbehaves, and talks only to the other
 * guardians. One per replica host; `phalanx up` starts one per replica.
 */

import type { Command } from 'commander';
import { guardianKeyPath, loadGuardianIdentity } from '../config/keys.js';
import { replicaId } from '../messages/ids.js';
import { defaultCodeDirectory, defaultManifestPath } from '../recovery/code-manifest.js';
import { Guardian } from '../recovery/guardian.js';
import { FAULT_MODES, isFaultMode } from '../runtime/ipc.js';
import { replicaUserProblems } from '../config/replica-user.js';
import { cliEntryPoint } from '../runtime/local-cluster.js';
import {
  configOrExit,
  DEFAULT_CONFIG,
  OPTION_RANGES,
  processLogger,
  rangedOption,
  stopOnSignals,
} from './options.js';
import { type LogFormat, parseLogFormat } from './logging.js';

/** Files the guardian creates are readable by itself only (0600, folders 0700). */
const GUARDIAN_UMASK = 0o077;

export function registerGuardian(program: Command): void {
  program
    .command('guardian')
    .description("run one replica's guardian (it starts and rejuvenates the replica)")
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .requiredOption(
      '--id <id>',
      'which replica this guardian runs',
      rangedOption('--id', OPTION_RANGES.replicaId),
    )
    .option('--identity <file>', 'identity key file (default: <keysDirectory>/guardian-<id>.json)')
    .option('--code <directory>', 'the code the replica runs (checked against the signed manifest)')
    .option('--manifest <file>', 'signed code manifest (default: <dataDirectory>/code-manifest.json)')
    .option(
      '--fault-mode <mode>',
      `test clusters only: the first replica incarnation runs as an intruder (${FAULT_MODES.join(', ')})`,
    )
    .option(
      '--replica-user <name>',
      'run the replica as this OS user (a name, or a pattern with {id}; default: recovery.replicaUser); needs root or CAP_SETUID and CAP_SETGID',
    )
    .option('--create-replica-user', 'create the replica user if it does not exist (useradd --system)')
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.PHALANX_LOG_LEVEL ?? 'info')
    .option(
      '--log-file <file>',
      'log to this file, rotated by size (<file>.1 ... <file>.4, 8 MiB each), not stdout',
    )
    .option(
      '--log-format <format>',
      'stdout log format: pretty (one readable line per event) or json (default: pretty on a terminal, json otherwise; log files are always json)',
      parseLogFormat,
    )
    .action(
      async (options: {
        config: string;
        id: number;
        identity?: string;
        code?: string;
        manifest?: string;
        faultMode?: string;
        replicaUser?: string;
        createReplicaUser?: boolean;
        logLevel: string;
        logFile?: string;
        logFormat?: LogFormat;
      }) => {
        // Everything the guardian creates (its log, state, session keys) is its own alone: the
        // replica may run as another user on this host, and must not read any of it.
        process.umask(GUARDIAN_UMASK);
        const config = await configOrExit(options.config);
        if (options.id >= config.n)
          throw new Error(`--id ${options.id}: the configuration has replicas 0..${config.n - 1}`);
        if (config.recovery === null)
          throw new Error(`${config.source} has no recovery section: nothing for a guardian to do`);
        if (options.faultMode !== undefined) {
          if (!isFaultMode(options.faultMode))
            throw new Error(`--fault-mode must be one of ${FAULT_MODES.join(', ')}`);
          if (!config.allowFaultInjection)
            throw new Error('--fault-mode refused: the configuration does not set allowFaultInjection');
        }
        const id = replicaId(options.id);
        const logger = processLogger(options.logLevel, { guardian: id }, options.logFile, options.logFormat);
        if (options.replicaUser !== undefined) {
          const problems = replicaUserProblems(options.replicaUser);
          if (problems.length > 0) throw new Error(`--replica-user: ${problems.join('; ')}`);
        }
        const identityKeyFile = options.identity ?? guardianKeyPath(config, id);
        const { identity, replica } = await loadGuardianIdentity(identityKeyFile);
        if (replica !== id) throw new Error(`the identity file is guardian ${replica}'s, not ${id}'s`);
        const guardian = await Guardian.start({
          config,
          id,
          identity,
          entryPoint: cliEntryPoint(),
          logger,
          codeDirectory: options.code ?? defaultCodeDirectory(),
          manifestPath: options.manifest ?? defaultManifestPath(config),
          initialFaultMode: (options.faultMode as (typeof FAULT_MODES)[number] | undefined) ?? null,
          replicaLogLevel: options.logLevel,
          identityKeyFile,
          ...(options.replicaUser === undefined ? {} : { replicaUser: options.replicaUser }),
          createReplicaUser: options.createReplicaUser === true,
        });
        stopOnSignals(logger, () => guardian.stop());
      },
    );
}
