import type { Logger } from '../../util/log.js';
import { kafkaClientFactory } from './client.js';
import type { KafkaAdmin, KafkaClient, KafkaClientFactory, KafkaProducer } from './port.js';
import { BoundedProducer, ProduceLimits } from './produce-limits.js';
import { SendCoalescer } from './send-coalescer.js';
import { brokersOf, outputTopicsOf, type KafkaSettings } from './settings.js';
import { checkCoPartitioned, ensureTopics } from './topics.js';

/** The connections the adapter runs on, checked against the cluster. */
export interface KafkaWiring {
  readonly settings: KafkaSettings;
  readonly client: KafkaClient;
  readonly admin: KafkaAdmin;
  /** Splits every send to keep to `limits`; with kafkajs, sends that wait share a request (SendCoalescer). */
  readonly producer: KafkaProducer;
  /** How large a record batch and a request to the output topics may be (read at connect). */
  readonly limits: ProduceLimits;
  /** Partitions of each co-partitioned input topic. */
  readonly partitions: number;
  /** Disconnects the producer, then the admin. */
  disconnect(): Promise<void>;
}

/**
 * Connects to the cluster, creates missing topics (CREATE_TOPICS), checks co-partitioning and reads
 * the output topics' size limits. Done before the models load, so bad settings fail fast with a
 * ConfigError naming the variable.
 */
export async function connectKafka(settings: KafkaSettings, logger: Logger, createClient: KafkaClientFactory = kafkaClientFactory(settings.kafkaClient)): Promise<KafkaWiring> {
  const brokers = brokersOf(settings);
  const log = logger.child({ component: 'processor' });
  const client = createClient({ brokers, clientId: settings.kafkaClientId, logger });
  const admin = await client.admin();
  try {
    if (settings.createTopics) await ensureTopics(admin, settings, log);
    const partitions = await checkCoPartitioned(admin, settings);
    const limits = await ProduceLimits.fromCluster(admin, outputTopicsOf(settings), settings.produceMaxBytes);
    log.info('produce limits', { topics: Object.fromEntries(outputTopicsOf(settings).map((t) => [t, limits.batchLimit(t)])), requestBytes: limits.requestLimit });
    const bounded = new BoundedProducer(await client.producer(), limits);
    // kafkajs sends each call as its own request (no linger); librdkafka batches by itself.
    const producer = settings.kafkaClient === 'kafkajs' ? new SendCoalescer(bounded) : bounded;
    return {
      settings,
      client,
      admin,
      producer,
      limits,
      partitions,
      disconnect: async () => {
        await producer.disconnect();
        await admin.disconnect();
      },
    };
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    throw err;
  }
}
