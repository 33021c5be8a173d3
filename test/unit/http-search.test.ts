/**
 * POST /search over a real socket: a text query or an image's bytes, authenticated like
 * /users/:id, size-limited, answered with the top-k active ads by cosine of fused vectors; bad
 * queries get the status and reason an event would be dead-lettered with.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer } from '../../src/adapters/http/server.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import { CATEGORIES, productImage, seededRandom, syntheticAds } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { InputRecord } from '../../src/domain/events.js';
import type { Core } from '../../src/pipeline/core.js';
import { searchAds, type SearchResult } from '../../src/pipeline/ad-search.js';
import { silentLogger } from '../../src/util/log.js';

const NOW = Date.UTC(2026, 11, 1);
const TOKEN = 'search-secret';
const MAX_BYTES = 64 * 1024;
let core: Core;
let http: Awaited<ReturnType<typeof startHttpServer>>;
let base = '';

beforeAll(async () => {
  const config = loadConfig({ env: {}, overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), stateDir: mkdtempSync(join(tmpdir(), 'adstream-state-')), inferenceWorkers: 1, catalogUploadIntervalMs: 0 } });
  core = await startCore(config, { logger: silentLogger, clock: () => NOW });
  let offset = 0;
  const raw = (key: string, value: Buffer): InputRecord => ({ topic: config.topicAds, partition: 0, offset: String(offset++), key: Buffer.from(key), value, timestamp: NOW });
  const ads = await syntheticAds(3);
  expect(await core.catalogUpdater.apply(ads.map((ad) => raw(ad.adId, encodeAd(core.codec, ad, NOW))))).toEqual([]);
  http = await startHttpServer({ host: '127.0.0.1', port: 0, registry: new Registry(), isReady: () => true, token: TOKEN, search: (q, k) => searchAds(core, q, k), searchMaxBytes: MAX_BYTES });
  base = `http://127.0.0.1:${http.port}`;
}, 60_000);
afterAll(async () => {
  await http?.close();
  await core?.close();
});

const post = (body: string | Buffer, type: string, opts: { token?: string; k?: number } = {}) =>
  fetch(`${base}/search${opts.k === undefined ? '' : `?k=${opts.k}`}`, { method: 'POST', body, headers: { 'content-type': type, authorization: `Bearer ${opts.token ?? TOKEN}` } });

describe('POST /search', () => {
  it('finds the ad of a category by a text about it, top k by cosine', async () => {
    const res = await post(JSON.stringify({ text: 'android phone: big screen, good camera, the battery and charger work' }), 'application/json', { k: 3 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SearchResult;
    expect(body.modality).toBe('text');
    // Hashed tokens match words, and some of the synthetic ads' copy is Chinese: the best hit is an English phones ad.
    expect(body.hits).toHaveLength(3);
    expect(body.hits[0]!.categoryId).toBe('phones');
    expect(body.hits[0]!.score).toBeGreaterThan(body.hits[1]!.score);
    expect(body.hits[1]!.score).toBeGreaterThanOrEqual(body.hits[2]!.score);
  });

  it('finds the ads of a category by the bytes of a product image', async () => {
    const garden = CATEGORIES.find((c) => c.id === 'garden')!;
    const res = await post(await productImage(garden, seededRandom(99), 128, 'png'), 'image/png', { k: 3 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SearchResult;
    expect(body.modality).toBe('image');
    expect(body.hits.map((h) => h.categoryId)).toEqual(['garden', 'garden', 'garden']);
  });

  it('asks for the bearer token, refuses bodies over the limit, other types, unusable queries and a bad k', async () => {
    expect((await post(JSON.stringify({ text: 'shoes' }), 'application/json', { token: 'wrong' })).status).toBe(401);
    expect((await post(Buffer.alloc(MAX_BYTES + 1), 'image/png')).status).toBe(413);
    expect((await post('shoes', 'text/plain')).status).toBe(415);
    const gif = await post(Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'), 'image/png');
    expect(gif.status).toBe(400);
    expect(await gif.json()).toMatchObject({ reason: 'IMAGE_UNREADABLE' });
    expect((await post(JSON.stringify({ text: '!!! ...' }), 'application/json')).status).toBe(400);
    expect((await post(JSON.stringify({ text: 'shoes' }), 'application/json', { k: 0 })).status).toBe(400);
    expect((await fetch(`${base}/search`)).status).toBe(405);
  });
});
