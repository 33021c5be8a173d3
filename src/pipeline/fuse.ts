/**
 * Modality embeddings -> one vector in the fused space F, by the fusion model on the inference
 * engine (one request per call, so the micro-batcher merges chunks).
 *
 * Strategies (src/models/graphs/fusion.ts builds the graphs):
 * - concat: each modality keeps its own block, scaled by WEIGHT_*, and a seeded random projection
 *   maps the concatenation to F. Works with encoders that know nothing of each other (the
 *   defaults): an image vector and a click vector never share coordinates before the projection,
 *   and the projection keeps inner products approximately, so cross-modality terms stay near 0.
 * - average / weighted: the modalities are summed in one space (equal weights, or WEIGHT_*), then
 *   normalised. That only means something when the encoders are aligned (trained into one space,
 *   like CLIP's image and text towers); with the default encoders, coordinate i of the image
 *   vector and coordinate i of the click vector are unrelated, so their sum mixes noise into
 *   every similarity.
 *
 * Narrower modalities are zero-padded to the widest (padding keeps inner products).
 */
import { inferTyped, type Inference, type TensorsOf } from '../inference/types.js';
import { FUSION_TENSORS } from '../models/graphs/tensors.js';
import type { FusionIo, FusionSettings } from '../models/model-io.js';
import { MODALITY_COUNT as M, type PerModality } from '../domain/modalities.js';
import { rowOf } from '../util/vectors.js';
import type { EmbeddedEvents, ModalityBlocks } from './embed.js';

type FusionInputs = TensorsOf<typeof FUSION_TENSORS.inputs>;

export class Fuser {
  private readonly io: FusionIo;

  constructor(
    private readonly engine: Inference,
    readonly settings: FusionSettings,
    /** Encoder widths per modality. */
    private readonly dims: Readonly<PerModality<number>>,
  ) {
    if (dims.some((d) => d > settings.inputDim)) throw new Error(`fusion input width ${settings.inputDim} is narrower than an encoder (${dims.join(', ')})`);
    this.io = { model: settings.model, ...FUSION_TENSORS };
  }

  get dim(): number {
    return this.settings.dim;
  }

  /**
   * Each listed event on its own: its modality's row holds its embedding, the others are zero.
   * Returns events.length rows of F, unit norm (zero for a modality weighted 0).
   */
  async fuseEvents(embedded: EmbeddedEvents, events: readonly number[]): Promise<Float32Array> {
    const n = events.length;
    if (n === 0) return new Float32Array(0);
    const inputs = this.inputs(n);
    for (let r = 0; r < n; r++) {
      const i = events[r]!;
      const m = embedded.modality[i]!;
      this.place(inputs, r, m, embedded.blocks[m]!, embedded.row[i]!);
    }
    return this.run(inputs, n);
  }

  /** n ads from all their modalities at once (rows of a missing modality are zero). Returns n rows of F. */
  async fuseAds(blocks: Readonly<ModalityBlocks>, n: number): Promise<Float32Array> {
    if (n === 0) return new Float32Array(0);
    const inputs = this.inputs(n);
    for (let r = 0; r < n; r++) for (let m = 0; m < M; m++) this.place(inputs, r, m, blocks[m]!, r);
    return this.run(inputs, n);
  }

  /** The graph's inputs for n items, zeroed: a modality left out keeps a zero row and weight 0. */
  private inputs(n: number): FusionInputs {
    return { modalities: new Float32Array(n * M * this.settings.inputDim), weights: new Float32Array(n * M) };
  }

  /** Item r's modality m: row `at` of that modality's block (zero-padded to the input width), with m's weight. */
  private place(inputs: FusionInputs, r: number, m: number, block: Float32Array, at: number): void {
    inputs.modalities.set(rowOf(block, at, this.dims[m]!), (r * M + m) * this.settings.inputDim);
    inputs.weights[r * M + m] = this.settings.weights[m]!;
  }

  private async run(inputs: FusionInputs, n: number): Promise<Float32Array> {
    return (await inferTyped(this.engine, this.io, { items: n, inputs })).fused;
  }
}
