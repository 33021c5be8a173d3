/**
 * Which retrieval answers a query: the exact scan (every active ad, the reference) or the HNSW
 * index. `auto` takes the exact scan while the catalog is below a size measured as the crossover
 * (`npm run bench:catalog`: below it the scan's batched MatMul is as fast and has recall 1), the
 * index above it. Decided per call, so a catalog that grows past the crossover switches over.
 */
import type { AdCatalog } from '../catalog/ad-catalog.js';
import type { RetrievalMode } from '../catalog/settings.js';
import type { Retrieval } from './rank.js';
import type { Match } from './retrieve.js';

export interface RetrievalChoice {
  readonly mode: RetrievalMode;
  /** With `auto`: catalogs with fewer active ads than this are scanned exactly. */
  readonly exactBelow: number;
}

export class ModalRetrieval implements Retrieval {
  constructor(
    private readonly exact: Retrieval,
    /** Absent when the mode is `exact` (no index is kept then). */
    private readonly ann: Retrieval | undefined,
    private readonly catalog: AdCatalog,
    private readonly choice: RetrievalChoice,
  ) {
    if (choice.mode !== 'exact' && !ann) throw new Error(`RETRIEVAL=${choice.mode} needs the index`);
  }

  /** What the next query would use. */
  get current(): 'exact' | 'ann' {
    const { mode, exactBelow } = this.choice;
    if (mode !== 'auto') return mode;
    return this.catalog.activeCount < exactBelow ? 'exact' : 'ann';
  }

  forget(owner: string): void {
    this.exact.forget?.(owner);
    this.ann?.forget?.(owner);
  }

  score(queries: Float32Array, n: number, owners?: readonly (string | undefined)[]): Promise<Match[][]> {
    return (this.current === 'exact' ? this.exact : this.ann!).score(queries, n, owners);
  }
}
