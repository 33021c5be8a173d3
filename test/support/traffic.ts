/**
 * The input side of the delivery tests: the processor's topics created, the synthetic ad catalog
 * published, a connected producer, and synthetic events drawn in batches grouped by input topic.
 */
import type { KafkaClient, KafkaProducer, OutboundRecord, ProducerOptions, TopicRecords } from '../../src/adapters/kafka/port.js';
import type { Config } from '../../src/app/config/settings.js';
import { syntheticAds, syntheticUsers, type SyntheticUser } from '../../src/devtools/synthetic.js';
import { encodeAd, TrafficFactory, type EncodedEvent, type EventTopicRole } from '../../src/devtools/traffic.js';
import { codec, connectedProducer, createTopics, sleep } from './harness.js';

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
   * `onEvent` sees each event as it is drawn and may return the value to send instead (a corrupt record).
   */
  batch(size: number, onEvent?: (e: EncodedEvent) => Buffer | void): { events: EncodedEvent[]; topicRecords: TopicRecords[] } {
    const events: EncodedEvent[] = [];
    const byTopic = new Map<string, OutboundRecord[]>();
    for (let i = 0; i < size; i++) {
      const e = this.factory.next(Date.now());
      const value = onEvent?.(e) ?? e.value;
      const topic = this.topicOf(e.role);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), { key: e.key, value }]);
      events.push(e);
    }
    return { events, topicRecords: [...byTopic].map(([topic, records]) => ({ topic, records })) };
  }

  /** Sends `batches` batches of `size` events (acks all), `everyMs` apart; `onEvent` as for batch(). */
  async produce(batches: number, size: number, everyMs: number, onEvent?: (e: EncodedEvent) => Buffer | void): Promise<void> {
    for (let b = 0; b < batches; b++) {
      await this.producer.send(this.batch(size, onEvent).topicRecords);
      await sleep(everyMs);
    }
  }
}
