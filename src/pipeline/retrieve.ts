import type { Ad } from '../domain/events.js';
import { inferTyped, type Inference, type TensorData } from '../inference/types.js';
import { SCORER_TENSORS } from '../models/graphs/tensors.js';
import type { ScorerIo } from '../models/model-io.js';
import type { AdCatalog } from '../catalog/ad-catalog.js';
import { ReadWriteGate } from '../util/read-write-gate.js';

/** Uploads the ad matrix to the workers; the engine implements it (InferenceEngine.setResident). */
export interface ResidentInputs {
  setResident(model: string, name: string, data: TensorData, dims: number[]): Promise<void>;
}

export interface EngineScorerOptions {
  /** The scorer and its CTR re-rank, as one request (PreparedModels.scorer). */
  readonly io: ScorerIo;
  /**
   * Ads asked for per query row: what the caller keeps plus slack, which also replaces ads
   * deactivated since the last upload.
   */
  readonly perRow: number;
  /** Catalog changes are uploaded at most this often; in between, the last snapshot is used. */
  readonly minUploadIntervalMs: number;
}

/** One ad found for a query row. */
export interface Match {
  readonly ad: Ad;
  /** Inner product with the query (a cosine for unit vectors). */
  readonly similarity: number;
  /** The CTR model's prediction for this (query row, ad) pair, from the same request. */
  readonly ctr: number;
}

interface Snapshot {
  readonly version: number;
  /** Row -> ad, as uploaded. */
  readonly rows: Ad[];
  /** The uploaded ad matrix (a copy of the catalog's). */
  readonly matrix: Float32Array;
  readonly k: number;
  readonly at: number;
}

/**
 * Top-k ads per query row through the scorer model, each with its CTR prediction for that row (the
 * scorer's spec runs the CTR model on its top-k in the worker: one trip). The ad matrix lives on the inference workers as a
 * resident input, re-uploaded when the catalog changed. Uploads and scoring exclude each other (a
 * batch must never pair the new matrix with the old row-to-ad mapping), and ads that became
 * inactive since the last upload are filtered out here, so none is ever emitted.
 */
export class EngineScorer {
  private snapshot: Snapshot | undefined;
  /** Uploads are the writes: a batch never pairs the new matrix with the old row table. */
  private readonly gate = new ReadWriteGate();
  constructor(
    private readonly engine: Inference & ResidentInputs,
    private readonly catalog: AdCatalog,
    private readonly o: EngineScorerOptions,
  ) {}

  /** The best active ads per query row (queries: n rows of the catalog's dimension), best first. */
  async score(queries: Float32Array, n: number): Promise<Match[][]> {
    if (n === 0) return [];
    const snap = await this.acquire();
    try {
      if (snap.k === 0) return Array.from({ length: n }, () => []);
      const { scores, indices, ctr } = await inferTyped(this.engine, this.o.io, { items: n, inputs: { users: queries } });
      const out: Match[][] = [];
      for (let q = 0; q < n; q++) {
        const list: Match[] = [];
        for (let j = 0; j < snap.k; j++) {
          const row = Number(indices[q * snap.k + j]);
          const ad = snap.rows[row]!;
          if (!this.catalog.get(ad.adId)?.active) continue; // changed since the upload
          list.push({ ad, similarity: scores[q * snap.k + j]!, ctr: ctr[q * snap.k + j]! });
        }
        out.push(list);
      }
      return out;
    } finally {
      this.gate.leave();
    }
  }

  /** A snapshot fresh enough to score with, entered as a reader of the gate (uploaded first if due). */
  private async acquire(): Promise<Snapshot> {
    const fresh = (): boolean => {
      const snap = this.snapshot;
      return snap !== undefined && (snap.version === this.catalog.version || Date.now() - snap.at < this.o.minUploadIntervalMs);
    };
    await this.gate.enter(fresh, () => this.upload());
    return this.snapshot!;
  }

  private async upload(): Promise<void> {
    const version = this.catalog.version;
    const rows = this.catalog.rowSnapshot();
    const k = Math.min(this.o.perRow, rows.length);
    const matrix = this.catalog.embeddings().slice();
    if (rows.length > 0) {
      const { ads, k: kInput } = SCORER_TENSORS.resident;
      await this.engine.setResident(this.o.io.model, ads.name, matrix, [rows.length, this.catalog.dim]);
      await this.engine.setResident(this.o.io.model, kInput.name, BigInt64Array.of(BigInt(k)), [1]);
    }
    this.snapshot = { version, rows, matrix, k, at: Date.now() };
  }
}
