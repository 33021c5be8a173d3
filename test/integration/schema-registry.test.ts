/**
 * The processor with a real schema registry (a local Apicurio Registry, started by this file) on
 * the real broker: it registers its schemas, writes with the registry's ids, reads a record an
 * independent producer wrote under an older compatible version's id, dead-letters an unknown id,
 * and does not start when the registry refuses one of its schemas. The independent side talks to
 * the registry with plain fetch and frames Avro with avsc itself.
 */
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaProducer } from '../../src/adapters/kafka/port.js';
import { startKafkaProcessor, type RunningProcessor } from '../../src/app/processor.js';
import { startLocalRegistry, type LocalRegistry } from '../../src/devtools/local-registry.js';
import { syntheticAds } from '../../src/devtools/synthetic.js';
import { encodeAd } from '../../src/devtools/traffic.js';
import type { ScoredOutput } from '../../src/domain/outputs.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { RecordNames } from '../../src/serde/record-names.js';
import { SchemaIncompatibleError } from '../../src/serde/schema-registry.js';
import { projectSchemas, SchemaTable } from '../../src/serde/schema-table.js';
import { createLogger } from '../../src/util/log.js';
import { collect, configOf, connectedProducer, createTopics, eventually, isolatedEnv, kafkaForTests, type ReadRecord } from '../support/harness.js';

const REGISTRY_FIRST_BUILD_MS = 20 * 60_000;
const HEADERS = { 'content-type': 'application/vnd.schemaregistry.v1+json' };

/** An independent client's registration: POST /subjects/S/versions with fetch. */
async function register(url: string, subject: string, schema: object): Promise<{ status: number; id?: number; message?: string }> {
  const res = await fetch(`${url}/subjects/${encodeURIComponent(subject)}/versions`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ schema: JSON.stringify(schema) }) });
  const body = (await res.json()) as { id?: number; message?: string };
  return { status: res.status, ...body };
}

async function get<T>(url: string, path: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: HEADERS });
  expect(res.status, `GET ${path}`).toBe(200);
  return (await res.json()) as T;
}

/** The Confluent wire format as any producer writes it. */
function framed(id: number, type: avro.Type, value: unknown): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, type.toBuffer(value)]);
}

const schemaOf = (name: string): { fields: { name: string }[] } & Record<string, unknown> => JSON.parse(projectSchemas().latest(name).definition) as never;
/** ClickEvent as it was before sessionId (optional, default null): an older version ours can read. */
const clickV0 = { ...schemaOf(RecordNames.click), fields: schemaOf(RecordNames.click).fields.filter((f) => f.name !== 'sessionId') };

describe('schema registry on a real broker', () => {
  let registry: LocalRegistry;
  const env = isolatedEnv();
  const kafka = kafkaForTests();
  let producer: KafkaProducer;
  let processor: RunningProcessor | undefined;
  let outputs: { records: ReadRecord[]; stop(): Promise<void> };
  let config: ReturnType<typeof configOf>;
  let v0Id: number;

  beforeAll(async () => {
    registry = await startLocalRegistry();
    console.log(JSON.stringify({ registry_start_ms: registry.startMs }));
    env['SCHEMA_REGISTRY_URL'] = registry.url;
    config = configOf(env);
    // Before the processor: a producer team has registered the older ClickEvent and the Ad schema.
    const v0 = await register(registry.url, `${config.topicClicks}-value`, clickV0);
    expect(v0.status).toBe(200);
    v0Id = v0.id!;
    const ad = await register(registry.url, `${config.topicAds}-value`, schemaOf(RecordNames.ad));
    const adCodec = new AvroCodec(tableOf(ad.id!, RecordNames.ad));
    producer = await connectedProducer(kafka);
    await createTopics(kafka, config);
    const ads = await syntheticAds(4);
    await producer.send([{ topic: config.topicAds, records: ads.map((a) => ({ key: Buffer.from(a.adId), value: encodeAd(adCodec, a, Date.now()) })) }]);
    processor = await startKafkaProcessor(config, createLogger('warn'));
    expect(processor.core.catalog.activeCount).toBe(ads.length);
    outputs = await collect(kafka, [config.topicScored, config.topicDeadLetters]);
    // A fresh machine builds the registry first (Maven: downloads, then about 50 s on a loaded 2-core box); cached after.
  }, REGISTRY_FIRST_BUILD_MS);

  afterAll(async () => {
    await outputs?.stop();
    await processor?.stop();
    await producer?.disconnect();
    await registry?.stop();
  });

  const onTopic = (topic: string, key: string): ReadRecord[] => outputs.records.filter((r) => r.topic === topic && r.key?.toString() === key);

  it('registers a subject per topic and writes its outputs with the ids the registry gave', async () => {
    const subjects = await get<string[]>(registry.url, '/subjects');
    for (const topic of [config.topicClicks, config.topicImageViews, config.topicReviews, config.topicAds, config.topicUserDeletions, config.topicScored, config.topicSegments, config.topicDeadLetters, config.topicChangelog]) {
      expect(subjects).toContain(`${topic}-value`);
    }
    // Ours is the second version of ClickEvent's subject, accepted as BACKWARD compatible with v0.
    expect(await get<number[]>(registry.url, `/subjects/${config.topicClicks}-value/versions`)).toHaveLength(2);

    // A current ClickEvent, written with the id of the latest version under clicks' subject.
    const latestClick = await get<{ id: number }>(registry.url, `/subjects/${config.topicClicks}-value/versions/latest`);
    const value = { eventId: 'sr-now', userId: 'u-now', itemId: 'i1', categoryId: 'toys', action: 'CLICK', eventTime: Date.now(), sessionId: 's' };
    await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('u-now'), value: framed(latestClick.id, avro.Type.forSchema(schemaOf(RecordNames.click) as avro.Schema), value) }] }]);
    expect(await eventually(() => onTopic(config.topicScored, 'u-now').length > 0, 30_000)).toBe(true);

    // Read back as a Confluent consumer would: the header's id, its schema from the registry.
    const out = onTopic(config.topicScored, 'u-now')[0]!.value!;
    expect(out[0]).toBe(0);
    const id = out.readUInt32BE(1);
    expect(id).toBe((await get<{ id: number }>(registry.url, `/subjects/${config.topicScored}-value/versions/latest`)).id);
    const writer = avro.Type.forSchema(JSON.parse((await get<{ schema: string }>(registry.url, `/schemas/ids/${id}`)).schema) as avro.Schema);
    const scored = writer.fromBuffer(out.subarray(5)) as ScoredOutput;
    expect(scored.userId).toBe('u-now');
    expect(scored.eventIds).toEqual(['sr-now']);
  });

  it('reads a record written by an independent producer under an older compatible version\'s id', async () => {
    const value = { eventId: 'sr-v0', userId: 'u-v0', itemId: 'i2', categoryId: 'garden', action: 'PURCHASE', eventTime: Date.now() };
    await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('u-v0'), value: framed(v0Id, avro.Type.forSchema(clickV0 as avro.Schema), value) }] }]);
    expect(await eventually(() => onTopic(config.topicScored, 'u-v0').length > 0, 30_000)).toBe(true);
    const codec = processor!.core.codec;
    const scored = codec.decode<ScoredOutput>(onTopic(config.topicScored, 'u-v0')[0]!.value, new Set([RecordNames.scored])).value;
    expect(scored.eventIds).toEqual(['sr-v0']);
    expect(onTopic(config.topicDeadLetters, 'u-v0')).toEqual([]);
  });

  it('dead-letters a record whose schema id the registry does not have, as UNKNOWN_SCHEMA', async () => {
    const value = framed(987_654, avro.Type.forSchema(clickV0 as avro.Schema), { eventId: 'sr-x', userId: 'u-x', itemId: 'i', categoryId: 'toys', action: 'VIEW', eventTime: Date.now() });
    await producer.send([{ topic: config.topicClicks, records: [{ key: Buffer.from('u-x'), value }] }]);
    expect(await eventually(() => onTopic(config.topicDeadLetters, 'u-x').length > 0, 30_000)).toBe(true);
    const codec = processor!.core.codec;
    const dl = codec.decode<{ reason: string; message: string; value: Buffer }>(onTopic(config.topicDeadLetters, 'u-x')[0]!.value, new Set([RecordNames.deadLetter])).value;
    expect(dl.reason).toBe('UNKNOWN_SCHEMA');
    expect(dl.message).toContain(`schema id 987654 is not in the schema registry at ${registry.url}`);
    expect(dl.value).toEqual(value);
  });

  it('does not start when the registry refuses one of its schemas, and says why', async () => {
    const other = isolatedEnv({ SCHEMA_REGISTRY_URL: registry.url });
    const otherConfig = configOf(other);
    // Someone registered a ScoredCandidates with no fields: ours adds required ones, which BACKWARD refuses.
    const squatter = await register(registry.url, `${otherConfig.topicScored}-value`, { type: 'record', name: 'ScoredCandidates', namespace: 'dev.adstream.outputs', fields: [] });
    expect(squatter.status).toBe(200);
    await createTopics(kafka, otherConfig);
    const err = await startKafkaProcessor(otherConfig, createLogger('silent')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaIncompatibleError);
    expect((err as Error).message).toMatch(new RegExp(`refused dev\\.adstream\\.outputs\\.ScoredCandidates under subject ${otherConfig.topicScored}-value: .+`));
    console.log(JSON.stringify({ refused_with: (err as Error).message }));
  });
});

function tableOf(id: number, name: string): SchemaTable {
  const t = new SchemaTable();
  t.add(id, JSON.parse(projectSchemas().latest(name).definition) as avro.Schema);
  return t;
}
