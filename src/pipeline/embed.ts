import { createHash } from 'node:crypto';
import { RejectedRecordError } from '../domain/errors.js';
import { InferenceError, inferTyped, type Inference, type TensorData } from '../inference/types.js';
import { bucketOf } from '../preprocess/buckets.js';
import { tokenRows } from '../preprocess/text-tokenizer.js';
import { poolText } from '../models/text-pooling.js';
import type { Ad, ImageSource, UserEvent } from '../domain/events.js';
import type { EmbeddingCache } from './embedding-cache.js';
import type { ImageFetcher } from '../preprocess/image-fetcher.js';
import { decodeRgb, rgbToTensor, type ImagePreprocessing } from '../preprocess/image-decoder.js';
import type { EncoderSettings } from '../models/model-io.js';
import { rowOf } from '../util/vectors.js';
import { EVENT_MODALITY, MODALITY_COUNT, MODALITY_INDEX, perModality, type PerModality } from '../domain/modalities.js';

export interface EmbedderCaches {
  /**
   * Image embeddings: event images by image id ('id:<imageId>'), ad creatives by content
   * ('sha256:<hex>' or 'uri:<uri>'); a product image or creative is decoded and encoded once.
   */
  readonly image: EmbeddingCache;
  /** By item and category: what a click on that item adds. */
  readonly item: EmbeddingCache;
  /**
   * Ads' title and description by content ('sha256:<hex>'): a restart on a persisted tier runs no
   * text encoder for an ad whose text it saw. Reviews are not cached (each is new text).
   */
  readonly adText?: EmbeddingCache;
}

/** Per modality [image, text, click], rows packed at that modality's width. */
export type ModalityBlocks = PerModality<Float32Array>;

/** One chunk's events, embedded: a packed block of rows per modality. */
export interface EmbeddedEvents {
  /** Per event, its modality's index (MODALITY_INDEX); rows of failed events are not filled. */
  readonly modality: Uint8Array;
  /** Per event, its row in blocks[modality]. */
  readonly row: Int32Array;
  readonly blocks: Readonly<ModalityBlocks>;
  /** Events that could not be embedded (unreadable image, text without usable words), by index. */
  readonly failures: ReadonlyMap<number, RejectedRecordError>;
}

/**
 * Turns events and ads into per-modality embeddings: caches first, then one engine request per
 * modality for the misses, so the micro-batcher can merge them with other chunks' requests.
 */
export class MultimodalEmbedder {
  /** Embedding width per modality [image, text, click]; they may differ (a 32-d BYO image encoder). */
  readonly dims: Readonly<PerModality<number>>;

  constructor(
    private readonly engine: Inference,
    readonly settings: EncoderSettings,
    private readonly caches: EmbedderCaches,
    private readonly imageMaxPixels: number,
    /** Reads images given by reference, within the configured allow-list. */
    private readonly fetcher: ImageFetcher,
  ) {
    this.dims = perModality((m) => settings[m].dim);
  }

  async embedEvents(events: readonly UserEvent[]): Promise<EmbeddedEvents> {
    const n = events.length;
    const modality = new Uint8Array(n);
    const row = new Int32Array(n);
    const counts = new Int32Array(MODALITY_COUNT);
    for (let i = 0; i < n; i++) {
      const m = MODALITY_INDEX[EVENT_MODALITY[events[i]!.kind]];
      modality[i] = m;
      row[i] = counts[m]!++;
    }
    const blocks: ModalityBlocks = perModality((_, m) => new Float32Array(counts[m]! * this.dims[m]!));
    const failures = new Map<number, RejectedRecordError>();
    const { image, text, click } = MODALITY_INDEX;
    const of = (m: number) => events.map((e, i) => [e, i] as const).filter(([, i]) => modality[i] === m);

    await Promise.all([
      this.embedImages(
        // 'id:' keeps producers' image ids apart from ad creatives' 'sha256:'/'uri:' keys in the shared cache.
        of(image).map(([e, i]) => ({ key: `id:${(e as Extract<UserEvent, { kind: 'image' }>).imageId}`, source: (e as Extract<UserEvent, { kind: 'image' }>).image, index: i })),
        blocks[image]!, row, failures,
      ),
      this.embedTexts(of(text).map(([e, i]) => ({ text: (e as Extract<UserEvent, { kind: 'review' }>).text, index: i })), blocks[text]!, row, failures),
      this.embedClicks(of(click).map(([e, i]) => ({ itemId: e.itemId, categoryId: (e as Extract<UserEvent, { kind: 'click' }>).categoryId, index: i })), blocks[click]!, row),
    ]);
    return { modality, row, blocks, failures };
  }

  /**
   * Ads, one packed block per modality: [creative image, title and description, category], each
   * row unit-norm, or zero when the ad has no usable image or text (the ad still scores on the
   * rest). The fuser turns the three rows into the ad's vector. With a click encoder whose card sets
   * adItems (a learned item table), the click row is that of the item named by the ad id.
   */
  async embedAds(ads: readonly Ad[]): Promise<ModalityBlocks> {
    const n = ads.length;
    const blocks: ModalityBlocks = perModality((_, m) => new Float32Array(n * this.dims[m]!));
    const identity = Int32Array.from({ length: n }, (_, i) => i);
    const ignored = new Map<number, RejectedRecordError>();
    // Creatives are cached by content, not by ad id and version: an update that keeps the creative
    // (a bid change, a deactivate/reactivate) and ads sharing one creative reuse its embedding
    // instead of decoding and encoding it again.
    const withImage = ads.flatMap((ad, i) => (ad.image ? [{ key: creativeKey(ad.image), source: ad.image, index: i }] : []));
    const { image, text, click } = MODALITY_INDEX;
    await Promise.all([
      this.embedImages(withImage, blocks[image]!, identity, ignored),
      this.embedAdTexts(ads, blocks[text]!, identity, ignored),
      this.embedClicks(ads.map((ad, i) => ({ itemId: this.settings.click.adItems ? ad.adId : null, categoryId: ad.categoryId, index: i })), blocks[click]!, identity, false),
    ]);
    return blocks;
  }

  private async embedImages(
    items: readonly { key: string; source: ImageSource; index: number }[],
    block: Float32Array,
    row: Int32Array,
    failures: Map<number, RejectedRecordError>,
    useCache = true,
  ): Promise<void> {
    if (items.length === 0) return;
    const { dim, prep } = this.settings.image;
    const pending = this.fromCache(useCache ? this.caches.image : undefined, items, dim, block, row);
    if (pending.size === 0) return;
    // Decode every distinct image concurrently (sharp works on libuv's pool), then one request.
    const keys = [...pending.keys()];
    const decoded = await Promise.allSettled(keys.map((k) => this.loadImage(pending.get(k)![0]!.source, prep)));
    const ok: number[] = [];
    decoded.forEach((d, j) => {
      if (d.status === 'fulfilled') ok.push(j);
      else for (const it of pending.get(keys[j]!)!) failures.set(it.index, asRejection(d.reason));
    });
    if (ok.length === 0) return;
    const per = 3 * prep.size * prep.size;
    const pixels = new Float32Array(ok.length * per);
    ok.forEach((j, r) => rgbToTensor((decoded[j] as PromiseFulfilledResult<Buffer>).value, prep, pixels, r * per));
    const { embedding: emb } = await inferTyped(this.engine, this.settings.image, { items: ok.length, inputs: { pixels } });
    ok.forEach((j, r) => {
      const v = rowOf(emb, r, dim);
      if (useCache) this.caches.image.set(keys[j]!, v);
      for (const it of pending.get(keys[j]!)!) block.set(v, row[it.index]! * dim);
    });
  }

  /** Ads' texts: the cached ones copied in, the others encoded (as one request) and cached once usable. */
  private async embedAdTexts(ads: readonly Ad[], block: Float32Array, row: Int32Array, failures: Map<number, RejectedRecordError>): Promise<void> {
    const dim = this.settings.text.dim;
    const items = ads.map((ad, i) => {
      const text = ad.description ? `${ad.title}\n${ad.description}` : ad.title;
      return { text, index: i, key: `sha256:${createHash('sha256').update(text).digest('hex')}` };
    });
    const cache = this.caches.adText;
    const pending = this.fromCache(cache, items, dim, block, row);
    if (pending.size === 0) return;
    const firsts = [...pending.values()].map((group) => group[0]!);
    await this.embedTexts(firsts, block, row, failures);
    for (const group of pending.values()) {
      const first = group[0]!;
      if (failures.has(first.index)) {
        for (const it of group.slice(1)) failures.set(it.index, failures.get(first.index)!);
        continue;
      }
      const v = block.subarray(row[first.index]! * dim, (row[first.index]! + 1) * dim);
      for (const it of group.slice(1)) block.set(v, row[it.index]! * dim);
      cache?.set(first.key, v);
    }
  }

  private async embedTexts(items: readonly { text: string; index: number }[], block: Float32Array, row: Int32Array, failures: Map<number, RejectedRecordError>): Promise<void> {
    if (items.length === 0) return;
    const t = this.settings.text;
    const { dim, maxTokens } = t;
    const rows = tokenRows(items.length, maxTokens);
    const usable: number[] = [];
    items.forEach((it, j) => {
      if (t.tokenizer.encodeInto(it.text, rows, usable.length) > 0) usable.push(j);
      else failures.set(it.index, new RejectedRecordError('INVALID_FIELD', 'text has no words or characters the text encoder can use'));
    });
    if (usable.length === 0) return;
    const n = usable.length * maxTokens;
    // Only the inputs the model declares (a hashed-token model takes the ids alone).
    const inputs: Record<string, TensorData> = { [t.inputs.inputIds.name]: rows.inputIds.subarray(0, n) };
    if (t.inputs.attentionMask) inputs[t.inputs.attentionMask.name] = rows.attentionMask.subarray(0, n);
    if (t.inputs.tokenTypeIds) inputs[t.inputs.tokenTypeIds.name] = rows.tokenTypeIds.subarray(0, n);
    const { outputs } = await this.engine.infer(t.model, { items: usable.length, inputs });
    const states = outputs[t.outputs.states.name];
    if (!(states instanceof Float32Array)) throw new InferenceError('MODEL_FAILED', `model ${t.model} gave no float32 output ${t.outputs.states.name}`);
    usable.forEach((j, r) => poolText(t.pooling, t.normalize, states, rows.attentionMask, r, maxTokens, dim, block, row[items[j]!.index]! * dim));
  }

  /** Ids always embed (any string hashes to a bucket), so clicks have no failures. */
  private async embedClicks(
    items: readonly { itemId: string | null; categoryId: string; index: number }[],
    block: Float32Array,
    row: Int32Array,
    useCache = true,
  ): Promise<void> {
    if (items.length === 0) return;
    const { dim, itemBuckets, categoryBuckets, itemSeed, categorySeed } = this.settings.click;
    const keyed = items.map((it) => ({ ...it, key: `${it.itemId ?? ''}\u0000${it.categoryId}` }));
    const pending = this.fromCache(useCache ? this.caches.item : undefined, keyed, dim, block, row);
    if (pending.size === 0) return;
    const keys = [...pending.keys()];
    const itemIds = new BigInt64Array(keys.length);
    const categoryIds = new BigInt64Array(keys.length);
    keys.forEach((k, r) => {
      const first = pending.get(k)![0]!;
      itemIds[r] = first.itemId === null ? 0n : bucketOf(first.itemId, itemBuckets, itemSeed);
      categoryIds[r] = bucketOf(first.categoryId, categoryBuckets, categorySeed);
    });
    const { embedding: emb } = await inferTyped(this.engine, this.settings.click, { items: keys.length, inputs: { itemIds, categoryIds } });
    keys.forEach((k, r) => {
      const v = rowOf(emb, r, dim);
      if (useCache) this.caches.item.set(k, v);
      for (const it of pending.get(k)!) block.set(v, row[it.index]! * dim);
    });
  }

  private async loadImage(source: ImageSource, prep: ImagePreprocessing): Promise<Buffer> {
    const bytes = source.kind === 'inline' ? source.data : await this.fetcher.fetch(source.uri);
    return decodeRgb(bytes, prep.size, this.imageMaxPixels, prep.resize);
  }

  /** Fills rows found in the cache; returns the rest grouped by key (each key encoded once). */
  private fromCache<T extends { key: string; index: number }>(cache: EmbeddingCache | undefined, items: readonly T[], dim: number, block: Float32Array, row: Int32Array): Map<string, T[]> {
    const pending = new Map<string, T[]>();
    for (const it of items) {
      const group = pending.get(it.key);
      if (group) {
        group.push(it);
        continue;
      }
      const hit = cache?.get(it.key);
      if (hit) block.set(hit, row[it.index]! * dim);
      else pending.set(it.key, [it]);
    }
    return pending;
  }
}

/**
 * Image-cache key of an ad creative: a hash of its bytes, or its URI for a reference (a referenced
 * creative is taken as immutable: a new creative should get a new URI).
 */
function creativeKey(source: ImageSource): string {
  return source.kind === 'inline' ? `sha256:${createHash('sha256').update(source.data).digest('hex')}` : `uri:${source.uri}`;
}


function asRejection(err: unknown): RejectedRecordError {
  return err instanceof RejectedRecordError ? err : new RejectedRecordError('IMAGE_UNREADABLE', String((err as Error)?.message ?? err));
}
