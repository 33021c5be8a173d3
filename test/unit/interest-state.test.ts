/**
 * The user-interest state through the core, on real models: fusion strategies, several interests
 * per user, the CTR re-rank, segments, rate-limited emission and the changelog form of the state.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessResult } from '../../src/domain/outputs.js';
import type { EmbeddedEvents } from '../../src/pipeline/embed.js';
import { writeFusedModels } from '../../src/models/fused-models.js';
import { buildCtrModel } from '../../src/models/graphs/ctr.js';
import { GraphBuilder } from '../../src/models/graphs/graph-builder.js';
import { CATEGORIES, productImage } from '../../src/devtools/synthetic.js';
import { seededRandom } from '../../src/util/random.js';
import { categoriesOf, CoreDriver, MODEL_DIR, NOW, RecordMaker, testConfig } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

const SLOW = 60_000;

function unit(v: Float32Array | number[]): Float32Array {
  const out = Float32Array.from(v);
  const n = Math.hypot(...out);
  return out.map((x) => x / n);
}

function dot(a: Float32Array, b: Float32Array, ao = 0, bo = 0, n = a.length - ao): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

function randomUnit(rand: () => number, dim: number): Float32Array {
  return unit(Float32Array.from({ length: dim }, () => rand() * 2 - 1));
}

/** EmbeddedEvents of one modality's rows (as the embedder would hand them to the fuser). */
function embedded(modality: number, rows: readonly Float32Array[], dims: readonly number[]): EmbeddedEvents {
  const blocks: [Float32Array, Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0), new Float32Array(0)];
  blocks[modality] = new Float32Array(rows.length * dims[modality]!);
  rows.forEach((r, i) => blocks[modality]!.set(r, i * dims[modality]!));
  return { modality: new Uint8Array(rows.length).fill(modality), row: Int32Array.from(rows, (_, i) => i), blocks, failures: new Map() };
}

/** Every eventId of a result is in exactly one place: a scored output, or a state change's pending ids. */
function lineage(r: ProcessResult): string[] {
  return [...r.scored.flatMap((s) => s.eventIds), ...r.stateChanges.flatMap((s) => s.pendingEventIds)].sort();
}

describe('fusion strategies, run by the engine', () => {
  it('average: one modality comes back normalised (and padded, the F = widest encoder)', async () => {
    const core = await driver.core(testConfig({ fusion: 'average' }));
    expect(core.fuser.dim).toBe(64);
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
    const fused = await core.fuser.fuseEvents(embedded(1, [x], core.embedder.dims), [0]);
    const want = unit(x);
    for (let i = 0; i < 64; i++) expect(fused[i]).toBeCloseTo(want[i]!, 5);
    expect(core.processor.modelVersion).toMatch(/\/average-f64-w1,1,1\/ctr-v1$/);
  }, SLOW);

  it('weighted: an ad with three modalities is the normalised weighted sum (WEIGHT_*)', async () => {
    const core = await driver.core(testConfig({ fusion: 'weighted', weightImage: 3, weightText: 1, weightClick: 0.5 }));
    const rand = seededRandom(8);
    const [img, txt, clk] = [randomUnit(rand, 64), randomUnit(rand, 64), randomUnit(rand, 64)];
    const fused = await core.fuser.fuseAds([img, txt, clk], 1);
    const want = unit(Float32Array.from({ length: 64 }, (_, i) => 3 * img[i]! + txt[i]! + 0.5 * clk[i]!));
    for (let i = 0; i < 64; i++) expect(fused[i]).toBeCloseTo(want[i]!, 5);
    expect(dot(fused, img)).toBeGreaterThan(dot(fused, txt));
    expect(dot(fused, txt)).toBeGreaterThan(dot(fused, clk));
  }, SLOW);

  it('concat: keeps the similarity ranking within a modality, and keeps modalities apart', async () => {
    const core = await driver.core();
    expect(core.fuser.dim).toBe(128);
    // 8 clusters of 5 click vectors: cosine ~0.8 inside a cluster, ~0 across.
    const rand = seededRandom(3);
    const centers = Array.from({ length: 8 }, () => randomUnit(rand, 64));
    const items = centers.flatMap((c) => Array.from({ length: 5 }, () => unit(Float32Array.from(c, (x) => x + (rand() - 0.5) * 0.15))));
    const fused = await core.fuser.fuseEvents(embedded(2, items, core.embedder.dims), items.map((_, i) => i));
    const raw: number[] = [];
    const out: number[] = [];
    for (let a = 0; a < items.length; a++) {
      let nearest = -1;
      let best = -2;
      for (let b = 0; b < items.length; b++) {
        if (a === b) continue;
        raw.push(dot(items[a]!, items[b]!));
        const c = dot(fused, fused, a * 128, b * 128, 128);
        out.push(c);
        if (c > best) [best, nearest] = [c, b];
      }
      expect(Math.floor(nearest / 5), `nearest of item ${a}`).toBe(Math.floor(a / 5));
    }
    expect(pearson(raw, out)).toBeGreaterThan(0.95);
    // The same vector as an image and as a click lands in different blocks before the projection.
    const asImage = await core.fuser.fuseEvents(embedded(0, [items[0]!], core.embedder.dims), [0]);
    expect(Math.abs(dot(asImage, fused, 0, 0, 128))).toBeLessThan(0.3);
  }, SLOW);
});

describe('several interests per user', () => {
  const alternating = (rec: RecordMaker, user: string, n: number) =>
    Array.from({ length: n }, (_, i) => rec.click(user, i % 2 === 0 ? 'shoes' : 'phones', { item: `item-${i % 2 === 0 ? 'shoes' : 'phones'}-${i}`, eventId: `${user}-${i}` }));

  it('a user alternating shoes and phones gets two interests, named shoes and phones, and ads of both', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const r = await core.processor.process(alternating(rec, 'alt', 6));
    const state = core.users.get('alt')!;
    expect(state.interests).toHaveLength(2);
    expect(state.interests.map((i) => i.events)).toEqual([3, 3]);
    expect(state.lastSegments.map((g) => g.name).sort()).toEqual(['phones', 'shoes']);
    expect(r.segments).toEqual([{ userId: 'alt', segments: state.lastSegments, updatedAt: NOW }]);
    const cats = categoriesOf(r.scored[0]!.candidates);
    expect(new Set(cats.slice(0, 10))).toEqual(new Set(['shoes', 'phones']));
    expect(r.stateChanges).toHaveLength(1); // one change per user per call, however many events
    expect(r.stateChanges[0]!.interests).toHaveLength(2);
  }, SLOW);

  it('groups a category across modalities: shoes clicks, shoes images and a shoes review are one interest', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const shoes = CATEGORIES.find((c) => c.id === 'shoes')!;
    const records = [
      rec.click('multi', 'shoes'),
      rec.image('multi', await productImage(shoes, seededRandom(31), 64, 'png'), { imageId: 'shoe-img' }),
      rec.review('multi', '这双跑鞋很舒服，鞋底很软'),
      rec.click('multi', 'phones'),
      rec.image('multi', await productImage(shoes, seededRandom(32), 64, 'jpeg'), { imageId: 'shoe-img-2' }),
    ];
    await core.processor.process(records);
    const state = core.users.get('multi')!;
    // Two interests, by category, not one per modality (the encoders are not aligned across modalities).
    expect(state.interests.map((i) => i.events).sort()).toEqual([1, 4]);
    expect(state.lastSegments.map((g) => g.name)).toEqual(['shoes', 'phones']);
  }, SLOW);

  it('does not fold a replayed event into the interests twice, but emits its lineage again', async () => {
    const { core, rec, config } = await driver.coreWithCatalog();
    const first = [rec.click('replayed', 'toys', { eventId: 'r1' }), rec.click('replayed', 'toys', { eventId: 'r2' })];
    await core.processor.process(first);
    expect(core.users.get('replayed')!.interests[0]!.events).toBe(2);
    // As after a crash: the state (restored) holds r1 and r2, whose offsets were not committed.
    driver.applied.mark(config.topicClicks, 0, BigInt(first[1]!.offset));
    try {
      const r = await core.processor.process([...first, rec.click('replayed', 'toys', { eventId: 'r3' })]);
      expect(core.users.get('replayed')!.interests[0]!.events).toBe(3);
      expect(r.scored[0]!.eventIds).toEqual(['r1', 'r2', 'r3']);
    } finally {
      driver.applied.retainPartitions(new Set());
    }
  }, SLOW);

  it('with INTERESTS_PER_USER=1 the same user is one blended interest', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ interestsPerUser: 1 }));
    const r = await core.processor.process(alternating(rec, 'alt', 6));
    const state = core.users.get('alt')!;
    expect(state.interests).toHaveLength(1);
    expect(state.interests[0]!.events).toBe(6);
    expect(state.lastSegments).toHaveLength(1);
    expect(r.scored[0]!.candidates).toHaveLength(10);
  }, SLOW);

  it('the state change is a snapshot: later changes to the user do not reach it', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const first = await core.processor.process([rec.click('snap', 'books')]);
    const before = Array.from(first.stateChanges[0]!.interests[0]!.vector);
    await core.processor.process([rec.click('snap', 'books', { action: 'PURCHASE' })]);
    expect(Array.from(first.stateChanges[0]!.interests[0]!.vector)).toEqual(before);
    expect(first.stateChanges[0]!.interests[0]!.events).toBe(1);
    expect(core.users.get('snap')!.interests[0]!.events).toBe(2);
  }, SLOW);
});

describe('CTR re-rank', () => {
  /** n pairs (u, a) of unit vectors with cos(u, a) = cosines[i]. */
  function pairs(cosines: readonly number[], dim: number): { u: Float32Array; a: Float32Array } {
    const rand = seededRandom(17);
    const u = new Float32Array(cosines.length * dim);
    const a = new Float32Array(cosines.length * dim);
    cosines.forEach((c, i) => {
      const x = randomUnit(rand, dim);
      let y = randomUnit(rand, dim);
      const p = dot(x, y);
      y = unit(y.map((v, j) => v - p * x[j]!)); // orthogonal to x
      u.set(x, i * dim);
      a.set(x.map((v, j) => c * v + Math.sqrt(1 - c * c) * y[j]!), i * dim);
    });
    return { u, a };
  }

  it('the default model is strictly increasing in cos(user, ad), from ~0.02 % to ~12 %', async () => {
    await driver.core(); // writes MODEL_DIR/ctr-d128.onnx
    const session = await ort.InferenceSession.create(join(MODEL_DIR, 'ctr-d128.onnx'), { executionProviders: ['cpu'] });
    const cosines = Array.from({ length: 41 }, (_, i) => -1 + i / 20);
    const { u, a } = pairs(cosines, 128);
    const out = await session.run({ user: new ort.Tensor('float32', u, [41, 128]), ad: new ort.Tensor('float32', a, [41, 128]) });
    const ctr = Array.from(out.ctr!.data as Float32Array);
    expect(out.ctr!.dims).toEqual([41, 1]);
    for (let i = 1; i < ctr.length; i++) expect(ctr[i]!, `cos ${cosines[i]}`).toBeGreaterThan(ctr[i - 1]!);
    expect(ctr[0]).toBeCloseTo(1.9e-4, 4);
    expect(ctr[20]).toBeCloseTo(0.0024, 3);
    expect(ctr[40]).toBeCloseTo(0.125, 2);
    await session.release();
  }, SLOW);

  it('candidate scores are the CTR of the matching interest and the ad, best first', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const { scored } = await core.processor.process([rec.click('one', 'toys'), rec.click('one', 'toys', { action: 'PURCHASE' })]);
    const candidates = scored[0]!.candidates;
    expect(candidates).toHaveLength(10); // TOP_K of a 40-ad catalog: the checks below run over every one
    const interest = unit(core.users.get('one')!.interests[0]!.vector);
    const vectorOf = new Map<string, Float32Array>();
    const emb = core.catalog.embeddings();
    for (let r = 0; r < core.catalog.activeCount; r++) vectorOf.set(core.catalog.adAt(r).adId, emb.slice(r * 128, (r + 1) * 128));
    const session = await ort.InferenceSession.create(join(MODEL_DIR, 'ctr-d128.onnx'), { executionProviders: ['cpu'] });
    const n = candidates.length;
    const u = new Float32Array(n * 128);
    const a = new Float32Array(n * 128);
    candidates.forEach((c, i) => {
      u.set(interest, i * 128);
      a.set(vectorOf.get(c.adId)!, i * 128);
    });
    const ctr = (await session.run({ user: new ort.Tensor('float32', u, [n, 128]), ad: new ort.Tensor('float32', a, [n, 128]) })).ctr!.data as Float32Array;
    await session.release();
    candidates.forEach((c, i) => expect(c.score).toBeCloseTo(ctr[i]!, 6)); // one interest: share 1
    const scores = candidates.map((c) => c.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
    const cosines = candidates.map((c) => dot(interest, vectorOf.get(c.adId)!));
    expect([...cosines].sort((x, y) => y - x)).toEqual(cosines); // monotone: the cosine order
  }, SLOW);

  it('a CTR model from MODEL_CARD re-ranks the candidates (here one that prefers dissimilar ads)', async () => {
    const g = new GraphBuilder('contrarian_ctr');
    const prod = g.op1('Mul', [g.input('user', 'float32', ['batch', 128]), g.input('ad', 'float32', ['batch', 128])]);
    const cos = g.op1('ReduceSum', [prod, g.int64s('axes', [1])], { keepdims: 1 });
    g.op1('Sigmoid', [g.op1('Neg', [cos])], {}, 'ctr');
    g.output('ctr', 'float32', ['batch', 1]);
    writeFileSync(join(MODEL_DIR, 'contrarian.onnx'), g.build());
    const card = join(MODEL_DIR, 'ctr-card.json');
    writeFileSync(card, JSON.stringify({ models: { ctr: { file: 'contrarian.onnx', inputs: [{ name: 'user', type: 'float32', shape: ['batch', 128] }, { name: 'ad', type: 'float32', shape: ['batch', 128] }], outputs: [{ name: 'ctr', type: 'float32', shape: ['batch', 1] }] } } }));
    const { core, rec } = await driver.coreWithCatalog(testConfig({ modelCard: card }));
    expect(core.processor.modelVersion).toMatch(/\/concat-f128-w1,1,1\/byo:contrarian\.onnx@[0-9a-f]{12}$/);
    const { scored } = await core.processor.process([rec.click('c', 'shoes')]);
    const candidates = scored[0]!.candidates;
    expect(candidates).toHaveLength(10);
    // Retrieval still found the shoes ads (top 20 by similarity); the re-rank put them last, out of the top 10.
    expect(categoriesOf(candidates)).not.toContain('shoes');
    const scores = candidates.map((c) => c.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
  }, SLOW);

  it('weighs each interest\'s candidates by its share of strength: a decayed interest counts less', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const hour = 3_600_000;
    await core.processor.process(Array.from({ length: 4 }, (_, i) => rec.click('d', 'books', { t: NOW - 3 * hour, action: 'PURCHASE', item: `item-books-${i}` })));
    const { scored } = await core.processor.process([rec.click('d', 'kitchen', { action: 'VIEW' })]);
    // books: 16 decayed over 3 half-lives to 2; kitchen: 1 now. Both kept, books ahead.
    expect(core.users.get('d')!.interests.map((i) => i.strength).sort()).toEqual([1, 2]);
    const cats = categoriesOf(scored[0]!.candidates);
    expect(cats.slice(0, 5)).toEqual(Array(5).fill('books'));
    expect(cats.slice(5, 10)).toEqual(Array(5).fill('kitchen'));
  }, SLOW);
});

describe('segments', () => {
  it('go out when the top names change or a weight moves by more than 0.1, not otherwise', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const seg = async (...records: ReturnType<RecordMaker['click']>[]) => (await core.processor.process(records)).segments.map((s) => s.segments.map((g) => `${g.name}:${g.weight.toFixed(2)}`));
    expect(await seg(rec.click('s', 'shoes'))).toEqual([['shoes:1.00']]);
    expect(await seg(rec.click('s', 'shoes', { item: 'item-shoes-2' }))).toEqual([]); // same segments
    expect(await seg(rec.click('s', 'phones'))).toEqual([['shoes:0.67', 'phones:0.33']]); // a new name
    expect(await seg(rec.click('s', 'shoes', { item: 'item-shoes-3', action: 'VIEW' }))).toEqual([]); // 5 : 2, moved 0.05
    expect(await seg(rec.click('s', 'phones', { action: 'PURCHASE' }))).toEqual([['phones:0.55', 'shoes:0.45']]); // 5 : 6, moved 0.26
    expect(core.users.get('s')!.lastSegments.map((g) => g.name)).toEqual(['phones', 'shoes']);
  }, SLOW);

  it('none without a catalog to name interests after', async () => {
    const core = await driver.core();
    const rec = new RecordMaker(core, testConfig());
    const r = await core.processor.process([rec.click('early', 'toys')]);
    expect(r.segments).toEqual([]);
    expect(core.users.get('early')!.lastSegments).toEqual([]);
  }, SLOW);
});

describe('rate-limited emission (EMIT_INTERVAL_MS)', () => {
  it('holds events of a user scored less than the interval ago in the state, and sends them all with the next output', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 1000 }));
    const t0 = driver.now;
    try {
      const r1 = await core.processor.process([rec.click('u', 'shoes', { eventId: 'e1' }), rec.click('v', 'toys', { eventId: 'v1' })]);
      expect(r1.scored.map((s) => [s.userId, s.eventIds])).toEqual([['u', ['e1']], ['v', ['v1']]]);

      driver.now = t0 + 100;
      const r2 = await core.processor.process([rec.click('u', 'shoes', { eventId: 'e2' })]);
      expect(r2.scored).toEqual([]);
      expect(r2.stateChanges.map((s) => [s.userId, s.pendingEventIds, s.lastEmittedAt])).toEqual([['u', ['e2'], t0]]);
      expect(lineage(r2)).toEqual(['e2']);

      driver.now = t0 + 200;
      const later = t0 + 150;
      const r3 = await core.processor.process([rec.click('u', 'phones', { eventId: 'e3', t: later })]);
      expect(r3.scored).toEqual([]);
      expect(r3.stateChanges[0]!.pendingEventIds).toEqual(['e2', 'e3']);

      // The timer: nobody is due before the interval has passed since their last output.
      expect((await core.processor.flushDue(t0 + 999)).scored).toEqual([]);
      const f = await core.processor.flushDue(t0 + 1000);
      expect(f.scored.map((s) => [s.userId, s.eventIds, s.triggerEventTime])).toEqual([['u', ['e2', 'e3'], later]]);
      expect(f.scored[0]!.candidates).toHaveLength(10);
      expect(f.stateChanges.map((s) => [s.userId, s.pendingEventIds, s.lastEmittedAt])).toEqual([['u', [], t0 + 1000]]);
      expect((await core.processor.flushDue(t0 + 5000)).scored).toEqual([]); // nothing pending any more

      // Within the interval again, then a chunk after it: the pending events ride along.
      driver.now = t0 + 1500;
      const r4 = await core.processor.process([rec.click('u', 'shoes', { eventId: 'e4' })]);
      expect(lineage(r4)).toEqual(['e4']);
      expect(r4.scored).toEqual([]);
      driver.now = t0 + 2000;
      const r5 = await core.processor.process([rec.click('u', 'shoes', { eventId: 'e5' }), rec.click('v', 'toys', { eventId: 'v2' })]);
      expect(r5.scored.map((s) => [s.userId, s.eventIds])).toEqual([['u', ['e4', 'e5']], ['v', ['v2']]]);
      expect(r5.stateChanges.every((s) => s.pendingEventIds.length === 0)).toBe(true);
    } finally {
      driver.now = t0;
    }
  }, SLOW);

  it('a user evicted from the LRU while events wait still gets them out: scored at the next flush, its state says so', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 1000, userCacheMaxEntries: 2 }));
    const t0 = driver.now;
    try {
      await core.processor.process([rec.click('a', 'shoes', { eventId: 'a1' }), rec.click('b', 'toys', { eventId: 'b1' })]); // both scored at once
      driver.now = t0 + 10;
      const r = await core.processor.process([rec.click('a', 'shoes', { eventId: 'a2' })]);
      expect(r.stateChanges.map((s) => [s.userId, s.pendingEventIds])).toEqual([['a', ['a2']]]);
      // Two new users push b, then a (with a2 waiting), out of the 2-entry LRU.
      driver.now = t0 + 20;
      await core.processor.process([rec.click('c', 'toys', { eventId: 'c1' }), rec.click('d', 'toys', { eventId: 'd1' })]);
      expect([...core.users.entries()].map(([u]) => u).sort()).toEqual(['c', 'd']);
      // Due at once, though its interval has not passed: it is held only until its events are out.
      const f = await core.processor.flushDue(t0 + 30);
      expect(f.scored.map((o) => [o.userId, o.eventIds])).toEqual([['a', ['a2']]]);
      expect(f.scored[0]!.candidates.length).toBeGreaterThan(0);
      expect(f.stateChanges.map((s) => [s.userId, s.pendingEventIds, s.interests.reduce((n, i) => n + i.events, 0)])).toEqual([['a', [], 2]]);
      // Then it is let go from memory: nothing more to flush, and the LRU still holds its two; the
      // local store answers for it (its last change, with nothing waiting).
      expect((await core.processor.flushDue(t0 + 5000)).scored).toEqual([]);
      expect([...core.users.entries()].some(([u]) => u === 'a')).toBe(false);
      expect(core.users.evictedPending).toBe(0);
      expect(core.users.get('a')?.pendingEventIds).toEqual([]);
    } finally {
      driver.now = t0;
    }
  }, SLOW);

  it('an evicted user with events waiting comes back with them on its next event', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 1000, userCacheMaxEntries: 1 }));
    const t0 = driver.now;
    try {
      await core.processor.process([rec.click('a', 'shoes', { eventId: 'a1' })]);
      driver.now = t0 + 10;
      await core.processor.process([rec.click('a', 'shoes', { eventId: 'a2' })]);
      await core.processor.process([rec.click('b', 'toys', { eventId: 'b1' })]); // evicts a, a2 waiting
      expect(core.users.evictedPending).toBe(1);
      driver.now = t0 + 20;
      const r = await core.processor.process([rec.click('a', 'shoes', { eventId: 'a3' })]);
      expect(r.stateChanges.map((s) => [s.userId, s.pendingEventIds, s.interests.reduce((n, i) => n + i.events, 0)])).toEqual([['a', ['a2', 'a3'], 3]]);
      const f = await core.processor.flushDue(t0 + 1000);
      expect(f.scored.map((o) => [o.userId, o.eventIds])).toContainEqual(['a', ['a2', 'a3']]);
    } finally {
      driver.now = t0;
    }
  }, SLOW);

  it('gives the events back to the state when scoring fails, so none is lost', async () => {
    const { core, rec } = await driver.coreWithCatalog(testConfig({ emitIntervalMs: 1000 }));
    await core.processor.process([rec.click('f', 'toys', { eventId: 'f1' })]);
    await core.processor.process([rec.click('f', 'toys', { eventId: 'f2' })]);
    const emittedAt = core.users.get('f')!.lastEmittedAt;
    await core.engine.close();
    await expect(core.processor.flushDue(driver.now + 1000)).rejects.toThrow(/closed/);
    expect(core.users.get('f')).toMatchObject({ pendingEventIds: ['f2'], lastEmittedAt: emittedAt });
    expect([...core.users.pendingUsers()].map((u) => u.userId)).toEqual(['f']);
  }, SLOW);
});

describe('model files of the fused space', () => {
  it('are built deterministically for the shapes in use, and rewritten when their bytes differ', async () => {
    const root = mkdtempSync(join(tmpdir(), 'adstream-fused-'));
    const files = await writeFusedModels(root, { dim: 96, defaultCtr: true });
    expect([files.scorer, files.ctr].map((f) => f!.slice(root.length + 1))).toEqual(['scorer-d96.onnx', 'ctr-d96.onnx']);
    expect(readFileSync(files.ctr!).equals(Buffer.from(buildCtrModel({ dim: 96 })))).toBe(true);
    writeFileSync(files.ctr!, 'stale');
    await writeFusedModels(root, { dim: 96, defaultCtr: true });
    expect(readFileSync(files.ctr!).equals(Buffer.from(buildCtrModel({ dim: 96 })))).toBe(true);
    const byoCtr = await writeFusedModels(root, { dim: 64, defaultCtr: false });
    expect(byoCtr.scorer.endsWith('scorer-d64.onnx')).toBe(true);
    expect(byoCtr.ctr).toBeNull();
  });
});

describe('changelog form of the state', () => {
  it('a user restored from its state change into another instance scores as the original', async () => {
    const a = await driver.coreWithCatalog();
    const b = await driver.coreWithCatalog();
    const { stateChanges } = await a.core.processor.process([a.rec.click('r', 'garden'), a.rec.click('r', 'beauty'), a.rec.review('r', 'lipstick and perfume, great serum')]);
    const value = a.core.stateCodec.encode(stateChanges[0]!);
    const restored = b.core.stateCodec.decode(value)!;
    expect(restored.interests).toHaveLength(stateChanges[0]!.interests.length);
    b.core.users.put(restored);
    const next = (core: typeof a.core, rec: typeof a.rec) => core.processor.process([rec.click('r', 'garden', { eventId: 'n1' })]);
    const [x, y] = [(await next(a.core, a.rec)).scored[0]!, (await next(b.core, b.rec)).scored[0]!];
    expect(x.candidates).toHaveLength(10);
    expect(y.candidates.map((c) => c.adId)).toEqual(x.candidates.map((c) => c.adId));
    y.candidates.forEach((c, i) => expect(c.score).toBeCloseTo(x.candidates[i]!.score, 5));
    // Another fusion is another space: that state is not restored.
    const other = await driver.core(testConfig({ fusion: 'average' }));
    expect(other.space).not.toBe(a.core.space);
    expect(other.stateCodec.decode(value)).toBeNull();
  }, SLOW);
});

function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}
