/**
 * The simulator's agenda: events ordered by (time, insertion order), so runs are deterministic
 * even when many events share a millisecond.
 */
interface Entry {
  readonly time: number;
  readonly order: number;
  readonly run: () => void;
}

export class EventQueue {
  readonly #heap: Entry[] = [];
  #order = 0;
  #now = 0;

  get now(): number {
    return this.#now;
  }

  get size(): number {
    return this.#heap.length;
  }

  at(time: number, run: () => void): void {
    const entry: Entry = { time: Math.max(time, this.#now), order: this.#order++, run };
    const heap = this.#heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      const swapped = heap[index]!;
      heap[index] = heap[parent]!;
      heap[parent] = swapped;
      index = parent;
    }
  }

  after(delay: number, run: () => void): void {
    this.at(this.#now + delay, run);
  }

  /** Runs the next event; false when there is none or it lies beyond `until`. */
  runNext(until: number): boolean {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined || top.time > until) return false;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === index) break;
        const swapped = heap[index]!;
        heap[index] = heap[smallest]!;
        heap[smallest] = swapped;
        index = smallest;
      }
    }
    this.#now = top.time;
    top.run();
    return true;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.time < b.time || (a.time === b.time && a.order < b.order);
}
