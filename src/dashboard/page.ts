/**
 * The dashboard page: one self-contained HTML document with its CSS and script inline, no build
 * step and nothing fetched from other origins. The server renders the static skeleton (one table
 * row per replica, the cluster parameters); the script fills it from /api/events, or from
 * /api/cluster when the event stream cannot be used.
 *
 * Stable `data-testid` attributes name everything tests and later features look for
 * (see docs/dashboard.md). Replica-supplied strings are only ever written with textContent.
 */
import { createHash } from 'node:crypto';
import { type FaultModel, quorumSize } from '../core/quorum.js';

export interface DashboardPageOptions {
  readonly cluster: FaultModel;
  /** How often the server polls; the page polls /api/cluster at this rate when SSE is unavailable. */
  readonly pollIntervalMs: number;
}

export interface DashboardPage {
  readonly html: string;
  /** Allows exactly the inline script and style of `html`, and connections to its own origin. */
  readonly contentSecurityPolicy: string;
}

/** Throughput samples kept per sparkline (about 30 s at the default 500 ms poll interval). */
export const SPARKLINE_SAMPLES = 60;

/** The columns of the replica table, in order: test id suffix and heading. */
const COLUMNS = [
  ['id', 'Replica'],
  ['role', 'Role'],
  ['state', 'Status'],
  ['view', 'View'],
  ['executed', 'Last executed'],
  ['checkpoint', 'Stable checkpoint'],
  ['transfer', 'State transfer'],
  ['throughput', 'Throughput (req/s)'],
  ['pending', 'Pending'],
  ['key-epoch', 'Key epoch'],
  ['peers', 'Peers'],
  ['address', 'Address'],
] as const;

/** Right-aligned so digits line up. */
const NUMBER_COLUMNS: ReadonlySet<string> = new Set([
  'view',
  'executed',
  'checkpoint',
  'pending',
  'key-epoch',
  'peers',
]);

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #ffffff; --text: #1c2330; --muted: #667085; --border: #e2e6ec;
  --leader-bg: #eef4ff; --leader-edge: #3b6fd8; --leader-text: #ffffff; --up: #1b7f4b; --up-bg: #e3f5ea;
  --down: #b42318; --down-bg: #fde8e7; --warn: #9a5b00; --warn-bg: #fff1d6; --spark: #3b6fd8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161d; --panel: #1a2029; --text: #e4e8ee; --muted: #98a2b3; --border: #2b3340;
    --leader-bg: #1d2a44; --leader-edge: #6d9af0; --leader-text: #0d1726; --up: #5fd08f; --up-bg: #173324;
    --down: #ff8a80; --down-bg: #3b1d1b; --warn: #f3c16b; --warn-bg: #3a2d12; --spark: #6d9af0;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 32px; padding: 16px 24px;
  background: var(--panel); border-bottom: 1px solid var(--border); }
h1 { font-size: 18px; margin: 0; font-weight: 600; }
dl.parameters { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0; }
dl.parameters div { display: flex; flex-direction: column; }
dl.parameters dt { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
dl.parameters dd { margin: 0; font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
.cluster-throughput { display: flex; align-items: center; gap: 8px; }
.connection { margin-left: auto; font-size: 12px; color: var(--muted); text-align: right; }
.connection [data-state="live"] { color: var(--up); }
.connection [data-state="polling"] { color: var(--warn); }
.connection [data-state="reconnecting"], .connection [data-state="stale"] { color: var(--down); }
main { padding: 16px 24px 32px; }
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: 12px 14px 4px; font-weight: 600; }
th, td { padding: 8px 10px; text-align: left; white-space: nowrap; border-top: 1px solid var(--border); }
thead th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600;
  white-space: normal; vertical-align: bottom; }
thead th.number, td.number { text-align: right; }
tr.leader { background: var(--leader-bg); box-shadow: inset 3px 0 0 var(--leader-edge); }
tr.down td { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.leader { background: var(--leader-edge); color: var(--leader-text); }
.badge.backup { background: var(--border); color: var(--text); }
.badge.up { background: var(--up-bg); color: var(--up); }
.badge.down { background: var(--down-bg); color: var(--down); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.marker { margin-left: 6px; }
.error { display: block; min-width: 16em; max-width: 28em; white-space: normal; font-size: 12px; color: var(--down); }
.throughput { display: inline-flex; align-items: center; gap: 8px; }
.throughput .value { min-width: 4.5em; text-align: right; }
svg.sparkline { display: block; overflow: visible; }
svg.sparkline path { fill: none; stroke: var(--spark); stroke-width: 1.5; stroke-linejoin: round; }
.details { display: block; font-size: 12px; color: var(--muted); }
footer { padding: 0 24px 24px; font-size: 12px; color: var(--muted); }
`;

const SCRIPT = `
'use strict';
(() => {
  const root = document.querySelector('main');
  const faultLimit = Number(root.dataset.f);
  const pollIntervalMs = Number(root.dataset.pollIntervalMs);
  const SAMPLES = Number(root.dataset.sparklineSamples);
  // Nothing for three poll intervals (and at least 3 s) means the numbers on screen are old.
  const STALE_AFTER_MS = Math.max(3000, 3 * pollIntervalMs);
  const SVG = 'http://www.w3.org/2000/svg';
  const histories = new Map();
  const clusterHistory = [];
  let lastUpdateAt = 0;
  let transport = 'connecting';

  const byTestId = (id) => document.querySelector('[data-testid="' + id + '"]');
  const setText = (id, text) => {
    const element = byTestId(id);
    if (element && element.textContent !== text) element.textContent = text;
  };
  const formatCount = (value) => Number(value).toLocaleString('en-US');
  const formatRate = (value) =>
    value >= 100 ? Math.round(value).toLocaleString('en-US') : (Math.round(value * 10) / 10).toFixed(1);
  const formatDuration = (seconds) => {
    const s = Math.floor(seconds);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  };

  function badge(text, kind, testId) {
    const span = document.createElement('span');
    span.className = 'badge ' + kind;
    span.textContent = text;
    if (testId) span.dataset.testid = testId;
    return span;
  }

  function fill(cell, ...children) {
    cell.replaceChildren(...children);
  }

  function pushSample(history, value) {
    history.push(value);
    if (history.length > SAMPLES) history.splice(0, history.length - SAMPLES);
  }

  // Draws samples as a line; a null sample (replica down) breaks the line.
  function drawSparkline(svg, samples) {
    const width = Number(svg.getAttribute('width'));
    const height = Number(svg.getAttribute('height'));
    const peak = Math.max(1, ...samples.filter((sample) => sample !== null));
    const step = width / (SAMPLES - 1);
    const offset = SAMPLES - samples.length;
    let d = '';
    let penDown = false;
    samples.forEach((sample, index) => {
      if (sample === null) {
        penDown = false;
        return;
      }
      const x = ((offset + index) * step).toFixed(1);
      const y = (height - 1 - (sample / peak) * (height - 2)).toFixed(1);
      d += (penDown ? 'L' : 'M') + x + ' ' + y;
      penDown = true;
    });
    let path = svg.querySelector('path');
    if (!path) {
      path = document.createElementNS(SVG, 'path');
      svg.appendChild(path);
    }
    path.setAttribute('d', d);
  }

  function renderReplica(report) {
    const id = report.replica;
    const row = byTestId('replica-row-' + id);
    if (!row) return;
    const cell = (name) => byTestId('replica-' + name + '-' + id);
    let history = histories.get(id);
    if (!history) {
      history = [];
      histories.set(id, history);
    }
    row.dataset.up = String(report.up);
    row.classList.toggle('down', !report.up);
    row.classList.toggle('leader', report.up && report.role === 'leader');
    if (!report.up) {
      row.dataset.role = 'unknown';
      fill(cell('role'), document.createTextNode('—'));
      const error = document.createElement('span');
      error.className = 'error';
      error.dataset.testid = 'replica-error-' + id;
      error.textContent = report.error;
      fill(cell('state'), badge('down', 'down'), error);
      for (const name of ['view', 'executed', 'checkpoint', 'transfer', 'pending', 'key-epoch', 'peers'])
        fill(cell(name), document.createTextNode('—'));
      setText('replica-throughput-' + id, '—');
      setText('replica-address-' + id, '—');
      setText('replica-details-' + id, '');
      pushSample(history, null);
      drawSparkline(byTestId('replica-sparkline-' + id), history);
      return;
    }
    row.dataset.role = report.role;
    fill(cell('role'), badge(report.role, report.role));
    fill(cell('state'), badge('up', 'up'));
    const view = [document.createTextNode(formatCount(report.view))];
    if (report.viewChangeInProgress) view.push(badge('view change', 'warn marker', 'replica-view-change-' + id));
    fill(cell('view'), ...view);
    fill(cell('executed'), document.createTextNode(formatCount(report.lastExecuted)));
    fill(cell('checkpoint'), document.createTextNode(formatCount(report.stableCheckpoint)));
    fill(
      cell('transfer'),
      report.stateTransferInProgress ? badge('in progress', 'warn') : document.createTextNode('no'),
    );
    setText('replica-throughput-' + id, formatRate(report.throughputPerSecond));
    pushSample(history, report.throughputPerSecond);
    drawSparkline(byTestId('replica-sparkline-' + id), history);
    fill(cell('pending'), document.createTextNode(formatCount(report.pendingRequests)));
    fill(cell('key-epoch'), document.createTextNode(formatCount(report.keyEpoch)));
    fill(cell('peers'), document.createTextNode(formatCount(report.connectedPeers)));
    setText('replica-address-' + id, report.address);
    setText('replica-details-' + id, report.storageEngine + ' · up ' + formatDuration(report.uptimeSeconds));
  }

  // Every replica executes every request, so adding their rates would count each request n times.
  // The (f+1)-th highest rate is one that at least one correct replica vouches for.
  function clusterThroughput(replicas) {
    const rates = replicas.filter((report) => report.up).map((report) => report.throughputPerSecond);
    rates.sort((a, b) => b - a);
    return rates.length > faultLimit ? rates[faultLimit] : null;
  }

  function render(status) {
    if (!status || !Array.isArray(status.replicas)) return;
    setText('cluster-n', String(status.n));
    setText('cluster-f', String(status.f));
    setText('cluster-k', String(status.k));
    for (const report of status.replicas) renderReplica(report);
    const up = status.replicas.filter((report) => report.up).length;
    setText('cluster-up', up + ' / ' + status.replicas.length);
    const total = clusterThroughput(status.replicas);
    setText('cluster-throughput', total === null ? '—' : formatRate(total));
    pushSample(clusterHistory, total);
    drawSparkline(byTestId('cluster-sparkline'), clusterHistory);
    setText('cluster-updated', new Date(status.collectedAt).toLocaleTimeString());
    lastUpdateAt = Date.now();
    showConnection();
  }

  function showConnection() {
    const stale = lastUpdateAt > 0 && Date.now() - lastUpdateAt > STALE_AFTER_MS;
    const state = stale && transport !== 'reconnecting' ? 'stale' : transport;
    const labels = {
      connecting: 'connecting…',
      live: 'live',
      polling: 'polling',
      reconnecting: 'reconnecting…',
      stale: 'stale — no update for ' + Math.round((Date.now() - lastUpdateAt) / 1000) + ' s',
    };
    const element = byTestId('connection-state');
    element.dataset.state = state;
    setText('connection-state', labels[state]);
  }

  function receive(text) {
    try {
      render(JSON.parse(text));
    } catch (error) {
      console.warn('dashboard: ignored an update that could not be shown', error);
    }
  }

  // Fallback when EventSource is missing or refused (e.g. too many subscribers): plain polling.
  function startPolling() {
    transport = 'polling';
    showConnection();
    const poll = () => {
      fetch('api/cluster', { cache: 'no-store' })
        .then((response) => (response.ok ? response.text() : Promise.reject(new Error('HTTP ' + response.status))))
        .then(receive, () => undefined)
        .finally(() => setTimeout(poll, pollIntervalMs));
    };
    poll();
  }

  function connectEvents() {
    if (typeof EventSource !== 'function') {
      startPolling();
      return;
    }
    const source = new EventSource('api/events');
    source.onopen = () => {
      transport = 'live';
      showConnection();
    };
    source.onmessage = (event) => {
      transport = 'live';
      receive(event.data);
    };
    source.onerror = () => {
      // CONNECTING means the browser retries by itself; CLOSED means it gave up for good.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        startPolling();
      } else {
        transport = 'reconnecting';
        showConnection();
      }
    };
  }

  setInterval(showConnection, 1000);
  connectEvents();
})();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function sha256Source(source: string): string {
  return `'sha256-${createHash('sha256').update(source, 'utf8').digest('base64')}'`;
}

function sparkline(testId: string, width: number, height: number, label: string): string {
  return (
    `<svg class="sparkline" data-testid="${testId}" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(label)}"></svg>`
  );
}

function replicaRow(replica: number): string {
  const cells = COLUMNS.map(([name]) => {
    const testId = `replica-${name}-${replica}`;
    switch (name) {
      case 'id':
        return `<th scope="row" data-testid="${testId}">${replica}</th>`;
      case 'throughput':
        return (
          `<td><span class="throughput"><span class="value" data-testid="${testId}">…</span>` +
          `${sparkline(`replica-sparkline-${replica}`, 80, 20, `throughput of replica ${replica}, last ${SPARKLINE_SAMPLES} samples`)}</span></td>`
        );
      case 'address':
        return (
          `<td><span data-testid="${testId}">…</span>` +
          `<span class="details" data-testid="replica-details-${replica}"></span></td>`
        );
      default:
        return NUMBER_COLUMNS.has(name)
          ? `<td class="number" data-testid="${testId}">…</td>`
          : `<td data-testid="${testId}">…</td>`;
    }
  });
  return `<tr data-testid="replica-row-${replica}" data-up="unknown" data-role="unknown">${cells.join('')}</tr>`;
}

/** Renders the page for a cluster; the result is fixed for the server's lifetime. */
export function renderDashboardPage(options: DashboardPageOptions): DashboardPage {
  const { n, f, k } = options.cluster;
  const quorum = quorumSize(options.cluster);
  const parameter = (testId: string, term: string, value: string, title: string): string =>
    `<div title="${escapeHtml(title)}"><dt>${term}</dt><dd data-testid="${testId}">${escapeHtml(value)}</dd></div>`;
  const rows = Array.from({ length: n }, (_, replica) => replicaRow(replica)).join('\n');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Phalanx cluster dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Phalanx cluster</h1>
<dl class="parameters" aria-label="Cluster parameters">
${parameter('cluster-n', 'n', String(n), 'replicas in the configuration')}
${parameter('cluster-f', 'f', String(f), 'Byzantine replicas tolerated at once')}
${parameter('cluster-k', 'k', String(k), 'replicas that may be recovering at once')}
${parameter('cluster-quorum', 'quorum', String(quorum), 'matching votes that make a certificate: ⌈(n + f + 1) / 2⌉')}
${parameter('cluster-up', 'up', '…', 'replicas answering their admin endpoint')}
<div title="rate that at least f + 1 replicas report, so at least one correct replica vouches for it"><dt>cluster throughput (req/s)</dt><dd class="cluster-throughput"><span data-testid="cluster-throughput">…</span>${sparkline('cluster-sparkline', 120, 24, `cluster throughput, last ${SPARKLINE_SAMPLES} samples`)}</dd></div>
</dl>
<div class="connection" aria-live="polite">
<div>updates: <span data-testid="connection-state" data-state="connecting">connecting…</span></div>
<div>collected at <span data-testid="cluster-updated">—</span></div>
</div>
</header>
<main data-f="${f}" data-poll-interval-ms="${options.pollIntervalMs}" data-sparkline-samples="${SPARKLINE_SAMPLES}">
<div class="table-wrap">
<table data-testid="replica-table">
<caption>Replicas</caption>
<thead><tr>${COLUMNS.map(([name, heading]) => `<th scope="col"${NUMBER_COLUMNS.has(name) ? ' class="number"' : ''}>${heading}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
</div>
</main>
<footer>Numbers are what each replica reports about itself on its admin port; a Byzantine replica can misreport its own row.</footer>
<noscript><p>This page needs JavaScript for live updates; the same data is at <a href="api/cluster">api/cluster</a>.</p></noscript>
<script>${SCRIPT}</script>
</body>
</html>
`;
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256Source(SCRIPT)}`,
    `style-src ${sha256Source(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, contentSecurityPolicy };
}
