/**
 * Text -> the id rows a text encoder reads, by the tokenizer its model card names: adstream's
 * hashed tokens (the default encoder's), or a Hugging Face tokenizer.json (WordPiece, BPE, Unigram)
 * run by @huggingface/tokenizers. Both write fixed-width int64 rows (ids, attention mask, token
 * types), zero-padded, so a batch of texts is one packed tensor per model input.
 */
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { textToTokenIds } from './token-ids.js';

/** One batch's rows, each `maxTokens` wide. */
export interface TokenRows {
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
  readonly tokenTypeIds: BigInt64Array;
}

export interface TextTokenizer {
  /** What the card calls it, for messages and the model version. */
  readonly name: string;
  readonly maxTokens: number;
  /**
   * Writes row `row` of `rows` (ids, mask 1 per real token, token types) and returns the number of
   * real tokens; 0: nothing usable (the row is all padding and the text cannot be embedded).
   */
  encodeInto(text: string, rows: TokenRows, row: number): number;
}

export function tokenRows(items: number, maxTokens: number): TokenRows {
  const n = items * maxTokens;
  return { inputIds: new BigInt64Array(n), attentionMask: new BigInt64Array(n), tokenTypeIds: new BigInt64Array(n) };
}

/** adstream's own tokens hashed into vocabSize rows (token-ids.ts): the mask marks the non-zero ids. */
export function hashedTokenizer(vocabSize: number, maxTokens: number): TextTokenizer {
  return {
    name: 'adstream-hashed',
    maxTokens,
    encodeInto(text, rows, row) {
      const at = row * maxTokens;
      const n = textToTokenIds(text, vocabSize, maxTokens, rows.inputIds, at);
      rows.attentionMask.fill(1n, at, at + n);
      rows.attentionMask.fill(0n, at + n, at + maxTokens);
      rows.tokenTypeIds.fill(0n, at, at + maxTokens);
      return n;
    },
  };
}

/**
 * A tokenizer.json (and, if given, its tokenizer_config.json) run by @huggingface/tokenizers, with
 * the special tokens its post-processor adds ([CLS] ... [SEP], <s> ... </s>). A text longer than
 * maxTokens is cut, keeping the closing special token when there is one: models pooled on [CLS]
 * or trained with [SEP] expect it. Throws on an unreadable or unsupported file (the caller names
 * the card).
 */
export function tokenizerJson(path: string, maxTokens: number, configPath?: string): TextTokenizer {
  const json = JSON.parse(readFileSync(path, 'utf8')) as object;
  const config = configPath ? (JSON.parse(readFileSync(configPath, 'utf8')) as object) : {};
  const tokenizer = new Tokenizer(json, config);
  const special = new Set<number>();
  for (const [id, t] of tokenizer.get_added_tokens_decoder()) if (t.special) special.add(id);
  // A tokenizer that cannot encode fails here, at the start, not on the first review.
  tokenizer.encode('adstream');
  return {
    name: `tokenizer.json`,
    maxTokens,
    encodeInto(text, rows, row) {
      const at = row * maxTokens;
      let encoded: { ids: number[]; token_type_ids?: number[] };
      try {
        encoded = tokenizer.encode(text, { return_token_type_ids: true });
      } catch {
        // The library's own failure on odd input: the text is unusable, the processor goes on.
        encoded = { ids: [] };
      }
      const { ids, token_type_ids: types } = encoded;
      let n = Math.min(ids.length, maxTokens);
      for (let i = 0; i < n; i++) {
        rows.inputIds[at + i] = BigInt(ids[i]!);
        rows.tokenTypeIds[at + i] = BigInt(types?.[i] ?? 0);
      }
      const last = ids[ids.length - 1] ?? -1;
      if (ids.length > maxTokens && special.has(last)) rows.inputIds[at + n - 1] = BigInt(last);
      rows.attentionMask.fill(1n, at, at + n);
      rows.inputIds.fill(0n, at + n, at + maxTokens);
      rows.attentionMask.fill(0n, at + n, at + maxTokens);
      rows.tokenTypeIds.fill(0n, at + n, at + maxTokens);
      // Only special tokens ([CLS][SEP] of an empty or emoji-only text): nothing to embed.
      let content = 0;
      for (let i = 0; i < n; i++) if (!special.has(ids[i]!)) content++;
      if (content === 0) n = 0;
      return n;
    },
  };
}
