/**
 * The kafkajs group member starts itself again after a crash kafkajs will not restart from (a
 * coordinator it could not find while the broker came back), with the handlers it ran with; not
 * after an error of another kind, nor once it is being stopped. A scripted kafkajs consumer stands
 * in (the outage itself runs on a real broker in faults.test.ts, where this crash is a matter of
 * timing).
 */
import type { Consumer } from 'kafkajs';
import { KafkaJSGroupCoordinatorNotFound, KafkaJSNonRetriableError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkajsGroupConsumer } from '../../src/adapters/kafka/kafkajs-client.js';
import { silentLogger } from '../../src/util/log.js';

function scriptedConsumer(failConnects = 0): { consumer: Consumer; runs: unknown[]; connects: () => number } {
  const runs: unknown[] = [];
  let connects = 0;
  const consumer = {
    subscribe: async () => undefined,
    run: async (config: unknown) => void runs.push(config),
    connect: async () => {
      connects++;
      if (connects <= failConnects) throw new Error('connect ECONNREFUSED');
    },
    disconnect: async () => undefined,
    commitOffsets: async () => undefined,
  } as unknown as Consumer;
  return { consumer, runs, connects: () => connects };
}

/** kafkajs's error (its types declare no arguments; it takes a message as its other errors do). */
function coordinatorNotFound(): Error {
  return new (KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error)('Failed to find group coordinator');
}

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return done();
}

describe('kafkajs group member restart', () => {
  it('runs again with the same handlers after kafkajs gives up on finding the coordinator, through failed connects', async () => {
    const { consumer, runs, connects } = scriptedConsumer(1);
    const member = new KafkajsGroupConsumer(consumer, { groupId: 'g', topics: ['t'] }, silentLogger);
    await member.run(async () => undefined);
    expect(runs).toHaveLength(1);
    // As kafkajs's retrier gives up on it: the coordinator error wrapped, as the cause, in a non-retriable one.
    const notFound = coordinatorNotFound();
    const coordinator = Object.assign(new KafkaJSNonRetriableError(notFound), { cause: notFound });
    expect(member.restartAfter(coordinator)).toBe(true);
    expect(await until(() => runs.length === 2, 5000)).toBe(true);
    expect(connects()).toBe(2); // the first reconnect was refused, the second went through
    expect(runs[1]).toBe(runs[0]);
  });

  it('lets other crashes stand, and any crash once the member is stopping', async () => {
    const { consumer, runs } = scriptedConsumer();
    const member = new KafkajsGroupConsumer(consumer, { groupId: 'g', topics: ['t'] }, silentLogger);
    await member.run(async () => undefined);
    expect(member.restartAfter(new TypeError('a bug of ours'))).toBe(false);
    await member.disconnect();
    expect(member.restartAfter(coordinatorNotFound())).toBe(false);
    await new Promise((r) => setTimeout(r, 700));
    expect(runs).toHaveLength(1);
  });
});
