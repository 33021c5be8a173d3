/**
 * The default image encoder: a small CNN whose weights are written by this code (no training, no
 * download), yet meaningful: similar-looking product images land near each other.
 *
 * pixels [batch, 3, size, size] (NCHW, RGB, (x/255 - mean) / std)
 *   -> Conv 3x3 stride 2 (3 -> 16) + Relu: 6 fixed colour filters (red-green, blue-yellow and
 *      luminance opponents, both signs, averaged over the 3x3 window) and 10 seeded random filters
 *   -> Conv 3x3 stride 2 (16 -> 32) + Relu: 6 channels carry the colour channels through (3x3 mean),
 *      26 seeded random
 *   -> Conv 3x3 stride 2 (32 -> 64) + Relu: the same again, 58 random
 *   -> GlobalAveragePool -> Flatten -> Gemm to `dim` -> L2 normalise -> embedding [batch, dim]
 *
 * Relu features are all positive, so raw pooled vectors of any two images point roughly the same
 * way. The Gemm's bias therefore subtracts the pooled features of a fixed set of probe images
 * (a grid of flat colours with a little noise), computed here with a plain TypeScript forward pass:
 * embeddings are directions away from "an average image", which spreads different looks apart.
 */
import { GraphBuilder } from './graph-builder.js';
import { ENCODER_TENSORS } from './tensors.js';
import { gaussianArray, l2Normalize } from './graph-ops.js';
import { seededRandom } from '../../util/random.js';

/** Per-channel (R, G, B) normalisation: value = (x / 255 - mean) / std. */
export const IMAGE_MEAN: readonly [number, number, number] = [0.5, 0.5, 0.5];
export const IMAGE_STD: readonly [number, number, number] = [0.25, 0.25, 0.25];

export interface ImageEncoderOptions {
  /** Input height and width in pixels. */
  readonly size: number;
  /** Embedding dimension. */
  readonly dim: number;
  readonly seed?: number;
}

export const DEFAULT_IMAGE_SEED = 0x1a6e;

const CHANNELS = [16, 32, 64] as const;

const S2 = Math.SQRT1_2;
const S15 = 1 / Math.sqrt(1.5);
const S3 = 1 / Math.sqrt(3);
/** Fixed first-layer colour filters: unit-length (r, g, b) directions, each with its negative. */
const COLOUR_FILTERS: readonly (readonly [number, number, number])[] = [
  [S2, -S2, 0], // red - green
  [-S2, S2, 0],
  [-0.5 * S15, -0.5 * S15, S15], // blue - yellow
  [0.5 * S15, 0.5 * S15, -S15],
  [S3, S3, S3], // luminance
  [-S3, -S3, -S3],
];
const FIXED = COLOUR_FILTERS.length;
/** Gain of the fixed colour filters relative to a unit colour step. */
const COLOUR_GAIN = 1.5;
/** Weight of the carried-through colour features in the final projection, relative to random ones. */
const COLOUR_FEATURE_WEIGHT = 4;

interface ConvLayer {
  readonly inC: number;
  readonly outC: number;
  readonly w: Float32Array; // [outC, inC, 3, 3]
  readonly b: Float32Array; // [outC]
}

/** Writes the 3x3 mean of input channel `from` into output channel `to` (identity on a flat area). */
function passThrough(w: Float32Array, inC: number, to: number, from: number, gain: number): void {
  const base = (to * inC + from) * 9;
  for (let k = 0; k < 9; k++) w[base + k] = gain / 9;
}

function layers(seed: number): ConvLayer[] {
  const rand = seededRandom(seed);
  const seedOf = (): number => Math.floor(rand() * 0x7fffffff);
  const out: ConvLayer[] = [];
  let inC = 3;
  for (let l = 0; l < CHANNELS.length; l++) {
    const outC = CHANNELS[l]!;
    // He initialisation: std sqrt(2 / fan_in) keeps activation scale through Relu layers.
    const w = gaussianArray(outC * inC * 9, Math.sqrt(2 / (inC * 9)), seedOf());
    const b = new Float32Array(outC);
    // The first FIXED output channels are designed, not random.
    w.fill(0, 0, FIXED * inC * 9);
    for (let o = 0; o < FIXED; o++) {
      if (l === 0) {
        const f = COLOUR_FILTERS[o]!;
        for (let c = 0; c < 3; c++) for (let k = 0; k < 9; k++) w[(o * 3 + c) * 9 + k] = (COLOUR_GAIN * f[c]!) / 9;
      } else {
        passThrough(w, inC, o, o, 1);
      }
    }
    out.push({ inC, outC, w, b });
    inC = outC;
  }
  return out;
}

/** 3x3, stride 2, pad 1 convolution + Relu on one CHW image (reference forward, for the probes). */
function convRelu(x: Float32Array, h: number, wd: number, layer: ConvLayer): { y: Float32Array; h: number; w: number } {
  const oh = Math.floor((h - 1) / 2) + 1;
  const ow = Math.floor((wd - 1) / 2) + 1;
  const y = new Float32Array(layer.outC * oh * ow);
  for (let o = 0; o < layer.outC; o++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let s = layer.b[o]!;
        for (let c = 0; c < layer.inC; c++) {
          const wBase = (o * layer.inC + c) * 9;
          const xBase = c * h * wd;
          for (let ki = 0; ki < 3; ki++) {
            const yi = 2 * i - 1 + ki;
            if (yi < 0 || yi >= h) continue;
            for (let kj = 0; kj < 3; kj++) {
              const xj = 2 * j - 1 + kj;
              if (xj < 0 || xj >= wd) continue;
              s += layer.w[wBase + ki * 3 + kj]! * x[xBase + yi * wd + xj]!;
            }
          }
        }
        y[(o * oh + i) * ow + j] = s > 0 ? s : 0;
      }
    }
  }
  return { y, h: oh, w: ow };
}

/** Pooled last-layer features of one normalised CHW image. */
function pooledFeatures(img: Float32Array, size: number, convs: readonly ConvLayer[]): Float32Array {
  let x = img;
  let h = size;
  let w = size;
  for (const layer of convs) ({ y: x, h, w } = convRelu(x, h, w, layer));
  const c = convs[convs.length - 1]!.outC;
  const out = new Float32Array(c);
  const area = h * w;
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let p = 0; p < area; p++) s += x[k * area + p]!;
    out[k] = s / area;
  }
  return out;
}

/** Probe grid levels per channel (0-255) and the probes' noise amplitude (uniform, 0-255 units). */
const PROBE_LEVELS = [40, 128, 216] as const;
const PROBE_NOISE = 40;
/** Probes are evaluated at this size at most: the mean barely depends on it, the cost does. */
const PROBE_MAX_SIZE = 64;

/** Mean pooled features over flat-colour probe images (the Gemm bias subtracts it). */
function probeMean(size: number, convs: readonly ConvLayer[], seed: number): Float32Array {
  const ps = Math.min(size, PROBE_MAX_SIZE);
  const rand = seededRandom(seed);
  const mean = new Float64Array(convs[convs.length - 1]!.outC);
  let n = 0;
  const img = new Float32Array(3 * ps * ps);
  for (const r of PROBE_LEVELS) {
    for (const g of PROBE_LEVELS) {
      for (const b of PROBE_LEVELS) {
        const rgb = [r, g, b];
        for (let c = 0; c < 3; c++) {
          for (let p = 0; p < ps * ps; p++) {
            const v = rgb[c]! + (rand() - 0.5) * PROBE_NOISE;
            img[c * ps * ps + p] = (v / 255 - IMAGE_MEAN[c]!) / IMAGE_STD[c]!;
          }
        }
        const f = pooledFeatures(img, ps, convs);
        for (let k = 0; k < f.length; k++) mean[k]! += f[k]!;
        n++;
      }
    }
  }
  return Float32Array.from(mean, (v) => v / n);
}

export function buildImageEncoder(opts: ImageEncoderOptions): Uint8Array {
  const { size, dim } = opts;
  const seed = opts.seed ?? DEFAULT_IMAGE_SEED;
  if (!Number.isInteger(size) || size < 8) throw new Error(`image size must be an integer >= 8, got ${size}`);
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`embedding dim must be a positive integer, got ${dim}`);

  const convs = layers(seed);
  const feat = CHANNELS[CHANNELS.length - 1];
  // Projection [feat, dim]; carried-through colour features weigh more than random ones.
  const proj = gaussianArray(feat * dim, 1 / Math.sqrt(dim), (seed ^ 0x5eed) >>> 0);
  for (let k = 0; k < FIXED; k++) for (let d = 0; d < dim; d++) proj[k * dim + d]! *= COLOUR_FEATURE_WEIGHT;
  const centre = probeMean(size, convs, (seed ^ 0x9e37) >>> 0);
  const bias = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    let s = 0;
    for (let k = 0; k < feat; k++) s += centre[k]! * proj[k * dim + d]!;
    bias[d] = -s;
  }

  const { inputs: { pixels }, outputs: { embedding } } = ENCODER_TENSORS.image;
  const g = new GraphBuilder('adstream_image_encoder');
  let x = g.inputOf(pixels, ['batch', 3, size, size]);
  convs.forEach((layer, i) => {
    const w = g.weight(`conv${i + 1}_w`, layer.w, [layer.outC, layer.inC, 3, 3]);
    const b = g.weight(`conv${i + 1}_b`, layer.b, [layer.outC]);
    x = g.op1('Conv', [x, w, b], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    x = g.op1('Relu', [x]);
  });
  const pooled = g.op1('Flatten', [g.op1('GlobalAveragePool', [x])], { axis: 1 });
  const projected = g.op1('Gemm', [pooled, g.weight('proj_w', proj, [feat, dim]), g.weight('proj_b', bias, [dim])]);
  l2Normalize(g, projected, embedding.name);
  g.outputOf(embedding, ['batch', dim]);
  return g.build({ 'adstream.model': 'image-encoder', size: String(size), dim: String(dim), seed: String(seed) });
}
