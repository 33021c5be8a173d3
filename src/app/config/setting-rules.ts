/**
 * Rules between settings that no setting's own range can state; loadConfig applies them once every
 * value is valid on its own, so a configuration that cannot work stops the start with a ConfigError
 * instead of failing later, chunk after chunk.
 */
import { ConfigError } from '../../domain/errors.js';
import type { Config } from './settings.js';

export type RuleSettings = Pick<Config, 'chunkMaxRecords' | 'interestsPerUser' | 'maxQueueItems'>;

/**
 * The most items one inference request of a chunk can hold, and which request that is. A chunk has
 * at most CHUNK_MAX_RECORDS users (and records); its requests are never split: the encoders get at
 * most one item per record, the scorer one per interest of each user (INTERESTS_PER_USER at most,
 * >= 1, so the scorer's is the largest). The CTR model runs inside the scorer's request on its top
 * candidates (src/pipeline/rank.ts) and adds no queued items.
 */
export function largestChunkRequest(c: Omit<RuleSettings, 'maxQueueItems'>): { readonly items: number; readonly what: string } {
  return {
    items: c.chunkMaxRecords * c.interestsPerUser,
    what: `the scorer's: CHUNK_MAX_RECORDS=${c.chunkMaxRecords} users x INTERESTS_PER_USER=${c.interestsPerUser} interests`,
  };
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
