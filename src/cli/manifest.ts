/**
 * `phalanx manifest`: signs a manifest of the code bundle with the install key, at install time;
 * `phalanx manifest --verify` checks the bundle against it, as a guardian does before it starts
 * its replica, and lists every problem.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { installKeyPath, loadInstallKey } from '../config/keys.js';
import {
  buildCodeManifest,
  defaultCodeDirectory,
  verifyCodeBundle,
  writeCodeManifest,
  defaultManifestPath,
} from '../recovery/code-manifest.js';
import { serviceCodeFiles } from '../hosting/service-code.js';
import { configOrExit, DEFAULT_CONFIG } from './options.js';

interface ManifestOptions {
  readonly config: string;
  readonly code?: string;
  readonly out?: string;
  readonly verify?: boolean;
}

function isInside(directory: string, path: string): boolean {
  const fromDirectory = relative(directory, path);
  return (
    fromDirectory !== '' &&
    fromDirectory !== '..' &&
    !fromDirectory.startsWith(`..${sep}`) &&
    !isAbsolute(fromDirectory)
  );
}

export function registerManifest(program: Command): void {
  program
    .command('manifest')
    .description(
      'sign a manifest of the code bundle with the install key (or check the bundle with --verify)',
    )
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .option('--code <directory>', 'code bundle (default: the code this command runs, dist/ or src/)')
    .option(
      '--out <file>',
      'manifest written, or read with --verify (default: <dataDirectory>/code-manifest.json)',
    )
    .option('--verify', 'check the code bundle against the manifest instead of writing one')
    .action(async (options: ManifestOptions) => {
      const config = await configOrExit(options.config);
      const codeDirectory = resolve(options.code ?? defaultCodeDirectory());
      const manifestPath = resolve(options.out ?? defaultManifestPath(config));

      if (options.verify === true) {
        if (config.installKey === null) {
          throw new Error(
            `${config.source} has no installKey, so there is nothing to verify the manifest against ` +
              '(generate the cluster with recovery enabled)',
          );
        }
        const service = await serviceCodeFiles(config, codeDirectory);
        const checked = await verifyCodeBundle(codeDirectory, manifestPath, config.installKey, {
          serviceFiles: service.files,
        });
        const problems = [...service.problems, ...(checked.ok ? [] : checked.problems)];
        const verdict = problems.length === 0 && checked.ok ? checked : { ok: false as const, problems };
        if (verdict.ok) {
          process.stdout.write(`${codeDirectory} matches ${manifestPath} (${verdict.files} files)\n`);
          return;
        }
        process.stderr.write(
          `phalanx: ${codeDirectory} does not match ${manifestPath}; a guardian would refuse to start its replica:\n` +
            verdict.problems.map((problem) => `  ${problem}\n`).join(''),
        );
        // exitCode rather than exit(): stderr may be a pipe, and exit() could cut the list short.
        process.exitCode = 1;
        return;
      }

      // A manifest inside the bundle would be an unexpected file the next time the bundle is checked.
      if (isInside(codeDirectory, manifestPath)) {
        throw new Error(
          `--out ${manifestPath} is inside the code directory ${codeDirectory}; write it elsewhere`,
        );
      }
      const installKey = await loadInstallKey(installKeyPath(config));
      if (
        config.installKey !== null &&
        !Buffer.from(config.installKey).equals(Buffer.from(installKey.publicKey.bytes))
      ) {
        throw new Error(
          `${installKeyPath(config)} is not the install key of ${config.source} (its installKey differs); ` +
            'guardians would reject a manifest signed with it',
        );
      }
      const service = await serviceCodeFiles(config, codeDirectory);
      if (service.problems.length > 0)
        throw new Error(`cannot sign the service module's files:\n  ${service.problems.join('\n  ')}`);
      const manifest = await buildCodeManifest(codeDirectory, installKey, { serviceFiles: service.files });
      await writeCodeManifest(manifestPath, manifest);
      process.stdout.write(
        `signed a manifest of ${manifest.files.length} files in ${codeDirectory}` +
          `${manifest.serviceFiles.length === 0 ? '' : ` and ${manifest.serviceFiles.length} files of the service module ${config.service.module}`}` +
          `; wrote ${manifestPath}\n`,
      );
      if (config.installKey === null) {
        process.stdout.write(
          `note: ${config.source} has no installKey, so guardians do not check the manifest\n`,
        );
      }
    });
}
