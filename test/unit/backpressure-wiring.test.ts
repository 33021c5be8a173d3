/**
 * The backpressure wiring of the event consumer (consumeEvents, src/adapters/kafka/consume.ts) over
 * a scripted consumer of the port: when the inference engine signals pressure, consumption of the
 * three event topics pauses (deletions need no inference and keep flowing), and resumes when the
 * signal clears. The integration test (test/integration/backpressure.test.ts) shows the signal
 * firing on a real broker; this one fails if the adapter stops acting on it.
 */
import { describe, expect, it } from 'vitest';
import { consumeEvents } from '../../src/adapters/kafka/consume.js';
import type { Delivery } from '../../src/adapters/kafka/deliver.js';
import type { PartitionState } from '../../src/adapters/kafka/partition-state.js';
import type { GroupConsumer, GroupConsumerOptions, KafkaClient } from '../../src/adapters/kafka/port.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import type { Core } from '../../src/pipeline/core.js';
import { createLogger } from '../../src/util/log.js';

function setUp() {
  const settings = loadConfig({ env: { TOPIC_CLICKS: 'c', TOPIC_IMAGE_VIEWS: 'i', TOPIC_REVIEWS: 'r', TOPIC_USER_DELETIONS: 'd', TOPIC_AD_FEEDBACK: 'f', SESSION_TIMEOUT_MS: '7000' } });
  const calls: string[] = [];
  let options: GroupConsumerOptions | undefined;
  const consumer: GroupConsumer = {
    groupId: 'g',
    run: async () => undefined,
    pause: (topics) => void calls.push(`pause ${topics.join(',')}`),
    resume: (topics) => void calls.push(`resume ${topics.join(',')}`),
    seek: () => undefined,
    disconnect: async () => undefined,
  };
  const client = {
    groupConsumer: async (o: GroupConsumerOptions) => {
      options = o;
      return consumer;
    },
  } as Pick<KafkaClient, 'groupConsumer'> as KafkaClient;
  const listeners: ((saturated: boolean) => void)[] = [];
  // The parts of the core the wiring touches before any record arrives.
  const core = { engine: { onPressure: (l: (saturated: boolean) => void) => void listeners.push(l), queuedItems: () => 240 } } as unknown as Core;
  const logged: string[] = [];
  const start = () =>
    consumeEvents({
      settings,
      client,
      core,
      metrics: new ProcessorMetrics({ defaultMetrics: false }),
      log: createLogger('warn', {}, (line) => void logged.push(line)),
      delivery: {} as Delivery,
      partitions: 3,
      partitionState: { restoring: () => null } as unknown as PartitionState,
      fail: () => undefined,
      stored: async () => undefined,
    });
  return { start, calls, listeners, logged, options: () => options };
}

describe('backpressure wiring of the event consumer', () => {
  it('pauses the event topics (not the deletions nor the ad feedback) while the inference queues are full, resumes when they drain', async () => {
    const { start, calls, listeners, logged } = setUp();
    await start();
    expect(listeners).toHaveLength(1);
    listeners[0]!(true);
    expect(calls).toEqual(['pause c,i,r']);
    expect(logged.join('')).toContain('inference queues full: pausing consumption');
    listeners[0]!(false);
    expect(calls).toEqual(['pause c,i,r', 'resume c,i,r']);
    expect(logged.join('')).toContain('inference queues drained: resuming consumption');
  });

  it('subscribes one co-partitioned group to the event topics, the deletions and the ad feedback', async () => {
    const { start, options } = setUp();
    await start();
    expect(options()).toMatchObject({ topics: ['c', 'i', 'r', 'd', 'f'], coPartitioned: true, sessionTimeoutMs: 7000 });
  });
});
