import { RejectedRecordError, errorMessage, type ReasonCode } from '../errors.js';
import { hash32 } from '../features/feature-hasher.js';
import { ACTION_WEIGHT, type HashedFeaturizer } from '../features/featurizer.js';
import type { ImageFeatures } from '../features/image-features.js';
import type { EventDecoder } from '../ingest/event-decoder.js';
import type { EventKind, InputRecord, UserEvent } from '../ingest/events.js';
import type { AdCatalog } from '../scoring/ad-catalog.js';
import { topKInnerProduct } from '../scoring/top-k.js';
import { applyEvent } from '../state/user-interest.js';
import type { UserStateStore } from '../state/user-state-store.js';
import type { Candidate, DeadLetterOutput, ProcessResult, ScoredOutput } from './outputs.js';

export interface ProcessorOptions {
  readonly decoder: EventDecoder;
  readonly featurizer: HashedFeaturizer;
  readonly images: ImageFeatures;
  readonly users: UserStateStore;
  readonly catalog: AdCatalog;
  /** Input topic -> the kind of event it carries. */
  readonly topics: ReadonlyMap<string, EventKind>;
  readonly halfLifeMs: number;
  readonly topK: number;
  readonly clock?: () => number;
  /** Told of errors that are not the record's fault (bugs); the record is dead-lettered anyway. */
  readonly onUnexpected?: (err: unknown, source: InputRecord) => void;
}

/** Timings of one process() call, in seconds, for the stage-latency metrics. */
export interface StageTimings {
  decode: number;
  features: number;
  state: number;
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
  readonly timings: StageTimings = { decode: 0, features: 0, state: 0, scoring: 0 };
  private readonly clock: () => number;
  private readonly dim: number;

  constructor(private readonly o: ProcessorOptions) {
    this.clock = o.clock ?? Date.now;
    this.dim = o.featurizer.dim;
    if (o.users.dim !== this.dim || o.catalog.dim !== this.dim) {
      throw new Error(`dimension mismatch: featurizer ${this.dim}, users ${o.users.dim}, catalog ${o.catalog.dim}`);
    }
  }

  get modelVersion(): string {
    return this.o.featurizer.modelVersion;
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

    // 2. Embed every event into one packed matrix; images decode concurrently.
    const dim = this.dim;
    const embeddings = new Float32Array(events.length * dim);
    const ok = new Uint8Array(events.length).fill(1);
    await Promise.all(
      events.map(async (e, i) => {
        try {
          await this.embed(e, embeddings, i * dim);
        } catch (err) {
          ok[i] = 0;
          reject(sources[i]!, err);
        }
      }),
    );
    t0 = performance.now();
    this.timings.features = (t0 - t1) / 1000;

    // 3. Fold into user state in record order (per partition, that is the user's event order).
    const touched = new Map<string, { eventIds: string[]; latest: number }>();
    for (let i = 0; i < events.length; i++) {
      if (!ok[i]) continue;
      const e = events[i]!;
      applyEvent(this.o.users.getOrCreate(e.userId), embeddings, i * dim, eventWeight(e), e.eventTime, this.o.halfLifeMs);
      const t = touched.get(e.userId);
      if (t) {
        t.eventIds.push(e.eventId);
        if (e.eventTime > t.latest) t.latest = e.eventTime;
      } else {
        touched.set(e.userId, { eventIds: [e.eventId], latest: e.eventTime });
      }
    }
    t1 = performance.now();
    this.timings.state = (t1 - t0) / 1000;

    // 4. Score each touched user once against the active catalog.
    const scored = this.score(touched);
    this.timings.scoring = (performance.now() - t1) / 1000;
    return { scored, deadLetters };
  }

  private async embed(e: UserEvent, out: Float32Array, offset: number): Promise<void> {
    const f = this.o.featurizer;
    switch (e.kind) {
      case 'click':
        f.click(e.itemId, e.categoryId, out, offset);
        return;
      case 'review':
        f.text(e.text, e.categoryId, out, offset);
        return;
      case 'image': {
        const sig = await this.o.images.signature(e.imageId, e.image);
        f.image(sig, e.categoryId, out, offset);
        return;
      }
    }
  }

  private score(touched: Map<string, { eventIds: string[]; latest: number }>): ScoredOutput[] {
    const dim = this.dim;
    const n = touched.size;
    if (n === 0) return [];
    const queries = new Float32Array(n * dim);
    const userIds: string[] = [];
    let q = 0;
    for (const userId of touched.keys()) {
      const v = this.o.users.getOrCreate(userId).vector;
      let norm = 0;
      for (let i = 0; i < dim; i++) norm += v[i]! * v[i]!;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let i = 0; i < dim; i++) queries[q * dim + i] = v[i]! * inv;
      userIds.push(userId);
      q++;
    }
    const catalog = this.o.catalog;
    const k = Math.min(this.o.topK, catalog.activeCount);
    const top = k > 0 ? topKInnerProduct(queries, n, catalog.embeddings(), catalog.activeCount, dim, k) : null;
    const processingTime = this.clock();
    return userIds.map((userId, u) => {
      const t = touched.get(userId)!;
      const candidates: Candidate[] = [];
      for (let j = 0; top && j < k; j++) {
        const row = top.rows[u * k + j]!;
        if (row < 0) break;
        const ad = catalog.adAt(row);
        candidates.push({ adId: ad.adId, score: top.scores[u * k + j]!, categoryId: ad.categoryId });
      }
      return {
        outputId: outputId(userId, t.eventIds),
        userId,
        candidates,
        modelVersion: this.modelVersion,
        triggerEventTime: t.latest,
        processingTime,
        eventIds: t.eventIds,
      };
    });
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
