/**
 * The index model: retrieval by the HNSW index on the inference workers (ModelSpec.index), with the
 * same tensors as the exact scorer (RANKED_TENSORS: users in; scores, indices = slots, ctr out) and
 * the same CTR re-rank in the request, so retrieval reads both answers alike.
 */
import type { BatcherSettings, ModelSpec } from '../inference/types.js';
import type { IndexParams } from '../inference/vector-index.js';
import { RANKED_TENSORS } from './graphs/tensors.js';
import type { CtrSettings, ScorerIo } from './model-io.js';

export const INDEX_MODEL = 'ann';

export interface IndexModelOptions {
  readonly params: IndexParams;
  /** Candidates per query row (what the caller keeps plus slack). */
  readonly k: number;
  readonly ctr: CtrSettings;
  readonly batcher: BatcherSettings;
}

export function indexModel(o: IndexModelOptions): { spec: ModelSpec; io: ScorerIo } {
  const T = RANKED_TENSORS;
  const { dim } = o.params;
  const spec: ModelSpec = {
    name: INDEX_MODEL,
    path: '',
    batcher: o.batcher,
    inputs: [{ ...T.inputs.users, itemShape: [dim] }],
    outputs: [T.outputs.scores, T.outputs.indices, T.outputs.ctr].map((t) => ({ ...t, itemShape: [o.k] })),
    index: { ...o.params, k: o.k, query: T.inputs.users.name, scores: T.outputs.scores.name, slots: T.outputs.indices.name },
    rerank: {
      model: o.ctr.model, queries: T.inputs.users.name, candidates: '', indices: T.outputs.indices.name,
      queryInput: o.ctr.inputs.user.name, candidateInput: o.ctr.inputs.ad.name, score: o.ctr.outputs.ctr.name, output: T.outputs.ctr.name,
    },
  };
  return { spec, io: { model: INDEX_MODEL, ...T } };
}
