/**
 * Ed25519 signing keys and X25519 key-agreement keys as node:crypto KeyObjects.
 *
 * Every key is turned into a KeyObject exactly once, here, and the object is kept: importing one
 * per call would add a tenth to a quarter of a signature check to the hot path.
 * Keys travel (config files, the simulator's seed derivation) as raw 32-byte strings: the public
 * key, and for private keys the RFC 8032 / RFC 7748 seed, from which node rebuilds the rest.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { assert, InvariantViolation } from '../messages/ids.js';

/** Raw Ed25519 and X25519 public keys and private seeds are all 32 bytes. */
export const KEY_BYTES = 32;

export interface SigningPublicKey {
  /** Tells the key families apart: both are 32 bytes, and mixing them up must not type-check. */
  readonly kind: 'ed25519-public';
  readonly keyObject: KeyObject;
  /** Raw public key, KEY_BYTES long. */
  readonly bytes: Uint8Array;
}

export interface SigningKeyPair {
  readonly kind: 'ed25519-key-pair';
  readonly privateKey: KeyObject;
  readonly publicKey: SigningPublicKey;
}

export interface AgreementPublicKey {
  readonly kind: 'x25519-public';
  readonly keyObject: KeyObject;
  /** Raw public key, KEY_BYTES long. */
  readonly bytes: Uint8Array;
}

export interface AgreementKeyPair {
  readonly kind: 'x25519-key-pair';
  readonly privateKey: KeyObject;
  readonly publicKey: AgreementPublicKey;
}

// Node 20 cannot import or export raw asymmetric keys. It takes them as JWK (RFC 8037: the raw
// key base64url-encoded) or wrapped in DER (PKCS#8, SPKI). JWK is the one used: OpenSSL 3's DER
// decoders cost 80-400 µs per key on this hardware against 2-40 µs for JWK, and keys are imported
// on every transport handshake and every key certificate, most of them while a replica recovers.
// The PKCS#8 prefixes (RFC 8410) remain for the fallback below.
type OkpCurve = 'Ed25519' | 'X25519';
const ED25519_PKCS8_PREFIX = hexBytes('302e020100300506032b657004220420');
const X25519_PKCS8_PREFIX = hexBytes('302e020100300506032b656e04220420');

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function concatenate(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + raw.length);
  out.set(prefix, 0);
  out.set(raw, prefix.length);
  return out;
}

function base64url(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url');
}

function assertKeyLength(raw: Uint8Array, what: string): void {
  assert(raw.length === KEY_BYTES, `${what} must be ${KEY_BYTES} bytes, got ${raw.length}`);
}

/**
 * A private key from its 32-byte seed. Node rebuilds the public half from `d` and only checks that
 * `x` is a string, so the JWK carries an empty one. Should a later Node insist on a matching `x`,
 * the PKCS#8 import (slower, same key) takes over rather than fail.
 */
function importPrivateKey(curve: OkpCurve, pkcs8Prefix: Uint8Array, seed: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: curve, d: base64url(seed), x: '' }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: concatenate(pkcs8Prefix, seed), format: 'der', type: 'pkcs8' });
  }
}

/** Node's own parse errors become InvariantViolation so callers handle one kind of failure. */
function importPublicKey(curve: OkpCurve, raw: Uint8Array, what: string): KeyObject {
  assertKeyLength(raw, what);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: curve, x: base64url(raw) }, format: 'jwk' });
  } catch (error) {
    throw new InvariantViolation(`invalid ${what}`, { cause: error });
  }
}

/** A JWK member of an exported key as raw bytes (a copy: callers never alias node's buffer). */
function exportedMember(keyObject: KeyObject, member: 'x' | 'd'): Uint8Array {
  const encoded = keyObject.export({ format: 'jwk' })[member];
  assert(typeof encoded === 'string', `an exported OKP key has ${member}`);
  const raw = Uint8Array.from(Buffer.from(encoded, 'base64url'));
  assertKeyLength(raw, `exported key member ${member}`);
  return raw;
}

function rawPublicKey(keyObject: KeyObject): Uint8Array {
  return exportedMember(keyObject, 'x');
}

function rawSeed(privateKey: KeyObject): Uint8Array {
  return exportedMember(privateKey, 'd');
}

// ───────────────────────────── Ed25519 ─────────────────────────────

/** Deterministic: the same 32-byte seed always gives the same key pair (the simulator relies on it). */
export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  assertKeyLength(seed, 'Ed25519 seed');
  const privateKey = importPrivateKey('Ed25519', ED25519_PKCS8_PREFIX, seed);
  const publicKeyObject = createPublicKey(privateKey);
  return {
    kind: 'ed25519-key-pair',
    privateKey,
    publicKey: { kind: 'ed25519-public', keyObject: publicKeyObject, bytes: rawPublicKey(publicKeyObject) },
  };
}

export function generateSigningKeyPair(): SigningKeyPair {
  return signingKeyPairFromSeed(randomBytes(KEY_BYTES));
}

/** Throws InvariantViolation on a wrong length or bytes node rejects as a key. */
export function signingPublicKeyFromBytes(raw: Uint8Array): SigningPublicKey {
  const keyObject = importPublicKey('Ed25519', raw, 'Ed25519 public key');
  return { kind: 'ed25519-public', keyObject, bytes: Uint8Array.from(raw) };
}

/** Like signingPublicKeyFromBytes, for untrusted input: null instead of an exception. */
export function tryParseSigningPublicKey(raw: Uint8Array): SigningPublicKey | null {
  if (raw.length !== KEY_BYTES) return null;
  try {
    return signingPublicKeyFromBytes(raw);
  } catch {
    return null;
  }
}

/** The 32-byte seed the key pair was made from (what a config file stores). */
export function signingSeed(keyPair: SigningKeyPair): Uint8Array {
  return rawSeed(keyPair.privateKey);
}

// ───────────────────────────── X25519 ─────────────────────────────

/** Deterministic: the same 32-byte seed always gives the same key pair. */
export function agreementKeyPairFromSeed(seed: Uint8Array): AgreementKeyPair {
  assertKeyLength(seed, 'X25519 private key');
  const privateKey = importPrivateKey('X25519', X25519_PKCS8_PREFIX, seed);
  const publicKeyObject = createPublicKey(privateKey);
  return {
    kind: 'x25519-key-pair',
    privateKey,
    publicKey: { kind: 'x25519-public', keyObject: publicKeyObject, bytes: rawPublicKey(publicKeyObject) },
  };
}

export function generateAgreementKeyPair(): AgreementKeyPair {
  return agreementKeyPairFromSeed(randomBytes(KEY_BYTES));
}

/** A fixed scalar used only to probe public keys; it protects nothing, so it need not be secret. */
let probeKeyPair: AgreementKeyPair | undefined;

/**
 * Throws InvariantViolation on a wrong length, bytes node rejects, or a small-order point. A
 * small-order point makes every X25519 result all-zero, so a party registering one would share the
 * same publicly known MAC key with everybody; one probe agreement at import time (RFC 7748 §6.1's
 * all-zero check, which OpenSSL performs) keeps such keys out of the registry.
 */
export function agreementPublicKeyFromBytes(raw: Uint8Array): AgreementPublicKey {
  const keyObject = importPublicKey('X25519', raw, 'X25519 public key');
  probeKeyPair ??= agreementKeyPairFromSeed(new Uint8Array(KEY_BYTES).fill(0x42));
  try {
    diffieHellman({ privateKey: probeKeyPair.privateKey, publicKey: keyObject });
  } catch (error) {
    throw new InvariantViolation('X25519 public key is a small-order point', { cause: error });
  }
  return { kind: 'x25519-public', keyObject, bytes: Uint8Array.from(raw) };
}

/** Like agreementPublicKeyFromBytes, for untrusted input: null instead of an exception. */
export function tryParseAgreementPublicKey(raw: Uint8Array): AgreementPublicKey | null {
  if (raw.length !== KEY_BYTES) return null;
  try {
    return agreementPublicKeyFromBytes(raw);
  } catch {
    return null;
  }
}

/** The 32-byte private scalar the key pair was made from (what a config file stores). */
export function agreementSeed(keyPair: AgreementKeyPair): Uint8Array {
  return rawSeed(keyPair.privateKey);
}

// ───────────────────────────── seeds ─────────────────────────────

const SEED_DERIVATION_SALT = new TextEncoder().encode('phalanx-seed-v1');

/**
 * A 32-byte seed derived from `masterSeed` for the purpose `label` (HKDF-SHA256). Distinct labels
 * give independent seeds, so a simulator can make every key of a run from one seed (e.g. label
 * 'replica:3|epoch:2|ed25519'), and one seed is never used for two key types.
 */
export function deriveSeed(masterSeed: Uint8Array, label: string): Uint8Array {
  assert(masterSeed.length >= KEY_BYTES, `master seed must be at least ${KEY_BYTES} bytes`);
  return new Uint8Array(
    hkdfSync('sha256', masterSeed, SEED_DERIVATION_SALT, new TextEncoder().encode(label), KEY_BYTES),
  );
}

// ───────────────────────────── text form ─────────────────────────────

/** Standard base64 of a raw key or seed, as written in config files. */
export function keyToBase64(raw: Uint8Array): string {
  assertKeyLength(raw, 'key');
  return Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64');
}

/**
 * Inverse of keyToBase64. Strict: Buffer.from(…, 'base64') silently skips invalid characters, so
 * the text is re-encoded and compared, and a typo in a config file fails here rather than later.
 */
export function keyFromBase64(text: string): Uint8Array {
  const decoded = Buffer.from(text, 'base64');
  // The text is not echoed in the message: it may be a private seed.
  assert(
    decoded.length === KEY_BYTES && decoded.toString('base64') === text,
    `not a base64-encoded ${KEY_BYTES}-byte key (${text.length} characters)`,
  );
  return Uint8Array.from(decoded);
}
