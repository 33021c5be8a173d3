import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

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
  /** Bearer token guarding per-user data; null: GET /users/:id is off (403). */
  readonly token?: string | null;
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
