import type avro from 'avsc';
import type { ReasonCode } from '../domain/errors.js';
import { errorMessage } from '../domain/errors.js';
import { SchemaTable } from './schema-table.js';

/**
 * What the codecs need of a Confluent-compatible schema registry. The HTTP client is at the edge
 * (src/adapters/registry); tests script their own.
 */
export interface SchemaRegistry {
  /** Where it is, for messages. */
  readonly url: string;
  /**
   * Registers an Avro schema (JSON text) under `subject`, or finds it there, and resolves to its
   * global id. Rejects with SchemaIncompatibleError when the subject's compatibility rule refuses it.
   */
  register(subject: string, definition: string): Promise<number>;
  /** The schema of a global id; null when the registry has no such id. Rejects when it cannot be asked. */
  schemaById(id: number): Promise<{ readonly schema: string; readonly schemaType: string } | null>;
}

/** The registry refused a schema under its subject's compatibility rule; the message is the registry's. */
export class SchemaIncompatibleError extends Error {
  override readonly name = 'SchemaIncompatibleError';
  constructor(
    readonly subject: string,
    message: string,
  ) {
    super(message);
  }
}

/** How a topic's record schema is named in the registry (Confluent's subject name strategies). */
export type SubjectStrategy = 'topic' | 'record' | 'topic_record';

export function subjectOf(strategy: SubjectStrategy, topic: string, recordName: string): string {
  switch (strategy) {
    case 'topic':
      return `${topic}-value`;
    case 'record':
      return recordName;
    case 'topic_record':
      return `${topic}-${recordName}`;
  }
}

/** A topic and the record it carries. */
export interface TopicRecord {
  readonly topic: string;
  readonly recordName: string;
}

/**
 * Registers the latest local version of each topic's record under its subject, and returns the
 * table codecs write with: each name's latest version under the id the registry gave it. Fails
 * on the first subject that refuses its schema (SchemaIncompatibleError), naming the subject.
 */
export async function registerSchemas(registry: SchemaRegistry, local: SchemaTable, topics: readonly TopicRecord[], strategy: SubjectStrategy): Promise<SchemaTable> {
  const idOf = new Map<string, number>();
  const table = new SchemaTable();
  for (const { topic, recordName } of topics) {
    const entry = local.latest(recordName);
    const subject = subjectOf(strategy, topic, recordName);
    let id: number;
    try {
      id = await registry.register(subject, entry.definition);
    } catch (err) {
      if (err instanceof SchemaIncompatibleError) throw new SchemaIncompatibleError(subject, `schema registry ${registry.url} refused ${recordName} under subject ${subject}: ${err.message}`);
      throw new Error(`could not register ${recordName} under subject ${subject} at ${registry.url}: ${errorMessage(err)}`, { cause: err });
    }
    const first = idOf.get(recordName);
    if (first === undefined) {
      idOf.set(recordName, id);
      table.add(id, JSON.parse(entry.definition) as avro.Schema);
    } else if (first !== id && !table.get(id)) {
      // Another subject gave the same schema its own id: records with it read the same.
      table.addWriter(id, JSON.parse(entry.definition) as avro.Schema);
    }
  }
  return table;
}

/** Why a schema id cannot be used, as the dead letter will say. */
export interface IdFailure {
  readonly reason: ReasonCode;
  readonly message: string;
}

/** Where the codec finds the writer schemas of ids it does not know yet. */
export interface WriterSchemaSource {
  /** Looks up the ids in these records' headers that the table lacks; resolves when each is known or failed. */
  prepare(records: readonly { readonly value: Buffer | null }[]): Promise<void>;
  /** Why an id is not in the table, when a look-up failed. */
  failure(id: number): IdFailure | undefined;
}

export interface RegistryWriterSchemasOptions {
  /** Waits between attempts when the registry cannot be asked; their count is the attempts after the first. */
  readonly retryDelaysMs?: readonly number[];
  /** How long a missing or unreachable id is remembered before it is asked again. */
  readonly failureTtlMs?: number;
  readonly clock?: () => number;
}

const HEADER_BYTES = 5;

/**
 * Learns writer schemas from the registry by id, into the codec's table (once per id: registry
 * ids never change meaning). An id the registry does not have, or cannot be asked for after the
 * retries, is remembered for a while with its reason, so a stream of them costs one look-up per
 * interval rather than one per record; a schema that is not an Avro record is remembered for good.
 */
export class RegistryWriterSchemas implements WriterSchemaSource {
  private readonly failures = new Map<number, IdFailure & { readonly until: number }>();
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly retryDelaysMs: readonly number[];
  private readonly failureTtlMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly table: SchemaTable,
    o: RegistryWriterSchemasOptions = {},
  ) {
    this.retryDelaysMs = o.retryDelaysMs ?? [100, 400];
    this.failureTtlMs = o.failureTtlMs ?? 10_000;
    this.clock = o.clock ?? Date.now;
  }

  async prepare(records: readonly { readonly value: Buffer | null }[]): Promise<void> {
    let wanted: Promise<void>[] | undefined;
    for (const { value: v } of records) {
      if (!v || v.length < HEADER_BYTES || v[0] !== 0) continue; // the codec rejects these itself
      const id = v.readUInt32BE(1);
      if (this.table.get(id) || this.failedNow(id)) continue;
      let p = this.inFlight.get(id);
      if (!p) {
        p = this.learn(id).finally(() => this.inFlight.delete(id));
        this.inFlight.set(id, p);
      }
      (wanted ??= []).push(p);
    }
    if (wanted) await Promise.all(wanted);
  }

  failure(id: number): IdFailure | undefined {
    return this.failures.get(id);
  }

  private failedNow(id: number): boolean {
    const f = this.failures.get(id);
    if (!f) return false;
    if (f.until > this.clock()) return true;
    this.failures.delete(id);
    return false;
  }

  private async learn(id: number): Promise<void> {
    let found: { schema: string; schemaType: string } | null | undefined;
    let lastError: unknown;
    for (let attempt = 0; found === undefined && attempt <= this.retryDelaysMs.length; attempt++) {
      if (attempt > 0) await delay(this.retryDelaysMs[attempt - 1]!);
      try {
        found = await this.registry.schemaById(id);
      } catch (err) {
        lastError = err;
      }
    }
    const until = this.clock() + this.failureTtlMs;
    if (found === undefined) {
      this.failures.set(id, { reason: 'SCHEMA_UNAVAILABLE', message: `schema id ${id} could not be fetched from ${this.registry.url}: ${errorMessage(lastError)}`, until });
      return;
    }
    if (found === null) {
      this.failures.set(id, { reason: 'UNKNOWN_SCHEMA', message: `schema id ${id} is not in the schema registry at ${this.registry.url}`, until });
      return;
    }
    if (found.schemaType !== 'AVRO') {
      this.failures.set(id, { reason: 'SCHEMA_UNRESOLVABLE', message: `schema id ${id} is a ${found.schemaType} schema, not Avro`, until: Infinity });
      return;
    }
    try {
      this.table.addWriter(id, JSON.parse(found.schema) as avro.Schema);
    } catch (err) {
      this.failures.set(id, { reason: 'SCHEMA_UNRESOLVABLE', message: `schema id ${id} from ${this.registry.url} is not a usable Avro record schema: ${errorMessage(err)}`, until: Infinity });
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
