/**
 * More replicas colluding than the cluster tolerates (`--colluding c`, c > f): the simulator's
 * attack beyond the fault model, which Phalanx cannot prevent and must not let pass silently
 * (docs/intrusion-tolerance.md, "Beyond f: safe mode and forensics"). Replicas 0..c-1 conspire,
 * so replica 0 leads view 0, and split the correct replicas into two groups: the *misled* (the
 * upper half of the correct ids) are shown a second history, the others the true one.
 *
 * What the conspirators do, each with its own keys only:
 * - a conspirator leading a view sends every proposal to the misled as a second, signed proposal
 *   for the same (view, sequence) (equivocatingVariant), and at the same moment every conspirator
 *   sends the misled its PREPARE and COMMIT for that second proposal, so that the misled commit it
 *   before the other correct replicas' PREPAREs could reveal the equivocation;
 * - the PREPAREs and COMMITs the conspirators' cores send for a proposal that has a second one
 *   reach the misled rewritten to the second one;
 * - the conspirators' own CHECKPOINT votes (for the true history's state roots) are withheld from
 *   the misled, and every root a misled replica votes for is signed back to the misled by every
 *   conspirator: each group gets a quorum certificate of its own root, c + the group's votes.
 *
 * So with c ≥ f + 1 two quorum certificates for one sequence can exist, and the correct replicas'
 * only defence is to find them: the certificate histories they exchange expose both to each
 * group, and the simulator checks that every correct replica whose history diverged from another
 * correct one's is in safe mode with a proof naming only conspirators.
 */
import type { CoreCrypto } from '../core/crypto.js';
import { equivocatingVariant } from '../adversary/outgoing.js';
import { assert, bytesEqual, type ReplicaId, replicaId, toHex } from '../messages/ids.js';
import { checkpointPayload, commitPayload } from '../messages/signing.js';
import type { Checkpoint, Commit, PrePrepare, ReplicaMessage } from '../messages/types.js';

/** What the conspiracy needs of each member: its keys (through its crypto) and its links. */
export interface ConspiratorLink {
  readonly crypto: CoreCrypto;
  sendMessage(to: ReplicaId, message: ReplicaMessage): void;
}

/** Second proposals remembered (by view and sequence); older ones are forgotten first. */
const MAX_REMEMBERED_VARIANTS = 1024;
/** Checkpoint roots already signed back to the misled; older ones are forgotten first. */
const MAX_REMEMBERED_ECHOES = 4096;

/** A member's COMMIT for (view, sequence, digest), signed with its own key as its core would. */
function signedCommit(
  crypto: CoreCrypto,
  member: ReplicaId,
  vote: Pick<Commit, 'view' | 'sequence' | 'batchDigest'>,
): Commit {
  const signed = crypto.sign(commitPayload(vote.view, vote.sequence, vote.batchDigest));
  return {
    kind: 'commit',
    ...vote,
    replicaId: member,
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

export class Conspiracy {
  readonly members: ReadonlySet<number>;
  /** The correct replicas shown the second history. */
  readonly misled: ReadonlySet<number>;
  readonly #links = new Map<number, ConspiratorLink>();
  readonly #variants = new Map<string, PrePrepare>();
  readonly #echoed = new Set<string>();
  /** Proposals sent to the misled as a second proposal. */
  equivocations = 0;
  /** Checkpoint roots of the misled the conspirators signed back. */
  echoedRoots = 0;

  /** Their cores' FORK-PROOFs are dropped too (`--colluders-withhold-proofs`). */
  readonly #withholdForkProofs: boolean;

  constructor(n: number, colluding: number, options: { readonly withholdForkProofs?: boolean } = {}) {
    this.#withholdForkProofs = options.withholdForkProofs === true;
    assert(Number.isSafeInteger(colluding) && colluding >= 1 && colluding < n - 1, 'colluding in 1..n-2');
    const members = new Set<number>();
    for (let id = 0; id < colluding; id++) members.add(id);
    const correct: number[] = [];
    for (let id = colluding; id < n; id++) correct.push(id);
    this.members = members;
    this.misled = new Set(correct.slice(Math.ceil(correct.length / 2)));
  }

  join(member: ReplicaId, link: ConspiratorLink): void {
    assert(this.members.has(member), `replica ${member} is not a conspirator`);
    this.#links.set(member, link);
  }

  /** Member `self`'s core sends `message` to `to`: what actually goes out. */
  outgoing(self: ReplicaId, to: ReplicaId, message: ReplicaMessage): void {
    const link = this.#link(self);
    // Their cores relay what they found against one another; real colluders would not. Their
    // fork proofs still go out unless withheld (docs/intrusion-tolerance.md, Limitations).
    if (message.kind === 'evidence-report') return;
    if (message.kind === 'fork-proof' && this.#withholdForkProofs) return;
    if (!this.misled.has(to)) {
      link.sendMessage(to, message);
      return;
    }
    switch (message.kind) {
      case 'pre-prepare': {
        const variant = this.#variantOf(self, message);
        link.sendMessage(to, variant);
        if (bytesEqual(variant.batchDigest, message.batchDigest)) return;
        // Every conspirator's votes for it at once: the misled commit before the true
        // proposal's PREPAREs from the other correct replicas reach them.
        for (const member of this.members) {
          const memberLink = this.#link(replicaId(member));
          const vote = { view: variant.view, sequence: variant.sequence, batchDigest: variant.batchDigest };
          if (member !== self)
            memberLink.sendMessage(to, {
              kind: 'prepare',
              ...vote,
              replicaId: replicaId(member),
              proposalKeyEpoch: variant.keyEpoch,
              proposalSignature: variant.signature,
            });
          memberLink.sendMessage(to, signedCommit(memberLink.crypto, replicaId(member), vote));
        }
        return;
      }
      case 'prepare': {
        const variant = this.#variants.get(`${message.view}:${message.sequence}`);
        link.sendMessage(
          to,
          variant === undefined
            ? message
            : {
                ...message,
                batchDigest: variant.batchDigest,
                proposalKeyEpoch: variant.keyEpoch,
                proposalSignature: variant.signature,
              },
        );
        return;
      }
      case 'commit': {
        const variant = this.#variants.get(`${message.view}:${message.sequence}`);
        link.sendMessage(
          to,
          variant === undefined
            ? message
            : signedCommit(link.crypto, self, {
                view: message.view,
                sequence: message.sequence,
                batchDigest: variant.batchDigest,
              }),
        );
        return;
      }
      case 'checkpoint':
        // The misled certify their own roots, with the votes signed back to them (incoming).
        return;
      default:
        link.sendMessage(to, message);
    }
  }

  /** Member `self` received `message` from `from`: a misled replica's root is signed back. */
  incoming(self: ReplicaId, from: ReplicaId, message: ReplicaMessage): void {
    if (!this.misled.has(from) || message.kind !== 'checkpoint' || message.replicaId !== from) return;
    const key = `${self}:${message.sequence}:${toHex(message.stateRoot)}`;
    if (this.#echoed.has(key)) return;
    this.#echoed.add(key);
    if (this.#echoed.size > MAX_REMEMBERED_ECHOES) this.#echoed.delete(this.#echoed.values().next().value!);
    this.echoedRoots++;
    const link = this.#link(self);
    const signed = link.crypto.sign(checkpointPayload(message.sequence, message.stateRoot));
    const vote: Checkpoint = {
      kind: 'checkpoint',
      sequence: message.sequence,
      stateRoot: message.stateRoot,
      replicaId: self,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
    for (const misled of this.misled) link.sendMessage(replicaId(misled), vote);
  }

  #link(member: ReplicaId): ConspiratorLink {
    const link = this.#links.get(member);
    assert(link !== undefined, `conspirator ${member} has not joined`);
    return link;
  }

  /** The second proposal for (view, sequence): the same one to every misled replica and at every retransmission. */
  #variantOf(self: ReplicaId, message: PrePrepare): PrePrepare {
    const key = `${message.view}:${message.sequence}`;
    const known = this.#variants.get(key);
    if (known !== undefined) return known;
    const variant = equivocatingVariant(this.#link(self).crypto, message);
    this.#variants.set(key, variant);
    if (this.#variants.size > MAX_REMEMBERED_VARIANTS)
      this.#variants.delete(this.#variants.keys().next().value!);
    if (!bytesEqual(variant.batchDigest, message.batchDigest)) this.equivocations++;
    return variant;
  }
}
