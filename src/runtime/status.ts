/**
 * What a replica reports about itself on its admin port (GET /status, JSON), and what the
 * cluster dashboard aggregates (GET /api/cluster). Plain data, so the dashboard page, the CLI
 * `status` command and tests all read the same shape, fetched by `fetchStatusReport`.
 */
import type { GuardianReport } from './guardian-report.js';

export type ReplicaRole = 'leader' | 'backup';

export interface ReplicaStatus {
  readonly replica: number;
  readonly role: ReplicaRole;
  readonly view: number;
  readonly viewChangeInProgress: boolean;
  readonly lastExecuted: number;
  readonly stableCheckpoint: number;
  readonly stateTransferInProgress: boolean;
  readonly pendingRequests: number;
  /** How long the oldest client request waiting here has waited, in ms; null when none waits. */
  readonly oldestPendingMs: number | null;
  /**
   * Median turnaround of the current leader's last proposals as this replica measured it (ms;
   * null: too few yet, or this replica leads), and the most it expects (the leader is replaced
   * above it). See "Leader pace" in docs/ARCHITECTURE.md.
   */
  readonly leaderTurnaroundMs: number | null;
  readonly leaderTurnaroundExpectationMs: number;
  /**
   * Median number of clients the current leader's last batches with room left out, as this
   * replica counted them (null: too few yet, or this replica leads), and the median at which it
   * replaces the leader. See "Batch fill" in docs/ARCHITECTURE.md. Absent from older replicas.
   */
  readonly leaderLeftOutClients?: number | null;
  readonly leaderLeftOutClientsLimit?: number;
  /** Milliseconds since this replica last executed a batch; null when it has executed none since it started. */
  readonly msSinceLastExecution: number | null;
  /** Whether it takes part in votes (false while it sits out views after a restart or rejuvenation). */
  readonly voting: boolean;
  /**
   * In safe mode: it holds proof that more than f replicas misbehaved (a fork), executes nothing
   * and refuses writes (docs/intrusion-tolerance.md, Beyond f). Absent from older replicas.
   */
  readonly safeMode?: boolean;
  /** The replicas the fork proof names (signed both roots); present in safe mode only. */
  readonly safeModeCulprits?: readonly number[];
  /** Client requests executed since the process started. */
  readonly requestsExecuted: number;
  /** Requests executed per second over the last few seconds. */
  readonly throughputPerSecond: number;
  readonly keyEpoch: number;
  readonly connectedPeers: number;
  readonly uptimeSeconds: number;
  /** Payload address, host:port. */
  readonly address: string;
  readonly storageEngine: string;
}

export type ReplicaReport =
  | ({ readonly up: true } & ReplicaStatus)
  | { readonly up: false; readonly replica: number; readonly error: string };

/** Largest replica /status body a reader accepts (the admin port answers far less). */
export const MAX_REPLICA_STATUS_BYTES = 64 * 1024;

/** Largest guardian /status body a reader accepts: its records and alarms are bounded lists. */
export const MAX_GUARDIAN_STATUS_BYTES = 1024 * 1024;

/**
 * GET `url` (an admin port's /status) as a report on `replica`: the parsed body, or why there is
 * none (unreachable, an HTTP error, a body over `maxBytes`, or not JSON).
 */
export async function fetchStatusReport<Status extends object>(
  replica: number,
  url: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<
  ({ readonly up: true } & Status) | { readonly up: false; readonly replica: number; readonly error: string }
> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) {
      await response.body?.cancel();
      return { up: false, replica, error: `HTTP ${response.status}` };
    }
    const tooLarge = { up: false, replica, error: `status larger than ${maxBytes} bytes` } as const;
    // A declared length over the limit is refused unread; an undeclared one is checked once read.
    if (Number(response.headers.get('content-length') ?? 0) > maxBytes) {
      await response.body?.cancel();
      return tooLarge;
    }
    const body = await response.text();
    if (body.length > maxBytes) return tooLarge;
    return { up: true, ...(JSON.parse(body) as Status) };
  } catch (error) {
    return { up: false, replica, error: error instanceof Error ? error.message : String(error) };
  }
}

export interface ClusterStatus {
  readonly n: number;
  readonly f: number;
  readonly k: number;
  /** Milliseconds since the epoch when the dashboard server assembled this. */
  readonly collectedAt: number;
  readonly replicas: readonly ReplicaReport[];
  /** One report per replica's guardian (index = replica id); present when guardians are watched. */
  readonly guardians?: readonly GuardianReport[];
  /** The configured recovery timing; present when the dashboard was given it. */
  readonly recovery?: RecoveryParameters;
}

/** The recovery timing a cluster promises (docs/intrusion-tolerance.md). */
export interface RecoveryParameters {
  /** T = T_P + T_D: the longest any replica may go without a rejuvenation. */
  readonly guaranteeMs: number;
  /** T_D: the bound on one recovery. */
  readonly recoveryBoundMs: number;
  /** T_P: every replica is rejuvenated at least once per period. */
  readonly periodMs: number;
}
