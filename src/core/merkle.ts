/**
 * Merkle tree over state chunks. A checkpoint signs only the root; the leaves (one digest per
 * chunk) travel in a manifest and each fetched chunk is checked against its leaf, so a replica
 * can fetch chunks from several sources and reject a bad one without trusting anybody.
 *
 * Leaf and node hashes are domain-separated (0x00 / 0x01 prefix) so that an inner node can never
 * be passed off as a leaf (second-preimage attack on naive Merkle trees). The root also commits
 * to the number of leaves (0x02 prefix): otherwise any inner level of the tree would hash to the
 * same root, and a faulty replica could answer a manifest request with such a level, which the
 * requester would accept and then fail every honest chunk against.
 */
import type { Digest } from '../messages/ids.js';

export type HashFunction = (data: Uint8Array) => Digest;

const leafPrefix = 0x00;
const nodePrefix = 0x01;
const rootPrefix = 0x02;
const emptyTreeTag = new TextEncoder().encode('phalanx/merkle/empty/v1');

export function leafDigest(hash: HashFunction, chunk: Uint8Array): Digest {
  const input = new Uint8Array(chunk.length + 1);
  input[0] = leafPrefix;
  input.set(chunk, 1);
  return hash(input);
}

/** Root over leaf digests and their count; an odd node at a level is promoted unchanged. */
export function merkleRoot(hash: HashFunction, leaves: readonly Digest[]): Digest {
  return merkleTree(hash, leaves).root;
}

/** The root proper: the top node and the leaf count under the root prefix. */
function rootOver(hash: HashFunction, top: Digest, count: number): Digest {
  const input = new Uint8Array(1 + 4 + top.length);
  input[0] = rootPrefix;
  new DataView(input.buffer).setUint32(1, count);
  input.set(top, 5);
  return hash(input);
}

/**
 * A tree built once: its root and a proof for any leaf. Proving every leaf of a batch this way
 * costs one pass over the tree (n − 1 inner hashes) instead of one per leaf (merkleProof rebuilds
 * the tree each time, n² hashes for a batch of n replies).
 */
export interface MerkleTree {
  /** merkleRoot(leaves). */
  readonly root: Digest;
  /** merkleProof(leaves, index). */
  proof(index: number): Digest[];
}

export function merkleTree(hash: HashFunction, leaves: readonly Digest[]): MerkleTree {
  // levels[0] is the leaves, each next level their parents, the last one the top node.
  const levels: Digest[][] = [leaves.slice()];
  const pair = new Uint8Array(1 + 2 * 32);
  pair[0] = nodePrefix;
  for (let level = levels[0]!; level.length > 1;) {
    const next: Digest[] = [];
    for (let at = 0; at + 1 < level.length; at += 2) {
      pair.set(level[at]!, 1);
      pair.set(level[at + 1]!, 33);
      next.push(hash(pair));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    levels.push(next);
    level = next;
  }
  const top = leaves.length === 0 ? hash(emptyTreeTag) : levels[levels.length - 1]![0]!;
  return {
    root: rootOver(hash, top, leaves.length),
    proof(index: number): Digest[] {
      if (!Number.isInteger(index) || index < 0 || index >= leaves.length)
        throw new RangeError(`no leaf ${index} in a tree of ${leaves.length}`);
      const path: Digest[] = [];
      let position = index;
      for (let depth = 0; depth < levels.length - 1; depth++) {
        const level = levels[depth]!;
        const sibling = position % 2 === 0 ? position + 1 : position - 1;
        if (sibling < level.length) path.push(level[sibling]!);
        position = Math.floor(position / 2);
      }
      return path;
    },
  };
}

/**
 * Sibling digests proving `leaves[index]` is under merkleRoot(leaves): bottom-up, skipping levels
 * where the node has no sibling (it was promoted). Builds the whole tree: for several leaves of
 * one tree, use merkleTree.
 */
export function merkleProof(hash: HashFunction, leaves: readonly Digest[], index: number): Digest[] {
  return merkleTree(hash, leaves).proof(index);
}

/** Recomputes the root (with its leaf count) from a leaf and its proof. */
export function rootFromProof(
  hash: HashFunction,
  leaf: Digest,
  index: number,
  count: number,
  path: readonly Digest[],
): Digest | null {
  if (count < 1 || index < 0 || index >= count) return null;
  let node = leaf;
  let position = index;
  let width = count;
  let used = 0;
  const pair = new Uint8Array(1 + 2 * 32);
  pair[0] = nodePrefix;
  while (width > 1) {
    const sibling = position % 2 === 0 ? position + 1 : position - 1;
    if (sibling < width) {
      const other = path[used++];
      if (other === undefined) return null;
      if (position % 2 === 0) {
        pair.set(node, 1);
        pair.set(other, 33);
      } else {
        pair.set(other, 1);
        pair.set(node, 33);
      }
      node = hash(pair);
    }
    position = Math.floor(position / 2);
    width = Math.ceil(width / 2);
  }
  if (used !== path.length) return null;
  return rootOver(hash, node, count);
}
