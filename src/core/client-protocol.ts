/**
 * The client side of the protocol as a pure state machine, shared by the real client library and
 * the simulator's clients: request numbering, reply voting, retransmission, and the read-only
 * fast path with its fallback to ordering.
 *
 * Voting. An ordered request completes with Q = quorumSize(n, f) matching replies, and a read-only
 * request completes on the fast path with Q matching replies too. Two such sets share at least
 * f + 1 replicas, so at least one correct replica that executed every completed write is among any
 * fast read's repliers; if the others answer from an older state the answers do not match and
 * the read falls back to the ordered path. That is what makes fast reads linearizable.
 *
 * Usage:
 * ```ts
 * const session = new ClientSession(config, clientId, (unsigned) => crypto.authenticate(unsigned));
 * const { actions } = session.invoke(operation, { readOnly: false }, now);
 * // send the requests in `actions`; feed replies to session.onReply(reply, now), ticks to session.tick(now)
 * ```
 */
import type { ClientRequest, Reply, ReplyStatus } from '../messages/types.js';
import {
  assert,
  bytesEqual,
  type ClientId,
  type ReplicaId,
  replicaId,
  requestNumber,
  type SequenceNumber,
} from './ids.js';
import { type FaultModel, quorumSize } from './quorum.js';

export interface ClientProtocolConfig extends FaultModel {
  /** First retransmission after this long without enough replies; doubles up to the maximum. */
  readonly retransmitTimeoutMs: number;
  readonly maxRetransmitTimeoutMs: number;
  /** A fast read that has no matching quorum after this long falls back to ordering. */
  readonly readOnlyTimeoutMs: number;
  /** Requests in flight at once. */
  readonly maxOutstanding: number;
  /**
   * The replicas' maxOutstandingPerClient: they cache replies of that many recent request numbers
   * only, so a new number is never more than this above the oldest unanswered one.
   */
  readonly replyWindow: number;
}

/** The request without its authenticator; the caller's `authenticate` adds MACs (and a signature). */
export type UnauthenticatedRequest = Omit<ClientRequest, 'authenticator' | 'signature'>;

export type ClientAction =
  /** Send to every replica. */
  | { readonly kind: 'send-all'; readonly request: ClientRequest }
  /** Send to one replica (the leader the client believes in). */
  | { readonly kind: 'send'; readonly to: ReplicaId; readonly request: ClientRequest }
  | {
      readonly kind: 'complete';
      /** The number the caller got from invoke(); a fallen-back read completes under it too. */
      readonly invocation: number;
      readonly status: ReplyStatus;
      readonly result: Uint8Array;
      readonly sequence: SequenceNumber;
      /** true when answered by the read-only fast path. */
      readonly fastPath: boolean;
    };

interface Outstanding {
  readonly invocation: number;
  readonly operation: Uint8Array;
  request: ClientRequest;
  readOnly: boolean;
  /** Latest reply of each replica. */
  readonly replies: Map<ReplicaId, Reply>;
  sentAt: number;
  retransmitTimeoutMs: number;
  readonly startedAt: number;
}

export class ClientSession {
  readonly clientId: ClientId;
  readonly #config: ClientProtocolConfig;
  readonly #authenticate: (request: UnauthenticatedRequest) => ClientRequest;
  readonly #quorum: number;
  #nextRequestNumber: number;
  #nextInvocation = 1;
  /** By request number. */
  readonly #outstanding = new Map<number, Outstanding>();
  /** Highest view seen in replies: informational (which replica leads). */
  #view = 0;

  constructor(
    config: ClientProtocolConfig,
    clientId: ClientId,
    authenticate: (request: UnauthenticatedRequest) => ClientRequest,
    firstRequestNumber = 1,
  ) {
    assert(firstRequestNumber >= 1, 'request numbers start at 1');
    this.#config = config;
    this.clientId = clientId;
    this.#authenticate = authenticate;
    this.#quorum = quorumSize(config);
    this.#nextRequestNumber = firstRequestNumber;
  }

  get outstanding(): number {
    return this.#outstanding.size;
  }
  get canInvoke(): boolean {
    if (this.#outstanding.size >= this.#config.maxOutstanding) return false;
    let oldest = Number.POSITIVE_INFINITY;
    for (const number of this.#outstanding.keys()) if (number < oldest) oldest = number;
    // A fast-read fallback takes a fresh number too, so keep one in reserve.
    return this.#nextRequestNumber + 1 - oldest < this.#config.replyWindow;
  }
  get view(): number {
    return this.#view;
  }
  /** The next request number this session will use (persist it to survive a client restart). */
  get nextRequestNumber(): number {
    return this.#nextRequestNumber;
  }

  invoke(
    operation: Uint8Array,
    options: { readonly readOnly: boolean },
    now: number,
  ): { invocation: number; actions: ClientAction[] } {
    assert(this.canInvoke, 'too many requests outstanding');
    const invocation = this.#nextInvocation++;
    const outstanding = this.#start(invocation, operation, options.readOnly, now, now);
    return { invocation, actions: [this.#firstSend(outstanding.request)] };
  }

  #start(
    invocation: number,
    operation: Uint8Array,
    readOnly: boolean,
    now: number,
    startedAt: number,
  ): Outstanding {
    const number = requestNumber(this.#nextRequestNumber++);
    const request = this.#authenticate({
      kind: 'request',
      clientId: this.clientId,
      requestNumber: number,
      readOnly,
      operation,
    });
    const outstanding: Outstanding = {
      invocation,
      operation,
      request,
      readOnly,
      replies: new Map(),
      sentAt: now,
      retransmitTimeoutMs: readOnly ? this.#config.readOnlyTimeoutMs : this.#config.retransmitTimeoutMs,
      startedAt,
    };
    this.#outstanding.set(number, outstanding);
    return outstanding;
  }

  onReply(reply: Reply, now: number): ClientAction[] {
    if (reply.clientId !== this.clientId || reply.replicaId >= this.#config.n) return [];
    const outstanding = this.#outstanding.get(reply.requestNumber);
    if (outstanding === undefined || reply.readOnly !== outstanding.readOnly) return [];
    if (reply.view > this.#view) this.#view = reply.view;
    outstanding.replies.set(reply.replicaId, reply);
    const best = this.#largestMatchingSet(outstanding);
    if (best.count >= this.#quorum) {
      this.#outstanding.delete(reply.requestNumber);
      return [
        {
          kind: 'complete',
          invocation: outstanding.invocation,
          status: best.reply.status,
          result: best.reply.result,
          sequence: best.reply.sequence,
          fastPath: outstanding.readOnly,
        },
      ];
    }
    if (outstanding.readOnly) {
      const undecided = this.#config.n - outstanding.replies.size;
      if (best.count + undecided < this.#quorum) return this.#fallBack(reply.requestNumber, outstanding, now);
    }
    return [];
  }

  tick(now: number): ClientAction[] {
    const actions: ClientAction[] = [];
    for (const [number, outstanding] of [...this.#outstanding]) {
      if (now - outstanding.sentAt < outstanding.retransmitTimeoutMs) continue;
      if (outstanding.readOnly) {
        actions.push(...this.#fallBack(number, outstanding, now));
        continue;
      }
      // Re-authenticate: replicas may have moved to new key epochs since the first send.
      outstanding.request = this.#authenticate({
        kind: 'request',
        clientId: this.clientId,
        requestNumber: outstanding.request.requestNumber,
        readOnly: false,
        operation: outstanding.operation,
      });
      outstanding.sentAt = now;
      outstanding.retransmitTimeoutMs = Math.min(
        outstanding.retransmitTimeoutMs * 2,
        this.#config.maxRetransmitTimeoutMs,
      );
      actions.push({ kind: 'send-all', request: outstanding.request });
    }
    return actions;
  }

  /** Drops a request the caller gave up on; its number is never reused. */
  abandon(invocation: number): void {
    for (const [number, outstanding] of this.#outstanding) {
      if (outstanding.invocation === invocation) this.#outstanding.delete(number);
    }
  }

  #fallBack(number: number, outstanding: Outstanding, now: number): ClientAction[] {
    this.#outstanding.delete(number);
    const ordered = this.#start(
      outstanding.invocation,
      outstanding.operation,
      false,
      now,
      outstanding.startedAt,
    );
    return [this.#firstSend(ordered.request)];
  }

  /**
   * As in PBFT, an ordered request goes first to the leader only (every replica that receives a
   * request pays to decrypt, decode and queue it; backups check the copy inside the leader's
   * proposal by its MAC instead). A retransmission goes to all, so a leader that drops requests
   * is suspected by the backups. A read-only request goes to all: each replica answers it.
   */
  #firstSend(request: ClientRequest): ClientAction {
    if (request.readOnly) return { kind: 'send-all', request };
    return { kind: 'send', to: replicaId(this.#view % this.#config.n), request };
  }

  #largestMatchingSet(outstanding: Outstanding): { count: number; reply: Reply } {
    let best: { count: number; reply: Reply } | null = null;
    const replies = [...outstanding.replies.values()];
    for (const candidate of replies) {
      let count = 0;
      for (const other of replies) {
        if (other.status === candidate.status && bytesEqual(other.result, candidate.result)) count++;
      }
      if (best === null || count > best.count) best = { count, reply: candidate };
    }
    assert(best !== null, 'voting without replies');
    return best;
  }
}
