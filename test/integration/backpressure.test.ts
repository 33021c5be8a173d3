/**
 * Backpressure on a real broker: a backlog of image views (each a new image id: decoded and run
 * through the CNN, one worker) on 6 partitions, with an image queue that holds exactly one chunk's
 * request per partition (MAX_QUEUE_ITEMS 300 = 6 x CHUNK_MAX_RECORDS) and a batcher that waits up
 * to 500 ms for a full batch of 300: when 5 partitions' requests wait together (250 items), the
 * queue is past the pause threshold (80 %). The processor says so (`pausing consumption`), resumes
 * once the queues drain below 40 %, and keeps going: no request is ever refused (QUEUE_FULL: each
 * partition has at most one request per model outstanding, and every request fits, since the few
 * users keep the scorer's and CTR model's requests small), memory stays bounded, every input comes
 * out scored, none dead-lettered. Prints a `[guarantees]` line with the figures.
 *
 * Why so contrived: requests are never split (a chunk's request is one batch), one sent at once is
 * no pressure, and each partition has one chunk in flight; the queue only fills past 80 % when most
 * partitions' requests wait at once. Note also what pausing can do here: kafkajs fetches from a
 * broker again only after every batch of the previous fetch was handled, so with one broker the
 * event consumer's own requests are all done before it would fetch again; the pause can only hold
 * back a fetch when the queues are filled by something else (a catalog update, rate-limited
 * flushes) or by the fetches of another broker. That consume.ts pauses and resumes the right topics
 * is checked in test/unit/backpressure-wiring.test.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { auditLineage, reasonsLine } from '../support/audit.js';
import { collect, configOf, eventually, isolatedEnv, kafkaForTests, spawnProcessor, type SpawnedProcessor } from '../support/harness.js';
import { TestTraffic } from '../support/traffic.js';
import type { OutboundRecord } from '../../src/adapters/kafka/port.js';
import { syntheticUsers } from '../../src/devtools/synthetic.js';
import { keyPartition } from '../../src/domain/partitioning.js';

const PARTITIONS = 6;
const CHUNK = 50;
const MAX_QUEUE_ITEMS = PARTITIONS * CHUNK;
const RECORDS = 1500;
const RSS_BOUND = 1024 ** 3;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Sum of a metric's samples whose labels match `labels` (a regex on the label text). */
async function metricSum(port: number, name: string, labels = /.*/): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) if (labels.test(m[1] ?? '')) sum += Number(m[2]);
  return sum;
}

describe('backpressure', () => {
  const env = isolatedEnv({
    INFERENCE_WORKERS: '1',
    TOPIC_PARTITIONS: String(PARTITIONS),
    CHUNK_MAX_RECORDS: String(CHUNK),
    MAX_QUEUE_ITEMS: String(MAX_QUEUE_ITEMS),
    MAX_BATCH_SIZE: String(MAX_QUEUE_ITEMS),
    MAX_QUEUE_DELAY_MS: '500',
    // 4 users per partition, K = 3, 2 x TOP_K = 2 CTR rows per user: a chunk's scorer and CTR requests stay small.
    TOP_K: '1',
  });
  const config = configOf(env);
  const kafka = kafkaForTests();
  const cleanups: (() => Promise<unknown>)[] = [];
  let p: SpawnedProcessor | undefined;

  afterAll(async () => {
    if (p && p.proc.exitCode === null) p.proc.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('pauses consumption when an inference queue passes 80 %, resumes below 40 %, refuses nothing and loses nothing', async () => {
    const users = syntheticUsers(200);
    const fourPerPartition = Array.from({ length: PARTITIONS }, (_, p) => users.filter((u) => keyPartition(Buffer.from(u.userId), PARTITIONS) === p).slice(0, 4)).flat();
    expect(fourPerPartition).toHaveLength(4 * PARTITIONS);
    const traffic = await TestTraffic.create(kafka, config, { users: fourPerPartition, imagesPerCategory: 3, uniqueImageIds: true });
    cleanups.push(() => traffic.producer.disconnect());
    const outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
    const inputs = await collect(kafka, traffic.inputTopics);
    cleanups.push(() => outputs.stop(), () => inputs.stop());
    p = await spawnProcessor(env);
    await p.waitReady();
    const pid = p.proc.pid!;

    // A backlog of image views only, so every partition has a chunk of 50 images at a time.
    const images: OutboundRecord[] = [];
    while (images.length < RECORDS) {
      const e = traffic.factory.next(Date.now());
      if (e.role === 'image') images.push({ key: e.key, value: e.value });
    }
    for (let i = 0; i < images.length; i += 250) await traffic.producer.send([{ topic: config.topicImageViews, records: images.slice(i, i + 250) }]);
    const sent = images.length;
    let peakRss = rssOf(pid);
    let peakQueued = 0;
    const audit = () => auditLineage(config, inputs.records, outputs.records);
    const drained = await eventually(
      async () => {
        peakRss = Math.max(peakRss, rssOf(pid));
        peakQueued = Math.max(peakQueued, await metricSum(p!.port, 'adstream_inference_queue_items'));
        return inputs.records.length >= sent && audit().lost.length === 0;
      },
      180_000,
      200,
    );
    const r = audit();
    const log = p.output();
    const pauses = log.match(/inference queues full: pausing consumption/g)?.length ?? 0;
    const resumes = log.match(/inference queues drained: resuming consumption/g)?.length ?? 0;
    const refused = await metricSum(p.port, 'adstream_inference_rejected_items_total');
    console.log(
      `[guarantees] backpressure: MAX_QUEUE_ITEMS ${MAX_QUEUE_ITEMS}, ${sent} image views (all cache misses, 1 worker, ${PARTITIONS} partitions), paused ${pauses} times, resumed ${resumes} times, ` +
        `peak queued items seen ${peakQueued}, refused items ${refused}, peak RSS ${(peakRss / 1024 ** 2).toFixed(0)} MiB (bound ${RSS_BOUND / 1024 ** 3} GiB), lost ${r.lost.length}, duplicated events ${r.duplicates}, dead letters ${reasonsLine(r.deadLettersByReason)}`,
    );
    expect(p.proc.exitCode, log.slice(-4000)).toBe(null);
    expect(drained).toBe(true);
    expect(pauses, 'the pause threshold was reached').toBeGreaterThan(0);
    expect(resumes, 'every pause was followed by a resume').toBe(pauses);
    expect(refused, 'no inference request was refused (QUEUE_FULL)').toBe(0);
    expect(peakRss).toBeLessThan(RSS_BOUND);
    expect(r.inputs).toBe(sent);
    expect(r.lost).toEqual([]);
    expect(r.undeserved).toEqual([]);
    expect(r.deadLettersByReason).toEqual({});
    p.proc.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }, 240_000);
});
