import type { ReasonCode } from '../errors.js';
import type { InputRecord } from '../ingest/events.js';

export interface Candidate {
  readonly adId: string;
  readonly score: number;
  readonly categoryId: string;
}

/** Ranked ads for one user (the ScoredCandidates schema). */
export interface ScoredOutput {
  readonly outputId: string;
  readonly userId: string;
  readonly candidates: readonly Candidate[];
  readonly modelVersion: string;
  readonly triggerEventTime: number;
  readonly processingTime: number;
  /** Lineage: the events this output reflects for the first time. */
  readonly eventIds: readonly string[];
}

/** An input record that could not be used (the DeadLetter schema). */
export interface DeadLetterOutput {
  readonly source: InputRecord;
  readonly reason: ReasonCode;
  readonly message: string;
  readonly failedAt: number;
}

export interface ProcessResult {
  readonly scored: readonly ScoredOutput[];
  readonly deadLetters: readonly DeadLetterOutput[];
}
