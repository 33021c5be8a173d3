/**
 * The ad index saved on local disk, so a restart loads it instead of rebuilding it (685 s for a
 * million ads). A generation folder holds what a worker saved (VectorIndex.save: the graph and the
 * slot store); manifest.json, replaced atomically once the files are on disk, names the current
 * generation with the model space, the index parameters and the ad id of every slot. Whether a
 * saved ad is still the catalog's is decided per ad, by its vector against the saved one
 * (`matches`): a changed ad is then updated by id and the others are served from the file.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INDEX_FILES, type IndexParams } from '../inference/vector-index.js';

export interface IndexSnapshotsOptions {
  readonly dir: string;
  /** The model space (models.space): an index of other vectors is never loaded. */
  readonly space: string;
  readonly params: IndexParams;
}

interface Manifest {
  readonly format: 1;
  readonly space: string;
  readonly dim: number;
  readonly connectivity: number;
  readonly expansionAdd: number;
  /** Absent in manifests written before the setting existed: those were f32. */
  readonly quantization?: string;
  readonly generation: string;
  /** Ad id per slot; null for a free slot. */
  readonly adIds: (string | null)[];
}

/** A saved index, open for the comparison of its vectors with the catalog's. */
export interface SavedIndex {
  /** The generation folder (what the workers load). */
  readonly dir: string;
  /** Ad id per slot (null: free). */
  readonly adIds: readonly (string | null)[];
  /** Whether `v` is the vector saved at `slot`, to within MATCH_TOLERANCE per component. */
  matches(slot: number, v: Float32Array): boolean;
  close(): void;
}

/**
 * Re-encoding an unchanged ad may differ in the last bits (another batch shape through the text
 * encoder); that is still the same ad, and far below what moves a ranking.
 */
export const MATCH_TOLERANCE = 1e-6;

const MANIFEST = 'manifest.json';

export class IndexSnapshots {
  private generations = 0;

  constructor(private readonly o: IndexSnapshotsOptions) {
    mkdirSync(o.dir, { recursive: true });
  }

  /** The last committed index if it was saved for this space and these parameters; else undefined, with why. */
  saved(): { saved: SavedIndex } | { none: string } {
    const path = join(this.o.dir, MANIFEST);
    if (!existsSync(path)) return { none: 'no saved index' };
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    } catch (err) {
      return { none: `${path} is unreadable: ${String(err)}` };
    }
    const p = this.o.params;
    if (m.format !== 1 || m.space !== this.o.space || m.dim !== p.dim || m.connectivity !== p.connectivity || m.expansionAdd !== p.expansionAdd || (m.quantization ?? 'f32') !== p.quantization) {
      return { none: `the saved index is of another space or parameters (${m.space}, dim ${m.dim}, connectivity ${m.connectivity}, expansion_add ${m.expansionAdd}, quantization ${m.quantization ?? 'f32'})` };
    }
    const dir = join(this.o.dir, m.generation);
    let fd: number;
    try {
      fd = openSync(join(dir, INDEX_FILES.vectors), 'r');
    } catch (err) {
      return { none: `the saved index's files are missing: ${String(err)}` };
    }
    const row = new Float32Array(p.dim);
    const bytes = new Uint8Array(row.buffer);
    return {
      saved: {
        dir,
        adIds: m.adIds,
        matches(slot: number, v: Float32Array): boolean {
          if (readSync(fd, bytes, 0, bytes.length, slot * bytes.length) !== bytes.length) return false;
          for (let j = 0; j < row.length; j++) if (!(Math.abs(row[j]! - v[j]!) <= MATCH_TOLERANCE)) return false;
          return true;
        },
        close: () => closeSync(fd),
      },
    };
  }

  /** A fresh generation folder for the next save. */
  nextFolder(): string {
    return join(this.o.dir, `gen-${Date.now()}-${this.generations++}`);
  }

  /**
   * Makes the index a worker saved in `folder` (holding `adIds` by slot) the one `saved` returns:
   * its files are synced first, then the manifest replaced in one rename; older generations go.
   */
  commit(folder: string, adIds: readonly (string | null)[]): void {
    for (const f of Object.values(INDEX_FILES)) {
      const fd = openSync(join(folder, f), 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    const generation = folder.slice(this.o.dir.length + 1);
    const { space, params } = this.o;
    const m: Manifest = { format: 1, space, dim: params.dim, connectivity: params.connectivity, expansionAdd: params.expansionAdd, quantization: params.quantization, generation, adIds: [...adIds] };
    const tmp = join(this.o.dir, `${MANIFEST}.tmp`);
    writeFileSync(tmp, JSON.stringify(m));
    renameSync(tmp, join(this.o.dir, MANIFEST));
    for (const name of readdirSync(this.o.dir)) if (name.startsWith('gen-') && name !== generation) this.discard(name);
  }

  /** Removes a generation folder that is not (or no longer) committed, e.g. after a failed save. */
  discard(folderOrName: string): void {
    const name = folderOrName.startsWith(this.o.dir) ? folderOrName.slice(this.o.dir.length + 1) : folderOrName;
    rmSync(join(this.o.dir, name), { recursive: true, force: true });
  }
}
