/**
 * Integration tests start the processes a user runs: the compiled CLI in dist/ (what `npm start`,
 * `npx phalanx` and a deployment run), not the TypeScript sources through tsx. Besides testing
 * the artifact that ships, this keeps the clusters' start-up cheap: a process booting from the
 * sources spends about a second of CPU compiling them, ten times what the compiled code takes,
 * and on a two-core machine every rejuvenation's new process paid it inside T_D.
 *
 * `npm test` builds first (scripts/run-tests.mjs); a test file run alone after editing src/
 * without `npm run build` is refused with that advice rather than run against old code.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** What the guardians of a test cluster verify against its signed code manifest. */
export const BUILT_CODE_DIRECTORY = join(root, 'dist');
const BUILT_MAIN = join(BUILT_CODE_DIRECTORY, 'cli', 'main.js');
/** Written by scripts/build.mjs after every successful build (outside dist/, see there). */
const BUILD_STAMP = join(root, 'node_modules', '.cache', 'phalanx', 'build-stamp');

function newestModification(directory: string): { path: string; ms: number } {
  let newest = { path: directory, ms: 0 };
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    const found = entry.isDirectory() ? newestModification(path) : { path, ms: statSync(path).mtimeMs };
    if (found.ms > newest.ms) newest = found;
  }
  return newest;
}

let checked = false;

/** Throws unless dist/ was built after the last change to src/. */
function assertBuildIsCurrent(): void {
  if (checked) return;
  let builtAtMs: number;
  try {
    statSync(BUILT_MAIN);
    builtAtMs = statSync(BUILD_STAMP).mtimeMs;
  } catch {
    throw new Error('integration tests run the compiled code: run `npm run build` first (npm test does)');
  }
  const newest = newestModification(join(root, 'src'));
  if (newest.ms > builtAtMs)
    throw new Error(
      `dist/ is older than ${newest.path}: run \`npm run build\` (npm test builds before it runs the tests)`,
    );
  checked = true;
}

/** The command that runs the compiled `phalanx` CLI: what LocalCluster and the guardians start. */
export function builtEntryPoint(): string[] {
  assertBuildIsCurrent();
  return [process.execPath, BUILT_MAIN];
}
