/**
 * The trust boundary between a guardian and its replica: the replica process runs as an
 * unprivileged operating-system user of its own, so that an intruder in it cannot read the
 * guardian's identity key, state or logs, another replica's data, nor signal or trace the
 * guardian. The guardian (root, or CAP_SETUID and CAP_SETGID) resolves the user, prepares the
 * files (the replica's data folder is the user's, the guardian's are root-only), checks that the
 * user can reach what it must (the code, the configuration) and cannot reach the keys, and spawns
 * the replica with that uid and gid.
 *
 * Without the privilege (a developer's laptop), or without a configured user, the replica runs as
 * the guardian's user as before, and the guardian says so in its status, log and metrics.
 *
 * File layout and who may touch what (docs/intrusion-tolerance.md, "Trust boundary"):
 *
 *   keysDirectory/                 0700 guardian   identity keys (and client keys)
 *   dataDirectory/                 1777 guardian   sticky: a replica creates its own log files in
 *                                                  it and renames only what it owns (it must read
 *                                                  the folder too, to fsync it after a rotation)
 *   dataDirectory/guardian-<i>/    0700 guardian   state.json, session-keys.json (0600)
 *   dataDirectory/guardian-<i>.log 0600 guardian   (the guardian's umask is 077)
 *   dataDirectory/replica-<i>/     0700 replica i  its storage
 *   dataDirectory/replica-<i>.log, accountability-<i>.log   0600 replica i
 *   ….epoch-<e>, ….broken          0600 guardian   archived by the guardian, then no longer the replica's
 */
import { spawnSync } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ClusterConfig } from '../config/cluster-config.js';
import { accountabilityLogPath, replicaDataDirectory } from '../config/cluster-config.js';
import type { ReplicaId } from '../messages/ids.js';
import { replicaUserName, replicaUserProblems } from '../config/replica-user.js';

/** What a guardian reports about the boundary (GET /status `trustBoundary`, /metrics, its log). */
export interface TrustBoundary {
  /** The replica runs as a user of its own, not the guardian's. */
  readonly enforced: boolean;
  readonly replicaUser: string | null;
  readonly replicaUid: number | null;
  /** Why it is (not) enforced, in words an operator can act on. */
  readonly reason: string;
}

/** The plain statement every not-enforced report starts with (log, status, metric help). */
export const TRUST_BOUNDARY_NOT_ENFORCED = "trust boundary not enforced: replica runs as the guardian's user";

/**
 * Mode of the shared data folder: sticky (as /tmp), so that a replica user creates and rotates its
 * own files there and no one else's. Readable too: a replica opens the folder to fsync it after
 * creating or renaming a file; what it sees are names, and every file in it is 0600.
 */
export const SHARED_DATA_DIRECTORY_MODE = 0o1777;
const PRIVATE_DIRECTORY_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;
/** Capability bits (linux/capability.h) that spawning as another user needs. */
const CAP_SETGID_BIT = 6n;
const CAP_SETUID_BIT = 7n;
/** The access probe runs one short Node process; far beyond this something is wrong. */
const ACCESS_PROBE_TIMEOUT_MS = 20_000;

/** Whether this process may start a child as another user: root, or CAP_SETUID and CAP_SETGID in effect. */
export function canSwitchUsers(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (effective === undefined) return false;
    const capabilities = BigInt(`0x${effective}`);
    return ((capabilities >> CAP_SETUID_BIT) & 1n) === 1n && ((capabilities >> CAP_SETGID_BIT) & 1n) === 1n;
  } catch {
    return false;
  }
}

export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The user from the system's user database (NSS, through getent), or null if there is none. */
export function lookUpUser(name: string): SystemUser | null {
  const result = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (result.error !== undefined) throw new Error(`cannot look up user ${name}: ${result.error.message}`);
  if (result.status === 2) return null;
  const fields = result.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (result.status !== 0 || fields[0] !== name || !Number.isSafeInteger(uid) || !Number.isSafeInteger(gid))
    throw new Error(`cannot look up user ${name}: getent said ${JSON.stringify(result.stdout.trim())}`);
  return { name, uid, gid };
}

/** Creates a system user with a group of its own, no home and no login shell. */
export function createSystemUser(name: string): SystemUser {
  const result = spawnSync(
    'useradd',
    ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name],
    { encoding: 'utf8' },
  );
  if (result.error !== undefined || result.status !== 0)
    throw new Error(
      `could not create user ${name} with useradd: ${result.error?.message ?? result.stderr.trim()}` +
        ' (on Debian, useradd is in the passwd package)',
    );
  const user = lookUpUser(name);
  if (user === null) throw new Error(`useradd created ${name} but getent does not find it`);
  return user;
}

export interface ReplicaUserSettings {
  /** The configured name or pattern (recovery.replicaUser, or --replica-user); null: none. */
  readonly pattern: string | null;
  /** The configuration or a CLI flag lets the guardian create a missing user. */
  readonly mayCreate: boolean;
}

/**
 * Decides whether replica `id` runs as a user of its own. Throws when a user is configured and
 * the guardian could enforce the boundary but something stands in the way (no such user and no
 * leave to create it, or it is root or the guardian's own): running anyway would quietly give up
 * what the configuration asks for.
 */
export function resolveTrustBoundary(
  id: ReplicaId,
  settings: ReplicaUserSettings,
): { readonly boundary: TrustBoundary; readonly user: SystemUser | null } {
  const notEnforced = (reason: string): { boundary: TrustBoundary; user: null } => ({
    boundary: {
      enforced: false,
      replicaUser: settings.pattern === null ? null : replicaUserName(settings.pattern, id),
      replicaUid: null,
      reason: `${TRUST_BOUNDARY_NOT_ENFORCED} (${reason})`,
    },
    user: null,
  });
  if (settings.pattern === null)
    return notEnforced('no replica user is configured: set recovery.replicaUser, or --replica-user');
  if (!canSwitchUsers()) return notEnforced('the guardian is not root and lacks CAP_SETUID and CAP_SETGID');
  const name = replicaUserName(settings.pattern, id);
  const problems = replicaUserProblems(settings.pattern);
  if (problems.length > 0) throw new Error(`replica user: ${problems.join('; ')}`);
  let user = lookUpUser(name);
  if (user === null) {
    if (!settings.mayCreate)
      throw new Error(
        `replica user ${name} does not exist: create it (useradd --system --user-group --no-create-home ` +
          `--shell /usr/sbin/nologin ${name}) or let the guardian create it (--create-replica-user)`,
      );
    user = createSystemUser(name);
  }
  const guardianUid = process.getuid?.() ?? 0;
  const guardianGid = process.getgid?.() ?? 0;
  if (user.uid === 0 || user.uid === guardianUid || user.gid === 0 || user.gid === guardianGid)
    throw new Error(
      `replica user ${name} (uid ${user.uid}, gid ${user.gid}) shares the guardian's or root's user or group: ` +
        'it must be an unprivileged user of its own',
    );
  return {
    boundary: {
      enforced: true,
      replicaUser: name,
      replicaUid: user.uid,
      reason: `replica ${id} runs as ${name} (uid ${user.uid}, gid ${user.gid}); the guardian's keys, state and logs are not readable by it`,
    },
    user,
  };
}

/**
 * An entry of a folder others may write to, judged without following a symbolic link: a regular
 * file (or folder) with one name, owned by `owners`. Anything else may be an intruder's plant.
 */
function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** A folder of the guardian's own: created if missing, refused if planted by someone else. */
function ensureGuardianDirectory(path: string, guardianUid: number): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.uid !== guardianUid)
    throw new Error(
      `${path} is ${stats.isSymbolicLink() ? 'a symbolic link' : stats.isDirectory() ? 'a folder' : 'not a folder'} ` +
        `owned by uid ${stats.uid}, not a folder of the guardian's (uid ${guardianUid}): it may have been planted; remove it`,
    );
  chmodSync(path, PRIVATE_DIRECTORY_MODE);
}

/** Every regular file directly in `directory` owned by the guardian becomes 0600. */
function makeFilesPrivate(directory: string, guardianUid: number, matches: (name: string) => boolean): void {
  for (const name of readdirSync(directory)) {
    if (!matches(name)) continue;
    const stats = lstatOrNull(join(directory, name));
    if (stats?.isFile() === true && stats.uid === guardianUid)
      chmodSync(join(directory, name), PRIVATE_FILE_MODE);
  }
}

/** Gives a tree to the replica user, without following links and without touching a file with other names. */
function giveTree(path: string, user: SystemUser, found: string[]): void {
  const stats = lstatSync(path);
  if (stats.isSymbolicLink()) {
    lchownSync(path, user.uid, user.gid);
    return;
  }
  if (stats.isFile() && stats.nlink > 1) {
    // A hard link may name a file of the guardian's: chowning it would hand that file over.
    found.push(path);
    return;
  }
  lchownSync(path, user.uid, user.gid);
  if (stats.isDirectory()) for (const name of readdirSync(path)) giveTree(join(path, name), user, found);
}

/**
 * Prepares the files for replica `id` to run as `user` (the guardian runs as root or with the
 * capabilities): the guardian's folders and files become its own alone, the replica's data folder
 * and log files become the user's, and the shared data folder sticky. Returns warnings about
 * entries found planted (for the guardian's log).
 */
export function prepareReplicaFiles(
  config: ClusterConfig,
  id: ReplicaId,
  user: SystemUser,
  identityKeyFile: string,
): string[] {
  const warnings: string[] = [];
  const guardianUid = process.getuid?.() ?? 0;
  // The keys: every private key file stays with the guardian (the client keys too: clients are
  // run by the operator, not by replicas).
  ensureGuardianDirectory(config.keysDirectory, guardianUid);
  makeFilesPrivate(config.keysDirectory, guardianUid, () => true);
  chmodSync(identityKeyFile, PRIVATE_FILE_MODE);
  const identityFolder = dirname(identityKeyFile);
  if (identityFolder !== config.keysDirectory) chmodSync(identityFolder, PRIVATE_DIRECTORY_MODE);

  const data = config.dataDirectory;
  mkdirSync(data, { recursive: true });
  const dataStats = lstatSync(data);
  if (!dataStats.isDirectory() || dataStats.uid !== guardianUid)
    throw new Error(`the data folder ${data} must be a folder owned by the guardian (uid ${guardianUid})`);
  chmodSync(data, SHARED_DATA_DIRECTORY_MODE);
  ensureGuardianDirectory(join(data, `guardian-${id}`), guardianUid);
  makeFilesPrivate(join(data, `guardian-${id}`), guardianUid, () => true);
  makeFilesPrivate(data, guardianUid, (name) => name.startsWith(`guardian-${id}.log`));

  const replicaFolder = replicaDataDirectory(config, id);
  mkdirSync(replicaFolder, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  const folderStats = lstatSync(replicaFolder);
  if (!folderStats.isDirectory())
    throw new Error(`the replica data folder ${replicaFolder} is not a folder (a symbolic link?): remove it`);
  const hardLinked: string[] = [];
  giveTree(replicaFolder, user, hardLinked);
  chmodSync(replicaFolder, PRIVATE_DIRECTORY_MODE);
  for (const path of hardLinked)
    warnings.push(`${path} has several names (a hard link); left as it is, not given to ${user.name}`);

  // The replica's own log files in the shared folder: its log and its accountability log (and
  // their rotations). Archived ones (….epoch-<e>, ….broken) are the guardian's.
  const ownPrefixes = [`replica-${id}.log`, `${accountabilityLogPath(config, id).slice(data.length + 1)}`];
  for (const name of readdirSync(data)) {
    if (!ownPrefixes.some((prefix) => name === prefix || name.startsWith(`${prefix}.`))) continue;
    const path = join(data, name);
    const stats = lstatSync(path);
    // Archived accountability logs and what Node printed (opened by the guardian) are the guardian's.
    const archived = /\.(epoch-\d+|broken(-\d+)?|stderr|stderr\.1)$/.test(name);
    if (!stats.isFile() || stats.nlink > 1 || (stats.uid !== guardianUid && stats.uid !== user.uid)) {
      // Planted by another replica's user (the folder is shared): it would block this replica's
      // log rotation, or lead the guardian to a file of its choosing.
      rmSync(path, { force: true, recursive: false });
      warnings.push(
        `removed ${path}: a ${stats.isFile() ? 'file' : 'non-file'} owned by uid ${stats.uid}, planted`,
      );
      continue;
    }
    const owner = archived ? { uid: guardianUid, gid: process.getgid?.() ?? 0 } : user;
    if (!setOwnerOfFile(path, owner))
      warnings.push(`${path} changed while it was handed over; left as it is`);
  }
  return warnings;
}

/**
 * Gives the regular file at `path` (one name, not a link) to `owner`, mode 0600, through a
 * descriptor opened without following links: a name in the shared folder may be swapped for a
 * link between a check and a chmod by path, and chmod follows links. False if it is not such a file.
 */
export function setOwnerOfFile(path: string, owner: { readonly uid: number; readonly gid: number }): boolean {
  let descriptor: number;
  try {
    descriptor = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const stats = fstatSync(descriptor);
    if (!stats.isFile() || stats.nlink !== 1) return false;
    fchownSync(descriptor, owner.uid, owner.gid);
    fchmodSync(descriptor, PRIVATE_FILE_MODE);
    return true;
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Opens `path` for appending as the guardian, never through a symbolic link (the folder is
 * shared with replica users), and never a file someone else owns: what the replica process
 * writes to stdout and stderr goes there, through the inherited descriptor.
 */
export function openGuardianOwnedFile(path: string): number {
  const guardianUid = process.getuid?.() ?? 0;
  const flags = fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;
  for (let attempt = 0; attempt < 2; attempt++) {
    const descriptor = openSync(path, flags, PRIVATE_FILE_MODE);
    const stats = fstatSync(descriptor);
    if (stats.isFile() && stats.uid === guardianUid && stats.nlink === 1) return descriptor;
    closeSync(descriptor);
    rmSync(path, { force: true });
  }
  throw new Error(`${path} keeps being replaced by a file the guardian does not own`);
}

export interface AccessProbe {
  /** Paths the user must be able to read (files) or traverse and read (folders). */
  readonly readable: readonly string[];
  /** Folders the user must be able to create files in. */
  readonly writable: readonly string[];
  /** Paths the user must not be able to read, or list. */
  readonly forbidden: readonly string[];
}

/**
 * Checks, as the user itself (a short Node process with its uid and gid), what it can reach: the
 * answer of the kernel, with every mode bit, ACL and parent folder taken into account. Returns a
 * problem per path that is not as it must be, each saying what to change.
 */
export function probeAccessAs(user: SystemUser, probe: AccessProbe): string[] {
  const script = `
    const fs = require('node:fs');
    const probe = JSON.parse(process.argv[1]);
    const out = { unreadable: [], unwritable: [], exposed: [] };
    const can = (path, mode) => { try { fs.accessSync(path, mode); return true; } catch (e) { return e.code; } };
    for (const path of probe.readable) { const r = can(path, fs.constants.R_OK); if (r !== true) out.unreadable.push([path, r]); }
    for (const path of probe.writable) { const r = can(path, fs.constants.W_OK | fs.constants.X_OK); if (r !== true) out.unwritable.push([path, r]); }
    for (const path of probe.forbidden) { if (can(path, fs.constants.R_OK) === true) out.exposed.push(path); }
    process.stdout.write(JSON.stringify(out));
  `;
  const result = spawnSync(process.execPath, ['-e', script, JSON.stringify(probe)], {
    uid: user.uid,
    gid: user.gid,
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    encoding: 'utf8',
    timeout: ACCESS_PROBE_TIMEOUT_MS,
  });
  if (result.error !== undefined || result.status !== 0)
    return [
      `could not run a process as ${user.name} (uid ${user.uid}) to check its access: ` +
        `${result.error?.message ?? result.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${result.status}`}` +
        ' (the Node.js binary itself, and every folder above it, must be readable by that user)',
    ];
  const answer = JSON.parse(result.stdout) as {
    unreadable: [string, string][];
    unwritable: [string, string][];
    exposed: string[];
  };
  return [
    ...answer.unreadable.map(
      ([path, code]) =>
        `${user.name} cannot read ${path} (${code}): the code, the configuration and every folder above them must be ` +
        'readable (r, and x for folders) by the replica user; a parent folder of mode 0700 (such as /root) forbids it',
    ),
    ...answer.unwritable.map(
      ([path, code]) =>
        `${user.name} cannot create files in ${path} (${code}): the replica needs it for its files`,
    ),
    ...answer.exposed.map((path) => `${user.name} can read ${path}, which must stay the guardian's alone`),
  ];
}

/** The folder Node puts temporary files in for the replica (tsx keeps its cache there). */
export function replicaTemporaryDirectory(): string {
  return tmpdir();
}

/**
 * The environment of a replica process: only what running Node and the CLI needs, nothing the
 * guardian's environment may hold besides (tokens, credentials, paths to key material).
 */
export function replicaEnvironment(
  source: NodeJS.ProcessEnv,
  user: SystemUser | null,
  home: string,
): NodeJS.ProcessEnv {
  const kept = /^(PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|NODE_[A-Z0-9_]+|TSX_[A-Z0-9_]+|PHALANX_[A-Z0-9_]+)$/;
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(source))
    if (kept.test(name) && value !== undefined) environment[name] = value;
  if (user !== null) {
    environment.HOME = home;
    environment.USER = user.name;
    environment.LOGNAME = user.name;
  }
  return environment;
}
