/**
 * Public featurizer API used by the processor core. Turns click events, reviews, images and ads
 * into L2-normalised vectors in one shared D-dimensional space, so a user's interest vector (a
 * weighted sum of their event vectors) can be scored against an ad by cosine similarity.
 *
 * This is the hashed baseline; ONNX encoders replace it behind the same shape. All methods write
 * into a caller-owned Float32Array slice and allocate nothing beyond the tokeniser's tokens.
 */
import { addPrefixedFeature, l2normalize } from './feature-hasher.js';
import { SIGNATURE_LENGTH, projectSignature } from './image-signature.js';
import { tokenize } from './text-tokens.js';

export interface FeatureSpace {
  readonly dim: number;
}

export type ClickAction = 'VIEW' | 'CLICK' | 'ADD_TO_CART' | 'PURCHASE';

/** How strongly each action moves a user's interest vector (stronger intent, larger weight). */
export const ACTION_WEIGHT: Readonly<Record<ClickAction, number>> = Object.freeze({
  VIEW: 1,
  CLICK: 2,
  ADD_TO_CART: 3,
  PURCHASE: 4,
});

export interface HashedFeaturizerOptions {
  dim: number;
  maxTextTokens?: number;
}

// Feature-name prefixes. The category prefix MUST be the same in every method: it is what makes
// a user's clicks, reviews and images meet the ads of the same category.
const CAT = 'cat:';
const ITEM = 'item:';
const TOK = 'tok:';

// A feature occupies two hashed slots, so weight w per slot gives the block norm w*sqrt(2);
// this weight makes a lone category block exactly unit norm without a normalisation pass.
const UNIT_FEATURE = Math.SQRT1_2;

export class HashedFeaturizer implements FeatureSpace {
  readonly dim: number;
  readonly modelVersion: string;
  private readonly maxTextTokens: number;
  // One scratch block, reused: ad() needs to normalise text and image blocks separately.
  private readonly scratch: Float32Array;

  constructor(opts: HashedFeaturizerOptions) {
    const { dim, maxTextTokens = 256 } = opts;
    if (!Number.isInteger(dim) || dim < 2 || dim > 1 << 20) {
      throw new RangeError(`featurizer dim must be an integer in [2, ${1 << 20}], got ${dim}`);
    }
    if (!Number.isInteger(maxTextTokens) || maxTextTokens < 1) {
      throw new RangeError(`maxTextTokens must be a positive integer, got ${maxTextTokens}`);
    }
    this.dim = dim;
    this.maxTextTokens = maxTextTokens;
    this.modelVersion = `hashed-v1-d${dim}`;
    this.scratch = new Float32Array(dim);
  }

  /** Click/view/cart/purchase on an item: category (weight 1) plus the item itself (0.5). */
  click(itemId: string, categoryId: string, out: Float32Array, offset: number): void {
    const dim = this.begin(out, offset);
    addPrefixedFeature(out, offset, dim, CAT, categoryId, 1);
    addPrefixedFeature(out, offset, dim, ITEM, itemId, 0.5);
    l2normalize(out, offset, dim);
  }

  /**
   * Review text: tokens as one block normalised to 1, plus the category as another unit block,
   * so a long review does not drown the category. Zero vector if there is neither.
   */
  text(text: string, categoryId: string | null, out: Float32Array, offset: number): void {
    const dim = this.begin(out, offset);
    this.addTextBlock(text, out, offset);
    l2normalize(out, offset, dim);
    if (categoryId !== null) addPrefixedFeature(out, offset, dim, CAT, categoryId, UNIT_FEATURE);
    l2normalize(out, offset, dim);
  }

  /** Image: projected signature (unit block) plus the category (unit block) when known. */
  image(
    signature: Float32Array | null,
    categoryId: string | null,
    out: Float32Array,
    offset: number,
  ): void {
    const dim = this.begin(out, offset);
    if (signature !== null) {
      checkSignature(signature);
      projectSignature(signature, out, offset, dim);
      l2normalize(out, offset, dim);
    }
    if (categoryId !== null) addPrefixedFeature(out, offset, dim, CAT, categoryId, UNIT_FEATURE);
    l2normalize(out, offset, dim);
  }

  /**
   * Ad: unit category block + 0.5 * unit text block (title, then description) + 0.5 * unit image
   * block when there is an image, then normalised as a whole. Category weighs most because it is
   * what every user event carries.
   */
  ad(
    categoryId: string,
    title: string,
    description: string,
    signature: Float32Array | null,
    out: Float32Array,
    offset: number,
  ): void {
    const dim = this.begin(out, offset);
    const s = this.scratch;
    addPrefixedFeature(out, offset, dim, CAT, categoryId, UNIT_FEATURE);

    // Title first so it survives maxTextTokens truncation; newline keeps the two from merging.
    s.fill(0);
    this.addTextBlock(description.length > 0 ? `${title}\n${description}` : title, s, 0);
    if (l2normalize(s, 0, dim) > 0) addScaled(out, offset, s, 0.5, dim);

    if (signature !== null) {
      checkSignature(signature);
      s.fill(0);
      projectSignature(signature, s, 0, dim);
      if (l2normalize(s, 0, dim) > 0) addScaled(out, offset, s, 0.5, dim);
    }
    l2normalize(out, offset, dim);
  }

  /** Checks the target slice and zeroes it. Returns dim for brevity at call sites. */
  private begin(out: Float32Array, offset: number): number {
    const dim = this.dim;
    // Typed arrays drop out-of-range writes silently; fail loudly instead of scoring garbage.
    if (!Number.isInteger(offset) || offset < 0 || offset + dim > out.length) {
      throw new RangeError(
        `feature slice [${offset}, ${offset + dim}) is outside an array of length ${out.length}`,
      );
    }
    out.fill(0, offset, offset + dim);
    return dim;
  }

  /** Adds every token at 1/sqrt(n) (unit norm if no collisions), unnormalised. */
  private addTextBlock(text: string, out: Float32Array, offset: number): void {
    const tokens = tokenize(text, this.maxTextTokens);
    if (tokens.length === 0) return;
    const w = 1 / Math.sqrt(tokens.length);
    for (const t of tokens) addPrefixedFeature(out, offset, this.dim, TOK, t, w);
  }
}

function checkSignature(sig: Float32Array): void {
  if (sig.length !== SIGNATURE_LENGTH) {
    throw new RangeError(`image signature has ${sig.length} values, expected ${SIGNATURE_LENGTH}`);
  }
}

function addScaled(out: Float32Array, offset: number, src: Float32Array, k: number, dim: number): void {
  for (let j = 0; j < dim; j++) out[offset + j]! += k * src[j]!;
}
