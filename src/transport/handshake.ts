/**
 * Channel security for the TCP transport, as socket-free state machines fed bytes: a SIGMA-style
 * mutually authenticated key exchange (signed ephemeral X25519 Diffie-Hellman, Ed25519 identity
 * keys) followed by an AES-256-GCM record layer. tcp.ts only moves bytes between a socket and a
 * SecureChannel; everything a peer can get wrong is decided here, so it is unit-tested here.
 *
 * ── Handshake (protocol version 2) ─────────────────────────────────────────────────────────────
 *
 * Every handshake message travels as `u32 big-endian length ‖ body`, the body at most
 * HANDSHAKE_LIMITS.maxHandshakeMessageBytes. NodeId = u8 kind (1 replica, 2 client) then a u16
 * replica id or a varuint-length-prefixed client id (CLIENT_ID_PATTERN). All integers big-endian.
 *
 *   I → R  HELLO        u8 1 ‖ "PHLX" ‖ u16 version ‖ NodeId I ‖ u32 epoch I ‖ X25519 e_I (32)
 *                       ‖ nonce_I (32) ‖ NodeId R (the responder I means to reach)
 *   R → I  HELLO-REPLY  u8 2 ‖ NodeId R ‖ u32 epoch R ‖ X25519 e_R (32) ‖ nonce_R (32) ‖ CertifiedKey R
 *                       ‖ sig_R (64) = Ed25519_R("phalanx/transport-responder/v2" ‖ H(HELLO, REPLY without sig_R))
 *   I → R  FINISH       u8 3 ‖ CertifiedKey I
 *                       ‖ sig_I (64) = Ed25519_I("phalanx/transport-initiator/v2" ‖ H(HELLO, REPLY, FINISH without sig_I))
 *   R → I  first record (normally empty): key confirmation, I counts the channel as up when it opens.
 *
 *   CertifiedKey = u8 0                                            (no certificate)
 *                | u8 1 ‖ Ed25519 public key (32) ‖ varuint length ‖ certificate (1..maxCertificateBytes)
 *
 *   H(m1, …, mk) = SHA-256(u32 len(m1) ‖ m1 ‖ … ‖ u32 len(mk) ‖ mk); the tags are written as
 *   varuint-length-prefixed ASCII, like every signing domain of messages/signing.ts.
 *
 * Each side checks the other's signature under the key `ChannelKeyDirectory.acceptableKeys(peer)`
 * lists for the epoch the peer announced. When it lists none but the peer sent a certificate (an
 * opaque encoded KeyCertificate: the peer's guardian vouching for its key of that epoch), the
 * directory's `admitCertifiedKey` may admit the key the certificate names; the signature is then
 * checked under that key. Each signature covers its signer's certificate (sig_R the reply, sig_I the
 * whole FINISH before it), so a certificate cannot be swapped in transit without breaking it.
 * Both signatures cover both identities, both ephemeral keys and both nonces, so neither can be
 * replayed into another session or reflected (the tags differ per role), and the signer vouches
 * for whom it is talking to (no identity misbinding). Identities and certificates are sent in the
 * clear: this handshake authenticates, it does not hide who connects to whom.
 *
 * Version 1 differed in carrying no certificates (and in its tags); it is refused, not spoken.
 *
 * ── Keys ───────────────────────────────────────────────────────────────────────────────────────
 *
 *   okm = HKDF-SHA256(ikm = X25519(e_I, e_R), salt = H(HELLO, REPLY, FINISH),
 *                     info = "phalanx/transport-keys/v2", 120 bytes)
 *       = key I→R (32) ‖ IV I→R (12) ‖ key R→I (32) ‖ IV R→I (12) ‖ channel binding (32)
 *
 * The ephemeral keys are discarded after the handshake (forward secrecy).
 *
 * ── Records ────────────────────────────────────────────────────────────────────────────────────
 *
 *   record    = u32 big-endian length L ‖ AES-256-GCM ciphertext ‖ 16-byte tag    (L = ciphertext + tag)
 *   plaintext = zero or more frames, each u32 big-endian length ‖ frame bytes
 *   nonce     = direction IV XOR (0⁴ ‖ u64 big-endian record counter);  additional data = the length
 *
 * The counter starts at 0 in each direction and is never sent: both ends imply it, so a record
 * that is replayed, dropped, re-injected or reordered is opened under the wrong nonce, fails
 * authentication, and the connection dies. A length above MAX_RECORD_BODY_BYTES is refused from
 * its four header bytes, before anything is buffered. Many small frames share one record, which is
 * what makes thousands of frames per second cheap (one cipher per record, not per frame).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import {
  InvariantViolation,
  isValidClientId,
  type KeyEpoch,
  keyEpoch,
  replicaId,
  SIGNATURE_BYTES,
} from '../messages/ids.js';
import {
  type AgreementKeyPair,
  generateAgreementKeyPair,
  KEY_BYTES,
  type SigningKeyPair,
  tryParseAgreementPublicKey,
} from '../crypto/keys.js';
import { signBytes, verifyBytes } from '../crypto/signatures.js';
import { ByteReader, type ByteWriter, DecodeError, encodeToBytes } from '../messages/bytes.js';
import { LIMITS } from '../messages/limits.js';
import {
  type ChannelKeyDirectory,
  type ChannelPublicKey,
  clientNode,
  type NodeId,
  nodeKey,
  replicaNode,
} from './transport.js';

// ───────────────────────────── constants and limits ─────────────────────────────

/** 2: the handshake carries key certificates. Nodes speaking any other version are refused. */
export const TRANSPORT_PROTOCOL_VERSION = 2;
/** Opens every HELLO, so that a stray HTTP client or port scanner is told apart from a peer. */
const HELLO_MAGIC = Uint8Array.from([0x50, 0x48, 0x4c, 0x58]); // "PHLX"

export const HANDSHAKE_LIMITS = {
  /**
   * Largest key certificate a HELLO-REPLY or FINISH may carry. An encoded KeyCertificate takes
   * about 140 bytes (two keys, a signature, an epoch and a time); the rest is headroom for fields
   * a later certificate format may add.
   */
  maxCertificateBytes: 512,
  /**
   * Largest handshake message body. The largest legitimate one (a HELLO-REPLY from a responder
   * with a 64-character client id carrying a certificate of maxCertificateBytes) is about 750
   * bytes; anything bigger is refused from its length prefix.
   */
  maxHandshakeMessageBytes: 1024,
  /** A connection that has not finished the handshake by then is closed (see tcp.ts). */
  handshakeTimeoutMilliseconds: 5000,
} as const;

export const LENGTH_PREFIX_BYTES = 4;
export const RECORD_TAG_BYTES = 16;
/** Each frame inside a record's plaintext is preceded by its u32 length. */
export const FRAME_HEADER_BYTES = 4;
/** A record must be able to carry one frame of the largest size on its own. */
export const MAX_RECORD_PLAINTEXT_BYTES = LIMITS.maxFrameBytes + FRAME_HEADER_BYTES;
/** Largest record length a receiver accepts: the largest plaintext plus the tag. */
export const MAX_RECORD_BODY_BYTES = MAX_RECORD_PLAINTEXT_BYTES + RECORD_TAG_BYTES;
/**
 * Records per direction and session. GCM with an implied counter nonce is safe far beyond this;
 * the cap only keeps the counter exactly representable as a JS number. At a million records per
 * second it lasts nine years, so hitting it means a bug, and the connection is re-established.
 */
export const MAX_RECORDS_PER_DIRECTION = 2 ** 48;

const NONCE_BYTES = 32;
const GCM_IV_BYTES = 12;
const AES_KEY_BYTES = 32;
export const CHANNEL_BINDING_BYTES = 32;

const MESSAGE_TYPE_HELLO = 1;
const MESSAGE_TYPE_REPLY = 2;
const MESSAGE_TYPE_FINISH = 3;

const NODE_KIND_REPLICA = 1;
const NODE_KIND_CLIENT = 2;

// Version 2's transcripts are laid out differently from version 1's: new tags, so that no
// signature or key of one version can ever be taken for the other's.
const RESPONDER_SIGNATURE_DOMAIN = 'phalanx/transport-responder/v2';
const INITIATOR_SIGNATURE_DOMAIN = 'phalanx/transport-initiator/v2';
const KEY_DERIVATION_INFO = new TextEncoder().encode('phalanx/transport-keys/v2');

// ───────────────────────────── identities ─────────────────────────────

/** What a node proves in the handshake: who it is, and the key (of which epoch) it signs with. */
export interface ChannelIdentity {
  readonly node: NodeId;
  readonly keyEpoch: KeyEpoch;
  readonly signingKeys: SigningKeyPair;
  /**
   * An encoded KeyCertificate for `signingKeys` at `keyEpoch` (1 to
   * HANDSHAKE_LIMITS.maxCertificateBytes bytes), sent in every handshake so that a peer whose key
   * directory does not list this key yet can admit it (ChannelKeyDirectory.admitCertifiedKey).
   * Omitted where every peer knows the key already (keys from the configuration).
   */
  readonly certificate?: Uint8Array;
}

/**
 * Throws InvariantViolation when `identity` cannot be sent in a handshake (a certificate that is
 * empty or above maxCertificateBytes): a configuration error, caught when the identity is set
 * rather than in every handshake.
 */
export function checkChannelIdentity(identity: ChannelIdentity): void {
  const certificate = identity.certificate;
  if (certificate === undefined) return;
  if (certificate.length === 0 || certificate.length > HANDSHAKE_LIMITS.maxCertificateBytes) {
    throw new InvariantViolation(
      `${describeNode(identity.node)}: a key certificate must have 1 to ${HANDSHAKE_LIMITS.maxCertificateBytes} bytes (maxCertificateBytes), got ${certificate.length}`,
    );
  }
}

/** A signing key with the certificate vouching for it, as HELLO-REPLY and FINISH carry them. */
export interface CertifiedKey {
  /** Raw 32-byte Ed25519 public key: the one its sender signs the handshake with. */
  readonly publicKey: Uint8Array;
  /** An encoded KeyCertificate, opaque here: only the key directory interprets it. */
  readonly certificate: Uint8Array;
}

function certifiedKeyOf(identity: ChannelIdentity): CertifiedKey | null {
  const certificate = identity.certificate;
  if (certificate === undefined) return null;
  return { publicKey: identity.signingKeys.publicKey.bytes, certificate };
}

/** The far end of an established channel; `node` and `keyEpoch` were proven by a signature. */
export interface AuthenticatedPeer {
  readonly node: NodeId;
  readonly keyEpoch: KeyEpoch;
  /** True when the key was admitted on the strength of the certificate the peer sent. */
  readonly admittedByCertificate: boolean;
  /**
   * 32 bytes both ends derived from this session's secret and transcript, and nobody else knows:
   * a layer above can sign it to tie a statement to this very connection.
   */
  readonly channelBinding: Uint8Array;
}

/** 'replica 2' / 'client alice': how nodes are named in rejection reasons. */
export function describeNode(node: NodeId): string {
  return `${node.kind} ${node.id}`;
}

export function sameNode(a: NodeId, b: NodeId): boolean {
  return a.kind === b.kind && a.id === b.id;
}

/**
 * A ChannelKeyDirectory kept in a map: for tests, tools, and nodes whose peers' keys come from a
 * static configuration. `set` replaces a peer's acceptable keys at once (retiring the old ones).
 */
export class StaticKeyDirectory implements ChannelKeyDirectory {
  readonly #keys = new Map<string, readonly ChannelPublicKey[]>();

  constructor(entries: Iterable<readonly [NodeId, readonly ChannelPublicKey[]]> = []) {
    for (const [node, keys] of entries) this.set(node, keys);
  }

  set(node: NodeId, keys: readonly ChannelPublicKey[]): void {
    this.#keys.set(
      nodeKey(node),
      keys.map((key) => ({ keyEpoch: key.keyEpoch, publicKey: Uint8Array.from(key.publicKey) })),
    );
  }

  delete(node: NodeId): boolean {
    return this.#keys.delete(nodeKey(node));
  }

  acceptableKeys(peer: NodeId): readonly ChannelPublicKey[] {
    return this.#keys.get(nodeKey(peer)) ?? [];
  }
}

/** The public half of a channel identity, as a directory lists it. */
export function channelPublicKey(identity: ChannelIdentity): ChannelPublicKey {
  return { keyEpoch: identity.keyEpoch, publicKey: identity.signingKeys.publicKey.bytes };
}

// ───────────────────────────── handshake messages ─────────────────────────────

export interface HelloMessage {
  readonly version: number;
  readonly initiator: NodeId;
  readonly initiatorKeyEpoch: KeyEpoch;
  readonly ephemeralPublicKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly expectedResponder: NodeId;
}

export interface HelloReplyMessage {
  readonly responder: NodeId;
  readonly responderKeyEpoch: KeyEpoch;
  readonly ephemeralPublicKey: Uint8Array;
  readonly nonce: Uint8Array;
  /** The responder's key and its certificate, or null when it sends none. */
  readonly certifiedKey: CertifiedKey | null;
  readonly signature: Uint8Array;
}

export interface FinishMessage {
  /** The initiator's key and its certificate, or null when it sends none. */
  readonly certifiedKey: CertifiedKey | null;
  readonly signature: Uint8Array;
}

/** A decoder's answer: never an exception, so untrusted bytes cannot throw out of a parser. */
export type Decoded<Value> =
  { readonly ok: true; readonly value: Value } | { readonly ok: false; readonly reason: string };

function writeNodeId(writer: ByteWriter, node: NodeId): void {
  if (node.kind === 'replica') {
    writer.u8(NODE_KIND_REPLICA);
    writer.u16(node.id);
  } else {
    writer.u8(NODE_KIND_CLIENT);
    writer.string(node.id);
  }
}

function readNodeId(reader: ByteReader, what: string): NodeId {
  const kind = reader.u8(`${what} kind`);
  if (kind === NODE_KIND_REPLICA) return replicaNode(replicaId(reader.u16(`${what} replica id`)));
  if (kind === NODE_KIND_CLIENT) {
    const name = reader.string(LIMITS.maxClientIdBytes, `${what} client id`, 'maxClientIdBytes');
    if (!isValidClientId(name))
      reader.fail(`${what} client id ${JSON.stringify(name)} is not a valid client id`);
    return clientNode(name);
  }
  return reader.fail(`${what} has unknown node kind ${kind}`);
}

function writeCertifiedKey(writer: ByteWriter, certifiedKey: CertifiedKey | null): void {
  if (certifiedKey === null) {
    writer.bool(false);
    return;
  }
  writer.bool(true);
  writer.bytes(certifiedKey.publicKey);
  writer.lengthPrefixedBytes(certifiedKey.certificate);
}

function readCertifiedKey(reader: ByteReader): CertifiedKey | null {
  if (!reader.bool('certificate present')) return null;
  const publicKey = copyOf(reader.bytes(KEY_BYTES, 'certified public key'));
  const certificate = reader.lengthPrefixedBytes(
    HANDSHAKE_LIMITS.maxCertificateBytes,
    'key certificate',
    'maxCertificateBytes',
  );
  // An empty certificate certifies nothing; "none" has its own encoding.
  if (certificate.length === 0) reader.fail('empty key certificate');
  return { publicKey, certificate: copyOf(certificate) };
}

function writeHelloBody(writer: ByteWriter, hello: HelloMessage): void {
  writer.u8(MESSAGE_TYPE_HELLO);
  writer.bytes(HELLO_MAGIC);
  writer.u16(hello.version);
  writeNodeId(writer, hello.initiator);
  writer.u32(hello.initiatorKeyEpoch);
  writer.bytes(hello.ephemeralPublicKey);
  writer.bytes(hello.nonce);
  writeNodeId(writer, hello.expectedResponder);
}

/** Everything of a HELLO-REPLY but its signature: the part the signature covers. */
function writeReplyUnsigned(writer: ByteWriter, reply: Omit<HelloReplyMessage, 'signature'>): void {
  writer.u8(MESSAGE_TYPE_REPLY);
  writeNodeId(writer, reply.responder);
  writer.u32(reply.responderKeyEpoch);
  writer.bytes(reply.ephemeralPublicKey);
  writer.bytes(reply.nonce);
  writeCertifiedKey(writer, reply.certifiedKey);
}

/** Everything of a FINISH but its signature: the part the signature covers. */
function writeFinishUnsigned(writer: ByteWriter, finish: Omit<FinishMessage, 'signature'>): void {
  writer.u8(MESSAGE_TYPE_FINISH);
  writeCertifiedKey(writer, finish.certifiedKey);
}

export function encodeHello(hello: HelloMessage): Uint8Array {
  return encodeToBytes(hello, writeHelloBody);
}

export function encodeHelloReply(reply: HelloReplyMessage): Uint8Array {
  return encodeToBytes(reply, (writer, value) => {
    writeReplyUnsigned(writer, value);
    writer.bytes(value.signature);
  });
}

export function encodeFinish(finish: FinishMessage): Uint8Array {
  return encodeToBytes(finish, (writer, value) => {
    writeFinishUnsigned(writer, value);
    writer.bytes(value.signature);
  });
}

/** Runs a ByteReader-based parse; DecodeError becomes a reason, anything else is a bug and throws. */
function decodeWith<Value>(
  bytes: Uint8Array,
  what: string,
  read: (reader: ByteReader) => Value,
): Decoded<Value> {
  if (bytes.length > HANDSHAKE_LIMITS.maxHandshakeMessageBytes) {
    return {
      ok: false,
      reason: `${what} of ${bytes.length} bytes exceeds maxHandshakeMessageBytes (${HANDSHAKE_LIMITS.maxHandshakeMessageBytes})`,
    };
  }
  try {
    const reader = new ByteReader(bytes);
    const value = read(reader);
    reader.expectEnd(what);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, reason: `malformed ${what}: ${error.message}` };
    // replicaId() and friends throw InvariantViolation on out-of-range input read from the wire.
    if (error instanceof InvariantViolation)
      return { ok: false, reason: `malformed ${what}: ${error.message}` };
    throw error;
  }
}

function expectMessageType(reader: ByteReader, expected: number, what: string): void {
  const type = reader.u8('message type');
  if (type !== expected) reader.fail(`expected ${what} (message type ${expected}), got message type ${type}`);
}

function copyOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes);
}

export function decodeHello(bytes: Uint8Array): Decoded<HelloMessage> {
  return decodeWith(bytes, 'HELLO', (reader) => {
    expectMessageType(reader, MESSAGE_TYPE_HELLO, 'HELLO');
    const magic = reader.bytes(HELLO_MAGIC.length, 'protocol magic');
    for (let index = 0; index < HELLO_MAGIC.length; index++) {
      if (magic[index] !== HELLO_MAGIC[index]) reader.fail('not a Phalanx transport HELLO (bad magic)');
    }
    const version = reader.u16('protocol version');
    const initiator = readNodeId(reader, 'initiator');
    const initiatorKeyEpoch = keyEpoch(reader.u32('initiator key epoch'));
    const ephemeralPublicKey = copyOf(reader.bytes(KEY_BYTES, 'ephemeral public key'));
    const nonce = copyOf(reader.bytes(NONCE_BYTES, 'nonce'));
    const expectedResponder = readNodeId(reader, 'expected responder');
    return { version, initiator, initiatorKeyEpoch, ephemeralPublicKey, nonce, expectedResponder };
  });
}

/**
 * The protocol version a HELLO announces, read before the rest is parsed (a later version may lay
 * the rest out differently), or null when the bytes do not start like a HELLO at all.
 */
export function helloVersion(bytes: Uint8Array): number | null {
  const versionOffset = 1 + HELLO_MAGIC.length;
  if (bytes.length < versionOffset + 2 || bytes[0] !== MESSAGE_TYPE_HELLO) return null;
  for (let index = 0; index < HELLO_MAGIC.length; index++) {
    if (bytes[1 + index] !== HELLO_MAGIC[index]) return null;
  }
  return (bytes[versionOffset]! << 8) | bytes[versionOffset + 1]!;
}

export function decodeHelloReply(bytes: Uint8Array): Decoded<HelloReplyMessage> {
  return decodeWith(bytes, 'HELLO-REPLY', (reader) => {
    expectMessageType(reader, MESSAGE_TYPE_REPLY, 'HELLO-REPLY');
    const responder = readNodeId(reader, 'responder');
    const responderKeyEpoch = keyEpoch(reader.u32('responder key epoch'));
    const ephemeralPublicKey = copyOf(reader.bytes(KEY_BYTES, 'ephemeral public key'));
    const nonce = copyOf(reader.bytes(NONCE_BYTES, 'nonce'));
    const certifiedKey = readCertifiedKey(reader);
    const signature = copyOf(reader.bytes(SIGNATURE_BYTES, 'signature'));
    return { responder, responderKeyEpoch, ephemeralPublicKey, nonce, certifiedKey, signature };
  });
}

export function decodeFinish(bytes: Uint8Array): Decoded<FinishMessage> {
  return decodeWith(bytes, 'FINISH', (reader) => {
    expectMessageType(reader, MESSAGE_TYPE_FINISH, 'FINISH');
    const certifiedKey = readCertifiedKey(reader);
    return { certifiedKey, signature: copyOf(reader.bytes(SIGNATURE_BYTES, 'signature')) };
  });
}

/** `u32 length ‖ body`: how handshake messages and records travel. */
export function withLengthPrefix(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, LENGTH_PREFIX_BYTES);
  return out;
}

// ───────────────────────────── transcript and keys ─────────────────────────────

/** H(m1, …, mk): each message length-prefixed, so message boundaries are part of what is hashed. */
export function transcriptHash(messages: readonly Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  const length = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
  for (const message of messages) {
    length.writeUInt32BE(message.length, 0);
    hash.update(length);
    hash.update(message);
  }
  return new Uint8Array(hash.digest());
}

function signaturePayload(domain: string, hash: Uint8Array): Uint8Array {
  return encodeToBytes(hash, (writer, value) => {
    writer.string(domain);
    writer.bytes(value);
  });
}

/** One direction of the record layer. */
export interface DirectionKeys {
  readonly key: KeyObject;
  /** 12 bytes; the record counter is XORed into its last 8. */
  readonly iv: Uint8Array;
}

export interface SessionKeys {
  readonly initiatorToResponder: DirectionKeys;
  readonly responderToInitiator: DirectionKeys;
  readonly channelBinding: Uint8Array;
}

export function deriveSessionKeys(sharedSecret: Uint8Array, transcript: Uint8Array): SessionKeys {
  const length = 2 * (AES_KEY_BYTES + GCM_IV_BYTES) + CHANNEL_BINDING_BYTES;
  const material = Buffer.from(hkdfSync('sha256', sharedSecret, transcript, KEY_DERIVATION_INFO, length));
  let offset = 0;
  const take = (count: number): Buffer => {
    const part = Buffer.from(material.subarray(offset, offset + count));
    offset += count;
    return part;
  };
  const initiatorToResponder = { key: createSecretKey(take(AES_KEY_BYTES)), iv: take(GCM_IV_BYTES) };
  const responderToInitiator = { key: createSecretKey(take(AES_KEY_BYTES)), iv: take(GCM_IV_BYTES) };
  const channelBinding = new Uint8Array(take(CHANNEL_BINDING_BYTES));
  material.fill(0);
  return { initiatorToResponder, responderToInitiator, channelBinding };
}

function writeNonce(target: Buffer, iv: Uint8Array, counter: number): void {
  // The counter is below 2^48, so it splits exactly into a high and a low 32-bit word.
  const high = Math.floor(counter / 0x1_0000_0000);
  const low = counter >>> 0;
  target.set(iv.subarray(0, 4), 0);
  const ivView = Buffer.from(iv.buffer, iv.byteOffset, iv.length);
  target.writeUInt32BE((ivView.readUInt32BE(4) ^ high) >>> 0, 4);
  target.writeUInt32BE((ivView.readUInt32BE(8) ^ low) >>> 0, 8);
}

// ───────────────────────────── record layer ─────────────────────────────

/** Plaintext scratch shared by all sealers: sealing is synchronous, so one buffer serves everyone. */
let sealScratch = Buffer.allocUnsafe(64 * 1024);
/** A scratch buffer grown beyond this for a huge frame is dropped after use rather than kept. */
const MAX_RETAINED_SCRATCH_BYTES = 1024 * 1024;

/** Seals outgoing records for one direction of a session. */
export class RecordSealer {
  readonly #keys: DirectionKeys;
  readonly #nonce = Buffer.alloc(GCM_IV_BYTES);
  #counter = 0;

  constructor(keys: DirectionKeys) {
    this.#keys = keys;
  }

  get recordsSealed(): number {
    return this.#counter;
  }

  /** Plaintext bytes `frames[start..end)` take in one record. */
  static plaintextLength(frames: readonly Uint8Array[], start: number, end: number): number {
    let total = 0;
    for (let index = start; index < end; index++) total += FRAME_HEADER_BYTES + frames[index]!.length;
    return total;
  }

  /**
   * One record (length prefix included) carrying `frames[start..end)` in order; zero frames make
   * an empty record. Throws InvariantViolation when the frames do not fit in one record or the
   * session ran out of record numbers: callers check sizes first, so either is a bug.
   */
  seal(frames: readonly Uint8Array[], start = 0, end = frames.length): Buffer {
    const plaintextLength = RecordSealer.plaintextLength(frames, start, end);
    if (plaintextLength > MAX_RECORD_PLAINTEXT_BYTES) {
      throw new InvariantViolation(
        `record plaintext of ${plaintextLength} bytes exceeds ${MAX_RECORD_PLAINTEXT_BYTES}`,
      );
    }
    if (this.#counter >= MAX_RECORDS_PER_DIRECTION) {
      throw new InvariantViolation('session exhausted its record counter; re-handshake');
    }
    if (sealScratch.length < plaintextLength) sealScratch = Buffer.allocUnsafe(plaintextLength);
    const plaintext = sealScratch;
    let offset = 0;
    for (let index = start; index < end; index++) {
      const frame = frames[index]!;
      plaintext.writeUInt32BE(frame.length, offset);
      plaintext.set(frame, offset + FRAME_HEADER_BYTES);
      offset += FRAME_HEADER_BYTES + frame.length;
    }
    const bodyLength = plaintextLength + RECORD_TAG_BYTES;
    const record = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + bodyLength);
    record.writeUInt32BE(bodyLength, 0);
    writeNonce(this.#nonce, this.#keys.iv, this.#counter++);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.key, this.#nonce, {
      authTagLength: RECORD_TAG_BYTES,
    });
    cipher.setAAD(record.subarray(0, LENGTH_PREFIX_BYTES));
    const encrypted = cipher.update(plaintext.subarray(0, plaintextLength));
    const rest = cipher.final();
    record.set(encrypted, LENGTH_PREFIX_BYTES);
    record.set(rest, LENGTH_PREFIX_BYTES + encrypted.length);
    record.set(cipher.getAuthTag(), LENGTH_PREFIX_BYTES + plaintextLength);
    if (sealScratch.length > MAX_RETAINED_SCRATCH_BYTES) sealScratch = Buffer.allocUnsafe(64 * 1024);
    return record;
  }
}

/** Opens incoming records for one direction of a session, in order. */
export class RecordOpener {
  readonly #keys: DirectionKeys;
  readonly #nonce = Buffer.alloc(GCM_IV_BYTES);
  #counter = 0;

  constructor(keys: DirectionKeys) {
    this.#keys = keys;
  }

  get recordsOpened(): number {
    return this.#counter;
  }

  /**
   * The plaintext of the next record, or a reason it is refused. `header` is the record's 4-byte
   * length prefix (authenticated as additional data), `body` the ciphertext and tag. Only a record
   * that opens advances the counter; after a refusal the channel is dead anyway.
   */
  open(header: Uint8Array, body: Uint8Array): Decoded<Buffer> {
    if (body.length < RECORD_TAG_BYTES) {
      return { ok: false, reason: `record of ${body.length} bytes is shorter than its authentication tag` };
    }
    if (body.length > MAX_RECORD_BODY_BYTES) {
      return {
        ok: false,
        reason: `record of ${body.length} bytes exceeds the largest record (${MAX_RECORD_BODY_BYTES})`,
      };
    }
    if (this.#counter >= MAX_RECORDS_PER_DIRECTION) {
      return { ok: false, reason: 'session exhausted its record counter' };
    }
    writeNonce(this.#nonce, this.#keys.iv, this.#counter);
    const tagStart = body.length - RECORD_TAG_BYTES;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#keys.key, this.#nonce, {
        authTagLength: RECORD_TAG_BYTES,
      });
      decipher.setAAD(header);
      decipher.setAuthTag(body.subarray(tagStart));
      const plaintext = decipher.update(body.subarray(0, tagStart));
      const rest = decipher.final();
      this.#counter++;
      return { ok: true, value: rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest]) };
    } catch {
      return {
        ok: false,
        reason: `record ${this.#counter} does not authenticate (tampered, replayed, reordered or dropped)`,
      };
    }
  }
}

/**
 * Appends the frames of an opened record's plaintext to `frames`, or returns why the plaintext is
 * malformed (only an authenticated but broken peer can send one). Each frame is handed out as a
 * plain Uint8Array the receiver may keep: the sole frame of a record is a view of the plaintext
 * (which nothing else uses); frames sharing a record are copied, so a small kept frame does not
 * pin a large record in memory.
 */
export function splitRecordFrames(plaintext: Buffer, frames: Uint8Array[]): string | null {
  const total = plaintext.length;
  let offset = 0;
  while (offset < total) {
    if (total - offset < FRAME_HEADER_BYTES) {
      return `malformed record: ${total - offset} bytes left, too few for a frame header`;
    }
    const length = plaintext.readUInt32BE(offset);
    offset += FRAME_HEADER_BYTES;
    if (length > LIMITS.maxFrameBytes) {
      return `malformed record: frame of ${length} bytes exceeds maxFrameBytes (${LIMITS.maxFrameBytes})`;
    }
    if (length > total - offset) {
      return `malformed record: frame of ${length} bytes, only ${total - offset} left in the record`;
    }
    const isSoleFrame = offset === FRAME_HEADER_BYTES && length === total - offset;
    const view = new Uint8Array(plaintext.buffer, plaintext.byteOffset + offset, length);
    frames.push(isSoleFrame ? view : view.slice());
    offset += length;
  }
  return null;
}

// ───────────────────────────── stream reassembly ─────────────────────────────

/**
 * Reassembles `u32 length ‖ body` units from a byte stream that arrives in arbitrary chunks.
 * Chunks are kept as they arrive and joined only when a unit straddles them, so an 8 MiB record
 * arriving in 64 KiB pieces is copied once, not once per piece.
 */
export class LengthPrefixedReader {
  readonly #chunks: Buffer[] = [];
  /** Read position within #chunks[0]. */
  #offset = 0;
  #buffered = 0;

  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    this.#buffered += chunk.length;
  }

  /** The length announced by the next unit's header, or -1 while fewer than 4 bytes are buffered. */
  peekLength(): number {
    if (this.#buffered < LENGTH_PREFIX_BYTES) return -1;
    const first = this.#chunks[0]!;
    if (first.length - this.#offset >= LENGTH_PREFIX_BYTES) return first.readUInt32BE(this.#offset);
    return this.#copyOut(LENGTH_PREFIX_BYTES, false).readUInt32BE(0);
  }

  /** Removes and returns the next `count` bytes (a view when they lie in one chunk). */
  take(count: number): Buffer {
    if (count > this.#buffered)
      throw new InvariantViolation(`take(${count}) with ${this.#buffered} buffered`);
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#offset >= count) {
      const out = first.subarray(this.#offset, this.#offset + count);
      this.#offset += count;
      this.#buffered -= count;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return out;
    }
    return this.#copyOut(count, true);
  }

  /** Forgets everything buffered (after a failure: the rest of the stream is not read). */
  clear(): void {
    this.#chunks.length = 0;
    this.#offset = 0;
    this.#buffered = 0;
  }

  #copyOut(count: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(count);
    let written = 0;
    let chunkIndex = 0;
    let offset = this.#offset;
    while (written < count) {
      const chunk = this.#chunks[chunkIndex]!;
      const available = Math.min(chunk.length - offset, count - written);
      chunk.copy(out, written, offset, offset + available);
      written += available;
      offset += available;
      if (offset === chunk.length) {
        chunkIndex++;
        offset = 0;
      }
    }
    if (consume) {
      this.#chunks.splice(0, chunkIndex);
      this.#offset = offset;
      this.#buffered -= count;
    }
    return out;
  }
}

// ───────────────────────────── the channel state machine ─────────────────────────────

/** What one call to `SecureChannel.receive` produced. */
export interface ChannelStep {
  /** Bytes to write to the peer, in this order, before anything sealed later. */
  readonly outgoing: readonly Buffer[];
  /** Frames received, in order. */
  readonly frames: readonly Uint8Array[];
  /** The peer, on the step that completed the handshake; null otherwise. */
  readonly established: AuthenticatedPeer | null;
  /** Why the channel failed on this step (the connection must be closed); null otherwise. */
  readonly failure: string | null;
}

/**
 * The public-key operations of a handshake, each costing tens to hundreds of microseconds of CPU:
 * what an unauthenticated peer can make a node spend, so what refusals must come before.
 */
export type HandshakeOperation = 'key-generation' | 'key-agreement' | 'signature' | 'verification';

export interface InitiatorOptions {
  readonly identity: ChannelIdentity;
  /** The node this connection was dialed for; a responder proving any other identity is refused. */
  readonly expectedPeer: NodeId;
  readonly keys: ChannelKeyDirectory;
  /** Told just before each public-key operation of the channel (for metrics and tests). */
  readonly observe?: (operation: HandshakeOperation) => void;
}

export interface ResponderOptions {
  readonly identity: ChannelIdentity;
  readonly keys: ChannelKeyDirectory;
  /**
   * Policy on who may connect at all, asked with the (not yet authenticated) identity a HELLO
   * claims before any key work is done: a refusal reason, or null to go on.
   */
  readonly admit?: (claimed: NodeId) => string | null;
  /** Told just before each public-key operation of the channel (for metrics and tests). */
  readonly observe?: (operation: HandshakeOperation) => void;
}

export type ChannelPhase =
  | 'awaiting-hello'
  | 'awaiting-reply'
  | 'awaiting-finish'
  | 'awaiting-confirmation'
  | 'established'
  | 'failed';

class ChannelFailure extends Error {
  override readonly name = 'ChannelFailure';
}

/** The key the directory lists for `peer` at `epoch`, or null. */
function listedKey(keys: ChannelKeyDirectory, peer: NodeId, epoch: KeyEpoch): ChannelPublicKey | null {
  for (const candidate of keys.acceptableKeys(peer)) if (candidate.keyEpoch === epoch) return candidate;
  return null;
}

/** The key a peer's handshake signature must verify under, and how it came to be trusted. */
interface PeerKey {
  readonly publicKey: Uint8Array;
  readonly admittedByCertificate: boolean;
}

/**
 * The key `peer` must have signed with at `epoch`: the one the directory lists, or else the one
 * the peer's certificate names if the directory admits it. Throws a ChannelFailure saying why not.
 * A listed key wins over a certificate: clusters whose keys come from the configuration never
 * depend on one, and a peer cannot use a certificate to displace a key the directory holds.
 */
function resolvePeerKey(
  keys: ChannelKeyDirectory,
  peer: NodeId,
  epoch: KeyEpoch,
  certifiedKey: CertifiedKey | null,
): PeerKey {
  const listed = listedKey(keys, peer, epoch);
  if (listed !== null) return { publicKey: listed.publicKey, admittedByCertificate: false };
  if (certifiedKey !== null && keys.admitCertifiedKey !== undefined) {
    const admitted = keys.admitCertifiedKey(peer, epoch, certifiedKey.publicKey, certifiedKey.certificate);
    if (admitted === true) return { publicKey: certifiedKey.publicKey, admittedByCertificate: true };
    throw new ChannelFailure(
      `${describeNode(peer)} key epoch ${epoch} is not accepted: the key directory refused its certificate`,
    );
  }
  if (keys.acceptableKeys(peer).length === 0) throw new ChannelFailure(`unknown ${describeNode(peer)}`);
  throw new ChannelFailure(`${describeNode(peer)} key epoch ${epoch} is not accepted`);
}

/**
 * Whether a certificate could still make `peer`'s key at `epoch` acceptable, judged from the HELLO
 * alone (the initiator's certificate comes with FINISH). Answering no lets a responder refuse at
 * once, before any key generation, Diffie-Hellman or signature. No when the directory cannot admit
 * certified keys at all, when it says no certificate can vouch for `peer`
 * (`mayAdmitCertifiedKey`, by default: only replicas with an id below maxReplicas), or when it
 * already holds `epoch` or a newer one: a directory admits only epochs newer than every one it
 * knows (the ChannelKeyDirectory contract), so an older one could only be refused at FINISH.
 */
function certificateMayAdmit(keys: ChannelKeyDirectory, peer: NodeId, epoch: KeyEpoch): boolean {
  if (keys.admitCertifiedKey === undefined) return false;
  const admissible =
    keys.mayAdmitCertifiedKey?.(peer) ?? (peer.kind === 'replica' && peer.id < LIMITS.maxReplicas);
  if (!admissible) return false;
  for (const listed of keys.acceptableKeys(peer)) if (listed.keyEpoch >= epoch) return false;
  return true;
}

function agree(ownEphemeral: AgreementKeyPair, peerEphemeral: Uint8Array, what: string): Uint8Array {
  const peerKey = tryParseAgreementPublicKey(peerEphemeral);
  if (peerKey === null) throw new ChannelFailure(`ephemeral key of ${what} is not a valid X25519 key`);
  try {
    return new Uint8Array(
      diffieHellman({ privateKey: ownEphemeral.privateKey, publicKey: peerKey.keyObject }),
    );
  } catch {
    throw new ChannelFailure(`ephemeral key of ${what} gives no usable shared secret`);
  }
}

function unwrap<Value>(decoded: Decoded<Value>): Value {
  if (!decoded.ok) throw new ChannelFailure(decoded.reason);
  return decoded.value;
}

/**
 * One end of one connection: handshake, then records. Feed it every byte received (`receive`),
 * write out what it returns, and seal outgoing frames with `seal` once established. It never
 * throws on input; after a failure it ignores further input and the connection should be closed.
 */
export class SecureChannel {
  readonly role: 'initiator' | 'responder';
  readonly #identity: ChannelIdentity;
  readonly #keys: ChannelKeyDirectory;
  readonly #expectedPeer: NodeId | null;
  readonly #admit: ((claimed: NodeId) => string | null) | null;
  readonly #observe: ((operation: HandshakeOperation) => void) | null;
  readonly #reader = new LengthPrefixedReader();
  #phase: ChannelPhase;
  /**
   * Made when first needed (the initiator's start(), the responder's acceptable HELLO), so that a
   * connection that never gets that far costs no key generation.
   */
  #ephemeral: AgreementKeyPair | null = null;
  readonly #nonce: Uint8Array = randomBytes(NONCE_BYTES);
  #hello: Uint8Array | null = null;
  #reply: Uint8Array | null = null;
  #sharedSecret: Uint8Array | null = null;
  #claimedPeer: NodeId | null = null;
  #peerKeyEpoch: KeyEpoch | null = null;
  #peer: AuthenticatedPeer | null = null;
  #sealer: RecordSealer | null = null;
  #opener: RecordOpener | null = null;
  #failure: string | null = null;

  private constructor(
    role: 'initiator' | 'responder',
    identity: ChannelIdentity,
    keys: ChannelKeyDirectory,
    expectedPeer: NodeId | null,
    admit: ((claimed: NodeId) => string | null) | null,
    observe: ((operation: HandshakeOperation) => void) | undefined,
  ) {
    this.role = role;
    this.#identity = identity;
    this.#keys = keys;
    this.#expectedPeer = expectedPeer;
    this.#admit = admit;
    this.#observe = observe ?? null;
    this.#phase = role === 'initiator' ? 'awaiting-reply' : 'awaiting-hello';
    checkChannelIdentity(identity);
  }

  static initiator(options: InitiatorOptions): SecureChannel {
    return new SecureChannel(
      'initiator',
      options.identity,
      options.keys,
      options.expectedPeer,
      null,
      options.observe,
    );
  }

  static responder(options: ResponderOptions): SecureChannel {
    return new SecureChannel(
      'responder',
      options.identity,
      options.keys,
      null,
      options.admit ?? null,
      options.observe,
    );
  }

  get phase(): ChannelPhase {
    return this.#phase;
  }

  /** The authenticated peer once established, else null. */
  get peer(): AuthenticatedPeer | null {
    return this.#peer;
  }

  /**
   * Who the other end says it is: the dialed node for an initiator, the HELLO's claim for a
   * responder. Not authenticated until `phase` is 'established'; for log lines only.
   */
  get claimedPeer(): NodeId | null {
    return this.#expectedPeer ?? this.#claimedPeer;
  }

  get failure(): string | null {
    return this.#failure;
  }

  /** What to write when the connection opens: the HELLO for an initiator, nothing for a responder. */
  start(): Buffer[] {
    if (this.role === 'responder' || this.#hello !== null || this.#phase !== 'awaiting-reply') return [];
    this.#observe?.('key-generation');
    this.#ephemeral = generateAgreementKeyPair();
    const hello = encodeHello({
      version: TRANSPORT_PROTOCOL_VERSION,
      initiator: this.#identity.node,
      initiatorKeyEpoch: this.#identity.keyEpoch,
      ephemeralPublicKey: this.#ephemeral.publicKey.bytes,
      nonce: this.#nonce,
      expectedResponder: this.#expectedPeer!,
    });
    this.#hello = hello;
    return [withLengthPrefix(hello)];
  }

  /** Processes received bytes. Never throws. */
  receive(chunk: Uint8Array): ChannelStep {
    const outgoing: Buffer[] = [];
    const frames: Uint8Array[] = [];
    let established: AuthenticatedPeer | null = null;
    if (this.#phase === 'failed') return { outgoing, frames, established, failure: null };
    this.#reader.push(chunk);
    try {
      for (;;) {
        const inHandshake = this.#phase !== 'established' && this.#phase !== 'awaiting-confirmation';
        const length = this.#reader.peekLength();
        if (length < 0) break;
        if (inHandshake && length > HANDSHAKE_LIMITS.maxHandshakeMessageBytes) {
          throw new ChannelFailure(
            `handshake message of ${length} bytes exceeds maxHandshakeMessageBytes (${HANDSHAKE_LIMITS.maxHandshakeMessageBytes})`,
          );
        }
        if (!inHandshake && length > MAX_RECORD_BODY_BYTES) {
          throw new ChannelFailure(
            `record of ${length} bytes exceeds the largest record (${MAX_RECORD_BODY_BYTES}, maxFrameBytes plus overhead)`,
          );
        }
        if (this.#reader.bufferedBytes < LENGTH_PREFIX_BYTES + length) break;
        const unit = this.#reader.take(LENGTH_PREFIX_BYTES + length);
        const header = unit.subarray(0, LENGTH_PREFIX_BYTES);
        const body = unit.subarray(LENGTH_PREFIX_BYTES);
        switch (this.#phase) {
          case 'awaiting-hello':
            outgoing.push(this.#onHello(body));
            break;
          case 'awaiting-reply':
            outgoing.push(this.#onReply(body));
            break;
          case 'awaiting-finish':
            outgoing.push(this.#onFinish(body));
            established = this.#peer;
            break;
          case 'awaiting-confirmation':
            this.#openRecord(header, body, frames);
            this.#phase = 'established';
            established = this.#peer;
            break;
          case 'established':
            this.#openRecord(header, body, frames);
            break;
        }
      }
    } catch (error) {
      const reason =
        error instanceof ChannelFailure
          ? error.message
          : `internal error: ${error instanceof Error ? error.message : String(error)}`;
      this.#fail(reason);
      // Frames opened before the failure are authenticated and are still delivered; nothing more
      // is written to a peer the connection to which is about to be closed.
      return { outgoing: [], frames, established, failure: reason };
    }
    return { outgoing, frames, established, failure: null };
  }

  /**
   * One record carrying `frames[start..end)`. Only once established; sizes are the caller's to
   * check (see RecordSealer.seal).
   */
  seal(frames: readonly Uint8Array[], start = 0, end = frames.length): Buffer {
    if (this.#phase !== 'established' || this.#sealer === null) {
      throw new InvariantViolation(`cannot seal frames on a channel in phase ${this.#phase}`);
    }
    return this.#sealer.seal(frames, start, end);
  }

  /** Marks the channel failed from outside (a timeout, a closed socket); returns the reason kept. */
  fail(reason: string): string {
    if (this.#phase !== 'failed') this.#fail(reason);
    return this.#failure ?? reason;
  }

  #fail(reason: string): void {
    this.#phase = 'failed';
    this.#failure = reason;
    this.#reader.clear();
    this.#forgetHandshakeSecrets();
  }

  #forgetHandshakeSecrets(): void {
    this.#ephemeral = null;
    this.#sharedSecret?.fill(0);
    this.#sharedSecret = null;
    this.#hello = null;
    this.#reply = null;
  }

  // Responder: HELLO in, HELLO-REPLY out.
  #onHello(body: Uint8Array): Buffer {
    // The version first: another version's HELLO need not even parse as this one's.
    const version = helloVersion(body);
    if (version !== null && version !== TRANSPORT_PROTOCOL_VERSION) {
      throw new ChannelFailure(
        `unsupported transport protocol version ${version} (this node speaks ${TRANSPORT_PROTOCOL_VERSION})`,
      );
    }
    const hello = unwrap(decodeHello(body));
    this.#claimedPeer = hello.initiator;
    const self = this.#identity.node;
    if (!sameNode(hello.expectedResponder, self)) {
      throw new ChannelFailure(
        `${describeNode(hello.initiator)} expected ${describeNode(hello.expectedResponder)}, this is ${describeNode(self)}`,
      );
    }
    if (sameNode(hello.initiator, self))
      throw new ChannelFailure(`peer claims to be this node (${describeNode(self)})`);
    const refusal = this.#admit?.(hello.initiator) ?? null;
    if (refusal !== null) throw new ChannelFailure(refusal);
    // Cheap checks first: an unknown peer or retired epoch costs no Diffie-Hellman and no signature.
    // Only an epoch a certificate may still vouch for is let through unlisted: the initiator's
    // certificate comes with FINISH, so it can only be judged then (the pending-handshake bounds
    // and the handshake timeout limit what such a wait can cost).
    const { initiator, initiatorKeyEpoch } = hello;
    if (
      listedKey(this.#keys, initiator, initiatorKeyEpoch) === null &&
      !certificateMayAdmit(this.#keys, initiator, initiatorKeyEpoch)
    ) {
      resolvePeerKey(this.#keys, initiator, initiatorKeyEpoch, null);
    }
    this.#peerKeyEpoch = initiatorKeyEpoch;
    this.#observe?.('key-generation');
    const ephemeral = generateAgreementKeyPair();
    this.#observe?.('key-agreement');
    this.#sharedSecret = agree(ephemeral, hello.ephemeralPublicKey, 'HELLO');
    this.#hello = Uint8Array.from(body);
    const unsigned = {
      responder: self,
      responderKeyEpoch: this.#identity.keyEpoch,
      ephemeralPublicKey: ephemeral.publicKey.bytes,
      nonce: this.#nonce,
      certifiedKey: certifiedKeyOf(this.#identity),
    };
    const unsignedBytes = encodeToBytes(unsigned, writeReplyUnsigned);
    this.#observe?.('signature');
    const signature = signBytes(
      this.#identity.signingKeys,
      signaturePayload(RESPONDER_SIGNATURE_DOMAIN, transcriptHash([this.#hello, unsignedBytes])),
    );
    const reply = encodeHelloReply({ ...unsigned, signature });
    this.#reply = reply;
    this.#phase = 'awaiting-finish';
    return withLengthPrefix(reply);
  }

  // Initiator: HELLO-REPLY in, FINISH out; keys derived.
  #onReply(body: Uint8Array): Buffer {
    const hello = this.#hello;
    if (hello === null) throw new ChannelFailure('HELLO-REPLY arrived before a HELLO was sent');
    const reply = unwrap(decodeHelloReply(body));
    const expected = this.#expectedPeer!;
    if (!sameNode(reply.responder, expected)) {
      throw new ChannelFailure(
        `HELLO-REPLY from ${describeNode(reply.responder)}, expected ${describeNode(expected)}`,
      );
    }
    const key = resolvePeerKey(this.#keys, reply.responder, reply.responderKeyEpoch, reply.certifiedKey);
    const replyBytes = Uint8Array.from(body);
    const unsignedBytes = replyBytes.subarray(0, replyBytes.length - SIGNATURE_BYTES);
    const signed = signaturePayload(RESPONDER_SIGNATURE_DOMAIN, transcriptHash([hello, unsignedBytes]));
    this.#observe?.('verification');
    if (!verifyBytes(key.publicKey, signed, reply.signature)) {
      throw new ChannelFailure(
        `HELLO-REPLY signature of ${describeNode(reply.responder)} (key epoch ${reply.responderKeyEpoch}) does not verify`,
      );
    }
    const ephemeral = this.#ephemeral;
    if (ephemeral === null) throw new ChannelFailure('HELLO-REPLY arrived before a HELLO was sent');
    this.#observe?.('key-agreement');
    const sharedSecret = agree(ephemeral, reply.ephemeralPublicKey, 'HELLO-REPLY');
    const unsignedFinish = { certifiedKey: certifiedKeyOf(this.#identity) };
    const unsignedFinishBytes = encodeToBytes(unsignedFinish, writeFinishUnsigned);
    this.#observe?.('signature');
    const signature = signBytes(
      this.#identity.signingKeys,
      signaturePayload(INITIATOR_SIGNATURE_DOMAIN, transcriptHash([hello, replyBytes, unsignedFinishBytes])),
    );
    const finish = encodeFinish({ ...unsignedFinish, signature });
    const keys = deriveSessionKeys(sharedSecret, transcriptHash([hello, replyBytes, finish]));
    sharedSecret.fill(0);
    this.#sealer = new RecordSealer(keys.initiatorToResponder);
    this.#opener = new RecordOpener(keys.responderToInitiator);
    this.#peer = {
      node: reply.responder,
      keyEpoch: reply.responderKeyEpoch,
      admittedByCertificate: key.admittedByCertificate,
      channelBinding: keys.channelBinding,
    };
    this.#forgetHandshakeSecrets();
    // Not established yet: the responder has still to accept FINISH, which its first record confirms.
    this.#phase = 'awaiting-confirmation';
    return withLengthPrefix(finish);
  }

  // Responder: FINISH in, key-confirmation record out; established.
  #onFinish(body: Uint8Array): Buffer {
    const hello = this.#hello;
    const reply = this.#reply;
    const initiator = this.#claimedPeer;
    const epoch = this.#peerKeyEpoch;
    const sharedSecret = this.#sharedSecret;
    if (hello === null || reply === null || initiator === null || epoch === null || sharedSecret === null) {
      throw new ChannelFailure('FINISH arrived before the HELLO');
    }
    const finish = unwrap(decodeFinish(body));
    // Looked up again rather than kept from the HELLO: keys may have been retired in between.
    const key = resolvePeerKey(this.#keys, initiator, epoch, finish.certifiedKey);
    const unsignedFinishBytes = body.subarray(0, body.length - SIGNATURE_BYTES);
    const signed = signaturePayload(
      INITIATOR_SIGNATURE_DOMAIN,
      transcriptHash([hello, reply, unsignedFinishBytes]),
    );
    this.#observe?.('verification');
    if (!verifyBytes(key.publicKey, signed, finish.signature)) {
      throw new ChannelFailure(
        `FINISH signature of ${describeNode(initiator)} (key epoch ${epoch}) does not verify`,
      );
    }
    const keys = deriveSessionKeys(sharedSecret, transcriptHash([hello, reply, body]));
    this.#sealer = new RecordSealer(keys.responderToInitiator);
    this.#opener = new RecordOpener(keys.initiatorToResponder);
    this.#peer = {
      node: initiator,
      keyEpoch: epoch,
      admittedByCertificate: key.admittedByCertificate,
      channelBinding: keys.channelBinding,
    };
    this.#forgetHandshakeSecrets();
    this.#phase = 'established';
    // Key confirmation: the initiator counts the channel as up once this opens under the new keys.
    return this.#sealer.seal([]);
  }

  #openRecord(header: Uint8Array, body: Uint8Array, frames: Uint8Array[]): void {
    const opened = this.#opener!.open(header, body);
    if (!opened.ok) throw new ChannelFailure(opened.reason);
    const malformed = splitRecordFrames(opened.value, frames);
    if (malformed !== null) throw new ChannelFailure(malformed);
  }
}
