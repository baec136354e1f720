/**
 * Private key files and cluster generation (`phalanx keygen`).
 *
 * A replica's key file holds the seeds of its session keys (Ed25519 for signatures and channel
 * authentication, X25519 for MAC keys shared with clients and peers); a client's key file holds
 * its own. They are written with mode 0600 and never go into the shared configuration, which
 * carries only public keys.
 *
 * Usage:
 * ```ts
 * const written = await generateCluster({ directory: '.phalanx', f: 1, k: 0, basePort: 7000, clients: ['admin'] });
 * const config = await loadClusterConfig(written.configPath);
 * const keys = await loadReplicaKeyFile(replicaKeyPath(config, replicaId(0)));
 * ```
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ClientId, clientId, keyEpoch, type ReplicaId, replicaId } from '../messages/ids.js';
import { minimumReplicas } from '../core/quorum.js';
import { type ClientKeys, clientKeysFromSeed } from '../crypto/client-crypto.js';
import { type EpochLifetime, KeyRegistry, UNLIMITED_EPOCH_LIFETIME } from '../crypto/key-registry.js';
import {
  agreementKeyPairFromSeed,
  agreementPublicKeyFromBytes,
  agreementSeed,
  generateAgreementKeyPair,
  generateSigningKeyPair,
  keyFromBase64,
  keyToBase64,
  type SigningKeyPair,
  signingKeyPairFromSeed,
  signingPublicKeyFromBytes,
  signingSeed,
} from '../crypto/keys.js';
import { type ReplicaSessionKeys, sessionPublicKeys } from '../crypto/replica-crypto.js';
import { epochLifetimeOfSchedule } from '../crypto/key-certificates.js';
import { type ClusterConfig, scheduleOf } from './cluster-config.js';

export const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface ReplicaKeyFile {
  readonly replica: ReplicaId;
  readonly sessionKeys: ReplicaSessionKeys;
}

export interface ClientKeyFile {
  readonly client: ClientId;
  readonly keys: ClientKeys;
}

export function replicaKeyPath(config: ClusterConfig, id: ReplicaId): string {
  return join(config.keysDirectory, `replica-${id}.json`);
}

export function clientKeyPath(config: ClusterConfig, id: ClientId): string {
  return join(config.keysDirectory, `client-${id}.json`);
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (error) {
    throw new Error(
      `cannot read ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  if (raw.length > MAX_KEY_FILE_BYTES)
    throw new Error(`${what} ${path} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw new Error(
      `${what} ${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function seedField(document: Record<string, unknown>, field: string, path: string): Uint8Array {
  const value = document[field];
  if (typeof value !== 'string') throw new Error(`${path}: ${field} must be a base64 seed`);
  try {
    return keyFromBase64(value);
  } catch (error) {
    throw new Error(`${path}: ${field}: ${error instanceof Error ? error.message : 'not a 32-byte seed'}`, {
      cause: error,
    });
  }
}

export async function loadReplicaKeyFile(path: string): Promise<ReplicaKeyFile> {
  const document = await readJson(path, 'replica key file');
  if (document.kind !== 'phalanx-replica-keys') throw new Error(`${path}: not a Phalanx replica key file`);
  if (typeof document.replica !== 'number') throw new Error(`${path}: replica must be a number`);
  return {
    replica: replicaId(document.replica),
    sessionKeys: {
      signing: signingKeyPairFromSeed(seedField(document, 'signingSeed', path)),
      agreement: agreementKeyPairFromSeed(seedField(document, 'agreementSeed', path)),
    },
  };
}

export async function loadClientKeyFile(path: string): Promise<ClientKeyFile> {
  const document = await readJson(path, 'client key file');
  if (document.kind !== 'phalanx-client-keys') throw new Error(`${path}: not a Phalanx client key file`);
  if (typeof document.client !== 'string') throw new Error(`${path}: client must be a string`);
  return {
    client: clientId(document.client),
    keys: {
      signing: signingKeyPairFromSeed(seedField(document, 'signingSeed', path)),
      agreement: agreementKeyPairFromSeed(seedField(document, 'agreementSeed', path)),
    },
  };
}

/**
 * The lifetime of the key epochs of a configuration's replicas: with guardians, the one its
 * recovery schedule implies (epochLifetimeOfSchedule in src/crypto/key-certificates.ts); without
 * guardians (no recovery section) keys never rotate and never expire.
 */
export function epochLifetimeOf(config: ClusterConfig): EpochLifetime {
  return config.recovery === null ? UNLIMITED_EPOCH_LIFETIME : epochLifetimeOfSchedule(scheduleOf(config));
}

/**
 * Public keys of every client of the configuration, and of no replica yet (they come with
 * certificates, whose epochs live as long as the configuration's schedule says: epochLifetimeOf).
 */
export function clientRegistryOf(config: ClusterConfig, now: () => number = Date.now): KeyRegistry {
  const registry = new KeyRegistry(config.n, { lifetime: epochLifetimeOf(config), now });
  for (const client of config.clients) {
    registry.registerClient(client.id, {
      signing: signingPublicKeyFromBytes(client.signingKey),
      agreement: agreementPublicKeyFromBytes(client.agreementKey),
    });
  }
  return registry;
}

/** Public keys of every replica (epoch 0) and client of the configuration. */
export function keyRegistryOf(config: ClusterConfig): KeyRegistry {
  const registry = new KeyRegistry(config.n);
  for (const replica of config.replicas) {
    registry.installReplicaEpoch(replica.id, keyEpoch(0), {
      signing: signingPublicKeyFromBytes(replica.signingKey),
      agreement: agreementPublicKeyFromBytes(replica.agreementKey),
    });
  }
  for (const client of config.clients) {
    registry.registerClient(client.id, {
      signing: signingPublicKeyFromBytes(client.signingKey),
      agreement: agreementPublicKeyFromBytes(client.agreementKey),
    });
  }
  return registry;
}

export interface GenerateClusterOptions {
  readonly directory: string;
  readonly f: number;
  readonly k: number;
  /** Defaults to 3f + 2k + 1. */
  readonly n?: number;
  readonly host?: string;
  /** Replica i listens on basePort + i, its admin port is basePort + 100 + i. */
  readonly basePort: number;
  /** Client principals with access to every key ('*'). */
  readonly clients: readonly string[];
  /** Extra clients named bench-0..bench-(count-1), for `phalanx bench`. */
  readonly benchClients?: number;
  readonly storageEngine?: 'file' | 'leveldb';
  readonly dashboardPort?: number;
  readonly allowFaultInjection?: boolean;
  readonly protocol?: Record<string, unknown>;
  /** Guardians with proactive recovery (T_D; T_P defaults to its minimum). Requires k ≥ 1. */
  readonly recovery?: {
    readonly recoveryBoundMs: number;
    readonly periodMs?: number;
    /** Where period 0 starts (sets the phase of the schedule; default 0). */
    readonly scheduleOriginMs?: number;
  };
}

async function writePrivate(path: string, document: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
}

export async function generateCluster(options: GenerateClusterOptions): Promise<{ configPath: string }> {
  const n = options.n ?? minimumReplicas(options.f, options.k);
  const directory = resolve(options.directory);
  const keysDirectory = join(directory, 'keys');
  await mkdir(keysDirectory, { recursive: true, mode: 0o700 });
  const host = options.host ?? '127.0.0.1';
  const replicas = [];
  const withGuardians = options.recovery !== undefined;
  for (let index = 0; index < n; index++) {
    let identityKey: string | undefined;
    if (withGuardians) {
      const identity = generateSigningKeyPair();
      await writePrivate(join(keysDirectory, `guardian-${index}.json`), {
        kind: 'phalanx-guardian-identity',
        replica: index,
        identitySeed: keyToBase64(signingSeed(identity)),
      });
      identityKey = keyToBase64(identity.publicKey.bytes);
    }
    const signing = generateSigningKeyPair();
    const agreement = generateAgreementKeyPair();
    await writePrivate(join(keysDirectory, `replica-${index}.json`), {
      kind: 'phalanx-replica-keys',
      replica: index,
      signingSeed: keyToBase64(signingSeed(signing)),
      agreementSeed: keyToBase64(agreementSeed(agreement)),
    });
    const publicKeys = sessionPublicKeys({ signing, agreement });
    replicas.push({
      id: index,
      host,
      port: options.basePort + index,
      adminHost: '127.0.0.1',
      adminPort: options.basePort + 100 + index,
      signingKey: keyToBase64(publicKeys.signing.bytes),
      agreementKey: keyToBase64(publicKeys.agreement.bytes),
      ...(identityKey === undefined
        ? {}
        : {
            identityKey,
            guardianPort: options.basePort + 200 + index,
            guardianAdminPort: options.basePort + 300 + index,
          }),
    });
  }
  let installKey: string | undefined;
  if (withGuardians) {
    const install = generateSigningKeyPair();
    await writePrivate(join(keysDirectory, 'install.json'), {
      kind: 'phalanx-install-key',
      installSeed: keyToBase64(signingSeed(install)),
    });
    installKey = keyToBase64(install.publicKey.bytes);
  }
  const names = [...options.clients];
  for (let index = 0; index < (options.benchClients ?? 0); index++) names.push(`bench-${index}`);
  const clients: Record<string, unknown> = {};
  for (const name of names) {
    const keys = clientKeysFromSeed(new Uint8Array(randomBytes(32)), { signing: true });
    await writePrivate(join(keysDirectory, `client-${name}.json`), {
      kind: 'phalanx-client-keys',
      client: name,
      signingSeed: keyToBase64(signingSeed(keys.signing!)),
      agreementSeed: keyToBase64(agreementSeed(keys.agreement)),
    });
    clients[name] = {
      signingKey: keyToBase64(keys.signing!.publicKey.bytes),
      agreementKey: keyToBase64(keys.agreement.publicKey.bytes),
      keyspaces: ['*'],
    };
  }
  const configPath = join(directory, 'cluster.json');
  const document = {
    f: options.f,
    k: options.k,
    replicas,
    clients,
    storage: { engine: options.storageEngine ?? 'file' },
    dataDirectory: 'data',
    keysDirectory: 'keys',
    dashboard: { host: '127.0.0.1', port: options.dashboardPort ?? 8080 },
    allowFaultInjection: options.allowFaultInjection ?? false,
    ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
    ...(options.recovery === undefined
      ? {}
      : {
          recovery: {
            recoveryBoundMs: options.recovery.recoveryBoundMs,
            ...(options.recovery.periodMs === undefined ? {} : { periodMs: options.recovery.periodMs }),
            scheduleOriginMs: options.recovery.scheduleOriginMs ?? 0,
          },
          installKey,
        }),
  };
  await writeFile(configPath, `${JSON.stringify(document, null, 2)}\n`);
  return { configPath };
}

export function guardianKeyPath(config: ClusterConfig, id: ReplicaId): string {
  return join(config.keysDirectory, `guardian-${id}.json`);
}

export function installKeyPath(config: ClusterConfig): string {
  return join(config.keysDirectory, 'install.json');
}

/** A guardian's long-term identity key pair (never given to its replica process). */
export async function loadGuardianIdentity(
  path: string,
): Promise<{ readonly replica: ReplicaId; readonly identity: SigningKeyPair }> {
  const document = await readJson(path, 'guardian identity file');
  if (document.kind !== 'phalanx-guardian-identity')
    throw new Error(`${path}: not a Phalanx guardian identity file`);
  if (typeof document.replica !== 'number') throw new Error(`${path}: replica must be a number`);
  return {
    replica: replicaId(document.replica),
    identity: signingKeyPairFromSeed(seedField(document, 'identitySeed', path)),
  };
}

/** The key that signs code manifests at install time. */
export async function loadInstallKey(path: string): Promise<SigningKeyPair> {
  const document = await readJson(path, 'install key file');
  if (document.kind !== 'phalanx-install-key') throw new Error(`${path}: not a Phalanx install key file`);
  return signingKeyPairFromSeed(seedField(document, 'installSeed', path));
}
