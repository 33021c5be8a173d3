/** Image references against a real loopback HTTP server and real files: what is fetched, what is refused. */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, RejectedRecordError } from '../../src/domain/errors.js';
import { ImageFetcher, type ImageFetchPolicy } from '../../src/preprocess/image-fetcher.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
let server: Server;
let other: Server;
let origin = '';
let otherOrigin = '';

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/img.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    if (path === '/hop') return void res.writeHead(302, { location: '/img.png' }).end();
    if (path === '/away') return void res.writeHead(302, { location: `${otherOrigin}/img.png` }).end();
    if (path === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (path === '/big') return void res.writeHead(200, { 'content-length': String(1 << 20) }).end(Buffer.alloc(1 << 20));
    if (path === '/big-chunked') {
      res.writeHead(200);
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(1 << 14));
      return void res.end();
    }
    if (path === '/slow') return void setTimeout(() => res.writeHead(200).end(PNG), 2000);
    res.writeHead(404).end();
  });
  other = createServer((_req, res) => res.writeHead(200).end(PNG));
  origin = await listen(server);
  otherOrigin = await listen(other);
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  other.close();
});

function fetcher(p: Partial<ImageFetchPolicy> = {}): ImageFetcher {
  return new ImageFetcher({ allowedOrigins: [origin], fileRoot: null, timeoutMs: 500, maxBytes: 256 * 1024, maxRedirects: 3, ...p });
}

async function reason(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RejectedRecordError);
  return `${(err as RejectedRecordError).reason}: ${(err as Error).message}`;
}

describe('ImageFetcher over http(s)', () => {
  it('fetches from an allowed origin, following a redirect within it', async () => {
    expect(await fetcher().fetch(`${origin}/img.png`)).toEqual(PNG);
    expect(await fetcher().fetch(`${origin}/hop`)).toEqual(PNG);
  });

  it('refuses origins not allowed: by default none is', async () => {
    expect(await reason(fetcher({ allowedOrigins: [] }).fetch(`${origin}/img.png`))).toMatch(/^IMAGE_REFUSED: image origin .* not in IMAGE_ALLOWED_ORIGINS/);
    expect(await reason(fetcher().fetch(`${otherOrigin}/img.png`))).toMatch(/^IMAGE_REFUSED/);
  });

  // The allow-list is the only check: there is no check of the addresses a host name resolves to,
  // so these are refused because they are not listed (an origin listed exactly, such as this test
  // server on 127.0.0.1, is fetched), and an allowed host name is trusted with its DNS (README).
  it('refuses loopback, private and metadata addresses through the allow-list, which does not name them', async () => {
    for (const u of ['http://localhost/', 'http://10.0.0.1/x.png', 'http://192.168.1.1/x.png', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x.png', 'http://127.0.0.1/x.png']) {
      expect(await reason(fetcher().fetch(u))).toMatch(/^IMAGE_REFUSED: image origin \S+ is not in IMAGE_ALLOWED_ORIGINS$/);
    }
  });

  it('re-checks every redirect: a hop to another origin is refused, and loops end', async () => {
    expect(await reason(fetcher().fetch(`${origin}/away`))).toMatch(/^IMAGE_REFUSED: .*reached by redirect/);
    expect(await reason(fetcher().fetch(`${origin}/loop`))).toMatch(/^IMAGE_UNREADABLE: more than 3 redirects/);
  });

  it('bounds size (declared or streamed) and time', async () => {
    expect(await reason(fetcher().fetch(`${origin}/big`))).toMatch(/^IMAGE_UNREADABLE: .*more than IMAGE_MAX_BYTES/);
    expect(await reason(fetcher().fetch(`${origin}/big-chunked`))).toMatch(/^IMAGE_UNREADABLE: .*more than IMAGE_MAX_BYTES/);
    expect(await reason(fetcher().fetch(`${origin}/slow`))).toMatch(/^IMAGE_UNREADABLE: .*longer than 500 ms/);
    expect(await reason(fetcher().fetch(`${origin}/missing`))).toMatch(/^IMAGE_UNREADABLE: .*HTTP 404/);
  });

  it('refuses other schemes and malformed references', async () => {
    for (const u of ['ftp://example.com/a.png', 'data:image/png;base64,iVBORw0KGgo=', 'gopher://x/', 'javascript:alert(1)', 'not a uri']) {
      expect(await reason(fetcher().fetch(u))).toMatch(/^IMAGE_REFUSED/);
    }
  });

  it('rejects badly written allowed origins at start, naming the setting', () => {
    for (const o of ['images.example.com', 'https://cdn.example.com/path', 'ftp://x.example.com']) {
      expect(() => fetcher({ allowedOrigins: [o] })).toThrow(ConfigError);
      expect(() => fetcher({ allowedOrigins: [o] })).toThrow(/IMAGE_ALLOWED_ORIGINS/);
    }
  });
});

describe('ImageFetcher over file:', () => {
  const base = mkdtempSync(join(tmpdir(), 'adstream-files-'));
  const root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'sub', 'a.png'), PNG);
  writeFileSync(join(base, 'secret.png'), PNG);
  symlinkSync(join(base, 'secret.png'), join(root, 'escape.png'));
  symlinkSync(join(root, 'sub', 'a.png'), join(root, 'inside-link.png'));

  it('reads files under the root, symlinks that stay inside included', async () => {
    expect(await fetcher({ fileRoot: root }).fetch(pathToFileURL(join(root, 'sub', 'a.png')).href)).toEqual(PNG);
    expect(await fetcher({ fileRoot: root }).fetch(pathToFileURL(join(root, 'inside-link.png')).href)).toEqual(PNG);
  });

  it('refuses file references without a root, ../ escapes and symlink escapes', async () => {
    expect(await reason(fetcher().fetch(pathToFileURL(join(root, 'sub', 'a.png')).href))).toMatch(/^IMAGE_REFUSED: .*IMAGE_FILE_ROOT is not set/);
    expect(await reason(fetcher({ fileRoot: root }).fetch(`file://${root}/sub/../../secret.png`))).toMatch(/^IMAGE_REFUSED: .*outside IMAGE_FILE_ROOT/);
    expect(await reason(fetcher({ fileRoot: root }).fetch(`file://${root}/%2e%2e/secret.png`))).toMatch(/^IMAGE_REFUSED/);
    expect(await reason(fetcher({ fileRoot: root }).fetch(pathToFileURL(join(root, 'escape.png')).href))).toMatch(/^IMAGE_REFUSED: .*outside IMAGE_FILE_ROOT/);
    expect(await reason(fetcher({ fileRoot: root }).fetch('file:///etc/passwd'))).toMatch(/^IMAGE_REFUSED/);
    expect(await reason(fetcher({ fileRoot: root }).fetch('file://otherhost/x.png'))).toMatch(/^IMAGE_REFUSED/);
  });

  it('bounds file size and reports missing files', async () => {
    writeFileSync(join(root, 'huge.png'), Buffer.alloc(300 * 1024));
    expect(await reason(fetcher({ fileRoot: root }).fetch(pathToFileURL(join(root, 'huge.png')).href))).toMatch(/^IMAGE_UNREADABLE: .*more than IMAGE_MAX_BYTES/);
    expect(await reason(fetcher({ fileRoot: root }).fetch(pathToFileURL(join(root, 'nope.png')).href))).toMatch(/^IMAGE_UNREADABLE/);
  });
});
