/**
 * A node that starts knowing no replica keys (a fresh client, a restarted replica) learns them
 * from certificates presented in handshakes: a genuine certificate past its validity admits
 * nobody (keys stolen from a replica whose rejuvenation has since replaced them, replayed by an
 * attacker who redirected the connection), and a valid one does.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadClusterConfig, scheduleOf } from '../../src/config/cluster-config.js';
import {
  clientRegistryOf,
  generateCluster,
  guardianKeyPath,
  loadGuardianIdentity,
} from '../../src/config/keys.js';
import { keyEpoch, replicaId } from '../../src/messages/ids.js';
import { encodeKeyCertificate, issueKeyCertificate } from '../../src/crypto/key-certificates.js';
import { channelKeyDirectory } from '../../src/transport/key-directory.js';
import { replicaNode } from '../../src/transport/transport.js';

describe('certificates presented in a handshake', () => {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-expired-'));
  after(() => rmSync(directory, { recursive: true, force: true }));

  it('admits a valid certificate and refuses the same kind of certificate once it has expired', async () => {
    const { configPath } = await generateCluster({
      directory,
      f: 1,
      k: 1,
      basePort: 20_000,
      clients: ['admin'],
      recovery: { recoveryBoundMs: 6000, scheduleOriginMs: 0 },
    });
    const config = await loadClusterConfig(configPath);
    const schedule = scheduleOf(config);
    const { identity } = await loadGuardianIdentity(guardianKeyPath(config, replicaId(2)));
    const issuedAtMs = 10_000_000;
    const issued = issueKeyCertificate(identity, replicaId(2), keyEpoch(7), issuedAtMs);
    const admit = (nowMs: number): boolean => {
      const registry = clientRegistryOf(config, () => nowMs);
      return channelKeyDirectory(registry, config).admitCertifiedKey!(
        replicaNode(replicaId(2)),
        keyEpoch(7),
        issued.certificate.signingKey,
        encodeKeyCertificate(issued.certificate),
      );
    };
    assert.equal(admit(issuedAtMs + 1000), true, 'a fresh certificate is admitted');
    // More than T_P + 2·T_D later, its replica has surely been rejuvenated: the keys are stale.
    assert.equal(
      admit(issuedAtMs + schedule.periodMs + 2 * schedule.recoveryBoundMs + 2000),
      false,
      'an expired certificate admits nobody',
    );
  });
});
