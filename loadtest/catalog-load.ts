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
import { syntheticAds, CATEGORIES } from '../src/devtools/synthetic.js';
import { encodeAd } from '../src/devtools/traffic.js';
import type { InferenceReporter } from '../src/inference/types.js';
import { silentLogger } from '../src/util/log.js';

export interface CatalogLoad {
  readonly ads: number;
  readonly distinctCreatives: number;
  readonly cold: { readonly adsPerS: number; readonly decoded: number };
  readonly warm: { readonly adsPerS: number; readonly decoded: number };
}

const CHUNK = 500;

/**
 * `base` grown to `count` ads: copies under new ids that share their original's creative (so the
 * decode stays short) and get one distinct title token each (so their vectors differ, as real ads
 * of one category do, instead of piling up as duplicates in the index).
 */
export function catalogOf<A extends { readonly adId: string; readonly title: string }>(base: readonly A[], count: number): A[] {
  if (count <= base.length) return base.slice(0, count);
  return Array.from({ length: count }, (_, i) => (i < base.length ? base[i]! : { ...base[i % base.length]!, adId: `${base[i % base.length]!.adId}-x${i}`, title: `${base[i % base.length]!.title} v${i}` }));
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
