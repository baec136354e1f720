/** What the guardian integration tests share: a steady client workload and report filtering. */
import { performance } from 'node:perf_hooks';
import type { KvClient } from '../../../src/apps/kv/client.js';
import { decode, encode } from '../helpers.js';

/**
 * A steady client: writes its keys and reads each back, and counts anything that goes wrong. At
 * most `operationsPerSecond` (a service's steady load, not a saturating benchmark: six guardians
 * and six replicas already share two cores, and recoveries are measured against T_D).
 */
/** Errors a workload keeps (the first ones tell what went wrong; the count says how often). */
const MAX_RECORDED_ERRORS = 100;

export class Workload {
  completed = 0;
  /** Operations that failed, counting those beyond MAX_RECORDED_ERRORS. */
  failed = 0;
  readonly errors: string[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(kv: KvClient, prefix: string, operationsPerSecond = 100) {
    this.#done = this.#run(kv, prefix, operationsPerSecond);
  }

  async #run(kv: KvClient, prefix: string, operationsPerSecond: number): Promise<void> {
    const started = performance.now();
    for (let index = 0; this.#running; index++) {
      const key = `${prefix}/${index % 50}`;
      try {
        await kv.put(key, encode(`value ${index}`));
        const read = decode(await kv.get(key));
        if (read !== `value ${index}`) this.errors.push(`read ${String(read)} after writing value ${index}`);
        this.completed += 2;
      } catch (error) {
        // Bounded, and paced like a success: a client closed under the loop (a failed test's
        // clean-up) rejects at once, and a loop that never waits on a timer starves the event
        // loop, so the test file never gets to stop its cluster.
        if (this.errors.length < MAX_RECORDED_ERRORS)
          this.errors.push(error instanceof Error ? error.message : String(error));
        this.failed++;
      }
      const due = started + ((this.completed + this.failed) * 1000) / operationsPerSecond;
      const wait = Math.max(1, due - performance.now());
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

export { guardiansUp as up } from '../../../src/runtime/guardian-report.js';
