/**
 * The index model: retrieval by the HNSW index on the inference workers (ModelSpec.index), with the
 * exact scorer's tensors (RANKED_TENSORS: users in; scores, indices = slots, ctr out) plus candidate
 * pools (INDEX_TENSORS: pool in, found out), and the same CTR re-rank in the request, so retrieval
 * reads both answers alike.
 */
import type { BatcherSettings, ModelSpec } from '../inference/types.js';
import type { IndexParams } from '../inference/vector-index.js';
import { INDEX_TENSORS } from './graphs/tensors.js';
import type { CtrSettings, IndexIo } from './model-io.js';

export const INDEX_MODEL = 'ann';

export interface IndexModelOptions {
  readonly params: IndexParams;
  /** Candidates per query row (what the caller keeps plus slack). */
  readonly k: number;
  /** Slots a candidate pool holds (the top this many of a search; at least k). */
  readonly poolSize: number;
  readonly ctr: CtrSettings;
  readonly batcher: BatcherSettings;
}

export function indexModel(o: IndexModelOptions): { spec: ModelSpec; io: IndexIo } {
  const T = INDEX_TENSORS;
  const { dim } = o.params;
  const poolSize = Math.max(o.k, o.poolSize);
  const spec: ModelSpec = {
    name: INDEX_MODEL,
    path: '',
    batcher: o.batcher,
    inputs: [{ ...T.inputs.users, itemShape: [dim] }, { ...T.inputs.pool, itemShape: [poolSize] }],
    outputs: [...[T.outputs.scores, T.outputs.indices, T.outputs.ctr].map((t) => ({ ...t, itemShape: [o.k] })), { ...T.outputs.found, itemShape: [poolSize] }],
    index: { ...o.params, k: o.k, query: T.inputs.users.name, scores: T.outputs.scores.name, slots: T.outputs.indices.name, pool: T.inputs.pool.name, found: T.outputs.found.name, poolSize },
    rerank: {
      model: o.ctr.model, queries: T.inputs.users.name, candidates: '', indices: T.outputs.indices.name,
      queryInput: o.ctr.inputs.user.name, candidateInput: o.ctr.inputs.ad.name, score: o.ctr.outputs.ctr.name, output: T.outputs.ctr.name,
    },
  };
  return { spec, io: { model: INDEX_MODEL, ...T } };
}
