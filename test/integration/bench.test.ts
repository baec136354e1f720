/**
 * `phalanx bench` as a user runs it, on real processes: the unreplicated server serves the same
 * clients through the same transport and storage, and every result carries CPU time per
 * operation. These check what the figures are made of, never how large they are (these machines
 * are shared: figures come from the bench command, not from tests).
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { builtEntryPoint } from './built-code.js';

const run = promisify(execFile);

async function bench(...args: string[]): Promise<string[]> {
  const [executable, ...prefix] = builtEntryPoint();
  const { stdout } = await run(executable!, [...prefix, 'bench', ...args], { maxBuffer: 1024 * 1024 });
  return stdout.trim().split('\n');
}

/** A short measured run: 200 requests after 20 of warm-up, no timed warm-up. */
const SHORT_RUN = ['--requests', '200', '--warmup', '20', '--warmup-seconds', '0'];

describe('phalanx bench', { timeout: 240_000 }, () => {
  it('--unreplicated measures the one-process server with CPU time per operation', async () => {
    const lines = await bench(
      '--unreplicated',
      '--clients',
      '2',
      '--requests',
      '300',
      '--warmup',
      '50',
      '--warmup-seconds',
      '0',
    );
    const result = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    assert.equal(result.unreplicated, true);
    assert.equal(result.n, 1);
    assert.equal(result.errors, 0);
    assert.equal(result.requests, 300);
    // No ordering, so no batches.
    assert.equal(result.requests_per_batch, null);
    assert.ok((result.throughput_ops_s as number) > 0);
    const total = result.cpu_us_per_op as number;
    const clients = result.cpu_us_per_op_clients as number;
    assert.ok(total > 0 && clients > 0, `CPU per operation ${total} µs, clients ${clients} µs`);
    // The server's process is counted too: the whole is more than the clients' share.
    assert.ok(total > clients, `CPU per operation ${total} µs, clients alone ${clients} µs`);
  });

  it('--client-signatures runs a cluster that requires signed requests, and the clients sign them', async () => {
    const lines = await bench('--client-signatures', '--clients', '2', ...SHORT_RUN);
    const result = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    assert.equal(result.client_signatures, true);
    assert.equal(
      result.errors,
      0,
      'a leader proposes only signed requests: unsigned ones would never complete',
    );
    assert.equal(result.requests, 200);
  });

  it('--sweep prints a table and one JSON line per point, each with its unreplicated figure', async () => {
    const lines = await bench('--sweep', '1,2', ...SHORT_RUN);
    assert.match(lines[0]!, /\| *clients \| *ops\/s \| *p50 ms .* unreplicated ops\/s .*\| *ratio \|/);
    const points = lines
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      points.map((point) => point.clients),
      [1, 2],
    );
    for (const point of points) {
      assert.equal(point.n, 4);
      assert.equal(point.unreplicated, false);
      assert.equal(point.errors, 0);
      for (const field of [
        'throughput_ops_s',
        'latency_ms_p50',
        'latency_ms_p99',
        'cpu_us_per_op',
        'unreplicated_throughput_ops_s',
        'unreplicated_cpu_us_per_op',
        'replicated_ratio',
        'requests_per_batch',
      ])
        assert.ok(typeof point[field] === 'number' && point[field] > 0, `${field}: ${String(point[field])}`);
    }
    assert.ok(points.every((point) => point.client_signatures === false));
    // One client has one request outstanding: every batch holds one request.
    assert.equal(points[0]!.requests_per_batch, 1);
    // The table has a row per point.
    assert.equal(lines.filter((line) => /^\| +\d+ \|/.test(line)).length, 2);
  });
});
