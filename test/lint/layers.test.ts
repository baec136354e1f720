/**
 * The layer rule (scripts/eslint-layers.mjs) on small fixtures, through ESLint's Node API. The
 * fixtures are linted with the rule alone and the TypeScript parser without type information
 * (a typed lint of text that is not on disk would need a project for it); a last test checks
 * that the repository's own configuration turns the rule on for src/.
 */
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import layers from '../../scripts/eslint-layers.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sourceRoot = join(root, 'src');

const ruleOnly: Linter.Config[] = [
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { layers },
    rules: { 'layers/layers': ['error', { sourceRoot }] },
  },
];

/** The layer rule's messages for `code` as if it were the module at `path` (relative to the repository). */
async function layerProblems(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: ruleOnly });
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  assert.ok(result !== undefined);
  for (const message of result.messages) assert.equal(message.ruleId, 'layers/layers', message.message);
  return result.messages.map((message) => message.message);
}

describe('layer rule', () => {
  it('reports an upward import from client/ (runtime/ is above it)', async () => {
    const problems = await layerProblems(
      'src/client/fixture.ts',
      "import { ReplicaNode } from '../runtime/replica-node.js';\nexport const node = ReplicaNode;\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /src\/client\/ may not import src\/runtime\//);
  });

  it('reports upward imports in every form: import type, export from, export *, dynamic import', async () => {
    const problems = await layerProblems(
      'src/config/fixture.ts',
      [
        "import type { KvService } from '../apps/kv/service.js';",
        "export { PhalanxClient } from '../client/client.js';",
        "export * from '../recovery/guardian.js';",
        "export const later = () => import('../dashboard/server.js');",
        "export type Guardian = typeof import('../recovery/guardian.js');",
        'export type Service = KvService;',
      ].join('\n'),
    );
    assert.equal(problems.length, 5, problems.join('\n'));
  });

  it('reports an import between sibling folders of one layer', async () => {
    const problems = await layerProblems('src/storage/fixture.ts', "export * from '../transport/tcp.js';\n");
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /'transport' is not below 'storage'/);
  });

  it('reports I/O built-ins and packages in core/, which is pure', async () => {
    const problems = await layerProblems(
      'src/core/fixture.ts',
      [
        "import { readFileSync } from 'node:fs';",
        "import { setTimeout } from 'node:timers/promises';",
        "import { parse } from 'yaml';",
        'export { readFileSync, setTimeout, parse };',
      ].join('\n'),
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[0]!, /src\/core\/ is pure: it may not import 'node:fs'/);
  });

  it('reports an import of a non-pure folder from core/', async () => {
    const problems = await layerProblems(
      'src/core/fixture.ts',
      "export { signBytes } from '../crypto/signatures.js';\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /may not import the non-pure src\/crypto\//);
  });

  it('passes downward imports, imports within a folder, and packages outside pure folders', async () => {
    assert.deepEqual(
      await layerProblems(
        'src/client/fixture.ts',
        [
          "import { createHash } from 'node:crypto';",
          "import { quorumSize } from '../core/quorum.js';",
          "import type { ClusterConfig } from '../config/cluster-config.js';",
          "import { TcpTransport } from '../transport/tcp.js';",
          "import { PhalanxClient } from './client.js';",
          'export { createHash, quorumSize, TcpTransport, PhalanxClient };',
          'export type Config = ClusterConfig;',
        ].join('\n'),
      ),
      [],
    );
    assert.deepEqual(
      await layerProblems('src/core/fixture.ts', "export { LIMITS } from '../messages/limits.js';\n"),
      [],
    );
  });

  it('reports I/O imports in recovery/core/, the guardian core, which is pure though recovery/ is not', async () => {
    const problems = await layerProblems(
      'src/recovery/core/fixture.ts',
      [
        "import { spawn } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "import type { Logger } from 'pino';",
        "import { Guardian } from '../guardian.js';",
        "import { TcpTransport } from '../../transport/tcp.js';",
        'export { spawn, writeFileSync, Guardian, TcpTransport };',
        'export type L = Logger;',
      ].join('\n'),
    );
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.match(problems[0]!, /src\/recovery\/core\/ is pure: it may not import 'node:child_process'/);
    assert.match(
      problems[3]!,
      /src\/recovery\/core\/ is pure: it may not import the non-pure src\/recovery\//,
    );
    assert.match(
      problems[4]!,
      /src\/recovery\/core\/ is pure: it may not import the non-pure src\/transport\//,
    );
    // The pure layers below it stay open to it, and the shell beside it keeps its I/O.
    assert.deepEqual(
      await layerProblems(
        'src/recovery/core/fixture.ts',
        [
          "import { slotAt } from '../../core/schedule.js';",
          "import { replicaId } from '../../messages/ids.js';",
          "import { GuardianCore } from './guardian-core.js';",
          'export { slotAt, replicaId, GuardianCore };',
        ].join('\n'),
      ),
      [],
    );
    assert.deepEqual(
      await layerProblems(
        'src/recovery/fixture.ts',
        "import { spawn } from 'node:child_process';\nexport { GuardianCore } from './core/guardian-core.js';\nexport { spawn };\n",
      ),
      [],
    );
  });

  it('keeps adversary/, the adversary catalogue, pure and below the simulator and the runtime', async () => {
    const problems = await layerProblems(
      'src/adversary/fixture.ts',
      [
        "import { randomBytes } from 'node:crypto';",
        "import { Prng } from '../sim/prng.js';",
        "import { FaultInjection } from '../runtime/fault-modes.js';",
        "import { signBytes } from '../crypto/signatures.js';",
        'export { randomBytes, Prng, FaultInjection, signBytes };',
      ].join('\n'),
    );
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems[0]!, /src\/adversary\/ is pure: it may not import 'node:crypto'/);
    // The pure layers below it stay open to it, and both environments may import it.
    assert.deepEqual(
      await layerProblems(
        'src/adversary/fixture.ts',
        "export { quorumSize } from '../core/quorum.js';\nexport { LIMITS } from '../messages/limits.js';\n",
      ),
      [],
    );
    for (const user of ['src/sim/fixture.ts', 'src/runtime/fixture.ts'])
      assert.deepEqual(
        await layerProblems(user, "export { rewriteOutgoing } from '../adversary/outgoing.js';\n"),
        [],
      );
  });

  it('reports the clock, timers and randomness in adversary/ with the repository configuration', async () => {
    const computed = (await new ESLint({ cwd: root }).calculateConfigForFile(
      join(root, 'src/adversary/outgoing.ts'),
    )) as Linter.Config;
    const names = ['no-restricted-globals', 'no-restricted-properties', 'no-restricted-syntax'];
    const rules = Object.fromEntries(names.map((name) => [name, computed.rules?.[name]]));
    for (const name of names)
      assert.ok(Array.isArray(rules[name]), `${name} is configured for src/adversary/`);
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, rules }],
    });
    const code = ['export const coin = Math.random();', 'setTimeout(() => {}, 1500);'].join('\n');
    const [result] = await eslint.lintText(code, { filePath: join(root, 'src/adversary/fixture.ts') });
    assert.deepEqual(
      result?.messages.map((message) => `${message.line}:${message.ruleId}`),
      ['1:no-restricted-properties', '2:no-restricted-globals'],
    );
  });

  it('reports a folder the layer order does not place', async () => {
    const problems = await layerProblems(
      'src/plugins/fixture.ts',
      "export { LIMITS } from '../messages/limits.js';\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /src\/plugins\/ has no place in the layer order/);
  });

  it('ignores files outside src/', async () => {
    assert.deepEqual(await layerProblems('test/fixture.ts', "export * from '../src/cli/main.js';\n"), []);
  });

  it('reports the clock, timers and randomness in core/ with the repository configuration', async () => {
    // The repository's settings of the rules that police these globals, applied without type
    // information (see the header).
    const computed = (await new ESLint({ cwd: root }).calculateConfigForFile(
      join(root, 'src/core/replica.ts'),
    )) as Linter.Config;
    const names = ['no-restricted-globals', 'no-restricted-properties', 'no-restricted-syntax'];
    const rules = Object.fromEntries(names.map((name) => [name, computed.rules?.[name]]));
    for (const name of names) assert.ok(Array.isArray(rules[name]), `${name} is configured for src/core/`);
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, rules }],
    });
    const code = [
      'export const now = Date.now();',
      'export const coin = Math.random();',
      'export const today = new Date();',
      'export const epoch = new Date(0);',
      'setTimeout(() => {}, 10);',
    ].join('\n');
    const [result] = await eslint.lintText(code, { filePath: join(root, 'src/core/fixture.ts') });
    assert.deepEqual(
      result?.messages.map((message) => `${message.line}:${message.ruleId}`),
      [
        '1:no-restricted-properties',
        '2:no-restricted-properties',
        '3:no-restricted-syntax',
        '5:no-restricted-globals',
      ],
    );
  });

  it('reports the clock, timers, randomness and waiting in recovery/core/ with the repository configuration', async () => {
    const computed = (await new ESLint({ cwd: root }).calculateConfigForFile(
      join(root, 'src/recovery/core/guardian-core.ts'),
    )) as Linter.Config;
    const names = ['no-restricted-globals', 'no-restricted-properties', 'no-restricted-syntax'];
    const rules = Object.fromEntries(names.map((name) => [name, computed.rules?.[name]]));
    for (const name of names)
      assert.ok(Array.isArray(rules[name]), `${name} is configured for src/recovery/core/`);
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, rules }],
    });
    const code = [
      'export const now = Date.now();',
      'export async function later(): Promise<void> {}',
      'setInterval(() => {}, 50);',
      'export const coin = Math.random();',
    ].join('\n');
    const [result] = await eslint.lintText(code, { filePath: join(root, 'src/recovery/core/fixture.ts') });
    assert.deepEqual(
      result?.messages.map((message) => `${message.line}:${message.ruleId}`),
      [
        '1:no-restricted-properties',
        '2:no-restricted-syntax',
        '3:no-restricted-globals',
        '4:no-restricted-properties',
      ],
    );
  });

  it('is on, as an error, for src/ in the repository configuration', async () => {
    const eslint = new ESLint({ cwd: root });
    const config = (await eslint.calculateConfigForFile(join(root, 'src/client/client.ts'))) as Linter.Config;
    const setting = config.rules?.['layers/layers'];
    assert.ok(Array.isArray(setting), 'layers/layers is configured for src/');
    assert.ok(setting[0] === 2 || setting[0] === 'error');
  });
});
