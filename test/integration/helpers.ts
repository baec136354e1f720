/**
 * Real clusters for integration tests: replica processes on loopback (each its own OS process,
 * data folder and log), real TCP, real disks, real keys.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient } from '../../src/apps/kv/client.js';
import { PhalanxClient } from '../../src/client/client.js';
import { freePortRange } from '../../src/cli/bench.js';
import { type ClusterConfig, loadClusterConfig } from '../../src/config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../../src/config/keys.js';
import { type ReplicaId, clientId } from '../../src/core/ids.js';
import { LocalCluster, cliEntryPoint } from '../../src/runtime/local-cluster.js';
import type { ReplicaReport } from '../../src/runtime/status.js';

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
  kv(name?: string): Promise<KvClient>;
  status(): Promise<ReplicaReport[]>;
  log(id: ReplicaId): string;
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
  } = {},
): Promise<TestCluster> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-it-'));
  const f = options.f ?? 1;
  const k = options.k ?? 0;
  const n = 3 * f + 2 * k + 1;
  const basePort = await freePortRange(2 * n + 101);
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
  const cluster = new LocalCluster({ config, entryPoint: cliEntryPoint(), logLevel: 'info' });
  const clients: PhalanxClient[] = [];
  if (options.start !== false) {
    await cluster.startAll();
    await cluster.waitUntilReady();
  }
  return {
    directory,
    config,
    cluster,
    async kv(name = 'admin') {
      const keys = await loadClientKeyFile(clientKeyPath(config, clientId(name)));
      const client = await PhalanxClient.connect({ config, client: keys, timeoutMs: 20_000 });
      clients.push(client);
      return new KvClient(client);
    },
    status: () => cluster.reports(),
    log: (id) => {
      try {
        return readFileSync(cluster.logFile(id), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      for (const client of clients) await client.close();
      await cluster.stopAll();
      rmSync(directory, { recursive: true, force: true });
    },
  };
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

/** Runs the `phalanx` CLI (from source) and collects its output. */
export async function runCli(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }> {
  const [executable, ...prefix] = cliEntryPoint();
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
