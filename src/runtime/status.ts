/**
 * What a replica reports about itself on its admin port (GET /status, JSON), and what the
 * cluster dashboard aggregates (GET /api/cluster). Plain data, so the dashboard page, the CLI
 * `status` command and tests all read the same shape.
 */

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
}
