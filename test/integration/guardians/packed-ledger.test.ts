/**
 * The ledger from the packed package on the deployed shape: n = 6 (f = 1, k = 1) with guardians
 * rejuvenating every replica, started by the installed `phalanx up` in a fresh project (see
 * ../packed-package.ts), one replica lying in its replies. Two clients move money back and forth
 * through TypedClient from the installed package while replicas are rejuvenated (each
 * rejuvenation checks the signed code manifest, which covers the ledger's files); from the
 * clients' point of view the ledger keeps its invariants: results they accept are the ledger's,
 * the total never changes, a repeated transfer id is applied once, and the balances read back
 * are what the accepted results add up to.
 */
import * as assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type * as LedgerCodec from '../../../examples/ledger/codec.js';
import type * as PhalanxApi from 'phalanx';
import { freePortRange } from '../../../src/cli/bench.js';
import type { GuardianReport } from '../../../src/runtime/guardian-report.js';
import { waitFor } from '../helpers.js';
import {
  configureLedger,
  createLedgerProject,
  type LedgerProject,
  ledgerLine,
  packedTarball,
  type RunningUp,
} from '../packed-package.js';
import { up as guardiansUp } from './shared.js';

/** T_D; T_P is its minimum for n = 6 (7 · T_D), so some replica is rejuvenated every T_D or so. */
const RECOVERY_BOUND_MS = 6000;
/** The replica an intruder holds: it signs made-up results for its clients. */
const LYING_REPLICA = 2;
const OPENING_BALANCE = 1000n;
/** Pause before each step of each client (a few tens of operations per second in all). */
const STEP_PAUSE_MS = 50;

interface Mover {
  readonly client: string;
  readonly from: string;
  readonly to: string;
  /**
   * Largest amount it moves: alice's owner moves more than bob's, so alice runs dry and some of
   * its transfers are refused as overdrafts.
   */
  readonly largest: number;
  /** Money moved out by transfers the cluster applied (results the client accepted). */
  moved: bigint;
  applied: number;
  refused: number;
  repeatsRefused: number;
  readonly problems: string[];
}

describe(
  'the ledger from the packed package, on 6 replicas with guardians and a liar',
  { timeout: 420_000 },
  () => {
    let project: LedgerProject;
    let running: RunningUp | null = null;

    before(async () => {
      project = await createLedgerProject(await packedTarball());
    });

    after(async () => {
      try {
        await running?.stop();
      } finally {
        project?.remove();
      }
    });

    it('keeps its invariants for its clients while replicas are rejuvenated and one lies', async () => {
      const basePort = await freePortRange(301 + 6);
      const keygen = await project.phalanx([
        'keygen',
        '--dir',
        '.',
        '--f',
        '1',
        '--k',
        '1',
        '--recovery-bound',
        String(RECOVERY_BOUND_MS),
        '--allow-fault-injection',
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
      assert.match(keygen.stdout, /n = 6, f = 1, k = 1/);
      configureLedger(project.directory, ['admin']);
      // What an operator does at install time: sign the code, the ledger's files included.
      const signed = await project.phalanx(['manifest', '--config', 'cluster.json']);
      assert.equal(signed.code, 0, signed.stderr);
      assert.match(signed.stdout, /and 2 files of the service module \.\/ledger\/service\.js/);
      const manifest = JSON.parse(
        readFileSync(join(project.directory, 'data', 'code-manifest.json'), 'utf8'),
      ) as {
        serviceFiles: readonly { readonly path: string }[];
      };
      assert.deepEqual(manifest.serviceFiles.map((file) => file.path).sort(), [
        join(project.directory, 'ledger', 'codec.js'),
        join(project.directory, 'ledger', 'service.js'),
      ]);

      running = await project.up();
      const cli = (client: string, ...words: string[]) =>
        project
          .ledger(['--config', 'cluster.json', '--client', client, '--timeout', '30000', ...words])
          .then(ledgerLine);
      assert.deepEqual(await cli('admin', 'open', 'alice'), { kind: 'ok' });
      assert.deepEqual(await cli('bob', 'open', 'bob'), { kind: 'ok' });
      assert.deepEqual(await cli('admin', 'deposit', 'alice', String(OPENING_BALANCE)), { kind: 'ok' });
      assert.deepEqual(await cli('admin', 'deposit', 'bob', String(OPENING_BALANCE)), { kind: 'ok' });

      const config = JSON.parse(readFileSync(join(project.directory, 'cluster.json'), 'utf8')) as {
        replicas: readonly { readonly adminHost: string; readonly guardianAdminPort: number }[];
      };
      const liar = config.replicas[LYING_REPLICA]!;
      const injected = await fetch(`http://${liar.adminHost}:${liar.guardianAdminPort}/fault`, {
        method: 'POST',
        body: JSON.stringify({ mode: 'lie-in-replies' }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(injected.status, 200, await injected.text());
      const injectedAtMs = Date.now();

      // The installed package and the compiled ledger, as the user's own program imports them.
      const phalanx = (await import(
        pathToFileURL(join(project.directory, 'node_modules', 'phalanx', 'dist', 'index.js')).href
      )) as typeof PhalanxApi;
      const codec = (await import(
        pathToFileURL(join(project.directory, 'ledger', 'codec.js')).href
      )) as typeof LedgerCodec;
      const clusterConfig = await phalanx.loadClusterConfig(join(project.directory, 'cluster.json'));
      const connect = async (name: string) => {
        const keys = await phalanx.loadClientKeyFile(
          phalanx.clientKeyPath(clusterConfig, phalanx.clientId(name)),
        );
        return phalanx.PhalanxClient.connect({ config: clusterConfig, client: keys, timeoutMs: 30_000 });
      };
      const connections = [await connect('admin'), await connect('bob')];
      const movers: Mover[] = [
        {
          client: 'admin',
          from: 'alice',
          to: 'bob',
          largest: 400,
          moved: 0n,
          applied: 0,
          refused: 0,
          repeatsRefused: 0,
          problems: [],
        },
        {
          client: 'bob',
          from: 'bob',
          to: 'alice',
          largest: 100,
          moved: 0n,
          applied: 0,
          refused: 0,
          repeatsRefused: 0,
          problems: [],
        },
      ];
      let moving = true;
      const move = async (mover: Mover, index: number): Promise<void> => {
        const ledger = new phalanx.TypedClient(connections[index]!, codec.ledgerOperations);
        let lastApplied: string | null = null;
        for (let step = 0; moving; step++) {
          // A steady load, not a saturating one: twelve processes share two cores, and
          // rejuvenations are measured against T_D.
          await new Promise((resolve) => setTimeout(resolve, STEP_PAUSE_MS));
          try {
            // Every fourth step repeats the last applied transfer: it must not move money again.
            if (step % 4 === 3 && lastApplied !== null) {
              const repeated = await ledger.execute({
                kind: 'transfer',
                id: lastApplied,
                from: mover.from,
                to: mover.to,
                amount: 1n,
              });
              if (repeated.kind === 'rejected' && repeated.reason === 'duplicate-transfer')
                mover.repeatsRefused++;
              else
                mover.problems.push(`repeated transfer ${lastApplied} answered ${JSON.stringify(repeated)}`);
              continue;
            }
            const id = `${mover.client}-${step}`;
            const amount = BigInt(1 + ((step * 37) % mover.largest));
            const result = await ledger.execute({
              kind: 'transfer',
              id,
              from: mover.from,
              to: mover.to,
              amount,
            });
            if (result.kind === 'ok') {
              mover.moved += amount;
              mover.applied++;
              lastApplied = id;
            } else if (result.kind === 'rejected' && result.reason === 'overdraft') mover.refused++;
            else mover.problems.push(`transfer ${id} answered ${JSON.stringify(result)}`);
            // Read-only, from whatever state a quorum is in: the total never changes.
            if (step % 5 === 0) {
              const total = await ledger.invoke({ kind: 'total' });
              if (total.kind !== 'total' || total.amount !== 2n * OPENING_BALANCE || total.accounts !== 2)
                mover.problems.push(
                  `total answered ${JSON.stringify(total, (_, value: unknown) => String(value))}`,
                );
            }
          } catch (error) {
            mover.problems.push(error instanceof Error ? error.message : String(error));
          }
        }
      };
      const workloadStartedAtMs = Date.now();
      const workloads = movers.map((mover, index) => move(mover, index));
      try {
        // Until a rejuvenation that started after the workload has finished (its guardian checked
        // the code manifest, ledger files included, before starting the new replica), and the
        // liar has been rejuvenated since it started lying (the intruder evicted).
        const guardians = async (): Promise<GuardianReport[]> => {
          const status = await project.phalanx(['status', '--config', 'cluster.json', '--json'], 20_000);
          try {
            return (JSON.parse(status.stdout) as { guardians?: GuardianReport[] }).guardians ?? [];
          } catch {
            return [];
          }
        };
        const recoveries = await waitFor(
          'a rejuvenation during the workload, and one of the lying replica',
          async () => {
            const reports = guardiansUp(await guardians());
            const during = reports.flatMap((report) =>
              report.recentRecoveries
                .filter((record) => record.startedAtMs >= workloadStartedAtMs)
                .map((record) => ({ replica: report.replica, ...record })),
            );
            const liarRejuvenated = during.some(
              (record) => record.replica === LYING_REPLICA && record.startedAtMs >= injectedAtMs,
            );
            return during.length > 0 && liarRejuvenated ? during : null;
          },
          180_000,
        );
        process.stdout.write(
          `# rejuvenations during the workload: ${recoveries
            .map(
              (record) =>
                `replica ${record.replica} ${record.kind} (${record.reason}) ${record.durationMs} ms`,
            )
            .join('; ')}\n`,
        );
      } finally {
        moving = false;
        await Promise.all(workloads);
        for (const connection of connections) await connection.close();
      }
      for (const mover of movers) {
        process.stdout.write(
          `# ${mover.client}: ${mover.applied} transfers applied, ${mover.refused} overdrafts, ` +
            `${mover.repeatsRefused} repeats refused\n`,
        );
        assert.deepEqual(mover.problems, [], `${mover.client}'s problems`);
        assert.ok(mover.applied > 0 && mover.repeatsRefused > 0, `${mover.client} made progress`);
      }
      const [admin, bob] = movers as [Mover, Mover];
      // Read back through the ledger's CLI: exactly what the accepted results add up to.
      assert.deepEqual(await cli('admin', 'balance', 'alice'), {
        kind: 'balance',
        amount: String(OPENING_BALANCE - admin.moved + bob.moved),
      });
      assert.deepEqual(await cli('bob', 'balance', 'bob'), {
        kind: 'balance',
        amount: String(OPENING_BALANCE - bob.moved + admin.moved),
      });
      assert.deepEqual(await cli('bob', 'total'), {
        kind: 'total',
        amount: String(2n * OPENING_BALANCE),
        accounts: 2,
      });
      // The running code still matches the signed manifest; a changed ledger file does not.
      const verified = await project.phalanx(['manifest', '--config', 'cluster.json', '--verify']);
      assert.equal(verified.code, 0, verified.stderr);
      await running.stop();
      running = null;
      // Stopped first: a guardian rejuvenating meanwhile would rightly refuse the changed file.
      const codecFile = join(project.directory, 'ledger', 'codec.js');
      appendFileSync(codecFile, '// changed after signing\n');
      const tampered = await project.phalanx(['manifest', '--config', 'cluster.json', '--verify']);
      assert.equal(tampered.code, 1, tampered.stdout);
      assert.match(tampered.stderr, /a guardian would refuse to start its replica/);
      assert.ok(tampered.stderr.includes(`${codecFile}: content differs from the manifest`), tampered.stderr);
    });
  },
);
