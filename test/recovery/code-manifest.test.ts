import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerManifest } from '../../src/cli/manifest.js';
import { loadClusterConfig } from '../../src/config/cluster-config.js';
import { generateCluster } from '../../src/config/keys.js';
import { deriveSeed, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import {
  buildCodeManifest,
  type CodeManifest,
  CodeManifestError,
  codeBundleFingerprint,
  codeManifestPayload,
  CODE_MANIFEST_DOMAIN,
  defaultCodeDirectory,
  includedByDefault,
  MAX_CODE_MANIFEST_FILE_BYTES,
  readCodeManifest,
  verifyCodeBundle,
  writeCodeManifest,
} from '../../src/recovery/code-manifest.js';

const master = new Uint8Array(32).fill(21);
const installKey = signingKeyPairFromSeed(deriveSeed(master, 'install'));
const otherKey = signingKeyPairFromSeed(deriveSeed(master, 'someone else'));
const BIG_FILE_BYTES = 3 * 1024 * 1024 + 17;

let workspace: string;
/** The pristine tree every case copies before changing it. */
let pristine: string;
/** Manifest of `pristine`, signed by installKey. */
let manifestPath: string;
let manifest: CodeManifest;
let copies = 0;

async function createTree(root: string): Promise<void> {
  await mkdir(join(root, 'recovery'), { recursive: true });
  await mkdir(join(root, 'nested', 'deep', 'deeper'), { recursive: true });
  await writeFile(join(root, 'main.js'), 'import "./recovery/guardian.js";\n');
  await writeFile(join(root, 'recovery', 'guardian.js'), 'export const guard = true;\n');
  await writeFile(join(root, 'nested', 'deep', 'deeper', 'leaf.js'), 'export {};\n');
  await writeFile(join(root, 'nested', 'empty.js'), '');
  await writeFile(join(root, 'nested', 'deep', 'big.bin'), randomBytes(BIG_FILE_BYTES));
  // Present from the start and ignored by the default rule.
  await writeFile(join(root, 'main.js.map'), '{}');
  await writeFile(join(root, 'main.d.ts'), 'export {};\n');
}

async function copyOfTree(): Promise<string> {
  const copy = join(workspace, `copy-${copies++}`);
  await cp(pristine, copy, { recursive: true });
  return copy;
}

async function problemsOf(codeDirectory: string, path = manifestPath, key = installKey.publicKey.bytes) {
  const verdict = await verifyCodeBundle(codeDirectory, path, key);
  assert.equal(verdict.ok, false, 'expected the bundle to be rejected');
  return verdict.ok ? [] : [...verdict.problems];
}

async function writeManifestVariant(name: string, change: (document: Record<string, unknown>) => void) {
  const document = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  change(document);
  const path = join(workspace, name);
  await writeFile(path, JSON.stringify(document));
  return path;
}

before(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'phalanx-code-manifest-'));
  pristine = join(workspace, 'pristine');
  await createTree(pristine);
  manifest = await buildCodeManifest(pristine, installKey);
  manifestPath = join(workspace, 'manifests', 'code-manifest.json');
  await writeCodeManifest(manifestPath, manifest);
});

after(async () => {
  await rm(workspace, { recursive: true, force: true });
});

describe('buildCodeManifest', () => {
  it('lists every covered file, sorted, with its size and SHA-256, and skips maps and declarations', () => {
    assert.deepEqual(
      manifest.files.map((file) => [file.path, file.bytes]),
      [
        ['main.js', 33],
        ['nested/deep/big.bin', BIG_FILE_BYTES],
        ['nested/deep/deeper/leaf.js', 11],
        ['nested/empty.js', 0],
        ['recovery/guardian.js', 27],
      ],
    );
    const empty = manifest.files.find((file) => file.path === 'nested/empty.js')!;
    assert.equal(empty.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(manifest.version, 2);
    assert.deepEqual(manifest.serviceFiles, []);
    assert.equal(manifest.root, resolve(pristine));
  });

  it('documents its include rule: everything but source maps and type declarations', () => {
    for (const path of ['a.js', 'a.ts', 'dir/a.json', 'a.mjs', 'README', 'map', 'a.d.tsx'])
      assert.equal(includedByDefault(path), true, path);
    for (const path of ['a.js.map', 'a.d.ts', 'dir/a.d.mts', 'a.d.cts', 'a.d.ts.map'])
      assert.equal(includedByDefault(path), false, path);
  });

  it('honours a custom include rule', async () => {
    const onlyJs = await buildCodeManifest(pristine, installKey, { include: (path) => path.endsWith('.js') });
    assert.equal(
      onlyJs.files.some((file) => file.path.endsWith('.bin')),
      false,
    );
    const path = join(workspace, 'only-js.json');
    await writeCodeManifest(path, onlyJs);
    const verdict = await verifyCodeBundle(pristine, path, installKey.publicKey.bytes, {
      include: (candidate) => candidate.endsWith('.js'),
    });
    assert.deepEqual(verdict, { ok: true, files: 4 });
  });

  it('refuses to sign a tree holding a symbolic link', async () => {
    const copy = await copyOfTree();
    await symlink(join(copy, 'main.js'), join(copy, 'recovery', 'alias.js'));
    await assert.rejects(buildCodeManifest(copy, installKey), (error: unknown) => {
      assert.ok(error instanceof CodeManifestError);
      assert.match(error.message, /recovery\/alias\.js: is a symbolic link \(links are not followed\)/);
      return true;
    });
  });

  it('signs an unambiguous binary payload that starts with its domain tag', () => {
    const payload = codeManifestPayload(manifest);
    const tag = new TextEncoder().encode(CODE_MANIFEST_DOMAIN);
    assert.equal(payload[0], tag.length);
    assert.deepEqual(payload.subarray(1, 1 + tag.length), tag);
    // Moving a character from one path to its neighbour changes the payload (fields are delimited).
    const file = { sha256: '00'.repeat(32), bytes: 1 };
    const split = (first: string, second: string) =>
      codeManifestPayload({
        version: 2,
        root: '/r',
        createdAtMs: 1,
        files: [
          { path: first, ...file },
          { path: second, ...file },
        ],
        serviceFiles: [],
      });
    assert.notDeepEqual(split('ab', 'c'), split('a', 'bc'));
  });
});

describe('writeCodeManifest and readCodeManifest', () => {
  it('round-trips and leaves no temporary file behind', async () => {
    assert.deepEqual(await readCodeManifest(manifestPath), manifest);
    assert.deepEqual(await readdir(dirname(manifestPath)), ['code-manifest.json']);
  });

  it('explains a missing file', async () => {
    await assert.rejects(
      readCodeManifest(join(workspace, 'nope.json')),
      /cannot read code manifest .*nope\.json/,
    );
  });

  it('refuses a manifest larger than its limit without parsing it', async () => {
    const path = join(workspace, 'huge.json');
    await writeFile(path, '');
    await truncate(path, MAX_CODE_MANIFEST_FILE_BYTES + 1);
    await assert.rejects(readCodeManifest(path), /is larger than 16777216 bytes/);
  });

  it('lists every structural problem', async () => {
    const path = await writeManifestVariant('malformed.json', (document) => {
      document.version = 3;
      document.files = [
        { path: '../escape.js', sha256: 'AB', bytes: -1 },
        { path: 'a.js', sha256: '00'.repeat(32), bytes: 1 },
        { path: 'a.js', sha256: '00'.repeat(32), bytes: 1 },
      ];
    });
    await assert.rejects(readCodeManifest(path), (error: unknown) => {
      assert.ok(error instanceof CodeManifestError);
      for (const expected of [
        'version must be 1 or 2, got 3',
        "files[0].path must be a relative '/'-separated path",
        'files[0].sha256 must be 64 lowercase hex digits',
        'files[0].bytes must be a non-negative integer',
        'files[2].path a.js is listed twice',
      ])
        assert.ok(error.message.includes(expected), `${expected} in ${error.message}`);
      return true;
    });
  });
});

describe('verifyCodeBundle', () => {
  it('accepts the bundle the manifest was made for, wherever it now lives', async () => {
    assert.deepEqual(await verifyCodeBundle(pristine, manifestPath, installKey.publicKey.bytes), {
      ok: true,
      files: 5,
    });
    assert.deepEqual(await verifyCodeBundle(await copyOfTree(), manifestPath, installKey.publicKey.bytes), {
      ok: true,
      files: 5,
    });
  });

  it('reports a file with one byte changed', async () => {
    const copy = await copyOfTree();
    const path = join(copy, 'nested', 'deep', 'big.bin');
    const content = await readFile(path);
    content[BIG_FILE_BYTES - 5]! ^= 0x01;
    await writeFile(path, content);
    assert.deepEqual(await problemsOf(copy), ['nested/deep/big.bin: content differs from the manifest']);
  });

  it('reports a deleted file', async () => {
    const copy = await copyOfTree();
    await unlink(join(copy, 'recovery', 'guardian.js'));
    assert.deepEqual(await problemsOf(copy), ['recovery/guardian.js: missing (listed in the manifest)']);
  });

  it('reports an added file: extra code is as bad as changed code', async () => {
    const copy = await copyOfTree();
    await writeFile(join(copy, 'nested', 'deep', 'deeper', 'backdoor.js'), 'process.exit(0);\n');
    assert.deepEqual(await problemsOf(copy), [
      'nested/deep/deeper/backdoor.js: unexpected file, not in the manifest',
    ]);
  });

  it('ignores an added source map', async () => {
    const copy = await copyOfTree();
    await writeFile(join(copy, 'recovery', 'guardian.js.map'), '{"version":3}');
    await writeFile(join(copy, 'recovery', 'guardian.d.ts'), 'export {};\n');
    assert.deepEqual(await verifyCodeBundle(copy, manifestPath, installKey.publicKey.bytes), {
      ok: true,
      files: 5,
    });
  });

  it('reports a symbolic link inside the tree, and does not follow it', async () => {
    const copy = await copyOfTree();
    // Replaces a listed file with a link to identical content elsewhere: still refused.
    const outside = join(workspace, 'outside.js');
    await writeFile(outside, 'export const guard = true;\n');
    await unlink(join(copy, 'recovery', 'guardian.js'));
    await symlink(outside, join(copy, 'recovery', 'guardian.js'));
    await symlink(outside, join(copy, 'nested', 'extra.js.map'));
    assert.deepEqual((await problemsOf(copy)).sort(), [
      'nested/extra.js.map: is a symbolic link (links are not followed)',
      'recovery/guardian.js: is a symbolic link (links are not followed)',
    ]);
  });

  it('lists every problem at once', async () => {
    const copy = await copyOfTree();
    await writeFile(join(copy, 'main.js'), 'import "./evil.js";\n');
    await unlink(join(copy, 'nested', 'empty.js'));
    await writeFile(join(copy, 'evil.js'), '');
    assert.deepEqual((await problemsOf(copy)).sort(), [
      'evil.js: unexpected file, not in the manifest',
      'main.js: content differs from the manifest',
      'nested/empty.js: missing (listed in the manifest)',
    ]);
  });

  it('reports a replaced signature', async () => {
    const forged = Buffer.from(randomBytes(64)).toString('base64');
    const path = await writeManifestVariant('forged.json', (document) => {
      document.signature = forged;
    });
    const problems = await problemsOf(pristine, path);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /forged\.json: signature does not verify under the install key/);
  });

  it('reports a malformed or missing signature', async () => {
    const malformed = await writeManifestVariant('malformed-signature.json', (document) => {
      document.signature = 'not a signature';
    });
    assert.deepEqual(await problemsOf(pristine, malformed), [
      `code manifest ${malformed}: signature is not a base64-encoded 64-byte Ed25519 signature`,
    ]);
    const unsigned = await writeManifestVariant('unsigned.json', (document) => {
      delete document.signature;
    });
    const [problem] = await problemsOf(pristine, unsigned);
    assert.match(problem!, /signature is missing \(the manifest is not signed\)/);
  });

  it('reports a manifest altered after signing (a hash swapped in to match changed code)', async () => {
    const copy = await copyOfTree();
    await writeFile(join(copy, 'nested', 'empty.js'), 'evil();\n');
    const path = await writeManifestVariant('altered.json', (document) => {
      const files = document.files as { path: string; sha256: string; bytes: number }[];
      const entry = files.find((file) => file.path === 'nested/empty.js')!;
      entry.sha256 = '2f1d8ea1e8d5e7a4aa5b3b5a1a9b2e2ef84a36b8a1a48de0b92a7a6b7a5b0f08';
      entry.bytes = 8;
    });
    const problems = await problemsOf(copy, path);
    assert.ok(
      problems.some((problem) => problem.includes('signature does not verify under the install key')),
    );
  });

  it('reports a manifest signed with another key', async () => {
    const path = join(workspace, 'other-key.json');
    await writeCodeManifest(path, await buildCodeManifest(pristine, otherKey));
    const problems = await problemsOf(pristine, path);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /signature does not verify under the install key \(signed by another key/);
  });

  it('reports a truncated manifest', async () => {
    const path = join(workspace, 'truncated.json');
    const text = await readFile(manifestPath, 'utf8');
    await writeFile(path, text.slice(0, Math.floor(text.length / 2)));
    const problems = await problemsOf(pristine, path);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^code manifest .*truncated\.json is not valid JSON/);
  });

  it('reports a missing manifest', async () => {
    const problems = await problemsOf(pristine, join(workspace, 'absent.json'));
    assert.match(problems[0]!, /cannot read code manifest .*absent\.json/);
  });
});

describe('codeBundleFingerprint', () => {
  it('stays the same while nothing is touched, and is not a content hash (copies differ)', async () => {
    const copy = await copyOfTree();
    const first = await codeBundleFingerprint(copy, manifestPath);
    assert.match(first ?? '', /^[0-9a-f]{64}$/);
    assert.equal(await codeBundleFingerprint(copy, manifestPath), first);
    // Same bytes, other inodes: the fingerprint vouches for files, not for contents.
    assert.notEqual(await codeBundleFingerprint(await copyOfTree(), manifestPath), first);
  });

  it('changes when a file is rewritten, even with the same bytes, added, removed or replaced', async () => {
    const changes: [string, (copy: string) => Promise<void>][] = [
      [
        'rewritten with the same bytes',
        async (copy) => {
          const path = join(copy, 'main.js');
          await writeFile(path, await readFile(path));
        },
      ],
      ['added', (copy) => writeFile(join(copy, 'nested', 'extra.js'), 'export {};\n')],
      ['removed', (copy) => unlink(join(copy, 'nested', 'empty.js'))],
      [
        'replaced by rename',
        async (copy) => {
          const path = join(copy, 'recovery', 'guardian.js');
          await writeFile(`${path}.new`, 'export const guard = true;\n');
          await rename(`${path}.new`, path);
        },
      ],
    ];
    for (const [what, change] of changes) {
      const copy = await copyOfTree();
      const before = await codeBundleFingerprint(copy, manifestPath);
      // Change times have nanosecond fields, but a coarse clock could leave them equal.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await change(copy);
      assert.notEqual(await codeBundleFingerprint(copy, manifestPath), before, `a file ${what}`);
    }
  });

  it('changes when the manifest is rewritten, and is null when the tree cannot be walked', async () => {
    const copy = await copyOfTree();
    const ownManifest = join(workspace, `manifest-${copies}.json`);
    await writeCodeManifest(ownManifest, manifest);
    const before = await codeBundleFingerprint(copy, ownManifest);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeCodeManifest(ownManifest, manifest);
    assert.notEqual(await codeBundleFingerprint(copy, ownManifest), before);
    assert.equal(await codeBundleFingerprint(join(workspace, 'no-such-tree'), ownManifest), null);
  });
});

describe('the code of this project', () => {
  it('defaultCodeDirectory() is src/ when run from source', () => {
    const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
    assert.equal(defaultCodeDirectory(), source);
  });

  it('signs and verifies the real src/ directory', async () => {
    const codeDirectory = defaultCodeDirectory();
    const real = await buildCodeManifest(codeDirectory, installKey);
    assert.ok(real.files.length > 20, `only ${real.files.length} files`);
    assert.ok(real.files.some((file) => file.path === 'recovery/code-manifest.ts'));
    const path = join(workspace, 'src-manifest.json');
    await writeCodeManifest(path, real);
    assert.deepEqual(await verifyCodeBundle(codeDirectory, path, installKey.publicKey.bytes), {
      ok: true,
      files: real.files.length,
    });
  });
});

describe('phalanx manifest', () => {
  /** Runs the command in this process, capturing what it prints. */
  async function runManifestCommand(args: readonly string[]) {
    const program = new Command();
    program.exitOverride();
    registerManifest(program);
    const printed = { stdout: '', stderr: '' };
    const originalStdout = process.stdout.write.bind(process.stdout);
    const originalStderr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string) => {
      printed.stdout += chunk;
      return true;
    }) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => {
      printed.stderr += chunk;
      return true;
    }) as typeof process.stderr.write;
    // The test runner itself sets process.exitCode when a test fails: keep its value.
    const exitCodeBefore = process.exitCode;
    process.exitCode = undefined;
    let exitCode: typeof process.exitCode;
    try {
      await program.parseAsync(['node', 'phalanx', 'manifest', ...args]);
    } finally {
      process.stdout.write = originalStdout;
      process.stderr.write = originalStderr;
      exitCode = process.exitCode;
      process.exitCode = exitCodeBefore;
    }
    return { ...printed, exitCode };
  }

  it('writes a manifest signed with the install key, then verifies the bundle against it', async () => {
    const { configPath } = await generateCluster({
      directory: join(workspace, 'cluster'),
      f: 1,
      k: 1,
      basePort: 7000,
      clients: [],
      recovery: { recoveryBoundMs: 10_000 },
    });
    const config = await loadClusterConfig(configPath);
    const bundle = await copyOfTree();
    const written = await runManifestCommand(['--config', configPath, '--code', bundle]);
    const defaultOut = join(config.dataDirectory, 'code-manifest.json');
    assert.equal(written.exitCode, undefined);
    assert.equal(written.stdout, `signed a manifest of 5 files in ${bundle}; wrote ${defaultOut}\n`);

    const verified = await runManifestCommand(['--config', configPath, '--code', bundle, '--verify']);
    assert.equal(verified.exitCode, undefined);
    assert.equal(verified.stdout, `${bundle} matches ${defaultOut} (5 files)\n`);

    await writeFile(join(bundle, 'main.js'), 'changed\n');
    await writeFile(join(bundle, 'added.js'), '');
    const rejected = await runManifestCommand(['--config', configPath, '--code', bundle, '--verify']);
    assert.equal(rejected.exitCode, 1);
    assert.match(rejected.stderr, /a guardian would refuse to start its replica/);
    assert.match(rejected.stderr, /\n {2}added\.js: unexpected file, not in the manifest\n/);
    assert.match(rejected.stderr, /\n {2}main\.js: content differs from the manifest\n/);
  });

  it('refuses to write the manifest inside the code directory', async () => {
    const { configPath } = await generateCluster({
      directory: join(workspace, 'cluster-inside'),
      f: 1,
      k: 1,
      basePort: 7000,
      clients: [],
      recovery: { recoveryBoundMs: 10_000 },
    });
    const bundle = await copyOfTree();
    await assert.rejects(
      runManifestCommand(['--config', configPath, '--code', bundle, '--out', join(bundle, 'm.json')]),
      /is inside the code directory/,
    );
  });
});
