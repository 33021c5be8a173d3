/**
 * The open-loop load generator against a spawned processor: a few seconds at a low rate; every
 * event sent is accounted for in a scored output's lineage and lands in the latency histogram.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { encodeAd } from '../../src/devtools/traffic.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { metricSum, procStats, runOpenLoop, scrape, ScoredObserver } from '../../loadtest/load-generator.js';
import { createTopicsFor, isolatedEnv, kafkaClient, spawnProcessor, type Spawned } from '../../loadtest/spawn.js';
import { DEFAULT_WORLD_SPEC, World } from '../../loadtest/world.js';
import { brokersForTests } from '../support/kafka.js';

describe('load generator', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it('drives a spawned processor open-loop and accounts every event with its latency', async () => {
    const brokers = brokersForTests().join(',');
    const kafka = kafkaClient(brokers);
    const codec = new AvroCodec();
    const world = await World.create({ ...DEFAULT_WORLD_SPEC, users: 50, imagesPerCategory: 2, adsPerCategory: 2 });
    const env = isolatedEnv(brokers, 'it-load', { INFERENCE_WORKERS: '1' });
    const config = await createTopicsFor(kafka, env);
    const producer = await kafka.producer();
    cleanup.push(() => producer.disconnect());
    await producer.send([{ topic: config.topicAds, records: world.ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);

    const proc: Spawned = await spawnProcessor(env);
    cleanup.push(() => proc.stop());
    await proc.waitReady();
    const observer = new ScoredObserver(kafka, codec, { scored: config.topicScored, deadLetters: config.topicDeadLetters });
    await observer.start();
    cleanup.push(() => observer.stop());

    const before = procStats(proc.proc.pid!);
    const samples: number[] = [];
    const r = await runOpenLoop({
      producer, observer, rate: 100, seconds: 5,
      traffic: world.traffic(codec, { eventIdPrefix: 'it' }),
      topics: { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews },
      onSample: (s) => samples.push(s.outstanding),
    });
    expect(r.sent).toBe(500);
    expect(r.acked).toBe(500);
    expect(r.byRole.click + r.byRole.image + r.byRole.review).toBe(500);
    expect(await observer.drained(30_000)).toBe(true);
    expect(observer.accounted).toBe(500);
    expect(observer.expected).toBe(500);
    expect(observer.deadLetters).toBe(0);
    // Each output covers at least one new event: more would mean the observer reads records twice.
    expect(observer.scoredRecords).toBeLessThanOrEqual(500);
    const h = observer.histogram.summary();
    expect(h.count).toBe(500);
    expect(h.p50).toBeGreaterThan(0);
    expect(h.p50).toBeLessThanOrEqual(h.p99);
    expect(h.p99).toBeLessThanOrEqual(h.max);
    expect(samples.length).toBeGreaterThan(5);

    // procStats reads the processor's own /proc entries: its RSS agrees with what the process itself
    // reports on /metrics (prom-client's), units included. (Its CPU counter starts only when the
    // metrics are created, after start-up, so CPU is not compared.)
    const metrics = await scrape(proc.port);
    const after = procStats(proc.proc.pid!);
    expect(after!.cpuSeconds).toBeGreaterThan(before!.cpuSeconds);
    const reportedRss = metricSum(metrics, 'adstream_process_resident_memory_bytes');
    console.log(`[load generator] procStats rss ${(after!.rssBytes / 2 ** 20).toFixed(0)} MiB; the processor says ${(reportedRss / 2 ** 20).toFixed(0)} MiB`);
    expect(after!.rssBytes / reportedRss).toBeGreaterThan(0.8);
    expect(after!.rssBytes / reportedRss).toBeLessThan(1.25);
    // Everything sent was consumed: no partition is behind.
    expect(metricSum(metrics, 'adstream_consumer_lag_records')).toBe(0);
  });
});
