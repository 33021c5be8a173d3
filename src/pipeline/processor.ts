import { hash32 } from '../preprocess/hash.js';
import type { Fuser } from './fuse.js';
import type { MultimodalEmbedder } from './embed.js';
import type { EventDecoder } from './decode.js';
import type { ClickAction, EventKind, InputRecord, UserDeletion, UserEvent } from '../domain/events.js';
import { rankQuery, type RankQuery } from './rank.js';
import { nearestCentroid, segmentsChanged, userSegments, type Centroids } from '../state/segments.js';
import { applyEvent, type InterestParams } from '../state/user-interest.js';
import { NONE, snapshotState, type UserState } from '../domain/user-state.js';
import type { UserStateStore } from '../state/user-state-store.js';
import { deadLetterOf, type Candidate, type DeadLetterOutput, type DeletionOutput, type ProcessResult, type ScoredOutput, type SegmentsOutput } from '../domain/outputs.js';

/** How strongly each action moves a user's interest (stronger intent, larger weight). */
export const ACTION_WEIGHT: Readonly<Record<ClickAction, number>> = { VIEW: 1, CLICK: 2, ADD_TO_CART: 3, PURCHASE: 4 };

export interface ProcessorOptions {
  /**
   * The offset up to which a topic-partition's events are already in the user state (restored
   * from the changelog), or undefined. Events at or below it are not applied again.
   */
  readonly appliedUpTo?: (topic: string, partition: number) => bigint | undefined;
  readonly decoder: EventDecoder;
  readonly embedder: MultimodalEmbedder;
  /** Events -> fused vectors; its weights per modality also weigh the events. */
  readonly fuser: Fuser;
  /** Interests -> ranked candidates (retrieval, then CTR). */
  readonly ranker: { rank(queries: readonly RankQuery[]): Promise<Candidate[][]> };
  /** Category centroids of the current catalog, for segment names. */
  readonly centroids: { current(): Centroids };
  readonly users: UserStateStore;
  readonly interests: InterestParams;
  /** A user is scored at most this often (processing time); 0: every call that touches them. */
  readonly emitIntervalMs: number;
  /** Identifies the models and fusion that produced the scores. */
  readonly modelVersion: string;
  /** Input topic -> the kind of event it carries. */
  readonly topics: ReadonlyMap<string, EventKind>;
  /** The topic of deletion requests (UserDeletion records); absent: no such records are expected. */
  readonly deletionsTopic?: string;
  readonly clock?: () => number;
  /** Told of errors that are not the record's fault (bugs); the record is dead-lettered anyway. */
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
}

/** Time a call spent in each stage, in seconds, for the stage-latency metrics. */
export interface StageTimings {
  readonly decode: number;
  readonly features: number;
  /** Fusion model and the interest update. */
  readonly fusion: number;
  readonly scoring: number;
}

/**
 * What process() and flushDue() return: the outputs, and the call's own stage timings. They travel
 * with the result because several chunks are in flight at once (one per partition): a field on the
 * processor would hold whichever chunk wrote last.
 */
export interface ChunkResult extends ProcessResult {
  readonly timings: StageTimings;
}

/** Deleted users remembered (most recent), so that a replay of their older events does not bring them back. */
const DELETED_USERS_REMEMBERED = 100_000;

const REVIEW_WEIGHT_LIKED = 1.5;
const REVIEW_WEIGHT_DISLIKED = 0.5;
const IMAGE_VIEW_WEIGHT = 1;

/** A user about to be scored: what the output will say, taken while the state was consistent. */
interface Emission {
  readonly userId: string;
  readonly eventIds: readonly string[];
  readonly latestEventTime: number;
  readonly query: RankQuery;
  /** lastEmittedAt before this emission, and after: to give the events back if scoring fails. */
  readonly previousEmittedAt: number;
  readonly emittedAt: number;
}

/**
 * The transport-agnostic core: input records and the state it owns in, outputs out. It knows
 * nothing of Kafka; adapters feed it records and deliver what it returns (see runtime/).
 *
 * Every record of a call comes back as a dead letter, inside the eventIds of its user's scored
 * output, or (when the user's outputs are rate-limited) inside the pendingEventIds of its user's
 * state change; the pending ones go out with a later output (process() or flushDue()).
 *
 * Between the fusion result and the ranking request everything runs synchronously: the states
 * are read and changed, and everything the outputs need is copied out of them, with no await in
 * between (see UserStateStore on why).
 */
export class Processor {
  /** Replayed events of deleted users that were skipped (see markDeleted). */
  skippedReplays = 0;
  private readonly clock: () => number;
  /** Users deleted and not seen since (insertion order: oldest first), bounded. */
  private readonly deleted = new Set<string>();

  constructor(private readonly o: ProcessorOptions) {
    this.clock = o.clock ?? Date.now;
    if (o.users.dim !== o.fuser.dim) throw new Error(`dimension mismatch: fused space ${o.fuser.dim}, user state ${o.users.dim}`);
  }

  get modelVersion(): string {
    return this.o.modelVersion;
  }

  /** The segment an interest vector belongs to (its nearest category); null before the catalog has ads. */
  segmentOf(vector: Float32Array): string | null {
    const c = this.o.centroids.current();
    return c.names[nearestCentroid(vector, c)] ?? null;
  }

  /**
   * Remembers that a user was deleted (by a deletion here, or a tombstone met while restoring the
   * changelog). A replayed event of that user at or below the restored applied offset (its output
   * was delivered before the deletion) is then skipped instead of starting the user again; an
   * event past it starts a fresh user.
   */
  markDeleted(userId: string): void {
    this.deleted.delete(userId);
    this.deleted.add(userId);
    if (this.deleted.size > DELETED_USERS_REMEMBERED) this.deleted.delete(this.deleted.values().next().value!);
  }

  /**
   * Handles a chunk of input records: events of the three event topics, and deletion requests of
   * the deletions topic, in record order (runs of each are handled one after the other).
   */
  async process(records: readonly InputRecord[]): Promise<ChunkResult> {
    const del = this.o.deletionsTopic;
    if (del === undefined || !records.some((r) => r.topic === del)) return this.processEvents(records);
    const results: ChunkResult[] = [];
    let start = 0;
    for (let i = 1; i <= records.length; i++) {
      if (i < records.length && (records[i]!.topic === del) === (records[start]!.topic === del)) continue;
      const run = records.slice(start, i);
      results.push(run[0]!.topic === del ? this.deleteUsers(run) : await this.processEvents(run));
      start = i;
    }
    if (results.length === 1) return results[0]!;
    return {
      scored: results.flatMap((r) => r.scored),
      deadLetters: results.flatMap((r) => r.deadLetters),
      stateChanges: results.flatMap((r) => r.stateChanges),
      segments: results.flatMap((r) => r.segments),
      deletions: results.flatMap((r) => r.deletions),
      timings: {
        decode: results.reduce((t, r) => t + r.timings.decode, 0),
        features: results.reduce((t, r) => t + r.timings.features, 0),
        fusion: results.reduce((t, r) => t + r.timings.fusion, 0),
        scoring: results.reduce((t, r) => t + r.timings.scoring, 0),
      },
    };
  }

  private deadLetter(source: InputRecord, err: unknown): DeadLetterOutput {
    const d = deadLetterOf(source, err, this.clock());
    if (d.reason === 'PROCESSING_FAILED') this.o.onUnexpected?.(err, source);
    return d;
  }

  /**
   * Forgets the users of deletion requests: their state leaves the store (with any events waiting
   * for a rate-limited output), and each deletion comes back for the transport to tombstone the
   * user in the changelog and the segments topic. Synchronous: no other chunk sees a half-deleted user.
   */
  private deleteUsers(records: readonly InputRecord[]): ChunkResult {
    const deadLetters: DeadLetterOutput[] = [];
    const deletions: DeletionOutput[] = [];
    const t0 = performance.now();
    for (const r of records) {
      let d: UserDeletion;
      try {
        d = this.o.decoder.decodeDeletion(r);
      } catch (err) {
        deadLetters.push(this.deadLetter(r, err));
        continue;
      }
      const s = this.o.users.get(d.userId);
      const discardedEventIds = s ? [...s.pendingEventIds] : [];
      if (s) this.o.users.delete(d.userId);
      this.markDeleted(d.userId);
      deletions.push({ userId: d.userId, partition: r.partition, requestId: d.requestId, requestedAt: d.requestedAt, deletedAt: this.clock(), source: r, held: s !== undefined, discardedEventIds });
    }
    const timings: StageTimings = { decode: (performance.now() - t0) / 1000, features: 0, fusion: 0, scoring: 0 };
    return { scored: [], deadLetters, stateChanges: [], segments: [], deletions, timings };
  }

  private async processEvents(records: readonly InputRecord[]): Promise<ChunkResult> {
    const deadLetters: DeadLetterOutput[] = [];
    const reject = (source: InputRecord, err: unknown): void => void deadLetters.push(this.deadLetter(source, err));

    // 1. Decode and validate.
    let t0 = performance.now();
    const events: UserEvent[] = [];
    const sources: InputRecord[] = [];
    const decodedAt = this.clock();
    for (const r of records) {
      const kind = this.o.topics.get(r.topic);
      if (!kind) throw new Error(`record from topic ${r.topic}, which is not an input topic`);
      try {
        events.push(this.o.decoder.decodeEvent(kind, r, decodedAt));
        sources.push(r);
      } catch (err) {
        reject(r, err);
      }
    }
    let t1 = performance.now();
    const decode = (t1 - t0) / 1000;

    // 2. Embed: caches, then one engine request per modality (the batcher merges them across chunks).
    const embedded = await this.o.embedder.embedEvents(events);
    for (const [i, err] of embedded.failures) reject(sources[i]!, err);
    t0 = performance.now();
    const features = (t0 - t1) / 1000;

    // 3. Fuse: one request for every event that embedded.
    const ok: number[] = [];
    for (let i = 0; i < events.length; i++) if (!embedded.failures.has(i)) ok.push(i);
    const fused = await this.o.fuser.fuseEvents(embedded, ok);

    // 4. Fold into user state in record order (per partition, that is the user's event order). Synchronous from here on.
    const now = this.clock();
    const F = this.o.fuser.dim;
    const touched = new Map<string, { state: UserState; eventIds: string[] }>();
    const centroids = this.o.centroids.current();
    const route = centroids.names.length > 0 ? (v: Float32Array) => nearestCentroid(v, centroids) : undefined;
    ok.forEach((i, r) => {
      const e = events[i]!;
      const src = sources[i]!;
      const applied = this.o.appliedUpTo?.(src.topic, src.partition);
      const replay = applied !== undefined && BigInt(src.offset) <= applied;
      let t = touched.get(e.userId);
      if (!t && this.deleted.has(e.userId) && this.o.users.get(e.userId) === undefined) {
        // Delivered before the user was deleted: neither its state nor its output comes back.
        if (replay) {
          this.skippedReplays++;
          return;
        }
        this.deleted.delete(e.userId); // a new event: the user starts afresh
      }
      if (!t) {
        // Held here for the whole call: were the store to evict the user meanwhile, the state change still goes out.
        t = { state: this.o.users.getOrCreate(e.userId, sources[i]!.partition), eventIds: [] };
        t.state.partition = sources[i]!.partition;
        touched.set(e.userId, t);
      }
      // A replay (after a crash, a restart) of an event the restored state already holds: its
      // lineage goes out again, but it is not added to the interests twice.
      if (!replay) {
        const w = eventWeight(e) * this.o.fuser.settings.weights[embedded.modality[i]!]!;
        applyEvent(t.state, fused, r * F, w, e.eventTime, this.o.interests, this.o.users.vectors, route);
      }
      t.eventIds.push(e.eventId);
      if (e.eventTime > t.state.latestEventTime) t.state.latestEventTime = e.eventTime;
    });
    const states: UserState[] = [];
    for (const { state, eventIds } of touched.values()) {
      state.pendingEventIds = state.pendingEventIds.concat(eventIds); // exact size: it may wait in memory
      states.push(state);
    }
    const segments = this.updateSegments(states, now);
    const interval = this.o.emitIntervalMs;
    const emissions = this.take(states.filter((s) => interval === 0 || now - s.lastEmittedAt >= interval), now);
    const stateChanges = this.settle(states, now);
    t1 = performance.now();
    const fusion = (t1 - t0) / 1000;

    // 5. Score the users that are due, once each, against the active catalog.
    const scored = await this.score(emissions);
    const timings: StageTimings = { decode, features, fusion, scoring: (performance.now() - t1) / 1000 };
    return { scored, deadLetters, stateChanges, segments, deletions: [], timings };
  }

  /**
   * Scores every held user whose events wait and whose interval has passed (the runtime calls it
   * on a timer when EMIT_INTERVAL_MS > 0). Their state changes say the events went out.
   */
  async flushDue(now: number = this.clock()): Promise<ChunkResult> {
    const t0 = performance.now();
    const interval = this.o.emitIntervalMs;
    const due: UserState[] = [];
    for (const s of this.o.users.pendingUsers()) if (interval === 0 || now - s.lastEmittedAt >= interval) due.push(s);
    const emissions = this.take(due, now);
    const stateChanges = this.settle(due, now);
    const scored = await this.score(emissions);
    const timings: StageTimings = { decode: 0, features: 0, fusion: 0, scoring: (performance.now() - t0) / 1000 };
    return { scored, deadLetters: [], stateChanges, segments: [], deletions: [], timings };
  }

  /** Names the users' interests after the catalog's categories; the outputs for the lists that changed enough. */
  private updateSegments(states: readonly UserState[], now: number): SegmentsOutput[] {
    const centroids = this.o.centroids.current();
    if (centroids.names.length === 0) return []; // no catalog yet: nothing to name interests after
    const out: SegmentsOutput[] = [];
    for (const s of states) {
      const next = userSegments(s.interests, centroids);
      if (!segmentsChanged(s.lastSegments, next)) continue;
      s.lastSegments = next;
      out.push({ userId: s.userId, segments: next, updatedAt: now });
    }
    return out;
  }

  /** Takes what the users' outputs need and marks their pending events as emitted. */
  private take(states: readonly UserState[], now: number): Emission[] {
    return states.map((s) => {
      const e: Emission = {
        userId: s.userId, eventIds: s.pendingEventIds, latestEventTime: s.latestEventTime, query: rankQuery(s.interests, this.o.fuser.dim),
        previousEmittedAt: s.lastEmittedAt, emittedAt: now,
      };
      s.pendingEventIds = NONE;
      s.lastEmittedAt = now;
      return e;
    });
  }

  /** Scoring failed: the events are pending again, so a later output (or the changelog) still carries them. */
  private giveBack(emissions: readonly Emission[]): void {
    for (const e of emissions) {
      const s = this.o.users.get(e.userId);
      if (!s) continue;
      s.pendingEventIds = e.eventIds.concat(s.pendingEventIds);
      if (s.lastEmittedAt === e.emittedAt) s.lastEmittedAt = e.previousEmittedAt;
      this.o.users.commit(s);
    }
  }

  /** Stamps the changes, lets the store count them, and snapshots them for the changelog. */
  private settle(states: readonly UserState[], now: number): UserState[] {
    return states.map((s) => {
      s.updatedAt = now;
      this.o.users.commit(s);
      return snapshotState(s);
    });
  }

  private async score(emissions: readonly Emission[]): Promise<ScoredOutput[]> {
    if (emissions.length === 0) return [];
    let candidates: Candidate[][];
    try {
      candidates = await this.o.ranker.rank(emissions.map((e) => e.query));
    } catch (err) {
      this.giveBack(emissions);
      throw err;
    }
    const processingTime = this.clock();
    return emissions.map((e, u) => ({
      outputId: outputId(e.userId, e.eventIds),
      userId: e.userId,
      candidates: candidates[u]!,
      modelVersion: this.modelVersion,
      triggerEventTime: e.latestEventTime,
      processingTime,
      eventIds: e.eventIds,
    }));
  }
}

function eventWeight(e: UserEvent): number {
  switch (e.kind) {
    case 'click':
      return ACTION_WEIGHT[e.action];
    case 'review':
      return e.rating >= 3 ? REVIEW_WEIGHT_LIKED : REVIEW_WEIGHT_DISLIKED;
    case 'image':
      return IMAGE_VIEW_WEIGHT;
  }
}

/** Same user and same events give the same id, so a re-delivered output can be recognised. */
function outputId(userId: string, eventIds: readonly string[]): string {
  const joined = `${userId}\u0000${eventIds.join('\u0000')}`;
  return hash32(joined, 0x9e3779b9).toString(16).padStart(8, '0') + hash32(joined, 0x85ebca6b).toString(16).padStart(8, '0');
}
