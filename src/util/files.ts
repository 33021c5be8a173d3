import { readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** A configured folder as an absolute path: `~` is the home folder, `~/.cache/` follows XDG_CACHE_HOME when set. */
export function expandHome(p: string): string {
  const home = process.env.XDG_CACHE_HOME && p.startsWith('~/.cache/') ? join(process.env.XDG_CACHE_HOME, p.slice('~/.cache/'.length)) : p.replace(/^~(?=$|\/)/, homedir());
  return isAbsolute(home) ? home : resolve(home);
}

/** Writes via a temporary file beside `path` and a rename, so a concurrent reader never sees half a file. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** writeFileAtomic, unless `path` already holds exactly these bytes (then it is left alone). */
export async function ensureFile(path: string, bytes: Uint8Array): Promise<void> {
  const existing = await readFile(path).catch(() => null);
  if (existing && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(existing)) return;
  await writeFileAtomic(path, bytes);
}
