/**
 * The default click encoder: what a user clicked, as hashed item and category buckets, mapped to
 * seeded random vectors. embedding = L2norm(category_vec + 0.5 * item_vec): clicks on different
 * items of one category land close (the category part dominates), other categories far away.
 *
 * item_ids [batch] int64, category_ids [batch] int64 (buckets from bucketOf; 0 = none)
 *   -> embedding [batch, dim]  (both 0 gives a zero vector)
 */
import { GraphBuilder } from './graph-builder.js';
import { ENCODER_TENSORS } from './tensors.js';
import { embeddingTable, l2Normalize } from './graph-ops.js';

export interface ClickEncoderOptions {
  readonly itemBuckets: number;
  readonly categoryBuckets: number;
  readonly dim: number;
  readonly seed?: number;
}

export const DEFAULT_CLICK_SEED = 0xc11c;
/** Weight of the item vector next to the category vector. */
export const ITEM_WEIGHT = 0.5;

export function buildClickEncoder(opts: ClickEncoderOptions): Uint8Array {
  const { itemBuckets, categoryBuckets, dim } = opts;
  const seed = opts.seed ?? DEFAULT_CLICK_SEED;
  for (const [k, v] of [['itemBuckets', itemBuckets], ['categoryBuckets', categoryBuckets]] as const) {
    if (!Number.isInteger(v) || v < 2) throw new Error(`${k} must be an integer >= 2, got ${v}`);
  }
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`embedding dim must be a positive integer, got ${dim}`);

  const { inputs: { itemIds, categoryIds }, outputs: { embedding } } = ENCODER_TENSORS.click;
  const g = new GraphBuilder('adstream_click_encoder');
  const items = g.inputOf(itemIds, ['batch']);
  const cats = g.inputOf(categoryIds, ['batch']);
  const itemTable = g.weight('item_table', embeddingTable(itemBuckets, dim, seed), [itemBuckets, dim]);
  const catTable = g.weight('category_table', embeddingTable(categoryBuckets, dim, (seed ^ 0x5a5a5a5a) >>> 0), [categoryBuckets, dim]);
  const itemVec = g.op1('Gather', [itemTable, items], { axis: 0 });
  const catVec = g.op1('Gather', [catTable, cats], { axis: 0 });
  const sum = g.op1('Add', [catVec, g.op1('Mul', [itemVec, g.weight('item_weight', Float32Array.of(ITEM_WEIGHT), [1])])]);
  l2Normalize(g, sum, embedding.name);
  g.outputOf(embedding, ['batch', dim]);
  return g.build({ 'adstream.model': 'click-encoder', itemBuckets: String(itemBuckets), categoryBuckets: String(categoryBuckets), dim: String(dim), seed: String(seed) });
}
