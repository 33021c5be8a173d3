/**
 * The local broker itself, checked with kafkajs directly and on purpose: an independent client, not
 * the project's Kafka port, so a fault in the port cannot make a broken broker look healthy.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { brokersForTests } from '../support/kafka.js';

const suffix = (): string => randomBytes(4).toString('hex');

describe('Kafka broker from global setup', () => {
  const kafka = new Kafka({ clientId: 'local-broker-test', brokers: brokersForTests(), logLevel: logLevel.NOTHING });
  let admin: Admin;
  let producer: Producer;
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    admin = kafka.admin();
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await Promise.all([admin.connect(), producer.connect()]);
  });

  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect()));
    await Promise.all([producer?.disconnect(), admin?.disconnect()]);
  });

  test('answers metadata requests', async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.brokers.length).toBeGreaterThanOrEqual(1);
  });

  test('creates a 3-partition topic, produces 5 keyed messages and consumes them back', async () => {
    const topic = `local-broker-test-${suffix()}`;
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })).toBe(true);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0]?.partitions).toHaveLength(3);

    const sent = Array.from({ length: 5 }, (_, i) => ({ key: `user-${i}`, value: JSON.stringify({ n: i, at: 'x'.repeat(i) }) }));
    await producer.send({ topic, messages: sent });

    const consumer = kafka.consumer({ groupId: `local-broker-test-${suffix()}` });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: { key: string; value: string; partition: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            received.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '', partition });
            if (received.length >= sent.length) resolve();
          },
        })
        .catch(reject);
    });

    const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);
    expect(received.map(({ key, value }) => ({ key, value })).sort(byKey)).toEqual([...sent].sort(byKey));
    for (const r of received) expect([0, 1, 2]).toContain(r.partition);
  });
});
