/**
 * The one learned-looking part of concat fusion: a seeded gaussian projection P [M * D, F] / sqrt(F)
 * from the concatenated modality blocks (each D wide, the widest encoder's width) to the fused
 * space. It used to be the fusion graph's initializer; the fuser now applies it in-process, from
 * the same seed and layout, so vectors (and every stored user state) keep their meaning.
 */
import { gaussianArray } from './graphs/graph-ops.js';

export const DEFAULT_CONCAT_SEED = 0xf05e;

/** Row-major [modalities * inputDim, outDim]: modality m's block is rows m * inputDim .. (m + 1) * inputDim. */
export function concatProjection(modalities: number, inputDim: number, outDim: number, seed = DEFAULT_CONCAT_SEED): Float32Array {
  for (const [name, v] of [['modalities', modalities], ['inputDim', inputDim], ['outDim', outDim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  }
  return gaussianArray(modalities * inputDim * outDim, 1 / Math.sqrt(outDim), seed);
}
