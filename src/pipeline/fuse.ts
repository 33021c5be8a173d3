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
 * summed in float32: results agree to float rounding, see test/unit/fusion.test.ts). For concat,
 * an ad's modalities are projected apart and their projections added in modality order, so a
 * projection kept by the memo (projection-memo.ts) and one computed again give the same bits.
 */
import type { FusionSettings } from '../models/model-io.js';
import { concatProjection } from '../models/fusion-projection.js';
import { NORM_EPSILON } from '../models/graphs/graph-ops.js';
import { MODALITY_COUNT as M, type PerModality } from '../domain/modalities.js';
import type { EmbeddedEvents, ModalityBlocks } from './embed.js';
import { ProjectionMemo } from './projection-memo.js';

const EPSILON = Math.fround(NORM_EPSILON);
/** Rows kept per modality by the projection memo unless told otherwise (FUSION_MEMO_ROWS). */
export const DEFAULT_MEMO_ROWS = 4096;

export class Fuser {
  /**
   * concat only: the projection [M * inputDim, F] transposed, per modality [F, inputDim], so that
   * each fused coordinate is one contiguous dot product kept in a register (row-major, the loop
   * over F loaded and stored the float64 sum for every input coordinate: 60-80 us per event).
   */
  private readonly projectionT: Float32Array | null;
  /** One item's unnormalised fused vector; reused by every item. */
  private readonly sum: Float64Array;
  /** One row's nonzero scaled values w_m * x_k and their k, in k order; reused by every row. */
  private readonly scaled: Float64Array;
  private readonly nonzero: Int32Array;
  /** concat only: per modality, the projections of its recent rows. */
  private readonly memos: readonly ProjectionMemo[] | null;
  /** concat only: one modality's projection of one ad's row; reused by every row. */
  private readonly part: Float64Array;

  constructor(
    readonly settings: FusionSettings,
    /** Encoder widths per modality. */
    private readonly dims: Readonly<PerModality<number>>,
    /** Rows the projection memo keeps per modality (concat; 0: none). */
    memoRows = DEFAULT_MEMO_ROWS,
  ) {
    if (dims.some((d) => d > settings.inputDim)) throw new Error(`fusion input width ${settings.inputDim} is narrower than an encoder (${dims.join(', ')})`);
    if (settings.strategy !== 'concat' && settings.dim !== settings.inputDim) throw new Error(`${settings.strategy} fusion keeps the encoders' width ${settings.inputDim}, got F = ${settings.dim}`);
    this.projectionT = settings.strategy === 'concat' ? transposeBlocks(concatProjection(M, settings.inputDim, settings.dim), M, settings.inputDim, settings.dim) : null;
    this.sum = new Float64Array(settings.dim);
    this.scaled = new Float64Array(settings.inputDim);
    this.nonzero = new Int32Array(settings.inputDim);
    this.memos = this.projectionT ? dims.map((d) => new ProjectionMemo(d, settings.dim, memoRows)) : null;
    this.part = new Float64Array(settings.dim);
  }

  get dim(): number {
    return this.settings.dim;
  }

  /** Each listed event on its own, from its modality's embedding. Returns events.length rows of F, unit norm (zero for a modality weighted 0). */
  fuseEvents(embedded: EmbeddedEvents, events: readonly number[]): Float32Array {
    const out = new Float32Array(events.length * this.dim);
    const bits = this.memos ? bitsOf(embedded.blocks) : null;
    for (let r = 0; r < events.length; r++) {
      const i = events[r]!;
      const m = embedded.modality[i]!;
      if (bits) this.project(m, embedded.blocks[m]!, bits[m]!, embedded.row[i]!, this.sum);
      else {
        this.sum.fill(0);
        this.add(m, embedded.blocks[m]!, embedded.row[i]!, this.sum);
      }
      this.normalizeInto(out, r);
    }
    return out;
  }

  /** n ads from all their modalities at once (a missing modality's rows are zero). Returns n rows of F. */
  async fuseAds(blocks: Readonly<ModalityBlocks>, n: number): Promise<Float32Array> {
    const out = new Float32Array(n * this.dim);
    const bits = this.memos ? bitsOf(blocks) : null;
    const { sum, part } = this;
    const F = this.dim;
    for (let r = 0; r < n; r++) {
      sum.fill(0);
      for (let m = 0; m < M; m++) {
        if (!bits) {
          this.add(m, blocks[m]!, r, sum);
          continue;
        }
        this.project(m, blocks[m]!, bits[m]!, r, part);
        for (let j = 0; j < F; j++) sum[j] += part[j]!;
      }
      this.normalizeInto(out, r);
    }
    return out;
  }

  /** into = the concat projection of row `at` of modality m's block (weighted), from the memo when it holds that row. */
  private project(m: number, block: Float32Array, bits: Int32Array, at: number, into: Float64Array): void {
    const memo = this.memos![m]!;
    const x = at * this.dims[m]!;
    if (memo.read(bits, x, into)) return;
    into.fill(0);
    this.add(m, block, at, into);
    memo.keep(bits, x, into);
  }

  /**
   * sum += (w_m * row `at` of modality m's block), projected for concat. Each sum[j] gets the same
   * terms s_k * P[k][j] added in the same order (k ascending, zero terms skipped) as a loop over k
   * outside would add them: the results are bit for bit those of the row-major loop.
   */
  private add(m: number, block: Float32Array, at: number, sum: Float64Array): void {
    const w = this.settings.weights[m]!;
    const width = this.dims[m]!;
    const x = at * width;
    const PT = this.projectionT;
    if (PT === null) {
      for (let k = 0; k < width; k++) sum[k] += Math.fround(w * block[x + k]!);
      return;
    }
    const { scaled, nonzero } = this;
    let n = 0;
    for (let k = 0; k < width; k++) {
      const s = Math.fround(w * block[x + k]!);
      if (s === 0) continue;
      scaled[n] = s;
      nonzero[n++] = k;
    }
    const F = this.dim;
    const inputDim = this.settings.inputDim;
    const base = m * F * inputDim;
    let j = 0;
    // Four coordinates at a time: each keeps its own sum in its own order; the scaled value is loaded once for the four.
    for (; j + 4 <= F; j += 4) {
      const r0 = base + j * inputDim;
      const r1 = r0 + inputDim;
      const r2 = r1 + inputDim;
      const r3 = r2 + inputDim;
      let a0 = sum[j]!;
      let a1 = sum[j + 1]!;
      let a2 = sum[j + 2]!;
      let a3 = sum[j + 3]!;
      for (let t = 0; t < n; t++) {
        const k = nonzero[t]!;
        const v = scaled[t]!;
        a0 += v * PT[r0 + k]!;
        a1 += v * PT[r1 + k]!;
        a2 += v * PT[r2 + k]!;
        a3 += v * PT[r3 + k]!;
      }
      sum[j] = a0;
      sum[j + 1] = a1;
      sum[j + 2] = a2;
      sum[j + 3] = a3;
    }
    for (; j < F; j++) {
      const row = base + j * inputDim;
      let acc = sum[j]!;
      for (let t = 0; t < n; t++) acc += scaled[t]! * PT[row + nonzero[t]!]!;
      sum[j] = acc;
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

/** Each block's values as their bits (views, no copy), what the memo keys rows by. */
function bitsOf(blocks: Readonly<ModalityBlocks>): Int32Array[] {
  return blocks.map((b) => new Int32Array(b.buffer, b.byteOffset, b.length));
}

/** [M * inputDim, F] row-major -> per modality m, [F, inputDim] (block m at m * F * inputDim). */
function transposeBlocks(P: Float32Array, modalities: number, inputDim: number, F: number): Float32Array {
  const T = new Float32Array(P.length);
  for (let m = 0; m < modalities; m++) {
    for (let k = 0; k < inputDim; k++) {
      const from = (m * inputDim + k) * F;
      for (let j = 0; j < F; j++) T[m * F * inputDim + j * inputDim + k] = P[from + j]!;
    }
  }
  return T;
}
