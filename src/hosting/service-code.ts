/**
 * The files of a configuration's service module that Phalanx's own code manifest does not cover:
 * the module file and the project files it imports (src/hosting/import-graph.ts), except those
 * inside Phalanx's code directory. The guardian's manifest hashes them beside the code directory
 * (src/recovery/code-manifest.ts, `serviceFiles`), so a rejuvenation checks the user's code too.
 * The built-in key-value store has none: it is part of the code directory.
 *
 * Usage:
 * ```ts
 * const { files, problems } = await serviceCodeFiles(config, defaultCodeDirectory());
 * const manifest = await buildCodeManifest(codeDirectory, installKey, { serviceFiles: files });
 * ```
 */
import { relative, resolve, sep } from 'node:path';
import type { ClusterConfig } from '../config/cluster-config.js';
import { serviceImportGraph } from './import-graph.js';
import { locateServiceModule, ServiceModuleError } from './service-modules.js';

export interface ServiceCodeFiles {
  /** Absolute paths, sorted. */
  readonly files: readonly string[];
  /** The module cannot be found, a file cannot be read, a limit was hit; [] when complete. */
  readonly problems: readonly string[];
}

function isInside(directory: string, path: string): boolean {
  const fromDirectory = relative(directory, path);
  return fromDirectory !== '' && !fromDirectory.startsWith(`..${sep}`) && fromDirectory !== '..';
}

/** The service module's files outside `codeDirectory` (see the header). */
export async function serviceCodeFiles(
  config: ClusterConfig,
  codeDirectory: string,
): Promise<ServiceCodeFiles> {
  let location;
  try {
    location = await locateServiceModule(config.service, config.source);
  } catch (error) {
    if (error instanceof ServiceModuleError) return { files: [], problems: [error.message] };
    throw error;
  }
  if (location.kind === 'built-in') return { files: [], problems: [] };
  const graph = await serviceImportGraph(location.path);
  const root = resolve(codeDirectory);
  return { files: graph.files.filter((file) => !isInside(root, file)), problems: graph.problems };
}
