/**
 * Linearizability checker for client histories of the key-value service, used by the simulator to
 * decide whether a run was correct.
 *
 * Algorithm: Wing & Gong's backtracking search over the call/return events of the history, with
 * Lowe's memoisation (a configuration — the set of operations linearized so far plus the model
 * state — is explored at most once), the approach of Porcupine and Knossos. Every operation touches
 * exactly one key and keys are independent registers, so a history is linearizable iff each key's
 * sub-history is (P-compositionality, Horn & Kroening); each key is searched on its own, which keeps
 * the exponential part of the search small.
 *
 * Time: `invokedAt` / `completedAt` are logical times. Operation A precedes operation B in real time
 * only when `A.completedAt < B.invokedAt`; equal times count as concurrent. That is the lenient
 * choice: it can hide a violation between two events of the same tick but never reports a false one.
 * A recorder that wants strict order between same-tick events must give them distinct times.
 *
 * The module is pure: no clocks, no randomness, no I/O; the verdict depends only on the history
 * (not even on the order of its entries).
 */

/** Single-key operations as observed by clients. Values are strings (the simulator encodes bytes as hex). */
export type KvOperation =
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'delete'; readonly key: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvResult =
  /** put, delete */
  | { readonly kind: 'ok' }
  /** get: null = absent */
  | { readonly kind: 'value'; readonly value: string | null }
  | { readonly kind: 'cas'; readonly succeeded: boolean };

export interface HistoryEntry {
  /** Unique per history. */
  readonly id: number;
  readonly client: string;
  readonly operation: KvOperation;
  /** Logical time the client sent it. */
  readonly invokedAt: number;
  /** null: the client never saw the outcome (crashed / gave up / run ended) — it may or may not have taken effect. */
  readonly completedAt: number | null;
  /** null iff completedAt is null. */
  readonly result: KvResult | null;
}

export interface LinearizabilityFailure {
  /** The key whose sub-history is not linearizable. */
  readonly key: string;
  readonly explanation: string;
  /** The smallest window of the key's history found that already admits no linearization. */
  readonly operations: readonly HistoryEntry[];
}

export interface LinearizabilityVerdict {
  readonly linearizable: boolean;
  /** When not linearizable: the key whose sub-history failed, an explanation and the failing window. */
  readonly failure: LinearizabilityFailure | null;
  /** Keys whose search ran out of budget: reported as linearizable, but unproven. Sorted. */
  readonly inconclusiveKeys: readonly string[];
  /** Distinct (linearized set, state) configurations visited, over all keys and all searches. */
  readonly statesExplored: number;
}

export interface LinearizabilityOptions {
  /** Budget of configurations for each search of one key; beyond it the key is inconclusive. */
  readonly maxStatesPerKey?: number;
}

export const DEFAULT_MAX_STATES_PER_KEY = 1_000_000;
/**
 * Shrinking a failure into a small window is a nicety, so all its searches together get a budget:
 * this many times the states the failing check took (about what the two binary searches need, as
 * each probe that fails costs about as much as the check), at least MIN_EXPLANATION_STATES and at
 * most MAX_EXPLANATION_FACTOR times maxStatesPerKey.
 */
const EXPLANATION_BUDGET_FACTOR = 8;
const MIN_EXPLANATION_STATES = 100_000;
const MAX_EXPLANATION_FACTOR = 2;

/** The history itself is inconsistent (a recorder bug), as opposed to not linearizable. */
export class MalformedHistoryError extends Error {
  override readonly name = 'MalformedHistoryError';
}

export function checkLinearizability(
  history: readonly HistoryEntry[],
  options: LinearizabilityOptions = {},
): LinearizabilityVerdict {
  const maxStates = options.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY;
  if (!Number.isSafeInteger(maxStates) || maxStates < 1) {
    throw new RangeError(`maxStatesPerKey must be a positive integer, got ${maxStates}`);
  }
  validateHistory(history);

  const entriesByKey = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const entries = entriesByKey.get(entry.operation.key);
    if (entries === undefined) entriesByKey.set(entry.operation.key, [entry]);
    else entries.push(entry);
  }
  // Code-unit order, not localeCompare: the verdict must not depend on the host's locale.
  const keys = [...entriesByKey.keys()].sort(compareStrings);

  let statesExplored = 0;
  const inconclusiveKeys: string[] = [];
  const failures: KeyFailure[] = [];
  for (const key of keys) {
    const keyHistory = compileKeyHistory(key, entriesByKey.get(key)!);
    const outcome = search(keyHistory, WHOLE_HISTORY, maxStates);
    statesExplored += outcome.statesExplored;
    if (outcome.result === INCONCLUSIVE) inconclusiveKeys.push(key);
    if (outcome.result === NOT_LINEARIZABLE) {
      const explanationBudget = Math.max(
        MIN_EXPLANATION_STATES,
        Math.min(EXPLANATION_BUDGET_FACTOR * outcome.statesExplored, MAX_EXPLANATION_FACTOR * maxStates),
      );
      const failure = findFailureWindow(keyHistory, maxStates, explanationBudget);
      statesExplored += failure.statesExplored;
      failures.push(failure);
    }
  }

  // Report the key that went wrong first in time: later failures are often consequences of it.
  failures.sort((left, right) => left.prefixEnd - right.prefixEnd || compareStrings(left.key, right.key));
  const first = failures[0];
  if (first === undefined) {
    return { linearizable: true, failure: null, inconclusiveKeys, statesExplored };
  }
  const others = failures.slice(1).map((failure) => JSON.stringify(failure.key));
  const explanation =
    others.length === 0
      ? first.explanation
      : `${first.explanation}\nOther keys that failed: ${others.join(', ')}.`;
  return {
    linearizable: false,
    failure: { key: first.key, explanation, operations: first.operations },
    inconclusiveKeys,
    statesExplored,
  };
}

// ---------------------------------------------------------------------------------------------
// Input validation

function validateHistory(history: readonly HistoryEntry[]): void {
  const seenIds = new Set<number>();
  for (const entry of history) {
    const where = `history entry #${entry.id}`;
    if (seenIds.has(entry.id)) throw new MalformedHistoryError(`${where}: duplicate id`);
    seenIds.add(entry.id);
    if (!Number.isFinite(entry.invokedAt)) {
      throw new MalformedHistoryError(`${where}: invokedAt must be a finite number`);
    }
    if (entry.completedAt === null) {
      if (entry.result !== null) throw new MalformedHistoryError(`${where}: result without completedAt`);
    } else {
      if (!Number.isFinite(entry.completedAt) || entry.completedAt < entry.invokedAt) {
        throw new MalformedHistoryError(`${where}: completedAt must be finite and not before invokedAt`);
      }
      if (entry.result === null) throw new MalformedHistoryError(`${where}: completedAt without result`);
    }
    const kind: string = entry.operation.kind;
    if (kind !== 'put' && kind !== 'get' && kind !== 'delete' && kind !== 'cas') {
      throw new MalformedHistoryError(`${where}: unknown operation kind ${JSON.stringify(kind)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-key compiled form: operations as parallel typed arrays, values interned to small integers so
// that the search compares and hashes states as numbers.

const PUT = 0;
const GET = 1;
const DELETE = 2;
const CAS = 3;

/** State id of an absent key; interned values are 1, 2, … */
const ABSENT = 0;
/**
 * State "some value the key may have held before the window": the start state of a window search
 * (see findFailureWindow). It binds lazily to the first value an operation requires of it.
 */
const ANY_EARLIER_VALUE = -1;
/** Returned by the model step when the operation's recorded result is impossible in that state. */
const IMPOSSIBLE = -2;

interface CompiledKeyHistory {
  readonly key: string;
  /** The entries taking part in the search, ordered by (invokedAt, id); operation index = position. */
  readonly entries: readonly HistoryEntry[];
  readonly kinds: Uint8Array;
  /** put / cas: the value written; delete: ABSENT. */
  readonly writtenValues: Int32Array;
  /** cas: the expected value. */
  readonly expectedValues: Int32Array;
  /** get: the value read; cas: 1 succeeded, 0 failed. Only meaningful when the result is recorded. */
  readonly observedResults: Int32Array;
  /** 1 when the operation completed (has a result). */
  readonly completed: Uint8Array;
  /** 1 when a completed operation's result kind cannot belong to its operation kind. */
  readonly resultKindMismatch: Uint8Array;
  readonly invokedAt: Float64Array;
  /** +Infinity for operations that never completed. */
  readonly completedAt: Float64Array;
  /** Number of state ids in use (ABSENT included). */
  readonly valueCount: number;
}

function compileKeyHistory(key: string, unsortedEntries: readonly HistoryEntry[]): CompiledKeyHistory {
  const valueIds = new Map<string, number>();
  const intern = (value: string | null): number => {
    if (value === null) return ABSENT;
    let id = valueIds.get(value);
    if (id === undefined) {
      id = valueIds.size + 1;
      valueIds.set(value, id);
    }
    return id;
  };

  // Values whose presence some operation can detect: read by a completed get or expected by a cas.
  const observable = new Set<number>();
  let anyCompletedFailedCas = false;
  for (const entry of unsortedEntries) {
    const operation = entry.operation;
    const result = entry.result;
    if (operation.kind === 'cas') {
      observable.add(intern(operation.expected));
      if (result?.kind === 'cas' && !result.succeeded) anyCompletedFailedCas = true;
    } else if (operation.kind === 'get' && result?.kind === 'value') {
      observable.add(intern(result.value));
    }
  }

  // Pending operations that can be shown never to matter are left out, because each one kept
  // doubles the configurations the search may have to visit (it can be linearized anywhere after
  // its invocation, or not at all). Pending gets have no effect. A pending write of a value nobody
  // reads or expects is irrelevant too when every completed cas succeeded: in a linearization that
  // uses it, until the next write that takes effect no completed get can see the value and no cas
  // can succeed from it, so the only operations in between are pending cas that fail (they can be
  // moved to the end); removing the write then leaves a valid linearization.
  const relevant = unsortedEntries.filter((entry) => {
    if (entry.completedAt !== null) return true;
    const operation = entry.operation;
    if (operation.kind === 'get') return false;
    if (anyCompletedFailedCas) return true;
    const written = operation.kind === 'delete' ? ABSENT : intern(operation.value);
    return observable.has(written);
  });
  const entries = relevant.sort((left, right) => left.invokedAt - right.invokedAt || left.id - right.id);

  const count = entries.length;
  const kinds = new Uint8Array(count);
  const writtenValues = new Int32Array(count);
  const expectedValues = new Int32Array(count);
  const observedResults = new Int32Array(count);
  const completed = new Uint8Array(count);
  const resultKindMismatch = new Uint8Array(count);
  const invokedAt = new Float64Array(count);
  const completedAt = new Float64Array(count);
  entries.forEach((entry, index) => {
    const operation = entry.operation;
    const result = entry.result;
    invokedAt[index] = entry.invokedAt;
    completedAt[index] = entry.completedAt ?? Number.POSITIVE_INFINITY;
    completed[index] = result === null ? 0 : 1;
    switch (operation.kind) {
      case 'put':
        kinds[index] = PUT;
        writtenValues[index] = intern(operation.value);
        if (result !== null && result.kind !== 'ok') resultKindMismatch[index] = 1;
        break;
      case 'delete':
        kinds[index] = DELETE;
        writtenValues[index] = ABSENT;
        if (result !== null && result.kind !== 'ok') resultKindMismatch[index] = 1;
        break;
      case 'get':
        kinds[index] = GET;
        if (result?.kind === 'value') observedResults[index] = intern(result.value);
        else if (result !== null) resultKindMismatch[index] = 1;
        break;
      case 'cas':
        kinds[index] = CAS;
        writtenValues[index] = intern(operation.value);
        expectedValues[index] = intern(operation.expected);
        if (result?.kind === 'cas') observedResults[index] = result.succeeded ? 1 : 0;
        else if (result !== null) resultKindMismatch[index] = 1;
        break;
    }
  });
  return {
    key,
    entries,
    kinds,
    writtenValues,
    expectedValues,
    observedResults,
    completed,
    resultKindMismatch,
    invokedAt,
    completedAt,
    valueCount: valueIds.size + 1,
  };
}

// ---------------------------------------------------------------------------------------------
// The search

const LINEARIZABLE = 0;
const NOT_LINEARIZABLE = 1;
const INCONCLUSIVE = 2;
type SearchResult = typeof LINEARIZABLE | typeof NOT_LINEARIZABLE | typeof INCONCLUSIVE;

interface SearchOutcome {
  readonly result: SearchResult;
  readonly statesExplored: number;
}

/**
 * Which part of a key's history one search looks at. Operations invoked after `prefixEnd` are left
 * out and results recorded after it are ignored (those operations become pending). With a
 * `windowStart`, operations that completed before it are left out, the key starts in
 * ANY_EARLIER_VALUE instead of ABSENT, and operations invoked before it but completed from it on
 * ("straddling" the start) may instead be skipped: taken to have happened before the window, where
 * ANY_EARLIER_VALUE accounts for their effect.
 */
interface SearchScope {
  readonly prefixEnd: number;
  readonly windowStart: number | null;
}

const WHOLE_HISTORY: SearchScope = { prefixEnd: Number.POSITIVE_INFINITY, windowStart: null };

/** End of the event list. Node 0 is the head sentinel; events are nodes 1…eventCount. */
const NO_NODE = -1;

function search(history: CompiledKeyHistory, scope: SearchScope, maxStates: number): SearchOutcome {
  const { prefixEnd, windowStart } = scope;
  const operationCount = history.entries.length;

  // Select the operations in scope, whether their results are checked and whether they may be
  // skipped.
  const included: number[] = [];
  const resultChecked = new Uint8Array(operationCount);
  const skippable = new Uint8Array(operationCount);
  let checkedCount = 0;
  for (let operation = 0; operation < operationCount; operation++) {
    const invokedAt = history.invokedAt[operation]!;
    const completedAt = history.completedAt[operation]!;
    if (invokedAt > prefixEnd) continue;
    if (windowStart !== null && completedAt < windowStart) continue;
    const checked = history.completed[operation] === 1 && completedAt <= prefixEnd;
    // A get whose result is not checked has no effect on anything.
    if (!checked && history.kinds[operation] === GET) continue;
    included.push(operation);
    if (checked) {
      resultChecked[operation] = 1;
      checkedCount++;
      if (windowStart !== null && invokedAt < windowStart) skippable[operation] = 1;
    }
  }
  if (checkedCount === 0) return { result: LINEARIZABLE, statesExplored: 0 };

  // Start state, and for a window the values ANY_EARLIER_VALUE stands for: absent (initially or
  // after a delete) or anything written by an operation invoked before the window.
  let initialState = ABSENT;
  const possibleEarlierValues = new Uint8Array(history.valueCount);
  possibleEarlierValues[ABSENT] = 1;
  if (windowStart !== null) {
    for (let operation = 0; operation < operationCount; operation++) {
      if (history.invokedAt[operation]! >= windowStart) continue;
      initialState = ANY_EARLIER_VALUE;
      if (history.kinds[operation] !== GET) possibleEarlierValues[history.writtenValues[operation]!] = 1;
    }
    // An unchecked cas leaves ANY_EARLIER_VALUE in place although it may have succeeded (see step),
    // so the value it may have written has to be among those the state can still turn out to be.
    for (const operation of included) {
      if (history.kinds[operation] === CAS && resultChecked[operation] === 0) {
        possibleEarlierValues[history.writtenValues[operation]!] = 1;
      }
    }
  }

  // Events sorted by time; at equal times calls come first so that touching intervals are
  // concurrent (see the module comment); then by operation index for determinism.
  const eventCount = included.length + checkedCount;
  const eventTimes = new Float64Array(eventCount);
  const eventOperations = new Int32Array(eventCount);
  const eventIsReturn = new Uint8Array(eventCount);
  let eventIndex = 0;
  for (const operation of included) {
    eventTimes[eventIndex] = history.invokedAt[operation]!;
    eventOperations[eventIndex] = operation;
    eventIndex++;
    if (resultChecked[operation] === 1) {
      eventTimes[eventIndex] = history.completedAt[operation]!;
      eventOperations[eventIndex] = operation;
      eventIsReturn[eventIndex] = 1;
      eventIndex++;
    }
  }
  const order = Array.from({ length: eventCount }, (_, index) => index);
  order.sort(
    (left, right) =>
      eventTimes[left]! - eventTimes[right]! ||
      eventIsReturn[left]! - eventIsReturn[right]! ||
      eventOperations[left]! - eventOperations[right]!,
  );

  // Doubly linked list of events (dancing links: lifting an operation unlinks its call and return,
  // and undoing lifts in reverse order relinks them exactly).
  const next = new Int32Array(eventCount + 1);
  const previous = new Int32Array(eventCount + 1);
  const nodeOperation = new Int32Array(eventCount + 1);
  const nodeIsCall = new Uint8Array(eventCount + 1);
  const callNodeOf = new Int32Array(operationCount).fill(NO_NODE);
  const returnNodeOf = new Int32Array(operationCount).fill(NO_NODE);
  for (let position = 0; position < eventCount; position++) {
    const event = order[position]!;
    const node = position + 1;
    previous[node] = position;
    next[position] = node;
    nodeOperation[node] = eventOperations[event]!;
    if (eventIsReturn[event] === 1) returnNodeOf[eventOperations[event]!] = node;
    else {
      nodeIsCall[node] = 1;
      callNodeOf[eventOperations[event]!] = node;
    }
  }
  next[eventCount] = NO_NODE;

  const lift = (callNode: number): void => {
    next[previous[callNode]!] = next[callNode]!;
    if (next[callNode] !== NO_NODE) previous[next[callNode]!] = previous[callNode]!;
    const returnNode = returnNodeOf[nodeOperation[callNode]!]!;
    if (returnNode !== NO_NODE) {
      next[previous[returnNode]!] = next[returnNode]!;
      if (next[returnNode] !== NO_NODE) previous[next[returnNode]!] = previous[returnNode]!;
    }
  };
  const unlift = (callNode: number): void => {
    const returnNode = returnNodeOf[nodeOperation[callNode]!]!;
    if (returnNode !== NO_NODE) {
      next[previous[returnNode]!] = returnNode;
      if (next[returnNode] !== NO_NODE) previous[next[returnNode]!] = returnNode;
    }
    next[previous[callNode]!] = callNode;
    if (next[callNode] !== NO_NODE) previous[next[callNode]!] = callNode;
  };

  const { kinds, writtenValues, expectedValues, observedResults, resultKindMismatch } = history;
  /** The sequential specification: the state after applying `operation`, or IMPOSSIBLE. */
  const step = (state: number, operation: number): number => {
    const checked = resultChecked[operation] === 1;
    if (checked && resultKindMismatch[operation] === 1) return IMPOSSIBLE;
    switch (kinds[operation]) {
      case PUT:
      case DELETE:
        return writtenValues[operation]!;
      case GET: {
        const read = observedResults[operation]!;
        if (state === ANY_EARLIER_VALUE) return possibleEarlierValues[read] === 1 ? read : IMPOSSIBLE;
        return state === read ? state : IMPOSSIBLE;
      }
      default: {
        const expected = expectedValues[operation]!;
        if (state === ANY_EARLIER_VALUE) {
          // Success pins the earlier value; failure only says it was not `expected`, which
          // ANY_EARLIER_VALUE over-approximates (it may still bind to `expected` later). An
          // unchecked cas may have done either; ANY_EARLIER_VALUE covers both.
          if (!checked || observedResults[operation] === 0) return ANY_EARLIER_VALUE;
          return possibleEarlierValues[expected] === 1 ? writtenValues[operation]! : IMPOSSIBLE;
        }
        const matches = state === expected;
        if (checked && (observedResults[operation] === 1) !== matches) return IMPOSSIBLE;
        return matches ? writtenValues[operation]! : state;
      }
    }
  };

  const wordCount = Math.max(1, Math.ceil(operationCount / 32));
  const linearized = new Uint32Array(wordCount);
  let linearizedHash = 0;
  const visited = new VisitedConfigurations(wordCount);
  const stackNodes = new Int32Array(included.length);
  const stackStates = new Int32Array(included.length);
  /** 1 when the stacked operation was committed to without alternatives (see below). */
  const stackCommitted = new Uint8Array(included.length);
  let depth = 0;
  let state = initialState;
  let remainingChecked = checkedCount;
  let statesExplored = 0;

  // Between two lifts or backtracks the scan advances through at most eventCount nodes, there are
  // at most maxStates lifts (each inserts a new configuration) and no more backtracks than lifts.
  const maxIterations = (2 * maxStates + 3) * (eventCount + 1);
  let node = next[0]!;
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    // Pending operations still unlinearized can all go at the end, where nothing observes them.
    if (remainingChecked === 0) return { result: LINEARIZABLE, statesExplored };
    let mustBacktrack = node === NO_NODE;
    if (node !== NO_NODE) {
      const operation = nodeOperation[node]!;
      const isCall = nodeIsCall[node] === 1;
      // At a return, the only move left is skipping a straddling operation; otherwise back up.
      mustBacktrack = !isCall && skippable[operation] === 0;
      const nextState = mustBacktrack ? IMPOSSIBLE : isCall ? step(state, operation) : state;
      if (nextState !== IMPOSSIBLE) {
        // Partial-order reduction: a checked get or failed cas that is valid now leaves the state
        // unchanged wherever it is valid, and everything that must precede it is linearized already
        // (its call comes before the first unlinearized return). So any solution that places it
        // later can place it now instead: commit to it, and when that fails, so does this
        // configuration — no other candidate needs trying. Not for ANY_EARLIER_VALUE, where a get
        // narrows the state, nor for pending operations, whose effect depends on where they go.
        // A skip is the last alternative at its position, so it is committed too.
        const committed =
          !isCall ||
          (nextState === state &&
            state !== ANY_EARLIER_VALUE &&
            resultChecked[operation] === 1 &&
            kinds[operation] !== PUT &&
            kinds[operation] !== DELETE);
        const word = operation >>> 5;
        const bit = 1 << (operation & 31);
        linearized[word]! ^= bit;
        const hash = linearizedHash ^ OPERATION_HASHES.get(operation);
        if (visited.insert(linearized, configurationHash(hash, nextState), nextState)) {
          statesExplored++;
          if (statesExplored >= maxStates) return { result: INCONCLUSIVE, statesExplored };
          const callNode = callNodeOf[operation]!;
          stackNodes[depth] = callNode;
          stackStates[depth] = state;
          stackCommitted[depth] = committed ? 1 : 0;
          depth++;
          state = nextState;
          linearizedHash = hash;
          if (resultChecked[operation] === 1) remainingChecked--;
          lift(callNode);
          node = next[0]!;
          continue;
        }
        linearized[word]! ^= bit;
        // Already visited, and not on the current path (its set is larger): it failed.
        mustBacktrack = committed;
      }
      if (!mustBacktrack) node = next[node]!;
    }
    if (mustBacktrack) {
      // Reached the first unlinearized return (nothing after it may be linearized before its
      // operation, and nothing before it worked) or a committed operation failed. The end of the
      // list cannot be reached while a checked operation remains, since its return is in the list;
      // it is treated alike for robustness. Undo committed operations together with the one
      // before them: their configurations have no alternatives left.
      let resumed = false;
      while (depth > 0 && !resumed) {
        depth--;
        const callNode = stackNodes[depth]!;
        const operation = nodeOperation[callNode]!;
        state = stackStates[depth]!;
        linearized[operation >>> 5]! ^= 1 << (operation & 31);
        linearizedHash ^= OPERATION_HASHES.get(operation);
        if (resultChecked[operation] === 1) remainingChecked++;
        unlift(callNode);
        if (stackCommitted[depth] === 0) {
          node = next[callNode]!;
          resumed = true;
        }
      }
      if (!resumed) return { result: NOT_LINEARIZABLE, statesExplored };
    }
  }
  throw new Error('linearizability search exceeded its iteration bound; this is a bug in the checker');
}

// ---------------------------------------------------------------------------------------------
// Memoisation (Lowe): an open-addressing hash set of configurations. Bitsets live in one growing
// Uint32Array arena so that a million configurations cost a few dozen megabytes and no objects.

/** murmur3's 32-bit finaliser: spreads the bits of an integer over the whole word. */
function mix32(value: number): number {
  let hash = value >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

function configurationHash(linearizedHash: number, state: number): number {
  return mix32(linearizedHash ^ mix32(state + 0x5bd1e995));
}

/**
 * Per-operation hash contributions. The hash of a linearized set is the XOR of its members', so
 * adding or removing an operation updates it in O(1). Shared by all searches and grown on demand.
 */
class OperationHashes {
  private hashes = new Uint32Array(0);

  get(operation: number): number {
    if (operation >= this.hashes.length) this.grow(operation + 1);
    return this.hashes[operation]!;
  }

  private grow(minimumLength: number): void {
    const grown = new Uint32Array(Math.max(minimumLength, this.hashes.length * 2, 256));
    grown.set(this.hashes);
    for (let operation = this.hashes.length; operation < grown.length; operation++) {
      grown[operation] = mix32(Math.imul(operation + 1, 0x9e3779b9));
    }
    this.hashes = grown;
  }
}

const OPERATION_HASHES = new OperationHashes();

const EMPTY_SLOT = -1;
const INITIAL_SLOTS = 1024;

class VisitedConfigurations {
  private bitsets: Uint32Array;
  private states: Int32Array;
  private hashes: Uint32Array;
  /** Entry index per slot, or EMPTY_SLOT; kept at most half full. */
  private slots: Int32Array;
  private size = 0;

  constructor(private readonly wordCount: number) {
    this.slots = new Int32Array(INITIAL_SLOTS).fill(EMPTY_SLOT);
    this.bitsets = new Uint32Array((INITIAL_SLOTS / 2) * wordCount);
    this.states = new Int32Array(INITIAL_SLOTS / 2);
    this.hashes = new Uint32Array(INITIAL_SLOTS / 2);
  }

  /** Adds the configuration; false if it was already there. */
  insert(bitset: Uint32Array, hash: number, state: number): boolean {
    const wordCount = this.wordCount;
    const mask = this.slots.length - 1;
    // Linear probing ends at an empty slot, and at most half the slots are full.
    for (let slot = hash & mask, probe = 0; probe <= mask; slot = (slot + 1) & mask, probe++) {
      const entry = this.slots[slot]!;
      if (entry === EMPTY_SLOT) {
        this.add(slot, bitset, hash, state);
        return true;
      }
      if (this.hashes[entry] !== hash || this.states[entry] !== state) continue;
      const base = entry * wordCount;
      let equal = true;
      for (let word = 0; word < wordCount; word++) {
        if (this.bitsets[base + word] !== bitset[word]) {
          equal = false;
          break;
        }
      }
      if (equal) return false;
    }
    throw new Error('visited-configuration table is full; this is a bug in the checker');
  }

  private add(slot: number, bitset: Uint32Array, hash: number, state: number): void {
    const entry = this.size++;
    this.slots[slot] = entry;
    this.bitsets.set(bitset, entry * this.wordCount);
    this.states[entry] = state;
    this.hashes[entry] = hash;
    if (this.size * 2 >= this.slots.length) this.grow();
  }

  private grow(): void {
    const slotCount = this.slots.length * 2;
    const entryCapacity = slotCount / 2;
    const bitsets = new Uint32Array(entryCapacity * this.wordCount);
    bitsets.set(this.bitsets);
    this.bitsets = bitsets;
    const states = new Int32Array(entryCapacity);
    states.set(this.states);
    this.states = states;
    const hashes = new Uint32Array(entryCapacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const slots = new Int32Array(slotCount).fill(EMPTY_SLOT);
    const mask = slotCount - 1;
    for (let entry = 0; entry < this.size; entry++) {
      let slot = this.hashes[entry]! & mask;
      // Terminates: the new table is at most a quarter full.
      while (slots[slot] !== EMPTY_SLOT) slot = (slot + 1) & mask;
      slots[slot] = entry;
    }
    this.slots = slots;
  }
}

// ---------------------------------------------------------------------------------------------
// Failure explanation

interface KeyFailure {
  readonly key: string;
  /** End time of the shortest failing prefix of the key's history. */
  readonly prefixEnd: number;
  readonly explanation: string;
  readonly operations: readonly HistoryEntry[];
  readonly statesExplored: number;
}

/**
 * Shrinks a failing key history to a small window that is failing on its own, with two binary
 * searches (O(log n) searches, only run on failure):
 *
 * 1. The shortest failing prefix, cut at time t: operations invoked after t are dropped and results
 *    recorded after t ignored. A prefix of a linearizable history is linearizable, so failing
 *    prefixes are upward closed in t.
 * 2. The latest window start s for which the window [s, t] still fails from ANY_EARLIER_VALUE:
 *    operations that completed before s are dropped, operations invoked before s may be skipped.
 *    Sound: in any linearization of the whole history, operations completed before s precede all
 *    operations invoked from s on, so just before the first of those the key held absent or a value
 *    written by an operation invoked before s; the window's operations after that point, in the
 *    same order, linearize the window, and the ones before it are the skipped ones.
 * Every window reported was checked to fail; inconclusive searches, and searches the budget no
 * longer allows, count as passing, so the window only gets larger than it could be.
 */
function findFailureWindow(
  history: CompiledKeyHistory,
  maxStatesPerSearch: number,
  totalBudget: number,
): KeyFailure {
  let statesExplored = 0;
  const fails = (scope: SearchScope): boolean => {
    const budget = Math.min(maxStatesPerSearch, totalBudget - statesExplored);
    if (budget < 1) return false;
    const outcome = search(history, scope, budget);
    statesExplored += outcome.statesExplored;
    return outcome.result === NOT_LINEARIZABLE;
  };
  const operationCount = history.entries.length;

  const completionTimes = uniqueSorted(
    history.entries.filter((entry) => entry.completedAt !== null).map((entry) => entry.completedAt!),
  );
  // The prefix ending at the last completion differs from the whole history only by pending
  // operations invoked after every completion, which can always go last: it fails too.
  let low = 0;
  let high = completionTimes.length - 1;
  // Each round halves [low, high]; 64 rounds exceed any array length.
  for (let round = 0; round < 64 && low < high; round++) {
    const middle = (low + high) >>> 1;
    if (fails({ prefixEnd: completionTimes[middle]!, windowStart: null })) high = middle;
    else low = middle + 1;
  }
  const prefixEnd = completionTimes[high] ?? Number.POSITIVE_INFINITY;

  const inPrefix: number[] = [];
  let latestUsefulStart = Number.NEGATIVE_INFINITY;
  for (let operation = 0; operation < operationCount; operation++) {
    if (history.invokedAt[operation]! > prefixEnd) continue;
    inPrefix.push(operation);
    // A window starting after these operations' invocations would no longer check the results
    // that made the prefix fail.
    if (history.completedAt[operation] === prefixEnd) {
      latestUsefulStart = Math.max(latestUsefulStart, history.invokedAt[operation]!);
    }
  }
  const startTimes = uniqueSorted(inPrefix.map((operation) => history.invokedAt[operation]!)).filter(
    (time) => time <= latestUsefulStart,
  );
  // startTimes[0] is the first invocation: that window is the whole failing prefix.
  let failingStart = 0;
  let candidateEnd = startTimes.length - 1;
  for (let round = 0; round < 64 && failingStart < candidateEnd; round++) {
    const middle = (failingStart + candidateEnd + 1) >>> 1;
    if (fails({ prefixEnd, windowStart: startTimes[middle]! })) failingStart = middle;
    else candidateEnd = middle - 1;
  }
  const windowStart = failingStart === 0 ? null : startTimes[failingStart]!;

  const windowOperations = inPrefix.filter(
    (operation) => windowStart === null || history.completedAt[operation]! >= windowStart,
  );
  const windowEntries = windowOperations.map((operation) => history.entries[operation]!);
  const resultIgnored = (entry: HistoryEntry): boolean =>
    entry.completedAt !== null && entry.completedAt > prefixEnd;
  const culprits = windowEntries
    .filter((entry) => entry.completedAt === prefixEnd)
    .map((entry) => `#${entry.id}`);

  const startingPoint =
    windowStart === null
      ? 'starting from an absent key'
      : `whatever value the key held at time ${windowStart} and even if the operations invoked ` +
        'before then took effect before all others';
  const lines = [
    `Key ${JSON.stringify(history.key)} is not linearizable: its shortest failing prefix ends at time ` +
      `${prefixEnd} (completion of ${culprits.join(', ')}). No order of these ${windowEntries.length} ` +
      `operations respects real time and explains their results, ${startingPoint}:`,
  ];
  const listed = windowEntries.slice(0, MAX_LISTED_OPERATIONS);
  for (const entry of listed) lines.push(`  ${describeEntry(entry, resultIgnored(entry))}`);
  if (windowEntries.length > listed.length) {
    lines.push(`  … and ${windowEntries.length - listed.length} more (see operations)`);
  }
  return {
    key: history.key,
    prefixEnd,
    explanation: lines.join('\n'),
    operations: windowEntries,
    statesExplored,
  };
}

const MAX_LISTED_OPERATIONS = 16;
const MAX_SHOWN_VALUE_LENGTH = 24;

function describeEntry(entry: HistoryEntry, resultIgnored: boolean): string {
  const interval = `[${entry.invokedAt}, ${entry.completedAt ?? '∞'}]`;
  let outcome: string;
  if (entry.result === null) outcome = 'no response (may or may not have taken effect)';
  else {
    outcome = `→ ${describeResult(entry.result)}`;
    if (!resultKindMatches(entry.operation, entry.result)) outcome += ' (result of the wrong kind)';
    if (resultIgnored) outcome += ' (not checked in this window)';
  }
  return `#${entry.id} ${entry.client}: ${describeOperation(entry.operation)} ${interval} ${outcome}`;
}

function describeOperation(operation: KvOperation): string {
  switch (operation.kind) {
    case 'put':
      return `put ${showValue(operation.value)}`;
    case 'get':
      return 'get';
    case 'delete':
      return 'delete';
    case 'cas':
      return `cas ${showValue(operation.expected)} ⇒ ${showValue(operation.value)}`;
  }
}

function describeResult(result: KvResult): string {
  switch (result.kind) {
    case 'ok':
      return 'ok';
    case 'value':
      return showValue(result.value);
    case 'cas':
      return result.succeeded ? 'succeeded' : 'failed';
  }
}

function resultKindMatches(operation: KvOperation, result: KvResult): boolean {
  switch (operation.kind) {
    case 'put':
    case 'delete':
      return result.kind === 'ok';
    case 'get':
      return result.kind === 'value';
    case 'cas':
      return result.kind === 'cas';
  }
}

/** Values can be long hex strings; the explanation shows a bounded prefix. */
function showValue(value: string | null): string {
  if (value === null) return 'absent';
  const shown = value.length > MAX_SHOWN_VALUE_LENGTH ? `${value.slice(0, MAX_SHOWN_VALUE_LENGTH)}…` : value;
  return JSON.stringify(shown);
}

function uniqueSorted(values: readonly number[]): number[] {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted.filter((value, index) => index === 0 || value !== sorted[index - 1]);
}

function compareStrings(left: string, right: string): number {
  if (left < right) return -1;
  return left > right ? 1 : 0;
}
