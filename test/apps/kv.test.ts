import { strict as assert } from 'node:assert';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AccessControl,
  compareKvKeys,
  decodeKvOperation,
  decodeKvResult,
  encodeKvOperation,
  encodeKvResult,
  fnv1a32,
  isReadOnlyOperation,
  KV_LIMITS,
  KV_MAX_SNAPSHOT_CHUNKS,
  type KvOperation,
  type KvResult,
  KvService,
  LARGE_ENTRY_BYTES,
  SMALL_PART_MIN_BYTES,
  validateAccessControlConfig,
} from '../../src/apps/kv/index.js';
import { CLIENT_TABLE_LIMITS } from '../../src/core/client-table.js';
import { decodeKvChunk, encodeKvChunk, type KvStoredEntry } from '../../src/apps/kv/operations.js';
import { clientId, requestNumber, sequenceNumber } from '../../src/messages/ids.js';
import type { ExecutionContext } from '../../src/core/service.js';
import { LIMITS } from '../../src/messages/limits.js';

// ───────────────────────────── helpers ─────────────────────────────

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

function contextFor(name: string): ExecutionContext {
  return { clientId: clientId(name), requestNumber: requestNumber(1), sequence: sequenceNumber(1) };
}

const everything = { admin: { keyspaces: ['*'] } };

function decodeOk(bytes: Uint8Array): KvResult {
  const decoded = decodeKvResult(bytes);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
  return decoded.value;
}

function run(service: KvService, operation: KvOperation, client = 'admin'): KvResult {
  return decodeOk(service.execute(encodeKvOperation(operation), contextFor(client)));
}

function read(service: KvService, operation: KvOperation, client = 'admin'): KvResult {
  return decodeOk(service.executeReadOnly(encodeKvOperation(operation), contextFor(client)));
}

function stored(key: string, value: Uint8Array): KvStoredEntry {
  return { key, keyBytes: text(key), value };
}

/** Byte order of UTF-8, computed independently of compareKvKeys. */
const utf8Order = (left: string, right: string): number => Buffer.compare(text(left), text(right));

function assertSameChunks(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  assert.equal(actual.length, expected.length, 'chunk count');
  actual.forEach((chunk, index) => {
    assert.deepEqual(chunk, expected[index], `chunk ${index}`);
  });
}

// ───────────────────────────── arbitraries ─────────────────────────────

/** fast-check makes null-prototype records by default; deepEqual would tell them apart from decoded ones. */
function record<Model extends object>(model: {
  [Key in keyof Model]: fc.Arbitrary<Model[Key]>;
}): fc.Arbitrary<Model> {
  return fc.record(model).map((value) => ({ ...value }));
}

const keyArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 });
const prefixArb = fc.string({ unit: 'binary', maxLength: 8 });
const valueArb = fc.uint8Array({ maxLength: 64 });

const operationArb: fc.Arbitrary<KvOperation> = fc.oneof(
  record({ kind: fc.constant('put' as const), key: keyArb, value: valueArb }),
  record({ kind: fc.constant('get' as const), key: keyArb }),
  record({ kind: fc.constant('delete' as const), key: keyArb }),
  record({
    kind: fc.constant('compareAndSet' as const),
    key: keyArb,
    expected: fc.option(valueArb, { nil: null }),
    value: valueArb,
  }),
  record({
    kind: fc.constant('list' as const),
    prefix: prefixArb,
    limit: fc.integer({ min: 0, max: KV_LIMITS.maxListResults }),
  }),
);

const resultArb: fc.Arbitrary<KvResult> = fc.oneof(
  record({ kind: fc.constant('ok' as const), existed: fc.boolean() }),
  record({ kind: fc.constant('value' as const), value: fc.option(valueArb, { nil: null }) }),
  record({
    kind: fc.constant('cas' as const),
    succeeded: fc.boolean(),
    current: fc.option(valueArb, { nil: null }),
  }),
  record({
    kind: fc.constant('list' as const),
    entries: fc.array(record({ key: keyArb, value: valueArb }), { maxLength: 8 }),
    truncated: fc.boolean(),
  }),
  record({
    kind: fc.constant('access-denied' as const),
    clientId: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
    keyOrPrefix: prefixArb,
  }),
  record({ kind: fc.constant('bad-request' as const), reason: fc.string({ maxLength: 100 }) }),
  record({
    kind: fc.constant('not-read-only' as const),
    operation: fc.constantFrom('put' as const, 'delete' as const, 'compareAndSet' as const),
  }),
  record({ kind: fc.constant('store-full' as const), reason: fc.string({ maxLength: 100 }) }),
);

// ───────────────────────────── formats ─────────────────────────────

describe('kv operation and result formats', () => {
  it('round-trips every operation', () => {
    fc.assert(
      fc.property(operationArb, (operation) => {
        const decoded = decodeKvOperation(encodeKvOperation(operation));
        assert.deepEqual(decoded, { ok: true, value: operation });
      }),
    );
  });

  it('round-trips every result', () => {
    fc.assert(
      fc.property(resultArb, (result) => {
        assert.deepEqual(decodeKvResult(encodeKvResult(result)), { ok: true, value: result });
      }),
    );
  });

  it('decoders never throw on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeKvOperation(bytes);
        decodeKvResult(bytes);
        decodeKvChunk(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects every truncation and never throws on single-byte corruption', () => {
    fc.assert(
      fc.property(
        operationArb,
        resultArb,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (op, result, at, byte) => {
          for (const [bytes, decode] of [
            [encodeKvOperation(op), decodeKvOperation],
            [encodeKvResult(result), decodeKvResult],
          ] as const) {
            for (let length = 0; length < bytes.length; length++) {
              const decoded = decode(bytes.subarray(0, length));
              assert.equal(decoded.ok, false, `prefix of ${length} bytes must not decode`);
            }
            const corrupted = bytes.slice();
            corrupted[at % corrupted.length] = byte;
            decode(corrupted);
            const extended = new Uint8Array(bytes.length + 1);
            extended.set(bytes);
            assert.equal(decode(extended).ok, false, 'trailing byte must be rejected');
          }
        },
      ),
    );
  });

  it('puts keys in Unicode code point order, the byte order of UTF-8', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (left, right) => {
        assert.equal(Math.sign(compareKvKeys(left, right)), Math.sign(utf8Order(left, right)));
      }),
    );
    assert.ok(compareKvKeys('\uffff', '\u{10000}') < 0, 'BMP private use sorts before astral');
  });

  it('rejects bad input with a reason naming the problem', () => {
    const reasonOf = (bytes: Uint8Array): string => {
      const decoded = decodeKvOperation(bytes);
      assert.equal(decoded.ok, false);
      return decoded.ok ? '' : decoded.reason;
    };
    assert.match(reasonOf(Uint8Array.of(0x7f)), /unknown operation tag 0x7f/);
    assert.match(reasonOf(Uint8Array.of()), /truncated/);
    assert.match(reasonOf(Uint8Array.of(0x12, 0, 2, 0xc3, 0x28)), /not valid UTF-8/);
    assert.match(reasonOf(Uint8Array.of(0x12, 0, 0)), /key must not be empty/);
    assert.match(reasonOf(Uint8Array.of(0x12, 0x04, 0x01)), /key is 1025 bytes, limit 1024/);
    assert.match(
      reasonOf(Uint8Array.of(0x15, 0, 0, 0, 0, 0x03, 0xe9)),
      /limit 1001 exceeds KV_LIMITS\.maxListResults/,
    );
    assert.match(reasonOf(Uint8Array.of(0x14, 0, 1, 0x61, 2)), /presence flag must be 0 or 1/);
    assert.match(reasonOf(new Uint8Array(LIMITS.maxOperationBytes + 1)), /LIMITS\.maxOperationBytes/);
    const hugeValue = Uint8Array.of(0x11, 0, 1, 0x61, 0xff, 0xff, 0xff, 0xff);
    assert.match(reasonOf(hugeValue), /KV_LIMITS\.maxValueBytes/);
  });

  it('keeps a leading U+FEFF as part of the key', () => {
    const operation: KvOperation = { kind: 'get', key: '\ufeffkey' };
    assert.deepEqual(decodeKvOperation(encodeKvOperation(operation)), { ok: true, value: operation });
  });

  it('refuses to encode values that break a limit', () => {
    assert.throws(() => encodeKvOperation({ kind: 'get', key: '' }), /must not be empty/);
    assert.throws(() => encodeKvOperation({ kind: 'get', key: 'x'.repeat(1025) }), /limit 1024/);
    assert.throws(() => encodeKvOperation({ kind: 'get', key: 'a\ud800' }), /lone surrogate/);
    assert.throws(() => encodeKvOperation({ kind: 'list', prefix: '', limit: 1001 }), /maxListResults/);
    const tooBig = new Uint8Array(KV_LIMITS.maxValueBytes + 1);
    assert.throws(() => encodeKvOperation({ kind: 'put', key: 'k', value: tooBig }), /maxValueBytes/);
  });

  it('fits a maximal put into an operation and its get into a result', () => {
    assert.ok(KV_LIMITS.maxValueBytes <= LIMITS.maxOperationBytes);
    const service = new KvService({ accessControl: everything });
    const key = 'k'.repeat(KV_LIMITS.maxKeyBytes);
    const value = new Uint8Array(KV_LIMITS.maxValueBytes).fill(7);
    const put = encodeKvOperation({ kind: 'put', key, value });
    assert.ok(put.length <= LIMITS.maxOperationBytes);
    assert.deepEqual(decodeOk(service.execute(put, contextFor('admin'))), { kind: 'ok', existed: false });
    const got = service.executeReadOnly(encodeKvOperation({ kind: 'get', key }), contextFor('admin'));
    assert.ok(got.length <= LIMITS.maxResultBytes);
    assert.deepEqual(decodeOk(got), { kind: 'value', value });
  });

  it('classifies read-only operations', () => {
    assert.equal(isReadOnlyOperation({ kind: 'get', key: 'k' }), true);
    assert.equal(isReadOnlyOperation({ kind: 'list', prefix: '', limit: 1 }), true);
    assert.equal(isReadOnlyOperation({ kind: 'put', key: 'k', value: text('v') }), false);
    assert.equal(isReadOnlyOperation({ kind: 'delete', key: 'k' }), false);
    assert.equal(
      isReadOnlyOperation({ kind: 'compareAndSet', key: 'k', expected: null, value: text('v') }),
      false,
    );
  });
});

// ───────────────────────────── access control ─────────────────────────────

describe('kv access control', () => {
  const access = new AccessControl({
    alice: { keyspaces: ['users/alice/', 'shared/'] },
    root: { keyspaces: ['*'] },
    everyone: { keyspaces: [''] },
    nobody: { keyspaces: [] },
    // JSON.parse makes "__proto__" an own property, as a config file would.
    ...JSON.parse('{"__proto__": { "keyspaces": ["proto/"] }}'),
  });

  it('allows keys inside a keyspace and nothing else', () => {
    assert.equal(access.allows('alice', 'users/alice/name'), true);
    assert.equal(access.allows('alice', 'shared/readme'), true);
    assert.equal(access.allows('alice', 'users/bob/name'), false);
    assert.equal(access.allows('alice', 'users/alice'), false, 'the keyspace is a prefix, not a directory');
    assert.equal(access.allows('root', 'anything'), true);
    assert.equal(access.allows('everyone', 'anything'), true);
    assert.equal(access.allows('nobody', 'anything'), false);
    assert.equal(access.allows('stranger', 'shared/readme'), false, 'unlisted clients have no access');
    assert.equal(access.allows('__proto__', 'proto/x'), true, 'client ids are plain names');
    assert.equal(access.allows('constructor', 'x'), false);
  });

  it('allows a list only when the prefix lies inside a keyspace', () => {
    assert.equal(access.allowsList('alice', 'users/alice/'), true);
    assert.equal(access.allowsList('alice', 'users/alice/photos/'), true);
    assert.equal(access.allowsList('alice', 'users/'), false);
    assert.equal(access.allowsList('alice', ''), false);
    assert.equal(access.allowsList('root', ''), true);
    assert.equal(access.allowsList('stranger', 'shared/'), false);
  });

  it('explains every problem in a config', () => {
    assert.deepEqual(validateAccessControlConfig({ alice: { keyspaces: ['a/', '*'] } }), []);
    assert.match(validateAccessControlConfig([])[0]!, /must be an object .* got an array/);
    assert.match(validateAccessControlConfig(null)[0]!, /got null/);
    const problems = validateAccessControlConfig({
      'bad id': { keyspaces: [] },
      bob: { keyspace: ['b/'] },
      carol: { keyspaces: 'c/' },
      dave: { keyspaces: [7, 'users/*', 'x'.repeat(1025), '\ud800'] },
      erin: 'all',
    });
    const expected = [
      /client "bad id": not a valid client id/,
      /client "bob": unknown property "keyspace"/,
      /client "bob": "keyspaces" must be an array/,
      /client "carol": "keyspaces" must be an array of key prefixes, got a string/,
      /client "dave": keyspaces\[0\] must be a string, got a number/,
      /client "dave": keyspaces\[1\] "users\/\*": wildcards are not supported/,
      /client "dave": keyspaces\[2\] is longer than KV_LIMITS\.maxKeyBytes/,
      /client "dave": keyspaces\[3\] contains a lone surrogate/,
      /client "erin": must be an object/,
    ];
    assert.equal(problems.length, expected.length, problems.join('\n'));
    expected.forEach((pattern, index) => {
      assert.match(problems[index]!, pattern);
    });
  });

  it('rejects an invalid config when constructed', () => {
    assert.throws(
      () => new AccessControl({ alice: { keyspaces: ['a*'] } }),
      /invalid access control config:\n {2}client "alice"/,
    );
    assert.throws(
      () => new KvService({ accessControl: { 'no spaces': { keyspaces: [] } } }),
      /not a valid client id/,
    );
  });
});

// ───────────────────────────── semantics ─────────────────────────────

describe('kv service operations', () => {
  const newService = (): KvService =>
    new KvService({ accessControl: { ...everything, alice: { keyspaces: ['a/'] } }, bucketCount: 8 });

  it('puts, gets and deletes, reporting whether the key existed', () => {
    const service = newService();
    assert.deepEqual(run(service, { kind: 'get', key: 'k' }), { kind: 'value', value: null });
    assert.deepEqual(run(service, { kind: 'put', key: 'k', value: text('1') }), {
      kind: 'ok',
      existed: false,
    });
    assert.deepEqual(run(service, { kind: 'put', key: 'k', value: text('22') }), {
      kind: 'ok',
      existed: true,
    });
    assert.deepEqual(run(service, { kind: 'get', key: 'k' }), { kind: 'value', value: text('22') });
    assert.equal(service.stateBytes(), 1 + 2);
    assert.equal(service.keyCount(), 1);
    assert.deepEqual(run(service, { kind: 'delete', key: 'k' }), { kind: 'ok', existed: true });
    assert.deepEqual(run(service, { kind: 'delete', key: 'k' }), { kind: 'ok', existed: false });
    assert.deepEqual(run(service, { kind: 'get', key: 'k' }), { kind: 'value', value: null });
    assert.equal(service.stateBytes(), 0);
    assert.deepEqual(run(service, { kind: 'put', key: 'empty', value: new Uint8Array() }), {
      kind: 'ok',
      existed: false,
    });
    assert.deepEqual(run(service, { kind: 'get', key: 'empty' }), { kind: 'value', value: new Uint8Array() });
  });

  it('compares and sets, with null expecting the key to be absent', () => {
    const service = newService();
    const cas = (expected: Uint8Array | null, value: Uint8Array): KvResult =>
      run(service, { kind: 'compareAndSet', key: 'k', expected, value });
    assert.deepEqual(cas(text('x'), text('1')), { kind: 'cas', succeeded: false, current: null });
    assert.deepEqual(cas(null, text('1')), { kind: 'cas', succeeded: true, current: text('1') });
    assert.deepEqual(cas(null, text('2')), { kind: 'cas', succeeded: false, current: text('1') });
    assert.deepEqual(cas(text('9'), text('2')), { kind: 'cas', succeeded: false, current: text('1') });
    assert.deepEqual(cas(text('1'), text('2')), { kind: 'cas', succeeded: true, current: text('2') });
    assert.deepEqual(cas(new Uint8Array(), text('3')), { kind: 'cas', succeeded: false, current: text('2') });
    assert.deepEqual(run(service, { kind: 'get', key: 'k' }), { kind: 'value', value: text('2') });
  });

  it('lists keys under a prefix in code point order, up to the limit', () => {
    const service = newService();
    for (const key of ['b', 'a/2', 'a/10', 'a/1', 'a/\u{1F600}', 'a/\uE000', 'a']) {
      run(service, { kind: 'put', key, value: text(key.toUpperCase()) });
    }
    const keysOf = (result: KvResult): string[] =>
      result.kind === 'list' ? result.entries.map((e) => e.key) : [];
    const all = run(service, { kind: 'list', prefix: 'a/', limit: 1000 });
    assert.deepEqual(keysOf(all), ['a/1', 'a/10', 'a/2', 'a/\uE000', 'a/\u{1F600}']);
    assert.equal(all.kind === 'list' && all.truncated, false);
    assert.deepEqual(all.kind === 'list' && all.entries[0], { key: 'a/1', value: text('A/1') });
    const firstTwo = run(service, { kind: 'list', prefix: 'a/', limit: 2 });
    assert.deepEqual(firstTwo, {
      kind: 'list',
      entries: [
        { key: 'a/1', value: text('A/1') },
        { key: 'a/10', value: text('A/10') },
      ],
      truncated: true,
    });
    assert.deepEqual(run(service, { kind: 'list', prefix: 'a/2', limit: 1 }), {
      kind: 'list',
      entries: [{ key: 'a/2', value: text('A/2') }],
      truncated: false,
    });
    assert.deepEqual(run(service, { kind: 'list', prefix: 'a/', limit: 0 }), {
      kind: 'list',
      entries: [],
      truncated: true,
    });
    assert.deepEqual(run(service, { kind: 'list', prefix: 'c', limit: 0 }), {
      kind: 'list',
      entries: [],
      truncated: false,
    });
    // The key order index is maintained across later writes.
    run(service, { kind: 'delete', key: 'a/10' });
    run(service, { kind: 'put', key: 'a/0', value: text('A/0') });
    run(service, { kind: 'put', key: 'a/3', value: text('A/3') });
    run(service, { kind: 'delete', key: 'a/3' });
    assert.deepEqual(keysOf(run(service, { kind: 'list', prefix: '', limit: 1000 })), [
      'a',
      'a/0',
      'a/1',
      'a/2',
      'a/\uE000',
      'a/\u{1F600}',
      'b',
    ]);
  });

  it('caps a list at KV_LIMITS.maxListResults entries and at LIMITS.maxResultBytes', () => {
    const service = newService();
    for (let index = 0; index < KV_LIMITS.maxListResults + 5; index++) {
      run(service, { kind: 'put', key: `n/${index}`, value: new Uint8Array() });
    }
    const many = run(service, { kind: 'list', prefix: 'n/', limit: KV_LIMITS.maxListResults });
    assert.equal(many.kind === 'list' && many.entries.length, KV_LIMITS.maxListResults);
    assert.equal(many.kind === 'list' && many.truncated, true);

    const big = new Uint8Array(KV_LIMITS.maxValueBytes);
    run(service, { kind: 'put', key: 'big/1', value: big });
    run(service, { kind: 'put', key: 'big/2', value: big });
    const bytes = service.executeReadOnly(
      encodeKvOperation({ kind: 'list', prefix: 'big/', limit: 10 }),
      contextFor('admin'),
    );
    assert.ok(bytes.length <= LIMITS.maxResultBytes);
    const result = decodeOk(bytes);
    assert.equal(result.kind === 'list' && result.entries.length, 1);
    assert.equal(result.kind === 'list' && result.truncated, true);
  });

  it('denies keys and prefixes outside the client keyspaces', () => {
    const service = newService();
    run(service, { kind: 'put', key: 'secret', value: text('s') });
    const denied = (keyOrPrefix: string, client = 'alice') => ({
      kind: 'access-denied',
      clientId: client,
      keyOrPrefix,
    });
    assert.deepEqual(run(service, { kind: 'get', key: 'secret' }, 'alice'), denied('secret'));
    assert.deepEqual(
      run(service, { kind: 'put', key: 'secret', value: text('x') }, 'alice'),
      denied('secret'),
    );
    assert.deepEqual(run(service, { kind: 'delete', key: 'secret' }, 'alice'), denied('secret'));
    assert.deepEqual(
      run(service, { kind: 'compareAndSet', key: 'secret', expected: null, value: text('x') }, 'alice'),
      denied('secret'),
    );
    assert.deepEqual(run(service, { kind: 'list', prefix: '', limit: 10 }, 'alice'), denied(''));
    assert.deepEqual(run(service, { kind: 'list', prefix: 'a', limit: 10 }, 'alice'), denied('a'));
    assert.deepEqual(read(service, { kind: 'get', key: 'secret' }, 'stranger'), denied('secret', 'stranger'));
    assert.deepEqual(run(service, { kind: 'get', key: 'secret' }), { kind: 'value', value: text('s') });

    assert.deepEqual(run(service, { kind: 'put', key: 'a/x', value: text('x') }, 'alice'), {
      kind: 'ok',
      existed: false,
    });
    assert.deepEqual(read(service, { kind: 'list', prefix: 'a/', limit: 10 }, 'alice'), {
      kind: 'list',
      entries: [{ key: 'a/x', value: text('x') }],
      truncated: false,
    });
  });

  it('answers reads read-only and refuses mutations there without applying them', () => {
    const service = newService();
    run(service, { kind: 'put', key: 'k', value: text('v') });
    assert.deepEqual(read(service, { kind: 'get', key: 'k' }), { kind: 'value', value: text('v') });
    const mutations: KvOperation[] = [
      { kind: 'put', key: 'k', value: text('w') },
      { kind: 'delete', key: 'k' },
      { kind: 'compareAndSet', key: 'k', expected: text('v'), value: text('w') },
    ];
    for (const operation of mutations) {
      assert.deepEqual(read(service, operation), { kind: 'not-read-only', operation: operation.kind });
    }
    assert.deepEqual(read(service, { kind: 'get', key: 'k' }), { kind: 'value', value: text('v') });
  });

  it('answers undecodable bytes with bad-request and never throws', () => {
    const service = newService();
    const result = decodeOk(service.execute(Uint8Array.of(0x11, 0, 5), contextFor('admin')));
    assert.equal(result.kind, 'bad-request');
    assert.match(result.kind === 'bad-request' ? result.reason : '', /truncated/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, readOnly) => {
        const context = contextFor('admin');
        const reply = readOnly ? service.executeReadOnly(bytes, context) : service.execute(bytes, context);
        assert.ok(decodeKvResult(reply).ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('copies values so later changes to the request buffer cannot reach the state', () => {
    const service = newService();
    const operation = encodeKvOperation({ kind: 'put', key: 'k', value: text('abc') });
    service.execute(operation, contextFor('admin'));
    operation.fill(0);
    assert.deepEqual(run(service, { kind: 'get', key: 'k' }), { kind: 'value', value: text('abc') });
  });
});

// ───────────────────────────── snapshots ─────────────────────────────

describe('kv snapshots', () => {
  it('starts with one small chunk per bucket', () => {
    const chunks = new KvService({ accessControl: everything }).snapshot();
    assert.equal(chunks.length, 1024);
    assert.equal(new KvService({ accessControl: everything, bucketCount: 3 }).snapshot().length, 3);
    assert.throws(() => new KvService({ accessControl: everything, bucketCount: 0 }), /bucketCount/);
    assert.throws(() => new KvService({ accessControl: everything, bucketCount: 65537 }), /bucketCount/);
  });

  it('is identical on replicas that reach the same state in different orders', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(keyArb, valueArb), { selector: ([key]) => key, maxLength: 40 }),
        (pairs) => {
          const forward = new KvService({ accessControl: everything, bucketCount: 4 });
          const backward = new KvService({ accessControl: everything, bucketCount: 4 });
          for (const [key, value] of pairs) run(forward, { kind: 'put', key, value });
          for (const [key] of pairs) run(backward, { kind: 'put', key, value: text('placeholder') });
          for (const [key, value] of [...pairs].reverse()) run(backward, { kind: 'put', key, value });
          run(backward, { kind: 'put', key: 'temporary', value: text('t') });
          run(backward, { kind: 'delete', key: 'temporary' });
          if (!pairs.some(([key]) => key === 'temporary')) run(forward, { kind: 'delete', key: 'temporary' });
          assertSameChunks(backward.snapshot(), forward.snapshot());
          assert.equal(backward.stateBytes(), forward.stateBytes());
        },
      ),
    );
  });

  it('restores into a fresh service with identical snapshot and answers', () => {
    const source = new KvService({ accessControl: everything, bucketCount: 16 });
    for (let index = 0; index < 200; index++) {
      run(source, { kind: 'put', key: `key/${index}`, value: text(`value ${index}`) });
    }
    run(source, { kind: 'delete', key: 'key/7' });
    const chunks = source.snapshot();
    const copy = new KvService({ accessControl: everything, bucketCount: 16 });
    run(copy, { kind: 'put', key: 'stale', value: text('replaced by restore') });
    copy.restore(chunks);
    assertSameChunks(copy.snapshot(), chunks);
    copy.snapshot().forEach((chunk, index) => {
      assert.equal(chunk, chunks[index], 'restored chunks are reused');
    });
    assert.equal(copy.stateBytes(), source.stateBytes());
    assert.equal(copy.keyCount(), 199);
    for (const operation of [
      { kind: 'list', prefix: 'key/1', limit: 1000 },
      { kind: 'get', key: 'key/7' },
      { kind: 'get', key: 'key/8' },
      { kind: 'get', key: 'stale' },
    ] as const) {
      assert.deepEqual(run(copy, operation), run(source, operation));
    }
    for (const service of [source, copy]) run(service, { kind: 'put', key: 'key/7', value: text('back') });
    assertSameChunks(copy.snapshot(), source.snapshot());
  });

  it('returns the same chunk object for unchanged buckets and a new one for changed buckets', () => {
    const bucketCount = 16;
    const service = new KvService({ accessControl: everything, bucketCount });
    for (let index = 0; index < 100; index++)
      run(service, { kind: 'put', key: `k${index}`, value: text('v') });
    const first = service.snapshot();
    const second = service.snapshot();
    second.forEach((chunk, index) => {
      assert.equal(chunk, first[index]);
    });

    // Reads, failed swaps and deleting an absent key change nothing.
    run(service, { kind: 'get', key: 'k1' });
    run(service, { kind: 'list', prefix: '', limit: 10 });
    run(service, { kind: 'compareAndSet', key: 'k1', expected: null, value: text('w') });
    run(service, { kind: 'delete', key: 'absent' });
    service.snapshot().forEach((chunk, index) => {
      assert.equal(chunk, first[index]);
    });

    run(service, { kind: 'put', key: 'k5', value: text('changed') });
    const changedBucket = fnv1a32(text('k5')) % bucketCount;
    const third = service.snapshot();
    third.forEach((chunk, index) => {
      if (index === changedBucket) assert.notEqual(chunk, first[index]);
      else assert.equal(chunk, first[index], `bucket ${index} should be reused`);
    });
  });

  it('spills a bucket larger than LIMITS.maxChunkBytes into further chunks', () => {
    const service = new KvService({ accessControl: everything, bucketCount: 2 });
    for (let index = 0; index < 10; index++) {
      run(service, {
        kind: 'put',
        key: `big${index}`,
        value: new Uint8Array(KV_LIMITS.maxValueBytes).fill(index),
      });
    }
    const chunks = service.snapshot();
    assert.ok(chunks.length > 2);
    for (const chunk of chunks) assert.ok(chunk.length <= LIMITS.maxChunkBytes);
    const copy = new KvService({ accessControl: everything, bucketCount: 2 });
    copy.restore(chunks);
    assertSameChunks(copy.snapshot(), chunks);
    assert.deepEqual(run(copy, { kind: 'get', key: 'big9' }), {
      kind: 'value',
      value: new Uint8Array(KV_LIMITS.maxValueBytes).fill(9),
    });

    // The same entries split differently are not a snapshot this service could have produced.
    const oneBucket = new KvService({ accessControl: everything, bucketCount: 1 });
    const entries = [stored('a', text('1')), stored('b', text('2'))];
    assert.throws(
      () =>
        oneBucket.restore([
          encodeKvChunk({ bucketCount: 1, bucketIndex: 0, part: 0 }, entries.slice(0, 1)),
          encodeKvChunk({ bucketCount: 1, bucketIndex: 0, part: 1 }, entries.slice(1)),
        ]),
      /bucket 0 is not split into chunks the way snapshot\(\) splits it/,
    );
  });

  it('gives a large entry a chunk of its own that small writes to its bucket leave untouched', () => {
    const service = new KvService({ accessControl: everything, bucketCount: 1 });
    const large = new Uint8Array(LARGE_ENTRY_BYTES).fill(7);
    run(service, { kind: 'put', key: 'a', value: text('small before') });
    run(service, { kind: 'put', key: 'm', value: large });
    run(service, { kind: 'put', key: 'z', value: text('small after') });
    const first = service.snapshot();
    assert.deepEqual(
      first.map((chunk) => {
        const decoded = decodeKvChunk(chunk);
        assert.ok(decoded.ok);
        return decoded.value.entries.map((entry) => entry.key);
      }),
      [['a'], ['m'], ['z']],
    );
    // A small write beside it: the large entry's chunk is the very same object (not copied, not
    // hashed again, and found by digest in storage); the small part changes.
    run(service, { kind: 'put', key: 'b', value: text('another small one') });
    const second = service.snapshot();
    assert.equal(second.length, 3);
    assert.notEqual(second[0], first[0]);
    assert.equal(second[1], first[1]);
    assert.equal(second[2], first[2], 'an unchanged part is reused even though its bucket changed');
    // Rewriting the large value with the same bytes makes a new entry, but an equal chunk: reused.
    run(service, { kind: 'put', key: 'm', value: new Uint8Array(LARGE_ENTRY_BYTES).fill(7) });
    assert.equal(service.snapshot()[1], first[1]);
    run(service, { kind: 'put', key: 'm', value: new Uint8Array(LARGE_ENTRY_BYTES).fill(8) });
    assert.notEqual(service.snapshot()[1], first[1]);
    // Removing the part before it moves the large entry to part 0: a new chunk, still its own.
    run(service, { kind: 'delete', key: 'a' });
    run(service, { kind: 'delete', key: 'b' });
    const moved = service.snapshot();
    assert.equal(moved.length, 2);
    const header = decodeKvChunk(moved[0]!);
    assert.ok(header.ok);
    assert.deepEqual(header.value.header.part, 0);
    assert.deepEqual(
      header.value.entries.map((entry) => entry.key),
      ['m'],
    );
  });

  it('restores a sole entry without copying its value, and copies values it shares a chunk with', () => {
    const source = new KvService({ accessControl: everything, bucketCount: 1 });
    run(source, { kind: 'put', key: 'a', value: text('small') });
    run(source, { kind: 'put', key: 'b', value: text('small too') });
    run(source, { kind: 'put', key: 'm', value: new Uint8Array(LARGE_ENTRY_BYTES).fill(3) });
    const [shared, sole] = source.snapshot();
    const sharedEntries = decodeKvChunk(shared!);
    const soleEntries = decodeKvChunk(sole!);
    assert.ok(sharedEntries.ok && soleEntries.ok);
    for (const entry of sharedEntries.value.entries) assert.notEqual(entry.value.buffer, shared!.buffer);
    assert.equal(soleEntries.value.entries[0]!.value.buffer, sole!.buffer);

    // Restored, the large value reads back intact and the chunk is returned as it came.
    const copy = new KvService({ accessControl: everything, bucketCount: 1 });
    copy.restore([shared!, sole!]);
    assert.deepEqual(run(copy, { kind: 'get', key: 'm' }), {
      kind: 'value',
      value: new Uint8Array(LARGE_ENTRY_BYTES).fill(3),
    });
    assert.equal(copy.snapshot()[1], sole);
    // Overwriting it leaves the restored chunk (and the view into it) unchanged.
    run(copy, { kind: 'put', key: 'm', value: new Uint8Array(LARGE_ENTRY_BYTES).fill(4) });
    assert.notEqual(copy.snapshot()[1], sole);
    assertSameChunks([sole!], source.snapshot().slice(1));
  });

  it('produces the same chunks incrementally as from scratch, with large entries mixed in', () => {
    const bigValue = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2048 }))
      .map(([fill, extra]) => new Uint8Array(LARGE_ENTRY_BYTES - 32 + extra).fill(fill));
    const anyValue = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 8 }) },
      { weight: 1, arbitrary: bigValue },
    );
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g');
    const step = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), key, value: anyValue }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
      { weight: 2, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 25 }), (steps) => {
        const incremental = new KvService({ accessControl: everything, bucketCount: 2 });
        const state = new Map<string, Uint8Array>();
        for (const action of steps) {
          if (action.kind === 'snapshot') incremental.snapshot();
          else if (action.kind === 'put') {
            run(incremental, action);
            state.set(action.key, action.value);
          } else {
            run(incremental, action);
            state.delete(action.key);
          }
        }
        const fromScratch = new KvService({ accessControl: everything, bucketCount: 2 });
        for (const [entryKey, value] of state) run(fromScratch, { kind: 'put', key: entryKey, value });
        const chunks = incremental.snapshot();
        assertSameChunks(chunks, fromScratch.snapshot());
        const restored = new KvService({ accessControl: everything, bucketCount: 2 });
        restored.restore(chunks);
        assertSameChunks(restored.snapshot(), chunks);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses malformed snapshots with a clear error and keeps its state', () => {
    const service = new KvService({ accessControl: everything, bucketCount: 2 });
    run(service, { kind: 'put', key: 'kept', value: text('yes') });
    const before = service.snapshot();
    const bucketOf = (key: string): number => fnv1a32(text(key)) % 2;
    const keyIn = (bucket: number): string =>
      ['a', 'b', 'c', 'd', 'e'].find((key) => bucketOf(key) === bucket)!;
    const empty = (bucketIndex: number) => encodeKvChunk({ bucketCount: 2, bucketIndex, part: 0 }, []);

    const cases: [readonly Uint8Array[], RegExp][] = [
      [[], /chunks for 0 of 2 buckets/],
      [[empty(0)], /chunks for 1 of 2 buckets/],
      [
        [Uint8Array.of(1, 2, 3), empty(1)],
        /chunk 0 of 2: malformed: kv snapshot chunk: unknown chunk tag 0x01/,
      ],
      [[empty(1), empty(0)], /bucket 1 out of order, expected bucket 0/],
      [[empty(0), empty(0)], /bucket 0 part 0 out of order, expected part 1/],
      [
        [empty(0), new KvService({ accessControl: everything, bucketCount: 3 }).snapshot()[1]!],
        /written by a service with 3 buckets, this one has 2/,
      ],
      [
        [encodeKvChunk({ bucketCount: 2, bucketIndex: 0, part: 0 }, [stored(keyIn(1), text('x'))]), empty(1)],
        /does not hash to bucket 0/,
      ],
      [
        [
          empty(0),
          encodeKvChunk({ bucketCount: 2, bucketIndex: 1, part: 0 }, [
            stored(keyIn(1), text('x')),
            stored(keyIn(1), text('y')),
          ]),
        ],
        /keys must ascend/,
      ],
    ];
    for (const [chunks, error] of cases) {
      assert.throws(() => service.restore(chunks), error);
      assertSameChunks(service.snapshot(), before);
    }
    assert.deepEqual(run(service, { kind: 'get', key: 'kept' }), { kind: 'value', value: text('yes') });
  });
});

// ───────────────────────────── model ─────────────────────────────

// ───────────────────────────── chunk budget ─────────────────────────────

describe('kv chunk budget', () => {
  /** Values of any size up to the largest, as views of one buffer (the service keeps them). */
  const pool = Uint8Array.from({ length: KV_LIMITS.maxValueBytes }, (_, index) => (index * 7) & 0xff);
  const sizedValue = fc
    .tuple(
      fc.oneof(
        { weight: 2, arbitrary: fc.integer({ min: 0, max: 64 }) },
        { weight: 2, arbitrary: fc.integer({ min: LARGE_ENTRY_BYTES - 3000, max: LARGE_ENTRY_BYTES - 1 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: KV_LIMITS.maxValueBytes }) },
        { weight: 1, arbitrary: fc.constant(KV_LIMITS.maxValueBytes) },
      ),
      fc.nat(200),
    )
    .map(([bytes, start]) =>
      pool.subarray(Math.min(start, pool.length - bytes), Math.min(start, pool.length - bytes) + bytes),
    );
  // Keys up to the key limit, few enough that overwrites and deletes happen.
  const budgetKey = fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: KV_LIMITS.maxKeyBytes }))
    .map(([index, length]) =>
      `${index}/`.padEnd(length === 1 ? 2 : Math.max(length, 2), 'k').slice(0, Math.max(length, 2)),
    );
  const step = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ kind: fc.constant('put' as const), key: budgetKey, value: sizedValue }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: budgetKey }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('compareAndSet' as const),
        key: budgetKey,
        expected: fc.constant(null),
        value: sizedValue,
      }),
    },
  );

  it('keeps every snapshot within maxChunkBytes per chunk and maxSnapshotChunks in all, refusing writes beyond', () => {
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 100 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 8 }),
        (steps, bucketCount, headroom) => {
          const maxSnapshotChunks = bucketCount + headroom;
          const service = new KvService({ accessControl: everything, bucketCount, maxSnapshotChunks });
          const keys = new Set<string>();
          for (const operation of steps) {
            const before = service.snapshot();
            const result = run(service, operation);
            const chunks = service.snapshot();
            if (result.kind === 'store-full') {
              assert.notEqual(operation.kind, 'delete');
              assert.match(result.reason, /over the store's limit/);
              assert.deepEqual(chunks, before, 'a refused write changed the state');
            } else if (operation.kind === 'delete') {
              keys.delete(operation.key);
            } else if (result.kind === 'ok' || (result.kind === 'cas' && result.succeeded)) {
              keys.add(operation.key);
            }
            assert.ok(
              chunks.length <= service.snapshotChunkBound(),
              `${chunks.length} chunks over the bound`,
            );
            assert.ok(service.snapshotChunkBound() <= maxSnapshotChunks);
            for (const chunk of chunks)
              assert.ok(chunk.length <= LIMITS.maxChunkBytes, `${chunk.length} bytes`);
          }
          assert.equal(service.keyCount(), keys.size);
          const chunks = service.snapshot();
          const restored = new KvService({ accessControl: everything, bucketCount, maxSnapshotChunks });
          restored.restore(chunks);
          assertSameChunks(restored.snapshot(), chunks);
          assert.equal(restored.snapshotChunkBound(), service.snapshotChunkBound());
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses a write that would raise the bound over the limit, and nothing that does not', () => {
    const service = new KvService({ accessControl: everything, bucketCount: 1, maxSnapshotChunks: 5 });
    const large = new Uint8Array(LARGE_ENTRY_BYTES);
    assert.equal(service.snapshotChunkBound(), 1);
    assert.deepEqual(run(service, { kind: 'put', key: 'a', value: large }), { kind: 'ok', existed: false });
    assert.deepEqual(run(service, { kind: 'put', key: 'b', value: large }), { kind: 'ok', existed: false });
    assert.equal(service.snapshotChunkBound(), 5);
    assert.deepEqual(run(service, { kind: 'put', key: 'c', value: large }), {
      kind: 'store-full',
      reason:
        "the write could make the state 7 chunks, over the store's limit of 5 (2 keys, 262146 bytes); " +
        'delete keys or write smaller values',
    });
    assert.equal(
      run(service, { kind: 'compareAndSet', key: 'c', expected: null, value: large }).kind,
      'store-full',
    );
    assert.deepEqual(read(service, { kind: 'get', key: 'c' }), { kind: 'value', value: null });
    // A small entry adds to the bound only once small entries fill a part.
    assert.equal(run(service, { kind: 'put', key: 'c', value: text('small') }).kind, 'ok');
    assert.equal(SMALL_PART_MIN_BYTES, LIMITS.maxChunkBytes - LARGE_ENTRY_BYTES - 15);
    // Overwriting a large entry with another large one does not raise the bound; a delete lowers it.
    assert.equal(
      run(service, { kind: 'put', key: 'a', value: new Uint8Array(LARGE_ENTRY_BYTES + 1) }).kind,
      'ok',
    );
    assert.deepEqual(run(service, { kind: 'delete', key: 'b' }), { kind: 'ok', existed: true });
    assert.equal(run(service, { kind: 'put', key: 'd', value: large }).kind, 'ok');
    assert.ok(service.snapshot().length <= 5);
  });

  it('leaves the client table its share of a checkpoint by default', () => {
    assert.equal(KV_MAX_SNAPSHOT_CHUNKS + CLIENT_TABLE_LIMITS.maxChunks, LIMITS.maxManifestLeaves);
    assert.throws(
      () => new KvService({ accessControl: everything, maxSnapshotChunks: KV_MAX_SNAPSHOT_CHUNKS + 1 }),
      /maxSnapshotChunks/,
    );
    assert.throws(
      () => new KvService({ accessControl: everything, bucketCount: 9, maxSnapshotChunks: 8 }),
      /bucketCount/,
    );
    assert.equal(new KvService({ accessControl: everything, maxSnapshotChunks: 8 }).bucketCount, 8);
  });
});

describe('kv service against a Map model', () => {
  const keys = ['a', 'ab', 'abc', 'b', 'b/x', '\uE000', '\u{1F600}', 'a\u{1F600}', 'a\uE000', '\ufeffa'];
  const prefixes = ['', 'a', 'ab', 'b', 'z', '\uE000', '\u{1F600}'];
  const clients = { admin: () => true, alice: (key: string) => key.startsWith('a') } as const;

  type Step =
    | {
        readonly type: 'op';
        readonly operation: KvOperation;
        readonly client: keyof typeof clients;
        readonly readOnly: boolean;
      }
    | { readonly type: 'snapshot-restore' };

  const modelKey = fc.constantFrom(...keys);
  const modelValue = fc.uint8Array({ maxLength: 4 });
  const modelOperation: fc.Arbitrary<KvOperation> = fc.oneof(
    { weight: 4, arbitrary: record({ kind: fc.constant('put' as const), key: modelKey, value: modelValue }) },
    { weight: 2, arbitrary: record({ kind: fc.constant('get' as const), key: modelKey }) },
    { weight: 2, arbitrary: record({ kind: fc.constant('delete' as const), key: modelKey }) },
    {
      weight: 3,
      arbitrary: record({
        kind: fc.constant('compareAndSet' as const),
        key: modelKey,
        expected: fc.option(modelValue, { nil: null }),
        value: modelValue,
      }),
    },
    {
      weight: 2,
      arbitrary: record({
        kind: fc.constant('list' as const),
        prefix: fc.constantFrom(...prefixes),
        limit: fc.integer({ min: 0, max: 12 }),
      }),
    },
  );
  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 20,
      arbitrary: record({
        type: fc.constant('op' as const),
        operation: modelOperation,
        client: fc.constantFrom('admin' as const, 'alice' as const),
        readOnly: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ type: 'snapshot-restore' as const }) },
  );

  function modelApply(
    model: Map<string, Uint8Array>,
    operation: KvOperation,
    client: keyof typeof clients,
    readOnly: boolean,
  ): KvResult {
    if (readOnly && !isReadOnlyOperation(operation))
      return { kind: 'not-read-only', operation: operation.kind };
    const target = operation.kind === 'list' ? operation.prefix : operation.key;
    if (!clients[client](target)) return { kind: 'access-denied', clientId: client, keyOrPrefix: target };
    switch (operation.kind) {
      case 'get':
        return { kind: 'value', value: model.get(operation.key) ?? null };
      case 'put': {
        const existed = model.has(operation.key);
        model.set(operation.key, operation.value);
        return { kind: 'ok', existed };
      }
      case 'delete':
        return { kind: 'ok', existed: model.delete(operation.key) };
      case 'compareAndSet': {
        const current = model.get(operation.key) ?? null;
        const matches =
          operation.expected === null
            ? current === null
            : current !== null && Buffer.compare(current, operation.expected) === 0;
        if (!matches) return { kind: 'cas', succeeded: false, current };
        model.set(operation.key, operation.value);
        return { kind: 'cas', succeeded: true, current: operation.value };
      }
      case 'list': {
        const matching = [...model.keys()].filter((key) => key.startsWith(operation.prefix)).sort(utf8Order);
        return {
          kind: 'list',
          entries: matching.slice(0, operation.limit).map((key) => ({ key, value: model.get(key)! })),
          truncated: matching.length > operation.limit,
        };
      }
    }
  }

  it('gives the same answers as the model over random operation sequences', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), fc.constantFrom(1, 3, 1024), (steps, bucketCount) => {
        const accessControl = { admin: { keyspaces: ['*'] }, alice: { keyspaces: ['a'] } };
        let service = new KvService({ accessControl, bucketCount });
        const model = new Map<string, Uint8Array>();
        for (const current of steps) {
          if (current.type === 'snapshot-restore') {
            const restored = new KvService({ accessControl, bucketCount });
            restored.restore(service.snapshot());
            service = restored;
            continue;
          }
          const bytes = encodeKvOperation(current.operation);
          const context = contextFor(current.client);
          const actual = current.readOnly
            ? service.executeReadOnly(bytes, context)
            : service.execute(bytes, context);
          const expected = encodeKvResult(
            modelApply(model, current.operation, current.client, current.readOnly),
          );
          assert.deepEqual(decodeOk(actual), decodeOk(expected));
          assert.deepEqual(actual, expected, 'results must be byte-identical');
        }
        assert.equal(service.keyCount(), model.size);
        let modelBytes = 0;
        for (const [key, value] of model) modelBytes += text(key).length + value.length;
        assert.equal(service.stateBytes(), modelBytes);

        // A replica that only saw the final state must agree on every snapshot chunk.
        const fresh = new KvService({ accessControl, bucketCount });
        for (const [key, value] of [...model].sort(([left], [right]) => utf8Order(right, left))) {
          run(fresh, { kind: 'put', key, value });
        }
        assertSameChunks(fresh.snapshot(), service.snapshot());
      }),
      { numRuns: 300 },
    );
  });
});
