/**
 * Ads' embeddings on local disk, keyed by content hash: the creative's image embedding and the
 * title-and-description's text embedding. A restart (or a second instance on the same folder)
 * finds them here and neither decodes a creative nor runs the text encoder for an ad it saw, so a
 * catalog of a million loads at the speed of the decode and the fusion. One LMDB store (the
 * embedded store of user state) per folder, one table per kind and model space: another encoder
 * or fusion never reads these vectors. It is a cache: a lost write costs one inference.
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

/** Only content-addressed keys ('sha256:<hex>', see MultimodalEmbedder) are kept: a URI's content may change. */
const PERSISTED = 'sha256:';

/** One table of vectors by content hash (an EmbeddingTier of the pipeline's caches). */
export class PersistedEmbeddings {
  constructor(
    private readonly table: Database<Buffer, string>,
    private readonly onWriteError?: (err: unknown) => void,
  ) {}

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
    this.table.put(key, Buffer.from(v.slice().buffer)).catch((err: unknown) => this.onWriteError?.(err));
  }

  get count(): number {
    return this.table.getCount();
  }

  flushed(): Promise<boolean> {
    return this.table.flushed;
  }
}

export class CreativeEmbeddings {
  private readonly root: RootDatabase;
  /** Creatives' image embeddings. */
  readonly image: PersistedEmbeddings;
  /** Ads' text embeddings. */
  readonly text: PersistedEmbeddings;

  constructor(o: CreativeEmbeddingsOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.root = open({ path: o.dir, maxDbs: 64 });
    this.image = new PersistedEmbeddings(this.root.openDB<Buffer, string>({ name: `image:${o.space}`, encoding: 'binary' }), o.onWriteError);
    this.text = new PersistedEmbeddings(this.root.openDB<Buffer, string>({ name: `text:${o.space}`, encoding: 'binary' }), o.onWriteError);
  }

  /** Waits for pending writes, then closes the store. */
  async close(): Promise<void> {
    await this.image.flushed();
    await this.text.flushed();
    await this.root.close();
  }
}
