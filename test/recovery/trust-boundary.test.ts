/**
 * The trust boundary where it cannot be enforced: the guardian says so, plainly. (Where it can,
 * test/integration/guardians/trust-boundary.test.ts checks it on a real cluster, as root.)
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { replicaId } from '../../src/messages/ids.js';
import { replicaUserName, replicaUserProblems } from '../../src/config/replica-user.js';
import {
  canSwitchUsers,
  replicaEnvironment,
  resolveTrustBoundary,
  TRUST_BOUNDARY_NOT_ENFORCED,
} from '../../src/recovery/trust-boundary.js';

const isRoot = process.getuid?.() === 0;
/** An unprivileged user every Debian system has. */
const NOBODY = { uid: 65534, gid: 65534 };

describe('trust boundary settings', () => {
  it('names a user per replica from a pattern and refuses bad names', () => {
    assert.equal(replicaUserName('phalanx-replica-{id}', 3), 'phalanx-replica-3');
    assert.deepEqual(replicaUserProblems('phalanx-replica-{id}'), []);
    assert.equal(replicaUserProblems('Phalanx {id}').length, 1);
    assert.equal(replicaUserProblems('root').length, 1);
    assert.equal(replicaUserProblems(`${'x'.repeat(31)}{id}`).length, 1);
  });

  it('is not enforced without a configured user, and says so', () => {
    const { boundary, user } = resolveTrustBoundary(replicaId(1), { pattern: null, mayCreate: false });
    assert.equal(user, null);
    assert.equal(boundary.enforced, false);
    assert.ok(boundary.reason.startsWith(TRUST_BOUNDARY_NOT_ENFORCED), boundary.reason);
    assert.match(boundary.reason, /no replica user is configured/);
  });

  it('is not enforced by a guardian without privilege, and says so', () => {
    const settings = { pattern: 'phalanx-replica-{id}', mayCreate: false };
    if (!isRoot && !canSwitchUsers()) {
      const { boundary } = resolveTrustBoundary(replicaId(2), settings);
      assert.equal(boundary.enforced, false);
      assert.equal(boundary.replicaUser, 'phalanx-replica-2');
      assert.match(boundary.reason, /not root and lacks CAP_SETUID and CAP_SETGID/);
      return;
    }
    // As root: ask an unprivileged process (nobody) what it would report.
    const module = fileURLToPath(new URL('../../src/recovery/trust-boundary.ts', import.meta.url));
    const script =
      `const { resolveTrustBoundary } = await import(${JSON.stringify(module)});` +
      `process.stdout.write(JSON.stringify(resolveTrustBoundary(2, ${JSON.stringify(settings)}).boundary));`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      ...NOBODY,
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env.PATH, HOME: '/nonexistent', TMPDIR: '/tmp' },
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, result.stderr);
    const boundary = JSON.parse(result.stdout) as { enforced: boolean; reason: string; replicaUser: string };
    assert.equal(boundary.enforced, false);
    assert.equal(boundary.replicaUser, 'phalanx-replica-2');
    assert.ok(boundary.reason.startsWith(TRUST_BOUNDARY_NOT_ENFORCED), boundary.reason);
    assert.match(boundary.reason, /not root and lacks CAP_SETUID and CAP_SETGID/);
  });

  it('gives the replica an environment without the guardian secrets', () => {
    const environment = replicaEnvironment(
      {
        PATH: '/usr/bin',
        AWS_SECRET_ACCESS_KEY: 'x',
        PHALANX_LOG_LEVEL: 'debug',
        SSH_AUTH_SOCK: '/tmp/a',
        HOME: '/root',
      },
      { name: 'phalanx-replica-1', uid: 999, gid: 999 },
      '/var/lib/phalanx/data/replica-1',
    );
    assert.deepEqual(environment, {
      PATH: '/usr/bin',
      PHALANX_LOG_LEVEL: 'debug',
      HOME: '/var/lib/phalanx/data/replica-1',
      USER: 'phalanx-replica-1',
      LOGNAME: 'phalanx-replica-1',
    });
  });
});
