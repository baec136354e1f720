import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bytesEqual,
  CLIENT_ID_PATTERN,
  clientId,
  type Digest,
  digest,
  keyEpoch,
  MAX_COUNTER,
  replicaId,
  requestNumber,
  sequenceNumber,
  signature,
  toHex,
  viewNumber,
} from '../../src/messages/ids.js';
import { ByteReader } from '../../src/messages/bytes.js';
import { LIMITS } from '../../src/messages/limits.js';
import {
  batchContent,
  checkpointPayload,
  newViewPayload,
  proposalPayload,
  requestContent,
  requestMacPayload,
  SIGNING_DOMAINS,
  viewChangePayload,
} from '../../src/messages/signing.js';
import type {
  CheckpointCertificate,
  ClientRequest,
  NewView,
  PreparedEntry,
  ViewChange,
} from '../../src/messages/types.js';

function record<Value>(model: { [Key in keyof Value]: fc.Arbitrary<Value[Key]> }): fc.Arbitrary<Value> {
  return fc.record(model, { noNullPrototype: true });
}

const counterValue = fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 0, max: MAX_COUNTER }));
const arbitraryView = counterValue.map(viewNumber);
const arbitrarySequence = counterValue.map(sequenceNumber);
const arbitraryKeyEpoch = fc.integer({ min: 0, max: 0xffffffff }).map(keyEpoch);
const arbitraryReplica = fc.integer({ min: 0, max: LIMITS.maxReplicas - 1 }).map(replicaId);
const arbitraryDigest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(digest);
const arbitrarySignature = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(signature);

const arbitraryRequest: fc.Arbitrary<ClientRequest> = record({
  kind: fc.constant('request' as const),
  clientId: fc.stringMatching(CLIENT_ID_PATTERN).map(clientId),
  requestNumber: counterValue.map(requestNumber),
  readOnly: fc.boolean(),
  operation: fc.uint8Array({ maxLength: 48 }),
  authenticator: fc.array(
    record({ keyEpoch: arbitraryKeyEpoch, mac: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
    { maxLength: 4 },
  ),
  signature: fc.option(arbitrarySignature, { nil: null }),
});

const arbitraryCertificate: fc.Arbitrary<CheckpointCertificate> = record({
  sequence: arbitrarySequence,
  stateRoot: arbitraryDigest,
  votes: fc.array(
    record({ replicaId: arbitraryReplica, keyEpoch: arbitraryKeyEpoch, signature: arbitrarySignature }),
    { maxLength: 3 },
  ),
});

const arbitraryEntry: fc.Arbitrary<PreparedEntry> = record({
  sequence: arbitrarySequence,
  view: arbitraryView,
  batchDigest: arbitraryDigest,
});

const arbitraryViewChange: fc.Arbitrary<ViewChange> = record({
  kind: fc.constant('view-change' as const),
  newView: arbitraryView,
  replicaId: arbitraryReplica,
  checkpoint: arbitraryCertificate,
  prepared: fc.array(arbitraryEntry, { maxLength: 3 }),
  prePrepared: fc.array(arbitraryEntry, { maxLength: 3 }),
  keyEpoch: arbitraryKeyEpoch,
  signature: arbitrarySignature,
});

const arbitraryNewView: fc.Arbitrary<NewView> = record({
  kind: fc.constant('new-view' as const),
  view: arbitraryView,
  replicaId: arbitraryReplica,
  viewChanges: fc.array(arbitraryViewChange, { maxLength: 3 }),
  keyEpoch: arbitraryKeyEpoch,
  signature: arbitrarySignature,
});

/** A digest equal to `value` except for its first bit. */
function flipped(value: Digest): Digest {
  const copy = value.slice();
  copy[0] = copy[0]! ^ 1;
  return digest(copy);
}

function flippedSignature(value: Uint8Array): ReturnType<typeof signature> {
  const copy = value.slice();
  copy[63] = copy[63]! ^ 0x80;
  return signature(copy);
}

/** A different counter value (wrapping below the limit). */
function other(value: number, max: number = MAX_COUNTER): number {
  return value === max ? 0 : value + 1;
}

function assertDiffers(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.ok(!bytesEqual(a, b), `payload does not cover ${what}`);
}

function assertSame(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.ok(bytesEqual(a, b), `payload must not cover ${what}`);
}

/** The domain tag a payload starts with, read back with the same primitives. */
function domainOf(payload: Uint8Array): string {
  return new ByteReader(payload).string(100, 'domain');
}

/** One payload per purpose, from the same arbitrary inputs. */
const arbitraryPayloadsByPurpose = fc
  .record({
    request: arbitraryRequest,
    digests: fc.array(arbitraryDigest, { maxLength: 4 }),
    view: arbitraryView,
    sequence: arbitrarySequence,
    digest: arbitraryDigest,
    viewChange: arbitraryViewChange,
    newView: arbitraryNewView,
    replica: arbitraryReplica,
  })
  .map((input) => ({
    request: requestContent(input.request),
    batch: batchContent(input.digests),
    proposal: proposalPayload(input.view, input.sequence, input.digest),
    checkpoint: checkpointPayload(input.sequence, input.digest),
    viewChange: viewChangePayload(input.viewChange),
    newView: newViewPayload(input.newView),
    requestMac: requestMacPayload(input.digest, input.replica),
  }));

describe('signing payloads', () => {
  test('every payload starts with its own domain tag, and the tags are distinct', () => {
    const domains = Object.values(SIGNING_DOMAINS);
    assert.equal(new Set(domains).size, domains.length);
    fc.assert(
      fc.property(arbitraryPayloadsByPurpose, (payloads) => {
        for (const [purpose, payload] of Object.entries(payloads)) {
          assert.equal(domainOf(payload), SIGNING_DOMAINS[purpose as keyof typeof SIGNING_DOMAINS]);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('payloads for different purposes never collide', () => {
    fc.assert(
      fc.property(arbitraryPayloadsByPurpose, arbitraryPayloadsByPurpose, (first, second) => {
        const seen = new Map<string, string>();
        for (const payloads of [first, second]) {
          for (const [purpose, payload] of Object.entries(payloads)) {
            const key = toHex(payload);
            const previous = seen.get(key);
            assert.ok(previous === undefined || previous === purpose, `${purpose} collides with ${previous}`);
            seen.set(key, purpose);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('payloads are deterministic and independent of prior encodings', () => {
    fc.assert(
      fc.property(arbitraryRequest, arbitraryNewView, (request, newView) => {
        const content = requestContent(request);
        const payload = newViewPayload(newView);
        assert.deepEqual(requestContent(request), content);
        assert.deepEqual(newViewPayload(newView), payload);
        // The returned payload is a copy: later encodings do not change it.
        const snapshot = content.slice();
        requestContent({ ...request, operation: new Uint8Array(500) });
        assert.deepEqual(content, snapshot);
      }),
      { numRuns: 200 },
    );
  });

  test('request content covers client id, request number, read-only flag and operation', () => {
    fc.assert(
      fc.property(arbitraryRequest, fc.uint8Array({ maxLength: 48 }), (request, operation) => {
        const base = requestContent(request);
        const otherClient = request.clientId === 'a' ? 'b' : 'a';
        assertDiffers(base, requestContent({ ...request, clientId: clientId(otherClient) }), 'client id');
        assertDiffers(
          base,
          requestContent({ ...request, requestNumber: requestNumber(other(request.requestNumber)) }),
          'request number',
        );
        assertDiffers(base, requestContent({ ...request, readOnly: !request.readOnly }), 'read-only flag');
        const sameOperation = bytesEqual(operation, request.operation);
        assert.equal(bytesEqual(base, requestContent({ ...request, operation })), sameOperation, 'operation');
      }),
      { numRuns: 300 },
    );
  });

  test('request content excludes the authenticator and the signature', () => {
    fc.assert(
      fc.property(arbitraryRequest, arbitraryRequest, (request, donor) => {
        const base = requestContent(request);
        assertSame(base, requestContent({ ...request, authenticator: donor.authenticator }), 'authenticator');
        assertSame(base, requestContent({ ...request, signature: donor.signature }), 'signature');
      }),
      { numRuns: 200 },
    );
  });

  test('request content keeps adjacent fields apart (operation boundaries are unambiguous)', () => {
    const request: ClientRequest = {
      kind: 'request',
      clientId: clientId('ab'),
      requestNumber: requestNumber(1),
      readOnly: false,
      operation: Uint8Array.of(1),
      authenticator: [],
      signature: null,
    };
    const shifted: ClientRequest = { ...request, clientId: clientId('a'), operation: Uint8Array.of(0x62, 1) };
    assertDiffers(requestContent(request), requestContent(shifted), 'field boundaries');
  });

  test('batch content covers every digest, their order and their count', () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryDigest, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        (digests, position) => {
          const base = batchContent(digests);
          const index = position % digests.length;
          const changed = digests.slice();
          changed[index] = flipped(digests[index]!);
          assertDiffers(base, batchContent(changed), `digest ${index}`);
          assertDiffers(base, batchContent(digests.slice(0, -1)), 'count');
          const reversed = digests.slice().reverse();
          const palindrome = digests.every((value, at) => bytesEqual(value, reversed[at]!));
          if (!palindrome) assertDiffers(base, batchContent(reversed), 'order');
        },
      ),
      { numRuns: 200 },
    );
    assert.equal(domainOf(batchContent([])), SIGNING_DOMAINS.batch);
  });

  test('proposal and checkpoint payloads cover every field', () => {
    fc.assert(
      fc.property(arbitraryView, arbitrarySequence, arbitraryDigest, (view, sequence, batchDigest) => {
        const proposal = proposalPayload(view, sequence, batchDigest);
        assertDiffers(proposal, proposalPayload(viewNumber(other(view)), sequence, batchDigest), 'view');
        assertDiffers(
          proposal,
          proposalPayload(view, sequenceNumber(other(sequence)), batchDigest),
          'sequence',
        );
        assertDiffers(proposal, proposalPayload(view, sequence, flipped(batchDigest)), 'batch digest');
        // Swapping view and sequence must not give the same statement.
        if (Number(view) !== Number(sequence)) {
          assertDiffers(
            proposal,
            proposalPayload(viewNumber(sequence), sequenceNumber(view), batchDigest),
            'order',
          );
        }
        const checkpoint = checkpointPayload(sequence, batchDigest);
        assertDiffers(
          checkpoint,
          checkpointPayload(sequenceNumber(other(sequence)), batchDigest),
          'sequence',
        );
        assertDiffers(checkpoint, checkpointPayload(sequence, flipped(batchDigest)), 'state root');
      }),
      { numRuns: 300 },
    );
  });

  test('request MAC payload covers the request digest and the replica', () => {
    fc.assert(
      fc.property(arbitraryDigest, arbitraryReplica, (requestDigest, replica) => {
        const base = requestMacPayload(requestDigest, replica);
        assertDiffers(base, requestMacPayload(flipped(requestDigest), replica), 'request digest');
        const otherReplica = replicaId(other(replica, LIMITS.maxReplicas - 1));
        assertDiffers(base, requestMacPayload(requestDigest, otherReplica), 'replica');
      }),
      { numRuns: 200 },
    );
  });

  test('view change payload covers every field except the signature', () => {
    fc.assert(
      fc.property(
        arbitraryViewChange,
        arbitraryEntry,
        arbitrarySignature,
        (message, entry, otherSignature) => {
          const base = viewChangePayload(message);
          const changes: [string, ViewChange][] = [
            ['new view', { ...message, newView: viewNumber(other(message.newView)) }],
            [
              'replica id',
              { ...message, replicaId: replicaId(other(message.replicaId, LIMITS.maxReplicas - 1)) },
            ],
            ['key epoch', { ...message, keyEpoch: keyEpoch(other(message.keyEpoch, 0xffffffff)) }],
            [
              'checkpoint sequence',
              {
                ...message,
                checkpoint: {
                  ...message.checkpoint,
                  sequence: sequenceNumber(other(message.checkpoint.sequence)),
                },
              },
            ],
            [
              'checkpoint state root',
              {
                ...message,
                checkpoint: { ...message.checkpoint, stateRoot: flipped(message.checkpoint.stateRoot) },
              },
            ],
            [
              'checkpoint votes',
              {
                ...message,
                checkpoint: {
                  ...message.checkpoint,
                  votes: [
                    ...message.checkpoint.votes,
                    { replicaId: replicaId(0), keyEpoch: keyEpoch(0), signature: otherSignature },
                  ],
                },
              },
            ],
            ['prepared entries', { ...message, prepared: [...message.prepared, entry] }],
            ['pre-prepared entries', { ...message, prePrepared: [...message.prePrepared, entry] }],
            // The same entry in P or in Q must not read the same.
            ['P versus Q', { ...message, prepared: message.prePrepared, prePrepared: message.prepared }],
          ];
          for (const [what, changed] of changes) {
            if (what === 'P versus Q' && samePayloadSets(message)) continue;
            assertDiffers(base, viewChangePayload(changed), what);
          }
          assertSame(
            base,
            viewChangePayload({ ...message, signature: flippedSignature(message.signature) }),
            'signature',
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test('new view payload covers every field except its own signature, embedded signatures included', () => {
    fc.assert(
      fc.property(arbitraryNewView, arbitraryViewChange, (message, extra) => {
        const base = newViewPayload(message);
        assertDiffers(base, newViewPayload({ ...message, view: viewNumber(other(message.view)) }), 'view');
        assertDiffers(
          base,
          newViewPayload({
            ...message,
            replicaId: replicaId(other(message.replicaId, LIMITS.maxReplicas - 1)),
          }),
          'replica id',
        );
        assertDiffers(
          base,
          newViewPayload({ ...message, keyEpoch: keyEpoch(other(message.keyEpoch, 0xffffffff)) }),
          'key epoch',
        );
        assertDiffers(
          base,
          newViewPayload({ ...message, viewChanges: [...message.viewChanges, extra] }),
          'view changes',
        );
        const first = message.viewChanges[0];
        if (first !== undefined) {
          const resigned = { ...first, signature: flippedSignature(first.signature) };
          assertDiffers(
            base,
            newViewPayload({ ...message, viewChanges: [resigned, ...message.viewChanges.slice(1)] }),
            'embedded view change signature',
          );
        }
        assertSame(
          base,
          newViewPayload({ ...message, signature: flippedSignature(message.signature) }),
          'signature',
        );
      }),
      { numRuns: 200 },
    );
  });
});

function samePayloadSets(message: ViewChange): boolean {
  const encode = (entries: readonly PreparedEntry[]): string =>
    entries.map((entry) => `${entry.sequence}/${entry.view}/${toHex(entry.batchDigest)}`).join(',');
  return encode(message.prepared) === encode(message.prePrepared);
}
