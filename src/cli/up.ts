/**
 * `phalanx up`: a local cluster on this machine — n replica processes on loopback, each with its
 * own data folder, plus the dashboard — and optionally a light live workload. Ctrl-C stops
 * every process it started.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { KvClient } from '../apps/kv/client.js';
import { PhalanxClient } from '../client/client.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../config/keys.js';
import { clientId } from '../core/ids.js';
import { DashboardServer } from '../dashboard/server.js';
import { cliEntryPoint, LocalCluster } from '../runtime/local-cluster.js';
import { commandLogger, configOrExit, DEFAULT_CONFIG, DEFAULT_DIRECTORY } from './options.js';

/** A gentle, steady workload so the dashboard has something to show. */
export class LiveWorkload {
  readonly #kv: KvClient;
  readonly #logger: Logger;
  #running = true;
  completed = 0;
  failed = 0;
  readonly #loop: Promise<void>;

  constructor(kv: KvClient, logger: Logger, operationsPerSecond: number) {
    this.#kv = kv;
    this.#logger = logger;
    this.#loop = this.#run(operationsPerSecond);
  }

  async #run(operationsPerSecond: number): Promise<void> {
    const encoder = new TextEncoder();
    let index = 0;
    while (this.#running) {
      const started = Date.now();
      const key = `workload/${index % 100}`;
      try {
        if (index % 3 === 2) await this.#kv.get(key);
        else await this.#kv.put(key, encoder.encode(`value ${index}`));
        this.completed++;
      } catch (error) {
        // An operation cut short by Ctrl-C is not a failure of the cluster.
        if (this.#running) {
          this.failed++;
          this.#logger.warn({ err: error }, 'workload operation failed');
        }
      }
      index++;
      const pause = 1000 / operationsPerSecond - (Date.now() - started);
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

async function ensureConfig(path: string): Promise<void> {
  if (existsSync(path)) return;
  if (path !== DEFAULT_CONFIG) throw new Error(`${path} does not exist (create one with phalanx keygen)`);
  await generateCluster({
    directory: DEFAULT_DIRECTORY,
    f: 1,
    k: 0,
    basePort: 7000,
    clients: ['admin'],
    benchClients: 128,
  });
  process.stdout.write(`generated a local cluster configuration in ${DEFAULT_DIRECTORY}/ (n = 4, f = 1)\n`);
}

export async function startDashboard(
  config: ClusterConfig,
  port = config.dashboard.port,
): Promise<DashboardServer> {
  return DashboardServer.start({
    host: config.dashboard.host,
    port,
    cluster: { n: config.n, f: config.f, k: config.k },
    replicaAdminUrls: config.replicas.map((replica) => `http://${replica.adminHost}:${replica.adminPort}`),
  });
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run a local cluster (one process per replica) with its dashboard')
    .option('--config <file>', 'cluster configuration (created with defaults when absent)', DEFAULT_CONFIG)
    .option('--workload', 'run a light live workload against the cluster')
    .option('--log-level <level>', 'replica log level (logs go to <dataDirectory>/replica-<id>.log)', 'info')
    .action(async (options: { config: string; workload?: boolean; logLevel: string }) => {
      await ensureConfig(options.config);
      const config = await configOrExit(options.config);
      const logger = commandLogger();
      let stopping = false;
      const cluster = new LocalCluster({
        config,
        entryPoint: cliEntryPoint(),
        logLevel: options.logLevel,
        onUnexpectedExit: (id, code, signal) => {
          if (!stopping)
            process.stdout.write(
              `replica ${id} exited (code ${code}, signal ${signal}); see ${cluster.logFile(id)}\n`,
            );
        },
      });
      await cluster.startAll();
      process.stdout.write(
        `started ${config.n} replicas (f = ${config.f}); logs in ${config.dataDirectory}\n`,
      );
      await cluster.waitUntilReady();
      const dashboard = await startDashboard(config);
      process.stdout.write(`dashboard: ${dashboard.url}\n`);
      let workload: LiveWorkload | null = null;
      let client: PhalanxClient | null = null;
      if (options.workload === true) {
        const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
        client = await PhalanxClient.connect({ config, client: keys });
        workload = new LiveWorkload(new KvClient(client), logger, 20);
        process.stdout.write('live workload: 20 operations per second as client admin\n');
      }
      process.stdout.write(
        `try: npx phalanx kv put a 1 && npx phalanx kv get a   (Ctrl-C stops the cluster)\n`,
      );
      const progress = setInterval(() => {
        if (workload !== null)
          process.stdout.write(
            `workload: ${workload.completed} operations done, ${workload.failed} failed\n`,
          );
      }, 10_000);
      const stop = async (): Promise<void> => {
        if (stopping) return;
        stopping = true;
        clearInterval(progress);
        process.stdout.write('\nstopping...\n');
        await workload?.stop();
        await client?.close();
        await dashboard.close();
        await cluster.stopAll();
        process.stdout.write('all replicas stopped\n');
        process.exit(0);
      };
      process.on('SIGINT', () => void stop());
      process.on('SIGTERM', () => void stop());
    });
}
