/**
 * The input side of the delivery tests: the processor's topics created, the synthetic ad catalog
 * published, a connected producer, and synthetic events drawn in batches grouped by input topic.
 */
import type { KafkaClient, KafkaProducer, OutboundRecord, ProducerOptions, TopicRecords } from '../../src/adapters/kafka/port.js';
import type { Config } from '../../src/app/config/settings.js';
import type { ReasonCode } from '../../src/domain/errors.js';
import { Accepts, RecordNames } from '../../src/serde/record-names.js';
import { syntheticAds, syntheticUsers, type SyntheticUser } from '../../src/devtools/synthetic.js';
import { encodeAd, TrafficFactory, type EncodedEvent, type EventTopicRole } from '../../src/devtools/traffic.js';
import { codec, connectedProducer, createTopics, sleep } from './harness.js';

/** The dead-letter reasons a test can make a record deserve on purpose (see spoil). */
export const SPOILT_REASONS = ['EMPTY_VALUE', 'BAD_FRAMING', 'UNKNOWN_SCHEMA', 'WRONG_SCHEMA', 'DECODE_FAILED', 'INVALID_FIELD', 'KEY_MISMATCH'] as const satisfies readonly ReasonCode[];
export type SpoiltReason = (typeof SPOILT_REASONS)[number];

/**
 * The header on a record a test made bad on purpose: the dead-letter reason it deserves. The
 * processor never reads input headers; the audit (audit.ts) does, so it can tell a deserved dead
 * letter from one the processor made of a valid record.
 */
export const DESERVED_REASON_HEADER = 'adstream-test-deserved-reason';

/** A schema id that schemas/index.json does not have. */
const UNKNOWN_SCHEMA_ID = 999;
const TEN_DAYS_MS = 10 * 86_400_000;

/** The event's record made bad so that it deserves `reason`, on the event's own topic; the header says which. */
export function spoil(e: EncodedEvent, reason: SpoiltReason, now: number = Date.now()): OutboundRecord {
  const headers = { [DESERVED_REASON_HEADER]: reason };
  switch (reason) {
    case 'EMPTY_VALUE':
      return { key: e.key, value: null, headers };
    case 'BAD_FRAMING':
      return { key: e.key, value: Buffer.from(JSON.stringify({ eventId: e.eventId, note: 'JSON, not Avro' })), headers };
    case 'UNKNOWN_SCHEMA': {
      const value = Buffer.from(e.value);
      value.writeUInt32BE(UNKNOWN_SCHEMA_ID, 1);
      return { key: e.key, value, headers };
    }
    case 'WRONG_SCHEMA':
      return { key: e.key, value: codec.encode(RecordNames.userDeletion, { userId: e.userId, requestedAt: now, requestId: `not-an-event-${e.eventId}` }), headers };
    case 'DECODE_FAILED':
      return { key: e.key, value: Buffer.concat([e.value, Buffer.from([0])]), headers }; // a trailing byte
    case 'INVALID_FIELD': {
      const { value, schemaName } = codec.decode<Record<string, unknown>>(e.value, Accepts.events);
      return { key: e.key, value: codec.encode(schemaName, { ...value, eventTime: now + TEN_DAYS_MS }), headers }; // in the future beyond any allowed skew
    }
    case 'KEY_MISMATCH':
      return { key: Buffer.from(`${e.userId}-not`), value: e.value, headers };
  }
}

/** An onEvent for TestTraffic.batch/produce: every `n`th event spoilt, the reasons taken in turn. */
export function spoilEvery(n: number, reasons: readonly SpoiltReason[] = SPOILT_REASONS): (e: EncodedEvent) => SpoiltReason | undefined {
  let seen = 0;
  let next = 0;
  return () => (++seen % n === 0 ? reasons[next++ % reasons.length] : undefined);
}

/** An event drawn by TestTraffic, and the reason it was spoilt for, if it was. */
export interface DrawnEvent extends EncodedEvent {
  readonly spoilt?: SpoiltReason;
}

export interface TestTrafficOptions {
  /** How many synthetic users draw events, or the users themselves. */
  readonly users: number | readonly SyntheticUser[];
  readonly imagesPerCategory: number;
  /** Ads per category in the catalog. Default 3. */
  readonly adsPerCategory?: number;
  /** Every image view a new image id, so it misses the embedding cache (see TrafficFactory). */
  readonly uniqueImageIds?: boolean;
  /** Producer settings (e.g. fewer retries, so a send fails while the broker is away). */
  readonly producer?: ProducerOptions;
}

export class TestTraffic {
  private constructor(
    readonly config: Config,
    readonly producer: KafkaProducer,
    readonly factory: TrafficFactory,
  ) {}

  /** Creates the topics, connects a producer, publishes the ad catalog and prepares the traffic. */
  static async create(kafka: KafkaClient, config: Config, o: TestTrafficOptions): Promise<TestTraffic> {
    await createTopics(kafka, config);
    const producer = await connectedProducer(kafka, o.producer);
    try {
      const ads = await syntheticAds(o.adsPerCategory ?? 3);
      await producer.send([{ topic: config.topicAds, records: ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
      const users = typeof o.users === 'number' ? syntheticUsers(o.users) : o.users;
      const factory = await TrafficFactory.create(codec, users, { imagesPerCategory: o.imagesPerCategory, uniqueImageIds: o.uniqueImageIds ?? false });
      return new TestTraffic(config, producer, factory);
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  /** The three input topics: clicks, image views, reviews. */
  get inputTopics(): string[] {
    return [this.config.topicClicks, this.config.topicImageViews, this.config.topicReviews];
  }

  topicOf(role: EventTopicRole): string {
    return { click: this.config.topicClicks, image: this.config.topicImageViews, review: this.config.topicReviews }[role];
  }

  /**
   * Draws `size` events (event time now) grouped by input topic, as the producer's send takes them.
   * `onEvent` sees each event as it is drawn and may name a reason to spoil it for (see spoil): the
   * record sent is then bad on purpose, and says so in a header.
   */
  batch(size: number, onEvent?: (e: EncodedEvent) => SpoiltReason | void | undefined): { events: DrawnEvent[]; topicRecords: TopicRecords[] } {
    const events: DrawnEvent[] = [];
    const byTopic = new Map<string, OutboundRecord[]>();
    for (let i = 0; i < size; i++) {
      const e = this.factory.next(Date.now());
      const reason = onEvent?.(e) ?? undefined;
      const topic = this.topicOf(e.role);
      const records = byTopic.get(topic) ?? [];
      records.push(reason ? spoil(e, reason) : { key: e.key, value: e.value });
      byTopic.set(topic, records);
      events.push(reason ? { ...e, spoilt: reason } : e);
    }
    return { events, topicRecords: [...byTopic].map(([topic, records]) => ({ topic, records })) };
  }

  /** Sends `batches` batches of `size` events (acks all), `everyMs` apart; `onEvent` as for batch(). */
  async produce(batches: number, size: number, everyMs: number, onEvent?: (e: EncodedEvent) => SpoiltReason | void | undefined): Promise<void> {
    for (let b = 0; b < batches; b++) {
      await this.producer.send(this.batch(size, onEvent).topicRecords);
      await sleep(everyMs);
    }
  }
}

/**
 * Traffic that keeps coming: a batch every `everyMs` until stop(), retrying a send that fails (while
 * the broker is away), with `onEvent` as for TestTraffic.batch (e.g. spoilEvery).
 */
export class SteadyLoad {
  sent = 0;
  failedSends = 0;
  /** Event id -> user, of every event sent. */
  readonly userOf = new Map<string, string>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  constructor(
    private readonly traffic: TestTraffic,
    private readonly onEvent?: (e: EncodedEvent) => SpoiltReason | void | undefined,
  ) {}

  get running(): boolean {
    return this.loop !== undefined && !this.stopped;
  }

  start(batchSize: number, everyMs: number): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const { events, topicRecords } = this.traffic.batch(batchSize, this.onEvent);
        for (;;) {
          try {
            await this.traffic.producer.send(topicRecords);
            break;
          } catch {
            this.failedSends++;
            await sleep(500);
          }
        }
        this.sent += batchSize;
        for (const e of events) this.userOf.set(e.eventId, e.userId);
        await sleep(everyMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
