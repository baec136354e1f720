/**
 * `phalanx kv`: use the replicated key-value store from the command line, by hand or from a
 * script.
 *
 * Values are bytes. A value comes from the command line (as UTF-8), or with `--value-file F` from
 * a file, or from stdin with `--value-file -`, byte for byte. `get` writes the value's exact
 * bytes to stdout when stdout is not a terminal (a pipe or a file: nothing added, no newline);
 * on a terminal it prints text followed by a newline and refuses to print a binary value unless
 * `--raw` asks for the exact bytes there too. `--json` prints one JSON object per result instead
 * (kvValueJson: the value as a UTF-8 string when it is valid UTF-8, otherwise base64, with an
 * `encoding` field saying which).
 */
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import { KvClient } from '../apps/kv/client.js';
import { KV_LIMITS } from '../apps/kv/operations.js';
import { PhalanxClient, PhalanxError, UnknownClientError } from '../client/client.js';
import { clientKeyPath, loadClientKeyFile } from '../config/keys.js';
import { clientId, isValidClientId } from '../messages/ids.js';
import {
  configOrExit,
  DEFAULT_CONFIG,
  OPTION_RANGES,
  rangedOption,
  requireKvService,
  USAGE_EXIT_CODE,
} from './options.js';

/** Exit statuses of `phalanx kv` (README, CLI reference). */
export const KV_EXIT_CODES = {
  ok: 0,
  /** `get` found no value, `cas` did not swap. */
  noValue: 1,
  /** A bad option, value file, client id or configuration. */
  usage: USAGE_EXIT_CODE,
  /** The replicas refused the request (outside the client's keyspaces, a bad request). */
  rejected: 3,
  /** Other client errors: timeout, unavailable. */
  failed: 4,
} as const;

interface CommonOptions {
  readonly config: string;
  readonly client: string;
  readonly keys?: string;
  readonly timeout: number;
  readonly json?: boolean;
}

interface ValueOptions {
  readonly valueFile?: string;
}

/** A mistake in how the command was called: exits USAGE_EXIT_CODE with the message. */
class KvUsageError extends Error {
  override readonly name = 'KvUsageError';
}

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A value as `--json` prints it: text when it is valid UTF-8, otherwise base64. */
export interface KvJsonValue {
  readonly value: string;
  readonly encoding: 'utf8' | 'base64';
}

export function kvValueJson(bytes: Uint8Array): KvJsonValue {
  try {
    return { value: strictUtf8.decode(bytes), encoding: 'utf8' };
  } catch {
    return { value: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
  }
}

/** Control characters other than tab and newline would drive the operator's terminal. */
// eslint-disable-next-line no-control-regex -- matching them is the point
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** The value as text for a terminal, or null when it is binary (not UTF-8, or control characters). */
export function printableText(bytes: Uint8Array): string | null {
  const decoded = kvValueJson(bytes);
  return decoded.encoding === 'utf8' && !TERMINAL_UNSAFE.test(decoded.value) ? decoded.value : null;
}

/**
 * Reads a value file (`-`: stdin) whole, refusing one larger than a value may be
 * (KV_LIMITS.maxValueBytes) without reading past the limit.
 */
export async function readValueFile(
  path: string,
  flag = '--value-file',
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<Uint8Array> {
  const limit = KV_LIMITS.maxValueBytes;
  const tooLarge = (): KvUsageError =>
    new KvUsageError(`${flag} ${path}: larger than a value may be (${limit} bytes, KV_LIMITS.maxValueBytes)`);
  if (path === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stdin) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
      total += bytes.length;
      if (total > limit) throw tooLarge();
      chunks.push(bytes);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw new KvUsageError(
      `${flag} ${path}: cannot read it: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    // One byte past the limit tells a file that is too large from one exactly at it.
    const buffer = Buffer.alloc(limit + 1);
    let total = 0;
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await file.read(buffer, total, buffer.length - total, null));
      } catch (error) {
        // A folder opens but does not read (EISDIR): the same one-line refusal as a missing file.
        throw new KvUsageError(
          `${flag} ${path}: cannot read it: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) throw tooLarge();
    }
    return new Uint8Array(buffer.subarray(0, total));
  } finally {
    await file.close();
  }
}

/** The value of `put` and `cas`: the argument, or the file, never both. */
async function valueOf(argument: string | undefined, options: ValueOptions): Promise<Uint8Array> {
  if (argument !== undefined && options.valueFile !== undefined)
    throw new KvUsageError('give the value as an argument or with --value-file, not both');
  if (options.valueFile !== undefined) return readValueFile(options.valueFile);
  if (argument === undefined)
    throw new KvUsageError('missing the value: give it as an argument, or --value-file F (- for stdin)');
  return encoder.encode(argument);
}

async function withKv<Result>(
  options: CommonOptions,
  use: (kv: KvClient) => Promise<Result>,
): Promise<Result> {
  const config = await configOrExit(options.config);
  requireKvService(config, 'phalanx kv');
  if (!isValidClientId(options.client))
    throw new KvUsageError(`--client ${JSON.stringify(options.client)} is not a valid client id`);
  const id = clientId(options.client);
  // Before the key file: a missing client-nobody.json would hide the real mistake.
  if (!config.clients.some((entry) => entry.id === id)) throw new UnknownClientError(id, config);
  const keys = await loadClientKeyFile(options.keys ?? clientKeyPath(config, id));
  const client = await PhalanxClient.connect({
    config,
    client: keys,
    timeoutMs: options.timeout,
    connectTimeoutMs: options.timeout,
  });
  try {
    return await use(new KvClient(client));
  } finally {
    await client.close();
  }
}

function common(command: Command): Command {
  return command
    .option('--config <file>', 'cluster configuration', DEFAULT_CONFIG)
    .option('--client <id>', 'client principal to act as', 'admin')
    .option('--keys <file>', 'client key file (default: <keysDirectory>/client-<id>.json)')
    .option(
      '--timeout <ms>',
      'give up after this long (100 to 600000)',
      rangedOption('--timeout', OPTION_RANGES.clientTimeoutMs),
      10_000,
    )
    .option('--json', 'print one JSON object per result (values: UTF-8 text, or base64 with "encoding")');
}

function report(error: unknown): never {
  if (error instanceof KvUsageError) {
    process.stderr.write(`phalanx: ${error.message}\n`);
    process.exit(KV_EXIT_CODES.usage);
  }
  if (error instanceof UnknownClientError) {
    process.stderr.write(`phalanx: ${error.message}\n`);
    process.exit(KV_EXIT_CODES.usage);
  }
  if (error instanceof PhalanxError) {
    process.stderr.write(`phalanx: ${error.code}: ${error.message}\n`);
    process.exit(error.code === 'rejected' ? KV_EXIT_CODES.rejected : KV_EXIT_CODES.failed);
  }
  throw error;
}

function writeJson(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function printedValue(bytes: Uint8Array): string {
  return printableText(bytes) ?? `(${bytes.length} bytes, binary: use --json)`;
}

export function registerKv(program: Command): void {
  const kv = program
    .command('kv')
    .description('read and write the replicated key-value store (values: argument, file or stdin)')
    .addHelpText(
      'after',
      '\nExit status: 0 ok; 1 no value (get) or not swapped (cas); 2 a bad option, value file or\n' +
        'configuration, or a client not in the configuration; 3 refused by the replicas;\n' +
        '4 timeout or unavailable.\n',
    );
  common(kv.command('put <key> [value]').description('set a key (the value: an argument, or --value-file)'))
    .option('--value-file <file>', 'read the value from this file, byte for byte (- for stdin)')
    .action(async (key: string, value: string | undefined, options: CommonOptions & ValueOptions) => {
      await (async () => {
        const bytes = await valueOf(value, options);
        await withKv(options, async (store) => {
          const existed = await store.put(key, bytes);
          if (options.json === true) writeJson({ key, existed, bytes: bytes.length });
          else process.stdout.write(existed ? 'OK (replaced)\n' : 'OK\n');
        });
      })().catch(report);
    });
  common(
    kv
      .command('get <key>')
      .description(
        'read a key (linearizable); writes the exact bytes when stdout is not a terminal, text and a newline when it is',
      ),
  )
    .option('--ordered', 'order the read instead of trying the read-only fast path')
    .option('--raw', 'write the exact bytes even to a terminal (no newline added)')
    .action(async (key: string, options: CommonOptions & { ordered?: boolean; raw?: boolean }) => {
      await withKv(options, async (store) => {
        const value = await store.get(key, { ordered: options.ordered === true });
        if (value === null) {
          if (options.json === true) writeJson({ key, found: false, value: null });
          else process.stderr.write(`(no value for ${key})\n`);
          process.exitCode = KV_EXIT_CODES.noValue;
          return;
        }
        if (options.json === true) {
          writeJson({ key, found: true, ...kvValueJson(value) });
          return;
        }
        if (options.raw === true || process.stdout.isTTY !== true) {
          process.stdout.write(value);
          return;
        }
        const text = printableText(value);
        if (text === null)
          throw new KvUsageError(
            `the value of ${key} is binary (${value.length} bytes): use --raw, --json, or redirect stdout`,
          );
        process.stdout.write(`${text}\n`);
      }).catch(report);
    });
  common(kv.command('del <key>').description('delete a key')).action(
    async (key: string, options: CommonOptions) => {
      await withKv(options, async (store) => {
        const existed = await store.delete(key);
        if (options.json === true) writeJson({ key, existed });
        else process.stdout.write(existed ? 'deleted\n' : '(no such key)\n');
      }).catch(report);
    },
  );
  common(kv.command('list [prefix]').description('list keys with a prefix, in key order'))
    .option(
      '--limit <count>',
      'at most this many (1 to 1000)',
      rangedOption('--limit', OPTION_RANGES.listLimit),
      100,
    )
    .action(async (prefix: string | undefined, options: CommonOptions & { limit: number }) => {
      await withKv(options, async (store) => {
        const { entries, truncated } = await store.list(prefix ?? '', options.limit);
        for (const entry of entries) {
          if (options.json === true) writeJson({ key: entry.key, ...kvValueJson(entry.value) });
          else process.stdout.write(`${entry.key}\t${printedValue(entry.value)}\n`);
        }
        if (truncated) process.stderr.write('(more keys match; raise --limit or narrow the prefix)\n');
      }).catch(report);
    });
  common(
    kv
      .command('cas <key> [value]')
      .description('compare-and-set: write value only if the key holds --expect (or --expect-file)'),
  )
    .option('--value-file <file>', 'read the new value from this file (- for stdin)')
    .option('--expect <value>', 'the value the key must hold (omit to require that it is absent)')
    .option('--expect-file <file>', 'read the value the key must hold from this file')
    .action(
      async (
        key: string,
        value: string | undefined,
        options: CommonOptions & ValueOptions & { expect?: string; expectFile?: string },
      ) => {
        await (async () => {
          if (options.expect !== undefined && options.expectFile !== undefined)
            throw new KvUsageError('give --expect or --expect-file, not both');
          if (options.expectFile === '-' && options.valueFile === '-')
            throw new KvUsageError('only one of --value-file and --expect-file can read stdin');
          const bytes = await valueOf(value, options);
          const expected =
            options.expectFile !== undefined
              ? await readValueFile(options.expectFile, '--expect-file')
              : options.expect === undefined
                ? null
                : encoder.encode(options.expect);
          await withKv(options, async (store) => {
            const outcome = await store.compareAndSet(key, expected, bytes);
            if (!outcome.succeeded) process.exitCode = KV_EXIT_CODES.noValue;
            if (options.json === true) {
              writeJson({
                key,
                swapped: outcome.succeeded,
                current: outcome.current === null ? null : kvValueJson(outcome.current),
              });
              return;
            }
            const current = outcome.current === null ? '(absent)' : printedValue(outcome.current);
            process.stdout.write(
              outcome.succeeded ? 'swapped\n' : `not swapped: current value is ${current}\n`,
            );
          });
        })().catch(report);
      },
    );
}
