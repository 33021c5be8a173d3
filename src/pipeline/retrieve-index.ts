/**
 * Retrieval through the approximate nearest-neighbour index on the inference workers (an index
 * model, ModelSpec.index): the worker searches its HNSW replica and runs the CTR re-rank on the
 * top k in the same request, as the exact scorer does. The catalog reaches the index by id, not
 * by re-upload: each active ad holds a slot (a small integer, reused after a removal), and the ads
 * changed since the last sync are sent as one update (removals, then adds) at most once per
 * interval. Updates and searches exclude each other, so a batch never maps slots by a table of
 * another time; ads deactivated since the last sync are filtered here, so none is ever emitted.
 *
 * With snapshots, the index is saved once the catalog has loaded (and at stop), and a restart loads
 * the saved one: each saved ad is served from the file once the catalog confirms it with the same
 * vector, changed ones are updated by id, and saved ads the loaded catalog lacks are removed. A
 * large first build (nothing saved) runs once, on one worker with all its threads, and the other
 * workers load what it saved, instead of each building a replica on one thread.
 *
 * With candidate pools (see candidate-pools.ts), a row whose user has a recent pool near it is
 * scored against that pool on the worker instead of searching; every `checkEvery`th such row is
 * also searched, and the share of the search's answer the pool gave is reported as its recall.
 */
import type { Ad } from '../domain/events.js';
import { inferTyped, type Inference, type IndexUpdate, type IndexWorker } from '../inference/types.js';
import type { IndexSnapshots, SavedIndex } from '../state/index-snapshot.js';
import type { IndexIo } from '../models/model-io.js';
import type { CandidatePool, CandidatePools, PoolMiss } from './candidate-pools.js';
import type { AdCatalog } from '../catalog/ad-catalog.js';
import { ReadWriteGate } from '../util/read-write-gate.js';
import { setSlot, slotAt, slotWords } from '../util/slot-words.js';
import type { Match } from './retrieve.js';

/** The engine's index updates (InferenceEngine.updateIndex). */
export interface IndexUpdates {
  updateIndex(model: string, update: IndexUpdate, whole: () => IndexUpdate, on?: IndexWorker): Promise<void>;
  indexLead(): number;
  saveIndex(model: string, dir: string, worker: number): Promise<void>;
  loadIndex(model: string, dir: string, slots: Int32Array, except?: number): Promise<void>;
}

export interface IndexedScorerOptions {
  /** The index model with its CTR re-rank (the exact scorer's tensors, plus pools). */
  readonly io: IndexIo;
  /** Slots per pool (the index model's poolSize). */
  readonly poolSize: number;
  /** Candidate pools per user interest; absent: every row searches. */
  readonly pools?: CandidatePools;
  /** With pools: every this many pooled rows, one is searched too and the two answers compared (0: never). */
  readonly checkEvery?: number;
  /** Told per call how many rows a pool answered and how many searched. */
  readonly onPools?: (pooled: number, searched: number) => void;
  /** Told per call, for the rows that searched, why no pool answered them. */
  readonly onPoolMisses?: (reason: PoolMissReason, rows: number) => void;
  /** Told a checked row's recall: the share of the search's ads the pool's answer held. */
  readonly onPoolRecall?: (recall: number) => void;
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
  /** Where the index is saved and loaded from; absent: rebuilt at every start. */
  readonly snapshots?: IndexSnapshots;
  /** A first build of at least this many ads runs on one worker and is loaded by the others (default 50,000). */
  readonly buildOnOneFrom?: number;
  /** Told what happened to the saved index: loaded, not loaded (why), saved, not saved. */
  readonly onSnapshot?: (event: string, detail: Record<string, unknown>) => void;
}

const NO_SLOTS = new Int32Array(0);
const NO_VECTORS = new Float32Array(0);

/** Why a known user's row searched: the pools' own reasons, or 'stale' (a pool whose slots all hold other ads now). */
export const POOL_MISS_REASONS = ['no_pool', 'drifted', 'expired', 'stale'] as const;
export type PoolMissReason = PoolMiss | 'stale';

export class IndexedScorer {
  private readonly slotOf = new Map<string, number>();
  /** Slot -> ad as last synced; undefined for a free slot. */
  private readonly slotAds: (Ad | undefined)[] = [];
  /**
   * Per slot, bumped whenever it is given to another ad than the one it last held: what candidate
   * pools check (a freed slot is skipped by slotAds; one given back to its ad is that ad again).
   */
  private slotGenerations = new Int32Array(1024);
  /** Per slot, the id of the ad it last held (kept when it is freed). */
  private readonly slotLastIds: (string | undefined)[] = [];
  private readonly free: number[] = [];
  private readonly changed = new Set<string>();
  private syncedAt = -Infinity;
  /** Syncs are the writes: a batch never maps slots by a table of another time. */
  private readonly gate = new ReadWriteGate();
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  /** Slots loaded from the saved index whose ad the catalog has not confirmed yet (filtered until then). */
  private readonly unconfirmed = new Set<number>();
  private restored: SavedIndex | undefined;
  private restoreTried = false;
  /** Background syncs wait for catalogLoaded (see holdUntilLoaded). */
  private held = false;
  private loaded = false;
  private settledOnce = false;
  /** Updates were sent since the index was last saved. */
  private dirty = false;
  private syncs = 0;
  /** Pooled rows since the last one checked against a search (checkEvery). */
  private sincePoolCheck = 0;
  /** Searched rows of known users by reason, since the last report. */
  private readonly misses: Record<PoolMissReason, number> = { no_pool: 0, drifted: 0, expired: 0, stale: 0 };

  constructor(
    private readonly engine: Inference & IndexUpdates,
    private readonly catalog: AdCatalog,
    private readonly o: IndexedScorerOptions,
  ) {
    catalog.onChange((adId) => this.changed.add(adId));
    for (let r = 0; r < catalog.activeCount; r++) this.changed.add(catalog.adAt(r).adId);
    if (o.backgroundSyncMs) this.timer = setInterval(() => this.syncInBackground(), o.backgroundSyncMs).unref();
  }

  /** Stops the background sync and saves the index if it changed since it was saved (before the engine closes). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.gate.write) await this.gate.write.catch(() => undefined);
    if (this.loaded && this.dirty) await this.save();
    this.restored?.close();
    this.restored = undefined;
  }

  /**
   * No background sync until catalogLoaded(): the first build then sees the whole catalog (and can
   * run on one worker), instead of growing replicas on every worker while the catalog loads.
   */
  holdUntilLoaded(): void {
    this.held = !this.loaded;
  }

  /** The catalog has caught up with its topic: saved ads it lacks go, and the index is saved once in sync. */
  catalogLoaded(): void {
    this.held = false;
    this.loaded = true;
    this.syncInBackground();
  }

  /** In sync with the loaded catalog at least once (and saved, with snapshots): what readiness waits for. */
  get settled(): boolean {
    return this.settledOnce;
  }

  /** Ads changed since the last sync. */
  get pending(): number {
    return this.changed.size;
  }

  private get due(): boolean {
    return this.changed.size > 0 || (this.loaded && !this.settledOnce);
  }

  private syncInBackground(): void {
    if (this.gate.write || this.held || !this.due) return;
    void this.gate.startWrite(() => this.sync().catch((err: unknown) => this.o.onSyncError?.(err)));
  }

  /** Ads indexed as of the last sync (saved ones once the catalog confirmed them). */
  get indexed(): number {
    return this.slotOf.size - this.unconfirmed.size;
  }

  /**
   * Whether an ad an answer of this generation holds may still be served: only ads changed since
   * the last sync can have been deactivated, so the catalog is asked about those alone (a lookup in
   * a map of a million ads per candidate cost a visible share of the main thread).
   */
  stillServed(ad: Ad): boolean {
    return this.changed.size === 0 || !this.changed.has(ad.adId) || this.catalog.get(ad.adId)?.active === true;
  }

  /** Counts the syncs that changed the index (and the restore): another one may answer a query differently. */
  get generation(): number {
    return this.syncs;
  }

  /** A deleted user's pools go (they hold copies of its interests). */
  forget(owner: string): void {
    this.o.pools?.forget(owner);
  }

  /**
   * The best active ads per query row (queries: n unit rows of the catalog's dimension), best
   * first. `owners[q]`: the user whose interest row q is (what pools are kept by).
   */
  async score(queries: Float32Array, n: number, owners?: readonly (string | undefined)[]): Promise<Match[][]> {
    if (n === 0) return [];
    await this.acquire();
    try {
      if (this.slotOf.size === 0) return Array.from({ length: n }, () => []);
      const { rows, pool, items, checked, pooled } = this.request(queries, n, owners);
      const { scores, indices, ctr, found } = await inferTyped(this.engine, this.o.io, { items, inputs: { users: rows, pool } });
      const k = indices.length / items;
      const slots = slotWords(indices);
      const out: Match[][] = [];
      for (let q = 0; q < n; q++) {
        const list: Match[] = [];
        for (let j = 0; j < k; j++) {
          const slot = slotAt(slots, q * k + j);
          const ad = slot < 0 ? undefined : this.slotAds[slot];
          if (!ad || !this.stillServed(ad)) continue; // padding, or deactivated since the sync
          list.push({ ad, similarity: scores[q * k + j]!, ctr: ctr[q * k + j]! });
        }
        out.push(list);
      }
      const pools = this.o.pools;
      if (pools && owners) {
        const P = this.o.poolSize;
        const foundSlots = slotWords(found);
        for (let q = 0; q < n; q++) {
          const owner = owners[q];
          if (owner !== undefined && !pooled[q]) pools.record(owner, queries, q * this.catalog.dim, foundSlots, q * P, this.slotGenerations);
        }
        checked.forEach((q, i) => this.o.onPoolRecall?.(overlap(slots, q * k, (n + i) * k, k)));
        const inPools = pooled.reduce((c, p) => c + p, 0);
        this.o.onPools?.(inPools, n - inPools);
        this.reportMisses();
      }
      return out;
    } finally {
      this.gate.leave();
    }
  }

  /**
   * The request's rows and pools: a row whose owner has a pool near it gets that pool's slots that
   * still hold the same ads (none left: -1, search); `checked` pooled rows are appended once more
   * (row n + i for checked[i]), to search.
   */
  private request(queries: Float32Array, n: number, owners: readonly (string | undefined)[] | undefined): { rows: Float32Array; pool: BigInt64Array; items: number; checked: number[]; pooled: Uint8Array } {
    const P = this.o.poolSize;
    const dim = this.catalog.dim;
    const pooled = new Uint8Array(n);
    const checked: number[] = [];
    let pool = new BigInt64Array(n * P).fill(-1n);
    const pools = this.o.pools;
    if (pools && owners) {
      const every = this.o.checkEvery ?? 0;
      const words = slotWords(pool);
      for (let q = 0; q < n; q++) {
        const owner = owners[q];
        const p = owner === undefined ? undefined : pools.find(owner, queries, q * dim);
        if (!p || this.fillPool(p, words, q * P) === 0) {
          if (owner !== undefined) this.misses[p ? 'stale' : pools.lastMiss]++;
          continue;
        }
        pooled[q] = 1;
        if (every > 0 && ++this.sincePoolCheck >= every) {
          this.sincePoolCheck = 0;
          checked.push(q);
        }
      }
    }
    const items = n + checked.length;
    let rows = queries.subarray(0, n * dim);
    if (checked.length > 0) {
      const wider = new BigInt64Array(items * P).fill(-1n);
      wider.set(pool);
      pool = wider;
      rows = new Float32Array(items * dim);
      rows.set(queries.subarray(0, n * dim));
      checked.forEach((q, i) => rows.set(queries.subarray(q * dim, (q + 1) * dim), (n + i) * dim));
    }
    return { rows, pool, items, checked, pooled };
  }

  /** Reports and clears the misses counted since the last report. */
  private reportMisses(): void {
    const report = this.o.onPoolMisses;
    for (const reason of POOL_MISS_REASONS) {
      const n = this.misses[reason];
      if (n === 0) continue;
      this.misses[reason] = 0;
      report?.(reason, n);
    }
  }

  /** Writes the pool's slots that still hold its ads at slot `at` of `into` (slotWords); returns how many. */
  private fillPool(p: CandidatePool, into: Int32Array, at: number): number {
    const generations = this.slotGenerations;
    let c = 0;
    for (let j = 0; j < p.slots.length; j++) {
      const s = p.slots[j]!;
      if (s < 0) break;
      if (s < this.slotAds.length && generations[s] === p.generations[j] && this.slotAds[s] !== undefined) setSlot(into, at + c++, s);
    }
    return c;
  }

  /** The slot now holds `adId`: if that is another ad than it last held, pools that hold the slot must not score it. */
  private assigned(slot: number, adId: string): void {
    if (this.slotLastIds[slot] === adId) return;
    this.slotLastIds[slot] = adId;
    this.generationsFor(slot + 1);
    this.slotGenerations[slot] = (this.slotGenerations[slot]! + 1) | 0;
  }

  /** Grows the generations to cover `slots` slots (new ones start at 0). */
  private generationsFor(slots: number): void {
    if (slots <= this.slotGenerations.length) return;
    const wider = new Int32Array(Math.max(2 * this.slotGenerations.length, slots));
    wider.set(this.slotGenerations);
    this.slotGenerations = wider;
  }

  /** Entered as a reader of the gate once the index is fresh enough (synced first if due). */
  private acquire(): Promise<void> {
    return this.gate.enter(() => !this.due || Date.now() - this.syncedAt < this.o.minSyncIntervalMs, () => this.sync());
  }

  private async sync(): Promise<void> {
    if (!this.restoreTried) await this.restore();
    const removed: number[] = [];
    const set: number[] = [];
    for (const adId of this.changed) {
      const ad = this.catalog.get(adId);
      const slot = this.slotOf.get(adId);
      if (ad?.active) {
        if (slot !== undefined && this.unconfirmed.delete(slot)) {
          this.slotAds[slot] = ad;
          // Served from the saved index when its vector is the catalog's; else updated by id.
          if (!this.restored!.matches(slot, this.catalog.vectorOf(adId)!)) set.push(slot);
          continue;
        }
        const s = slot ?? this.free.pop() ?? this.slotAds.length;
        if (slot === undefined) this.assigned(s, adId);
        this.slotOf.set(adId, s);
        this.slotAds[s] = ad;
        set.push(s);
      } else if (slot !== undefined) {
        this.unconfirmed.delete(slot);
        this.slotOf.delete(adId);
        this.slotAds[slot] = undefined;
        this.free.push(slot); // safe to reuse at once: the worker applies removals before adds
        removed.push(slot);
      }
    }
    const settling = this.loaded && !this.settledOnce;
    if (settling) this.dropUnconfirmed(removed);
    const touched = [...this.changed];
    this.changed.clear();
    this.syncs++; // before the update lands: an answer kept as of the old generation is then never reused
    this.syncedAt = Date.now();
    const per = this.o.maxSlotsPerUpdate ?? 65536;
    const whole = (): IndexUpdate => this.updateOf(NO_SLOTS, [...this.slotOf.values()].filter((s) => !this.unconfirmed.has(s)));
    const model = this.o.io.model;
    const snapshots = this.o.snapshots;
    try {
      if (settling && snapshots && this.slotOf.size === set.length && set.length >= (this.o.buildOnOneFrom ?? 50_000)) {
        await this.buildOnOne(snapshots, Int32Array.from(removed), set, per, whole);
      } else {
        if (removed.length > 0 || set.length > 0) this.dirty = true;
        await this.engine.updateIndex(model, this.updateOf(Int32Array.from(removed), set.slice(0, per)), whole);
        for (let at = per; at < set.length; at += per) await this.engine.updateIndex(model, this.updateOf(NO_SLOTS, set.slice(at, at + per)), whole);
        if (settling && this.dirty) await this.save();
      }
    } catch (err) {
      // Sent again next time (an upsert replaces); a removal that did not land is filtered by slotAds.
      for (const adId of touched) this.changed.add(adId);
      throw err;
    }
    if (settling) this.settledOnce = true;
  }

  /** The saved index, loaded on every worker if it is of this space and parameters: its slots wait for the catalog's confirmation. */
  private async restore(): Promise<void> {
    this.restoreTried = true;
    const found = this.o.snapshots?.saved();
    if (!found) return;
    if ('none' in found) {
      this.o.onSnapshot?.('not loaded', { reason: found.none });
      return;
    }
    const { saved } = found;
    const slots: number[] = [];
    saved.adIds.forEach((id, s) => void (id !== null && slots.push(s)));
    const started = Date.now();
    try {
      await this.engine.loadIndex(this.o.io.model, saved.dir, Int32Array.from(slots));
    } catch (err) {
      // Workers that did load it hold vectors no slot maps to: filtered, and replaced as slots are reused.
      saved.close();
      this.o.onSnapshot?.('not loaded', { reason: String(err) });
      return;
    }
    for (const s of slots) {
      this.slotOf.set(saved.adIds[s]!, s);
      this.slotLastIds[s] = saved.adIds[s]!;
      this.unconfirmed.add(s);
    }
    this.slotAds.length = saved.adIds.length;
    this.generationsFor(saved.adIds.length);
    for (let s = saved.adIds.length - 1; s >= 0; s--) if (saved.adIds[s] === null) this.free.push(s);
    this.restored = saved;
    this.o.onSnapshot?.('loaded', { ads: slots.length, ms: Date.now() - started, dir: saved.dir });
  }

  /** Saved ads the loaded catalog does not hold (deleted while we were down): removed with this sync. */
  private dropUnconfirmed(removed: number[]): void {
    for (const s of this.unconfirmed) {
      const adId = this.restored!.adIds[s]!;
      this.slotOf.delete(adId);
      this.slotAds[s] = undefined;
      this.free.push(s);
      removed.push(s);
    }
    this.unconfirmed.clear();
    this.restored?.close();
    this.restored = undefined;
  }

  /** The first build on one worker with its threads, saved, then loaded by the others. */
  private async buildOnOne(snapshots: IndexSnapshots, removed: Int32Array, set: readonly number[], per: number, whole: () => IndexUpdate): Promise<void> {
    const model = this.o.io.model;
    const started = Date.now();
    const worker = this.engine.indexLead();
    const on = { worker, threads: 0 };
    await this.engine.updateIndex(model, this.updateOf(removed, set.slice(0, per)), whole, on);
    for (let at = per; at < set.length; at += per) await this.engine.updateIndex(model, this.updateOf(NO_SLOTS, set.slice(at, at + per)), whole, on);
    const built = Date.now();
    const folder = snapshots.nextFolder();
    try {
      await this.engine.saveIndex(model, folder, worker);
      await this.engine.loadIndex(model, folder, Int32Array.from(set), worker);
      snapshots.commit(folder, this.adIdsBySlot());
    } catch (err) {
      snapshots.discard(folder);
      // The other workers may lack the index: every worker gets it whole instead.
      await this.engine.updateIndex(model, whole(), whole);
      this.dirty = true;
      this.o.onSnapshot?.('not saved', { reason: String(err) });
      return;
    }
    this.dirty = false;
    this.o.onSnapshot?.('built on one worker', { ads: set.length, buildMs: built - started, saveAndLoadMs: Date.now() - built, dir: folder });
  }

  /** Saves the lead worker's index with the slot table as of now (no update is sent until it is written). */
  private async save(): Promise<void> {
    const snapshots = this.o.snapshots;
    if (!snapshots) return;
    const folder = snapshots.nextFolder();
    const adIds = this.adIdsBySlot();
    const started = Date.now();
    try {
      await this.engine.saveIndex(this.o.io.model, folder, this.engine.indexLead());
      snapshots.commit(folder, adIds);
      this.dirty = false;
      this.o.onSnapshot?.('saved', { ads: this.slotOf.size, ms: Date.now() - started, dir: folder });
    } catch (err) {
      snapshots.discard(folder);
      this.o.onSnapshot?.('not saved', { reason: String(err) });
    }
  }

  private adIdsBySlot(): (string | null)[] {
    const ids: (string | null)[] = Array.from({ length: this.slotAds.length }, () => null);
    for (const [adId, s] of this.slotOf) ids[s] = adId;
    return ids;
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

/** The share of the valid slots in [b, b + k) that [a, a + k) holds too (1 when b holds none); slots as slotWords. */
function overlap(slots: Int32Array, a: number, b: number, k: number): number {
  let want = 0;
  let have = 0;
  for (let j = b; j < b + k; j++) {
    const s = slotAt(slots, j);
    if (s < 0) continue;
    want++;
    for (let i = a; i < a + k; i++) {
      if (slotAt(slots, i) === s) {
        have++;
        break;
      }
    }
  }
  return want === 0 ? 1 : have / want;
}
