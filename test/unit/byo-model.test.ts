/**
 * Bring your own model: a user model card (MODEL_CARD) replaces the image encoder with another
 * ONNX file, with its own input size and embedding size; its embeddings are zero-padded to the
 * widest encoder for fusion, and the scorer works in the fused space.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import { CATEGORIES, productImage, seededRandom, syntheticAds } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import { ConfigError } from '../../src/domain/errors.js';
import type { InputRecord } from '../../src/domain/events.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { buildImageEncoder } from '../../src/models/graphs/image-encoder.js';
import { GraphBuilder } from '../../src/models/graphs/graph-builder.js';
import { silentLogger } from '../../src/util/log.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const SLOW = 60_000;

const modelDir = mkdtempSync(join(tmpdir(), 'adstream-models-'));
const cardDir = mkdtempSync(join(tmpdir(), 'adstream-byo-'));
const stateDir = mkdtempSync(join(tmpdir(), 'adstream-state-'));

/** The card entry of item "image" for a 96 px, 32-d encoder; tests vary it. */
function imageEntry(): Record<string, unknown> {
  return {
    file: 'my-image.onnx',
    inputs: [{ name: 'pixels', type: 'float32', shape: ['batch', 3, 96, 96] }],
    outputs: [{ name: 'embedding', type: 'float32', shape: ['batch', 32] }],
    embeddingDim: 32,
    preprocessing: { size: 96, layout: 'NCHW', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  };
}

/** Writes a card (JSON text or an object) into cardDir and returns its path. */
function writeCard(name: string, card: unknown): string {
  const path = join(cardDir, name);
  writeFileSync(path, typeof card === 'string' ? card : JSON.stringify(card, null, 2));
  return path;
}

const configFor = (modelCard: string) => loadConfig({ env: {}, overrides: { modelDir, stateDir, modelCard, inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });

let cardPath: string;
let core: Core | undefined;
beforeAll(() => {
  // A second image encoder, built by the project's own builder with another size, width and seed.
  writeFileSync(join(cardDir, 'my-image.onnx'), buildImageEncoder({ size: 96, dim: 32, seed: 0xb10c }));
  cardPath = writeCard('card.json', { models: { image: imageEntry() } });
}, SLOW);
afterAll(async () => {
  await core?.close();
});

describe('Bring your own model (MODEL_CARD)', () => {
  it('runs a user image encoder of another size and width, and still matches image views to ads', async () => {
    const config = configFor(cardPath);
    core = await startCore(config, { logger: silentLogger, clock: () => NOW });

    // The same preparation the core did (idempotent): encoder widths, fusion padded to the widest, scorer for F.
    const models = await prepareModels(config);
    expect([models.encoders.image.dim, models.encoders.text.dim, models.encoders.click.dim]).toEqual([32, 64, 64]);
    expect(models.encoders.image.prep).toEqual({ size: 96, layout: 'NCHW', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(core.embedder.dims).toEqual([32, 64, 64]);
    expect(models.fusion).toMatchObject({ strategy: 'concat', inputDim: 64, dim: 128 });
    expect(core.fuser.dim).toBe(128);
    expect(core.catalog.dim).toBe(128);
    expect(core.users.dim).toBe(128);

    const imageSpec = models.specs.find((s) => s.name === 'image')!;
    expect(imageSpec.path).toBe(join(cardDir, 'my-image.onnx'));
    expect(imageSpec.inputs).toEqual([{ name: 'pixels', type: 'float32', itemShape: [3, 96, 96] }]);
    // Fusion runs in-process: no model of its own.
    expect(models.specs.map((s) => s.name)).toEqual(['image', 'text', 'click', 'scorer', 'ctr']);
    const scorer = models.specs.find((s) => s.name === 'scorer')!;
    expect(basename(scorer.path)).toBe('scorer-d128.onnx');
    expect(existsSync(scorer.path)).toBe(true);
    expect(scorer.inputs).toEqual([{ name: 'users', type: 'float32', itemShape: [128] }]);
    // The file itself is a 128-d scorer: it runs on 128-wide users and ads.
    const session = await ort.InferenceSession.create(scorer.path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    try {
      const users = new Float32Array(128).fill(1);
      const ads = new Float32Array(2 * 128);
      ads.fill(1, 128);
      const out = await session.run({
        users: new ort.Tensor('float32', users, [1, 128]),
        ads: new ort.Tensor('float32', ads, [2, 128]),
        k: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
      });
      expect(Array.from(out.indices!.data as BigInt64Array)).toEqual([1n]);
      expect((out.scores!.data as Float32Array)[0]).toBeCloseTo(128, 3);
    } finally {
      await session.release();
    }

    // Catalog in, then users who view garden product images (128 px: resized to the card's 96).
    let offset = 0;
    const raw = (topic: string, key: string, value: Buffer): InputRecord => ({ topic, partition: 0, offset: String(offset++), key: Buffer.from(key), value, timestamp: NOW });
    const ads = await syntheticAds(5);
    expect(await core.catalogUpdater.apply(ads.map((ad) => raw(config.topicAds, ad.adId, encodeAd(core!.codec, ad, NOW))))).toEqual([]);

    const garden = CATEGORIES.find((c) => c.id === 'garden')!;
    const rand = seededRandom(4242);
    const records: InputRecord[] = [];
    for (let u = 0; u < 3; u++) {
      const userId = `gardener-${u}`;
      const data = await productImage(garden, rand, 128, 'png');
      records.push(raw(config.topicImageViews, userId, core.codec.encode('dev.adstream.events.ImageViewEvent', {
        eventId: `g-${u}`, userId, itemId: `item-garden-${u}`, categoryId: null, imageId: `garden-${u}`,
        image: { 'dev.adstream.events.InlineImage': { data, contentType: null } }, dwellMs: null, eventTime: NOW,
      })));
    }
    const { scored, deadLetters } = await core.processor.process(records);
    expect(deadLetters).toEqual([]);
    expect(scored).toHaveLength(3);
    for (const s of scored) {
      expect(s.modelVersion).toContain('byo:my-image.onnx');
      // The catalog's five garden ads first.
      expect(s.candidates.slice(0, 5).map((c) => c.categoryId)).toEqual(Array(5).fill('garden'));
    }
    expect(core.processor.modelVersion).toMatch(/^byo:my-image\.onnx@[0-9a-f]{12}\+default-v1-[0-9a-f]+\/concat-f128-w1,1,1\/ctr-v1$/);
  }, SLOW);

  it('pads the 32-d image embedding with zeros for fusion (average: F = 64, the image alone comes back normalised)', async () => {
    const avg = await startCore(loadConfig({ env: {}, overrides: { modelDir, stateDir: join(stateDir, 'average'), modelCard: cardPath, inferenceWorkers: 1, fusion: 'average' } }), { logger: silentLogger, clock: () => NOW });
    try {
      expect(avg.fuser.dim).toBe(64);
      const x = Float32Array.from({ length: 32 }, (_, i) => (i % 5) - 2);
      const fused = await avg.fuser.fuseEvents({ modality: Uint8Array.of(0), row: Int32Array.of(0), blocks: [x, new Float32Array(0), new Float32Array(0)], failures: new Map() }, [0]);
      const norm = Math.hypot(...x);
      for (let i = 0; i < 32; i++) expect(fused[i]).toBeCloseTo(x[i]! / norm, 5);
      for (let i = 32; i < 64; i++) expect(fused[i]).toBe(0);
    } finally {
      await avg.close();
    }
  }, SLOW);

  it("runs a user CTR model (its own output name) inside the scorer's request, on each candidate of the top k", async () => {
    // sigmoid(u . a): above 0.5 for every ad closer than orthogonal, where the default CTR model stays under 13 %.
    const g = new GraphBuilder('user_ctr');
    const u = g.input('user', 'float32', ['batch', 128]);
    const a = g.input('ad', 'float32', ['batch', 128]);
    const dot = g.op1('ReduceSum', [g.op1('Mul', [u, a]), g.int64s('axes', [1])], { keepdims: 1 });
    g.op1('Sigmoid', [dot], {}, 'p_click');
    g.output('p_click', 'float32', ['batch', 1]);
    writeFileSync(join(cardDir, 'my-ctr.onnx'), g.build());
    const ctrEntry = { file: 'my-ctr.onnx', inputs: [{ name: 'user', type: 'float32', shape: ['batch', 128] }, { name: 'ad', type: 'float32', shape: ['batch', 128] }], outputs: [{ name: 'p_click', type: 'float32', shape: ['batch', 1] }] };
    const config = loadConfig({ env: {}, overrides: { modelDir, stateDir: join(stateDir, 'ctr'), modelCard: writeCard('ctr.json', { models: { ctr: ctrEntry } }), inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });
    const models = await prepareModels(config);
    expect(models.specs.find((s) => s.name === 'scorer')!.rerank).toMatchObject({ model: 'ctr', score: 'p_click', output: 'ctr' });
    const withCtr = await startCore(config, { logger: silentLogger, clock: () => NOW });
    try {
      let offset = 0;
      const raw = (topic: string, key: string, value: Buffer): InputRecord => ({ topic, partition: 0, offset: String(offset++), key: Buffer.from(key), value, timestamp: NOW });
      const ads = await syntheticAds(5);
      expect(await withCtr.catalogUpdater.apply(ads.map((ad) => raw(config.topicAds, ad.adId, encodeAd(withCtr.codec, ad, NOW))))).toEqual([]);
      const click = withCtr.codec.encode('dev.adstream.events.ClickEvent', { eventId: 'c-1', userId: 'clicker', itemId: 'item-garden-1', categoryId: 'garden', action: 'CLICK', eventTime: NOW, sessionId: null });
      const { scored, deadLetters } = await withCtr.processor.process([raw(config.topicClicks, 'clicker', click)]);
      expect(deadLetters).toEqual([]);
      expect(scored).toHaveLength(1);
      expect(withCtr.processor.modelVersion).toMatch(/\/byo:my-ctr\.onnx@[0-9a-f]{12}$/);
      // One interest (share 1): the top candidates' scores are the user model's sigmoid of a positive cosine.
      expect(scored[0]!.candidates[0]!.categoryId).toBe('garden');
      expect(scored[0]!.candidates[0]!.score).toBeGreaterThan(0.5);
    } finally {
      await withCtr.close();
    }
  }, SLOW);

  it("takes a user encoder's tensor names from its card; roles and element types stay", async () => {
    const entry = { ...imageEntry(), inputs: [{ name: 'input.1', type: 'float32', shape: ['batch', 3, 96, 96] }], outputs: [{ name: 'features', type: 'float32', shape: ['batch', 32] }] };
    const models = await prepareModels(configFor(writeCard('renamed.json', { models: { image: entry } })));
    expect(models.encoders.image).toMatchObject({ model: 'image', inputs: { pixels: { name: 'input.1', type: 'float32' } }, outputs: { embedding: { name: 'features', type: 'float32' } } });
    const imageSpec = models.specs.find((s) => s.name === 'image')!;
    expect(imageSpec.inputs).toEqual([{ name: 'input.1', type: 'float32', itemShape: [3, 96, 96] }]);
    expect(imageSpec.outputs).toEqual([{ name: 'features', type: 'float32', itemShape: [32] }]);
    // The defaults keep theirs.
    expect(models.encoders.click.inputs).toEqual({ itemIds: { name: 'item_ids', type: 'int64' }, categoryIds: { name: 'category_ids', type: 'int64' } });
  }, SLOW);

  describe('refuses a bad card with a ConfigError naming MODEL_CARD', () => {
    const refuses = async (card: unknown, message: RegExp): Promise<void> => {
      const path = writeCard(`bad-${Math.random().toString(36).slice(2)}.json`, card);
      const err = await prepareModels(configFor(path)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).setting).toBe('MODEL_CARD');
      expect((err as ConfigError).message).toMatch(/^MODEL_CARD: /);
      expect((err as ConfigError).message).toMatch(message);
    };

    it('a model that cannot be replaced', async () => {
      await refuses({ models: { scorer: { ...imageEntry(), file: 'my-image.onnx' } } }, /"scorer" cannot be replaced; allowed: image, text, click, ctr/);
    }, SLOW);

    it('a CTR model whose inputs are not user and ad of the fused width', async () => {
      const ctr = (width: number) => ({ file: 'my-image.onnx', inputs: [{ name: 'user', type: 'float32', shape: ['batch', width] }, { name: 'ad', type: 'float32', shape: ['batch', width] }], outputs: [{ name: 'ctr', type: 'float32', shape: ['batch', 1] }] });
      await refuses({ models: { ctr: ctr(64) } }, /ctr input user must be float32 \[batch, 128\]/);
      await refuses({ models: { ctr: { ...ctr(128), inputs: [{ name: 'query', type: 'float32', shape: ['batch', 128] }] } } }, /ctr model must have an input named user/);
    }, SLOW);

    it('an encoder tensor of another element type than the pipeline feeds or reads', async () => {
      await refuses({ models: { image: { ...imageEntry(), inputs: [{ name: 'pixels', type: 'int64', shape: ['batch', 3, 96, 96] }] } } }, /image encoder input pixels must be float32, got int64/);
      await refuses({ models: { image: { ...imageEntry(), outputs: [{ name: 'embedding', type: 'int64', shape: ['batch', 32] }] } } }, /image encoder output embedding must be float32, got int64/);
    }, SLOW);

    it('a file that does not exist', async () => {
      await refuses({ models: { image: { ...imageEntry(), file: 'missing.onnx' } } }, /missing\.onnx does not exist/);
    }, SLOW);

    it('a layout other than NCHW or NHWC', async () => {
      const entry = imageEntry();
      await refuses({ models: { image: { ...entry, preprocessing: { ...(entry.preprocessing as object), layout: 'CHW' } } } }, /layout must be NCHW or NHWC/);
    }, SLOW);

    it('a std with a zero', async () => {
      const entry = imageEntry();
      await refuses({ models: { image: { ...entry, preprocessing: { ...(entry.preprocessing as object), std: [0.25, 0, 0.25] } } } }, /std must be positive/);
    }, SLOW);

    it('a symbolic dimension past the batch dimension', async () => {
      await refuses({ models: { image: { ...imageEntry(), inputs: [{ name: 'pixels', type: 'float32', shape: ['batch', 3, 'height', 'width'] }] } } }, /only the first \(batch\) dimension may be symbolic/);
    }, SLOW);

    it('a card that is not JSON', async () => {
      await refuses('{ "models": { "image": ', /cannot read .* as JSON/);
    }, SLOW);

    it('an encoder output declared of another width than its embeddingDim', async () => {
      await refuses({ models: { image: { ...imageEntry(), outputs: [{ name: 'embedding', type: 'float32', shape: ['batch', 48] }] } } }, /output embedding is declared \[batch, 48\], but embeddingDim is 32/);
    }, SLOW);
  });

  it('stops the start with MODEL_CARD when the model really outputs another width than the card says (checked on the warm-up)', async () => {
    // The card says 32 everywhere; the file is a 48-d encoder. The embedder would slice its rows 32 at a time.
    writeFileSync(join(cardDir, 'wide-image.onnx'), buildImageEncoder({ size: 96, dim: 48, seed: 0xb10c }));
    const path = writeCard('wide.json', { models: { image: { ...imageEntry(), file: 'wide-image.onnx' } } });
    const err = await startCore(configFor(path), { logger: silentLogger, clock: () => NOW }).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^MODEL_CARD: models\.image \(wide-image\.onnx\): output embedding is \[batch, 48\] when run on a zero batch at warm-up, but the card says embeddingDim 32$/);
  }, SLOW);
});
