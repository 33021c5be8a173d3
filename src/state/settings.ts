import type { SettingTable, SettingValues } from '../util/settings.js';

/** User state: interests, the in-memory cache's bounds, and the local store on disk. */
export const STATE_SETTINGS = {
  interestHalfLifeS: { env: 'INTEREST_HALF_LIFE_S', kind: 'number', default: 3600, min: 1, max: 31536000, doc: 'Half-life of a user interest, in seconds of event time.' },
  interestsPerUser: { env: 'INTERESTS_PER_USER', kind: 'int', default: 3, min: 1, max: 32, doc: 'Interests kept per user (K); an event far from all of them starts a new one, dropping the weakest when K are held. 1: one blended interest.' },
  newInterestThreshold: { env: 'NEW_INTEREST_THRESHOLD', kind: 'number', default: 0.5, min: -1, max: 1, doc: 'An event whose cosine to every interest of the user is below this starts a new interest.' },
  userCacheMaxEntries: { env: 'USER_CACHE_MAX_ENTRIES', kind: 'int', default: 100000, min: 1, max: 100000000, doc: 'Users kept in memory (an LRU cache over the local store); the least recently active are evicted first and read back from disk when they return.' },
  userCacheMaxBytes: { env: 'USER_CACHE_MAX_BYTES', kind: 'int', default: 268435456, min: 65536, max: 1099511627776, doc: 'Memory for user state, in bytes (vectors and bookkeeping as counted by the store); the least recently active users are evicted beyond it.' },
  userTtlS: { env: 'USER_TTL_S', kind: 'number', default: 86400, min: 1, max: 31536000, doc: 'A user idle this long is dropped from memory (it stays in the local store on disk).' },
  stateDir: { env: 'STATE_DIR', kind: 'string', default: '~/.cache/adstream/state', doc: 'Folder of the local state store (every user of the owned partitions, on disk: one LMDB store per partition under <STATE_DIR>/<GROUP_ID>/). One instance per folder; a folder that survives a restart is brought up to date from the changelog tail.' },
} as const satisfies SettingTable;

export type StateSettings = SettingValues<typeof STATE_SETTINGS>;
