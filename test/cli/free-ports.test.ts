/**
 * Test and bench clusters take their listening ports from below the ephemeral range, so a
 * replica that is down for a rejuvenation finds its port free again when it comes back.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { freePortRange } from '../../src/cli/bench.js';

/** Where the chosen range must end: the ephemeral range's start, or Linux's default when that is unusable. */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isSafeInteger(low) && low > 10_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

describe('freePortRange', () => {
  it('returns a run of bindable loopback ports that ends below the ephemeral range', async () => {
    for (let round = 0; round < 5; round++) {
      const count = 307;
      const base = await freePortRange(count);
      assert.ok(base >= 10_000, `base ${base}`);
      assert.ok(base + count <= ephemeralStart(), `range ${base}..${base + count - 1}`);
      for (const port of [base, base + Math.floor(count / 2), base + count - 1]) {
        await new Promise<void>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
        });
      }
    }
  });
});
