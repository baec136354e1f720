/**
 * The ledger's operations and results, in a compact binary format, defined once for the service
 * and its clients (`defineOperations` from `phalanx`). Every decoder bounds what it reads and
 * returns null for anything it cannot read: operations arrive from any client, results from any
 * replica.
 *
 * Format: one tag byte, then the fields in order. A name (account or transfer id) is one length
 * byte and 1 to LEDGER_LIMITS.maxNameBytes bytes of [A-Za-z0-9._-]; an amount is 8 bytes, an
 * unsigned big-endian integer.
 */
import { defineOperations } from 'phalanx';

export const LEDGER_LIMITS = {
  /** Longest account name and transfer id, in bytes. */
  maxNameBytes: 64,
  /** Largest amount, and largest total of all balances (unsigned 64-bit). */
  maxAmount: 2n ** 64n - 1n,
  /** Most accounts a ledger holds; opening one more is refused. */
  maxAccounts: 100_000,
  /** Most transfer ids remembered (each client's ids, for at-most-once); more are refused. */
  maxTransferIds: 1_000_000,
} as const;

export type LedgerOperation =
  /** Opens an account owned by the calling client, with balance 0. */
  | { readonly kind: 'open'; readonly account: string }
  /** Adds money to an account: admin clients only (the service's `admins` option). */
  | { readonly kind: 'deposit'; readonly account: string; readonly amount: bigint }
  /**
   * Moves money between accounts; the caller must own `from`. `id` is chosen by the client: a
   * transfer with an id the client used before is not applied again.
   */
  | {
      readonly kind: 'transfer';
      readonly id: string;
      readonly from: string;
      readonly to: string;
      readonly amount: bigint;
    }
  /** Read-only: an account's balance. */
  | { readonly kind: 'balance'; readonly account: string }
  /** Read-only: the sum of every balance and the number of accounts. */
  | { readonly kind: 'total' };

export const LEDGER_REJECTIONS = [
  'malformed',
  'unknown-account',
  'account-exists',
  'not-admin',
  'not-owner',
  'overdraft',
  'duplicate-transfer',
  'invalid-amount',
  'overflow',
  'full',
  'read-only',
] as const;
export type LedgerRejection = (typeof LEDGER_REJECTIONS)[number];

export type LedgerResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'balance'; readonly amount: bigint }
  | { readonly kind: 'total'; readonly amount: bigint; readonly accounts: number }
  | { readonly kind: 'rejected'; readonly reason: LedgerRejection };

const NAME = /^[A-Za-z0-9._-]+$/;

/** Whether a string is a usable account name or transfer id. */
export function isLedgerName(name: string): boolean {
  return name.length > 0 && name.length <= LEDGER_LIMITS.maxNameBytes && NAME.test(name);
}

const OPERATION_TAGS = { open: 1, deposit: 2, transfer: 3, balance: 4, total: 5 } as const;
const RESULT_TAGS = { ok: 1, balance: 2, total: 3, rejected: 4 } as const;

class Writer {
  readonly #bytes: number[] = [];
  byte(value: number): this {
    this.#bytes.push(value);
    return this;
  }
  name(value: string): this {
    if (!isLedgerName(value)) throw new RangeError(`not a ledger name: ${JSON.stringify(value)}`);
    this.#bytes.push(value.length, ...Buffer.from(value, 'ascii'));
    return this;
  }
  amount(value: bigint): this {
    if (value < 0n || value > LEDGER_LIMITS.maxAmount) throw new RangeError(`amount out of range: ${value}`);
    for (let shift = 56n; shift >= 0n; shift -= 8n) this.#bytes.push(Number((value >> shift) & 0xffn));
    return this;
  }
  u32(value: number): this {
    return this.amount(BigInt(value));
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

/** Reads fields in order; any read past the end or of an invalid field gives null. */
class Reader {
  readonly #bytes: Uint8Array;
  #offset = 0;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  byte(): number | null {
    return this.#offset < this.#bytes.length ? this.#bytes[this.#offset++]! : null;
  }
  name(): string | null {
    const length = this.byte();
    if (length === null || length === 0 || length > LEDGER_LIMITS.maxNameBytes) return null;
    if (this.#offset + length > this.#bytes.length) return null;
    const text = Buffer.from(this.#bytes.subarray(this.#offset, this.#offset + length)).toString('latin1');
    this.#offset += length;
    return isLedgerName(text) ? text : null;
  }
  amount(): bigint | null {
    if (this.#offset + 8 > this.#bytes.length) return null;
    let value = 0n;
    for (let index = 0; index < 8; index++) value = (value << 8n) | BigInt(this.#bytes[this.#offset++]!);
    return value;
  }
  get finished(): boolean {
    return this.#offset === this.#bytes.length;
  }
}

function encodeOperation(operation: LedgerOperation): Uint8Array {
  const writer = new Writer().byte(OPERATION_TAGS[operation.kind]);
  switch (operation.kind) {
    case 'open':
    case 'balance':
      return writer.name(operation.account).done();
    case 'deposit':
      return writer.name(operation.account).amount(operation.amount).done();
    case 'transfer':
      return writer
        .name(operation.id)
        .name(operation.from)
        .name(operation.to)
        .amount(operation.amount)
        .done();
    case 'total':
      return writer.done();
  }
}

function decodeOperation(bytes: Uint8Array): LedgerOperation | null {
  const reader = new Reader(bytes);
  let operation: LedgerOperation | null;
  switch (reader.byte()) {
    case OPERATION_TAGS.open: {
      const account = reader.name();
      operation = account === null ? null : { kind: 'open', account };
      break;
    }
    case OPERATION_TAGS.balance: {
      const account = reader.name();
      operation = account === null ? null : { kind: 'balance', account };
      break;
    }
    case OPERATION_TAGS.deposit: {
      const account = reader.name();
      const amount = reader.amount();
      operation = account === null || amount === null ? null : { kind: 'deposit', account, amount };
      break;
    }
    case OPERATION_TAGS.transfer: {
      const id = reader.name();
      const from = reader.name();
      const to = reader.name();
      const amount = reader.amount();
      operation =
        id === null || from === null || to === null || amount === null
          ? null
          : { kind: 'transfer', id, from, to, amount };
      break;
    }
    case OPERATION_TAGS.total:
      operation = { kind: 'total' };
      break;
    default:
      return null;
  }
  // Trailing bytes would let two encodings mean one operation.
  return operation !== null && reader.finished ? operation : null;
}

function encodeResult(result: LedgerResult): Uint8Array {
  const writer = new Writer().byte(RESULT_TAGS[result.kind]);
  switch (result.kind) {
    case 'ok':
      return writer.done();
    case 'balance':
      return writer.amount(result.amount).done();
    case 'total':
      return writer.amount(result.amount).u32(result.accounts).done();
    case 'rejected':
      return writer.byte(LEDGER_REJECTIONS.indexOf(result.reason)).done();
  }
}

function decodeResult(bytes: Uint8Array): LedgerResult | null {
  const reader = new Reader(bytes);
  let result: LedgerResult | null;
  switch (reader.byte()) {
    case RESULT_TAGS.ok:
      result = { kind: 'ok' };
      break;
    case RESULT_TAGS.balance: {
      const amount = reader.amount();
      result = amount === null ? null : { kind: 'balance', amount };
      break;
    }
    case RESULT_TAGS.total: {
      const amount = reader.amount();
      const accounts = reader.amount();
      result =
        amount === null || accounts === null || accounts > BigInt(LEDGER_LIMITS.maxAccounts)
          ? null
          : { kind: 'total', amount, accounts: Number(accounts) };
      break;
    }
    case RESULT_TAGS.rejected: {
      const reason = LEDGER_REJECTIONS[reader.byte() ?? -1];
      result = reason === undefined ? null : { kind: 'rejected', reason };
      break;
    }
    default:
      return null;
  }
  return result !== null && reader.finished ? result : null;
}

/** The ledger's codecs, shared by the service (service.ts) and its clients (cli.ts, TypedClient). */
export const ledgerOperations = defineOperations<LedgerOperation, LedgerResult>({
  encodeOperation,
  decodeOperation,
  encodeResult,
  decodeResult,
  isReadOnly: (operation) => operation.kind === 'balance' || operation.kind === 'total',
});
