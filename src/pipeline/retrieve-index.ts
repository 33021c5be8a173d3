/**
 * Retrieval through the approximate nearest-neighbour index on the inference workers (an index
 * model, ModelSpec.index): the worker searches its HNSW replica and runs the CTR re-rank on the
 * top k in the same request, as the exact scorer does. The catalog reaches the index by id, not
 * by re-upload: each active ad holds a slot (a small integer, reused after a removal), and the ads
 * changed since the last sync are sent as one update (removals, then adds) at most once per
 * interval. Updates and searches exclude each other, so a batch never maps slots by a table of
 * another time; ads deactivated since the last sync are filtered here, so none is ever emitted.
 */
import type { Ad } from '../domain/events.js';
import { inferTyped, type Inference, type IndexUpdate } from '../inference/types.js';
import type { ScorerIo } from '../models/model-io.js';
import type { AdCatalog } from '../catalog/ad-catalog.js';
import type { Match } from './retrieve.js';

/** The engine's index updates (InferenceEngine.updateIndex). */
export interface IndexUpdates {
  updateIndex(model: string, update: IndexUpdate, whole: () => IndexUpdate): Promise<void>;
}

export interface IndexedScorerOptions {
  /** The index model with its CTR re-rank (same tensors as the exact scorer). */
  readonly io: ScorerIo;
  /** Catalog changes are sent at most this often; in between, the index of the last sync is used. */
  readonly minSyncIntervalMs: number;
  /** Slots per update message, so a first sync of a million ads is not one huge copy per worker. */
  readonly maxSlotsPerUpdate?: number;
  /**
   * Also sync this often with no query asking (0: only when queried): the index then builds while
   * the catalog loads, not on the first query, and follows the topic when traffic is idle.
   */
  readonly backgroundSyncMs?: number;
  /** Told when a background sync failed (the changes are sent again with the next one). */
  readonly onSyncError?: (err: unknown) => void;
}

const NO_SLOTS = new Int32Array(0);
const NO_VECTORS = new Float32Array(0);

export class IndexedScorer {
  private readonly slotOf = new Map<string, number>();
  /** Slot -> ad as last synced; undefined for a free slot. */
  private readonly slotAds: (Ad | undefined)[] = [];
  private readonly free: number[] = [];
  private readonly changed = new Set<string>();
  private syncedAt = -Infinity;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private syncing: Promise<void> | undefined;
  private readonly timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly engine: Inference & IndexUpdates,
    private readonly catalog: AdCatalog,
    private readonly o: IndexedScorerOptions,
  ) {
    catalog.onChange((adId) => this.changed.add(adId));
    for (let r = 0; r < catalog.activeCount; r++) this.changed.add(catalog.adAt(r).adId);
    if (o.backgroundSyncMs) this.timer = setInterval(() => this.syncInBackground(), o.backgroundSyncMs).unref();
  }

  /** Stops the background sync (before the engine closes). */
  stop(): void {
    clearInterval(this.timer);
  }

  private syncInBackground(): void {
    if (this.syncing || this.changed.size === 0) return;
    this.syncing = this.sync()
      .catch((err: unknown) => this.o.onSyncError?.(err))
      .finally(() => (this.syncing = undefined));
  }

  /** Ads indexed as of the last sync. */
  get indexed(): number {
    return this.slotOf.size;
  }

  /** The best active ads per query row (queries: n unit rows of the catalog's dimension), best first. */
  async score(queries: Float32Array, n: number): Promise<Match[][]> {
    if (n === 0) return [];
    await this.acquire();
    try {
      if (this.slotOf.size === 0) return Array.from({ length: n }, () => []);
      const { scores, indices, ctr } = await inferTyped(this.engine, this.o.io, { items: n, inputs: { users: queries } });
      const k = indices.length / n;
      const out: Match[][] = [];
      for (let q = 0; q < n; q++) {
        const list: Match[] = [];
        for (let j = 0; j < k; j++) {
          const slot = Number(indices[q * k + j]);
          const ad = slot < 0 ? undefined : this.slotAds[slot];
          if (!ad || !this.catalog.get(ad.adId)?.active) continue; // padding, or changed since the sync
          list.push({ ad, similarity: scores[q * k + j]!, ctr: ctr[q * k + j]! });
        }
        out.push(list);
      }
      return out;
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /** Counted in flight once the index is fresh enough; the check and the count have no await between them. */
  private async acquire(): Promise<void> {
    for (;;) {
      while (this.syncing) await this.syncing;
      if (this.changed.size === 0 || Date.now() - this.syncedAt < this.o.minSyncIntervalMs) {
        this.inFlight++;
        return;
      }
      this.syncing = this.sync().finally(() => (this.syncing = undefined));
    }
  }

  private async sync(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.drained = undefined;
    const removed: number[] = [];
    const set: number[] = [];
    for (const adId of this.changed) {
      const ad = this.catalog.get(adId);
      const slot = this.slotOf.get(adId);
      if (ad?.active) {
        const s = slot ?? this.free.pop() ?? this.slotAds.length;
        this.slotOf.set(adId, s);
        this.slotAds[s] = ad;
        set.push(s);
      } else if (slot !== undefined) {
        this.slotOf.delete(adId);
        this.slotAds[slot] = undefined;
        this.free.push(slot); // safe to reuse at once: the worker applies removals before adds
        removed.push(slot);
      }
    }
    const touched = [...this.changed];
    this.changed.clear();
    this.syncedAt = Date.now();
    const per = this.o.maxSlotsPerUpdate ?? 65536;
    const whole = (): IndexUpdate => this.updateOf(NO_SLOTS, [...this.slotOf.values()]);
    try {
      await this.engine.updateIndex(this.o.io.model, this.updateOf(Int32Array.from(removed), set.slice(0, per)), whole);
      for (let at = per; at < set.length; at += per) await this.engine.updateIndex(this.o.io.model, this.updateOf(NO_SLOTS, set.slice(at, at + per)), whole);
    } catch (err) {
      // Sent again next time (an upsert replaces); a removal that did not land is filtered by slotAds.
      for (const adId of touched) this.changed.add(adId);
      throw err;
    }
  }

  /** An update setting `slots` to their ads' current vectors. */
  private updateOf(removed: Int32Array, slots: readonly number[]): IndexUpdate {
    if (slots.length === 0) return { removed, slots: NO_SLOTS, vectors: NO_VECTORS };
    const dim = this.catalog.dim;
    const vectors = new Float32Array(slots.length * dim);
    slots.forEach((s, i) => {
      // An ad deactivated during a multi-part sync has no vector now: it is in `changed` again and filtered until then.
      const v = this.catalog.vectorOf(this.slotAds[s]?.adId ?? '');
      if (v) vectors.set(v, i * dim);
    });
    return { removed, slots: Int32Array.from(slots), vectors };
  }
}
