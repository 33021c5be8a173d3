/**
 * The one declaration of each model's tensors (names and element types, by role): the graph
 * writers here define them, and the default model card, the engine specs and the pipeline's call
 * sites read them from this file.
 */
import type { Modality } from '../../domain/modalities.js';
import type { ModelTensors, TensorDecl } from '../../inference/types.js';

const float32 = (name: string): TensorDecl<'float32'> => ({ name, type: 'float32' });
const int64 = (name: string): TensorDecl<'int64'> => ({ name, type: 'int64' });

/**
 * The encoders' tensors under the default models' names. A user's card may rename an encoder's
 * tensors (model-setup.ts then takes the names from the card); the roles and types stay.
 * image: pixels [batch, 3, size, size]; text: token ids [batch, maxTokens]; click: item and category
 * buckets [batch]; each -> embedding [batch, dim].
 */
export const ENCODER_TENSORS = {
  image: { inputs: { pixels: float32('pixels') }, outputs: { embedding: float32('embedding') } },
  text: { inputs: { tokenIds: int64('token_ids') }, outputs: { embedding: float32('embedding') } },
  click: { inputs: { itemIds: int64('item_ids'), categoryIds: int64('category_ids') }, outputs: { embedding: float32('embedding') } },
} as const satisfies Record<Modality, ModelTensors>;

/** The scorer: users [batch, F] against the resident ads [num_ads, F], k [1] -> the top k scores and ad rows [batch, k]. */
export const SCORER_TENSORS = {
  inputs: { users: float32('users') },
  outputs: { scores: float32('scores'), indices: int64('indices') },
  resident: { ads: float32('ads'), k: int64('k') },
} as const satisfies ModelTensors & { resident: Record<string, TensorDecl> };

/**
 * A scorer request as retrieval makes it: the scorer's tensors, plus the CTR model's prediction for
 * each of the top k (run in the same trip to the workers: ModelSpec.rerank), ctr [batch, k].
 */
export const RANKED_TENSORS = {
  inputs: SCORER_TENSORS.inputs,
  outputs: { ...SCORER_TENSORS.outputs, ctr: float32('ctr') },
} as const satisfies ModelTensors;

/**
 * The index model's request: RANKED_TENSORS plus, per query row, a pool of candidate slots
 * pool [batch, P] (first value -1: search the index instead) and, out, the top P slots the search
 * found, found [batch, P] (-1 for a pooled row or past what was found): what the next pool holds.
 */
export const INDEX_TENSORS = {
  inputs: { ...RANKED_TENSORS.inputs, pool: int64('pool') },
  outputs: { ...RANKED_TENSORS.outputs, found: int64('found') },
} as const satisfies ModelTensors;

/** The CTR model: user [batch, F] and ad [batch, F] -> ctr [batch, 1]. A user's CTR model keeps the input names; its output may have another. */
export const CTR_TENSORS = {
  inputs: { user: float32('user'), ad: float32('ad') },
  outputs: { ctr: float32('ctr') },
} as const satisfies ModelTensors;
