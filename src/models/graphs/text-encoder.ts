/**
 * The default text encoder: hashed bag-of-tokens. Each token hashes to a row of a seeded random
 * embedding table (random vectors in 64+ dimensions are nearly orthogonal), and a text is the L2
 * normalised mean of its rows: texts sharing words point the same way, in any script the tokenizer
 * handles (Chinese without spaces included). No training, no vocabulary file.
 *
 * token_ids [batch, maxTokens] int64 (0 = padding)
 *   -> Gather(table [vocabSize, dim], row 0 zeros) -> masked mean over non-padding tokens
 *   -> L2 normalise -> embedding [batch, dim]  (an all-padding row gives a zero vector, not NaN)
 */
import { TEXT_TOKENIZER } from '../../preprocess/token-ids.js';
import { GraphBuilder } from './graph-builder.js';
import { ENCODER_TENSORS } from './tensors.js';
import { embeddingTable, l2Normalize } from './graph-ops.js';

export interface TextEncoderOptions {
  /** Rows of the embedding table, row 0 being padding: token ids are 1 .. vocabSize-1. */
  readonly vocabSize: number;
  /** Token ids per text (padded or truncated to this). */
  readonly maxTokens: number;
  readonly dim: number;
  readonly seed?: number;
}

export const DEFAULT_TEXT_SEED = 0x7e47;

export function buildTextEncoder(opts: TextEncoderOptions): Uint8Array {
  const { vocabSize, maxTokens, dim } = opts;
  const seed = opts.seed ?? DEFAULT_TEXT_SEED;
  if (!Number.isInteger(vocabSize) || vocabSize < 2) throw new Error(`vocabSize must be an integer >= 2, got ${vocabSize}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`maxTokens must be a positive integer, got ${maxTokens}`);
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`embedding dim must be a positive integer, got ${dim}`);

  const { inputs: { tokenIds }, outputs: { embedding } } = ENCODER_TENSORS.text;
  const g = new GraphBuilder('adstream_text_encoder');
  const ids = g.inputOf(tokenIds, ['batch', maxTokens]);
  const table = g.weight('token_table', embeddingTable(vocabSize, dim, seed), [vocabSize, dim]);
  const rows = g.op1('Gather', [table, ids], { axis: 0 }); // [batch, maxTokens, dim]
  // Row 0 is zeros, so the plain sum already ignores padding; the mask is for the count.
  const mask = g.op1('Cast', [g.op1('Greater', [ids, g.int64s('zero_id', [0])])], { to: 1 /* FLOAT */ }); // [batch, maxTokens]
  const sum = g.op1('ReduceSum', [rows, g.int64s('token_axis', [1])], { keepdims: 0 }); // [batch, dim]
  const count = g.op1('ReduceSum', [mask, g.int64s('count_axis', [1])], { keepdims: 1 }); // [batch, 1]
  const safeCount = g.op1('Max', [count, g.weight('one', Float32Array.of(1), [1])]);
  const mean = g.op1('Div', [sum, safeCount]);
  l2Normalize(g, mean, embedding.name);
  g.outputOf(embedding, ['batch', dim]);
  return g.build({ 'adstream.model': 'text-encoder', vocabSize: String(vocabSize), maxTokens: String(maxTokens), dim: String(dim), seed: String(seed), tokenizer: TEXT_TOKENIZER });
}
