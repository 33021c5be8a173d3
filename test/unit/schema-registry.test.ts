import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { rejection } from '../support/rejection.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { RecordNames } from '../../src/serde/record-names.js';
import { registerSchemas, RegistryWriterSchemas, SchemaIncompatibleError, subjectOf, type SchemaRegistry, type TopicRecord } from '../../src/serde/schema-registry.js';
import { projectSchemas, SchemaTable } from '../../src/serde/schema-table.js';
import { codecFor, topicRecordsOf } from '../../src/adapters/registry/registry-codec.js';
import { loadConfig } from '../../src/app/config/load-config.js';

/**
 * A scripted registry of our own port: global ids by schema text (the same text gets the same id,
 * as in Confluent's), an optional refusal per subject, and a switch that makes it unreachable.
 */
class ScriptedRegistry implements SchemaRegistry {
  readonly url = 'http://registry.test';
  readonly subjects = new Map<string, number[]>();
  readonly byId = new Map<number, { schema: string; schemaType: string }>();
  readonly refuse = new Map<string, string>();
  lookups = 0;
  down = false;
  private nextId = 100;

  async register(subject: string, definition: string): Promise<number> {
    const refusal = this.refuse.get(subject);
    if (refusal) throw new SchemaIncompatibleError(subject, refusal);
    let id = [...this.byId].find(([, s]) => s.schema === definition)?.[0];
    if (id === undefined) {
      id = this.nextId++;
      this.byId.set(id, { schema: definition, schemaType: 'AVRO' });
    }
    this.subjects.set(subject, [...(this.subjects.get(subject) ?? []), id]);
    return id;
  }

  async schemaById(id: number): Promise<{ schema: string; schemaType: string } | null> {
    this.lookups++;
    if (this.down) throw new Error('connect ECONNREFUSED');
    return this.byId.get(id) ?? null;
  }

  /** What an independent producer does: its own schema under an id of the registry's choosing. */
  put(id: number, schema: object | string, schemaType = 'AVRO'): void {
    this.byId.set(id, { schema: typeof schema === 'string' ? schema : JSON.stringify(schema), schemaType });
  }
}

const CLICK = RecordNames.click;
const clicks = new Set([CLICK]);
const clickValue = { eventId: 'e1', userId: 'u1', itemId: 'i1', categoryId: 'shoes', action: 'CLICK', eventTime: 1_700_000_000_000, sessionId: 's1' };
const TOPICS: TopicRecord[] = [
  { topic: 'clicks', recordName: CLICK },
  { topic: 'scored-candidates', recordName: RecordNames.scored },
];

/** ClickEvent as it was before sessionId (which has a default) was added: an older compatible version. */
function clickWithoutSession(): avro.Schema {
  const s = JSON.parse(projectSchemas().latest(CLICK).definition) as { fields: { name: string }[] };
  return { ...s, fields: s.fields.filter((f) => f.name !== 'sessionId') } as avro.Schema;
}

/** Frames an Avro body the way any Confluent producer does: magic 0, the id, the body. */
function framed(id: number, schema: avro.Schema, value: unknown): Buffer {
  const body = avro.Type.forSchema(schema).toBuffer(value);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

const recs = (...values: (Buffer | null)[]): { value: Buffer | null }[] => values.map((value) => ({ value }));

async function registryCodec(registry: ScriptedRegistry, o: ConstructorParameters<typeof RegistryWriterSchemas>[2] = {}): Promise<AvroCodec> {
  const table = await registerSchemas(registry, projectSchemas(), TOPICS, 'topic');
  return new AvroCodec(table, new RegistryWriterSchemas(registry, table, { retryDelaysMs: [1, 1], ...o }));
}

describe('registerSchemas', () => {
  it('registers each topic\'s record under <topic>-value and writes with the ids the registry gave', async () => {
    const registry = new ScriptedRegistry();
    const codec = await registryCodec(registry);
    expect([...registry.subjects.keys()]).toEqual(['clicks-value', 'scored-candidates-value']);
    const clickId = registry.subjects.get('clicks-value')![0]!;
    expect(clickId).not.toBe(projectSchemas().latest(CLICK).id);
    const written = codec.encode(CLICK, clickValue);
    expect(written.readUInt32BE(1)).toBe(clickId);
    // What was registered is our schema file, so any client reading by that id gets our record.
    expect(JSON.parse(registry.byId.get(clickId)!.schema)).toEqual(JSON.parse(projectSchemas().latest(CLICK).definition));
    // And it reads back with no look-up: the table already holds the ids it registered.
    await codec.prepare(recs(written));
    expect(codec.decode(written, clicks).value).toEqual(clickValue);
    expect(registry.lookups).toBe(0);
  });

  it('stops with the registry\'s message, naming the subject, when a schema is refused', async () => {
    const registry = new ScriptedRegistry();
    registry.refuse.set('scored-candidates-value', 'Schema being registered is incompatible with an earlier schema');
    const err = await registerSchemas(registry, projectSchemas(), TOPICS, 'topic').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaIncompatibleError);
    expect((err as Error).message).toMatch(/refused dev\.adstream\.outputs\.ScoredCandidates under subject scored-candidates-value: Schema being registered is incompatible/);
  });

  it('names subjects by each strategy', () => {
    expect(subjectOf('topic', 'clicks', CLICK)).toBe('clicks-value');
    expect(subjectOf('record', 'clicks', CLICK)).toBe(CLICK);
    expect(subjectOf('topic_record', 'clicks', CLICK)).toBe(`clicks-${CLICK}`);
  });

  it('covers every topic of the configuration, each with the record its decoder accepts', () => {
    const subjects = topicRecordsOf(loadConfig({ env: {} }));
    expect(subjects.map((s) => s.topic)).toEqual(['clicks', 'image-views', 'reviews', 'ads', 'user-deletions', 'scored-candidates', 'interest-segments', 'dead-letters', 'user-state', 'ad-feedback', 'training-examples']);
    expect(new Set(subjects.map((s) => s.recordName))).toEqual(new Set(Object.values(RecordNames)));
  });

  it('keeps the fixed ids of schemas/index.json when SCHEMA_REGISTRY_URL is unset', async () => {
    const codec = await codecFor(loadConfig({ env: {} }));
    expect(codec.registered).toBe(false);
    expect(codec.encode(CLICK, clickValue).readUInt32BE(1)).toBe(1);
  });
});

describe('RegistryWriterSchemas', () => {
  it('reads a record written under an older compatible version by its registry id, into our schema', async () => {
    const registry = new ScriptedRegistry();
    const codec = await registryCodec(registry);
    registry.put(7, clickWithoutSession());
    const { sessionId: _absent, ...older } = clickValue;
    const bytes = framed(7, clickWithoutSession(), older);
    await codec.prepare(recs(bytes, bytes, null));
    expect(codec.decode(bytes, clicks).value).toEqual({ ...older, sessionId: null });
    // Cached: more records with the id ask nothing more.
    for (let i = 0; i < 5; i++) await codec.prepare(recs(bytes));
    expect(registry.lookups).toBe(1);
  });

  it('dead-letters an id the registry does not have as UNKNOWN_SCHEMA, and asks again only after a while', async () => {
    const registry = new ScriptedRegistry();
    let now = 0;
    const codec = await registryCodec(registry, { failureTtlMs: 1_000, clock: () => now });
    const bytes = framed(999, clickWithoutSession(), { eventId: 'e', userId: 'u', itemId: 'i', categoryId: 'c', action: 'VIEW', eventTime: 1 });
    await codec.prepare(recs(bytes));
    const err = rejection(() => codec.decode(bytes, clicks));
    expect(err.reason).toBe('UNKNOWN_SCHEMA');
    expect(err.message).toMatch(/schema id 999 is not in the schema registry at http:\/\/registry\.test/);
    await codec.prepare(recs(bytes));
    expect(registry.lookups).toBe(1);
    // Registered since: found once the failure has expired.
    registry.put(999, clickWithoutSession());
    now = 1_001;
    await codec.prepare(recs(bytes));
    expect(registry.lookups).toBe(2);
    expect(codec.decode(bytes, clicks).value).toMatchObject({ eventId: 'e', sessionId: null });
  });

  it('dead-letters as SCHEMA_UNAVAILABLE when the registry cannot be asked, after retrying', async () => {
    const registry = new ScriptedRegistry();
    const codec = await registryCodec(registry);
    registry.put(8, clickWithoutSession());
    registry.down = true;
    const bytes = framed(8, clickWithoutSession(), { eventId: 'e', userId: 'u', itemId: 'i', categoryId: 'c', action: 'VIEW', eventTime: 1 });
    await codec.prepare(recs(bytes));
    expect(registry.lookups).toBe(3); // the first attempt and two retries
    const err = rejection(() => codec.decode(bytes, clicks));
    expect(err.reason).toBe('SCHEMA_UNAVAILABLE');
    expect(err.message).toMatch(/could not be fetched from http:\/\/registry\.test: connect ECONNREFUSED/);
  });

  it('dead-letters as SCHEMA_UNRESOLVABLE a writer schema our reader cannot resolve, or one that is not Avro', async () => {
    const registry = new ScriptedRegistry();
    const codec = await registryCodec(registry);
    // A writer without categoryId, which our ClickEvent requires with no default.
    const s = clickWithoutSession() as { fields: { name: string }[] };
    const noCategory = { ...s, fields: s.fields.filter((f) => f.name !== 'categoryId') } as avro.Schema;
    registry.put(9, noCategory);
    registry.put(10, 'syntax = "proto3"; message ClickEvent {}', 'PROTOBUF');
    const a = framed(9, noCategory, { eventId: 'e', userId: 'u', itemId: 'i', action: 'VIEW', eventTime: 1 });
    const b = Buffer.from([0, 0, 0, 0, 10, 1, 2]);
    await codec.prepare(recs(a, b));
    expect(rejection(() => codec.decode(a, clicks)).reason).toBe('SCHEMA_UNRESOLVABLE');
    const err = rejection(() => codec.decode(b, clicks));
    expect(err.reason).toBe('SCHEMA_UNRESOLVABLE');
    expect(err.message).toMatch(/PROTOBUF schema, not Avro/);
  });

  it('says an id was not looked up when a caller decodes without prepare()', async () => {
    const codec = await registryCodec(new ScriptedRegistry());
    const err = rejection(() => codec.decode(Buffer.from([0, 0, 0, 0, 55, 0]), clicks));
    expect(err.reason).toBe('UNKNOWN_SCHEMA');
    expect(err.message).toMatch(/was not looked up/);
  });

  it('never makes a writer schema the one we write with', async () => {
    const table = new SchemaTable();
    table.add(3, JSON.parse(projectSchemas().latest(CLICK).definition) as avro.Schema);
    table.addWriter(500, clickWithoutSession());
    expect(table.latest(CLICK).id).toBe(3);
    expect(table.get(500)?.name).toBe(CLICK);
  });
});
