#!/usr/bin/env node
/**
 * The `phalanx` command. Every subcommand validates its options and its configuration file and
 * explains what is wrong in one line per problem; it exits non-zero on failure.
 *
 *   phalanx keygen [--dir .phalanx] [--f 1] [--k 0]      cluster keys and configuration
 *   phalanx up [--config FILE] [--workload]               a local cluster (guardians + replicas) + dashboard
 *   phalanx demo [--config FILE]                          up + workload + an intruder the guardians evict
 *   phalanx replica --config FILE --id I                  one replica (one per host)
 *   phalanx guardian --config FILE --id I                 one guardian (runs and rejuvenates its replica)
 *   phalanx manifest [--verify]                           sign (or check) the code bundle at install time
 *   phalanx kv put|get|del|list|cas ...                   use the key-value store
 *   phalanx status [--config FILE] [--json]               replicas, guardians and a health verdict
 *   phalanx bench [--clients C --requests R ...]          throughput, latency and CPU per operation
 *   phalanx bench --sweep 1,10,50,100                     a table, with the unreplicated ceiling per point
 *   phalanx bench recovery [--state-mb M]                 rejuvenation time with M MB of state
 *   phalanx bench attack [--attacks a,b --guardians]      throughput and latency under each attack
 *
 * A usage error (an unknown option, a numeric option outside its range: OPTION_RANGES in
 * options.ts, a bad configuration file) exits 2 from every command.
 */
import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerGuardian } from './guardian.js';
import { registerKeygen } from './keygen.js';
import { registerKv } from './kv.js';
import { registerManifest } from './manifest.js';
import { registerReplica } from './replica.js';
import { registerStatus } from './status.js';
import { USAGE_EXIT_CODE } from './options.js';
import { registerUp } from './up.js';

const program = new Command();
program
  .name('phalanx')
  .description('Intrusion-tolerant state machine replication: run and use a Phalanx cluster')
  .showHelpAfterError()
  // A subcommand's options belong to it: `bench attack --clients 2` is not `bench --clients 2`
  // (bench enables the same for its own subcommands).
  .enablePositionalOptions()
  .configureOutput({ outputError: (text, write) => write(`phalanx: ${text}`) })
  // Every subcommand inherits this: a usage error (unknown option, a value out of its range)
  // exits USAGE_EXIT_CODE, never a status a script reads as an answer (`kv get`'s 1: no value).
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
  .addHelpText(
    'after',
    '\nA usage error (an unknown option, a number outside its allowed range, a bad configuration\n' +
      "file, printed as file:line:column) exits 2 from every command; see each command's --help.\n",
  );
registerKeygen(program);
registerUp(program);
registerReplica(program);
registerGuardian(program);
registerManifest(program);
registerKv(program);
registerStatus(program);
registerBench(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`phalanx: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
