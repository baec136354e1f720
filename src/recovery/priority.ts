/**
 * CPU priority of a replica process while it recovers. A rejuvenated process loads, checks and
 * fetches state: work that competes for the same cores as the replicas serving clients. The
 * guardian runs it at a low priority while the recovery has slack and gives it back its normal
 * priority when the recovery ends, or after a quarter of T_D at the latest so the bound still holds.
 *
 * Raising a priority back needs privilege (root, or CAP_SYS_NICE on Linux): a guardian without
 * it leaves priorities alone rather than leave its replica slow for good.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Nice value of a recovering process: scheduled mostly when the serving replicas leave a core idle. */
export const RECOVERING_NICE = 19;

/**
 * Share of T_D a recovering process runs at RECOVERING_NICE at most. Half was measured too much:
 * on a two-core host whose serving replicas keep both cores busy, a process at nice 19 gets a
 * few percent of a core, so the low-priority part of a recovery is mostly waiting, and the rest
 * of T_D was then too short for a state transfer with one corrupt source (8.0 s of T_D = 8 s).
 */
export const RECOVERING_NICE_SHARE_OF_T_D = 0.25;

const CAP_SYS_NICE_BIT = 23n;

/** Whether this process may raise a priority it lowered (root, or CAP_SYS_NICE in effect). */
export function canRestorePriority(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return effective !== undefined && ((BigInt(`0x${effective}`) >> CAP_SYS_NICE_BIT) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * Sets the nice value of every thread of `pid` (on Linux a priority belongs to a thread, and
 * setpriority(pid) alone would leave the libuv pool threads where they were). Returns false if
 * the process is gone or a thread refused.
 */
export function setProcessNice(pid: number, nice: number): boolean {
  let threads: number[];
  try {
    threads = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    // No /proc (not Linux), or the process is gone: the process-wide call is all there is.
    try {
      setPriority(pid, nice);
      return true;
    } catch {
      return false;
    }
  }
  let allSet = true;
  for (const thread of threads) {
    try {
      setPriority(thread, nice);
    } catch {
      // A thread that ended meanwhile is fine; one that refused is not.
      if (threadExists(pid, thread)) allSet = false;
    }
  }
  return allSet;
}

function threadExists(pid: number, thread: number): boolean {
  try {
    getPriority(thread);
    return readdirSync(`/proc/${pid}/task`).includes(String(thread));
  } catch {
    return false;
  }
}
