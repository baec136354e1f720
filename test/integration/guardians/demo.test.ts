/**
 * `phalanx demo` (what `npm start` runs) end to end: it starts the guardians and replicas, the
 * dashboard and a workload, takes a replica over, prints how the cluster evicts it, and stops
 * every process on Ctrl-C (SIGINT).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { builtEntryPoint } from '../built-code.js';
import { type TestCluster, startTestCluster, waitFor } from '../helpers.js';

describe('phalanx demo', { timeout: 300_000 }, () => {
  let test: TestCluster | undefined;

  after(async () => {
    await test?.stop();
  });

  it('shows an intrusion detected and evicted, with the workload running, and stops cleanly', async () => {
    test = await startTestCluster({
      f: 1,
      k: 1,
      recovery: { recoveryBoundMs: 4000 },
      allowFaultInjection: true,
      start: false,
    });
    const [executable, ...prefix] = builtEntryPoint();
    const child = spawn(
      executable!,
      [
        ...prefix,
        'demo',
        '--config',
        test.config.source,
        '--first-intrusion',
        '3',
        '--intrusion-every',
        '300',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(
        'the dashboard URL',
        async () => /dashboard: http:\/\/127\.0\.0\.1:\d+/.test(output),
        60_000,
      );
      const intrusion = await waitFor(
        'the intrusion',
        async () => /INTRUSION: replica (\d) is taken over \(lie-in-replies\)/.exec(output),
        60_000,
      );
      const target = intrusion[1]!;
      // Evicted: by the evidence and a reactive slot, or by its own proactive slot if that comes
      // first (the evidence itself is checked strictly in detection.test.ts).
      const afterIntrusion = (): string => output.slice(intrusion.index);
      await waitFor(
        `replica ${target} evicted`,
        async () =>
          // Done, over T_D, or ended unfinished at its deadline: in each the intruder's process was
          // replaced and its keys retired (the line names the new key epoch); under a loaded suite
          // the new process may still be catching up when the slot ends (2026-12-02).
          new RegExp(
            `replica ${target}: (reactive|proactive) rejuvenation (done|took|ended UNFINISHED)[^\\n]*new key epoch`,
          ).test(afterIntrusion()),
        // Under load (CI, 2026-12-02) a kept-disk slot owed another replica a reactive rejuvenation
        // first and 120 s passed; the target's own proactive slot comes within T_P + T_D anyway.
        220_000,
      ).catch((error: unknown) => {
        throw new Error(`${error instanceof Error ? error.message : String(error)}; demo output:\n${output}`);
      });
      if (!new RegExp(`EVIDENCE against replica ${target}: `).test(output))
        process.stdout.write(`# replica ${target} was rejuvenated before any evidence was printed\n`);
    } finally {
      child.kill('SIGINT');
    }
    const code = await exited;
    assert.equal(code, 0, output);
    assert.match(output, /all guardians and replicas stopped/);
    assert.doesNotMatch(output, /workload operation failed/);
  });
});
