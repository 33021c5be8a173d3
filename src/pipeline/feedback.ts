/**
 * The feedback stage: ad feedback records in, labelled training examples out, through one
 * Attributor per partition (feedback is keyed and co-partitioned by user id, so a user's
 * impressions, clicks and served outputs all meet in the partition's attributor). The ranking
 * tells it what it served (`captureServed`), with copies of the vectors it scored: an example's
 * features are never the user's later state.
 */
import type { InputRecord } from '../domain/events.js';
import type { ScoredOutput, TrainingExample } from '../domain/outputs.js';
import { Attributor, type AttributionCounts, type AttributionLimits } from './attribution.js';
import type { EventDecoder } from './decode.js';
import type { RankQuery } from './rank.js';

export interface FeedbackStageOptions {
  readonly decoder: Pick<EventDecoder, 'decodeFeedback'>;
  /** The ad-feedback input topic. */
  readonly topic: string;
  readonly limits: AttributionLimits;
  /** Width F of the fused space. */
  readonly dim: number;
  /** An active ad's fused vector now (a view: the stage copies it). */
  readonly adVector: (adId: string) => Float32Array | undefined;
}

/** One user's ranking as served: the output, its query, and per candidate place the matching row and CTR. */
export interface ServedRanking {
  readonly partition: number;
  readonly output: ScoredOutput;
  readonly query: RankQuery;
  readonly rows: readonly number[];
  readonly ctrs: readonly number[];
}

const ZERO_COUNTS: AttributionCounts = { impressions: 0, clicks: 0, conversions: 0, positives: 0, negatives: 0, late: 0, duplicates: 0, unmatched: 0, unattributedClicks: 0, evicted: 0 };

export class FeedbackStage {
  readonly topic: string;
  private readonly attributors = new Map<number, Attributor>();
  /** Counts of attributors dropped with their partition, so the totals never go down. */
  private readonly retired: AttributionCounts = { ...ZERO_COUNTS };

  constructor(private readonly o: FeedbackStageOptions) {
    this.topic = o.topic;
  }

  /** Captures what one ranking served, for the feedback that will name it. */
  captureServed(r: ServedRanking): void {
    const { dim } = this.o;
    const a = this.attributor(r.partition);
    // One copy per matching interest row, shared by the ads it matched (never changed after).
    const interests = new Map<number, Float32Array>();
    r.output.candidates.forEach((c, place) => {
      const ad = this.o.adVector(c.adId);
      const row = r.rows[place];
      if (!ad || row === undefined) return; // deactivated since the ranking: its impressions count as unmatched
      let interest = interests.get(row);
      if (!interest) interests.set(row, (interest = r.query.interests.slice(row * dim, (row + 1) * dim)));
      a.serve({
        outputId: r.output.outputId, userId: r.output.userId, adId: c.adId, servedAt: r.output.triggerEventTime,
        modelVersion: r.output.modelVersion, servedCtr: r.ctrs[place] ?? 0,
        // Copies: the catalog's rows change when an ad is re-embedded.
        interest, ad: ad.slice(0, dim),
      });
    });
  }

  /**
   * Decodes the feedback records (bad ones to `reject`, as events are), attributes them, and
   * returns the examples of the partitions they touched that the new watermark finalised.
   */
  attribute(records: readonly InputRecord[], now: number, reject: (source: InputRecord, err: unknown) => void): TrainingExample[] {
    const touched = new Set<number>();
    for (const r of records) {
      let fb;
      try {
        fb = this.o.decoder.decodeFeedback(r, now);
      } catch (err) {
        reject(r, err);
        continue;
      }
      this.attributor(r.partition).feedback(fb);
      touched.add(r.partition);
    }
    const out: TrainingExample[] = [];
    for (const p of touched) for (const e of this.attributor(p).drain()) out.push(e);
    return out;
  }

  /** Forgets the attributors of partitions not in `keep` (revoked: their next owner attributes them). */
  retainPartitions(keep: ReadonlySet<number>): void {
    for (const [p, a] of this.attributors) {
      if (keep.has(p)) continue;
      addCounts(this.retired, a.counts);
      this.attributors.delete(p);
    }
  }

  /** Totals over the partitions, since the start (for the metrics). */
  counts(): AttributionCounts {
    const total = { ...this.retired };
    for (const a of this.attributors.values()) addCounts(total, a.counts);
    return total;
  }

  /** Held now, over the partitions: the bounds' gauges. */
  sizes(): { captures: number; pending: number; waitingClicks: number } {
    const s = { captures: 0, pending: 0, waitingClicks: 0 };
    for (const a of this.attributors.values()) {
      const x = a.sizes();
      s.captures += x.captures;
      s.pending += x.pending;
      s.waitingClicks += x.waitingClicks;
    }
    return s;
  }

  private attributor(partition: number): Attributor {
    let a = this.attributors.get(partition);
    if (!a) this.attributors.set(partition, (a = new Attributor(this.o.limits)));
    return a;
  }
}

function addCounts(into: AttributionCounts, c: AttributionCounts): void {
  for (const k of Object.keys(into) as (keyof AttributionCounts)[]) into[k] += c[k];
}
