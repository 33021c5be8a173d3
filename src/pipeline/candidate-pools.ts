/**
 * Candidate pools: the top P ads a search found for one of a user's interests, kept so that the
 * next rankings of that interest score those P exactly instead of searching the whole index. An
 * event moves one interest a little (a decayed sum gains one event's weight), so its best ads
 * change little; the pool is searched again once the interest drifted more than `maxDrift` (cosine
 * distance to the row the pool was searched for, never to the last row it answered: drift cannot
 * creep), or is older than `maxAgeMs` (ads added since reach it then). How often a pooled answer
 * differs from what a search would give is measured, not assumed: IndexedScorer checks every Nth
 * pooled row against a search (its recall is reported).
 */
import { LRUCache } from 'lru-cache';
import { dot } from '../util/vectors.js';
import { slotAt } from '../util/slot-words.js';

export interface CandidatePoolOptions {
  /** Slots a pool holds (the index model's poolSize). */
  readonly size: number;
  readonly dim: number;
  /** A pool answers a row within this cosine distance of the row it was searched for (0: pools off). */
  readonly maxDrift: number;
  /** A pool older than this is searched again. */
  readonly maxAgeMs: number;
  /** Users whose pools are kept (least recently used go first). */
  readonly users: number;
  /** Pools kept per user: one per interest. */
  readonly perUser: number;
  readonly now?: () => number;
}

/** One search's top `size` slots for a unit query row. */
export interface CandidatePool {
  /** The row it was searched for (a copy). */
  readonly query: Float32Array;
  /** Slots best first, -1 past what was found. */
  readonly slots: Int32Array;
  /**
   * Each slot's generation then (the index bumps it when the slot is given to another ad than it
   * last held): a slot since reused is not scored. Integers, so checking a pool reads no ad object.
   */
  readonly generations: Int32Array;
  readonly at: number;
}

/** Why a row found no pool to answer it (the last find's, until the next). */
export type PoolMiss = 'no_pool' | 'drifted' | 'expired';

/**
 * A searched row replaces its user's nearest pool when at least this close (the same interest,
 * moved); a farther one is another interest and gets a pool of its own. Which pool goes changes
 * how often pools answer, never what they answer.
 */
const SAME_INTEREST = 0.5;

export class CandidatePools {
  private readonly byUser: LRUCache<string, CandidatePool[]>;
  private readonly now: () => number;
  /** Why the last find returned none (read right after it: no object per miss). */
  lastMiss: PoolMiss = 'no_pool';

  constructor(private readonly o: CandidatePoolOptions) {
    this.byUser = new LRUCache<string, CandidatePool[]>({ max: Math.max(1, o.users) });
    this.now = o.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.o.maxDrift > 0 && this.o.users > 0;
  }

  /** The owner's pool that may answer row `at` of `rows` (unit), or undefined: search. */
  find(owner: string, rows: Float32Array, at: number): CandidatePool | undefined {
    this.lastMiss = 'no_pool';
    if (!this.enabled) return undefined;
    const pools = this.byUser.get(owner);
    if (!pools) return undefined;
    const { pool, dot } = nearest(pools, rows, at, this.o.dim);
    if (!pool) return undefined;
    if (1 - dot > this.o.maxDrift) {
      this.lastMiss = 'drifted';
      return undefined;
    }
    if (this.now() - pool.at > this.o.maxAgeMs) {
      this.lastMiss = 'expired';
      return undefined;
    }
    return pool;
  }

  /**
   * Keeps what a search found for the owner's row: `size` slots of `found` (int64 slots as
   * slotWords) from slot `foundAt`, each with its generation now (`generationOf`, by slot).
   */
  record(owner: string, rows: Float32Array, at: number, found: Int32Array, foundAt: number, generationOf: Int32Array): void {
    if (!this.enabled) return;
    const { size, dim } = this.o;
    const slots = new Int32Array(size);
    const generations = new Int32Array(size);
    for (let j = 0; j < size; j++) {
      const s = slotAt(found, foundAt + j);
      slots[j] = s;
      if (s >= 0) generations[j] = generationOf[s]!;
    }
    const fresh: CandidatePool = { query: rows.slice(at, at + dim), slots, generations, at: this.now() };
    const pools = this.byUser.get(owner) ?? [];
    const { pool, dot } = nearest(pools, rows, at, dim);
    if (pool && dot >= SAME_INTEREST) pools[pools.indexOf(pool)] = fresh;
    else {
      if (pools.length >= this.o.perUser) pools.splice(oldest(pools), 1);
      pools.push(fresh);
    }
    this.byUser.set(owner, pools);
  }

  /** Forgets the owner's pools (a deleted user). */
  forget(owner: string): void {
    this.byUser.delete(owner);
  }
}

function nearest(pools: readonly CandidatePool[], rows: Float32Array, at: number, dim: number): { pool: CandidatePool | undefined; dot: number } {
  let pool: CandidatePool | undefined;
  let best = -Infinity;
  for (const p of pools) {
    const d = dot(p.query, 0, rows, at, dim);
    if (d > best) {
      best = d;
      pool = p;
    }
  }
  return { pool, dot: best };
}

function oldest(pools: readonly CandidatePool[]): number {
  let at = 0;
  for (let i = 1; i < pools.length; i++) if (pools[i]!.at < pools[at]!.at) at = i;
  return at;
}
