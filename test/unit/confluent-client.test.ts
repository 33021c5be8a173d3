// The Confluent implementation of the port, where it is pure: option mapping, error mapping, the
// missing-package message. Its behaviour against a broker is the integration suite's (run per client).
import { describe, expect, it } from 'vitest';
import { assignmentByTopic, hasCause } from '../../src/adapters/kafka/client-common.js';
import { commonConfig, groupConsumerConfig, isFenced, isTooLarge, libraryLogger, missingPackageError, partitionReadConfig, producerConfig, transactionalProducerConfig } from '../../src/adapters/kafka/confluent-client.js';
import { kafkaClientFactory } from '../../src/adapters/kafka/client.js';
import { ConfigError } from '../../src/domain/errors.js';
import { silentLogger, type Logger } from '../../src/util/log.js';

/** A librdkafka error as the package rejects with it: a message and a numeric code. */
const libraryError = (code: number, message = 'Broker: Message size too large'): Error => Object.assign(new Error(message), { code });

describe('Confluent client: option mapping', () => {
  const settings = { brokers: ['a:9092', 'b:9092'], clientId: 'adstream', logger: silentLogger };

  it('puts KafkaJS options under kafkaJS and librdkafka properties at the top level', () => {
    const c = commonConfig({ ...settings, retry: { retries: 3, maxRetryTimeMs: 700 }, connectionTimeoutMs: 1500 }, {});
    expect(c['kafkaJS']).toMatchObject({ brokers: ['a:9092', 'b:9092'], clientId: 'adstream', retry: { retries: 3, maxRetryTime: 700 }, connectionTimeout: 1500 });
    expect(c['kafkaJS']).not.toHaveProperty('requestTimeout');
    expect(c['socket.nagle.disable']).toBe(true);
  });

  it('produces with acks=-1, idempotent, no topic creation, and a short linger', () => {
    const p = producerConfig({ retries: 2 });
    expect(p['kafkaJS']).toMatchObject({ acks: -1, idempotent: true, allowAutoTopicCreation: false, retry: { retries: 2 } });
    expect(p['linger.ms']).toBeLessThanOrEqual(5);
    expect(producerConfig({})['kafkaJS']).not.toHaveProperty('retry');
  });

  it('consumes a co-partitioned group with the range assignor, from the beginning, leaving commits to us (DoneOffsets)', () => {
    const onRebalance = () => undefined;
    const c = groupConsumerConfig({ groupId: 'g', topics: ['clicks', 'reviews'], coPartitioned: true, sessionTimeoutMs: 6000, fetchMaxWaitMs: 20 }, onRebalance);
    expect(c['kafkaJS']).toMatchObject({ groupId: 'g', fromBeginning: true, autoCommit: false, partitionAssigners: ['range'], sessionTimeout: 6000, heartbeatInterval: 600 });
    expect(c['fetch.wait.max.ms']).toBe(20);
    expect(c['rebalance_cb']).toBe(onRebalance);
  });

  it('commits nothing for an observer and keeps the default assignor when not co-partitioned', () => {
    const c = groupConsumerConfig({ groupId: 'g', topics: ['t'], commits: 'none' }, () => undefined);
    expect(c['kafkaJS']).toMatchObject({ autoCommit: false });
    expect(c['kafkaJS']).not.toHaveProperty('partitionAssigners');
    expect(c['kafkaJS']).not.toHaveProperty('autoCommitInterval');
  });

  it('reads from the beginning in a throwaway group, with bulk fetches only when bounded', () => {
    const bounded = partitionReadConfig({ topic: 't', follow: false, label: 'restore', onRecords: () => undefined });
    const following = partitionReadConfig({ topic: 't', follow: true, label: 'catalog', onRecords: () => undefined });
    expect(bounded['kafkaJS']).toMatchObject({ fromBeginning: true, autoCommit: false });
    expect((bounded['kafkaJS'] as { groupId: string }).groupId).toMatch(/^restore\./);
    expect((bounded['kafkaJS'] as { groupId: string }).groupId).not.toBe((partitionReadConfig({ topic: 't', follow: false, label: 'restore', onRecords: () => undefined })['kafkaJS'] as { groupId: string }).groupId);
    expect(bounded['kafkaJS']).toHaveProperty('maxBytesPerPartition');
    expect(following['kafkaJS']).not.toHaveProperty('maxBytesPerPartition');
  });

  it('reads only committed transactions, in the group and in a read from the beginning (the changelog restore)', () => {
    expect(groupConsumerConfig({ groupId: 'g', topics: ['t'] }, () => undefined)['kafkaJS']).toMatchObject({ readUncommitted: false });
    expect(partitionReadConfig({ topic: 't', follow: false, label: 'restore', onRecords: () => undefined })['kafkaJS']).toMatchObject({ readUncommitted: false });
  });

  it('makes a transactional producer as the plain one, with its id and a short transaction timeout', () => {
    const t = transactionalProducerConfig('grp-3');
    expect(t['kafkaJS']).toMatchObject({ transactionalId: 'grp-3', acks: -1, idempotent: true, allowAutoTopicCreation: false });
    expect((t['kafkaJS'] as { transactionTimeout: number }).transactionTimeout).toBeLessThanOrEqual(10_000);
    expect(t['linger.ms']).toBe(producerConfig({})['linger.ms']);
  });

  it('hands an assignment to the port grouped per topic', () => {
    expect(assignmentByTopic([{ topic: 'b', partition: 2 }, { topic: 'a', partition: 1 }, { topic: 'b', partition: 0 }])).toEqual({ a: [1], b: [0, 2] });
  });
});

describe('Confluent client: error mapping', () => {
  it('maps MESSAGE_TOO_LARGE (10) and RECORD_LIST_TOO_LARGE (18) to too large, also wrapped', () => {
    expect(isTooLarge(libraryError(10))).toBe(true);
    expect(isTooLarge(libraryError(18, 'Broker: Message batch larger than configured server segment size'))).toBe(true);
    expect(isTooLarge(new Error('send failed', { cause: libraryError(10) }))).toBe(true);
  });

  it('does not take other errors for too large', () => {
    expect(isTooLarge(libraryError(-195, 'Local: Broker transport failure'))).toBe(false);
    expect(isTooLarge(libraryError(-192, 'Local: Message timed out'))).toBe(false);
    expect(isTooLarge(new Error('MESSAGE_TOO_LARGE in a message, no code'))).toBe(false);
    expect(isTooLarge('10')).toBe(false);
    expect(hasCause(new Error('a', { cause: new Error('b') }), (e) => e.message === 'b')).toBe(true);
  });

  it('takes librdkafka\'s fencing errors for fenced (ERR__FENCED, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, a fatal state that says so), and nothing else', () => {
    expect(isFenced(libraryError(-144, 'Local: This instance has been fenced by a newer instance'))).toBe(true);
    expect(isFenced(libraryError(90, 'Broker: Producer fenced'))).toBe(true);
    expect(isFenced(new Error('commit failed', { cause: libraryError(47, 'Broker: Producer attempted an operation with an old epoch') }))).toBe(true);
    expect(isFenced(libraryError(-150, 'Fatal error: Local: This instance has been fenced by a newer instance'))).toBe(true);
    expect(isFenced(libraryError(-150, 'Fatal error: Broker: Unsupported version'))).toBe(false);
    expect(isFenced(libraryError(-185, 'Local: Timed out'))).toBe(false);
    expect(isFenced(libraryError(22, 'Broker: Specified group generation id is not valid'))).toBe(false);
  });

  it('says how to install the optional package when it is missing', () => {
    const e = missingPackageError(new Error("Cannot find package '@confluentinc/kafka-javascript'\nRequire stack: ..."));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.setting).toBe('KAFKA_CLIENT');
    expect(e.message).toContain('CKJS_LINKING=dynamic npm ci');
    expect(e.message).toContain("Cannot find package '@confluentinc/kafka-javascript'");
    expect(e.message).not.toContain('Require stack');
  });

  it('logs the library\'s errors as warnings, known transient ones and its info as debug', () => {
    const lines: string[] = [];
    const log: Logger = { debug: (m) => lines.push(`debug ${m}`), info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`), child: () => log };
    const l = libraryLogger(log) as Record<'error' | 'warn' | 'info' | 'debug', (m: string) => void> & { namespace(): unknown };
    l.error('Connect to ipv4#127.0.0.1:9092 failed: Connection refused');
    l.warn('Failed to acquire idempotence PID: Broker: Coordinator load in progress: retrying');
    l.info('Consumer disconnected');
    l.debug('fetch');
    expect(lines).toEqual(['warn Connect to ipv4#127.0.0.1:9092 failed: Connection refused', 'debug Failed to acquire idempotence PID: Broker: Coordinator load in progress: retrying', 'debug Consumer disconnected']);
    expect(l.namespace()).toBe(l);
  });
});

describe('KAFKA_CLIENT selects the implementation', () => {
  it('gives different factories for kafkajs and confluent, creating a client without loading anything', () => {
    expect(kafkaClientFactory('kafkajs')).not.toBe(kafkaClientFactory('confluent'));
    const client = kafkaClientFactory('confluent')({ brokers: ['x:1'], clientId: 'c', logger: silentLogger });
    expect(client.brokers).toEqual(['x:1']);
  });
});
