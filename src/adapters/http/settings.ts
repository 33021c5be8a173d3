import type { SettingTable, SettingValues } from '../../util/settings.js';

/** The HTTP server: probes, metrics and the analysts' views. */
export const HTTP_SETTINGS = {
  httpHost: { env: 'HTTP_HOST', kind: 'string', default: '127.0.0.1', doc: 'Address the HTTP server (/metrics, /healthz, /readyz) binds to.' },
  httpToken: { env: 'HTTP_TOKEN', kind: 'string', default: null, doc: 'Bearer token for the per-user HTTP view (GET /users/:id) and POST /search. Unset: those endpoints are off (403).' },
  httpPort: { env: 'HTTP_PORT', kind: 'int', default: 9464, min: 0, max: 65535, doc: 'Port of the HTTP server; 0 picks a free one.' },
} as const satisfies SettingTable;

export type HttpSettings = SettingValues<typeof HTTP_SETTINGS>;
