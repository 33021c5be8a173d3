/**
 * The CTR MLP the processor runs (src/models/graphs/ctr.ts), with its gradient:
 * x = [u, a, u*a] (3F), z1 = x W1 + b1, h = relu(z1), z = h w2 + b2, p = sigmoid(z); loss = mean
 * binary cross-entropy. Written here on Float32Arrays rather than taken from a JS training library:
 * the model is one small fixed graph; what such libraries bring (autodiff over any graph, GPU
 * backends) would add a large native or WebGL dependency to a Node service that already has
 * onnxruntime for inference, and would still need our own ONNX export. A finite-difference check
 * (test/unit/ctr-training.test.ts) guards the gradient.
 *
 * Inputs are standardised per feature while training (x' = (x - shift) * scale): the u*a block is
 * about 1/sqrt(F) the size of the u and a blocks, and one learning rate suits all features only
 * after that. toWeights() folds the standardisation back into W1 and b1, so the graph written is
 * exactly the processor's.
 */
import type { CtrWeights } from '../../models/graphs/ctr.js';
import type { ExampleSet } from './examples.js';

export class CtrMlp {
  readonly dim: number;
  readonly hidden: number;
  readonly inputWidth: number;
  /** All parameters in one array (w1, b1, w2, b2), so the optimiser and the best-epoch copy are single loops. */
  readonly params: Float32Array;
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
  /** Per input feature: x' = (x - shift) * scale. */
  readonly shift: Float32Array;
  readonly scale: Float32Array;
  // Per-batch scratch, grown once to the largest batch seen.
  private x = new Float32Array(0);
  private z1 = new Float32Array(0);
  private logits = new Float64Array(0);
  private readonly dz1: Float64Array;

  constructor(dim: number, hidden: number) {
    this.dim = dim;
    this.hidden = hidden;
    this.inputWidth = 3 * dim;
    const n1 = this.inputWidth * hidden;
    this.params = new Float32Array(n1 + 2 * hidden + 1);
    this.w1 = this.params.subarray(0, n1);
    this.b1 = this.params.subarray(n1, n1 + hidden);
    this.w2 = this.params.subarray(n1 + hidden, n1 + 2 * hidden);
    this.b2 = this.params.subarray(n1 + 2 * hidden);
    this.shift = new Float32Array(this.inputWidth);
    this.scale = new Float32Array(this.inputWidth).fill(1);
    this.dz1 = new Float64Array(hidden);
  }

  /** An MLP holding given (ONNX-layout) weights, inputs not standardised: the hand-set model, or a written one. */
  static fromWeights(w: CtrWeights): CtrMlp {
    const m = new CtrMlp(w.dim, w.hidden);
    m.w1.set(w.w1);
    m.b1.set(w.b1);
    m.w2.set(w.w2);
    m.b2.set(w.b2);
    return m;
  }

  /** He-initialised W1, small w2, b2 at the base rate's logit: training starts from "every ad at the average CTR". */
  initialise(gauss: () => number, baseRate: number): void {
    const s1 = Math.sqrt(2 / this.inputWidth);
    for (let i = 0; i < this.w1.length; i++) this.w1[i] = gauss() * s1;
    this.b1.fill(0);
    const s2 = Math.sqrt(1 / this.hidden);
    for (let j = 0; j < this.hidden; j++) this.w2[j] = gauss() * s2 * 0.1;
    const p = Math.min(1 - 1e-6, Math.max(1e-6, baseRate));
    this.b2[0] = Math.log(p / (1 - p));
  }

  /** Standardises each input feature over `set` (mean 0, std 1; a constant feature keeps scale 1). */
  fitStandardisation(set: ExampleSet): void {
    const W = this.inputWidth;
    const sum = new Float64Array(W);
    const sq = new Float64Array(W);
    const x = new Float32Array(W);
    for (let i = 0; i < set.size; i++) {
      this.featuresInto(set, i, x, 0, false);
      for (let k = 0; k < W; k++) {
        sum[k] += x[k]!;
        sq[k] += x[k]! * x[k]!;
      }
    }
    for (let k = 0; k < W; k++) {
      const mean = sum[k]! / set.size;
      const sd = Math.sqrt(Math.max(0, sq[k]! / set.size - mean * mean));
      this.shift[k] = mean;
      this.scale[k] = sd > 1e-12 ? 1 / sd : 1;
    }
  }

  /**
   * BCE of the examples `rows[from..to)` of `set` (rows null: the examples from..to themselves);
   * with `grad` (same layout as params), adds the gradient of the batch's mean loss into it.
   * Returns the summed (not mean) loss.
   */
  lossAndGradient(set: ExampleSet, rows: ArrayLike<number> | null, from: number, to: number, grad: Float32Array | null): number {
    const B = to - from;
    const W = this.inputWidth;
    const H = this.hidden;
    this.ensureScratch(B);
    const { x, z1, logits, dz1, w2 } = this;
    const rowOf = (i: number): number => (rows ? rows[from + i]! : from + i);
    for (let i = 0; i < B; i++) this.featuresInto(set, rowOf(i), x, i * W, true);
    this.hiddenLayer(x, B, z1);
    let loss = 0;
    for (let i = 0; i < B; i++) {
      let z = this.b2[0]!;
      for (let j = 0; j < H; j++) {
        const h = z1[i * H + j]!;
        if (h > 0) z += h * w2[j]!;
      }
      logits[i] = z;
      const y = set.labels[rowOf(i)]!;
      // log(1 + e^-|z|) + max(z, 0) - y z: BCE from the logit without overflow.
      loss += Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - y * z;
    }
    if (!grad) return loss;
    const n1 = W * H;
    const gw1 = grad.subarray(0, n1);
    const gb1 = grad.subarray(n1, n1 + H);
    const gw2 = grad.subarray(n1 + H, n1 + 2 * H);
    const gb2 = grad.subarray(n1 + 2 * H);
    for (let i = 0; i < B; i++) {
      const y = set.labels[rowOf(i)]!;
      const dz = (sigmoid(logits[i]!) - y) / B;
      gb2[0] += dz;
      for (let j = 0; j < H; j++) {
        const h = z1[i * H + j]!;
        if (h > 0) {
          gw2[j] += dz * h;
          dz1[j] = dz * w2[j]!;
          gb1[j] += dz1[j]!;
        } else dz1[j] = 0;
      }
      const xo = i * W;
      for (let k = 0; k < W; k++) {
        const xk = x[xo + k]!;
        if (xk === 0) continue;
        const row = k * H;
        for (let j = 0; j < H; j++) gw1[row + j] += xk * dz1[j]!;
      }
    }
    return loss;
  }

  /** Predicted click probabilities for every example of `set`, into `out` (length set.size). */
  predict(set: ExampleSet, out: Float64Array, batch = 512): void {
    for (let from = 0; from < set.size; from += batch) {
      const to = Math.min(set.size, from + batch);
      this.lossAndGradient(set, null, from, to, null);
      for (let i = from; i < to; i++) out[i] = sigmoid(this.logits[i - from]!);
    }
  }

  /** The processor's weights: the standardisation folded into W1 and b1 (x' W1 = x (scale * W1) - (shift * scale) W1). */
  toWeights(): CtrWeights {
    const W = this.inputWidth;
    const H = this.hidden;
    const w1 = new Float32Array(W * H);
    const b1 = Float32Array.from(this.b1);
    const acc = new Float64Array(H);
    for (let j = 0; j < H; j++) acc[j] = this.b1[j]!;
    for (let k = 0; k < W; k++) {
      const s = this.scale[k]!;
      const m = this.shift[k]!;
      for (let j = 0; j < H; j++) {
        const w = this.w1[k * H + j]! * s;
        w1[k * H + j] = w;
        acc[j] -= m * w;
      }
    }
    for (let j = 0; j < H; j++) b1[j] = acc[j]!;
    return { dim: this.dim, hidden: H, w1, b1, w2: Float32Array.from(this.w2), b2: Float32Array.from(this.b2) };
  }

  /** x = [u, a, u*a] of example `row`, standardised when `standardise`, into out[at..at+3F). */
  private featuresInto(set: ExampleSet, row: number, out: Float32Array, at: number, standardise: boolean): void {
    const d = this.dim;
    const o = row * d;
    for (let k = 0; k < d; k++) {
      const u = set.interests[o + k]!;
      const a = set.ads[o + k]!;
      out[at + k] = u;
      out[at + d + k] = a;
      out[at + 2 * d + k] = u * a;
    }
    if (!standardise) return;
    for (let k = 0; k < this.inputWidth; k++) out[at + k] = (out[at + k]! - this.shift[k]!) * this.scale[k]!;
  }

  /** z1 = x W1 + b1, then ReLU in place (the backward pass reads h > 0 as the ReLU's gate). */
  private hiddenLayer(x: Float32Array, B: number, z1: Float32Array): void {
    const W = this.inputWidth;
    const H = this.hidden;
    const { w1, b1 } = this;
    for (let i = 0; i < B; i++) {
      const zo = i * H;
      z1.set(b1, zo);
      const xo = i * W;
      for (let k = 0; k < W; k++) {
        const xk = x[xo + k]!;
        if (xk === 0) continue;
        const row = k * H;
        for (let j = 0; j < H; j++) z1[zo + j] += xk * w1[row + j]!;
      }
      for (let j = 0; j < H; j++) if (z1[zo + j]! < 0) z1[zo + j] = 0;
    }
  }

  private ensureScratch(B: number): void {
    if (this.logits.length >= B) return;
    this.x = new Float32Array(B * this.inputWidth);
    this.z1 = new Float32Array(B * this.hidden);
    this.logits = new Float64Array(B);
  }
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}
