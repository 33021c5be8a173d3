/**
 * How the pipeline feeds each model it runs: the engine's model name, its tensors (names and element
 * types), widths and preprocessing. The *_TENSORS tables are the one declaration of each model's
 * tensors: the graph builders, the default model card, the engine specs (model-setup.ts) and the
 * call sites all take them from here. model-setup.ts fills the settings from the default models and
 * the user's model card.
 */
import type { Modality, PerModality } from '../domain/modalities.js';
import type { ModelIo, ModelTensors, TensorDecl } from '../inference/types.js';
import type { ImagePreprocessing } from '../preprocess/image-decoder.js';

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

/** The fusion graphs: modalities [batch, M, D] and weights [batch, M] -> fused [batch, F]. */
export const FUSION_TENSORS = {
  inputs: { modalities: float32('modalities'), weights: float32('weights') },
  outputs: { fused: float32('fused') },
} as const satisfies ModelTensors;

/** The scorer: users [batch, F] against the resident ads [num_ads, F], k [1] -> the top k scores and ad rows [batch, k]. */
export const SCORER_TENSORS = {
  inputs: { users: float32('users') },
  outputs: { scores: float32('scores'), indices: int64('indices') },
  resident: { ads: float32('ads'), k: int64('k') },
} as const satisfies ModelTensors & { resident: Record<string, TensorDecl> };

/** The CTR model: user [batch, F] and ad [batch, F] -> ctr [batch, 1]. A user's CTR model keeps the input names; its output may have another. */
export const CTR_TENSORS = {
  inputs: { user: float32('user'), ad: float32('ad') },
  outputs: { ctr: float32('ctr') },
} as const satisfies ModelTensors;

type IoOf<T extends ModelTensors> = ModelIo<T['inputs'], T['outputs']>;

/** Each encoder: the engine's model name, its tensors, embedding size and preprocessing. */
export interface EncoderSettings {
  readonly image: IoOf<typeof ENCODER_TENSORS.image> & { readonly dim: number; readonly prep: ImagePreprocessing };
  readonly text: IoOf<typeof ENCODER_TENSORS.text> & { readonly dim: number; readonly vocabSize: number; readonly maxTokens: number };
  readonly click: IoOf<typeof ENCODER_TENSORS.click> & { readonly dim: number; readonly itemBuckets: number; readonly categoryBuckets: number; readonly itemSeed: number; readonly categorySeed: number };
}

export const FUSION_STRATEGIES = ['concat', 'average', 'weighted'] as const;
export type FusionStrategy = (typeof FUSION_STRATEGIES)[number];

export interface FusionSettings {
  /** The engine's model name. */
  readonly model: string;
  readonly strategy: FusionStrategy;
  /** Width of each row of the graph's `modalities` input: the widest encoder's. */
  readonly inputDim: number;
  /** Width F of the fused space. */
  readonly dim: number;
  /** Per modality [image, text, click], as the graph and the event weights get them: all 1 for average, WEIGHT_* otherwise. */
  readonly weights: Readonly<PerModality<number>>;
}

/** The fusion model as the fuser calls it. */
export type FusionIo = IoOf<typeof FUSION_TENSORS>;
/** The scorer as retrieval calls it (its resident inputs are SCORER_TENSORS.resident). */
export type ScorerIo = IoOf<typeof SCORER_TENSORS>;
/** The CTR model: inputs user [batch, F] and ad [batch, F], output ctr [batch, 1]. */
export type CtrSettings = IoOf<typeof CTR_TENSORS>;
