/**
 * State restore benchmark: how fast an instance taking over partitions gets their users back from
 * the compacted changelog (read, decode, put into the store). Against a real broker: the local one
 * unless KAFKA_BROKERS is set. Prints a line, then one JSON line.
 *
 *   npm run bench:restore [-- --users 100000 --interests 1 --dim 128]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { startLocalBroker, type LocalBroker } from '../src/devtools/local-broker.js';
import { restoreChangelog } from '../src/adapters/kafka/changelog-restorer.js';
import { createKafkaClient } from '../src/adapters/kafka/client.js';
import type { OutboundRecord } from '../src/adapters/kafka/port.js';
import { boundedProducerOf } from '../src/adapters/kafka/produce-limits.js';
import { createLogger } from '../src/util/log.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { UserStateCodec } from '../src/state/user-state-codec.js';
import { UserStateStore } from '../src/state/user-state-store.js';
import { newUserState } from '../src/domain/user-state.js';
import { gaussian, seededRandom } from '../src/util/random.js';

const { values: args } = parseArgs({
  options: { users: { type: 'string', default: '100000' }, interests: { type: 'string', default: '1' }, dim: { type: 'string', default: '128' }, partitions: { type: 'string', default: '3' } },
});
const USERS = Number(args.users);
const K = Number(args.interests);
const DIM = Number(args.dim);
const PARTITIONS = Number(args.partitions);
const SPACE = 'bench-space';

let broker: LocalBroker | undefined;
if (!process.env.KAFKA_BROKERS) broker = await startLocalBroker();
const brokers = (process.env.KAFKA_BROKERS ?? broker!.bootstrap).split(',');
const logger = createLogger('warn');
const kafka = createKafkaClient({ brokers, clientId: 'bench-restore', logger });
const admin = await kafka.admin();
const topic = `bench-user-state-${Date.now()}`;
await admin.createTopics([{ topic, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } }]);

const codec = new UserStateCodec(new AvroCodec(), { space: SPACE, dim: DIM, maxInterests: K });
const normal = gaussian(seededRandom(5));
// 5,000 states per send, split by the producer to the topic's max.message.bytes (at K = 3, F = 128 a send is ~8 MB).
const producer = await boundedProducerOf(kafka, [topic]);
const t0 = Date.now();
for (let start = 0; start < USERS; start += 5000) {
  const records: OutboundRecord[] = [];
  for (let u = start; u < Math.min(USERS, start + 5000); u++) {
    const s = newUserState(`user-${u}`, u % PARTITIONS);
    s.interests = Array.from({ length: K }, () => ({ vector: Float32Array.from({ length: DIM }, normal), strength: 1, asOf: Date.now(), events: 3 }));
    s.latestEventTime = Date.now();
    s.updatedAt = Date.now();
    records.push({ key: Buffer.from(s.userId), value: codec.encode(s), partition: s.partition });
  }
  await producer.send([{ topic, records }]);
}
const produceMs = Date.now() - t0;

const store = new UserStateStore({ dim: DIM, maxEntries: USERS * 2, maxBytes: 8 * 1024 ** 3, ttlMs: 86_400_000 });
const rss0 = process.memoryUsage().rss;
const r = await restoreChangelog({
  client: kafka,
  topic,
  partitions: Array.from({ length: PARTITIONS }, (_, p) => p),
  apply: (records) => {
    for (const { value } of records) {
      const s = codec.decode(value);
      if (s) store.put(s);
    }
  },
});
const rss1 = process.memoryUsage().rss;
await producer.disconnect();
await admin.deleteTopics([topic]).catch(() => undefined);
await admin.disconnect();
await broker?.stop();

const usersPerS = Math.round((store.size / r.ms) * 1000);
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`;
console.log(`restored ${store.size} users (K=${K}, F=${DIM}) from ${PARTITIONS} changelog partitions in ${r.ms} ms: ${usersPerS} users/s (includes the reader's group join); store counts ${Math.round(store.bytes / store.size)} bytes/user; RSS +${Math.round((rss1 - rss0) / 1048576)} MiB; ${machine}`);
console.log(JSON.stringify({ machine, users: store.size, interests: K, dim: DIM, partitions: PARTITIONS, restore_ms: r.ms, users_per_s: usersPerS, produce_ms: produceMs, store_bytes_per_user: Math.round(store.bytes / store.size) }));
