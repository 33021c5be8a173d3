/** Ids -> the hashed buckets the default click encoder reads (item and category tables). */
import { hash32 } from './hash.js';

/** Hash seeds for bucketOf, so item and category ids hash independently. */
export const ITEM_BUCKET_SEED = 0x17e4;
export const CATEGORY_BUCKET_SEED = 0xca7e;

/** Hashed bucket of an id: 1 .. buckets-1, never 0 (0 means "none"). */
export function bucketOf(id: string, buckets: number, seed: number): bigint {
  if (!Number.isInteger(buckets) || buckets < 2) throw new Error(`buckets must be an integer >= 2, got ${buckets}`);
  return BigInt((hash32(id, seed) % (buckets - 1)) + 1);
}
