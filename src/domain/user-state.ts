/**
 * What the processor keeps per user (schemas/user-state.avsc is its changelog form). Vectors live
 * in the fused space F. Times: event time for the interests, processing time for the rest.
 */

/** One interest: a decayed sum of the fused vectors of the events that joined it. */
export interface Interest {
  /** F values; not unit norm (its length grows with the weight behind it). */
  vector: Float32Array;
  /** Decayed sum of the weights of its events: how strong the interest is now. */
  strength: number;
  /** Event time (ms) vector and strength are decayed to. */
  asOf: number;
  /** Events folded in. */
  events: number;
}

/** A segment of a user: a category and its share of the user's interest strength. */
export interface Segment {
  readonly name: string;
  readonly weight: number;
}

export interface UserState {
  readonly userId: string;
  /** Input partition the user's events arrive on. */
  partition: number;
  /** At most INTERESTS_PER_USER, in no particular order. */
  interests: Interest[];
  /** Newest event time applied. */
  latestEventTime: number;
  /** Events applied but not yet in a scored output (replaced, never mutated: it may be shared). */
  pendingEventIds: readonly string[];
  /** Processing time of the last scored output; 0: never. */
  lastEmittedAt: number;
  /** Processing time of the last change. */
  updatedAt: number;
  /** The segments last emitted for the user (replaced, never mutated). */
  lastSegments: readonly Segment[];
}

/** Shared by every user without pending events or segments: no array per user for nothing. */
export const NONE: readonly never[] = Object.freeze([]);

export function newUserState(userId: string, partition: number): UserState {
  return { userId, partition, interests: [], latestEventTime: 0, pendingEventIds: NONE, lastEmittedAt: 0, updatedAt: 0, lastSegments: NONE };
}

/** Sum of the interests' strengths. */
export function totalStrength(s: { readonly interests: readonly Interest[] }): number {
  let total = 0;
  for (const i of s.interests) total += i.strength;
  return total;
}
