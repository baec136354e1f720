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
import type { ClientRequest, Evidence, Reply, ReplyStatus } from '../messages/types.js';
import {
  assert,
  bytesEqual,
  type ClientId,
  type KeyEpoch,
  type ReplicaId,
  requestNumber,
  type SequenceNumber,
} from '../messages/ids.js';
import { type FaultModel, correctWitnessSize, quorumSize } from './quorum.js';
import { isSafeModeRefusal } from './forensics.js';

/** Completed requests remembered to catch a lying reply that arrives after the quorum. */
const MAX_REMEMBERED_COMPLETIONS = 256;

function sameAnswer(a: Reply, b: Reply): boolean {
  return a.status === b.status && bytesEqual(a.result, b.result);
}

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
  /** Proof that a replica lied: hand it to the replicas (their guardians act on it). */
  | { readonly kind: 'report-evidence'; readonly evidence: Evidence }
  | {
      readonly kind: 'complete';
      /** The number the caller got from invoke(); a fallen-back read completes under it too. */
      readonly invocation: number;
      readonly status: ReplyStatus;
      readonly result: Uint8Array;
      readonly sequence: SequenceNumber;
      /** true when answered by the read-only fast path. */
      readonly fastPath: boolean;
      /**
       * f + 1 replicas (one of them correct) refused it in safe mode: they hold proof that more
       * than f replicas misbehaved (docs/intrusion-tolerance.md, Beyond f). Status is 'error'.
       */
      readonly safeMode?: true;
      /**
       * A read answered alike by Q replicas, f + 1 of them (one correct) in safe mode: the answer is
       * the certified state of their last stable checkpoint (`sequence`), signed, and may be older
       * than writes already acknowledged. `snapshotReplies` are those f + 1 or more signed replies.
       * Status is the replicas' own.
       */
      readonly safeModeSnapshot?: true;
      readonly snapshotReplies?: readonly Reply[];
    };

/** What an abandoned invocation had when the client gave up on it. */
export interface AbandonedInvocation {
  readonly requestNumber: number;
  readonly readOnly: boolean;
  /** Replicas whose reply arrived (any answer). */
  readonly repliedBy: readonly ReplicaId[];
  /** The most replies that agreed. */
  readonly largestMatching: number;
  /** Matching replies a result needs. */
  readonly needed: number;
}

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
  /** Recently completed ordered requests with the quorum of signed replies that certified them. */
  readonly #completed = new Map<number, { certified: Reply[]; reported: Set<number> }>();
  /**
   * Replicas this client proved lying, with the key epoch the proof was made under: their replies
   * are not counted (nor checked again) until the client learns of a later epoch of theirs
   * (`replicaRejuvenated`), so one liar costs one report, not one per request.
   */
  readonly #cutOff = new Map<number, KeyEpoch>();

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

  /** The replicas whose replies this session does not count now, with the key epoch of the proof. */
  get cutOff(): ReadonlyMap<number, KeyEpoch> {
    return this.#cutOff;
  }

  /** `replica` now has key epoch `epoch` (a certificate the client verified): a cut-off under an older one ends. */
  replicaRejuvenated(replica: ReplicaId, epoch: KeyEpoch): void {
    const provenUnder = this.#cutOff.get(replica);
    if (provenUnder !== undefined && epoch > provenUnder) this.#cutOff.delete(replica);
  }

  onReply(reply: Reply, now: number): ClientAction[] {
    if (reply.clientId !== this.clientId || reply.replicaId >= this.#config.n) return [];
    if (this.#cutOff.has(reply.replicaId)) return [];
    const outstanding = this.#outstanding.get(reply.requestNumber);
    if (outstanding === undefined) return this.#checkLateReply(reply);
    if (reply.readOnly !== outstanding.readOnly) return [];
    if (reply.view > this.#view) this.#view = reply.view;
    outstanding.replies.set(reply.replicaId, reply);
    if (isSafeModeRefusal(reply)) {
      let refusals = 0;
      for (const other of outstanding.replies.values()) if (isSafeModeRefusal(other)) refusals++;
      if (refusals >= correctWitnessSize(this.#config)) {
        this.#outstanding.delete(reply.requestNumber);
        return [
          {
            kind: 'complete',
            invocation: outstanding.invocation,
            status: 'error',
            result: reply.result,
            sequence: reply.sequence,
            fastPath: false,
            safeMode: true,
          },
        ];
      }
    }
    const best = this.#largestMatchingSet(outstanding);
    if (best.count >= this.#quorum) {
      this.#outstanding.delete(reply.requestNumber);
      const snapshot = outstanding.readOnly ? this.#safeModeSnapshot(outstanding, best.reply) : null;
      if (snapshot !== null) return [{ ...snapshot, invocation: outstanding.invocation }];
      const actions: ClientAction[] = [
        {
          kind: 'complete',
          invocation: outstanding.invocation,
          status: best.reply.status,
          result: best.reply.result,
          sequence: best.reply.sequence,
          fastPath: outstanding.readOnly,
        },
      ];
      if (!outstanding.readOnly) {
        const certified = [...outstanding.replies.values()].filter(
          (candidate) => sameAnswer(candidate, best.reply) && candidate.proof !== null,
        );
        if (certified.length >= this.#quorum) {
          this.#completed.set(reply.requestNumber, {
            certified: certified.slice(0, this.#quorum),
            reported: new Set(),
          });
          while (this.#completed.size > MAX_REMEMBERED_COMPLETIONS)
            this.#completed.delete(this.#completed.keys().next().value!);
          for (const other of outstanding.replies.values()) actions.push(...this.#checkLateReply(other));
        }
      }
      return actions;
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
  /**
   * Gives up on an invocation; returns what it had gathered (for the error the caller reports),
   * or null if it was not outstanding.
   */
  abandon(invocation: number): AbandonedInvocation | null {
    let abandoned: AbandonedInvocation | null = null;
    for (const [number, outstanding] of this.#outstanding) {
      if (outstanding.invocation !== invocation) continue;
      this.#outstanding.delete(number);
      abandoned = {
        requestNumber: number,
        readOnly: outstanding.readOnly,
        repliedBy: [...outstanding.replies.keys()].sort((a, b) => a - b),
        largestMatching: outstanding.replies.size === 0 ? 0 : this.#largestMatchingSet(outstanding).count,
        needed: this.#quorum,
      };
    }
    return abandoned;
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
   * Every request goes to every replica, as in BFT-SMaRt. A read-only one: each replica answers
   * it. An ordered one: the leader proposes it only once Q − 1 backups tell it they hold it from
   * the client, so a backup never has to take the request on the leader's word (a client that
   * authenticates a request for the leader alone, or sends it to the leader alone, gets nothing
   * proposed and nobody suspected), and backups see a leader that ignores it.
   */
  #firstSend(request: ClientRequest): ClientAction {
    return { kind: 'send-all', request };
  }

  /**
   * A signed reply that contradicts what a quorum signed for the same request at the same
   * sequence proves its sender lied (or ran on corrupt state): report it, once per replica.
   */
  #checkLateReply(reply: Reply): ClientAction[] {
    const completion = this.#completed.get(reply.requestNumber);
    if (completion === undefined || reply.readOnly || reply.proof === null) return [];
    const reference = completion.certified[0]!;
    if (reply.sequence !== reference.sequence || sameAnswer(reply, reference)) return [];
    if (completion.reported.has(reply.replicaId)) return [];
    const certified = completion.certified.filter((candidate) => candidate.replicaId !== reply.replicaId);
    if (certified.length < this.#quorum) return [];
    completion.reported.add(reply.replicaId);
    this.#cutOff.set(reply.replicaId, reply.proof.keyEpoch);
    return [
      {
        kind: 'report-evidence',
        evidence: { kind: 'lying-reply', accused: reply.replicaId, reply, certified },
      },
    ];
  }

  /**
   * A replica in safe mode answers reads from its last certified checkpoint and signs the reply;
   * in normal operation a read-only reply carries no proof. When f + 1 of the matching replies are
   * signed so, at least one correct replica is in safe mode and the answer is its certified
   * snapshot, perhaps older than writes already acknowledged: the caller must be told, not handed
   * it as the current state. Fewer than f + 1 could be faulty replicas posing as in safe mode.
   */
  #safeModeSnapshot(
    outstanding: Outstanding,
    answer: Reply,
  ): Omit<Extract<ClientAction, { kind: 'complete' }>, 'invocation'> | null {
    const signed = [...outstanding.replies.values()].filter(
      (candidate) => candidate.proof !== null && sameAnswer(candidate, answer),
    );
    if (signed.length < correctWitnessSize(this.#config)) return null;
    let oldest = signed[0]!.sequence;
    for (const candidate of signed) if (candidate.sequence < oldest) oldest = candidate.sequence;
    return {
      kind: 'complete',
      status: answer.status,
      result: answer.result,
      sequence: oldest,
      fastPath: true,
      safeModeSnapshot: true,
      snapshotReplies: signed,
    };
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
