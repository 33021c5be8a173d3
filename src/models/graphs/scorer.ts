/**
 * The scorer: inner products of user vectors with every ad, top k per user.
 *
 * users [batch, dim] (batched); ads [num_ads, dim] and k [1] int64 (resident: set once per catalog
 * version) -> scores [batch, k] float32 (descending), indices [batch, k] int64 (rows of `ads`).
 * k must be <= num_ads (TopK fails otherwise): clamp it to the catalog size.
 */
import { GraphBuilder } from './graph-builder.js';

export interface ScorerOptions {
  readonly dim: number;
}

export function buildScorer(opts: ScorerOptions): Uint8Array {
  const { dim } = opts;
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`dim must be a positive integer, got ${dim}`);
  const g = new GraphBuilder('adstream_scorer');
  const users = g.input('users', 'float32', ['batch', dim]);
  const ads = g.input('ads', 'float32', ['num_ads', dim]);
  const k = g.input('k', 'int64', [1]);
  const scores = g.op1('MatMul', [users, g.op1('Transpose', [ads], { perm: [1, 0] })]); // [batch, num_ads]
  g.op('TopK', [scores, k], { axis: -1, largest: 1, sorted: 1 }, 2, ['scores', 'indices']);
  g.output('scores', 'float32', ['batch', 'k']);
  g.output('indices', 'int64', ['batch', 'k']);
  return g.build({ 'adstream.model': 'scorer', dim: String(dim) });
}
