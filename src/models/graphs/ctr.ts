/**
 * The CTR model: predicted click-through rate of an ad for one user interest.
 *
 * user [batch, dim] (an interest, unit norm), ad [batch, dim] (unit norm)
 *   -> x = [u, a, u*a] -> Gemm -> Relu -> Gemm -> Sigmoid -> ctr [batch, 1].
 *
 * The default's weights are set by hand, and plainly so: every hidden unit reads
 * sum(u*a) = cos(u, a) (the u and a parts get zero weights), one unit is linear over the whole
 * range and the others add convexity above cos 0, so the output is strictly increasing in the
 * cosine: about 0.02 % at -1, 0.2 % at 0, 1.2 % at 0.5 and 12 % at 1. It re-ranks exactly like the
 * cosine until a trained model with the same inputs replaces it (`adstream train`, src/training/ctr;
 * MODEL_CARD entry "ctr"). The graph is written by one function for both, so a trained one drops in.
 */
import { GraphBuilder } from './graph-builder.js';
import { CTR_TENSORS } from './tensors.js';

export interface CtrOptions {
  readonly dim: number;
  /** Hidden units (default 32). */
  readonly hidden?: number;
}

/**
 * The MLP's parameters, laid out as the ONNX Gemms read them: w1 [3 x dim, hidden] row-major
 * (rows 0..dim read u, dim..2dim read a, 2dim..3dim read u*a), b1 [hidden], w2 [hidden] (a
 * [hidden, 1] column), b2 [1].
 */
export interface CtrWeights {
  readonly dim: number;
  readonly hidden: number;
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
}

export const DEFAULT_CTR_HIDDEN = 32;
/** Bump when the hand-set weights change, so outputs name another model. */
export const CTR_REVISION = 'ctr-v1';

const LINEAR_SLOPE = 2.5;
const CONVEX_SLOPE = 0.1;
const BIAS = -8.55;

/** The hand-set weights of the default model (see the file comment). */
export function handSetCtrWeights(opts: CtrOptions): CtrWeights {
  const { dim } = opts;
  const hidden = opts.hidden ?? DEFAULT_CTR_HIDDEN;
  checkShape(dim, hidden);
  // Rows 2*dim..3*dim (the u*a part) are 1: each unit sees cos(u, a) minus its threshold.
  const w1 = new Float32Array(3 * dim * hidden);
  for (let i = 2 * dim; i < 3 * dim; i++) w1.fill(1, i * hidden, (i + 1) * hidden);
  const b1 = new Float32Array(hidden);
  const w2 = new Float32Array(hidden);
  // Unit 0: active over all of [-1, 1] (threshold just below -1), so the output never flattens.
  b1[0] = 1.001;
  w2[0] = LINEAR_SLOPE;
  // Units 1..: thresholds spread over [0, 1), each adding slope above its threshold.
  for (let j = 1; j < hidden; j++) {
    b1[j] = -(j - 1) / (hidden - 1);
    w2[j] = CONVEX_SLOPE;
  }
  return { dim, hidden, w1, b1, w2, b2: Float32Array.of(BIAS) };
}

/** The default model's ONNX bytes. */
export function buildCtrModel(opts: CtrOptions): Uint8Array {
  const w = handSetCtrWeights(opts);
  return writeCtrGraph(w, { revision: CTR_REVISION, weights: 'hand-set, monotone in cos(user, ad); not trained' });
}

/** ONNX bytes of a CTR model with these weights; `metadata` joins the model's metadata_props. */
export function writeCtrGraph(w: CtrWeights, metadata: { readonly revision: string } & Record<string, string>): Uint8Array {
  const { dim, hidden } = w;
  checkShape(dim, hidden);
  if (w.w1.length !== 3 * dim * hidden || w.b1.length !== hidden || w.w2.length !== hidden || w.b2.length !== 1) throw new Error(`CTR weights do not match dim ${dim}, hidden ${hidden}`);
  const g = new GraphBuilder('adstream_ctr');
  const { inputs, outputs } = CTR_TENSORS;
  const u = g.inputOf(inputs.user, ['batch', dim]);
  const a = g.inputOf(inputs.ad, ['batch', dim]);
  const x = g.op1('Concat', [u, a, g.op1('Mul', [u, a])], { axis: 1 }); // [batch, 3*dim]
  const h = g.op1('Relu', [g.op1('Gemm', [x, g.weight('w1', w.w1, [3 * dim, hidden]), g.weight('b1', w.b1, [hidden])])]);
  const logit = g.op1('Gemm', [h, g.weight('w2', w.w2, [hidden, 1]), g.weight('b2', w.b2, [1])]);
  g.op1('Sigmoid', [logit], {}, outputs.ctr.name);
  g.outputOf(outputs.ctr, ['batch', 1]);
  // This key order is the one the default model has always had: same bytes, no rewrite at start.
  const { revision, ...rest } = metadata;
  return g.build({ 'adstream.model': 'ctr', revision, dim: String(dim), hidden: String(hidden), ...rest });
}

function checkShape(dim: number, hidden: number): void {
  for (const [name, v] of [['dim', dim], ['hidden', hidden]] as const) {
    if (!Number.isInteger(v) || v < 2) throw new Error(`${name} must be an integer >= 2, got ${v}`);
  }
}
