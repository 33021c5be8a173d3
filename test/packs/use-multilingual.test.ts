/**
 * The use-multilingual pack: golden embeddings through adstream's whole text path (the
 * tokenizer.json made from the model's SentencePiece proto, run by @huggingface/tokenizers; the
 * cut graph; the embedder) against the original graph run by onnxruntime-extensions
 * (reference/use_multilingual.py); and English/Chinese translation pairs close across languages,
 * up to the scored ads of a Chinese review.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import type { InputRecord, ReviewEvent } from '../../src/domain/events.js';
import { searchAds } from '../../src/pipeline/ad-search.js';
import { silentLogger } from '../../src/util/log.js';

const golden = JSON.parse(readFileSync(new URL('goldens/use-multilingual.json', import.meta.url), 'utf8')) as { sentences: string[]; embedding: number[][] };
const DIM = 512;
const NOW = Date.UTC(2026, 11, 1);

/** Real product sentences and their Chinese translations. */
const PAIRS: readonly (readonly [string, string])[] = [
  ['These running shoes are light and comfortable.', '这双跑鞋又轻又舒服。'],
  ['The battery of this phone lasts two days.', '这款手机的电池能用两天。'],
  ['A waterproof tent for family camping.', '适合家庭露营的防水帐篷。'],
  ['The coffee maker broke after a month.', '咖啡机用了一个月就坏了。'],
  ['Soft cotton T-shirt, true to size.', '柔软的纯棉T恤，尺码标准。'],
  ['Garden hose with a brass nozzle.', '带黄铜喷嘴的花园水管。'],
];

let core: Core;
beforeAll(async () => {
  const config = loadConfig({
    env: process.env as Record<string, string>,
    overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), stateDir: mkdtempSync(join(tmpdir(), 'adstream-state-')), modelPacks: 'use-multilingual', modelCard: null, inferenceWorkers: 1, catalogUploadIntervalMs: 0 },
  });
  core = await startCore(config, { logger: silentLogger, clock: () => NOW });
});
afterAll(async () => {
  await core?.close();
});

const review = (text: string, n: number): ReviewEvent => ({ kind: 'review', eventId: `r-${n}`, userId: `u-${n}`, itemId: 'i', eventTime: NOW, categoryId: null, rating: 5, text });

async function embed(texts: readonly string[]): Promise<Float32Array[]> {
  const out = await core.embedder.embedEvents(texts.map(review));
  expect([...out.failures.keys()]).toEqual([]);
  return texts.map((_, i) => out.blocks[1]!.slice(out.row[i]! * DIM, (out.row[i]! + 1) * DIM));
}
const cosine = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, j) => s + x * b[j]!, 0);

describe('use-multilingual pack', () => {
  it('gives the original runtime embedding (to 1e-4) for every golden sentence, through the processor\'s text path', async () => {
    expect(core.processor.modelVersion).toMatch(/pack:use-multilingual-r1@[0-9a-f]{12}\+tokenizer\.json@[0-9a-f]{12}/);
    const rows = await embed(golden.sentences);
    rows.forEach((row, i) => {
      let max = 0;
      for (let j = 0; j < DIM; j++) max = Math.max(max, Math.abs(row[j]! - golden.embedding[i]![j]!));
      expect(max, golden.sentences[i]).toBeLessThan(1e-4);
    });
  });

  it('puts an English sentence closest to its Chinese translation', async () => {
    const en = await embed(PAIRS.map((p) => p[0]));
    const zh = await embed(PAIRS.map((p) => p[1]));
    for (let i = 0; i < PAIRS.length; i++) {
      const scores = zh.map((z) => cosine(en[i]!, z));
      expect(scores.indexOf(Math.max(...scores)), PAIRS[i]![0]).toBe(i);
      expect(scores[i]).toBeGreaterThan(0.6);
      for (let j = 0; j < PAIRS.length; j++) if (j !== i) expect(scores[j]).toBeLessThan(0.4);
    }
  });

  it('scores the English ad of a product first for a Chinese review of it, and finds it by a Chinese search', async () => {
    let offset = 0;
    const raw = (topic: string, key: string, value: Buffer): InputRecord => ({ topic, partition: 0, offset: String(offset++), key: Buffer.from(key), value, timestamp: NOW });
    // One category for all: only the text tells the ads apart.
    const ads = PAIRS.map(([title], i) => raw('ads', `ad-${i}`, core.codec.encode('dev.adstream.catalog.Ad', { adId: `ad-${i}`, advertiserId: 'shop', title, description: '', categoryId: 'shop', image: null, bidMicros: 1_000_000, active: true, updatedAt: NOW })));
    expect(await core.catalogUpdater.apply(ads)).toEqual([]);
    const reviews = PAIRS.map(([, zh], i) => raw('reviews', `buyer-${i}`, core.codec.encode('dev.adstream.events.ReviewEvent', { eventId: `z-${i}`, userId: `buyer-${i}`, itemId: `item-${i}`, categoryId: null, rating: 5, text: zh, language: 'zh-CN', eventTime: NOW })));
    const { scored, deadLetters } = await core.processor.process(reviews);
    expect(deadLetters).toEqual([]);
    expect(scored.map((s) => [s.userId, s.candidates[0]!.adId])).toEqual(PAIRS.map((_, i) => [`buyer-${i}`, `ad-${i}`]));
    // POST /search's query path: a Chinese query finds the English ad.
    for (let i = 0; i < PAIRS.length; i++) expect((await searchAds(core, { kind: 'text', text: PAIRS[i]![1] }, 1)).hits[0]!.adId).toBe(`ad-${i}`);
  });
});
