/**
 * Phalanx as a user gets it: the tarball `npm pack` makes of this repository, installed with npm
 * into a fresh project of its own outside the repository (so nothing resolves from the
 * repository's node_modules or src/), with the ledger example copied in and compiled by
 * TypeScript against the installed package's type declarations. test/integration/packed-ledger
 * and test/integration/guardians/packed-ledger run the ledger from such a project on real
 * clusters started by the installed package's own `phalanx` command.
 *
 * The tarball is packed once per content of dist/ (and package.json, bin/, README.md) and kept in
 * node_modules/.cache/phalanx/packed/<hash>/, so both files and later runs share it. It is packed
 * with --ignore-scripts: `prepare` would only run the build again, which the integration tests
 * already require to be current (built-code.ts). The install uses --prefer-offline, so it works
 * from the npm cache `npm ci` filled on a fresh machine.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { builtEntryPoint } from './built-code.js';
import { killProcessesMentioning, waitFor } from './helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(root, 'node_modules', '.cache', 'phalanx', 'packed');
/** Longest an npm or tsc command of the set-up may take on a loaded two-core machine. */
const COMMAND_TIMEOUT_MS = 180_000;
/** Output kept from a child process (a cluster's `up` prints a few lines; CLI calls one). */
const MAX_OUTPUT_CHARS = 1_000_000;

export interface PackedTarball {
  readonly path: string;
  /** Bytes of the .tgz. */
  readonly size: number;
  readonly unpackedSize: number;
  /** Paths inside the package, as `npm pack --json` lists them. */
  readonly files: readonly string[];
}

function filesUnder(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(path));
    else found.push(path);
  }
  return found;
}

/** What the tarball is made of: its content decides whether a cached tarball may be reused. */
function packageContentHash(): string {
  const hash = createHash('sha256');
  const files = [
    ...['package.json', 'README.md', join('bin', 'phalanx.js')].map((name) => join(root, name)),
    ...filesUnder(join(root, 'dist')).sort(),
  ];
  for (const file of files) {
    hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

interface PackResult {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: readonly { readonly path: string }[];
}

/** The packed tarball of the current build: from the cache, or `npm pack` once. */
export async function packedTarball(): Promise<PackedTarball> {
  builtEntryPoint(); // refuses a dist/ older than src/
  const directory = join(CACHE, packageContentHash());
  const summaryPath = join(directory, 'pack.json');
  if (!existsSync(summaryPath)) {
    mkdirSync(CACHE, { recursive: true });
    const staging = mkdtempSync(join(CACHE, 'staging-'));
    try {
      const { stdout } = await run(
        'npm',
        ['pack', '--ignore-scripts', '--json', '--pack-destination', staging],
        { cwd: root, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_CHARS },
      );
      const [packed] = JSON.parse(stdout) as PackResult[];
      assert.ok(packed !== undefined, `npm pack printed no result: ${stdout}`);
      writeFileSync(join(staging, 'pack.json'), JSON.stringify(packed));
      try {
        // Whole or not at all: another test file may be packing the same content meanwhile.
        renameSync(staging, directory);
      } catch (error) {
        if (!existsSync(summaryPath)) throw error;
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const packed = JSON.parse(readFileSync(summaryPath, 'utf8')) as PackResult;
  return {
    path: join(directory, packed.filename),
    size: packed.size,
    unpackedSize: packed.unpackedSize,
    files: packed.files.map((file) => file.path),
  };
}

/** The TypeScript settings of the user's project: the repository's strictness, nothing mapped. */
const USER_TSCONFIG = {
  compilerOptions: {
    target: 'ES2023',
    lib: ['ES2023'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    // The installed declarations are checked too: a .d.ts naming a module the tarball lacks fails here.
    skipLibCheck: false,
    types: ['node'],
  },
  include: ['ledger'],
};

export interface LedgerProject {
  /** The project's folder, outside the repository; every process it starts names it. */
  readonly directory: string;
  /** The files TypeScript read to compile the ledger (`tsc --listFiles`). */
  readonly compiledFrom: readonly string[];
  /** Runs `phalanx <args>` with the installed package's own command, in the project. */
  phalanx(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Runs the compiled ledger CLI (`node ledger/cli.js <args>`), in the project. */
  ledger(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Runs `node <args>` in the project. */
  node(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Starts `phalanx up --config cluster.json`; resolves once it serves the ledger. */
  up(): Promise<RunningUp>;
  /** Kills whatever it left running and deletes the project (PHALANX_KEEP_TEST_DIRS=1 keeps it). */
  remove(): void;
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningUp {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM (what Ctrl-C does), then waits until `up` stopped every process it started. */
  stop(): Promise<void>;
}

function runProcess(
  executable: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(executable, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on(
      'data',
      (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-MAX_OUTPUT_CHARS)),
    );
    child.stderr.on(
      'data',
      (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-MAX_OUTPUT_CHARS)),
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A fresh project (`"type": "module"`) in the temporary folder with the tarball installed, as a
 * user installs it, and the ledger example compiled against the installed declarations.
 */
export async function createLedgerProject(tarball: PackedTarball): Promise<LedgerProject> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-user-project-'));
  writeFileSync(
    join(directory, 'package.json'),
    `${JSON.stringify({ name: 'ledger-app', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  // The Node type declarations the repository compiles with (in the npm cache since `npm ci`).
  const nodeTypes = JSON.parse(
    readFileSync(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
  ) as { version: string };
  const project: LedgerProject = {
    directory,
    compiledFrom: [],
    phalanx: (args, timeoutMs = 60_000) =>
      runProcess(process.execPath, [join('node_modules', '.bin', 'phalanx'), ...args], directory, timeoutMs),
    ledger: (args, timeoutMs = 60_000) =>
      runProcess(process.execPath, [join('ledger', 'cli.js'), ...args], directory, timeoutMs),
    node: (args, timeoutMs = 60_000) => runProcess(process.execPath, args, directory, timeoutMs),
    up: () => startUp(directory),
    remove() {
      killProcessesMentioning(directory);
      if (process.env.PHALANX_KEEP_TEST_DIRS === '1') process.stdout.write(`# kept ${directory}\n`);
      else rmSync(directory, { recursive: true, force: true });
    },
  };
  try {
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball.path,
        `@types/node@${nodeTypes.version}`,
      ],
      { cwd: directory, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_CHARS },
    );
    mkdirSync(join(directory, 'ledger'));
    for (const name of ['codec.ts', 'service.ts', 'cli.ts'])
      copyFileSync(join(root, 'examples', 'ledger', name), join(directory, 'ledger', name));
    writeFileSync(join(directory, 'tsconfig.json'), `${JSON.stringify(USER_TSCONFIG, null, 2)}\n`);
    // The repository's compiler, run on the project's own tsconfig.json: types come from the
    // project's node_modules (the repository's tsconfig `paths` are not in play).
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const compiled = await runProcess(
      process.execPath,
      [tsc, '-p', 'tsconfig.json', '--listFiles'],
      directory,
      COMMAND_TIMEOUT_MS,
    );
    assert.equal(compiled.code, 0, `tsc failed in the user project:\n${compiled.stdout}${compiled.stderr}`);
    return {
      ...project,
      compiledFrom: compiled.stdout.split('\n').filter((line) => line.length > 0),
    };
  } catch (error) {
    project.remove();
    throw error;
  }
}

async function startUp(directory: string): Promise<RunningUp> {
  const child = spawn(
    process.execPath,
    [join('node_modules', '.bin', 'phalanx'), 'up', '--config', join(directory, 'cluster.json')],
    { cwd: directory, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const running: RunningUp = {
    child,
    output: () => output,
    async stop() {
      if (exitCode === undefined) child.kill('SIGTERM');
      const code = await exited;
      assert.equal(code, 0, `phalanx up ended with ${code}:\n${output}`);
      assert.match(output, /stopped\n/);
    },
  };
  try {
    // `up` prints the service line once every replica is up and connected.
    await waitFor(
      'phalanx up to serve the ledger',
      async () => {
        if (exitCode !== undefined) throw new Error(`phalanx up exited with ${exitCode}:\n${output}`);
        return /service: \.\/ledger\/service\.js/.test(output);
      },
      120_000,
    );
  } catch (error) {
    child.kill('SIGKILL');
    killProcessesMentioning(directory);
    throw error;
  }
  return running;
}

/** The JSON line the ledger CLI printed, with amounts as strings. */
export interface LedgerLine {
  readonly kind: string;
  readonly reason?: string;
  readonly amount?: string;
  readonly accounts?: number;
}

export function ledgerLine(result: CommandResult): LedgerLine {
  assert.ok(result.code === 0 || result.code === 1, `ledger CLI failed (${result.code}): ${result.stderr}`);
  const line = JSON.parse(result.stdout.trim()) as LedgerLine;
  assert.equal(
    result.code === 1,
    line.kind === 'rejected',
    `exit status ${result.code} for ${result.stdout}`,
  );
  return line;
}

/**
 * Adds the ledger to the cluster.json `phalanx keygen` wrote in the project, as a user edits it:
 * the module path is relative to the configuration file.
 */
export function configureLedger(directory: string, admins: readonly string[]): void {
  const path = join(directory, 'cluster.json');
  const document = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  document.service = { module: './ledger/service.js', options: { admins: [...admins] } };
  writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
}

/** A module loader hook that appends every URL node resolves to a file (what is really loaded). */
const RECORDING_HOOK = `import { appendFileSync } from 'node:fs';
let file;
export async function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`;

/** Imports \`entry\`, then prints the ESM URLs resolved (recorded by the hook) and the CommonJS files loaded. */
const LOAD_ENTRY = `import { register, createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [entry, file] = process.argv.slice(2);
writeFileSync(file, '');
register('./record-resolutions.mjs', import.meta.url, { data: { file } });
await import(entry);
const resolved = readFileSync(file, 'utf8').split('\\n').filter((line) => line.length > 0);
const commonJs = Object.keys(createRequire(join(process.cwd(), 'anchor.cjs')).cache);
process.stdout.write(JSON.stringify({ resolved, commonJs }));
`;

export interface LoadedModules {
  /** Every URL the ESM loader resolved while importing the entry (file:, node:). */
  readonly resolved: readonly string[];
  /** Every CommonJS file loaded meanwhile (a package's CommonJS dependencies). */
  readonly commonJs: readonly string[];
}

/** Imports `entry` (`phalanx`, `phalanx/replica`) with plain node in the project; lists what loaded. */
export async function modulesLoadedBy(project: LedgerProject, entry: string): Promise<LoadedModules> {
  writeFileSync(join(project.directory, 'record-resolutions.mjs'), RECORDING_HOOK);
  writeFileSync(join(project.directory, 'load-entry.mjs'), LOAD_ENTRY);
  const record = join(project.directory, `resolved-${entry.replace(/[^a-z]/g, '-')}.txt`);
  const result = await project.node(['load-entry.mjs', entry, record]);
  assert.equal(result.code, 0, `importing ${entry} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as LoadedModules;
}

/** Folders of the installed dist/ that belong to hosting a replica, not to using a cluster. */
const REPLICA_ONLY_FOLDERS = ['runtime', 'storage', 'recovery', 'dashboard', 'sim'];
/** Built-ins and packages only a replica host needs. */
const REPLICA_ONLY_BUILT_INS = ['node:http', 'node:child_process'];
const REPLICA_ONLY_PACKAGES = ['classic-level'];

/** What of the replica runtime `loaded` contains (empty for a client-only entry point). */
export function replicaRuntimeIn(project: LedgerProject, loaded: LoadedModules): string[] {
  const dist = `${join(project.directory, 'node_modules', 'phalanx', 'dist')}/`;
  const found: string[] = [];
  for (const url of loaded.resolved) {
    if (REPLICA_ONLY_BUILT_INS.includes(url)) found.push(url);
    if (!url.startsWith('file:')) continue;
    const path = fileURLToPath(url);
    if (path.startsWith(dist) && REPLICA_ONLY_FOLDERS.some((folder) => path.startsWith(`${dist}${folder}/`)))
      found.push(path);
  }
  for (const path of [
    ...loaded.resolved.filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url)),
    ...loaded.commonJs,
  ]) {
    if (REPLICA_ONLY_PACKAGES.some((name) => path.includes(`/node_modules/${name}/`))) found.push(path);
  }
  return found;
}
