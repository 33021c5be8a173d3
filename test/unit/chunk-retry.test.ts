/**
 * A chunk that fails after it changed users' state (its delivery is refused, or scoring fails after
 * the fold) is handed again, as kafkajs does in the same process: each event must still be counted
 * once. The real core and the real Kafka adapter (startKafkaAdapter) run over a scripted fake of our
 * own port (src/adapters/kafka/port.ts): topics are arrays, a send can be refused, the partition
 * task resets its state and rewinds the consumer to its first record not acknowledged.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import { keyPartition } from '../../src/domain/partitioning.js';
import type { UserState } from '../../src/domain/user-state.js';
import { startKafkaAdapter, type KafkaAdapter } from '../../src/adapters/kafka/kafka-adapter.js';
import type {
  Appended, FetchedRecords, FetchControl, GroupConsumer, GroupConsumerOptions, KafkaAdmin, KafkaClient, KafkaProducer, PartitionRead, PartitionReadOptions, TopicRecords,
} from '../../src/adapters/kafka/port.js';
import type { KafkaWiring } from '../../src/adapters/kafka/wiring.js';
import { ProduceLimits } from '../../src/adapters/kafka/produce-limits.js';
import type { Config } from '../../src/app/config/settings.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import type { Core } from '../../src/pipeline/core.js';
import { CandidateRanker } from '../../src/pipeline/rank.js';
import { Accepts } from '../../src/serde/record-names.js';
import { AppliedOffsets } from '../../src/state/applied-offsets.js';
import { silentLogger } from '../../src/util/log.js';
import { CoreDriver, testConfig, type RecordMaker } from './core-driver.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stored {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** What the broker does with a send: append it all, refuse it ('before': nothing lands), or land only its changelog part, then refuse. */
type SendOutcome = 'append' | 'before' | 'after-changelog';

/** The broker side: per topic, per partition, the records appended, offsets = indexes. */
class ScriptedKafka implements KafkaClient {
  readonly brokers = ['scripted:0'];
  private readonly logs = new Map<string, Stored[][]>();
  /** Decides each send (it may take its time: the producer waits). */
  onSend: (batches: readonly TopicRecords[]) => SendOutcome | Promise<SendOutcome> = () => 'append';
  refused = 0;
  /** Fetches whose handler rejected (handed again afterwards from the committed offset). */
  failedFetches = 0;
  /** Rewinds the consumer was asked for (a task fetching its unacknowledged records again). */
  rewinds = 0;
  private consumer: ScriptedConsumer | undefined;

  constructor(
    readonly partitions: number,
    private readonly changelog: string,
  ) {}

  log(topic: string, partition: number): Stored[] {
    let t = this.logs.get(topic);
    if (!t) this.logs.set(topic, (t = Array.from({ length: this.partitions }, () => [])));
    return t[partition]!;
  }

  /** A producer's append: the default partitioner unless the record names its partition. */
  append(topic: string, key: Buffer | null, value: Buffer | null, partition = keyPartition(key!, this.partitions)): void {
    this.log(topic, partition).push({ key, value });
  }

  /** Resolves once the group consumer has handled every record of the input topics. */
  drained(): Promise<void> {
    return this.consumer!.drained();
  }

  async admin(): Promise<KafkaAdmin> {
    throw new Error('not used: the wiring is made by hand');
  }

  async producer(): Promise<KafkaProducer> {
    return {
      send: async (batches: readonly TopicRecords[]): Promise<Appended[]> => {
        const outcome = await this.onSend(batches);
        if (outcome === 'after-changelog') for (const b of batches) if (b.topic === this.changelog) this.appendAll(b);
        if (outcome !== 'append') {
          this.refused++;
          throw new Error('scripted: produce request refused (NOT_ENOUGH_REPLICAS)');
        }
        for (const b of batches) this.appendAll(b);
        return [];
      },
      disconnect: async () => undefined,
    };
  }

  private appendAll(b: TopicRecords): void {
    for (const r of b.records) this.append(b.topic, r.key, r.value, r.partition);
  }

  async groupConsumer(o: GroupConsumerOptions): Promise<GroupConsumer> {
    this.consumer = new ScriptedConsumer(this, o);
    return this.consumer;
  }

  async readFromBeginning(o: PartitionReadOptions): Promise<PartitionRead> {
    const parts = o.partitions ?? Array.from({ length: this.partitions }, (_, p) => p);
    for (const p of parts) {
      const records = this.log(o.topic, p).map((s, offset) => inputRecord(o.topic, p, offset, s));
      if (records.length > 0) await o.onRecords(records);
    }
    return { caughtUp: Promise.resolve(), stop: async () => undefined };
  }
}

function inputRecord(topic: string, partition: number, offset: number, s: Stored): InputRecord {
  return { topic, partition, offset: String(offset), key: s.key, value: s.value, timestamp: 0 };
}

/**
 * One member owning every partition, as the port describes it: once a handler resolves, the
 * partition's next fetch continues after the records it was handed; seek() moves the position
 * (fetches handed meanwhile are stale: isActive() false); a rejected handler's partition is
 * fetched again from its committed offset. done() commits, also after the handler returned.
 */
class ScriptedConsumer implements GroupConsumer {
  readonly groupId = 'g';
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly position = new Map<string, number>();
  private readonly committed = new Map<string, number>();
  private readonly stale = new Set<string>();
  private idle: (() => void)[] = [];

  constructor(
    private readonly kafka: ScriptedKafka,
    private readonly o: GroupConsumerOptions,
  ) {}

  async run(handle: (fetched: FetchedRecords, control: FetchControl) => Promise<void>): Promise<void> {
    const all = Array.from({ length: this.kafka.partitions }, (_, p) => p);
    this.o.events?.assigned?.(Object.fromEntries(this.o.topics.map((t) => [t, all])));
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        let handed = false;
        for (const topic of this.o.topics) {
          for (const partition of all) {
            const k = `${topic}/${partition}`;
            this.stale.delete(k); // a fetch after a seek starts at the new position
            const from = this.position.get(k) ?? this.committed.get(k) ?? 0;
            const log = this.kafka.log(topic, partition);
            if (from >= log.length) continue;
            handed = true;
            const control: FetchControl = {
              isActive: () => this.running && !this.stale.has(k),
              heartbeat: async () => undefined,
              done: async (offset) => void this.committed.set(k, Math.max(this.committed.get(k) ?? 0, Number(offset) + 1)),
            };
            const records = log.slice(from).map((s, i) => inputRecord(topic, partition, from + i, s));
            await handle({ topic, partition, records, highWatermark: BigInt(log.length) }, control).then(
              () => {
                if (!this.stale.has(k)) this.position.set(k, log.length);
              },
              () => {
                this.kafka.failedFetches++;
                this.position.delete(k);
              },
            );
          }
        }
        if (!handed && this.allCommitted()) for (const r of this.idle.splice(0)) r();
        await sleep(handed ? 0 : 5);
      }
    })();
  }

  /** Every input record is committed: handled and its outputs acknowledged. */
  private allCommitted(): boolean {
    return this.o.topics.every((topic) => Array.from({ length: this.kafka.partitions }, (_, p) => p).every((p) => (this.committed.get(`${topic}/${p}`) ?? 0) >= this.kafka.log(topic, p).length));
  }

  drained(): Promise<void> {
    return new Promise((r) => this.idle.push(r));
  }

  seek(topic: string, partition: number, offset: bigint): void {
    const k = `${topic}/${partition}`;
    this.kafka.rewinds++;
    this.position.set(k, Number(offset));
    this.stale.add(k);
  }

  pause(): void {}
  resume(): void {}

  async disconnect(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** The adapter on the scripted cluster, with the wiring connectKafka would make. */
async function startOnScripted(core: Core, config: Config, kafka: ScriptedKafka): Promise<KafkaAdapter> {
  const wiring: KafkaWiring = {
    settings: config,
    client: kafka,
    admin: {} as KafkaAdmin,
    producer: await kafka.producer(),
    partitions: kafka.partitions,
    // Nothing here is near a real broker's limits.
    limits: new ProduceLimits({ topics: new Map(), otherTopics: 1 << 20, request: 1 << 20, source: 'setting' }),
    disconnect: async () => undefined,
  };
  const adapter = await startKafkaAdapter(wiring, { core, metrics: new ProcessorMetrics(), logger: silentLogger });
  // Restores of the assignment are done before anything is produced.
  while (!adapter.isReady()) await sleep(5);
  return adapter;
}

function eventsIn(s: UserState | null | undefined): number {
  return (s?.interests ?? []).reduce((n, i) => n + i.events, 0);
}

/** The user's latest state in the changelog, as a restore would read it. */
function changelogState(kafka: ScriptedKafka, core: Core, config: Config, userId: string): UserState | null {
  let last: UserState | null = null;
  for (let p = 0; p < kafka.partitions; p++) {
    for (const r of kafka.log(config.topicChangelog, p)) if (r.key?.toString() === userId) last = core.stateCodec.decode(r.value);
  }
  return last;
}

/** Event ids in the scored outputs, each as often as it appears. */
function scoredEventIds(kafka: ScriptedKafka, core: Core, config: Config): string[] {
  const ids: string[] = [];
  for (let p = 0; p < kafka.partitions; p++) {
    for (const r of kafka.log(config.topicScored, p)) ids.push(...core.codec.decode<{ eventIds: string[] }>(r.value, Accepts.scored).value.eventIds);
  }
  return ids;
}

// The first test starts a core (models, worker threads): on a loaded machine that alone can take seconds.
describe('a chunk that fails after its state change is retried without counting its events twice', { timeout: 60_000 }, () => {
  const driver = new CoreDriver();
  afterAll(() => driver.close());
  afterEach(() => vi.restoreAllMocks());

  /** Two users' clicks on the clicks topic of the scripted cluster (user a: 3 events, user b: 2). */
  function produceClicks(kafka: ScriptedKafka, rec: RecordMaker, config: Config): string[] {
    const users = ['user-a', 'user-b', 'user-a', 'user-a', 'user-b'];
    const eventIds = users.map((u, i) => `${u}-click-${i}`);
    users.forEach((u, i) => {
      const c = rec.click(u, u === 'user-a' ? 'shoes' : 'books', { eventId: eventIds[i]! });
      kafka.append(config.topicClicks, c.key, c.value);
    });
    return eventIds;
  }

  /** The first send gets `first`, the others are appended. */
  async function run(first: SendOutcome, config: Config, beforeStart?: (core: Core) => void) {
    driver.applied = new AppliedOffsets(); // each test's core starts with nothing applied
    const { core, rec } = await driver.coreWithCatalog(config);
    const kafka = new ScriptedKafka(2, config.topicChangelog);
    let sends = 0;
    kafka.onSend = () => (sends++ === 0 ? first : 'append');
    beforeStart?.(core);
    const adapter = await startOnScripted(core, config, kafka);
    const eventIds = produceClicks(kafka, rec, config);
    await kafka.drained();
    await adapter.stop();
    return { core, kafka, eventIds, config };
  }

  /** user-a's 3 clicks and user-b's 2, each once, in memory and in the changelog; every event in a scored output. */
  function expectEachEventOnce({ core, kafka, eventIds, config }: Awaited<ReturnType<typeof run>>): void {
    for (const [userId, n] of [['user-a', 3], ['user-b', 2]] as const) {
      expect(eventsIn(core.users.get(userId)), `${userId} in memory`).toBe(n);
      expect(eventsIn(changelogState(kafka, core, config, userId)), `${userId} in the changelog`).toBe(n);
    }
    expect(new Set(scoredEventIds(kafka, core, config))).toEqual(new Set(eventIds));
  }

  it('a delivery refused once (nothing landed): after the retry each user holds each event once, in memory and in the changelog', async () => {
    const r = await run('before', testConfig());
    expect(r.kafka.refused).toBe(1);
    expect(r.kafka.rewinds).toBe(1); // the failed chunk's partition, fetched again from its start
    expect(r.kafka.failedFetches).toBe(0);
    expectEachEventOnce(r);
  });

  it('a delivery refused after its changelog part landed: the restored marker keeps the retry from folding again', async () => {
    const r = await run('after-changelog', testConfig());
    expect(r.kafka.refused).toBe(1);
    expect(r.kafka.rewinds).toBe(1); // the failed chunk's partition, fetched again from its start
    expect(r.kafka.failedFetches).toBe(0);
    expectEachEventOnce(r);
  });

  it('pipelined: chunks processed on the state of a chunk whose delivery is then refused are dropped unsent; after the reset each event is counted once', async () => {
    driver.applied = new AppliedOffsets();
    const config = testConfig({ chunkMaxRecords: 1 });
    const { core, rec } = await driver.coreWithCatalog(config);
    const kafka = new ScriptedKafka(1, config.topicChangelog);
    let sends = 0;
    let processedMeanwhile = 0;
    let twoMore!: () => void;
    const twoProcessed = new Promise<void>((r) => (twoMore = r));
    const process = core.processor.process.bind(core.processor);
    vi.spyOn(core.processor, 'process').mockImplementation(async (records) => {
      const result = await process(records);
      if (sends === 2 && ++processedMeanwhile === 2) twoMore();
      return result;
    });
    // The second chunk's send (user-b's first click) waits until two more chunks were processed (on
    // its state), then is refused; user-b is in none of those two, so sending them anyway would
    // put their marker on the changelog past user-b's lost click.
    kafka.onSend = async () => {
      if (++sends !== 2) return 'append';
      await Promise.race([twoProcessed, sleep(20_000)]); // without pipelining they never are
      return 'before';
    };
    const adapter = await startOnScripted(core, config, kafka);
    const eventIds = produceClicks(kafka, rec, config);
    await kafka.drained();
    await adapter.stop();
    expect(processedMeanwhile).toBeGreaterThanOrEqual(2); // pipelined: two more chunks ran before the refusal
    expect(kafka.refused).toBe(1);
    expectEachEventOnce({ core, kafka, eventIds, config });
  });

  it('scoring that fails once after the fold (a worker error while ranking): each event counted once after the retry', async () => {
    const rank = CandidateRanker.prototype.rank;
    let failures = 0;
    const r = await run('append', testConfig(), () => {
      vi.spyOn(CandidateRanker.prototype, 'rank').mockImplementation(function (this: CandidateRanker, queries) {
        if (failures++ === 0) return Promise.reject(new Error('scripted: inference worker exited while ranking'));
        return rank.call(this, queries);
      });
    });
    expect(failures).toBeGreaterThan(1);
    expect(r.kafka.rewinds).toBe(1); // the failed chunk's partition, fetched again from its start
    expect(r.kafka.failedFetches).toBe(0);
    expectEachEventOnce(r);
  });

  it('with EMIT_INTERVAL_MS, a flush due while a chunk is in flight waits for it: the chunk changes reach the changelog only with its marker', async () => {
    driver.applied = new AppliedOffsets();
    const config = testConfig({ emitIntervalMs: 1000 });
    const { core, rec } = await driver.coreWithCatalog(config);
    const kafka = new ScriptedKafka(1, config.topicChangelog);
    const t0 = driver.now;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held = 0;
    // The chunk of the third click (its marker says offset 2) is held, then refused once.
    kafka.onSend = async (batches) => {
      const marker = batches.find((b) => b.topic === config.topicChangelog)?.records.find((r) => r.key?.toString().startsWith('\u0000applied/'));
      if (marker?.value?.toString() !== '2' || held++ > 0) return 'append';
      await released;
      return 'before';
    };
    const adapter = await startOnScripted(core, config, kafka);
    try {
      const click = async (eventId: string, t: number) => {
        driver.now = t;
        const c = rec.click('user-a', 'shoes', { eventId, t });
        kafka.append(config.topicClicks, c.key, c.value);
        await kafka.drained();
      };
      await click('a1', t0); // scored at once
      await click('a2', t0 + 10); // waits for the interval
      driver.now = t0 + 20;
      const c = rec.click('user-a', 'shoes', { eventId: 'a3', t: t0 + 20 });
      kafka.append(config.topicClicks, c.key, c.value);
      while (held === 0) await sleep(5);
      // While the chunk's delivery is held, user-a's interval passes and the flush timer (every 500 ms) fires.
      driver.now = t0 + 5000;
      await sleep(1200);
      release();
      await kafka.drained();
      driver.now = t0 + 7000;
      await sleep(600); // a3's turn: the flush after the retry
    } finally {
      await adapter.stop();
      driver.now = t0;
    }
    expect(kafka.refused).toBe(1);
    expect(eventsIn(core.users.get('user-a'))).toBe(3);
    expect(eventsIn(changelogState(kafka, core, config, 'user-a'))).toBe(3);
    // Every changelog state of user-a is followed by the marker of the chunk that made it: none counts a3 before offset 2 is marked.
    const log = kafka.log(config.topicChangelog, 0);
    const a3Counted = log.findIndex((r) => r.key?.toString() === 'user-a' && eventsIn(core.stateCodec.decode(r.value)) === 3);
    const marked2 = log.findIndex((r) => r.key?.toString().startsWith('\u0000applied/') && r.value?.toString() === '2');
    expect(marked2).toBeGreaterThanOrEqual(0);
    expect(a3Counted).toBeLessThan(marked2);
    expect(new Set(scoredEventIds(kafka, core, config))).toEqual(new Set(['a1', 'a2', 'a3']));
  });
});
