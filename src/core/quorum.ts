/**
 * Vote arithmetic, kept apart so that every threshold in the protocol comes from one place.
 *
 * With n ≥ 3f + 2k + 1 replicas (f Byzantine, k recovering at once), a quorum is
 * ⌈(n + f + 1) / 2⌉ replicas. Two quorums intersect in at least f + 1 replicas, so in at least
 * one correct one; and n − f − k ≥ quorum, so the correct replicas that are not recovering can
 * always form a quorum on their own. For n = 3f + 1 this is the classic 2f + 1.
 */

export interface FaultModel {
  /** Replicas in the configuration. */
  readonly n: number;
  /** Replicas that may be Byzantine at the same time. */
  readonly f: number;
  /** Replicas that may be recovering (unavailable) at the same time. */
  readonly k: number;
}

export function minimumReplicas(f: number, k: number): number {
  return 3 * f + 2 * k + 1;
}

/** Problems with a fault model, empty when it is valid. */
export function faultModelProblems(model: FaultModel): string[] {
  const problems: string[] = [];
  for (const [name, value] of [
    ['n', model.n],
    ['f', model.f],
    ['k', model.k],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0)
      problems.push(`${name} must be a non-negative integer, got ${value}`);
  }
  if (problems.length > 0) return problems;
  if (model.n < minimumReplicas(model.f, model.k)) {
    problems.push(
      `n = ${model.n} is too small for f = ${model.f} and k = ${model.k}: ` +
        `intrusion tolerance needs n ≥ 3f + 2k + 1 = ${minimumReplicas(model.f, model.k)}`,
    );
  }
  if (model.n < 1) problems.push('n must be at least 1');
  return problems;
}

/** Matching votes that make a certificate (prepared, committed, checkpoint, view change set). */
export function quorumSize(model: FaultModel): number {
  return Math.ceil((model.n + model.f + 1) / 2);
}

/** Matching votes that guarantee at least one correct voter. */
export function correctWitnessSize(model: FaultModel): number {
  return model.f + 1;
}
