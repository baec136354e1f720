/**
 * The detector catalogue (docs/intrusion-tolerance.md, "Detectors"), driven by the simulator: for
 * every Byzantine behaviour the simulator runs, a few seeds with that behaviour only, and
 *
 * (a) the detector the table names for it fires at least once over those seeds: evidence of the
 *     right kind against a Byzantine replica, a suspicion of a Byzantine replica for the right
 *     reason, or a correct replica's refusal of the intruder's input (SeedReport.detections);
 * (b) no checker objects: in particular no correct replica is the accused of evidence a correct
 *     party produced or the guardians accepted, and with --recovery none is accused on suspicions
 *     no correct replica shared (checkers/recovery.ts).
 *
 * Behaviours the table marks "not yet" have no detector to expect: only (b) is checked for them.
 * The seeds are few and the runs short (3 s of faults); each seed is deterministic, so a detector
 * that fires in these seeds always does.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BYZANTINE_CATALOGUE, type ByzantineBehaviour } from '../../src/sim/byzantine.js';
import { type Detections, runSimulation, type SeedReport } from '../../src/sim/simulator.js';

type Channel = 'evidence' | 'suspicions' | 'rejections';

interface Expectation {
  /** The table's detector: which count of SeedReport.detections, and the key it is counted under. */
  readonly detector: { readonly channel: Channel; readonly key: RegExp } | 'framing refused' | null;
  /** Aimed at recovery: runs with the guardians (n = 6, f = 1, k = 1). */
  readonly recovery?: true;
  /** Further detections of the same channel that must fire too. */
  readonly alsoFired?: readonly RegExp[];
  /** Suspicions that must fire too, where the detector is of another channel. */
  readonly alsoSuspected?: readonly RegExp[];
  /** Seeds 1 to this (default 3), or exactly these seeds. */
  readonly seeds?: number | readonly number[];
  /** Correct clients (default the simulator's 3). */
  readonly clients?: number;
}

const EXPECTED: Record<ByzantineBehaviour, Expectation> = {
  silent: {
    detector: {
      channel: 'suspicions',
      key: /^view change: (new view did not arrive in time|request .* not executed in # ms)$/,
    },
    // As a backup: nothing at all comes from it (SILENCE_SUSPICION).
    alsoFired: [/^silent: nothing received for # ms$/],
  },
  equivocate: { detector: { channel: 'evidence', key: /^equivocation$/ } },
  'forge-signatures': {
    detector: {
      channel: 'rejections',
      key: /^(checkpoint|pre-prepare|view-change|new-view): .*signature does not verify/,
    },
  },
  replay: { detector: { channel: 'rejections', key: /: claims to be from replica #$/ } },
  'wrong-digests': {
    detector: { channel: 'suspicions', key: /^prepare with a forged proposal signature$/ },
    // Its COMMITs for random digests contradict its own PREPAREs (or, as leader, its proposals).
    alsoFired: [/^commit contradicts its own (prepare|proposal)$/],
  },
  'slow-leader': {
    detector: {
      channel: 'suspicions',
      key: /^view change: leader turnaround: median # ms over its last # proposals, expected at most # ms$/,
    },
  },
  // Its claims of batches prepared where a quorum committed others (its other lie, an empty
  // P-set, hides what it prepared and stays undetected; the decision rule outvotes both).
  'lie-in-view-change': {
    detector: {
      channel: 'suspicions',
      key: /^view change claims a prepared batch no correct replica prepared$/,
    },
  },
  'corrupt-checkpoint': {
    detector: { channel: 'evidence', key: /^conflicting-checkpoint$/ },
    // At once, before any certificate: its vote against the root the batches give.
    alsoSuspected: [/^checkpoint vote contradicts the executed batches$/],
  },
  flood: { detector: { channel: 'rejections', key: /^bytes: .* undecodable$/ } },
  'lie-in-replies': { detector: { channel: 'evidence', key: /^lying-reply$/ } },
  'large-values-client': {
    detector: {
      channel: 'rejections',
      key: /^(request: client signature does not verify|bytes: request undecodable)$/,
    },
  },
  // Its unvouched claims are left out of an amnesiac's count; its claim of a stable checkpoint far
  // beyond any certificate is never proven.
  'inflated-status': {
    detector: { channel: 'suspicions', key: /^status claims a stable checkpoint it never proved$/ },
  },
  'key-thief': {
    // Its own CHECKPOINT under its retired epoch: the signer is the sender, on its current channel.
    detector: {
      channel: 'suspicions',
      key: /^signed its own message under its retired key epoch # \(current #\)$/,
    },
  },
  'stalling-source': {
    detector: { channel: 'rejections', key: /^state-transfer source: no chunk for # ms$/ },
    // Few short runs of n = 4 need a state transfer at all, and fewer pick the stalling replica
    // as a source: of seeds 1 to 12, seed 6 does (any change to the schedules may move it).
    seeds: [5, 6, 7],
  },
  'lying-source': {
    detector: {
      channel: 'rejections',
      key: /^(batch: body does not match its digest|state-transfer source: (manifest|chunk #) does not match)/,
    },
  },
  frame: { detector: 'framing refused', recovery: true, seeds: 2 },
  'lie-in-new-view': {
    detector: { channel: 'evidence', key: /^invalid-new-view$/ },
    alsoSuspected: [/^sent a new-view that does not follow from its view changes$/],
  },
  // With the simulator's 3 clients and 4 batches in flight, one request per batch leaves nobody
  // out (the attack costs nothing there): it needs more clients than batches in flight.
  'small-batches': {
    clients: 12,
    detector: {
      channel: 'suspicions',
      key: /^view change: leader left requests out: a median of # clients over its last # batches with room, at most # expected$/,
    },
  },
  'flood-recovering': {
    detector: { channel: 'rejections', key: /^bytes: .* undecodable$/ },
    recovery: true,
    seeds: 2,
  },
};

const FAULT_PHASE_MS = 3000;

function fired(detections: Detections, channel: Channel, key: RegExp): number {
  let count = 0;
  for (const [name, times] of Object.entries(detections[channel])) if (key.test(name)) count += times;
  return count;
}

function runBehaviour(behaviour: ByzantineBehaviour, expectation: Expectation): SeedReport[] {
  const reports: SeedReport[] = [];
  const wanted = expectation.seeds ?? 3;
  const seeds = typeof wanted === 'number' ? Array.from({ length: wanted }, (_, index) => index + 1) : wanted;
  for (const seed of seeds) {
    reports.push(
      runSimulation({
        seed,
        byzantine: [behaviour],
        faultPhaseMs: FAULT_PHASE_MS,
        ...(expectation.clients === undefined ? {} : { clients: expectation.clients }),
        ...(expectation.recovery ? { n: 6, f: 1, k: 1, recovery: true } : { n: 4, f: 1 }),
      }),
    );
  }
  return reports;
}

describe('detectors: every simulated Byzantine behaviour is caught by its detector', () => {
  it('the table covers every behaviour of the simulator', () => {
    assert.deepEqual(Object.keys(EXPECTED).sort(), [...BYZANTINE_CATALOGUE].sort());
  });

  for (const behaviour of BYZANTINE_CATALOGUE) {
    const expectation = EXPECTED[behaviour];
    const detector = expectation.detector;
    const what =
      detector === null
        ? 'no detector yet; no correct replica accused'
        : detector === 'framing refused'
          ? 'its suspicions alone accuse nobody; no correct replica accused'
          : `${detector.channel} ${detector.key.source}; no correct replica accused`;
    it(`${behaviour}: ${what}`, () => {
      const reports = runBehaviour(behaviour, expectation);
      // (b) every checker, the evidence checker among them, is satisfied on every seed.
      for (const report of reports) {
        assert.deepEqual(report.violations, [], `seed ${report.seed}: ${report.violations.join(' | ')}`);
        assert.equal(report.livenessFailure, null, `seed ${report.seed}`);
      }
      const withIntruder = reports.filter((report) => report.byzantine.length > 0);
      assert.ok(withIntruder.length > 0, 'no seed drew a Byzantine replica');
      if (detector === null) return;
      if (detector === 'framing refused') {
        // Its suspicions reached the guardians; the recovery checker (no violation above) saw that
        // none made an accusation of a correct replica on Byzantine word alone.
        const reported = reports.reduce(
          (sum, report) => sum + (report.recovery?.byzantineSuspicions ?? 0),
          0,
        );
        assert.ok(reported > 0, 'the framing replica reported no suspicion');
        return;
      }
      const wanted: [Channel, RegExp][] = [
        [detector.channel, detector.key],
        ...(expectation.alsoFired ?? []).map((key): [Channel, RegExp] => [detector.channel, key]),
        ...(expectation.alsoSuspected ?? []).map((key): [Channel, RegExp] => ['suspicions', key]),
      ];
      for (const [channel, key] of wanted) {
        const total = reports.reduce((sum, report) => sum + fired(report.detections, channel, key), 0);
        assert.ok(
          total > 0,
          `no ${channel} matching ${key.source}; seen: ${JSON.stringify(reports.map((report) => report.detections))}`,
        );
      }
    });
  }
});
