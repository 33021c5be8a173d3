import type { ReasonCode } from '../errors.js';
import type { InputRecord } from '../ingest/events.js';
import type { Segment, UserState } from '../state/user-state.js';

export type { Segment, UserState };

export interface Candidate {
  readonly adId: string;
  /** Predicted click-through rate for the user (see scoring/candidate-ranker.ts), 0..1. */
  readonly score: number;
  readonly categoryId: string;
}

/** Ranked ads for one user (the ScoredCandidates schema). */
export interface ScoredOutput {
  readonly outputId: string;
  readonly userId: string;
  readonly candidates: readonly Candidate[];
  readonly modelVersion: string;
  /** The user's newest event time. */
  readonly triggerEventTime: number;
  readonly processingTime: number;
  /** Lineage: the events this output reflects for the first time (all the user's pending events). */
  readonly eventIds: readonly string[];
}

/** A user's strongest interest segments (the InterestSegments schema), emitted when they change. */
export interface SegmentsOutput {
  readonly userId: string;
  /** Strongest first, at most 5; weights are shares of the user's interest strength. */
  readonly segments: readonly Segment[];
  readonly updatedAt: number;
}

/** An input record that could not be used (the DeadLetter schema). */
export interface DeadLetterOutput {
  readonly source: InputRecord;
  readonly reason: ReasonCode;
  readonly message: string;
  readonly failedAt: number;
}

/**
 * What one call of the core returns. Every input record is in exactly one of: a scored output's
 * eventIds, a state change's pendingEventIds (its user's output is rate-limited; the changelog
 * record accounts for it until then), or the dead letters.
 */
export interface ProcessResult {
  readonly scored: readonly ScoredOutput[];
  readonly deadLetters: readonly DeadLetterOutput[];
  /** Each user touched, once, as it is after the call (snapshots): for the compacted changelog. */
  readonly stateChanges: readonly UserState[];
  readonly segments: readonly SegmentsOutput[];
}
