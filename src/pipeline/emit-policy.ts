/**
 * Emit policy: which users get a scored output now (EMIT_INTERVAL_MS), what that output carries
 * (the user's pending events, its lineage, under an id derived from them), and the state changes
 * that say so in the changelog. Every pending event goes out once: in an output, or back to
 * pending when scoring fails.
 */
import type { Candidate, ScoredOutput } from '../domain/outputs.js';
import { NONE, type UserState } from '../domain/user-state.js';
import { hash32 } from '../preprocess/hash.js';
import { MAX_PENDING_EVENT_IDS } from '../state/user-state-codec.js';
import type { UserStateStore } from '../state/user-state-store.js';
import { rankQuery, type RankQuery } from './rank.js';

export interface EmitPolicyOptions {
  readonly users: UserStateStore;
  /** A user is scored at most this often (processing time); 0: every call that touches them. */
  readonly emitIntervalMs: number;
  /** Width F of the fused space (the interests' width). */
  readonly dim: number;
  /** Identifies the models and fusion that produced the scores. */
  readonly modelVersion: string;
}

/** A user about to be scored: what the output will say, taken while the state was consistent. */
export interface Emission {
  readonly userId: string;
  /** The user's partition (what was served is attributed there). */
  readonly partition: number;
  readonly eventIds: readonly string[];
  readonly latestEventTime: number;
  readonly query: RankQuery;
  /** lastEmittedAt before this emission, and after: to give the events back if scoring fails. */
  readonly previousEmittedAt: number;
  readonly emittedAt: number;
}

export class EmitPolicy {
  constructor(private readonly o: EmitPolicyOptions) {}

  /** The users among states whose interval has passed, or with MAX_PENDING_EVENT_IDS events waiting (bounds the changelog record). */
  due(states: readonly UserState[], now: number): UserState[] {
    const interval = this.o.emitIntervalMs;
    return states.filter((s) => interval === 0 || now - s.lastEmittedAt >= interval || s.pendingEventIds.length >= MAX_PENDING_EVENT_IDS);
  }

  /**
   * Users with events waiting whose interval has passed (a flush on the timer), of one partition
   * or all. A user evicted from the store with events waiting is due at once: it is held only
   * until its events are out.
   */
  pendingDue(now: number, partition?: number): UserState[] {
    const { users, emitIntervalMs: interval } = this.o;
    const due: UserState[] = [];
    for (const s of users.pendingUsers(partition)) {
      if (partition !== undefined && s.partition !== partition) continue;
      if (interval === 0 || now - s.lastEmittedAt >= interval || users.isEvicted(s)) due.push(s);
    }
    return due;
  }

  /** Takes what the users' outputs need and marks their pending events as emitted. */
  take(states: readonly UserState[], now: number): Emission[] {
    return states.map((s) => {
      const e: Emission = {
        userId: s.userId, partition: s.partition, eventIds: s.pendingEventIds, latestEventTime: s.latestEventTime, query: rankQuery(s.interests, this.o.dim, s.userId),
        previousEmittedAt: s.lastEmittedAt, emittedAt: now,
      };
      s.pendingEventIds = NONE;
      s.lastEmittedAt = now;
      return e;
    });
  }

  /** Scoring failed: the events are pending again, so a later output (or the changelog) still carries them. */
  giveBack(emissions: readonly Emission[]): void {
    const { users } = this.o;
    for (const e of emissions) {
      const s = users.get(e.userId);
      if (!s) continue;
      s.pendingEventIds = e.eventIds.concat(s.pendingEventIds);
      if (s.lastEmittedAt === e.emittedAt) s.lastEmittedAt = e.previousEmittedAt;
      users.commit(s);
    }
  }

  /** Stamps the changes, lets the store count them, and snapshots them for the changelog. */
  settle(states: readonly UserState[], now: number): UserState[] {
    return states.map((s) => {
      s.updatedAt = now;
      this.o.users.commit(s);
      return this.o.users.snapshot(s);
    });
  }

  /** The scored outputs: emissions[u] with candidates[u], scored by `modelVersion`. An evicted user set aside for them is let go. */
  outputs(emissions: readonly Emission[], candidates: readonly Candidate[][], processingTime: number, modelVersion = this.o.modelVersion): ScoredOutput[] {
    for (const e of emissions) this.o.users.emitted(e.userId);
    return emissions.map((e, u) => ({
      outputId: outputId(e.userId, e.eventIds),
      userId: e.userId,
      candidates: candidates[u]!,
      modelVersion,
      triggerEventTime: e.latestEventTime,
      processingTime,
      eventIds: e.eventIds,
    }));
  }
}

/** Same user and same events give the same id, so a re-delivered output can be recognised. */
export function outputId(userId: string, eventIds: readonly string[]): string {
  const joined = `${userId}\u0000${eventIds.join('\u0000')}`;
  return hash32(joined, 0x9e3779b9).toString(16).padStart(8, '0') + hash32(joined, 0x85ebca6b).toString(16).padStart(8, '0');
}
