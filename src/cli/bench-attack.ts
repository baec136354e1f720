/**
 * `phalanx bench attack`: throughput and latency of closed-loop clients without faults, then
 * under each attack, one at a time, then without faults again, in the same run (issue 15); the
 * attacks are compared with the mean of the two fault-free points. Every point gets a fresh cluster
 * (n = 3f + 2k + 1, plain or with --guardians), so one attack's damage (a view it left behind,
 * a replica it got rejuvenated, a state it corrupted) does not leak into the next point.
 *
 * The attacks are the runtime fault modes of the adversary catalogue (src/adversary/catalogue.ts)
 * held by one replica, the leader of view 0 or a backup, and hostile clients in a process of
 * their own (`bench attack-client`) over real connections. A point ends when its requests are
 * done or when its window ends (--window): an attack that stalls the cluster ends its point and is
 * reported as cut, with the requests still waiting counted at the latency they had reached (a
 * lower bound of theirs). With guardians, the points aimed at a rejuvenation last instead until
 * another replica's proactive rejuvenation, begun after the attack started, has ended.
 *
 * For every point: throughput and p50/p99 latency of the measured clients (after a warm-up, as
 * `phalanx bench` measures them), their ratios to the fault-free figures of the same run, CPU time
 * per operation of every process, view changes during the point (the replicas' status), and when
 * the culprit was first detected: a correct replica's suspicion of it, a proof against it, input
 * it sent refused as hostile (the replicas' logs), or a view change away from it as leader. With
 * guardians, when the culprit's guardian rejuvenated it. It prints one table, then one JSON line
 * per point. docs/performance.md ("Under attack") reports the figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Command, InvalidArgumentError } from 'commander';
import { KvClient } from '../apps/kv/client.js';
import {
  type AdversaryBehaviour,
  AT_START_ONLY_BEHAVIOURS,
  isRuntimeFaultMode,
} from '../adversary/catalogue.js';
import { PhalanxClient } from '../client/client.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../config/keys.js';
import { clientId, replicaId } from '../messages/ids.js';
import { signCodeManifestFor } from '../recovery/code-manifest.js';
import { cliEntryPoint, LocalCluster } from '../runtime/local-cluster.js';
import type { RecoveryRecord } from '../runtime/guardian-report.js';
import { BENCH_GUARDIAN_RECOVERY_BOUND_MS, connectBenchClient, freePortRange } from './bench.js';
import { type CpuSample, sampleProcessTreeCpu } from './process-cpu.js';
import { loadCheckedClusterConfig, OPTION_RANGES, type OptionRange, rangedOption } from './options.js';

/**
 * Who holds the attack: the leader of view 0, a backup (the last replica), clients, or nobody (a
 * fault-free point of another kind: the rejuvenation alone).
 */
export type CulpritRole = 'leader' | 'backup' | 'clients' | 'nobody';

interface AttackDefinition {
  readonly description: string;
  readonly culprit: CulpritRole;
  /** The catalogue behaviour the culprit replica runs (replica attacks). */
  readonly behaviour?: AdversaryBehaviour;
  /** What the hostile clients of this process do (client attacks). */
  readonly clientAttack?: 'flood' | 'churn';
  /** Aimed at a rejuvenation: only a cluster with guardians has one. */
  readonly needsGuardians?: true;
  /**
   * The point lasts until a rejuvenation of another replica, begun after the attack started, has
   * ended (a proactive slot falls inside every point's window: GUARDIAN_SCHEDULE_DELAY_MS), rather
   * than for a number of requests: what is measured is the attack while a replica recovers.
   */
  readonly spansRejuvenation?: true;
}

export const ATTACKS = {
  'slow-leader': {
    description: 'the leader holds every proposal back for 30% to 120% of the request timeout',
    culprit: 'leader',
    behaviour: 'slow-leader',
  },
  'stalling-leader': {
    description: 'the leader holds every proposal back for 45% of the request timeout: nothing times out',
    culprit: 'leader',
    behaviour: 'stalling-leader',
  },
  'small-batches': {
    description: 'the leader proposes one request per batch, however many wait',
    culprit: 'leader',
    behaviour: 'small-batches',
  },
  'silent-leader': {
    description: 'the leader sends nothing at all',
    culprit: 'leader',
    behaviour: 'silent',
  },
  equivocate: {
    description: 'the leader sends a second, validly signed proposal to half the backups',
    culprit: 'leader',
    behaviour: 'equivocate',
  },
  'silent-backup': {
    description: 'a backup sends nothing at all: only the silence suspicion names it',
    culprit: 'backup',
    behaviour: 'silent',
  },
  flood: {
    description: 'a backup floods its peers with garbage frames, absurd lengths and costly requests',
    culprit: 'backup',
    behaviour: 'flood',
  },
  'client-flood': {
    description: "a client keeps its whole window of requests in flight (the client library's maximum)",
    culprit: 'clients',
    clientAttack: 'flood',
  },
  'connection-churn': {
    description: 'clients open connections to every replica and drop them at once, over and over',
    culprit: 'clients',
    clientAttack: 'churn',
  },
  'lie-in-replies': {
    description: 'a backup answers clients with results it made up (and signs them)',
    culprit: 'backup',
    behaviour: 'lie-in-replies',
  },
  rejuvenation: {
    description:
      'no fault: a proactive rejuvenation of another replica inside the window (what one costs; compare the attacks during one with it)',
    culprit: 'nobody',
    needsGuardians: true,
    spansRejuvenation: true,
  },
  'stalling-source': {
    description:
      'a backup answers every catch-up and state-transfer request just before the requester gives up on it, while another replica is rejuvenated',
    culprit: 'backup',
    behaviour: 'stalling-source',
    needsGuardians: true,
    spansRejuvenation: true,
  },
  'lying-source': {
    description:
      'a backup answers catch-up and state-transfer requests with wrong manifests, chunks and batches, while another replica is rejuvenated',
    culprit: 'backup',
    behaviour: 'lying-source',
    needsGuardians: true,
    spansRejuvenation: true,
  },
  'silent-during-rejuvenation': {
    description:
      'a backup sends nothing while another replica is rejuvenated: f Byzantine and k recovering at once, so every other replica must vote',
    culprit: 'backup',
    behaviour: 'silent',
    needsGuardians: true,
    spansRejuvenation: true,
  },
} as const satisfies Record<string, AttackDefinition>;

export type AttackName = keyof typeof ATTACKS;
export const ATTACK_NAMES = Object.keys(ATTACKS) as AttackName[];

function definitionOf(attack: AttackName): AttackDefinition {
  return ATTACKS[attack];
}

function isAttackName(name: string): name is AttackName {
  return (ATTACK_NAMES as readonly string[]).includes(name);
}

/** `--attacks a,b,c`: known names, each once, in the order given. */
export function parseAttacks(text: string): AttackName[] {
  const names = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (names.length === 0) throw new InvalidArgumentError('--attacks needs at least one attack');
  const unknown = names.filter((name) => !isAttackName(name));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `unknown attack ${unknown.map((name) => JSON.stringify(name)).join(', ')} (known: ${ATTACK_NAMES.join(', ')})`,
    );
  return [...new Set(names)] as AttackName[];
}

/** Why an attack cannot run on this cluster, or null when it can. */
export function whyNotRunnable(attack: AttackName, guardians: boolean): string | null {
  const definition = definitionOf(attack);
  if (definition.needsGuardians === true && !guardians) return 'needs --guardians (a rejuvenation)';
  if (definition.behaviour !== undefined && !isRuntimeFaultMode(definition.behaviour))
    return `'${definition.behaviour}' runs in the simulator only (src/adversary/catalogue.ts)`;
  return null;
}

/** The issue's target: throughput ≥ 0.8 of fault-free and p99 ≤ 3× under every attack. */
export const TARGET_THROUGHPUT_RATIO = 0.8;
export const TARGET_P99_RATIO = 3;

/** What one point measured (the fault-free point is attack 'none'). */
export interface PointMeasurement {
  readonly attack: AttackName | 'none';
  /** "replica 0", "clients attacker-*", or null for the fault-free point. */
  readonly culprit: string | null;
  readonly clients: number;
  /** Measured requests completed (the warm-up left out). */
  readonly requests: number;
  /** Whether every measured request completed before the window ended. */
  readonly completed: boolean;
  readonly errors: number;
  readonly duration_s: number;
  readonly throughput_ops_s: number;
  readonly latency_ms_p50: number;
  readonly latency_ms_p99: number;
  /**
   * The same from the start of the attack, warm-up included: what the detection window costs
   * (the figures above leave it out when the culprit is caught during the warm-up).
   */
  readonly whole_duration_s: number;
  readonly whole_throughput_ops_s: number;
  readonly whole_latency_ms_p99: number;
  readonly cpu_us_per_op: number | null;
  /**
   * This process's share: the measured clients, and the hostile clients of the client attacks,
   * which share its event loop (their cost shows in the measured clients' latency too).
   */
  readonly cpu_us_per_op_clients: number | null;
  /** Views installed during the point (the highest view any replica reports, less the first). */
  readonly view_changes: number;
  /** Seconds from the start of the attack to the culprit's first detection; null if never. */
  readonly detected_after_s: number | null;
  /**
   * What detected it first: 'suspicion', 'proof', 'input refused', 'source dropped' (a replica
   * catching up gave up on it as a state-transfer source) or 'view change'.
   */
  readonly detected_by: string | null;
  /** With guardians: seconds from the start of the attack until the culprit's rejuvenation ended. */
  readonly rejuvenated_after_s: number | null;
  /** 'proactive' (its slot in the schedule) or 'reactive' (caught). */
  readonly rejuvenated_by: string | null;
  /**
   * With guardians: the first rejuvenation of a replica other than the culprit that began after
   * the attack started and ended inside the point (for the attacks during a rejuvenation, the one
   * the point waited for); null when none did.
   */
  readonly rejuvenation_in_window: RejuvenationInWindow | null;
  /** Replica (or guardian) processes that exited on their own during the point. */
  readonly crashed: readonly number[];
  /** Connections the churning clients opened, requests the flooding client had answered. */
  readonly attacker_operations: number | null;
  /** Why the point could not be measured (the cluster never became ready, say). */
  readonly error?: string;
}

export interface RejuvenationInWindow {
  readonly replica: number;
  readonly kind: string;
  readonly duration_s: number;
  /** Over T_D: its guardian raised an alarm. */
  readonly exceeded_bound: boolean;
  /** Time in the transferring-state step (0: it caught up from batches alone). */
  readonly state_transfer_s: number;
}

export interface AttackResult extends PointMeasurement {
  readonly n: number;
  readonly f: number;
  readonly k: number;
  readonly guardians: boolean;
  readonly throughput_ratio: number | null;
  readonly p99_ratio: number | null;
  /** From the start of the attack, over the fault-free point's whole figures. */
  readonly whole_throughput_ratio: number | null;
  readonly whole_p99_ratio: number | null;
  /** Throughput and p99 (after the warm-up) within the issue's target (null for the fault-free point). */
  readonly meets_target: boolean | null;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** A point's ratios to the fault-free point of the same run. */
export function withRatios(
  point: PointMeasurement,
  faultFree: PointMeasurement | null,
  shape: { readonly n: number; readonly f: number; readonly k: number; readonly guardians: boolean },
): AttackResult {
  const usable = (measured: PointMeasurement | null): measured is PointMeasurement =>
    measured !== null && measured.error === undefined && measured.requests > 0;
  const comparable = usable(point) && usable(faultFree);
  const ratio = (figure: (measured: PointMeasurement) => number, digits: number): number | null =>
    comparable && figure(faultFree) > 0 ? round(figure(point) / figure(faultFree), digits) : null;
  const throughputRatio = ratio((measured) => measured.throughput_ops_s, 3);
  const p99Ratio = ratio((measured) => measured.latency_ms_p99, 2);
  return {
    ...shape,
    ...point,
    throughput_ratio: throughputRatio,
    p99_ratio: p99Ratio,
    whole_throughput_ratio: ratio((measured) => measured.whole_throughput_ops_s, 3),
    whole_p99_ratio: ratio((measured) => measured.whole_latency_ms_p99, 2),
    meets_target:
      point.attack === 'none'
        ? null
        : throughputRatio !== null &&
          p99Ratio !== null &&
          throughputRatio >= TARGET_THROUGHPUT_RATIO &&
          p99Ratio <= TARGET_P99_RATIO,
  };
}

/** "replica 0, 4.2 s (transfer 0.8 s), over T_D", or "-". */
function rejuvenationCell(rejuvenation: RejuvenationInWindow | null): string {
  if (rejuvenation === null) return '-';
  const transfer =
    rejuvenation.state_transfer_s > 0 ? ` (transfer ${rejuvenation.state_transfer_s.toFixed(1)} s)` : '';
  const over = rejuvenation.exceeded_bound ? ', over T_D' : '';
  return `replica ${rejuvenation.replica}, ${rejuvenation.duration_s.toFixed(1)} s${transfer}${over}`;
}

/** The table printed before the JSON lines. */
export function attackTable(results: readonly AttackResult[]): string[] {
  const guardians = results.some((result) => result.guardians);
  const header = [
    'attack',
    'culprit',
    'ops/s',
    'ratio',
    'p50 ms',
    'p99 ms',
    'p99 ratio',
    'whole: ratio',
    'whole: p99 ratio',
    'CPU µs/op',
    'views',
    'detected after',
    ...(guardians ? ['rejuvenated after', 'rejuvenation in window'] : []),
    'window',
    'target',
  ];
  const ratio = (value: number | null): string => (value === null ? '-' : value.toFixed(2));
  const cells = results.map((result) => {
    if (result.error !== undefined)
      return [result.attack, result.culprit ?? '-', ...header.slice(2).map(() => '-')].map((cell, column) =>
        column === header.length - 1 ? `failed: ${result.error}` : cell,
      );
    return [
      result.attack,
      result.culprit ?? '-',
      String(result.throughput_ops_s),
      ratio(result.throughput_ratio),
      result.latency_ms_p50.toFixed(1),
      result.latency_ms_p99.toFixed(1),
      ratio(result.p99_ratio),
      ratio(result.whole_throughput_ratio),
      ratio(result.whole_p99_ratio),
      result.cpu_us_per_op === null ? '-' : String(result.cpu_us_per_op),
      String(result.view_changes),
      result.culprit === null
        ? '-'
        : result.detected_after_s === null
          ? 'never'
          : `${result.detected_after_s.toFixed(1)} s (${result.detected_by ?? '?'})`,
      ...(guardians
        ? [
            result.culprit === null
              ? '-'
              : result.rejuvenated_after_s === null
                ? 'no'
                : `${result.rejuvenated_after_s.toFixed(1)} s (${result.rejuvenated_by ?? '?'})`,
            rejuvenationCell(result.rejuvenation_in_window),
          ]
        : []),
      `${result.completed ? 'done' : 'cut'} ${result.whole_duration_s.toFixed(1)} s${result.crashed.length > 0 ? `, crashed ${result.crashed.join(' ')}` : ''}`,
      result.meets_target === null ? '-' : result.meets_target ? 'met' : 'missed',
    ];
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => row[column]!.length)),
  );
  const line = (values: readonly string[]): string =>
    `| ${values.map((value, column) => (column < 2 ? value.padEnd(widths[column]!) : value.padStart(widths[column]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)];
}

/** One JSON line of a replica's log, as far as detection reads it. */
export interface LogRecord {
  readonly timeMs: number;
  readonly level: number;
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** The JSON lines of a log with an ISO time (anything else is skipped). */
export function parseLogRecords(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null) continue;
    const fields = parsed as Record<string, unknown>;
    const timeMs = typeof fields.time === 'string' ? Date.parse(fields.time) : Number.NaN;
    if (!Number.isFinite(timeMs)) continue;
    records.push({
      timeMs,
      level: typeof fields.level === 'number' ? fields.level : 0,
      msg: typeof fields.msg === 'string' ? fields.msg : '',
      fields,
    });
  }
  return records;
}

/** Who is looked for in the logs: a replica by id, or clients by name. */
export type Culprit =
  | { readonly kind: 'replica'; readonly id: number }
  | { readonly kind: 'clients'; readonly names: readonly string[] };

/** pino's level of warnings: hostile input is logged at warn, proofs at error. */
const WARN_LEVEL = 40;

/** Whether a log field that names a sender (a NodeId, "client x", "replica:3", 3) names the culprit. */
function namesCulprit(value: unknown, culprit: Culprit): boolean {
  if (culprit.kind === 'replica') {
    if (typeof value === 'number') return value === culprit.id;
    if (typeof value === 'object' && value !== null) {
      const node = value as { kind?: unknown; id?: unknown };
      return node.kind === 'replica' && node.id === culprit.id;
    }
    if (typeof value === 'string')
      return new RegExp(`^replica[ :]${culprit.id}$`).test(value) || value === String(culprit.id);
    return false;
  }
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'object' && value !== null
        ? String((value as { id?: unknown }).id ?? '')
        : '';
  return culprit.names.some(
    (name) => text === name || text.endsWith(` ${name}`) || text.endsWith(`:${name}`),
  );
}

/**
 * The culprit's first detection at or after `sinceMs` in the logs of correct replicas: a
 * suspicion of it, a proof against it (found by a replica or reported by a client), input it
 * sent refused as hostile, or a replica catching up dropping it as a state-transfer source.
 */
export function firstDetectionInLogs(
  records: readonly LogRecord[],
  culprit: Culprit,
  sinceMs: number,
): { readonly atMs: number; readonly by: string } | null {
  let first: { atMs: number; by: string } | null = null;
  for (const record of records) {
    if (record.timeMs < sinceMs || record.level < WARN_LEVEL) continue;
    if (first !== null && record.timeMs >= first.atMs) continue;
    let by: string | null = null;
    if (
      culprit.kind === 'replica' &&
      record.msg === 'suspicion' &&
      namesCulprit(record.fields.suspect, culprit)
    )
      by = 'suspicion';
    else if (
      culprit.kind === 'replica' &&
      record.msg.startsWith('misbehaviour') &&
      namesCulprit(record.fields.accused, culprit)
    )
      by = 'proof';
    else if (
      culprit.kind === 'replica' &&
      record.msg === 'state-transfer-source-dropped' &&
      namesCulprit(record.fields.source, culprit)
    )
      by = 'source dropped';
    else if (namesCulprit(record.fields.from, culprit) || namesCulprit(record.fields.peer, culprit))
      by = 'input refused';
    if (by !== null) first = { atMs: record.timeMs, by };
  }
  return first;
}

export interface AttackBenchOptions {
  readonly f: number;
  readonly k: number;
  readonly n?: number;
  readonly guardians: boolean;
  readonly clients: number;
  readonly requests: number;
  readonly warmupRequests: number;
  /** Longest a point's workload runs (ms); what is not done by then is cut. */
  readonly windowMs: number;
  readonly attacks: readonly AttackName[];
  readonly log: (line: string) => void;
}

/**
 * With guardians: the schedule's origin, this long after a point's cluster is made (about when
 * its workload starts on a two-core machine).
 */
const GUARDIAN_SCHEDULE_DELAY_MS = 15_000;
/** A point that spans a rejuvenation runs at least until T_D past the first slot, and this long more. */
const REJUVENATION_WINDOW_MARGIN_MS = 10_000;
/** And it goes on this long after the rejuvenation ended. */
const AFTER_REJUVENATION_MS = 1000;
/** How often the replicas' views are polled during a point. */
const STATUS_POLL_MS = 500;
/** Connections the churning clients keep opening and dropping at once. */
const CHURNING_CLIENTS = 4;
const FLOOD_CLIENT = 'attacker-flood';
const churnClientName = (index: number): string => `attacker-churn-${index}`;
const ATTACKER_CLIENTS = [
  FLOOD_CLIENT,
  ...Array.from({ length: CHURNING_CLIENTS }, (_, index) => churnClientName(index)),
];
/** The last replica is the backup culprit: it leads no view before view n - 1. */
const backupCulprit = (n: number): number => n - 1;

function rate(stretch: Stretch): number {
  return stretch.seconds > 0 ? Math.round(stretch.requests / stretch.seconds) : 0;
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!, 3);
}

/** Hostile clients: started with the attack, stopped with the point. */
interface ClientAttack {
  /** The attacker's process, left out of the run's CPU time (null: it runs in this process). */
  readonly pid: number | null;
  /** Stops the attack; resolves to the operations it completed (connections, or requests). */
  stop(): Promise<number>;
}

/** What the attacker process prints once its clients are at work, and when it stops. */
const ATTACKING_LINE = 'attacking';
const ATTACK_READY_TIMEOUT_MS = 60_000;

/**
 * The hostile clients in a process of their own (`phalanx bench attack-client`), at the lowest
 * CPU priority, as an attacker runs on a machine of its own: run inside the bench process, the
 * flooder's 60 loops shared the event loop of the clients measured, whose latency then counted the
 * attacker's own client-side work (its CPU per operation was twice theirs, 2026-12-02), and the
 * run's CPU time per operation counted it too. Its CPU is left out of the run's (sampleProcessTreeCpu).
 */
async function spawnClientAttack(kind: 'flood' | 'churn', config: ClusterConfig): Promise<ClientAttack> {
  const [executable, ...prefix] = cliEntryPoint();
  const child = spawn(
    'nice',
    ['-n', '19', executable!, ...prefix, 'bench', 'attack-client', kind, '--config', config.source],
    // Its stdin is a pipe this process holds open: when the bench dies, it closes, and the
    // attacker stops instead of flooding a cluster nobody measures any more.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    // Bounded: the attacker prints two lines; anything more is kept only up to 64 KiB.
    if (output.length < 64 * 1024) output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + ATTACK_READY_TIMEOUT_MS;
  while (!output.includes(ATTACKING_LINE)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`the ${kind} attacker did not start: ${output.trim().slice(0, 2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    pid: child.pid ?? null,
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      const done = /operations (\d+)/.exec(output);
      return done === null ? 0 : Number(done[1]);
    },
  };
}

/** `phalanx bench attack-client`: the hostile clients' process, until SIGTERM. */
async function runAttackClientProcess(kind: 'flood' | 'churn', config: ClusterConfig): Promise<void> {
  const attack = await runClientAttack(kind, config);
  process.stdout.write(`${ATTACKING_LINE}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    // The bench holds stdin open; it closes when the bench is gone (see spawnClientAttack).
    if (process.stdin.readableEnded) resolve();
    process.stdin.once('end', () => resolve());
    process.stdin.once('close', () => resolve());
    process.stdin.resume();
  });
  const operations = await attack.stop();
  process.stdout.write(`operations ${operations}\n`);
}

async function runClientAttack(kind: 'flood' | 'churn', config: ClusterConfig): Promise<ClientAttack> {
  let running = true;
  let operations = 0;
  let failed = false;
  const tasks: Promise<void>[] = [];
  const clients: PhalanxClient[] = [];
  if (kind === 'flood') {
    tasks.push(
      (async () => {
        const keys = await loadClientKeyFile(clientKeyPath(config, clientId(FLOOD_CLIENT)));
        const client = await PhalanxClient.connect({
          config,
          client: keys,
          maxOutstanding: config.protocol.maxOutstandingPerClient,
          timeoutMs: 10_000,
        });
        clients.push(client);
        const store = new KvClient(client);
        const value = new Uint8Array(0);
        // As many loops as the library lets be in flight: the window never has a free slot.
        const window = Math.max(1, config.protocol.maxOutstandingPerClient - 2);
        await Promise.all(
          Array.from({ length: window }, async (_, index) => {
            while (running) {
              await store.put(`${FLOOD_CLIENT}/${index}`, value).then(
                () => operations++,
                () => undefined,
              );
            }
          }),
        );
      })().catch((error: unknown) => {
        failed = true;
        process.stderr.write(`flooding client: ${error instanceof Error ? error.message : String(error)}\n`);
      }),
    );
  } else {
    for (let index = 0; index < CHURNING_CLIENTS; index++)
      tasks.push(
        (async () => {
          const keys = await loadClientKeyFile(clientKeyPath(config, clientId(churnClientName(index))));
          while (running) {
            try {
              const client = await PhalanxClient.connect({ config, client: keys, connectTimeoutMs: 5000 });
              operations++;
              await client.close();
            } catch {
              // Refused or timed out: the churn goes on.
            }
          }
        })(),
      );
  }
  // The flooder's client is connected (or failed to) before the attack counts as started.
  while (kind === 'flood' && clients.length === 0 && !failed)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    pid: null,
    async stop() {
      running = false;
      for (const client of clients) await client.close().catch(() => undefined);
      await Promise.allSettled(tasks);
      return operations;
    },
  };
}

/** Completed requests and latencies (ms) over a stretch of a point. */
export interface Stretch {
  /** Requests answered (a request still waiting when the window ended is not one). */
  readonly requests: number;
  readonly seconds: number;
  /** Every request's latency, a request still waiting counted at the latency it had reached. */
  readonly latencies: readonly number[];
}

/** The closed-loop workload of one point, bounded by its window. */
interface WorkloadFigures {
  /** After the warm-up (the whole point when the window ended inside the warm-up). */
  readonly measured: Stretch;
  /** From the start of the attack: the warm-up, and so the detection, included. */
  readonly whole: Stretch;
  readonly completed: boolean;
  readonly errors: number;
  readonly cpuAtStart: CpuSample | null;
  readonly cpuAtEnd: CpuSample | null;
}

async function runWorkload(
  stores: readonly KvClient[],
  options: AttackBenchOptions,
  excludedFromCpu: ReadonlySet<number>,
  /** When given, the workload runs until it settles (or the window ends), whatever `requests` says. */
  until?: Promise<unknown>,
): Promise<WorkloadFigures> {
  let untilSettled = false;
  void until?.finally(() => {
    untilSettled = true;
  });
  const total = until === undefined ? options.requests + options.warmupRequests : Number.POSITIVE_INFINITY;
  const measured = { requests: 0, latencies: [] as number[] };
  const warmup = { requests: 0, latencies: [] as number[] };
  let issued = 0;
  let errors = 0;
  let expired = false;
  const started = performance.now();
  const stopAt = started + options.windowMs;
  let measureStart: number | null = options.warmupRequests === 0 ? started : null;
  const cpuAtWindowStart = sampleProcessTreeCpu(process.pid, excludedFromCpu);
  let cpuAtStart = options.warmupRequests === 0 ? cpuAtWindowStart : null;
  let timer: NodeJS.Timeout | undefined;
  const windowEnd = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => {
      expired = true;
      resolve('expired');
    }, options.windowMs);
  });
  const value = new Uint8Array(0);
  const loop = async (store: KvClient, index: number): Promise<void> => {
    const key = `bench/${index}`;
    while (issued < total && !expired && !untilSettled) {
      const number = issued++;
      if (number === options.warmupRequests && options.warmupRequests > 0) {
        measureStart = performance.now();
        cpuAtStart = sampleProcessTreeCpu(process.pid, excludedFromCpu);
      }
      const stretch = number >= options.warmupRequests ? measured : warmup;
      const sent = performance.now();
      const outcome = await Promise.race([
        store.put(key, value).then(
          () => 'done' as const,
          () => 'error' as const,
        ),
        windowEnd,
      ]);
      if (outcome === 'expired') {
        // Still waiting when the window ended: counted at the latency it had reached.
        stretch.latencies.push(stopAt - sent);
        return;
      }
      if (outcome === 'error') {
        errors++;
        continue;
      }
      stretch.requests++;
      stretch.latencies.push(performance.now() - sent);
    }
  };
  await Promise.all(stores.map((store, index) => loop(store, index)));
  clearTimeout(timer);
  const finished = Math.min(performance.now(), stopAt);
  const cpuAtEnd = sampleProcessTreeCpu(process.pid, excludedFromCpu);
  const whole: Stretch = {
    requests: warmup.requests + measured.requests,
    seconds: (finished - started) / 1000,
    latencies: [...warmup.latencies, ...measured.latencies],
  };
  return {
    // The window ended inside the warm-up: the whole window is the measurement.
    measured:
      measureStart === null
        ? whole
        : {
            requests: measured.requests,
            seconds: (finished - measureStart) / 1000,
            latencies: measured.latencies,
          },
    whole,
    completed: !expired,
    errors,
    cpuAtStart: measureStart === null ? cpuAtWindowStart : cpuAtStart,
    cpuAtEnd,
  };
}

/** Polls the replicas' status during a point: the highest view, and when the culprit lost the lead. */
class ViewWatch {
  #highest = 0;
  #first: number | null = null;
  #awayFromCulpritAtMs: number | null = null;
  #running = true;
  readonly #done: Promise<void>;

  constructor(cluster: LocalCluster, culpritLeader: number | null) {
    this.#done = (async () => {
      while (this.#running) {
        const reports = await cluster.reports(STATUS_POLL_MS);
        for (const report of reports) {
          if (!report.up) continue;
          this.#first ??= report.view;
          this.#highest = Math.max(this.#highest, report.view);
          if (
            culpritLeader !== null &&
            report.replica !== culpritLeader &&
            !report.viewChangeInProgress &&
            report.view % cluster.config.n !== culpritLeader
          )
            this.#awayFromCulpritAtMs ??= Date.now();
        }
        await new Promise((resolve) => setTimeout(resolve, STATUS_POLL_MS));
      }
    })();
  }

  async stop(): Promise<{ viewChanges: number; awayFromCulpritAtMs: number | null }> {
    this.#running = false;
    await this.#done;
    return {
      viewChanges: this.#highest - (this.#first ?? 0),
      awayFromCulpritAtMs: this.#awayFromCulpritAtMs,
    };
  }
}

/** What firstRejuvenationSince reads of a guardian's report (a GuardianReport is one). */
export type RecoveriesReported =
  | { readonly up: false; readonly replica: number }
  | { readonly up: true; readonly replica: number; readonly recentRecoveries: readonly RecoveryRecord[] };

/**
 * The first rejuvenation, in the guardians' reports, of a replica other than the culprit that
 * began at or after `sinceMs` (the reports list ended rejuvenations only); null when none has.
 */
export function firstRejuvenationSince(
  reports: readonly RecoveriesReported[],
  culprit: number | null,
  sinceMs: number,
): RejuvenationInWindow | null {
  let first: { replica: number; record: RecoveryRecord } | null = null;
  for (const report of reports) {
    if (!report.up || report.replica === culprit) continue;
    for (const record of report.recentRecoveries)
      if (record.startedAtMs >= sinceMs && (first === null || record.startedAtMs < first.record.startedAtMs))
        first = { replica: report.replica, record };
  }
  if (first === null) return null;
  const { replica, record } = first;
  const transferMs = record.steps
    .filter((step) => step.step === 'transferring-state')
    .reduce((sum, step) => sum + step.durationMs, 0);
  return {
    replica,
    kind: record.kind,
    duration_s: round(record.durationMs / 1000, 1),
    exceeded_bound: record.exceededBound,
    state_transfer_s: round(transferMs / 1000, 1),
  };
}

/** firstRejuvenationSince over the guardians of the replicas other than the culprit, asked now. */
async function rejuvenationSince(
  cluster: LocalCluster,
  culprit: number | null,
  sinceMs: number,
): Promise<RejuvenationInWindow | null> {
  const watched = cluster.config.replicas.map((replica) => replica.id).filter((id) => id !== culprit);
  const reports = await Promise.all(watched.map((id) => cluster.guardianReport(id, STATUS_POLL_MS)));
  return firstRejuvenationSince(reports, culprit, sinceMs);
}

/** Polls rejuvenationSince until it finds one; `ended` settles then (never, if none ends). */
class RejuvenationWatch {
  readonly ended: Promise<RejuvenationInWindow>;
  #found: RejuvenationInWindow | null = null;
  #running = true;
  readonly #done: Promise<void>;

  constructor(cluster: LocalCluster, culprit: number | null, sinceMs: number) {
    let resolveEnded: (found: RejuvenationInWindow) => void = () => undefined;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.#done = (async () => {
      while (this.#running) {
        this.#found = await rejuvenationSince(cluster, culprit, sinceMs);
        if (this.#found !== null) {
          resolveEnded(this.#found);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, STATUS_POLL_MS));
      }
    })();
  }

  /** Stops polling: the rejuvenation found so far, if any. */
  async stop(): Promise<RejuvenationInWindow | null> {
    this.#running = false;
    await this.#done;
    return this.#found;
  }
}

/** Who holds the attack, given the replica leading when it starts; null when nobody does. */
function culpritOf(attack: AttackName, n: number, leader: number): Culprit | null {
  const definition = definitionOf(attack);
  if (definition.culprit === 'nobody') return null;
  if (definition.culprit === 'clients')
    return {
      kind: 'clients',
      names:
        definition.clientAttack === 'flood'
          ? [FLOOD_CLIENT]
          : ATTACKER_CLIENTS.filter((name) => name !== FLOOD_CLIENT),
    };
  if (definition.culprit === 'leader') return { kind: 'replica', id: leader };
  const backup = backupCulprit(n);
  return { kind: 'replica', id: backup === leader ? backup - 1 : backup };
}

/** The leader of the view most replicas are in (ties: the highest), once the cluster is ready. */
async function currentLeader(cluster: LocalCluster): Promise<number> {
  const votes = new Map<number, number>();
  for (const report of await cluster.reports(2000))
    if (report.up && !report.viewChangeInProgress) votes.set(report.view, (votes.get(report.view) ?? 0) + 1);
  let view = 0;
  let most = 0;
  for (const [candidate, count] of votes)
    if (count > most || (count === most && candidate > view)) [view, most] = [candidate, count];
  return view % cluster.config.n;
}

function culpritLabel(culprit: Culprit): string {
  return culprit.kind === 'replica'
    ? `replica ${culprit.id}`
    : culprit.names.length === 1
      ? `client ${culprit.names[0]!}`
      : `${culprit.names.length} clients`;
}

/** One point: a fresh cluster, the attack (or none), the workload, the figures. */
async function measurePoint(
  attack: AttackName | 'none',
  options: AttackBenchOptions,
): Promise<PointMeasurement> {
  const n = options.n ?? 3 * options.f + 2 * options.k + 1;
  // A fresh plain cluster starts in view 0; a guardian cluster is asked once it is ready (a
  // proactive slot may have handed the lead over already).
  let culprit = attack === 'none' ? null : culpritOf(attack, n, 0);
  const behaviour = attack === 'none' ? undefined : definitionOf(attack).behaviour;
  const faultMode = behaviour !== undefined && isRuntimeFaultMode(behaviour) ? behaviour : null;
  let culpritReplica = culprit?.kind === 'replica' ? culprit.id : null;
  // A mode that changes how the core is made is in force from the start (the leader of view 0,
  // with guardians too: its guardian starts it so); the others are switched on when the attack starts.
  const atStart = faultMode !== null && AT_START_ONLY_BEHAVIOURS.includes(faultMode);
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-bench-attack-'));
  const scheduleOriginMs = Date.now() + GUARDIAN_SCHEDULE_DELAY_MS;
  const crashed: number[] = [];
  let empty: PointMeasurement = {
    attack,
    culprit: culprit === null ? null : culpritLabel(culprit),
    clients: options.clients,
    requests: 0,
    completed: false,
    errors: 0,
    duration_s: 0,
    throughput_ops_s: 0,
    latency_ms_p50: 0,
    latency_ms_p99: 0,
    whole_duration_s: 0,
    whole_throughput_ops_s: 0,
    whole_latency_ms_p99: 0,
    cpu_us_per_op: null,
    cpu_us_per_op_clients: null,
    view_changes: 0,
    detected_after_s: null,
    detected_by: null,
    rejuvenated_after_s: null,
    rejuvenated_by: null,
    rejuvenation_in_window: null,
    crashed,
    attacker_operations: null,
  };
  let cluster: LocalCluster | null = null;
  const stores: KvClient[] = [];
  try {
    const basePort = await freePortRange(options.guardians ? 301 + n : 2 * n + 101);
    const { configPath } = await generateCluster({
      directory,
      f: options.f,
      k: options.k,
      n,
      basePort,
      clients: ['admin', ...ATTACKER_CLIENTS],
      benchClients: options.clients,
      storageEngine: 'file',
      dashboardPort: 0,
      allowFaultInjection: true,
      // Every point's schedule starts at the same moment after its cluster was made, so that the
      // proactive slots fall alike in every point's window (they cost throughput, and where they
      // fell would otherwise decide the ratios).
      ...(options.guardians
        ? {
            recovery: {
              recoveryBoundMs: BENCH_GUARDIAN_RECOVERY_BOUND_MS,
              scheduleOriginMs,
            },
          }
        : {}),
    });
    const config = await loadCheckedClusterConfig(configPath);
    if (options.guardians) await signCodeManifestFor(config);
    // Without guardians nothing can switch a running replica's mode: the culprit starts in it.
    // A guardian switches it once the cluster is ready, when the attack starts, unless the mode
    // works only from the start (then the culprit's guardian starts its replica in it).
    cluster = new LocalCluster({
      config,
      entryPoint: cliEntryPoint(),
      logLevel: 'warn',
      extraArguments: (id) =>
        (!options.guardians || atStart) && faultMode !== null && id === culpritReplica
          ? ['--fault-mode', faultMode]
          : [],
      onUnexpectedExit: (id) => crashed.push(id),
    });
    await cluster.startAll();
    await cluster.waitUntilReady(60_000);
    for (let index = 0; index < options.clients; index++)
      stores.push(await connectBenchClient(config, index));
    if (options.guardians && attack !== 'none' && culprit !== null && !atStart) {
      culprit = culpritOf(attack, n, await currentLeader(cluster));
      culpritReplica = culprit?.kind === 'replica' ? culprit.id : null;
      empty = { ...empty, culprit: culprit === null ? null : culpritLabel(culprit) };
      if (faultMode !== null && culpritReplica !== null)
        await cluster.injectFault(replicaId(culpritReplica), faultMode);
    }
    const attackStartMs = Date.now();
    const clientAttackKind = attack === 'none' ? undefined : definitionOf(attack).clientAttack;
    const clientAttack =
      clientAttackKind === undefined ? null : await spawnClientAttack(clientAttackKind, config);
    // The attacker's process is not the system's: its CPU is left out of the point's.
    const excludedFromCpu = new Set(clientAttack?.pid == null ? [] : [clientAttack.pid]);
    const leaderCulprit =
      attack !== 'none' && definitionOf(attack).culprit === 'leader' ? culpritReplica : null;
    const views = new ViewWatch(cluster, leaderCulprit);
    const spansRejuvenation = attack !== 'none' && definitionOf(attack).spansRejuvenation === true;
    const rejuvenations = spansRejuvenation
      ? new RejuvenationWatch(cluster, culpritReplica, attackStartMs)
      : null;
    const workload = await runWorkload(
      stores,
      spansRejuvenation
        ? {
            ...options,
            // Long enough for the first slot's rejuvenation to end within T_D, whatever was asked.
            windowMs: Math.max(
              options.windowMs,
              scheduleOriginMs +
                BENCH_GUARDIAN_RECOVERY_BOUND_MS +
                REJUVENATION_WINDOW_MARGIN_MS -
                attackStartMs,
            ),
          }
        : options,
      excludedFromCpu,
      // The rejoin's view change and the first requests after it belong to what a rejuvenation costs.
      rejuvenations?.ended.then(() => new Promise((resolve) => setTimeout(resolve, AFTER_REJUVENATION_MS))),
    );
    const attackerOperations = clientAttack === null ? null : await clientAttack.stop();
    const { viewChanges, awayFromCulpritAtMs } = await views.stop();
    const rejuvenationInWindow = !options.guardians
      ? null
      : rejuvenations !== null
        ? await rejuvenations.stop()
        : await rejuvenationSince(cluster, culpritReplica, attackStartMs);

    let detection: { atMs: number; by: string } | null = null;
    if (culprit !== null) {
      const records: LogRecord[] = [];
      for (const replica of config.replicas) {
        if (replica.id === culpritReplica) continue;
        try {
          records.push(...parseLogRecords(readFileSync(cluster.replicaLogFile(replica.id), 'utf8')));
        } catch {
          // No log yet: nothing detected there.
        }
      }
      detection = firstDetectionInLogs(records, culprit, attackStartMs);
      if (awayFromCulpritAtMs !== null && (detection === null || awayFromCulpritAtMs < detection.atMs))
        detection = { atMs: awayFromCulpritAtMs, by: 'view change' };
    }
    let rejuvenation: { afterS: number; kind: string } | null = null;
    if (options.guardians && culpritReplica !== null) {
      const report = await cluster.guardianReport(replicaId(culpritReplica), 2000);
      const record = report.up
        ? report.recentRecoveries.find((entry) => entry.startedAtMs >= attackStartMs)
        : undefined;
      if (record !== undefined)
        rejuvenation = {
          afterS: round((record.startedAtMs + record.durationMs - attackStartMs) / 1000, 1),
          kind: record.kind,
        };
    }
    const { measured, whole, cpuAtStart, cpuAtEnd } = workload;
    const perOperation = (micros: (sample: CpuSample) => number): number | null =>
      cpuAtStart === null || cpuAtEnd === null || measured.requests === 0
        ? null
        : Math.round((micros(cpuAtEnd) - micros(cpuAtStart)) / measured.requests);
    const sorted = [...measured.latencies].sort((a, b) => a - b);
    const wholeSorted = [...whole.latencies].sort((a, b) => a - b);
    return {
      ...empty,
      requests: measured.requests,
      completed: workload.completed,
      errors: workload.errors,
      duration_s: round(measured.seconds),
      throughput_ops_s: rate(measured),
      latency_ms_p50: percentile(sorted, 0.5),
      latency_ms_p99: percentile(sorted, 0.99),
      whole_duration_s: round(whole.seconds),
      whole_throughput_ops_s: rate(whole),
      whole_latency_ms_p99: percentile(wholeSorted, 0.99),
      cpu_us_per_op: perOperation((sample) => sample.treeMicros),
      cpu_us_per_op_clients: perOperation((sample) => sample.rootMicros),
      view_changes: viewChanges,
      detected_after_s:
        detection === null ? null : round(Math.max(0, detection.atMs - attackStartMs) / 1000, 1),
      detected_by: detection?.by ?? null,
      rejuvenated_after_s: rejuvenation?.afterS ?? null,
      rejuvenated_by: rejuvenation?.kind ?? null,
      rejuvenation_in_window: rejuvenationInWindow,
      attacker_operations: attackerOperations,
    };
  } catch (error) {
    return { ...empty, error: error instanceof Error ? error.message : String(error) };
  } finally {
    for (const store of stores) await store.client.close().catch(() => undefined);
    await cluster?.stopAll();
    if (process.env.PHALANX_KEEP_BENCH_DIR === '1') options.log(`kept ${directory}`);
    else rmSync(directory, { recursive: true, force: true });
  }
}

/** The fault-free point, then every runnable attack, each on a fresh cluster. */
export async function runAttackBench(options: AttackBenchOptions): Promise<{
  readonly results: AttackResult[];
  readonly skipped: readonly { readonly attack: AttackName; readonly reason: string }[];
}> {
  const n = options.n ?? 3 * options.f + 2 * options.k + 1;
  const shape = { n, f: options.f, k: options.k, guardians: options.guardians };
  const skipped: { attack: AttackName; reason: string }[] = [];
  const runnable: AttackName[] = [];
  for (const attack of options.attacks) {
    const reason = whyNotRunnable(attack, options.guardians);
    if (reason === null) runnable.push(attack);
    else skipped.push({ attack, reason });
  }
  options.log(`fault-free point (n = ${n}${options.guardians ? ', guardians' : ''})`);
  const before = await measurePoint('none', options);
  const attacked: PointMeasurement[] = [];
  for (const attack of runnable) {
    options.log(`attack ${attack}: ${definitionOf(attack).description}`);
    attacked.push(await measurePoint(attack, options));
  }
  options.log('fault-free point again');
  const after = await measurePoint('none', options);
  const reference = faultFreeReference([before, after]);
  const results = [before, ...attacked, after].map((point) => withRatios(point, reference, shape));
  return { results, skipped };
}

/**
 * What the attacks are compared with: the mean of the fault-free points measured first and last
 * (a shared machine drifts during a run; how far the two differ is printed with them, their
 * ratios to this mean). Null when neither measured anything.
 */
export function faultFreeReference(points: readonly PointMeasurement[]): PointMeasurement | null {
  const usable = points.filter((point) => point.error === undefined && point.requests > 0);
  const first = usable[0];
  if (first === undefined) return null;
  const mean = (figure: (point: PointMeasurement) => number): number =>
    usable.reduce((sum, point) => sum + figure(point), 0) / usable.length;
  return {
    ...first,
    throughput_ops_s: mean((point) => point.throughput_ops_s),
    latency_ms_p50: mean((point) => point.latency_ms_p50),
    latency_ms_p99: mean((point) => point.latency_ms_p99),
    whole_throughput_ops_s: mean((point) => point.whole_throughput_ops_s),
    whole_latency_ms_p99: mean((point) => point.whole_latency_ms_p99),
  };
}

/** Longest window of one point. */
const WINDOW_SECONDS: OptionRange = { min: 5, max: 600, unit: 's' };

export function registerAttackBench(bench: Command): void {
  bench
    .command('attack-client <kind>', { hidden: true })
    .description("bench attack's hostile clients (flood or churn), in a process of their own, until SIGTERM")
    .requiredOption('--config <path>', 'cluster configuration')
    .action(async (kind: string, options: { config: string }) => {
      if (kind !== 'flood' && kind !== 'churn') throw new InvalidArgumentError('kind must be flood or churn');
      await runAttackClientProcess(kind, await loadCheckedClusterConfig(options.config));
      process.exit(0);
    });
  // `bench` has its own --clients and --requests: without this (and the program's, main.ts) it
  // takes them from after `attack` too, and the subcommand never sees them (nor `bench recovery`
  // its --clients).
  bench.enablePositionalOptions();
  bench
    .command('attack')
    .description(
      'throughput and latency without faults, then under each attack, each on a fresh local cluster',
    )
    .option(
      '--attacks <names>',
      `comma-separated attacks (default: every one the cluster can run): ${ATTACK_NAMES.join(', ')}`,
      parseAttacks,
    )
    .option(
      '--clients <count>',
      'closed-loop clients measured, one request outstanding each',
      rangedOption('--clients', OPTION_RANGES.benchClients),
      10,
    )
    .option(
      '--requests <count>',
      'measured requests per point',
      rangedOption('--requests', OPTION_RANGES.benchRequests),
      2000,
    )
    .option(
      '--warmup <count>',
      'requests before measuring starts, per point (under attack too)',
      rangedOption('--warmup', OPTION_RANGES.benchWarmupRequests),
    )
    .option(
      '--window <seconds>',
      "longest a point's workload runs: what is not done by then is cut",
      rangedOption('--window', WINDOW_SECONDS),
      30,
    )
    .option(
      '--f <f>',
      'Byzantine replicas tolerated',
      rangedOption('--f', OPTION_RANGES.benchFaultsTolerated),
      1,
    )
    .option(
      '--k <k>',
      'replicas rejuvenated at once (default 1 with --guardians, else 0)',
      rangedOption('--k', OPTION_RANGES.benchRecoveringAtOnce),
    )
    .option('--n <n>', 'replicas (default 3f + 2k + 1)', rangedOption('--n', OPTION_RANGES.replicaCount))
    .option('--guardians', 'run every cluster under guardians, with proactive recovery (the deployed shape)')
    .action(
      async (options: {
        attacks?: AttackName[];
        clients: number;
        requests: number;
        warmup?: number;
        window: number;
        f: number;
        k?: number;
        n?: number;
        guardians?: boolean;
      }) => {
        const guardians = options.guardians === true;
        const k = options.k ?? (guardians ? 1 : 0);
        if (guardians && k < 1) throw new Error('--guardians needs --k of at least 1');
        const attacks =
          options.attacks ?? ATTACK_NAMES.filter((attack) => whyNotRunnable(attack, guardians) === null);
        const { results, skipped } = await runAttackBench({
          f: options.f,
          k,
          ...(options.n === undefined ? {} : { n: options.n }),
          guardians,
          clients: options.clients,
          requests: options.requests,
          warmupRequests: options.warmup ?? Math.min(500, Math.ceil(options.requests / 10)),
          windowMs: options.window * 1000,
          attacks,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        for (const line of attackTable(results)) process.stdout.write(`${line}\n`);
        for (const { attack, reason } of skipped) process.stdout.write(`not run: ${attack}: ${reason}\n`);
        for (const result of results) process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exit(results.some((result) => result.error !== undefined) ? 1 : 0);
      },
    );
}
