/**
 * Checkers over what correct replicas executed:
 * - agreement: no two correct replicas execute different batches at one sequence number;
 * - determinism: where they execute the same batch, they skip the same duplicates (same state);
 * - validity: every request executed was authenticated by the client it names (the simulator
 *   records every request a client built); a request a Byzantine replica made up never runs;
 * - exactly-once: over the agreed sequence of batches, no (client, request number) runs twice.
 */
import type { Action } from '../../core/actions.js';
import { toHex } from '../../messages/ids.js';

type Executed = Extract<Action, { kind: 'executed' }>;

interface AgreedBatch {
  readonly digestHex: string;
  readonly executedKeys: string;
  readonly firstReplica: number;
}

export class ExecutionChecker {
  readonly #sent = new Set<string>();
  readonly #agreed = new Map<number, AgreedBatch>();

  recordSentRequest(digest: Uint8Array): void {
    this.#sent.add(toHex(digest));
  }

  /** Returns a violation, or null. */
  recordExecution(replica: number, action: Executed): string | null {
    const digestHex = toHex(action.batchDigest);
    const executedKeys = action.requests
      .filter((request) => !request.skipped)
      .map((request) => `${request.clientId}#${request.requestNumber}`)
      .join(',');
    const agreed = this.#agreed.get(action.sequence);
    if (agreed === undefined) {
      for (const request of action.requests) {
        if (!this.#sent.has(toHex(request.requestDigest))) {
          return `validity: replica ${replica} executed ${request.clientId}#${request.requestNumber} at sequence ${action.sequence}, which that client never sent`;
        }
      }
      this.#agreed.set(action.sequence, { digestHex, executedKeys, firstReplica: replica });
      return null;
    }
    if (agreed.digestHex !== digestHex) {
      return (
        `agreement: at sequence ${action.sequence} replica ${agreed.firstReplica} executed batch ` +
        `${agreed.digestHex.slice(0, 12)} but replica ${replica} executed ${digestHex.slice(0, 12)}`
      );
    }
    if (agreed.executedKeys !== executedKeys) {
      return `determinism: at sequence ${action.sequence} replicas ${agreed.firstReplica} and ${replica} executed the same batch but different requests of it`;
    }
    return null;
  }

  finalProblems(): string[] {
    const problems: string[] = [];
    const seen = new Map<string, number>();
    const sequences = [...this.#agreed.keys()].sort((a, b) => a - b);
    for (const sequence of sequences) {
      const keys = this.#agreed.get(sequence)!.executedKeys;
      if (keys === '') continue;
      for (const key of keys.split(',')) {
        const earlier = seen.get(key);
        if (earlier !== undefined) {
          problems.push(
            `exactly-once: request ${key} executed at sequence ${earlier} and again at ${sequence}`,
          );
          if (problems.length >= 5) return problems;
        } else {
          seen.set(key, sequence);
        }
      }
    }
    return problems;
  }

  get agreedSequences(): number {
    return this.#agreed.size;
  }
}
