/**
 * Checkpoint chunks of the file engine, packed into a few large append-only files instead of one
 * file per chunk. Creating, fsyncing, renaming and deleting thousands of small files per
 * checkpoint was the file engine's largest cost (ext4 inode allocation dominated a replica's
 * profile); appending to a pack is one write and one fdatasync per checkpoint.
 *
 *   <directory>/chunks/pack-<generation>.dat   "PHXPCK01", then entries:
 *       [u32 length][u32 crc32 of digest+data][32-byte leaf digest][data]
 *   (the CRC is for offline tools; loading trusts the leaf digest, checked when a chunk is read)
 *
 * The highest generation is the live pack that appends go to. An entry is found by its leaf
 * digest (an index built by scanning the packs when the storage opens); a torn tail of the live
 * pack is cut off on open. The scan reads entry headers only, not the data: opening a replica
 * with 100 MB of state would otherwise read and checksum it all once only to index it, and once
 * more to load the checkpoint. An indexed entry is verified against its digest when it is read
 * (the digest, not the CRC, is what decides); until then it is "unverified", and an unverified
 * copy does not count as stored, so a damaged entry never stops a good copy from being written.
 * When more than half the bytes of the packs belong to chunks no checkpoint names any more, the
 * live chunks are copied into a new generation, which is made durable before the old packs are
 * deleted.
 */
import { crc32 } from 'node:zlib';
import { type FileHandle, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, DIGEST_BYTES, digest as asDigest, InvariantViolation } from '../messages/ids.js';
import { chunkMatchesLeaf, leafName, MAX_CHUNK_BYTES } from './records.js';

const PACK_MAGIC = new TextEncoder().encode('PHXPCK01');
const MAGIC_BYTES = 8;
const ENTRY_HEADER_BYTES = 4 + 4 + DIGEST_BYTES;
const PACK_NAME = /^pack-(\d{16})\.dat$/;
/** Packs are compacted only when at least this much of them is dead, and more than is live. */
const MIN_GARBAGE_BYTES_TO_COMPACT = 16 * 1024 * 1024;

interface PackEntry {
  readonly generation: number;
  /** Offset of the entry's header in its pack. */
  readonly offset: number;
  readonly length: number;
}

/** Where a chunk is stored. */
interface IndexEntry {
  /**
   * Its copies, the one to read first in front. More than one only when the scan found several
   * (a crash during compaction leaves them); they are tried in turn.
   */
  copies: PackEntry[];
  /**
   * Whether the first copy is known to match its digest (read back, or written by this process).
   * Copies found by the scan are not, until read.
   */
  verified: boolean;
}

interface Pack {
  readonly generation: number;
  readonly handle: FileHandle;
  size: number;
}

export function packPath(chunksDirectory: string, generation: number): string {
  return join(chunksDirectory, `pack-${String(generation).padStart(16, '0')}.dat`);
}

export interface ChunkPackStatistics {
  chunksWritten: number;
  bytesWritten: number;
  fsyncs: number;
}

export class ChunkPacks {
  readonly #directory: string;
  readonly #packs = new Map<number, Pack>();
  readonly #index = new Map<string, IndexEntry>();
  #live: Pack;
  #totalBytes = 0;

  private constructor(directory: string, live: Pack) {
    this.#directory = directory;
    this.#live = live;
  }

  /** Opens every pack in `chunksDirectory`, indexes its entries and repairs a torn live tail. */
  static async open(chunksDirectory: string, statistics: ChunkPackStatistics): Promise<ChunkPacks> {
    const generations = (await readdir(chunksDirectory))
      .map((name) => PACK_NAME.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    if (generations.length === 0) {
      const live = await ChunkPacks.#create(chunksDirectory, 1, statistics);
      const packs = new ChunkPacks(chunksDirectory, live);
      packs.#packs.set(1, live);
      return packs;
    }
    let packs: ChunkPacks | null = null;
    for (const generation of generations) {
      const handle = await open(packPath(chunksDirectory, generation), 'r+');
      const pack: Pack = { generation, handle, size: 0 };
      packs ??= new ChunkPacks(chunksDirectory, pack);
      packs.#packs.set(generation, pack);
      await packs.#scan(pack, statistics);
    }
    packs!.#live = packs!.#packs.get(generations[generations.length - 1]!)!;
    return packs!;
  }

  static async #create(
    directory: string,
    generation: number,
    statistics: ChunkPackStatistics,
  ): Promise<Pack> {
    const handle = await open(packPath(directory, generation), 'w+');
    await handle.write(PACK_MAGIC, 0, MAGIC_BYTES, 0);
    await handle.datasync();
    statistics.fsyncs++;
    return { generation, handle, size: MAGIC_BYTES };
  }

  async #scan(pack: Pack, statistics: ChunkPackStatistics): Promise<void> {
    const size = (await pack.handle.stat()).size;
    const magic = Buffer.alloc(MAGIC_BYTES);
    if (
      size < MAGIC_BYTES ||
      (await pack.handle.read(magic, 0, MAGIC_BYTES, 0)).bytesRead < MAGIC_BYTES ||
      !magic.equals(PACK_MAGIC)
    ) {
      // An unreadable pack holds nothing usable: its chunks count as missing (state transfer repairs).
      pack.size = size;
      return;
    }
    let offset = MAGIC_BYTES;
    const header = Buffer.alloc(ENTRY_HEADER_BYTES);
    for (;;) {
      if (offset + ENTRY_HEADER_BYTES > size) break;
      await pack.handle.read(header, 0, ENTRY_HEADER_BYTES, offset);
      const length = header.readUInt32BE(0);
      if (length > MAX_CHUNK_BYTES || offset + ENTRY_HEADER_BYTES + length > size) break;
      // Damage inside a complete entry (bit rot, a stray write) shows when it is read: its chunk
      // then counts as missing, and the entries after it are kept.
      const name = leafName(asDigest(new Uint8Array(header.subarray(8, ENTRY_HEADER_BYTES))));
      const entry: PackEntry = { generation: pack.generation, offset, length };
      const known = this.#index.get(name);
      if (known === undefined) this.#index.set(name, { copies: [entry], verified: false });
      else known.copies.push(entry);
      offset += ENTRY_HEADER_BYTES + length;
    }
    if (offset < size) {
      // A torn or damaged tail: cut it so later appends do not follow garbage.
      await pack.handle.truncate(offset);
      await pack.handle.datasync();
      statistics.fsyncs++;
    }
    pack.size = offset;
    this.#totalBytes += offset - MAGIC_BYTES;
  }

  /** Whether a copy known to match its digest is stored (read back, or written by this process). */
  has(leaf: Digest): boolean {
    return this.#index.get(leafName(leaf))?.verified === true;
  }

  /** The chunk, or null when it is missing or its bytes no longer match its digest. */
  async read(leaf: Digest): Promise<Uint8Array | null> {
    const name = leafName(leaf);
    const known = this.#index.get(name);
    if (known === undefined) return null;
    for (const entry of known.copies) {
      const pack = this.#packs.get(entry.generation)!;
      const data = new Uint8Array(entry.length);
      if (entry.length > 0) await readFully(pack.handle, data, entry.offset + ENTRY_HEADER_BYTES);
      if (chunkMatchesLeaf(leaf, data)) {
        this.#index.set(name, { copies: [entry], verified: true });
        return data;
      }
    }
    // No intact copy: forget them, so the next checkpoint naming this chunk writes it again.
    this.#index.delete(name);
    return null;
  }

  /** Where a chunk's bytes are (for tests that damage them on purpose). */
  locate(leaf: Digest): { readonly path: string; readonly offset: number; readonly length: number } | null {
    const entry = this.#index.get(leafName(leaf))?.copies[0];
    if (entry === undefined) return null;
    return {
      path: packPath(this.#directory, entry.generation),
      offset: entry.offset + ENTRY_HEADER_BYTES,
      length: entry.length,
    };
  }

  /** Appends the chunks not stored yet to the live pack and makes them durable. */
  async append(
    chunks: readonly { readonly leaf: Digest; readonly chunk: Uint8Array }[],
    statistics: ChunkPackStatistics,
  ): Promise<void> {
    const fresh = chunks.filter(({ leaf }) => !this.has(leaf));
    if (fresh.length === 0) return;
    const pack = this.#live;
    const buffers: Buffer[] = [];
    const placed: { name: string; entry: PackEntry }[] = [];
    let offset = pack.size;
    const seen = new Set<string>();
    for (const { leaf, chunk } of fresh) {
      const name = leafName(leaf);
      if (seen.has(name)) continue;
      seen.add(name);
      if (chunk.length > MAX_CHUNK_BYTES)
        throw new InvariantViolation(`chunk of ${chunk.length} bytes exceeds MAX_CHUNK_BYTES`);
      const header = Buffer.alloc(ENTRY_HEADER_BYTES);
      header.writeUInt32BE(chunk.length, 0);
      header.set(leaf, 8);
      header.writeUInt32BE(crc32(chunk, crc32(leaf)), 4);
      buffers.push(header, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      placed.push({ name, entry: { generation: pack.generation, offset, length: chunk.length } });
      offset += ENTRY_HEADER_BYTES + chunk.length;
    }
    const data = Buffer.concat(buffers);
    await writeFully(pack.handle, data, pack.size);
    await pack.handle.datasync();
    statistics.fsyncs++;
    statistics.bytesWritten += data.length;
    statistics.chunksWritten += placed.length;
    pack.size = offset;
    this.#totalBytes += data.length;
    for (const { name, entry } of placed) this.#index.set(name, { copies: [entry], verified: true });
  }

  /**
   * Forgets chunks no checkpoint names any more (only `live` is kept) and, when dead bytes
   * dominate, rewrites the live ones into a new pack and deletes the old packs.
   */
  async retainOnly(live: ReadonlySet<string>, statistics: ChunkPackStatistics): Promise<void> {
    let liveBytes = 0;
    for (const [name, { copies }] of this.#index) {
      if (live.has(name)) liveBytes += ENTRY_HEADER_BYTES + copies[0]!.length;
      else this.#index.delete(name);
    }
    const garbage = this.#totalBytes - liveBytes;
    if (garbage < MIN_GARBAGE_BYTES_TO_COMPACT || garbage < liveBytes) return;
    const generation = this.#live.generation + 1;
    const fresh = await ChunkPacks.#create(this.#directory, generation, statistics);
    const old = [...this.#packs.values()];
    this.#packs.set(generation, fresh);
    this.#live = fresh;
    this.#totalBytes = 0;
    const moving: { leaf: Digest; chunk: Uint8Array }[] = [];
    for (const name of [...this.#index.keys()]) {
      const leaf = asDigest(new Uint8Array(Buffer.from(name, 'hex')));
      const chunk = await this.read(leaf);
      this.#index.delete(name);
      if (chunk !== null) moving.push({ leaf, chunk });
      if (moving.length >= 256) await this.append(moving.splice(0), statistics);
    }
    await this.append(moving, statistics);
    // The new pack is durable; the old ones can go (a crash before the unlinks leaves duplicates,
    // which the index resolves to any intact copy).
    for (const pack of old) {
      await pack.handle.close();
      this.#packs.delete(pack.generation);
      await unlink(packPath(this.#directory, pack.generation));
    }
  }

  async close(): Promise<void> {
    for (const pack of this.#packs.values()) await pack.handle.close();
    this.#packs.clear();
  }
}

async function readFully(handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw new InvariantViolation('chunk pack ended early');
    done += bytesRead;
  }
}

async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
