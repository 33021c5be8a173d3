import type { SettingTable, SettingValues } from '../../util/settings.js';

/** A Confluent-compatible schema registry (Confluent, Apicurio's /apis/ccompat/v7, Karapace). */
export const REGISTRY_SETTINGS = {
  schemaRegistryUrl: { env: 'SCHEMA_REGISTRY_URL', kind: 'string', default: null, doc: "Base URL of a Confluent-compatible schema registry (e.g. http://localhost:8081, or Apicurio's http://host:8080/apis/ccompat/v7). Set: schemas are registered at start and records carry the registry's ids. Unset: the fixed ids of schemas/index.json." },
  schemaRegistryUsername: { env: 'SCHEMA_REGISTRY_USERNAME', kind: 'string', default: null, doc: 'Basic-auth user for the schema registry (with SCHEMA_REGISTRY_PASSWORD).' },
  schemaRegistryPassword: { env: 'SCHEMA_REGISTRY_PASSWORD', kind: 'string', default: null, doc: 'Basic-auth password for the schema registry.' },
  schemaRegistrySubjectStrategy: { env: 'SCHEMA_REGISTRY_SUBJECT_STRATEGY', kind: 'enum', default: 'topic', values: ['topic', 'record', 'topic_record'], doc: 'Subject of a topic\'s schema: topic = `<topic>-value` (TopicNameStrategy), record = the record\'s full name, topic_record = `<topic>-<record name>`.' },
  schemaRegistryTimeoutMs: { env: 'SCHEMA_REGISTRY_TIMEOUT_MS', kind: 'int', default: 5000, min: 100, max: 120000, doc: 'Timeout of one schema registry request.' },
} as const satisfies SettingTable;

export type RegistrySettings = SettingValues<typeof REGISTRY_SETTINGS>;
