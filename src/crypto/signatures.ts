/**
 * Ed25519 signatures over byte strings. Callers sign domain-tagged payloads (messages/signing.ts),
 * never raw message encodings, so a signature for one purpose cannot be replayed for another.
 */
import { sign, verify } from 'node:crypto';
import { SIGNATURE_BYTES, type Signature, signature } from '../messages/ids.js';
import { KEY_BYTES, type SigningKeyPair, type SigningPublicKey, tryParseSigningPublicKey } from './keys.js';

export function signBytes(signer: SigningKeyPair, payload: Uint8Array): Signature {
  // A plain Uint8Array view rather than node's Buffer: deepStrictEqual and structured clone treat
  // the two differently, and the rest of the code base speaks Uint8Array.
  const signed = sign(null, payload, signer.privateKey);
  return signature(new Uint8Array(signed.buffer, signed.byteOffset, signed.length));
}

/**
 * True only for a valid signature by `publicKey` over exactly `payload`. Never throws: input that
 * arrived over the network (a truncated signature, a key of the wrong length or not on the curve)
 * is simply not a valid signature.
 *
 * Pass an imported SigningPublicKey on hot paths; raw key bytes are imported on every call, which
 * costs about as much as the verification itself.
 */
export function verifyBytes(
  publicKey: SigningPublicKey | Uint8Array,
  payload: Uint8Array,
  candidate: Uint8Array,
): boolean {
  if (candidate.length !== SIGNATURE_BYTES) return false;
  let key: SigningPublicKey | null;
  if (publicKey instanceof Uint8Array) {
    if (publicKey.length !== KEY_BYTES) return false;
    key = tryParseSigningPublicKey(publicKey);
    if (key === null) return false;
  } else {
    key = publicKey;
  }
  try {
    return verify(null, payload, key.keyObject, candidate);
  } catch {
    return false;
  }
}
