/**
 * The scorer: inner products of user vectors with every ad, top k per user.
 *
 * users [batch, dim] (batched); ads [num_ads, dim] and k [1] int64 (resident: set once per catalog
 * version) -> scores [batch, k] float32 (descending), indices [batch, k] int64 (rows of `ads`).
 * k must be <= num_ads (TopK fails otherwise): clamp it to the catalog size.
 */
import { GraphBuilder } from './graph-builder.js';
import { SCORER_TENSORS } from './tensors.js';

export interface ScorerOptions {
  readonly dim: number;
}

export function buildScorer(opts: ScorerOptions): Uint8Array {
  const { dim } = opts;
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`dim must be a positive integer, got ${dim}`);
  const T = SCORER_TENSORS;
  const g = new GraphBuilder('adstream_scorer');
  const users = g.inputOf(T.inputs.users, ['batch', dim]);
  const ads = g.inputOf(T.resident.ads, ['num_ads', dim]);
  const k = g.inputOf(T.resident.k, [1]);
  const scores = g.op1('MatMul', [users, g.op1('Transpose', [ads], { perm: [1, 0] })]); // [batch, num_ads]
  g.op('TopK', [scores, k], { axis: -1, largest: 1, sorted: 1 }, 2, [T.outputs.scores.name, T.outputs.indices.name]);
  g.outputOf(T.outputs.scores, ['batch', 'k']);
  g.outputOf(T.outputs.indices, ['batch', 'k']);
  return g.build({ 'adstream.model': 'scorer', dim: String(dim) });
}
