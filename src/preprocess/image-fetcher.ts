import { open, realpath } from 'node:fs/promises';
import { isAbsolute, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, RejectedRecordError, errorMessage } from '../domain/errors.js';

export interface ImageFetchPolicy {
  /** Exact origins (scheme://host[:port]) that http(s) references may point at. Empty: none. */
  readonly allowedOrigins: readonly string[];
  /** Folder that file: references must resolve into (after symlinks). Null: no file references. */
  readonly fileRoot: string | null;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxRedirects: number;
}

/**
 * Reads images given by reference, and only those the policy allows: a reference is attacker-
 * controlled input, so without an allow-list it could make us reach internal services (SSRF) or
 * read files. Every redirect is checked like the first URL; time and size are bounded.
 */
export class ImageFetcher {
  private readonly origins: ReadonlySet<string>;
  private rootReal: Promise<string> | null;

  constructor(private readonly policy: ImageFetchPolicy) {
    this.origins = new Set(policy.allowedOrigins.map(originOf));
    this.rootReal = policy.fileRoot ? realpath(policy.fileRoot) : null;
    this.rootReal?.catch(() => undefined); // reported on first use
  }

  async fetch(uri: string): Promise<Buffer> {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw refused(`image reference "${short(uri)}" is not a valid URI`);
    }
    if (url.protocol === 'file:') return this.readFile(url);
    if (url.protocol === 'http:' || url.protocol === 'https:') return this.fetchHttp(url);
    throw refused(`image reference scheme ${url.protocol} is not accepted (http, https or file only)`);
  }

  private async fetchHttp(first: URL): Promise<Buffer> {
    const signal = AbortSignal.timeout(this.policy.timeoutMs);
    let url = first;
    for (let hop = 0; ; hop++) {
      if (!this.origins.has(url.origin)) throw refused(`image origin ${url.origin} is not in IMAGE_ALLOWED_ORIGINS${hop > 0 ? ` (reached by redirect from ${first.origin})` : ''}`);
      let res: Response;
      try {
        res = await fetch(url, { redirect: 'manual', signal, headers: { accept: 'image/jpeg, image/png, image/webp' } });
      } catch (err) {
        throw unreadable(signal.aborted ? `fetching ${short(url.href)} took longer than ${this.policy.timeoutMs} ms` : `fetching ${short(url.href)} failed: ${errorMessage(err)}`);
      }
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        const location = res.headers.get('location');
        if (!location) throw unreadable(`${short(url.href)} answered ${res.status} without a Location`);
        if (hop >= this.policy.maxRedirects) throw unreadable(`more than ${this.policy.maxRedirects} redirects from ${short(first.href)}`);
        url = new URL(location, url);
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw unreadable(`${short(url.href)} answered HTTP ${res.status}`);
      }
      return this.readBody(res, url, signal);
    }
  }

  private async readBody(res: Response, url: URL, signal: AbortSignal): Promise<Buffer> {
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (declared > this.policy.maxBytes) {
      await res.body?.cancel();
      throw unreadable(`${short(url.href)} is ${declared} bytes, more than IMAGE_MAX_BYTES ${this.policy.maxBytes}`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      // Counted as it arrives: Content-Length can be absent or false.
      for await (const chunk of res.body ?? []) {
        total += chunk.byteLength;
        // Throwing out of the loop cancels the stream (the iterator's return()).
        if (total > this.policy.maxBytes) throw unreadable(`${short(url.href)} is more than IMAGE_MAX_BYTES ${this.policy.maxBytes}`);
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof RejectedRecordError) throw err;
      throw unreadable(signal.aborted ? `reading ${short(url.href)} took longer than ${this.policy.timeoutMs} ms` : `reading ${short(url.href)} failed: ${errorMessage(err)}`);
    }
    return Buffer.concat(chunks, total);
  }

  private async readFile(url: URL): Promise<Buffer> {
    if (!this.rootReal) throw refused('file references are not accepted: IMAGE_FILE_ROOT is not set');
    let root: string;
    try {
      root = await this.rootReal;
    } catch (err) {
      throw unreadable(`IMAGE_FILE_ROOT cannot be read: ${errorMessage(err)}`);
    }
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (err) {
      throw refused(`file reference ${short(url.href)} is not a local path: ${errorMessage(err)}`);
    }
    if (!isAbsolute(path)) throw refused(`file reference ${short(url.href)} is not absolute`);
    let real: string;
    try {
      real = await realpath(path); // resolves .. and symlinks before the containment check
    } catch {
      throw unreadable(`file ${short(path)} does not exist or cannot be read`);
    }
    if (real !== root && !real.startsWith(root + sep)) throw refused(`file reference ${short(path)} is outside IMAGE_FILE_ROOT`);
    const handle = await open(real, 'r').catch((err: unknown) => {
      throw unreadable(`file ${short(path)} cannot be opened: ${errorMessage(err)}`);
    });
    try {
      const { size } = await handle.stat();
      if (size > this.policy.maxBytes) throw unreadable(`file ${short(path)} is ${size} bytes, more than IMAGE_MAX_BYTES ${this.policy.maxBytes}`);
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }
}

function originOf(o: string): string {
  let url: URL;
  try {
    url = new URL(o);
  } catch {
    throw new ConfigError('IMAGE_ALLOWED_ORIGINS', `"${o}" is not an origin such as https://images.example.com`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.username) {
    throw new ConfigError('IMAGE_ALLOWED_ORIGINS', `"${o}" must be scheme://host[:port] with http or https and nothing after it`);
  }
  return url.origin;
}

function refused(message: string): RejectedRecordError {
  return new RejectedRecordError('IMAGE_REFUSED', message);
}

function unreadable(message: string): RejectedRecordError {
  return new RejectedRecordError('IMAGE_UNREADABLE', message);
}

function short(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
