import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { sampleProcessTreeCpu } from '../../src/cli/process-cpu.js';

describe('CPU time of a process tree from /proc', () => {
  it('counts a busy child in the tree and not in the root', async () => {
    const before = sampleProcessTreeCpu();
    assert.ok(before !== null, 'this machine has /proc');
    // A child that spins until it has used 300 ms of CPU, then waits to be sampled before it exits.
    const child = spawn(
      process.execPath,
      [
        '-e',
        'while (process.cpuUsage().user < 300_000); process.stdout.write("done\\n"); setTimeout(() => {}, 5000);',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const during = sampleProcessTreeCpu()!;
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const childMicros = during.treeMicros - during.rootMicros - (before.treeMicros - before.rootMicros);
    // What it spun, less a clock tick of rounding.
    assert.ok(childMicros >= 280_000, `the child used ${childMicros} µs`);
    assert.ok(during.rootMicros >= before.rootMicros);
  });

  it('reports null for a process that does not exist', () => {
    assert.equal(sampleProcessTreeCpu(2 ** 22 + 7), null);
  });
});
