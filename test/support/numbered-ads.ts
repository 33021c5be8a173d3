/** The numbered ads the index tests fill catalogs with (`ad-<i>`, 7 categories), and the ids of an answer. */
import type { Ad } from '../../src/domain/events.js';
import type { Match } from '../../src/pipeline/retrieve.js';

export const numberedAd = (i: number, active = true): Ad => ({ adId: `ad-${i}`, advertiserId: 'adv', title: `ad ${i}`, description: '', categoryId: `cat-${i % 7}`, image: null, bidMicros: 1000, active, updatedAt: i });

/** Per query row, the ids of its matches in order. */
export const matchIds = (lists: Match[][]): string[][] => lists.map((l) => l.map((m) => m.ad.adId));
