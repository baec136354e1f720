/**
 * A tiny command line for the ledger, a client of a running cluster:
 *
 *   ledger [--config FILE] [--client ID] open <account>
 *   ledger ... deposit <account> <amount>          (an admin client)
 *   ledger ... transfer <id> <from> <to> <amount>  (the owner of <from>; <id> is applied at most once)
 *   ledger ... balance <account>                   (read-only)
 *   ledger ... total                               (read-only)
 *
 * It prints the result as one JSON line and exits 0, or 1 when the ledger refused the operation
 * (the reason is in the line), 2 on bad arguments.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type ClientId,
  clientId,
  clientKeyPath,
  loadClientKeyFile,
  loadClusterConfig,
  PhalanxClient,
  TypedClient,
} from 'phalanx';
import { isLedgerName, LEDGER_LIMITS, type LedgerOperation, ledgerOperations } from './codec.js';

const USAGE =
  'usage: ledger [--config FILE] [--client ID] [--keys FILE] ' +
  '(open <account> | deposit <account> <amount> | transfer <id> <from> <to> <amount> | balance <account> | total)';

function fail(message: string): never {
  process.stderr.write(`ledger: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function name(value: string | undefined, what: string): string {
  if (value === undefined || !isLedgerName(value))
    fail(
      `${what} must be 1 to ${LEDGER_LIMITS.maxNameBytes} of A-Z a-z 0-9 . _ -, got ${JSON.stringify(value)}`,
    );
  return value;
}

function amount(value: string | undefined): bigint {
  if (value === undefined || !/^[0-9]{1,20}$/.test(value) || BigInt(value) > LEDGER_LIMITS.maxAmount)
    fail(`amount must be a whole number from 0 to ${LEDGER_LIMITS.maxAmount}, got ${JSON.stringify(value)}`);
  return BigInt(value);
}

/** The operation the positional arguments name. */
export function operationOf(words: readonly string[]): LedgerOperation {
  const [command, ...rest] = words;
  const expect = (count: number): void => {
    if (rest.length !== count) fail(`${command} takes ${count} argument(s), got ${rest.length}`);
  };
  switch (command) {
    case 'open':
      expect(1);
      return { kind: 'open', account: name(rest[0], 'account') };
    case 'deposit':
      expect(2);
      return { kind: 'deposit', account: name(rest[0], 'account'), amount: amount(rest[1]) };
    case 'transfer':
      expect(4);
      return {
        kind: 'transfer',
        id: name(rest[0], 'transfer id'),
        from: name(rest[1], 'from'),
        to: name(rest[2], 'to'),
        amount: amount(rest[3]),
      };
    case 'balance':
      expect(1);
      return { kind: 'balance', account: name(rest[0], 'account') };
    case 'total':
      expect(0);
      return { kind: 'total' };
    default:
      fail(`unknown command ${JSON.stringify(command)}`);
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        config: { type: 'string', default: '.phalanx/cluster.json' },
        client: { type: 'string', default: 'admin' },
        keys: { type: 'string' },
        timeout: { type: 'string', default: '10000' },
      },
      allowPositionals: true,
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const operation = operationOf(positionals);
  let client: ClientId;
  try {
    client = clientId(values.client);
  } catch {
    fail(`--client ${JSON.stringify(values.client)} is not a client id (1 to 64 of A-Z a-z 0-9 . _ -)`);
  }
  const timeoutMs = Number(values.timeout);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000)
    fail('--timeout must be a number of milliseconds from 100 to 600000');
  const config = await loadClusterConfig(values.config);
  const keys = await loadClientKeyFile(values.keys ?? clientKeyPath(config, client));
  const connection = await PhalanxClient.connect({
    config,
    client: keys,
    timeoutMs,
    connectTimeoutMs: timeoutMs,
  });
  try {
    const ledger = new TypedClient(connection, ledgerOperations);
    const result = await ledger.invoke(operation);
    process.stdout.write(
      `${JSON.stringify(result, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`,
    );
    process.exitCode = result.kind === 'rejected' ? 1 : 0;
  } finally {
    await connection.close();
  }
}

// Run as a program (not when a test imports operationOf).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`ledger: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
