#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ as `tsc -p tsconfig.build.json` does, with two
// differences that matter while processes run from dist/ (a local cluster, the test suite):
//  - a file whose content did not change is not written again, so a rebuild of unchanged code
//    leaves dist/ as it was (the guardians' code fingerprint, and processes loading modules);
//  - a changed file is written to a temporary name and renamed over the old one, so a process
//    importing it meanwhile reads the old file or the new one, never a half-written one.
// It then records when it ran (BUILD_STAMP, outside dist/ so the code manifest does not cover
// it), which the integration tests use to refuse running a dist/ older than src/.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
/** Touched after every successful build; see test/integration/built-code.ts. */
const BUILD_STAMP = join(root, 'node_modules', '.cache', 'phalanx', 'build-stamp');
/**
 * What the last successful build saw: every source and configuration file, the compiler's version,
 * and every file of dist/ (name, size, modification time). When nothing of it changed the build
 * is skipped: a full compile costs 10-15 CPU seconds, and `npm start` (and the test suite, which
 * runs it twice) builds every time.
 */
const BUILD_FINGERPRINT = join(root, 'node_modules', '.cache', 'phalanx', 'build-fingerprint');
const DIST = join(root, 'dist');

function listFiles(directory) {
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(directory, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}

function fingerprintOf(sources) {
  const hash = createHash('sha256').update(`typescript ${ts.version}\n`);
  const files = [
    ...sources,
    join(root, 'tsconfig.json'),
    join(root, 'tsconfig.build.json'),
    join(root, 'package.json'),
  ];
  for (const file of [...files.sort(), ...listFiles(DIST).sort()]) {
    try {
      const stat = statSync(file);
      hash.update(`${file} ${stat.size} ${stat.mtimeMs}\n`);
    } catch {
      hash.update(`${file} missing\n`);
    }
  }
  return hash.digest('hex');
}

function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

const configPath = join(root, 'tsconfig.build.json');
const parsed = ts.getParsedCommandLineOfConfigFile(
  configPath,
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => report([diagnostic]),
  },
);
if (parsed === undefined) process.exit(1);

const formatHost = {
  getCanonicalFileName: (name) => name,
  getCurrentDirectory: () => root,
  getNewLine: () => '\n',
};

function report(diagnostics) {
  if (diagnostics.length === 0) return;
  const format = process.stderr.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics;
  process.stderr.write(format(diagnostics, formatHost));
}

let written = 0;
let unchanged = 0;
function writeIfChanged(path, text) {
  try {
    if (readFileSync(path, 'utf8') === text) {
      unchanged++;
      return;
    }
  } catch {
    // Not there yet.
  }
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
  written++;
}

if (
  process.env.PHALANX_FORCE_BUILD === undefined &&
  readText(BUILD_STAMP) !== null &&
  readText(BUILD_FINGERPRINT) === fingerprintOf(parsed.fileNames)
) {
  console.log(`dist/ is up to date: ${parsed.fileNames.length} sources unchanged since the last build`);
  process.exit(0);
}

const program = ts.createProgram({
  rootNames: parsed.fileNames,
  options: parsed.options,
  projectReferences: parsed.projectReferences,
});
const preEmit = ts.getPreEmitDiagnostics(program);
report([...parsed.errors, ...preEmit]);
if (preEmit.some((diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error)) process.exit(1);
const emitted = program.emit(undefined, (path, text) => writeIfChanged(path, text));
report(emitted.diagnostics);
if (emitted.emitSkipped) process.exit(1);
mkdirSync(dirname(BUILD_STAMP), { recursive: true });
writeFileSync(BUILD_STAMP, `${new Date().toISOString()}\n`);
writeFileSync(BUILD_FINGERPRINT, fingerprintOf(parsed.fileNames));
console.log(`built dist/: ${written} files written, ${unchanged} unchanged`);
