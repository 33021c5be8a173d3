/**
 * Modality embeddings -> one vector in the fused space F, in-process on typed arrays: fusion is a
 * weighted sum (and, for concat, a fixed projection), too little work to be worth a round trip to
 * the inference workers.
 *
 * Strategies:
 * - concat: fused = L2norm(concat_m(w_m * x_m) @ P), P the seeded projection of
 *   src/models/fusion-projection.ts. Each modality keeps its own block, scaled by WEIGHT_*. Works
 *   with encoders that know nothing of each other (the defaults): an image vector and a click
 *   vector never share coordinates before the projection, and the projection keeps inner products
 *   approximately (Johnson-Lindenstrauss), so cross-modality terms stay near 0.
 * - average / weighted: fused = L2norm(sum_m w_m * x_m), in one space (equal weights, or
 *   WEIGHT_*). That only means something when the encoders are aligned (trained into one space,
 *   like CLIP's image and text towers); with the default encoders, coordinate i of the image
 *   vector and coordinate i of the click vector are unrelated, so their sum mixes noise into
 *   every similarity.
 *
 * Narrower modalities count as zero-padded to the widest (padding keeps inner products). The
 * norm is max(|y|, NORM_EPSILON), so a zero sum (a modality weighted 0) stays zero. The arithmetic
 * is the former ONNX graph's: each w_m * x_m rounded to float32, sums kept in float64 (the graph
 * summed in float32: results agree to float rounding, see test/unit/fusion.test.ts).
 */
import type { FusionSettings } from '../models/model-io.js';
import { concatProjection } from '../models/fusion-projection.js';
import { NORM_EPSILON } from '../models/graphs/graph-ops.js';
import { MODALITY_COUNT as M, type PerModality } from '../domain/modalities.js';
import type { EmbeddedEvents, ModalityBlocks } from './embed.js';

const EPSILON = Math.fround(NORM_EPSILON);

export class Fuser {
  /** concat only: [M * inputDim, F]. */
  private readonly projection: Float32Array | null;
  /** One item's unnormalised fused vector; reused by every item. */
  private readonly sum: Float64Array;

  constructor(
    readonly settings: FusionSettings,
    /** Encoder widths per modality. */
    private readonly dims: Readonly<PerModality<number>>,
  ) {
    if (dims.some((d) => d > settings.inputDim)) throw new Error(`fusion input width ${settings.inputDim} is narrower than an encoder (${dims.join(', ')})`);
    if (settings.strategy !== 'concat' && settings.dim !== settings.inputDim) throw new Error(`${settings.strategy} fusion keeps the encoders' width ${settings.inputDim}, got F = ${settings.dim}`);
    this.projection = settings.strategy === 'concat' ? concatProjection(M, settings.inputDim, settings.dim) : null;
    this.sum = new Float64Array(settings.dim);
  }

  get dim(): number {
    return this.settings.dim;
  }

  /** Each listed event on its own, from its modality's embedding. Returns events.length rows of F, unit norm (zero for a modality weighted 0). */
  fuseEvents(embedded: EmbeddedEvents, events: readonly number[]): Float32Array {
    const out = new Float32Array(events.length * this.dim);
    for (let r = 0; r < events.length; r++) {
      const i = events[r]!;
      const m = embedded.modality[i]!;
      this.sum.fill(0);
      this.add(m, embedded.blocks[m]!, embedded.row[i]!);
      this.normalizeInto(out, r);
    }
    return out;
  }

  /** n ads from all their modalities at once (a missing modality's rows are zero). Returns n rows of F. */
  async fuseAds(blocks: Readonly<ModalityBlocks>, n: number): Promise<Float32Array> {
    const out = new Float32Array(n * this.dim);
    for (let r = 0; r < n; r++) {
      this.sum.fill(0);
      for (let m = 0; m < M; m++) this.add(m, blocks[m]!, r);
      this.normalizeInto(out, r);
    }
    return out;
  }

  /** sum += (w_m * row `at` of modality m's block), projected for concat. */
  private add(m: number, block: Float32Array, at: number): void {
    const w = this.settings.weights[m]!;
    const width = this.dims[m]!;
    const x = at * width;
    const sum = this.sum;
    const P = this.projection;
    if (P === null) {
      for (let k = 0; k < width; k++) sum[k] += Math.fround(w * block[x + k]!);
      return;
    }
    const F = this.dim;
    for (let k = 0; k < width; k++) {
      const s = Math.fround(w * block[x + k]!);
      if (s === 0) continue;
      const p = (m * this.settings.inputDim + k) * F;
      for (let j = 0; j < F; j++) sum[j] += s * P[p + j]!;
    }
  }

  /** Row r of out = sum / max(|sum|, eps). */
  private normalizeInto(out: Float32Array, r: number): void {
    const F = this.dim;
    const sum = this.sum;
    let sq = 0;
    for (let j = 0; j < F; j++) sq += sum[j]! * sum[j]!;
    const inv = 1 / Math.max(Math.sqrt(sq), EPSILON);
    const o = r * F;
    for (let j = 0; j < F; j++) out[o + j] = sum[j]! * inv;
  }
}
