/**
 * Runs the replicas of a configuration as separate OS processes on this machine, each with its
 * own data folder and log file: what `phalanx up`, `phalanx bench` and the integration tests use.
 * Processes are ended by their own pid only.
 *
 * Usage:
 * ```ts
 * const cluster = new LocalCluster({ config, entryPoint: cliEntryPoint() });
 * await cluster.startAll();
 * await cluster.waitUntilReady();
 * cluster.kill(replicaId(2), 'SIGKILL');
 * await cluster.start(replicaId(2));
 * await cluster.stopAll();
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { ReplicaId } from '../messages/ids.js';
import { openProcessOutput } from './log-file.js';
import type { FaultMode } from './ipc.js';
import type { GuardianReport, GuardianStatus } from './guardian-report.js';
import {
  fetchStatusReport,
  MAX_GUARDIAN_STATUS_BYTES,
  MAX_REPLICA_STATUS_BYTES,
  type ReplicaReport,
  type ReplicaStatus,
} from './status.js';

export interface LocalClusterOptions {
  readonly config: ClusterConfig;
  /**
   * 'replica': run the replicas directly; 'guardian': run one guardian per replica, which runs
   * (and rejuvenates) the replica. Defaults to 'guardian' when the configuration has recovery.
   */
  readonly role?: 'replica' | 'guardian';
  /** Command that runs the CLI: [executable, ...args before the subcommand]. */
  readonly entryPoint: readonly string[];
  /** Folder for the replica log files (default: the configuration's data folder). */
  readonly logDirectory?: string;
  readonly logLevel?: string;
  /** Extra arguments per replica (e.g. a fault mode for tests). */
  readonly extraArguments?: (id: ReplicaId) => readonly string[];
  /** Called when a replica process exits without being asked to. */
  readonly onUnexpectedExit?: (id: ReplicaId, code: number | null, signal: NodeJS.Signals | null) => void;
}

/**
 * How to start the CLI from this very process: the same Node, with the same loader flags (tsx
 * when running from source), and the compiled or source entry point beside this file.
 */
export function cliEntryPoint(): string[] {
  const here = fileURLToPath(import.meta.url);
  const source = here.endsWith('.ts');
  const main = join(here, '..', '..', 'cli', source ? 'main.ts' : 'main.js');
  return source ? [process.execPath, '--import', import.meta.resolve('tsx'), main] : [process.execPath, main];
}

export class LocalCluster {
  readonly config: ClusterConfig;
  readonly #options: LocalClusterOptions;
  readonly #processes = new Map<ReplicaId, ChildProcess>();
  readonly #expectedExit = new Set<ReplicaId>();

  constructor(options: LocalClusterOptions) {
    this.config = options.config;
    this.#options = options;
  }

  get role(): 'replica' | 'guardian' {
    return this.#options.role ?? (this.config.recovery === null ? 'replica' : 'guardian');
  }

  /** The log of the process this cluster runs for `id` (the guardian's, when guardians run). */
  logFile(id: ReplicaId): string {
    return join(this.#options.logDirectory ?? this.config.dataDirectory, `${this.role}-${id}.log`);
  }

  /** The replica's own log (written by the guardian's child when guardians run). */
  replicaLogFile(id: ReplicaId): string {
    return join(
      this.role === 'guardian'
        ? this.config.dataDirectory
        : (this.#options.logDirectory ?? this.config.dataDirectory),
      `replica-${id}.log`,
    );
  }

  isRunning(id: ReplicaId): boolean {
    return this.#processes.has(id);
  }

  pid(id: ReplicaId): number | undefined {
    return this.#processes.get(id)?.pid;
  }

  async startAll(): Promise<void> {
    for (const replica of this.config.replicas) await this.start(replica.id);
  }

  async start(id: ReplicaId, extra: readonly string[] = []): Promise<void> {
    if (this.#processes.has(id)) throw new Error(`replica ${id} is already running`);
    const [executable, ...prefix] = this.#options.entryPoint;
    const logDirectory = this.#options.logDirectory ?? this.config.dataDirectory;
    mkdirSync(logDirectory, { recursive: true });
    // The process writes its own log, rotated by size; only what Node prints goes to .stderr.
    const output = openProcessOutput(this.logFile(id));
    const child = spawn(
      executable!,
      [
        ...prefix,
        this.role,
        '--config',
        this.config.source,
        '--id',
        String(id),
        '--log-level',
        this.#options.logLevel ?? 'info',
        '--log-file',
        this.logFile(id),
        ...(this.#options.extraArguments?.(id) ?? []),
        ...extra,
      ],
      { stdio: ['ignore', output, output], env: process.env },
    );
    closeSync(output);
    this.#processes.set(id, child);
    child.once('exit', (code, signal) => {
      if (this.#processes.get(id) === child) this.#processes.delete(id);
      if (!this.#expectedExit.delete(id)) this.#options.onUnexpectedExit?.(id, code, signal);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
  }

  /** Sends a signal to one replica process (by its pid); resolves when it has exited. */
  async kill(id: ReplicaId, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#processes.get(id);
    if (child === undefined) return;
    this.#expectedExit.add(id);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** SIGTERM to every replica, SIGKILL to those still running after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    const stopping = [...this.#processes.entries()].map(async ([id, child]) => {
      this.#expectedExit.add(id);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    });
    await Promise.all(stopping);
  }

  /** What every replica reports on its admin port. */
  async reports(timeoutMs = 1000): Promise<ReplicaReport[]> {
    return Promise.all(
      this.config.replicas.map((replica) =>
        fetchStatusReport<ReplicaStatus>(
          replica.id,
          `http://${replica.adminHost}:${replica.adminPort}/status`,
          timeoutMs,
          MAX_REPLICA_STATUS_BYTES,
        ),
      ),
    );
  }

  /** What every guardian reports on its admin port (guardian clusters). */
  async guardianReports(timeoutMs = 1000): Promise<GuardianReport[]> {
    return Promise.all(this.config.replicas.map((replica) => this.guardianReport(replica.id, timeoutMs)));
  }

  /** What one guardian reports on its admin port (guardian clusters). */
  async guardianReport(id: ReplicaId, timeoutMs = 1000): Promise<GuardianReport> {
    const replica = this.config.replicas[id];
    if (replica === undefined)
      return { up: false, replica: id, error: `no replica ${id} in the configuration` };
    return fetchStatusReport<GuardianStatus>(
      replica.id,
      `http://${replica.adminHost}:${replica.guardianAdminPort}/status`,
      timeoutMs,
      MAX_GUARDIAN_STATUS_BYTES,
    );
  }

  /**
   * Test and demo clusters (allowFaultInjection): the guardian switches its running replica into
   * an attack mode, as if an intruder took it over (null: back to correct behaviour).
   */
  async injectFault(id: ReplicaId, mode: FaultMode | null): Promise<void> {
    const replica = this.config.replicas[id]!;
    const response = await fetch(`http://${replica.adminHost}:${replica.guardianAdminPort}/fault`, {
      method: 'POST',
      body: JSON.stringify({ mode }),
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok)
      throw new Error(`guardian ${id} refused the fault: HTTP ${response.status} ${await response.text()}`);
  }

  /** Waits until every running replica answers on its admin port and is connected to the others. */
  async waitUntilReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reports = await this.reports();
      const running = reports.filter((report) => this.#processes.has(report.replica as ReplicaId));
      const ready = running.every((report) => report.up && report.connectedPeers >= running.length - 1);
      if (ready && running.length === this.#processes.size) return;
      if (Date.now() > deadline) {
        throw new Error(
          `replicas not ready after ${timeoutMs} ms: ${JSON.stringify(reports)} (logs: ${this.logFile(0 as ReplicaId)} ...)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
