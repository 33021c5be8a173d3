/**
 * Catalog load through the real catalog updater (decode + encode + fuse): M synthetic ads whose
 * creatives come from a pool of distinct images (ads share them, as the issue allows, so the decode
 * count stays honest but the run short), applied in chunks as the ad topic delivers them. Then a
 * restart on the same state folder loads them again: the persisted embeddings should leave no
 * creative to decode.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startCore } from '../src/app/assemble.js';
import type { Config } from '../src/app/config/settings.js';
import { syntheticAds, CATEGORIES, type SyntheticAd } from '../src/devtools/synthetic.js';
import { encodeAd } from '../src/devtools/traffic.js';
import type { InferenceReporter } from '../src/inference/types.js';
import type { AvroCodec } from '../src/serde/avro-codec.js';
import { silentLogger } from '../src/util/log.js';

export interface CatalogLoad {
  readonly ads: number;
  readonly distinctCreatives: number;
  readonly cold: { readonly adsPerS: number; readonly decoded: number };
  readonly warm: { readonly adsPerS: number; readonly decoded: number };
}

const CHUNK = 500;

/**
 * Produces `base` grown to `count` ads (catalogSlice) to `topic`, made and sent 10,000 at a time and let go: a million
 * ads held by the benchmark's process through its sweep made its GC pauses, which the generator and
 * the observer share, part of the latency it measured.
 */
export async function produceCatalog(producer: { send(batches: { topic: string; records: { key: Buffer; value: Buffer }[] }[]): Promise<unknown> }, codec: AvroCodec, topic: string, base: readonly SyntheticAd[], count: number, now = Date.now()): Promise<void> {
  for (let at = 0; at < count; at += 10_000) {
    const batch = catalogSlice(base, at, Math.min(count, at + 10_000));
    await producer.send([{ topic, records: batch.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, now) })) }]);
  }
}

/**
 * Ads [from, to) of `base` grown to any count >= to, made without the others: past `base`, copies
 * under new ids that share their original's creative (so the decode stays short) and get one
 * distinct title token each (so their vectors differ, as real ads of one category do, instead of
 * piling up as duplicates in the index).
 */
export function catalogSlice<A extends { readonly adId: string; readonly title: string }>(base: readonly A[], from: number, to: number): A[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, j) => {
    const i = from + j;
    const b = base[i % base.length]!;
    return i < base.length ? b : { ...b, adId: `${b.adId}-x${i}`, title: `${b.title} v${i}` };
  });
}

export async function measureCatalogLoad(base: Config, count: number, creatives = Math.min(count, 400)): Promise<CatalogLoad> {
  const perCategory = Math.max(1, Math.ceil(creatives / CATEGORIES.length));
  const pool = await syntheticAds(perCategory, 17);
  const stateDir = mkdtempSync(join(tmpdir(), 'adstream-bench-catalog-'));
  const config: Config = { ...base, stateDir, catalogUploadIntervalMs: 1000 };
  try {
    const cold = await loadOnce(config, pool, count);
    const warm = await loadOnce(config, pool, count);
    return { ads: count, distinctCreatives: pool.length, cold, warm };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

async function loadOnce(config: Config, pool: Awaited<ReturnType<typeof syntheticAds>>, count: number): Promise<{ adsPerS: number; decoded: number }> {
  let decoded = 0;
  const reporter: InferenceReporter = {
    batch: (model, e) => void (model === 'image' && !e.failed && (decoded += e.batchSize)),
    queueDepth: () => undefined,
    rejected: () => undefined,
    provider: () => undefined,
  };
  const core = await startCore(config, { logger: silentLogger, inferenceReporter: reporter, stateDir: join(config.stateDir, 'users') });
  try {
    const now = Date.now();
    const started = performance.now();
    for (let at = 0; at < count; at += CHUNK) {
      const records = Array.from({ length: Math.min(CHUNK, count - at) }, (_, j) => {
        const ad = { ...pool[(at + j) % pool.length]!, adId: `bench-ad-${at + j}` };
        return { topic: config.topicAds, partition: 0, offset: String(at + j), key: Buffer.from(ad.adId), value: encodeAd(core.codec, ad, now), timestamp: now };
      });
      const rejected = await core.catalogUpdater.apply(records);
      if (rejected.length > 0) throw new Error(`catalog rejected ${rejected.length} ads: ${rejected[0]!.message}`);
    }
    return { adsPerS: Math.round(count / ((performance.now() - started) / 1000)), decoded };
  } finally {
    await core.close();
  }
}
