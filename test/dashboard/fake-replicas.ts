/**
 * Stand-ins for replica admin endpoints: tiny HTTP servers on 127.0.0.1 that answer GET /status
 * with a status the test controls, or misbehave on purpose, so dashboard tests need no cluster.
 */
import { Buffer } from 'node:buffer';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ReplicaStatus } from '../../src/runtime/status.js';

/**
 * healthy: 200 with the status as JSON.
 * hang: accepts the request and never answers (a replica that stopped responding).
 * malformed: 200 with a body that is not JSON.
 * wrong-shape: 200 with JSON that is not a ReplicaStatus.
 * oversized: 200 with a 1 MiB JSON body and a Content-Length saying so.
 * oversized-chunked: the same without Content-Length, so only counting the bytes catches it.
 * server-error: 500.
 */
export type FakeReplicaBehaviour =
  'healthy' | 'hang' | 'malformed' | 'wrong-shape' | 'oversized' | 'oversized-chunked' | 'server-error';

const OVERSIZED_BODY_BYTES = 1024 * 1024;

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

export class FakeReplica {
  behaviour: FakeReplicaBehaviour = 'healthy';
  private currentStatus: ReplicaStatus;
  private readonly sockets = new Set<Socket>();
  private listening = true;

  private constructor(
    private readonly server: Server,
    /** Base URL of the admin endpoint, e.g. http://127.0.0.1:40111 (what the dashboard is given). */
    readonly url: string,
    status: ReplicaStatus,
  ) {
    this.currentStatus = status;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (request, response) => this.answer(request, response));
  }

  static async start(status: ReplicaStatus): Promise<FakeReplica> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return new FakeReplica(server, `http://127.0.0.1:${port}`, status);
  }

  get status(): ReplicaStatus {
    return this.currentStatus;
  }

  /** Changes what the next GET /status answers. */
  update(changes: Partial<ReplicaStatus>): void {
    this.currentStatus = { ...this.currentStatus, ...changes };
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
    switch (this.behaviour) {
      case 'healthy':
        this.sendJson(response, JSON.stringify(this.currentStatus));
        return;
      case 'hang':
        return;
      case 'malformed':
        this.sendJson(response, '{"replica": 0, "role": "lead');
        return;
      case 'wrong-shape':
        this.sendJson(response, JSON.stringify({ ...this.currentStatus, view: 'seven' }));
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

/** Starts `count` healthy fakes; replica 0 is the leader of view 0. */
export async function startFakeReplicas(count: number): Promise<FakeReplica[]> {
  return Promise.all(
    Array.from({ length: count }, (_, replica) => FakeReplica.start(sampleReplicaStatus(replica))),
  );
}
