/**
 * What a replica reports about itself on its admin port (GET /status, JSON), and what the
 * cluster dashboard aggregates (GET /api/cluster). Plain data, so the dashboard page, the CLI
 * `status` command and tests all read the same shape.
 */
import type { GuardianReport } from '../recovery/status.js';

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
