/**
 * The signed code manifest a guardian checks before it starts its replica: every file of the code
 * bundle with its SHA-256 and size, signed at install time with the install key. A replica
 * rejuvenated from a tampered bundle would come back compromised, so the guardian refuses to start
 * one whose code differs from the manifest, and lists every difference.
 *
 * Which files are covered (the include rule): by default every regular file under the code
 * directory, at any depth, except source maps (`*.map`) and type declarations (`*.d.ts`, `*.d.mts`,
 * `*.d.cts`), which node never executes. Everything the rule covers must match: a changed file, a
 * missing file and an extra file are all problems, because an attacker adding a module is as bad as
 * one changing a module. Symbolic links and special files (FIFOs, sockets, devices) are never
 * followed and are always a problem, whatever the include rule says: a link could point the replica
 * at code outside the signed tree.
 *
 * Beside the code directory, a manifest covers the files of the configured service module when it
 * lies outside that directory (`serviceFiles`: absolute paths of the module file and every file of
 * the user's project it imports, src/hosting/import-graph.ts), so that a change to the user's code
 * after signing makes the guardian refuse to start the replica too. The caller names them
 * (`CodeManifestOptions.serviceFiles`, from `serviceCodeFiles` in src/hosting/service-code.ts):
 * building hashes them, verifying compares the files the manifest lists with the ones the caller
 * finds now (a changed, missing or added file is a problem, as in the code directory).
 *
 * The signature is over a canonical binary encoding (see `codeManifestPayload`), never over the
 * JSON text, so reformatting the file cannot change what was signed and no JSON ambiguity (key
 * order, number spelling, escapes) can make two different manifests share a signature.
 *
 * Walking and hashing are bounded (MAX_CODE_FILES, MAX_CODE_BYTES, MAX_DIRECTORY_ENTRIES) so a
 * hostile directory cannot exhaust the guardian.
 *
 * Usage:
 * ```ts
 * const manifest = await buildCodeManifest(defaultCodeDirectory(), await loadInstallKey(installKeyPath(config)));
 * await writeCodeManifest(join(config.dataDirectory, 'code-manifest.json'), manifest);
 * const verdict = await verifyCodeBundle(defaultCodeDirectory(), manifestPath, config.installKey!);
 * if (!verdict.ok) refuseToStart(verdict.problems);
 * ```
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterConfig } from '../config/cluster-config.js';
import { installKeyPath, loadInstallKey } from '../config/keys.js';
import { SIGNATURE_BYTES } from '../messages/ids.js';
import { type SigningKeyPair, tryParseSigningPublicKey } from '../crypto/keys.js';
import { signBytes, verifyBytes } from '../crypto/signatures.js';
import { type ByteWriter, encodeToBytes } from '../messages/bytes.js';
import { serviceCodeFiles } from '../hosting/service-code.js';

export const CODE_MANIFEST_DOMAIN = 'phalanx/code-manifest/v2';
/** Version 2 added `serviceFiles`; version 1 manifests (no service files) are still read. */
export const CODE_MANIFEST_VERSION = 2;
const CODE_MANIFEST_DOMAIN_V1 = 'phalanx/code-manifest/v1';
/** Most files a manifest may list (the project has a few hundred; dist/ about three times that). */
export const MAX_CODE_FILES = 20_000;
/** Most bytes, summed over the listed files, that are hashed. */
export const MAX_CODE_BYTES = 1024 * 1024 * 1024;
/**
 * Most directory entries walked, counting directories and excluded files (source maps and
 * declarations triple dist/), so a tree of millions of empty folders or ignored files is bounded too.
 */
export const MAX_DIRECTORY_ENTRIES = 100_000;
/** Largest manifest file read: MAX_CODE_FILES entries of a long path and a digest fit easily. */
export const MAX_CODE_MANIFEST_FILE_BYTES = 16 * 1024 * 1024;
/** Files hashed at once: enough to overlap disk waits, few enough to keep file descriptors spare. */
const HASH_CONCURRENCY = 8;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface CodeManifestEntry {
  /** Relative to the code directory, '/' separated. */
  readonly path: string;
  /** Lowercase hex. */
  readonly sha256: string;
  readonly bytes: number;
}

export interface CodeManifest {
  readonly version: 1 | 2;
  /** The code directory it was made for (absolute); informational, verification takes its own. */
  readonly root: string;
  /** Sorted by path (UTF-16 code unit order), no duplicates. */
  readonly files: readonly CodeManifestEntry[];
  /**
   * The service module's files outside the code directory, by absolute path, sorted; [] for the
   * built-in service (and in every version 1 manifest).
   */
  readonly serviceFiles: readonly CodeManifestEntry[];
  readonly createdAtMs: number;
  /** Base64 Ed25519 signature by the install key over `codeManifestPayload` of everything else. */
  readonly signature: string;
}

export type UnsignedCodeManifest = Omit<CodeManifest, 'signature'>;

export type BundleVerdict =
  | { readonly ok: true; readonly files: number }
  | { readonly ok: false; readonly problems: readonly string[] };

export interface CodeManifestOptions {
  /** Which regular files the manifest covers; default: `includedByDefault`. */
  readonly include?: (relativePath: string) => boolean;
  /**
   * Absolute paths of files outside the code directory that the manifest also covers: the
   * service module's (see the header). Default: none.
   */
  readonly serviceFiles?: readonly string[];
}

/** A manifest file that cannot be read, is too large, or is malformed. */
export class CodeManifestError extends Error {
  override readonly name = 'CodeManifestError';
}

/** The default include rule: everything except source maps and type declarations. */
export function includedByDefault(relativePath: string): boolean {
  return !/\.(map|d\.ts|d\.mts|d\.cts)$/.test(relativePath);
}

/**
 * The directory holding the code this process runs: the parent of this module's recovery/ folder,
 * i.e. dist/ when compiled and src/ when run from source through tsx.
 */
export function defaultCodeDirectory(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

/** Where a configuration's guardians read the signed manifest unless told otherwise. */
export function defaultManifestPath(config: ClusterConfig): string {
  return join(config.dataDirectory, 'code-manifest.json');
}

/**
 * What `phalanx manifest` does at install time, for local clusters (up, demo, bench, tests):
 * signs the code in `codeDirectory` and the configured service module's files outside it
 * (serviceCodeFiles) with the configuration's install key, and writes the manifest where its
 * guardians look for it.
 */
export async function signCodeManifestFor(
  config: ClusterConfig,
  codeDirectory = defaultCodeDirectory(),
): Promise<CodeManifest> {
  const service = await serviceCodeFiles(config, codeDirectory);
  if (service.problems.length > 0)
    throw new CodeManifestError(
      `cannot sign the service module's files:\n  ${service.problems.join('\n  ')}`,
    );
  const manifest = await buildCodeManifest(codeDirectory, await loadInstallKey(installKeyPath(config)), {
    serviceFiles: service.files,
  });
  await writeCodeManifest(defaultManifestPath(config), manifest);
  return manifest;
}

// ───────────────────────────── canonical payload ─────────────────────────────

function writeManifestPayload(writer: ByteWriter, manifest: UnsignedCodeManifest): void {
  writer.string(manifest.version === 1 ? CODE_MANIFEST_DOMAIN_V1 : CODE_MANIFEST_DOMAIN);
  writer.varuint(manifest.version);
  writer.string(manifest.root);
  writer.varuint(manifest.createdAtMs);
  writer.varuint(manifest.files.length);
  for (const file of manifest.files) {
    writer.string(file.path);
    writer.lengthPrefixedBytes(Buffer.from(file.sha256, 'hex'));
    writer.varuint(file.bytes);
  }
  if (manifest.version === 1) return;
  writer.varuint(manifest.serviceFiles.length);
  for (const file of manifest.serviceFiles) {
    writer.string(file.path);
    writer.lengthPrefixedBytes(Buffer.from(file.sha256, 'hex'));
    writer.varuint(file.bytes);
  }
}

/**
 * The bytes the install key signs: the domain tag, then version, root, creation time, the number of
 * files and each file's path, digest and size, then (version 2) the same for the service files, every field length-prefixed or a varuint
 * (messages/bytes.ts), so distinct manifests always give distinct payloads.
 */
export function codeManifestPayload(manifest: UnsignedCodeManifest): Uint8Array {
  return encodeToBytes(manifest, writeManifestPayload);
}

// ───────────────────────────── walking the tree ─────────────────────────────

interface CodeTree {
  /** Regular files the include rule covers, by relative path. */
  readonly files: ReadonlyMap<string, string>;
  /** Symbolic links, special files, limits exceeded, unreadable directories. */
  readonly problems: readonly string[];
  /** False when a limit stopped the walk: the file list is incomplete. */
  readonly complete: boolean;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Every covered regular file under `root`, walked without following links. Iterative (an explicit
 * stack) so a deeply nested hostile tree cannot overflow the call stack.
 */
async function walkCodeTree(root: string, include: (relativePath: string) => boolean): Promise<CodeTree> {
  const files = new Map<string, string>();
  const problems: string[] = [];
  const pending: string[] = [''];
  let entriesSeen = 0;
  while (pending.length > 0) {
    const relativeDirectory = pending.pop()!;
    const absoluteDirectory = relativeDirectory === '' ? root : join(root, relativeDirectory);
    let entries;
    try {
      entries = await readdir(absoluteDirectory, { withFileTypes: true });
    } catch (error) {
      problems.push(
        `${relativeDirectory === '' ? root : relativeDirectory}: cannot read directory: ${describeError(error)}`,
      );
      continue;
    }
    for (const entry of entries) {
      entriesSeen++;
      if (entriesSeen > MAX_DIRECTORY_ENTRIES) {
        problems.push(
          `${root}: more than ${MAX_DIRECTORY_ENTRIES} directory entries; refusing to walk further`,
        );
        return { files, problems, complete: false };
      }
      const relativePath = relativeDirectory === '' ? entry.name : `${relativeDirectory}/${entry.name}`;
      if (entry.isDirectory()) {
        pending.push(relativePath);
      } else if (entry.isSymbolicLink()) {
        problems.push(`${relativePath}: is a symbolic link (links are not followed)`);
      } else if (!entry.isFile()) {
        problems.push(`${relativePath}: not a regular file`);
      } else if (include(relativePath)) {
        if (files.size >= MAX_CODE_FILES) {
          problems.push(`${root}: more than ${MAX_CODE_FILES} code files; refusing to hash them`);
          return { files, problems, complete: false };
        }
        files.set(relativePath, join(root, relativePath));
      }
    }
  }
  return { files, problems, complete: true };
}

// ───────────────────────────── hashing ─────────────────────────────

/** Bytes still allowed to be hashed, shared by the concurrent hashers of one build or check. */
interface ByteBudget {
  remaining: number;
}

class BudgetExceeded extends Error {}

/**
 * SHA-256 and size of one file, streamed in chunks. Opened with O_NOFOLLOW and checked with fstat,
 * so a file swapped for a link or a FIFO after the walk is refused rather than followed or waited on.
 */
async function hashFile(path: string, budget: ByteBudget): Promise<{ sha256: string; bytes: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ELOOP')
      throw new Error('is a symbolic link (links are not followed)', { cause: error });
    throw error;
  }
  try {
    const status = await handle.stat();
    if (!status.isFile()) throw new Error('not a regular file');
    if (status.size > budget.remaining) throw new BudgetExceeded();
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) {
      const data = chunk as Buffer;
      // The file may grow while it is read: count what is actually hashed against the budget.
      bytes += data.length;
      if (bytes > budget.remaining) throw new BudgetExceeded();
      hash.update(data);
    }
    budget.remaining -= bytes;
    return { sha256: hash.digest('hex'), bytes };
  } finally {
    await handle.close();
  }
}

/**
 * Runs `work` over `items` with at most HASH_CONCURRENCY in flight. Results keep the item order;
 * a rejected item gives its error instead of a result, so every file is reported.
 */
async function mapConcurrently<Item, Result>(
  items: readonly Item[],
  work: (item: Item) => Promise<Result>,
): Promise<(Result | { readonly failure: unknown })[]> {
  const results: (Result | { readonly failure: unknown })[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]!);
      } catch (failure) {
        results[index] = { failure };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, items.length) }, worker));
  return results;
}

function isFailure<Result>(
  value: Result | { readonly failure: unknown },
): value is { readonly failure: unknown } {
  return typeof value === 'object' && value !== null && 'failure' in value;
}

function compareCodeUnits(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

function budgetMessage(): string {
  return `the code files exceed ${MAX_CODE_BYTES} bytes in total; refusing to hash further`;
}

// ───────────────────────────── build, write, read ─────────────────────────────

/** The service files to cover, sorted and unique; a path that is not absolute is a problem. */
function serviceFileList(paths: readonly string[] | undefined, problems: string[]): string[] {
  const unique = [...new Set(paths ?? [])].sort(compareCodeUnits);
  if (unique.length > MAX_CODE_FILES) {
    problems.push(`more than ${MAX_CODE_FILES} service files; refusing to hash them`);
    return [];
  }
  return unique.filter((path) => {
    if (isAbsolute(path) && !path.includes('\0')) return true;
    problems.push(`service file ${JSON.stringify(path)}: must be an absolute path`);
    return false;
  });
}

/**
 * Hashes every covered file under `codeDirectory` and signs the list with the install key. Throws,
 * listing every problem, when the tree holds a link or special file or exceeds a limit: a manifest
 * must never be signed over a tree that could not pass verification.
 */
export async function buildCodeManifest(
  codeDirectory: string,
  installKey: SigningKeyPair,
  options: CodeManifestOptions = {},
): Promise<CodeManifest> {
  const root = resolve(codeDirectory);
  const tree = await walkCodeTree(root, options.include ?? includedByDefault);
  const problems = [...tree.problems];
  const paths = [...tree.files.keys()].sort(compareCodeUnits);
  const budget: ByteBudget = { remaining: MAX_CODE_BYTES };
  const hashed = tree.complete
    ? await mapConcurrently(paths, (path) => hashFile(tree.files.get(path)!, budget))
    : [];
  const files: CodeManifestEntry[] = [];
  let overBudget = false;
  hashed.forEach((result, index) => {
    if (!isFailure(result)) files.push({ path: paths[index]!, ...result });
    else if (result.failure instanceof BudgetExceeded) overBudget = true;
    else problems.push(`${paths[index]!}: ${describeError(result.failure)}`);
  });
  const servicePaths = serviceFileList(options.serviceFiles, problems);
  const serviceHashed = await mapConcurrently(servicePaths, (path) => hashFile(path, budget));
  const serviceFiles: CodeManifestEntry[] = [];
  serviceHashed.forEach((result, index) => {
    if (!isFailure(result)) serviceFiles.push({ path: servicePaths[index]!, ...result });
    else if (result.failure instanceof BudgetExceeded) overBudget = true;
    else problems.push(`service file ${servicePaths[index]!}: ${describeError(result.failure)}`);
  });
  if (overBudget) problems.push(budgetMessage());
  if (problems.length > 0) {
    throw new CodeManifestError(`cannot build a code manifest of ${root}:\n  ${problems.join('\n  ')}`);
  }
  const unsigned: UnsignedCodeManifest = {
    version: CODE_MANIFEST_VERSION,
    root,
    files,
    serviceFiles,
    createdAtMs: Date.now(),
  };
  const signature = signBytes(installKey, codeManifestPayload(unsigned));
  return { ...unsigned, signature: Buffer.from(signature).toString('base64') };
}

/** Writes `manifest` as JSON atomically (temporary file, fsync, rename): a guardian never reads half a file. */
export async function writeCodeManifest(path: string, manifest: CodeManifest): Promise<void> {
  const target = resolve(path);
  const directory = dirname(target);
  await mkdir(directory, { recursive: true });
  const temporary = join(
    directory,
    `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  const document = {
    version: manifest.version,
    root: manifest.root,
    createdAtMs: manifest.createdAtMs,
    files: manifest.files.map((file) => ({ path: file.path, sha256: file.sha256, bytes: file.bytes })),
    serviceFiles: manifest.serviceFiles.map((file) => ({
      path: file.path,
      sha256: file.sha256,
      bytes: file.bytes,
    })),
    signature: manifest.signature,
  };
  try {
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(document, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  // Make the rename itself durable; not every platform can open a directory, and that is harmless.
  try {
    const directoryHandle = await open(directory, 'r');
    try {
      await directoryHandle.sync();
    } finally {
      await directoryHandle.close();
    }
  } catch {
    // best effort
  }
}

/** At most `limit + 1` bytes, so an oversized file is detected without reading all of it. */
async function readBounded(path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function isValidManifestPath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

function parseManifestDocument(parsed: unknown, problems: string[]): CodeManifest | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('not a JSON object');
    return null;
  }
  const document = parsed as Record<string, unknown>;
  if (document.version !== 1 && document.version !== CODE_MANIFEST_VERSION)
    problems.push(`version must be 1 or ${CODE_MANIFEST_VERSION}, got ${JSON.stringify(document.version)}`);
  if (typeof document.root !== 'string') problems.push('root must be a string');
  if (!Number.isSafeInteger(document.createdAtMs) || (document.createdAtMs as number) < 0)
    problems.push('createdAtMs must be a non-negative integer');
  if (typeof document.signature !== 'string')
    problems.push('signature is missing (the manifest is not signed)');
  const files = parseEntries(document.files, 'files', isValidManifestPath, problems);
  const serviceFiles =
    document.version === 1
      ? []
      : parseEntries(
          document.serviceFiles,
          'serviceFiles',
          (path) => isAbsolute(path) && !path.includes('\0'),
          problems,
        );
  if (document.version === 1 && document.serviceFiles !== undefined)
    problems.push('serviceFiles is not part of a version 1 manifest');
  if (problems.length > 0) return null;
  return {
    version: document.version === 1 ? 1 : CODE_MANIFEST_VERSION,
    root: document.root as string,
    files,
    serviceFiles,
    createdAtMs: document.createdAtMs as number,
    signature: document.signature as string,
  };
}

/** The entries of one list of a manifest (`files` or `serviceFiles`), each checked. */
function parseEntries(
  value: unknown,
  name: string,
  validPath: (path: string) => boolean,
  problems: string[],
): CodeManifestEntry[] {
  const files: CodeManifestEntry[] = [];
  if (!Array.isArray(value)) {
    problems.push(`${name} must be an array`);
  } else if (value.length > MAX_CODE_FILES) {
    problems.push(`${name} lists ${value.length} entries, more than ${MAX_CODE_FILES}`);
  } else {
    const seen = new Set<string>();
    value.forEach((entry: unknown, index) => {
      const where = `${name}[${index}]`;
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        problems.push(`${where} must be an object`);
        return;
      }
      const { path, sha256, bytes } = entry as Record<string, unknown>;
      const before = problems.length;
      if (typeof path !== 'string' || !validPath(path))
        problems.push(
          name === 'files'
            ? `${where}.path must be a relative '/'-separated path without '.' or '..' segments`
            : `${where}.path must be an absolute path`,
        );
      else if (seen.has(path)) problems.push(`${where}.path ${path} is listed twice`);
      if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256))
        problems.push(`${where}.sha256 must be 64 lowercase hex digits`);
      if (!Number.isSafeInteger(bytes) || (bytes as number) < 0)
        problems.push(`${where}.bytes must be a non-negative integer`);
      if (problems.length > before) return;
      seen.add(path as string);
      files.push({ path: path as string, sha256: sha256 as string, bytes: bytes as number });
    });
  }
  return files;
}

/**
 * Reads and checks the shape of a manifest file (not its signature: see verifyCodeBundle). Throws
 * CodeManifestError naming the file and every structural problem.
 */
export async function readCodeManifest(path: string): Promise<CodeManifest> {
  let raw: Buffer;
  try {
    raw = await readBounded(path, MAX_CODE_MANIFEST_FILE_BYTES);
  } catch (error) {
    throw new CodeManifestError(`cannot read code manifest ${path}: ${describeError(error)}`, {
      cause: error,
    });
  }
  if (raw.length > MAX_CODE_MANIFEST_FILE_BYTES)
    throw new CodeManifestError(`code manifest ${path} is larger than ${MAX_CODE_MANIFEST_FILE_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (error) {
    throw new CodeManifestError(`code manifest ${path} is not valid JSON: ${describeError(error)}`, {
      cause: error,
    });
  }
  const problems: string[] = [];
  const manifest = parseManifestDocument(parsed, problems);
  if (manifest === null)
    throw new CodeManifestError(`code manifest ${path} is malformed:\n  ${problems.join('\n  ')}`);
  return manifest;
}

// ───────────────────────────── verification ─────────────────────────────

function decodeSignature(text: string): Uint8Array | null {
  const decoded = Buffer.from(text, 'base64');
  // Strict: Buffer.from skips characters that are not base64, so re-encode and compare.
  if (decoded.length !== SIGNATURE_BYTES || decoded.toString('base64') !== text) return null;
  return new Uint8Array(decoded);
}

/**
 * Checks the code under `codeDirectory` against the manifest at `manifestPath`, signed by
 * `installPublicKey` (raw Ed25519), with the include rule the manifest was built with. Never throws for a bad bundle or manifest: every problem found is
 * listed — signature, changed, missing and unexpected files, links — so an operator can fix them all
 * at once. Files are compared even when the signature fails, for the report; the verdict is then
 * a failure whatever they show.
 */
export async function verifyCodeBundle(
  codeDirectory: string,
  manifestPath: string,
  installPublicKey: Uint8Array,
  options: CodeManifestOptions = {},
): Promise<BundleVerdict> {
  let manifest: CodeManifest;
  try {
    manifest = await readCodeManifest(manifestPath);
  } catch (error) {
    return { ok: false, problems: [describeError(error)] };
  }
  const problems: string[] = [];
  const publicKey = tryParseSigningPublicKey(installPublicKey);
  const signature = decodeSignature(manifest.signature);
  if (publicKey === null) {
    problems.push('the install public key is not a valid Ed25519 public key');
  } else if (signature === null) {
    problems.push(
      `code manifest ${manifestPath}: signature is not a base64-encoded ${SIGNATURE_BYTES}-byte Ed25519 signature`,
    );
  } else if (!verifyBytes(publicKey, codeManifestPayload(manifest), signature)) {
    problems.push(
      `code manifest ${manifestPath}: signature does not verify under the install key ` +
        '(signed by another key, or altered after signing)',
    );
  }

  const root = resolve(codeDirectory);
  const tree = await walkCodeTree(root, options.include ?? includedByDefault);
  problems.push(...tree.problems);
  const toHash: { readonly entry: CodeManifestEntry; readonly absolutePath: string }[] = [];
  for (const entry of manifest.files) {
    const absolutePath = tree.files.get(entry.path);
    if (absolutePath !== undefined) toHash.push({ entry, absolutePath });
    // An incomplete walk cannot tell a missing file from one it never reached.
    else if (tree.complete && !tree.problems.some((problem) => problem.startsWith(`${entry.path}: `)))
      problems.push(`${entry.path}: missing (listed in the manifest)`);
  }
  if (tree.complete) {
    const listed = new Set(manifest.files.map((entry) => entry.path));
    const unexpected = [...tree.files.keys()].filter((path) => !listed.has(path)).sort(compareCodeUnits);
    for (const path of unexpected) problems.push(`${path}: unexpected file, not in the manifest`);
  }

  // The service files: the ones the manifest lists against the ones the caller finds now.
  const currentServiceFiles = new Set(serviceFileList(options.serviceFiles, problems));
  for (const entry of manifest.serviceFiles) {
    if (currentServiceFiles.has(entry.path)) toHash.push({ entry, absolutePath: entry.path });
    else
      problems.push(
        `service file ${entry.path}: listed in the manifest, no longer part of the service module`,
      );
  }
  const listedServiceFiles = new Set(manifest.serviceFiles.map((entry) => entry.path));
  for (const path of currentServiceFiles) {
    if (!listedServiceFiles.has(path))
      problems.push(`service file ${path}: part of the service module, not in the manifest (sign it again)`);
  }

  const budget: ByteBudget = { remaining: MAX_CODE_BYTES };
  const hashed = await mapConcurrently(toHash, async ({ entry, absolutePath }) => {
    const actual = await hashFile(absolutePath, budget);
    return actual.sha256 === entry.sha256 && actual.bytes === entry.bytes;
  });
  let overBudget = false;
  hashed.forEach((result, index) => {
    const { path } = toHash[index]!.entry;
    if (isFailure(result)) {
      if (result.failure instanceof BudgetExceeded) overBudget = true;
      else problems.push(`${path}: ${describeError(result.failure)}`);
    } else if (!result) {
      problems.push(`${path}: content differs from the manifest`);
    }
  });
  if (overBudget) problems.push(budgetMessage());
  return problems.length === 0
    ? { ok: true, files: manifest.files.length + manifest.serviceFiles.length }
    : { ok: false, problems };
}

/**
 * What the file system says about a code bundle and its manifest, without reading any content:
 * each covered file's path, inode, size and change time (which no unprivileged process can set
 * back), and the manifest's. Equal fingerprints taken before and after a moment mean no file was
 * written, replaced, added or removed in between, so a bundle verified by hashing at the first
 * one is still the verified bundle at the second: a recovery uses this to skip hashing the whole
 * bundle again seconds after the standby's check. Null when the tree cannot be walked completely.
 */
export async function codeBundleFingerprint(
  codeDirectory: string,
  manifestPath: string,
  options: CodeManifestOptions = {},
): Promise<string | null> {
  const tree = await walkCodeTree(resolve(codeDirectory), options.include ?? includedByDefault);
  if (!tree.complete || tree.problems.length > 0) return null;
  const digest = createHash('sha256');
  const paths = [
    ...[...tree.files.keys()].sort(compareCodeUnits),
    ...[...new Set(options.serviceFiles ?? [])].sort(compareCodeUnits),
  ];
  const described = await mapConcurrently(
    [manifestPath, ...paths.map((path) => tree.files.get(path) ?? path)],
    async (absolutePath) => {
      const stats = await lstat(absolutePath, { bigint: true });
      return `${stats.dev}:${stats.ino}:${stats.size}:${stats.ctimeNs}:${stats.mtimeNs}`;
    },
  );
  for (const [index, result] of described.entries()) {
    if (isFailure(result)) return null;
    digest.update(`${index === 0 ? manifestPath : paths[index - 1]!}\0${result}\n`);
  }
  return digest.digest('hex');
}
