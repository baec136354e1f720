import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CLIENT_ID_PATTERN,
  type ClientId,
  clientId,
  digest,
  keyEpoch,
  MAX_COUNTER,
  replicaId,
  requestNumber,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../src/messages/ids.js';
import { ByteReader, ByteWriter, DecodeError, varuintLength } from '../../src/messages/bytes.js';
import {
  decodeEvidence,
  decodeMessage,
  EVIDENCE_TAGS,
  encodeEvidence,
  encodeMessage,
  MESSAGE_TAGS,
} from '../../src/messages/codec.js';
import { LIMITS } from '../../src/messages/limits.js';
import type {
  Checkpoint,
  CheckpointCertificate,
  ClientRequest,
  Evidence,
  MacEntry,
  PreparedEntry,
  SignedProposal,
  ViewChange,
  WireMessage,
} from '../../src/messages/types.js';

// ───────────────────────────── arbitraries ─────────────────────────────

/** fc.record with ordinary prototypes, so that deepStrictEqual compares decoded objects fairly. */
function record<Value>(model: { [Key in keyof Value]: fc.Arbitrary<Value[Key]> }): fc.Arbitrary<Value> {
  return fc.record(model, { noNullPrototype: true });
}

/** Counters biased towards varuint length boundaries, where encoding bugs live. */
const counterValue = fc.oneof(
  fc.nat({ max: 300 }),
  fc.constantFrom(127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 49, MAX_COUNTER),
  fc.integer({ min: 0, max: MAX_COUNTER }),
);
const epochValue = fc.oneof(
  fc.nat({ max: 300 }),
  fc.constantFrom(0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);

const arbitraryView = counterValue.map(viewNumber);
const arbitrarySequence = counterValue.map(sequenceNumber);
const arbitraryRequestNumber = counterValue.map(requestNumber);
const arbitraryKeyEpoch = epochValue.map(keyEpoch);
const arbitraryReplica = fc.integer({ min: 0, max: LIMITS.maxReplicas - 1 }).map(replicaId);
const arbitraryDigest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(digest);
const arbitrarySignature = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(signature);
const arbitraryClientId = fc.stringMatching(CLIENT_ID_PATTERN).map(clientId);
const arbitraryChunkIndex = fc.oneof(
  fc.nat({ max: 200 }),
  fc.constantFrom(LIMITS.maxManifestLeaves - 1),
  fc.nat({ max: LIMITS.maxManifestLeaves - 1 }),
);

const arbitraryMacEntry: fc.Arbitrary<MacEntry> = record({
  keyEpoch: arbitraryKeyEpoch,
  mac: fc.uint8Array({ minLength: 16, maxLength: 16 }),
});

const arbitraryRequest: fc.Arbitrary<ClientRequest> = record({
  kind: fc.constant('request' as const),
  clientId: arbitraryClientId,
  requestNumber: arbitraryRequestNumber,
  readOnly: fc.boolean(),
  operation: fc.uint8Array({ maxLength: 64 }),
  authenticator: fc.array(arbitraryMacEntry, { maxLength: 5 }),
  signature: fc.option(arbitrarySignature, { nil: null }),
});

const arbitraryCertificate: fc.Arbitrary<CheckpointCertificate> = record({
  sequence: arbitrarySequence,
  stateRoot: arbitraryDigest,
  votes: fc.array(
    record({ replicaId: arbitraryReplica, keyEpoch: arbitraryKeyEpoch, signature: arbitrarySignature }),
    { maxLength: 4 },
  ),
});

const arbitraryLogEntry: fc.Arbitrary<PreparedEntry> = record({
  sequence: arbitrarySequence,
  view: arbitraryView,
  batchDigest: arbitraryDigest,
});

const arbitraryViewChange: fc.Arbitrary<ViewChange> = record({
  kind: fc.constant('view-change' as const),
  newView: arbitraryView,
  replicaId: arbitraryReplica,
  checkpoint: arbitraryCertificate,
  prepared: fc.array(arbitraryLogEntry, { maxLength: 4 }),
  prePrepared: fc.array(arbitraryLogEntry, { maxLength: 4 }),
  keyEpoch: arbitraryKeyEpoch,
  signature: arbitrarySignature,
});

const arbitraryCheckpoint: fc.Arbitrary<Checkpoint> = record({
  kind: fc.constant('checkpoint' as const),
  sequence: arbitrarySequence,
  stateRoot: arbitraryDigest,
  replicaId: arbitraryReplica,
  keyEpoch: arbitraryKeyEpoch,
  signature: arbitrarySignature,
});

const arbitraryBatch = fc.array(arbitraryRequest, { maxLength: 5 });

const arbitraryReplyProof = fc
  .record({
    keyEpoch: arbitraryKeyEpoch,
    signature: arbitrarySignature,
    leafCount: fc.integer({ min: 1, max: 1000 }),
    path: fc.array(arbitraryDigest, { maxLength: 10 }),
  })
  .chain((proof) =>
    fc.integer({ min: 0, max: proof.leafCount - 1 }).map((leafIndex) => ({ ...proof, leafIndex })),
  );

const arbitraryReply = record({
  kind: fc.constant('reply' as const),
  view: arbitraryView,
  replicaId: arbitraryReplica,
  clientId: arbitraryClientId,
  requestNumber: arbitraryRequestNumber,
  readOnly: fc.boolean(),
  sequence: arbitrarySequence,
  status: fc.constantFrom('ok' as const, 'error' as const),
  result: fc.uint8Array({ maxLength: 64 }),
  proof: fc.option(arbitraryReplyProof, { nil: null }),
});

const arbitraryKeyCertificate = record({
  replica: arbitraryReplica,
  keyEpoch: arbitraryKeyEpoch,
  signingKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  agreementKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  issuedAtMs: fc.integer({ min: 0, max: 2 ** 50 }),
  signature: arbitrarySignature,
});

/** One arbitrary per message kind; the `satisfies` makes a forgotten kind a type error. */
const messageArbitraries = {
  request: arbitraryRequest,
  reply: arbitraryReply,
  'pre-prepare': record({
    kind: fc.constant('pre-prepare' as const),
    view: arbitraryView,
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    batch: arbitraryBatch,
    keyEpoch: arbitraryKeyEpoch,
    signature: arbitrarySignature,
  }),
  prepare: record({
    kind: fc.constant('prepare' as const),
    view: arbitraryView,
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    replicaId: arbitraryReplica,
    proposalKeyEpoch: arbitraryKeyEpoch,
    proposalSignature: arbitrarySignature,
  }),
  commit: record({
    kind: fc.constant('commit' as const),
    view: arbitraryView,
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    replicaId: arbitraryReplica,
    keyEpoch: arbitraryKeyEpoch,
    signature: arbitrarySignature,
  }),
  'commit-certificate': record({
    kind: fc.constant('commit-certificate' as const),
    view: arbitraryView,
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    commits: fc.array(
      record({ replicaId: arbitraryReplica, keyEpoch: arbitraryKeyEpoch, signature: arbitrarySignature }),
      { maxLength: 4 },
    ),
  }),
  checkpoint: arbitraryCheckpoint,
  'view-change': arbitraryViewChange,
  'new-view': record({
    kind: fc.constant('new-view' as const),
    view: arbitraryView,
    replicaId: arbitraryReplica,
    viewChanges: fc.array(arbitraryViewChange, { maxLength: 3 }),
    keyEpoch: arbitraryKeyEpoch,
    signature: arbitrarySignature,
  }),
  forward: record({ kind: fc.constant('forward' as const), requests: arbitraryBatch }),
  status: record({
    kind: fc.constant('status' as const),
    replicaId: arbitraryReplica,
    view: arbitraryView,
    viewChangeInProgress: fc.boolean(),
    lastExecuted: arbitrarySequence,
    stableCheckpoint: arbitrarySequence,
  }),
  'batch-request': record({
    kind: fc.constant('batch-request' as const),
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
  }),
  batch: record({
    kind: fc.constant('batch' as const),
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    batch: arbitraryBatch,
  }),
  'checkpoint-proof': record({
    kind: fc.constant('checkpoint-proof' as const),
    certificate: arbitraryCertificate,
  }),
  'manifest-request': record({
    kind: fc.constant('manifest-request' as const),
    sequence: arbitrarySequence,
  }),
  manifest: record({
    kind: fc.constant('manifest' as const),
    sequence: arbitrarySequence,
    leaves: fc.array(arbitraryDigest, { maxLength: 5 }),
  }),
  'chunk-request': record({
    kind: fc.constant('chunk-request' as const),
    sequence: arbitrarySequence,
    indices: fc.array(arbitraryChunkIndex, { maxLength: 10 }),
  }),
  chunk: record({
    kind: fc.constant('chunk' as const),
    sequence: arbitrarySequence,
    index: arbitraryChunkIndex,
    data: fc.uint8Array({ maxLength: 100 }),
  }),
  'state-unavailable': record({
    kind: fc.constant('state-unavailable' as const),
    sequence: arbitrarySequence,
    newest: arbitraryCertificate,
  }),
  'request-ack': record({
    kind: fc.constant('request-ack' as const),
    view: arbitraryView,
    requests: fc.array(
      record({
        clientId: arbitraryClientId,
        requestNumber: arbitraryRequestNumber,
        requestDigest: arbitraryDigest,
      }),
      { maxLength: 5 },
    ),
  }),
  decided: record({
    kind: fc.constant('decided' as const),
    sequence: arbitrarySequence,
    batchDigest: arbitraryDigest,
    replicaId: arbitraryReplica,
  }),
  'key-announcement': record({
    kind: fc.constant('key-announcement' as const),
    certificates: fc.array(arbitraryKeyCertificate, { maxLength: 4 }),
  }),
  'evidence-report': fc
    .constant(null)
    .chain(() =>
      record({ kind: fc.constant('evidence-report' as const), evidence: arbitraryEvidenceLazy() }),
    ),
  'certificate-history': record({
    kind: fc.constant('certificate-history' as const),
    certificates: fc.array(arbitraryCertificate, { maxLength: LIMITS.maxCertificateHistory }),
  }),
  'fork-proof': record({
    kind: fc.constant('fork-proof' as const),
    proof: record({
      first: arbitraryCertificate,
      second: arbitraryCertificate,
      equivocations: fc.array(
        record({
          kind: fc.constant('equivocation' as const),
          accused: arbitraryReplica,
          first: arbitrarySignedProposalLazy(),
          second: arbitrarySignedProposalLazy(),
        }),
        { maxLength: 3 },
      ),
      culprits: fc.array(arbitraryReplica, { maxLength: 5 }),
      otherEvidence: fc.array(
        fc
          .constant(null)
          .chain(() => arbitraryEvidenceLazy())
          .filter((evidence) => evidence.kind !== 'equivocation'),
        { maxLength: 2 },
      ),
    }),
  }),
} satisfies { [Kind in WireMessage['kind']]: fc.Arbitrary<Extract<WireMessage, { kind: Kind }>> };

const arbitraryMessage: fc.Arbitrary<WireMessage> = fc.oneof(
  ...Object.values(messageArbitraries).map((arbitrary) => arbitrary as fc.Arbitrary<WireMessage>),
);

const arbitrarySignedProposal: fc.Arbitrary<SignedProposal> = record({
  view: arbitraryView,
  sequence: arbitrarySequence,
  batchDigest: arbitraryDigest,
  keyEpoch: arbitraryKeyEpoch,
  signature: arbitrarySignature,
});

function arbitrarySignedProposalLazy(): fc.Arbitrary<SignedProposal> {
  return fc.constant(null).chain(() => arbitrarySignedProposal);
}

function arbitraryEvidenceLazy(): fc.Arbitrary<Evidence> {
  return arbitraryEvidence;
}

const arbitraryEvidence: fc.Arbitrary<Evidence> = fc.oneof(
  record({
    kind: fc.constant('equivocation' as const),
    accused: arbitraryReplica,
    first: arbitrarySignedProposal,
    second: arbitrarySignedProposal,
  }),
  record({
    kind: fc.constant('conflicting-checkpoint' as const),
    accused: arbitraryReplica,
    certificate: arbitraryCertificate,
    vote: arbitraryCheckpoint,
  }),
  record({
    kind: fc.constant('lying-reply' as const),
    accused: arbitraryReplica,
    reply: arbitraryReply,
    certified: fc.array(arbitraryReply, { maxLength: 4 }),
  }),
  record({
    kind: fc.constant('invalid-new-view' as const),
    accused: arbitraryReplica,
    newView: messageArbitraries['new-view'],
  }),
  record({
    kind: fc.constant('double-commit' as const),
    accused: arbitraryReplica,
    first: arbitrarySignedProposal,
    second: arbitrarySignedProposal,
  }),
);

// ───────────────────────────── helpers ─────────────────────────────

function decodeOk(bytes: Uint8Array): WireMessage {
  const result = decodeMessage(bytes);
  if (!result.ok) assert.fail(`expected a valid message, got: ${result.reason}`);
  return result.value;
}

/** Decodes without ever letting an exception escape unnoticed, and returns the rejection reason. */
function rejectionReason(bytes: Uint8Array): string {
  const result = decodeMessage(bytes);
  if (result.ok) assert.fail(`expected a rejection, decoded a ${result.value.kind}`);
  return result.reason;
}

/** Anything the decoder accepts must be the one canonical encoding of what it decoded. */
function assertNeverThrowsAndCanonical(bytes: Uint8Array): void {
  const result = decodeMessage(bytes);
  if (result.ok) assert.deepEqual(encodeMessage(result.value), bytes);
  else assert.equal(typeof result.reason, 'string');
}

const operationBytes = (length: number): Uint8Array => new Uint8Array(length).fill(7);
const zeroDigest = digest(new Uint8Array(32));
const zeroSignature = signature(new Uint8Array(64));

function minimalRequest(overrides: Partial<ClientRequest> = {}): ClientRequest {
  return {
    kind: 'request',
    clientId: clientId('client-1'),
    requestNumber: requestNumber(1),
    readOnly: false,
    operation: new Uint8Array(0),
    authenticator: [],
    signature: null,
    ...overrides,
  };
}

function minimalViewChange(overrides: Partial<ViewChange> = {}): ViewChange {
  return {
    kind: 'view-change',
    newView: viewNumber(1),
    replicaId: replicaId(0),
    checkpoint: { sequence: sequenceNumber(0), stateRoot: zeroDigest, votes: [] },
    prepared: [],
    prePrepared: [],
    keyEpoch: keyEpoch(0),
    signature: zeroSignature,
    ...overrides,
  };
}

function times<Value>(count: number, make: (index: number) => Value): Value[] {
  return Array.from({ length: count }, (_, index) => make(index));
}

// ───────────────────────────── tests ─────────────────────────────

describe('ByteWriter and ByteReader', () => {
  test('varuint round-trips every safe integer and has the predicted length', () => {
    fc.assert(
      fc.property(fc.array(counterValue, { maxLength: 20 }), (values) => {
        const writer = new ByteWriter(16);
        for (const value of values) writer.varuint(value);
        const bytes = writer.finish();
        assert.equal(
          bytes.length,
          values.reduce((sum, value) => sum + varuintLength(value), 0),
        );
        const reader = new ByteReader(bytes);
        for (const value of values) assert.equal(reader.varuint('value'), value);
        reader.expectEnd('values');
      }),
      { numRuns: 300 },
    );
  });

  test('fixed-width integers, booleans, strings and byte strings round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.uint8Array({ maxLength: 40 }),
        (byte, short, word, flag, text, data) => {
          const writer = new ByteWriter(16);
          writer.u8(byte);
          writer.u16(short);
          writer.u32(word);
          writer.bool(flag);
          writer.string(text);
          writer.lengthPrefixedBytes(data);
          writer.bytes(data);
          const reader = new ByteReader(writer.finish());
          assert.equal(reader.u8('byte'), byte);
          assert.equal(reader.u16('short'), short);
          assert.equal(reader.u32('word'), word);
          assert.equal(reader.bool('flag'), flag);
          assert.equal(reader.string(1000, 'text'), text);
          assert.deepEqual(reader.lengthPrefixedBytes(1000, 'data'), data);
          assert.deepEqual(reader.bytes(data.length, 'raw'), data);
          reader.expectEnd('all');
        },
      ),
      { numRuns: 300 },
    );
  });

  test('finish returns a copy that later writes do not change', () => {
    const writer = new ByteWriter(16);
    writer.u8(1);
    const first = writer.finish();
    writer.reset();
    writer.u8(2);
    assert.deepEqual(first, Uint8Array.of(1));
    assert.deepEqual(writer.finish(), Uint8Array.of(2));
  });

  test('the writer grows past its initial capacity', () => {
    const writer = new ByteWriter(16);
    const data = operationBytes(1000);
    writer.lengthPrefixedBytes(data);
    writer.varuint(MAX_COUNTER);
    assert.equal(writer.length, 2 + 1000 + 8);
    const reader = new ByteReader(writer.finish());
    assert.deepEqual(reader.lengthPrefixedBytes(1000, 'data'), data);
    assert.equal(reader.varuint('counter'), MAX_COUNTER);
  });

  test('out-of-range values are programming errors on the writing side', () => {
    const writer = new ByteWriter();
    assert.throws(() => writer.u8(256));
    assert.throws(() => writer.u16(-1));
    assert.throws(() => writer.u32(2 ** 32));
    assert.throws(() => writer.varuint(MAX_COUNTER + 1));
    assert.throws(() => writer.varuint(1.5));
  });

  test('the reader rejects non-canonical and oversized varuints, bad booleans and short input', () => {
    const expectReason = (bytes: number[], read: (reader: ByteReader) => unknown, pattern: RegExp): void => {
      try {
        read(new ByteReader(Uint8Array.from(bytes)));
        assert.fail('expected a DecodeError');
      } catch (error) {
        assert.ok(error instanceof DecodeError, String(error));
        assert.match(error.reason, pattern);
      }
    };
    expectReason([0x80, 0x00], (reader) => reader.varuint('n'), /non-canonical/);
    expectReason(
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10],
      (reader) => reader.varuint('n'),
      /largest counter/,
    );
    expectReason(
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x8f, 0x01],
      (reader) => reader.varuint('n'),
      /largest/,
    );
    expectReason([0x80], (reader) => reader.varuint('n'), /truncated n/);
    expectReason([], (reader) => reader.u8('tag'), /truncated tag/);
    expectReason([2], (reader) => reader.bool('flag'), /flag must be 0 or 1/);
    expectReason(
      [5, 1, 2],
      (reader) => reader.lengthPrefixedBytes(4, 'blob', 'maxBlob'),
      /blob of 5 bytes exceeds maxBlob \(4\)/,
    );
    expectReason([3, 1, 2], (reader) => reader.lengthPrefixedBytes(4, 'blob'), /truncated blob/);
    expectReason([2, 0xc3, 0x28], (reader) => reader.string(10, 'name'), /not valid UTF-8/);
    expectReason([100], (reader) => reader.count(1000, 'items', 'maxItems', 2), /truncated items/);
    expectReason([1, 0], (reader) => reader.expectEnd('value'), /2 trailing bytes after value/);
    // The largest counter itself is accepted.
    const writer = new ByteWriter();
    writer.varuint(MAX_COUNTER);
    assert.deepEqual([...writer.finish()], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  test('byte fields of a Uint8Array subclass come back as plain Uint8Array views', () => {
    class Subclass extends Uint8Array {}
    const input = new Subclass([3, 1, 2, 3]);
    const field = new ByteReader(input).lengthPrefixedBytes(10, 'field');
    assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype);
    assert.deepEqual(field, Uint8Array.of(1, 2, 3));
    input[1] = 9;
    assert.equal(field[0], 9, 'fields are zero-copy views of the input');
  });
});

describe('message codec round trip', () => {
  for (const [kind, arbitrary] of Object.entries(messageArbitraries)) {
    test(`decode(encode(m)) equals m for ${kind}`, () => {
      fc.assert(
        fc.property(arbitrary as fc.Arbitrary<WireMessage>, (message) => {
          const bytes = encodeMessage(message);
          assert.equal(bytes[0], MESSAGE_TAGS[message.kind]);
          assert.deepStrictEqual(decodeOk(bytes), message);
        }),
        { numRuns: 150 },
      );
    });
  }

  test('encoding is deterministic, also when the scratch buffer was used in between', () => {
    fc.assert(
      fc.property(arbitraryMessage, arbitraryMessage, (message, other) => {
        const first = encodeMessage(message);
        encodeMessage(other);
        assert.deepEqual(encodeMessage(message), first);
        assert.deepEqual(encodeMessage(decodeOk(first)), first);
      }),
      { numRuns: 300 },
    );
  });

  test('the tag table has one distinct tag per kind', () => {
    const tags = Object.values(MESSAGE_TAGS);
    assert.equal(new Set(tags).size, tags.length);
    for (const tag of Object.values(EVIDENCE_TAGS)) assert.ok(!tags.includes(tag as never));
  });

  test('a large batch round-trips', () => {
    const batch = times(100, (index) =>
      minimalRequest({
        requestNumber: requestNumber(index),
        operation: operationBytes(100),
        authenticator: times(4, () => ({ keyEpoch: keyEpoch(3), mac: new Uint8Array(16) })),
      }),
    );
    const message: WireMessage = {
      kind: 'pre-prepare',
      view: viewNumber(7),
      sequence: sequenceNumber(1000),
      batchDigest: zeroDigest,
      batch,
      keyEpoch: keyEpoch(2),
      signature: zeroSignature,
    };
    assert.deepStrictEqual(decodeOk(encodeMessage(message)), message);
  });
});

describe('malformed input never makes the decoder throw', () => {
  test('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), assertNeverThrowsAndCanonical), {
      numRuns: 500,
    });
  });

  test('random bodies behind every valid tag', () => {
    const tags = Object.values(MESSAGE_TAGS);
    fc.assert(
      fc.property(fc.constantFrom(...tags), fc.uint8Array({ maxLength: 300 }), (tag, body) => {
        assertNeverThrowsAndCanonical(Uint8Array.of(tag, ...body));
      }),
      { numRuns: 500 },
    );
  });

  test('every truncation of a valid encoding is rejected', () => {
    fc.assert(
      fc.property(arbitraryMessage, (message) => {
        const bytes = encodeMessage(message);
        for (let length = 0; length < bytes.length; length++) {
          const result = decodeMessage(bytes.subarray(0, length));
          assert.equal(result.ok, false, `prefix of ${length}/${bytes.length} bytes was accepted`);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('single-byte changes are rejected or decode to another canonical message', () => {
    fc.assert(
      fc.property(arbitraryMessage, fc.nat(), fc.integer({ min: 1, max: 255 }), (message, position, mask) => {
        const bytes = encodeMessage(message);
        const changed = bytes.slice();
        const index = position % changed.length;
        changed[index] = changed[index]! ^ mask;
        assertNeverThrowsAndCanonical(changed);
      }),
      { numRuns: 500 },
    );
  });

  test('trailing bytes after a complete message are rejected', () => {
    fc.assert(
      fc.property(arbitraryMessage, fc.uint8Array({ minLength: 1, maxLength: 20 }), (message, extra) => {
        const bytes = encodeMessage(message);
        const longer = new Uint8Array(bytes.length + extra.length);
        longer.set(bytes);
        longer.set(extra, bytes.length);
        assert.match(rejectionReason(longer), /trailing bytes/);
      }),
      { numRuns: 300 },
    );
  });

  test('empty input and unknown tags are rejected', () => {
    assert.match(rejectionReason(new Uint8Array(0)), /truncated message tag/);
    assert.match(rejectionReason(Uint8Array.of(0x00)), /unknown message tag 0x00/);
    assert.match(rejectionReason(Uint8Array.of(0xff, 1, 2)), /unknown message tag 0xff/);
    assert.match(rejectionReason(Uint8Array.of(EVIDENCE_TAGS.equivocation)), /unknown message tag 0x40/);
  });

  test('huge length prefixes and counts are rejected before any allocation', () => {
    const huge = [2 ** 50, MAX_COUNTER];
    for (const length of huge) {
      const operation = new ByteWriter();
      operation.u8(MESSAGE_TAGS.request);
      operation.string('client');
      operation.varuint(1);
      operation.bool(false);
      operation.varuint(length);
      assert.match(rejectionReason(operation.finish()), /operation of \d+ bytes exceeds maxOperationBytes/);

      const leaves = new ByteWriter();
      leaves.u8(MESSAGE_TAGS.manifest);
      leaves.varuint(5);
      leaves.varuint(length);
      assert.match(rejectionReason(leaves.finish()), /manifest leaves count \d+ exceeds maxManifestLeaves/);

      const clientName = new ByteWriter();
      clientName.u8(MESSAGE_TAGS.request);
      clientName.varuint(length);
      assert.match(rejectionReason(clientName.finish()), /client id of \d+ bytes exceeds maxClientIdBytes/);
    }
    // A count within its limit that the input is far too short to hold.
    const short = new ByteWriter();
    short.u8(MESSAGE_TAGS['pre-prepare']);
    short.varuint(1);
    short.varuint(1);
    short.bytes(zeroDigest);
    short.varuint(LIMITS.maxBatchRequests);
    assert.match(rejectionReason(short.finish()), /pre-prepare: truncated batch requests: 4096 announced/);
  });

  test('field-level violations name the field', () => {
    const reply = encodeMessage({
      kind: 'reply',
      view: viewNumber(0),
      replicaId: replicaId(1),
      clientId: clientId('c'),
      requestNumber: requestNumber(1),
      readOnly: false,
      sequence: sequenceNumber(0),
      status: 'ok',
      result: new Uint8Array(0),
      proof: null,
    });
    const badStatus = reply.slice();
    // The status byte comes before the empty result (one length byte) and the proof flag.
    badStatus[badStatus.length - 3] = 2;
    assert.match(rejectionReason(badStatus), /^reply: reply status must be 0 \(ok\) or 1 \(error\), got 2/);

    const status = encodeMessage({
      kind: 'status',
      replicaId: replicaId(1),
      view: viewNumber(1),
      viewChangeInProgress: true,
      lastExecuted: sequenceNumber(1),
      stableCheckpoint: sequenceNumber(0),
    });
    const badFlag = status.slice();
    badFlag[4] = 7;
    assert.match(rejectionReason(badFlag), /status: view change flag must be 0 or 1, got 7/);

    const badSignaturePresence = encodeMessage(minimalRequest());
    badSignaturePresence[badSignaturePresence.length - 1] = 2;
    assert.match(rejectionReason(badSignaturePresence), /request signature presence must be 0 or 1/);

    const overlong = Uint8Array.of(MESSAGE_TAGS['manifest-request'], 0x85, 0x00);
    assert.match(rejectionReason(overlong), /manifest-request: sequence is a non-canonical/);
  });
});

describe('limits', () => {
  const cases: { name: string; limit: string | RegExp; message: () => WireMessage }[] = [
    {
      name: 'a batch of maxBatchRequests + 1 requests',
      limit: 'maxBatchRequests',
      message: () => ({
        kind: 'pre-prepare',
        view: viewNumber(0),
        sequence: sequenceNumber(1),
        batchDigest: zeroDigest,
        batch: times(LIMITS.maxBatchRequests + 1, (index) =>
          minimalRequest({ requestNumber: requestNumber(index) }),
        ),
        keyEpoch: keyEpoch(0),
        signature: zeroSignature,
      }),
    },
    {
      name: 'a batch larger than maxBatchBytes',
      limit: 'maxBatchBytes',
      message: () => ({
        kind: 'batch',
        sequence: sequenceNumber(1),
        batchDigest: zeroDigest,
        batch: times(5, () => minimalRequest({ operation: operationBytes(LIMITS.maxOperationBytes) })),
      }),
    },
    {
      name: 'an operation of maxOperationBytes + 1',
      limit: 'maxOperationBytes',
      message: () => minimalRequest({ operation: operationBytes(LIMITS.maxOperationBytes + 1) }),
    },
    {
      name: 'a result of maxResultBytes + 1',
      limit: 'maxResultBytes',
      message: () => ({
        kind: 'reply',
        view: viewNumber(0),
        replicaId: replicaId(0),
        clientId: clientId('c'),
        requestNumber: requestNumber(0),
        readOnly: true,
        sequence: sequenceNumber(0),
        status: 'ok',
        result: operationBytes(LIMITS.maxResultBytes + 1),
        proof: null,
      }),
    },
    {
      name: 'a client id violating the pattern',
      limit: 'CLIENT_ID_PATTERN',
      message: () => minimalRequest({ clientId: 'no spaces allowed' as ClientId }),
    },
    {
      name: 'an empty client id',
      limit: 'CLIENT_ID_PATTERN',
      message: () => minimalRequest({ clientId: '' as ClientId }),
    },
    {
      name: 'a client id longer than maxClientIdBytes',
      limit: 'maxClientIdBytes',
      message: () => minimalRequest({ clientId: 'a'.repeat(LIMITS.maxClientIdBytes + 1) as ClientId }),
    },
    {
      name: 'more than maxReplicas authenticator entries',
      limit: 'maxReplicas',
      message: () =>
        minimalRequest({
          authenticator: times(LIMITS.maxReplicas + 1, () => ({
            keyEpoch: keyEpoch(0),
            mac: new Uint8Array(16),
          })),
        }),
    },
    {
      name: 'more than maxReplicas certificate votes',
      limit: 'maxReplicas',
      message: () => ({
        kind: 'checkpoint-proof',
        certificate: {
          sequence: sequenceNumber(5),
          stateRoot: zeroDigest,
          votes: times(LIMITS.maxReplicas + 1, (index) => ({
            replicaId: replicaId(index % LIMITS.maxReplicas),
            keyEpoch: keyEpoch(0),
            signature: zeroSignature,
          })),
        },
      }),
    },
    {
      name: 'more than maxReplicas view changes',
      limit: 'maxReplicas',
      message: () => ({
        kind: 'new-view',
        view: viewNumber(1),
        replicaId: replicaId(1),
        viewChanges: times(LIMITS.maxReplicas + 1, () => minimalViewChange()),
        keyEpoch: keyEpoch(0),
        signature: zeroSignature,
      }),
    },
    {
      name: 'a replica id not below maxReplicas',
      limit: 'maxReplicas',
      message: () => ({
        kind: 'commit',
        view: viewNumber(0),
        sequence: sequenceNumber(1),
        batchDigest: zeroDigest,
        replicaId: replicaId(LIMITS.maxReplicas),
        keyEpoch: keyEpoch(0),
        signature: zeroSignature,
      }),
    },
    {
      name: 'more than maxViewChangeEntries prepared entries',
      limit: 'maxViewChangeEntries',
      message: () =>
        minimalViewChange({
          prepared: times(LIMITS.maxViewChangeEntries + 1, (index) => ({
            sequence: sequenceNumber(index),
            view: viewNumber(0),
            batchDigest: zeroDigest,
          })),
        }),
    },
    {
      name: 'more than maxViewChangeEntries pre-prepared entries',
      limit: 'maxViewChangeEntries',
      message: () =>
        minimalViewChange({
          prePrepared: times(LIMITS.maxViewChangeEntries + 1, (index) => ({
            sequence: sequenceNumber(index),
            view: viewNumber(0),
            batchDigest: zeroDigest,
          })),
        }),
    },
    {
      name: 'more than maxForwardedRequests forwarded requests',
      limit: 'maxForwardedRequests',
      message: () => ({
        kind: 'forward',
        requests: times(LIMITS.maxForwardedRequests + 1, () => minimalRequest()),
      }),
    },
    {
      name: 'more than maxManifestLeaves leaves',
      limit: 'maxManifestLeaves',
      message: () => ({
        kind: 'manifest',
        sequence: sequenceNumber(1),
        leaves: times(LIMITS.maxManifestLeaves + 1, () => zeroDigest),
      }),
    },
    {
      name: 'a chunk index not below maxManifestLeaves',
      limit: 'maxManifestLeaves',
      message: () => ({
        kind: 'chunk',
        sequence: sequenceNumber(1),
        index: LIMITS.maxManifestLeaves,
        data: Uint8Array.of(1),
      }),
    },
    {
      name: 'more than maxChunkIndicesPerRequest indices',
      limit: 'maxChunkIndicesPerRequest',
      message: () => ({
        kind: 'chunk-request',
        sequence: sequenceNumber(1),
        indices: times(LIMITS.maxChunkIndicesPerRequest + 1, (index) => index),
      }),
    },
    {
      name: 'chunk data of maxChunkBytes + 1',
      limit: 'maxChunkBytes',
      message: () => ({
        kind: 'chunk',
        sequence: sequenceNumber(1),
        index: 0,
        data: operationBytes(LIMITS.maxChunkBytes + 1),
      }),
    },
    {
      name: 'a certificate history of maxCertificateHistory + 1 certificates',
      limit: 'maxCertificateHistory',
      message: () => ({
        kind: 'certificate-history',
        certificates: times(LIMITS.maxCertificateHistory + 1, (index) => ({
          sequence: sequenceNumber(index),
          stateRoot: zeroDigest,
          votes: [],
        })),
      }),
    },
    {
      name: 'a fork proof naming more than maxReplicas culprits',
      limit: 'maxReplicas',
      message: () => ({
        kind: 'fork-proof',
        proof: {
          first: { sequence: sequenceNumber(8), stateRoot: zeroDigest, votes: [] },
          second: { sequence: sequenceNumber(8), stateRoot: zeroDigest, votes: [] },
          equivocations: [],
          culprits: times(LIMITS.maxReplicas + 1, () => replicaId(0)),
          otherEvidence: [],
        },
      }),
    },
    {
      name: 'a fork proof whose certificate has more than maxReplicas votes',
      limit: 'maxReplicas',
      message: () => ({
        kind: 'fork-proof',
        proof: {
          first: {
            sequence: sequenceNumber(8),
            stateRoot: zeroDigest,
            votes: times(LIMITS.maxReplicas + 1, () => ({
              replicaId: replicaId(0),
              keyEpoch: keyEpoch(0),
              signature: zeroSignature,
            })),
          },
          second: { sequence: sequenceNumber(8), stateRoot: zeroDigest, votes: [] },
          equivocations: [],
          culprits: [],
          otherEvidence: [],
        },
      }),
    },
  ];

  for (const { name, limit, message } of cases) {
    test(`rejects ${name}`, () => {
      const reason = rejectionReason(encodeMessage(message()));
      assert.ok(
        typeof limit === 'string' ? reason.includes(limit) : limit.test(reason),
        `reason does not name ${String(limit)}: ${reason}`,
      );
    });
  }

  test('values exactly at a limit are accepted', () => {
    const atLimits: WireMessage[] = [
      minimalRequest({
        clientId: clientId('a'.repeat(LIMITS.maxClientIdBytes)),
        operation: operationBytes(LIMITS.maxOperationBytes),
        authenticator: times(LIMITS.maxReplicas, () => ({
          keyEpoch: keyEpoch(0xffffffff),
          mac: new Uint8Array(16),
        })),
      }),
      {
        kind: 'batch',
        sequence: sequenceNumber(1),
        batchDigest: zeroDigest,
        batch: times(LIMITS.maxBatchRequests, () => minimalRequest()),
      },
      {
        kind: 'chunk-request',
        sequence: sequenceNumber(1),
        indices: times(LIMITS.maxChunkIndicesPerRequest, () => LIMITS.maxManifestLeaves - 1),
      },
      { kind: 'chunk', sequence: sequenceNumber(1), index: 0, data: operationBytes(LIMITS.maxChunkBytes) },
      {
        kind: 'certificate-history',
        certificates: times(LIMITS.maxCertificateHistory, (index) => ({
          sequence: sequenceNumber(index),
          stateRoot: zeroDigest,
          votes: [],
        })),
      },
    ];
    for (const message of atLimits) assert.deepStrictEqual(decodeOk(encodeMessage(message)), message);
  });

  test('input longer than maxFrameBytes is rejected before decoding', () => {
    const bytes = new Uint8Array(LIMITS.maxFrameBytes + 1);
    bytes[0] = MESSAGE_TAGS.chunk;
    assert.match(rejectionReason(bytes), /exceeds maxFrameBytes \(8388608\)/);
    assert.match(
      (decodeEvidence(bytes) as { reason: string }).reason,
      /exceeds maxFrameBytes/,
      'evidence is bounded too',
    );
  });

  test('a key epoch above 32 bits is rejected', () => {
    const writer = new ByteWriter();
    writer.u8(MESSAGE_TAGS.checkpoint);
    writer.varuint(1);
    writer.bytes(zeroDigest);
    writer.u16(0);
    writer.varuint(2 ** 32);
    writer.bytes(zeroSignature);
    assert.match(
      rejectionReason(writer.finish()),
      /checkpoint key epoch 4294967296 exceeds the largest key epoch/,
    );
  });
});

describe('evidence codec', () => {
  test('decodeEvidence(encodeEvidence(e)) equals e', () => {
    fc.assert(
      fc.property(arbitraryEvidence, (evidence) => {
        const bytes = encodeEvidence(evidence);
        const result = decodeEvidence(bytes);
        if (!result.ok) assert.fail(result.reason);
        assert.deepStrictEqual(result.value, evidence);
        assert.deepEqual(encodeEvidence(evidence), bytes);
      }),
      { numRuns: 300 },
    );
  });

  test('malformed evidence never throws, and evidence and messages are never confused', () => {
    fc.assert(
      fc.property(
        arbitraryEvidence,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (evidence, position, mask) => {
          const bytes = encodeEvidence(evidence);
          for (let length = 0; length < bytes.length; length++) {
            assert.equal(decodeEvidence(bytes.subarray(0, length)).ok, false);
          }
          const changed = bytes.slice();
          changed[position % changed.length]! ^= mask;
          const result = decodeEvidence(changed);
          if (result.ok) assert.deepEqual(encodeEvidence(result.value), changed);
          assert.equal(decodeMessage(bytes).ok, false);
        },
      ),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(arbitraryMessage, (message) =>
        assert.equal(decodeEvidence(encodeMessage(message)).ok, false),
      ),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const result = decodeEvidence(bytes);
        if (result.ok) assert.deepEqual(encodeEvidence(result.value), bytes);
      }),
      { numRuns: 300 },
    );
  });
});
