/**
 * In-process fusion (src/pipeline/fuse.ts) against the ONNX fusion graphs it replaced: the
 * reference outputs were computed once by those graphs on main (see the fixture's computedWith),
 * for events (one modality) and ads (all modalities), concat / weighted / average, with a narrower
 * BYO encoder zero-padded.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PerModality } from '../../src/domain/modalities.js';
import { concatProjection } from '../../src/models/fusion-projection.js';
import type { FusionStrategy } from '../../src/models/model-io.js';
import type { EmbeddedEvents, ModalityBlocks } from '../../src/pipeline/embed.js';
import { Fuser } from '../../src/pipeline/fuse.js';

interface Case {
  readonly name: string;
  readonly strategy: FusionStrategy;
  readonly dims: PerModality<number>;
  readonly outDim: number;
  readonly weights: PerModality<number>;
  /** Per modality, two rows of its width. */
  readonly rows: number[][][];
  /** Events (m set: that modality alone) then ads (every modality's row r). */
  readonly items: { m?: number; r: number }[];
  readonly fused: number[];
}
const reference = JSON.parse(readFileSync(new URL('./fixtures/fusion-reference.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** Float rounding of a 128-term float32 sum, with room: a wrong block, weight or norm is off by far more. */
const TOLERANCE = 2e-6;

function fuserOf(c: Case): Fuser {
  const inputDim = Math.max(...c.dims);
  return new Fuser({ strategy: c.strategy, inputDim, dim: c.strategy === 'concat' ? c.outDim : inputDim, weights: c.weights }, c.dims);
}

function blocksOf(c: Case): ModalityBlocks {
  return c.rows.map((rs) => Float32Array.from(rs.flat())) as unknown as ModalityBlocks;
}

describe('in-process fusion', () => {
  for (const c of reference.cases) {
    it(`${c.name}: events and ads equal the former ONNX graph's outputs to float rounding`, async () => {
      const fuser = fuserOf(c);
      const F = fuser.dim;
      const blocks = blocksOf(c);
      const events = c.items.filter((it) => it.m !== undefined);
      const embedded: EmbeddedEvents = { modality: Uint8Array.from(events, (e) => e.m!), row: Int32Array.from(events, (e) => e.r), blocks, failures: new Map() };
      const got = new Float32Array(c.items.length * F);
      got.set(fuser.fuseEvents(embedded, events.map((_, i) => i)), 0);
      got.set(await fuser.fuseAds(blocks, 2), events.length * F);
      expect(got.length).toBe(c.fused.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - c.fused[i]!));
      expect(worst).toBeLessThan(TOLERANCE);
    });
  }

  it('a modality weighted 0 fuses to a zero vector, not NaN', () => {
    const c = reference.cases.find((x) => x.weights.includes(0))!;
    const m = c.weights.indexOf(0);
    const embedded: EmbeddedEvents = { modality: Uint8Array.of(m), row: Int32Array.of(0), blocks: blocksOf(c), failures: new Map() };
    expect(Array.from(fuserOf(c).fuseEvents(embedded, [0])).every((v) => v === 0)).toBe(true);
  });

  it('reuses nothing across items: fusing an item alone or among others gives the same bits', async () => {
    const c = reference.cases[0]!;
    const fuser = fuserOf(c);
    const blocks = blocksOf(c);
    const both = await fuser.fuseAds(blocks, 2);
    const firstAlone = await fuser.fuseAds(blocks, 1);
    expect(Array.from(firstAlone)).toEqual(Array.from(both.subarray(0, fuser.dim)));
  });

  it('concat: the same bits as the row-major sum (k outside, every j inside), zero inputs skipped, widths not a multiple of 4', async () => {
    // The fuser sums each coordinate in a register over the transposed projection; the terms and
    // their order must stay those of the plain loop, so the eval's figures do not move.
    const dims: PerModality<number> = [6, 5, 3];
    const inputDim = 6;
    const F = 7;
    const weights: PerModality<number> = [1, 0.7, 1.3];
    const fuser = new Fuser({ strategy: 'concat', inputDim, dim: F, weights }, dims);
    const P = concatProjection(3, inputDim, F);
    const blocks = dims.map((w, m) => Float32Array.from({ length: 2 * w }, (_, i) => (i % 4 === 1 ? 0 : Math.sin(1.7 * i + m) / 3))) as unknown as ModalityBlocks;
    const plain = (rows: readonly { m: number; r: number }[]): Float32Array => {
      const sum = new Float64Array(F);
      for (const { m, r } of rows) {
        for (let k = 0; k < dims[m]!; k++) {
          const s = Math.fround(weights[m]! * blocks[m]![r * dims[m]! + k]!);
          if (s === 0) continue;
          for (let j = 0; j < F; j++) sum[j] += s * P[(m * inputDim + k) * F + j]!;
        }
      }
      let sq = 0;
      for (let j = 0; j < F; j++) sq += sum[j]! * sum[j]!;
      const inv = 1 / Math.max(Math.sqrt(sq), Math.fround(1e-12));
      return Float32Array.from(sum, (v) => v * inv);
    };
    const events = [{ m: 0, r: 0 }, { m: 1, r: 1 }, { m: 2, r: 0 }, { m: 0, r: 1 }];
    const embedded: EmbeddedEvents = { modality: Uint8Array.from(events, (e) => e.m), row: Int32Array.from(events, (e) => e.r), blocks, failures: new Map() };
    const got = fuser.fuseEvents(embedded, [0, 1, 2, 3]);
    const want = new Float32Array(events.length * F);
    events.forEach((e, i) => want.set(plain([e]), i * F));
    expect(Array.from(got)).toEqual(Array.from(want));
    // An ad: each modality's projection summed alone from 0, then the three added in modality order.
    const plainAd = (r: number): Float32Array => {
      const sum = new Float64Array(F);
      for (let m = 0; m < 3; m++) {
        const part = new Float64Array(F);
        for (let k = 0; k < dims[m]!; k++) {
          const s = Math.fround(weights[m]! * blocks[m]![r * dims[m]! + k]!);
          if (s === 0) continue;
          for (let j = 0; j < F; j++) part[j] += s * P[(m * inputDim + k) * F + j]!;
        }
        for (let j = 0; j < F; j++) sum[j] += part[j]!;
      }
      let sq = 0;
      for (let j = 0; j < F; j++) sq += sum[j]! * sum[j]!;
      const inv = 1 / Math.max(Math.sqrt(sq), Math.fround(1e-12));
      return Float32Array.from(sum, (v) => v * inv);
    };
    const ads = await fuser.fuseAds(blocks, 2);
    expect(Array.from(ads)).toEqual([0, 1].flatMap((r) => Array.from(plainAd(r))));
  });

  it('concat: projections the memo kept give the same bits as projecting again, also when rows share one place', async () => {
    const c = reference.cases.find((x) => x.strategy === 'concat')!;
    const inputDim = Math.max(...c.dims);
    const settings = { strategy: c.strategy, inputDim, dim: c.outDim, weights: c.weights };
    const blocks = blocksOf(c);
    // Events: rows 0, 1, 0, 1, 0 of every modality: the memo's second sight of a row is a hit.
    const events = [0, 1, 2].flatMap((m) => [0, 1, 0, 1, 0].map((r) => ({ m, r })));
    const embedded: EmbeddedEvents = { modality: Uint8Array.from(events, (e) => e.m), row: Int32Array.from(events, (e) => e.r), blocks, failures: new Map() };
    const all = events.map((_, i) => i);
    const none = new Fuser(settings, c.dims, 0);
    const want = none.fuseEvents(embedded, all);
    // Two places (one set): a lookup must tell its row from the other one kept there.
    for (const places of [4096, 2]) {
      const fuser = new Fuser(settings, c.dims, places);
      expect(Array.from(fuser.fuseEvents(embedded, all))).toEqual(Array.from(want));
      expect(Array.from(fuser.fuseEvents(embedded, all))).toEqual(Array.from(want));
      expect(Array.from(await fuser.fuseAds(blocks, 2))).toEqual(Array.from(await none.fuseAds(blocks, 2)));
    }
    // The two rows differ, so a memo that answered row 1 with row 0's projection would show.
    expect(Array.from(want.subarray(0, c.outDim))).not.toEqual(Array.from(want.subarray(c.outDim, 2 * c.outDim)));
  });

  it('the concat projection is deterministic per seed', () => {
    const a = concatProjection(3, 8, 16);
    expect(Array.from(concatProjection(3, 8, 16))).toEqual(Array.from(a));
    expect(Array.from(concatProjection(3, 8, 16, 5))).not.toEqual(Array.from(a));
    // Entries ~ N(0, 1/F).
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeGreaterThan(0.5 / 16);
    expect(variance).toBeLessThan(2 / 16);
  });
});
