/**
 * A short simulated 4-replica cluster under attack, told as a timeline: `npm run demo:sim`.
 * Replica 0 leads view 0 and equivocates; the network drops, delays and partitions; a replica
 * crashes and comes back. The timeline shows the attack being proven and the cluster moving on.
 */
import { runSimulation } from './simulator.js';

const interesting = [
  /CRASH|RESTART|PARTITION|HEAL|EVIDENCE|VIOLATION/,
  /view-change-started|view-installed|equivocation-detected|conflicting-checkpoint/,
  /state-transfer-(started|completed)|safety-alarm/,
];

const seed = Number(process.argv[2] ?? 2026);
const report = runSimulation({ seed, n: 4, f: 1, byzantine: ['equivocate'], trace: true });
process.stdout.write(`Simulated Phalanx cluster: n = 4, f = 1, seed ${seed}\n`);
process.stdout.write(
  `Byzantine: ${report.byzantine.map((entry) => `replica ${entry.replica} (${entry.behaviours.join(', ')})`).join('; ')}\n\n`,
);
let shown = 0;
let lastCheckpoint = 0;
for (const line of report.trace) {
  const checkpoint = /r(\d) checkpoint-stable \{"sequence":(\d+)/.exec(line);
  if (checkpoint !== null && Number(checkpoint[2]) >= lastCheckpoint + 64) {
    lastCheckpoint = Number(checkpoint[2]);
    process.stdout.write(`${line}\n`);
    continue;
  }
  if (!interesting.some((pattern) => pattern.test(line))) continue;
  if (shown++ > 120) continue;
  process.stdout.write(`${line.length > 160 ? `${line.slice(0, 157)}...` : line}\n`);
}
process.stdout.write(
  `\n${report.requestsCompleted} client requests completed (${report.fastReads} fast reads) in ` +
    `${(report.simulatedMs / 1000).toFixed(1)} simulated seconds; ${report.viewChanges} view change(s), ` +
    `${report.stateTransfers} state transfer(s), ${report.evidence} piece(s) of evidence.\n`,
);
const verdict =
  report.violations.length === 0 && report.livenessFailure === null
    ? 'All checkers passed: agreement, validity, exactly-once, linearizability, liveness.'
    : `CHECKERS FAILED: ${[...report.violations, report.livenessFailure ?? ''].join('; ')}`;
process.stdout.write(`${verdict}\n`);
process.exit(report.violations.length === 0 && report.livenessFailure === null ? 0 : 1);
