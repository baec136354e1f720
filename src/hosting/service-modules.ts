/**
 * Loading the service module a cluster configuration names (`"service": { "module", "options" }`),
 * the one way every host of a service goes: the `phalanx` commands (replica, guardian, up, demo,
 * bench, status, manifest), and the simulator. A configuration without a `service` section runs
 * the built-in key-value store (`phalanx/kv`), registered here like any other module.
 *
 * Where a module is found:
 * - `phalanx/kv`: the built-in key-value store (kvServiceModule), loaded from this very copy of
 *   Phalanx whatever the configuration's folder holds;
 * - a path (`./ledger/service.js`, `../services/x.js`, `/opt/app/service.js`): relative to the
 *   folder of the configuration file, not to the current directory, so every command and every
 *   host reading the same file loads the same module;
 * - anything else is a package name, resolved from the configuration's folder as `require`
 *   would (node_modules folders upwards, the package's `exports` with its "default" or "require"
 *   condition).
 *
 * What it must export: a ServiceModule (src/core/service.ts) as the default export or as the
 * named export `service`. Its shape is checked before use, with an error naming the module.
 *
 * Usage:
 * ```ts
 * const config = await loadClusterConfig(path);
 * const loaded = await loadServiceModule(config.service, config.source);
 * const problems = serviceConfigProblems(loaded, config); // [] when the service can run
 * await ReplicaNode.start({ config, id, keys, logger, service: serviceFactoryOf(loaded) });
 * ```
 */
import { lstat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { kvServiceModule } from '../apps/kv/hosting.js';
import {
  type ClusterConfig,
  ConfigError,
  DEFAULT_SERVICE_MODULE,
  type ServiceSelection,
} from '../config/cluster-config.js';
import type { ServiceModule, ServiceModuleContext } from '../core/service.js';
import type { ServiceFactory } from '../runtime/replica-node.js';

/** Longest `name` a service module may give itself (it appears in logs and errors). */
export const MAX_SERVICE_NAME_LENGTH = 64;

/** Modules that ship with Phalanx, by the specifier a configuration names them with. */
export const BUILT_IN_SERVICE_MODULES: ReadonlyMap<string, ServiceModule> = new Map([
  [DEFAULT_SERVICE_MODULE, kvServiceModule],
]);

/** Where a configured service module is. */
export type ServiceModuleLocation =
  /** Shipped with Phalanx (BUILT_IN_SERVICE_MODULES): covered by Phalanx's own code manifest. */
  | { readonly kind: 'built-in'; readonly specifier: string }
  /** A file of the user's project, or a package's entry file; `path` is absolute. */
  | { readonly kind: 'path' | 'package'; readonly specifier: string; readonly path: string };

export interface LoadedServiceModule {
  readonly location: ServiceModuleLocation;
  readonly module: ServiceModule;
  /** The configuration's `service.options` (null when absent). */
  readonly options: ServiceSelection['options'];
}

/** A service module that cannot be found, imported, or does not have the expected shape. */
export class ServiceModuleError extends Error {
  override readonly name = 'ServiceModuleError';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isPathSpecifier(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier);
}

/**
 * Where `selection.module` is, for the configuration at `configSource` (see the header). Throws
 * ServiceModuleError when a path names no regular file or a package cannot be resolved.
 */
export async function locateServiceModule(
  selection: ServiceSelection,
  configSource: string,
): Promise<ServiceModuleLocation> {
  const specifier = selection.module;
  if (BUILT_IN_SERVICE_MODULES.has(specifier)) return { kind: 'built-in', specifier };
  const folder = dirname(resolve(configSource));
  if (isPathSpecifier(specifier)) {
    const path = resolve(folder, specifier);
    let isFile: boolean;
    try {
      isFile = (await lstat(path)).isFile();
    } catch (error) {
      throw new ServiceModuleError(`service.module ${specifier}: cannot find ${path}: ${message(error)}`);
    }
    if (!isFile)
      throw new ServiceModuleError(
        `service.module ${specifier}: ${path} is not a regular file (links are refused)`,
      );
    return { kind: 'path', specifier, path };
  }
  try {
    // The file name is only an anchor: resolution starts in the configuration's folder.
    const path = createRequire(join(folder, 'phalanx-service-anchor.cjs')).resolve(specifier);
    return { kind: 'package', specifier, path };
  } catch (error) {
    throw new ServiceModuleError(
      `service.module ${specifier}: not a path (paths start with ./, ../ or /) and no package of that name ` +
        `resolves from ${folder}: ${message(error)}`,
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The problems with what a module exports as its service module; [] when it is one. */
export function serviceModuleShapeProblems(candidate: unknown): string[] {
  if (!isRecord(candidate))
    return ['it exports no service module (expected a default export or an export named "service")'];
  const problems: string[] = [];
  if (
    typeof candidate.name !== 'string' ||
    candidate.name.length === 0 ||
    candidate.name.length > MAX_SERVICE_NAME_LENGTH
  )
    problems.push(`its "name" must be a string of 1 to ${MAX_SERVICE_NAME_LENGTH} characters`);
  if (typeof candidate.create !== 'function')
    problems.push('its "create" must be a function (context) => Service');
  if (candidate.configProblems !== undefined && typeof candidate.configProblems !== 'function')
    problems.push('its "configProblems", when present, must be a function (context) => string[]');
  const simulation = candidate.simulation;
  if (simulation !== undefined) {
    if (!isRecord(simulation) || typeof simulation.nextOperation !== 'function')
      problems.push(
        'its "simulation", when present, must have a function nextOperation(random, client, index)',
      );
    else if (simulation.stateProblems !== undefined && typeof simulation.stateProblems !== 'function')
      problems.push('its "simulation.stateProblems", when present, must be a function (chunks) => string[]');
  }
  return problems;
}

/** Imports the module `selection` names and checks its shape; throws ServiceModuleError. */
export async function loadServiceModule(
  selection: ServiceSelection,
  configSource: string,
): Promise<LoadedServiceModule> {
  const location = await locateServiceModule(selection, configSource);
  if (location.kind === 'built-in')
    return {
      location,
      module: BUILT_IN_SERVICE_MODULES.get(location.specifier)!,
      options: selection.options,
    };
  let namespace: unknown;
  try {
    namespace = await import(pathToFileURL(location.path).href);
  } catch (error) {
    throw new ServiceModuleError(
      `service.module ${location.specifier}: cannot import ${location.path}: ${message(error)}`,
    );
  }
  const exported = isRecord(namespace) ? (namespace.service ?? namespace.default) : undefined;
  const problems = serviceModuleShapeProblems(exported);
  if (problems.length > 0)
    throw new ServiceModuleError(
      `service.module ${location.specifier} (${location.path}): ${problems.join('; ')}`,
    );
  return { location, module: exported as ServiceModule, options: selection.options };
}

/** What a service module sees of a configuration: its options and the clients with their grants. */
export function serviceContextOf(config: ClusterConfig): ServiceModuleContext {
  return {
    options: config.service.options,
    clients: config.clients.map((client) => ({ id: client.id, keyspaces: client.keyspaces })),
  };
}

/** The module's problems with the configuration (its configProblems; a throw is one problem). */
export function serviceConfigProblems(loaded: LoadedServiceModule, config: ClusterConfig): string[] {
  if (loaded.module.configProblems === undefined) return [];
  try {
    return [...loaded.module.configProblems(serviceContextOf(config))];
  } catch (error) {
    return [`service: the ${loaded.module.name} service's configProblems threw: ${message(error)}`];
  }
}

/** The ServiceFactory the replica runtime takes: a fresh service from the module per start. */
export function serviceFactoryOf(loaded: LoadedServiceModule): ServiceFactory {
  return ({ config, id }) => loaded.module.create({ ...serviceContextOf(config), replica: id });
}

/**
 * Loads the configuration's service module and checks the configuration against it: a module that
 * cannot be loaded and every problem it reports are a ConfigError of the configuration (named by
 * `path` as given, as the parser's own errors are).
 */
export async function loadConfiguredService(
  config: ClusterConfig,
  path = config.source,
): Promise<LoadedServiceModule> {
  let loaded: LoadedServiceModule;
  try {
    loaded = await loadServiceModule(config.service, config.source);
  } catch (error) {
    if (error instanceof ServiceModuleError) throw new ConfigError(path, [error.message]);
    throw error;
  }
  const problems = serviceConfigProblems(loaded, config);
  if (problems.length > 0) throw new ConfigError(path, problems);
  return loaded;
}
