/**
 * The dashboard page: one self-contained HTML document with its CSS and script inline, no build
 * step and nothing fetched from other origins. The server renders the static skeleton (one table
 * row per replica, the cluster parameters, and with guardians the recovery columns and panels);
 * the script fills it from /api/events, or from /api/cluster when the event stream cannot be used.
 *
 * Stable `data-testid` attributes name everything tests and later features look for
 * (see docs/dashboard.md). Replica- and guardian-supplied strings are only ever written with
 * textContent.
 */
import { createHash } from 'node:crypto';
import { type FaultModel, quorumSize } from '../core/quorum.js';
import { RECOVERY_STEPS } from '../runtime/guardian-report.js';
import type { RecoveryParameters } from '../runtime/status.js';

export interface DashboardPageOptions {
  readonly cluster: FaultModel;
  /** How often the server polls; the page polls /api/cluster at this rate when SSE is unavailable. */
  readonly pollIntervalMs: number;
  /** Guardians are polled: add the recovery columns and the recoveries, alarms and evidence panels. */
  readonly guardians?: boolean;
  /** The configured recovery timing: show T, T_D and T_P in the header. */
  readonly recovery?: RecoveryParameters;
}

export interface DashboardPage {
  readonly html: string;
  /** Allows exactly the inline script and style of `html`, and connections to its own origin. */
  readonly contentSecurityPolicy: string;
}

/** Throughput samples kept per sparkline (about 30 s at the default 500 ms poll interval). */
export const SPARKLINE_SAMPLES = 60;

/** Entries shown in each of the recoveries, alarms and evidence panels, most recent first. */
export const RECENT_ENTRIES_SHOWN = 8;

/**
 * The columns of the replica table, in order: test id suffix, heading, and whether the column
 * holds what guardians report (shown only when guardians are polled).
 */
const COLUMNS = [
  ['id', 'Replica', false],
  ['role', 'Role', false],
  ['state', 'Status', false],
  ['process', 'Process', true],
  ['view', 'View', false],
  ['executed', 'Last executed', false],
  ['checkpoint', 'Stable checkpoint', false],
  ['transfer', 'State transfer', false],
  ['throughput', 'Throughput (req/s)', false],
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
header[data-verdict="degraded"] .connection [data-state="live"],
header[data-verdict="stalled"] .connection [data-state="live"] { color: var(--muted); }
.connection .verdict { margin-bottom: 2px; font-size: 13px; color: var(--text); }
.connection .verdict .badge { font-size: 13px; }
.badge.stale { opacity: .5; }
ul.health-reasons { flex-basis: 100%; margin: 0; padding: 8px 14px 8px 32px; border-radius: 6px;
  background: var(--warn-bg); color: var(--warn); font-weight: 600; }
header[data-verdict="stalled"] ul.health-reasons { background: var(--down-bg); color: var(--down); }
ul.health-reasons[hidden] { display: none; }
main { padding: 16px 24px 32px; }
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: 12px 14px 4px; font-weight: 600; }
th, td { padding: 8px; text-align: left; white-space: nowrap; border-top: 1px solid var(--border); }
thead th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600;
  white-space: normal; vertical-align: bottom; }
thead th.number, td.number { text-align: right; }
tr.leader { background: var(--leader-bg); box-shadow: inset 3px 0 0 var(--leader-edge); }
tr.down td { color: var(--muted); }
tr.down td.from-guardian { color: var(--text); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.leader { background: var(--leader-edge); color: var(--leader-text); }
.badge.backup { background: var(--border); color: var(--text); }
.badge.up { background: var(--up-bg); color: var(--up); }
.badge.down { background: var(--down-bg); color: var(--down); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.marker { margin-left: 6px; }
.error { display: block; min-width: 16em; max-width: 28em; white-space: normal; font-size: 12px; color: var(--down); }
.error.expected { min-width: 10em; color: var(--muted); }
.throughput { display: inline-flex; align-items: center; gap: 8px; }
.throughput .value { min-width: 4.5em; text-align: right; }
svg.sparkline { display: block; overflow: visible; }
svg.sparkline path { fill: none; stroke: var(--spark); stroke-width: 1.5; stroke-linejoin: round; }
.details { display: block; font-size: 12px; color: var(--muted); }
.muted { color: var(--muted); }
footer { padding: 0 24px 24px; font-size: 12px; color: var(--muted); }
dl.recovery-parameters { padding-left: 24px; border-left: 1px solid var(--border); }
dd.over, .over-text { color: var(--down); }
tr.recovering { background: var(--warn-bg); box-shadow: inset 3px 0 0 var(--warn); }
.badge.proactive { background: var(--info-bg); color: var(--info); }
.badge.reactive { background: var(--down-bg); color: var(--down); }
.badge.over { background: var(--down-bg); color: var(--down); }
.inline-meter { display: inline-flex; align-items: center; gap: 8px; }
.meter { display: inline-block; width: 48px; height: 6px; border-radius: 3px; background: var(--border); overflow: hidden; }
.meter.under { display: block; width: 100%; min-width: 96px; margin-top: 5px; }
.meter-fill { display: block; height: 100%; width: 0; background: var(--meter); }
.over .meter-fill, [data-over="true"] .meter-fill { background: var(--down); }
[data-over="true"] .exposure-text { color: var(--down); font-weight: 600; }
.step { font-weight: 600; margin-left: 6px; }
.panels { display: grid; grid-template-columns: minmax(0, 1fr); align-items: start; gap: 16px; margin-top: 16px; }
@media (min-width: 1200px) {
  .panels { grid-template-columns: minmax(0, 1.3fr) minmax(0, 1fr) minmax(0, 1fr); }
}
.panel-scroll { overflow-x: auto; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding-bottom: 6px; min-width: 0; }
.panel h2 { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; margin: 0;
  padding: 12px 14px 6px; font-size: 14px; font-weight: 600; }
.panel h2 .summary { font-size: 12px; font-weight: normal; color: var(--muted); }
.panel td { padding: 6px 10px; }
.panel td.text { white-space: normal; }
.panel tr.over td.duration { color: var(--down); font-weight: 600; }
.panel .empty { padding: 6px 14px; color: var(--muted); border-top: 1px solid var(--border); }
ol.alarm-list { list-style: none; margin: 0; padding: 0; }
ol.alarm-list li { display: flex; gap: 10px; padding: 6px 14px; border-top: 1px solid var(--border); }
ol.alarm-list .when, ol.alarm-list .source { color: var(--muted); white-space: nowrap; font-variant-numeric: tabular-nums; }
`;

const SCRIPT = `
'use strict';
(() => {
  const root = document.querySelector('main');
  const faultLimit = Number(root.dataset.f);
  const pollIntervalMs = Number(root.dataset.pollIntervalMs);
  const SAMPLES = Number(root.dataset.sparklineSamples);
  const ENTRIES_SHOWN = Number(root.dataset.recentEntries);
  const guardiansShown = root.dataset.guardians === 'true';
  const RECOVERY_STEPS = ${JSON.stringify(RECOVERY_STEPS)};
  // Nothing for three poll intervals (and at least 3 s) means the numbers on screen are old.
  const STALE_AFTER_MS = Math.max(3000, 3 * pollIntervalMs);
  const SVG = 'http://www.w3.org/2000/svg';
  const histories = new Map();
  const clusterHistory = [];
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
      element('span', 'details', 'replica-rejuvenation-' + id, step + 'key epoch ' + formatCount(rejuvenation.keyEpoch)),
    ];
    if (!report.up) shown.push(element('span', 'error expected', 'replica-error-' + id, report.error));
    fill(cell, ...shown);
  }

  function renderReplica(report, rejuvenation) {
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
    stateCell(id, report, rejuvenation);
    if (!report.up) {
      row.dataset.role = 'unknown';
      fill(cell('role'), document.createTextNode('—'));
      for (const name of ['view', 'executed', 'checkpoint', 'transfer', 'pending', 'peers'])
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
      shown.push(element('span', 'details', 'replica-recovery-next-' + id, next));
      fill(target, ...shown);
      return;
    }
    const shown = [];
    if (recovery.kind !== null) shown.push(badge(recovery.kind, recovery.kind, 'replica-recovery-kind-' + id));
    shown.push(element('span', 'step', 'replica-recovery-step-' + id, recovery.step === null ? '—' : recovery.step));
    const stepIndex = RECOVERY_STEPS.indexOf(recovery.step);
    if (stepIndex >= 0) shown.push(element('span', 'muted', '', ' ' + (stepIndex + 1) + '/' + RECOVERY_STEPS.length));
    const details = element('span', 'details');
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
          const over = record.exceededBound || record.durationMs > boundMs;
          const bar = element('span', 'meter', '', element('span', 'meter-fill'));
          if (boundMs > 0) meter(bar, record.durationMs, boundMs);
          if (over) bar.classList.add('over');
          const duration = element('td', 'duration', '', element('span', 'inline-meter', '', bar, formatMs(record.durationMs)));
          if (over) duration.append(badge('over T_D', 'over marker'));
          const row = element(
            'tr',
            over ? 'over' : '',
            'recovery-row-' + index,
            element('td', '', '', String(replica)),
            element('td', '', '', badge(record.kind, record.kind)),
            element('td', 'text', '', record.reason),
            element('td', '', '', formatTime(record.startedAtMs)),
            duration,
          );
          row.dataset.overBound = String(over);
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

  function renderEvidence(evidence) {
    setText('evidence-summary', countSummary(evidence.length));
    panelBody('evidence', evidence, 'No evidence.', (entries) =>
      table(
        ['When', 'Kind', 'Accused', 'Reporter', 'Valid'],
        entries.map((record, index) => {
          const row = element(
            'tr',
            '',
            'evidence-row-' + index,
            element('td', '', '', formatTime(record.atMs)),
            element('td', 'text', '', record.kind, element('span', 'details', '', record.detail)),
            element('td', '', '', 'replica ' + record.accused),
            element('td', 'text', '', record.reporter),
            element('td', '', '', record.valid ? badge('valid', 'up') : badge('invalid', 'warn')),
          );
          row.dataset.valid = String(record.valid);
          return row;
        }),
      ),
    );
  }

  // Every guardian lists its own replica's recoveries and alarms; evidence is exchanged between
  // guardians, so the same record may come from several and is shown once.
  function renderPanels(status, guardians) {
    const up = guardians.filter((guardian) => guardian.up);
    const recoveries = [];
    const alarms = [];
    const evidence = new Map();
    for (const guardian of up) {
      const boundMs = timingFor(status, guardian).recoveryBoundMs;
      for (const record of guardian.recentRecoveries) recoveries.push({ replica: guardian.replica, record, boundMs });
      for (const alarm of guardian.alarms) alarms.push({ guardian: guardian.replica, alarm });
      for (const record of guardian.evidence) evidence.set(JSON.stringify(record), record);
    }
    const finishedAt = (entry) => entry.record.startedAtMs + entry.record.durationMs;
    recoveries.sort((a, b) => finishedAt(b) - finishedAt(a));
    alarms.sort((a, b) => b.alarm.atMs - a.alarm.atMs);
    const evidenceList = [...evidence.values()].sort((a, b) => b.atMs - a.atMs);
    // Rebuilding the lists on every round would reset a reader's text selection for nothing.
    const signature = JSON.stringify([
      status.recovery,
      recoveries.slice(0, ENTRIES_SHOWN),
      alarms.length,
      alarms.slice(0, ENTRIES_SHOWN),
      evidenceList.length,
      evidenceList.slice(0, ENTRIES_SHOWN),
    ]);
    if (signature === shownPanels) return;
    shownPanels = signature;
    renderRecoveries(recoveries, status);
    renderAlarms(alarms);
    renderEvidence(evidenceList);
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
    const guardians = guardiansShown && Array.isArray(status.guardians) ? status.guardians : null;
    const health = status.health && Array.isArray(status.health.replicas) ? status.health : null;
    renderHealth(health);
    setText('cluster-n', String(status.n));
    setText('cluster-f', String(status.f));
    setText('cluster-k', String(status.k));
    const reactivePending = new Set();
    if (guardians)
      for (const guardian of guardians) if (guardian.up) guardian.pendingReactive.forEach((id) => reactivePending.add(id));
    for (const report of status.replicas) {
      const guardian = guardians ? guardians[report.replica] : undefined;
      const replicaHealth = health ? health.replicas[report.replica] : undefined;
      renderReplica(report, replicaHealth ? replicaHealth.rejuvenation : null);
      renderKeyEpoch(report.replica, report, guardian);
      if (guardian !== undefined) renderGuardian(report.replica, guardian, status, reactivePending);
    }
    renderTiming(status, guardians);
    if (guardians) renderPanels(status, guardians);
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

  const VERDICT_BADGES = { healthy: 'up', degraded: 'warn', stalled: 'down' };

  // The verdict replaces 'live' as what the header says about the cluster: 'live' only means
  // updates arrive, and a cluster stuck in view changes answers every poll.
  function renderHealth(health) {
    const verdict = health && VERDICT_BADGES[health.verdict] ? health.verdict : 'unknown';
    const target = byTestId('cluster-verdict');
    target.dataset.verdict = verdict;
    target.className = 'badge ' + (VERDICT_BADGES[verdict] || 'backup');
    setText('cluster-verdict', verdict === 'unknown' ? '…' : verdict);
    document.querySelector('header').dataset.verdict = verdict;
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
    list.hidden = reasons.length + notices.length === 0;
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

type Column = (typeof COLUMNS)[number];

function replicaRow(replica: number, columns: readonly Column[], guardians: boolean): string {
  const cells = columns.map(([name, , fromGuardian]) => {
    const testId = `replica-${name}-${replica}`;
    // What guardians report stays readable when the replica itself is down (e.g. recovering).
    const classes = [
      ...(NUMBER_COLUMNS.has(name) ? ['number'] : []),
      ...(fromGuardian || (guardians && name === 'key-epoch') ? ['from-guardian'] : []),
    ];
    const classAttribute = classes.length === 0 ? '' : ` class="${classes.join(' ')}"`;
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
</dl>`
      : '';
  const panel = (testId: string, heading: string): string =>
    `<section class="panel" data-testid="${testId}"><h2><span>${heading}</span>` +
    `<span class="summary" data-testid="${testId}-summary"></span></h2>` +
    `<div data-testid="${testId}-body"><p class="empty">waiting for the guardians…</p></div></section>`;
  const panels = guardians
    ? `<div class="panels">
${panel('recoveries', 'Recent recoveries')}
${panel('alarms', 'Alarms')}
${panel('evidence', 'Evidence')}
</div>`
    : '';
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
<header data-verdict="unknown">
<h1>Phalanx cluster</h1>
<dl class="parameters" aria-label="Cluster parameters">
${parameter('cluster-n', 'n', String(n), 'replicas in the configuration')}
${parameter('cluster-f', 'f', String(f), 'Byzantine replicas tolerated at once')}
${parameter('cluster-k', 'k', String(k), 'replicas that may be recovering at once')}
${parameter('cluster-quorum', 'quorum', String(quorum), 'matching votes that make a certificate: ⌈(n + f + 1) / 2⌉')}
${parameter('cluster-up', 'up', '…', 'replicas answering their admin endpoint')}
<div title="rate that at least f + 1 replicas report, so at least one correct replica vouches for it"><dt>cluster throughput (req/s)</dt><dd class="cluster-throughput"><span data-testid="cluster-throughput">…</span>${sparkline('cluster-sparkline', 120, 24, `cluster throughput, last ${SPARKLINE_SAMPLES} samples`)}</dd></div>
</dl>
${timing}
<div class="connection" aria-live="polite">
<div class="verdict" title="whether the cluster makes progress, from what the replicas${options.guardians === true ? ' and guardians' : ''} report">cluster: <span class="badge backup" data-testid="cluster-verdict" data-verdict="unknown">…</span></div>
<div>updates: <span data-testid="connection-state" data-state="connecting">connecting…</span></div>
<div>collected at <span data-testid="cluster-updated">—</span></div>
</div>
<ul class="health-reasons" data-testid="cluster-reasons" aria-live="polite" hidden></ul>
</header>
<main data-f="${f}" data-poll-interval-ms="${options.pollIntervalMs}" data-sparkline-samples="${SPARKLINE_SAMPLES}" data-guardians="${guardians}" data-recent-entries="${RECENT_ENTRIES_SHOWN}">
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
</main>
<footer>Numbers are what each replica reports about itself on its admin port; a Byzantine replica can misreport its own row.${guardians ? ' Process, key epoch, time since rejuvenation, recoveries, alarms and evidence come from the guardians, the trusted part of each replica host.' : ''}</footer>
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
