/**
 * Ad creatives are embedded once per content: an ad update that keeps its creative (a bid change, a
 * deactivate/reactivate) does not decode and encode the image again; a new creative does.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import { CATEGORIES, productImage, seededRandom, syntheticAds, type SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { InferenceReporter } from '../../src/inference/types.js';
import type { InputRecord } from '../../src/domain/events.js';
import { silentLogger } from '../../src/util/log.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), stateDir: mkdtempSync(join(tmpdir(), 'adstream-state-')), inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });

/** Items inferred per model, as the engine reports them. */
const inferred = new Map<string, number>();
const countingReporter: InferenceReporter = {
  batch: (model, e) => void inferred.set(model, (inferred.get(model) ?? 0) + (e.failed ? 0 : e.batchSize)),
  queueDepth: () => undefined,
  rejected: () => undefined,
  provider: () => undefined,
};
const images = (): number => inferred.get('image') ?? 0;

let core: Core;
let ads: SyntheticAd[];
let offset = 0;
beforeAll(async () => {
  ads = await syntheticAds(2);
  core = await startCore(config, { logger: silentLogger, clock: () => NOW, inferenceReporter: countingReporter });
});
afterAll(async () => {
  await core?.close();
});

function adRecord(ad: SyntheticAd, updatedAt: number, active = true): InputRecord {
  return { topic: config.topicAds, partition: 0, offset: String(offset++), key: Buffer.from(ad.adId), value: encodeAd(core.codec, ad, updatedAt, active), timestamp: NOW };
}

describe('Ad creative embeddings', () => {
  it('are reused when an update keeps the creative, and recomputed when the creative changes', async () => {
    expect(await core.catalogUpdater.apply(ads.map((ad) => adRecord(ad, NOW)))).toEqual([]);
    const loaded = images();
    expect(loaded).toBe(ads.length); // every creative differs: one image inference each

    // A bid change and a deactivate/reactivate, with newer updatedAt: no image inference.
    const first = ads[0]!;
    const rebid = { ...first, bidMicros: first.bidMicros + 1 };
    expect(await core.catalogUpdater.apply([adRecord(rebid, NOW + 1)])).toEqual([]);
    expect(await core.catalogUpdater.apply([adRecord(rebid, NOW + 2, false)])).toEqual([]);
    expect(await core.catalogUpdater.apply([adRecord(rebid, NOW + 3, true)])).toEqual([]);
    expect(core.catalog.get(first.adId)?.active).toBe(true);
    // Re-applying the whole catalog: nothing new either.
    expect(await core.catalogUpdater.apply(ads.map((ad) => adRecord(ad, NOW + 4)))).toEqual([]);
    expect(images()).toBe(loaded);

    // A new creative is decoded and encoded, once even if two ads carry it.
    const creative = await productImage(CATEGORIES[0]!, seededRandom(1234), 48, 'png');
    const recreated = [{ ...first, image: creative }, { ...ads[1]!, image: creative }];
    expect(await core.catalogUpdater.apply(recreated.map((ad) => adRecord(ad, NOW + 5)))).toEqual([]);
    expect(images()).toBe(loaded + 1);
  });
});
