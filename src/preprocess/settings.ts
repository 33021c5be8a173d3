import type { SettingTable, SettingValues } from '../util/settings.js';

/** Image decoding and fetching: what an image may be, and where a referenced one may come from. */
export const PREPROCESS_SETTINGS = {
  imageMaxPixels: { env: 'IMAGE_MAX_PIXELS', kind: 'int', default: 25000000, min: 1, max: 1000000000, doc: 'Images declaring more pixels are refused before decoding (decompression bombs).' },
  imageAllowedOrigins: { env: 'IMAGE_ALLOWED_ORIGINS', kind: 'list', default: null, doc: 'Origins (scheme://host[:port]) that image references may be fetched from, comma-separated; redirects are checked too. Unset: none.' },
  imageFileRoot: { env: 'IMAGE_FILE_ROOT', kind: 'string', default: null, doc: 'Folder that file: image references must resolve into (symlinks followed, then checked). Unset: file references are refused.' },
  imageFetchTimeoutMs: { env: 'IMAGE_FETCH_TIMEOUT_MS', kind: 'int', default: 2000, min: 1, max: 600000, doc: 'Time allowed to fetch one referenced image, redirects included.' },
  imageMaxBytes: { env: 'IMAGE_MAX_BYTES', kind: 'int', default: 10485760, min: 1, max: 1073741824, doc: 'Referenced images larger than this are refused.' },
} as const satisfies SettingTable;

export type PreprocessSettings = SettingValues<typeof PREPROCESS_SETTINGS>;
