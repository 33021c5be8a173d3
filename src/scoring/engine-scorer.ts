import type { Candidate } from '../core/outputs.js';
import type { Ad } from '../ingest/events.js';
import type { Inference } from '../features/multimodal-embedder.js';
import type { AdCatalog } from './ad-catalog.js';

/** Uploads the ad matrix to the workers; the engine implements it (InferenceEngine.setResident). */
export interface ResidentInputs {
  setResident(model: string, name: string, data: Float32Array | BigInt64Array, dims: number[]): Promise<void>;
}

export interface EngineScorerOptions {
  readonly model: string;
  readonly topK: number;
  /** Catalog changes are uploaded at most this often; in between, the last snapshot is used. */
  readonly minUploadIntervalMs: number;
  /** Extra candidates asked for, to replace ads deactivated since the last upload. */
  readonly slack: number;
}

interface Snapshot {
  readonly version: number;
  /** Row -> ad, as uploaded. */
  readonly rows: Ad[];
  readonly k: number;
  readonly at: number;
}

/**
 * Top-K ads per user through the scorer model: the ad matrix lives on the inference workers as a
 * resident input, re-uploaded when the catalog changed. Uploads and scoring exclude each other (a
 * batch must never pair the new matrix with the old row-to-ad mapping), and ads that became
 * inactive since the last upload are filtered out here, so none is ever emitted.
 */
export class EngineScorer {
  private snapshot: Snapshot | undefined;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private uploading: Promise<void> | undefined;

  constructor(
    private readonly engine: Inference & ResidentInputs,
    private readonly catalog: AdCatalog,
    private readonly o: EngineScorerOptions,
  ) {}

  /** Candidates per query row (queries: n rows of the catalog's dimension), best first. */
  async score(queries: Float32Array, n: number): Promise<Candidate[][]> {
    if (n === 0) return [];
    const snap = await this.acquire();
    try {
      if (snap.k === 0) return Array.from({ length: n }, () => []);
      const res = await this.engine.infer(this.o.model, { items: n, inputs: { users: queries } });
      const scores = res.outputs.scores as Float32Array;
      const indices = res.outputs.indices as BigInt64Array;
      const out: Candidate[][] = [];
      for (let q = 0; q < n; q++) {
        const list: Candidate[] = [];
        for (let j = 0; j < snap.k && list.length < this.o.topK; j++) {
          const ad = snap.rows[Number(indices[q * snap.k + j])]!;
          if (!this.catalog.get(ad.adId)?.active) continue; // changed since the upload
          list.push({ adId: ad.adId, score: scores[q * snap.k + j]!, categoryId: ad.categoryId });
        }
        out.push(list);
      }
      return out;
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /**
   * A snapshot fresh enough to score with, counted in flight. The check and the count happen with no
   * await in between, so an upload cannot start between them.
   */
  private async acquire(): Promise<Snapshot> {
    for (;;) {
      while (this.uploading) await this.uploading;
      const snap = this.snapshot;
      if (snap && (snap.version === this.catalog.version || Date.now() - snap.at < this.o.minUploadIntervalMs)) {
        this.inFlight++;
        return snap;
      }
      this.uploading = this.upload().finally(() => (this.uploading = undefined));
    }
  }

  private async upload(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.drained = undefined;
    const version = this.catalog.version;
    const rows = this.catalog.rowSnapshot();
    const k = Math.min(this.o.topK + this.o.slack, rows.length);
    if (rows.length > 0) {
      const matrix = this.catalog.embeddings().slice();
      await this.engine.setResident(this.o.model, 'ads', matrix, [rows.length, this.catalog.dim]);
      await this.engine.setResident(this.o.model, 'k', BigInt64Array.of(BigInt(k)), [1]);
    }
    this.snapshot = { version, rows, k, at: Date.now() };
  }
}
