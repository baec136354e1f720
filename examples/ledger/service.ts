/**
 * An intrusion-tolerant ledger: accounts, deposits by admin clients, transfers between accounts,
 * and read-only balance and total queries, as a Phalanx service module. What the replicas agree
 * on, a Byzantine replica cannot change: every correct replica applies the same transfers in the
 * same order, and clients accept a result only when a quorum of replicas signed it.
 *
 * The invariants it keeps (and the simulator checks on every correct replica, stateProblems):
 * - money is created only by deposits: the sum of all balances equals the sum of all deposits,
 *   whatever transfers ran;
 * - no balance is ever negative: a transfer larger than the balance is refused ('overdraft');
 * - each transfer is applied at most once: its id, chosen by the client, is remembered per
 *   client, and a transfer reusing an id is refused ('duplicate-transfer'), so a retried or
 *   replayed request cannot move money twice;
 * - only an account's owner (the client that opened it) moves money out of it.
 *
 * Deterministic: no clock, no randomness, no environment, no I/O; every iteration that reaches
 * the state's bytes (snapshot) goes in sorted order, never in the insertion order of a Map,
 * which differs between a replica that executed the history and one that restored a snapshot.
 *
 * Options (`service.options` of the cluster configuration): `{ "admins": ["admin"] }`, the
 * clients allowed to deposit; each must be a client of the configuration.
 *
 * Usage (cluster.json):
 * ```json
 * "service": { "module": "./ledger/service.js", "options": { "admins": ["admin"] } }
 * ```
 */
import {
  type ClientId,
  type ExecutionContext,
  type JsonValue,
  LIMITS,
  type Service,
  type ServiceModule,
  type ServiceModuleContext,
  type SimulatedOperation,
} from 'phalanx';
import {
  isLedgerName,
  LEDGER_LIMITS,
  type LedgerOperation,
  type LedgerResult,
  ledgerOperations,
} from './codec.js';

interface Account {
  readonly owner: string;
  balance: bigint;
}

/** Snapshot chunks are filled to this size (well under LIMITS.maxChunkBytes); records never split. */
export const LEDGER_CHUNK_TARGET_BYTES = Math.min(LIMITS.maxChunkBytes, 64 * 1024);
const SNAPSHOT_VERSION = 1;
const ACCOUNT_RECORD = 1;
const TRANSFER_RECORD = 2;

function rejected(reason: Extract<LedgerResult, { kind: 'rejected' }>['reason']): LedgerResult {
  return { kind: 'rejected', reason };
}

function compare(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

export class LedgerService implements Service {
  readonly #admins: ReadonlySet<string>;
  readonly #accounts = new Map<string, Account>();
  /** `${client} ${transferId}` of every transfer applied (a space is in neither). */
  readonly #transfers = new Set<string>();
  /** Sum of all deposits: the sum of all balances, always. */
  #deposited = 0n;
  /** The last snapshot, while nothing changed since (lets the core skip re-hashing it). */
  #snapshot: readonly Uint8Array[] | null = null;

  constructor(options: { readonly admins: readonly string[] }) {
    this.#admins = new Set(options.admins);
  }

  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    const decoded = ledgerOperations.decodeOperation(operation);
    const result = decoded === null ? rejected('malformed') : this.#apply(decoded, context.clientId);
    return ledgerOperations.encodeResult(result);
  }

  executeReadOnly(operation: Uint8Array): Uint8Array {
    const decoded = ledgerOperations.decodeOperation(operation);
    let result: LedgerResult;
    if (decoded === null) result = rejected('malformed');
    else if (decoded.kind === 'balance' || decoded.kind === 'total') result = this.#query(decoded);
    else result = rejected('read-only');
    return ledgerOperations.encodeResult(result);
  }

  #query(operation: Extract<LedgerOperation, { kind: 'balance' | 'total' }>): LedgerResult {
    if (operation.kind === 'total')
      return { kind: 'total', amount: this.#deposited, accounts: this.#accounts.size };
    const account = this.#accounts.get(operation.account);
    return account === undefined ? rejected('unknown-account') : { kind: 'balance', amount: account.balance };
  }

  #apply(operation: LedgerOperation, client: ClientId): LedgerResult {
    switch (operation.kind) {
      case 'balance':
      case 'total':
        return this.#query(operation);
      case 'open':
        if (this.#accounts.has(operation.account)) return rejected('account-exists');
        if (this.#accounts.size >= LEDGER_LIMITS.maxAccounts) return rejected('full');
        this.#accounts.set(operation.account, { owner: client, balance: 0n });
        break;
      case 'deposit': {
        if (!this.#admins.has(client)) return rejected('not-admin');
        const account = this.#accounts.get(operation.account);
        if (account === undefined) return rejected('unknown-account');
        if (operation.amount === 0n) return rejected('invalid-amount');
        if (this.#deposited + operation.amount > LEDGER_LIMITS.maxAmount) return rejected('overflow');
        account.balance += operation.amount;
        this.#deposited += operation.amount;
        break;
      }
      case 'transfer': {
        const key = `${client} ${operation.id}`;
        if (this.#transfers.has(key)) return rejected('duplicate-transfer');
        const from = this.#accounts.get(operation.from);
        const to = this.#accounts.get(operation.to);
        if (from === undefined || to === undefined) return rejected('unknown-account');
        if (from.owner !== client) return rejected('not-owner');
        if (operation.amount === 0n || operation.from === operation.to) return rejected('invalid-amount');
        if (from.balance < operation.amount) return rejected('overdraft');
        if (this.#transfers.size >= LEDGER_LIMITS.maxTransferIds) return rejected('full');
        // Recorded only when applied: a refused transfer may be retried with the same id.
        this.#transfers.add(key);
        from.balance -= operation.amount;
        to.balance += operation.amount;
        break;
      }
    }
    this.#snapshot = null;
    return { kind: 'ok' };
  }

  /**
   * A header chunk (version, sum of deposits), then account records sorted by name and transfer
   * records sorted by client and id, packed into chunks of at most LEDGER_CHUNK_TARGET_BYTES.
   */
  snapshot(): readonly Uint8Array[] {
    if (this.#snapshot !== null) return this.#snapshot;
    const chunks: Uint8Array[] = [Uint8Array.from([SNAPSHOT_VERSION, ...amountBytes(this.#deposited)])];
    let current: number[] = [];
    const add = (record: readonly number[]): void => {
      if (current.length + record.length > LEDGER_CHUNK_TARGET_BYTES) {
        chunks.push(Uint8Array.from(current));
        current = [];
      }
      current.push(...record);
    };
    for (const name of [...this.#accounts.keys()].sort(compare)) {
      const account = this.#accounts.get(name)!;
      add([ACCOUNT_RECORD, ...nameBytes(name), ...nameBytes(account.owner), ...amountBytes(account.balance)]);
    }
    for (const key of [...this.#transfers].sort(compare)) {
      const [client, id] = key.split(' ') as [string, string];
      add([TRANSFER_RECORD, ...nameBytes(client), ...nameBytes(id)]);
    }
    if (current.length > 0) chunks.push(Uint8Array.from(current));
    this.#snapshot = chunks;
    return chunks;
  }

  /** Replaces the state with the snapshot's; throws, naming the problem, on a malformed one. */
  restore(chunks: readonly Uint8Array[]): void {
    const state = parseSnapshot(chunks);
    this.#accounts.clear();
    this.#transfers.clear();
    for (const [name, account] of state.accounts) this.#accounts.set(name, account);
    for (const key of state.transfers) this.#transfers.add(key);
    this.#deposited = state.deposited;
    this.#snapshot = null;
  }
}

function amountBytes(value: bigint): number[] {
  const bytes: number[] = [];
  for (let shift = 56n; shift >= 0n; shift -= 8n) bytes.push(Number((value >> shift) & 0xffn));
  return bytes;
}

function nameBytes(name: string): number[] {
  return [name.length, ...Buffer.from(name, 'latin1')];
}

export interface LedgerState {
  readonly deposited: bigint;
  readonly accounts: ReadonlyMap<string, Account>;
  readonly transfers: ReadonlySet<string>;
}

/** The state a snapshot describes; throws on anything snapshot() would not have produced. */
export function parseSnapshot(chunks: readonly Uint8Array[]): LedgerState {
  const header = chunks[0];
  if (header === undefined || header.length !== 9 || header[0] !== SNAPSHOT_VERSION)
    throw new Error('ledger snapshot: missing or unknown header chunk');
  const deposited = readAmount(header, 1);
  const accounts = new Map<string, Account>();
  const transfers = new Set<string>();
  for (const [index, chunk] of chunks.entries()) {
    if (index === 0) continue;
    if (chunk.length > LIMITS.maxChunkBytes) throw new Error(`ledger snapshot: chunk ${index} is too large`);
    let offset = 0;
    const name = (): string => {
      const length = chunk[offset] ?? 0;
      const text = Buffer.from(chunk.subarray(offset + 1, offset + 1 + length)).toString('latin1');
      if (text.length !== length || !isLedgerName(text))
        throw new Error(`ledger snapshot: chunk ${index}: bad name at byte ${offset}`);
      offset += 1 + length;
      return text;
    };
    while (offset < chunk.length) {
      const kind = chunk[offset++];
      if (kind === ACCOUNT_RECORD) {
        const account = name();
        const owner = name();
        if (offset + 8 > chunk.length) throw new Error(`ledger snapshot: chunk ${index}: truncated balance`);
        const balance = readAmount(chunk, offset);
        offset += 8;
        if (accounts.has(account)) throw new Error(`ledger snapshot: account ${account} listed twice`);
        accounts.set(account, { owner, balance });
      } else if (kind === TRANSFER_RECORD) {
        const key = `${name()} ${name()}`;
        if (transfers.has(key)) throw new Error(`ledger snapshot: transfer ${key} listed twice`);
        transfers.add(key);
      } else {
        throw new Error(`ledger snapshot: chunk ${index}: unknown record ${String(kind)}`);
      }
    }
  }
  if (accounts.size > LEDGER_LIMITS.maxAccounts || transfers.size > LEDGER_LIMITS.maxTransferIds)
    throw new Error('ledger snapshot: more accounts or transfers than the ledger holds');
  return { deposited, accounts, transfers };
}

function readAmount(bytes: Uint8Array, offset: number): bigint {
  let value = 0n;
  for (let index = 0; index < 8; index++) value = (value << 8n) | BigInt(bytes[offset + index]!);
  return value;
}

/** The invariant, on a snapshot: it parses, and the balances sum to the deposits. */
export function ledgerStateProblems(chunks: readonly Uint8Array[]): string[] {
  let state: LedgerState;
  try {
    state = parseSnapshot(chunks);
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
  let sum = 0n;
  for (const account of state.accounts.values()) sum += account.balance;
  return sum === state.deposited
    ? []
    : [`the balances sum to ${sum}, but ${state.deposited} was deposited: money was created or destroyed`];
}

// ───────────────────────────── the service module ─────────────────────────────

function adminsOf(options: JsonValue | null): string[] | null {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return null;
  const admins = (options as { readonly [key: string]: JsonValue }).admins;
  if (!Array.isArray(admins) || !admins.every((admin) => typeof admin === 'string')) return null;
  return admins as string[];
}

function ledgerConfigProblems(context: ServiceModuleContext): string[] {
  const admins = adminsOf(context.options);
  if (admins === null)
    return ['service.options: the ledger needs { "admins": [client ids allowed to deposit] }'];
  const known = new Set<string>(context.clients.map((client) => client.id));
  const options = context.options as { readonly [key: string]: JsonValue };
  return [
    ...Object.keys(options)
      .filter((key) => key !== 'admins')
      .map((key) => `service.options.${key}: unknown option (the ledger takes "admins")`),
    ...admins
      .filter((admin) => !known.has(admin))
      .map(
        (admin) => `service.options.admins: ${JSON.stringify(admin)} is not a client of this configuration`,
      ),
  ];
}

/** Accounts the simulated clients use. */
const SIMULATED_ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5'] as const;

/**
 * Simulated clients (`npm run sim -- --service examples/ledger/service.ts --service-options
 * '{"admins":["c0"]}'`): each opens accounts, the admin deposits, everyone transfers between
 * random accounts (often more than the balance, sometimes reusing an id), and reads balances and
 * the total read-only.
 */
function nextSimulatedOperation(random: () => number, client: ClientId, index: number): SimulatedOperation {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const account = `${pick(SIMULATED_ACCOUNTS)}`;
  const roll = random();
  let operation: LedgerOperation;
  if (index < 2 || roll < 0.1) operation = { kind: 'open', account };
  else if (roll < 0.3)
    operation = { kind: 'deposit', account, amount: BigInt(1 + Math.floor(random() * 100)) };
  else if (roll < 0.75) {
    // Every fifth transfer reuses the previous id: applied at most once.
    const id = `${client}-${random() < 0.2 ? index - 1 : index}`;
    const amount = BigInt(1 + Math.floor(random() * 150));
    operation = { kind: 'transfer', id, from: account, to: pick(SIMULATED_ACCOUNTS), amount };
  } else if (roll < 0.9) operation = { kind: 'balance', account };
  else operation = { kind: 'total' };
  return {
    operation: ledgerOperations.encodeOperation(operation),
    readOnly: ledgerOperations.isReadOnly!(operation) && random() < 0.7,
  };
}

/** The ledger as a service module: name it in a configuration's `service.module`. */
export const service: ServiceModule = {
  name: 'ledger',
  create: (context) => new LedgerService({ admins: adminsOf(context.options) ?? [] }),
  configProblems: ledgerConfigProblems,
  simulation: { nextOperation: nextSimulatedOperation, stateProblems: ledgerStateProblems },
};
export default service;
