/**
 * Protocol parameters of the core. Runtime and simulator build one from the user's configuration;
 * `protocolConfigProblems` says, in words, what is wrong with a bad one.
 */
import { CLIENT_TABLE_LIMITS } from './client-table.js';
import { type FaultModel, faultModelProblems } from './quorum.js';

export interface StateTransferConfig {
  /** A source that sends nothing useful for this long is dropped and its chunks re-assigned. */
  readonly sourceTimeoutMs: number;
  /** Chunk indices asked for in one request. */
  readonly chunksPerRequest: number;
  /** Requests in flight to one source at once. */
  readonly maxRequestsInFlightPerSource: number;
}

export interface ProtocolConfig extends FaultModel {
  /** K: a checkpoint is taken after every K-th batch. */
  readonly checkpointInterval: number;
  /** L: sequence numbers above the last stable checkpoint that may be in progress (a multiple of K, ≥ 2K). */
  readonly logWindow: number;
  /** Batches the leader keeps in flight (proposed but not yet executed). */
  readonly pipelineDepth: number;
  readonly maxBatchRequests: number;
  readonly maxBatchBytes: number;
  /** Ordered requests waiting at a replica, over all clients. */
  readonly maxPendingRequests: number;
  /** Requests one client may have outstanding; also the size of its reply cache. */
  readonly maxOutstandingPerClient: number;
  /** A request not executed this long after it arrived makes the replica suspect the leader. */
  readonly requestTimeoutMs: number;
  /**
   * Lowest turnaround expectation of a leader's proposals (see leader-pace.ts): a leader whose
   * median turnaround exceeds max(this, 4 × the best recent view's) is replaced long before the
   * request timeout. A tenth of it is the grace of the batch-fill check (leader-pace.ts). 0 turns
   * both checks off.
   */
  readonly leaderTurnaroundFloorMs: number;
  /**
   * Regular leader rotation (an option, in the spirit of Aardvark): the view changes every this
   * many stable checkpoints of one view, whatever its leader does, so that no leader keeps the
   * role long enough to shape the order at leisure. 0 (the default) turns it off.
   */
  readonly leaderRotationCheckpoints: number;
  /**
   * A view change asked for by a guardian (leader handoff, rejoin after a rejuvenation) waits up
   * to this long for the next stable checkpoint, so the new view has little to re-propose; 0 starts it at once.
   */
  readonly plannedViewChangeWaitMs: number;
  /** First timeout for a view change to complete; doubles with every further attempt. */
  readonly viewChangeTimeoutMs: number;
  /** Period of retransmissions of a replica's own protocol messages for stalled work. */
  readonly retransmitIntervalMs: number;
  /** Period of STATUS messages that let peers help a replica that fell behind. */
  readonly statusIntervalMs: number;
  /** A replica behind a certified checkpoint that makes no progress this long fetches state. */
  readonly catchUpTimeoutMs: number;
  readonly stateTransfer: StateTransferConfig;
  /** Stable checkpoints whose chunks are kept to serve state transfers. */
  readonly retainedCheckpoints: number;
  /** Number of chunks the client table (exactly-once records and cached replies) is split into. */
  readonly clientTableChunks: number;
  /** When true the leader proposes only requests whose client signature verifies (Aardvark). */
  readonly requireClientSignatures: boolean;
}

export function defaultProtocolConfig(model: FaultModel): ProtocolConfig {
  return {
    ...model,
    checkpointInterval: 128,
    logWindow: 512,
    pipelineDepth: 1,
    maxBatchRequests: 1024,
    maxBatchBytes: 2 * 1024 * 1024,
    maxPendingRequests: 65536,
    maxOutstandingPerClient: 64,
    requestTimeoutMs: 2000,
    leaderTurnaroundFloorMs: 150,
    leaderRotationCheckpoints: 0,
    viewChangeTimeoutMs: 2000,
    plannedViewChangeWaitMs: 1000,
    retransmitIntervalMs: 250,
    statusIntervalMs: 500,
    catchUpTimeoutMs: 1000,
    stateTransfer: { sourceTimeoutMs: 1000, chunksPerRequest: 16, maxRequestsInFlightPerSource: 4 },
    retainedCheckpoints: 3,
    clientTableChunks: 16,
    requireClientSignatures: false,
  };
}

function positiveInteger(problems: string[], name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1)
    problems.push(`${name} must be a positive integer, got ${value}`);
}

export function protocolConfigProblems(config: ProtocolConfig): string[] {
  const problems = faultModelProblems(config);
  positiveInteger(problems, 'checkpointInterval', config.checkpointInterval);
  positiveInteger(problems, 'logWindow', config.logWindow);
  positiveInteger(problems, 'pipelineDepth', config.pipelineDepth);
  positiveInteger(problems, 'maxBatchRequests', config.maxBatchRequests);
  positiveInteger(problems, 'maxBatchBytes', config.maxBatchBytes);
  positiveInteger(problems, 'maxPendingRequests', config.maxPendingRequests);
  positiveInteger(problems, 'maxOutstandingPerClient', config.maxOutstandingPerClient);
  if (config.maxOutstandingPerClient > CLIENT_TABLE_LIMITS.maxWindow)
    problems.push(
      `maxOutstandingPerClient must be at most ${CLIENT_TABLE_LIMITS.maxWindow} (CLIENT_TABLE_LIMITS.maxWindow), got ${config.maxOutstandingPerClient}`,
    );
  if (config.clientTableChunks > CLIENT_TABLE_LIMITS.maxBuckets)
    problems.push(
      `clientTableChunks must be at most ${CLIENT_TABLE_LIMITS.maxBuckets} (CLIENT_TABLE_LIMITS.maxBuckets), got ${config.clientTableChunks}`,
    );
  positiveInteger(problems, 'requestTimeoutMs', config.requestTimeoutMs);
  if (!Number.isSafeInteger(config.leaderTurnaroundFloorMs) || config.leaderTurnaroundFloorMs < 0)
    problems.push(
      `leaderTurnaroundFloorMs must be a non-negative integer (0: off), got ${config.leaderTurnaroundFloorMs}`,
    );
  if (!Number.isSafeInteger(config.leaderRotationCheckpoints) || config.leaderRotationCheckpoints < 0)
    problems.push(
      `leaderRotationCheckpoints must be a non-negative integer (0: off), got ${config.leaderRotationCheckpoints}`,
    );
  positiveInteger(problems, 'viewChangeTimeoutMs', config.viewChangeTimeoutMs);
  if (!Number.isSafeInteger(config.plannedViewChangeWaitMs) || config.plannedViewChangeWaitMs < 0)
    problems.push(
      `plannedViewChangeWaitMs must be a non-negative integer, got ${config.plannedViewChangeWaitMs}`,
    );
  positiveInteger(problems, 'retransmitIntervalMs', config.retransmitIntervalMs);
  positiveInteger(problems, 'statusIntervalMs', config.statusIntervalMs);
  positiveInteger(problems, 'catchUpTimeoutMs', config.catchUpTimeoutMs);
  positiveInteger(problems, 'stateTransfer.sourceTimeoutMs', config.stateTransfer.sourceTimeoutMs);
  positiveInteger(problems, 'stateTransfer.chunksPerRequest', config.stateTransfer.chunksPerRequest);
  positiveInteger(
    problems,
    'stateTransfer.maxRequestsInFlightPerSource',
    config.stateTransfer.maxRequestsInFlightPerSource,
  );
  positiveInteger(problems, 'retainedCheckpoints', config.retainedCheckpoints);
  positiveInteger(problems, 'clientTableChunks', config.clientTableChunks);
  if (
    Number.isSafeInteger(config.logWindow) &&
    Number.isSafeInteger(config.checkpointInterval) &&
    (config.logWindow % config.checkpointInterval !== 0 || config.logWindow < 2 * config.checkpointInterval)
  ) {
    problems.push(
      `logWindow (${config.logWindow}) must be a multiple of checkpointInterval (${config.checkpointInterval}) ` +
        'and at least twice it, so the leader can keep proposing while a checkpoint becomes stable',
    );
  }
  return problems;
}
