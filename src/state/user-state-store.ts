import { LRUCache } from 'lru-cache';
import { NONE, newUserState, type UserState } from '../domain/user-state.js';
import type { StateSettings } from './settings.js';
import { SnapshotArena } from './snapshot-arena.js';
import { VectorPool, type VectorAllocator } from './vector-pool.js';

/** The cache's bounds as USER_CACHE_MAX_ENTRIES, USER_CACHE_MAX_BYTES and USER_TTL_S set them. */
export function cacheBounds(s: Pick<StateSettings, 'userCacheMaxEntries' | 'userCacheMaxBytes' | 'userTtlS'>): Pick<UserStateStoreOptions, 'maxEntries' | 'maxBytes' | 'ttlMs'> {
  return { maxEntries: s.userCacheMaxEntries, maxBytes: s.userCacheMaxBytes, ttlMs: s.userTtlS * 1000 };
}

export interface UserStateStoreOptions {
  /** Width F of the interest vectors. */
  readonly dim: number;
  readonly maxEntries: number;
  /** Bound on the bytes the store counts (see stateBytes); least recently active users go first. */
  readonly maxBytes: number;
  /** Idle users are dropped after this long without an event (processing time). */
  readonly ttlMs: number;
  /** Where users outside memory are (the local state store); absent: a user who leaves memory is gone. */
  readonly backing?: StateBacking;
  /** Told of each look-up that counts as activity: found in memory or not. */
  readonly onLookup?: (hit: boolean) => void;
}

/**
 * What holds the users the LRU does not: read on a miss, told of each change handed to the
 * changelog (it reads that back until acknowledged) and of each deletion.
 */
export interface StateBacking {
  /** The user's newest state outside memory; without a partition, every partition is searched. */
  load(userId: string, partition?: number): UserState | undefined;
  changed(snapshot: UserState): void;
  deleted(userId: string, partition: number): void;
  /** Users outside memory whose state has events waiting for an output (of one partition, or all). */
  pendingUsers(partition?: number): Iterable<readonly [string, number]>;
}

/**
 * Estimated heap bytes of one user, calibrated with --expose-gc on Node 20 (x64, no pointer
 * compression): the state object with its boxed numbers, the key string, the interests array and
 * the LRU's bookkeeping (its per-slot arrays included); per interest its object and its view into a
 * VectorPool slab; pending event ids and segments at their string sizes. A user with one 128-d
 * interest is counted 998 bytes and measured 997 (heap plus array buffers, 200,000 users).
 */
export const USER_OVERHEAD_BYTES = 280;
export const INTEREST_OVERHEAD_BYTES = 184;
const STRING_OVERHEAD_BYTES = 32;
const SEGMENT_OVERHEAD_BYTES = 72;

export function stateBytes(s: UserState): number {
  let n = USER_OVERHEAD_BYTES + 2 * s.userId.length;
  for (const i of s.interests) n += INTEREST_OVERHEAD_BYTES + i.vector.byteLength;
  if (s.pendingEventIds !== NONE) n += 16 + s.pendingEventIds.length * 8;
  for (const id of s.pendingEventIds) n += STRING_OVERHEAD_BYTES + 2 * id.length;
  // Frozen segment lists are shared between users (see segments.ts), so no user pays for them.
  if (!Object.isFrozen(s.lastSegments)) for (const g of s.lastSegments) n += SEGMENT_OVERHEAD_BYTES + 2 * g.name.length;
  return n;
}

/**
 * Per-user state, bounded by entries and by bytes, with an idle TTL: the least recently active
 * users go first. The processor is its only writer; after changing a state it calls commit() so
 * the byte count and the index of users with pending events follow.
 *
 * A user evicted (or expired) while events of theirs wait for a rate-limited output is not
 * forgotten yet: it is set aside, outside the bounds, until a flush scores it (see
 * EmitPolicy.pendingDue, which takes it at once) and emitted() lets it go. Their lineage always
 * reaches an output. A new event for such a user takes it back into the LRU.
 *
 * With a backing store (the local state store on disk), a user who left memory is read back from
 * it on their next event (a miss), whole; get() reads through it too. Each change handed to the
 * changelog (snapshot()) and each deletion (forget()) is told to it, so that it answers with them
 * until they are acknowledged.
 *
 * Interest vectors come from the store's VectorPool and go back to it when a user leaves (evicted,
 * expired, deleted, replaced): do not keep a UserState, or its vectors, past the current
 * synchronous run of code; read it again from the store.
 */
export class UserStateStore {
  private readonly cache: LRUCache<string, UserState>;
  private readonly pool: VectorPool;
  /** Where snapshots' vectors are copied to. */
  private readonly snapshots = new SnapshotArena();
  /** Users with events not yet in a scored output (for flushes on a timer). */
  private readonly pending = new Set<string>();
  /** Evicted with pending events, until they are out: not counted in the bounds (see the class comment). */
  private readonly evicted = new Map<string, UserState>();
  /** Set while commit() re-inserts a state, whose vectors must then not be freed. */
  private recommitting: UserState | undefined;
  private readonly backing: StateBacking | undefined;
  private readonly onLookup: ((hit: boolean) => void) | undefined;
  readonly dim: number;

  constructor(opts: UserStateStoreOptions) {
    this.dim = opts.dim;
    this.backing = opts.backing;
    this.onLookup = opts.onLookup;
    this.pool = new VectorPool(opts.dim);
    this.cache = new LRUCache<string, UserState>({
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: stateBytes,
      ttl: opts.ttlMs,
      ttlAutopurge: false,
      updateAgeOnGet: true,
      dispose: (state, userId, reason) => this.release(state, userId, reason === 'evict' || reason === 'expire'),
    });
  }

  /** Where interest vectors come from: the applyEvent allocator. */
  get vectors(): VectorAllocator {
    return this.pool;
  }

  /**
   * The user's state, without counting as activity (no LRU or TTL refresh); an evicted user awaiting
   * its output too. One outside memory is read from the backing store and not kept: changing it
   * changes nothing.
   */
  get(userId: string): UserState | undefined {
    return this.cache.peek(userId) ?? this.evicted.get(userId) ?? this.backing?.load(userId);
  }

  /** The user's state (counts as activity): from memory, else from the backing store, else created empty. */
  getOrCreate(userId: string, partition: number): UserState {
    let s = this.cache.get(userId);
    this.onLookup?.(s !== undefined || this.evicted.has(userId));
    if (!s && (s = this.evicted.get(userId))) {
      // Evicted with events waiting: back into the LRU, pending events and all (they go out with its next output).
      this.evicted.delete(userId);
      this.cache.set(userId, s);
      return s;
    }
    if (!s) {
      const stored = this.backing?.load(userId, partition);
      if (stored) return this.adopt(stored);
      s = newUserState(userId, partition);
      // Counted as holding the one interest its first event gives it, so that commit finds the size
      // unchanged and need not take the entry out and put it back (churn that costs the LRU's Map memory).
      this.cache.set(userId, s, { size: stateBytes(s) + INTEREST_OVERHEAD_BYTES + 4 * this.dim });
    }
    return s;
  }

  /**
   * Puts a state in, replacing any held for the user (restore from the changelog). Its vectors are
   * copied into the store's memory, so the caller's arrays stay the caller's.
   */
  put(state: UserState): void {
    this.adopt(state);
  }

  /** The state as the store's own (vectors copied into its pool), held and indexed. */
  private adopt(state: UserState): UserState {
    const own: UserState = {
      ...state,
      interests: state.interests.map((i) => {
        if (i.vector.length !== this.dim) throw new Error(`interest of ${this.dim} values expected, got ${i.vector.length}`);
        const v = this.pool.alloc();
        v.set(i.vector);
        return { ...i, vector: v };
      }),
    };
    this.dropEvicted(own.userId);
    this.cache.set(own.userId, own);
    this.index(own);
    return own;
  }

  /**
   * A copy of the state for the changelog, which later changes to the user cannot reach; the
   * backing store reads it back until it is acknowledged (the user may leave memory before that).
   */
  snapshot(state: UserState): UserState {
    const snap: UserState = { ...state, interests: state.interests.map((i) => ({ ...i, vector: this.snapshots.copy(i.vector) })) };
    this.backing?.changed(snap);
    return snap;
  }

  /** A deletion request: the user leaves memory, and the backing store reads nothing for them from now on. */
  forget(userId: string, partition: number): boolean {
    const held = this.delete(userId);
    this.backing?.deleted(userId, partition);
    return held;
  }

  /**
   * Tells the store a state changed: its bytes are counted again (which may evict others) and its
   * pending events indexed. A state that is no longer held (evicted meanwhile) stays out.
   */
  commit(state: UserState): void {
    if (this.evicted.get(state.userId) === state) return this.index(state);
    if (this.cache.peek(state.userId) !== state) return;
    // Most changes (vectors updated in place) keep the size: nothing to count again.
    if (this.cache.info(state.userId)?.size === stateBytes(state)) return this.index(state);
    // lru-cache measures an entry on insertion only: take it out and put it back.
    this.recommitting = state;
    try {
      this.cache.delete(state.userId);
      this.cache.set(state.userId, state);
    } finally {
      this.recommitting = undefined;
    }
    if (this.cache.peek(state.userId) === state) this.index(state);
    else this.release(state, state.userId, true); // larger than the whole byte bound: not kept (set aside if events wait)
  }

  /** Forgets the user (deleted, or a tombstone restored), set aside or not. */
  delete(userId: string): boolean {
    const aside = this.dropEvicted(userId);
    return this.cache.delete(userId) || aside;
  }

  /** Drops the users of partitions not in `keep` (partitions revoked, or one being restored); returns how many. */
  dropPartitions(keep: ReadonlySet<number>): number {
    const gone: string[] = [];
    for (const [userId, s] of this.cache.entries()) if (!keep.has(s.partition)) gone.push(userId);
    for (const [userId, s] of this.evicted) if (!keep.has(s.partition)) gone.push(userId);
    for (const userId of gone) this.delete(userId);
    return gone.length;
  }

  /**
   * Users with pending events: held ones, evicted ones awaiting their output, then those of the
   * backing store (of `partition` only, when given), taken into memory.
   */
  *pendingUsers(partition?: number): IterableIterator<UserState> {
    for (const userId of [...this.pending]) {
      const s = this.cache.peek(userId) ?? this.evicted.get(userId); // in memory only: those are changed and committed
      if (s && s.pendingEventIds.length > 0) yield s;
      else this.pending.delete(userId);
    }
    if (!this.backing) return;
    for (const [userId, p] of [...this.backing.pendingUsers(partition)]) {
      if (this.cache.has(userId) || this.evicted.has(userId)) continue; // memory is newer: seen above if still pending
      const stored = this.backing.load(userId, p);
      if (stored && stored.pendingEventIds.length > 0) yield this.adopt(stored);
    }
  }

  /** Evicted with events waiting for an output (EmitPolicy scores it at once). */
  isEvicted(state: UserState): boolean {
    return this.evicted.get(state.userId) === state;
  }

  /**
   * The user's output was scored: one set aside since its eviction has nothing left waiting and is
   * forgotten now (unless new events came for it meanwhile).
   */
  emitted(userId: string): void {
    const s = this.evicted.get(userId);
    if (s && s.pendingEventIds.length === 0) this.dropEvicted(userId);
  }

  /** Users evicted whose pending events have not gone out yet. */
  get evictedPending(): number {
    return this.evicted.size;
  }

  /** Every held user, most recently active first (no LRU or TTL refresh). */
  entries(): IterableIterator<[string, UserState]> {
    return this.cache.entries();
  }

  values(): IterableIterator<UserState> {
    return this.cache.values();
  }

  get size(): number {
    return this.cache.size;
  }

  /** Bytes counted for the held users (bounded by maxBytes). */
  get bytes(): number {
    return this.cache.calculatedSize;
  }

  private index(s: UserState): void {
    if (s.pendingEventIds.length > 0) this.pending.add(s.userId);
    else this.pending.delete(s.userId);
  }

  /** A user leaves the LRU; `evicted`: pushed out by the bounds (or its TTL), not deleted or replaced. */
  private release(state: UserState, userId: string, evicted: boolean): void {
    if (state === this.recommitting) return;
    if (evicted && state.pendingEventIds.length > 0) {
      // Events of theirs have had no output yet: set aside until one. Vectors move off the pool,
      // whose slots go to others; the fold may still be writing to this state.
      for (const i of state.interests) {
        const v = i.vector;
        i.vector = v.slice();
        this.pool.free(v);
      }
      this.evicted.set(userId, state);
      return;
    }
    for (const i of state.interests) this.pool.free(i.vector);
    // A user replaced by put() is indexed again right after.
    this.pending.delete(userId);
  }

  private dropEvicted(userId: string): boolean {
    const s = this.evicted.get(userId);
    if (!s) return false;
    this.evicted.delete(userId);
    for (const i of s.interests) this.pool.free(i.vector); // those allocated after the eviction (others are ignored)
    this.pending.delete(userId);
    return true;
  }
}
