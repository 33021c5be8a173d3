/**
 * Ad creatives' image embeddings on local disk, keyed by the creative's content hash: a restart
 * (or a second instance on the same folder) finds them here and decodes no creative again, so a
 * catalog of a million loads at the speed of the text encoder instead of the image decoder. One
 * LMDB store (the embedded store of user state) per folder, one table per model space: another
 * encoder or fusion never reads these vectors. It is a cache: a lost write costs one decode.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';

export interface CreativeEmbeddingsOptions {
  readonly dir: string;
  /** The model space (models.space): vectors of another space are never read. */
  readonly space: string;
  /** Told when a write failed (the entry is then simply recomputed next time). */
  readonly onWriteError?: (err: unknown) => void;
}

/** Only content-addressed creatives ('sha256:<hex>', see MultimodalEmbedder) are kept: a URI's content may change. */
const PERSISTED = 'sha256:';

export class CreativeEmbeddings {
  private readonly root: RootDatabase;
  private readonly table: Database<Buffer, string>;

  constructor(private readonly o: CreativeEmbeddingsOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.root = open({ path: o.dir, maxDbs: 64 });
    this.table = this.root.openDB<Buffer, string>({ name: `image:${o.space}`, encoding: 'binary' });
  }

  persists(key: string): boolean {
    return key.startsWith(PERSISTED);
  }

  /** A copy of the stored vector (LMDB reads are synchronous, from the memory map). */
  get(key: string): Float32Array | undefined {
    if (!this.persists(key)) return undefined;
    const b = this.table.get(key);
    if (!b || b.byteLength % 4 !== 0) return undefined;
    const v = new Float32Array(b.byteLength / 4);
    new Uint8Array(v.buffer).set(b);
    return v;
  }

  /** Stores a copy; the write is batched by LMDB and lands on disk shortly after. */
  set(key: string, v: Float32Array): void {
    if (!this.persists(key)) return;
    this.table.put(key, Buffer.from(v.slice().buffer)).catch((err: unknown) => this.o.onWriteError?.(err));
  }

  get count(): number {
    return this.table.getCount();
  }

  /** Waits for pending writes, then closes the store. */
  async close(): Promise<void> {
    await this.table.flushed;
    await this.root.close();
  }
}
