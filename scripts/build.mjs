#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ as `tsc -p tsconfig.build.json` does, with two
// differences that matter while processes run from dist/ (a local cluster, the test suite):
//  - a file whose content did not change is not written again, so a rebuild of unchanged code
//    leaves dist/ as it was (the guardians' code fingerprint, and processes loading modules);
//  - a changed file is written to a temporary name and renamed over the old one, so a process
//    importing it meanwhile reads the old file or the new one, never a half-written one.
// It then records when it ran (BUILD_STAMP, outside dist/ so the code manifest does not cover
// it), which the integration tests use to refuse running a dist/ older than src/.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
/** Touched after every successful build; see test/integration/built-code.ts. */
const BUILD_STAMP = join(root, 'node_modules', '.cache', 'phalanx', 'build-stamp');

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
console.log(`built dist/: ${written} files written, ${unchanged} unchanged`);
