import { LRUCache } from 'lru-cache';
import { newInterest, type UserInterest } from './user-interest.js';

export interface UserStateStoreOptions {
  readonly dim: number;
  readonly maxEntries: number;
  /** Idle users are dropped after this long without an event (processing time). */
  readonly ttlMs: number;
}

/**
 * Per-user interest state, bounded in memory. The least recently active users go first; the
 * processor core is its only writer.
 */
export class UserStateStore {
  private readonly cache: LRUCache<string, UserInterest>;
  readonly dim: number;

  constructor(opts: UserStateStoreOptions) {
    this.dim = opts.dim;
    this.cache = new LRUCache<string, UserInterest>({ max: opts.maxEntries, ttl: opts.ttlMs, ttlAutopurge: false, updateAgeOnGet: true });
  }

  /** The user's state, created empty on first sight. */
  getOrCreate(userId: string): UserInterest {
    let s = this.cache.get(userId);
    if (!s) {
      s = newInterest(this.dim);
      this.cache.set(userId, s);
    }
    return s;
  }

  peek(userId: string): UserInterest | undefined {
    return this.cache.peek(userId);
  }

  delete(userId: string): boolean {
    return this.cache.delete(userId);
  }

  get size(): number {
    return this.cache.size;
  }
}
