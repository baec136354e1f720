/**
 * Names of the operating-system users replicas run as (recovery.replicaUser): a name, or a
 * pattern with {id} for the replica id, so that one configuration gives every replica on a shared
 * host a user of its own. Kept free of imports: the configuration parser validates with it.
 */

/** Where a pattern puts the replica id: `phalanx-replica-{id}` is replica 3's `phalanx-replica-3`. */
export const REPLICA_USER_ID_PLACEHOLDER = '{id}';
/** POSIX-portable user names as useradd accepts them, at most 32 characters (the utmp limit). */
const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
/** The user name for replica `id` from a configured name or pattern. */
export function replicaUserName(pattern: string, id: number): string {
  return pattern.split(REPLICA_USER_ID_PLACEHOLDER).join(String(id));
}

/** Problems with a configured name or pattern (empty when it is fine for every replica id up to 63). */
export function replicaUserProblems(pattern: string): string[] {
  const longest = replicaUserName(pattern, 63);
  if (!USER_NAME_PATTERN.test(longest))
    return [
      `"${pattern}" does not make a valid user name (lowercase letters, digits, "_" and "-", starting with a letter ` +
        `or "_", at most 32 characters; ${REPLICA_USER_ID_PLACEHOLDER} stands for the replica id)`,
    ];
  if (longest === 'root') return ['the replica user cannot be root'];
  return [];
}
