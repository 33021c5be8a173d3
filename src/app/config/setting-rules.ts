/**
 * Rules between settings that no setting's own range can state; loadConfig applies them once every
 * value is valid on its own, so a configuration that cannot work stops the start with a ConfigError
 * instead of failing later, chunk after chunk.
 */
import { ConfigError } from '../../domain/errors.js';
import type { Config } from './settings.js';

export type RuleSettings = Pick<Config, 'chunkMaxRecords' | 'interestsPerUser' | 'topK' | 'maxQueueItems'>;

/**
 * The most items one inference request of a chunk can hold, and which request that is. A chunk has
 * at most CHUNK_MAX_RECORDS users (and records); its requests are never split: the encoders get at
 * most one item per record, the scorer one per interest of each user (INTERESTS_PER_USER at most),
 * the CTR model one per candidate of each user, TOP_K plus as many again as slack
 * (src/pipeline/rank.ts; the slack is set in src/app/assemble.ts). INTERESTS_PER_USER >= 1 and
 * TOP_K >= 1, so the scorer or the CTR model always asks for at least as many as the encoders.
 */
export function largestChunkRequest(c: Omit<RuleSettings, 'maxQueueItems'>): { readonly items: number; readonly what: string } {
  const ctr = c.chunkMaxRecords * 2 * c.topK;
  const scorer = c.chunkMaxRecords * c.interestsPerUser;
  return ctr >= scorer
    ? { items: ctr, what: `the CTR model's: CHUNK_MAX_RECORDS=${c.chunkMaxRecords} users x 2 x TOP_K=${c.topK} candidates` }
    : { items: scorer, what: `the scorer's: CHUNK_MAX_RECORDS=${c.chunkMaxRecords} users x INTERESTS_PER_USER=${c.interestsPerUser} interests` };
}

/** Throws a ConfigError when the settings disagree. */
export function checkSettingRules(c: RuleSettings): void {
  // A model's queue refuses a request larger than itself (QUEUE_FULL can never clear), so a chunk
  // making one would fail and be handed again for ever.
  const largest = largestChunkRequest(c);
  if (c.maxQueueItems < largest.items) {
    throw new ConfigError(
      'MAX_QUEUE_ITEMS',
      `${c.maxQueueItems} is below the largest inference request a chunk can make, ${largest.items} items (${largest.what}); ` +
        `a request larger than its model's queue is refused, so such a chunk would fail and be retried for ever: ` +
        `set MAX_QUEUE_ITEMS to at least ${largest.items}, or lower CHUNK_MAX_RECORDS`,
    );
  }
}
