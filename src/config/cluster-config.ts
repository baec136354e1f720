/**
 * The cluster configuration file: who the replicas are, where they listen, their public keys,
 * which clients exist and what they may touch, and protocol parameters. One file (JSON or YAML)
 * is shared by every host; private keys live in separate key files (see keys.ts).
 *
 * `parseClusterConfig` checks every field and reports every problem at once, each prefixed with
 * its path (e.g. `replicas[2].port: must be an integer from 1 to 65535, got "abc"`);
 * `loadClusterConfig` also places each problem of a JSON file at its line and column
 * (json-positions.ts), syntax errors included.
 *
 * Usage:
 * ```ts
 * const config = await loadClusterConfig('.phalanx/cluster.json');
 * console.log(config.n, config.replicas[0].host);
 * ```
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { defaultProtocolConfig, type ProtocolConfig, protocolConfigProblems } from '../core/config.js';
import { type ClientId, isValidClientId, type ReplicaId, replicaId } from '../messages/ids.js';
import { minimumReplicas } from '../core/quorum.js';
import type { JsonValue } from '../core/service.js';
import { replicaUserProblems } from './replica-user.js';
import { minimumPeriodMs, type ScheduleParameters } from '../core/schedule.js';
import { keyFromBase64 } from '../crypto/keys.js';
import { LIMITS } from '../messages/limits.js';
import { problemPath, scanJsonPositions, type TextPosition } from './json-positions.js';

export interface ReplicaEntry {
  readonly id: ReplicaId;
  /** Payload address (replicas and clients connect here). */
  readonly host: string;
  readonly port: number;
  /** Admin HTTP (status, metrics); bound to loopback unless configured otherwise. */
  readonly adminHost: string;
  readonly adminPort: number;
  /** Raw Ed25519 public session key of key epoch 0. */
  readonly signingKey: Uint8Array;
  /** Raw X25519 public key of key epoch 0. */
  readonly agreementKey: Uint8Array;
  /**
   * Raw Ed25519 public key of this replica's guardian (its long-term identity, which certifies
   * the session keys of every later key epoch); null when the cluster runs without guardians.
   */
  readonly identityKey: Uint8Array | null;
  /** The guardian's control channel (guardians talk only to guardians) and admin HTTP port. */
  readonly guardianHost: string;
  readonly guardianPort: number;
  readonly guardianAdminPort: number;
}

export interface RecoveryConfig {
  /** T_D: the bound on one rejuvenation (stop, verify, new keys, restart, state, catch up). */
  readonly recoveryBoundMs: number;
  /** T_P: every replica is rejuvenated once per period; ≥ (⌈n/k⌉ + ⌈f/k⌉)·T_D. */
  readonly periodMs: number;
  /** Where the schedule's periods start (ms since the Unix epoch); guardians share the clock. */
  readonly scheduleOriginMs: number;
  /**
   * The operating-system user each replica process runs as, a name or a pattern with `{id}`
   * (e.g. "phalanx-replica-{id}"); null: the guardian's own user (the trust boundary is not
   * enforced). See docs/intrusion-tolerance.md, "Trust boundary".
   */
  readonly replicaUser: string | null;
  /** A guardian with the privilege may create a missing replica user (useradd --system). */
  readonly createReplicaUser: boolean;
}

export interface ClientEntry {
  readonly id: ClientId;
  readonly signingKey: Uint8Array;
  readonly agreementKey: Uint8Array;
  /**
   * What the service grants the client, as strings the service interprets: the key-value store
   * reads them as key prefixes the client may read and write ('*' = everything). Checked only as
   * a list of strings here; the service checks their meaning (kvConfigProblems in
   * src/apps/kv/hosting.ts), so that the configuration file does not depend on one service.
   */
  readonly keyspaces: readonly string[];
}

export type StorageEngineChoice = 'file' | 'leveldb';

export interface ClusterConfig {
  /** Absolute path of the file this came from (relative paths inside resolve against its folder). */
  readonly source: string;
  readonly n: number;
  readonly f: number;
  readonly k: number;
  readonly replicas: readonly ReplicaEntry[];
  readonly clients: readonly ClientEntry[];
  readonly protocol: ProtocolConfig;
  readonly storage: { readonly engine: StorageEngineChoice };
  /** Folder holding one data folder per replica (replica-<id>), absolute. */
  readonly dataDirectory: string;
  /** Folder holding private key files, absolute. */
  readonly keysDirectory: string;
  readonly dashboard: { readonly host: string; readonly port: number };
  /** Test and demo clusters only: replicas may be started in a fault mode. */
  readonly allowFaultInjection: boolean;
  /** Proactive and reactive recovery by guardians; null: no guardians. */
  readonly recovery: RecoveryConfig | null;
  /** Raw Ed25519 public key that signs the code manifest at install time; null: not checked. */
  readonly installKey: Uint8Array | null;
  /** The replicated service the replicas run (default: the built-in key-value store). */
  readonly service: ServiceSelection;
}

/**
 * The `service` section: which service module the replicas run, and its options. The module is a
 * path relative to the configuration file's folder (`./ledger/service.js`), an absolute path, or a
 * package name; src/hosting/service-modules.ts resolves and loads it. Checked here only as a
 * specifier and a bounded JSON value: what the options mean is the module's business.
 */
export interface ServiceSelection {
  readonly module: string;
  /** null when the section has no options. */
  readonly options: JsonValue | null;
}

/** The module a configuration without a `service` section runs: Phalanx's key-value store. */
export const DEFAULT_SERVICE_MODULE = 'phalanx/kv';

/** Bounds on the `service` section, so that a mistaken configuration fails clearly. */
export const SERVICE_SELECTION_LIMITS = {
  /** Longest module specifier (a path or a package name). */
  maxModuleSpecifierLength: 1024,
  /** Largest `service.options`, as compact JSON (UTF-8 bytes). */
  maxOptionsBytes: 64 * 1024,
  /** Deepest nesting of arrays and objects in `service.options`. */
  maxOptionsDepth: 32,
} as const;

/** Largest configuration file read, so a wrong path (a huge file) fails clearly. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/** Where a problem is in the configuration file; null when unknown (YAML, or an unreadable file). */
export type ConfigProblemPosition = TextPosition | null;

/**
 * Every problem of a configuration, each prefixed with the path of the field it is about and,
 * for a JSON file, its position: the message lists them as `file:line:column: path: problem`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly source: string;
  readonly problems: readonly string[];
  /** One per problem, in the same order. */
  readonly positions: readonly ConfigProblemPosition[];
  constructor(source: string, problems: readonly string[], positions: readonly ConfigProblemPosition[] = []) {
    const lines = problems.map((problem, index) => {
      const position = positions[index] ?? null;
      return position === null ? problem : `${source}:${position.line}:${position.column}: ${problem}`;
    });
    super(`invalid configuration ${source}:\n  ${lines.join('\n  ')}`);
    this.source = source;
    this.problems = problems;
    this.positions = problems.map((_, index) => positions[index] ?? null);
  }
}

/**
 * The same error with every problem placed in `text` (the file it came from, when it is JSON):
 * each at the field its path names, or at the nearest enclosing one present (a missing field
 * points at the object that lacks it).
 */
export function locateConfigProblems(error: ConfigError, text: string): ConfigError {
  const scanned = scanJsonPositions(text);
  return new ConfigError(
    error.source,
    error.problems,
    error.problems.map(
      (problem, index) => error.positions[index] ?? scanned.positionOf(problemPath(problem)),
    ),
  );
}

/** A JSON.parse failure at its position: V8's own when it gives one, else the scanner's. */
function jsonSyntaxError(source: string, text: string, error: unknown): ConfigError {
  const reason = error instanceof Error ? error.message : String(error);
  const scanned = scanJsonPositions(text);
  const given = /at position (\d+)/.exec(reason);
  const offset = given !== null ? Number(given[1]) : (scanned.syntaxError?.offset ?? null);
  return new ConfigError(
    source,
    [`not valid JSON: ${reason}`],
    [offset === null ? null : scanned.positionAt(offset)],
  );
}

type Problems = string[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function integer(problems: Problems, path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    problems.push(`${path}: must be an integer from ${min} to ${max}, got ${describe(value)}`);
    return min;
  }
  return value;
}

function text(problems: Problems, path: string, value: unknown, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
    problems.push(`${path}: must be a non-empty string, got ${describe(value)}`);
    return fallback ?? '';
  }
  return value;
}

function key(problems: Problems, path: string, value: unknown): Uint8Array {
  if (typeof value !== 'string') {
    problems.push(`${path}: must be a base64 32-byte public key, got ${describe(value)}`);
    return new Uint8Array(32);
  }
  try {
    return keyFromBase64(value);
  } catch (error) {
    problems.push(`${path}: ${error instanceof Error ? error.message : 'not a base64 32-byte key'}`);
    return new Uint8Array(32);
  }
}

function unknownFields(
  problems: Problems,
  path: string,
  value: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const field of Object.keys(value)) {
    if (!known.includes(field)) problems.push(`${path}${path === '' ? '' : '.'}${field}: unknown field`);
  }
}

function parseReplicas(problems: Problems, value: unknown): ReplicaEntry[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`replicas: must be a non-empty list, got ${describe(value)}`);
    return [];
  }
  if (value.length > LIMITS.maxReplicas) problems.push(`replicas: at most ${LIMITS.maxReplicas} replicas`);
  const seen = new Set<string>();
  return value
    .map((entry: unknown, index) => {
      const path = `replicas[${index}]`;
      if (!isRecord(entry)) {
        problems.push(`${path}: must be an object`);
        return null;
      }
      unknownFields(problems, path, entry, [
        'id',
        'host',
        'port',
        'adminHost',
        'adminPort',
        'signingKey',
        'agreementKey',
        'identityKey',
        'guardianHost',
        'guardianPort',
        'guardianAdminPort',
      ]);
      const id = integer(problems, `${path}.id`, entry.id, 0, LIMITS.maxReplicas - 1);
      if (id !== index)
        problems.push(`${path}.id: replicas must be listed in id order 0..n-1, expected ${index}`);
      const host = text(problems, `${path}.host`, entry.host);
      const port = integer(problems, `${path}.port`, entry.port, 1, 65535);
      const adminHost = text(problems, `${path}.adminHost`, entry.adminHost, '127.0.0.1');
      const adminPort = integer(problems, `${path}.adminPort`, entry.adminPort, 1, 65535);
      for (const endpoint of [`${host}:${port}`, `${adminHost}:${adminPort}`]) {
        if (seen.has(endpoint)) problems.push(`${path}: address ${endpoint} is used twice`);
        seen.add(endpoint);
      }
      return {
        id: replicaId(Math.min(id, LIMITS.maxReplicas - 1)),
        host,
        port,
        adminHost,
        adminPort,
        signingKey: key(problems, `${path}.signingKey`, entry.signingKey),
        agreementKey: key(problems, `${path}.agreementKey`, entry.agreementKey),
        identityKey:
          entry.identityKey === undefined ? null : key(problems, `${path}.identityKey`, entry.identityKey),
        guardianHost: text(problems, `${path}.guardianHost`, entry.guardianHost, host),
        guardianPort: integer(
          problems,
          `${path}.guardianPort`,
          entry.guardianPort ?? Math.min(port + 200, 65535),
          1,
          65535,
        ),
        guardianAdminPort: integer(
          problems,
          `${path}.guardianAdminPort`,
          entry.guardianAdminPort ?? Math.min(port + 300, 65535),
          1,
          65535,
        ),
      };
    })
    .filter((entry): entry is ReplicaEntry => entry !== null);
}

function parseClients(problems: Problems, value: unknown): ClientEntry[] {
  if (!isRecord(value)) {
    problems.push(
      `clients: must be an object mapping client ids to their keys and keyspaces, got ${describe(value)}`,
    );
    return [];
  }
  const clients: ClientEntry[] = [];
  for (const [name, entry] of Object.entries(value)) {
    const path = `clients.${name}`;
    if (!isValidClientId(name)) {
      problems.push(`${path}: client ids use letters, digits, '.', '_' and '-' (1 to 64 characters)`);
      continue;
    }
    if (!isRecord(entry)) {
      problems.push(`${path}: must be an object`);
      continue;
    }
    unknownFields(problems, path, entry, ['signingKey', 'agreementKey', 'keyspaces']);
    const keyspaces = entry.keyspaces;
    if (!Array.isArray(keyspaces) || keyspaces.some((space) => typeof space !== 'string')) {
      problems.push(
        `${path}.keyspaces: must be a list of key prefixes ('*' for everything), got ${describe(keyspaces)}`,
      );
      continue;
    }
    clients.push({
      id: name,
      signingKey: key(problems, `${path}.signingKey`, entry.signingKey),
      agreementKey: key(problems, `${path}.agreementKey`, entry.agreementKey),
      keyspaces: keyspaces as string[],
    });
  }
  return clients;
}

function parseProtocol(problems: Problems, value: unknown, base: ProtocolConfig): ProtocolConfig {
  if (value === undefined) return base;
  if (!isRecord(value)) {
    problems.push(`protocol: must be an object, got ${describe(value)}`);
    return base;
  }
  const numeric = Object.keys(base).filter(
    (field) =>
      typeof (base as unknown as Record<string, unknown>)[field] === 'number' &&
      !['n', 'f', 'k'].includes(field),
  );
  unknownFields(problems, 'protocol', value, [...numeric, 'requireClientSignatures', 'stateTransfer']);
  const merged: Record<string, unknown> = { ...base };
  for (const field of numeric) {
    if (value[field] !== undefined)
      // Which fields may be 0 is protocolConfigProblems' rule (below), stated once, in the core.
      merged[field] = integer(problems, `protocol.${field}`, value[field], 0, 1e9);
  }
  if (value.requireClientSignatures !== undefined) {
    if (typeof value.requireClientSignatures !== 'boolean') {
      problems.push(
        `protocol.requireClientSignatures: must be true or false, got ${describe(value.requireClientSignatures)}`,
      );
    } else {
      merged.requireClientSignatures = value.requireClientSignatures;
    }
  }
  if (value.stateTransfer !== undefined) {
    if (!isRecord(value.stateTransfer)) {
      problems.push('protocol.stateTransfer: must be an object');
    } else {
      const stateTransfer: Record<string, unknown> = { ...base.stateTransfer };
      unknownFields(problems, 'protocol.stateTransfer', value.stateTransfer, Object.keys(base.stateTransfer));
      for (const field of Object.keys(base.stateTransfer)) {
        const given = value.stateTransfer[field];
        if (given !== undefined)
          stateTransfer[field] = integer(problems, `protocol.stateTransfer.${field}`, given, 1, 1e9);
      }
      merged.stateTransfer = stateTransfer;
    }
  }
  const protocol = merged as unknown as ProtocolConfig;
  for (const problem of protocolConfigProblems(protocol)) problems.push(`protocol: ${problem}`);
  return protocol;
}

function parseRecovery(
  problems: Problems,
  value: unknown,
  model: { n: number; f: number; k: number },
  replicas: readonly ReplicaEntry[],
): RecoveryConfig | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) {
    problems.push(`recovery: must be an object, got ${describe(value)}`);
    return null;
  }
  unknownFields(problems, 'recovery', value, [
    'recoveryBoundMs',
    'periodMs',
    'scheduleOriginMs',
    'replicaUser',
    'createReplicaUser',
  ]);
  let replicaUser: string | null = null;
  if (value.replicaUser !== undefined && value.replicaUser !== null) {
    if (typeof value.replicaUser !== 'string')
      problems.push(
        `recovery.replicaUser: must be a user name or pattern, got ${describe(value.replicaUser)}`,
      );
    else {
      for (const problem of replicaUserProblems(value.replicaUser))
        problems.push(`recovery.replicaUser: ${problem}`);
      replicaUser = value.replicaUser;
    }
  }
  if (value.createReplicaUser !== undefined && typeof value.createReplicaUser !== 'boolean')
    problems.push(
      `recovery.createReplicaUser: must be true or false, got ${describe(value.createReplicaUser)}`,
    );
  const createReplicaUser = value.createReplicaUser === true;
  if (createReplicaUser && replicaUser === null)
    problems.push('recovery.createReplicaUser: needs recovery.replicaUser');
  const recoveryBoundMs = integer(
    problems,
    'recovery.recoveryBoundMs',
    value.recoveryBoundMs,
    100,
    86_400_000,
  );
  const minimum = minimumPeriodMs(model, recoveryBoundMs);
  const periodMs = integer(
    problems,
    'recovery.periodMs',
    value.periodMs ?? (Number.isFinite(minimum) ? minimum : 0),
    100,
    Number.MAX_SAFE_INTEGER,
  );
  const scheduleOriginMs = integer(
    problems,
    'recovery.scheduleOriginMs',
    value.scheduleOriginMs ?? 0,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  if (model.k < 1) {
    problems.push(
      'recovery: rejuvenation needs k ≥ 1 (replicas that may be recovering at once), and n ≥ 3f + 2k + 1',
    );
  } else if (periodMs < minimum) {
    problems.push(
      `recovery.periodMs: ${periodMs} ms is too short: with n = ${model.n}, f = ${model.f}, k = ${model.k} the period ` +
        `must hold ⌈n/k⌉ + ⌈f/k⌉ = ${Math.ceil(model.n / model.k) + Math.ceil(model.f / model.k)} slots of ` +
        `T_D = ${recoveryBoundMs} ms, i.e. at least ${minimum} ms`,
    );
  }
  replicas.forEach((replica, index) => {
    if (replica.identityKey === null) {
      problems.push(
        `replicas[${index}].identityKey: required when recovery is configured (the guardian's identity key)`,
      );
    }
  });
  return { recoveryBoundMs, periodMs, scheduleOriginMs, replicaUser, createReplicaUser };
}

/** Why `value` is not a JSON value within the depth limit, or null when it is one. */
function jsonValueProblem(value: unknown, path: string, depth: number): string | null {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return null;
  if (typeof value === 'number')
    return Number.isFinite(value) ? null : `${path}: must be a finite number, got ${String(value)}`;
  if (typeof value !== 'object')
    return `${path}: must be JSON (null, booleans, numbers, strings, lists, objects), got a ${typeof value}`;
  if (depth >= SERVICE_SELECTION_LIMITS.maxOptionsDepth)
    return `${path}: nested deeper than ${SERVICE_SELECTION_LIMITS.maxOptionsDepth} levels`;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonValueProblem(item, `${path}[${index}]`, depth + 1);
      if (problem !== null) return problem;
    }
    return null;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
    return `${path}: must be a plain JSON object`;
  for (const [key, item] of Object.entries(value)) {
    const problem = jsonValueProblem(item, `${path}.${key}`, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

function parseServiceSelection(problems: Problems, value: unknown): ServiceSelection {
  const fallback: ServiceSelection = { module: DEFAULT_SERVICE_MODULE, options: null };
  if (value === undefined) return fallback;
  if (!isRecord(value)) {
    problems.push(
      `service: must be an object with "module" (and optional "options"), got ${describe(value)}`,
    );
    return fallback;
  }
  unknownFields(problems, 'service', value, ['module', 'options']);
  const module = value.module;
  const limit = SERVICE_SELECTION_LIMITS.maxModuleSpecifierLength;
  if (typeof module !== 'string' || module.length === 0 || module.includes('\0')) {
    problems.push(
      `service.module: must be a module path (relative to this file's folder) or a package name, got ${describe(module)}`,
    );
    return fallback;
  }
  if (module.length > limit) {
    problems.push(`service.module: longer than ${limit} characters`);
    return fallback;
  }
  const options = value.options ?? null;
  const problem = jsonValueProblem(options, 'service.options', 0);
  if (problem !== null) {
    problems.push(problem);
    return { module, options: null };
  }
  const bytes = Buffer.byteLength(JSON.stringify(options));
  if (bytes > SERVICE_SELECTION_LIMITS.maxOptionsBytes) {
    problems.push(
      `service.options: ${bytes} bytes as JSON, more than ${SERVICE_SELECTION_LIMITS.maxOptionsBytes}`,
    );
    return { module, options: null };
  }
  return { module, options: options as JsonValue };
}

/** Validates a parsed document; relative folders resolve against the folder of `source`. */
export function parseClusterConfig(document: unknown, source: string): ClusterConfig {
  const problems: Problems = [];
  if (!isRecord(document)) throw new ConfigError(source, ['the file must contain an object']);
  unknownFields(problems, '', document, [
    'f',
    'k',
    'replicas',
    'clients',
    'protocol',
    'storage',
    'dataDirectory',
    'keysDirectory',
    'dashboard',
    'allowFaultInjection',
    'recovery',
    'installKey',
    'service',
  ]);
  const f = integer(problems, 'f', document.f, 0, 21);
  const k = integer(problems, 'k', document.k ?? 0, 0, 21);
  const replicas = parseReplicas(problems, document.replicas);
  const n = replicas.length;
  if (n > 0 && n < minimumReplicas(f, k)) {
    problems.push(
      `replicas: ${n} replicas cannot tolerate f = ${f} Byzantine and k = ${k} recovering replicas; ` +
        `n must be at least 3f + 2k + 1 = ${minimumReplicas(f, k)}`,
    );
  }
  const clients = parseClients(problems, document.clients ?? {});
  const protocol = parseProtocol(
    problems,
    document.protocol,
    defaultProtocolConfig({ n: Math.max(n, 1), f, k }),
  );
  if (document.storage !== undefined && !isRecord(document.storage))
    problems.push(`storage: must be an object, got ${describe(document.storage)}`);
  const storage = isRecord(document.storage) ? document.storage : {};
  unknownFields(problems, 'storage', storage, ['engine']);
  const engine = storage.engine ?? 'file';
  if (engine !== 'file' && engine !== 'leveldb') {
    problems.push(`storage.engine: must be "file" or "leveldb", got ${describe(engine)}`);
  }
  const folder = dirname(resolve(source));
  if (document.dashboard !== undefined && !isRecord(document.dashboard))
    problems.push(`dashboard: must be an object, got ${describe(document.dashboard)}`);
  const dashboard = isRecord(document.dashboard) ? document.dashboard : {};
  unknownFields(problems, 'dashboard', dashboard, ['host', 'port']);
  const allowFaultInjection = document.allowFaultInjection ?? false;
  if (typeof allowFaultInjection !== 'boolean') problems.push('allowFaultInjection: must be true or false');
  const directory = (value: unknown, name: string, fallback: string): string => {
    const given = text(problems, name, value, fallback);
    return isAbsolute(given) ? given : resolve(folder, given);
  };
  const recovery = parseRecovery(problems, document.recovery, { n, f, k }, replicas);
  const installKey =
    document.installKey === undefined ? null : key(problems, 'installKey', document.installKey);
  const config: ClusterConfig = {
    source: resolve(source),
    n,
    f,
    k,
    replicas,
    clients,
    protocol,
    storage: { engine: engine === 'leveldb' ? 'leveldb' : 'file' },
    dataDirectory: directory(document.dataDirectory, 'dataDirectory', 'data'),
    keysDirectory: directory(document.keysDirectory, 'keysDirectory', 'keys'),
    dashboard: {
      host: text(problems, 'dashboard.host', dashboard.host, '127.0.0.1'),
      port: integer(problems, 'dashboard.port', dashboard.port ?? 8080, 0, 65535),
    },
    allowFaultInjection: allowFaultInjection === true,
    recovery,
    installKey,
    service: parseServiceSelection(problems, document.service),
  };
  if (problems.length > 0) throw new ConfigError(source, problems);
  return config;
}

export async function loadClusterConfig(path: string): Promise<ClusterConfig> {
  let raw: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_CONFIG_FILE_BYTES)
      throw new ConfigError(path, [`file is larger than ${MAX_CONFIG_FILE_BYTES} bytes`]);
    raw = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(path, [
      `cannot read it: ${error instanceof Error ? error.message : String(error)}`,
    ]);
  }
  if (['.yaml', '.yml'].includes(extname(path))) {
    let document: unknown;
    try {
      document = parseYaml(raw);
    } catch (error) {
      throw new ConfigError(path, [
        `not valid YAML: ${error instanceof Error ? error.message : String(error)}`,
      ]);
    }
    return parseClusterConfig(document, path);
  }
  let document: unknown;
  try {
    document = JSON.parse(raw);
  } catch (error) {
    throw jsonSyntaxError(path, raw, error);
  }
  try {
    return parseClusterConfig(document, path);
  } catch (error) {
    throw error instanceof ConfigError ? locateConfigProblems(error, raw) : error;
  }
}

export function replicaDataDirectory(config: ClusterConfig, id: ReplicaId): string {
  return resolve(config.dataDirectory, `replica-${id}`);
}

/**
 * The replica's hash-chained log of what it sent and received (beside its data folder, which its
 * storage engine owns): the guardian audits it at every rejuvenation.
 */
export function accountabilityLogPath(config: ClusterConfig, id: ReplicaId): string {
  return resolve(config.dataDirectory, `accountability-${id}.log`);
}

/**
 * The recovery schedule (src/core/schedule.ts) a configuration's guardians follow; it must have
 * a recovery section. Here rather than beside the schedule: the schedule is pure arithmetic on
 * its parameters and knows nothing of configuration files.
 */
export function scheduleOf(config: ClusterConfig): ScheduleParameters {
  const recovery = config.recovery;
  if (recovery === null) throw new Error(`${config.source} has no recovery section: there is no schedule`);
  return {
    n: config.n,
    f: config.f,
    k: config.k,
    recoveryBoundMs: recovery.recoveryBoundMs,
    periodMs: recovery.periodMs,
    originMs: recovery.scheduleOriginMs,
  };
}
