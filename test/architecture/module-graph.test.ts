/**
 * The client entry points load none of the replica runtime. An application that only talks to a
 * cluster imports `phalanx` (and `phalanx/kv` for the key-value store); neither may pull in the
 * replica process, its storage engines (classic-level), the guardians, the dashboard, the
 * simulator, an HTTP server or child processes. The test walks the static import graph (every
 * `import`, `import type`, `export … from` and literal `import()`, read with TypeScript's
 * preProcessFile) from the sources of the package.json entries. The same rule, on the installed
 * package at run time (a loader hook recording what `import 'phalanx'` loads), is checked by
 * test/integration/packed-ledger.test.ts.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Folders of src/ that belong to hosting a replica, not to using a cluster. */
const REPLICA_ONLY_FOLDERS = ['runtime', 'storage', 'recovery', 'dashboard', 'sim'];
/** Packages and built-ins only a replica host needs. */
const REPLICA_ONLY_SPECIFIERS = ['classic-level', 'node:http', 'node:child_process'];

interface ModuleGraph {
  /** Every module reached (repository-relative paths), with the module that first imported it. */
  readonly importedBy: Map<string, string | null>;
  /** Every non-relative specifier imported, with the module that imports it. */
  readonly externals: Map<string, string>;
}

/** The source behind a package.json export target: ./dist/x.js → src/x.ts. */
function sourceOfExport(target: string): string {
  const match = /^\.\/dist\/(.+)\.js$/.exec(target);
  assert.ok(match !== null, `export target ${target} is not under ./dist`);
  return join('src', `${match[1]!}.ts`);
}

function exportTarget(entry: string): string {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, { default: string; types: string } | string>;
  };
  const target = manifest.exports[entry];
  assert.ok(typeof target === 'object', `package.json exports ${entry} with types and default`);
  assert.equal(target.types, target.default.replace(/\.js$/, '.d.ts'));
  return target.default;
}

function walk(entry: string): ModuleGraph {
  const importedBy = new Map<string, string | null>([[entry, null]]);
  const externals = new Map<string, string>();
  const pending = [entry];
  for (let module = pending.pop(); module !== undefined; module = pending.pop()) {
    const text = readFileSync(join(root, module), 'utf8');
    for (const { fileName: specifier } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!specifier.startsWith('.')) {
        if (!externals.has(specifier)) externals.set(specifier, module);
        continue;
      }
      // Sources import each other by their compiled names: ./x.js is ./x.ts.
      const target = relative(root, resolve(root, dirname(module), specifier.replace(/\.js$/, '.ts')));
      assert.ok(existsSync(join(root, target)), `${module} imports ${specifier}, which does not exist`);
      if (importedBy.has(target)) continue;
      importedBy.set(target, module);
      pending.push(target);
    }
  }
  return { importedBy, externals };
}

/** entry → … → module, to say how a forbidden module was reached. */
function chain(graph: ModuleGraph, module: string): string {
  const path = [module];
  for (let from = graph.importedBy.get(module); from != null; from = graph.importedBy.get(from))
    path.unshift(from);
  return path.join(' → ');
}

function replicaOnlyReached(graph: ModuleGraph): string[] {
  const found: string[] = [];
  for (const module of graph.importedBy.keys()) {
    if (REPLICA_ONLY_FOLDERS.some((folder) => module.startsWith(join('src', folder) + '/')))
      found.push(chain(graph, module));
  }
  for (const [specifier, module] of graph.externals) {
    if (REPLICA_ONLY_SPECIFIERS.some((name) => specifier === name || specifier.startsWith(`${name}/`)))
      found.push(`${chain(graph, module)} → ${specifier}`);
  }
  return found;
}

describe('module graph of the package entry points', () => {
  for (const entry of ['.', './kv']) {
    it(`${entry} loads none of the replica runtime`, () => {
      const graph = walk(sourceOfExport(exportTarget(entry)));
      assert.ok(graph.importedBy.has('src/client/client.ts'), 'the walk reached the client');
      assert.deepEqual(replicaOnlyReached(graph), []);
    });
  }

  it('. and ./kv load no metrics library: phalanx/metrics adapts prom-client to the client', () => {
    for (const entry of ['.', './kv']) {
      const graph = walk(sourceOfExport(exportTarget(entry)));
      // prom-client's own index loads node:http (its push gateway): the client takes a sink instead.
      assert.equal(graph.externals.get('prom-client'), undefined, `${entry} imports prom-client`);
    }
    const metrics = walk(sourceOfExport(exportTarget('./metrics')));
    assert.ok(metrics.externals.has('prom-client'));
    assert.deepEqual(replicaOnlyReached(metrics), []);
  });

  it('./replica does reach the runtime (the walk sees what it should)', () => {
    const graph = walk(sourceOfExport(exportTarget('./replica')));
    const reached = replicaOnlyReached(graph);
    assert.ok(reached.some((path) => path.endsWith('src/runtime/replica-node.ts')));
    assert.ok(reached.some((path) => path.endsWith('classic-level')));
  });
});
