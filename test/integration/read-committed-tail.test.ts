/**
 * A read from the beginning (the changelog restore's) on a real broker is caught up when its
 * partition ends in an aborted transaction: the tail then holds only aborted records and the abort
 * marker, which neither client hands to the reader, and an exactly_once processor whose producer
 * lost the broker leaves just that on its changelog. Before the fix the read never caught up (the
 * restore of that partition waited for good). On each client (TEST_KAFKA_CLIENTS), its transactions
 * and its reader alike; the Confluent client's read needs its position past the markers (a
 * committed transaction's tail is a marker too).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { InputRecord } from '../../src/domain/events.js';
import { clientsUnderTest } from '../support/clients.js';
import { kafkaForTests, TestResources } from '../support/harness.js';

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timed out'> => Promise.race([p, new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms).unref())]);

for (const client of clientsUnderTest()) describe.skipIf(client.skipped !== null)(`read from the beginning past an aborted transaction (real broker) ${client.title}`, () => {
  const kafka = kafkaForTests({ client: client.kind });
  const resources = new TestResources();
  afterAll(() => resources.release());

  /** A new one-partition topic and a transactional producer of the client under test. */
  async function transactionalTopic() {
    const topic = `tail-${randomUUID().slice(0, 8)}`;
    const admin = await kafka.admin();
    await admin.createTopics([{ topic, partitions: 1 }]);
    await admin.disconnect();
    const producer = await kafka.transactionalProducer!(`tail-${randomUUID().slice(0, 8)}`);
    resources.onRelease(() => producer.disconnect());
    return { topic, producer };
  }

  it('is caught up at the end, having handed over the committed records only (from the start, and from a checkpoint before the aborted tail)', async () => {
    const { topic, producer } = await transactionalTopic();
    const committed = await producer.begin();
    await committed.send([{ topic, records: [{ key: Buffer.from('u'), value: Buffer.from('kept') }] }]);
    await committed.commit();
    const aborted = await producer.begin();
    await aborted.send([{ topic, records: [1, 2, 3].map((i) => ({ key: Buffer.from('u'), value: Buffer.from(`aborted ${i}`) })) }]);
    await aborted.abort();

    // Offsets: 0 the kept record, 1 its commit marker, 2-4 the aborted ones, 5 the abort marker.
    for (const from of [undefined, new Map([[0, 2n]])]) {
      const seen: InputRecord[] = [];
      const read = await kafka.readFromBeginning({ topic, follow: false, label: 'tail-test', onRecords: (rs) => void seen.push(...rs), ...(from ? { from } : {}) });
      resources.onRelease(() => read.stop());
      // From the checkpoint, every fetch holds only what kafkajs filters out: nothing is handed over.
      expect(await within(read.caughtUp, 20_000)).toBeUndefined();
      expect(seen.map((r) => r.value?.toString())).toEqual(from ? [] : ['kept']);
      await read.stop();
    }
  });

  it('is caught up at the end of a partition whose last transaction committed (its tail: the commit marker)', async () => {
    const { topic, producer } = await transactionalTopic();
    const tx = await producer.begin();
    await tx.send([{ topic, records: [1, 2].map((i) => ({ key: Buffer.from('u'), value: Buffer.from(`kept ${i}`) })) }]);
    await tx.commit();
    const seen: InputRecord[] = [];
    const read = await kafka.readFromBeginning({ topic, follow: false, label: 'tail-test', onRecords: (rs) => void seen.push(...rs) });
    resources.onRelease(() => read.stop());
    expect(await within(read.caughtUp, 20_000)).toBeUndefined();
    expect(seen.map((r) => r.value?.toString())).toEqual(['kept 1', 'kept 2']);
    await read.stop();
  });
});
