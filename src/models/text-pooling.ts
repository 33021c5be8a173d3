/**
 * Token states -> one text vector, as a text model's card says: the mean of the real tokens' rows
 * (sentence-transformers' pooling), the first token's ([CLS]), or the model's own pooled output;
 * then L2-normalised if the card asks (ad blocks are not normalised again downstream).
 */
import { normalizeInto } from '../util/vectors.js';

export const TEXT_POOLINGS = ['mean', 'cls', 'output'] as const;
export type TextPooling = (typeof TEXT_POOLINGS)[number];

/**
 * Writes text r's vector (dim values) at out[outAt...]. `states` holds the model's output rows:
 * [maxTokens, dim] per text for mean and cls, [dim] for output; `mask` the attention mask rows.
 */
export function poolText(pooling: TextPooling, normalize: boolean, states: Float32Array, mask: BigInt64Array, r: number, maxTokens: number, dim: number, out: Float32Array, outAt: number): void {
  if (pooling === 'output') {
    out.set(states.subarray(r * dim, (r + 1) * dim), outAt);
  } else if (pooling === 'cls') {
    out.set(states.subarray(r * maxTokens * dim, r * maxTokens * dim + dim), outAt);
  } else {
    out.fill(0, outAt, outAt + dim);
    let count = 0;
    for (let t = 0; t < maxTokens; t++) {
      if (mask[r * maxTokens + t] === 0n) continue;
      count++;
      const at = (r * maxTokens + t) * dim;
      for (let j = 0; j < dim; j++) out[outAt + j] += states[at + j]!;
    }
    const inv = count > 0 ? 1 / count : 0;
    for (let j = 0; j < dim; j++) out[outAt + j] *= inv;
  }
  if (normalize) normalizeInto(out, outAt, dim, out, outAt);
}
