/** `phalanx keygen`: keys and a configuration file for a new cluster. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { generateCluster } from '../config/keys.js';
import { minimumReplicas } from '../core/quorum.js';
import { DEFAULT_DIRECTORY, OPTION_RANGES, rangedOption } from './options.js';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('generate replica and client keys and a cluster configuration (public keys only)')
    .option('--dir <directory>', 'where to write cluster.json and keys/', DEFAULT_DIRECTORY)
    .option('--f <f>', 'Byzantine replicas tolerated', rangedOption('--f', OPTION_RANGES.faultsTolerated), 1)
    .option('--k <k>', 'replicas recovering at once', rangedOption('--k', OPTION_RANGES.recoveringAtOnce), 0)
    .option('--n <n>', 'replicas (default 3f + 2k + 1)', rangedOption('--n', OPTION_RANGES.replicaCount))
    .option('--host <host>', 'payload address of every replica', '127.0.0.1')
    .option(
      '--base-port <port>',
      'replica i listens on port+i, its admin port is port+100+i',
      rangedOption('--base-port', OPTION_RANGES.basePort),
      7000,
    )
    .option('--clients <names>', 'comma-separated client principals with full access', 'admin')
    .option(
      '--bench-clients <count>',
      'extra clients bench-0.. for `phalanx bench`',
      rangedOption('--bench-clients', OPTION_RANGES.benchClientPrincipals),
      128,
    )
    .option('--storage <engine>', 'file or leveldb', 'file')
    .option(
      '--dashboard-port <port>',
      'dashboard port for `phalanx up`',
      rangedOption('--dashboard-port', OPTION_RANGES.listenPort),
      8080,
    )
    .option(
      '--recovery-bound <ms>',
      'run guardians with proactive recovery: T_D, the longest a rejuvenation may take (needs k ≥ 1)',
      rangedOption('--recovery-bound', OPTION_RANGES.recoveryBoundMs),
    )
    .option(
      '--period <ms>',
      'T_P, time between two rejuvenations of a replica (default: the minimum for n, f, k, T_D)',
      rangedOption('--period', OPTION_RANGES.periodMs),
    )
    .option(
      '--allow-fault-injection',
      'test and demo clusters: replicas accept --fault-mode and guardians POST /fault',
    )
    .option('--force', 'overwrite an existing configuration')
    .action(
      async (options: {
        dir: string;
        f: number;
        k: number;
        n?: number;
        host: string;
        basePort: number;
        clients: string;
        benchClients: number;
        storage: string;
        dashboardPort: number;
        recoveryBound?: number;
        period?: number;
        allowFaultInjection?: boolean;
        force?: boolean;
      }) => {
        if (existsSync(join(options.dir, 'cluster.json')) && options.force !== true) {
          throw new Error(
            `${join(options.dir, 'cluster.json')} exists; pass --force to replace it (and its keys)`,
          );
        }
        if (options.storage !== 'file' && options.storage !== 'leveldb')
          throw new Error('--storage must be file or leveldb');
        if (options.period !== undefined && options.recoveryBound === undefined) {
          throw new Error('--period needs --recovery-bound (T_P only means something with guardians)');
        }
        if (options.recoveryBound !== undefined && options.k < 1) {
          throw new Error(
            '--recovery-bound needs --k 1 or more: a rejuvenating replica counts against k, not f',
          );
        }
        const n = options.n ?? minimumReplicas(options.f, options.k);
        if (n < minimumReplicas(options.f, options.k)) {
          throw new Error(
            `--n ${n} is too small: f = ${options.f}, k = ${options.k} need n ≥ 3f + 2k + 1 = ${minimumReplicas(options.f, options.k)}`,
          );
        }
        const { configPath } = await generateCluster({
          directory: options.dir,
          f: options.f,
          k: options.k,
          n,
          host: options.host,
          basePort: options.basePort,
          clients: options.clients
            .split(',')
            .map((name) => name.trim())
            .filter((name) => name.length > 0),
          benchClients: options.benchClients,
          storageEngine: options.storage,
          dashboardPort: options.dashboardPort,
          allowFaultInjection: options.allowFaultInjection === true,
          ...(options.recoveryBound === undefined
            ? {}
            : {
                recovery: {
                  recoveryBoundMs: options.recoveryBound,
                  ...(options.period === undefined ? {} : { periodMs: options.period }),
                },
              }),
        });
        process.stdout.write(
          `wrote ${configPath} (n = ${n}, f = ${options.f}, k = ${options.k}) and private keys in ${join(options.dir, 'keys')}\n` +
            (options.recoveryBound === undefined
              ? 'copy cluster.json to every host; give each replica host only its own keys/replica-<id>.json\n'
              : 'copy cluster.json to every host; give each host only its own keys/guardian-<id>.json, and keep\n' +
                'keys/install.json offline after signing the code with `phalanx manifest`\n'),
        );
      },
    );
}
