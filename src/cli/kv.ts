/** `phalanx kv`: use the replicated key-value store from the command line. */
import type { Command } from 'commander';
import { KvClient } from '../apps/kv/client.js';
import { PhalanxClient, PhalanxError } from '../client/client.js';
import { clientKeyPath, loadClientKeyFile } from '../config/keys.js';
import { clientId, isValidClientId } from '../messages/ids.js';
import { configOrExit, DEFAULT_CONFIG, integerOption, requireKvService } from './options.js';

interface CommonOptions {
  readonly config: string;
  readonly client: string;
  readonly keys?: string;
  readonly timeout: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function withKv<Result>(
  options: CommonOptions,
  use: (kv: KvClient) => Promise<Result>,
): Promise<Result> {
  const config = await configOrExit(options.config);
  requireKvService(config, 'phalanx kv');
  if (!isValidClientId(options.client))
    throw new Error(`--client ${JSON.stringify(options.client)} is not a valid client id`);
  const id = clientId(options.client);
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
    .option('--timeout <ms>', 'give up after this long', integerOption('--timeout', 1, 3_600_000), 10_000);
}

function report(error: unknown): never {
  if (error instanceof PhalanxError) {
    process.stderr.write(`phalanx: ${error.code}: ${error.message}\n`);
    process.exit(error.code === 'rejected' ? 3 : 4);
  }
  throw error;
}

export function registerKv(program: Command): void {
  const kv = program.command('kv').description('read and write the replicated key-value store');
  common(kv.command('put <key> <value>').description('set a key')).action(
    async (key: string, value: string, options: CommonOptions) => {
      await withKv(options, async (store) => {
        const existed = await store.put(key, encoder.encode(value));
        process.stdout.write(existed ? 'OK (replaced)\n' : 'OK\n');
      }).catch(report);
    },
  );
  common(kv.command('get <key>').description('read a key (linearizable)'))
    .option('--ordered', 'order the read instead of trying the read-only fast path')
    .action(async (key: string, options: CommonOptions & { ordered?: boolean }) => {
      await withKv(options, async (store) => {
        const value = await store.get(key, { ordered: options.ordered === true });
        if (value === null) {
          process.stderr.write(`(no value for ${key})\n`);
          process.exitCode = 1;
        } else {
          process.stdout.write(`${decoder.decode(value)}\n`);
        }
      }).catch(report);
    });
  common(kv.command('del <key>').description('delete a key')).action(
    async (key: string, options: CommonOptions) => {
      await withKv(options, async (store) => {
        process.stdout.write((await store.delete(key)) ? 'deleted\n' : '(no such key)\n');
      }).catch(report);
    },
  );
  common(kv.command('list [prefix]').description('list keys with a prefix, in key order'))
    .option('--limit <count>', 'at most this many', integerOption('--limit', 1, 1000), 100)
    .action(async (prefix: string | undefined, options: CommonOptions & { limit: number }) => {
      await withKv(options, async (store) => {
        const { entries, truncated } = await store.list(prefix ?? '', options.limit);
        for (const entry of entries) process.stdout.write(`${entry.key}\t${decoder.decode(entry.value)}\n`);
        if (truncated) process.stderr.write('(more keys match; raise --limit or narrow the prefix)\n');
      }).catch(report);
    });
  common(
    kv
      .command('cas <key> <value>')
      .description('compare-and-set: write value only if the key holds --expect'),
  )
    .option('--expect <value>', 'the value the key must hold (omit to require that it is absent)')
    .action(async (key: string, value: string, options: CommonOptions & { expect?: string }) => {
      await withKv(options, async (store) => {
        const expected = options.expect === undefined ? null : encoder.encode(options.expect);
        const outcome = await store.compareAndSet(key, expected, encoder.encode(value));
        const current = outcome.current === null ? '(absent)' : decoder.decode(outcome.current);
        process.stdout.write(outcome.succeeded ? 'swapped\n' : `not swapped: current value is ${current}\n`);
        if (!outcome.succeeded) process.exitCode = 1;
      }).catch(report);
    });
}
