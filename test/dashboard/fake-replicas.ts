/**
 * Stand-ins for replica and guardian admin endpoints: tiny HTTP servers on 127.0.0.1 that answer
 * GET /status with a status the test controls, or misbehave on purpose, so dashboard tests need
 * no cluster.
 */
import { Buffer } from 'node:buffer';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { GuardianStatus } from '../../src/runtime/guardian-report.js';
import type { ReplicaStatus } from '../../src/runtime/status.js';

/**
 * healthy: 200 with the status as JSON.
 * hang: accepts the request and never answers (an endpoint that stopped responding).
 * malformed: 200 with a body that is not JSON.
 * wrong-shape: 200 with JSON that is not a ReplicaStatus (or GuardianStatus).
 * oversized: 200 with a 1 MiB JSON body and a Content-Length saying so.
 * oversized-chunked: the same without Content-Length, so only counting the bytes catches it.
 * server-error: 500.
 */
export type FakeReplicaBehaviour =
  'healthy' | 'hang' | 'malformed' | 'wrong-shape' | 'oversized' | 'oversized-chunked' | 'server-error';

/** Larger than both the replica and the guardian body limits. */
const OVERSIZED_BODY_BYTES = 1024 * 1024;

/** The timing the fake guardians report: n = 6, f = 1, k = 1 gives T_P = 7·T_D (PRRW). */
export const SAMPLE_RECOVERY = { guaranteeMs: 64_000, recoveryBoundMs: 8_000, periodMs: 56_000 } as const;

export function sampleReplicaStatus(replica: number, overrides: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return {
    replica,
    role: replica === 0 ? 'leader' : 'backup',
    view: 0,
    viewChangeInProgress: false,
    lastExecuted: 1000 + replica,
    stableCheckpoint: 896,
    stateTransferInProgress: false,
    pendingRequests: 3,
    oldestPendingMs: 12,
    leaderTurnaroundMs: replica === 0 ? null : 3,
    leaderTurnaroundExpectationMs: 150,
    msSinceLastExecution: 4,
    voting: true,
    requestsExecuted: 52_000,
    throughputPerSecond: 850 + 10 * replica,
    keyEpoch: 2,
    connectedPeers: 3,
    uptimeSeconds: 3725,
    address: `127.0.0.1:${7000 + replica}`,
    storageEngine: 'memory',
    ...overrides,
  };
}

/**
 * A guardian `replica` at rest: key epoch 2 (as in sampleReplicaStatus),
 * rejuvenated 41 s + 4 s per replica id ago (all within T = 64 s), one earlier proactive recovery of 2.5 s on record.
 */
export function sampleGuardianStatus(
  replica: number,
  nowMs: number,
  overrides: Partial<GuardianStatus> = {},
): GuardianStatus {
  const exposureMs = 41_000 + 4_000 * replica;
  const lastRejuvenationAtMs = nowMs - exposureMs;
  return {
    replica,
    keyEpoch: 2,
    replicaProcess: 'running',
    recovery: {
      inProgress: false,
      kind: null,
      reason: null,
      step: null,
      startedAtMs: null,
      stepStartedAtMs: null,
    },
    lastRejuvenationAtMs,
    exposureMs,
    ...SAMPLE_RECOVERY,
    nextProactiveAtMs: lastRejuvenationAtMs + SAMPLE_RECOVERY.periodMs,
    recentRecoveries: [
      {
        kind: 'proactive',
        reason: 'scheduled',
        startedAtMs: lastRejuvenationAtMs - 2_500,
        durationMs: 2_500,
        steps: [
          { step: 'stopping', durationMs: 100 },
          { step: 'verifying-code', durationMs: 300 },
          { step: 'issuing-keys', durationMs: 100 },
          { step: 'starting', durationMs: 400 },
          { step: 'validating-state', durationMs: 600 },
          { step: 'transferring-state', durationMs: 500 },
          { step: 'replaying-log', durationMs: 300 },
          { step: 'rejoining', durationMs: 200 },
        ],
        exceededBound: false,
        keyEpoch: 2,
      },
    ],
    alarms: [],
    evidence: [],
    suspicions: [],
    connectedGuardians: 5,
    pendingReactive: [],
    faultyReplicas: { f: 1, counted: [], proven: [] },
    safeMode: null,
    // Fake guardians never rotate: far enough ahead to outlast any test.
    keyEpochAcceptedUntilMs: nowMs + SAMPLE_RECOVERY.periodMs,
    trustBoundary: {
      enforced: true,
      reason: `replica ${replica} runs as phalanx-replica-${replica} (uid 990)`,
    },
    ...overrides,
  };
}

/** An admin endpoint answering GET /status with a status of type `Status` the test controls. */
export class FakeStatusEndpoint<Status extends object> {
  behaviour: FakeReplicaBehaviour = 'healthy';
  private currentStatus: Status;
  /** Changes each answer at the moment it is sent (for figures that grow with time). */
  private live: ((status: Status) => Status) | null = null;
  /**
   * Moves the status itself on by the time since the previous answer (a replica's executed-request
   * counter grows at its rate), so the change persists; null: the status stays as set.
   */
  private tick: ((status: Status, elapsedMs: number) => Status) | null = null;
  private tickedAtMs = Date.now();
  private readonly sockets = new Set<Socket>();
  private listening = true;

  private constructor(
    private readonly server: Server,
    /** Base URL of the admin endpoint, e.g. http://127.0.0.1:40111 (what the dashboard is given). */
    readonly url: string,
    status: Status,
    /** What the 'wrong-shape' behaviour sends: the status with one field of the wrong type. */
    private readonly wrongShape: (status: Status) => unknown,
  ) {
    this.currentStatus = status;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (request, response) => this.answer(request, response));
  }

  static async start<Status extends object>(
    status: Status,
    wrongShape: (status: Status) => unknown,
  ): Promise<FakeStatusEndpoint<Status>> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return new FakeStatusEndpoint(server, `http://127.0.0.1:${port}`, status, wrongShape);
  }

  get status(): Status {
    return this.currentStatus;
  }

  /** Changes what the next GET /status answers. */
  update(changes: Partial<Status>): void {
    this.currentStatus = { ...this.currentStatus, ...changes };
  }

  /** From now on, every answer first moves the status on with `advance` (null: it stays as set). */
  advanceWith(advance: ((status: Status, elapsedMs: number) => Status) | null): void {
    this.tick = advance;
    this.tickedAtMs = Date.now();
  }

  /** Every answer from now on is `answer(status)`, computed when sent; null: the status as set. */
  answerWith(answer: ((status: Status) => Status) | null): void {
    this.live = answer;
  }

  /** Stops listening and drops every connection: the dashboard then sees connection refused. */
  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    if (request.method !== 'GET' || request.url !== '/status') {
      response.writeHead(404).end();
      return;
    }
    if (this.tick !== null) {
      const now = Date.now();
      this.currentStatus = this.tick(this.currentStatus, now - this.tickedAtMs);
      this.tickedAtMs = now;
    }
    switch (this.behaviour) {
      case 'healthy':
        this.sendJson(
          response,
          JSON.stringify(this.live === null ? this.currentStatus : this.live(this.currentStatus)),
        );
        return;
      case 'hang':
        return;
      case 'malformed':
        this.sendJson(response, '{"replica": 0, "role": "lead');
        return;
      case 'wrong-shape':
        this.sendJson(response, JSON.stringify(this.wrongShape(this.currentStatus)));
        return;
      case 'oversized':
        this.sendJson(response, `"${'x'.repeat(OVERSIZED_BODY_BYTES)}"`);
        return;
      case 'oversized-chunked': {
        response.writeHead(200, { 'content-type': 'application/json' });
        const piece = 'x'.repeat(16 * 1024);
        response.write('"');
        for (let written = 0; written < OVERSIZED_BODY_BYTES; written += piece.length) response.write(piece);
        response.end('"');
        return;
      }
      case 'server-error':
        response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
        return;
    }
  }

  private sendJson(response: ServerResponse, body: string): void {
    response.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  }
}

export type FakeReplica = FakeStatusEndpoint<ReplicaStatus>;
export type FakeGuardian = FakeStatusEndpoint<GuardianStatus>;

/**
 * Makes a fake replica stop progressing from now on: `pendingRequests` requests wait, the oldest
 * one a little longer with every answer, while `lastExecuted` stays where it is and the time since
 * the last execution grows alike (a cluster stuck in a view change, as its replicas report it).
 */
export function stopProgress(fake: FakeReplica, pendingRequests = 40): void {
  const stoppedAt = Date.now();
  const { oldestPendingMs, msSinceLastExecution } = fake.status;
  fake.update({ pendingRequests, throughputPerSecond: 0 });
  fake.answerWith((status) => {
    const stalledForMs = Date.now() - stoppedAt;
    return {
      ...status,
      oldestPendingMs: (oldestPendingMs ?? 0) + stalledForMs,
      msSinceLastExecution: (msSinceLastExecution ?? 0) + stalledForMs,
    };
  });
}

/** Undoes stopProgress: the replica executes again, with the sample's figures. */
export function resumeProgress(fake: FakeReplica): void {
  const sample = sampleReplicaStatus(fake.status.replica);
  fake.answerWith(null);
  fake.update({
    lastExecuted: fake.status.lastExecuted + 1,
    pendingRequests: sample.pendingRequests,
    oldestPendingMs: sample.oldestPendingMs,
    msSinceLastExecution: sample.msSinceLastExecution,
    throughputPerSecond: sample.throughputPerSecond,
  });
}

/**
 * A fake replica's executed-request counter grows at the rate it reports, as a real one's does
 * (the dashboard measures the committed rate from the counters). Fractions are carried over.
 */
function executingAtReportedRate(): (status: ReplicaStatus, elapsedMs: number) => ReplicaStatus {
  let carried = 0;
  return (status, elapsedMs) => {
    const executed = carried + (status.throughputPerSecond * elapsedMs) / 1000;
    carried = executed - Math.floor(executed);
    return { ...status, requestsExecuted: status.requestsExecuted + Math.floor(executed) };
  };
}

/** Starts `count` healthy fakes; replica 0 is the leader of view 0. */
export async function startFakeReplicas(count: number): Promise<FakeReplica[]> {
  const fakes = await Promise.all(
    Array.from({ length: count }, (_, replica) =>
      FakeStatusEndpoint.start(sampleReplicaStatus(replica), (status) => ({ ...status, view: 'seven' })),
    ),
  );
  for (const fake of fakes) fake.advanceWith(executingAtReportedRate());
  return fakes;
}

/** Starts `count` healthy guardians at rest (sampleGuardianStatus), one per replica id. */
export async function startFakeGuardians(count: number, nowMs = Date.now()): Promise<FakeGuardian[]> {
  return Promise.all(
    Array.from({ length: count }, (_, replica) =>
      FakeStatusEndpoint.start(sampleGuardianStatus(replica, nowMs), (status) => ({
        ...status,
        recovery: { ...status.recovery, step: 'dancing' },
      })),
    ),
  );
}
