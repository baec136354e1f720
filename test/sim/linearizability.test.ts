import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkLinearizability,
  type HistoryEntry,
  type KvOperation,
  type KvResult,
  type LinearizabilityVerdict,
  MalformedHistoryError,
} from '../../src/sim/checkers/linearizability.js';

// ---------------------------------------------------------------------------------------------
// Building histories by hand

interface HistoryBuilder {
  /** A completed operation. */
  done(
    client: string,
    operation: KvOperation,
    invokedAt: number,
    completedAt: number,
    result: KvResult,
  ): number;
  /** An operation whose outcome the client never saw. */
  pending(client: string, operation: KvOperation, invokedAt: number): number;
  readonly entries: HistoryEntry[];
}

function historyBuilder(): HistoryBuilder {
  const entries: HistoryEntry[] = [];
  return {
    entries,
    done(client, operation, invokedAt, completedAt, result) {
      const id = entries.length + 1;
      entries.push({ id, client, operation, invokedAt, completedAt, result });
      return id;
    },
    pending(client, operation, invokedAt) {
      const id = entries.length + 1;
      entries.push({ id, client, operation, invokedAt, completedAt: null, result: null });
      return id;
    },
  };
}

const put = (key: string, value: string): KvOperation => ({ kind: 'put', key, value });
const get = (key: string): KvOperation => ({ kind: 'get', key });
const remove = (key: string): KvOperation => ({ kind: 'delete', key });
const cas = (key: string, expected: string | null, value: string): KvOperation => ({
  kind: 'cas',
  key,
  expected,
  value,
});
const ok: KvResult = { kind: 'ok' };
const read = (value: string | null): KvResult => ({ kind: 'value', value });
const casResult = (succeeded: boolean): KvResult => ({ kind: 'cas', succeeded });

function assertLinearizable(verdict: LinearizabilityVerdict): void {
  assert.equal(verdict.linearizable, true, verdict.failure?.explanation);
  assert.equal(verdict.failure, null);
  assert.deepEqual(verdict.inconclusiveKeys, []);
}

function assertNotLinearizable(verdict: LinearizabilityVerdict, key: string): readonly number[] {
  assert.equal(verdict.linearizable, false);
  assert.ok(verdict.failure !== null);
  assert.equal(verdict.failure.key, key);
  assert.ok(verdict.failure.operations.length > 0);
  assert.match(verdict.failure.explanation, new RegExp(`Key "${key}" is not linearizable`));
  return verdict.failure.operations.map((entry) => entry.id);
}

// ---------------------------------------------------------------------------------------------
// Hand-written histories

describe('checkLinearizability: hand-written histories', () => {
  test('an empty history is linearizable', () => {
    const verdict = checkLinearizability([]);
    assertLinearizable(verdict);
    assert.equal(verdict.statesExplored, 0);
  });

  test('sequential put, get, delete, cas follow the register semantics', () => {
    const history = historyBuilder();
    history.done('a', get('x'), 0, 1, read(null));
    history.done('a', put('x', '01'), 2, 3, ok);
    history.done('a', get('x'), 4, 5, read('01'));
    history.done('a', cas('x', '01', '02'), 6, 7, casResult(true));
    history.done('a', cas('x', '01', '03'), 8, 9, casResult(false));
    history.done('a', get('x'), 10, 11, read('02'));
    history.done('a', remove('x'), 12, 13, ok);
    history.done('a', get('x'), 14, 15, read(null));
    history.done('a', cas('x', null, '04'), 16, 17, casResult(true));
    history.done('a', get('x'), 18, 19, read('04'));
    const verdict = checkLinearizability(history.entries);
    assertLinearizable(verdict);
    assert.ok(verdict.statesExplored >= 10);
  });

  test('concurrent operations may be ordered either way', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 10, ok);
    history.done('b', get('x'), 1, 2, read('01'));
    history.done('c', get('x'), 1, 3, read(null)); // linearized before the put, b's get after it
    history.done('d', put('x', '02'), 0, 12, ok);
    history.done('b', get('x'), 13, 14, read('01')); // so 02 was written between c's get and 01
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('stale read after a completed write is caught, with a minimal window', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    const newer = history.done('b', put('x', '02'), 2, 3, ok);
    const stale = history.done('c', get('x'), 4, 5, read('01'));
    history.done('c', get('x'), 6, 7, read('02'));
    const window = assertNotLinearizable(checkLinearizability(history.entries), 'x');
    assert.deepEqual(window, [newer, stale]);
  });

  test('two concurrent writes observed in contradicting orders are caught', () => {
    const history = historyBuilder();
    history.done('w1', put('x', 'aa'), 0, 100, ok);
    history.done('w2', put('x', 'bb'), 0, 100, ok);
    history.done('r1', get('x'), 10, 20, read('aa'));
    history.done('r1', get('x'), 30, 40, read('bb'));
    history.done('r2', get('x'), 10, 20, read('bb'));
    history.done('r2', get('x'), 30, 40, read('aa'));
    assertNotLinearizable(checkLinearizability(history.entries), 'x');
  });

  test('the same observations are fine when each reader only sees one order', () => {
    const history = historyBuilder();
    history.done('w1', put('x', 'aa'), 0, 100, ok);
    history.done('w2', put('x', 'bb'), 0, 100, ok);
    history.done('r1', get('x'), 10, 20, read('aa'));
    history.done('r1', get('x'), 30, 40, read('bb'));
    history.done('r2', get('x'), 10, 20, read('aa'));
    history.done('r2', get('x'), 30, 40, read('bb'));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('cas succeeding twice from the same expected value is caught', () => {
    const history = historyBuilder();
    history.done('a', put('x', '00'), 0, 1, ok);
    history.done('b', cas('x', '00', '01'), 2, 10, casResult(true));
    history.done('c', cas('x', '00', '02'), 3, 9, casResult(true));
    assertNotLinearizable(checkLinearizability(history.entries), 'x');
  });

  test('one of two concurrent cas from the same value may fail', () => {
    const history = historyBuilder();
    history.done('a', put('x', '00'), 0, 1, ok);
    history.done('b', cas('x', '00', '01'), 2, 10, casResult(true));
    history.done('c', cas('x', '00', '02'), 3, 9, casResult(false));
    history.done('a', get('x'), 11, 12, read('01'));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('a lost write (acknowledged, then read as absent) is caught', () => {
    const history = historyBuilder();
    const write = history.done('a', put('x', '01'), 0, 1, ok);
    const lost = history.done('b', get('x'), 2, 3, read(null));
    const window = assertNotLinearizable(checkLinearizability(history.entries), 'x');
    assert.deepEqual(window, [write, lost]);
  });

  test('a read of a value never written is caught and reported alone', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 5, ok);
    history.done('b', put('x', '02'), 1, 6, ok);
    const phantom = history.done('c', get('x'), 2, 4, read('ff'));
    history.done('c', get('x'), 7, 8, read('02'));
    const verdict = checkLinearizability(history.entries);
    const window = assertNotLinearizable(verdict, 'x');
    assert.ok(window.includes(phantom));
    assert.match(verdict.failure?.explanation ?? '', /get \[2, 4\] → "ff"/);
  });

  test('a pending put that took effect explains later reads', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    history.pending('b', put('x', '02'), 2); // b crashed before hearing back
    history.done('c', get('x'), 3, 4, read('01'));
    history.done('c', get('x'), 5, 6, read('02'));
    history.done('c', get('x'), 7, 8, read('02'));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('a pending put may also never take effect', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    history.pending('b', put('x', '02'), 2);
    history.pending('b', remove('x'), 2);
    history.pending('b', cas('x', '01', '03'), 2);
    history.pending('b', get('x'), 2);
    history.done('c', get('x'), 3, 4, read('01'));
    history.done('c', get('x'), 50, 60, read('01'));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('a pending operation cannot take effect before it was invoked', () => {
    const history = historyBuilder();
    history.done('c', get('x'), 0, 1, read('02'));
    history.pending('b', put('x', '02'), 2);
    assertNotLinearizable(checkLinearizability(history.entries), 'x');
  });

  test('a pending operation takes effect at most once', () => {
    const history = historyBuilder();
    history.pending('b', put('x', '02'), 0);
    history.done('a', put('x', '01'), 1, 2, ok);
    history.done('c', get('x'), 3, 4, read('02'));
    history.done('c', get('x'), 5, 6, read('01'));
    history.done('c', get('x'), 7, 8, read('02'));
    assertNotLinearizable(checkLinearizability(history.entries), 'x');
  });

  test('pending cas and delete that took effect', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    history.pending('b', cas('x', '01', '02'), 2);
    history.done('c', get('x'), 3, 4, read('02'));
    history.done('c', cas('x', '01', '03'), 5, 6, casResult(false));
    history.pending('d', remove('x'), 7);
    history.done('c', get('x'), 8, 9, read(null));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test('a pending write matters for failed cas even when its value is never read', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    history.pending('b', put('x', '02'), 2); // never read, but explains the failed cas
    history.done('c', cas('x', '01', '03'), 3, 4, casResult(false));
    assertLinearizable(checkLinearizability(history.entries));
  });

  test("one client's overlapping operations are ordered only by real time", () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 10, ok);
    history.done('a', put('x', '02'), 1, 3, ok);
    history.done('a', get('x'), 2, 4, read(null));
    history.done('a', get('x'), 5, 6, read('02'));
    history.done('a', get('x'), 11, 12, read('01')); // 01 was linearized after 02
    assertLinearizable(checkLinearizability(history.entries));

    const contradicting = historyBuilder();
    contradicting.done('a', put('x', '01'), 0, 10, ok);
    contradicting.done('a', put('x', '02'), 1, 3, ok);
    contradicting.done('a', get('x'), 4, 5, read('01'));
    contradicting.done('a', get('x'), 11, 12, read('02'));
    assertNotLinearizable(checkLinearizability(contradicting.entries), 'x');
  });

  test('touching intervals count as concurrent; strictly ordered ones do not', () => {
    const touching = historyBuilder();
    touching.done('a', put('x', '01'), 0, 5, ok);
    touching.done('b', get('x'), 5, 6, read(null));
    assertLinearizable(checkLinearizability(touching.entries));

    const ordered = historyBuilder();
    ordered.done('a', put('x', '01'), 0, 5, ok);
    ordered.done('b', get('x'), 6, 7, read(null));
    assertNotLinearizable(checkLinearizability(ordered.entries), 'x');
  });

  test('a result of the wrong kind is not linearizable', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, read('01'));
    const verdict = checkLinearizability(history.entries);
    assertNotLinearizable(verdict, 'x');
    assert.match(verdict.failure?.explanation ?? '', /wrong kind/);
  });

  test('keys are independent and the failing key is reported', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 1, ok);
    history.done('a', put('y', '01'), 0, 1, ok);
    history.done('b', get('y'), 2, 3, read('01'));
    history.done('b', get('x'), 2, 3, read('01'));
    // Reading y's value under key z is a read of a value never written to z.
    history.done('b', get('z'), 4, 5, read('01'));
    assertNotLinearizable(checkLinearizability(history.entries), 'z');
  });

  test('of several failing keys the earliest failure is reported and the others named', () => {
    const history = historyBuilder();
    history.done('a', get('late'), 10, 11, read('99'));
    history.done('a', get('early'), 0, 1, read('99'));
    const verdict = checkLinearizability(history.entries);
    assertNotLinearizable(verdict, 'early');
    assert.match(verdict.failure?.explanation ?? '', /Other keys that failed: "late"/);
  });

  test('entry order does not matter', () => {
    const history = historyBuilder();
    history.done('a', put('x', '01'), 0, 10, ok);
    history.done('b', put('x', '02'), 1, 3, ok);
    history.done('c', get('x'), 4, 5, read('01'));
    history.done('c', get('x'), 11, 12, read('02'));
    const forward = checkLinearizability(history.entries);
    const backward = checkLinearizability([...history.entries].reverse());
    assert.deepEqual(backward, forward);
  });

  test('an exhausted budget marks the key inconclusive instead of hanging', () => {
    // Many concurrent writes, then an impossible read: proving that needs every order tried, far
    // more than 50 configurations, so the verdict is "linearizable" but unproven.
    const history = historyBuilder();
    for (let writer = 0; writer < 12; writer++) {
      history.done(`w${writer}`, put('x', `v${writer}`), 0, 100, ok);
      history.done(`w${writer}`, cas('x', `v${writer}`, `c${writer}`), 0, 100, casResult(false));
    }
    history.done('r', get('x'), 200, 201, read('nobody-wrote-this'));
    const verdict = checkLinearizability(history.entries, { maxStatesPerKey: 50 });
    assert.equal(verdict.linearizable, true);
    assert.deepEqual(verdict.inconclusiveKeys, ['x']);
    assert.ok(verdict.statesExplored <= 50);
  });

  test('malformed histories are rejected', () => {
    const entry: HistoryEntry = {
      id: 1,
      client: 'a',
      operation: put('x', '01'),
      invokedAt: 0,
      completedAt: 1,
      result: ok,
    };
    assert.throws(() => checkLinearizability([entry, entry]), MalformedHistoryError);
    assert.throws(() => checkLinearizability([{ ...entry, completedAt: -1 }]), MalformedHistoryError);
    assert.throws(() => checkLinearizability([{ ...entry, result: null }]), MalformedHistoryError);
    assert.throws(() => checkLinearizability([{ ...entry, completedAt: null }]), MalformedHistoryError);
    assert.throws(() => checkLinearizability([{ ...entry, invokedAt: Number.NaN }]), MalformedHistoryError);
    assert.throws(() => checkLinearizability([entry], { maxStatesPerKey: 0 }), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Generated histories: operations executed one after another against a model, each at a point
// inside its own [invokedAt, completedAt] interval, so the history is linearizable by construction.

interface PlannedOperation {
  readonly keyIndex: number;
  readonly kind: 'put' | 'get' | 'delete' | 'cas';
  /** For cas: 0 expects the current value (succeeds), 1 absent, 2 some earlier value. */
  readonly expectedChoice: number;
  readonly client: number;
  readonly before: number;
  readonly after: number;
  /** Pending operations: the client never hears back; `takesEffect` says whether it happened. */
  readonly pending: boolean;
  readonly takesEffect: boolean;
}

/**
 * Operation i is linearized at time i; its interval reaches `before` back and `after` forward, so
 * the overlap between operations (the concurrency) grows with before + after.
 */
function executePlan(plan: readonly PlannedOperation[], keyCount: number): HistoryEntry[] {
  const state = new Map<string, string | null>();
  const written: string[] = [];
  const entries: HistoryEntry[] = [];
  plan.forEach((planned, index) => {
    const key = `k${planned.keyIndex % keyCount}`;
    const current = state.get(key) ?? null;
    const value = `v${index.toString(16)}`;
    let operation: KvOperation;
    let result: KvResult;
    let next = current;
    switch (planned.kind) {
      case 'put':
        operation = put(key, value);
        result = ok;
        next = value;
        break;
      case 'delete':
        operation = remove(key);
        result = ok;
        next = null;
        break;
      case 'get':
        operation = get(key);
        result = read(current);
        break;
      case 'cas': {
        const choices = [current, null, written[(index * 7) % Math.max(1, written.length)] ?? null];
        const expected = choices[planned.expectedChoice % 3] ?? null;
        const succeeded = current === expected;
        operation = cas(key, expected, value);
        result = casResult(succeeded);
        if (succeeded) next = value;
        break;
      }
    }
    if (planned.kind === 'put' || planned.kind === 'cas') written.push(value);
    const invokedAt = index - planned.before;
    if (planned.pending) {
      if (planned.takesEffect) state.set(key, next);
      entries.push({
        id: index,
        client: `c${planned.client}`,
        operation,
        invokedAt,
        completedAt: null,
        result: null,
      });
    } else {
      state.set(key, next);
      entries.push({
        id: index,
        client: `c${planned.client}`,
        operation,
        invokedAt,
        completedAt: index + planned.after,
        result,
      });
    }
  });
  return entries;
}

const plannedOperation = (maxSpread: number): fc.Arbitrary<PlannedOperation> =>
  fc.record({
    keyIndex: fc.nat(7),
    kind: fc.constantFrom('put', 'get', 'get', 'delete', 'cas', 'cas'),
    expectedChoice: fc.nat(2),
    client: fc.nat(4),
    before: fc.nat(maxSpread),
    after: fc.nat(maxSpread),
    // About one operation in ten never completes.
    pending: fc.nat(9).map((roll) => roll === 0),
    takesEffect: fc.boolean(),
  });

const planArbitrary = fc.record({
  keyCount: fc.integer({ min: 1, max: 4 }),
  plan: fc.array(plannedOperation(6), { minLength: 1, maxLength: 60 }),
});

describe('checkLinearizability: properties', () => {
  test('histories produced by executing against the model are linearizable', () => {
    fc.assert(
      fc.property(planArbitrary, ({ keyCount, plan }) => {
        const entries = executePlan(plan, keyCount);
        const verdict = checkLinearizability(entries);
        assert.equal(verdict.linearizable, true, verdict.failure?.explanation);
        assert.deepEqual(verdict.inconclusiveKeys, []);
      }),
      { numRuns: 300 },
    );
  });

  test('corrupting one read to a value never written makes the history non-linearizable', () => {
    fc.assert(
      fc.property(planArbitrary, fc.nat(), ({ keyCount, plan }, pick) => {
        const entries = executePlan(plan, keyCount);
        const reads = entries.filter((entry) => entry.operation.kind === 'get' && entry.result !== null);
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length]!;
        const corrupted = entries.map((entry) =>
          entry === victim ? { ...entry, result: read('never-written') } : entry,
        );
        const verdict = checkLinearizability(corrupted);
        assert.equal(verdict.linearizable, false);
        assert.equal(verdict.failure?.key, victim.operation.key);
        assert.ok(verdict.failure?.operations.some((entry) => entry.id === victim.id));
      }),
      { numRuns: 300 },
    );
  });

  test('agrees with a brute-force search on small histories with arbitrary results', () => {
    const value = fc.constantFrom<string | null>('a', 'b', null);
    const smallEntry = fc.record({
      key: fc.constantFrom('x', 'y'),
      kind: fc.constantFrom('put', 'get', 'delete', 'cas'),
      argument: fc.constantFrom('a', 'b'),
      expected: value,
      readValue: value,
      succeeded: fc.boolean(),
      invokedAt: fc.nat(6),
      duration: fc.nat(4),
      // About one operation in five never completes.
      pendingRoll: fc.nat(4),
    });
    fc.assert(
      fc.property(fc.array(smallEntry, { minLength: 1, maxLength: 7 }), (generated) => {
        const entries: HistoryEntry[] = generated.map((item, index) => {
          let operation: KvOperation;
          let result: KvResult;
          switch (item.kind) {
            case 'put':
              operation = put(item.key, item.argument);
              result = ok;
              break;
            case 'delete':
              operation = remove(item.key);
              result = ok;
              break;
            case 'get':
              operation = get(item.key);
              result = read(item.readValue);
              break;
            default:
              operation = cas(item.key, item.expected, item.argument);
              result = casResult(item.succeeded);
          }
          const pending = item.pendingRoll === 0;
          return {
            id: index,
            client: `c${index % 3}`,
            operation,
            invokedAt: item.invokedAt,
            completedAt: pending ? null : item.invokedAt + item.duration,
            result: pending ? null : result,
          };
        });
        const verdict = checkLinearizability(entries);
        assert.equal(verdict.linearizable, bruteForceLinearizable(entries));
        if (!verdict.linearizable) assertWindowFails(entries, verdict);
      }),
      { numRuns: 2000 },
    );
  });
});

/**
 * The definition, searched exhaustively: some order of all completed operations and any subset of
 * pending ones, respecting real time (A before B when A completed strictly before B was invoked),
 * in which every recorded result is what the sequential register returns.
 */
function bruteForceLinearizable(entries: readonly HistoryEntry[]): boolean {
  const keys = new Set(entries.map((entry) => entry.operation.key));
  return [...keys].every((key) =>
    bruteForceSequence(
      entries.filter((entry) => entry.operation.key === key),
      null,
    ),
  );
}

/** Brute force for one key from `initial`; entries without a result are optional and unordered after. */
function bruteForceSequence(entries: readonly HistoryEntry[], initial: string | null): boolean {
  const used = new Array<boolean>(entries.length).fill(false);
  const completedCount = entries.filter((entry) => entry.completedAt !== null).length;
  const extend = (state: string | null, placedCompleted: number): boolean => {
    if (placedCompleted === completedCount) return true;
    for (let candidate = 0; candidate < entries.length; candidate++) {
      if (used[candidate]) continue;
      const entry = entries[candidate]!;
      const blocked = entries.some(
        (other, index) => !used[index] && other.completedAt !== null && other.completedAt < entry.invokedAt,
      );
      if (blocked) continue;
      const next = applySequentially(state, entry);
      if (next === undefined) continue;
      used[candidate] = true;
      const found = extend(next, placedCompleted + (entry.completedAt === null ? 0 : 1));
      used[candidate] = false;
      if (found) return true;
    }
    return false;
  };
  return extend(initial, 0);
}

/**
 * Checks a reported failure window by brute force, reading its bounds from the explanation: the
 * key's operations invoked by the prefix end t that had not completed before the window start s,
 * with results after t ignored, admit no linearization from any value the key could hold at s
 * (absent or written by an operation invoked before s), even when operations invoked before s are
 * taken to have happened before the window.
 */
function assertWindowFails(entries: readonly HistoryEntry[], verdict: LinearizabilityVerdict): void {
  const failure = verdict.failure;
  assert.ok(failure !== null);
  const prefixEnd = Number(/ends at time (\S+) /.exec(failure.explanation)?.[1]);
  const startMatch = /held at time (\S+) /.exec(failure.explanation);
  const windowStart = startMatch === null ? null : Number(startMatch[1]);
  assert.ok(Number.isFinite(prefixEnd), failure.explanation);
  const keyEntries = entries.filter((entry) => entry.operation.key === failure.key);
  const window = keyEntries
    .filter((entry) => entry.invokedAt <= prefixEnd)
    .filter((entry) => windowStart === null || entry.completedAt === null || entry.completedAt >= windowStart)
    .map((entry): HistoryEntry =>
      entry.completedAt !== null && entry.completedAt > prefixEnd
        ? { ...entry, completedAt: null, result: null }
        : entry,
    );
  // The checker leaves out pending operations it can prove irrelevant (gets, writes nobody can
  // observe); everything else in the window must be reported.
  const reportedIds = new Set(failure.operations.map((entry) => entry.id));
  const windowIds = new Set(window.map((entry) => entry.id));
  assert.ok([...reportedIds].every((id) => windowIds.has(id)));
  assert.ok(window.every((entry) => reportedIds.has(entry.id) || entry.completedAt === null));
  const reported = window.filter((entry) => reportedIds.has(entry.id));
  if (windowStart === null) {
    assert.equal(bruteForceSequence(reported, null), false);
    return;
  }
  const earlierValues = new Set<string | null>([null]);
  for (const entry of keyEntries) {
    const operation = entry.operation;
    const counted = entry.completedAt !== null || reportedIds.has(entry.id);
    if (counted && entry.invokedAt < windowStart && (operation.kind === 'put' || operation.kind === 'cas')) {
      earlierValues.add(operation.value);
    }
  }
  const skippable = reported.filter((entry) => entry.invokedAt < windowStart && entry.completedAt !== null);
  for (let subset = 0; subset < 1 << skippable.length; subset++) {
    const skipped = new Set(skippable.filter((_, index) => (subset >> index) & 1));
    const remaining = reported.filter((entry) => !skipped.has(entry));
    for (const initial of earlierValues) {
      assert.equal(bruteForceSequence(remaining, initial), false, failure.explanation);
    }
  }
}

/** The state after the entry, or undefined when its recorded result is impossible in `state`. */
function applySequentially(state: string | null, entry: HistoryEntry): string | null | undefined {
  const operation = entry.operation;
  const result = entry.result;
  switch (operation.kind) {
    case 'put':
      return result === null || result.kind === 'ok' ? operation.value : undefined;
    case 'delete':
      return result === null || result.kind === 'ok' ? null : undefined;
    case 'get':
      if (result === null) return state;
      return result.kind === 'value' && result.value === state ? state : undefined;
    case 'cas': {
      const matches = state === operation.expected;
      if (result !== null && (result.kind !== 'cas' || result.succeeded !== matches)) return undefined;
      return matches ? operation.value : state;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Performance

/** Deterministic pseudo-random numbers (mulberry32), so the large histories are reproducible. */
function seededRandom(seed: number): (bound: number) => number {
  let current = seed >>> 0;
  return (bound) => {
    current = (current + 0x6d2b79f5) >>> 0;
    let mixed = current;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return (((mixed ^ (mixed >>> 14)) >>> 0) % bound) >>> 0;
  };
}

function randomPlan(
  random: (bound: number) => number,
  operationCount: number,
  keyCount: number,
  maxSpread: number,
): PlannedOperation[] {
  const kinds = ['put', 'get', 'get', 'get', 'delete', 'cas', 'cas'] as const;
  return Array.from({ length: operationCount }, () => ({
    keyIndex: random(keyCount),
    kind: kinds[random(kinds.length)]!,
    expectedChoice: random(3),
    client: random(8),
    before: random(maxSpread + 1),
    after: random(maxSpread + 1),
    pending: random(50) === 0,
    takesEffect: random(2) === 0,
  }));
}

describe('checkLinearizability: performance', () => {
  test('2000 operations over 20 keys with concurrency about 8 check quickly', (context) => {
    const random = seededRandom(20240601);
    // Intervals reach up to 8 linearization points either way: about 9 operations overlap.
    const entries = executePlan(randomPlan(random, 2000, 20, 8), 20);
    const timed = (): { verdict: LinearizabilityVerdict; elapsed: number } => {
      const started = performance.now();
      const verdict = checkLinearizability(entries);
      return { verdict, elapsed: performance.now() - started };
    };
    const first = timed();
    const repeated = Array.from({ length: 5 }, timed).map((run) => run.elapsed);
    context.diagnostic(
      `2000 ops / 20 keys: first call ${first.elapsed.toFixed(1)} ms, then ` +
        `${repeated.map((elapsed) => elapsed.toFixed(1)).join(' / ')} ms; ${first.verdict.statesExplored} states`,
    );
    assertLinearizable(first.verdict);
    assert.ok(first.elapsed < 2000, `took ${first.elapsed} ms`);
  });

  test('300 operations on one key with concurrency about 8 check quickly, and so does a violation', (context) => {
    const random = seededRandom(7);
    const entries = executePlan(randomPlan(random, 300, 1, 4), 1);
    let started = performance.now();
    const verdict = checkLinearizability(entries);
    let elapsed = performance.now() - started;
    context.diagnostic(`300 ops / 1 key: ${elapsed.toFixed(1)} ms, ${verdict.statesExplored} states`);
    assertLinearizable(verdict);
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);

    const reads = entries.filter((entry) => entry.operation.kind === 'get' && entry.result !== null);
    const victim = reads[Math.floor(reads.length / 2)]!;
    const corrupted = entries.map((entry) => (entry === victim ? { ...entry, result: read('bad') } : entry));
    started = performance.now();
    const failing = checkLinearizability(corrupted);
    elapsed = performance.now() - started;
    context.diagnostic(
      `300 ops / 1 key, one bad read: ${elapsed.toFixed(1)} ms, ${failing.statesExplored} states, ` +
        `window of ${failing.failure?.operations.length} operations`,
    );
    assert.equal(failing.linearizable, false);
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  });
});
