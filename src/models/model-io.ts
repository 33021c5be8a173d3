/**
 * How the pipeline feeds each model it runs: the engine's model name, its tensor names, widths and
 * preprocessing. model-setup.ts fills these from the default models and the user's model card.
 */
import type { PerModality } from '../domain/modalities.js';
import type { ImagePreprocessing } from '../preprocess/image-decoder.js';

/** Each encoder: the engine's model name, its tensor names, embedding size and preprocessing. */
export interface EncoderSettings {
  readonly image: { readonly model: string; readonly input: string; readonly output: string; readonly dim: number; readonly prep: ImagePreprocessing };
  readonly text: { readonly model: string; readonly input: string; readonly output: string; readonly dim: number; readonly vocabSize: number; readonly maxTokens: number };
  readonly click: { readonly model: string; readonly itemInput: string; readonly categoryInput: string; readonly output: string; readonly dim: number; readonly itemBuckets: number; readonly categoryBuckets: number; readonly itemSeed: number; readonly categorySeed: number };
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

/** The CTR model's names: inputs user [batch, F] and ad [batch, F], output [batch, 1]. */
export interface CtrSettings {
  readonly model: string;
  readonly userInput: string;
  readonly adInput: string;
  readonly output: string;
}
