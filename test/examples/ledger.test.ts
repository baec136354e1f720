/**
 * The ledger example (examples/ledger/): its codec, its rules, the invariants under random
 * transfer sequences (fast-check), snapshots in chunks, and a few simulator seeds with Byzantine
 * replicas judged by the ledger's own invariant (simulation.stateProblems).
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { clientId, type ExecutionContext, LIMITS, requestNumber, sequenceNumber } from 'phalanx';
import {
  LEDGER_LIMITS,
  type LedgerOperation,
  type LedgerResult,
  ledgerOperations,
} from '../../examples/ledger/codec.js';
import {
  LEDGER_CHUNK_TARGET_BYTES,
  LedgerService,
  ledgerStateProblems,
  parseSnapshot,
  service as ledgerModule,
} from '../../examples/ledger/service.js';
import { operationOf } from '../../examples/ledger/cli.js';
import { runSimulation } from '../../src/sim/simulator.js';

const ADMIN = 'bank';

function contextOf(client: string): ExecutionContext {
  return { clientId: clientId(client), requestNumber: requestNumber(1), sequence: sequenceNumber(1) };
}

function run(ledger: LedgerService, client: string, operation: LedgerOperation): LedgerResult {
  const bytes = ledgerOperations.encodeOperation(operation);
  const result = ledgerOperations.isReadOnly?.(operation)
    ? ledger.executeReadOnly(bytes)
    : ledger.execute(bytes, contextOf(client));
  const decoded = ledgerOperations.decodeResult(result);
  assert.ok(decoded !== null, 'the service answers only results the codec reads');
  return decoded;
}

function total(ledger: LedgerService): bigint {
  const result = run(ledger, ADMIN, { kind: 'total' });
  assert.equal(result.kind, 'total');
  return result.kind === 'total' ? result.amount : 0n;
}

function balances(ledger: LedgerService): bigint[] {
  return [...parseSnapshot(ledger.snapshot()).accounts.values()].map((account) => account.balance);
}

describe('ledger codec', () => {
  it('round-trips every operation and result, and refuses trailing or truncated bytes', () => {
    const operations: LedgerOperation[] = [
      { kind: 'open', account: 'alice' },
      { kind: 'deposit', account: 'alice', amount: LEDGER_LIMITS.maxAmount },
      { kind: 'transfer', id: 't-1', from: 'alice', to: 'bob', amount: 5n },
      { kind: 'balance', account: 'bob' },
      { kind: 'total' },
    ];
    for (const operation of operations) {
      const bytes = ledgerOperations.encodeOperation(operation);
      assert.deepEqual(ledgerOperations.decodeOperation(bytes), operation);
      assert.equal(ledgerOperations.decodeOperation(Uint8Array.from([...bytes, 0])), null);
      if (bytes.length > 1)
        assert.equal(ledgerOperations.decodeOperation(bytes.subarray(0, bytes.length - 1)), null);
    }
    const results: LedgerResult[] = [
      { kind: 'ok' },
      { kind: 'balance', amount: 7n },
      { kind: 'total', amount: 9n, accounts: 2 },
      { kind: 'rejected', reason: 'overdraft' },
    ];
    for (const result of results)
      assert.deepEqual(ledgerOperations.decodeResult(ledgerOperations.encodeResult(result)), result);
    assert.equal(ledgerOperations.decodeResult(Uint8Array.from([4, 200])), null);
    assert.throws(
      () => ledgerOperations.encodeOperation({ kind: 'open', account: 'no spaces' }),
      /not a ledger name/,
    );
  });

  it('never throws on random bytes (operations come from any client)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const ledger = new LedgerService({ admins: [ADMIN] });
        const answer = ledgerOperations.decodeResult(ledger.execute(bytes, contextOf('x')));
        assert.ok(answer !== null);
      }),
    );
  });

  it('parses the CLI words into operations', () => {
    assert.deepEqual(operationOf(['transfer', 't1', 'a', 'b', '12']), {
      kind: 'transfer',
      id: 't1',
      from: 'a',
      to: 'b',
      amount: 12n,
    });
    assert.deepEqual(operationOf(['total']), { kind: 'total' });
  });
});

describe('ledger rules', () => {
  it('deposits by admins only, transfers by owners only, no overdraft, each transfer id at most once', () => {
    const ledger = new LedgerService({ admins: [ADMIN] });
    assert.deepEqual(run(ledger, 'alice', { kind: 'open', account: 'alice' }), { kind: 'ok' });
    assert.deepEqual(run(ledger, 'bob', { kind: 'open', account: 'bob' }), { kind: 'ok' });
    assert.deepEqual(run(ledger, 'bob', { kind: 'open', account: 'alice' }), {
      kind: 'rejected',
      reason: 'account-exists',
    });
    const deposit: LedgerOperation = { kind: 'deposit', account: 'alice', amount: 100n };
    assert.deepEqual(run(ledger, 'alice', deposit), { kind: 'rejected', reason: 'not-admin' });
    assert.deepEqual(run(ledger, ADMIN, deposit), { kind: 'ok' });
    const transfer = { kind: 'transfer', id: 't1', from: 'alice', to: 'bob', amount: 60n } as const;
    assert.deepEqual(run(ledger, 'bob', transfer), { kind: 'rejected', reason: 'not-owner' });
    assert.deepEqual(run(ledger, 'alice', transfer), { kind: 'ok' });
    assert.deepEqual(run(ledger, 'alice', transfer), { kind: 'rejected', reason: 'duplicate-transfer' });
    assert.deepEqual(run(ledger, 'alice', { ...transfer, id: 't2' }), {
      kind: 'rejected',
      reason: 'overdraft',
    });
    // A refused transfer is not remembered: the same id may be used again.
    assert.deepEqual(run(ledger, 'alice', { ...transfer, id: 't2', amount: 40n }), { kind: 'ok' });
    assert.deepEqual(run(ledger, 'alice', { ...transfer, id: 't3', to: 'carol' }), {
      kind: 'rejected',
      reason: 'unknown-account',
    });
    assert.deepEqual(run(ledger, 'x', { kind: 'balance', account: 'bob' }), {
      kind: 'balance',
      amount: 100n,
    });
    assert.deepEqual(run(ledger, 'x', { kind: 'total' }), { kind: 'total', amount: 100n, accounts: 2 });
    // A read-only request must not change the state.
    const bytes = ledgerOperations.encodeOperation({ kind: 'open', account: 'carol' });
    assert.deepEqual(ledgerOperations.decodeResult(ledger.executeReadOnly(bytes)), {
      kind: 'rejected',
      reason: 'read-only',
    });
  });

  it('keeps the total equal to the deposits and no balance negative under random transfer sequences', () => {
    const accounts = ['a', 'b', 'c', 'd'];
    const clients = ['a', 'b', 'c', 'd', ADMIN];
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('transfer' as const),
        client: fc.constantFrom(...clients),
        id: fc.constantFrom('t1', 't2', 't3', 't4', 't5', 't6'),
        from: fc.constantFrom(...accounts),
        to: fc.constantFrom(...accounts),
        amount: fc.bigInt({ min: 0n, max: 300n }),
      }),
      fc.record({
        kind: fc.constant('deposit' as const),
        client: fc.constantFrom(...clients),
        account: fc.constantFrom(...accounts),
        amount: fc.bigInt({ min: 0n, max: 100n }),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const ledger = new LedgerService({ admins: [ADMIN] });
        for (const account of accounts) run(ledger, account, { kind: 'open', account });
        let deposited = 0n;
        const applied = new Set<string>();
        for (const { client, ...operation } of steps) {
          const before = total(ledger);
          const result = run(ledger, client, operation);
          if (operation.kind === 'deposit' && result.kind === 'ok') deposited += operation.amount;
          if (operation.kind === 'transfer') {
            if (result.kind === 'ok') {
              assert.ok(!applied.has(`${client} ${operation.id}`), 'a transfer id applied twice');
              applied.add(`${client} ${operation.id}`);
            }
            assert.equal(total(ledger), before, 'a transfer changed the total');
          }
          assert.ok(balances(ledger).every((balance) => balance >= 0n));
        }
        assert.equal(total(ledger), deposited);
        assert.equal(
          balances(ledger).reduce((sum, balance) => sum + balance, 0n),
          deposited,
        );
        assert.deepEqual(ledgerStateProblems(ledger.snapshot()), []);
      }),
      { numRuns: 200 },
    );
  });
});

describe('ledger snapshots', () => {
  it('round-trips through restore, in chunks under the limit, independent of execution order', () => {
    const ledger = new LedgerService({ admins: [ADMIN] });
    for (let index = 0; index < 6000; index++) {
      const account = `account-${index.toString().padStart(5, '0')}`;
      run(ledger, 'owner', { kind: 'open', account });
      run(ledger, ADMIN, { kind: 'deposit', account, amount: BigInt(index + 1) });
    }
    for (let index = 1; index < 3000; index++)
      run(ledger, 'owner', {
        kind: 'transfer',
        id: `t${index}`,
        from: `account-${index.toString().padStart(5, '0')}`,
        to: 'account-00000',
        amount: 1n,
      });
    const chunks = ledger.snapshot();
    assert.ok(chunks.length > 2, 'the state spans several chunks');
    assert.ok(chunks.every((chunk) => chunk.length <= LEDGER_CHUNK_TARGET_BYTES));
    assert.ok(LEDGER_CHUNK_TARGET_BYTES <= LIMITS.maxChunkBytes);
    assert.equal(ledger.snapshot(), chunks, 'an unchanged ledger returns the same snapshot');
    const copy = new LedgerService({ admins: [ADMIN] });
    copy.restore(chunks);
    assert.deepEqual(copy.snapshot(), chunks);
    assert.equal(total(copy), total(ledger));
    // The same transfer id is remembered after a restore.
    assert.deepEqual(
      run(copy, 'owner', {
        kind: 'transfer',
        id: 't1',
        from: 'account-00001',
        to: 'account-00002',
        amount: 1n,
      }),
      { kind: 'rejected', reason: 'duplicate-transfer' },
    );
  });

  it('refuses a malformed snapshot and reports a broken invariant', () => {
    const ledger = new LedgerService({ admins: [ADMIN] });
    run(ledger, 'a', { kind: 'open', account: 'a' });
    run(ledger, ADMIN, { kind: 'deposit', account: 'a', amount: 10n });
    const chunks = ledger.snapshot();
    assert.throws(() => new LedgerService({ admins: [] }).restore([]), /missing or unknown header/);
    const inflated = chunks.map((chunk) => Uint8Array.from(chunk));
    inflated[1]![inflated[1]!.length - 1] = 99; // the balance of 'a' is now 99, deposits still 10
    assert.match(ledgerStateProblems(inflated).join(), /money was created or destroyed/);
  });
});

describe('ledger service module', () => {
  it('checks its options against the configuration', () => {
    const clients = [{ id: clientId('admin'), keyspaces: [] }];
    assert.deepEqual(ledgerModule.configProblems?.({ options: { admins: ['admin'] }, clients }), []);
    assert.match(ledgerModule.configProblems!({ options: null, clients }).join(), /needs \{ "admins"/);
    assert.match(
      ledgerModule.configProblems!({ options: { admins: ['mallory'], colour: 'red' }, clients }).join('\n'),
      /colour: unknown option[\s\S]*"mallory" is not a client/,
    );
  });

  it('keeps its invariant on every correct replica in simulated runs with Byzantine replicas', () => {
    for (const seed of [1, 2, 3]) {
      const report = runSimulation({
        seed,
        n: 4,
        f: 1,
        byzantine: 'all',
        service: { module: ledgerModule, options: { admins: ['c0'] } },
      });
      assert.deepEqual(report.violations, [], `seed ${seed}`);
      assert.equal(report.livenessFailure, null, `seed ${seed}`);
      assert.ok(report.requestsCompleted > 0);
    }
  });
});
