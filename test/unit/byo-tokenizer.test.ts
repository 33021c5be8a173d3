/**
 * Bring your own text model with its own tokenizer: a BERT-shaped ONNX model (input_ids,
 * attention_mask, token_type_ids -> last_hidden_state [batch, seq, dim]) built with our graph
 * writer, and a WordPiece tokenizer.json written here, run by @huggingface/tokenizers through a
 * MODEL_CARD; pooling and L2 as the card says.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import { ConfigError } from '../../src/domain/errors.js';
import type { ReviewEvent } from '../../src/domain/events.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { GraphBuilder } from '../../src/models/graphs/graph-builder.js';
import { tokenizerJson, tokenRows } from '../../src/preprocess/text-tokenizer.js';
import { silentLogger } from '../../src/util/log.js';

const SLOW = 60_000;
const SEQ = 6;
const DIM = 16;
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'red', 'shoe', '##s', 'garden', 'hose', 'blue'];
const id = (t: string): number => VOCAB.indexOf(t);

const modelDir = mkdtempSync(join(tmpdir(), 'adstream-models-'));
const cardDir = mkdtempSync(join(tmpdir(), 'adstream-bert-'));
const stateDir = mkdtempSync(join(tmpdir(), 'adstream-state-'));

/** A WordPiece tokenizer.json of the BERT family: lowercase, split on punctuation, [CLS] text [SEP]. */
function wordPieceJson(): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].map((content) => ({ id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: Object.fromEntries(['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [id(t)], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])) },
  };
}

/** Row i of the word table: one-hot at i (so a pooled vector shows which tokens went in); types add 0.5 at DIM-1 per type id. */
const wordRow = (i: number): number[] => Array.from({ length: DIM }, (_, j) => (j === i ? 1 : 0));

/**
 * states = word[input_ids] + type[token_type_ids] + 0 * attention_mask: padding rows are [PAD]'s
 * one-hot, not zero (as a real encoder's are not either), so only the mask keeps them out of the mean.
 */
function bertShapedModel(): Uint8Array {
  const g = new GraphBuilder('bert_shaped');
  const ids = g.input('input_ids', 'int64', ['batch', SEQ]);
  const mask = g.input('attention_mask', 'int64', ['batch', SEQ]);
  const types = g.input('token_type_ids', 'int64', ['batch', SEQ]);
  const words = g.weight('words', Float32Array.from(VOCAB.flatMap((_, i) => wordRow(i))), [VOCAB.length, DIM]);
  const typeTable = g.weight('types', Float32Array.from([0, 1].flatMap((t) => Array.from({ length: DIM }, (_, j) => (j === DIM - 1 ? 0.5 * t : 0)))), [2, DIM]);
  const sum = g.op1('Add', [g.op1('Gather', [words, ids], { axis: 0 }), g.op1('Gather', [typeTable, types], { axis: 0 })]);
  const m = g.op1('Unsqueeze', [g.op1('Cast', [mask], { to: 1 }), g.int64s('last', [2])]);
  g.op1('Add', [sum, g.op1('Mul', [m, g.weight('zero', Float32Array.of(0), [1])])], {}, 'last_hidden_state');
  g.output('last_hidden_state', 'float32', ['batch', SEQ, DIM]);
  return g.build();
}

const seqInput = (name: string) => ({ name, type: 'int64', shape: ['batch', SEQ] });
function textEntry(preprocessing: Record<string, unknown> = {}, outputShape: (string | number)[] = ['batch', SEQ, DIM]): Record<string, unknown> {
  return {
    file: 'bert.onnx',
    inputs: [seqInput('input_ids'), seqInput('attention_mask'), seqInput('token_type_ids')],
    outputs: [{ name: 'last_hidden_state', type: 'float32', shape: outputShape }],
    embeddingDim: DIM,
    preprocessing: { tokenizer: 'tokenizer.json', maxTokens: SEQ, pooling: 'mean', ...preprocessing },
  };
}

function writeCard(name: string, card: unknown): string {
  const path = join(cardDir, name);
  writeFileSync(path, JSON.stringify(card));
  return path;
}

writeFileSync(join(cardDir, 'bert.onnx'), bertShapedModel());
writeFileSync(join(cardDir, 'tokenizer.json'), JSON.stringify(wordPieceJson()));
const configFor = (modelCard: string, sub: string) => loadConfig({ env: {}, overrides: { modelDir, stateDir: join(stateDir, sub), modelCard, inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });
const review = (text: string, n: number): ReviewEvent => ({ kind: 'review', eventId: `r-${n}`, userId: `u-${n}`, itemId: 'i', eventTime: 0, categoryId: null, rating: 5, text });

const cores: Core[] = [];
afterAll(async () => {
  for (const c of cores) await c.close();
});

/** The text embeddings of `texts` through a core started on `card`. */
async function embedTexts(cardPath: string, sub: string, texts: string[]): Promise<{ rows: Float32Array[]; failed: number[] }> {
  const core = await startCore(configFor(cardPath, sub), { logger: silentLogger, clock: () => 0 });
  cores.push(core);
  const out = await core.embedder.embedEvents(texts.map(review));
  const block = out.blocks[1]!;
  return { rows: texts.map((_, i) => block.slice(out.row[i]! * DIM, (out.row[i]! + 1) * DIM)), failed: [...out.failures.keys()] };
}

describe('a text model with its own tokenizer.json (MODEL_CARD)', () => {
  it('tokenizes with the library: [CLS] word pieces [SEP], mask and token types, truncated keeping [SEP]', () => {
    const tok = tokenizerJson(join(cardDir, 'tokenizer.json'), SEQ);
    const rows = tokenRows(2, SEQ);
    expect(tok.encodeInto('Red shoes', rows, 0)).toBe(5);
    expect([...rows.inputIds.subarray(0, SEQ)].map(Number)).toEqual([id('[CLS]'), id('red'), id('shoe'), id('##s'), id('[SEP]'), 0]);
    expect([...rows.attentionMask.subarray(0, SEQ)].map(Number)).toEqual([1, 1, 1, 1, 1, 0]);
    // Seven tokens into six: the closing [SEP] is kept in the last slot.
    expect(tok.encodeInto('blue garden hose, red shoes', rows, 1)).toBe(SEQ);
    expect([...rows.inputIds.subarray(SEQ)].map(Number)).toEqual([id('[CLS]'), id('blue'), id('garden'), id('hose'), id('[UNK]'), id('[SEP]')]);
  });

  it('mean-pools the token states over the attention mask and L2-normalises; the version names model and tokenizer', async () => {
    const card = writeCard('bert-mean.json', { models: { text: textEntry() } });
    const models = await prepareModels(configFor(card, 'v'));
    expect(models.encoders.text).toMatchObject({ pooling: 'mean', normalize: true, maxTokens: SEQ, dim: DIM, inputs: { inputIds: { name: 'input_ids' }, attentionMask: { name: 'attention_mask' }, tokenTypeIds: { name: 'token_type_ids' } } });
    expect(models.version).toMatch(/byo:bert\.onnx@[0-9a-f]{12}\+tokenizer\.json@[0-9a-f]{12}/);

    const { rows, failed } = await embedTexts(card, 'mean', ['Red shoes', 'a garden hose', '!!!']);
    // [CLS] red shoe ##s [SEP]: five one-hot rows, mean then unit length -> 1/sqrt(5) on each.
    const expected = new Float32Array(DIM);
    for (const t of ['[CLS]', 'red', 'shoe', '##s', '[SEP]']) expected[id(t)] = 1 / Math.sqrt(5);
    for (let j = 0; j < DIM; j++) expect(rows[0]![j]).toBeCloseTo(expected[j]!, 5);
    // [CLS] [UNK] garden hose [SEP]: "a" is not in the vocabulary, and its [UNK] is a token too.
    expect(rows[1]![id('garden')]).toBeCloseTo(1 / Math.sqrt(5), 5);
    expect(rows[1]![id('[UNK]')]).toBeCloseTo(1 / Math.sqrt(5), 5);
    // Punctuation only: [CLS] [SEP] and nothing else, dead-lettered as unusable text.
    expect(failed).toEqual([2]);
  }, SLOW);

  it('takes the [CLS] row with pooling cls, unnormalised with normalize false', async () => {
    const card = writeCard('bert-cls.json', { models: { text: textEntry({ pooling: 'cls', normalize: false }) } });
    const { rows } = await embedTexts(card, 'cls', ['red shoes']);
    expect([...rows[0]!]).toEqual(wordRow(id('[CLS]')));
  }, SLOW);

  describe('refuses a bad text card with a ConfigError naming MODEL_CARD', () => {
    const refuses = async (entry: Record<string, unknown>, message: RegExp): Promise<void> => {
      const err = await prepareModels(configFor(writeCard(`bad-${Math.random().toString(36).slice(2)}.json`, { models: { text: entry } }), 'bad')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/^MODEL_CARD: /);
      expect((err as ConfigError).message).toMatch(message);
    };

    it('a tokenizer file that is missing or not a tokenizer', async () => {
      await refuses(textEntry({ tokenizer: 'nope.json' }), /tokenizer nope\.json: cannot read/);
      writeFileSync(join(cardDir, 'broken.json'), '{"model": {"type": "Nonsense"}}');
      await refuses(textEntry({ tokenizer: 'broken.json' }), /tokenizer broken\.json cannot be used/);
    }, SLOW);

    it('an unknown pooling, a non-boolean normalize, no maxTokens', async () => {
      await refuses(textEntry({ pooling: 'max' }), /pooling must be one of mean, cls, output, got max/);
      await refuses(textEntry({ normalize: 'yes' }), /normalize must be true or false/);
      await refuses(textEntry({ maxTokens: undefined }), /maxTokens must be a positive integer/);
    }, SLOW);

    it('an output that does not fit the pooling, inputs of another width or an extra input', async () => {
      await refuses(textEntry({}, ['batch', DIM]), /with pooling mean output last_hidden_state must be \[batch, 6, 16\]/);
      await refuses(textEntry({ pooling: 'output' }), /output last_hidden_state is declared \[batch, 6, 16\], but embeddingDim is 16/);
      await refuses({ ...textEntry(), inputs: [seqInput('input_ids'), { name: 'attention_mask', type: 'int64', shape: ['batch', 8] }] }, /input attention_mask must be int64 \[batch, 6\]/);
      await refuses({ ...textEntry(), inputs: [seqInput('input_ids'), seqInput('position_ids')] }, /takes one input of token ids/);
    }, SLOW);
  });
});
