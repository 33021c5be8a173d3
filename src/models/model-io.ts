/**
 * How the pipeline feeds each model it runs: the engine's model name, its tensors (names and element
 * types), widths and preprocessing. The tensors themselves are declared once, beside the graphs
 * that define them (graphs/tensors.ts). model-setup.ts fills these settings from the default models
 * and the user's model card.
 */
import type { PerModality } from '../domain/modalities.js';
import type { ModelIo, ModelTensors, TensorDecl } from '../inference/types.js';
import type { CTR_TENSORS, ENCODER_TENSORS, INDEX_TENSORS, RANKED_TENSORS } from './graphs/tensors.js';
import type { ImagePreprocessing } from '../preprocess/image-decoder.js';
import type { TextTokenizer } from '../preprocess/text-tokenizer.js';
import type { TextPooling } from './text-pooling.js';

type IoOf<T extends ModelTensors> = ModelIo<T['inputs'], T['outputs']>;

/** Each encoder: the engine's model name, its tensors, embedding size and preprocessing. */
export interface EncoderSettings {
  readonly image: IoOf<typeof ENCODER_TENSORS.image> & { readonly dim: number; readonly prep: ImagePreprocessing };
  readonly text: TextEncoderSettings;
  readonly click: IoOf<typeof ENCODER_TENSORS.click> & { readonly dim: number; readonly itemBuckets: number; readonly categoryBuckets: number; readonly itemSeed: number; readonly categorySeed: number; readonly adItems: boolean };
}

/**
 * The text encoder: its tokenizer writes maxTokens-wide int64 rows per text, fed to the inputs the
 * model takes (ids always; the attention mask and token types only if it declares them); its
 * output is pooled into a dim-wide vector (text-pooling.ts).
 */
export interface TextEncoderSettings {
  readonly model: string;
  readonly inputs: { readonly inputIds: TensorDecl<'int64'>; readonly attentionMask?: TensorDecl<'int64'>; readonly tokenTypeIds?: TensorDecl<'int64'> };
  /** [batch, dim] for pooling 'output', [batch, maxTokens, dim] (token states) for mean and cls. */
  readonly outputs: { readonly states: TensorDecl<'float32'> };
  readonly dim: number;
  readonly maxTokens: number;
  readonly tokenizer: TextTokenizer;
  readonly pooling: TextPooling;
  readonly normalize: boolean;
}

export const FUSION_STRATEGIES = ['concat', 'average', 'weighted'] as const;
export type FusionStrategy = (typeof FUSION_STRATEGIES)[number];

/** How the fuser (src/pipeline/fuse.ts, in-process: fusion is no engine model) combines the modalities. */
export interface FusionSettings {
  readonly strategy: FusionStrategy;
  /** Width of each modality's block (narrower encoders count as zero-padded to it): the widest encoder's. */
  readonly inputDim: number;
  /** Width F of the fused space. */
  readonly dim: number;
  /** Per modality [image, text, click], for fusion and the event weights: all 1 for average, WEIGHT_* otherwise. */
  readonly weights: Readonly<PerModality<number>>;
}

/** The scorer as retrieval calls it, with the CTR re-rank (its resident inputs are SCORER_TENSORS.resident). */
export type ScorerIo = IoOf<typeof RANKED_TENSORS>;
/** The index model as retrieval calls it: the scorer's tensors plus candidate pools (INDEX_TENSORS). */
export type IndexIo = IoOf<typeof INDEX_TENSORS>;
/** The CTR model: inputs user [batch, F] and ad [batch, F], output ctr [batch, 1]. */
export type CtrSettings = IoOf<typeof CTR_TENSORS>;
