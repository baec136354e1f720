/**
 * Host header check of the HTTP servers bound to an admin address (the dashboard, the replicas'
 * and the guardians' admin ports). A web page the operator visits can resolve its own name to
 * 127.0.0.1 (DNS rebinding) and then read or post to these servers from the browser: its
 * requests carry its own name in Host. So a server answers only requests whose Host names a
 * loopback host or the address it is configured to listen on. A server bound to every interface
 * (0.0.0.0, ::) has no name to compare with and accepts any Host: its operator chose to expose it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '::1']);
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]']);

/** Lowercase, without IPv6 brackets, without a trailing dot of a fully qualified name. */
function normalizedHost(host: string): string {
  const lower = host.toLowerCase();
  const unbracketed = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

export function isLoopbackHost(host: string): boolean {
  const name = normalizedHost(host);
  return LOOPBACK_HOSTNAMES.has(name) || /^127(?:\.\d{1,3}){3}$/.test(name);
}

/** The host part of a Host header value (`name:port`, `[v6]:port`), or null if it has none. */
export function hostOfHeader(header: string): string | null {
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    return end < 0 ? null : header.slice(0, end + 1);
  }
  const name = header.split(':')[0];
  return name === undefined || name === '' ? null : name;
}

/**
 * Whether `request` may be answered by a server listening on `boundHost`: its Host header names
 * a loopback host or `boundHost` itself; any Host on a wildcard bind; never a request without
 * one (HTTP/1.1 requires it).
 */
export function hostHeaderAllowed(request: IncomingMessage, boundHost: string): boolean {
  const header = request.headers.host;
  if (header === undefined) return false;
  if (WILDCARD_HOSTS.has(normalizedHost(boundHost))) return true;
  const host = hostOfHeader(header);
  if (host === null) return false;
  return isLoopbackHost(host) || normalizedHost(host) === normalizedHost(boundHost);
}

/** The answer to a refused Host: 421 Misdirected Request, saying what to use instead. */
export function refuseHostHeader(response: ServerResponse, server: string): void {
  response
    .writeHead(421, { 'content-type': 'text/plain' })
    .end(
      `421 Misdirected Request: the Host header does not name this ${server} (only loopback names and its ` +
        'configured address are answered, against DNS rebinding)\n',
    );
}
