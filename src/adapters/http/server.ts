import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { RejectedRecordError } from '../../domain/errors.js';
import type { SearchQuery, SearchResult } from '../../pipeline/ad-search.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Ready to take traffic; /readyz answers 503 otherwise. */
  readonly isReady: () => boolean;
  /** Extra facts for /readyz (no user data). */
  readonly readyDetail?: () => Record<string, unknown>;
  /** The analysts' views; absent: /users and /segments answer 404. */
  readonly views?: UserViews;
  /** Bearer token guarding per-user data and search; null: GET /users/:id and POST /search are off (403). */
  readonly token?: string | null;
  /** Ads by a text or an image (pipeline/ad-search.ts); absent: POST /search answers 404. */
  readonly search?: (query: SearchQuery, k: number) => Promise<SearchResult>;
  /** Largest POST /search body accepted (an image's bytes, or the JSON of a text query). */
  readonly searchMaxBytes?: number;
}

const SEARCH_MAX_K = 100;
const SEARCH_DEFAULT_K = 10;
const IMAGE_CONTENT_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream']);

/** The body, or null once it passes `max` bytes (the rest is not read into memory). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > max) {
        // Stop reading; the caller answers 413 and closes the connection.
        req.removeAllListeners('data');
        req.pause();
        resolve(null);
        return;
      }
      parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/**
 * POST /search?k=N: a JSON body {"text": "..."} or the bytes of a JPEG, PNG or WebP image (as
 * Content-Type says); the k active ads closest to it, with the modality it was embedded as.
 */
async function search(req: IncomingMessage, res: ServerResponse, o: HttpServerOptions): Promise<void> {
  if (!o.search) return json(res, 404, { error: 'not found' });
  if (!o.token) return json(res, 403, { error: 'search is off: set HTTP_TOKEN to enable POST /search' });
  if (!authorized(req, o.token)) return json(res, 401, { error: 'missing or wrong bearer token' });
  const kParam = new URL(req.url ?? '/', 'http://x').searchParams.get('k');
  const k = kParam === null ? SEARCH_DEFAULT_K : Number(kParam);
  if (!Number.isInteger(k) || k < 1 || k > SEARCH_MAX_K) return json(res, 400, { error: `k must be an integer 1..${SEARCH_MAX_K}` });
  const max = o.searchMaxBytes ?? 10 * 1024 * 1024;
  const body = await readBody(req, max);
  if (body === null) {
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ error: `body over ${max} bytes` }), () => req.destroy());
    return;
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let query: SearchQuery;
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return json(res, 400, { error: 'body is not JSON' });
    }
    const text = (parsed as { text?: unknown } | null)?.text;
    if (typeof text !== 'string' || text.length === 0) return json(res, 400, { error: 'JSON body must be {"text": "<non-empty string>"}' });
    query = { kind: 'text', text };
  } else if (IMAGE_CONTENT_TYPES.has(type)) {
    // The bytes decide the format (as for events): the header only says "an image".
    query = { kind: 'image', data: body };
  } else {
    return json(res, 415, { error: 'Content-Type must be application/json (a text query) or image/jpeg, image/png, image/webp' });
  }
  try {
    const result = await o.search(query, k);
    json(res, 200, result);
  } catch (err) {
    // An unusable query is the caller's: the same reasons an event would be dead-lettered for.
    if (err instanceof RejectedRecordError) return json(res, 400, { error: err.message, reason: err.reason });
    json(res, 500, { error: (err as Error).message });
  }
}

/** What the HTTP views read from the processor (no raw vectors, no other users' ids). */
export interface UserViews {
  user(userId: string): Record<string, unknown> | undefined;
  /** Segment name -> users of this instance whose segments include it. */
  segmentSizes(): Record<string, number>;
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
};

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  // Constant time, so the token cannot be guessed byte by byte from response times.
  return given.length === want.length && timingSafeEqual(given, want);
}

/** /metrics for Prometheus, /healthz (the process is alive), /readyz (it is doing its job). */
export async function startHttpServer(o: HttpServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/search') {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end();
        return;
      }
      search(req, res, o).catch((err: Error) => json(res, 500, { error: err.message }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics':
        o.registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(body),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
        );
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      case '/readyz': {
        const ready = o.isReady();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, ...o.readyDetail?.() }));
        return;
      }
      case '/segments':
        if (!o.views) return json(res, 404, { error: 'not found' });
        return json(res, 200, { segments: o.views.segmentSizes() });
      default: {
        const m = /^\/users\/([^/]{1,256})$/.exec(path ?? '');
        if (!m || !o.views) return json(res, 404, { error: 'not found' });
        if (!o.token) return json(res, 403, { error: 'per-user data is off: set HTTP_TOKEN to enable GET /users/:id' });
        if (!authorized(req, o.token)) return json(res, 401, { error: 'missing or wrong bearer token' });
        let userId: string;
        try {
          userId = decodeURIComponent(m[1]!);
        } catch {
          return json(res, 400, { error: 'bad user id encoding' });
        }
        const user = o.views.user(userId);
        return user ? json(res, 200, user) : json(res, 404, { error: 'user not held by this instance' });
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
