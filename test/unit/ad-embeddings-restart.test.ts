/**
 * Ad creatives' and ad texts' embeddings persist on local disk by content hash: a restart on the
 * same state folder loads the whole catalog without decoding a creative or running the text
 * encoder again, and gives the ads the same vectors; another folder (a cold disk) does it all.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import { syntheticAds, type SyntheticAd } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { InferenceReporter } from '../../src/inference/types.js';
import type { InputRecord } from '../../src/domain/events.js';
import { silentLogger } from '../../src/util/log.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const modelDir = mkdtempSync(join(tmpdir(), 'adstream-models-'));
const configFor = (stateDir: string) => loadConfig({ env: {}, overrides: { modelDir, stateDir, inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });

/** Starts a core that counts the creatives it decodes (one image inference per decoded creative) and the texts it encodes. */
async function start(stateDir: string): Promise<{ core: Core; decoded: () => number; encodedTexts: () => number }> {
  let images = 0;
  let texts = 0;
  const reporter: InferenceReporter = {
    batch: (model, e) => {
      if (e.failed) return;
      if (model === 'image') images += e.batchSize;
      if (model === 'text') texts += e.batchSize;
    },
    queueDepth: () => undefined,
    rejected: () => undefined,
    provider: () => undefined,
  };
  const core = await startCore(configFor(stateDir), { logger: silentLogger, clock: () => NOW, inferenceReporter: reporter, stateDir: mkdtempSync(join(tmpdir(), 'adstream-users-')) });
  cores.push(core);
  return { core, decoded: () => images, encodedTexts: () => texts };
}

const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
});

const records = (core: Core, ads: readonly SyntheticAd[]): InputRecord[] =>
  ads.map((ad, i) => ({ topic: 'ads', partition: 0, offset: String(i), key: Buffer.from(ad.adId), value: encodeAd(core.codec, ad, NOW), timestamp: NOW }));

describe('Persisted ad embeddings', () => {
  it('a warm restart decodes no creative, encodes no text and gives every ad the same vector; a cold disk does it all again', async () => {
    const ads = await syntheticAds(2);
    const dir = mkdtempSync(join(tmpdir(), 'adstream-state-'));

    const first = await start(dir);
    expect(await first.core.catalogUpdater.apply(records(first.core, ads))).toEqual([]);
    expect(first.decoded()).toBe(ads.length);
    expect(first.encodedTexts()).toBe(new Set(ads.map((ad) => `${ad.title}\n${ad.description}`)).size);
    // Embedded, so the catalog holds no creative bytes (they would pin the fetched records).
    for (const ad of ads) expect(first.core.catalog.get(ad.adId)?.image).toBeNull();
    const vectors = new Map(ads.map((ad) => [ad.adId, first.core.catalog.vectorOf(ad.adId)!.slice()]));
    await first.core.close();
    cores.length = 0;

    const warm = await start(dir);
    expect(await warm.core.catalogUpdater.apply(records(warm.core, ads))).toEqual([]);
    expect(warm.decoded()).toBe(0);
    expect(warm.encodedTexts()).toBe(0);
    expect(warm.core.catalog.activeCount).toBe(ads.length);
    for (const ad of ads) expect(Array.from(warm.core.catalog.vectorOf(ad.adId)!)).toEqual(Array.from(vectors.get(ad.adId)!));

    const cold = await start(mkdtempSync(join(tmpdir(), 'adstream-state-')));
    expect(await cold.core.catalogUpdater.apply(records(cold.core, ads))).toEqual([]);
    expect(cold.decoded()).toBe(ads.length);
    expect(cold.encodedTexts()).toBe(first.encodedTexts());
  }, 120_000);
});
