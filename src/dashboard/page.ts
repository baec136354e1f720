/**
 * The dashboard page: one HTML document with its CSS and script inline, plus the charting library
 * (uPlot) that the dashboard server itself serves; no build step and nothing fetched from other
 * origins. The server renders the static skeleton (one table row per replica, the cluster
 * parameters, the charts, and with guardians the recovery columns and panels); the script loads
 * the server's history (/api/history) into the charts, then follows /api/events, or polls
 * /api/cluster when the event stream cannot be used.
 *
 * Stable `data-testid` attributes name everything tests and later features look for
 * (see docs/dashboard.md). Replica- and guardian-supplied strings are only ever written with
 * textContent.
 */
import { createHash } from 'node:crypto';
import { type FaultModel, quorumSize } from '../core/quorum.js';
import { RECOVERY_STEPS } from '../runtime/guardian-report.js';
import type { RecoveryParameters } from '../runtime/status.js';
import type { ChartAssets } from './assets.js';
import { CATCHING_UP_LAG } from './history.js';

export interface DashboardPageOptions {
  readonly cluster: FaultModel;
  /** How often the server polls; the page polls /api/cluster at this rate when SSE is unavailable. */
  readonly pollIntervalMs: number;
  /** Guardians are polled: add the recovery columns and the recoveries, alarms and evidence panels. */
  readonly guardians?: boolean;
  /** A client beside the dashboard reports its latency: add the latency chart. */
  readonly clientLatency?: boolean;
  /** The configured recovery timing: show T, T_D and T_P in the header. */
  readonly recovery?: RecoveryParameters;
  /** The charting library's files, served by the dashboard server (src/dashboard/assets.ts). */
  readonly assets: ChartAssets;
}

export interface DashboardPage {
  readonly html: string;
  /** Allows exactly the inline script and style of `html`, and connections to its own origin. */
  readonly contentSecurityPolicy: string;
}

/** Entries shown in each of the recoveries, alarms and evidence panels, most recent first. */
export const RECENT_ENTRIES_SHOWN = 8;

/** The time the charts span: the history the server keeps. */
export const CHART_WINDOW_MS = 60 * 60 * 1000;

/**
 * The columns of the replica table, in order: test id suffix, heading, and whether the column
 * holds what guardians report (shown only when guardians are polled).
 */
const COLUMNS = [
  ['id', 'Replica', false],
  ['state', 'Status', false],
  ['process', 'Process', true],
  ['view', 'View', false],
  ['executed', 'Executed / checkpoint', false],
  ['throughput', 'Own rate (req/s)', false],
  ['pending', 'Pending', false],
  ['key-epoch', 'Key epoch', false],
  ['exposure', 'Since rejuvenation', true],
  ['recovery', 'Recovery', true],
  ['peers', 'Peers', false],
  ['address', 'Address', false],
] as const;

type ColumnName = (typeof COLUMNS)[number][0];

/** Right-aligned so digits line up. */
const NUMBER_COLUMNS: ReadonlySet<ColumnName> = new Set<ColumnName>([
  'view',
  'executed',
  'throughput',
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
  --info: #2f5fbf; --info-bg: #e8f0fe; --meter: #3b6fd8;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161d; --panel: #1a2029; --text: #e4e8ee; --muted: #98a2b3; --border: #2b3340;
    --leader-bg: #1d2a44; --leader-edge: #6d9af0; --leader-text: #0d1726; --up: #5fd08f; --up-bg: #173324;
    --down: #ff8a80; --down-bg: #3b1d1b; --warn: #f3c16b; --warn-bg: #3a2d12; --spark: #6d9af0;
    --info: #9dbcf7; --info-bg: #1d2a44; --meter: #6d9af0;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 28px; padding: 12px 20px;
  background: var(--panel); border-bottom: 1px solid var(--border); }
.verdict-bar { flex-basis: 100%; display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px;
  padding: 8px 12px; border-radius: 6px; background: var(--up-bg); }
header[data-verdict="degraded"] .verdict-bar { background: var(--warn-bg); }
header[data-verdict="stalled"] .verdict-bar, header[data-verdict="unsafe"] .verdict-bar { background: var(--down-bg); }
header[data-verdict="unknown"] .verdict-bar { background: var(--border); }
.verdict-bar .badge { font-size: 14px; padding: 2px 12px; text-transform: uppercase; letter-spacing: .04em; }
.verdict-summary { font-weight: 600; min-width: 0; overflow-wrap: anywhere; flex: 1 1 20em; }
h1 { font-size: 18px; margin: 0; font-weight: 600; }
dl.parameters { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0; }
dl.parameters div { display: flex; flex-direction: column; }
dl.parameters dt { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
dl.parameters dd { margin: 0; font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
.cluster-throughput { display: flex; align-items: center; gap: 8px; }
.connection { margin-left: auto; font-size: 12px; color: var(--muted); text-align: right; }
.verdict-bar .connection { display: flex; gap: 12px; }
.connection [data-state="live"] { color: var(--up); }
.connection [data-state="polling"] { color: var(--warn); }
.connection [data-state="reconnecting"], .connection [data-state="stale"] { color: var(--down); }
header[data-verdict="degraded"] .connection [data-state="live"],
header[data-verdict="unsafe"] .connection [data-state="live"],
header[data-verdict="stalled"] .connection [data-state="live"] { color: var(--muted); }
.badge.stale { opacity: .5; }
ul.health-reasons { flex-basis: 100%; margin: 0; padding: 8px 14px 8px 32px; border-radius: 6px;
  background: var(--warn-bg); color: var(--warn); font-weight: 600; }
header[data-verdict="stalled"] ul.health-reasons, header[data-verdict="unsafe"] ul.health-reasons {
  background: var(--down-bg); color: var(--down); }
ul.health-reasons li { overflow-wrap: anywhere; }
ul.health-reasons li.notice { font-weight: normal; }
ul.health-reasons[hidden] { display: none; }
main { padding: 14px 20px 28px; }
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: 12px 14px 4px; font-weight: 600; }
th, td { padding: 6px 7px; text-align: left; white-space: nowrap; border-top: 1px solid var(--border); vertical-align: top; }
td.wrap, th.wrap { white-space: normal; }
thead th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600;
  white-space: normal; vertical-align: bottom; }
thead th.number, td.number { text-align: right; }
tr.leader { background: var(--leader-bg); box-shadow: inset 3px 0 0 var(--leader-edge); }
tr.down td { color: var(--muted); }
tr.down td.from-guardian { color: var(--text); }
.badge { display: inline-block; white-space: nowrap; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.leader { background: var(--leader-edge); color: var(--leader-text); }
.badge.backup { background: var(--border); color: var(--text); }
.badge.up { background: var(--up-bg); color: var(--up); }
.badge.down { background: var(--down-bg); color: var(--down); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.marker { margin-left: 6px; }
.error { display: block; min-width: 8em; max-width: 12em; white-space: normal; overflow-wrap: anywhere; font-size: 12px; color: var(--down); }
.error.expected { color: var(--muted); }
.details { display: block; font-size: 12px; color: var(--muted); }
.details.wrap { white-space: normal; max-width: 12em; overflow-wrap: anywhere; }
td.wrap-cell { white-space: normal; min-width: 7em; max-width: 13em; }
.catching-up-lag { display: block; }
.badge.catching-up { background: var(--warn-bg); color: var(--warn); font-weight: normal; }
.muted { color: var(--muted); }
footer { padding: 0 24px 24px; font-size: 12px; color: var(--muted); }
dl.recovery-parameters { padding-left: 24px; border-left: 1px solid var(--border); }
dd.over, .over-text { color: var(--down); }
tr.recovering { background: var(--warn-bg); box-shadow: inset 3px 0 0 var(--warn); }
.badge.proactive { background: var(--info-bg); color: var(--info); }
.badge.reactive { background: var(--down-bg); color: var(--down); }
.badge.over { background: var(--down-bg); color: var(--down); }
.inline-meter { display: inline-flex; align-items: center; gap: 8px; }
.meter { display: inline-block; width: 40px; height: 6px; border-radius: 3px; background: var(--border); overflow: hidden; }
.meter.under { display: block; width: 100%; min-width: 96px; margin-top: 5px; }
.meter-fill { display: block; height: 100%; width: 0; background: var(--meter); }
.over .meter-fill, [data-over="true"] .meter-fill { background: var(--down); }
[data-over="true"] .exposure-text { color: var(--down); font-weight: 600; }
.step { font-weight: 600; margin-left: 6px; }
.panels { display: grid; grid-template-columns: minmax(0, 1fr); align-items: start; gap: 14px; margin-top: 14px; }
@media (min-width: 1100px) {
  .panels { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); grid-template-areas: "recoveries evidence" "recoveries alarms"; }
  .panels .panel-recoveries { grid-area: recoveries; }
  .panels .panel-evidence { grid-area: evidence; }
  .panels .panel-alarms { grid-area: alarms; }
}
.panel-scroll { overflow-x: auto; }
.panel table td { white-space: normal; overflow-wrap: anywhere; }
.panel table td.nowrap { white-space: nowrap; }
.charts { display: grid; grid-template-columns: minmax(0, 1fr); gap: 14px; margin-bottom: 14px; }
@media (min-width: 1100px) { .charts { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.chart { margin: 0; padding: 0 10px 8px; }
.chart figcaption { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; flex-wrap: wrap;
  padding: 10px 4px 4px; font-weight: 600; }
.chart figcaption .summary { font-size: 12px; font-weight: normal; color: var(--muted); }
.plot { min-height: 160px; overflow: hidden; }
.plot .uplot { font-family: inherit; }
.plot .u-legend { font-size: 11px; }
.chart-note { margin: 4px 4px 0; font-size: 12px; color: var(--muted); }
.legend-markers { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 11px; color: var(--muted); margin: 2px 4px; }
.legend-markers span::before { content: ""; display: inline-block; width: 10px; height: 2px; margin-right: 4px; vertical-align: middle; background: currentColor; }
.legend-markers .evidence-marker { color: #d92d20; }
.legend-markers .alarm-marker { color: #dc8a00; }
.legend-markers .view-marker { color: #7a5af8; }
.timeline { position: relative; padding: 4px 4px 0; }
.lane { display: grid; grid-template-columns: 5.5em minmax(0, 1fr); align-items: center; gap: 6px; height: 22px; font-size: 12px; }
.lane-label { color: var(--muted); white-space: nowrap; }
.track { position: relative; height: 14px; background: var(--bg); border-radius: 3px; overflow: hidden; }
.slot { position: absolute; top: 0; bottom: 0; min-width: 3px; border-radius: 2px; }
.slot.proactive { background: var(--leader-edge); }
.slot.reactive { background: #d92d20; }
.slot.crash { background: var(--muted); }
.slot.over { outline: 2px solid #d92d20; outline-offset: -1px; }
.slot.running { opacity: .6; }
.timeline-axis { display: grid; grid-template-columns: 5.5em minmax(0, 1fr); gap: 6px; font-size: 11px; color: var(--muted); }
.timeline-axis .ends { display: flex; justify-content: space-between; }
.timeline-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 11px; color: var(--muted); margin: 4px; }
.timeline-legend .slot { position: static; display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
details.proof summary { cursor: pointer; color: var(--info); font-size: 12px; }
details.proof ol { margin: 4px 0 0; padding-left: 18px; font-family: ui-monospace, monospace; font-size: 11px; overflow-wrap: anywhere; word-break: break-all; }
.steps { display: block; font-size: 11px; color: var(--muted); white-space: normal; }
details.steps summary { cursor: pointer; }
tr.proof-row td { border-top: none; padding-top: 0; }
.config-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px; padding: 4px 14px 10px; }
.config-card { border: 1px solid var(--border); border-radius: 6px; padding: 8px 10px; font-size: 12px; min-width: 0; }
.config-card h3 { margin: 0 0 4px; font-size: 13px; }
.config-card dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 10px; margin: 0; }
.config-card dt { color: var(--muted); }
.config-card dd { margin: 0; overflow-wrap: anywhere; }
section.config { margin-top: 14px; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding-bottom: 6px; min-width: 0; }
.panel h2 { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; margin: 0;
  padding: 12px 14px 6px; font-size: 14px; font-weight: 600; }
.panel h2 .summary { font-size: 12px; font-weight: normal; color: var(--muted); }
.panel td, .panel th { padding: 6px 8px; }
.panel td.text { white-space: normal; }
.panel tr.over td.duration { color: var(--down); font-weight: 600; }
.panel .empty { padding: 6px 14px; color: var(--muted); border-top: 1px solid var(--border); }
ol.alarm-list { list-style: none; margin: 0; padding: 0; }
ol.alarm-list li { display: flex; gap: 10px; padding: 6px 14px; border-top: 1px solid var(--border); }
ol.alarm-list li > span:last-child { min-width: 0; overflow-wrap: anywhere; }
ol.alarm-list .when, ol.alarm-list .source { color: var(--muted); white-space: nowrap; font-variant-numeric: tabular-nums; }
`;

const SCRIPT = `
'use strict';
(() => {
  const root = document.querySelector('main');
  const faultLimit = Number(root.dataset.f);
  const pollIntervalMs = Number(root.dataset.pollIntervalMs);
  const ENTRIES_SHOWN = Number(root.dataset.recentEntries);
  const guardiansShown = root.dataset.guardians === 'true';
  const RECOVERY_STEPS = ${JSON.stringify(RECOVERY_STEPS)};
  // Nothing for three poll intervals (and at least 3 s) means the numbers on screen are old.
  const STALE_AFTER_MS = Math.max(3000, 3 * pollIntervalMs);
  const CATCHING_UP_LAG = ${CATCHING_UP_LAG};
  let lastUpdateAt = 0;
  let transport = 'connecting';
  let shownPanels = '';
  let shownReasons = '[]';

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
  // Recovery timings: tenths of a second below 10 s (recoveries are short), whole units above.
  const formatMs = (ms) => {
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 10000) {
      const tenths = Math.round(ms / 100) / 10;
      return (Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1)) + ' s';
    }
    const s = Math.round(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min' + (s % 60 === 0 ? '' : ' ' + (s % 60) + ' s');
    return Math.floor(s / 3600) + ' h' + (Math.floor(s / 60) % 60 === 0 ? '' : ' ' + (Math.floor(s / 60) % 60) + ' min');
  };
  const formatTime = (atMs) => new Date(atMs).toLocaleTimeString();

  function element(tag, className, testId, ...children) {
    const created = document.createElement(tag);
    if (className) created.className = className;
    if (testId) created.dataset.testid = testId;
    created.append(...children.map((child) => (typeof child === 'string' ? document.createTextNode(child) : child)));
    return created;
  }

  function badge(text, kind, testId) {
    return element('span', 'badge ' + kind, testId, text);
  }

  function fill(cell, ...children) {
    cell.replaceChildren(...children);
  }

  // Fills a bar to value / limit of its width (capped at full) and marks it when past the limit.
  function meter(holder, value, limit) {
    const over = value > limit;
    holder.classList.toggle('over', over);
    holder.querySelector('.meter-fill').style.width = Math.min(100, (100 * value) / limit).toFixed(1) + '%';
    return over;
  }

  // A replica its guardian is rejuvenating shows the guardian's step and epoch in place of up or
  // down: it is expected to be away, and 'down' would send the operator after a fault.
  function stateCell(id, report, rejuvenation) {
    const cell = byTestId('replica-state-' + id);
    if (rejuvenation === null) {
      if (report.up) fill(cell, badge('up', 'up'));
      else fill(cell, badge('down', 'down'), element('span', 'error', 'replica-error-' + id, report.error));
      return;
    }
    const step = rejuvenation.step === null ? '' : 'step ' + rejuvenation.step + ', ';
    const shown = [
      badge('rejuvenating', 'warn'),
      element('span', 'details wrap', 'replica-rejuvenation-' + id, step + 'key epoch ' + formatCount(rejuvenation.keyEpoch)),
    ];
    if (!report.up) shown.push(element('span', 'error expected', 'replica-error-' + id, report.error));
    fill(cell, ...shown);
  }

  function renderReplica(report, rejuvenation, progress) {
    const id = report.replica;
    const row = byTestId('replica-row-' + id);
    if (!row) return;
    const cell = (name) => byTestId('replica-' + name + '-' + id);
    row.dataset.up = String(report.up);
    row.classList.toggle('down', !report.up);
    row.classList.toggle('leader', report.up && report.role === 'leader');
    stateCell(id, report, rejuvenation);
    if (!report.up) {
      row.dataset.role = 'unknown';
      fill(cell('role'), document.createTextNode('—'));
      for (const name of ['view', 'executed', 'checkpoint', 'pending', 'peers'])
        fill(cell(name), document.createTextNode('—'));
      fill(cell('transfer'));
      setText('replica-throughput-' + id, '—');
      fill(cell('catching-up'));
      setText('replica-address-' + id, '—');
      setText('replica-details-' + id, '');
      return;
    }
    row.dataset.role = report.role;
    fill(cell('role'), badge(report.role, report.role));
    const view = [document.createTextNode(formatCount(report.view))];
    if (report.viewChangeInProgress) view.push(badge('view change', 'warn marker', 'replica-view-change-' + id));
    fill(cell('view'), ...view);
    fill(cell('executed'), document.createTextNode(formatCount(report.lastExecuted)));
    fill(cell('checkpoint'), document.createTextNode(formatCount(report.stableCheckpoint)));
    // Only shown while one runs: 'no' in every row would be noise.
    if (report.stateTransferInProgress) fill(cell('transfer'), badge('in progress', 'warn'));
    else fill(cell('transfer'));
    setText('replica-throughput-' + id, formatRate(report.throughputPerSecond));
    // A replica replaying what it missed executes faster than the workload: say so beside its rate,
    // so it is not read as the cluster's rate (that one is in the header and the chart).
    const behind =
      progress && progress.quorumExecuted !== null ? progress.quorumExecuted - report.lastExecuted : 0;
    if (report.stateTransferInProgress || behind >= CATCHING_UP_LAG)
      fill(
        cell('catching-up'),
        badge('catching up', 'catching-up'),
        ...(behind > 0 ? [element('span', 'catching-up-lag', '', formatCount(behind) + ' behind')] : []),
      );
    else fill(cell('catching-up'));
    fill(cell('pending'), document.createTextNode(formatCount(report.pendingRequests)));
    fill(cell('peers'), document.createTextNode(formatCount(report.connectedPeers)));
    setText('replica-address-' + id, report.address);
    setText('replica-details-' + id, report.storageEngine + ' · up ' + formatDuration(report.uptimeSeconds));
  }

  // The guardian issues the key epochs, so its figure is the one shown; the replica's own is
  // added only when the two disagree (for a moment after a rejuvenation, or when something is wrong).
  function renderKeyEpoch(id, report, guardian) {
    const target = byTestId('replica-key-epoch-' + id);
    if (!target) return;
    const guardianUp = guardian !== undefined && guardian.up;
    if (!guardianUp && !report.up) {
      fill(target, document.createTextNode('—'));
      return;
    }
    const epoch = guardianUp ? guardian.keyEpoch : report.keyEpoch;
    const shown = [element('span', '', 'replica-epoch-' + id, formatCount(epoch))];
    if (guardianUp && report.up && report.keyEpoch !== guardian.keyEpoch)
      shown.push(element('span', 'details', 'replica-epoch-mismatch-' + id, 'replica: ' + formatCount(report.keyEpoch)));
    fill(target, ...shown);
  }

  // The configured timing is the promise; a guardian's own figures stand in when none was configured.
  function timingFor(status, guardian) {
    if (status.recovery) return status.recovery;
    return guardian && guardian.up ? guardian : null;
  }

  function renderExposure(id, exposureMs, guaranteeMs) {
    const target = byTestId('replica-exposure-' + id);
    const text = target.querySelector('.exposure-text');
    if (exposureMs === null || !(guaranteeMs > 0)) {
      target.dataset.over = 'unknown';
      meter(target, 0, 1);
      text.textContent = '—';
      return;
    }
    target.dataset.over = String(meter(target, exposureMs, guaranteeMs));
    text.textContent = formatMs(exposureMs) + ' / T = ' + formatMs(guaranteeMs);
  }

  // Guardian timestamps are compared with collectedAt, the dashboard server's clock, which the
  // guardians' synchronized clocks match; the browser may run somewhere with another clock.
  function renderRecovery(id, guardian, status, recoveryBoundMs, reactivePending) {
    const target = byTestId('replica-recovery-' + id);
    const recovery = guardian.recovery;
    if (!recovery.inProgress) {
      const shown = [element('span', 'muted', '', 'idle')];
      if (reactivePending) shown.push(badge('reactive scheduled', 'reactive marker', 'replica-reactive-pending-' + id));
      const untilNextMs = guardian.nextProactiveAtMs - status.collectedAt;
      const next = untilNextMs > 0 ? 'next proactive in ' + formatMs(untilNextMs) : 'proactive recovery due';
      shown.push(element('span', 'details wrap', 'replica-recovery-next-' + id, next));
      fill(target, ...shown);
      return;
    }
    const shown = [];
    if (recovery.kind !== null) shown.push(badge(recovery.kind, recovery.kind, 'replica-recovery-kind-' + id));
    shown.push(element('span', 'step', 'replica-recovery-step-' + id, recovery.step === null ? '—' : recovery.step));
    const stepIndex = RECOVERY_STEPS.indexOf(recovery.step);
    if (stepIndex >= 0) shown.push(element('span', 'muted', '', ' ' + (stepIndex + 1) + '/' + RECOVERY_STEPS.length));
    const details = element('span', 'details wrap');
    if (recovery.reason !== null) details.append(element('span', '', 'replica-recovery-reason-' + id, recovery.reason));
    if (recovery.startedAtMs !== null && recoveryBoundMs > 0) {
      const elapsedMs = Math.max(0, status.collectedAt - recovery.startedAtMs);
      if (details.childNodes.length > 0) details.append(' · ');
      details.append(
        element(
          'span',
          elapsedMs > recoveryBoundMs ? 'over-text' : '',
          'replica-recovery-elapsed-' + id,
          formatMs(elapsedMs) + ' of T_D = ' + formatMs(recoveryBoundMs),
        ),
      );
    }
    shown.push(details);
    fill(target, ...shown);
  }

  function renderGuardian(id, guardian, status, reactivePending) {
    const row = byTestId('replica-row-' + id);
    if (!row) return;
    const recovering = guardian.up && guardian.recovery.inProgress;
    row.classList.toggle('recovering', recovering);
    row.dataset.recovering = String(recovering);
    const processCell = byTestId('replica-process-' + id);
    if (!guardian.up) {
      fill(processCell, badge('guardian down', 'down'), element('span', 'error', 'guardian-error-' + id, guardian.error));
      fill(byTestId('replica-recovery-' + id), document.createTextNode('—'));
      renderExposure(id, null, null);
      return;
    }
    const processBadges = { running: 'up', starting: 'warn', stopped: recovering ? 'warn' : 'down' };
    fill(processCell, badge(guardian.replicaProcess, processBadges[guardian.replicaProcess] || 'warn'));
    const timing = timingFor(status, guardian);
    renderExposure(id, guardian.exposureMs, timing.guaranteeMs);
    renderRecovery(id, guardian, status, timing.recoveryBoundMs, reactivePending.has(id));
  }

  function renderTiming(status, guardians) {
    const up = guardians ? guardians.filter((guardian) => guardian.up) : [];
    const timing = timingFor(status, up[0]);
    setText('system-guarantee', timing ? formatMs(timing.guaranteeMs) : '—');
    setText('system-recovery-bound', timing ? formatMs(timing.recoveryBoundMs) : '—');
    setText('system-period', timing ? formatMs(timing.periodMs) : '—');
    const exposure = byTestId('system-exposure');
    if (!exposure) return;
    const worstMs = up.length === 0 ? null : Math.max(...up.map((guardian) => guardian.exposureMs));
    setText('system-exposure', worstMs === null ? '—' : formatMs(worstMs));
    exposure.classList.toggle('over', worstMs !== null && timing !== null && worstMs > timing.guaranteeMs);
    // f at run time: the guardian that counts the most (they learn of proofs at different times).
    const faulty = byTestId('system-faulty');
    if (!faulty) return;
    let counted = null;
    for (const guardian of up)
      if (guardian.faultyReplicas && (counted === null || guardian.faultyReplicas.counted.length > counted.counted.length))
        counted = guardian.faultyReplicas;
    setText(
      'system-faulty',
      counted === null
        ? '—'
        : counted.counted.length + ' of f = ' + counted.f + (counted.counted.length === 0 ? '' : ' (' + counted.counted.join(', ') + ')'),
    );
    faulty.classList.toggle('over', counted !== null && counted.counted.length >= counted.f);
  }

  function countSummary(count) {
    if (count === 0) return '';
    return count <= ENTRIES_SHOWN ? String(count) : 'latest ' + ENTRIES_SHOWN + ' of ' + count;
  }

  function panelBody(testId, entries, emptyText, build) {
    const body = byTestId(testId + '-body');
    if (entries.length === 0) {
      fill(body, element('p', 'empty', '', emptyText));
      return;
    }
    fill(body, element('div', 'panel-scroll', '', build(entries.slice(0, ENTRIES_SHOWN))));
  }

  function table(headings, rows) {
    const head = element('thead', '', '', element('tr', '', '', ...headings.map((heading) => element('th', '', '', heading))));
    return element('table', '', '', head, element('tbody', '', '', ...rows));
  }

  function renderRecoveries(recoveries, status) {
    const shown = recoveries.slice(0, ENTRIES_SHOWN);
    const longest = shown.length === 0 ? null : Math.max(...shown.map((entry) => entry.record.durationMs));
    const bound = status.recovery ? status.recovery.recoveryBoundMs : null;
    setText(
      'recoveries-summary',
      (bound === null ? '' : 'T_D = ' + formatMs(bound)) +
        (longest === null ? '' : (bound === null ? '' : ' · ') + 'longest ' + formatMs(longest)),
    );
    panelBody('recoveries', recoveries, 'No recoveries reported yet.', (entries) =>
      table(
        ['Replica', 'Kind', 'Reason', 'Started', 'Duration'],
        entries.map(({ replica, record, boundMs }, index) => {
          // Over T_D only when it took longer; a recovery the end of its slot cut off before T_D
          // missed its deadline without being over T_D, and says so.
          const overBound = boundMs > 0 && record.durationMs > boundMs;
          const over = overBound || record.exceededBound;
          const bar = element('span', 'meter', '', element('span', 'meter-fill'));
          if (boundMs > 0) meter(bar, record.durationMs, boundMs);
          if (over) bar.classList.add('over');
          const duration = element('td', 'duration nowrap', '', element('span', 'inline-meter', '', bar, formatMs(record.durationMs)));
          if (overBound) duration.append(badge('over T_D', 'over marker'));
          else if (over) duration.append(badge('unfinished at its slot end', 'over marker'));
          const row = element(
            'tr',
            over ? 'over' : '',
            'recovery-row-' + index,
            element('td', 'nowrap', '', String(replica)),
            element('td', 'nowrap', '', badge(record.kind, record.kind)),
            element(
              'td',
              'text',
              '',
              record.reason,
              element(
                'details',
                'steps',
                '',
                element('summary', '', '', record.steps.length + (record.steps.length === 1 ? ' step' : ' steps')),
                record.steps.map((step) => step.step + ' ' + formatMs(step.durationMs)).join(' · '),
              ),
            ),
            element('td', 'nowrap', '', formatTime(record.startedAtMs)),
            duration,
          );
          row.dataset.overBound = String(overBound);
          row.dataset.missedDeadline = String(over);
          return row;
        }),
      ),
    );
  }

  function renderAlarms(alarms) {
    setText('alarms-summary', countSummary(alarms.length));
    panelBody('alarms', alarms, 'No alarms.', (entries) =>
      element(
        'ol',
        'alarm-list',
        '',
        ...entries.map(({ guardian, alarm }, index) =>
          element(
            'li',
            '',
            'alarm-' + index,
            element('span', 'when', '', formatTime(alarm.atMs)),
            element('span', 'source', '', 'guardian ' + guardian),
            element('span', '', '', alarm.message),
          ),
        ),
      ),
    );
  }

  // One row per accused replica and kind of evidence: an intrusion reported by every guardian,
  // or several times, is one incident with a count, not a screenful of hashes.
  function renderIncidents(incidents) {
    const total = incidents.reduce((sum, incident) => sum + incident.count, 0);
    setText(
      'evidence-summary',
      incidents.length === 0
        ? ''
        : (incidents.length > ENTRIES_SHOWN ? 'latest ' + ENTRIES_SHOWN + ' of ' : '') +
          incidents.length +
          (incidents.length === 1 ? ' incident' : ' incidents') +
          ' · ' +
          total +
          (total === 1 ? ' record' : ' records'),
    );
    panelBody('evidence', incidents, 'No evidence.', (entries) =>
      table(
        ['Accused', 'Kind', 'Count', 'First seen', 'Last seen'],
        entries.flatMap((incident, index) => {
          const proofs = element(
            'ol',
            '',
            'incident-proofs-' + index,
            ...incident.proofs.map((proof) => element('li', '', '', proof)),
          );
          const validity =
            incident.invalid === 0
              ? badge('valid', 'up')
              : incident.valid === 0
                ? badge('invalid', 'warn')
                : badge(incident.valid + ' valid, ' + incident.invalid + ' invalid', 'warn');
          const proof = element(
            'details',
            'proof',
            'incident-proof-' + index,
            element('summary', '', '', 'proof' + (incident.proofs.length === 1 ? '' : 's (' + incident.proofs.length + ')') + ', reported by ' + incident.reporters.join(', ')),
            proofs,
          );
          const row = element(
            'tr',
            '',
            'incident-row-' + index,
            element('td', 'nowrap', 'incident-accused-' + index, 'replica ' + incident.accused),
            element('td', '', 'incident-kind-' + index, element('span', '', '', incident.kind + ' '), validity),
            element('td', 'nowrap number', 'incident-count-' + index, formatCount(incident.count)),
            element('td', 'nowrap', '', formatTime(incident.firstSeenMs)),
            element('td', 'nowrap', '', formatTime(incident.lastSeenMs)),
          );
          row.dataset.count = String(incident.count);
          row.dataset.valid = String(incident.invalid === 0);
          const proofCell = element('td', '', '', proof);
          proofCell.colSpan = 5;
          return [row, element('tr', 'proof-row', '', proofCell)];
        }),
      ),
    );
  }

  // Every guardian lists its own replica's recoveries and alarms; evidence (exchanged between
  // guardians) comes grouped into incidents from the server's log.
  function renderPanels(status, guardians) {
    const up = guardians.filter((guardian) => guardian.up);
    const recoveries = [];
    const alarms = [];
    for (const guardian of up) {
      const boundMs = timingFor(status, guardian).recoveryBoundMs;
      for (const record of guardian.recentRecoveries) recoveries.push({ replica: guardian.replica, record, boundMs });
      for (const alarm of guardian.alarms) alarms.push({ guardian: guardian.replica, alarm });
    }
    const finishedAt = (entry) => entry.record.startedAtMs + entry.record.durationMs;
    recoveries.sort((a, b) => finishedAt(b) - finishedAt(a));
    alarms.sort((a, b) => b.alarm.atMs - a.alarm.atMs);
    // Rebuilding the lists on every round would reset a reader's text selection for nothing.
    const signature = JSON.stringify([
      status.recovery,
      recoveries.slice(0, ENTRIES_SHOWN),
      alarms.length,
      alarms.slice(0, ENTRIES_SHOWN),
    ]);
    if (signature === shownPanels) return;
    shownPanels = signature;
    renderRecoveries(recoveries, status);
    renderAlarms(alarms);
  }

  function render(status) {
    if (!status || !Array.isArray(status.replicas)) return;
    const guardians = guardiansShown && Array.isArray(status.guardians) ? status.guardians : null;
    const health = status.health && Array.isArray(status.health.replicas) ? status.health : null;
    renderHealth(health, status.collectedAt);
    setText('cluster-n', String(status.n));
    setText('cluster-f', String(status.f));
    setText('cluster-k', String(status.k));
    const reactivePending = new Set();
    if (guardians)
      for (const guardian of guardians) if (guardian.up) guardian.pendingReactive.forEach((id) => reactivePending.add(id));
    const progress = health && health.progress ? health.progress : null;
    for (const report of status.replicas) {
      const guardian = guardians ? guardians[report.replica] : undefined;
      const replicaHealth = health ? health.replicas[report.replica] : undefined;
      renderReplica(report, replicaHealth ? replicaHealth.rejuvenation : null, progress);
      renderKeyEpoch(report.replica, report, guardian);
      if (guardian !== undefined) renderGuardian(report.replica, guardian, status, reactivePending);
    }
    renderTiming(status, guardians);
    if (guardians) renderPanels(status, guardians);
    const up = status.replicas.filter((report) => report.up).length;
    setText('cluster-up', up + ' / ' + status.replicas.length);
    const committed = progress ? progress.committedPerSecond : null;
    setText('cluster-throughput', committed === null || committed === undefined ? '—' : formatRate(committed));
    setText('cluster-executed', progress && progress.executed !== null ? formatCount(progress.executed) : '—');
    renderConfiguration(status, guardians);
    charts.append(status);
    if (typeof status.logVersion === 'number' && status.logVersion !== shownLogVersion) loadLog(status.logVersion);
    setText('cluster-updated', new Date(status.collectedAt).toLocaleTimeString());
    lastUpdateAt = Date.now();
    lastCollectedAt = status.collectedAt;
    showConnection();
  }

  // One line under the verdict: the first reason, or what healthy means right now.
  function verdictSummary(health, collectedAt) {
    if (!health) return 'waiting for the first poll round…';
    if (health.verdict !== 'healthy') return health.reasons.length > 0 ? health.reasons[0] : health.verdict;
    const progress = health.progress;
    if (!progress || progress.executed === null) return 'replicas answer; no sequence number reported yet';
    const rate = progress.committedPerSecond;
    const since = progress.advancedAtMs === null ? null : collectedAt - progress.advancedAtMs;
    const parts = ['sequence ' + formatCount(progress.executed)];
    if (rate !== null && rate !== undefined) parts.push(formatRate(rate) + ' req/s committed by a quorum');
    if (since !== null && since >= 5000) parts.push('idle: no new sequence number for ' + formatDuration(since / 1000) + ', no request waits long');
    return parts.join(' · ');
  }

  // Each replica's configuration as it and its guardian report it (runtime details will join it).
  let shownConfiguration = '';
  function renderConfiguration(status, guardians) {
    const target = byTestId('config-body');
    if (!target) return;
    const cards = status.replicas.map((report) => {
      const guardian = guardians ? guardians[report.replica] : undefined;
      const rows = [];
      if (report.up) {
        rows.push(['address', report.address], ['storage', report.storageEngine], ['uptime', formatDuration(report.uptimeSeconds)]);
        rows.push(['key epoch', formatCount(report.keyEpoch)], ['peers connected', formatCount(report.connectedPeers)]);
      } else rows.push(['replica', 'not answering']);
      if (guardian && guardian.up) {
        rows.push(['T / T_D / T_P', formatMs(guardian.guaranteeMs) + ' / ' + formatMs(guardian.recoveryBoundMs) + ' / ' + formatMs(guardian.periodMs)]);
        rows.push(['trust boundary', guardian.trustBoundary.reason]);
      } else if (guardian) rows.push(['guardian', 'not answering']);
      return [report.replica, rows];
    });
    // Uptime changes every second; the rest rarely: rebuild only when something else changed.
    const signature = JSON.stringify(cards.map(([id, rows]) => [id, rows.filter(([name]) => name !== 'uptime')]));
    if (signature === shownConfiguration) {
      for (const [id, rows] of cards) for (const [name, value] of rows) if (name === 'uptime') setText('config-uptime-' + id, value);
      return;
    }
    shownConfiguration = signature;
    target.replaceChildren(
      ...cards.map(([id, rows]) => {
        const list = element('dl');
        for (const [name, value] of rows)
          list.append(element('dt', '', '', name), element('dd', '', name === 'uptime' ? 'config-uptime-' + id : '', value));
        return element('div', 'config-card', 'config-' + id, element('h3', '', '', 'Replica ' + id), list);
      }),
    );
  }

  // ───── history charts (uPlot, served by the dashboard server) ─────
  const PALETTE = ['#3b6fd8', '#12b76a', '#f79009', '#7a5af8', '#ee46bc', '#0ba5ec', '#667085', '#b54708'];
  const MARKER_COLORS = { evidence: '#d92d20', alarm: '#dc8a00', view: '#7a5af8' };
  let lastCollectedAt = 0;
  let shownLogVersion = -1;
  let loadingLog = false;
  let log = { recoveries: [], alarms: [], incidents: [], evidenceAtMs: [] };

  const charts = (() => {
    const n = Number(root.dataset.n);
    let capacity = 7200;
    const columns = { atS: [], committed: [], p50: [], p99: [], executed: [], view: [], exposure: [], activity: [] };
    for (let id = 0; id < n; id++) {
      columns.exposure.push([]);
      columns.activity.push([]);
    }
    let guaranteeS = null;
    // The span every chart and the timeline show: from the oldest sample (or remembered event,
    // whichever is older, at most an hour back) to the latest round.
    const span = { startMs: null, endMs: null };
    function updateSpan() {
      const endMs = latestStatus ? latestStatus.collectedAt : columns.atS.length > 0 ? columns.atS[columns.atS.length - 1] * 1000 : null;
      if (endMs === null) return;
      const times = [endMs];
      if (columns.atS.length > 0) times.push(columns.atS[0] * 1000);
      for (const record of log.recoveries) times.push(record.startedAtMs);
      for (const alarm of log.alarms) times.push(alarm.atMs);
      for (const record of log.evidenceAtMs) times.push(record.atMs);
      span.startMs = Math.max(endMs - ${CHART_WINDOW_MS}, Math.min(...times) - 1000);
      span.endMs = endMs;
    }
    let recoveryBoundMs = null;
    let latestStatus = null;
    const plots = [];
    const available = typeof uPlot === 'function';

    function markers() {
      return {
        hooks: {
          draw: [
            (u) => {
              const ctx = u.ctx;
              const { left, top, width, height } = u.bbox;
              const line = (atS, color) => {
                const x = Math.round(u.valToPos(atS, 'x', true));
                if (!(x >= left && x <= left + width)) return;
                ctx.strokeStyle = color;
                ctx.beginPath();
                ctx.moveTo(x, top);
                ctx.lineTo(x, top + height);
                ctx.stroke();
              };
              ctx.save();
              ctx.lineWidth = Math.max(1, Math.round(1.5 * (uPlot.pxRatio || 1)));
              for (let index = 1; index < columns.view.length; index++) {
                const before = columns.view[index - 1];
                const after = columns.view[index];
                if (before !== null && after !== null && after !== before) line(columns.atS[index], MARKER_COLORS.view);
              }
              for (const alarm of log.alarms) line(alarm.atMs / 1000, MARKER_COLORS.alarm);
              for (const record of log.evidenceAtMs) line(record.atMs / 1000, MARKER_COLORS.evidence);
              ctx.restore();
            },
          ],
        },
      };
    }

    function plot(testId, series, axes, data) {
      const holder = byTestId(testId);
      if (!holder || !available) return null;
      const made = new uPlot(
        {
          width: Math.max(200, holder.clientWidth),
          height: 170,
          cursor: { sync: { key: 'phalanx-history' } },
          legend: { live: true },
          scales: {
            x: {
              time: true,
              range: (u, min, max) => (span.startMs === null ? [min, max] : [span.startMs / 1000, span.endMs / 1000]),
            },
          },
          series: [{}, ...series],
          axes: [{}, ...axes],
          plugins: [markers()],
        },
        data(),
        holder,
      );
      plots.push({ holder, made, data });
      return made;
    }

    function build() {
      if (!available) {
        byTestId('charts').dataset.history = 'unavailable';
        return;
      }
      plot(
        'plot-throughput',
        [{ label: 'committed req/s', stroke: PALETTE[0], width: 1.5, fill: 'rgba(59,111,216,0.08)' }],
        [{ size: 56 }],
        () => [columns.atS, columns.committed],
      );
      plot(
        'plot-latency',
        [
          { label: 'p50 ms', stroke: PALETTE[0], width: 1.5 },
          { label: 'p99 ms', stroke: PALETTE[2], width: 1.5 },
        ],
        [{ size: 56 }],
        () => [columns.atS, columns.p50, columns.p99],
      );
      plot(
        'plot-progress',
        [
          { label: 'sequence number', stroke: PALETTE[1], width: 1.5, scale: 'seq' },
          { label: 'view', stroke: PALETTE[3], width: 1.5, scale: 'view', paths: uPlot.paths.stepped({ align: 1 }) },
        ],
        [{ scale: 'seq', size: 64 }, { scale: 'view', side: 1, size: 40, grid: { show: false } }],
        () => [columns.atS, columns.executed, columns.view],
      );
      if (guardiansShown) {
        plot(
          'plot-exposure',
          [
            ...columns.exposure.map((_, id) => ({ label: 'replica ' + id, stroke: PALETTE[id % PALETTE.length], width: 1.2 })),
            { label: 'T', stroke: '#d92d20', width: 1.5, dash: [6, 4] },
          ],
          [{ size: 48, values: (u, values) => values.map((value) => value + ' s') }],
          () => [columns.atS, ...columns.exposure, columns.atS.map(() => guaranteeS)],
        );
      }
      window.addEventListener('resize', () => {
        for (const { holder, made } of plots) made.setSize({ width: Math.max(200, holder.clientWidth), height: 170 });
      });
    }

    function redraw() {
      updateSpan();
      for (const { made, data } of plots) made.setData(data());
      const first = columns.atS.length > 0 ? columns.atS[0] : null;
      const holder = byTestId('plot-throughput');
      if (holder) {
        holder.dataset.points = String(columns.atS.length);
        holder.dataset.firstAt = first === null ? '' : String(Math.round(first * 1000));
      }
      const latency = byTestId('plot-latency');
      if (latency) latency.dataset.points = String(columns.p99.filter((value) => value !== null).length);
      renderTimeline();
    }

    function trim() {
      const excess = columns.atS.length - capacity;
      if (excess <= 0) return;
      for (const key of ['atS', 'committed', 'p50', 'p99', 'executed', 'view']) columns[key].splice(0, excess);
      for (const list of columns.exposure) list.splice(0, excess);
      for (const list of columns.activity) list.splice(0, excess);
    }

    function push(sample) {
      columns.atS.push(sample.atMs / 1000);
      columns.committed.push(sample.committedPerSecond);
      columns.p50.push(sample.latencyP50Ms);
      columns.p99.push(sample.latencyP99Ms);
      columns.executed.push(sample.executed);
      columns.view.push(sample.view);
      sample.replicas.forEach((replica, id) => {
        if (id >= n) return;
        columns.exposure[id].push(replica.exposureMs === null ? null : replica.exposureMs / 1000);
        columns.activity[id].push(replica.activity);
      });
    }

    function load(history) {
      const series = history.series;
      capacity = series.capacity;
      for (let index = 0; index < series.atMs.length; index++)
        push({
          atMs: series.atMs[index],
          committedPerSecond: series.committedPerSecond[index],
          latencyP50Ms: series.latencyP50Ms[index],
          latencyP99Ms: series.latencyP99Ms[index],
          executed: series.executed[index],
          view: series.view[index],
          replicas: series.replicas.map((replica) => ({
            exposureMs: replica.exposureMs[index],
            activity: replica.activity[index],
          })),
        });
      trim();
    }

    function append(status) {
      latestStatus = status;
      const guardian = Array.isArray(status.guardians) ? status.guardians.find((report) => report.up) : undefined;
      const timing = timingFor(status, guardian);
      guaranteeS = timing ? timing.guaranteeMs / 1000 : null;
      recoveryBoundMs = timing ? timing.recoveryBoundMs : null;
      const sample = status.sample;
      const lastAtS = columns.atS.length > 0 ? columns.atS[columns.atS.length - 1] : -Infinity;
      if (sample && sample.atMs / 1000 > lastAtS) {
        push(sample);
        trim();
        redraw();
      }
      const committed = status.health && status.health.progress ? status.health.progress.committedPerSecond : null;
      setText('throughput-summary', committed === null || committed === undefined ? '' : 'now ' + formatRate(committed) + ' req/s');
      if (sample && sample.latencyP99Ms !== null && sample.latencyP99Ms !== undefined)
        setText('latency-summary', 'now p50 ' + sample.latencyP50Ms.toFixed(1) + ' ms, p99 ' + sample.latencyP99Ms.toFixed(1) + ' ms');
    }

    // Lanes of slots over the charts' time span: proactive and reactive recoveries (from the
    // guardians' records, with their steps), and crashes (process down outside a recovery).
    function renderTimeline() {
      const target = byTestId('timeline-body');
      if (!target || columns.atS.length === 0) return;
      if (span.startMs === null) return;
      const { startMs, endMs } = span;
      const spanMs = Math.max(1000, endMs - startMs);
      const lanes = [];
      let overCount = 0;
      let unfinishedCount = 0;
      for (let id = 0; id < n; id++) {
        const track = element('div', 'track');
        const place = (fromMs, toMs, kind, title, testId) => {
          if (toMs < startMs || fromMs > endMs) return null;
          const from = Math.max(fromMs, startMs);
          const to = Math.min(Math.max(toMs, from), endMs);
          const slot = element('span', 'slot ' + kind, testId);
          slot.style.left = ((100 * (from - startMs)) / spanMs).toFixed(3) + '%';
          slot.style.width = ((100 * (to - from)) / spanMs).toFixed(3) + '%';
          slot.title = title;
          track.append(slot);
          return slot;
        };
        const recoveries = log.recoveries.filter((record) => record.replica === id);
        recoveries.forEach((record, index) => {
          const overBound = recoveryBoundMs !== null && record.durationMs > recoveryBoundMs;
          const over = overBound || record.exceededBound;
          if (overBound) overCount++;
          else if (over) unfinishedCount++;
          const steps = record.steps.map((step) => step.step + ' ' + formatMs(step.durationMs)).join(', ');
          const slot = place(
            record.startedAtMs,
            record.startedAtMs + record.durationMs,
            record.kind,
            record.kind + ' recovery of replica ' + id + ' (' + record.reason + '): ' + formatMs(record.durationMs) +
              (recoveryBoundMs === null ? '' : ' of T_D = ' + formatMs(recoveryBoundMs)) +
              (over && !overBound ? ', unfinished at the end of its slot' : '') +
              (steps ? '; steps: ' + steps : ''),
            'timeline-slot-' + id + '-' + index,
          );
          if (slot && over) slot.classList.add('over');
        });
        const guardian = latestStatus && Array.isArray(latestStatus.guardians) ? latestStatus.guardians[id] : undefined;
        if (guardian && guardian.up && guardian.recovery.inProgress && guardian.recovery.startedAtMs !== null) {
          const slot = place(
            guardian.recovery.startedAtMs,
            endMs,
            (guardian.recovery.kind || 'proactive') + ' running',
            'recovery in progress, step ' + (guardian.recovery.step || '—'),
            'timeline-running-' + id,
          );
          if (slot && recoveryBoundMs !== null && endMs - guardian.recovery.startedAtMs > recoveryBoundMs) slot.classList.add('over');
        }
        // Crashes come from the samples: runs of 'crashed' activity.
        const activity = columns.activity[id];
        let crashFrom = null;
        for (let index = 0; index <= activity.length; index++) {
          const crashed = index < activity.length && activity[index] === 'crashed';
          if (crashed && crashFrom === null) crashFrom = index;
          if (!crashed && crashFrom !== null) {
            const fromMs = columns.atS[crashFrom] * 1000;
            const toMs = index < activity.length ? columns.atS[index] * 1000 : endMs;
            place(fromMs, toMs, 'crash', 'replica ' + id + ' process down outside a recovery for ' + formatMs(toMs - fromMs), '');
            crashFrom = null;
          }
        }
        lanes.push(element('div', 'lane', 'timeline-lane-' + id, element('span', 'lane-label', '', 'replica ' + id), track));
      }
      const axis = element(
        'div',
        'timeline-axis',
        '',
        element('span'),
        element('span', 'ends', '', element('span', '', '', formatTime(startMs)), element('span', '', '', formatTime(endMs))),
      );
      target.replaceChildren(...lanes, axis);
      setText(
        'timeline-summary',
        (recoveryBoundMs === null ? '' : 'T_D = ' + formatMs(recoveryBoundMs) + ' · ') +
          log.recoveries.length +
          ' recorded' +
          (overCount > 0 ? ' · ' + overCount + ' over T_D' : '') +
          (unfinishedCount > 0 ? ' · ' + unfinishedCount + ' unfinished at their slot end' : ''),
      );
    }

    return { build, load, append, redraw };
  })();

  function applyLog(received) {
    log = received;
    shownLogVersion = received.version;
    if (guardiansShown) renderIncidents(received.incidents);
    charts.redraw();
  }

  function loadLog(version) {
    if (loadingLog) return;
    loadingLog = true;
    fetch('api/log', { cache: 'no-store' })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error('HTTP ' + response.status))))
      .then(applyLog, () => undefined)
      .finally(() => {
        loadingLog = false;
      });
  }

  const VERDICT_BADGES = { healthy: 'up', degraded: 'warn', stalled: 'down', unsafe: 'down' };

  // The verdict replaces 'live' as what the header says about the cluster: 'live' only means
  // updates arrive, and a cluster stuck in view changes answers every poll.
  function renderHealth(health, collectedAt) {
    const verdict = health && VERDICT_BADGES[health.verdict] ? health.verdict : 'unknown';
    const target = byTestId('cluster-verdict');
    target.dataset.verdict = verdict;
    target.className = 'badge ' + (VERDICT_BADGES[verdict] || 'backup');
    setText('cluster-verdict', verdict === 'unknown' ? '…' : verdict);
    document.querySelector('header').dataset.verdict = verdict;
    setText('verdict-summary', verdictSummary(health, collectedAt));
    const reasons = health ? health.reasons : [];
    // Notices (the trust boundary not enforced) do not change the verdict but are always shown.
    const notices = health && Array.isArray(health.notices) ? health.notices : [];
    const signature = JSON.stringify([reasons, notices]);
    if (signature === shownReasons) return;
    shownReasons = signature;
    const list = byTestId('cluster-reasons');
    list.replaceChildren(
      ...reasons.map((reason, index) => element('li', '', 'cluster-reason-' + index, reason)),
      ...notices.map((notice, index) => element('li', 'notice', 'cluster-notice-' + index, notice)),
    );
    // A single reason is already the verdict bar's line: the list would only repeat it.
    list.hidden = reasons.length + notices.length <= 1 && notices.length === 0;
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
    // A verdict drawn from old numbers is shown faded, not as the cluster's state now.
    byTestId('cluster-verdict').classList.toggle('stale', stale);
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
  charts.build();
  // The history first, so the charts start with the last hour; then the live updates.
  const chartsSection = byTestId('charts');
  chartsSection.dataset.history = 'loading';
  fetch('api/history', { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error('HTTP ' + response.status))))
    .then(
      (history) => {
        charts.load(history);
        applyLog(history);
        chartsSection.dataset.history = 'loaded';
      },
      (error) => {
        console.warn('dashboard: no history', error);
        chartsSection.dataset.history = 'failed';
      },
    )
    .finally(connectEvents);
})();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function sha256Source(source: string): string {
  return `'sha256-${createHash('sha256').update(source, 'utf8').digest('base64')}'`;
}

type Column = (typeof COLUMNS)[number];

function replicaRow(replica: number, columns: readonly Column[], guardians: boolean): string {
  const cells = columns.map(([name, , fromGuardian]) => {
    const testId = `replica-${name}-${replica}`;
    // What guardians report stays readable when the replica itself is down (e.g. recovering).
    const classes = [
      ...(NUMBER_COLUMNS.has(name) ? ['number'] : []),
      ...(fromGuardian || (guardians && name === 'key-epoch') ? ['from-guardian'] : []),
      // Their texts run long during a recovery: they wrap rather than widen the table.
      ...(name === 'recovery' || name === 'state' ? ['wrap-cell'] : []),
    ];
    const classAttribute = classes.length === 0 ? '' : ` class="${classes.join(' ')}"`;
    switch (name) {
      case 'id':
        return (
          `<th scope="row"><span data-testid="${testId}">${replica}</span> ` +
          `<span data-testid="replica-role-${replica}">…</span></th>`
        );
      case 'executed':
        return (
          `<td${classAttribute}><span data-testid="${testId}">…</span>` +
          `<span class="details">ckpt <span data-testid="replica-checkpoint-${replica}">…</span></span>` +
          `<span data-testid="replica-transfer-${replica}"></span></td>`
        );
      case 'throughput':
        return (
          `<td${classAttribute}><span data-testid="${testId}">…</span>` +
          `<span class="details" data-testid="replica-catching-up-${replica}"></span></td>`
        );
      case 'address':
        return (
          `<td><span data-testid="${testId}">…</span>` +
          `<span class="details" data-testid="replica-details-${replica}"></span></td>`
        );
      case 'exposure':
        return (
          `<td${classAttribute} data-testid="${testId}" data-over="unknown"><span class="exposure-text">…</span>` +
          `<span class="meter under" aria-hidden="true"><span class="meter-fill"></span></span></td>`
        );
      default:
        return `<td${classAttribute} data-testid="${testId}">…</td>`;
    }
  });
  return `<tr data-testid="replica-row-${replica}" data-up="unknown" data-role="unknown">${cells.join('')}</tr>`;
}

/** Renders the page for a cluster; the result is fixed for the server's lifetime. */
export function renderDashboardPage(options: DashboardPageOptions): DashboardPage {
  const { n, f, k } = options.cluster;
  const { assets } = options;
  const script = SCRIPT;
  // uPlot's own CSS (2 KB) goes inline with the page's: a hash does not allow an external sheet.
  const style = `${assets.style.body.toString('utf8')}\n${STYLE}`;
  const quorum = quorumSize(options.cluster);
  const parameter = (testId: string, term: string, value: string, title: string): string =>
    `<div title="${escapeHtml(title)}"><dt>${term}</dt><dd data-testid="${testId}">${escapeHtml(value)}</dd></div>`;
  const guardians = options.guardians === true;
  const columns = COLUMNS.filter(([, , fromGuardian]) => guardians || !fromGuardian);
  const rows = Array.from({ length: n }, (_, replica) => replicaRow(replica, columns, guardians)).join('\n');
  // Recovery timing is shown when configured or reported; without either the page stays as it was.
  const timing =
    guardians || options.recovery !== undefined
      ? `<dl class="parameters recovery-parameters" aria-label="Recovery timing">
${parameter('system-guarantee', 'T', '…', 'T = T_P + T_D: no replica runs longer than this without a rejuvenation, so an attacker must compromise more than f replicas within T')}
${parameter('system-recovery-bound', 'T<sub>D</sub>', '…', 'the bound on one recovery')}
${parameter('system-period', 'T<sub>P</sub>', '…', 'every replica is rejuvenated at least once per period')}
${guardians ? parameter('system-exposure', 'max exposure', '…', 'the longest time since rejuvenation among the replicas now, as their guardians measure it') : ''}
${guardians ? parameter('system-faulty', 'faulty now', '…', 'f at run time: replicas proven faulty or accused and not rejuvenated since, against the f the configuration tolerates (an alarm fires when the count reaches f)') : ''}
</dl>`
      : '';
  const panel = (testId: string, heading: string): string =>
    `<section class="panel panel-${testId}" data-testid="${testId}"><h2><span>${heading}</span>` +
    `<span class="summary" data-testid="${testId}-summary"></span></h2>` +
    `<div data-testid="${testId}-body"><p class="empty">waiting for the guardians…</p></div></section>`;
  const panels = guardians
    ? `<div class="panels">
${panel('recoveries', 'Recent recoveries')}
${panel('alarms', 'Alarms')}
${panel('evidence', 'Evidence by incident')}
</div>`
    : '';
  const chart = (name: string, caption: string, note = ''): string =>
    `<figure class="chart panel" data-testid="chart-${name}"><figcaption><span>${caption}</span>` +
    `<span class="summary" data-testid="${name}-summary"></span></figcaption>` +
    `<div class="plot" data-testid="plot-${name}"></div>${note}</figure>`;
  const markerLegend =
    '<div class="legend-markers"><span class="view-marker">view change</span>' +
    (guardians
      ? '<span class="alarm-marker">alarm</span><span class="evidence-marker">evidence</span>'
      : '') +
    '</div>';
  const charts = `<section class="charts" data-testid="charts" aria-label="The last hour">
${chart(
  'throughput',
  'Committed throughput (req/s)',
  `${markerLegend}<p class="chart-note">The rate a quorum of replicas executed (the quorum-th highest of the rates the dashboard measured).</p>`,
)}
${
  options.clientLatency === true
    ? chart(
        'latency',
        'Client latency (ms)',
        `${markerLegend}<p class="chart-note">p50 and p99 of the operations the live workload beside this dashboard completed in the last few seconds.</p>`,
      )
    : ''
}
${chart('progress', 'Executed sequence number and view', markerLegend)}
${
  guardians
    ? `${chart('exposure', 'Time since rejuvenation against T (s)', markerLegend)}
<figure class="chart panel" data-testid="chart-timeline"><figcaption><span>Recoveries against T<sub>D</sub></span><span class="summary" data-testid="timeline-summary"></span></figcaption>
<div class="timeline-legend"><span><span class="slot proactive"></span>proactive</span><span><span class="slot reactive"></span>reactive</span><span><span class="slot crash"></span>crash (process down outside a recovery)</span><span><span class="slot proactive over"></span>over T<sub>D</sub></span></div>
<div class="timeline" data-testid="timeline-body"><p class="empty">waiting for the guardians…</p></div>
<p class="chart-note">Hover a slot for its kind, reason, duration against T<sub>D</sub> and steps.</p></figure>`
    : ''
}
</section>`;
  const configuration = `<section class="panel config" data-testid="configuration"><h2><span>Configuration</span><span class="summary">as each replica${guardians ? ' and its guardian' : ''} report${guardians ? '' : 's'} it</span></h2><div class="config-grid" data-testid="config-body"></div></section>`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Phalanx cluster dashboard</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
<body>
<header data-verdict="unknown">
<div class="verdict-bar" data-testid="verdict-bar" aria-live="polite">
<span title="whether the cluster makes progress, from what the replicas${guardians ? ' and guardians' : ''} report">cluster: <span class="badge backup" data-testid="cluster-verdict" data-verdict="unknown">…</span></span>
<span class="verdict-summary" data-testid="verdict-summary">waiting for the first poll round…</span>
<span class="connection"><span>updates: <span data-testid="connection-state" data-state="connecting">connecting…</span></span>
<span>collected at <span data-testid="cluster-updated">—</span></span></span>
</div>
<ul class="health-reasons" data-testid="cluster-reasons" aria-live="polite" hidden></ul>
<h1>Phalanx cluster</h1>
<dl class="parameters" aria-label="Cluster parameters">
${parameter('cluster-n', 'n', String(n), 'replicas in the configuration')}
${parameter('cluster-f', 'f', String(f), 'Byzantine replicas tolerated at once')}
${parameter('cluster-k', 'k', String(k), 'replicas that may be recovering at once')}
${parameter('cluster-quorum', 'quorum', String(quorum), 'matching votes that make a certificate: ⌈(n + f + 1) / 2⌉')}
${parameter('cluster-up', 'answering', '…', 'replicas answering their admin endpoint: says nothing about progress (see the verdict)')}
${parameter('cluster-throughput', 'committed (req/s)', '…', 'requests per second a quorum of replicas executed, as the dashboard measures it from their executed-request counters; a replica catching up executes faster and does not raise it')}
${parameter('cluster-executed', 'sequence', '…', 'the sequence number f + 1 replicas have executed, so at least one correct replica vouches for it')}
</dl>
${timing}
</header>
<main data-n="${n}" data-f="${f}" data-poll-interval-ms="${options.pollIntervalMs}" data-guardians="${guardians}" data-recent-entries="${RECENT_ENTRIES_SHOWN}">
${charts}
<div class="table-wrap">
<table data-testid="replica-table">
<caption>Replicas</caption>
<thead><tr>${columns.map(([name, heading]) => `<th scope="col"${NUMBER_COLUMNS.has(name) ? ' class="number"' : ''}>${heading}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
</div>
${panels}
${configuration}
</main>
<footer>Numbers are what each replica reports about itself on its admin port; a Byzantine replica can misreport its own row.${guardians ? ' Process, key epoch, time since rejuvenation, recoveries, alarms and evidence come from the guardians, the trusted part of each replica host.' : ''}</footer>
<noscript><p>This page needs JavaScript for live updates; the same data is at <a href="api/cluster">api/cluster</a>.</p></noscript>
<script src="${assets.script.path.slice(1)}" integrity="${assets.script.integrity}"></script>
<script>${script}</script>
</body>
</html>
`;
  // The served library script is allowed by its hash too (with the integrity attribute above).
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256Source(script)} '${assets.script.integrity}'`,
    `style-src ${sha256Source(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, contentSecurityPolicy };
}
