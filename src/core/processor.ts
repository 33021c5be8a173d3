import { RejectedRecordError, errorMessage, type ReasonCode } from '../errors.js';
import { hash32 } from '../features/feature-hasher.js';
import type { MultimodalEmbedder } from '../features/multimodal-embedder.js';
import type { EventDecoder } from '../ingest/event-decoder.js';
import type { ClickAction, EventKind, InputRecord, UserEvent } from '../ingest/events.js';
import type { EngineScorer } from '../scoring/engine-scorer.js';
import { applyEvent } from '../state/user-interest.js';
import type { UserStateStore } from '../state/user-state-store.js';
import type { DeadLetterOutput, ProcessResult, ScoredOutput } from './outputs.js';

/** How strongly each action moves a user's interest (stronger intent, larger weight). */
export const ACTION_WEIGHT: Readonly<Record<ClickAction, number>> = { VIEW: 1, CLICK: 2, ADD_TO_CART: 3, PURCHASE: 4 };

export interface ProcessorOptions {
  readonly decoder: EventDecoder;
  readonly embedder: MultimodalEmbedder;
  readonly scorer: EngineScorer;
  readonly users: UserStateStore;
  /** Per modality [image, text, click]: its share in the fused interest used for scoring. */
  readonly modalityWeights: readonly [number, number, number];
  /** Identifies the models and fusion that produced the scores. */
  readonly modelVersion: string;
  /** Input topic -> the kind of event it carries. */
  readonly topics: ReadonlyMap<string, EventKind>;
  readonly halfLifeMs: number;
  readonly clock?: () => number;
  /** Told of errors that are not the record's fault (bugs); the record is dead-lettered anyway. */
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
}

/** Timings of one process() call, in seconds, for the stage-latency metrics. */
export interface StageTimings {
  decode: number;
  features: number;
  fusion: number;
  scoring: number;
}

const REVIEW_WEIGHT_LIKED = 1.5;
const REVIEW_WEIGHT_DISLIKED = 0.5;
const IMAGE_VIEW_WEIGHT = 1;

/**
 * The transport-agnostic core: input records and the state it owns in, outputs out. It knows
 * nothing of Kafka; adapters feed it records and deliver what it returns (see runtime/).
 *
 * Every record of a batch comes back either as a dead letter or inside the `eventIds` of the one
 * scored output its user gets for the batch, which is what "nothing lost" is checked against.
 */
export class Processor {
  readonly timings: StageTimings = { decode: 0, features: 0, fusion: 0, scoring: 0 };
  private readonly clock: () => number;
  private readonly dim: number;

  constructor(private readonly o: ProcessorOptions) {
    this.clock = o.clock ?? Date.now;
    this.dim = o.embedder.totalDim;
    if (o.users.dim !== this.dim) throw new Error(`dimension mismatch: embeddings ${this.dim}, user state ${o.users.dim}`);
  }

  get modelVersion(): string {
    return this.o.modelVersion;
  }

  async process(records: readonly InputRecord[]): Promise<ProcessResult> {
    const deadLetters: DeadLetterOutput[] = [];
    const reject = (source: InputRecord, err: unknown): void => {
      const reason: ReasonCode = err instanceof RejectedRecordError ? err.reason : 'PROCESSING_FAILED';
      if (reason === 'PROCESSING_FAILED') this.o.onUnexpected?.(err, source);
      deadLetters.push({ source, reason, message: errorMessage(err), failedAt: this.clock() });
    };

    // 1. Decode and validate.
    let t0 = performance.now();
    const now = this.clock();
    const events: UserEvent[] = [];
    const sources: InputRecord[] = [];
    for (const r of records) {
      const kind = this.o.topics.get(r.topic);
      if (!kind) throw new Error(`record from topic ${r.topic}, which is not an input topic`);
      try {
        events.push(this.o.decoder.decodeEvent(kind, r, now));
        sources.push(r);
      } catch (err) {
        reject(r, err);
      }
    }
    let t1 = performance.now();
    this.timings.decode = (t1 - t0) / 1000;

    // 2. Embed: caches, then one engine request per modality (the batcher merges them across chunks).
    const embedded = await this.o.embedder.embedEvents(events);
    for (const [i, err] of embedded.failures) reject(sources[i]!, err);
    t0 = performance.now();
    this.timings.features = (t0 - t1) / 1000;

    // 3. Fold into user state in record order (per partition, that is the user's event order).
    const touched = new Map<string, { eventIds: string[]; latest: number }>();
    const { dims, offsets } = this.o.embedder;
    for (let i = 0; i < events.length; i++) {
      if (embedded.failures.has(i)) continue;
      const e = events[i]!;
      const m = embedded.modality[i]!;
      const d = dims[m]!;
      applyEvent(this.o.users.getOrCreate(e.userId), embedded.blocks[m]!, embedded.row[i]! * d, eventWeight(e), e.eventTime, this.o.halfLifeMs, offsets[m]!, d);
      const t = touched.get(e.userId);
      if (t) {
        t.eventIds.push(e.eventId);
        if (e.eventTime > t.latest) t.latest = e.eventTime;
      } else {
        touched.set(e.userId, { eventIds: [e.eventId], latest: e.eventTime });
      }
    }
    t1 = performance.now();
    this.timings.fusion = (t1 - t0) / 1000;

    // 4. Score each touched user once against the active catalog.
    const scored = await this.score(touched);
    this.timings.scoring = (performance.now() - t1) / 1000;
    return { scored, deadLetters };
  }

  private async score(touched: Map<string, { eventIds: string[]; latest: number }>): Promise<ScoredOutput[]> {
    const n = touched.size;
    if (n === 0) return [];
    const dim = this.dim;
    const queries = new Float32Array(n * dim);
    const userIds = [...touched.keys()];
    userIds.forEach((userId, q) => this.fuse(this.o.users.getOrCreate(userId).vector, queries, q * dim));
    const candidates = await this.o.scorer.score(queries, n);
    const processingTime = this.clock();
    return userIds.map((userId, u) => {
      const t = touched.get(userId)!;
      return {
        outputId: outputId(userId, t.eventIds),
        userId,
        candidates: candidates[u]!,
        modelVersion: this.modelVersion,
        triggerEventTime: t.latest,
        processingTime,
        eventIds: t.eventIds,
      };
    });
  }

  /**
   * The scoring query: each modality block of the interest normalised and weighted, then the whole
   * normalised. Against ads whose blocks are unit-norm, the score is the weighted mean of the
   * per-modality cosines over the modalities this user has touched.
   */
  private fuse(interest: Float32Array, out: Float32Array, offset: number): void {
    const { dims, offsets } = this.o.embedder;
    let total = 0;
    for (let m = 0; m < 3; m++) {
      const o = offsets[m]!;
      const d = dims[m]!;
      let norm = 0;
      for (let i = 0; i < d; i++) norm += interest[o + i]! * interest[o + i]!;
      if (norm === 0) continue;
      const w = this.o.modalityWeights[m]! / Math.sqrt(norm);
      for (let i = 0; i < d; i++) out[offset + o + i] = interest[o + i]! * w;
      total += this.o.modalityWeights[m]! * this.o.modalityWeights[m]!;
    }
    if (total === 0) return;
    const inv = 1 / Math.sqrt(total);
    for (let i = 0; i < this.dim; i++) out[offset + i]! *= inv;
  }
}

function eventWeight(e: UserEvent): number {
  switch (e.kind) {
    case 'click':
      return ACTION_WEIGHT[e.action];
    case 'review':
      return e.rating >= 3 ? REVIEW_WEIGHT_LIKED : REVIEW_WEIGHT_DISLIKED;
    case 'image':
      return IMAGE_VIEW_WEIGHT;
  }
}

/** Same user and same events give the same id, so a re-delivered output can be recognised. */
function outputId(userId: string, eventIds: readonly string[]): string {
  const joined = `${userId}\u0000${eventIds.join('\u0000')}`;
  return hash32(joined, 0x9e3779b9).toString(16).padStart(8, '0') + hash32(joined, 0x85ebca6b).toString(16).padStart(8, '0');
}
