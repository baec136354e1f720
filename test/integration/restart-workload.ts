/**
 * What the whole-cluster restart tests share: a writer that records every acknowledged write
 * (each under a key of its own, so a write cut off by a crash can never shadow one that was
 * acknowledged), and the processes a replica or guardian process started, to kill them too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { KvClient } from '../../src/apps/kv/client.js';
import { encode, waitFor } from './helpers.js';

export class AcknowledgedWrites {
  /** key → value, for every put the cluster acknowledged. */
  readonly acknowledged = new Map<string, string>();
  readonly errors: string[] = [];
  #running = true;
  readonly #loop: Promise<void>;

  constructor(store: KvClient, prefix: string) {
    this.#loop = this.#run(store, prefix);
  }

  async #run(store: KvClient, prefix: string): Promise<void> {
    for (let index = 0; this.#running; index++) {
      const key = `${prefix}/${index}`;
      const value = `${prefix}:${index}`;
      try {
        await store.put(key, encode(value));
        this.acknowledged.set(key, value);
      } catch (error) {
        // A crash of the whole cluster fails the write in flight: it may or may not have happened.
        if (this.#running) this.errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  }

  async until(count: number, timeoutMs = 60_000): Promise<void> {
    const target = this.acknowledged.size + count;
    await waitFor(
      `${count} more acknowledged writes`,
      async () => this.acknowledged.size >= target,
      timeoutMs,
    );
  }

  /** Stops writing; resolves once the write in flight has ended (or failed). */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** Stops writing without waiting: the cluster is about to be killed under the write in flight. */
  halt(): Promise<void> {
    this.#running = false;
    return this.#loop;
  }
}

/** Every process descended from `pid` (children, their children, ...), read from /proc. */
export function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it exited meanwhile
    }
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    const children = parents.get(parent) ?? [];
    children.push(Number(entry));
    parents.set(parent, children);
  }
  const found: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    for (const child of parents.get(pending.pop()!) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found;
}

/** SIGKILL to processes this test started (through the cluster), ignoring those already gone. */
export function killNow(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already exited
    }
  }
}
