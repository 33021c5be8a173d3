/**
 * A small client of the Confluent Schema Registry REST API over fetch: the three calls adstream
 * makes (register, schema by id, compatibility level). Ours rather than a library's: the codec
 * already frames and resolves (avsc), so a client library would add only these requests.
 */
import { SchemaIncompatibleError, type SchemaRegistry } from '../../serde/schema-registry.js';

export interface RegistryClientOptions {
  /** Base URL, e.g. http://localhost:8081 or http://host:8080/apis/ccompat/v7. */
  readonly url: string;
  readonly username?: string | null;
  readonly password?: string | null;
  /** Timeout of one request. */
  readonly timeoutMs?: number;
}

export type CompatibilityLevel = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** An answer other than the one asked for; `errorCode` is the registry's (e.g. 40403: no such schema). */
export class RegistryHttpError extends Error {
  override readonly name = 'RegistryHttpError';
  constructor(
    readonly status: number,
    readonly errorCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class HttpSchemaRegistry implements SchemaRegistry {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(o: RegistryClientOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 5_000;
    this.headers = { accept: CONTENT_TYPE, 'content-type': CONTENT_TYPE };
    if (o.username != null || o.password != null) {
      this.headers['authorization'] = `Basic ${Buffer.from(`${o.username ?? ''}:${o.password ?? ''}`).toString('base64')}`;
    }
  }

  async register(subject: string, definition: string): Promise<number> {
    try {
      const body = await this.request<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema: definition, schemaType: 'AVRO' });
      if (!Number.isInteger(body.id)) throw new Error(`registry answered without an id: ${JSON.stringify(body)}`);
      return body.id;
    } catch (err) {
      // 409: the subject's compatibility rule refused it (Confluent and Apicurio both).
      if (err instanceof RegistryHttpError && err.status === 409) throw new SchemaIncompatibleError(subject, err.message);
      throw err;
    }
  }

  async schemaById(id: number): Promise<{ schema: string; schemaType: string } | null> {
    try {
      const body = await this.request<{ schema: string; schemaType?: string }>('GET', `/schemas/ids/${id}`);
      // Confluent leaves schemaType out for Avro.
      return { schema: body.schema, schemaType: body.schemaType ?? 'AVRO' };
    } catch (err) {
      if (err instanceof RegistryHttpError && err.status === 404) return null;
      throw err;
    }
  }

  /** Sets the compatibility rule of a subject, or the global one when no subject is given. */
  async setCompatibility(level: CompatibilityLevel, subject?: string): Promise<void> {
    await this.request('PUT', subject === undefined ? '/config' : `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  }

  /** The global compatibility rule. */
  async compatibility(): Promise<string> {
    const body = await this.request<{ compatibilityLevel?: string; compatibility?: string }>('GET', '/config');
    return body.compatibilityLevel ?? body.compatibility ?? 'unknown';
  }

  /** The registered subjects. */
  subjects(): Promise<string[]> {
    return this.request<string[]>('GET', '/subjects');
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: this.headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      let code: number | undefined;
      let message = text.slice(0, 500) || res.statusText;
      try {
        const e = JSON.parse(text) as { error_code?: number; message?: string };
        code = e.error_code;
        if (e.message) message = e.message;
      } catch {
        // not JSON: keep the text
      }
      throw new RegistryHttpError(res.status, code, `${method} ${path}: HTTP ${res.status}${code === undefined ? '' : ` (error ${code})`}: ${message}`);
    }
    return JSON.parse(text) as T;
  }
}
