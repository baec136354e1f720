/**
 * The `phalanx` command as scripts use it, against a real cluster (4 replica processes on
 * loopback): `status --json`, `kv --json`, binary values through `--value-file` (a file and
 * stdin) and back through `get`'s exact bytes, the unknown client, an implausible option, and a
 * configuration problem with its line and column.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KV_EXIT_CODES } from '../../src/cli/kv.js';
import { STATUS_EXIT_CODES } from '../../src/cli/status.js';
import { builtEntryPoint } from './built-code.js';
import { runCli, startTestCluster, type TestCluster } from './helpers.js';

interface CliResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** runCli with bytes on stdin and stdout kept as bytes (runCli decodes it as text). */
function runCliBytes(args: readonly string[], input?: Uint8Array, timeoutMs = 60_000): Promise<CliResult> {
  const [executable, ...prefix] = builtEntryPoint();
  return new Promise((resolve) => {
    const child = spawn(executable!, [...prefix, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input === undefined ? undefined : Buffer.from(input));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
  });
}

/** Every byte value, and sequences that are not UTF-8 (a lone continuation byte, a cut-off one). */
const BINARY = new Uint8Array([...Array.from({ length: 256 }, (_, byte) => byte), 0x80, 0xc3, 0x0a, 0x00]);

describe('the phalanx command for scripts, on a real cluster', { timeout: 180_000 }, () => {
  let test: TestCluster;
  let config: string;

  before(async () => {
    test = await startTestCluster({ clients: ['admin'] });
    config = test.config.source;
  });

  after(async () => {
    await test?.stop();
  });

  it('status --json: every replica up, the verdict healthy, exit 0', async () => {
    const result = await runCli(['status', '--config', config, '--json']);
    assert.equal(result.code, STATUS_EXIT_CODES.healthy, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout) as {
      n: number;
      verdict: string;
      reasons: string[];
      replicas: { up: boolean; role?: string }[];
      health: { verdict: string; quorum: number };
    };
    assert.equal(report.n, 4);
    assert.equal(report.verdict, 'healthy');
    assert.deepEqual(report.reasons, []);
    assert.deepEqual(
      report.replicas.map((replica) => replica.up),
      [true, true, true, true],
    );
    assert.equal(report.replicas.filter((replica) => replica.role === 'leader').length, 1);
    assert.equal(report.health.quorum, 3);
  });

  it('kv --json: one object per result, text values as UTF-8', async () => {
    const put = await runCli(['kv', 'put', '--config', config, '--json', 'greeting', 'héllo']);
    assert.equal(put.code, KV_EXIT_CODES.ok, put.stderr);
    assert.deepEqual(JSON.parse(put.stdout), { key: 'greeting', existed: false, bytes: 6 });
    const get = await runCli(['kv', 'get', '--config', config, '--json', 'greeting']);
    assert.equal(get.code, KV_EXIT_CODES.ok, get.stderr);
    assert.deepEqual(JSON.parse(get.stdout), {
      key: 'greeting',
      found: true,
      value: 'héllo',
      encoding: 'utf8',
    });
    const missing = await runCli(['kv', 'get', '--config', config, '--json', 'nothing-here']);
    assert.equal(missing.code, KV_EXIT_CODES.noValue);
    assert.deepEqual(JSON.parse(missing.stdout), { key: 'nothing-here', found: false, value: null });
    const cas = await runCli([
      'kv',
      'cas',
      '--config',
      config,
      '--json',
      '--expect',
      'nope',
      'greeting',
      'x',
    ]);
    assert.equal(cas.code, KV_EXIT_CODES.noValue);
    assert.deepEqual(JSON.parse(cas.stdout), {
      key: 'greeting',
      swapped: false,
      current: { value: 'héllo', encoding: 'utf8' },
    });
  });

  it('binary values round-trip byte for byte: --value-file from a file and from stdin, get to a pipe', async () => {
    const file = join(test.directory, 'binary.bin');
    writeFileSync(file, BINARY);
    const fromFile = await runCliBytes(['kv', 'put', '--config', config, 'bin/file', '--value-file', file]);
    assert.equal(fromFile.code, KV_EXIT_CODES.ok, fromFile.stderr);
    const fromStdin = await runCliBytes(
      ['kv', 'put', '--config', config, 'bin/stdin', '--value-file', '-'],
      BINARY,
    );
    assert.equal(fromStdin.code, KV_EXIT_CODES.ok, fromStdin.stderr);

    for (const key of ['bin/file', 'bin/stdin']) {
      const raw = await runCliBytes(['kv', 'get', '--config', config, key]);
      assert.equal(raw.code, KV_EXIT_CODES.ok, raw.stderr);
      assert.deepEqual(new Uint8Array(raw.stdout), BINARY, `${key}: the exact bytes, nothing added`);
      const json = await runCli(['kv', 'get', '--config', config, '--json', key]);
      const shown = JSON.parse(json.stdout) as { value: string; encoding: string };
      assert.equal(shown.encoding, 'base64');
      assert.deepEqual(new Uint8Array(Buffer.from(shown.value, 'base64')), BINARY);
    }

    const listed = await runCli(['kv', 'list', '--config', config, '--json', 'bin/']);
    assert.deepEqual(
      listed.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { key: string; encoding: string }).key),
      ['bin/file', 'bin/stdin'],
    );
    const text = await runCli(['kv', 'list', '--config', config, 'bin/']);
    assert.match(text.stdout, /^bin\/file\t\(260 bytes, binary: use --json\)$/m);

    const both = await runCli(['kv', 'put', '--config', config, 'k', 'v', '--value-file', file]);
    assert.equal(both.code, KV_EXIT_CODES.usage);
    assert.match(both.stderr, /give the value as an argument or with --value-file, not both/);
  });

  it('an unknown client is named as such, before any key file is looked for', async () => {
    const result = await runCli(['kv', 'get', '--config', config, '--client', 'nobody', 'greeting']);
    assert.equal(result.code, KV_EXIT_CODES.usage, result.stderr);
    assert.match(
      result.stderr,
      /^phalanx: client nobody is not in the configuration .*cluster\.json \(its clients: admin\)$/m,
    );
    assert.doesNotMatch(result.stderr, /client-nobody\.json/);
  });

  it('an implausible option is refused with its range, exit 2', async () => {
    const timeout = await runCli(['kv', 'get', '--config', config, '--timeout', '1', 'greeting']);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout must be between 100 ms and 600000 ms, got 1/);
    const limit = await runCli(['kv', 'list', '--config', config, '--limit', 'lots']);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit must be a whole number between 1 and 1000, got "lots"/);
    const status = await runCli(['status', '--config', config, '--timeout', '0']);
    assert.equal(status.code, STATUS_EXIT_CODES.usage);
    assert.match(status.stderr, /--timeout must be between 100 ms and 60000 ms, got 0/);
  });

  it('a configuration problem names file:line:column', async () => {
    const document = JSON.parse(readFileSync(config, 'utf8')) as { replicas: Record<string, unknown>[] };
    document.replicas[1]!.adminPort = 'seventy';
    const bad = join(test.directory, 'bad.json');
    const text = JSON.stringify(document, null, 2);
    writeFileSync(bad, text);
    const lines = text.split('\n');
    const line = lines.findIndex((candidate) => candidate.includes('"adminPort": "seventy"'));
    const column = lines[line]!.indexOf('"adminPort"') + 1;
    const result = await runCli(['status', '--config', bad]);
    assert.equal(result.code, STATUS_EXIT_CODES.usage);
    assert.ok(
      result.stderr.includes(
        `${bad}:${line + 1}:${column}: replicas[1].adminPort: must be an integer from 1 to 65535, got "seventy"`,
      ),
      result.stderr,
    );
  });
});
