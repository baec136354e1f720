/**
 * Real clusters for integration tests: replica processes on loopback (each its own OS process,
 * data folder and log), real TCP, real disks, real keys.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient } from '../../src/apps/kv/client.js';
import { PhalanxClient } from '../../src/client/client.js';
import { freePortRange } from '../../src/cli/bench.js';
import { type ClusterConfig, loadClusterConfig } from '../../src/config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../../src/config/keys.js';
import { type ReplicaId, clientId } from '../../src/messages/ids.js';
import { signCodeManifestFor } from '../../src/recovery/code-manifest.js';
import type { FaultMode } from '../../src/runtime/ipc.js';
import type { GuardianReport } from '../../src/runtime/guardian-report.js';
import { LocalCluster } from '../../src/runtime/local-cluster.js';
import type { ReplicaReport } from '../../src/runtime/status.js';
import { BUILT_CODE_DIRECTORY, builtEntryPoint } from './built-code.js';

/** Small checkpoints and short timeouts, so that a test exercises them in seconds. */
export const FAST_PROTOCOL = {
  checkpointInterval: 16,
  logWindow: 64,
  requestTimeoutMs: 1500,
  viewChangeTimeoutMs: 1500,
  retransmitIntervalMs: 100,
  statusIntervalMs: 200,
  catchUpTimeoutMs: 500,
};

export interface TestCluster {
  readonly directory: string;
  readonly config: ClusterConfig;
  readonly cluster: LocalCluster;
  /** A key-value client as `name` (default admin); an earlier one of that name is closed. */
  kv(name?: string): Promise<KvClient>;
  status(): Promise<ReplicaReport[]>;
  /** Guardian clusters: what every guardian reports. */
  guardians(): Promise<GuardianReport[]>;
  /** The log of the process the cluster runs for `id` (the guardian's in guardian clusters). */
  log(id: ReplicaId): string;
  /** The replica's own log (under a guardian: every incarnation appends to it). */
  replicaLog(id: ReplicaId): string;
  stop(): Promise<void>;
}

export async function startTestCluster(
  options: {
    readonly f?: number;
    readonly k?: number;
    readonly clients?: readonly string[];
    readonly storage?: 'file' | 'leveldb';
    readonly protocol?: Record<string, unknown>;
    readonly allowFaultInjection?: boolean;
    /** Narrower keyspaces for some clients (default: every client may access every key). */
    readonly keyspaces?: Readonly<Record<string, readonly string[]>>;
    readonly start?: boolean;
    /** Run guardians with proactive recovery (needs k ≥ 1): T_D, and T_P (default its minimum). */
    readonly recovery?: {
      readonly recoveryBoundMs: number;
      readonly periodMs?: number;
      /** Sets the schedule's phase: where period 0 starts. */
      readonly scheduleOriginMs?: number;
    };
    /** Guardian clusters: the first incarnation of these replicas runs in a fault mode. */
    readonly faultModes?: Readonly<Record<number, FaultMode>>;
  } = {},
): Promise<TestCluster> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-it-'));
  const f = options.f ?? 1;
  const k = options.k ?? 0;
  const n = 3 * f + 2 * k + 1;
  // Replica i: port base+i, admin base+100+i, guardian control base+200+i, guardian admin base+300+i.
  const basePort = await freePortRange(options.recovery === undefined ? 2 * n + 101 : 301 + n);
  const { configPath } = await generateCluster({
    directory,
    f,
    k,
    basePort,
    clients: [...(options.clients ?? ['admin'])],
    benchClients: 0,
    storageEngine: options.storage ?? 'file',
    dashboardPort: 0,
    allowFaultInjection: options.allowFaultInjection ?? false,
    protocol: { ...FAST_PROTOCOL, ...options.protocol },
    ...(options.recovery === undefined ? {} : { recovery: options.recovery }),
  });
  if (options.keyspaces !== undefined) {
    const document = JSON.parse(readFileSync(configPath, 'utf8')) as {
      clients: Record<string, { keyspaces: string[] }>;
    };
    for (const [name, keyspaces] of Object.entries(options.keyspaces))
      document.clients[name]!.keyspaces = [...keyspaces];
    writeFileSync(configPath, JSON.stringify(document, null, 2));
  }
  const config = await loadClusterConfig(configPath);
  if (config.recovery !== null) {
    // What `phalanx manifest` does at install time: sign the code the guardians will check.
    await signCodeManifestFor(config, BUILT_CODE_DIRECTORY);
  }
  const faultModes = options.faultModes ?? {};
  const cluster = new LocalCluster({
    config,
    entryPoint: builtEntryPoint(),
    logLevel: process.env.PHALANX_TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info',
    extraArguments: (id) => (faultModes[id] === undefined ? [] : ['--fault-mode', faultModes[id]]),
  });
  const clients = new Map<string, PhalanxClient>();
  if (options.start !== false) {
    try {
      await cluster.startAll();
      await cluster.waitUntilReady();
    } catch (error) {
      // The caller gets no handle to stop it with: a cluster left running would keep the test
      // file from exiting and load every test after it.
      await cluster.stopAll();
      killProcessesMentioning(directory);
      if (process.env.PHALANX_KEEP_TEST_DIRS === '1') process.stdout.write(`# kept ${directory}\n`);
      throw error;
    }
  }
  return {
    directory,
    config,
    cluster,
    async kv(name = 'admin') {
      // One identity is one client at a time: a replica keeps the newest connection of an
      // identity, so two open clients of one name take each other's connections (a suite run
      // saw the idle one of an earlier test starve the next). The earlier one is closed first.
      const earlier = clients.get(name);
      if (earlier !== undefined) await earlier.close();
      const keys = await loadClientKeyFile(clientKeyPath(config, clientId(name)));
      const client = await PhalanxClient.connect({ config, client: keys, timeoutMs: 20_000 });
      clients.set(name, client);
      return new KvClient(client);
    },
    status: () => cluster.reports(),
    guardians: () => cluster.guardianReports(),
    log: (id) => readOrEmpty(cluster.logFile(id)),
    replicaLog: (id) => readOrEmpty(cluster.replicaLogFile(id)),
    async stop() {
      for (const client of clients.values()) await client.close();
      await cluster.stopAll();
      // Whatever this cluster started and outlived its parent (a replica whose guardian was
      // killed, a guardian a test restarted by hand) must not load the tests that come after.
      killProcessesMentioning(directory);
      // PHALANX_KEEP_TEST_DIRS=1 keeps logs and data for a post-mortem.
      if (process.env.PHALANX_KEEP_TEST_DIRS === '1') process.stdout.write(`# kept ${directory}\n`);
      else rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Steps 3-5 of leaving safe mode (docs/intrusion-tolerance.md), for a test cluster the caller has
 * stopped: a new configuration in the same directory (new keys for every replica and client, same
 * shape, ports, settings and data), the code signed again when guardians run, and started.
 * Resolves once every replica is up and out of safe mode; the caller checks what its case adds,
 * then serves through `kv` (`servesAfterLeavingSafeMode`) and calls `stop`.
 */
export async function startUnderNewConfiguration(previous: TestCluster): Promise<{
  readonly config: ClusterConfig;
  readonly cluster: LocalCluster;
  kv(): Promise<KvClient>;
  stop(): Promise<void>;
}> {
  const old = previous.config;
  const { configPath } = await generateCluster({
    directory: previous.directory,
    f: old.f,
    k: old.k,
    basePort: old.replicas[0]!.port,
    clients: ['admin'],
    benchClients: 0,
    storageEngine: 'file',
    dashboardPort: 0,
    allowFaultInjection: old.allowFaultInjection,
    protocol: { ...FAST_PROTOCOL },
    ...(old.recovery === null ? {} : { recovery: { recoveryBoundMs: old.recovery.recoveryBoundMs } }),
  });
  const config = await loadClusterConfig(configPath);
  assert.notDeepEqual(config.replicas[0]!.signingKey, old.replicas[0]!.signingKey, 'new keys');
  if (config.recovery !== null) await signCodeManifestFor(config, BUILT_CODE_DIRECTORY);
  const cluster = new LocalCluster({ config, entryPoint: builtEntryPoint(), logLevel: 'info' });
  let client: PhalanxClient | null = null;
  const stop = async (): Promise<void> => {
    await client?.close();
    await cluster.stopAll();
  };
  try {
    await cluster.startAll();
    await cluster.waitUntilReady(60_000);
    await waitFor(
      'every replica up and out of safe mode',
      async () => (await cluster.reports()).every((report) => report.up && report.safeMode !== true),
      60_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    config,
    cluster,
    async kv() {
      await client?.close();
      const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
      client = await PhalanxClient.connect({ config, client: keys, timeoutMs: 30_000 });
      return new KvClient(client);
    },
    stop,
  };
}

/**
 * Out of safe mode: the certified state from before the fork is kept (re-signed under the new
 * keys; the tests write `before-<i>` = `value <i>` first), and writes are taken again.
 */
export async function servesAfterLeavingSafeMode(kv: KvClient): Promise<void> {
  assert.equal(decode(await kv.get('before-2', { ordered: true })), 'value 2');
  await kv.put('after-leaving', encode('accepted'));
  assert.equal(decode(await kv.get('after-leaving', { ordered: true })), 'accepted');
}

/** One JSON line of a replica's or guardian's log, with its ISO time also in milliseconds. */
export interface LogLine {
  readonly time: string;
  readonly timeMs: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** The JSON lines of a log (what a process printed that is not JSON is skipped). */
export function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      const parsed = JSON.parse(line) as { time: unknown; msg: string; [field: string]: unknown };
      const timeMs = typeof parsed.time === 'string' ? Date.parse(parsed.time) : Number.NaN;
      assert.ok(Number.isFinite(timeMs), `log line without an ISO time: ${line.slice(0, 200)}`);
      return { ...parsed, time: String(parsed.time), timeMs };
    });
}

/** SIGKILL to every process whose command line names `text` (this test's own temporary folder). */
export function killProcessesMentioning(text: string): number[] {
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isSafeInteger(pid) || pid === process.pid) continue;
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!commandLine.includes(text)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // Gone already.
    }
  }
  if (killed.length > 0) process.stdout.write(`# killed ${killed.length} leftover processes of ${text}\n`);
  return killed;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export async function waitFor<Value>(
  what: string,
  probe: () => Promise<Value | null | undefined | false>,
  timeoutMs = 30_000,
): Promise<Value> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
export const decode = (bytes: Uint8Array | null): string | null =>
  bytes === null ? null : new TextDecoder().decode(bytes);

/** Runs the compiled `phalanx` CLI and collects its output. */
export async function runCli(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }> {
  const [executable, ...prefix] = builtEntryPoint();
  return new Promise((resolve) => {
    const child = spawn(executable!, [...prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Closed-loop writers, each on its own client id; every error is kept. */
export class Writers {
  completed = 0;
  readonly errors: string[] = [];
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(stores: readonly KvClient[]) {
    this.#loops = stores.map(async (store, writer) => {
      for (let index = 0; this.#running; index++) {
        try {
          await store.put(`w${writer}/${index % 4}`, encode(`${index}`));
          this.completed++;
        } catch (error) {
          this.errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

/** The reasons of the view changes a replica started since `sinceMs`, from its log, in order. */
export function viewChangeReasons(test: TestCluster, replica: ReplicaId, sinceMs: number): string[] {
  return logLines(test.replicaLog(replica))
    .filter((line) => line.timeMs >= sinceMs && line.msg === 'view-change-started')
    .map((line) => String(line.reason));
}
