/**
 * A trained CTR model version swapped into a running processor on a real broker: while clicks
 * stream in, a new version appears in MODEL_DIR/ctr/; every event still reaches an output, the
 * outputs switch from the hand-set model's version to the new one once and never back, and a
 * corrupt version published next is refused (metric) while the new one keeps serving.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { CTR_REVISION } from '../../src/models/graphs/ctr.js';
import { runCtrTraining } from '../../src/training/ctr/training-run.js';
import { DEFAULT_TRAINING } from '../../src/training/ctr/trainer.js';
import type { RunningProcessor } from '../../src/app/processor.js';
import { Accepts } from '../../src/serde/record-names.js';
import { generateExamples } from '../support/ctr-examples.js';
import { codec, configOf, eventually, isolatedEnv, kafkaForTests, type ProcessorWithAds, type ReadRecord, sleep, startProcessorWithAds } from '../support/harness.js';

describe('CTR model swap on a real broker', () => {
  const modelDir = mkdtempSync(join(tmpdir(), 'adstream-it-ctr-'));
  const config = configOf(isolatedEnv({ MODEL_DIR: modelDir, CTR_WATCH_INTERVAL_S: '1' }));
  const kafka = kafkaForTests();
  let producer: KafkaProducer;
  let processor: RunningProcessor;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };

  let running: ProcessorWithAds | undefined;

  beforeAll(async () => {
    running = await startProcessorWithAds(kafka, config, 2, [config.topicScored]);
    ({ producer, processor, outputs } = running);
  });

  afterAll(async () => {
    await running?.stop();
    rmSync(modelDir, { recursive: true, force: true });
  });

  it('switches versions between chunks with every event accounted for; a corrupt version is refused', async () => {
    const scored = (): ScoredOutput[] => outputs.records.map((r) => codec.decode<ScoredOutput>(r.value, Accepts.scored).value);
    const sent: string[] = [];
    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const eventId = `swap-${sent.length}`;
        const userId = `swap-user-${sent.length % 7}`;
        const value = codec.encode('dev.adstream.events.ClickEvent', { eventId, userId, itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: Date.now(), sessionId: null });
        await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from(userId), value }] }]);
        sent.push(eventId);
        await sleep(20);
      }
    };
    await send(20);
    const F = config.fusedDim;
    const file = join(modelDir, 'examples.jsonl');
    writeFileSync(file, generateExamples(300, F, 5).records.map((r) => JSON.stringify(r)).join('\n'));
    const trained = await runCtrTraining({ ...DEFAULT_TRAINING, hidden: 8, maxEpochs: 2, files: [file], validationShare: 0.25, modelDir, say: () => undefined });
    const publishedAt = Date.now();
    // Events keep coming while the watcher finds, checks and commits the version.
    const swapped = (): boolean => scored().some((o) => o.modelVersion.endsWith(`/${trained.version}`));
    while (!swapped() && sent.length < 400) await send(5);
    await send(20);
    const covered = (): Set<string> => new Set(scored().flatMap((o) => o.eventIds));
    expect(await eventually(() => sent.every((id) => covered().has(id)), 30_000)).toBe(true);

    // Outputs across the swap (from the version's publication to 1 s after its first output): the
    // largest gap between two in a row, next to the typical one (printed: speed is not asserted).
    const times = scored().map((o) => ({ t: o.processingTime, swapped: o.modelVersion.endsWith(`/${trained.version}`) })).sort((a, b) => a.t - b.t);
    const firstNew = times.find((x) => x.swapped)!.t;
    const around = times.filter((x) => x.t >= publishedAt && x.t <= firstNew + 1000).map((x) => x.t);
    const gaps = around.slice(1).map((t, i) => t - around[i]!).sort((a, b) => a - b);
    console.log(`[swap] outputs across the swap: ${around.length}, gap between consecutive outputs p50 ${gaps[gaps.length >> 1] ?? 0} ms, max ${gaps.at(-1) ?? 0} ms (events sent every 20 ms plus the send); version committed ${firstNew - publishedAt} ms after publication`);

    // In order of production per partition: once the new version, never the old again.
    const versions = outputs.records
      .map((r) => ({ partition: r.partition, offset: BigInt(r.offset), version: codec.decode<ScoredOutput>(r.value, Accepts.scored).value.modelVersion }))
      .sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1));
    const kinds = new Set(versions.map((v) => v.version.split('/').at(-1)));
    expect(kinds).toEqual(new Set([CTR_REVISION, trained.version]));
    for (const p of new Set(versions.map((v) => v.partition))) {
      const seq = versions.filter((v) => v.partition === p).map((v) => v.version.endsWith(trained.version));
      expect(seq.slice(seq.indexOf(true)).every(Boolean), `partition ${p}`).toBe(true);
    }

    // A newer version whose file is cut short: refused, the trained one keeps serving.
    const corrupt = join(modelDir, 'ctr', 'ctr-trained-29990101T000000Z-corrupt');
    cpSync(join(modelDir, 'ctr', trained.version), corrupt, { recursive: true });
    const bytes = readFileSync(join(corrupt, 'ctr.onnx'));
    writeFileSync(join(corrupt, 'ctr.onnx'), bytes.subarray(0, bytes.length >> 1));
    const refused = async (): Promise<number> => (await processor.metrics.ctrSwaps.get()).values.find((v) => v.labels.result === 'refused')?.value ?? 0;
    expect(await eventually(async () => (await refused()) === 1, 20_000)).toBe(true);
    const before = sent.length;
    await send(5);
    expect(await eventually(() => sent.slice(before).every((id) => covered().has(id)), 30_000)).toBe(true);
    const late = scored().filter((o) => o.eventIds.some((id) => sent.slice(before).includes(id)));
    expect(late.every((o) => o.modelVersion.endsWith(`/${trained.version}`))).toBe(true);
  });
});
