#!/usr/bin/env node
// The `phalanx` command: runs the compiled CLI (built by `npm run build`, which `npm ci` runs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write(
    'phalanx: the CLI is not built yet; run `npm run build` (or `npm ci`) in the project folder\n',
  );
  process.exit(1);
}
await import(main);
