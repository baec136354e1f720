/**
 * How often one client identity may open an authenticated connection to a replica. Every
 * handshake costs the replica a Diffie-Hellman agreement and a signature; a client that opens and
 * drops connections over and over (bench attack `connection-churn`) would otherwise spend the
 * replicas' CPU at no cost to itself beyond its own handshakes.
 *
 * Counted per *authenticated* identity, when a handshake completes: nobody can get another
 * client refused by claiming its name, since only the key holder completes a handshake. Once over
 * the limit, the identity is refused for `refusalMilliseconds` at the first message of the
 * handshake, by its claimed name, before any cryptography (the claim costs nothing to check, and
 * an impostor claiming a refused name only gets refused too).
 *
 * Bounded: at most `maxTrackedClients` identities are remembered (least recently seen forgotten
 * first), each with at most `maxConnectionsPerWindow` timestamps. Time comes from the caller.
 */
import { assert } from '../messages/ids.js';

export interface ConnectionRateLimits {
  /** Authenticated connections one client may open within `windowMilliseconds`. */
  readonly maxConnectionsPerWindow: number;
  readonly windowMilliseconds: number;
  /** How long a client over the limit is refused. */
  readonly refusalMilliseconds: number;
  readonly maxTrackedClients: number;
}

interface ClientRecord {
  /** Times of its recent connections, oldest first, at most maxConnectionsPerWindow. */
  readonly openedAt: number[];
  refusedUntil: number;
}

export class ConnectionRateLimiter {
  readonly #limits: ConnectionRateLimits;
  readonly #clients = new Map<string, ClientRecord>();

  constructor(limits: ConnectionRateLimits) {
    for (const [name, value] of Object.entries(limits))
      assert(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
    this.#limits = limits;
  }

  /** Clients currently remembered (bounded by maxTrackedClients). */
  get tracked(): number {
    return this.#clients.size;
  }

  /** Why `client` is refused at `nowMs`, or null when it may start a handshake. */
  refusal(client: string, nowMs: number): string | null {
    const record = this.#clients.get(client);
    if (record === undefined || nowMs >= record.refusedUntil) return null;
    const seconds = Math.ceil((record.refusedUntil - nowMs) / 1000);
    return `${client} opened too many connections: refused for ${seconds} s more`;
  }

  /**
   * `client` completed a handshake at `nowMs`: null when within its rate, else why it is refused
   * from now on (the connection just made is to be closed too).
   */
  established(client: string, nowMs: number): string | null {
    const { maxConnectionsPerWindow, windowMilliseconds, refusalMilliseconds, maxTrackedClients } =
      this.#limits;
    let record = this.#clients.get(client);
    if (record === undefined) {
      record = { openedAt: [], refusedUntil: 0 };
    } else {
      this.#clients.delete(client);
    }
    this.#clients.set(client, record);
    while (this.#clients.size > maxTrackedClients) this.#clients.delete(this.#clients.keys().next().value!);
    const since = nowMs - windowMilliseconds;
    while (record.openedAt.length > 0 && record.openedAt[0]! <= since) record.openedAt.shift();
    if (record.openedAt.length >= maxConnectionsPerWindow) {
      record.refusedUntil = nowMs + refusalMilliseconds;
      record.openedAt.length = 0;
      return (
        `${client} opened more than ${maxConnectionsPerWindow} connections within ${windowMilliseconds} ms ` +
        `(maxConnectionsPerClient): refused for ${refusalMilliseconds} ms`
      );
    }
    record.openedAt.push(nowMs);
    return null;
  }
}
