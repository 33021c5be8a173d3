/**
 * Fold: a chunk's fused event vectors into their users' interests, in record order (per partition,
 * that is each user's event order), with the replay rule and the memory of deleted users. The
 * chunk's events become the users' pending lineage here; the emit policy takes it out.
 */
import type { ClickAction, InputRecord, UserEvent } from '../domain/events.js';
import type { SegmentsOutput } from '../domain/outputs.js';
import type { UserState } from '../domain/user-state.js';
import { nearestCentroid, segmentsChanged, userSegments, type Centroids } from '../state/segments.js';
import { applyEvent, type InterestParams } from '../state/user-interest.js';
import type { UserStateStore } from '../state/user-state-store.js';

/** How strongly each action moves a user's interest (stronger intent, larger weight). */
export const ACTION_WEIGHT: Readonly<Record<ClickAction, number>> = { VIEW: 1, CLICK: 2, ADD_TO_CART: 3, PURCHASE: 4 };

const REVIEW_WEIGHT_LIKED = 1.5;
const REVIEW_WEIGHT_DISLIKED = 0.5;
const IMAGE_VIEW_WEIGHT = 1;

/** Deleted users remembered (most recent), so that a replay of their older events does not bring them back. */
const DELETED_USERS_REMEMBERED = 100_000;

export interface FoldOptions {
  readonly users: UserStateStore;
  readonly interests: InterestParams;
  /** Width F of the fused space. */
  readonly dim: number;
  /** Per modality (MODALITY_INDEX order), how much its events weigh: the fusion weights. */
  readonly modalityWeights: readonly number[];
  /** Category centroids of the current catalog: interests are routed and named by them. */
  readonly centroids: { current(): Centroids };
  /**
   * The offset up to which a topic-partition's events are already in the user state (restored
   * from the changelog), or undefined. Events at or below it are not folded again.
   */
  readonly appliedUpTo?: (topic: string, partition: number) => bigint | undefined;
}

/** A chunk's decoded events and what fusion made of those that embedded. */
export interface FusedEvents {
  readonly events: readonly UserEvent[];
  /** Per event, the record it came from. */
  readonly sources: readonly InputRecord[];
  /** Indexes into events of the fused ones, in record order: row r of vectors is events[fused[r]]. */
  readonly fused: readonly number[];
  /** fused.length rows of F. */
  readonly vectors: Float32Array;
  /** Per event, its modality's index. */
  readonly modality: Uint8Array;
}

export interface Folded {
  /** Each user the chunk touched, once (first touch first), its events appended to pendingEventIds. */
  readonly states: UserState[];
  /** Users whose segment list changed enough to go out. */
  readonly segments: SegmentsOutput[];
}

/** Folds chunks into the user state store; remembers deleted users. Synchronous throughout. */
export class InterestFolder {
  /** Replayed events of deleted users that were skipped (see markDeleted). */
  skippedReplays = 0;
  /** Users deleted and not seen since (insertion order: oldest first), bounded. */
  private readonly deleted = new Set<string>();

  constructor(private readonly o: FoldOptions) {}

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

  /** The segment an interest vector belongs to (its nearest category); null before the catalog has ads. */
  segmentOf(vector: Float32Array): string | null {
    const c = this.o.centroids.current();
    return c.names[nearestCentroid(vector, c)] ?? null;
  }

  fold(chunk: FusedEvents, now: number): Folded {
    const { events, sources, fused, vectors, modality } = chunk;
    const { users, interests, dim: F, modalityWeights, appliedUpTo } = this.o;
    const touched = new Map<string, { state: UserState; eventIds: string[] }>();
    const centroids = this.o.centroids.current();
    const route = centroids.names.length > 0 ? (v: Float32Array, at: number) => nearestCentroid(v, centroids, at) : undefined;
    fused.forEach((i, r) => {
      const e = events[i]!;
      const src = sources[i]!;
      const applied = appliedUpTo?.(src.topic, src.partition);
      const replay = applied !== undefined && BigInt(src.offset) <= applied;
      let t = touched.get(e.userId);
      if (!t && this.deleted.has(e.userId) && users.get(e.userId) === undefined) {
        // Delivered before the user was deleted: neither its state nor its output comes back.
        if (replay) {
          this.skippedReplays++;
          return;
        }
        this.deleted.delete(e.userId); // a new event: the user starts afresh
      }
      if (!t) {
        // Held here for the whole call: were the store to evict the user meanwhile, the state change still goes out.
        t = { state: users.getOrCreate(e.userId, src.partition), eventIds: [] };
        t.state.partition = src.partition;
        touched.set(e.userId, t);
      }
      // A replay (after a crash, a restart) of an event the restored state already holds: its
      // lineage goes out again, but it is not added to the interests twice.
      if (!replay) {
        const w = eventWeight(e) * modalityWeights[modality[i]!]!;
        applyEvent(t.state, vectors, r * F, w, e.eventTime, interests, users.vectors, route);
      }
      t.eventIds.push(e.eventId);
      if (e.eventTime > t.state.latestEventTime) t.state.latestEventTime = e.eventTime;
    });
    const states: UserState[] = [];
    for (const { state, eventIds } of touched.values()) {
      state.pendingEventIds = state.pendingEventIds.concat(eventIds); // exact size: it may wait in memory
      states.push(state);
    }
    return { states, segments: nameSegments(states, centroids, now) };
  }
}

/** Names the users' interests after the catalog's categories; the outputs for the lists that changed enough. */
function nameSegments(states: readonly UserState[], centroids: Centroids, now: number): SegmentsOutput[] {
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
