import * as assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fetchStatusReport } from '../../src/runtime/status.js';

interface Sample {
  readonly replica: number;
  readonly view: number;
}

describe('fetchStatusReport', () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((request, response) => {
      if (request.url === '/ok') {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ replica: 3, view: 7 }));
      } else if (request.url === '/error') {
        response.statusCode = 503;
        response.end('busy');
      } else if (request.url === '/declared-large') {
        response.setHeader('content-length', String(4096));
        response.end('x'.repeat(4096));
      } else if (request.url === '/chunked-large') {
        // No content-length: the limit is checked on what was read.
        response.write('x'.repeat(2048));
        response.end('x'.repeat(2048));
      } else {
        response.end('not json');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('returns the parsed status of a replica that answers', async () => {
    assert.deepEqual(await fetchStatusReport<Sample>(3, `${base}/ok`, 2000, 1024), {
      up: true,
      replica: 3,
      view: 7,
    });
  });

  it('reports an HTTP error, an oversized body (declared or not) and a body that is not JSON', async () => {
    assert.deepEqual(await fetchStatusReport<Sample>(1, `${base}/error`, 2000, 1024), {
      up: false,
      replica: 1,
      error: 'HTTP 503',
    });
    for (const path of ['/declared-large', '/chunked-large']) {
      assert.deepEqual(await fetchStatusReport<Sample>(2, `${base}${path}`, 2000, 1024), {
        up: false,
        replica: 2,
        error: 'status larger than 1024 bytes',
      });
    }
    const garbled = await fetchStatusReport<Sample>(4, `${base}/garbled`, 2000, 1024);
    assert.equal(garbled.up, false);
  });

  it('reports a replica that does not answer at all', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const report = await fetchStatusReport<Sample>(5, `http://127.0.0.1:${port}/status`, 2000, 1024);
    assert.equal(report.up, false);
    assert.equal(report.replica, 5);
  });
});
