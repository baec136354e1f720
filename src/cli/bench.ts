/**
 * `phalanx bench`: closed-loop clients in the manner of BFT-SMaRt's ThroughputLatencyClient.
 * Each client has one request outstanding; when its reply quorum arrives it sends the next. The
 * last line printed is one JSON object with throughput and latency percentiles.
 *
 * Ordered requests are KV puts whose value is --request-size bytes (the reply is a few bytes);
 * with --read-only the requests are fast-path gets of a value of --reply-size bytes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { KvClient } from '../apps/kv/client.js';
import { PhalanxClient } from '../client/client.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../config/keys.js';
import { clientId } from '../messages/ids.js';
import { cliEntryPoint, LocalCluster } from '../runtime/local-cluster.js';
import { runRecoveryBench } from './bench-recovery.js';
import { configOrExit, integerOption, loadCheckedClusterConfig, requireKvService } from './options.js';

export interface BenchOptions {
  readonly clients: number;
  readonly requests: number;
  readonly requestSize: number;
  readonly replySize: number;
  readonly readOnly: boolean;
  readonly warmupRequests: number;
  readonly progress: boolean;
}

export interface BenchResult {
  readonly n: number;
  readonly f: number;
  readonly clients: number;
  readonly requests: number;
  readonly request_size: number;
  readonly reply_size: number;
  readonly read_only: boolean;
  readonly storage: string;
  readonly errors: number;
  readonly duration_s: number;
  readonly throughput_ops_s: number;
  readonly latency_ms_p50: number;
  readonly latency_ms_p90: number;
  readonly latency_ms_p99: number;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.floor(fraction * sorted.length));
  return Math.round(sorted[index]! * 1000) / 1000;
}

/** Lowest port of the range chosen from. */
const FIRST_CLUSTER_PORT = 10_000;

/**
 * First port the kernel hands out for outgoing connections. A cluster's listening ports must lie
 * below it: a replica that is down for a rejuvenation would otherwise find its port taken by some
 * connection's local port when it comes back (seen: EADDRINUSE, and the replica kept exiting).
 */
function ephemeralPortStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isSafeInteger(low) && low > FIRST_CLUSTER_PORT) return low;
  } catch {
    // Not Linux: use Linux's default, which is also below most other systems' range (49152).
  }
  return 32_768;
}

/**
 * Finds `count` consecutive free loopback ports below the ephemeral range (best effort: a port
 * can still be taken right after, by a process that binds it explicitly).
 */
export async function freePortRange(count: number): Promise<number> {
  const span = ephemeralPortStart() - FIRST_CLUSTER_PORT - count;
  if (span <= 0) throw new Error(`no room for ${count} ports below the ephemeral port range`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = FIRST_CLUSTER_PORT + Math.floor(Math.random() * span);
    let free = true;
    for (let offset = 0; offset < count && free; offset++) {
      free = await new Promise<boolean>((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(base + offset, '127.0.0.1', () => server.close(() => resolve(true)));
      });
    }
    if (free) return base;
  }
  throw new Error('no free port range found on 127.0.0.1');
}

/** Closed-loop client bench-<index>: one request outstanding, patient with a busy cluster. */
export async function connectBenchClient(config: ClusterConfig, index: number): Promise<KvClient> {
  const keys = await loadClientKeyFile(clientKeyPath(config, clientId(`bench-${index}`)));
  const client = await PhalanxClient.connect({ config, client: keys, maxOutstanding: 1, timeoutMs: 60_000 });
  return new KvClient(client);
}

export async function runBench(config: ClusterConfig, options: BenchOptions): Promise<BenchResult> {
  const benchClients = config.clients.filter((client) => client.id.startsWith('bench-'));
  if (benchClients.length < options.clients) {
    throw new Error(
      `the configuration has ${benchClients.length} bench clients (bench-0...), ${options.clients} are needed: ` +
        `regenerate it with phalanx keygen --bench-clients ${options.clients}`,
    );
  }
  const stores: KvClient[] = [];
  for (let index = 0; index < options.clients; index++) stores.push(await connectBenchClient(config, index));
  const value = new Uint8Array(options.requestSize).fill(0x61);
  if (options.readOnly) await stores[0]!.put('bench/read', new Uint8Array(options.replySize).fill(0x62));
  const total = options.requests + options.warmupRequests;
  const latencies = new Float64Array(options.requests);
  let issued = 0;
  let measured = 0;
  let errors = 0;
  let measureStart = 0;
  const bar = options.progress
    ? new SingleBar({
        format: 'bench [{bar}] {percentage}% | {value}/{total} requests | {rate} req/s',
        stream: process.stderr,
      })
    : null;
  bar?.start(total, 0, { rate: 0 });
  const started = performance.now();
  const loop = async (store: KvClient, index: number): Promise<void> => {
    const key = `bench/${index}`;
    while (issued < total) {
      const number = issued++;
      if (number === options.warmupRequests) measureStart = performance.now();
      const sent = performance.now();
      try {
        if (options.readOnly) await store.get('bench/read');
        else await store.put(key, value);
      } catch {
        errors++;
        continue;
      }
      if (number >= options.warmupRequests && measured < latencies.length)
        latencies[measured++] = performance.now() - sent;
      if (bar !== null && number % 100 === 0) {
        bar.update(number, { rate: Math.round(number / ((performance.now() - started) / 1000)) });
      }
    }
  };
  await Promise.all(stores.map((store, index) => loop(store, index)));
  const finished = performance.now();
  bar?.update(total);
  bar?.stop();
  for (const store of stores) await store.client.close();
  const sorted = latencies.subarray(0, measured).sort();
  const seconds = (finished - (measureStart || started)) / 1000;
  return {
    n: config.n,
    f: config.f,
    clients: options.clients,
    requests: measured,
    request_size: options.requestSize,
    reply_size: options.replySize,
    read_only: options.readOnly,
    storage: config.storage.engine,
    errors,
    duration_s: Math.round(seconds * 100) / 100,
    throughput_ops_s: Math.round(measured / seconds),
    latency_ms_p50: percentile(sorted, 0.5),
    latency_ms_p90: percentile(sorted, 0.9),
    latency_ms_p99: percentile(sorted, 0.99),
  };
}

/** A throwaway local cluster in a temporary folder, for a benchmark run. */
export async function withTemporaryCluster<Result>(
  options: {
    readonly f: number;
    readonly k: number;
    readonly clients: number;
    readonly storage: 'file' | 'leveldb';
    readonly protocol?: Record<string, unknown>;
  },
  use: (config: ClusterConfig, cluster: LocalCluster) => Promise<Result>,
): Promise<Result> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-bench-'));
  const n = 3 * options.f + 2 * options.k + 1;
  const basePort = await freePortRange(2 * n + 101);
  const { configPath } = await generateCluster({
    directory,
    f: options.f,
    k: options.k,
    basePort,
    clients: ['admin'],
    benchClients: options.clients,
    storageEngine: options.storage,
    dashboardPort: 0,
    ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
  });
  const config = await loadCheckedClusterConfig(configPath);
  const cluster = new LocalCluster({ config, entryPoint: cliEntryPoint(), logLevel: 'warn' });
  try {
    await cluster.startAll();
    await cluster.waitUntilReady();
    return await use(config, cluster);
  } finally {
    await cluster.stopAll();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** A running cluster's configuration for the bench, whose clients speak the key-value store. */
async function kvConfigOrExit(path: string): Promise<ClusterConfig> {
  const config = await configOrExit(path);
  requireKvService(config, 'phalanx bench');
  return config;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench');
  bench
    .command('recovery')
    .description('measure one rejuvenation, step by step, of a replica holding --state-mb MB of state')
    .option(
      '--state-mb <mb>',
      'service state to load before the rejuvenation',
      integerOption('--state-mb', 1, 4096),
      10,
    )
    .option(
      '--recovery-bound <ms>',
      'T_D of the temporary cluster (generous, so the real duration shows)',
      integerOption('--recovery-bound', 1000, 600_000),
      30_000,
    )
    .option(
      '--clients <count>',
      'closed-loop clients of small writes during the run',
      integerOption('--clients', 1, 64),
      4,
    )
    .option(
      '--baseline <ms>',
      'throughput window before the rejuvenation',
      integerOption('--baseline', 1000, 600_000),
      15_000,
    )
    .option(
      '--slots <count>',
      'consecutive proactive slots to measure (the first rejuvenates the initial leader); the figures are the worst',
      integerOption('--slots', 1, 6),
      2,
    )
    .option('--target <seconds>', 'the recovery time to beat', integerOption('--target', 1, 3600), 10)
    .action(
      async (options: {
        stateMb: number;
        recoveryBound: number;
        clients: number;
        baseline: number;
        slots: number;
        target: number;
      }) => {
        const result = await runRecoveryBench({
          stateMb: options.stateMb,
          recoveryBoundMs: options.recoveryBound,
          workloadClients: options.clients,
          baselineMs: options.baseline,
          slots: options.slots,
          targetS: options.target,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exit(0);
      },
    );
  bench
    .description(
      'measure throughput and latency with closed-loop clients (starts a local cluster unless --connect)',
    )
    .option(
      '--clients <count>',
      'concurrent clients, one request outstanding each',
      integerOption('--clients', 1, 1000),
      10,
    )
    .option(
      '--requests <count>',
      'measured requests in total',
      integerOption('--requests', 1, 100_000_000),
      10_000,
    )
    .option('--request-size <bytes>', 'value bytes per put', integerOption('--request-size', 0, 1_000_000), 0)
    .option(
      '--reply-size <bytes>',
      'value bytes per read (with --read-only)',
      integerOption('--reply-size', 0, 1_000_000),
      0,
    )
    .option('--read-only', 'read-only requests (fast path) instead of ordered writes')
    .option('--warmup <count>', 'requests before measuring starts', integerOption('--warmup', 0, 10_000_000))
    .option('--connect <config>', 'use the running cluster of this configuration instead of starting one')
    .option('--f <f>', 'Byzantine replicas tolerated by the cluster started', integerOption('--f', 0, 5), 1)
    .option('--storage <engine>', 'storage engine of the cluster started: file or leveldb', 'file')
    .action(
      async (options: {
        clients: number;
        requests: number;
        requestSize: number;
        replySize: number;
        readOnly?: boolean;
        warmup?: number;
        connect?: string;
        f: number;
        storage: string;
      }) => {
        if (options.storage !== 'file' && options.storage !== 'leveldb')
          throw new Error('--storage must be file or leveldb');
        const benchOptions: BenchOptions = {
          clients: options.clients,
          requests: options.requests,
          requestSize: options.requestSize,
          replySize: options.replySize,
          readOnly: options.readOnly === true,
          warmupRequests: options.warmup ?? Math.min(2000, Math.ceil(options.requests / 10)),
          progress: process.stderr.isTTY === true,
        };
        const result =
          options.connect !== undefined
            ? await runBench(await kvConfigOrExit(options.connect), benchOptions)
            : await withTemporaryCluster(
                { f: options.f, k: 0, clients: options.clients, storage: options.storage },
                (config) => runBench(config, benchOptions),
              );
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exit(result.errors > 0 ? 1 : 0);
      },
    );
}
