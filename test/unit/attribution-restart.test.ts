/**
 * The attribution state across a restart, in the core with no broker: each chunk's result carries
 * the attribution records it changed; acknowledged into the local store (as the memory transport
 * and the changelog tee do), a new core on that store restores the partition's attributor from
 * them, and the examples are those of a run with no restart. A chunk replayed after a crash (its
 * feedback at or below the restored applied offset) gives its examples again and no new state.
 * And with ATTRIBUTION_CAPTURE=on-feedback (the default) nothing is captured before a partition's
 * first feedback.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import type { ProcessResult, ScoredOutput, TrainingExample } from '../../src/domain/outputs.js';
import type { Core } from '../../src/pipeline/core.js';
import { AppliedOffsets } from '../../src/state/applied-offsets.js';
import { CoreDriver, NOW, testConfig, type RecordMaker } from './core-driver.js';

const driver = new CoreDriver();
afterAll(() => driver.close());

const W_S = 60;
const config = testConfig({ attributionWindowS: W_S, attributionCapture: 'always' });
const show = (e: TrainingExample): string => `${e.exampleId}:${e.label}:${sum(e.interest).toFixed(5)}:${sum(e.ad).toFixed(5)}`;
const sum = (v: Float32Array): number => v.reduce((s, x) => s + x, 0);

/** The scenario's chunks after the first (which serves `ann`), made from what it served. */
function laterChunks(rec: RecordMaker, first: ProcessResult): InputRecord[][] {
  const out = first.scored[0]!;
  const [a, b, c, d] = out.candidates.map((x) => x.adId);
  const imp = (adId: string, i: number, t: number): InputRecord => rec.feedback('ann', adId, 'IMPRESSION', { feedbackId: `imp-${i}`, outputId: out.outputId, position: i, t });
  const clk = (adId: string, i: number, t: number): InputRecord => rec.feedback('ann', adId, 'CLICK', { feedbackId: `clk-${i}`, outputId: out.outputId, position: i, t });
  return [
    [imp(a!, 0, NOW + 1000), imp(b!, 1, NOW + 1000), imp(c!, 2, NOW + 1000)],
    [clk(a!, 0, NOW + 3000), clk(d!, 3, NOW + 2500)], // the click on d comes before its impression
    [imp(d!, 3, NOW + 2000)],
    [rec.feedback('zed', 'no-ad', 'IMPRESSION', { feedbackId: 'closer', t: NOW + (W_S + 10) * 1000 })], // closes the windows
  ];
}

interface Run {
  readonly examples: string[][];
  readonly core: Core;
}

/**
 * The scenario, with a restart after chunk `restartAfter` of the later ones (null: none): every
 * result acknowledged into the local store as it comes, the core closed, a new one on its folder.
 * `replayLast`: the last chunk before the restart is handed again after it (its offsets were not
 * committed), with the applied offsets as the changelog's markers would restore them.
 */
async function run(restartAfter: number | null, replayLast = false): Promise<Run> {
  driver.applied = new AppliedOffsets();
  let { core, rec } = await driver.coreWithCatalog(config);
  const dir = core.local.dir;
  const first = await core.processor.process([rec.click('ann', 'shoes', { t: NOW })]);
  await core.local.acknowledged(first);
  const chunks = laterChunks(rec, first);
  const examples: string[][] = [];
  for (let i = 0; i < chunks.length; i++) {
    const r = await core.processor.process(chunks[i]!);
    await core.local.acknowledged(r);
    examples.push((r.examples ?? []).map(show));
    if (i !== restartAfter) continue;
    await core.close();
    ({ core } = await driver.coreWithCatalog(config, dir));
    core.feedback!.restorePartition(0, core.local.markers(0)); // what PartitionState does after the changelog's restore
    if (replayLast) {
      const last = chunks[i]!;
      driver.applied.mark(config.topicAdFeedback, 0, BigInt(last[last.length - 1]!.offset));
      const again = await core.processor.process(last);
      await core.local.acknowledged(again);
      examples.push((again.examples ?? []).map(show));
    }
  }
  return { examples, core };
}

describe('attribution state across a restart, in the core', { timeout: 120_000 }, () => {
  it('restored from its records, gives the examples a run with no restart gives', async () => {
    const straight = await run(null);
    // Without a restart: the positive at the click, the early click's when its impression comes, the negatives at the closer.
    expect(straight.examples.map((c) => c.map((e) => e.split(':').slice(0, 2).join(':')))).toEqual([[], ['imp-0:1'], ['imp-3:1'], ['imp-1:0', 'imp-2:0']]);
    for (const after of [0, 1]) {
      const restarted = await run(after);
      expect(restarted.examples, `restart after chunk ${after}`).toEqual(straight.examples);
      expect(restarted.core.feedback!.counts()).toMatchObject({ duplicates: 0, unmatched: 1, late: 0 }); // the closer names no ad
    }
  });

  it('a chunk replayed after a crash gives its examples again (at-least-once), and the rest as with no crash', async () => {
    const straight = await run(null);
    const replayed = await run(1, true);
    // Chunk 1 (the click on ad 0) once before the crash, once replayed; then chunks 2 and 3 as ever.
    expect(replayed.examples).toEqual([straight.examples[0], straight.examples[1], straight.examples[1], straight.examples[2], straight.examples[3]]);
    // The replayed reports were not attributed a second time.
    expect(replayed.core.feedback!.counts()).toMatchObject({ duplicates: 0, clicks: 0, impressions: 2 });
  });
});

describe('ATTRIBUTION_CAPTURE=on-feedback', { timeout: 60_000 }, () => {
  it('captures nothing before the partition\'s first feedback, then captures (also after a restore), sharing one copy of an ad\'s vector', async () => {
    driver.applied = new AppliedOffsets();
    const { core, rec } = await driver.coreWithCatalog(testConfig({ attributionWindowS: W_S }));
    const before = (await core.processor.process([rec.click('bea', 'shoes', { t: NOW })])).scored[0]!;
    expect(core.feedback!.sizes().captures).toBe(0);
    // Its impression names an output served before any feedback: unmatched, no example.
    const r0 = await core.processor.process([rec.feedback('bea', before.candidates[0]!.adId, 'IMPRESSION', { feedbackId: 'imp-early', outputId: before.outputId, t: NOW + 10 })]);
    await core.local.acknowledged(r0);
    expect(core.feedback!.counts()).toMatchObject({ unmatched: 1 });
    // The watermark is durable: a restored partition goes on capturing.
    core.feedback!.restorePartition(0, core.local.markers(0));
    const outs: ScoredOutput[] = [];
    for (const u of ['bea', 'bob']) outs.push((await core.processor.process([rec.click(u, 'shoes', { t: NOW + 20 })])).scored[0]!);
    expect(core.feedback!.sizes().captures).toBe(outs.reduce((n, o) => n + o.candidates.length, 0));
    const shared = outs[0]!.candidates.find((c) => outs[1]!.candidates.some((x) => x.adId === c.adId))!.adId;
    const r = await core.processor.process([
      ...outs.map((o, i) => rec.feedback(o.userId, shared, 'IMPRESSION', { feedbackId: `imp-${i}`, outputId: o.outputId, t: NOW + 30 })),
      ...outs.map((o, i) => rec.feedback(o.userId, shared, 'CLICK', { feedbackId: `clk-${i}`, outputId: o.outputId, t: NOW + 40 })),
    ]);
    expect(r.examples!.map((e) => `${e.exampleId}:${e.label}`)).toEqual(['imp-0:1', 'imp-1:1']);
    expect(r.examples![0]!.ad).toBe(r.examples![1]!.ad); // one copy for both captures
    expect(r.examples![0]!.ad).toEqual(core.catalog.vectorOf(shared));
    expect(r.examples![0]!.ad).not.toBe(core.catalog.vectorOf(shared)); // a copy, not the catalog's row
  });
});
