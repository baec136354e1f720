/**
 * `phalanx bench`: closed-loop clients in the manner of BFT-SMaRt's ThroughputLatencyClient.
 * Each client has one request outstanding; when its reply quorum arrives it sends the next. The
 * last line printed is one JSON object with throughput and latency percentiles.
 *
 * Ordered requests are KV puts whose value is --request-size bytes (the reply is a few bytes);
 * with --read-only the requests are fast-path gets of a value of --reply-size bytes.
 *
 * Figures that survive a noisy machine come from the same run: CPU time per operation over every
 * process of the run (the bench process, whose clients run in it, and every process below it:
 * replicas, guardians), from /proc; and with --unreplicated or --sweep the unreplicated server
 * (src/runtime/unreplicated-server.ts), the same client library, transport, service and storage
 * without ordering, whose throughput is the ceiling the replicated figure is a fraction of.
 * --n, --k and --guardians choose the shape of the cluster started. docs/performance.md reports
 * the figures. --metrics-port serves the clients' Prometheus metrics (docs/metrics.md) on
 * loopback while the bench runs, and --metrics-linger keeps them up after it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { KvClient } from '../apps/kv/client.js';
import { Registry } from 'prom-client';
import { type ClientMetricsSink, PhalanxClient } from '../client/client.js';
import { prometheusClientMetrics } from '../client/prometheus-metrics.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../config/keys.js';
import { clientId } from '../messages/ids.js';
import { signCodeManifestFor } from '../recovery/code-manifest.js';
import { cliEntryPoint, LocalCluster } from '../runtime/local-cluster.js';
import { fetchStatusReport, MAX_REPLICA_STATUS_BYTES, type ReplicaStatus } from '../runtime/status.js';
import { registerAttackBench } from './bench-attack.js';
import { runRecoveryBench } from './bench-recovery.js';
import { type CpuSample, sampleProcessTreeCpu } from './process-cpu.js';
import { serveMetrics } from './metrics-endpoint.js';
import {
  configOrExit,
  loadCheckedClusterConfig,
  OPTION_RANGES,
  rangedOption,
  rangeProblem,
  requireKvService,
} from './options.js';

export interface BenchOptions {
  readonly clients: number;
  readonly requests: number;
  readonly requestSize: number;
  readonly replySize: number;
  readonly readOnly: boolean;
  readonly warmupRequests: number;
  /** The warm-up also lasts at least this long (default 0): the replicas' code gets optimized. */
  readonly warmupMs?: number;
  readonly progress: boolean;
  /** Reported in the result: the server is the unreplicated one. */
  readonly unreplicated?: boolean;
  /** Where the clients report latency, retransmissions and errors (--metrics-port). */
  readonly metrics?: ClientMetricsSink;
}

export interface BenchResult {
  readonly n: number;
  readonly f: number;
  /** The unreplicated server (--unreplicated): one process, no ordering. */
  readonly unreplicated: boolean;
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
  /**
   * CPU time per measured operation of every process of the run (the bench process with its
   * clients, the replicas, guardians and their children), from /proc; null where /proc is missing.
   */
  readonly cpu_us_per_op: number | null;
  /** The clients' share: the bench process alone. */
  readonly cpu_us_per_op_clients: number | null;
  /**
   * Requests per ordered batch over the measured window (requests measured over the sequence
   * numbers the most advanced replica executed meanwhile, from the replicas' status reports); null
   * for the unreplicated server, read-only requests or when no status answered. Per-batch costs
   * (the protocol's phases, signatures, a group commit) are paid once per this many operations.
   */
  readonly requests_per_batch: number | null;
  /**
   * Whether the cluster required client signatures (`protocol.requireClientSignatures`, Aardvark's
   * signed requests: every client signs every request, the leader verifies before proposing).
   */
  readonly client_signatures: boolean;
}

/** Highest sequence number any replica reports executed, or null when none answered. */
async function highestExecutedSequence(config: ClusterConfig): Promise<number | null> {
  const reports = await Promise.all(
    config.replicas.map((replica) =>
      fetchStatusReport<ReplicaStatus>(
        replica.id,
        `http://${replica.adminHost}:${replica.adminPort}/status`,
        1000,
        MAX_REPLICA_STATUS_BYTES,
      ),
    ),
  );
  let highest: number | null = null;
  for (const report of reports) if (report.up) highest = Math.max(highest ?? 0, report.lastExecuted);
  return highest;
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
export async function connectBenchClient(
  config: ClusterConfig,
  index: number,
  metrics?: ClientMetricsSink,
): Promise<KvClient> {
  const keys = await loadClientKeyFile(clientKeyPath(config, clientId(`bench-${index}`)));
  const client = await PhalanxClient.connect({
    config,
    client: keys,
    maxOutstanding: 1,
    timeoutMs: 60_000,
    ...(metrics === undefined ? {} : { metrics }),
  });
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
  for (let index = 0; index < options.clients; index++)
    stores.push(await connectBenchClient(config, index, options.metrics));
  const value = new Uint8Array(options.requestSize).fill(0x61);
  if (options.readOnly) await stores[0]!.put('bench/read', new Uint8Array(options.replySize).fill(0x62));
  const latencies = new Float64Array(options.requests);
  let measured = 0;
  let errors = 0;
  const warmupMs = options.warmupMs ?? 0;
  const bar = options.progress
    ? new SingleBar({
        format: 'bench [{bar}] {percentage}% | {value}/{total} requests | {rate} req/s',
        stream: process.stderr,
      })
    : null;
  bar?.start(options.requests, 0, { rate: 0 });
  const ordered = options.unreplicated !== true && !options.readOnly;
  const operation = (store: KvClient, key: string): Promise<unknown> =>
    options.readOnly ? store.get('bench/read') : store.put(key, value);
  // Warm-up: until both the requests and the time are done. A replica's first seconds run its
  // code unoptimized (V8 compiles hot functions as it goes): measured from a cold start, CPU per
  // operation came out about a fifth higher than after 30,000 requests.
  const warmupStarted = performance.now();
  let warmupIssued = 0;
  const warmingUp = (): boolean =>
    warmupIssued < options.warmupRequests || performance.now() - warmupStarted < warmupMs;
  await Promise.all(
    stores.map(async (store, index) => {
      const key = `bench/${index}`;
      while (warmingUp()) {
        warmupIssued++;
        await operation(store, key).catch(() => undefined);
      }
    }),
  );
  const cpuAtStart = sampleProcessTreeCpu();
  const sequenceAtStart = ordered ? highestExecutedSequence(config) : Promise.resolve(null);
  const started = performance.now();
  let issued = 0;
  const loop = async (store: KvClient, index: number): Promise<void> => {
    const key = `bench/${index}`;
    while (issued < options.requests) {
      const number = issued++;
      const sent = performance.now();
      try {
        await operation(store, key);
      } catch {
        errors++;
        continue;
      }
      latencies[measured++] = performance.now() - sent;
      if (bar !== null && number % 100 === 0) {
        bar.update(number, { rate: Math.round(number / ((performance.now() - started) / 1000)) });
      }
    }
  };
  await Promise.all(stores.map((store, index) => loop(store, index)));
  const finished = performance.now();
  const cpuAtEnd = sampleProcessTreeCpu();
  const sequences = ordered
    ? await Promise.all([sequenceAtStart, highestExecutedSequence(config)])
    : [null, null];
  const batches = sequences[0] === null || sequences[1] === null ? 0 : sequences[1] - sequences[0];
  const perOperation = (micros: (sample: CpuSample) => number): number | null =>
    cpuAtStart === null || cpuAtEnd === null || measured === 0
      ? null
      : Math.round((micros(cpuAtEnd) - micros(cpuAtStart)) / measured);
  bar?.update(options.requests);
  bar?.stop();
  for (const store of stores) await store.client.close();
  const sorted = latencies.subarray(0, measured).sort();
  const seconds = (finished - started) / 1000;
  return {
    n: config.n,
    f: config.f,
    unreplicated: options.unreplicated ?? false,
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
    cpu_us_per_op: perOperation((sample) => sample.treeMicros),
    cpu_us_per_op_clients: perOperation((sample) => sample.rootMicros),
    requests_per_batch: batches > 0 ? Math.round((measured / batches) * 10) / 10 : null,
    client_signatures: config.protocol.requireClientSignatures,
  };
}

/**
 * Default warm-up time of each measured point. Node compiles a function with its optimizing
 * compiler only once it has run hot for a while; the first seconds of a replica spend a tenth of
 * their CPU in the compiler (perf, 2026-12-01) and CPU per operation measured then was a fifth
 * higher than after 30,000 requests.
 */
export const BENCH_DEFAULT_WARMUP_SECONDS = 5;

/** T_D of a bench cluster with guardians: rejuvenations run during the measurement, as deployed. */
export const BENCH_GUARDIAN_RECOVERY_BOUND_MS = 10_000;

/** The shape of a throwaway bench cluster. */
export interface BenchClusterShape {
  readonly f: number;
  readonly k: number;
  /** Defaults to 3f + 2k + 1. */
  readonly n?: number;
  /** One guardian per replica, with proactive recovery (needs k ≥ 1). */
  readonly guardians?: boolean;
  readonly clients: number;
  readonly storage: 'file' | 'leveldb';
  readonly protocol?: Record<string, unknown>;
}

/** A throwaway local cluster in a temporary folder, for a benchmark run. */
export async function withTemporaryCluster<Result>(
  options: BenchClusterShape,
  use: (config: ClusterConfig, cluster: LocalCluster) => Promise<Result>,
): Promise<Result> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-bench-'));
  const n = options.n ?? 3 * options.f + 2 * options.k + 1;
  const basePort = await freePortRange(2 * n + 101);
  const { configPath } = await generateCluster({
    directory,
    f: options.f,
    k: options.k,
    n,
    basePort,
    clients: ['admin'],
    benchClients: options.clients,
    storageEngine: options.storage,
    dashboardPort: 0,
    ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
    ...(options.guardians === true
      ? { recovery: { recoveryBoundMs: BENCH_GUARDIAN_RECOVERY_BOUND_MS } }
      : {}),
  });
  const config = await loadCheckedClusterConfig(configPath);
  if (options.guardians === true) await signCodeManifestFor(config);
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

/** Longest the unreplicated server may take to stop after SIGTERM before it is killed. */
const UNREPLICATED_STOP_TIMEOUT_MS = 10_000;
/** Bytes of the unreplicated server's stderr kept for an error message. */
const UNREPLICATED_STDERR_BYTES = 16 * 1024;

/**
 * The unreplicated server (`phalanx replica --unreplicated`, src/runtime/unreplicated-server.ts)
 * in a process of its own, serving a one-replica configuration with the same clients, storage
 * engine and service: the ceiling of this stack on this machine.
 */
export async function withUnreplicatedServer<Result>(
  options: { readonly clients: number; readonly storage: 'file' | 'leveldb' },
  use: (config: ClusterConfig) => Promise<Result>,
): Promise<Result> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-bench-unreplicated-'));
  const basePort = await freePortRange(2 + 101);
  const { configPath } = await generateCluster({
    directory,
    f: 0,
    k: 0,
    basePort,
    clients: ['admin'],
    benchClients: options.clients,
    storageEngine: options.storage,
    dashboardPort: 0,
  });
  const config = await loadCheckedClusterConfig(configPath);
  const [executable, ...prefix] = cliEntryPoint();
  const server = spawn(
    executable!,
    [...prefix, 'replica', '--config', configPath, '--id', '0', '--unreplicated', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-UNREPLICATED_STDERR_BYTES);
  });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));
  try {
    return await use(config);
  } catch (error) {
    if (!running) throw new Error(`the unreplicated server exited: ${stderr.trim()}`, { cause: error });
    throw error;
  } finally {
    if (running) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), UNREPLICATED_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
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
      rangedOption('--state-mb', OPTION_RANGES.benchStateMb),
      10,
    )
    .option(
      '--recovery-bound <ms>',
      'T_D of the temporary cluster (generous, so the real duration shows)',
      rangedOption('--recovery-bound', OPTION_RANGES.benchRecoveryBoundMs),
      30_000,
    )
    .option(
      '--clients <count>',
      'closed-loop clients of small writes during the run',
      rangedOption('--clients', OPTION_RANGES.benchRecoveryClients),
      4,
    )
    .option(
      '--baseline <ms>',
      'throughput window before the rejuvenation',
      rangedOption('--baseline', OPTION_RANGES.benchBaselineMs),
      15_000,
    )
    .option(
      '--slots <count>',
      'consecutive proactive slots to measure (the first rejuvenates the initial leader); the figures are the worst',
      rangedOption('--slots', OPTION_RANGES.benchRecoverySlots),
      2,
    )
    .option(
      '--target <seconds>',
      'the recovery time to beat',
      rangedOption('--target', OPTION_RANGES.benchTargetSeconds),
      10,
    )
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
  registerAttackBench(bench);
  bench
    .description(
      'measure throughput, latency and CPU per operation with closed-loop clients (starts a local cluster unless --connect)',
    )
    .option(
      '--clients <count>',
      'concurrent clients, one request outstanding each',
      rangedOption('--clients', OPTION_RANGES.benchClients),
      10,
    )
    .option(
      '--requests <count>',
      'measured requests in total (per point with --sweep)',
      rangedOption('--requests', OPTION_RANGES.benchRequests),
      10_000,
    )
    .option(
      '--request-size <bytes>',
      'value bytes per put',
      rangedOption('--request-size', OPTION_RANGES.benchValueBytes),
      0,
    )
    .option(
      '--reply-size <bytes>',
      'value bytes per read (with --read-only)',
      rangedOption('--reply-size', OPTION_RANGES.benchValueBytes),
      0,
    )
    .option('--read-only', 'read-only requests (fast path) instead of ordered writes')
    .option(
      '--warmup <count>',
      'requests before measuring starts',
      rangedOption('--warmup', OPTION_RANGES.benchWarmupRequests),
    )
    .option(
      '--warmup-seconds <seconds>',
      'the warm-up also lasts at least this long, so the replicas run optimized code when measuring',
      rangedOption('--warmup-seconds', OPTION_RANGES.benchWarmupSeconds),
      BENCH_DEFAULT_WARMUP_SECONDS,
    )
    .option('--connect <config>', 'use the running cluster of this configuration instead of starting one')
    .option(
      '--f <f>',
      'Byzantine replicas tolerated by the cluster started',
      rangedOption('--f', OPTION_RANGES.benchFaultsTolerated),
      1,
    )
    .option(
      '--k <k>',
      'replicas rejuvenated at once (default 1 with --guardians, else 0)',
      rangedOption('--k', OPTION_RANGES.benchRecoveringAtOnce),
    )
    .option(
      '--n <n>',
      'replicas of the cluster started (default 3f + 2k + 1)',
      rangedOption('--n', OPTION_RANGES.replicaCount),
    )
    .option(
      '--guardians',
      'run the cluster started under guardians, with proactive recovery (the deployed shape)',
    )
    .option(
      '--unreplicated',
      'measure the unreplicated server instead (one process, no ordering: the ceiling)',
    )
    .option(
      '--sweep <clients>',
      'comma-separated client counts: a table and one JSON line per point, each with the unreplicated figure',
      parseSweep,
    )
    .option(
      '--client-signatures',
      'the cluster started requires client signatures (protocol.requireClientSignatures): what signed requests cost',
    )
    .option('--storage <engine>', 'storage engine of the cluster started: file or leveldb', 'file')
    .option(
      '--metrics-port <port>',
      "serve the clients' Prometheus metrics at http://127.0.0.1:<port>/metrics during the run (0: any free port, printed on stderr)",
      rangedOption('--metrics-port', OPTION_RANGES.listenPort),
    )
    .option(
      '--metrics-linger <ms>',
      'with --metrics-port: keep serving the metrics this long after the result is printed, for a last scrape',
      rangedOption('--metrics-linger', OPTION_RANGES.metricsLingerMs),
      0,
    )
    .action(
      async (options: {
        clients: number;
        requests: number;
        requestSize: number;
        replySize: number;
        readOnly?: boolean;
        warmup?: number;
        warmupSeconds: number;
        connect?: string;
        f: number;
        k?: number;
        n?: number;
        guardians?: boolean;
        unreplicated?: boolean;
        sweep?: number[];
        clientSignatures?: boolean;
        storage: string;
        metricsPort?: number;
        metricsLinger: number;
      }) => {
        if (options.storage !== 'file' && options.storage !== 'leveldb')
          throw new Error('--storage must be file or leveldb');
        const storage = options.storage;
        const k = options.k ?? (options.guardians === true ? 1 : 0);
        if (options.guardians === true && k < 1) throw new Error('--guardians needs --k of at least 1');
        const shapeGiven =
          options.k !== undefined ||
          options.n !== undefined ||
          options.guardians === true ||
          options.f !== 1 ||
          options.clientSignatures === true;
        if (
          options.connect !== undefined &&
          (shapeGiven || options.unreplicated === true || options.sweep !== undefined)
        )
          throw new Error(
            '--connect measures a running cluster: no --f, --k, --n, --guardians, --client-signatures, --unreplicated or --sweep',
          );
        const registry = options.metricsPort === undefined ? null : new Registry();
        const metrics = registry === null ? undefined : prometheusClientMetrics(registry);
        const endpoint =
          registry === null || options.metricsPort === undefined
            ? null
            : await serveMetrics(registry, options.metricsPort);
        if (endpoint !== null) process.stderr.write(`client metrics: ${endpoint.url}\n`);
        /** Exits once the metrics had their --metrics-linger after the result was printed. */
        const exit = async (code: number): Promise<never> => {
          if (endpoint !== null && options.metricsLinger > 0)
            await new Promise((resolve) => setTimeout(resolve, options.metricsLinger));
          await endpoint?.close();
          process.exit(code);
        };
        const benchOptions = (clients: number): BenchOptions => ({
          clients,
          ...(metrics === undefined ? {} : { metrics }),
          requests: options.requests,
          requestSize: options.requestSize,
          replySize: options.replySize,
          readOnly: options.readOnly === true,
          warmupRequests: options.warmup ?? Math.min(2000, Math.ceil(options.requests / 10)),
          warmupMs: options.warmupSeconds * 1000,
          progress: process.stderr.isTTY === true,
        });
        const shape = (clients: number): BenchClusterShape => ({
          f: options.f,
          k,
          ...(options.n === undefined ? {} : { n: options.n }),
          guardians: options.guardians === true,
          clients,
          storage,
          ...(options.clientSignatures === true ? { protocol: { requireClientSignatures: true } } : {}),
        });
        if (options.sweep !== undefined) {
          const points = options.sweep;
          const most = Math.max(...points);
          // One cluster for every point, then one unreplicated server: never both at once.
          const replicated = await withTemporaryCluster(shape(most), async (config) => {
            const results: BenchResult[] = [];
            for (const clients of points) results.push(await runBench(config, benchOptions(clients)));
            return results;
          });
          const unreplicated = await withUnreplicatedServer({ clients: most, storage }, async (config) => {
            const results: BenchResult[] = [];
            for (const clients of points)
              results.push(await runBench(config, { ...benchOptions(clients), unreplicated: true }));
            return results;
          });
          const rows = replicated.map((result, index) => sweepPoint(result, unreplicated[index]!));
          for (const line of sweepTable(rows)) process.stdout.write(`${line}\n`);
          for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
          await exit(rows.some((row) => row.errors > 0) ? 1 : 0);
        }
        const result =
          options.connect !== undefined
            ? await runBench(await kvConfigOrExit(options.connect), benchOptions(options.clients))
            : options.unreplicated === true
              ? await withUnreplicatedServer({ clients: options.clients, storage }, (config) =>
                  runBench(config, { ...benchOptions(options.clients), unreplicated: true }),
                )
              : await withTemporaryCluster(shape(options.clients), (config) =>
                  runBench(config, benchOptions(options.clients)),
                );
        process.stdout.write(`${JSON.stringify(result)}\n`);
        await exit(result.errors > 0 ? 1 : 0);
      },
    );
}

function parseSweep(text: string): number[] {
  const parts = text.split(',');
  const problems = parts.flatMap((part) => {
    const problem = rangeProblem('--sweep', OPTION_RANGES.benchClients, part);
    return problem === null ? [] : [problem];
  });
  if (problems.length > 0)
    throw new InvalidArgumentError(`${problems[0]} (client counts separated by commas)`);
  return parts.map((part) => Number(part.trim()));
}

/** One point of a sweep: the replicated figures with the unreplicated ceiling of the same run. */
export interface SweepPoint extends BenchResult {
  readonly unreplicated_throughput_ops_s: number;
  readonly unreplicated_latency_ms_p50: number;
  readonly unreplicated_cpu_us_per_op: number | null;
  /** Replicated over unreplicated throughput. */
  readonly replicated_ratio: number;
}

function sweepPoint(replicated: BenchResult, unreplicated: BenchResult): SweepPoint {
  return {
    ...replicated,
    unreplicated_throughput_ops_s: unreplicated.throughput_ops_s,
    unreplicated_latency_ms_p50: unreplicated.latency_ms_p50,
    unreplicated_cpu_us_per_op: unreplicated.cpu_us_per_op,
    replicated_ratio:
      unreplicated.throughput_ops_s === 0
        ? 0
        : Math.round((replicated.throughput_ops_s / unreplicated.throughput_ops_s) * 100) / 100,
    errors: replicated.errors + unreplicated.errors,
  };
}

function sweepTable(rows: readonly SweepPoint[]): string[] {
  const header = [
    'clients',
    'ops/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'CPU µs/op',
    'req/batch',
    'unreplicated ops/s',
    'unrepl. CPU µs/op',
    'ratio',
  ];
  const cells = rows.map((row) => [
    String(row.clients),
    String(row.throughput_ops_s),
    row.latency_ms_p50.toFixed(1),
    row.latency_ms_p90.toFixed(1),
    row.latency_ms_p99.toFixed(1),
    row.cpu_us_per_op === null ? '-' : String(row.cpu_us_per_op),
    row.requests_per_batch === null ? '-' : row.requests_per_batch.toFixed(1),
    String(row.unreplicated_throughput_ops_s),
    row.unreplicated_cpu_us_per_op === null ? '-' : String(row.unreplicated_cpu_us_per_op),
    row.replicated_ratio.toFixed(2),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => row[column]!.length)),
  );
  const line = (values: readonly string[]): string =>
    `| ${values.map((value, column) => value.padStart(widths[column]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)];
}
