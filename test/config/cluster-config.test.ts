import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseClusterConfig } from '../../src/config/cluster-config.js';
import { generateCluster } from '../../src/config/keys.js';
import { createKvService, kvConfigProblems } from '../../src/apps/kv/hosting.js';

let directory: string;
let document: Record<string, unknown>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'phalanx-config-'));
  const { configPath } = await generateCluster({ directory, f: 1, k: 0, basePort: 7000, clients: ['admin'] });
  document = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

function withProtocol(protocol: Record<string, unknown>): unknown {
  return { ...document, protocol };
}

function problemsOf(candidate: unknown): string[] {
  try {
    parseClusterConfig(candidate, 'test.json');
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.problems];
  }
}

describe('protocol section', () => {
  it('takes plannedViewChangeWaitMs 0 (start guardian view changes at once)', () => {
    const config = parseClusterConfig(withProtocol({ plannedViewChangeWaitMs: 0 }), 'test.json');
    assert.equal(config.protocol.plannedViewChangeWaitMs, 0);
    assert.equal(parseClusterConfig(document, 'test.json').protocol.plannedViewChangeWaitMs, 1000);
  });

  it('takes leaderTurnaroundFloorMs 0 (no turnaround check) and defaults it to 150', () => {
    const config = parseClusterConfig(withProtocol({ leaderTurnaroundFloorMs: 0 }), 'test.json');
    assert.equal(config.protocol.leaderTurnaroundFloorMs, 0);
    assert.equal(parseClusterConfig(document, 'test.json').protocol.leaderTurnaroundFloorMs, 150);
    assert.ok(
      problemsOf(withProtocol({ leaderTurnaroundFloorMs: -5 })).some((problem) =>
        problem.includes('protocol.leaderTurnaroundFloorMs'),
      ),
    );
  });

  it('takes leaderRotationCheckpoints (regular leader rotation), off (0) by default', () => {
    assert.equal(
      parseClusterConfig(withProtocol({ leaderRotationCheckpoints: 3 }), 'test.json').protocol
        .leaderRotationCheckpoints,
      3,
    );
    assert.equal(parseClusterConfig(document, 'test.json').protocol.leaderRotationCheckpoints, 0);
    assert.ok(
      problemsOf(withProtocol({ leaderRotationCheckpoints: -1 })).some((problem) =>
        problem.includes('protocol.leaderRotationCheckpoints'),
      ),
    );
  });

  it('refuses 0 where the protocol needs a positive value, and negatives anywhere, naming the field', () => {
    assert.ok(
      problemsOf(withProtocol({ checkpointInterval: 0 })).some((problem) =>
        /checkpointInterval must be a positive integer, got 0/.test(problem),
      ),
    );
    assert.ok(
      problemsOf(withProtocol({ plannedViewChangeWaitMs: -1 })).some((problem) =>
        problem.includes('protocol.plannedViewChangeWaitMs'),
      ),
    );
  });
});

describe('client keyspaces', () => {
  function withAdminKeyspaces(keyspaces: unknown): unknown {
    const clients = document.clients as Record<string, Record<string, unknown>>;
    return { ...document, clients: { ...clients, admin: { ...clients.admin, keyspaces } } };
  }

  it('are carried as plain strings; the key-value store judges what they mean', () => {
    const config = parseClusterConfig(withAdminKeyspaces(['users/*']), 'test.json');
    assert.deepEqual(config.clients[0]!.keyspaces, ['users/*']);
    const problems = kvConfigProblems(config);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /^clients: client "admin": keyspaces\[0\] "users\/\*": wildcards are not supported/,
    );
    assert.throws(() => createKvService({ config }), /invalid access control config/);
    assert.deepEqual(kvConfigProblems(parseClusterConfig(document, 'test.json')), []);
  });

  it('must be a list of strings', () => {
    assert.ok(
      problemsOf(withAdminKeyspaces('users/')).some((problem) =>
        problem.startsWith('clients.admin.keyspaces'),
      ),
    );
  });
});
