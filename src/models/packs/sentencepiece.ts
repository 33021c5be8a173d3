/**
 * A SentencePiece model (its ModelProto, as stored in a SentencepieceTokenizer node) as a Hugging
 * Face tokenizer.json that @huggingface/tokenizers runs: the Unigram pieces with their scores,
 * the "nmt_nfkc" normaliser (the library's Precompiled normaliser: NFKC plus the NMT rules for
 * control characters and odd spaces) with SentencePiece's whitespace handling (extra spaces
 * removed, ▁ for a space, one prepended), and <s> ... </s> around each text when the node adds them.
 */
import protobuf from 'protobufjs/minimal.js';

interface Piece {
  piece: string;
  score: number;
  type: number;
}

/** SentencePiece's piece types (sentencepiece_model.proto). */
const PIECE_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;
const UNIGRAM = 1;

export interface SentencePieceModel {
  readonly pieces: readonly Piece[];
  readonly modelType: number;
  readonly unkId: number;
  readonly normalizer: string;
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
}

/** Reads the fields of a ModelProto that a Unigram tokenizer needs; other fields are skipped. */
export function readSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  const r = protobuf.Reader.create(bytes);
  const pieces: Piece[] = [];
  let modelType = UNIGRAM;
  let unkId = 0;
  let normalizer = '';
  let addDummyPrefix = true;
  let removeExtraWhitespaces = true;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) {
      const end = r.uint32() + r.pos;
      const p: Piece = { piece: '', score: 0, type: PIECE_TYPE.normal };
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 1) p.piece = r.string();
        else if (t >>> 3 === 2) p.score = r.float();
        else if (t >>> 3 === 3) p.type = r.int32();
        else r.skipType(t & 7);
      }
      pieces.push(p);
    } else if (field === 2) { // trainer_spec
      const end = r.uint32() + r.pos;
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 3) modelType = r.int32();
        else if (t >>> 3 === 40) unkId = r.int32();
        else r.skipType(t & 7);
      }
    } else if (field === 3) { // normalizer_spec
      const end = r.uint32() + r.pos;
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 1) normalizer = r.string();
        else if (t >>> 3 === 3) addDummyPrefix = r.bool();
        else if (t >>> 3 === 4) removeExtraWhitespaces = r.bool();
        else r.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return { pieces, modelType, unkId, normalizer, addDummyPrefix, removeExtraWhitespaces };
}

/** The tokenizer.json of a Unigram SentencePiece model; throws for another model type or normaliser. */
export function sentencePieceTokenizerJson(model: SentencePieceModel, opts: { readonly addBos: boolean; readonly addEos: boolean }): object {
  if (model.modelType !== UNIGRAM) throw new Error(`SentencePiece model type ${model.modelType} is not Unigram`);
  if (model.normalizer !== 'nmt_nfkc') throw new Error(`SentencePiece normaliser ${model.normalizer} is not supported (nmt_nfkc only)`);
  const id = (type: number, piece: string) => model.pieces.findIndex((p) => p.type === type && p.piece === piece);
  const bos = id(PIECE_TYPE.control, '<s>');
  const eos = id(PIECE_TYPE.control, '</s>');
  const special = model.pieces.flatMap((p, i) => (p.type === PIECE_TYPE.unknown || p.type === PIECE_TYPE.control ? [{ id: i, content: p.piece, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : []));
  const single = [
    ...(opts.addBos ? [{ SpecialToken: { id: '<s>', type_id: 0 } }] : []),
    { Sequence: { id: 'A', type_id: 0 } },
    ...(opts.addEos ? [{ SpecialToken: { id: '</s>', type_id: 0 } }] : []),
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Precompiled', precompiled_charsmap: null },
        // remove_extra_whitespaces: no leading or trailing space, runs of spaces as one.
        ...(model.removeExtraWhitespaces ? [{ type: 'Strip', strip_left: true, strip_right: true }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] : []),
      ],
    },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: model.addDummyPrefix ? 'always' : 'never', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single,
      pair: single,
      special_tokens: { '<s>': { id: '<s>', ids: [bos], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [eos], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: model.unkId, byte_fallback: false, vocab: model.pieces.map((p) => [p.piece, p.score]) },
  };
}
