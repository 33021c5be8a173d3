import { RejectedRecordError, errorMessage, type ReasonCode } from './errors.js';
import type { InputRecord } from './events.js';
import type { Segment, UserState } from './user-state.js';

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
 * The dead letter for a record that failed with err: a rejection keeps its reason; anything else
 * is PROCESSING_FAILED (a bug, not the record's fault: the caller decides whom to tell).
 */
export function deadLetterOf(source: InputRecord, err: unknown, failedAt: number): DeadLetterOutput {
  const reason: ReasonCode = err instanceof RejectedRecordError ? err.reason : 'PROCESSING_FAILED';
  return { source, reason, message: errorMessage(err), failedAt };
}

/**
 * A user forgotten at their request (the deletions topic). The transport turns it into tombstones
 * (null values keyed by the user id) on the state changelog, on the user's partition, and on the
 * segments topic; the request's input record is accounted for by them.
 */
export interface DeletionOutput {
  readonly userId: string;
  /** The user's partition (that of the deletion record: the topics are co-partitioned). */
  readonly partition: number;
  readonly requestId: string;
  readonly requestedAt: number;
  readonly deletedAt: number;
  /** The deletion record. */
  readonly source: InputRecord;
  /** Whether this instance held state for the user. */
  readonly held: boolean;
  /**
   * Events of the user that were waiting for a rate-limited output (EMIT_INTERVAL_MS) and are
   * dropped with the user: accounted for by this deletion, never emitted.
   */
  readonly discardedEventIds: readonly string[];
}

/** A labelled impression with the features as served (the TrainingExample schema): see pipeline/attribution.ts. */
export interface TrainingExample {
  /** The impression's feedbackId. */
  readonly exampleId: string;
  readonly userId: string;
  readonly adId: string;
  readonly outputId: string | null;
  readonly position: number;
  /** The impression's event time. */
  readonly servedAt: number;
  readonly label: 0 | 1;
  readonly modelVersion: string;
  readonly servedCtr: number;
  /** The interest that matched the ad when it was scored (a copy). */
  readonly interest: Float32Array;
  /** The ad's fused vector when it was scored (a copy). */
  readonly ad: Float32Array;
}

/**
 * A record of the attribution's durable state (what waits for feedback or a label, see
 * pipeline/attribution-records.ts), for the partition's changelog: a NUL-prefixed key, the value,
 * or null to delete it.
 */
export interface AttributionRecord {
  readonly partition: number;
  readonly key: string;
  readonly value: Buffer | null;
}

/**
 * What one call of the core returns. Every input record is in exactly one of: a scored output's
 * eventIds, a state change's pendingEventIds (its user's output is rate-limited; the changelog
 * record accounts for it until then), the deletions (a deletion record, and the pending events it
 * discarded), or the dead letters. One exception: a replayed event (at or below the restored
 * applied offset) of a user deleted since is skipped, since its output was delivered before.
 */
export interface ProcessResult {
  readonly scored: readonly ScoredOutput[];
  readonly deadLetters: readonly DeadLetterOutput[];
  /** Each user touched, once, as it is after the call (snapshots): for the compacted changelog. */
  readonly stateChanges: readonly UserState[];
  readonly segments: readonly SegmentsOutput[];
  /** Users deleted, in input order: tombstones for the changelog and the segments topic. */
  readonly deletions: readonly DeletionOutput[];
  /**
   * Impressions labelled by this call (ad feedback): for the training-examples topic. The feedback
   * records themselves are accounted for by the attribution (see pipeline/attribution.ts).
   */
  readonly examples?: readonly TrainingExample[];
  /** The attribution state this call changed: changelog records, delivered with the call's outputs. */
  readonly attribution?: readonly AttributionRecord[];
}
