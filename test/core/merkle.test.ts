import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesEqual, DIGEST_BYTES, type Digest, digest } from '../../src/messages/ids.js';
import {
  type HashFunction,
  leafDigest,
  merkleProof,
  merkleRoot,
  merkleTree,
  rootFromProof,
} from '../../src/core/merkle.js';

const sha256: HashFunction = (data) => digest(new Uint8Array(createHash('sha256').update(data).digest()));

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const leafPrefix = Uint8Array.of(0x00);
const nodePrefix = Uint8Array.of(0x01);

/** Independent reference: pair up left to right, promote an odd last node unchanged. */
function referenceTree(leaves: readonly Digest[]): Digest {
  if (leaves.length === 0) return sha256(new TextEncoder().encode('phalanx/merkle/empty/v1'));
  let level = [...leaves];
  while (level.length > 1) {
    const next: Digest[] = [];
    for (let index = 0; index < level.length; index += 2) {
      const right = level[index + 1];
      next.push(right === undefined ? level[index]! : sha256(concat(nodePrefix, level[index]!, right)));
    }
    level = next;
  }
  return level[0]!;
}

/** The root commits to the leaf count: 0x02, count as u32 big-endian, tree root. */
function referenceRoot(leaves: readonly Digest[]): Digest {
  const count = new Uint8Array(4);
  new DataView(count.buffer).setUint32(0, leaves.length);
  return sha256(concat(Uint8Array.of(0x02), count, referenceTree(leaves)));
}

const chunkArbitrary = fc.uint8Array({ maxLength: 64 });
const chunksArbitrary = fc.array(chunkArbitrary, { minLength: 1, maxLength: 20 });

function leavesOf(chunks: readonly Uint8Array[]): Digest[] {
  return chunks.map((chunk) => leafDigest(sha256, chunk));
}

describe('leafDigest', () => {
  it('is SHA-256 over 0x00 followed by the chunk', () => {
    fc.assert(
      fc.property(chunkArbitrary, (chunk) => {
        assert.deepEqual(leafDigest(sha256, chunk), sha256(concat(leafPrefix, chunk)));
      }),
    );
  });

  it('is domain-separated from inner nodes: a chunk equal to two child digests does not hash to their parent', () => {
    fc.assert(
      fc.property(chunkArbitrary, chunkArbitrary, (leftChunk, rightChunk) => {
        const left = leafDigest(sha256, leftChunk);
        const right = leafDigest(sha256, rightChunk);
        const innerNode = merkleRoot(sha256, [left, right]);
        const forgedLeaf = leafDigest(sha256, concat(left, right));
        assert.notDeepEqual(forgedLeaf, innerNode);
        // A one-chunk tree over that chunk therefore has another root than the two-chunk tree.
        assert.notDeepEqual(merkleRoot(sha256, [forgedLeaf]), innerNode);
        // And the inner node is not the undecorated hash either (the 0x01 prefix is really there).
        assert.notDeepEqual(innerNode, sha256(concat(left, right)));
        assert.notDeepEqual(referenceTree([left, right]), sha256(concat(left, right)));
      }),
      { numRuns: 50 },
    );
  });
});

describe('merkleRoot', () => {
  it('matches an independent reference implementation (pairs, odd node promoted)', () => {
    fc.assert(
      fc.property(chunksArbitrary, (chunks) => {
        const leaves = leavesOf(chunks);
        assert.deepEqual(merkleRoot(sha256, leaves), referenceRoot(leaves));
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic and leaves its input untouched', () => {
    fc.assert(
      fc.property(chunksArbitrary, (chunks) => {
        const leaves = leavesOf(chunks);
        const copy = leaves.map((leaf) => digest(Uint8Array.from(leaf)));
        const first = merkleRoot(sha256, leaves);
        const second = merkleRoot(sha256, copy);
        assert.equal(first.length, DIGEST_BYTES);
        assert.deepEqual(first, second);
        assert.deepEqual(leaves, copy);
      }),
    );
  });

  it('changes when any leaf changes', () => {
    fc.assert(
      fc.property(chunksArbitrary, fc.nat(), fc.integer({ min: 0, max: 255 }), (chunks, where, delta) => {
        const index = where % chunks.length;
        const changed = chunks.map((chunk) => Uint8Array.from(chunk));
        const target = changed[index]!;
        // Either flip a byte or, for an empty chunk, append one: the chunk is different either way.
        changed[index] =
          target.length === 0
            ? Uint8Array.of(delta)
            : Uint8Array.from(target, (byte, position) => (position === 0 ? byte ^ (delta | 1) : byte));
        assert.notDeepEqual(merkleRoot(sha256, leavesOf(changed)), merkleRoot(sha256, leavesOf(chunks)));
      }),
      { numRuns: 200 },
    );
  });

  it('depends on the order of the leaves', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(chunkArbitrary, {
          minLength: 2,
          maxLength: 20,
          comparator: (a, b) => Buffer.compare(a, b) === 0,
        }),
        fc.nat(),
        fc.nat(),
        (chunks, first, second) => {
          const a = first % chunks.length;
          let b = second % chunks.length;
          if (a === b) b = (a + 1) % chunks.length;
          const swapped = [...chunks];
          [swapped[a], swapped[b]] = [swapped[b]!, swapped[a]!];
          assert.notDeepEqual(merkleRoot(sha256, leavesOf(swapped)), merkleRoot(sha256, leavesOf(chunks)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('has a fixed root for the empty tree, distinct from a tree of one empty chunk', () => {
    const empty = merkleRoot(sha256, []);
    assert.deepEqual(empty, merkleRoot(sha256, []));
    assert.deepEqual(empty, referenceRoot([]));
    assert.notDeepEqual(empty, merkleRoot(sha256, [leafDigest(sha256, new Uint8Array(0))]));
  });

  it('commits to the leaf count: no inner level of the tree has the same root as its leaves', () => {
    // A manifest made of an inner level (or of the tree root alone) must not match the certified
    // root, or a faulty replica could make a state transfer reject every honest chunk.
    fc.assert(
      fc.property(fc.array(chunkArbitrary, { minLength: 2, maxLength: 20 }), (chunks) => {
        const leaves = leavesOf(chunks);
        const parents: Digest[] = [];
        for (let index = 0; index < leaves.length; index += 2) {
          const right = leaves[index + 1];
          parents.push(
            right === undefined ? leaves[index]! : sha256(concat(nodePrefix, leaves[index]!, right)),
          );
        }
        assert.notDeepEqual(merkleRoot(sha256, parents), merkleRoot(sha256, leaves));
        assert.notDeepEqual(merkleRoot(sha256, [referenceTree(leaves)]), merkleRoot(sha256, leaves));
      }),
      { numRuns: 100 },
    );
  });
});

/** Independent reference path: siblings bottom-up, none where the node was promoted. */
function referenceProof(leaves: readonly Digest[], index: number): Digest[] {
  const path: Digest[] = [];
  let level = [...leaves];
  let position = index;
  while (level.length > 1) {
    const sibling = position ^ 1;
    if (sibling < level.length) path.push(level[sibling]!);
    const next: Digest[] = [];
    for (let at = 0; at < level.length; at += 2) {
      const right = level[at + 1];
      next.push(right === undefined ? level[at]! : sha256(concat(nodePrefix, level[at]!, right)));
    }
    level = next;
    position >>= 1;
  }
  return path;
}

describe('merkleTree', () => {
  it('has merkleRoot as its root and a reference proof for every leaf, which rootFromProof accepts', () => {
    fc.assert(
      fc.property(chunksArbitrary, (chunks) => {
        const leaves = leavesOf(chunks);
        const tree = merkleTree(sha256, leaves);
        assert.deepEqual(tree.root, referenceRoot(leaves));
        for (let index = 0; index < leaves.length; index++) {
          const path = tree.proof(index);
          assert.deepEqual(path, referenceProof(leaves, index));
          assert.deepEqual(merkleProof(sha256, leaves, index), path);
          assert.deepEqual(rootFromProof(sha256, leaves[index]!, index, leaves.length, path), tree.root);
        }
      }),
    );
  });

  it('proves no leaf under another index or leaf count', () => {
    fc.assert(
      // Distinct chunks: with two equal leaves, leaf 0 under index 1 is a true statement.
      fc.property(
        fc.uniqueArray(chunkArbitrary, { minLength: 2, maxLength: 20, selector: (chunk) => chunk.join(',') }),
        (chunks) => {
          const leaves = leavesOf(chunks);
          const tree = merkleTree(sha256, leaves);
          const path = tree.proof(0);
          const moved = rootFromProof(sha256, leaves[0]!, 1, leaves.length, path);
          assert.ok(moved === null || !bytesEqual(moved, tree.root));
          const recounted = rootFromProof(sha256, leaves[0]!, 0, leaves.length + 1, path);
          assert.ok(recounted === null || !bytesEqual(recounted, tree.root));
        },
      ),
    );
  });

  it('hashes each inner node once, however many proofs are taken', () => {
    for (const count of [1, 2, 3, 17, 64, 1000]) {
      let hashes = 0;
      const counting: HashFunction = (data) => {
        hashes++;
        return sha256(data);
      };
      const leaves = leavesOf(
        Array.from({ length: count }, (_, index) => Uint8Array.of(index & 0xff, index >> 8)),
      );
      const tree = merkleTree(counting, leaves);
      for (let index = 0; index < count; index++) tree.proof(index);
      // n − 1 pairs and the root.
      assert.equal(hashes, count - 1 + 1);
    }
  });

  it('refuses an index outside the tree', () => {
    const tree = merkleTree(sha256, leavesOf([Uint8Array.of(1), Uint8Array.of(2)]));
    assert.throws(() => tree.proof(2), RangeError);
    assert.throws(() => tree.proof(-1), RangeError);
    assert.throws(() => merkleTree(sha256, []).proof(0), RangeError);
  });
});
