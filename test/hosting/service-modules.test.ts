/**
 * Service modules: the configuration's `service` section, loading a module the way every
 * `phalanx` command and the simulator do (paths relative to the configuration's folder, shape
 * checks with clear errors, the built-in key-value store), the import graph of a user's module,
 * and the code manifest covering that graph (a change to the user's code after signing is refused).
 */
import * as assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigError,
  DEFAULT_SERVICE_MODULE,
  loadClusterConfig,
  parseClusterConfig,
  SERVICE_SELECTION_LIMITS,
} from '../../src/config/cluster-config.js';
import { generateCluster } from '../../src/config/keys.js';
import { deriveSeed, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { importSpecifiers, serviceImportGraph } from '../../src/hosting/import-graph.js';
import { serviceCodeFiles } from '../../src/hosting/service-code.js';
import {
  loadConfiguredService,
  loadServiceModule,
  serviceFactoryOf,
  serviceModuleShapeProblems,
} from '../../src/hosting/service-modules.js';
import { replicaId } from '../../src/messages/ids.js';
import { buildCodeManifest, verifyCodeBundle, writeCodeManifest } from '../../src/recovery/code-manifest.js';

let workspace: string;
let configPath: string;
/** A stand-in for Phalanx's code directory (empty: only the service files matter here). */
let codeDirectory: string;

/** A user's project: a service module, a codec it imports, a helper the codec imports. */
const SERVICE_SOURCE = `import { encode } from './codec.js';
import { readFileSync } from 'node:fs';
import { something } from 'some-package';
// import './commented-out-and-missing.js';
class Counter {
  value = 0;
  execute() { this.value++; return encode(this.value); }
  executeReadOnly() { return encode(this.value); }
  snapshot() { return [encode(this.value)]; }
  restore(chunks) { this.value = chunks.length; }
}
export const service = {
  name: 'counter',
  create: () => new Counter(),
  configProblems: ({ options }) => (options !== null && options.bad === true ? ['service.options.bad: no'] : []),
};
void readFileSync; void something;
`;

async function writeProject(root: string): Promise<void> {
  await mkdir(join(root, 'lib'), { recursive: true });
  await mkdir(join(root, 'node_modules', 'some-package'), { recursive: true });
  // The package is never imported for real: the service's test below replaces the source.
  await writeFile(
    join(root, 'service.js'),
    SERVICE_SOURCE.replace(/^import \{ something \}.*$/m, 'const something = 0;'),
  );
  await writeFile(join(root, 'codec.js'), "export { encode } from './lib/bytes.js';\n");
  await writeFile(
    join(root, 'lib', 'bytes.js'),
    'export function encode(value) { return new TextEncoder().encode(String(value)); }\n',
  );
  await writeFile(join(root, 'not-a-service.js'), 'export const nothing = 1;\n');
}

before(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'phalanx-service-modules-'));
  codeDirectory = join(workspace, 'phalanx-code');
  await mkdir(codeDirectory);
  await writeFile(join(codeDirectory, 'main.js'), 'export {};\n');
  ({ configPath } = await generateCluster({
    directory: join(workspace, 'cluster'),
    f: 1,
    k: 1,
    basePort: 7000,
    clients: ['admin'],
    recovery: { recoveryBoundMs: 10_000 },
  }));
  await writeProject(join(workspace, 'cluster', 'app'));
});

after(async () => {
  await rm(workspace, { recursive: true, force: true });
});

async function configWithService(service: unknown): Promise<string> {
  const document = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  document.service = service;
  const path = join(workspace, 'cluster', `cluster-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify(document));
  return path;
}

describe('the service section of a configuration', () => {
  it('defaults to the built-in key-value store', async () => {
    const config = await loadClusterConfig(configPath);
    assert.deepEqual(config.service, { module: DEFAULT_SERVICE_MODULE, options: null });
    const loaded = await loadConfiguredService(config);
    assert.equal(loaded.module.name, 'kv');
    assert.equal(loaded.location.kind, 'built-in');
  });

  it('refuses a missing module, unknown fields, non-JSON options and options over the limits', () => {
    const problems = (service: unknown): string => {
      try {
        parseClusterConfig({ f: 0, replicas: [], service }, 'test.json');
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.message;
      }
      return '';
    };
    assert.match(problems({ options: {} }), /service\.module: must be a module path/);
    assert.match(problems({ module: './x.js', extra: 1 }), /service/);
    assert.match(
      problems({ module: 'x'.repeat(SERVICE_SELECTION_LIMITS.maxModuleSpecifierLength + 1) }),
      /service\.module: longer than 1024 characters/,
    );
    assert.match(
      problems({ module: './x.js', options: { blob: 'x'.repeat(SERVICE_SELECTION_LIMITS.maxOptionsBytes) } }),
      /service\.options: \d+ bytes as JSON, more than 65536/,
    );
    let deep: unknown = 1;
    for (let level = 0; level <= SERVICE_SELECTION_LIMITS.maxOptionsDepth; level++) deep = [deep];
    assert.match(problems({ module: './x.js', options: deep }), /nested deeper than 32 levels/);
    assert.match(problems({ module: './x.js', options: { n: Infinity } }), /must be a finite number/);
  });
});

describe('loading a service module', () => {
  it('resolves a path against the configuration folder, not the current one', async () => {
    const path = await configWithService({ module: './app/service.js', options: { bad: false } });
    const config = await loadClusterConfig(path);
    const loaded = await loadConfiguredService(config);
    assert.equal(loaded.module.name, 'counter');
    assert.equal(loaded.location.kind, 'path');
    const factory = serviceFactoryOf(loaded);
    const first = factory({ config, id: replicaId(0) });
    const second = factory({ config, id: replicaId(1) });
    assert.notEqual(first, second, 'each replica start gets a fresh service');
  });

  it("reports the module's own configuration problems as configuration errors", async () => {
    const path = await configWithService({ module: './app/service.js', options: { bad: true } });
    await assert.rejects(loadConfiguredService(await loadClusterConfig(path)), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /service\.options\.bad: no/);
      return true;
    });
  });

  it('explains a missing file, a module that exports no service, and an unknown package', async () => {
    const missing = await loadClusterConfig(await configWithService({ module: './app/absent.js' }));
    await assert.rejects(loadConfiguredService(missing), /service\.module \.\/app\/absent\.js: cannot find/);
    const empty = await loadClusterConfig(await configWithService({ module: './app/not-a-service.js' }));
    await assert.rejects(
      loadConfiguredService(empty),
      /exports no service module \(expected a default export or an export named "service"\)/,
    );
    await assert.rejects(
      loadServiceModule({ module: 'no-such-package-here', options: null }, configPath),
      /no package of that name resolves from/,
    );
  });

  it('checks the shape of what a module exports', () => {
    assert.deepEqual(serviceModuleShapeProblems({ name: 'x', create: () => null }), []);
    const problems = serviceModuleShapeProblems({
      name: '',
      create: 1,
      configProblems: 'no',
      simulation: {},
    });
    assert.equal(problems.length, 4, problems.join('\n'));
  });
});

describe('the import graph of a service module', () => {
  it('finds static and dynamic imports and re-exports', () => {
    assert.deepEqual(
      importSpecifiers(
        "import a from './a.js';\nimport type { B } from \"./b.js\";\nexport * from './c.js';\n" +
          "export { d } from './d.js';\nimport './e.js';\nconst f = await import('./f.js');\n",
      ),
      ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js'],
    );
  });

  it("walks the user's project and stops at packages, built-ins, node_modules and missing files", async () => {
    const root = join(workspace, 'cluster', 'app');
    await writeFile(
      join(root, 'uses-package.js'),
      "import './node_modules/some-package/index.js';\nimport './service.js';\n",
    );
    await writeFile(join(root, 'node_modules', 'some-package', 'index.js'), 'export {};\n');
    const graph = await serviceImportGraph(join(root, 'uses-package.js'));
    assert.deepEqual(graph.files, [
      join(root, 'codec.js'),
      join(root, 'lib', 'bytes.js'),
      join(root, 'service.js'),
      join(root, 'uses-package.js'),
    ]);
    assert.deepEqual(graph.problems, []);
  });
});

describe('the code manifest covers the service module', () => {
  const installKey = signingKeyPairFromSeed(deriveSeed(new Uint8Array(32).fill(7), 'install'));

  it('hashes the user files, and refuses a change, an added import and a removed file after signing', async () => {
    const project = join(workspace, 'project-for-manifest');
    await writeProject(project);
    const config = await loadClusterConfig(
      await configWithService({ module: '../project-for-manifest/service.js' }),
    );
    const covered = await serviceCodeFiles(config, codeDirectory);
    assert.deepEqual(covered.problems, []);
    assert.deepEqual(covered.files, [
      join(project, 'codec.js'),
      join(project, 'lib', 'bytes.js'),
      join(project, 'service.js'),
    ]);
    const manifest = await buildCodeManifest(codeDirectory, installKey, { serviceFiles: covered.files });
    assert.equal(manifest.serviceFiles.length, 3);
    const manifestPath = join(workspace, 'manifest-with-service.json');
    await writeCodeManifest(manifestPath, manifest);

    const verify = async () =>
      verifyCodeBundle(codeDirectory, manifestPath, installKey.publicKey.bytes, {
        serviceFiles: (await serviceCodeFiles(config, codeDirectory)).files,
      });
    assert.deepEqual(await verify(), { ok: true, files: 4 });

    // A change deep in the user's code.
    const bytesFile = join(project, 'lib', 'bytes.js');
    const original = await readFile(bytesFile, 'utf8');
    await writeFile(bytesFile, `${original}export const backdoor = true;\n`);
    const changed = await verify();
    assert.equal(changed.ok, false);
    assert.ok(
      !changed.ok && changed.problems.some((problem) => problem.includes(`${bytesFile}: content differs`)),
    );
    await writeFile(bytesFile, original);
    assert.equal((await verify()).ok, true);

    // A new file brought in by an import added to the codec (the codec changes too).
    const codec = join(project, 'codec.js');
    await writeFile(join(project, 'extra.js'), 'export {};\n');
    await writeFile(codec, "export { encode } from './lib/bytes.js';\nimport './extra.js';\n");
    const added = await verify();
    assert.ok(!added.ok);
    assert.ok(
      added.problems.some((problem) =>
        problem.includes(`${join(project, 'extra.js')}: part of the service module, not in the manifest`),
      ),
    );
    assert.ok(added.problems.some((problem) => problem.includes(`${codec}: content differs`)));
  });

  it('covers nothing for the built-in key-value store', async () => {
    const config = await loadClusterConfig(configPath);
    assert.deepEqual(await serviceCodeFiles(config, codeDirectory), { files: [], problems: [] });
  });
});
