/**
 * The default CTR model: predicted click-through rate of an ad for one user interest.
 *
 * user [batch, dim] (an interest, unit norm), ad [batch, dim] (unit norm)
 *   -> x = [u, a, u*a] -> Gemm -> Relu -> Gemm -> Sigmoid -> ctr [batch, 1].
 *
 * There is no click log to train on, so the weights are set by hand, and plainly so: every hidden
 * unit reads sum(u*a) = cos(u, a) (the u and a parts get zero weights), one unit is linear over
 * the whole range and the others add convexity above cos 0, so the output is strictly increasing
 * in the cosine: about 0.02 % at -1, 0.2 % at 0, 1.2 % at 0.5 and 12 % at 1. It re-ranks exactly like
 * the cosine until a trained model with the same inputs replaces it (MODEL_CARD entry "ctr"); the
 * shape is the usual one of such a model, so a trained one drops in.
 */
import { GraphBuilder } from './graph-builder.js';
import { CTR_TENSORS } from './tensors.js';

export interface CtrOptions {
  readonly dim: number;
  /** Hidden units (default 32). */
  readonly hidden?: number;
}

export const DEFAULT_CTR_HIDDEN = 32;
/** Bump when the hand-set weights change, so outputs name another model. */
export const CTR_REVISION = 'ctr-v1';

const LINEAR_SLOPE = 2.5;
const CONVEX_SLOPE = 0.1;
const BIAS = -8.55;

export function buildCtrModel(opts: CtrOptions): Uint8Array {
  const { dim } = opts;
  const hidden = opts.hidden ?? DEFAULT_CTR_HIDDEN;
  for (const [name, v] of [['dim', dim], ['hidden', hidden]] as const) {
    if (!Number.isInteger(v) || v < 2) throw new Error(`${name} must be an integer >= 2, got ${v}`);
  }
  const g = new GraphBuilder('adstream_ctr');
  const { inputs, outputs } = CTR_TENSORS;
  const u = g.inputOf(inputs.user, ['batch', dim]);
  const a = g.inputOf(inputs.ad, ['batch', dim]);
  const x = g.op1('Concat', [u, a, g.op1('Mul', [u, a])], { axis: 1 }); // [batch, 3*dim]

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
  const h = g.op1('Relu', [g.op1('Gemm', [x, g.weight('w1', w1, [3 * dim, hidden]), g.weight('b1', b1, [hidden])])]);
  const logit = g.op1('Gemm', [h, g.weight('w2', w2, [hidden, 1]), g.weight('b2', Float32Array.of(BIAS), [1])]);
  g.op1('Sigmoid', [logit], {}, outputs.ctr.name);
  g.outputOf(outputs.ctr, ['batch', 1]);
  return g.build({ 'adstream.model': 'ctr', revision: CTR_REVISION, dim: String(dim), hidden: String(hidden), weights: 'hand-set, monotone in cos(user, ad); not trained' });
}
