/**
 * The new-view decision: given a set S of signed VIEW-CHANGE messages for view v, which batch
 * (or no-op) to re-propose at every sequence number above the chosen checkpoint.
 *
 * Prepares are not signed (they travel over authenticated channels), so a view change cannot
 * carry transferable prepared certificates. We use the decision rule Castro and Liskov give for
 * PBFT with MACs (Castro's thesis §3.2, TOCS 2002 §4.5), generalised to quorums of size Q:
 *
 *   choose digest d at sequence s, for the P-entry (s, d, w) of some message in S, when
 *   A1. at least Q messages in S have no P-entry at s, or one with view < w, or exactly (w, d);
 *   A2. at least f + 1 messages in S have a Q-entry (s, d, w') with w' ≥ w;
 *   choose a no-op at s when at least Q messages in S have no P-entry at s;
 *   otherwise S cannot decide s yet and the new leader waits for more view changes.
 *
 * Why it is safe: if d committed at s in view w, at least Q − f correct replicas prepared (s, d, w)
 * and report it (or a later view's entry for the same d). Any other candidate (s, d', w'') needs Q
 * messages consistent with it, but at most n − (Q − f) < Q messages are. A no-op needs Q messages
 * without P-entries, which also intersects those Q − f. A2 makes sure at least one correct replica
 * accepted d from a leader, so a faulty replica cannot smuggle a batch in.
 *
 * Every replica recomputes the decision from the same S carried in NEW-VIEW, so the new leader
 * cannot choose anything else.
 */
import type { CheckpointCertificate, NewView, ViewChange } from '../messages/types.js';
import { type Digest, type SequenceNumber, sequenceNumber, toHex, type ViewNumber } from '../messages/ids.js';
import { correctWitnessSize, type FaultModel, quorumSize } from './quorum.js';

export interface NewViewProposal {
  readonly sequence: SequenceNumber;
  /** null: a no-op batch. */
  readonly batchDigest: Digest | null;
}

export type NewViewDecision =
  | {
      readonly kind: 'decided';
      readonly checkpoint: CheckpointCertificate;
      readonly proposals: readonly NewViewProposal[];
      /** The last sequence number the decision covers (the checkpoint's when there are none). */
      readonly maxSequence: SequenceNumber;
    }
  | { readonly kind: 'undecided'; readonly sequence: SequenceNumber };

export interface DecisionOptions {
  /**
   * TEST ONLY: a deliberately broken rule that ignores prepared entries and fills every sequence
   * with a no-op. The simulator must catch the agreement violations it causes.
   */
  readonly brokenIgnorePrepared?: boolean;
}

interface IndexedEntries {
  /** P-entry per message at this sequence (message index → view, digest hex). */
  readonly prepared: Map<
    number,
    { readonly view: ViewNumber; readonly digestHex: string; readonly digest: Digest }
  >;
  /** Q-entries per message at this sequence (message index → digest hex → highest view). */
  readonly prePrepared: Map<number, Map<string, ViewNumber>>;
}

export function chooseCheckpoint(viewChanges: readonly ViewChange[]): CheckpointCertificate {
  let best = viewChanges[0]!.checkpoint;
  for (const message of viewChanges)
    if (message.checkpoint.sequence > best.sequence) best = message.checkpoint;
  return best;
}

function indexEntries(viewChanges: readonly ViewChange[], above: number): Map<number, IndexedEntries> {
  const bySequence = new Map<number, IndexedEntries>();
  const entriesAt = (sequence: number): IndexedEntries => {
    let entries = bySequence.get(sequence);
    if (entries === undefined) {
      entries = { prepared: new Map(), prePrepared: new Map() };
      bySequence.set(sequence, entries);
    }
    return entries;
  };
  viewChanges.forEach((message, messageIndex) => {
    for (const entry of message.prepared) {
      if (entry.sequence <= above) continue;
      entriesAt(entry.sequence).prepared.set(messageIndex, {
        view: entry.view,
        digestHex: toHex(entry.batchDigest),
        digest: entry.batchDigest,
      });
    }
    for (const entry of message.prePrepared) {
      if (entry.sequence <= above) continue;
      const perMessage = entriesAt(entry.sequence).prePrepared;
      let digests = perMessage.get(messageIndex);
      if (digests === undefined) {
        digests = new Map();
        perMessage.set(messageIndex, digests);
      }
      const hex = toHex(entry.batchDigest);
      const known = digests.get(hex);
      if (known === undefined || entry.view > known) digests.set(hex, entry.view);
    }
  });
  return bySequence;
}

/** Candidates in a fixed order (highest view first, then digest) so every replica picks the same. */
function candidatesAt(entries: IndexedEntries): { view: ViewNumber; digestHex: string; digest: Digest }[] {
  const seen = new Map<string, { view: ViewNumber; digestHex: string; digest: Digest }>();
  for (const entry of entries.prepared.values()) seen.set(`${entry.view}:${entry.digestHex}`, entry);
  return [...seen.values()].sort((a, b) =>
    a.view !== b.view ? b.view - a.view : a.digestHex < b.digestHex ? -1 : a.digestHex > b.digestHex ? 1 : 0,
  );
}

export function decideNewView(
  viewChanges: readonly ViewChange[],
  model: FaultModel,
  options: DecisionOptions = {},
): NewViewDecision {
  const quorum = quorumSize(model);
  const witnesses = correctWitnessSize(model);
  const checkpoint = chooseCheckpoint(viewChanges);
  const entries = indexEntries(viewChanges, checkpoint.sequence);
  let maxSequence: number = checkpoint.sequence;
  for (const [sequence, atSequence] of entries) {
    if (atSequence.prepared.size > 0 && sequence > maxSequence) maxSequence = sequence;
  }
  const proposals: NewViewProposal[] = [];
  for (let sequence = checkpoint.sequence + 1; sequence <= maxSequence; sequence++) {
    const atSequence = entries.get(sequence);
    if (options.brokenIgnorePrepared === true || atSequence === undefined || atSequence.prepared.size === 0) {
      proposals.push({ sequence: sequenceNumber(sequence), batchDigest: null });
      continue;
    }
    let chosen: Digest | null = null;
    for (const candidate of candidatesAt(atSequence)) {
      let consistent = 0;
      for (let index = 0; index < viewChanges.length; index++) {
        const entry = atSequence.prepared.get(index);
        if (
          entry === undefined ||
          entry.view < candidate.view ||
          (entry.view === candidate.view && entry.digestHex === candidate.digestHex)
        ) {
          consistent++;
        }
      }
      if (consistent < quorum) continue;
      let vouching = 0;
      for (const digests of atSequence.prePrepared.values()) {
        const view = digests.get(candidate.digestHex);
        if (view !== undefined && view >= candidate.view) vouching++;
      }
      if (vouching >= witnesses) {
        chosen = candidate.digest;
        break;
      }
    }
    if (chosen !== null) {
      proposals.push({ sequence: sequenceNumber(sequence), batchDigest: chosen });
      continue;
    }
    const withoutPrepared = viewChanges.length - atSequence.prepared.size;
    if (withoutPrepared >= quorum) {
      proposals.push({ sequence: sequenceNumber(sequence), batchDigest: null });
      continue;
    }
    return { kind: 'undecided', sequence: sequenceNumber(sequence) };
  }
  return { kind: 'decided', checkpoint, proposals, maxSequence: sequenceNumber(maxSequence) };
}

/**
 * What makes a NEW-VIEW one that no correct leader signs, judged on its content alone (no
 * signature, no key epoch, no local state): view changes for another view, two from one replica,
 * fewer than a quorum, or a set that cannot decide some sequence (a correct leader computes this
 * very decision over this very set before it signs, #tryNewView, and waits while it is undecided).
 * Null when the NEW-VIEW follows from its view changes. Whether those view changes are authentic
 * is not judged here: a correct leader checked them, and a leader that signed forged ones is
 * faulty for that too, so only what holds for any set is used. `maxSpan` bounds the work: a set
 * whose prepared entries reach further than that above its checkpoint is not judged (null), since
 * refusing a proof is the safe side.
 */
export function newViewProblem(
  newView: NewView,
  model: FaultModel,
  maxSpan: number,
): { readonly problem: string } | null {
  const senders = new Set<number>();
  for (const viewChange of newView.viewChanges) {
    if (viewChange.newView !== newView.view)
      return { problem: `holds a view change for view ${viewChange.newView}, not ${newView.view}` };
    if (senders.has(viewChange.replicaId))
      return { problem: `holds two view changes from replica ${viewChange.replicaId}` };
    senders.add(viewChange.replicaId);
  }
  const quorum = quorumSize(model);
  if (senders.size < quorum) return { problem: `holds ${senders.size} view changes, a quorum is ${quorum}` };
  const low = chooseCheckpoint(newView.viewChanges).sequence;
  for (const viewChange of newView.viewChanges)
    for (const entry of viewChange.prepared) if (entry.sequence - low > maxSpan) return null;
  const decision = decideNewView(newView.viewChanges, model);
  return decision.kind === 'undecided'
    ? { problem: `its view changes cannot decide sequence ${decision.sequence}` }
    : null;
}
