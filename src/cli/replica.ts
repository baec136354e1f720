/** `phalanx replica`: run one replica in this process (one per host in a real deployment). */
import type { Command } from 'commander';
import pino from 'pino';
import { loadReplicaKeyFile, replicaKeyPath } from '../config/keys.js';
import { replicaId } from '../core/ids.js';
import { ReplicaNode } from '../runtime/replica-node.js';
import { configOrExit, DEFAULT_CONFIG, integerOption } from './options.js';

export function registerReplica(program: Command): void {
  program
    .command('replica')
    .description('run one replica of the configuration')
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .requiredOption('--id <id>', 'which replica this is', integerOption('--id', 0, 63))
    .option('--keys <file>', 'private key file (default: <keysDirectory>/replica-<id>.json)')
    .option('--data <directory>', 'data folder (default: <dataDirectory>/replica-<id>)')
    .option('--amnesiac', 'the disk was lost: abstain from voting until a newer view is installed')
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.PHALANX_LOG_LEVEL ?? 'info')
    .action(
      async (options: {
        config: string;
        id: number;
        keys?: string;
        data?: string;
        amnesiac?: boolean;
        logLevel: string;
      }) => {
        const config = await configOrExit(options.config);
        if (options.id >= config.n)
          throw new Error(`--id ${options.id}: the configuration has replicas 0..${config.n - 1}`);
        const id = replicaId(options.id);
        const logger = pino({ level: options.logLevel, base: { replica: id } });
        const keys = await loadReplicaKeyFile(options.keys ?? replicaKeyPath(config, id));
        const node = await ReplicaNode.start({
          config,
          id,
          keys,
          logger,
          ...(options.data === undefined ? {} : { dataDirectory: options.data }),
          amnesiac: options.amnesiac === true,
        });
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, 'stopping');
          node.close().then(
            () => process.exit(0),
            (error: unknown) => {
              logger.error({ err: error }, 'error while stopping');
              process.exit(1);
            },
          );
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      },
    );
}
