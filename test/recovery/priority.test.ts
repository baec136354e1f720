import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, test } from 'node:test';
import { canRestorePriority, RECOVERING_NICE, setProcessNice } from '../../src/recovery/priority.js';

describe('recovering process priority', () => {
  test('every thread of a process is lowered, and raised back when this process may', async () => {
    // A node child has several threads (libuv pool, V8 workers): all of them must move.
    const child = spawn(process.execPath, ['-e', "setInterval(() => {}, 1000); console.log('ready')"], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      // Started (on a loaded machine that can take seconds), then a moment for its threads to settle.
      await new Promise((resolve) => child.stdout.once('data', resolve));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const pid = child.pid!;
      const threads = readdirSync(`/proc/${pid}/task`).map(Number);
      assert.ok(threads.length > 1, 'node runs more than one thread');
      assert.equal(setProcessNice(pid, RECOVERING_NICE), true);
      for (const thread of threads) assert.equal(getPriority(thread), RECOVERING_NICE, `thread ${thread}`);
      if (canRestorePriority()) {
        assert.equal(setProcessNice(pid, 0), true);
        for (const thread of threads) assert.equal(getPriority(thread), 0, `thread ${thread}`);
      } else {
        assert.equal(setProcessNice(pid, 0), false, 'raising back needs privilege');
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a process that is gone reports failure instead of throwing', () => {
    assert.equal(setProcessNice(2 ** 22 + 12345, 5), false);
  });
});
