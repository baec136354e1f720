/**
 * The ledger example as a user runs it: Phalanx packed with `npm pack`, installed with npm into a
 * fresh project, the ledger compiled there against the installed declarations, and a real
 * 4-replica cluster started by the installed `phalanx` command with the ledger named in its
 * configuration, driven through the ledger's own CLI. Also: importing `phalanx` in that project
 * loads none of the replica runtime, and the tarball ships the compiled package, not the sources.
 * (The 6-replica guardian cluster with a lying replica is guardians/packed-ledger.test.ts.)
 */
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePortRange } from '../../src/cli/bench.js';
import {
  configureLedger,
  createLedgerProject,
  type LedgerProject,
  ledgerLine,
  modulesLoadedBy,
  type PackedTarball,
  packedTarball,
  replicaRuntimeIn,
} from './packed-package.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** The packed size this package stays under (it was 0.41 MB when this test was written). */
const MAX_TARBALL_BYTES = 1024 * 1024;

describe('the ledger from the packed package, on a 4-replica cluster', { timeout: 600_000 }, () => {
  let tarball: PackedTarball;
  let project: LedgerProject;

  before(async () => {
    tarball = await packedTarball();
    project = await createLedgerProject(tarball);
  });

  after(() => project?.remove());

  it('ships the compiled package and its command, not the sources or the tests', () => {
    process.stdout.write(
      `# tarball: ${tarball.size} bytes packed, ${tarball.unpackedSize} unpacked, ${tarball.files.length} files\n`,
    );
    assert.ok(tarball.size < MAX_TARBALL_BYTES, `the tarball is ${tarball.size} bytes`);
    const outside = tarball.files.filter(
      (file) =>
        !['package.json', 'README.md', 'bin/phalanx.js'].includes(file) &&
        !(file.startsWith('dist/') && (file.endsWith('.js') || file.endsWith('.d.ts'))),
    );
    assert.deepEqual(outside, []);
    for (const entry of ['index', 'replica', 'kv', 'cli/main'])
      for (const extension of ['.js', '.d.ts'])
        assert.ok(
          tarball.files.includes(`dist/${entry}${extension}`),
          `dist/${entry}${extension} is shipped`,
        );
  });

  it('compiled the ledger against the installed declarations, not the repository sources', () => {
    const installed = join(project.directory, 'node_modules', 'phalanx', 'dist', 'index.d.ts');
    assert.ok(project.compiledFrom.includes(installed), 'tsc read the installed dist/index.d.ts');
    // Only the compiler's own lib files come from the repository (its typescript compiles).
    const fromRepository = project.compiledFrom.filter(
      (file) =>
        !file.startsWith(`${project.directory}/`) &&
        !file.startsWith(join(root, 'node_modules', 'typescript', 'lib')),
    );
    assert.deepEqual(fromRepository, []);
  });

  it('importing phalanx (the client entry point) loads none of the replica runtime', async () => {
    const client = await modulesLoadedBy(project, 'phalanx');
    assert.ok(
      client.resolved.some((url) => url.endsWith('/node_modules/phalanx/dist/client/client.js')),
      'the recording saw the client load',
    );
    assert.deepEqual(replicaRuntimeIn(project, client), []);
    // The recording sees the runtime when it is loaded: phalanx/replica does load it.
    const replica = await modulesLoadedBy(project, 'phalanx/replica');
    const runtime = replicaRuntimeIn(project, replica);
    assert.ok(runtime.some((path) => path.endsWith('/dist/runtime/replica-node.js')));
    assert.ok(runtime.some((path) => path.includes('/node_modules/classic-level/')));
  });

  it('runs the ledger on a cluster started by the installed phalanx command', async () => {
    const basePort = await freePortRange(2 * 4 + 101);
    const keygen = await project.phalanx([
      'keygen',
      '--dir',
      '.',
      '--base-port',
      String(basePort),
      '--clients',
      'admin,bob',
      '--bench-clients',
      '0',
      '--dashboard-port',
      '0',
    ]);
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.match(keygen.stdout, /n = 4, f = 1, k = 0/);
    configureLedger(project.directory, ['admin']);
    const up = await project.up();
    try {
      const as = (client: string, ...words: string[]) =>
        project.ledger(['--config', 'cluster.json', '--client', client, ...words]).then(ledgerLine);
      assert.deepEqual(await as('admin', 'open', 'alice'), { kind: 'ok' });
      assert.deepEqual(await as('bob', 'open', 'bob'), { kind: 'ok' });
      assert.deepEqual(await as('bob', 'open', 'alice'), { kind: 'rejected', reason: 'account-exists' });
      assert.deepEqual(await as('admin', 'deposit', 'alice', '100'), { kind: 'ok' });
      assert.deepEqual(await as('bob', 'deposit', 'bob', '100'), { kind: 'rejected', reason: 'not-admin' });
      assert.deepEqual(await as('admin', 'transfer', 't-1', 'alice', 'bob', '30'), { kind: 'ok' });
      // The same transfer again (a retry, or a replay): applied once.
      assert.deepEqual(await as('admin', 'transfer', 't-1', 'alice', 'bob', '30'), {
        kind: 'rejected',
        reason: 'duplicate-transfer',
      });
      assert.deepEqual(await as('admin', 'transfer', 't-2', 'alice', 'bob', '71'), {
        kind: 'rejected',
        reason: 'overdraft',
      });
      assert.deepEqual(await as('bob', 'transfer', 't-3', 'alice', 'bob', '1'), {
        kind: 'rejected',
        reason: 'not-owner',
      });
      // Ids are each client's own: bob's t-1 is not admin's.
      assert.deepEqual(await as('bob', 'transfer', 't-1', 'bob', 'alice', '10'), { kind: 'ok' });
      // Five transfers of 20 at once out of alice's 80: four apply, one is an overdraft.
      const burst = await Promise.all(
        [1, 2, 3, 4, 5].map((index) => as('admin', 'transfer', `burst-${index}`, 'alice', 'bob', '20')),
      );
      assert.equal(burst.filter((line) => line.kind === 'ok').length, 4, JSON.stringify(burst));
      assert.deepEqual(
        burst.filter((line) => line.kind !== 'ok'),
        [{ kind: 'rejected', reason: 'overdraft' }],
      );
      assert.deepEqual(await as('bob', 'balance', 'alice'), { kind: 'balance', amount: '0' });
      assert.deepEqual(await as('admin', 'balance', 'bob'), { kind: 'balance', amount: '100' });
      assert.deepEqual(await as('admin', 'total'), { kind: 'total', amount: '100', accounts: 2 });
    } finally {
      await up.stop();
    }
  });
});
