import { describe, expect, it } from 'vitest';
import type { KafkaClient, PartitionReadOptions } from '../../src/adapters/kafka/port.js';
import { readExampleTopic } from '../../src/app/example-topic.js';
import type { InputRecord } from '../../src/domain/events.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { RecordNames } from '../../src/serde/record-names.js';

const codec = new AvroCodec();
const example = (id: string, label: number): Buffer =>
  codec.encode(RecordNames.trainingExample, { exampleId: id, userId: 'u', adId: 'a', outputId: null, position: 1, servedAt: 1_000, label, modelVersion: 'm', servedCtr: null, interest: [1, 0], ad: [0, 1] });
const rec = (partition: number, offset: number, value: Buffer): InputRecord => ({ topic: 'training-examples', partition, offset: String(offset), key: Buffer.from('u'), value, timestamp: 0 });

function fakeClient(runs: InputRecord[][]): { client: KafkaClient; asked: () => PartitionReadOptions | undefined; stopped: () => boolean } {
  let asked: PartitionReadOptions | undefined;
  let stopped = false;
  const client = {
    readFromBeginning: async (o: PartitionReadOptions) => {
      asked = o;
      const caughtUp = (async () => {
        for (const run of runs) await o.onRecords(run);
      })();
      return { caughtUp, stop: async () => void (stopped = true) };
    },
  } as unknown as KafkaClient;
  return { client, asked: () => asked, stopped: () => stopped };
}

describe('adstream train --from-topic', () => {
  it('reads every partition of the examples topic to its end, decoded, and stops the reader', async () => {
    const f = fakeClient([[rec(0, 0, example('x1', 1)), rec(0, 1, example('x2', 0))], [rec(2, 0, example('x3', 0))]]);
    const got = await readExampleTopic(f.client, codec, 'training-examples');
    expect(f.asked()).toMatchObject({ topic: 'training-examples', follow: false });
    expect(f.asked()?.partitions).toBeUndefined();
    expect(got.map((e) => [e.exampleId, e.label, Array.from(e.interest)])).toEqual([['x1', 1, [1, 0]], ['x2', 0, [1, 0]], ['x3', 0, [1, 0]]]);
    expect(f.stopped()).toBe(true);
  });

  it('names the record that is not a training example, and still stops the reader', async () => {
    const click = codec.encode(RecordNames.click, { eventId: 'e', userId: 'u', itemId: 'i', categoryId: 'toys', action: 'CLICK', eventTime: 1, sessionId: null });
    const f = fakeClient([[rec(1, 7, click)]]);
    await expect(readExampleTopic(f.client, codec, 'training-examples')).rejects.toThrow(/partition 1 offset 7: not a training example/);
    expect(f.stopped()).toBe(true);
  });
});
