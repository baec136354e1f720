/** The Host check of admin servers and the dashboard (DNS rebinding). */
import * as assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { hostHeaderAllowed } from '../../src/runtime/host-header.js';

function withHost(host: string | undefined): IncomingMessage {
  return { headers: host === undefined ? {} : { host } } as IncomingMessage;
}

describe('Host header check', () => {
  it('a loopback bind answers loopback names only', () => {
    for (const host of [
      '127.0.0.1:7100',
      'localhost:7100',
      'LOCALHOST',
      '[::1]:7100',
      '127.3.2.1',
      'localhost.',
    ])
      assert.equal(hostHeaderAllowed(withHost(host), '127.0.0.1'), true, host);
    for (const host of ['evil.example:7100', 'evil.example', '10.0.0.5:7100', '', ':7100', '[::1', undefined])
      assert.equal(hostHeaderAllowed(withHost(host), '127.0.0.1'), false, String(host));
  });

  it('a bind to a given address also answers that address, and nothing else', () => {
    assert.equal(hostHeaderAllowed(withHost('10.0.0.5:7100'), '10.0.0.5'), true);
    assert.equal(hostHeaderAllowed(withHost('localhost:7100'), '10.0.0.5'), true);
    assert.equal(hostHeaderAllowed(withHost('[fd00::5]:7100'), 'fd00::5'), true);
    assert.equal(hostHeaderAllowed(withHost('admin.example:7100'), '10.0.0.5'), false);
    assert.equal(hostHeaderAllowed(withHost('10.0.0.6:7100'), '10.0.0.5'), false);
  });

  it('a wildcard bind answers any Host, but not a request without one', () => {
    assert.equal(hostHeaderAllowed(withHost('anything.example'), '0.0.0.0'), true);
    assert.equal(hostHeaderAllowed(withHost('anything.example'), '::'), true);
    assert.equal(hostHeaderAllowed(withHost(undefined), '0.0.0.0'), false);
  });
});
