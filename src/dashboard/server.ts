/**
 * The cluster dashboard's HTTP server. It polls every replica's admin endpoint (GET /status) and,
 * when configured, every guardian's, checks each answer against ReplicaStatus or GuardianStatus,
 * and serves the assembled ClusterStatus as a page, as JSON and as a Server-Sent Events stream.
 *
 * Answers are untrusted: a Byzantine or broken replica (or whatever answers on a guardian's port)
 * may send anything, so bodies are size-capped, parsed defensively and copied field by field; a
 * bad answer marks only that endpoint down, with the reason, and never stops the dashboard.
 */
import { Buffer } from 'node:buffer';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { hostHeaderAllowed } from '../runtime/host-header.js';
import type { AddressInfo } from 'node:net';
import { defaultProtocolConfig } from '../core/config.js';
import { type FaultModel, faultModelProblems } from '../core/quorum.js';
import { LIMITS } from '../messages/limits.js';
import type { GuardianReport, GuardianStatus } from '../runtime/guardian-report.js';
import { clusterHealth } from '../runtime/health.js';
import type {
  ClusterStatus,
  RecoveryParameters,
  ReplicaReport,
  ReplicaRole,
  ReplicaStatus,
} from '../runtime/status.js';
import { type ChartAssets, chartAssets } from './assets.js';
import { GUARDIAN_STATUS_LIMITS, parseGuardianStatus } from './guardian-status.js';
import {
  DashboardHistory,
  type DashboardHealth,
  HISTORY_DEFAULTS,
  type ClientLatency,
  type HistorySample,
  NO_PROGRESS,
} from './history.js';
import { renderDashboardPage } from './page.js';

/** Named limits on what the dashboard accepts from replicas, guardians and browsers. */
export const DASHBOARD_LIMITS = {
  /** Largest /status body a replica may send; a real one is well under 1 KiB. */
  maxStatusBodyBytes: 64 * 1024,
  /** Largest /status body a guardian may send (it lists recent recoveries, alarms and evidence). */
  maxGuardianStatusBodyBytes: GUARDIAN_STATUS_LIMITS.maxStatusBodyBytes,
  /** Longest `address` string accepted (host:port; a DNS name is at most 253 characters). */
  maxAddressLength: 300,
  /** Longest `storageEngine` string accepted. */
  maxStorageEngineLength: 64,
  /** Longest error text shown for a down replica (errors may quote replica-supplied bytes). */
  maxErrorLength: 300,
  /** Simultaneous /api/events subscribers; beyond this a subscriber gets 503. */
  maxEventClients: 32,
  /** Unsent SSE bytes queued for one slow subscriber before it is disconnected. */
  maxEventClientBacklogBytes: 1024 * 1024,
  /** Replicas one dashboard watches (matches the protocol's limit on n). */
  maxReplicas: 64,
  /**
   * Recent recoveries, alarms and evidence records relayed per guardian (the most recent ones).
   * A guardian may list many more; relaying them all would put every long history into every
   * event frame, twice a second, to every browser.
   */
  maxRelayedEntriesPerList: 16,
} as const;

export const DASHBOARD_DEFAULTS = {
  host: '127.0.0.1',
  pollIntervalMs: 500,
  fetchTimeoutMs: 1000,
} as const;

/** Polling faster than this only loads the replicas; the page cannot show it anyway. */
const MIN_POLL_INTERVAL_MS = 20;

export interface DashboardServerOptions {
  /** Interface to listen on; loopback by default so the dashboard is not exposed by accident. */
  readonly host?: string;
  /** 0 picks an ephemeral port; read the result from `url`. */
  readonly port?: number;
  readonly cluster: FaultModel;
  /** One http://host:port base URL per replica; the index is the replica id. */
  readonly replicaAdminUrls: readonly string[];
  readonly pollIntervalMs?: number;
  /** A replica that has not answered /status within this time is reported down for that round. */
  readonly fetchTimeoutMs?: number;
  /** Defaults to DASHBOARD_LIMITS.maxEventClients. */
  readonly maxEventClients?: number;
  /**
   * One http://host:port base URL per replica's guardian (its admin port); the index is the
   * replica id. When given, guardians are polled alongside replicas and the page shows key epochs,
   * exposure, recoveries, alarms and evidence.
   */
  readonly guardianAdminUrls?: readonly string[];
  /** The configured recovery timing, shown as the promise that measured values are held against. */
  readonly recovery?: RecoveryParameters;
  /**
   * The cluster's `protocol.requestTimeoutMs` (default: the protocol's default): requests waiting
   * a multiple of it while nothing executes make the verdict `stalled`.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Time between two history samples (default 500 ms, never less than the poll interval); the
   * server keeps one hour of them (at most HISTORY_LIMITS.maxSamples) for the page's charts.
   */
  readonly historySampleIntervalMs?: number;
  /**
   * Latency a client beside the dashboard measured lately (`up --workload` and `demo` pass their
   * live workload's), read once per poll round; when given, the page charts it. Replicas report
   * no client-side latency, so without it there is no latency chart.
   */
  readonly clientLatency?: () => ClientLatency | null;
}

/** What GET /api/cluster and every event carry: the polled reports and the verdict on them. */
export interface DashboardClusterStatus extends ClusterStatus {
  /**
   * Computed by the server from the checked reports (clusterHealth, src/runtime/health.ts), with
   * progress measured across poll rounds and the `unsafe` verdict (src/dashboard/history.ts).
   */
  readonly health: DashboardHealth;
  /** The history sample this round added, if it added one (the page appends it to its charts). */
  readonly sample: HistorySample | null;
  /** Changes whenever the remembered recoveries, alarms or evidence change (then fetch /api/log). */
  readonly logVersion: number;
}

export type ReplicaStatusParse =
  { readonly ok: true; readonly status: ReplicaStatus } | { readonly ok: false; readonly reason: string };

type FieldReader = (record: Record<string, unknown>, name: string) => string | undefined;

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

const nonNegativeInteger: FieldReader = (record, name) => {
  const value = record[name];
  return Number.isSafeInteger(value) && (value as number) >= 0
    ? undefined
    : `field '${name}' must be a non-negative integer, got ${describeValue(value)}`;
};

const nonNegativeNumber: FieldReader = (record, name) => {
  const value = record[name];
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? undefined
    : `field '${name}' must be a non-negative finite number, got ${describeValue(value)}`;
};

const boolean: FieldReader = (record, name) =>
  typeof record[name] === 'boolean'
    ? undefined
    : `field '${name}' must be a boolean, got ${describeValue(record[name])}`;

// Control characters would let a replica garble the page or a terminal that prints the JSON.
function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function boundedString(maxLength: number): FieldReader {
  return (record, name) => {
    const value = record[name];
    if (typeof value !== 'string') return `field '${name}' must be a string, got ${describeValue(value)}`;
    if (value.length > maxLength) return `field '${name}' is longer than ${maxLength} characters`;
    if (hasControlCharacter(value)) return `field '${name}' contains control characters`;
    return undefined;
  };
}

const optionalNonNegativeInteger: FieldReader = (record, name) =>
  record[name] === null ? undefined : nonNegativeInteger(record, name);

/** Absent (older replicas), null, or a non-negative integer. */
const optionalAbsentOrNonNegativeInteger: FieldReader = (record, name) =>
  record[name] === undefined ? undefined : optionalNonNegativeInteger(record, name);

const role: FieldReader = (record, name) =>
  record[name] === 'leader' || record[name] === 'backup'
    ? undefined
    : `field '${name}' must be 'leader' or 'backup', got ${describeValue(record[name])}`;

const optionalBooleanField: FieldReader = (record, name) =>
  record[name] === undefined || typeof record[name] === 'boolean'
    ? undefined
    : `field '${name}' must be a boolean when present, got ${describeValue(record[name])}`;

/** The culprits of a fork proof: at most maxReplicas replica ids, when present. */
const culpritList: FieldReader = (record, name) => {
  const value = record[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) &&
    value.length <= LIMITS.maxReplicas &&
    value.every(
      (item) => Number.isSafeInteger(item) && (item as number) >= 0 && (item as number) < LIMITS.maxReplicas,
    )
    ? undefined
    : `field '${name}' must be a list of replica ids, got ${describeValue(value)}`;
};

const REPLICA_STATUS_FIELDS: { readonly [Name in keyof ReplicaStatus]: FieldReader } = {
  replica: nonNegativeInteger,
  role,
  view: nonNegativeInteger,
  viewChangeInProgress: boolean,
  lastExecuted: nonNegativeInteger,
  stableCheckpoint: nonNegativeInteger,
  stateTransferInProgress: boolean,
  pendingRequests: nonNegativeInteger,
  oldestPendingMs: optionalNonNegativeInteger,
  leaderTurnaroundMs: optionalNonNegativeInteger,
  leaderTurnaroundExpectationMs: nonNegativeInteger,
  leaderLeftOutClients: optionalAbsentOrNonNegativeInteger,
  leaderLeftOutClientsLimit: optionalAbsentOrNonNegativeInteger,
  msSinceLastExecution: optionalNonNegativeInteger,
  voting: boolean,
  safeMode: optionalBooleanField,
  safeModeCulprits: culpritList,
  requestsExecuted: nonNegativeInteger,
  throughputPerSecond: nonNegativeNumber,
  keyEpoch: nonNegativeInteger,
  connectedPeers: nonNegativeInteger,
  uptimeSeconds: nonNegativeNumber,
  address: boundedString(DASHBOARD_LIMITS.maxAddressLength),
  storageEngine: boundedString(DASHBOARD_LIMITS.maxStorageEngineLength),
};

/**
 * Checks a parsed /status body against ReplicaStatus. On success the result is a fresh object
 * holding only the known fields, so nothing else a replica sent is relayed to browsers.
 */
export function parseReplicaStatus(value: unknown, expectedReplica?: number): ReplicaStatusParse {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, reason: `status must be a JSON object, got ${describeValue(value)}` };
  const record = value as Record<string, unknown>;
  for (const [name, check] of Object.entries(REPLICA_STATUS_FIELDS)) {
    const problem = check(record, name);
    if (problem !== undefined) return { ok: false, reason: problem };
  }
  if (expectedReplica !== undefined && record.replica !== expectedReplica) {
    return {
      ok: false,
      reason: `answered as replica ${String(record.replica)}, but this URL is configured for replica ${expectedReplica}`,
    };
  }
  const status: ReplicaStatus = {
    replica: record.replica as number,
    role: record.role as ReplicaRole,
    view: record.view as number,
    viewChangeInProgress: record.viewChangeInProgress as boolean,
    lastExecuted: record.lastExecuted as number,
    stableCheckpoint: record.stableCheckpoint as number,
    stateTransferInProgress: record.stateTransferInProgress as boolean,
    pendingRequests: record.pendingRequests as number,
    oldestPendingMs: record.oldestPendingMs as number | null,
    leaderTurnaroundMs: record.leaderTurnaroundMs as number | null,
    leaderTurnaroundExpectationMs: record.leaderTurnaroundExpectationMs as number,
    msSinceLastExecution: record.msSinceLastExecution as number | null,
    voting: record.voting as boolean,
    requestsExecuted: record.requestsExecuted as number,
    throughputPerSecond: record.throughputPerSecond as number,
    keyEpoch: record.keyEpoch as number,
    connectedPeers: record.connectedPeers as number,
    uptimeSeconds: record.uptimeSeconds as number,
    address: record.address as string,
    storageEngine: record.storageEngine as string,
    // Only when the replica reports it (older replicas do not): a fork is never hidden, and a
    // status without it reads as before.
    ...(typeof record.safeMode === 'boolean' ? { safeMode: record.safeMode } : {}),
    ...(record.leaderLeftOutClients !== undefined
      ? { leaderLeftOutClients: record.leaderLeftOutClients as number | null }
      : {}),
    ...(typeof record.leaderLeftOutClientsLimit === 'number'
      ? { leaderLeftOutClientsLimit: record.leaderLeftOutClientsLimit }
      : {}),
    ...(Array.isArray(record.safeModeCulprits)
      ? { safeModeCulprits: [...(record.safeModeCulprits as number[])] }
      : {}),
  };
  return { ok: true, status };
}

/** The `limit` entries with the latest times, in their original order. */
function mostRecent<Entry>(
  entries: readonly Entry[],
  limit: number,
  timeOf: (entry: Entry) => number,
): Entry[] {
  if (entries.length <= limit) return [...entries];
  const kept = entries
    .map((entry, index) => ({ index, time: timeOf(entry) }))
    .sort((a, b) => b.time - a.time)
    .slice(0, limit)
    .map(({ index }) => index)
    .sort((a, b) => a - b);
  return kept.map((index) => entries[index]!);
}

function relayedGuardianStatus(status: GuardianStatus): GuardianStatus {
  const limit = DASHBOARD_LIMITS.maxRelayedEntriesPerList;
  return {
    ...status,
    recentRecoveries: mostRecent(status.recentRecoveries, limit, (record) => record.startedAtMs),
    alarms: mostRecent(status.alarms, limit, (alarm) => alarm.atMs),
    evidence: mostRecent(status.evidence, limit, (record) => record.atMs),
  };
}

function truncateError(text: string): string {
  const singleLine = text.replace(/\s+/g, ' ').trim();
  return singleLine.length > DASHBOARD_LIMITS.maxErrorLength
    ? `${singleLine.slice(0, DASHBOARD_LIMITS.maxErrorLength - 1)}…`
    : singleLine;
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return 'connection refused';
    if (code === 'ECONNRESET') return 'connection reset';
    return code !== undefined && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

function positiveInteger(name: string, value: number, minimum = 1): number {
  if (!Number.isSafeInteger(value) || value < minimum)
    throw new Error(`${name} must be an integer ≥ ${minimum}, got ${value}`);
  return value;
}

/** Turns configured base URLs into /status URLs, refusing anything but plain http. */
function statusUrlsFor(optionName: string, baseUrls: readonly string[], n: number): URL[] {
  if (baseUrls.length !== n) throw new Error(`${optionName} has ${baseUrls.length} entries, but n = ${n}`);
  return baseUrls.map((baseUrl, replica) => {
    let base: URL;
    try {
      base = new URL(baseUrl);
    } catch {
      throw new Error(`${optionName}[${replica}] is not a URL: ${JSON.stringify(baseUrl)}`);
    }
    if (base.protocol !== 'http:')
      throw new Error(`${optionName}[${replica}] must be an http:// URL, got ${base.protocol}`);
    if (base.username !== '' || base.password !== '')
      throw new Error(`${optionName}[${replica}] must not carry credentials`);
    const path = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
    return new URL(`${path}status`, base.origin);
  });
}

/** Copies the recovery timing, refusing values that would make the shown promise wrong. */
function checkedRecoveryParameters(recovery: RecoveryParameters): RecoveryParameters {
  const guaranteeMs = positiveInteger('recovery.guaranteeMs', recovery.guaranteeMs);
  const recoveryBoundMs = positiveInteger('recovery.recoveryBoundMs', recovery.recoveryBoundMs);
  const periodMs = positiveInteger('recovery.periodMs', recovery.periodMs);
  // A replica may wait a whole period for its slot and then take T_D to recover, so a smaller T
  // would promise less exposure than the schedule delivers.
  if (guaranteeMs < periodMs + recoveryBoundMs)
    throw new Error(
      `recovery.guaranteeMs (${guaranteeMs}) must be at least periodMs + recoveryBoundMs ` +
        `(${periodMs} + ${recoveryBoundMs} = ${periodMs + recoveryBoundMs})`,
    );
  return { guaranteeMs, recoveryBoundMs, periodMs };
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

export class DashboardServer {
  /** Base URL of the dashboard, e.g. http://127.0.0.1:41234/ */
  readonly url: string;

  private latest: DashboardClusterStatus;
  private readonly eventClients = new Set<ServerResponse>();
  /** Failure callbacks of the /status requests under way, so close() can cut them short. */
  private readonly inFlight = new Set<(reason: Error) => void>();
  private pollTimer: NodeJS.Timeout | undefined;
  private currentRound: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly settings: {
      readonly host: string;
      readonly cluster: FaultModel;
      readonly statusUrls: readonly URL[];
      readonly guardianStatusUrls: readonly URL[] | undefined;
      readonly recovery: RecoveryParameters | undefined;
      readonly requestTimeoutMs: number;
      readonly pollIntervalMs: number;
      readonly fetchTimeoutMs: number;
      readonly maxEventClients: number;
      readonly page: { readonly html: string; readonly contentSecurityPolicy: string };
      readonly assets: ChartAssets;
      readonly history: DashboardHistory;
      readonly clientLatency: (() => ClientLatency | null) | undefined;
    },
  ) {
    const address = server.address() as AddressInfo;
    const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${hostForUrl}:${address.port}/`;
    const notPolledYet = (_: URL, replica: number) =>
      ({ up: false, replica, error: 'not polled yet' }) as const;
    // Not observed by the history: a round nobody polled would enter it as all replicas down.
    const replicas = settings.statusUrls.map(notPolledYet);
    const guardians = settings.guardianStatusUrls?.map(notPolledYet);
    const { n, f, k } = settings.cluster;
    const nowMs = Date.now();
    this.latest = {
      n,
      f,
      k,
      collectedAt: nowMs,
      replicas,
      ...(guardians === undefined ? {} : { guardians }),
      ...(settings.recovery === undefined ? {} : { recovery: settings.recovery }),
      health: {
        ...clusterHealth(replicas, guardians, {
          n,
          f,
          k,
          requestTimeoutMs: settings.requestTimeoutMs,
          nowMs,
        }),
        progress: NO_PROGRESS,
      },
      sample: null,
      logVersion: 0,
    };
  }

  /** Listens, polls every replica once, then keeps polling until close(). */
  static async start(options: DashboardServerOptions): Promise<DashboardServer> {
    const problems = faultModelProblems(options.cluster);
    if (problems.length > 0) throw new Error(`invalid cluster: ${problems.join('; ')}`);
    const { n, f, k } = options.cluster;
    if (n > DASHBOARD_LIMITS.maxReplicas)
      throw new Error(`n = ${n} exceeds the dashboard's limit of ${DASHBOARD_LIMITS.maxReplicas} replicas`);
    const statusUrls = statusUrlsFor('replicaAdminUrls', options.replicaAdminUrls, n);
    const guardianStatusUrls =
      options.guardianAdminUrls === undefined
        ? undefined
        : statusUrlsFor('guardianAdminUrls', options.guardianAdminUrls, n);
    const recovery = options.recovery === undefined ? undefined : checkedRecoveryParameters(options.recovery);
    const pollIntervalMs = positiveInteger(
      'pollIntervalMs',
      options.pollIntervalMs ?? DASHBOARD_DEFAULTS.pollIntervalMs,
      MIN_POLL_INTERVAL_MS,
    );
    const fetchTimeoutMs = positiveInteger(
      'fetchTimeoutMs',
      options.fetchTimeoutMs ?? DASHBOARD_DEFAULTS.fetchTimeoutMs,
    );
    const requestTimeoutMs = positiveInteger(
      'requestTimeoutMs',
      options.requestTimeoutMs ?? defaultProtocolConfig(options.cluster).requestTimeoutMs,
    );
    const maxEventClients = positiveInteger(
      'maxEventClients',
      options.maxEventClients ?? DASHBOARD_LIMITS.maxEventClients,
    );
    const host = options.host ?? DASHBOARD_DEFAULTS.host;
    const port = options.port ?? 0;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535)
      throw new Error(`port must be an integer in 0..65535, got ${port}`);

    const historySampleIntervalMs = Math.max(
      pollIntervalMs,
      positiveInteger(
        'historySampleIntervalMs',
        options.historySampleIntervalMs ?? HISTORY_DEFAULTS.sampleIntervalMs,
      ),
    );
    const history = new DashboardHistory({
      cluster: { n, f, k },
      sampleIntervalMs: historySampleIntervalMs,
      windowMs: HISTORY_DEFAULTS.windowMs,
    });
    const assets = chartAssets();
    const page = renderDashboardPage({
      cluster: { n, f, k },
      pollIntervalMs,
      guardians: guardianStatusUrls !== undefined,
      clientLatency: options.clientLatency !== undefined,
      recovery,
      assets,
    });
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const dashboard = new DashboardServer(server, {
      host,
      cluster: { n, f, k },
      statusUrls,
      guardianStatusUrls,
      recovery,
      requestTimeoutMs,
      pollIntervalMs,
      fetchTimeoutMs,
      maxEventClients,
      page,
      assets,
      history,
      clientLatency: options.clientLatency,
    });
    server.on('request', (req, res) => dashboard.handle(req, res));
    await dashboard.pollRound();
    dashboard.scheduleNextRound(0);
    return dashboard;
  }

  /** The most recent status and verdict (what GET /api/cluster returns). */
  get clusterStatus(): DashboardClusterStatus {
    return this.latest;
  }

  /** Stops polling, disconnects every browser and closes the listening socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const abort of this.inFlight) abort(new Error('dashboard closing'));
    await this.currentRound;
    for (const client of this.eventClients) client.end();
    this.eventClients.clear();
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closing;
  }

  private scheduleNextRound(elapsedMs: number): void {
    if (this.closed) return;
    // Keep a steady cadence: a slow round eats into the wait rather than adding to it.
    const delay = Math.max(0, this.settings.pollIntervalMs - elapsedMs);
    this.pollTimer = setTimeout(() => {
      const startedAt = Date.now();
      void this.pollRound().then(() => this.scheduleNextRound(Date.now() - startedAt));
    }, delay);
  }

  /**
   * Builds the published status; the optional parts appear only when configured. The verdict is
   * computed here from the checked reports, so browsers get no field the server did not check.
   */
  private assemble(
    replicas: readonly ReplicaReport[],
    guardians: readonly GuardianReport[] | undefined,
    nowMs: number,
  ): DashboardClusterStatus {
    const { n, f, k } = this.settings.cluster;
    const { recovery, requestTimeoutMs, history, clientLatency } = this.settings;
    const health = clusterHealth(replicas, guardians, { n, f, k, requestTimeoutMs, nowMs });
    const observed = history.observe(nowMs, replicas, guardians, health, recovery, clientLatency?.() ?? null);
    return {
      n,
      f,
      k,
      collectedAt: nowMs,
      replicas,
      ...(guardians === undefined ? {} : { guardians }),
      ...(recovery === undefined ? {} : { recovery }),
      health: observed.health,
      sample: observed.sample,
      logVersion: history.logVersion,
    };
  }

  private async pollRound(): Promise<void> {
    const { statusUrls, guardianStatusUrls } = this.settings;
    // Replicas and guardians are asked at once, so one round costs one fetch timeout at most.
    const round = Promise.all([
      Promise.all(statusUrls.map((url, replica) => this.pollReplica(url, replica))),
      guardianStatusUrls === undefined
        ? undefined
        : Promise.all(guardianStatusUrls.map((url, replica) => this.pollGuardian(url, replica))),
    ]).then(([replicas, guardians]) => {
      if (this.closed) return;
      this.latest = this.assemble(replicas, guardians, Date.now());
      this.broadcast(this.latest);
    });
    this.currentRound = round;
    await round;
  }

  private async pollReplica(url: URL, replica: number): Promise<ReplicaReport> {
    try {
      const parsed = await this.fetchStatusJson(url, DASHBOARD_LIMITS.maxStatusBodyBytes);
      const result = parseReplicaStatus(parsed, replica);
      if (!result.ok) throw new Error(`invalid status: ${result.reason}`);
      return { up: true, ...result.status };
    } catch (error) {
      return { up: false, replica, error: truncateError(describeFetchError(error)) };
    }
  }

  private async pollGuardian(url: URL, replica: number): Promise<GuardianReport> {
    try {
      const parsed = await this.fetchStatusJson(url, DASHBOARD_LIMITS.maxGuardianStatusBodyBytes);
      const result = parseGuardianStatus(parsed, replica);
      if (!result.ok) throw new Error(`invalid guardian status: ${result.reason}`);
      return { up: true, ...relayedGuardianStatus(result.status) };
    } catch (error) {
      return { up: false, replica, error: truncateError(describeFetchError(error)) };
    }
  }

  private async fetchStatusJson(url: URL, maxBytes: number): Promise<unknown> {
    const body = await this.fetchStatusBody(url, maxBytes);
    try {
      return JSON.parse(body) as unknown;
    } catch (error) {
      throw new Error(`invalid JSON: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
  }

  /** GET with a deadline and a body cap; resolves with the body text of a 200 answer. */
  private fetchStatusBody(url: URL, maxBytes: number): Promise<string> {
    const { fetchTimeoutMs } = this.settings;
    return new Promise((resolve, reject) => {
      // agent: false opens a fresh connection per poll. A kept-alive socket that the replica
      // closes just as it is reused would report a healthy replica down for a round.
      const pending = request(url, { method: 'GET', agent: false, headers: { accept: 'application/json' } });
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        this.inFlight.delete(fail);
        outcome();
      };
      // Every failure path comes here, so the outcome does not depend on which of the request's
      // or the response's events Node happens to emit for a destroyed socket.
      const fail = (error: Error): void => {
        settle(() => reject(error));
        pending.destroy();
      };
      const deadline = setTimeout(
        () => fail(new Error(`no answer within ${fetchTimeoutMs} ms`)),
        fetchTimeoutMs,
      );
      this.inFlight.add(fail);
      pending.on('error', fail);
      pending.on('response', (response) => {
        if (response.statusCode !== 200) {
          fail(new Error(`HTTP ${response.statusCode ?? '?'} from ${url.href}`));
          return;
        }
        const declared = Number(response.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          fail(new Error(`status body of ${declared} bytes exceeds the ${maxBytes}-byte limit`));
          return;
        }
        const chunks: Buffer[] = [];
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxBytes) fail(new Error(`status body exceeds the ${maxBytes}-byte limit`));
          else chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('end', () => settle(() => resolve(Buffer.concat(chunks).toString('utf8'))));
        response.on('close', () => fail(new Error('connection closed before the status body was complete')));
      });
      pending.end();
    });
  }

  private broadcast(status: DashboardClusterStatus): void {
    const frame = `data: ${JSON.stringify(status)}\n\n`;
    for (const client of this.eventClients) {
      // A subscriber that does not read must not make the dashboard buffer without bound.
      if (client.writableLength > DASHBOARD_LIMITS.maxEventClientBacklogBytes) {
        client.destroy();
        this.eventClients.delete(client);
        continue;
      }
      if (!client.destroyed && !client.writableEnded) client.write(frame);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (!hostHeaderAllowed(req, this.settings.host)) {
      // DNS rebinding (src/runtime/host-header.ts): the same check as the admin servers.
      this.sendText(res, 403, 'Host header does not name this dashboard (a loopback name or its address)\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      this.sendText(res, 405, 'only GET is supported\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/':
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy': this.settings.page.contentSecurityPolicy,
        });
        res.end(req.method === 'HEAD' ? undefined : this.settings.page.html);
        return;
      case '/api/cluster':
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(this.latest));
        return;
      case '/api/events':
        this.subscribe(req, res);
        return;
      case '/api/history':
        this.sendJson(req, res, this.settings.history.toJSON());
        return;
      case '/api/log':
        this.sendJson(req, res, this.settings.history.logJSON());
        return;
      case this.settings.assets.script.path: {
        // The chart library; its CSS is inlined in the page (a hash cannot allow an external sheet).
        const asset = this.settings.assets.script;
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': asset.contentType,
          'content-length': asset.body.length,
          'cache-control': 'no-cache',
        });
        res.end(req.method === 'HEAD' ? undefined : asset.body);
        return;
      }
      default:
        this.sendText(res, 404, 'not found\n');
    }
  }

  private subscribe(req: IncomingMessage, res: ServerResponse): void {
    if (this.closed) {
      this.sendText(res, 503, 'dashboard closing\n');
      return;
    }
    if (this.eventClients.size >= this.settings.maxEventClients) {
      res.setHeader('retry-after', '5');
      this.sendText(res, 503, `too many event subscribers (limit ${this.settings.maxEventClients})\n`);
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    this.eventClients.add(res);
    res.on('close', () => this.eventClients.delete(res));
    // The retry hint makes a browser reconnect quickly after a dashboard restart; the first
    // frame gives a new subscriber the current state without waiting for the next round.
    res.write(`retry: 1000\n\ndata: ${JSON.stringify(this.latest)}\n\n`);
  }

  private sendJson(req: IncomingMessage, res: ServerResponse, value: unknown): void {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(value));
  }

  private sendText(res: ServerResponse, statusCode: number, text: string): void {
    res.writeHead(statusCode, {
      ...SECURITY_HEADERS,
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(text);
  }
}
