import { describe, expect, it } from 'vitest';
import { processorConsumerOptions } from '../../loadtest/passthrough.js';
import { consumeEvents } from '../../src/adapters/kafka/consume.js';
import type { GroupConsumerOptions, KafkaClient } from '../../src/adapters/kafka/port.js';
import { loadConfig } from '../../src/app/config/load-config.js';
import { silentLogger } from '../../src/util/log.js';

/** The options the processor's event consumer asks its client for (a scripted client that stops there). */
async function processorsOptions(env: Record<string, string>, partitions: number): Promise<GroupConsumerOptions> {
  let asked: GroupConsumerOptions | undefined;
  const client = {
    groupConsumer: async (o: GroupConsumerOptions) => {
      asked = o;
      throw new Error('stop here');
    },
  } as unknown as KafkaClient;
  const deps = { settings: loadConfig({ env }), client, log: silentLogger, partitions } as unknown as Parameters<typeof consumeEvents>[0];
  await expect(consumeEvents(deps)).rejects.toThrow('stop here');
  return asked!;
}

describe('the pass-through consumer', () => {
  it("asks for the processor's event consumer options (topics, group, assignment, concurrency, fetch wait), so the floor is the processor's own path", async () => {
    for (const [env, partitions] of [[{}, 3], [{ GROUP_ID: 'g', SESSION_TIMEOUT_MS: '12000', TOPIC_CLICKS: 'c' }, 1], [{}, 12]] as const) {
      const { events: _events, ...processor } = await processorsOptions({ KAFKA_BROKERS: 'localhost:9092', ...env }, partitions);
      expect(processorConsumerOptions(loadConfig({ env: { KAFKA_BROKERS: 'localhost:9092', ...env } }), partitions), JSON.stringify(env)).toEqual(processor);
    }
  });
});
