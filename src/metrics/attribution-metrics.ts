import { Counter, Gauge, type Registry } from 'prom-client';

/** What the attribution has counted since the start (pipeline/attribution.ts AttributionCounts). */
export interface AttributionTotals {
  readonly impressions: number;
  readonly clicks: number;
  readonly conversions: number;
  readonly late: number;
  readonly duplicates: number;
  readonly unmatched: number;
  readonly unattributedClicks: number;
  readonly evicted: number;
}

/** What the attribution holds now, waiting for feedback or labels. */
export interface AttributionHeld {
  readonly captures: number;
  readonly pending: number;
  readonly waitingClicks: number;
}

const OUTCOMES = { late: 'late', duplicates: 'duplicate', unmatched: 'unmatched', unattributedClicks: 'unattributed_click', evicted: 'evicted' } as const;
const KINDS = { impressions: 'IMPRESSION', clicks: 'CLICK', conversions: 'CONVERSION' } as const;

/**
 * Ad feedback and the training examples made from it: feedback by kind, what was not used by why
 * (late, duplicate, unmatched, unattributed click, evicted by the bounds), examples acknowledged
 * by label, and what is held for the bounds.
 */
export class AttributionMetrics {
  readonly feedback: Counter<'kind'>;
  readonly notUsed: Counter<'outcome'>;
  readonly examples: Counter<'label'>;
  readonly held: Gauge<'what'>;
  /** The totals last observed: the counters move by the difference. */
  private last: AttributionTotals = { impressions: 0, clicks: 0, conversions: 0, late: 0, duplicates: 0, unmatched: 0, unattributedClicks: 0, evicted: 0 };

  constructor(registry: Registry) {
    const registers = [registry];
    this.feedback = new Counter({ name: 'adstream_feedback_total', help: 'Ad feedback records attributed, by kind (IMPRESSION, CLICK, CONVERSION); bad ones are dead letters instead.', labelNames: ['kind'], registers });
    this.notUsed = new Counter({ name: 'adstream_feedback_not_used_total', help: 'Feedback that labelled nothing, by outcome: late (its window had closed), duplicate (seen before), unmatched (no served capture for the impression), unattributed_click (no impression came within the window), evicted (dropped by the ATTRIBUTION_MAX_* bounds).', labelNames: ['outcome'], registers });
    this.examples = new Counter({ name: 'adstream_training_examples_total', help: 'Training examples produced and acknowledged, by label (1: clicked within ATTRIBUTION_WINDOW_S, 0: not).', labelNames: ['label'], registers });
    this.held = new Gauge({ name: 'adstream_attribution_held', help: 'What the attribution holds, over the owned partitions: captures (served features awaiting feedback), pending (impressions awaiting their label), waiting_clicks (clicks awaiting their impression).', labelNames: ['what'], registers });
  }

  /** After a chunk: moves the counters by what the totals gained, and sets the held gauges. */
  observe(totals: AttributionTotals, held: AttributionHeld): void {
    for (const [k, kind] of Object.entries(KINDS) as [keyof typeof KINDS, string][]) this.feedback.inc({ kind }, Math.max(0, totals[k] - this.last[k]));
    for (const [k, outcome] of Object.entries(OUTCOMES) as [keyof typeof OUTCOMES, string][]) this.notUsed.inc({ outcome }, Math.max(0, totals[k] - this.last[k]));
    this.last = { ...totals };
    this.held.set({ what: 'captures' }, held.captures);
    this.held.set({ what: 'pending' }, held.pending);
    this.held.set({ what: 'waiting_clicks' }, held.waitingClicks);
  }
}
