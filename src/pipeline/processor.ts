import type { EventKind, InputRecord } from '../domain/events.js';
import { StateChangedError } from '../domain/errors.js';
import { deadLetterOf, type AttributionRecord, type Candidate, type DeadLetterOutput, type ProcessResult, type ScoredOutput } from '../domain/outputs.js';
import type { Centroids } from '../state/segments.js';
import type { InterestParams } from '../state/user-interest.js';
import type { UserStateStore } from '../state/user-state-store.js';
import { decodeEvents, type EventDecoder } from './decode.js';
import { UserDeleter } from './delete.js';
import type { MultimodalEmbedder } from './embed.js';
import { EmitPolicy, type Emission } from './emit-policy.js';
import { InterestFolder } from './fold.js';
import type { FeedbackStage } from './feedback.js';
import type { Fuser } from './fuse.js';
import type { RankQuery, ServedPair } from './rank.js';
import { ServingVersion } from './serving-version.js';

export interface ProcessorOptions {
  /**
   * The offset up to which a topic-partition's events are already in the user state (restored
   * from the changelog), or undefined. Events at or below it are not applied again.
   */
  readonly appliedUpTo?: (topic: string, partition: number) => bigint | undefined;
  readonly decoder: EventDecoder;
  readonly embedder: MultimodalEmbedder;
  /** Events -> fused vectors (in-process); its weights per modality also weigh the events. */
  readonly fuser: Fuser;
  /** Interests -> ranked candidates (retrieval and CTR: one engine request). */
  readonly ranker: {
    rank(queries: readonly RankQuery[], served?: ServedPair): Promise<Candidate[][]>;
    /** A deleted user: whatever the retrieval keeps per user goes too. */
    forgetUser?(userId: string): void;
  };
  /** Category centroids of the current catalog, for segment names. */
  readonly centroids: { current(): Centroids };
  readonly users: UserStateStore;
  readonly interests: InterestParams;
  /** A user is scored at most this often (processing time); 0: every call that touches them. */
  readonly emitIntervalMs: number;
  /** Identifies the models and fusion that produced the scores. */
  readonly modelVersion: string;
  /** Input topic -> the kind of event it carries. */
  readonly topics: ReadonlyMap<string, EventKind>;
  /** The topic of deletion requests (UserDeletion records); absent: no such records are expected. */
  readonly deletionsTopic?: string;
  /** Ad feedback (its topic's records) attributed into training examples, with what was served; absent: no such records are expected. */
  readonly feedback?: FeedbackStage;
  readonly clock?: () => number;
  /** Told of errors that are not the record's fault (bugs); the record is dead-lettered anyway. */
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
}

/** Time a call spent in each stage, in seconds, for the stage-latency metrics. */
export interface StageTimings {
  readonly decode: number;
  readonly features: number;
  /** Fusion (in-process) and the interest update. */
  readonly fusion: number;
  readonly scoring: number;
}

/**
 * What process() and flushDue() return: the outputs, and the call's own stage timings. They travel
 * with the result because several chunks are in flight at once (one per partition): a field on the
 * processor would hold whichever chunk wrote last.
 */
export interface ChunkResult extends ProcessResult {
  readonly timings: StageTimings;
}

/**
 * The transport-agnostic core: input records and the state it owns in, outputs out. It knows
 * nothing of Kafka; adapters feed it records and deliver what it returns (see src/adapters).
 * It sequences the stages: decode (decode.ts), embed (embed.ts), fuse (fuse.ts), fold into user
 * state (fold.ts), the emit policy (emit-policy.ts), rank (rank.ts); deletion requests take their
 * own stage (delete.ts).
 *
 * Every record of a call comes back as a dead letter, inside the eventIds of its user's scored
 * output, or (when the user's outputs are rate-limited) inside the pendingEventIds of its user's
 * state change; the pending ones go out with a later output (process() or flushDue()). Ad feedback
 * records (with `feedback`) are taken by its stage: a dead letter, or attributed (an example
 * when labelled, or a count: see attribution.ts).
 *
 * A chunk makes at most two sequential trips to the inference workers: the encoders (one request
 * per modality, in parallel), then ranking (the scorer with the CTR model in the same request);
 * fusion, the fold and the emit policy run in-process between them.
 *
 * Between the embeddings and the ranking request everything runs synchronously: the states
 * are read and changed, and everything the outputs need is copied out of them, with no await in
 * between (see UserStateStore on why).
 *
 * A call that fails after the fold rejects with StateChangedError: the users' state in memory then
 * holds changes no changelog record does, and must be restored before the records are handed again.
 */
export class Processor {
  private readonly clock: () => number;
  private readonly folder: InterestFolder;
  private readonly emit: EmitPolicy;
  private readonly deleter: UserDeleter;
  /** The models' version on outputs; a CTR model swap commits between rankings through it. */
  readonly serving: ServingVersion;

  constructor(private readonly o: ProcessorOptions) {
    this.clock = o.clock ?? Date.now;
    if (o.users.dim !== o.fuser.dim) throw new Error(`dimension mismatch: fused space ${o.fuser.dim}, user state ${o.users.dim}`);
    const dim = o.fuser.dim;
    this.folder = new InterestFolder({ users: o.users, interests: o.interests, dim, modalityWeights: o.fuser.settings.weights, centroids: o.centroids, appliedUpTo: o.appliedUpTo });
    this.emit = new EmitPolicy({ users: o.users, emitIntervalMs: o.emitIntervalMs, dim, modelVersion: o.modelVersion });
    this.serving = new ServingVersion(o.modelVersion);
    const deleted = {
      markDeleted: (userId: string): void => {
        this.folder.markDeleted(userId);
        o.ranker.forgetUser?.(userId);
      },
    };
    this.deleter = new UserDeleter({ decoder: o.decoder, users: o.users, deleted, clock: this.clock });
  }

  get modelVersion(): string {
    return this.serving.version;
  }

  /** Replayed events of deleted users that were skipped (see markDeleted). */
  get skippedReplays(): number {
    return this.folder.skippedReplays;
  }

  /** The segment an interest vector belongs to (its nearest category); null before the catalog has ads. */
  segmentOf(vector: Float32Array): string | null {
    return this.folder.segmentOf(vector);
  }

  /** Remembers a deleted user (a tombstone met while restoring the changelog): see InterestFolder.markDeleted. */
  markDeleted(userId: string): void {
    this.folder.markDeleted(userId);
  }

  /**
   * Handles a chunk of input records: events of the three event topics, and deletion requests of
   * the deletions topic, in record order (runs of each are handled one after the other); then the
   * chunk's ad feedback, if any.
   */
  async process(records: readonly InputRecord[]): Promise<ChunkResult> {
    const fb = this.o.feedback;
    if (!fb) return this.processInputs(records);
    // What the chunk served and attributed, for the changelog with its outputs (see attribution-records.ts).
    const partitions = new Set(records.map((r) => r.partition));
    if (!records.some((r) => r.topic === fb.topic)) return withAttribution(await this.processInputs(records), fb.takeRecords(partitions));
    // Feedback after the chunk's events: an impression may name an output served in this chunk.
    const rest = records.filter((r) => r.topic !== fb.topic);
    const result = rest.length > 0 ? await this.processInputs(rest) : emptyResult();
    const deadLetters = [...result.deadLetters];
    const examples = fb.attribute(records.filter((r) => r.topic === fb.topic), this.clock(), (source, err) => void deadLetters.push(this.deadLetter(source, err)), this.o.appliedUpTo);
    return withAttribution({ ...result, deadLetters, examples }, fb.takeRecords(partitions));
  }

  private async processInputs(records: readonly InputRecord[]): Promise<ChunkResult> {
    const del = this.o.deletionsTopic;
    if (del === undefined || !records.some((r) => r.topic === del)) return this.processEvents(records);
    const results: ChunkResult[] = [];
    let start = 0;
    try {
      for (let i = 1; i <= records.length; i++) {
        if (i < records.length && (records[i]!.topic === del) === (records[start]!.topic === del)) continue;
        const run = records.slice(start, i);
        results.push(run[0]!.topic === del ? this.deleteUsers(run) : await this.processEvents(run));
        start = i;
      }
    } catch (err) {
      // An earlier run already changed (or deleted) users: the whole chunk is retried, so say so.
      throw results.length > 0 && !(err instanceof StateChangedError) ? new StateChangedError(err) : err;
    }
    return results.length === 1 ? results[0]! : concatResults(results);
  }

  /**
   * Scores every held user whose events wait and whose interval has passed (the runtime calls it
   * on a timer when EMIT_INTERVAL_MS > 0), or only those of `partition`. Their state changes say
   * the events went out. A user the store evicted with events waiting is due at once.
   */
  async flushDue(now: number = this.clock(), partition?: number): Promise<ChunkResult> {
    const t0 = performance.now();
    const due = this.emit.pendingDue(now, partition);
    const emissions = this.emit.take(due, now);
    const stateChanges = this.emit.settle(due, now);
    const scored = await this.score(emissions);
    const timings: StageTimings = { decode: 0, features: 0, fusion: 0, scoring: (performance.now() - t0) / 1000 };
    const flushed: ChunkResult = { scored, deadLetters: [], stateChanges, segments: [], deletions: [], timings };
    return this.o.feedback ? withAttribution(flushed, this.o.feedback.takeRecords(new Set(emissions.map((e) => e.partition)))) : flushed;
  }

  private deleteUsers(records: readonly InputRecord[]): ChunkResult {
    const deadLetters: DeadLetterOutput[] = [];
    const t0 = performance.now();
    const deletions = this.deleter.deleteUsers(records, (source, err) => void deadLetters.push(this.deadLetter(source, err)));
    for (const d of deletions) this.o.feedback?.forgetUser(d.partition, d.userId);
    const timings: StageTimings = { decode: (performance.now() - t0) / 1000, features: 0, fusion: 0, scoring: 0 };
    return { scored: [], deadLetters, stateChanges: [], segments: [], deletions, timings };
  }

  private async processEvents(records: readonly InputRecord[]): Promise<ChunkResult> {
    const deadLetters: DeadLetterOutput[] = [];
    const reject = (source: InputRecord, err: unknown): void => void deadLetters.push(this.deadLetter(source, err));

    // 1. Decode and validate.
    let t0 = performance.now();
    const { events, sources } = decodeEvents(this.o.decoder, this.o.topics, records, this.clock(), reject);
    let t1 = performance.now();
    const decode = (t1 - t0) / 1000;

    // 2. Embed: caches, then one engine request per modality (the batcher merges them across chunks).
    const embedded = await this.o.embedder.embedEvents(events);
    for (const [i, err] of embedded.failures) reject(sources[i]!, err);
    t0 = performance.now();
    const features = (t0 - t1) / 1000;

    // 3. Fuse every event that embedded (in-process, no engine trip).
    const fused: number[] = [];
    for (let i = 0; i < events.length; i++) if (!embedded.failures.has(i)) fused.push(i);
    const vectors = this.o.fuser.fuseEvents(embedded, fused);

    // From the fold on, the users' state has changed: a failure must say so (StateChangedError), so
    // that the transport restores the state before the records are handed again.
    try {
      // 4. Fold into user state, then take what the due users' outputs need. Synchronous until the ranking request.
      const now = this.clock();
      const { states, segments } = this.folder.fold({ events, sources, fused, vectors, modality: embedded.modality }, now);
      const emissions = this.emit.take(this.emit.due(states, now), now);
      const stateChanges = this.emit.settle(states, now);
      t1 = performance.now();
      const fusion = (t1 - t0) / 1000;

      // 5. Rank the due users, once each, against the active catalog.
      const scored = await this.score(emissions);
      const timings: StageTimings = { decode, features, fusion, scoring: (performance.now() - t1) / 1000 };
      return { scored, deadLetters, stateChanges, segments, deletions: [], timings };
    } catch (err) {
      throw new StateChangedError(err);
    }
  }

  /** Rank, then the outputs; if ranking fails, the users' events are pending again (and the error goes on). */
  private async score(emissions: readonly Emission[]): Promise<ScoredOutput[]> {
    if (emissions.length === 0) return [];
    let candidates: Candidate[][];
    let version: string;
    // Only where the feedback stage captures (a partition with feedback, or ATTRIBUTION_CAPTURE=always).
    const stage = this.o.feedback;
    const fb = stage && emissions.some((e) => stage.captures(e.partition)) ? stage : undefined;
    // Per user, per candidate place: the matching query row and its CTR (what the feedback stage captures).
    const rows: number[][] = fb ? emissions.map(() => []) : [];
    const ctrs: number[][] = fb ? emissions.map(() => []) : [];
    const served: ServedPair | undefined = fb
      ? (user, place, row, ctr) => {
          rows[user]![place] = row;
          ctrs[user]![place] = ctr;
        }
      : undefined;
    try {
      ({ result: candidates, version } = await this.serving.rank(() => this.o.ranker.rank(emissions.map((e) => e.query), served)));
    } catch (err) {
      this.emit.giveBack(emissions);
      throw err;
    }
    const outputs = this.emit.outputs(emissions, candidates, this.clock(), version);
    if (fb) outputs.forEach((output, u) => fb.captureServed({ partition: emissions[u]!.partition, output, query: emissions[u]!.query, rows: rows[u]!, ctrs: ctrs[u]! }));
    return outputs;
  }

  private deadLetter(source: InputRecord, err: unknown): DeadLetterOutput {
    const d = deadLetterOf(source, err, this.clock());
    if (d.reason === 'PROCESSING_FAILED') this.o.onUnexpected?.(err, source);
    return d;
  }
}

function withAttribution(result: ChunkResult, attribution: readonly AttributionRecord[]): ChunkResult {
  return attribution.length > 0 ? { ...result, attribution } : result;
}

function emptyResult(): ChunkResult {
  return { scored: [], deadLetters: [], stateChanges: [], segments: [], deletions: [], timings: { decode: 0, features: 0, fusion: 0, scoring: 0 } };
}

/** One result for a chunk handled in runs: outputs in run order, each stage's time summed. */
function concatResults(results: readonly ChunkResult[]): ChunkResult {
  const sum = (stage: keyof StageTimings): number => results.reduce((t, r) => t + r.timings[stage], 0);
  return {
    scored: results.flatMap((r) => r.scored),
    deadLetters: results.flatMap((r) => r.deadLetters),
    stateChanges: results.flatMap((r) => r.stateChanges),
    segments: results.flatMap((r) => r.segments),
    deletions: results.flatMap((r) => r.deletions),
    examples: results.flatMap((r) => r.examples ?? []),
    timings: { decode: sum('decode'), features: sum('features'), fusion: sum('fusion'), scoring: sum('scoring') },
  };
}
