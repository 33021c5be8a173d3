/**
 * `adstream train --from-topic`: the training examples on TOPIC_TRAINING_EXAMPLES, every partition
 * from its first offset to the end it had when the read began (examples produced meanwhile wait
 * for the next run), decoded with the processor's codec (so a Schema Registry's framing is read
 * as the processor wrote it).
 */
import type { KafkaClient } from '../adapters/kafka/port.js';
import type { AvroCodec } from '../serde/avro-codec.js';
import { Accepts } from '../serde/record-names.js';
import type { TrainingExampleRecord } from '../training/ctr/examples.js';

export async function readExampleTopic(client: KafkaClient, codec: AvroCodec, topic: string): Promise<TrainingExampleRecord[]> {
  const out: TrainingExampleRecord[] = [];
  const read = await client.readFromBeginning({
    topic,
    follow: false,
    label: 'adstream-train',
    onRecords: (records) => {
      for (const r of records) {
        // A record that is not a training example is an error that names it: training on a topic
        // that holds something else would be silently wrong.
        try {
          out.push(codec.decode<TrainingExampleRecord>(r.value, Accepts.trainingExample).value);
        } catch (err) {
          throw new Error(`${topic} partition ${r.partition} offset ${r.offset}: not a training example: ${(err as Error).message}`);
        }
      }
    },
  });
  try {
    await read.caughtUp;
  } finally {
    await read.stop();
  }
  return out;
}
