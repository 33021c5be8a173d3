/**
 * Text -> the token ids the default text encoder reads: tokens (text-tokens.ts) hashed into the
 * rows of its embedding table. Runs on the hot path for every review and ad copy.
 */
import { hash32 } from './hash.js';
import { tokenize } from './text-tokens.js';

/** Names the preprocessing, so a model card can say which one its ids came from. */
export const TEXT_TOKENIZER = 'adstream-v1 (NFKC, words, CJK unigrams+bigrams, hash32)';

/** The id of one token: 1 .. vocabSize-1 (0 is padding). */
export function tokenId(token: string, vocabSize: number): number {
  return (hash32(token) % (vocabSize - 1)) + 1;
}

/**
 * Tokenises `text` and writes exactly maxTokens ids (zero-padded) at out[offset .. offset+maxTokens).
 * Returns the number of tokens written; 0 means the text had nothing usable (the embedding of an
 * all-padding row is a zero vector).
 */
export function textToTokenIds(text: string, vocabSize: number, maxTokens: number, out: BigInt64Array, offset: number): number {
  if (offset < 0 || offset + maxTokens > out.length) throw new RangeError(`token ids ${offset}..${offset + maxTokens} outside an array of ${out.length}`);
  const tokens = tokenize(text, maxTokens);
  for (let i = 0; i < tokens.length; i++) out[offset + i] = BigInt(tokenId(tokens[i]!, vocabSize));
  out.fill(0n, offset + tokens.length, offset + maxTokens);
  return tokens.length;
}
