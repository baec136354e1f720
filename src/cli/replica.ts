/**
 * `phalanx replica`: run one replica in this process (one per host in a real deployment). With
 * `--guardian` it runs under its guardian (`phalanx guardian` starts it that way): its session
 * keys, key certificates and instructions arrive on the guardian link (fd 3), never on disk.
 */
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { type ClusterConfig, replicaDataDirectory } from '../config/cluster-config.js';
import { loadReplicaKeyFile, replicaKeyPath } from '../config/keys.js';
import { type ReplicaId, keyEpoch, replicaId } from '../messages/ids.js';
import {
  type FaultMode,
  type GuardianToReplica,
  type ReplicaToGuardian,
  FAULT_MODES,
  FramedLink,
  decodeForkProof,
  fromBase64,
  GUARDIAN_LINK_FD,
  MAX_GUARDIAN_FRAME_BYTES,
  MAX_REPLICA_FRAME_BYTES,
  isFaultMode,
  parseGuardianMessage,
} from '../runtime/ipc.js';
import { decodeKeyCertificate, sessionKeysFromSeeds } from '../crypto/key-certificates.js';
import {
  type GuardianLink,
  type OutgoingInterceptor,
  type ReplicaKeySource,
  ReplicaNode,
} from '../runtime/replica-node.js';
import { FaultInjection } from '../runtime/fault-modes.js';
import { UnreplicatedServer } from '../runtime/unreplicated-server.js';
import type { ForensicProof, KeyCertificate } from '../messages/types.js';
import { serviceFactoryOf } from '../hosting/service-modules.js';
import {
  DEFAULT_CONFIG,
  OPTION_RANGES,
  rangedOption,
  processLogger,
  serviceConfigOrExit,
  stopOnSignals,
} from './options.js';
import { type LogFormat, parseLogFormat } from './logging.js';

/**
 * The test-only fault injection a replica installs: only in clusters whose configuration allows
 * fault injection (tests, `phalanx demo`). A production replica gets none, so its send path and
 * its service are the plain ones, and it refuses fault modes.
 */
export function faultInjectionOf(config: ClusterConfig): { outgoingInterceptor?: OutgoingInterceptor } {
  return config.allowFaultInjection ? { outgoingInterceptor: new FaultInjection() } : {};
}

/** How long a replica started by its guardian waits for its session keys. */
const SESSION_KEYS_TIMEOUT_MS = 30_000;

function certificatesOf(encoded: readonly string[]): KeyCertificate[] {
  return encoded
    .map((text) => decodeKeyCertificate(fromBase64(text)))
    .filter((certificate): certificate is KeyCertificate => certificate !== null);
}

/**
 * The link to the guardian: framed JSON on GUARDIAN_LINK_FD, each message validated before use.
 * A frame over MAX_GUARDIAN_FRAME_BYTES or unparsable closes the link, and with it the replica.
 */
function guardianLink(logger: Logger): GuardianLink & { first(): Promise<GuardianToReplica> } {
  const handlers: ((message: GuardianToReplica) => void)[] = [];
  const queued: GuardianToReplica[] = [];
  const socket = new Socket({ fd: GUARDIAN_LINK_FD, readable: true, writable: true });
  const link = new FramedLink(
    socket,
    { maxIncomingBytes: MAX_GUARDIAN_FRAME_BYTES, maxOutgoingBytes: MAX_REPLICA_FRAME_BYTES },
    {
      onMessage(raw) {
        const message = parseGuardianMessage(raw);
        if (message === null) {
          logger.error('ignored a malformed message from the guardian');
          return;
        }
        if (handlers.length === 0) queued.push(message);
        for (const handler of handlers) handler(message);
      },
      onProtocolError(reason) {
        logger.fatal({ reason }, 'the guardian link lost its framing; stopping');
        process.exit(75);
      },
      onClose() {
        // The guardian is gone: a replica must not run without the subsystem that keeps it clean.
        logger.fatal('guardian disconnected; stopping');
        process.exit(75);
      },
    },
  );
  return {
    send(message: ReplicaToGuardian) {
      link.send(message);
    },
    onMessage(handler) {
      handlers.push(handler);
      for (const message of queued.splice(0)) handler(message);
    },
    first() {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('no session keys from the guardian')),
          SESSION_KEYS_TIMEOUT_MS,
        );
        const take = (message: GuardianToReplica): void => {
          clearTimeout(timer);
          resolve(message);
        };
        const early = queued.shift();
        if (early !== undefined) take(early);
        else
          handlers.push(function once(message) {
            handlers.splice(handlers.indexOf(once), 1);
            take(message);
          });
      });
    },
  };
}

/** Whether GUARDIAN_LINK_FD is a socket this process inherited (from a guardian). */
function hasGuardianLink(): boolean {
  try {
    return fstatSync(GUARDIAN_LINK_FD).isSocket();
  } catch {
    return false;
  }
}

async function keysFromGuardian(
  config: ClusterConfig,
  id: ReplicaId,
  link: ReturnType<typeof guardianLink>,
): Promise<{
  keys: ReplicaKeySource;
  amnesiac: boolean;
  faultMode: FaultMode | null;
  safeModeOrder: ForensicProof | null;
}> {
  // Loaded and ready: the guardian of a standby learns that its boot is done before the slot.
  link.send({ type: 'booted' });
  const message = await link.first();
  if (message.type !== 'session-keys')
    throw new Error(`expected session keys from the guardian, got ${message.type}`);
  const certificate = decodeKeyCertificate(fromBase64(message.certificate));
  if (certificate === null || certificate.replica !== id || certificate.keyEpoch !== message.keyEpoch) {
    throw new Error('the guardian sent a certificate that is not for this replica and epoch');
  }
  if (config.replicas[id]?.identityKey == null)
    throw new Error(`replica ${id} has no identity key in the configuration`);
  let safeModeOrder: ForensicProof | null = null;
  if (message.safeMode !== undefined) {
    const decoded = decodeForkProof(message.safeMode);
    if (!decoded.ok) throw new Error(`the guardian's safe-mode proof does not decode: ${decoded.reason}`);
    safeModeOrder = decoded.proof;
  }
  return {
    keys: {
      kind: 'guardian',
      keyEpoch: keyEpoch(message.keyEpoch),
      sessionKeys: sessionKeysFromSeeds(fromBase64(message.signingSeed), fromBase64(message.agreementSeed)),
      certificate,
      certificates: certificatesOf(message.certificates),
    },
    amnesiac: message.amnesiac,
    faultMode: message.faultMode,
    safeModeOrder,
  };
}

export function registerReplica(program: Command): void {
  program
    .command('replica')
    .description('run one replica of the configuration')
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .requiredOption('--id <id>', 'which replica this is', rangedOption('--id', OPTION_RANGES.replicaId))
    .option('--keys <file>', 'private key file (default: <keysDirectory>/replica-<id>.json)')
    .option('--data <directory>', 'data folder (default: <dataDirectory>/replica-<id>)')
    .option('--amnesiac', 'the disk was lost: abstain from voting until a newer view is installed')
    .option('--guardian', 'run under a guardian (keys and instructions arrive on the guardian link, fd 3)')
    .option('--fault-mode <mode>', `test clusters only: ${FAULT_MODES.join(', ')}`)
    .option(
      '--unreplicated',
      'benchmark baseline (phalanx bench --unreplicated starts it): serve a one-replica configuration with no ordering, from an emptied data folder',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.PHALANX_LOG_LEVEL ?? 'info')
    .option(
      '--log-file <file>',
      'log to this file, rotated by size (<file>.1 ... <file>.4, 8 MiB each), not stdout',
    )
    .option(
      '--log-format <format>',
      'stdout log format: pretty (one readable line per event) or json (default: pretty on a terminal, json otherwise; log files are always json)',
      parseLogFormat,
    )
    .action(
      async (options: {
        config: string;
        id: number;
        keys?: string;
        data?: string;
        amnesiac?: boolean;
        guardian?: boolean;
        faultMode?: string;
        unreplicated?: boolean;
        logLevel: string;
        logFile?: string;
        logFormat?: LogFormat;
      }) => {
        const { config, service } = await serviceConfigOrExit(options.config);
        if (options.id >= config.n)
          throw new Error(`--id ${options.id}: the configuration has replicas 0..${config.n - 1}`);
        if (options.faultMode !== undefined && !isFaultMode(options.faultMode)) {
          throw new Error(`--fault-mode must be one of ${FAULT_MODES.join(', ')}`);
        }
        const id = replicaId(options.id);
        const logger = processLogger(options.logLevel, { replica: id }, options.logFile, options.logFormat);
        logger.info({ service: service.module.name, module: config.service.module }, 'service module loaded');
        if (options.unreplicated === true) {
          if (options.guardian === true || options.faultMode !== undefined || options.amnesiac === true)
            throw new Error('--unreplicated runs alone: no --guardian, --fault-mode or --amnesiac');
          const server = await UnreplicatedServer.start({
            config,
            keys: await loadReplicaKeyFile(options.keys ?? replicaKeyPath(config, id)),
            service: serviceFactoryOf(service)({ config, id }),
            dataDirectory: options.data ?? replicaDataDirectory(config, id),
            logger,
          });
          stopOnSignals(logger, () => server.close());
          return;
        }
        let keys: ReplicaKeySource;
        let amnesiac = options.amnesiac === true;
        let faultMode: FaultMode | null = (options.faultMode as FaultMode | undefined) ?? null;
        let safeModeOrder: ForensicProof | null = null;
        let link: ReturnType<typeof guardianLink> | undefined;
        if (options.guardian === true) {
          if (!hasGuardianLink())
            throw new Error(
              `--guardian: this process was not started by a guardian (no socket on fd ${GUARDIAN_LINK_FD})`,
            );
          link = guardianLink(logger);
          const fromGuardian = await keysFromGuardian(config, id, link);
          keys = fromGuardian.keys;
          amnesiac = amnesiac || fromGuardian.amnesiac;
          faultMode = faultMode ?? fromGuardian.faultMode;
          safeModeOrder = fromGuardian.safeModeOrder;
        } else {
          keys = {
            kind: 'key-file',
            file: await loadReplicaKeyFile(options.keys ?? replicaKeyPath(config, id)),
          };
        }
        const node = await ReplicaNode.start({
          config,
          id,
          keys,
          logger,
          // The configuration's service module (the key-value store by default), loaded above.
          service: serviceFactoryOf(service),
          ...(options.data === undefined ? {} : { dataDirectory: options.data }),
          ...(link === undefined ? {} : { guardian: link }),
          amnesiac,
          ...(safeModeOrder === null ? {} : { safeModeOrder }),
          ...faultInjectionOf(config),
          faultMode,
        });
        stopOnSignals(logger, () => node.close());
      },
    );
}
