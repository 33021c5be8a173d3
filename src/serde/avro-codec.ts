import type avro from 'avsc';
import { RejectedRecordError } from '../domain/errors.js';
import type { WriterSchemaSource } from './schema-registry.js';
import { projectSchemas, type SchemaTable, type SchemaEntry } from './schema-table.js';

/** Confluent wire format: magic byte 0, a big-endian 4-byte schema id, then the Avro body. */
const MAGIC = 0;
const HEADER_BYTES = 5;
/** Encodings are written into a scratch buffer kept at up to this size (one larger is not kept). */
const SCRATCH_KEPT_BYTES = 1 << 20;

export interface Decoded<T> {
  readonly value: T;
  /** Record name of the writer's schema, e.g. dev.adstream.events.ClickEvent. */
  readonly schemaName: string;
}

/**
 * Encodes with the newest version of a schema and decodes any known version into the newest one
 * (Avro schema resolution), so producers and this processor can upgrade at different times.
 * With a schema registry (`writers`), the table holds the registry's ids and learns writer schemas
 * by id: callers await prepare() on a batch's values before decoding them.
 */
export class AvroCodec {
  /** Per writer id: a resolver into the newest version, or the reason none can exist. */
  private readonly resolvers = new Map<number, avro.Resolver | string>();
  /** Where encode writes before copying out the exact bytes: one allocation per record. */
  private scratch = Buffer.allocUnsafe(16 * 1024);

  constructor(
    private readonly table: SchemaTable = projectSchemas(),
    private readonly writers?: WriterSchemaSource,
  ) {}

  /** Whether ids come from a schema registry (else the fixed ids of schemas/index.json). */
  get registered(): boolean {
    return this.writers !== undefined;
  }

  /** Fetches the writer schemas of these records' values that the table lacks; a no-op with fixed ids. */
  prepare(records: readonly { readonly value: Buffer | null }[]): Promise<void> {
    return this.writers ? this.writers.prepare(records) : Promise.resolve();
  }

  encode(schemaName: string, value: unknown): Buffer {
    const entry = this.table.latest(schemaName);
    // isValid first: avsc's own error for a bad value names no field.
    const bad: string[] = [];
    if (!entry.type.isValid(value, { errorHook: (path) => bad.push(path.join('.') || '(root)') })) {
      throw new Error(`value does not match ${schemaName}: bad field(s) ${bad.join(', ')}`);
    }
    let buf = this.scratch;
    let end = entry.type.encode(value, buf, HEADER_BYTES);
    if (end < 0) {
      // Too small: avsc says by how many bytes.
      buf = Buffer.allocUnsafe(Math.max(2 * buf.length, buf.length - end));
      end = entry.type.encode(value, buf, HEADER_BYTES);
      if (buf.length <= SCRATCH_KEPT_BYTES) this.scratch = buf;
    }
    buf[0] = MAGIC;
    buf.writeUInt32BE(entry.id, 1);
    const out = Buffer.allocUnsafe(end);
    buf.copy(out, 0, 0, end);
    return out;
  }

  /**
   * Decodes a framed value. `accepted` lists the record names allowed on the topic it came from.
   * Every failure is a RejectedRecordError whose code becomes the dead-letter reason.
   */
  decode<T>(buf: Buffer | null, accepted: ReadonlySet<string>): Decoded<T> {
    if (!buf || buf.length === 0) throw new RejectedRecordError('EMPTY_VALUE', 'record value is empty');
    if (buf.length < HEADER_BYTES || buf[0] !== MAGIC) {
      throw new RejectedRecordError('BAD_FRAMING', `expected magic byte 0 and a 4-byte schema id, got ${buf.length} byte(s) starting 0x${buf.subarray(0, 5).toString('hex')}`);
    }
    const id = buf.readUInt32BE(1);
    const writer = this.table.get(id);
    if (!writer) {
      const failure = this.writers?.failure(id);
      if (failure) throw new RejectedRecordError(failure.reason, failure.message);
      throw new RejectedRecordError('UNKNOWN_SCHEMA', this.writers ? `schema id ${id} was not looked up in the schema registry` : `schema id ${id} is unknown`);
    }
    if (!accepted.has(writer.name)) {
      throw new RejectedRecordError('WRONG_SCHEMA', `schema ${writer.name} (id ${id}) is not accepted here; expected ${[...accepted].join(' or ')}`);
    }
    const reader = this.table.latest(writer.name);
    const resolver = this.resolverFor(writer, reader);
    let decoded: { value: unknown; offset: number };
    try {
      decoded = reader.type.decode(buf, HEADER_BYTES, resolver ?? undefined);
    } catch (err) {
      throw new RejectedRecordError('DECODE_FAILED', `Avro body does not decode as ${writer.name}: ${(err as Error).message}`);
    }
    // avsc signals a truncated buffer with offset -1 rather than an exception.
    if (decoded.offset < 0) throw new RejectedRecordError('DECODE_FAILED', `Avro body is truncated for ${writer.name}`);
    if (decoded.offset !== buf.length) {
      throw new RejectedRecordError('DECODE_FAILED', `${buf.length - decoded.offset} unexpected trailing byte(s) after ${writer.name}`);
    }
    return { value: decoded.value as T, schemaName: writer.name };
  }

  private resolverFor(writer: SchemaEntry, reader: SchemaEntry): avro.Resolver | null {
    if (writer.id === reader.id) return null;
    let r = this.resolvers.get(writer.id);
    if (r === undefined) {
      try {
        r = reader.type.createResolver(writer.type);
      } catch (err) {
        // Remembered, so an incompatible writer costs one attempt, not one per record.
        r = `schema id ${writer.id} cannot be read as id ${reader.id} (${writer.name}): ${(err as Error).message}`;
      }
      this.resolvers.set(writer.id, r);
    }
    if (typeof r === 'string') throw new RejectedRecordError('SCHEMA_UNRESOLVABLE', r);
    return r;
  }
}
