/**
 * A loopback HTTP endpoint serving one prom-client Registry at GET /metrics: how `phalanx bench
 * --metrics-port` exposes its clients' metrics to a Prometheus on the same host. Like the admin
 * servers it answers only requests whose Host names a loopback host (DNS rebinding), and it reads
 * no request body.
 *
 * Usage:
 * ```ts
 * const endpoint = await serveMetrics(registry, 9464); // 0: any free port
 * process.stderr.write(`metrics on ${endpoint.url}\n`);
 * await endpoint.close();
 * ```
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { hostHeaderAllowed, refuseHostHeader } from '../runtime/host-header.js';

/** The only address the endpoint listens on: metrics of a benchmark are for this host. */
export const METRICS_HOST = '127.0.0.1';

export interface MetricsEndpoint {
  /** http://127.0.0.1:<port>/metrics */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, port: number): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    if (!hostHeaderAllowed(request, METRICS_HOST)) {
      refuseHostHeader(response, 'metrics endpoint');
      return;
    }
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: unknown) => response.writeHead(500).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, METRICS_HOST, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${METRICS_HOST}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
