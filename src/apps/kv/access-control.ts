/**
 * Per-client keyspaces. A keyspace is a key prefix: a client may read and write every key that
 * starts with one of its keyspaces, and '' or '*' grants the whole store. A client that the
 * configuration does not list has no access at all (deny by default).
 *
 * ```ts
 * const access = new AccessControl({ alice: { keyspaces: ['users/alice/'] }, admin: { keyspaces: ['*'] } });
 * access.allows('alice', 'users/alice/profile'); // true
 * access.allowsList('alice', 'users/');          // false: would reveal other users' keys
 * ```
 */
import { CLIENT_ID_PATTERN } from '../../messages/ids.js';
import { isWellFormedText, KV_LIMITS } from './operations.js';

export interface KeyspaceGrant {
  readonly keyspaces: readonly string[];
}

/** Client id → grant. Typically parsed from JSON; check it with validateAccessControlConfig. */
export type AccessControlConfig = { readonly [clientId: string]: KeyspaceGrant };

/** Keyspace that grants every key (the empty prefix does the same). */
export const WHOLE_KEYSPACE = '*';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every problem with the configuration, each naming the client and field; [] when it is valid. */
export function validateAccessControlConfig(value: unknown): string[] {
  if (!isPlainRecord(value)) {
    return [
      `access control config must be an object mapping client ids to { keyspaces: [...] }, got ${describe(value)}`,
    ];
  }
  const problems: string[] = [];
  for (const clientId of Object.keys(value)) {
    const where = `client ${JSON.stringify(clientId)}`;
    if (!CLIENT_ID_PATTERN.test(clientId)) {
      problems.push(`${where}: not a valid client id (must match ${CLIENT_ID_PATTERN})`);
    }
    const grant = value[clientId];
    if (!isPlainRecord(grant)) {
      problems.push(`${where}: must be an object { keyspaces: [...] }, got ${describe(grant)}`);
      continue;
    }
    for (const property of Object.keys(grant)) {
      if (property !== 'keyspaces')
        problems.push(`${where}: unknown property ${JSON.stringify(property)} (only "keyspaces" is allowed)`);
    }
    const keyspaces = grant.keyspaces;
    if (!Array.isArray(keyspaces)) {
      problems.push(`${where}: "keyspaces" must be an array of key prefixes, got ${describe(keyspaces)}`);
      continue;
    }
    keyspaces.forEach((keyspace: unknown, index) => {
      const field = `${where}: keyspaces[${index}]`;
      if (typeof keyspace !== 'string') {
        problems.push(`${field} must be a string, got ${describe(keyspace)}`);
      } else if (!isWellFormedText(keyspace)) {
        problems.push(`${field} contains a lone surrogate and cannot match any UTF-8 key`);
      } else if (keyspace !== WHOLE_KEYSPACE && keyspace.includes('*')) {
        // Keyspaces are plain prefixes; 'users/*' would silently match only keys that literally
        // start with 'users/*', which is never what the author meant.
        problems.push(
          `${field} ${JSON.stringify(keyspace)}: wildcards are not supported; a keyspace is a plain key prefix (e.g. "users/"), or "*" alone for every key`,
        );
      } else if (new TextEncoder().encode(keyspace).length > KV_LIMITS.maxKeyBytes) {
        problems.push(`${field} is longer than KV_LIMITS.maxKeyBytes (${KV_LIMITS.maxKeyBytes} UTF-8 bytes)`);
      }
    });
  }
  return problems;
}

export class AccessControl {
  /** A Map rather than the config object, so that ids like "__proto__" or "constructor" are just names. */
  readonly #prefixes = new Map<string, readonly string[]>();

  /** Throws an Error listing every problem when the configuration is invalid. */
  constructor(config: AccessControlConfig) {
    const problems = validateAccessControlConfig(config);
    if (problems.length > 0) throw new Error(`invalid access control config:\n  ${problems.join('\n  ')}`);
    for (const clientId of Object.keys(config)) {
      const keyspaces = config[clientId]!.keyspaces;
      // '*' and '' both mean "everything"; as a prefix '' already matches every key.
      this.#prefixes.set(
        clientId,
        keyspaces.map((keyspace) => (keyspace === WHOLE_KEYSPACE ? '' : keyspace)),
      );
    }
  }

  /** May the client read and write this key? */
  allows(clientId: string, key: string): boolean {
    return this.#prefixes.get(clientId)?.some((prefix) => key.startsWith(prefix)) ?? false;
  }

  /**
   * May the client list keys under this prefix? Only when every key the listing could return is
   * one it may read, i.e. the prefix itself lies inside one of its keyspaces.
   */
  allowsList(clientId: string, prefix: string): boolean {
    return this.allows(clientId, prefix);
  }

  /** The client's keyspace prefixes ('*' normalised to ''), or [] for an unlisted client. */
  keyspacesOf(clientId: string): readonly string[] {
    return this.#prefixes.get(clientId) ?? [];
  }
}
