import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpSchemaRegistry, RegistryHttpError } from '../../src/adapters/registry/registry-client.js';
import { SchemaIncompatibleError } from '../../src/serde/schema-registry.js';

/** What the client sent, and a scripted answer per path (the real registry runs in the integration test). */
interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
}

describe('HttpSchemaRegistry (the Confluent REST calls)', () => {
  const seen: Seen[] = [];
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, contentType: req.headers['content-type'], body });
        const answer = (status: number, json: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
          res.end(JSON.stringify(json));
        };
        if (req.url === '/ccompat/subjects/ok-value/versions') return answer(200, { id: 17 });
        if (req.url === '/ccompat/subjects/refused-value/versions') return answer(409, { error_code: 409, message: 'Schema being registered is incompatible with an earlier schema' });
        if (req.url === '/ccompat/schemas/ids/17') return answer(200, { schema: '{"type":"record","name":"A","fields":[]}' });
        if (req.url === '/ccompat/schemas/ids/18') return answer(200, { schema: 'syntax = "proto3";', schemaType: 'PROTOBUF' });
        if (req.url === '/ccompat/schemas/ids/404') return answer(404, { error_code: 40403, message: 'Schema not found' });
        res.writeHead(500);
        res.end('boom');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ccompat/`;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('registers under the subject with basic auth and the registry content type, and returns the id', async () => {
    const client = new HttpSchemaRegistry({ url: base, username: 'team', password: 's3cr:t' });
    expect(await client.register('ok-value', '{"type":"record","name":"A","fields":[]}')).toBe(17);
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ method: 'POST', url: '/ccompat/subjects/ok-value/versions', contentType: 'application/vnd.schemaregistry.v1+json' });
    expect(req.auth).toBe(`Basic ${Buffer.from('team:s3cr:t').toString('base64')}`);
    expect(JSON.parse(req.body)).toEqual({ schema: '{"type":"record","name":"A","fields":[]}', schemaType: 'AVRO' });
  });

  it('sends no authorization without credentials', async () => {
    await new HttpSchemaRegistry({ url: base }).register('ok-value', '{}');
    expect(seen.at(-1)!.auth).toBeUndefined();
  });

  it('turns a 409 into SchemaIncompatibleError with the registry\'s message', async () => {
    const err = await new HttpSchemaRegistry({ url: base }).register('refused-value', '{}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaIncompatibleError);
    expect((err as Error).message).toMatch(/HTTP 409 \(error 409\): Schema being registered is incompatible with an earlier schema/);
  });

  it('reads a schema by id (Avro when the type is left out), null for 404, and throws on other answers', async () => {
    const client = new HttpSchemaRegistry({ url: base });
    expect(await client.schemaById(17)).toEqual({ schema: '{"type":"record","name":"A","fields":[]}', schemaType: 'AVRO' });
    expect(await client.schemaById(18)).toMatchObject({ schemaType: 'PROTOBUF' });
    expect(await client.schemaById(404)).toBeNull();
    const err = await client.schemaById(500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryHttpError);
    expect((err as Error).message).toMatch(/GET \/schemas\/ids\/500: HTTP 500: boom/);
  });
});
