import { readFileSync } from 'node:fs';
import avro from 'avsc';

/** Where the .avsc files live: schemas/ at the project root (same depth from src/ and dist/). */
export const SCHEMA_DIR = new URL('../../schemas/', import.meta.url);

export interface SchemaEntry {
  readonly id: number;
  readonly name: string;
  readonly type: avro.Type;
  /** The schema as compact JSON text: what is registered with a schema registry. */
  readonly definition: string;
}

interface IndexFile {
  schemas: { id: number; name: string; file: string }[];
}

/**
 * The schema ids of the wire format, loaded from schemas/index.json. A table can be extended with
 * more entries (a newer version of a schema, or a registry's ids) without touching the codecs.
 */
export class SchemaTable {
  private readonly byId = new Map<number, SchemaEntry>();
  private readonly latestByName = new Map<string, SchemaEntry>();

  add(id: number, schema: avro.Schema): SchemaEntry {
    const entry = this.entryOf(id, schema);
    this.byId.set(id, entry);
    const prev = this.latestByName.get(entry.name);
    if (!prev || prev.id < id) this.latestByName.set(entry.name, entry);
    return entry;
  }

  /**
   * Adds a version only to read with (a writer's schema found in a registry): it never becomes
   * the latest, since registry ids say nothing about which version this processor was built for.
   */
  addWriter(id: number, schema: avro.Schema): SchemaEntry {
    const entry = this.entryOf(id, schema);
    this.byId.set(id, entry);
    return entry;
  }

  /** Every name's latest version, in the order they were first added. */
  latestEntries(): SchemaEntry[] {
    return [...this.latestByName.values()];
  }

  private entryOf(id: number, schema: avro.Schema): SchemaEntry {
    if (this.byId.has(id)) throw new Error(`schema id ${id} is already taken`);
    const type = avro.Type.forSchema(schema);
    const name = type.name;
    if (!name) throw new Error(`schema id ${id} has no name: only named records go on topics`);
    return { id, name, type, definition: JSON.stringify(schema) };
  }

  get(id: number): SchemaEntry | undefined {
    return this.byId.get(id);
  }

  /** The newest registered version of a record name; what writers use. */
  latest(name: string): SchemaEntry {
    const entry = this.latestByName.get(name);
    if (!entry) throw new Error(`no schema named ${name}`);
    return entry;
  }

  static fromDirectory(dir: URL = SCHEMA_DIR): SchemaTable {
    const index = JSON.parse(readFileSync(new URL('index.json', dir), 'utf8')) as IndexFile;
    const table = new SchemaTable();
    for (const s of index.schemas) {
      const schema = JSON.parse(readFileSync(new URL(s.file, dir), 'utf8')) as avro.Schema;
      const entry = table.add(s.id, schema);
      if (entry.name !== s.name) throw new Error(`schemas/index.json: id ${s.id} says ${s.name} but ${s.file} holds ${entry.name}`);
    }
    return table;
  }
}

let shared: SchemaTable | undefined;
/** The project's schemas, loaded once per process. */
export function projectSchemas(): SchemaTable {
  shared ??= SchemaTable.fromDirectory();
  return shared;
}
