/**
 * CPU time of a process tree from /proc/<pid>/stat: what `phalanx bench` divides by the
 * operations it measured. Machine noise moves CPU time per operation far less than wall-clock
 * throughput, so it is the figure to compare across runs. Linux only; elsewhere it reports null.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSample {
  /** The root process and every descendant alive at the sample, with the children they reaped. */
  readonly treeMicros: number;
  /** The root process alone (its own threads). */
  readonly rootMicros: number;
}

interface ProcessTimes {
  readonly parent: number;
  /** utime + stime: this process's threads. */
  readonly own: number;
  /** cutime + cstime: its children that exited and were reaped (a rejuvenated replica's, say). */
  readonly reaped: number;
}

let ticksPerSecond: number | null = null;

function clockTicksPerSecond(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = 100;
    }
    if (!Number.isSafeInteger(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

function readTimes(pid: number): ProcessTimes | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its end.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const number = (index: number): number => Number(fields[index]);
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  return { parent: number(1), own: number(11) + number(12), reaped: number(13) + number(14) };
}

/**
 * CPU time used so far by `root` and its descendants, but not the subtrees of `excluded` (an
 * attacker process the bench starts, whose CPU is not the system's); null where /proc is missing.
 */
export function sampleProcessTreeCpu(
  root: number = process.pid,
  excluded: ReadonlySet<number> = new Set(),
): CpuSample | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const times = new Map<number, ProcessTimes>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const sample = readTimes(Number(entry));
    if (sample !== null) times.set(Number(entry), sample);
  }
  const rootTimes = times.get(root);
  if (rootTimes === undefined) return null;
  const children = new Map<number, number[]>();
  for (const [pid, sample] of times) {
    const siblings = children.get(sample.parent);
    if (siblings === undefined) children.set(sample.parent, [pid]);
    else siblings.push(pid);
  }
  let ticks = 0;
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (excluded.has(pid)) continue;
    const sample = times.get(pid);
    if (sample === undefined) continue;
    ticks += sample.own + sample.reaped;
    pending.push(...(children.get(pid) ?? []));
  }
  const microsPerTick = 1_000_000 / clockTicksPerSecond();
  return { treeMicros: ticks * microsPerTick, rootMicros: rootTimes.own * microsPerTick };
}
