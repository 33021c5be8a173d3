import type { PipelineSettings } from '../../pipeline/settings.js';
import { AvroCodec } from '../../serde/avro-codec.js';
import { RecordNames } from '../../serde/record-names.js';
import { registerSchemas, RegistryWriterSchemas, type SchemaRegistry, type TopicRecord } from '../../serde/schema-registry.js';
import { projectSchemas, type SchemaTable } from '../../serde/schema-table.js';
import { HttpSchemaRegistry } from './registry-client.js';
import type { RegistrySettings } from './settings.js';

type Topics = Pick<PipelineSettings, 'topicClicks' | 'topicImageViews' | 'topicReviews' | 'topicAds' | 'topicUserDeletions' | 'topicScored' | 'topicSegments' | 'topicDeadLetters' | 'topicChangelog' | 'topicAdFeedback' | 'topicTrainingExamples'>;

/** Every topic adstream reads or writes, with the record it carries: one registry subject each. */
export function topicRecordsOf(t: Topics): TopicRecord[] {
  return [
    { topic: t.topicClicks, recordName: RecordNames.click },
    { topic: t.topicImageViews, recordName: RecordNames.imageView },
    { topic: t.topicReviews, recordName: RecordNames.review },
    { topic: t.topicAds, recordName: RecordNames.ad },
    { topic: t.topicUserDeletions, recordName: RecordNames.userDeletion },
    { topic: t.topicScored, recordName: RecordNames.scored },
    { topic: t.topicSegments, recordName: RecordNames.segments },
    { topic: t.topicDeadLetters, recordName: RecordNames.deadLetter },
    { topic: t.topicChangelog, recordName: RecordNames.userState },
    { topic: t.topicAdFeedback, recordName: RecordNames.adFeedback },
    { topic: t.topicTrainingExamples, recordName: RecordNames.trainingExample },
  ];
}

export function registryOf(s: RegistrySettings): HttpSchemaRegistry | null {
  if (!s.schemaRegistryUrl) return null;
  return new HttpSchemaRegistry({ url: s.schemaRegistryUrl, username: s.schemaRegistryUsername, password: s.schemaRegistryPassword, timeoutMs: s.schemaRegistryTimeoutMs });
}

/**
 * The codec the settings ask for: with SCHEMA_REGISTRY_URL, our schemas registered under their
 * subjects (rejects with the registry's message when one is refused) and writer schemas looked up
 * by id; without it, the fixed ids of schemas/index.json.
 */
export async function codecFor(s: RegistrySettings & Topics, local: SchemaTable = projectSchemas(), registry: SchemaRegistry | null = registryOf(s)): Promise<AvroCodec> {
  if (!registry) return new AvroCodec(local);
  const table = await registerSchemas(registry, local, topicRecordsOf(s), s.schemaRegistrySubjectStrategy);
  return new AvroCodec(table, new RegistryWriterSchemas(registry, table));
}
