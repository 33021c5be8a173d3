/**
 * A BERT encoder (Hugging Face BertModel weights, post-LayerNorm, exact GELU) as an ONNX graph:
 * input_ids, attention_mask, token_type_ids int64 [batch, seq] -> last_hidden_state [batch, seq,
 * hidden]. Padding is kept out of attention by adding -1e9 to the scores of masked positions.
 * Linear weights are stored transposed ([in, out]) so each projection is one MatMul.
 */
import { GraphBuilder } from '../graphs/graph-builder.js';
import type { SafeTensor } from './safetensors.js';

export interface BertShape {
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly seq: number;
  readonly layerNormEps: number;
}

export function buildBert(w: ReadonlyMap<string, SafeTensor>, s: BertShape): Uint8Array {
  const get = (name: string): SafeTensor => {
    const t = w.get(name);
    if (!t) throw new Error(`BERT weights: no tensor ${name}`);
    return t;
  };
  const g = new GraphBuilder('bert');
  const ids = g.input('input_ids', 'int64', ['batch', s.seq]);
  const mask = g.input('attention_mask', 'int64', ['batch', s.seq]);
  const types = g.input('token_type_ids', 'int64', ['batch', s.seq]);
  const vec = (name: string): string => g.weight(name, get(name).data, [get(name).shape[0]!]);
  /** nn.Linear [out, in] -> MatMul weight [in, out]. */
  const linear = (x: string, prefix: string): string => {
    const t = get(`${prefix}.weight`);
    const [out, inp] = [t.shape[0]!, t.shape[1]!];
    const transposed = new Float32Array(out * inp);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) transposed[i * out + o] = t.data[o * inp + i]!;
    return g.op1('Add', [g.op1('MatMul', [x, g.weight(`${prefix}.wT`, transposed, [inp, out])]), vec(`${prefix}.bias`)]);
  };
  const layerNorm = (x: string, prefix: string): string => g.op1('LayerNormalization', [x, vec(`${prefix}.weight`), vec(`${prefix}.bias`)], { axis: -1, epsilon: s.layerNormEps });

  const positions = g.weight('positions', BigInt64Array.from({ length: s.seq }, (_, i) => BigInt(i)), [s.seq]);
  const table = (name: string): string => g.weight(name, get(name).data, [...get(name).shape]);
  let x = g.op1('Add', [
    g.op1('Add', [g.op1('Gather', [table('embeddings.word_embeddings.weight'), ids], { axis: 0 }), g.op1('Gather', [table('embeddings.position_embeddings.weight'), positions], { axis: 0 })]),
    g.op1('Gather', [table('embeddings.token_type_embeddings.weight'), types], { axis: 0 }),
  ]);
  x = layerNorm(x, 'embeddings.LayerNorm');

  const headDim = s.hidden / s.heads;
  // (1 - mask) * -1e9, as [batch, 1, 1, seq]: added to every head's scores.
  const maskF = g.op1('Cast', [mask], { to: 1 });
  const bias = g.op1('Unsqueeze', [g.op1('Mul', [g.op1('Sub', [g.weight('one', Float32Array.of(1), []), maskF]), g.weight('neg', Float32Array.of(-1e9), [])]), g.int64s('mask_axes', [1, 2])]);
  const splitHeads = g.int64s('split_heads', [0, 0, s.heads, headDim]);
  const mergeHeads = g.int64s('merge_heads', [0, 0, s.hidden]);
  const scale = g.weight('scale', Float32Array.of(1 / Math.sqrt(headDim)), []);
  const sqrtHalf = g.weight('sqrt_half', Float32Array.of(Math.SQRT1_2), []);
  const half = g.weight('half', Float32Array.of(0.5), []);
  for (let l = 0; l < s.layers; l++) {
    const p = `encoder.layer.${l}`;
    const heads = (name: string, perm: number[]) => g.op1('Transpose', [g.op1('Reshape', [linear(x, `${p}.attention.self.${name}`), splitHeads])], { perm });
    const q = heads('query', [0, 2, 1, 3]);
    const k = heads('key', [0, 2, 3, 1]);
    const v = heads('value', [0, 2, 1, 3]);
    const scores = g.op1('Add', [g.op1('Mul', [g.op1('MatMul', [q, k]), scale]), bias]);
    const ctx = g.op1('Reshape', [g.op1('Transpose', [g.op1('MatMul', [g.op1('Softmax', [scores], { axis: -1 }), v])], { perm: [0, 2, 1, 3] }), mergeHeads]);
    x = layerNorm(g.op1('Add', [linear(ctx, `${p}.attention.output.dense`), x]), `${p}.attention.output.LayerNorm`);
    const h = linear(x, `${p}.intermediate.dense`);
    // Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
    const gelu = g.op1('Mul', [g.op1('Mul', [h, half]), g.op1('Add', [g.weight(`one_${l}`, Float32Array.of(1), []), g.op1('Erf', [g.op1('Mul', [h, sqrtHalf])])])]);
    x = layerNorm(g.op1('Add', [linear(gelu, `${p}.output.dense`), x]), `${p}.output.LayerNorm`);
  }
  g.op1('Identity', [x], {}, 'last_hidden_state');
  g.output('last_hidden_state', 'float32', ['batch', s.seq, s.hidden]);
  return g.build({ 'adstream.model': 'bert' });
}
