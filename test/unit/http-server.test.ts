/** The HTTP server over a real socket: probes, metrics, and the analysts' views with their guard. */
import { Registry, Counter } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type UserViews } from '../../src/adapters/http/server.js';

const views: UserViews = {
  user: (id) => (id === 'u 1' ? { userId: id, interests: [{ segment: 'shoes', strength: 2 }] } : undefined),
  segmentSizes: () => ({ shoes: 3, phones: 1 }),
};

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function server(opts: { token?: string | null; ready?: boolean } = {}): Promise<string> {
  const registry = new Registry();
  new Counter({ name: 'adstream_test_total', help: 'test', registers: [registry] }).inc(2);
  const s = await startHttpServer({ host: '127.0.0.1', port: 0, registry, isReady: () => opts.ready ?? true, readyDetail: () => ({ partitions: [0, 2] }), views, token: opts.token ?? null });
  close = s.close;
  return `http://127.0.0.1:${s.port}`;
}

describe('HTTP server', () => {
  it('serves probes and metrics', async () => {
    const base = await server({ ready: false });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, partitions: [0, 2] });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^adstream_test_total 2$/m);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('keeps per-user data off without a token, and behind it with one', async () => {
    let base = await server({ token: null });
    expect((await fetch(`${base}/users/u%201`)).status).toBe(403);
    expect(await (await fetch(`${base}/segments`)).json()).toEqual({ segments: { shoes: 3, phones: 1 } });
    await close!();
    base = await server({ token: 's3cret' });
    expect((await fetch(`${base}/users/u%201`)).status).toBe(401);
    expect((await fetch(`${base}/users/u%201`, { headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
    const ok = await fetch(`${base}/users/u%201`, { headers: { authorization: 'Bearer s3cret' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ userId: 'u 1', interests: [{ segment: 'shoes', strength: 2 }] });
    expect((await fetch(`${base}/users/other`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(404);
    expect((await fetch(`${base}/users/%E0%A4%A`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(400);
  });
});
