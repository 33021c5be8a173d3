/**
 * The feedback stage: ad feedback records in, labelled training examples out, through one
 * Attributor per partition (feedback is keyed and co-partitioned by user id, so a user's
 * impressions, clicks and served outputs all meet in the partition's attributor). The ranking
 * tells it what it served (`captureServed`), with copies of the vectors it scored: an example's
 * features are never the user's later state.
 */
import type { InputRecord } from '../domain/events.js';
import type { AttributionRecord, ScoredOutput, TrainingExample } from '../domain/outputs.js';
import { attributionRecords, attributionState } from './attribution-records.js';
import { Attributor, type AttributionCounts, type AttributionLimits, type ServedAd } from './attribution.js';
import type { EventDecoder } from './decode.js';
import type { RankQuery } from './rank.js';

/**
 * When what is served is captured: `always`, or `on-feedback` (default): only on partitions that
 * have had feedback (since the start, or before it: the watermark is durable). Where no ad server
 * reports, nothing is captured; the first impressions after feedback starts name outputs served
 * before it and are `unmatched` (no example).
 */
export type CaptureMode = 'always' | 'on-feedback';

export interface FeedbackStageOptions {
  readonly decoder: Pick<EventDecoder, 'decodeFeedback'>;
  /** The ad-feedback input topic. */
  readonly topic: string;
  readonly limits: AttributionLimits;
  /** Width F of the fused space. */
  readonly dim: number;
  /** An active ad's fused vector now (a view: the stage copies it, once per version: see adChanged). */
  readonly adVector: (adId: string) => Float32Array | undefined;
  /** Default `on-feedback`. */
  readonly capture?: CaptureMode;
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

/** An immutable copy of an ad's vector, shared by the captures until the ad changes. */
interface AdCopy {
  readonly key: string;
  readonly vector: Float32Array;
}

export class FeedbackStage {
  readonly topic: string;
  private readonly attributors = new Map<number, Attributor>();
  /** Counts of attributors dropped with their partition, so the totals never go down. */
  private readonly retired: AttributionCounts = { ...ZERO_COUNTS };
  /** adId -> its current vector's copy (dropped when the catalog changes the ad). */
  private readonly adCopies = new Map<string, AdCopy>();
  private readonly captureAlways: boolean;

  constructor(private readonly o: FeedbackStageOptions) {
    this.topic = o.topic;
    this.captureAlways = o.capture === 'always';
  }

  /** The catalog changed the ad (re-embedded, deactivated, deleted): the next capture copies it anew. */
  adChanged(adId: string): void {
    this.adCopies.delete(adId);
  }

  /** Whether what the partition serves is captured now (see CaptureMode). */
  captures(partition: number): boolean {
    return this.captureAlways || this.attributors.get(partition)?.hasFeedback === true;
  }

  /** Captures what one ranking served, for the feedback that will name it (when `captures(partition)`). */
  captureServed(r: ServedRanking): void {
    if (!this.captures(r.partition)) return;
    const a = this.attributor(r.partition);
    const { dim } = this.o;
    const candidates = r.output.candidates;
    // One copy per matching interest row, shared by the ads it matched (never changed after).
    const interests: Float32Array[] = [];
    const rowIndex = new Map<number, number>();
    const ads: ServedAd[] = [];
    for (let place = 0; place < candidates.length; place++) {
      const c = candidates[place]!;
      const row = r.rows[place];
      const copy = row === undefined ? undefined : this.adCopy(c.adId);
      if (!copy || row === undefined) continue; // deactivated since the ranking: its impressions count as unmatched
      let i = rowIndex.get(row);
      if (i === undefined) {
        rowIndex.set(row, (i = interests.length));
        interests.push(r.query.interests.slice(row * dim, (row + 1) * dim));
      }
      ads.push({ adId: c.adId, adKey: copy.key, ad: copy.vector, row: i, ctr: r.ctrs[place] ?? 0 });
    }
    if (ads.length === 0) return;
    a.serveOutput({ outputId: r.output.outputId, userId: r.output.userId, servedAt: r.output.triggerEventTime, modelVersion: r.output.modelVersion, interests, ads });
  }

  /**
   * Decodes the feedback records (bad ones to `reject`, as events are), attributes them, and
   * returns the examples of the partitions they touched that the new watermark finalised. A record
   * at or below `appliedUpTo` (its effect is in the restored state: a replay after a crash) is not
   * attributed again; the examples it finalised then are given again (at-least-once).
   */
  attribute(records: readonly InputRecord[], now: number, reject: (source: InputRecord, err: unknown) => void, appliedUpTo?: (topic: string, partition: number) => bigint | undefined): TrainingExample[] {
    const touched = new Set<number>();
    const out: TrainingExample[] = [];
    for (const r of records) {
      let fb;
      try {
        fb = this.o.decoder.decodeFeedback(r, now);
      } catch (err) {
        reject(r, err);
        continue;
      }
      const applied = appliedUpTo?.(r.topic, r.partition);
      const offset = Number(r.offset);
      if (applied !== undefined && BigInt(r.offset) <= applied) {
        for (const e of this.attributor(r.partition).replay(offset)) out.push(e);
        continue;
      }
      this.attributor(r.partition).feedback(fb, offset);
      touched.add(r.partition);
    }
    for (const p of touched) for (const e of this.attributor(p).drain()) out.push(e);
    return out;
  }

  /** A deleted user's attribution state goes with them (their served interest vectors included). */
  forgetUser(partition: number, userId: string): void {
    this.attributors.get(partition)?.forgetUser(userId);
  }

  /** The durable state changed since the last take, of `partitions` (all when absent), as changelog records. */
  takeRecords(partitions?: Iterable<number>): AttributionRecord[] {
    const out: AttributionRecord[] = [];
    for (const p of partitions ?? [...this.attributors.keys()]) {
      const a = this.attributors.get(p);
      if (a?.changed) for (const r of attributionRecords(p, a.takeChanges())) out.push(r);
    }
    return out;
  }

  /** The partition's attributor as its changelog records left it (after a restore of the partition: a restart, an assignment, a reset). */
  restorePartition(partition: number, markers: Iterable<readonly [string, Buffer]>): void {
    const old = this.attributors.get(partition);
    if (old) addCounts(this.retired, old.counts);
    this.attributors.set(partition, Attributor.restore(attributionState(markers), this.o.limits));
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

  private adCopy(adId: string): AdCopy | undefined {
    let copy = this.adCopies.get(adId);
    if (copy) return copy;
    const v = this.o.adVector(adId);
    if (!v) return undefined;
    const vector = v.slice(0, this.o.dim);
    this.adCopies.set(adId, (copy = { key: `${contentHash(vector)}:${adId}`, vector }));
    return copy;
  }

  private attributor(partition: number): Attributor {
    let a = this.attributors.get(partition);
    if (!a) this.attributors.set(partition, (a = new Attributor(this.o.limits)));
    return a;
  }
}

/** FNV-1a over the vector's bytes, hex: names a version of an ad's vector across restarts. */
function contentHash(v: Float32Array): string {
  const b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function addCounts(into: AttributionCounts, c: AttributionCounts): void {
  for (const k of Object.keys(into) as (keyof AttributionCounts)[]) into[k] += c[k];
}
