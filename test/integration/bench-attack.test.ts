/**
 * `phalanx bench attack` as a user runs it, on real processes, at its smallest: the fault-free
 * point and two attacks (a flooding backup, and a flooding client in a process of its own), each
 * on a cluster of its own. Checks what the output
 * is made of (a table, then one JSON line per point with the fields the issue names), never how
 * large the figures are: those come from the command on a quiet machine (docs/performance.md).
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { builtEntryPoint } from './built-code.js';

const run = promisify(execFile);

describe('phalanx bench attack', { timeout: 240_000 }, () => {
  it('prints a table and one JSON line per point: fault-free, the attacks, fault-free again', async () => {
    const [executable, ...prefix] = builtEntryPoint();
    const { stdout } = await run(
      executable!,
      [
        ...prefix,
        'bench',
        'attack',
        '--attacks',
        'flood,client-flood',
        '--requests',
        '300',
        '--clients',
        '2',
      ],
      { maxBuffer: 1024 * 1024 },
    );
    const lines = stdout.trim().split('\n');
    assert.match(
      lines[0]!,
      /^\| attack +\| culprit +\| +ops\/s \| +ratio \| .*\| +p99 ratio \| .*detected after/,
    );
    const points = lines
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      points.map((point) => point.attack),
      ['none', 'flood', 'client-flood', 'none'],
    );
    for (const point of points) {
      assert.equal(point.error, undefined, String(point.error));
      assert.equal(point.n, 4);
      assert.equal(point.clients, 2);
      assert.equal(point.requests, 300, 'the window is long enough for 300 requests of two clients');
      assert.equal(point.completed, true);
      assert.equal(point.errors, 0);
      assert.deepEqual(point.crashed, [], 'no replica exits');
      for (const field of [
        'throughput_ops_s',
        'throughput_ratio',
        'p99_ratio',
        'latency_ms_p99',
        'cpu_us_per_op',
      ])
        assert.ok(typeof point[field] === 'number' && point[field] > 0, `${field}: ${String(point[field])}`);
      assert.equal(typeof point.view_changes, 'number');
      assert.ok(
        point.detected_after_s === null || typeof point.detected_after_s === 'number',
        `detected_after_s: ${String(point.detected_after_s)}`,
      );
    }
    const [faultFree, flood, clientFlood, faultFreeAgain] = points;
    assert.equal(faultFree!.culprit, null);
    assert.equal(faultFreeAgain!.culprit, null);
    // Both fault-free points are compared with their mean: their ratios lie on either side of 1.
    const spread = [faultFree!.throughput_ratio as number, faultFreeAgain!.throughput_ratio as number];
    assert.ok(Math.min(...spread) <= 1 && Math.max(...spread) >= 1, `fault-free ratios ${spread.join(', ')}`);
    assert.equal(flood!.culprit, 'replica 3');
    assert.equal(typeof flood!.meets_target, 'boolean');
    // The flooder's garbage is refused and logged: that is its detection.
    assert.equal(flood!.detected_by, 'input refused');
    // The flooding client ran (in its own process, `bench attack-client`) and was answered.
    assert.equal(clientFlood!.culprit, 'client attacker-flood');
    assert.ok(
      typeof clientFlood!.attacker_operations === 'number' && clientFlood!.attacker_operations > 0,
      `attacker operations: ${String(clientFlood!.attacker_operations)}`,
    );
    // One row per point in the table.
    assert.equal(lines.filter((line) => /^\| (none|flood|client-flood) /.test(line)).length, 4);
  });
});
