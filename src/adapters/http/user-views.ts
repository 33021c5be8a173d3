import { LRUCache } from 'lru-cache';
import type { Core } from '../../pipeline/core.js';
import type { Candidate, ScoredOutput } from '../../domain/outputs.js';
import type { UserViews } from './server.js';

/** Last candidates kept for GET /users/:id; a view, so bounded apart from the state. */
const LAST_SCORED_USERS = 10_000;

/**
 * What the analysts' HTTP endpoints read: one user's interests (their segments and strengths,
 * never raw vectors) and last candidates, and segment sizes over this instance's users.
 */
export class UserViewsOf implements UserViews {
  private readonly lastScored = new LRUCache<string, { candidates: readonly Candidate[]; at: number }>({ max: LAST_SCORED_USERS });

  constructor(private readonly core: Core) {}

  /** Remembers a delivered output. */
  scored(o: ScoredOutput): void {
    this.lastScored.set(o.userId, { candidates: o.candidates, at: o.processingTime });
  }

  forget(userId: string): void {
    this.lastScored.delete(userId);
  }

  user(userId: string): Record<string, unknown> | undefined {
    const s = this.core.users.get(userId);
    if (!s) return undefined;
    const last = this.lastScored.get(userId);
    return {
      userId,
      partition: s.partition,
      interests: [...s.interests]
        .sort((a, b) => b.strength - a.strength)
        .map((i) => ({ segment: this.core.processor.segmentOf(i.vector), strength: i.strength, events: i.events, asOf: new Date(i.asOf).toISOString() })),
      segments: s.lastSegments,
      pendingEvents: s.pendingEventIds.length,
      latestEventTime: new Date(s.latestEventTime).toISOString(),
      lastScored: last ? { at: new Date(last.at).toISOString(), candidates: last.candidates } : null,
    };
  }

  segmentSizes(): Record<string, number> {
    const sizes: Record<string, number> = {};
    for (const s of this.core.users.values()) for (const g of s.lastSegments) sizes[g.name] = (sizes[g.name] ?? 0) + 1;
    return sizes;
  }
}
