/**
 * A learned item table as the click encoder's ONNX, with the MODEL_CARD entry that plugs it in.
 *
 * item_ids [batch] int64, category_ids [batch] int64 (buckets, as the default encoder's)
 *   -> embedding = L2(item_table[item] + unknown[item] * category_table[category])
 *
 * A learned item's bucket holds its vector (unknown = 0); every other bucket is zero with
 * unknown = 1, so an item never trained on (a new movie, an ad's item 0) gets its category's
 * vector: the normalised mean of that category's learned items, in the same space. Categories with
 * no learned item keep seeded random vectors, never a zero embedding. Items hashed into one
 * bucket share the mean of their vectors (counted in `collisions`).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { GraphBuilder } from '../../models/graphs/graph-builder.js';
import { embeddingTable, l2Normalize } from '../../models/graphs/graph-ops.js';
import { ENCODER_TENSORS } from '../../models/graphs/tensors.js';
import type { UserModel } from '../../models/model-card.js';
import { bucketOf, CATEGORY_BUCKET_SEED, ITEM_BUCKET_SEED } from '../../preprocess/buckets.js';
import { normalizeInto } from '../../util/vectors.js';

export interface LearnedItems {
  readonly itemIds: readonly string[];
  /** Category id per item (same index). */
  readonly categoryOf: readonly string[];
  /** items x dim. */
  readonly vectors: Float32Array;
  readonly dim: number;
}

export interface ClickTableOptions {
  readonly itemBuckets: number;
  readonly categoryBuckets: number;
  /** Seed of the random vectors of categories with no learned item. */
  readonly seed?: number;
}

export const DEFAULT_CLICK_TABLE: ClickTableOptions = { itemBuckets: 65536, categoryBuckets: 4096 };

export interface ClickTables {
  readonly items: Float32Array;
  readonly unknown: Float32Array;
  readonly categories: Float32Array;
  /** Learned items that share a bucket with another learned item. */
  readonly collisions: number;
}

function normalizeRows(m: Float32Array, dim: number): void {
  for (let at = 0; at < m.length; at += dim) normalizeInto(m, at, dim, m, at);
}

/** The three tables of the graph, by bucket. */
export function clickTables(learned: LearnedItems, o: ClickTableOptions = DEFAULT_CLICK_TABLE): ClickTables {
  const { dim, vectors } = learned;
  const items = new Float32Array(o.itemBuckets * dim);
  const unknown = new Float32Array(o.itemBuckets).fill(1);
  const perBucket = new Int32Array(o.itemBuckets);
  const unit = vectors.slice();
  normalizeRows(unit, dim);
  const categories = embeddingTable(o.categoryBuckets, dim, o.seed ?? 0xca7e9);
  const catSum = new Float32Array(o.categoryBuckets * dim);
  const catCount = new Int32Array(o.categoryBuckets);
  learned.itemIds.forEach((id, i) => {
    const b = Number(bucketOf(id, o.itemBuckets, ITEM_BUCKET_SEED));
    const c = Number(bucketOf(learned.categoryOf[i]!, o.categoryBuckets, CATEGORY_BUCKET_SEED));
    perBucket[b]!++;
    unknown[b] = 0;
    catCount[c]!++;
    for (let d = 0; d < dim; d++) {
      items[b * dim + d]! += unit[i * dim + d]!;
      catSum[c * dim + d]! += unit[i * dim + d]!;
    }
  });
  let collisions = 0;
  for (let b = 0; b < o.itemBuckets; b++) if (perBucket[b]! > 1) collisions += perBucket[b]!;
  for (let c = 0; c < o.categoryBuckets; c++) if (catCount[c]! > 0) categories.set(catSum.subarray(c * dim, (c + 1) * dim), c * dim);
  normalizeRows(items, dim); // colliding items: the direction of their mean
  normalizeRows(categories, dim);
  return { items, unknown, categories, collisions };
}

export function buildLearnedClickEncoder(t: ClickTables, dim: number, o: ClickTableOptions = DEFAULT_CLICK_TABLE): Uint8Array {
  const { inputs: { itemIds, categoryIds }, outputs: { embedding } } = ENCODER_TENSORS.click;
  const g = new GraphBuilder('adstream_learned_click_encoder');
  const items = g.inputOf(itemIds, ['batch']);
  const cats = g.inputOf(categoryIds, ['batch']);
  const itemVec = g.op1('Gather', [g.weight('item_table', t.items, [o.itemBuckets, dim]), items], { axis: 0 });
  const unknown = g.op1('Gather', [g.weight('unknown_item', t.unknown, [o.itemBuckets, 1]), items], { axis: 0 });
  const catVec = g.op1('Gather', [g.weight('category_table', t.categories, [o.categoryBuckets, dim]), cats], { axis: 0 });
  const sum = g.op1('Add', [itemVec, g.op1('Mul', [unknown, catVec])]);
  l2Normalize(g, sum, embedding.name);
  g.outputOf(embedding, ['batch', dim]);
  return g.build({ 'adstream.model': 'learned-click-encoder', itemBuckets: String(o.itemBuckets), categoryBuckets: String(o.categoryBuckets), dim: String(dim) });
}

export const LEARNED_CLICK_FILE = 'click-items.onnx';
export const CARD_FILE = 'model-card.json';

/** Writes the ONNX file and a MODEL_CARD naming it; returns the card's path and the file's sha256. */
export function writeLearnedClickEncoder(dir: string, learned: LearnedItems, o: ClickTableOptions = DEFAULT_CLICK_TABLE, training: Record<string, unknown> = {}): { card: string; sha256: string; collisions: number } {
  const tables = clickTables(learned, o);
  const bytes = buildLearnedClickEncoder(tables, learned.dim, o);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, LEARNED_CLICK_FILE), bytes);
  const { inputs, outputs } = ENCODER_TENSORS.click;
  const click: UserModel = {
    file: LEARNED_CLICK_FILE,
    inputs: [{ name: inputs.itemIds.name, type: 'int64', shape: ['batch'] }, { name: inputs.categoryIds.name, type: 'int64', shape: ['batch'] }],
    outputs: [{ name: outputs.embedding.name, type: 'float32', shape: ['batch', learned.dim] }],
    embeddingDim: learned.dim,
    // adItems: an ad is the item of its ad id, so ads and clicks on that item share a vector.
    preprocessing: { itemBuckets: o.itemBuckets, categoryBuckets: o.categoryBuckets, itemSeed: ITEM_BUCKET_SEED, categorySeed: CATEGORY_BUCKET_SEED, adItems: true },
  };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const card = join(dir, CARD_FILE);
  writeFileSync(card, `${JSON.stringify({ models: { click }, training: { ...training, items: learned.itemIds.length, collisions: tables.collisions, sha256 } }, null, 2)}\n`);
  return { card, sha256, collisions: tables.collisions };
}
