/**
 * Branded identifiers. A `ReplicaId` cannot be passed where a `SequenceNumber` is expected even
 * though both are numbers at run time; the constructors below are the only way to make them and
 * they check the invariant each kind of id has.
 */

declare const brand: unique symbol;
export type Brand<Value, Name extends string> = Value & { readonly [brand]: Name };

/** Index of a replica in the configuration, 0 ≤ id < n. */
export type ReplicaId = Brand<number, 'ReplicaId'>;
/** Name of a client principal as written in the configuration (see CLIENT_ID_PATTERN). */
export type ClientId = Brand<string, 'ClientId'>;
/** View (leader term) number; the leader of view v is replica v mod n. */
export type ViewNumber = Brand<number, 'ViewNumber'>;
/** Position of a batch in the total order; 0 is the genesis state, batches start at 1. */
export type SequenceNumber = Brand<number, 'SequenceNumber'>;
/** Per-client request counter chosen by the client, strictly increasing per client. */
export type RequestNumber = Brand<number, 'RequestNumber'>;
/** Generation of a replica's session keys; it grows by one at every rejuvenation. */
export type KeyEpoch = Brand<number, 'KeyEpoch'>;
/** SHA-256 output, always DIGEST_BYTES long. */
export type Digest = Brand<Uint8Array, 'Digest'>;
/** Ed25519 signature, always SIGNATURE_BYTES long. */
export type Signature = Brand<Uint8Array, 'Signature'>;

export const DIGEST_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** Request MACs are HMAC-SHA256 truncated to 128 bits. */
export const MAC_BYTES = 16;
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Ids and counters travel as unsigned 32-bit (replica, epoch) or 53-bit safe integers. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

/** Assertion that stays on in production: an invariant that does not hold is a bug. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

function assertCounter(value: number, what: string, max: number = MAX_COUNTER): void {
  // Written out rather than via assert(): the message string must not be built on the hot path.
  if (!(Number.isSafeInteger(value) && value >= 0 && value <= max)) {
    throw new InvariantViolation(`${what} out of range: ${value}`);
  }
}

export function replicaId(value: number): ReplicaId {
  assertCounter(value, 'replica id', 0xffff);
  return value as ReplicaId;
}
export function clientId(value: string): ClientId {
  assert(CLIENT_ID_PATTERN.test(value), `invalid client id: ${JSON.stringify(value)}`);
  return value as ClientId;
}
export function isValidClientId(value: string): value is ClientId {
  return CLIENT_ID_PATTERN.test(value);
}
export function viewNumber(value: number): ViewNumber {
  assertCounter(value, 'view number');
  return value as ViewNumber;
}
export function sequenceNumber(value: number): SequenceNumber {
  assertCounter(value, 'sequence number');
  return value as SequenceNumber;
}
export function requestNumber(value: number): RequestNumber {
  assertCounter(value, 'request number');
  return value as RequestNumber;
}
export function keyEpoch(value: number): KeyEpoch {
  assertCounter(value, 'key epoch', 0xffffffff);
  return value as KeyEpoch;
}
export function digest(bytes: Uint8Array): Digest {
  assert(bytes.length === DIGEST_BYTES, `digest must be ${DIGEST_BYTES} bytes, got ${bytes.length}`);
  return bytes as Digest;
}
export function signature(bytes: Uint8Array): Signature {
  assert(bytes.length === SIGNATURE_BYTES, `signature must be ${SIGNATURE_BYTES} bytes, got ${bytes.length}`);
  return bytes as Signature;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

const hexDigits = '0123456789abcdef';
const HEX_CHUNK_BYTES = 256;
/** The two character codes of each byte's hex, and a buffer to spell a chunk of bytes in. */
const hexHigh = Uint16Array.from({ length: 256 }, (_, byte) => hexDigits.charCodeAt(byte >> 4));
const hexLow = Uint16Array.from({ length: 256 }, (_, byte) => hexDigits.charCodeAt(byte & 15));
const hexCodes = new Uint16Array(2 * HEX_CHUNK_BYTES);

/** Lower-case hex, used as a map key for digests and in logs. */
export function toHex(bytes: Uint8Array): string {
  // Digests are hexed at nearly every step: one flat string from character codes, rather than a
  // string grown two characters at a time (64 intermediate strings for a digest).
  let out = '';
  for (let start = 0; start < bytes.length; start += HEX_CHUNK_BYTES) {
    const end = Math.min(bytes.length, start + HEX_CHUNK_BYTES);
    for (let index = start; index < end; index++) {
      const byte = bytes[index]!;
      hexCodes[2 * (index - start)] = hexHigh[byte]!;
      hexCodes[2 * (index - start) + 1] = hexLow[byte]!;
    }
    const chunk = String.fromCharCode.apply(
      null,
      hexCodes.subarray(0, 2 * (end - start)) as unknown as number[],
    );
    out = start === 0 ? chunk : out + chunk;
  }
  return out;
}
