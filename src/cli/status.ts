/** `phalanx status`: what every replica reports on its admin port. */
import type { Command } from 'commander';
import type { ClusterConfig } from '../config/cluster-config.js';
import {
  fetchStatusReport,
  MAX_REPLICA_STATUS_BYTES,
  type ReplicaReport,
  type ReplicaStatus,
} from '../runtime/status.js';
import { configOrExit, DEFAULT_CONFIG } from './options.js';

export async function fetchReplicaReports(config: ClusterConfig, timeoutMs = 2000): Promise<ReplicaReport[]> {
  return Promise.all(
    config.replicas.map((replica) =>
      fetchStatusReport<ReplicaStatus>(
        replica.id,
        `http://${replica.adminHost}:${replica.adminPort}/status`,
        timeoutMs,
        MAX_REPLICA_STATUS_BYTES,
      ),
    ),
  );
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show each replica: role, view, executed and checkpointed sequence, throughput')
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .option('--json', 'print the raw reports as JSON')
    .action(async (options: { config: string; json?: boolean }) => {
      const config = await configOrExit(options.config);
      const reports = await fetchReplicaReports(config);
      if (options.json === true) {
        process.stdout.write(
          `${JSON.stringify({ n: config.n, f: config.f, k: config.k, replicas: reports })}\n`,
        );
        return;
      }
      process.stdout.write(`n = ${config.n}, f = ${config.f}, k = ${config.k}\n`);
      process.stdout.write('replica  role     view  executed  checkpoint  req/s    peers  state\n');
      for (const report of reports) {
        if (!report.up) {
          process.stdout.write(`${String(report.replica).padEnd(9)}DOWN     ${report.error}\n`);
          continue;
        }
        const state = report.stateTransferInProgress
          ? 'transferring state'
          : report.viewChangeInProgress
            ? 'view change'
            : 'ok';
        process.stdout.write(
          `${String(report.replica).padEnd(9)}${report.role.padEnd(9)}${String(report.view).padEnd(6)}` +
            `${String(report.lastExecuted).padEnd(10)}${String(report.stableCheckpoint).padEnd(12)}` +
            `${String(report.throughputPerSecond).padEnd(9)}${String(report.connectedPeers).padEnd(7)}${state}\n`,
        );
      }
      if (reports.some((report) => !report.up)) process.exitCode = 1;
    });
}
