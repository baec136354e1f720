/**
 * `npm run sim -- [options]`: runs the deterministic simulator over many seeds and prints a
 * summary; its last line is one JSON object. A failing seed is named and replays exactly with
 * `npm run sim -- --seed S --trace` (plus the same --n/--f/--byzantine/--broken-* flags).
 *
 * Exit status: 0 when every seed passed every checker, 1 otherwise, 2 on bad arguments.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { JsonValue } from '../core/service.js';
import { type LoadedServiceModule, loadServiceModule } from '../hosting/service-modules.js';
import { SERVICE_SELECTION_LIMITS } from '../config/cluster-config.js';
import {
  BYZANTINE_CATALOGUE,
  type ByzantineBehaviour,
  isByzantineBehaviour,
  ONLY_WHEN_NAMED_BEHAVIOURS,
} from './byzantine.js';
import {
  DEFAULT_CORRECT_CLIENTS,
  type KeyRotationMode,
  runSimulation,
  type SeedReport,
  type SimulationOptions,
} from './simulator.js';

/** The most correct clients --clients takes. */
const MAX_SIM_CLIENTS = 64;

const usage = `usage: npm run sim -- [--seeds N | --seed S] [--first-seed S] [--jobs J] [--n N] [--f F] [--k K]
                     [--byzantine all|none|<behaviour>[,<behaviour>...]] [--clients C]
                     [--large-value-client] [--large-value-clients N] [--client-table-chunks N]
                     [--cluster-restart]
                     [--key-theft] [--key-rotation restart|in-place|restart-in-view-change]
                     [--broken-quorum] [--broken-view-change] [--broken-snapshot]
                     [--broken-epoch-lifetime] [--recovery [--recovery-bound-ms T] [--broken-guardian] [--broken-suspicions]]
                     [--colluding C|f+1 [--colluders-withhold-proofs] [--broken-fork-detection]]
                     [--service <module> [--service-options <json>]]
                     [--real-crypto] [--trace] [--quiet]
behaviours: ${BYZANTINE_CATALOGUE.join(', ')} (all draws every one but ${ONLY_WHEN_NAMED_BEHAVIOURS.join(', ')}, which run when named)
--clients C           correct closed-loop clients (default 3, at most ${MAX_SIM_CLIENTS}); small-batches needs more
                      than the 4 batches in flight to cost anything (the detector test uses 12)
--jobs J              run the seeds in J worker threads (default 1); reports still come in seed order,
                      and each seed runs exactly as alone
--large-value-client  also run the client that sends near-1 MiB values, many ordered reads of them
                      and unauthentic requests (it runs anyway when a replica draws large-values-client)
--large-value-clients N  run N of them
--client-table-chunks N  the protocol's clientTableChunks (default 4; 1 puts every client in one bucket)
--leader-rotation N   the protocol's leaderRotationCheckpoints: a new view every N stable checkpoints
                      of one view (default 0: off)
--cluster-restart     once in the fault phase every replica crashes at once and restarts with its disk
--key-theft           every replica's key epochs rotate on a recovery schedule (T_D = 400 ms), a Byzantine
                      replica is a key-thief (it gets every replica's keys just before each rotation and
                      replays them after their epochs retire), and a checker judges every signature a
                      correct replica or guardian accepts against the rotation log
                      (--byzantine key-thief implies it)
--key-rotation M      with key theft, what a replica does with new keys: restart from its disk (default,
                      as the runtime), go on in-place, or restart only in a view change (these two
                      replay core limitations, docs/intrusion-tolerance.md)
--recovery            one GuardianCore per replica (src/sim/guardians.ts) rejuvenates the replicas on the
                      schedule (T_D = 800 ms, k >= 1): proactive and reactive slots, amnesiac restarts on
                      fresh key epochs, crash restarts; the recovery checkers judge it (at most k
                      rejuvenating at once, exposure within T_P + T_D, no correct replica accused, a
                      proven replica rejuvenated by its reactive slot)
--recovery-bound-ms T  with --recovery, T_D of the guardians' schedule (default 800; T_P = (n/k + f/k)·T_D)
--broken-guardian     test only, with --recovery: every reactive slot takes k + 1 replicas (caught)
--broken-suspicions   test only, with --recovery: f suspicions accuse a replica instead of f + 1, so a
                      'frame' replica gets a correct one accused alone (caught)
--colluding C         beyond f: replicas 0..C-1 (f < C <= n - 2; 'f+1' for f + 1) conspire instead of the
                      Byzantine draw, showing two groups of correct replicas two certified histories
                      (src/sim/colluders.ts); every seed must end with the correct replicas consistent or
                      each diverged one in safe mode with a verified forensic proof naming only colluders
--colluders-withhold-proofs  with --colluding: the conspirators' cores do not send FORK-PROOFs either (real
                      colluders would not); known to fork unnoticed in some seeds (docs/intrusion-tolerance.md,
                      Limitations)
--broken-fork-detection  test only, with --colluding: replicas never compare certificates (caught)
--service M           the replicas run the service module M (a path relative to the current folder, or a
                      package name; default: the key-value store), a fresh instance per replica start;
                      correct clients send its simulation.nextOperation operations, its
                      simulation.stateProblems judge every correct replica's state after each batch, and
                      the linearizability checker (key-value histories only) is off
--service-options J   the module's options, as JSON (a configuration's service.options); clients are c0...
--real-crypto         sign with production Ed25519 instead of the simulator's signatures checked by
                      identity (src/sim/sim-crypto.ts); a seed runs the same either way, about 3x slower
--broken-snapshot     test only: a service whose snapshot breaks maxChunkBytes (the checker must object)
--broken-epoch-lifetime  test only, with key theft: the key registry sets no time limit on epochs, so a
                      retired one verifies until its replica's next rotation (the checker must object)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function integer(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0)
    fail(`--${name} must be a non-negative integer, got ${value}`);
  return parsed;
}

/** A worker thread (--jobs) parses the same arguments as the main thread that started it. */
const argv: string[] = isMainThread ? process.argv.slice(2) : (workerData as { argv: string[] }).argv;

const { values } = (() => {
  try {
    return parseArgs({
      args: argv,
      options: {
        jobs: { type: 'string' },
        seeds: { type: 'string' },
        seed: { type: 'string' },
        'first-seed': { type: 'string' },
        n: { type: 'string' },
        f: { type: 'string' },
        k: { type: 'string' },
        byzantine: { type: 'string' },
        'broken-quorum': { type: 'boolean' },
        'broken-view-change': { type: 'boolean' },
        'broken-snapshot': { type: 'boolean' },
        'large-value-client': { type: 'boolean' },
        'large-value-clients': { type: 'string' },
        clients: { type: 'string' },
        'client-table-chunks': { type: 'string' },
        'leader-rotation': { type: 'string' },
        'cluster-restart': { type: 'boolean' },
        'key-theft': { type: 'boolean' },
        'broken-epoch-lifetime': { type: 'boolean' },
        'key-rotation': { type: 'string' },
        recovery: { type: 'boolean' },
        'broken-guardian': { type: 'boolean' },
        'broken-suspicions': { type: 'boolean' },
        'recovery-bound-ms': { type: 'string' },
        colluding: { type: 'string' },
        'broken-fork-detection': { type: 'boolean' },
        'colluders-withhold-proofs': { type: 'boolean' },
        service: { type: 'string' },
        'service-options': { type: 'string' },
        trace: { type: 'boolean' },
        'real-crypto': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
})();
if (values.help === true) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const f = integer(values.f, 'f', 1);
const k = integer(values.k, 'k', 0);
const n = integer(values.n, 'n', 3 * f + 2 * k + 1);
if (n < 3 * f + 2 * k + 1)
  fail(`n = ${n} is too small: it must be at least 3f + 2k + 1 = ${3 * f + 2 * k + 1}`);
let byzantine: SimulationOptions['byzantine'] = 'all';
if (values.byzantine !== undefined && values.byzantine !== 'all') {
  if (values.byzantine === 'none') byzantine = 'none';
  else {
    const names = values.byzantine.split(',');
    const unknown = names.filter((name) => !isByzantineBehaviour(name));
    if (unknown.length > 0) fail(`unknown Byzantine behaviour(s): ${unknown.join(', ')}`);
    byzantine = names as ByzantineBehaviour[];
  }
}
const single = values.seed !== undefined;
const firstSeed = single ? integer(values.seed, 'seed', 1) : integer(values['first-seed'], 'first-seed', 1);
const seedCount = single ? 1 : integer(values.seeds, 'seeds', 20);
const largeValueClients = integer(values['large-value-clients'], 'large-value-clients', 0);
const clients = integer(values.clients, 'clients', DEFAULT_CORRECT_CLIENTS);
if (clients < 1 || clients > MAX_SIM_CLIENTS)
  fail(`--clients must be between 1 and ${MAX_SIM_CLIENTS}, got ${clients}`);
const clientTableChunks =
  values['client-table-chunks'] === undefined
    ? undefined
    : integer(values['client-table-chunks'], 'client-table-chunks', 4);
if (clientTableChunks === 0) fail('--client-table-chunks must be at least 1');
const leaderRotation = integer(values['leader-rotation'], 'leader-rotation', 0);
const keyTheft = values['key-theft'] === true;
const brokenEpochLifetime = values['broken-epoch-lifetime'] === true;
if (brokenEpochLifetime && !keyTheft && !(Array.isArray(byzantine) && byzantine.includes('key-thief')))
  fail('--broken-epoch-lifetime needs --key-theft (or --byzantine key-thief)');
const keyRotationModes: readonly KeyRotationMode[] = ['restart', 'in-place', 'restart-in-view-change'];
const keyRotation = values['key-rotation'] as KeyRotationMode | undefined;
if (keyRotation !== undefined && !keyRotationModes.includes(keyRotation))
  fail(`--key-rotation must be one of ${keyRotationModes.join(', ')}, got ${keyRotation}`);
const recovery = values.recovery === true;
const brokenGuardian = values['broken-guardian'] === true;
if (brokenGuardian && !recovery) fail('--broken-guardian needs --recovery');
const brokenSuspicions = values['broken-suspicions'] === true;
if (brokenSuspicions && !recovery) fail('--broken-suspicions needs --recovery');
const recoveryBoundMs =
  values['recovery-bound-ms'] === undefined
    ? undefined
    : integer(values['recovery-bound-ms'], 'recovery-bound-ms', 400);
if (recoveryBoundMs !== undefined && !recovery) fail('--recovery-bound-ms needs --recovery');
if (recoveryBoundMs !== undefined && (recoveryBoundMs < 100 || recoveryBoundMs > 60_000))
  fail('--recovery-bound-ms must be between 100 and 60000');
if (recovery && k < 1) fail('--recovery needs k >= 1 (the schedule rejuvenates k replicas at a time)');
const colluding =
  values.colluding === undefined
    ? 0
    : values.colluding === 'f+1'
      ? f + 1
      : integer(values.colluding, 'colluding', 0);
if (values.colluding !== undefined && (colluding <= f || colluding > n - 2))
  fail(`--colluding must be between f + 1 = ${f + 1} and n - 2 = ${n - 2}, got ${values.colluding}`);
if (colluding > 0 && (keyTheft || recovery || values.byzantine !== undefined))
  fail('--colluding replaces the Byzantine draw and runs without --key-theft and --recovery');
const brokenForkDetection = values['broken-fork-detection'] === true;
if (brokenForkDetection && colluding === 0) fail('--broken-fork-detection needs --colluding');
const colludersWithholdProofs = values['colluders-withhold-proofs'] === true;
if (colludersWithholdProofs && colluding === 0) fail('--colluders-withhold-proofs needs --colluding');
if (values['service-options'] !== undefined && values.service === undefined)
  fail('--service-options needs --service');
if (values.service !== undefined && values['broken-snapshot'] === true)
  fail('--broken-snapshot breaks the key-value store; it cannot be combined with --service');

/** The --service module, loaded (and its shape checked) before any seed runs. */
async function simulatedService(): Promise<LoadedServiceModule | null> {
  if (values.service === undefined) return null;
  let options: JsonValue | null = null;
  const text = values['service-options'];
  if (text !== undefined) {
    if (Buffer.byteLength(text) > SERVICE_SELECTION_LIMITS.maxOptionsBytes)
      fail(`--service-options is longer than ${SERVICE_SELECTION_LIMITS.maxOptionsBytes} bytes`);
    try {
      options = JSON.parse(text) as JsonValue;
    } catch (error) {
      fail(`--service-options is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  try {
    // Relative paths resolve against the current folder (there is no configuration file).
    return await loadServiceModule({ module: values.service, options }, join(process.cwd(), 'simulation'));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}
const service = await simulatedService();
const trace = values.trace === true;
const quiet = values.quiet === true;
const realCrypto = values['real-crypto'] === true;
const jobs = integer(values.jobs, 'jobs', 1);
if (jobs === 0) fail('--jobs must be at least 1');

const started = process.hrtime.bigint();
const totals = {
  seeds: 0,
  violations: 0,
  livenessFailures: 0,
  livenessFailuresOutsideModel: 0,
  requestsCompleted: 0,
  fastReads: 0,
  viewChanges: 0,
  stateTransfers: 0,
  evidence: 0,
  rejectedInputs: 0,
  checkpointsChecked: 0,
  largeValueRequests: 0,
  rejuvenations: 0,
  keyTheftSeeds: 0,
  keyRotations: 0,
  stolenKeyReplays: 0,
  signaturesJudged: 0,
  previousEpochSignatures: 0,
  evidenceRefused: 0,
  cutOffs: 0,
  cutOffMessagesDropped: 0,
  stolenSignaturesAccepted: 0,
  /** With --colluding: seeds whose correct replicas diverged, and those that ended in safe mode. */
  forkedSeeds: 0,
  safeModeSeeds: 0,
  simulatedSeconds: 0,
};
/** The guardians' figures (--recovery): totals, and every recovery's duration for the percentiles. */
const recoveryTotals = {
  reactiveRejuvenations: 0,
  crashRejuvenations: 0,
  retiredEpochs: 0,
  restartsFromDisk: 0,
  accusations: 0,
  maxConcurrentRejuvenations: 0,
  maxExposureMs: 0,
  maxExposureBeyondModelMs: 0,
  exposureBoundMs: 0,
  recoveriesOverBound: 0,
  crashOverlaps: 0,
  exposureOverrunsOwed: 0,
  exposureOverrunsSlowRecovery: 0,
  correctAccusedOnSuspicion: 0,
  byzantineSuspicions: 0,
  intrusionsEvicted: 0,
  intrusionsResumed: 0,
  alarms: 0,
};
const recoveryDurationsMs: number[] = [];
const failingSeeds: number[] = [];
const behaviourCounts = new Map<string, number>();

function flags(): string {
  const parts = [`--n ${n}`, `--f ${f}`];
  if (k > 0) parts.push(`--k ${k}`);
  if (values.byzantine !== undefined) parts.push(`--byzantine ${values.byzantine}`);
  if (values['broken-quorum'] === true) parts.push('--broken-quorum');
  if (values['broken-view-change'] === true) parts.push('--broken-view-change');
  if (values['broken-snapshot'] === true) parts.push('--broken-snapshot');
  if (values['large-value-client'] === true) parts.push('--large-value-client');
  if (largeValueClients > 0) parts.push(`--large-value-clients ${largeValueClients}`);
  if (clients !== DEFAULT_CORRECT_CLIENTS) parts.push(`--clients ${clients}`);
  if (clientTableChunks !== undefined) parts.push(`--client-table-chunks ${clientTableChunks}`);
  if (leaderRotation > 0) parts.push(`--leader-rotation ${leaderRotation}`);
  if (values['cluster-restart'] === true) parts.push('--cluster-restart');
  if (keyTheft) parts.push('--key-theft');
  if (brokenEpochLifetime) parts.push('--broken-epoch-lifetime');
  if (keyRotation !== undefined) parts.push(`--key-rotation ${keyRotation}`);
  if (recovery) parts.push('--recovery');
  if (recoveryBoundMs !== undefined) parts.push(`--recovery-bound-ms ${recoveryBoundMs}`);
  if (brokenGuardian) parts.push('--broken-guardian');
  if (brokenSuspicions) parts.push('--broken-suspicions');
  if (colluding > 0) parts.push(`--colluding ${colluding}`);
  if (brokenForkDetection) parts.push('--broken-fork-detection');
  if (colludersWithholdProofs) parts.push('--colluders-withhold-proofs');
  if (values.service !== undefined) parts.push(`--service ${values.service}`);
  if (values['service-options'] !== undefined) parts.push(`--service-options '${values['service-options']}'`);
  if (realCrypto) parts.push('--real-crypto');
  return parts.join(' ');
}

function report(result: SeedReport): void {
  totals.seeds++;
  totals.violations += result.violations.length;
  totals.livenessFailures += result.livenessFailure === null ? 0 : 1;
  totals.livenessFailuresOutsideModel += result.livenessOutsideModel === null ? 0 : 1;
  totals.requestsCompleted += result.requestsCompleted;
  totals.fastReads += result.fastReads;
  totals.viewChanges += result.viewChanges;
  totals.stateTransfers += result.stateTransfers;
  totals.evidence += result.evidence;
  totals.rejectedInputs += result.rejectedInputs;
  totals.checkpointsChecked += result.checkpointsChecked;
  if (result.largeValueRequests !== null)
    totals.largeValueRequests += Object.values(result.largeValueRequests).reduce(
      (sum, count) => sum + count,
      0,
    );
  totals.rejuvenations += result.rejuvenations;
  totals.keyTheftSeeds += result.keyTheft ? 1 : 0;
  totals.keyRotations += result.keyRotations;
  totals.stolenKeyReplays += result.stolenKeyReplays;
  totals.signaturesJudged += result.signaturesJudged;
  totals.previousEpochSignatures += result.previousEpochSignatures;
  totals.evidenceRefused += result.evidenceRefused;
  totals.cutOffs += result.cutOffs;
  totals.cutOffMessagesDropped += result.cutOffMessagesDropped;
  totals.stolenSignaturesAccepted += result.stolenSignaturesAccepted;
  totals.simulatedSeconds += result.simulatedMs / 1000;
  if (result.colluding !== null) {
    totals.forkedSeeds += result.colluding.forkedSequences > 0 ? 1 : 0;
    totals.safeModeSeeds += result.colluding.safeMode.length > 0 ? 1 : 0;
  }
  if (result.recovery !== null) {
    const figures = result.recovery;
    totals.rejuvenations += figures.rejuvenations;
    recoveryTotals.reactiveRejuvenations += figures.reactiveRejuvenations;
    recoveryTotals.crashRejuvenations += figures.crashRejuvenations;
    recoveryTotals.retiredEpochs += figures.retiredEpochs;
    recoveryTotals.restartsFromDisk += figures.restartsFromDisk;
    recoveryTotals.accusations += figures.accusations;
    recoveryTotals.recoveriesOverBound += figures.recoveriesOverBound;
    recoveryTotals.alarms += figures.alarms;
    recoveryTotals.crashOverlaps += figures.crashOverlaps;
    recoveryTotals.exposureOverrunsOwed += figures.exposureOverrunsOwed;
    recoveryTotals.exposureOverrunsSlowRecovery += figures.exposureOverrunsSlowRecovery;
    recoveryTotals.correctAccusedOnSuspicion += figures.correctAccusedOnSuspicion;
    recoveryTotals.byzantineSuspicions += figures.byzantineSuspicions;
    recoveryTotals.intrusionsEvicted += figures.intrusionsEvicted;
    recoveryTotals.intrusionsResumed += figures.intrusionsResumed;
    recoveryTotals.maxConcurrentRejuvenations = Math.max(
      recoveryTotals.maxConcurrentRejuvenations,
      figures.maxConcurrentRejuvenations,
    );
    recoveryTotals.maxExposureMs = Math.max(recoveryTotals.maxExposureMs, figures.maxExposureMs);
    recoveryTotals.maxExposureBeyondModelMs = Math.max(
      recoveryTotals.maxExposureBeyondModelMs,
      figures.maxExposureBeyondModelMs,
    );
    recoveryTotals.exposureBoundMs = figures.exposureBoundMs;
    recoveryDurationsMs.push(...figures.recoveryDurationsMs);
  }
  for (const { behaviours } of result.byzantine) {
    for (const behaviour of behaviours)
      behaviourCounts.set(behaviour, (behaviourCounts.get(behaviour) ?? 0) + 1);
  }
  const failed = result.violations.length > 0 || result.livenessFailure !== null;
  if (trace) for (const line of result.trace) process.stdout.write(`${line}\n`);
  if (failed) {
    failingSeeds.push(result.seed);
    process.stdout.write(
      `seed ${result.seed} FAILED (replay: npm run sim -- --seed ${result.seed} ${flags()} --trace)\n`,
    );
    for (const problem of result.violations) process.stdout.write(`  violation: ${problem}\n`);
    if (result.livenessFailure !== null) process.stdout.write(`  liveness: ${result.livenessFailure}\n`);
  } else if (result.colluding !== null) {
    if (!quiet) {
      const { members, misled, equivocations, forkedSequences, safeMode } = result.colluding;
      process.stdout.write(
        `seed ${result.seed} ok: colluders ${members.map((id) => `r${id}`).join(',')} misled ` +
          `${misled.map((id) => `r${id}`).join(',')}: ${equivocations} equivocations, ` +
          (forkedSequences === 0 ? 'no fork' : `${forkedSequences} forked sequences`) +
          (safeMode.length === 0
            ? ', no safe mode'
            : `; safe mode at ${safeMode
                .map((entry) => `r${entry.replica} (culprits ${entry.culprits.join(',')})`)
                .join(', ')}`) +
          `; ${result.requestsCompleted} requests\n`,
      );
    }
  } else if (result.livenessOutsideModel !== null) {
    process.stdout.write(
      `seed ${result.seed}: liveness not guaranteed for n = ${n}, f = ${f} with key rotations ` +
        `(n < 3f + 2k + 1 with k = 1): ${result.livenessOutsideModel}\n`,
    );
  } else if (!quiet) {
    const who =
      result.byzantine.map((entry) => `r${entry.replica}:${entry.behaviours.join('+')}`).join(' ') || 'none';
    process.stdout.write(
      `seed ${result.seed} ok: ${result.requestsCompleted} requests, ${result.viewChanges} view changes, ` +
        `${result.stateTransfers} state transfers, ${result.evidence} evidence, ` +
        `${result.checkpointsChecked} checkpoints checked; byzantine ${who}` +
        `${result.largeValueRequests === null ? '' : '; large-value client'}` +
        `${result.clusterRestarted ? '; cluster restart' : ''}` +
        `${result.rejuvenations > 0 ? '; rejuvenation' : ''}` +
        `${result.recovery === null ? '' : `; ${result.recovery.rejuvenations} rejuvenations (${result.recovery.reactiveRejuvenations} reactive)`}` +
        `${result.keyTheft ? `; ${result.keyRotations} key rotations, ${result.stolenKeyReplays} stolen-key replays` : ''}\n`,
    );
  }
}

function runSeed(seed: number): SeedReport {
  return runSimulation({
    seed,
    n,
    f,
    k,
    byzantine,
    brokenQuorum: values['broken-quorum'] === true,
    brokenViewChange: values['broken-view-change'] === true,
    brokenSnapshot: values['broken-snapshot'] === true,
    largeValueClient: values['large-value-client'] === true,
    largeValueClients,
    ...(clients === DEFAULT_CORRECT_CLIENTS ? {} : { clients }),
    ...(clientTableChunks === undefined ? {} : { clientTableChunks }),
    ...(leaderRotation === 0 ? {} : { leaderRotationCheckpoints: leaderRotation }),
    clusterRestart: values['cluster-restart'] === true,
    keyTheft,
    brokenEpochLifetime,
    recovery,
    brokenGuardian,
    brokenSuspicions,
    ...(recoveryBoundMs === undefined ? {} : { recoveryBoundMs }),
    ...(colluding === 0 ? {} : { colluding, brokenForkDetection, colludersWithholdProofs }),
    ...(keyRotation === undefined ? {} : { keyRotation }),
    ...(service === null ? {} : { service: { module: service.module, options: service.options } }),
    trace,
    crypto: realCrypto ? 'real' : 'simulated',
  });
}

/**
 * A worker thread running this file. Run from source (through tsx), the worker registers tsx's
 * loader itself: node 20 does not hand a worker the main thread's loader hooks.
 */
function startWorker(): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL(self), { workerData: { argv } });
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(self)}); });`;
  return new Worker(code, { eval: true, workerData: { argv } });
}

/**
 * Runs the seeds in `jobs` worker threads, each running this file: a worker asks for the next
 * seed whenever it finishes one, and the reports are handed on in seed order.
 */
async function runInWorkers(seeds: readonly number[], onReport: (result: SeedReport) => void): Promise<void> {
  const done = new Map<number, SeedReport>();
  let nextToReport = 0;
  let nextToRun = 0;
  await new Promise<void>((resolve, reject) => {
    let running = 0;
    const feed = (worker: Worker): void => {
      if (nextToRun < seeds.length) {
        worker.postMessage(seeds[nextToRun++]);
        return;
      }
      void worker.terminate();
      if (--running === 0) resolve();
    };
    for (let index = 0; index < Math.min(jobs, seeds.length); index++) {
      const worker = startWorker();
      running++;
      worker.on('message', (result: SeedReport) => {
        done.set(result.seed, result);
        while (nextToReport < seeds.length && done.has(seeds[nextToReport]!)) {
          const seed = seeds[nextToReport++]!;
          onReport(done.get(seed)!);
          done.delete(seed);
        }
        feed(worker);
      });
      worker.on('error', reject);
      feed(worker);
    }
  });
}

if (!isMainThread) {
  const port = parentPort!;
  port.on('message', (seed: number) => port.postMessage(runSeed(seed)));
} else {
  const seeds = Array.from({ length: seedCount }, (_, index) => firstSeed + index);
  if (jobs === 1 || seeds.length === 1) for (const seed of seeds) report(runSeed(seed));
  else await runInWorkers(seeds, report);
  summarize();
}

function durationFigures(): { recoveryDurationMaxMs: number; recoveryDurationP50Ms: number } {
  const sorted = [...recoveryDurationsMs].sort((a, b) => a - b);
  return {
    recoveryDurationMaxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    recoveryDurationP50Ms: sorted.length === 0 ? 0 : sorted[Math.floor((sorted.length - 1) / 2)]!,
  };
}

function summarize(): void {
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const summary = {
    ...totals,
    simulatedSeconds: Math.round(totals.simulatedSeconds),
    n,
    f,
    k,
    service: service?.module.name ?? 'kv',
    failingSeeds,
    byzantineBehaviours: Object.fromEntries(behaviourCounts),
    crypto: realCrypto ? 'real' : 'simulated',
    ...(recovery ? { recovery: true, ...recoveryTotals, ...durationFigures() } : {}),
    jobs,
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    requestsPerWallSecond: Math.round(totals.requestsCompleted / wallSeconds),
    seedsPerSecond: Math.round((totals.seeds / wallSeconds) * 100) / 100,
    simulatedSecondsPerWallSecond: Math.round((totals.simulatedSeconds / wallSeconds) * 10) / 10,
  };
  process.stdout.write(
    `${totals.seeds} seeds, ${summary.simulatedSeconds} simulated s in ${summary.wallSeconds} s: ` +
      `${summary.seedsPerSecond} seeds/s, ${summary.simulatedSecondsPerWallSecond} simulated s per wall s ` +
      `(${summary.crypto} signatures)\n`,
  );
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  // exitCode, not exit(): a trace piped to another process must be written out whole first.
  process.exitCode = failingSeeds.length === 0 ? 0 : 1;
}
